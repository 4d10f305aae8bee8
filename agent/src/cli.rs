//! The binary's subcommands as library functions: `check`, `run`, `self-test`, `update` and
//! `fix` (its own module) each take their parsed arguments, print what they print and return
//! their exit code ([`crate::exit`]), so `main.rs` only parses the command line, sets up logging
//! and exits — and the Windows service runs the same [`run`] as the command line.

mod fix;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use roomready_protocol::{DeviceId, Message, Placement, Verdict};

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, UpdateChannel};
use crate::daemon::{AgentError, Stopped};
use crate::facts::registry::{RegDump, RegDumpError};
use crate::facts::{
    AnyFacts, AppSource, Fact, FactsError, FactsFile, FactsSource, HostFacts, Source, schannel,
};
use crate::link::journal::{Journal, JournalError};
use crate::probe::{Endpoint, ProbeSettings, ResolveOverrides, modern, probe_all};
use crate::report::{self, human};
use crate::start::{self, Started};
use crate::update::{self, UpdateSettings};
use crate::{exit, terminal};

pub use fix::{FixRequest, fix};

/// The endpoints `check` probes and how.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    pub endpoints: Vec<Endpoint>,
    pub resolve: ResolveOverrides,
    /// Bound on each probe connection.
    pub timeout: Duration,
    /// Trust anchors for endpoint certificates (PEM); Mozilla's roots when `None`.
    pub ca_file: Option<PathBuf>,
}

/// Where `check` reads Schannel's events: an export, else (on Windows) the live System log,
/// within `bounds`.
#[derive(Debug, Clone)]
pub struct SchannelInput {
    pub export: Option<PathBuf>,
    pub bounds: schannel::Bounds,
}

/// How `check` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The JSON `State` message.
    Json,
    /// The summary tables, coloured or not.
    Human { colour: bool },
}

/// `check`: the daemon's assessment, once, printed; the exit code is the verdict, or why there
/// was none (usage, unreadable or invalid input).
pub async fn check(
    facts_path: Option<&Path>,
    registry_dump: Option<&Path>,
    schannel: &SchannelInput,
    probes: &Probes,
    output: Output,
) -> u8 {
    // A bad export stops `check` before anything else runs, as a bad dump does.
    let export = match &schannel.export {
        Some(path) => match schannel::from_export(path, SystemClock.now(), schannel.bounds) {
            Ok(observations) => Some(observations),
            Err(e) => {
                eprintln!("roomready-agent: {e}");
                return match e {
                    schannel::export::ExportError::Read { .. } => exit::NO_INPUT,
                    _ => exit::DATA_ERROR,
                };
            }
        },
        None => None,
    };
    // The live System log only when no export stands in for it.
    let system_log = export.is_none().then_some(schannel.bounds);
    let source = match check_source(facts_path, registry_dump, system_log) {
        Ok(source) => source,
        Err(code) => return code,
    };
    let mut facts = match source.collect().await {
        Ok(facts) => facts,
        Err(FactsError::File(e)) => return facts_failed(&e),
    };
    if let Some(observations) = export {
        facts.observed = Fact::Known {
            source: Source::new(observations.label.clone()),
            value: observations,
        };
    }
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
    let now = SystemClock.now();
    // `check` reads no config: where the device is belongs to the daemon's state.
    let state = report::state(
        device,
        0,
        now,
        wire,
        assessment,
        endpoints,
        Placement::default(),
    );
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

/// The config at `config_path`, or, after saying what is wrong with it, exit code 78.
fn load_config(config_path: &Path) -> Result<Config, u8> {
    Config::load(config_path).map_err(|e| {
        eprintln!("roomready-agent: bad config: {e}");
        exit::CONFIG
    })
}

/// Says why the facts file failed and gives its exit code: unreadable 66, invalid 65.
fn facts_failed(e: &crate::keyfile::KeyFileError) -> u8 {
    eprintln!("roomready-agent: {e}");
    if e.io.is_some() {
        exit::NO_INPUT
    } else {
        exit::DATA_ERROR
    }
}

/// Where `check` reads facts: a dump (under the facts file), the host (on Windows), or the
/// facts file alone; `Err` with the exit code after printing why.
fn check_source(
    facts: Option<&Path>,
    registry_dump: Option<&Path>,
    system_log: Option<schannel::Bounds>,
) -> Result<AnyFacts, u8> {
    let Some(dump_path) = registry_dump else {
        return AnyFacts::local(facts, system_log).ok_or_else(|| {
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

/// `run`: the daemon with the config at `config_path` until `stop` completes (a signal, or the
/// Windows service manager). A config or start-up problem is printed and becomes its exit code;
/// `Err` only when the agent itself failed.
pub async fn run(
    config_path: &Path,
    utc_offset: i32,
    stop: impl Future<Output = ()>,
) -> Result<u8, AgentError> {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return Ok(code),
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
    match agent.run(stop).await? {
        Stopped::Shutdown => Ok(exit::READY),
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
pub fn self_test(config_path: &Path) -> u8 {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
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
        Err(JournalError::Locked { .. }) => {}
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

/// `update`: check the feed (`channel`, else the config's), then, unless `check_only`, install
/// the newest release or exactly `version`.
pub fn update(
    config_path: &Path,
    check_only: bool,
    version: Option<semver::Version>,
    channel: Option<UpdateChannel>,
) -> u8 {
    let config = match load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut settings = match UpdateSettings::from_config(&config.update, config_path) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("roomready-agent: {e}");
            return e.exit_code();
        }
    };
    if let Some(channel) = channel {
        settings.channel = channel;
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
    let bar = terminal::ProgressBar::new(release.asset.clone());
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
