//! What happens around the restart into a new version, kept in two small files in the journal
//! directory so that a kill at any moment leaves a runnable agent and an answer for the
//! controller:
//!
//! - `update-trial.json`, written by the old agent after the swap: the next start is a *trial*.
//!   Each start counts an attempt; the new agent confirms itself (`healthy`) once it is connected
//!   and its first state was delivered, and then removes the file. If it has not done so within
//!   the health timeout, or a start finds the attempts used up (it crashed before), it restores
//!   the previous binary and exits for the service manager to start that one.
//! - `update-result.json`, written just before such a rollback: the outcome for the binary that
//!   runs next (the previous one) to report (`rolled_back` event, `failed` answer).
//!
//! Both files are replaced atomically (temporary file, fsync, rename).

use std::path::{Path, PathBuf};

use roomready_protocol::{EventBody, ResponseStatus, UpdateStage};
use serde::{Deserialize, Serialize};

use crate::command::ledger::Answer;

/// The trial marker's file name.
pub const TRIAL_FILE: &str = "update-trial.json";
/// The rollback outcome's file name.
pub(crate) const RESULT_FILE: &str = "update-result.json";
/// Starts allowed to a new version before it is rolled back.
pub const MAX_ATTEMPTS: u32 = 3;

/// A new version on trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// The `update` command to answer at the end, if a command started it.
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    /// The binary that was replaced, and where its previous version is kept.
    pub binary: PathBuf,
    pub prev: PathBuf,
    /// Starts of the new version so far.
    pub attempts: u32,
}

/// The outcome of a trial that ended in a rollback, for the previous version to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolledBack {
    pub request_id: Option<String>,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// Why a trial file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{path}: cannot {action}: {reason}")]
pub struct TrialError {
    pub path: PathBuf,
    pub action: &'static str,
    pub reason: String,
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), TrialError> {
    use std::io::Write as _;
    let error = |action, reason: String| TrialError {
        path: path.to_owned(),
        action,
        reason,
    };
    let bytes =
        serde_json::to_vec(value).expect("trial records are strings and numbers, which serialize");
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| error("create", e.to_string()))?;
    file.write_all(&bytes)
        .map_err(|e| error("write", e.to_string()))?;
    file.sync_all().map_err(|e| error("sync", e.to_string()))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| error("rename", e.to_string()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, TrialError> {
    match crate::files::read(path, crate::files::STATE) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| TrialError {
                path: path.to_owned(),
                action: "parse",
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TrialError {
            path: path.to_owned(),
            action: "read",
            reason: e.to_string(),
        }),
    }
}

fn remove(path: &Path) -> Result<(), TrialError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(TrialError {
            path: path.to_owned(),
            action: "remove",
            reason: e.to_string(),
        }),
    }
}

impl Trial {
    /// Makes the next start a trial.
    pub fn write(&self, dir: &Path) -> Result<(), TrialError> {
        write_json(&dir.join(TRIAL_FILE), self)
    }

    /// The trial in `dir`, if any.
    pub fn read(dir: &Path) -> Result<Option<Trial>, TrialError> {
        read_json(&dir.join(TRIAL_FILE))
    }

    /// The trial is over (confirmed or rolled back).
    pub fn finish(dir: &Path) -> Result<(), TrialError> {
        remove(&dir.join(TRIAL_FILE))
    }
}

impl RolledBack {
    pub fn write(&self, dir: &Path) -> Result<(), TrialError> {
        write_json(&dir.join(RESULT_FILE), self)
    }

    /// The `rolled_back` event the restored version publishes.
    pub fn event(&self) -> EventBody {
        EventBody::UpdateProgress {
            stage: UpdateStage::RolledBack,
            version: Some(self.to.clone()),
            percent: None,
            reason: Some(self.reason.clone()),
        }
    }

    /// The `failed` (`rolled_back`) answer owed to the `update` request that started the trial,
    /// if a request did.
    pub fn answer(&self) -> Option<Answer> {
        self.request_id.as_ref().map(|id| Answer {
            id: id.clone(),
            status: ResponseStatus::Failed,
            reason: Some("rolled_back".into()),
            message: Some(format!("{}; back on {}", self.reason, self.from)),
        })
    }

    /// Takes the outcome left by a rollback (reading and removing it).
    pub fn take(dir: &Path) -> Result<Option<RolledBack>, TrialError> {
        let path = dir.join(RESULT_FILE);
        let outcome = read_json(&path)?;
        if outcome.is_some() {
            remove(&path)?;
        }
        Ok(outcome)
    }
}

/// What a start finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// No update in progress.
    Normal,
    /// This start is attempt `trial.attempts` of a new version.
    Trial(Trial),
    /// The attempts were used up: the previous binary is back; exit and let it start.
    RolledBack(RolledBack),
}

/// Counts this start against a pending trial in `dir`, rolling back when the attempts are used
/// up. Call it first thing, before anything that could crash.
pub fn begin(dir: &Path) -> Result<Start, TrialError> {
    let Some(mut trial) = Trial::read(dir)? else {
        return Ok(Start::Normal);
    };
    trial.attempts += 1;
    if trial.attempts > MAX_ATTEMPTS {
        let reason = format!(
            "{} did not confirm itself in {MAX_ATTEMPTS} starts",
            trial.to
        );
        return roll_back(dir, &trial, reason).map(Start::RolledBack);
    }
    trial.write(dir)?;
    Ok(Start::Trial(trial))
}

/// Restores the previous binary of `trial`, records the outcome for it to report, and ends the
/// trial. The binary is replaced by a rename, so a kill leaves the old or the new one, whole.
pub fn roll_back(dir: &Path, trial: &Trial, reason: String) -> Result<RolledBack, TrialError> {
    let error = |action, reason: String| TrialError {
        path: trial.binary.clone(),
        action,
        reason,
    };
    let staged = trial.binary.with_extension("rollback.tmp");
    std::fs::copy(&trial.prev, &staged).map_err(|e| {
        error(
            "stage the previous binary",
            format!("{}: {e}", trial.prev.display()),
        )
    })?;
    std::fs::rename(&staged, &trial.binary)
        .map_err(|e| error("restore the previous binary", e.to_string()))?;
    let outcome = RolledBack {
        request_id: trial.request_id.clone(),
        from: trial.from.clone(),
        to: trial.to.clone(),
        reason,
    };
    outcome.write(dir)?;
    Trial::finish(dir)?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(dir: &Path) -> Trial {
        let binary = dir.join("roomready-agent");
        let prev = dir.join("roomready-agent.prev");
        std::fs::write(&binary, b"new").expect("write new");
        std::fs::write(&prev, b"old").expect("write old");
        Trial {
            request_id: Some("u-1".into()),
            from: "0.1.0".into(),
            to: "0.2.0".into(),
            binary,
            prev,
            attempts: 0,
        }
    }

    #[test]
    fn starts_are_counted_and_the_last_one_rolls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(begin(dir.path()).expect("begin"), Start::Normal);
        let t = trial(dir.path());
        t.write(dir.path()).expect("write");
        for attempt in 1..=MAX_ATTEMPTS {
            match begin(dir.path()).expect("begin") {
                Start::Trial(t) => assert_eq!(t.attempts, attempt),
                other => panic!("attempt {attempt}: {other:?}"),
            }
        }
        let Start::RolledBack(outcome) = begin(dir.path()).expect("begin") else {
            panic!("the fourth start rolls back")
        };
        assert_eq!(outcome.request_id.as_deref(), Some("u-1"));
        assert!(
            outcome.reason.contains("did not confirm itself"),
            "{}",
            outcome.reason
        );
        assert_eq!(std::fs::read(&t.binary).expect("binary"), b"old");
        assert_eq!(Trial::read(dir.path()).expect("read"), None);
        assert_eq!(RolledBack::take(dir.path()).expect("take"), Some(outcome));
        assert_eq!(RolledBack::take(dir.path()).expect("take again"), None);
        assert_eq!(begin(dir.path()).expect("begin"), Start::Normal);
    }

    #[test]
    fn a_rollback_owes_an_event_and_the_request_a_failed_answer() {
        let outcome = RolledBack {
            request_id: Some("u-1".into()),
            from: "0.1.0".into(),
            to: "0.2.0".into(),
            reason: "0.2.0 did not confirm itself".into(),
        };
        assert_eq!(
            outcome.event(),
            EventBody::UpdateProgress {
                stage: UpdateStage::RolledBack,
                version: Some("0.2.0".into()),
                percent: None,
                reason: Some("0.2.0 did not confirm itself".into()),
            }
        );
        let answer = outcome.answer().expect("a request to answer");
        assert_eq!(
            (answer.id.as_str(), answer.status, answer.reason.as_deref()),
            ("u-1", ResponseStatus::Failed, Some("rolled_back"))
        );
        assert!(
            answer
                .message
                .as_deref()
                .is_some_and(|m| m.ends_with("back on 0.1.0")),
            "{answer:?}"
        );
        let scheduled = RolledBack {
            request_id: None,
            ..outcome
        };
        assert_eq!(
            scheduled.answer(),
            None,
            "the scheduled check has no request"
        );
    }

    #[test]
    fn a_confirmed_trial_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        trial(dir.path()).write(dir.path()).expect("write");
        assert!(matches!(begin(dir.path()).expect("begin"), Start::Trial(_)));
        Trial::finish(dir.path()).expect("finish");
        assert_eq!(begin(dir.path()).expect("begin"), Start::Normal);
    }

    #[test]
    fn a_corrupt_marker_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(TRIAL_FILE), b"{\"to\":").expect("write");
        let err = begin(dir.path()).expect_err("corrupt");
        assert!(err.to_string().contains(TRIAL_FILE), "{err}");
    }
}
