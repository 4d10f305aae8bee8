//! `roomready-agent`: the one-shot `check`, the `run` daemon, `self-test`, the signed `update`
//! and the opt-in registry `fix`, a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use roomready_agent::cli::{self, Output, Probes};
use roomready_agent::config::UpdateChannel;
use roomready_agent::exit;
use roomready_agent::facts::schannel;
use roomready_agent::probe::{self, Endpoint};

#[cfg(windows)]
#[path = "service.rs"]
mod windows_service_impl;

#[derive(Parser)]
#[command(
    name = "roomready-agent",
    version,
    about = "Assesses a Teams Rooms / Surface Hub device for TLS 1.2-only Microsoft 365 and reports over MQTT.",
    after_help = exit::help()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Assess this device once and print the result; the exit code is the verdict.
    #[command(after_help = exit::help())]
    Check {
        /// Facts file (TOML: device_id, kind, app_version, os_build, os_name, [registry]). On
        /// Windows, and over a registry dump, it overrides the facts it states; elsewhere it is
        /// the facts.
        #[arg(long, value_name = "FILE")]
        facts: Option<PathBuf>,
        /// Registry facts (OS build, edition, TLS settings) from a saved `reg query KEY /s`
        /// output (UTF-8 or UTF-16) instead of the live registry; the facts file overrides it.
        #[arg(long, value_name = "FILE")]
        registry_dump: Option<PathBuf>,
        /// Schannel's handshake events from a saved export instead of the live System log:
        /// the XML of `wevtutil qe System /q:"*[System[Provider[@Name='Schannel']]]" /f:xml`
        /// (or of a saved .evtx, `wevtutil qe FILE.evtx /lf:true /f:xml`), UTF-8 or UTF-16.
        #[arg(long, value_name = "FILE")]
        schannel_events: Option<PathBuf>,
        /// How far back Schannel's events count, in days.
        #[arg(long, value_name = "DAYS", default_value_t = schannel::Bounds::DEFAULT_WINDOW_DAYS,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(schannel::Bounds::MAX_WINDOW_DAYS)))]
        schannel_window_days: u32,
        /// The most Schannel events read, the newest kept.
        #[arg(long, value_name = "N", default_value_t = schannel::Bounds::DEFAULT_MAX_EVENTS as u64,
              value_parser = clap::value_parser!(u64).range(1..=schannel::Bounds::MAX_EVENTS as u64))]
        schannel_max_events: u64,
        /// Probe this endpoint ([ROLE=]HOST[:PORT][@SFB_VERSION], port 443 by default, an IPv6
        /// address in brackets: [2001:db8::5]:443; `microsoft365` for Microsoft 365's three
        /// hosts; repeatable): TLS 1.3/1.2 handshakes, TLS 1.2/1.1/1.0 hellos offering every
        /// suite, suites and certificate. An IP address is probed without SNI.
        #[arg(long = "endpoint", value_name = "HOST:PORT", value_parser = parse_endpoint)]
        endpoints: Vec<EndpointEntry>,
        /// Probe the endpoint HOST:PORT at ADDRESS instead of HOST's DNS address; SNI and the
        /// certificate's name stay HOST (as curl's --resolve; repeatable).
        #[arg(long = "resolve", value_name = "HOST:PORT:ADDRESS", value_parser = parse_resolve)]
        resolve: Vec<String>,
        /// Seconds allowed for each probe connection.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=120))]
        timeout: u64,
        /// Trust anchors for endpoint certificates (PEM); Mozilla's roots by default.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Print the JSON `State` message instead of the summary tables.
        #[arg(long)]
        json: bool,
        /// Colour the summary: auto (only on a terminal, unless NO_COLOR is set), always, never.
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
    },
    /// Run the daemon: assess every interval and report over MQTT until SIGINT/SIGTERM.
    #[command(after_help = exit::help())]
    Run {
        /// Config file (TOML: broker_url, device_id, facts_file, ...; see the README).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Check that this binary can run with CONFIG: loads the config, opens (creates, locks and
    /// closes) the journal directory, checks the update keys. Run by `update` on a new binary
    /// before it replaces this one.
    #[command(after_help = exit::help())]
    SelfTest {
        /// Config file, as for `run`.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// The Windows service: install (automatic start, LocalSystem, restart on failure),
    /// uninstall, start, stop, or run (what the service manager starts). On Linux, run the
    /// daemon under systemd instead (docs/deploy/roomready-agent.service).
    Service {
        #[command(subcommand)]
        action: ServiceAction,
    },
    /// Install the newest signed release of the update feed (update_feed_url, update_keys).
    #[command(after_help = exit::help())]
    Update {
        /// Config file, as for `run`.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Only print the version that would be installed, or "up to date".
        #[arg(long)]
        check: bool,
        /// Install exactly this version (older ones need allow_downgrade = true).
        #[arg(long, value_name = "V")]
        version: Option<semver::Version>,
        /// The feed channel instead of update_channel.
        #[arg(long, value_enum)]
        channel: Option<ChannelArg>,
    },
    /// Repair the Windows TLS registry values the findings point at (SCHANNEL TLS 1.2 client,
    /// WinHTTP DefaultSecureProtocols, .NET SchUseStrongCrypto/SystemDefaultTlsVersions): print
    /// the plan, apply it (the old values are saved to fix-backup.json in journal_dir first;
    /// needs allow_fix = true), or undo it. A restart makes the changes take effect.
    #[command(after_help = exit::help())]
    Fix {
        /// Config file, as for `run`: its facts file, journal_dir and allow_fix.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        mode: FixModeArgs,
        /// With --apply: write only while the plan is still this one (the digest --plan printed).
        #[arg(long, value_name = "DIGEST", requires = "apply", value_parser = parse_digest)]
        digest: Option<String>,
        /// With --plan: print the plan as JSON.
        #[arg(long, requires = "plan")]
        json: bool,
    },
}

/// `fix`: exactly one of these.
#[derive(Debug, Clone, Copy, clap::Args)]
#[group(required = true, multiple = false)]
struct FixModeArgs {
    /// Print the changes the findings call for, and their digest; change nothing.
    #[arg(long)]
    plan: bool,
    /// Save the old values, write the plan, read it back.
    #[arg(long)]
    apply: bool,
    /// Restore the values the last --apply saved, then remove the backup.
    #[arg(long)]
    undo: bool,
}

/// `--digest`: the plan digest's form.
fn parse_digest(text: &str) -> Result<String, String> {
    if roomready_protocol::fix::valid_fix_digest(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "a plan digest is {} lowercase hex digits, as `fix --plan` prints it",
            roomready_protocol::fix::FIX_DIGEST_LEN
        ))
    }
}

/// `service ...`.
#[derive(Debug, Clone, Subcommand)]
enum ServiceAction {
    /// Register the service for CONFIG (run as administrator).
    Install {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Stop and delete the service.
    Uninstall,
    /// Start the installed service.
    Start,
    /// Stop the running service (it publishes `offline` first).
    Stop,
    /// Run as the service (started by the service manager, not by hand); logs go to
    /// %ProgramData%\roomready\logs.
    Run {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// `--channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ChannelArg {
    Stable,
    Beta,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    // Read while the process is still single-threaded (the only time it is sound on Unix).
    let utc_offset = local_utc_offset();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("roomready-agent: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    let code = match cli.command {
        Command::Service { action } => service(action),
        Command::SelfTest { config } => cli::self_test(&config),
        Command::Update {
            config,
            check,
            version,
            channel,
        } => {
            init_logging("warn");
            let channel = channel.map(|c| match c {
                ChannelArg::Stable => UpdateChannel::Stable,
                ChannelArg::Beta => UpdateChannel::Beta,
            });
            cli::update(&config, check, version, channel)
        }
        Command::Fix {
            config,
            mode,
            digest,
            json,
        } => {
            init_logging("warn");
            let request = if mode.plan {
                cli::FixRequest::Plan { json }
            } else if mode.apply {
                cli::FixRequest::Apply { digest }
            } else {
                cli::FixRequest::Undo
            };
            runtime.block_on(cli::fix(
                &config,
                request,
                roomready_agent::fix::native_registry(),
            ))
        }
        Command::Check {
            facts,
            registry_dump,
            schannel_events,
            schannel_window_days,
            schannel_max_events,
            endpoints,
            resolve,
            timeout,
            ca_file,
            json,
            color,
        } => {
            init_logging("warn");
            let endpoints = probe::dedup(endpoints.into_iter().flat_map(|e| e.0).collect());
            let resolve = match probe::endpoint::resolve_overrides(&resolve, &endpoints) {
                Ok(resolve) => resolve,
                Err(e) => {
                    eprintln!("roomready-agent: --resolve {e}");
                    return ExitCode::from(exit::USAGE);
                }
            };
            let probes = Probes {
                endpoints,
                resolve,
                timeout: std::time::Duration::from_secs(timeout),
                ca_file,
            };
            let output = if json {
                Output::Json
            } else {
                Output::Human {
                    colour: color.enabled(),
                }
            };
            let schannel = cli::SchannelInput {
                export: schannel_events,
                bounds: schannel::Bounds {
                    window_days: schannel_window_days,
                    max_events: usize::try_from(schannel_max_events)
                        .unwrap_or(schannel::Bounds::MAX_EVENTS),
                },
            };
            runtime.block_on(cli::check(
                facts.as_deref(),
                registry_dump.as_deref(),
                &schannel,
                &probes,
                output,
            ))
        }
        Command::Run { config } => {
            init_logging("info");
            // Signal handlers register with the runtime's reactor.
            let shutdown = match runtime.block_on(async { shutdown_signal() }) {
                Ok(shutdown) => shutdown,
                Err(e) => {
                    eprintln!("roomready-agent: cannot install the signal handlers: {e}");
                    return ExitCode::from(exit::SOFTWARE);
                }
            };
            match runtime.block_on(cli::run(&config, utc_offset, shutdown)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("roomready-agent: agent stopped: {e}");
                    exit::SOFTWARE
                }
            }
        }
    };
    ExitCode::from(code)
}

/// `service ...`: Windows only.
#[cfg(not(windows))]
fn service(_action: ServiceAction) -> u8 {
    eprintln!(
        "roomready-agent: service: Windows services exist on Windows only; on Linux run \
         `roomready-agent run --config FILE` under systemd (docs/deploy/roomready-agent.service)"
    );
    exit::USAGE
}

/// `service ...`: the Windows service.
#[cfg(windows)]
fn service(action: ServiceAction) -> u8 {
    let done = match action {
        ServiceAction::Install { config } => windows_service_impl::install(&config)
            .map(|()| println!("service {} installed", windows_service_impl::SERVICE_NAME)),
        ServiceAction::Uninstall => windows_service_impl::uninstall()
            .map(|()| println!("service {} removed", windows_service_impl::SERVICE_NAME)),
        ServiceAction::Start => windows_service_impl::start(),
        ServiceAction::Stop => windows_service_impl::stop(),
        ServiceAction::Run { config } => {
            match windows_service_impl::log_writer() {
                Ok(writer) => {
                    use tracing_subscriber::layer::SubscriberExt as _;
                    use tracing_subscriber::util::SubscriberInitExt as _;
                    tracing_subscriber::registry()
                        .with(log_filter("info"))
                        .with(
                            tracing_subscriber::fmt::layer()
                                .with_ansi(false)
                                .with_writer(writer),
                        )
                        .with(windows_service_impl::EventLog::open())
                        .init();
                }
                Err(e) => {
                    init_logging("info");
                    eprintln!("roomready-agent: {e}");
                }
            }
            windows_service_impl::run(&config, service_daemon)
        }
    };
    match done {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("roomready-agent: {e}");
            exit::SOFTWARE
        }
    }
}

/// The daemon as the service runs it, on its own runtime, until the service manager's stop.
#[cfg(windows)]
fn service_daemon(config: &std::path::Path, stop: tokio::sync::oneshot::Receiver<()>) -> u8 {
    let utc_offset = local_utc_offset();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(%e, "cannot start the async runtime");
            return exit::SOFTWARE;
        }
    };
    let stopped = async {
        let _ = stop.await;
        tracing::info!("stop requested by the service manager");
    };
    match runtime.block_on(cli::run(config, utc_offset, stopped)) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("agent stopped: {e}");
            exit::SOFTWARE
        }
    }
}

fn init_logging(default: &str) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    tracing_subscriber::registry()
        .with(log_filter(default))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(roomready_agent::terminal::stderr_colour()),
        )
        .init();
}

/// What is logged: `RUST_LOG` as a level or a list of `target=level` (e.g. `debug`, or
/// `warn,roomready_agent::link=debug`), else `default`. A `RUST_LOG` that does not parse is
/// said so on stderr and the default used. (A plain target list, not `EnvFilter`'s span and
/// field directives: those need a regex engine, a megabyte of the agent.)
fn log_filter(default: &str) -> tracing_subscriber::filter::Targets {
    let fallback = || {
        default
            .parse()
            .expect("the built-in default log filter parses")
    };
    match std::env::var("RUST_LOG") {
        Ok(text) if !text.trim().is_empty() => text.parse().unwrap_or_else(|e| {
            eprintln!("roomready-agent: RUST_LOG={text:?} ignored ({e}); logging at {default}");
            fallback()
        }),
        _ => fallback(),
    }
}

/// One `--endpoint` value: one endpoint, or Microsoft 365's three.
#[derive(Debug, Clone)]
struct EndpointEntry(Vec<Endpoint>);

fn parse_endpoint(text: &str) -> Result<EndpointEntry, String> {
    probe::parse_entry(text).map(EndpointEntry)
}

/// `--resolve`: checked here, matched against the endpoints once all are parsed.
fn parse_resolve(text: &str) -> Result<String, String> {
    probe::endpoint::parse_resolve(text).map(|_| text.to_owned())
}

/// Whether `check` colours its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    /// When standard output is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => roomready_agent::terminal::stdout_colour(),
        }
    }
}

/// The local time's offset from UTC in seconds now (0, with a warning, when it cannot be read):
/// the maintenance window is local time. Daylight-saving changes apply from the next start.
fn local_utc_offset() -> i32 {
    match time::UtcOffset::current_local_offset() {
        Ok(offset) => offset.whole_seconds(),
        Err(_) => {
            eprintln!("roomready-agent: the local time zone cannot be read; times are UTC");
            0
        }
    }
}

/// Completes on SIGINT or SIGTERM (Ctrl-C on Windows).
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
                _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
