//! Writing a plan and undoing it, through [`RegistryWrite`].
//!
//! `apply`: the plan is made again from the registry as it is now and, when the caller names
//! the plan it expects, compared by digest; the backup is written (refused when an earlier one
//! is still there); then each value is checked to be still what the plan found, written, and
//! read back. When a write or a read-back fails, the values written so far are restored from
//! the backup and read back in turn; only when that worked is the backup removed.
//!
//! `undo`: the backup is read and checked first (nothing is written when it is not valid);
//! then each value is restored (a value that was absent is deleted) and read back, last change
//! first. A value that is no longer what the fix wrote is restored all the same, and said so.
//! The backup is removed only when every value was restored.

use std::path::{Path, PathBuf};

use roomready_protocol::Timestamp;

use super::backup::{self, Backup};
use super::plan::{Plan, hex};
use super::target::Target;
use super::{FixEnv, FixError};
use crate::facts::registry::write::RegistryWrite;
use crate::facts::{Fact, Facts};

/// What an `apply` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The plan written (empty: nothing to change, nothing written, no backup).
    pub plan: Plan,
    /// The backup holding the old values, for `undo`.
    pub backup: Option<PathBuf>,
}

impl Applied {
    /// For the command's answer and the command line.
    pub fn message(&self) -> String {
        if self.plan.is_empty() {
            return format!(
                "nothing to change (plan {}): no finding fix repairs is present",
                self.plan.digest
            );
        }
        let count = self.plan.changes.len();
        let mut text = format!(
            "wrote and read back {count} value{} of plan {}; restart needed: {}",
            if count == 1 { "" } else { "s" },
            self.plan.digest,
            self.plan.restart().join("; ")
        );
        if let Some(backup) = &self.backup {
            text.push_str(&format!(
                "; the old values are in {} (fix --undo restores them)",
                backup.display()
            ));
        }
        for change in &self.plan.changes {
            text.push('\n');
            text.push_str(&change.line());
        }
        text
    }
}

/// What an `undo` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undone {
    /// `HKLM\...\Name (view): 0x1 -> 0x0` (or `-> absent`), one per value, in the order
    /// restored.
    pub restored: Vec<String>,
    /// Values that were no longer what the fix wrote when they were restored.
    pub notes: Vec<String>,
}

impl Undone {
    /// For the command's answer and the command line.
    pub fn message(&self) -> String {
        let count = self.restored.len();
        let mut text = format!(
            "restored and read back {count} value{}; restart needed: restart the device for \
             the old values to take effect",
            if count == 1 { "" } else { "s" }
        );
        for line in self.restored.iter().chain(&self.notes) {
            text.push('\n');
            text.push_str(line);
        }
        text
    }
}

/// A write or read-back that failed, and what became of the values written before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{failure}; {}", outcome(.restore_errors, .backup))]
pub struct WriteFailure {
    /// What failed: the write, or the value read back.
    pub failure: String,
    /// The restores that failed in turn (none: everything written was put back).
    pub restore_errors: Vec<String>,
    /// The backup, kept when something could not be restored.
    pub backup: PathBuf,
}

fn outcome(restore_errors: &[String], backup: &Path) -> String {
    if restore_errors.is_empty() {
        "every value written before it was restored and read back, and the backup removed: \
         the registry is as it was"
            .to_owned()
    } else {
        format!(
            "restoring failed too ({}): the backup {} stays; run `roomready-agent fix --undo` \
             once the cause is fixed",
            restore_errors.join("; "),
            backup.display()
        )
    }
}

/// The plan for `facts` with their TLS settings read from `env`'s registry now.
pub(crate) fn current_plan(env: &FixEnv, facts: &Facts) -> Plan {
    let facts = Facts {
        tls: Fact::Known {
            value: crate::facts::registry::read_tls_settings(env.registry.as_ref()),
            source: crate::facts::Source::new("registry (as the fix reads and writes it)"),
        },
        ..facts.clone()
    };
    Plan::new(&facts)
}

/// Writes the plan for `facts` (see the module documentation); `expected`: the digest the
/// caller saw, refused with [`FixError::PlanChanged`] when the plan is another one now.
pub fn apply(
    env: &FixEnv,
    facts: &Facts,
    expected: Option<&str>,
    now: Timestamp,
) -> Result<Applied, FixError> {
    env.check_allowed()?;
    let plan = current_plan(env, facts);
    if let Some(expected) = expected
        && expected != plan.digest
    {
        return Err(FixError::PlanChanged {
            expected: expected.to_owned(),
            plan: Box::new(plan),
        });
    }
    if plan.is_empty() {
        return Ok(Applied { plan, backup: None });
    }
    let path = backup::path(&env.state_dir);
    if !backup::create(&path, &Backup::of(&plan, now))? {
        let created = backup::describe(&path);
        return Err(FixError::BackupExists { path, created });
    }
    let registry = env.registry.as_ref();
    for (done, change) in plan.changes.iter().enumerate() {
        let target = change.target;
        // `touched`: the failure came from writing this value (not from finding it changed
        // by someone else, which is left as they made it).
        let written = check_unchanged(registry, target, change.old)
            .map_err(|failure| (failure, false))
            .and_then(|()| {
                write(registry, target, Some(change.new)).map_err(|failure| (failure, true))
            });
        if let Err((failure, touched)) = written {
            // What was written, this one too when its write landed otherwise.
            let end = if touched { done + 1 } else { done };
            let restore_errors: Vec<String> = plan.changes[..end]
                .iter()
                .rev()
                .filter(|c| check_unchanged(registry, c.target, c.old).is_err())
                .filter_map(|c| write(registry, c.target, c.old).err())
                .collect();
            if restore_errors.is_empty() {
                backup::remove(&path)?;
            }
            return Err(FixError::Write(WriteFailure {
                failure,
                restore_errors,
                backup: path,
            }));
        }
    }
    Ok(Applied {
        plan,
        backup: Some(path),
    })
}

/// Restores the values the backup in `env`'s state directory holds (see the module
/// documentation).
pub fn undo(env: &FixEnv) -> Result<Undone, FixError> {
    env.check_allowed()?;
    let path = backup::path(&env.state_dir);
    let Some(saved) = backup::load(&path)? else {
        return Err(FixError::NoBackup { path });
    };
    let targets = saved.targets(&path)?;
    let registry = env.registry.as_ref();
    let mut restored = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    for (entry, target) in saved.values.iter().zip(targets).rev() {
        let now = registry.dword(&target.key(), target.name());
        if now.known() != Some(&entry.new) {
            notes.push(format!(
                "note: {} ({}) was {}, not {} as the fix wrote it; restored all the same",
                target.path(),
                target.view().name(),
                describe(&now),
                hex(Some(entry.new))
            ));
        }
        match write(registry, target, entry.old) {
            Ok(()) => restored.push(format!(
                "{} ({}): {} -> {}",
                target.path(),
                target.view().name(),
                describe(&now),
                hex(entry.old)
            )),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(FixError::UndoFailed {
            errors,
            backup: path,
        });
    }
    backup::remove(&path)?;
    Ok(Undone { restored, notes })
}

/// `0x1`, `absent` or `unreadable (why)`.
fn describe(fact: &Fact<u32>) -> String {
    match fact {
        Fact::Known { value, .. } => hex(Some(*value)),
        Fact::Absent { .. } => hex(None),
        Fact::Unreadable { reason, .. } => format!("unreadable ({reason})"),
    }
}

/// Fails when `target` is no longer `expected` (someone changed it since the plan was made).
fn check_unchanged(
    registry: &dyn RegistryWrite,
    target: Target,
    expected: Option<u32>,
) -> Result<(), String> {
    let now = registry.dword(&target.key(), target.name());
    let same = match (&now, expected) {
        (Fact::Known { value, .. }, Some(want)) => *value == want,
        (Fact::Absent { .. }, None) => true,
        _ => false,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "{} ({}) changed while the fix ran: it is {}, the plan found {}",
            target.path(),
            target.view().name(),
            describe(&now),
            hex(expected)
        ))
    }
}

/// Sets `target` to `value` (deletes it for `None`) and reads it back.
fn write(registry: &dyn RegistryWrite, target: Target, value: Option<u32>) -> Result<(), String> {
    let (key, name) = (target.key(), target.name());
    match value {
        Some(value) => registry.set_dword(&key, name, value),
        None => registry.delete_value(&key, name),
    }
    .map_err(|e| e.to_string())?;
    let back = registry.dword(&key, name);
    let right = match (&back, value) {
        (Fact::Known { value: read, .. }, Some(want)) => *read == want,
        (Fact::Absent { .. }, None) => true,
        _ => false,
    };
    if right {
        Ok(())
    } else {
        Err(format!(
            "{} ({}) reads back as {} after writing {}",
            target.path(),
            target.view().name(),
            describe(&back),
            hex(value)
        ))
    }
}
