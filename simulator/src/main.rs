//! `roomready-sim`: runs the simulated world. `demo` is the walking skeleton end to end;
//! `serve-updates` serves a feed; `keygen` and `release` are `roomready-release`'s own commands
//! (roomready-feed's `cli`), kept here for the simulator's users.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use roomready_agent::config::BrokerUrl;
use roomready_feed::MANIFEST_FILE;
use roomready_feed::cli::{self, KeygenArgs, ReleaseArgs};
use roomready_protocol::TopicPrefix;
use roomready_simulator::demo::{self, DemoOptions, DemoReport, Narrator, ServeOptions};
use roomready_simulator::scenario;
use roomready_simulator::update_server::UpdateServer;

/// Exit codes.
mod exit {
    pub const OK: u8 = 0;
    /// The demo ran but not every device's state arrived in time; a scenario expectation did
    /// not hold; or keygen, release or serve-updates failed.
    pub const INCOMPLETE: u8 = 1;
    // 64: a usage error (roomready_feed::cli::parse_args, shared with roomready-release).
    /// `run`: the scenario file is invalid.
    pub const DATA: u8 = 65;
    /// `run`: the scenario file cannot be read.
    pub const NO_INPUT: u8 = 66;
    /// `run`: the JUnit or JSON file cannot be written.
    pub const CANT_CREATE: u8 = 73;
    /// The embedded broker could not start.
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
}

#[derive(Parser)]
#[command(
    name = "roomready-sim",
    version,
    about = "Simulated Teams Rooms / Surface Hub fleet, MQTT broker and dashboard for roomready.",
    after_help = "Exit codes: 0 success, 1 not every state arrived in time (demo), an \
                  expectation failed (run) or the command failed (keygen, release, \
                  serve-updates), 64 usage error, 65 invalid scenario file, 66 unreadable \
                  scenario file, 69 broker, farm, update server or controller could not start, 70 internal \
                  error, 73 cannot write --junit/--json."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker, a fleet of simulated devices and the controller; print the fleet table
    /// and serve the controller's dashboard until Ctrl-C.
    ///
    /// With --once: no controller; print the fleet table once every state arrived and exit.
    Demo {
        /// Print the fleet table and exit (for scripts): exit code 0 iff every state arrived.
        #[arg(long)]
        once: bool,
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
        /// Where the dashboard listens [default: 127.0.0.1:8080, or a free port if that is
        /// taken]. A loopback address: the demo has no logins.
        #[arg(long, value_name = "ADDR", value_parser = parse_listen, conflicts_with = "once")]
        listen: Option<SocketAddr>,
        /// Keep the controller's database in this file [default: a temporary file, deleted at
        /// the end].
        #[arg(long, value_name = "FILE", conflicts_with = "once")]
        database: Option<PathBuf>,
        /// Seconds between each device's own reports while the demo serves (commands such as
        /// "Check now" make a device report at once).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400), conflicts_with = "once")]
        report_interval: u64,
    },
    /// Generate a zipsign ed25519 key pair for signing agent releases (as `roomready-release
    /// keygen`).
    Keygen(KeygenArgs),
    /// Package, sign and publish an agent binary into an update feed (as `roomready-release
    /// release`).
    Release(ReleaseArgs),
    /// Run a scenario file: a fleet, faults on a timeline, and expectations.
    ///
    /// Prints a table of the expectations (expected, observed, pass/fail) and of the timeline's
    /// steps. Exit code 0 iff every expectation holds. The format is in simulator/README.md.
    Run {
        /// The scenario file (TOML).
        scenario: PathBuf,
        /// Seed for the fleet (which device gets which value); default: the file's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Write JUnit XML here (one test case per expectation).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Write the whole outcome as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Use this broker (mqtt://HOST:PORT) instead of the embedded one; broker faults are
        /// then skipped.
        #[arg(long, value_name = "URL", value_parser = parse_broker)]
        broker: Option<BrokerUrl>,
        /// Keep the fleet up after the run would have ended, until Ctrl-C or SIGTERM; then
        /// report as usual (for a controller run against the fleet from outside).
        #[arg(long)]
        hold: bool,
    },
    /// The embedded broker alone, until stdin closes: what `run` starts as a child process when
    /// a fleet's connections do not fit in one process. Prints `listening ADDR` first.
    #[command(hide = true)]
    Broker {
        /// Address to bind (a loopback address; port 0 picks one).
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: SocketAddr,
        /// Keep sessions and queued messages in this directory across restarts.
        #[arg(long, value_name = "DIR")]
        persist: Option<PathBuf>,
    },
    /// Serve an update feed over HTTP on 127.0.0.1 until Ctrl-C.
    ///
    /// The agent's manifest URL is then http://127.0.0.1:PORT/CHANNEL/manifest.json.
    ServeUpdates {
        /// Feed directory (written by `release --out`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

async fn serve_updates(dir: PathBuf, port: u16) -> anyhow::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let server = UpdateServer::start_on(&dir, addr)
        .await
        .with_context(|| format!("cannot serve {} on {addr}", dir.display()))?;
    println!("{}", server.url());
    for (channel, _) in roomready_feed::cli::manifests(&dir) {
        println!("{channel}: {}{channel}/{MANIFEST_FILE}", server.url());
    }
    println!(
        "GitHub API (update_github_api_url, any OWNER/REPO): {}",
        server.github_api_url()
    );
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    server.stop().await;
    Ok(())
}

/// `run`: loads, runs and reports a scenario.
fn run_scenario(
    runtime: &tokio::runtime::Runtime,
    path: &std::path::Path,
    seed: Option<u64>,
    broker: Option<BrokerUrl>,
    junit: Option<PathBuf>,
    json: Option<PathBuf>,
    hold: bool,
) -> ExitCode {
    let loaded = scenario::load(path).map(|mut s| {
        s.file = path.to_owned();
        s
    });
    let scenario = match loaded {
        Ok(s) => s,
        Err(e) => {
            eprintln!("roomready-sim: {e}");
            return ExitCode::from(
                if e.position.is_none() && e.message.starts_with("cannot read") {
                    exit::NO_INPUT
                } else {
                    exit::DATA
                },
            );
        }
    };
    let options = scenario::run::RunOptions {
        seed,
        broker,
        progress: true,
        broker_process: match std::env::current_exe() {
            Ok(exe) => scenario::run::BrokerProcess::ChildWhenNeeded(exe),
            Err(_) => scenario::run::BrokerProcess::InProcess,
        },
        hold,
    };
    let outcome = match runtime.block_on(scenario::run::run(&scenario, &options)) {
        Ok(outcome) => outcome,
        Err(e) => {
            eprintln!("roomready-sim: {e}");
            return ExitCode::from(exit::UNAVAILABLE);
        }
    };
    print!("{}", scenario::report::table(&outcome));
    for (file, text) in [
        (junit, scenario::report::junit(&outcome)),
        (json, scenario::report::json(&outcome)),
    ] {
        if let Some(file) = file
            && let Err(e) = std::fs::write(&file, text)
        {
            eprintln!("roomready-sim: cannot write {}: {e}", file.display());
            return ExitCode::from(exit::CANT_CREATE);
        }
    }
    if outcome.passed() {
        ExitCode::from(exit::OK)
    } else {
        ExitCode::from(exit::INCOMPLETE)
    }
}

/// `demo`: once (print the table, exit) or serving the dashboard until Ctrl-C or SIGTERM.
fn run_demo(
    runtime: &tokio::runtime::Runtime,
    options: DemoOptions,
    serve: Option<ServeOptions>,
) -> ExitCode {
    let timeout = options.timeout;
    let result = match serve {
        None => runtime
            .block_on(demo::run(options))
            .inspect(|report| print!("{}", demo::render(report))),
        Some(serve) => runtime.block_on(async {
            // Listening for Ctrl-C and SIGTERM before anything is printed.
            let stop = roomready_controller::shutdown_signal();
            demo::serve(options, serve, &mut Printer, stop).await
        }),
    };
    match result {
        Ok(report) if report.complete() => ExitCode::from(exit::OK),
        Ok(report) => {
            eprintln!(
                "roomready-sim: demo incomplete: {} of {} device states arrived within {} s",
                report.arrived,
                report.fleet.len(),
                timeout.as_secs()
            );
            ExitCode::from(exit::INCOMPLETE)
        }
        Err(e) => {
            eprintln!("roomready-sim: {e}");
            ExitCode::from(exit::UNAVAILABLE)
        }
    }
}

/// Tells the person at the terminal what the serving demo is doing.
struct Printer;

impl Narrator for Printer {
    fn dashboard(&mut self, url: &str, database: &std::path::Path, kept: bool) {
        println!("dashboard: {url}");
        if kept {
            println!("database:  {}", database.display());
        } else {
            println!("database:  {} (deleted at the end)", database.display());
        }
        println!();
    }

    fn fleet(&mut self, report: &DemoReport) {
        print!("{}", demo::render(report));
        println!("\nserving the dashboard at the address above; Ctrl-C stops the demo");
    }
}

/// Prints a failed command's error chain and gives exit code 1.
fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("roomready-sim: {e:#}");
            ExitCode::from(exit::INCOMPLETE)
        }
    }
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

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = s
        .parse()
        .map_err(|e| format!("{e}: give IP:PORT, e.g. 127.0.0.1:8080"))?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address: the demo's dashboard has no logins; \
             run roomready-controller with HTTPS and a users file to serve a network"
        ));
    }
    Ok(addr)
}

fn parse_prefix(s: &str) -> Result<TopicPrefix, String> {
    TopicPrefix::new(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    // The same usage codes as roomready-release (64, and 0 for --help).
    let cli: Cli = match cli::parse_args() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let command = match cli.command {
        Command::Keygen(args) => {
            return report(cli::run_keygen(&args, &mut std::io::stdout()).map_err(Into::into));
        }
        Command::Release(args) => {
            return report(cli::run_release(&args, &mut std::io::stdout()).map_err(Into::into));
        }
        other => other,
    };
    // A scenario's faults make the simulated agents warn by design (lost connections, refused
    // probes): only errors are shown unless RUST_LOG asks for more.
    let default_level = if matches!(command, Command::Run { .. } | Command::Broker { .. }) {
        "error"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(roomready_agent::terminal::stderr_colour())
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
    match command {
        Command::ServeUpdates { dir, port } => report(runtime.block_on(serve_updates(dir, port))),
        Command::Broker { bind, persist } => {
            match runtime.block_on(scenario::broker::serve(bind, persist)) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => {
                    eprintln!("roomready-sim: {e}");
                    ExitCode::from(exit::UNAVAILABLE)
                }
            }
        }
        Command::Run {
            scenario,
            seed,
            junit,
            json,
            broker,
            hold,
        } => run_scenario(&runtime, &scenario, seed, broker, junit, json, hold),
        Command::Demo {
            once,
            devices,
            broker,
            timeout,
            topic_prefix,
            listen,
            database,
            report_interval,
        } => {
            let options = DemoOptions {
                devices: devices as usize,
                broker,
                timeout: Duration::from_secs(timeout),
                topic_prefix,
            };
            let serve = (!once).then(|| ServeOptions {
                listen,
                database,
                report_interval: Duration::from_secs(report_interval),
            });
            run_demo(&runtime, options, serve)
        }
        Command::Keygen(_) | Command::Release(_) => ExitCode::from(exit::SOFTWARE),
    }
}
