//! What the agent remembers about commands across restarts: the request ids of the commands it
//! ran, with the answer and when, so that a redelivered request (a QoS 1 duplicate, a session
//! the broker kept, a controller's retry, even after a restart) is answered again but never run
//! twice; the report interval a `set_interval` command set; and the running total of records the
//! journal's bound dropped.
//!
//! "Never twice" is bounded by time, not by count: an id is remembered for [`REMEMBER_FOR`],
//! longer than the [`crate::link::SESSION_EXPIRY`] an MQTT 5 broker may hold a queued command,
//! and at most [`CAPACITY`] are remembered at once. When that many commands ran within the
//! window, [`Ledger::full`] says so and the caller refuses new ones rather than forget one that
//! could still come back. Commands rejected without running are not remembered: judged again,
//! they get the same answer.
//!
//! Stored as one small JSON file, `commands.json` in the journal directory, rewritten atomically
//! (temporary file, fsync, rename) before a command runs: a crash after the write and before the
//! command ran means it does not run at all, never twice. A file that cannot be parsed is set
//! aside (renamed `.corrupt`) and reported, never fatal.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use roomready_protocol::{ResponseStatus, Timestamp};
use serde::{Deserialize, Serialize};

/// Most command ids remembered at once.
pub(crate) const CAPACITY: usize = 1024;
/// How long a command id is remembered after it ran: a day, the MQTT 5 session expiry, and an
/// hour for clocks and retries.
pub(crate) const REMEMBER_FOR: std::time::Duration =
    std::time::Duration::from_secs(crate::link::SESSION_EXPIRY.as_secs() + 3600);
/// The file's name in the journal directory.
pub(crate) const FILE_NAME: &str = "commands.json";

/// The answer given to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub id: String,
    pub status: ResponseStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One command that ran, and when its answer was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Ran {
    #[serde(flatten)]
    answer: Answer,
    /// Unix milliseconds; absent in files of earlier versions, read as "when the file was opened".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at_ms: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval_secs: Option<u64>,
    /// Records the journal's bound has dropped, ever (for `records_dropped` notices).
    #[serde(default)]
    dropped_total: u64,
    /// Oldest first.
    #[serde(default)]
    answered: VecDeque<Ran>,
}

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("command ledger {path}: cannot {action}: {source}")]
pub struct LedgerError {
    pub path: PathBuf,
    pub action: &'static str,
    #[source]
    pub source: std::io::Error,
}

/// Answered command ids and the persisted interval.
#[derive(Debug)]
pub struct Ledger {
    /// `None`: kept in memory only (simulated devices).
    path: Option<PathBuf>,
    stored: Stored,
}

impl Ledger {
    /// A ledger that lives only as long as the process.
    pub fn memory() -> Ledger {
        Ledger {
            path: None,
            stored: Stored::default(),
        }
    }

    /// Opens `dir/commands.json` (a missing file is an empty ledger) at `now`. Returns a warning
    /// when the file was unreadable as JSON and was set aside.
    pub fn open(dir: &Path, now: Timestamp) -> Result<(Ledger, Option<String>), LedgerError> {
        let path = dir.join(FILE_NAME);
        let error = |action, source| LedgerError {
            path: path.clone(),
            action,
            source,
        };
        let (stored, warning) = match crate::files::read(&path, crate::files::STATE) {
            Ok(bytes) => match serde_json::from_slice::<Stored>(&bytes) {
                Ok(stored) => (stored, None),
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    std::fs::rename(&path, &aside).map_err(|e| error("set aside", e))?;
                    let warning = format!(
                        "{} was not valid ({e}); moved to {} and started empty",
                        path.display(),
                        aside.display()
                    );
                    (Stored::default(), Some(warning))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Stored::default(), None),
            Err(e) => return Err(error("read", e)),
        };
        let mut ledger = Ledger {
            path: Some(path),
            stored,
        };
        for ran in &mut ledger.stored.answered {
            ran.at_ms.get_or_insert(now.unix_ms());
        }
        ledger.forget_before(now);
        Ok((ledger, warning))
    }

    /// The answer given to command `id`, if it ran within [`REMEMBER_FOR`] of `now`.
    pub fn answered(&self, id: &str, now: Timestamp) -> Option<&Answer> {
        let since = since(now);
        self.stored
            .answered
            .iter()
            .find(|r| r.answer.id == id && r.at_ms.unwrap_or(0) >= since)
            .map(|r| &r.answer)
    }

    /// Whether [`CAPACITY`] commands ran within [`REMEMBER_FOR`] of `now`: another could not be
    /// remembered without forgetting one that may still be redelivered.
    pub fn full(&self, now: Timestamp) -> bool {
        let since = since(now);
        self.stored
            .answered
            .iter()
            .filter(|r| r.at_ms.unwrap_or(0) >= since)
            .count()
            >= CAPACITY
    }

    /// Remembers that command `answer.id` ran at `now` with this answer (persisted before this
    /// returns). Forgets what is older than [`REMEMBER_FOR`]; past [`CAPACITY`] (the caller
    /// checks [`Ledger::full`] first), the oldest.
    pub fn record(&mut self, answer: Answer, now: Timestamp) -> Result<(), LedgerError> {
        self.forget_before(now);
        self.stored.answered.retain(|r| r.answer.id != answer.id);
        while self.stored.answered.len() >= CAPACITY {
            self.stored.answered.pop_front();
        }
        self.stored.answered.push_back(Ran {
            answer,
            at_ms: Some(now.unix_ms()),
        });
        self.save()
    }

    /// Drops what ran more than [`REMEMBER_FOR`] before `now`.
    fn forget_before(&mut self, now: Timestamp) {
        let since = since(now);
        self.stored
            .answered
            .retain(|r| r.at_ms.unwrap_or(0) >= since);
    }

    /// The interval set by `set_interval`, if any.
    pub(crate) fn interval_secs(&self) -> Option<u64> {
        self.stored.interval_secs
    }

    /// Remembers the interval (persisted with the next [`Ledger::record`] or now).
    pub(crate) fn set_interval_secs(&mut self, seconds: u64) -> Result<(), LedgerError> {
        self.stored.interval_secs = Some(seconds);
        self.save()
    }

    /// Records the journal's bound dropped, ever.
    pub(crate) fn dropped_total(&self) -> u64 {
        self.stored.dropped_total
    }

    /// Adds `count` records dropped by the journal's bound; returns the new total (kept across
    /// restarts).
    pub(crate) fn add_dropped(&mut self, count: u64) -> Result<u64, LedgerError> {
        self.stored.dropped_total = self.stored.dropped_total.saturating_add(count);
        self.save().map(|()| self.stored.dropped_total)
    }

    fn save(&self) -> Result<(), LedgerError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let error = |action, source| LedgerError {
            path: path.clone(),
            action,
            source,
        };
        let bytes = serde_json::to_vec(&self.stored)
            .expect("the ledger is strings and numbers, which always serialize");
        let tmp = path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp).map_err(|e| error("create", e))?;
        file.write_all(&bytes).map_err(|e| error("write", e))?;
        file.sync_all().map_err(|e| error("sync", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| error("rename", e))?;
        if let Some(dir) = path.parent()
            && let Ok(dir) = std::fs::File::open(dir)
        {
            // Makes the rename durable; not possible (nor needed) on every platform.
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

/// The earliest time (Unix ms) still remembered at `now`.
fn since(now: Timestamp) -> u64 {
    let window = u64::try_from(REMEMBER_FOR.as_millis()).unwrap_or(u64::MAX);
    now.unix_ms().saturating_sub(window)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: &str) -> Answer {
        Answer {
            id: id.into(),
            status: ResponseStatus::Succeeded,
            reason: None,
            message: None,
        }
    }

    fn at(hours: u64) -> Timestamp {
        Timestamp::from_unix_ms(1_800_000_000_000 + hours * 3_600_000)
    }

    #[test]
    fn answers_and_interval_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut ledger, warning) = Ledger::open(dir.path(), at(0)).expect("open");
        assert!(warning.is_none());
        assert!(ledger.answered("c-1", at(0)).is_none());
        ledger.record(answer("c-1"), at(0)).expect("record");
        ledger.set_interval_secs(60).expect("interval");
        let (ledger, _) = Ledger::open(dir.path(), at(1)).expect("reopen");
        assert_eq!(ledger.answered("c-1", at(1)), Some(&answer("c-1")));
        assert_eq!(ledger.interval_secs(), Some(60));
    }

    #[test]
    fn ids_are_remembered_for_the_whole_window_whatever_else_ran() {
        let mut ledger = Ledger::memory();
        ledger.record(answer("first"), at(0)).expect("memory");
        for n in 0..CAPACITY - 1 {
            ledger
                .record(answer(&format!("c-{n}")), at(1))
                .expect("memory");
        }
        // A full window: the first id is still there; nothing more can be remembered.
        assert!(ledger.answered("first", at(24)).is_some());
        assert!(ledger.full(at(24)));
        // Past the window it is forgotten, and room is made.
        assert!(ledger.answered("first", at(26)).is_none());
        assert!(!ledger.full(at(26)));
        ledger.record(answer("late"), at(26)).expect("memory");
        assert!(ledger.answered("c-0", at(26)).is_some());
        assert!(ledger.answered("late", at(26)).is_some());
        // Everything from hour 1 goes at hour 26 + 1.
        assert!(ledger.answered("c-0", at(27)).is_none());
        assert!(ledger.answered("late", at(27)).is_some());
    }

    #[test]
    fn entries_of_an_earlier_version_are_remembered_from_the_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(FILE_NAME),
            br#"{"answered":[{"id":"old","status":"succeeded"}]}"#,
        )
        .expect("write");
        let (ledger, warning) = Ledger::open(dir.path(), at(5)).expect("open");
        assert!(warning.is_none());
        assert!(ledger.answered("old", at(5 + 24)).is_some());
        assert!(ledger.answered("old", at(5 + 26)).is_none());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), b"{\"answered\": [tru").expect("write");
        let (ledger, warning) = Ledger::open(dir.path(), at(0)).expect("open");
        let warning = warning.expect("reported");
        assert!(warning.contains("moved to"), "{warning}");
        assert!(ledger.answered("x", at(0)).is_none());
        assert!(dir.path().join("commands.json.corrupt").exists());
    }
}
