//! The backup of the values an `apply` replaces: `fix-backup.json` in the agent's state
//! directory (the journal directory, beside the command ledger and the update trial's files).
//!
//! ```json
//! {"format":"roomready.fix_backup/1","created":"2026-11-23T14:07:27.000Z","plan":"3f2ac9d01b7e4a55",
//!  "values":[{"key":"HKLM\\SYSTEM\\...\\TLS 1.2\\Client","value":"Enabled","view":"native",
//!             "old":0,"new":1,"finding":"SCHANNEL_TLS12_CLIENT_DISABLED"}]}
//! ```
//!
//! `old` is `null` for a value that was absent (undo deletes it). The file is written before the
//! first registry write, atomically (a temporary file, fsync, then linked into place, which
//! fails when a backup is already there, so a second apply never replaces the first one's
//! backup; then the directory is synced), and removed only when an undo restored every value.
//! A file that is not what this module writes (unknown fields, a value the fix never changes,
//! a `view` other than the value's) is refused with the file and the place named, and nothing
//! is written.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use roomready_protocol::Timestamp;
use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::target::Target;

/// The file's name in the state directory.
pub(crate) const FILE_NAME: &str = "fix-backup.json";
/// The `format` of the files this version writes and reads.
const FORMAT: &str = "roomready.fix_backup/1";

/// The backup file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Backup {
    pub format: String,
    pub created: Timestamp,
    /// The digest of the plan applied.
    pub plan: String,
    pub values: Vec<Saved>,
}

/// One value as it was before the apply, and what the apply wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Saved {
    pub key: String,
    pub value: String,
    pub view: String,
    /// `None` (JSON `null`): the value was absent.
    pub old: Option<u32>,
    pub new: u32,
    pub finding: String,
}

/// Why the backup could not be read, written or removed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file system refused.
    #[error("fix backup {}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a backup this version wrote; nothing was written.
    #[error(
        "fix backup {} is not valid: {reason}; nothing was written (put the original file back, \
         or remove it and set the values by hand)",
        path.display()
    )]
    Invalid { path: PathBuf, reason: String },
}

impl Backup {
    /// The backup of `plan`'s changes, made at `now`.
    pub(crate) fn of(plan: &Plan, now: Timestamp) -> Backup {
        Backup {
            format: FORMAT.to_owned(),
            created: now,
            plan: plan.digest.clone(),
            values: plan
                .changes
                .iter()
                .map(|c| Saved {
                    key: c.key(),
                    value: c.name().to_owned(),
                    view: c.view().to_owned(),
                    old: c.old,
                    new: c.new,
                    finding: c.finding.to_owned(),
                })
                .collect(),
        }
    }

    /// The target of every value, in order; `Err` names the first entry that is not a value
    /// the fix changes.
    pub(crate) fn targets(&self, path: &Path) -> Result<Vec<Target>, BackupError> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, saved)| {
                Target::find(&saved.key, &saved.value, &saved.view).ok_or_else(|| {
                    BackupError::Invalid {
                        path: path.to_owned(),
                        reason: format!(
                            "values[{i}]: {}\\{} ({}) is not a value fix changes",
                            saved.key, saved.value, saved.view
                        ),
                    }
                })
            })
            .collect()
    }
}

/// The backup's path in `state_dir`.
pub(crate) fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE_NAME)
}

/// Reads and checks the backup at `path`: `Ok(None)` when there is none.
pub(crate) fn load(path: &Path) -> Result<Option<Backup>, BackupError> {
    let bytes = match crate::files::read(path, crate::files::STATE) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(BackupError::Io {
                path: path.to_owned(),
                action: "read",
                source,
            });
        }
    };
    let invalid = |reason: String| BackupError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let backup: Backup = serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json's message ends with "at line L column C"; say it the same way always.
        let what = e.to_string();
        let what = what
            .rsplit_once(" at line ")
            .map_or(what.as_str(), |(head, _)| head);
        invalid(format!(
            "line {}, column {} (byte {}): {what}",
            e.line(),
            e.column(),
            byte_offset(&bytes, e.line(), e.column())
        ))
    })?;
    if backup.format != FORMAT {
        return Err(invalid(format!(
            "field \"format\" is {:?}, expected {FORMAT:?}",
            backup.format
        )));
    }
    if !roomready_protocol::fix::valid_fix_digest(&backup.plan) {
        return Err(invalid(format!(
            "field \"plan\" is {:?}, not a plan digest",
            backup.plan
        )));
    }
    backup.targets(path)?;
    Ok(Some(backup))
}

/// When the backup at `path` was written, for messages about an earlier one still there.
pub(crate) fn describe(path: &Path) -> String {
    match load(path) {
        Ok(Some(earlier)) => format!(
            "written {} for plan {}",
            earlier.created.to_rfc3339_secs(),
            earlier.plan
        ),
        Ok(None) => "just removed".to_owned(),
        Err(e) => format!("not readable: {e}"),
    }
}

/// The 0-based byte offset of serde_json's 1-based `line` and `column` in `bytes`.
fn byte_offset(bytes: &[u8], line: usize, column: usize) -> usize {
    let start: usize = bytes
        .split_inclusive(|&b| b == b'\n')
        .take(line.saturating_sub(1))
        .map(<[u8]>::len)
        .sum();
    (start + column.saturating_sub(1)).min(bytes.len())
}

/// Writes `backup` to `path` unless a backup is there already (see the module documentation):
/// `Ok(false)` when one is.
pub(crate) fn create(path: &Path, backup: &Backup) -> Result<bool, BackupError> {
    let error = |action, source| BackupError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    if let Some(dir) = path.parent() {
        crate::files::create_dir(dir).map_err(|e| error("create its directory", e))?;
    }
    let bytes = serde_json::to_vec_pretty(backup)
        .expect("a backup is strings and numbers, which always serialize");
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| error("create", e))?;
    file.write_all(&bytes).map_err(|e| error("write", e))?;
    file.sync_all().map_err(|e| error("sync", e))?;
    drop(file);
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(error("put in place", e)),
    }
    sync_dir(path);
    Ok(true)
}

/// Removes the backup at `path` (after an undo restored everything, or a failed apply was
/// rolled back).
pub(crate) fn remove(path: &Path) -> Result<(), BackupError> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            sync_dir(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BackupError::Io {
            path: path.to_owned(),
            action: "remove",
            source,
        }),
    }
}

/// Makes a change to the directory of `path` durable; not possible (nor needed) everywhere.
fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Backup {
        Backup {
            format: FORMAT.into(),
            created: "2026-11-23T14:07:27.000Z".parse().expect("time"),
            plan: "3f2ac9d01b7e4a55".into(),
            values: vec![Saved {
                key: Target::SchannelEnabled.key(),
                value: "Enabled".into(),
                view: "native".into(),
                old: Some(0),
                new: 1,
                finding: "SCHANNEL_TLS12_CLIENT_DISABLED".into(),
            }],
        }
    }

    #[test]
    fn a_backup_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let file = path(&dir.path().join("state"));
        assert_eq!(load(&file).expect("none"), None);
        assert!(create(&file, &sample()).expect("written"));
        let mut other = sample();
        other.plan = "0000000000000000".into();
        assert!(
            !create(&file, &other).expect("not replaced"),
            "a second one is refused"
        );
        assert_eq!(load(&file).expect("read"), Some(sample()));
        assert!(!file.with_extension("json.tmp").exists());
        remove(&file).expect("removed");
        assert_eq!(load(&file).expect("gone"), None);
        remove(&file).expect("removing nothing is fine");
    }

    #[test]
    fn a_corrupt_backup_names_the_file_and_the_place() {
        let dir = tempfile::tempdir().expect("dir");
        let file = path(dir.path());
        let good = serde_json::to_string_pretty(&sample()).expect("json");
        let cases = [
            (good[..good.len() / 2].to_owned(), "EOF while parsing"),
            (
                good.replace("\"old\": 0", "\"old\": \"zero\""),
                "invalid type: string \"zero\"",
            ),
            (
                good.replace("\"old\": 0", "\"old\": -1"),
                "invalid value: integer `-1`",
            ),
            (
                good.replace("\"view\"", "\"place\""),
                "unknown field `place`",
            ),
            (
                good.replace("roomready.fix_backup/1", "other/1"),
                "field \"format\" is \"other/1\"",
            ),
            (
                good.replace("3f2ac9d01b7e4a55", "x"),
                "field \"plan\" is \"x\"",
            ),
            (
                good.replace("\"Enabled\"", "\"Evil\""),
                "values[0]: HKLM\\SYSTEM",
            ),
            (good.replace("\"native\"", "\"wow64\""), "values[0]:"),
        ];
        for (text, expected) in cases {
            std::fs::write(&file, &text).expect("write");
            let e = load(&file).expect_err(expected).to_string();
            assert!(e.contains(&file.display().to_string()), "{e}");
            assert!(e.contains(expected), "{expected:?} not in {e}");
        }
        std::fs::write(&file, "{\n  \"format\": 7\n}").expect("write");
        let e = load(&file).expect_err("bad type").to_string();
        assert!(e.contains("line 2, column 13 (byte 14)"), "{e}");
    }
}
