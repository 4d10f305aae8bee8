//! Opt-in repair of the Windows TLS registry values the rules flag: `roomready-agent fix` and
//! the controller's `fix` command.
//!
//! | finding | value (key under HKLM) | views | new value |
//! |---|---|---|---|
//! | `SCHANNEL_TLS12_CLIENT_DISABLED` | `Enabled` (`SYSTEM\...\SCHANNEL\Protocols\TLS 1.2\Client`) | native | 1 |
//! | `SCHANNEL_TLS12_CLIENT_DISABLED_BY_DEFAULT` | `DisabledByDefault` (same key) | native | 0 |
//! | `WINHTTP_TLS12_NOT_DEFAULT` | `DefaultSecureProtocols` (`SOFTWARE\...\Internet Settings\WinHttp`) | native, Wow6432Node | old \| 0x800; 0xA80 where absent |
//! | `DOTNET_TLS12_NOT_DEFAULT` | `SchUseStrongCrypto`, `SystemDefaultTlsVersions` (`SOFTWARE\Microsoft\.NETFramework\v4.0.30319` and `v2.0.50727`) | native, Wow6432Node | 1 |
//!
//! Only values that are wrong change, and only for findings present on the device ([`Plan`]:
//! derived by the rules themselves from the same facts and key paths). `apply` saves every old
//! value first ([`backup`]), writes, reads back ([`apply()`]); `undo` restores the backup.
//! Writing needs `allow_fix = true` in the agent's config ([`settings`]); planning does not, as
//! it changes nothing. Every registry access goes through [`RegistryWrite`], handed in as
//! [`FixEnv::registry`]: the live registry on Windows, a [`MemoryRegistry`] in tests and
//! simulations.
//!
//! [`MemoryRegistry`]: crate::facts::registry::write::MemoryRegistry

mod apply;
mod backup;
mod plan;
pub(crate) mod settings;
mod target;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

pub use apply::{Applied, Undone, WriteFailure, apply, undo};
pub use backup::BackupError;
pub use plan::{Change, Plan};

use crate::exit;
use crate::facts::Facts;
use crate::facts::registry::write::RegistryWrite;

/// What the fix works with: handed in, never reached for.
#[derive(Clone)]
pub struct FixEnv {
    /// The registry it reads the plan from and writes to.
    pub registry: Arc<dyn RegistryWrite>,
    /// The agent's state directory (`journal_dir`): the backup goes there.
    pub state_dir: PathBuf,
    /// `allow_fix`: whether it may write.
    pub allowed: bool,
    /// The config file, named when writing is not allowed.
    pub config: PathBuf,
}

impl std::fmt::Debug for FixEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixEnv")
            .field("state_dir", &self.state_dir)
            .field("allowed", &self.allowed)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FixEnv {
    /// The live registry with `config`'s state directory and `allow_fix` (loaded from
    /// `config_path`); `None` where there is no registry (not Windows).
    pub fn native(config: &crate::config::Config, config_path: &std::path::Path) -> Option<Self> {
        native_registry().map(|registry| FixEnv::new(registry, config, config_path))
    }

    /// `registry` with `config`'s state directory and `allow_fix` (loaded from `config_path`).
    pub fn new(
        registry: Arc<dyn RegistryWrite>,
        config: &crate::config::Config,
        config_path: &std::path::Path,
    ) -> Self {
        FixEnv {
            registry,
            state_dir: config.journal.dir.clone(),
            allowed: config.allow_fix,
            config: config_path.to_owned(),
        }
    }

    fn check_allowed(&self) -> Result<(), FixError> {
        if self.allowed {
            Ok(())
        } else {
            Err(FixError::NotAllowed {
                config: self.config.clone(),
            })
        }
    }

    /// The plan for `facts` with the registry as it is now (read-only; allowed or not).
    pub fn plan(&self, facts: &Facts) -> Plan {
        apply::current_plan(self, facts)
    }

    /// What [`apply()`] would refuse without writing anything: not allowed, the plan is not
    /// `expected`, an earlier backup is there. The plan, when none of these.
    pub fn check_apply(&self, facts: &Facts, expected: &str) -> Result<Plan, FixError> {
        self.check_allowed()?;
        let plan = self.plan(facts);
        if plan.digest != expected {
            return Err(FixError::PlanChanged {
                expected: expected.to_owned(),
                plan: Box::new(plan),
            });
        }
        let path = backup::path(&self.state_dir);
        if !plan.is_empty() && path.exists() {
            let created = backup::describe(&path);
            return Err(FixError::BackupExists { path, created });
        }
        Ok(plan)
    }

    /// What [`undo()`] would refuse without writing anything: not allowed, no backup, a backup
    /// that is not valid.
    pub fn check_undo(&self) -> Result<(), FixError> {
        self.check_allowed()?;
        let path = backup::path(&self.state_dir);
        match backup::load(&path)? {
            Some(_) => Ok(()),
            None => Err(FixError::NoBackup { path }),
        }
    }
}

/// The live registry, where there is one (Windows): what `roomready-agent fix` and the daemon
/// write through.
pub fn native_registry() -> Option<Arc<dyn RegistryWrite>> {
    #[cfg(windows)]
    {
        Some(Arc::new(crate::facts::registry::NativeRegistry))
    }
    #[cfg(not(windows))]
    {
        None
    }
}

/// Why a fix did not happen, or not completely.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// `allow_fix` is not `true`.
    #[error(
        "fix may not write the registry on this device: set allow_fix = true in {} (the agent's \
         config file) to allow it",
        config.display()
    )]
    NotAllowed { config: PathBuf },
    /// The plan is no longer the one the caller saw.
    #[error(
        "the plan changed: {expected} was asked for, the device's plan is now {}; nothing was \
         written (review the new plan, then apply it)",
        plan.digest
    )]
    PlanChanged { expected: String, plan: Box<Plan> },
    /// An earlier apply's backup is still there.
    #[error(
        "an earlier fix's backup {} is still there ({created}): run `roomready-agent fix --undo` \
         to restore the values it holds, or remove the file to keep today's values, before \
         applying again; nothing was written",
        path.display()
    )]
    BackupExists { path: PathBuf, created: String },
    /// `undo` without a backup.
    #[error("there is no fix backup at {}: nothing to undo", path.display())]
    NoBackup { path: PathBuf },
    /// The backup could not be read, written or removed, or is not valid.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// A write or read-back of `apply` failed.
    #[error(transparent)]
    Write(#[from] WriteFailure),
    /// Values of `undo` could not be restored.
    #[error(
        "undo failed for {} value(s): {}; the backup {} stays for another try",
        errors.len(),
        errors.join("; "),
        backup.display()
    )]
    UndoFailed {
        errors: Vec<String>,
        backup: PathBuf,
    },
}

impl FixError {
    /// The `reason` of the command's answer.
    pub fn reason(&self) -> &'static str {
        match self {
            FixError::NotAllowed { .. } => "not_allowed",
            FixError::PlanChanged { .. } => "plan_changed",
            FixError::BackupExists { .. } => "backup_exists",
            FixError::NoBackup { .. } => "no_backup",
            FixError::Backup(BackupError::Invalid { .. }) => "backup_invalid",
            FixError::Backup(BackupError::Io { .. }) => "backup_failed",
            FixError::Write(_) | FixError::UndoFailed { .. } => "write_failed",
        }
    }

    /// Whether nothing ran (the answer is `rejected`), rather than a write that failed
    /// (`failed`).
    pub fn refused(&self) -> bool {
        matches!(
            self,
            FixError::NotAllowed { .. }
                | FixError::PlanChanged { .. }
                | FixError::BackupExists { .. }
                | FixError::NoBackup { .. }
                | FixError::Backup(BackupError::Invalid { .. })
        )
    }

    /// The exit code of `roomready-agent fix`.
    pub fn exit_code(&self) -> u8 {
        match self {
            FixError::NotAllowed { .. } => exit::CONFIG,
            FixError::PlanChanged { .. } | FixError::Backup(BackupError::Invalid { .. }) => {
                exit::DATA_ERROR
            }
            FixError::NoBackup { .. } => exit::NO_INPUT,
            FixError::BackupExists { .. } => exit::CANT_CREATE,
            FixError::Backup(BackupError::Io { .. })
            | FixError::Write(_)
            | FixError::UndoFailed { .. } => exit::IO_ERROR,
        }
    }
}
