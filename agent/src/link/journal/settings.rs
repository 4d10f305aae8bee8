//! The journal's settings, owned here: where and how the agent keeps undelivered messages and
//! answered command ids (the keys of [`KEYS`], their defaults and validation), read from the
//! agent's config file by [`read`].
//!
//! ```toml
//! journal_dir = "journal"                # optional; undelivered messages, command ids, seq
//!                                        # (default: "journal" beside this file)
//! journal_max_mib = 64                   # optional; 1..=65536, default 64
//! journal_fsync = "always"               # optional; "always" (default) or "never"
//! ```

use std::path::{Path, PathBuf};

use roomready_connect::broker::beside;

use crate::keyfile::{KeyFile, KeyFileError};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &["journal_dir", "journal_max_mib", "journal_fsync"];

/// The journal's default size bound.
pub(crate) const DEFAULT_JOURNAL_MAX_MIB: u64 = 64;

/// Where and how the agent keeps undelivered messages and answered command ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// `journal_dir`; default: `journal` beside the config file.
    pub dir: PathBuf,
    /// `journal_max_mib` in bytes (default 64 MiB).
    pub max_bytes: u64,
    /// `journal_fsync = "always"` (default): every record is on disk before it is sent;
    /// `"never"` leaves it to the OS (faster, loses the newest records on power loss).
    pub fsync: bool,
}

impl JournalConfig {
    /// The journal's open options.
    pub fn options(&self) -> super::JournalOptions {
        use super::{Fsync, JournalOptions};
        JournalOptions {
            dir: self.dir.clone(),
            max_bytes: self.max_bytes,
            fsync: if self.fsync {
                Fsync::Always
            } else {
                Fsync::Never
            },
        }
    }
}

/// Reads the keys of [`KEYS`] from `file`, the config at `path` (the journal's default place is
/// beside it).
pub(crate) fn read(file: &mut KeyFile<'_>, path: &Path) -> Result<JournalConfig, KeyFileError> {
    let dir = file.string("journal_dir")?.map_or_else(
        || beside(path, "journal".into()),
        |p| beside(path, p.into_inner()),
    );
    let max_bytes = file
        .integer("journal_max_mib", 1..=65_536)?
        .map_or(DEFAULT_JOURNAL_MAX_MIB, |m| m.into_inner())
        * 1024
        * 1024;
    let fsync = match file.string("journal_fsync")? {
        None => true,
        Some(v) if v.get_ref() == "always" => true,
        Some(v) if v.get_ref() == "never" => false,
        Some(v) => {
            let reason = format!("expected \"always\" or \"never\", found {:?}", v.get_ref());
            return Err(file.error("journal_fsync", v.span(), reason));
        }
    };
    Ok(JournalConfig {
        dir,
        max_bytes,
        fsync,
    })
}
