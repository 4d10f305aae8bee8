//! `roomready-sim`: runs the simulated world. `demo` is the walking skeleton end to end.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use roomready_agent::config::BrokerUrl;
use roomready_protocol::TopicPrefix;
use roomready_simulator::demo::{self, DemoOptions};

/// Exit codes.
mod exit {
    pub const OK: u8 = 0;
    /// The demo ran but not every device's state arrived in time.
    pub const INCOMPLETE: u8 = 1;
    pub const USAGE: u8 = 64;
    /// The embedded broker could not start.
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
}

#[derive(Parser)]
#[command(
    name = "roomready-sim",
    version,
    about = "Simulated Teams Rooms / Surface Hub fleet, MQTT broker and dashboard for roomready.",
    after_help = "Exit codes: 0 success, 1 not every state arrived in time, 64 usage error, \
                  69 embedded broker could not start, 70 internal error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker, a fleet of simulated devices and a dashboard; print the fleet table.
    Demo {
        /// Number of simulated devices.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        devices: u32,
        /// Use this broker (mqtt://HOST:PORT) instead of the embedded one.
        #[arg(long, value_name = "URL", value_parser = parse_broker)]
        broker: Option<BrokerUrl>,
        /// Seconds to wait for every device's state.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// Topic prefix of the MQTT contract.
        #[arg(long, default_value = TopicPrefix::DEFAULT, value_parser = parse_prefix)]
        topic_prefix: TopicPrefix,
    },
}

fn parse_broker(s: &str) -> Result<BrokerUrl, String> {
    let url: BrokerUrl = s
        .parse()
        .map_err(|e: roomready_agent::config::BrokerUrlError| e.to_string())?;
    if url.tls {
        // The simulated devices and the dashboard connect without TLS settings.
        return Err("the simulator connects with plain mqtt:// only".into());
    }
    Ok(url)
}

fn parse_prefix(s: &str) -> Result<TopicPrefix, String> {
    TopicPrefix::new(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roomready-sim: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let Command::Demo {
        devices,
        broker,
        timeout,
        topic_prefix,
    } = cli.command;
    let options = DemoOptions {
        devices: devices as usize,
        broker,
        timeout: Duration::from_secs(timeout),
        topic_prefix,
    };
    match runtime.block_on(demo::run(options)) {
        Ok(report) => {
            print!("{}", demo::render(&report));
            if report.complete() {
                ExitCode::from(exit::OK)
            } else {
                eprintln!(
                    "roomready-sim: demo incomplete: {} of {} device states arrived within {} s",
                    report.arrived,
                    report.fleet.len(),
                    timeout
                );
                ExitCode::from(exit::INCOMPLETE)
            }
        }
        Err(e) => {
            eprintln!("roomready-sim: {e}");
            ExitCode::from(exit::UNAVAILABLE)
        }
    }
}
