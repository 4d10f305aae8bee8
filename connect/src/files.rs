//! The files the agent is given, read with care: regular files only (a FIFO would block the read
//! forever, a device like `/dev/zero` never ends, a directory is a mistake), each kind with a size
//! limit ([`LIMITS`]) that the error names, and directories that say why they cannot be one.
//!
//! The errors are `io::Error`s whose text is the reason ("it is a FIFO (named pipe), not a
//! regular file", "it is larger than 1 MiB, the limit for a facts file"), so callers keep saying
//! "cannot read PATH: REASON" as for any other I/O failure.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _};
use std::path::Path;

/// What kind of file, and the most bytes it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The kind of file, for messages: "a facts file".
    pub what: &'static str,
    pub bytes: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// `run --config`, `self-test`, `update`.
pub const CONFIG: Limit = Limit {
    what: "a config file",
    bytes: MIB,
};
/// `--facts`, `facts_file`.
pub const FACTS: Limit = Limit {
    what: "a facts file",
    bytes: MIB,
};
/// `--registry-dump` (UTF-16 `reg query … /s` output of several keys).
pub const REGISTRY_DUMP: Limit = Limit {
    what: "a registry dump",
    bytes: 32 * MIB,
};
/// `ca_file`, `--ca-file`, `broker_ca_file`, `update_ca_file`, `client_cert_file`,
/// `client_key_file`.
pub const PEM: Limit = Limit {
    what: "a PEM file (CA, certificate or key)",
    bytes: 4 * MIB,
};
/// `password_file`, `update_github_token_file`.
pub const SECRET: Limit = Limit {
    what: "a password or token file",
    bytes: 64 * KIB,
};
/// The agent's own small files in the journal directory (command ledger, update trial state).
pub const STATE: Limit = Limit {
    what: "a state file of the journal directory",
    bytes: 16 * MIB,
};

/// `--schannel-events`: a saved export of Schannel's events (a full 20 MB System log renders to
/// roughly 60 MB of XML, twice that in UTF-16).
pub const SCHANNEL_EXPORT: Limit = Limit {
    what: "a Schannel events export",
    bytes: 128 * MIB,
};

/// Every limit, for the docs (README, "Files the agent reads").
pub const LIMITS: [Limit; 7] = [
    CONFIG,
    FACTS,
    REGISTRY_DUMP,
    PEM,
    SECRET,
    STATE,
    SCHANNEL_EXPORT,
];

impl Limit {
    /// `1 MiB`, `64 KiB`, `16 bytes`.
    pub fn size(&self) -> String {
        if self.bytes >= MIB && self.bytes.is_multiple_of(MIB) {
            format!("{} MiB", self.bytes / MIB)
        } else if self.bytes >= KIB && self.bytes.is_multiple_of(KIB) {
            format!("{} KiB", self.bytes / KIB)
        } else {
            format!("{} bytes", self.bytes)
        }
    }
}

/// Reads the regular file at `path`, refusing it when it is larger than `limit`.
pub fn read(path: &Path, limit: Limit) -> io::Result<Vec<u8>> {
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.take(limit.bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit.bytes {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            format!(
                "it is larger than {}, the limit for {}",
                limit.size(),
                limit.what
            ),
        ));
    }
    Ok(bytes)
}

/// [`read`] as UTF-8 text.
pub fn read_text(path: &Path, limit: Limit) -> io::Result<String> {
    String::from_utf8(read(path, limit)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Opens `path` with `options` only if it is a regular file. Opening never blocks: a FIFO is
/// opened non-blocking (Unix) and refused.
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    // Windows opens a directory only with backup semantics, failing with "Access is denied":
    // say what it is instead.
    #[cfg(windows)]
    if std::fs::metadata(path).is_ok_and(|meta| meta.is_dir()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "it is a directory, not a regular file",
        ));
    }
    let file = options.open(path)?;
    match not_regular(&file)? {
        None => {
            #[cfg(unix)]
            clear_nonblocking(&file)?;
            Ok(file)
        }
        Some(kind) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}, not a regular file"),
        )),
    }
}

/// What the open `file` is when it is not a regular file.
#[cfg(unix)]
fn not_regular(file: &File) -> io::Result<Option<&'static str>> {
    use std::os::unix::fs::FileTypeExt as _;
    let kind = file.metadata()?.file_type();
    Ok(if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    })
}

/// What the open `file` is when it is not a file on disk (`GetFileType`).
#[cfg(windows)]
fn not_regular(file: &File) -> io::Result<Option<&'static str>> {
    use std::os::windows::io::AsRawHandle as _;
    use windows_sys::Win32::Storage::FileSystem::{
        FILE_TYPE_CHAR, FILE_TYPE_DISK, FILE_TYPE_PIPE, GetFileType,
    };
    if file.metadata()?.is_dir() {
        return Ok(Some("a directory"));
    }
    // SAFETY: the handle is the open file's, valid for the duration of the call.
    let kind = unsafe { GetFileType(file.as_raw_handle()) };
    Ok(match kind {
        FILE_TYPE_DISK => None,
        FILE_TYPE_PIPE => Some("a pipe"),
        FILE_TYPE_CHAR => Some("a device"),
        _ => Some("not a file on disk"),
    })
}

/// Makes reads of a regular file opened with `O_NONBLOCK` ordinary again (they never block, but
/// the flag is inherited by whatever gets the descriptor).
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this process owns, with valid commands and flags.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Creates the directory `dir` and its parents, or says why it cannot be one: a file in its
/// place, or a symbolic link that loops or leads nowhere (where `create_dir_all` only says "File
/// exists").
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let error = match std::fs::create_dir_all(dir) {
        Ok(()) => return Ok(()),
        Err(error) => error,
    };
    let reason = match (std::fs::symlink_metadata(dir), std::fs::metadata(dir)) {
        (Ok(_), Ok(meta)) if !meta.is_dir() => {
            "it exists and is not a directory (a file is in its place)".to_owned()
        }
        (Ok(link), Err(target)) if link.file_type().is_symlink() => {
            format!("it is a symbolic link that loops or leads nowhere ({target})")
        }
        _ => return Err(error),
    };
    Err(io::Error::new(io::ErrorKind::NotADirectory, reason))
}

#[cfg(test)]
mod tests;
