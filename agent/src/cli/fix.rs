//! `roomready-agent fix`: the repair of [`crate::fix`] from the command line — print the plan,
//! apply it, or undo it — with the daemon's config (its facts file, its state directory,
//! `allow_fix`) and the registry handed in (the live one on Windows; tests hand in a
//! [`crate::facts::registry::write::MemoryRegistry`]).

use std::path::Path;
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::exit;
use crate::facts::registry::Registry;
use crate::facts::registry::write::RegistryWrite;
use crate::facts::{AppSource, FactsError, FactsFile, FactsSource, HostFacts};
use crate::fix::{self, FixEnv};

/// What `fix` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixRequest {
    /// Print the plan (`--plan`), as JSON with `json`.
    Plan { json: bool },
    /// Write it (`--apply`), only while it is the plan with `digest` when one is given.
    Apply { digest: Option<String> },
    /// Restore the backup (`--undo`).
    Undo,
}

/// `fix` with the config at `config_path`, on `registry` (`None`: there is no registry here).
/// Prints the plan or what was done; the exit code says how it went ([`crate::exit`]).
pub async fn fix(
    config_path: &Path,
    request: FixRequest,
    registry: Option<Arc<dyn RegistryWrite>>,
) -> u8 {
    let config = match super::load_config(config_path) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let Some(registry) = registry else {
        eprintln!(
            "roomready-agent: fix changes the Windows registry, and there is none here: run it \
             on the device (`roomready-agent check --registry-dump` assesses a dump anywhere)"
        );
        return exit::USAGE;
    };
    let env = FixEnv::new(Arc::clone(&registry), &config, config_path);
    let digest = match request {
        FixRequest::Undo => {
            return match fix::undo(&env) {
                Ok(undone) => {
                    println!("{}", undone.message());
                    exit::REBOOT_NEEDED
                }
                Err(e) => {
                    eprintln!("roomready-agent: fix --undo: {e}");
                    e.exit_code()
                }
            };
        }
        FixRequest::Plan { .. } => None,
        FixRequest::Apply { ref digest } => digest.clone(),
    };
    let facts = match facts_source(&config, registry).collect().await {
        Ok(facts) => facts,
        Err(FactsError::File(e)) => return super::facts_failed(&e),
    };
    if let FixRequest::Plan { json } = request {
        let plan = env.plan(&facts);
        if json {
            println!("{}", plan.to_json(env.allowed));
        } else {
            println!("{}", plan.message(env.allowed));
            if !plan.is_empty() {
                println!(
                    "apply: roomready-agent fix --apply --config {} --digest {}{}",
                    config_path.display(),
                    plan.digest,
                    if env.allowed {
                        ""
                    } else {
                        " (after setting allow_fix = true in that file)"
                    }
                );
            }
        }
        return exit::READY;
    }
    match fix::apply(&env, &facts, digest.as_deref(), SystemClock.now()) {
        Ok(applied) => {
            println!("{}", applied.message());
            if applied.plan.is_empty() {
                exit::READY
            } else {
                exit::REBOOT_NEEDED
            }
        }
        Err(e) => {
            eprintln!("roomready-agent: fix --apply: {e}");
            e.exit_code()
        }
    }
}

/// The device's facts as the daemon reads them (its facts file over the registry), with the
/// registry the fix writes: the kind and OS build decide which rules apply.
fn facts_source(config: &Config, registry: Arc<dyn RegistryWrite>) -> HostFacts {
    let registry: Arc<dyn Registry> = registry;
    #[cfg(windows)]
    let app = AppSource::Query(crate::facts::appx::AppxQuery::powershell(
        crate::facts::appx::DEFAULT_TIMEOUT,
    ));
    #[cfg(not(windows))]
    let app = AppSource::Unavailable(
        "not read: PowerShell runs on Windows only; state app_version in the facts file".into(),
    );
    HostFacts::new(
        registry,
        "registry",
        app,
        config.facts_file.as_deref().map(FactsFile::new),
    )
}
