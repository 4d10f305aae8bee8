//! The start path: what every start of the daemon does before it runs, in one place, for
//! `roomready-agent run`, the Windows service and the simulator's devices alike.
//!
//! 1. [`boot`], first, before anything that could crash: this start is counted against a pending
//!    update trial (a trial out of starts is rolled back, and the restored binary must be started
//!    instead: [`Boot::restart`]), and the outcome of an earlier rollback is taken for this start
//!    to report.
//! 2. [`storage`]: the spool (the journal on disk, or one the caller keeps across its own
//!    restarts) and the command ledger, with what the boot and the opening found for the
//!    controller to hear.
//! 3. [`from_config`]: both for a device from its config file, then the trust anchors, the
//!    broker's TLS, the facts source and the updater: an [`Agent`] ready to run.
//!
//! Errors carry the exit code `run` ends with ([`StartError::exit_code`]).

use std::path::{Path, PathBuf};

use roomready_protocol::EventBody;

use crate::clock::{Clock, SystemClock};
use crate::command::ledger::{Answer, Ledger};
use crate::config::{Config, JournalConfig};
use crate::daemon::{Storage, Updater};
use crate::facts::AnyFacts;
use crate::link::journal::Journal;
use crate::link::outbox::Spool;
use crate::link::tls;
use crate::probe::modern;
use crate::update::UpdateSettings;
use crate::update::trial::{self, RolledBack, Trial};
use crate::{Agent, AgentSettings, exit};

/// What [`boot`] found.
#[derive(Debug, Default)]
pub struct Boot {
    /// This start is attempt `trial.attempts` of a new version.
    pub trial: Option<Trial>,
    /// The new version used up its starts and the previous binary is back: do not run, start
    /// the restored binary instead (a process exits with [`exit::RESTART`]). Why.
    pub restart: Option<String>,
    /// The outcome of a rollback before this start, for this (previous) version to report.
    pub rolled_back: Option<RolledBack>,
}

impl Boot {
    /// What the controller should hear about the boot: the rollback's event, and the answer
    /// owed to the `update` command that started the rolled-back version.
    pub fn report(&self) -> (Vec<EventBody>, Vec<Answer>) {
        match &self.rolled_back {
            Some(outcome) => (
                vec![outcome.event()],
                outcome.answer().into_iter().collect(),
            ),
            None => (Vec::new(), Vec::new()),
        }
    }
}

/// Why the agent did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The config file, or a file it names, is not usable.
    #[error("bad config: {0}")]
    Config(String),
    /// The state directory (the journal's) cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The update trial's files cannot be read or written.
    #[error("update trial: {0}")]
    Trial(#[from] trial::TrialError),
    /// The journal or the command ledger cannot be opened.
    #[error("{0}")]
    Storage(String),
}

impl StartError {
    /// The exit code `roomready-agent run` ends with.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Config(_) => exit::CONFIG,
            StartError::StateDir { .. } | StartError::Trial(_) | StartError::Storage(_) => {
                exit::IO_ERROR
            }
        }
    }
}

/// Step 1, first thing at every start: the update trial in `state_dir` (created if missing).
pub fn boot(state_dir: &Path) -> Result<Boot, StartError> {
    crate::files::create_dir(state_dir).map_err(|source| StartError::StateDir {
        path: state_dir.to_owned(),
        source,
    })?;
    let mut boot = Boot::default();
    match trial::begin(state_dir)? {
        trial::Start::Normal => {}
        trial::Start::Trial(trial) => boot.trial = Some(trial),
        trial::Start::RolledBack(outcome) => {
            // The restored binary's start takes the outcome and reports it.
            boot.restart = Some(outcome.reason);
            return Ok(boot);
        }
    }
    match RolledBack::take(state_dir) {
        Ok(outcome) => boot.rolled_back = outcome,
        // Not reporting an old outcome is no reason not to start.
        Err(e) => tracing::error!(%e, "cannot read the last update's outcome"),
    }
    Ok(boot)
}

/// Step 2: `spool` and the command ledger in `ledger_dir`, with `notices` (what opening the
/// spool found) and what `boot` owes the controller.
pub fn storage(
    spool: Box<dyn Spool>,
    mut notices: Vec<EventBody>,
    ledger_dir: &Path,
    boot: &Boot,
    clock: &impl Clock,
) -> Result<Storage, StartError> {
    let (ledger, warning) =
        Ledger::open(ledger_dir, clock.now()).map_err(|e| StartError::Storage(e.to_string()))?;
    if let Some(warning) = warning {
        tracing::warn!(warning, "command ledger reset");
    }
    let (events, answers) = boot.report();
    notices.extend(events);
    Ok(Storage::Opened {
        spool,
        ledger,
        notices,
        answers,
    })
}

/// The journal on disk as a spool, with a notice when its torn tail was cut off.
pub(crate) fn open_journal(
    journal: &JournalConfig,
) -> Result<(Box<dyn Spool>, Vec<EventBody>), StartError> {
    let (spool, recovery) =
        Journal::open(journal.options()).map_err(|e| StartError::Storage(e.to_string()))?;
    let mut notices = Vec::new();
    if let Some(cut) = recovery.truncated {
        tracing::warn!(%cut, "journal tail was torn or corrupt and has been cut off");
        notices.push(EventBody::JournalRecovered {
            offset: cut.offset,
            discarded_bytes: cut.discarded_bytes,
            reason: cut.reason,
        });
    }
    tracing::info!(
        dir = %journal.dir.display(),
        pending = recovery.records,
        last_seq = spool.last_seq(),
        "journal opened"
    );
    Ok((Box::new(spool), notices))
}

/// What [`from_config`] made.
pub enum Started {
    /// Ready to run.
    Ready(Box<Agent<AnyFacts, SystemClock>>),
    /// See [`Boot::restart`]: the restored binary must start instead (why).
    Restart(String),
}

/// The whole start of a device from its config (loaded from `config_path`): the agent ready to
/// run, or the restart a rollback needs. `utc_offset` is the local time's offset from UTC in
/// seconds, for the automatic updates' window, and reported in the state's placement.
pub fn from_config(
    config: &Config,
    config_path: &Path,
    utc_offset: i32,
) -> Result<Started, StartError> {
    let located = |key: &str, e: &dyn std::fmt::Display| {
        StartError::Config(format!("{}: key \"{key}\": {e}", config_path.display()))
    };
    let roots =
        modern::load_roots(config.ca_file.as_deref()).map_err(|e| located("ca_file", &e))?;
    // Config::load requires facts_file wherever AnyFacts::local needs it.
    let facts = AnyFacts::local(config.facts_file.as_deref(), config.schannel)
        .ok_or_else(|| located("facts_file", &"missing"))?;
    let broker_tls = if config.broker.tls {
        Some(tls::client_config(&config.broker_tls).map_err(|e| located(e.key(), &e))?)
    } else {
        None
    };
    let state_dir = &config.journal.dir;
    let boot = boot(state_dir)?;
    if let Some(reason) = boot.restart {
        return Ok(Started::Restart(reason));
    }
    let (spool, notices) = open_journal(&config.journal)?;
    let storage = storage(spool, notices, state_dir, &boot, &SystemClock)?;
    let mut settings = AgentSettings::from_config(config, roots, broker_tls);
    settings.trial = boot.trial;
    settings.fix = crate::fix::FixEnv::native(config, config_path);
    // The controller's rollout windows are in the device's local time.
    settings.placement.utc_offset_minutes =
        roomready_protocol::UtcOffset::from_seconds(utc_offset).ok();
    if config.update.feed.is_some() {
        match UpdateSettings::from_config(&config.update, config_path) {
            Ok(update) => {
                settings.updater = Some(Updater {
                    settings: update,
                    state_dir: state_dir.clone(),
                    health_timeout: config.update.health_timeout,
                    auto: config.update.auto.map(|window| (window, utc_offset)),
                });
            }
            Err(e) => tracing::warn!(%e, "self-update unavailable"),
        }
    }
    Ok(Started::Ready(Box::new(Agent::with_storage(
        settings,
        facts,
        SystemClock,
        storage,
    ))))
}
