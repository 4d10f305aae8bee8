//! `roomready-controller rollout …`: start, list, show, pause, resume and abort staged rollouts
//! from the command line, in the database the config file names. A running controller carries
//! them out (its runner reads the database every few seconds); the command line only records
//! them, as the API does, logged as `cli:$USER`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use roomready_controller::clock;
use roomready_controller::config::Config;
use roomready_controller::rollouts::plan::PlanRequest;
use roomready_controller::rollouts::transition;
use std::sync::Arc;

use roomready_controller::store::{RolloutLog, Store, StoreError};

use super::exit;

#[derive(Subcommand)]
pub enum RolloutAction {
    /// Start a rollout of the agent's self-update (or the Teams Rooms app update) ring by ring.
    Start {
        /// The controller's config file (its database).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// `agent` (the signed self-update) or `app` (the Teams Rooms app update).
        #[arg(long, default_value = "agent", value_parser = ["agent", "app"])]
        target: String,
        /// For `agent`: the version to install, or `latest`.
        #[arg(long, value_name = "V")]
        version: Option<String>,
        /// RING:CONCURRENCY:GATE_MINUTES, comma-separated, in the order they go (0:2:30,1:10:60).
        #[arg(long)]
        rings: String,
        /// Failures in a ring that halt the rollout when passed: a count or a percentage (10%);
        /// 0 by default.
        #[arg(long, value_name = "N|P%")]
        halt_after: Option<String>,
        /// HH:MM-HH:MM in each device's local time: updates start only inside it.
        #[arg(long, value_name = "HH:MM-HH:MM")]
        window: Option<String>,
    },
    /// List the newest rollouts.
    List {
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Show one rollout as JSON: its plan, state, every device's stage and the log.
    Show {
        id: i64,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Pause a running rollout: nothing new is sent; updates under way are followed.
    Pause {
        id: i64,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Resume a paused rollout.
    Resume {
        id: i64,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Abort a rollout for good.
    Abort {
        id: i64,
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Who the command line is in the rollout's log.
fn by() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn open(config: &Path) -> Result<Arc<dyn Store>, u8> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("roomready-controller: bad config: {e}");
        exit::CONFIG
    })?;
    roomready_controller::open_store(&config).map_err(|e| {
        eprintln!("roomready-controller: database: {e}");
        exit::IO_ERROR
    })
}

fn store_error(e: StoreError) -> u8 {
    eprintln!("roomready-controller: {e}");
    match e {
        StoreError::Invalid(_) => exit::DATA_ERROR,
        _ => exit::IO_ERROR,
    }
}

impl RolloutAction {
    /// The config file every action names.
    fn config(&self) -> &Path {
        match self {
            RolloutAction::Start { config, .. }
            | RolloutAction::List { config }
            | RolloutAction::Show { config, .. }
            | RolloutAction::Pause { config, .. }
            | RolloutAction::Resume { config, .. }
            | RolloutAction::Abort { config, .. } => config,
        }
    }
}

pub fn run(action: RolloutAction) -> u8 {
    // A plan that does not parse is a usage error, before any file is read.
    let plan = match &action {
        RolloutAction::Start {
            target,
            version,
            rings,
            halt_after,
            window,
            ..
        } => {
            let request = PlanRequest {
                target: target.clone(),
                version: version.clone(),
                rings: rings.clone(),
                halt_after: halt_after.clone(),
                window: window.clone(),
            };
            match request.plan() {
                Ok(plan) => Some(plan),
                Err(e) => {
                    eprintln!("roomready-controller: rollout: {e}");
                    return exit::USAGE;
                }
            }
        }
        _ => None,
    };
    let store = match open(action.config()) {
        Ok(store) => store,
        Err(code) => return code,
    };
    match action {
        RolloutAction::Start { .. } => {
            let plan = plan.expect("a start has its plan, parsed above");
            match store.create_rollout(&plan, &by(), clock::now()) {
                Ok(id) => {
                    println!("rollout {id} started");
                    exit::OK
                }
                Err(e) => store_error(e),
            }
        }
        RolloutAction::List { .. } => match store.rollouts() {
            Ok(rollouts) => {
                for r in rollouts {
                    let stages: Vec<String> = r
                        .stages
                        .iter()
                        .filter(|(_, n)| *n > 0)
                        .map(|(s, n)| format!("{} {n}", s.as_str()))
                        .collect();
                    println!(
                        "{}\t{}\t{}\t{}",
                        r.id,
                        r.state.as_str(),
                        r.created_at,
                        stages.join(", ")
                    );
                }
                exit::OK
            }
            Err(e) => store_error(e),
        },
        RolloutAction::Show { id, .. } => match store.rollout(id) {
            Ok(Some(detail)) => {
                match serde_json::to_string_pretty(&detail) {
                    Ok(json) => println!("{json}"),
                    Err(e) => eprintln!("roomready-controller: {e}"),
                }
                exit::OK
            }
            Ok(None) => {
                eprintln!("roomready-controller: there is no rollout {id}");
                exit::DATA_ERROR
            }
            Err(e) => store_error(e),
        },
        RolloutAction::Pause { id, .. } => change(&*store, id, "pause"),
        RolloutAction::Resume { id, .. } => change(&*store, id, "resume"),
        RolloutAction::Abort { id, .. } => change(&*store, id, "abort"),
    }
}

fn change(store: &dyn Store, id: i64, action: &str) -> u8 {
    let detail = match store.rollout(id) {
        Ok(Some(detail)) => detail,
        Ok(None) => {
            eprintln!("roomready-controller: there is no rollout {id}");
            return exit::DATA_ERROR;
        }
        Err(e) => return store_error(e),
    };
    let was = detail.summary.state;
    let (to, verb) = match transition(was, action) {
        Ok(change) => change,
        Err(e) => {
            eprintln!("roomready-controller: rollout {id}: {e}");
            return exit::DATA_ERROR;
        }
    };
    let line = RolloutLog {
        at: clock::now(),
        by: by(),
        action: verb.into(),
        detail: format!("was {}", was.as_str()),
    };
    match store.save_rollout(id, &[], Some((to, None)), &[line], clock::now()) {
        Ok(()) => {
            println!("rollout {id} {verb}");
            exit::OK
        }
        Err(e) => store_error(e),
    }
}
