//! `roomready-agent`: the one-shot `check`, the `run` daemon, `self-test` and the signed
//! `update`, a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::config::Config;
use roomready_agent::daemon::Stopped;
use roomready_agent::facts::registry::{RegDump, RegDumpError};
use roomready_agent::facts::{AnyFacts, AppSource, FactsFile, FactsSource, HostFacts};
use roomready_agent::link::journal::Journal;
use roomready_agent::probe::{self, Endpoint, ProbeSettings, modern, probe_all};
use roomready_agent::report::human;
use roomready_agent::start::{self, Started};
use roomready_agent::{exit, report};
use roomready_protocol::{DeviceId, Message, Verdict};

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
        Command::SelfTest { config } => self_test(&config),
        Command::Update {
            config,
            check,
            version,
            channel,
        } => {
            init_logging("warn");
            update(&config, check, version, channel)
        }
        Command::Check {
            facts,
            registry_dump,
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
            runtime.block_on(check(
                facts.as_deref(),
                registry_dump.as_deref(),
                &probes,
                output,
            ))
        }
        Command::Run { config } => {
            init_logging("info");
            match runtime.block_on(run(&config, utc_offset, None)) {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("roomready-agent: {e:#}");
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
fn service_daemon(config: &Path, stop: tokio::sync::oneshot::Receiver<()>) -> u8 {
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
    match runtime.block_on(run(config, utc_offset, Some(stop))) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
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

/// `check`: the same assessment as the daemon, printed once.
/// The endpoints `check` probes and how.
struct Probes {
    endpoints: Vec<Endpoint>,
    resolve: probe::ResolveOverrides,
    timeout: std::time::Duration,
    ca_file: Option<PathBuf>,
}

/// How `check` prints its result.
#[derive(Debug, Clone, Copy)]
enum Output {
    Json,
    Human { colour: bool },
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

/// Where `check` reads facts: a dump (under the facts file), the host (on Windows), or the
/// facts file alone; `Err` with the exit code after printing why.
fn check_source(facts: Option<&Path>, registry_dump: Option<&Path>) -> Result<AnyFacts, u8> {
    let Some(dump_path) = registry_dump else {
        return AnyFacts::local(facts).ok_or_else(|| {
            eprintln!(
                "roomready-agent: no facts source: pass --facts FILE and/or --registry-dump FILE \
                 (facts are read natively only on Windows)"
            );
            exit::USAGE
        });
    };
    let dump = RegDump::load(dump_path).map_err(|e| {
        eprintln!("roomready-agent: {e}");
        match e {
            RegDumpError::Read { .. } => exit::NO_INPUT,
            RegDumpError::Syntax { .. } => exit::DATA_ERROR,
        }
    })?;
    Ok(AnyFacts::Host(HostFacts::new(
        Arc::new(dump),
        format!("registry dump {}", dump_path.display()),
        AppSource::Unavailable(
            "not read: the facts come from a registry dump; state app_version in the facts \
             file (--facts)"
                .into(),
        ),
        facts.map(FactsFile::new),
    )))
}

async fn check(
    facts_path: Option<&Path>,
    registry_dump: Option<&Path>,
    probes: &Probes,
    output: Output,
) -> u8 {
    let source = match check_source(facts_path, registry_dump) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let facts = match source.collect().await {
        Ok(facts) => facts,
        Err(roomready_agent::facts::FactsError::File(e)) => {
            eprintln!("roomready-agent: {e}");
            return if e.io.is_some() {
                exit::NO_INPUT
            } else {
                exit::DATA_ERROR
            };
        }
    };
    let device = facts
        .device_id
        .clone()
        .unwrap_or_else(|| DeviceId::new("local").expect("\"local\" is a valid device id"));
    let roots = match modern::load_roots(probes.ca_file.as_deref()) {
        Ok(roots) => roots,
        Err(e) => {
            eprintln!("roomready-agent: {e}");
            return match e {
                modern::RootsError::Read { .. } => exit::NO_INPUT,
                modern::RootsError::Invalid(_) => exit::DATA_ERROR,
            };
        }
    };
    let settings = ProbeSettings {
        roots,
        timeout: probes.timeout,
        resolve: Arc::new(probes.resolve.clone()),
    };
    let endpoints = probe_all(&probes.endpoints, &settings, SystemClock.now()).await;
    let rows = human::fact_rows(&facts);
    let (wire, assessment) = report::evaluate(&Ok(facts), &endpoints);
    // `check` publishes nothing, so its state takes no number from the device's sequence.
    let state = report::state(device, 0, SystemClock.now(), wire, assessment, endpoints);
    match output {
        Output::Json => println!("{}", String::from_utf8_lossy(&state.encode())),
        Output::Human { colour } => print!("{}", human::render(&state, &rows, colour)),
    }
    match state.verdict {
        Verdict::Ready => exit::READY,
        Verdict::AtRisk => exit::AT_RISK,
        Verdict::NotReady => exit::NOT_READY,
        Verdict::Unknown => exit::UNKNOWN,
    }
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
        use std::io::IsTerminal as _;
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => roomready_agent::terminal::colour(std::io::stdout().is_terminal()),
        }
    }
}

/// `run`: the daemon until SIGINT/SIGTERM, or until `stop` fires (the Windows service's stop).
async fn run(
    config_path: &Path,
    utc_offset: i32,
    stop: Option<tokio::sync::oneshot::Receiver<()>>,
) -> anyhow::Result<u8> {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roomready-agent: bad config: {e}");
            return Ok(exit::CONFIG);
        }
    };
    let agent = match start::from_config(&config, config_path, utc_offset) {
        Ok(Started::Ready(agent)) => agent,
        Ok(Started::Restart(reason)) => {
            eprintln!(
                "roomready-agent: {reason}; the previous version is restored: restarting into it"
            );
            return Ok(exit::RESTART);
        }
        Err(e) => {
            eprintln!("roomready-agent: {e}");
            return Ok(e.exit_code());
        }
    };
    let stopped = match stop {
        Some(stop) => agent
            .run(async {
                let _ = stop.await;
                tracing::info!("stop requested by the service manager");
            })
            .await
            .context("agent stopped")?,
        None => {
            let shutdown = shutdown_signal().context("installing signal handlers")?;
            agent.run(shutdown).await.context("agent stopped")?
        }
    };
    match stopped {
        Stopped::Shutdown => Ok(0),
        Stopped::Restart => {
            eprintln!(
                "roomready-agent: restarting into another version (exit {}: the service manager starts it again)",
                exit::RESTART
            );
            Ok(exit::RESTART)
        }
    }
}

/// `self-test`: the config loads, the journal opens, the update keys parse.
fn self_test(config_path: &Path) -> u8 {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roomready-agent: bad config: {e}");
            return exit::CONFIG;
        }
    };
    // Config::load has decoded every key; a feed needs at least one.
    if config.update.feed.is_some() && config.update.keys.is_empty() {
        eprintln!(
            "roomready-agent: bad config: {}: key \"update_keys\": missing",
            config_path.display()
        );
        return exit::CONFIG;
    }
    match Journal::open(config.journal.options()) {
        // Dropping it releases the lock.
        Ok((journal, _recovery)) => drop(journal),
        // The running agent holds it: that is the daemon updating itself, and it opened fine.
        Err(roomready_agent::link::journal::JournalError::Locked { .. }) => {}
        Err(e) => {
            eprintln!("roomready-agent: self-test: {e}");
            return exit::IO_ERROR;
        }
    }
    println!(
        "self-test ok: roomready-agent {}, config {}, journal {}, {} update key(s)",
        env!("CARGO_PKG_VERSION"),
        config_path.display(),
        config.journal.dir.display(),
        config.update.keys.len()
    );
    exit::READY
}

/// `update`: check the feed, then (without `--check`) install.
fn update(
    config_path: &Path,
    check_only: bool,
    version: Option<semver::Version>,
    channel: Option<ChannelArg>,
) -> u8 {
    use roomready_agent::config::UpdateChannel;
    use roomready_agent::update::{self, UpdateSettings};
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("roomready-agent: bad config: {e}");
            return exit::CONFIG;
        }
    };
    let mut settings = match UpdateSettings::from_config(&config.update, config_path) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("roomready-agent: {e}");
            return e.exit_code();
        }
    };
    if let Some(channel) = channel {
        settings.channel = match channel {
            ChannelArg::Stable => UpdateChannel::Stable,
            ChannelArg::Beta => UpdateChannel::Beta,
        };
    }
    settings.requested = version;
    let release = match update::check(&settings) {
        Ok(Some(release)) => release,
        Ok(None) => {
            println!(
                "up to date: {} ({} channel)",
                settings.current_version, settings.channel
            );
            return exit::READY;
        }
        Err(e) => {
            eprintln!("roomready-agent: {e}");
            return e.exit_code();
        }
    };
    if check_only {
        println!(
            "{} available ({} channel; running {})",
            release.version, settings.channel, settings.current_version
        );
        return exit::READY;
    }
    let bar = ProgressBar::new(release.asset.clone());
    match update::install(&settings, &release, move |done, total| {
        bar.draw(done, total)
    }) {
        Ok(installed) => {
            eprintln!();
            println!(
                "installed {} over {} (previous binary kept as {})",
                installed.version,
                settings.current_version,
                installed.prev.display()
            );
            exit::READY
        }
        Err(e) => {
            eprintln!("roomready-agent: update refused: {e}");
            e.exit_code()
        }
    }
}

/// A one-line download progress bar on standard error, drawn only when it is a terminal.
struct ProgressBar {
    label: String,
    enabled: bool,
}

impl ProgressBar {
    fn new(label: String) -> Self {
        use std::io::IsTerminal as _;
        ProgressBar {
            label,
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn draw(&self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        const WIDTH: u64 = 30;
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let line = match total {
            Some(total) if total > 0 => {
                let filled = (done.min(total) * WIDTH / total) as usize;
                format!(
                    "\r{} [{}{}] {:.1}/{:.1} MiB",
                    self.label,
                    "#".repeat(filled),
                    " ".repeat(WIDTH as usize - filled),
                    mib(done),
                    mib(total)
                )
            }
            _ => format!("\r{} {:.1} MiB", self.label, mib(done)),
        };
        eprint!("{line}");
    }
}

/// Opens the journal and the command ledger in `journal.dir`; what recovery found becomes an
/// event for the controller.
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
