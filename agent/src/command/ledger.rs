//! What the agent remembers about commands across restarts: the request ids it answered, with
//! the answer, so that a redelivered request (a QoS 1 duplicate, even after a restart) is answered
//! again but executed once; the report interval a `set_interval` command set; and the running
//! total of records the journal's bound dropped.
//!
//! Stored as one small JSON file, `commands.json` in the journal directory, rewritten atomically
//! (temporary file, fsync, rename) before a command runs: a crash after the write and before the
//! command ran means it does not run at all, never twice. The newest [`CAPACITY`] ids are kept.
//! A file that cannot be parsed is set aside (renamed `.corrupt`) and reported, never fatal.

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use roomready_protocol::ResponseStatus;
use serde::{Deserialize, Serialize};

/// How many answered ids are remembered.
pub const CAPACITY: usize = 256;
/// The file's name in the journal directory.
pub const FILE_NAME: &str = "commands.json";

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

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    interval_secs: Option<u64>,
    /// Records the journal's bound has dropped, ever (for `records_dropped` notices).
    #[serde(default)]
    dropped_total: u64,
    #[serde(default)]
    answered: VecDeque<Answer>,
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

    /// Opens `dir/commands.json` (a missing file is an empty ledger). Returns a warning when the
    /// file was unreadable as JSON and was set aside.
    pub fn open(dir: &Path) -> Result<(Ledger, Option<String>), LedgerError> {
        let path = dir.join(FILE_NAME);
        let error = |action, source| LedgerError {
            path: path.clone(),
            action,
            source,
        };
        let (stored, warning) = match std::fs::read(&path) {
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
        Ok((
            Ledger {
                path: Some(path),
                stored,
            },
            warning,
        ))
    }

    /// The answer already given to request `id`, if it is remembered.
    pub fn answered(&self, id: &str) -> Option<&Answer> {
        self.stored.answered.iter().find(|a| a.id == id)
    }

    /// Remembers `answer` (persisted before this returns).
    pub fn record(&mut self, answer: Answer) -> Result<(), LedgerError> {
        self.stored.answered.retain(|a| a.id != answer.id);
        if self.stored.answered.len() >= CAPACITY {
            self.stored.answered.pop_front();
        }
        self.stored.answered.push_back(answer);
        self.save()
    }

    /// The interval set by `set_interval`, if any.
    pub fn interval_secs(&self) -> Option<u64> {
        self.stored.interval_secs
    }

    /// Remembers the interval (persisted with the next [`Ledger::record`] or now).
    pub fn set_interval_secs(&mut self, seconds: u64) -> Result<(), LedgerError> {
        self.stored.interval_secs = Some(seconds);
        self.save()
    }

    /// Records the journal's bound dropped, ever.
    pub fn dropped_total(&self) -> u64 {
        self.stored.dropped_total
    }

    /// Adds `count` records dropped by the journal's bound; returns the new total (kept across
    /// restarts).
    pub fn add_dropped(&mut self, count: u64) -> Result<u64, LedgerError> {
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

    #[test]
    fn answers_and_interval_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut ledger, warning) = Ledger::open(dir.path()).expect("open");
        assert!(warning.is_none());
        assert!(ledger.answered("c-1").is_none());
        ledger.record(answer("c-1")).expect("record");
        ledger.set_interval_secs(60).expect("interval");
        let (ledger, _) = Ledger::open(dir.path()).expect("reopen");
        assert_eq!(ledger.answered("c-1"), Some(&answer("c-1")));
        assert_eq!(ledger.interval_secs(), Some(60));
    }

    #[test]
    fn only_the_newest_ids_are_kept() {
        let mut ledger = Ledger::memory();
        for n in 0..CAPACITY + 10 {
            ledger.record(answer(&format!("c-{n}"))).expect("memory");
        }
        assert!(ledger.answered("c-9").is_none());
        assert!(ledger.answered("c-10").is_some());
        assert!(ledger.answered(&format!("c-{}", CAPACITY + 9)).is_some());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), b"{\"answered\": [tru").expect("write");
        let (ledger, warning) = Ledger::open(dir.path()).expect("open");
        let warning = warning.expect("reported");
        assert!(warning.contains("moved to"), "{warning}");
        assert!(ledger.answered("x").is_none());
        assert!(dir.path().join("commands.json.corrupt").exists());
    }
}
