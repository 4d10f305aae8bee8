//! The feed's one error type: what went wrong with a key, a name, an archive, a manifest or a
//! feed directory, naming the file and the value.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong reading keys and manifests and making artifacts and feeds. The underlying error, where
/// there is one, is the `source()` (not repeated in the message): print with `{:#}` (anyhow) or
/// walk the chain.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// `keygen` found a key file already there.
    #[error("{}: already exists; refusing to overwrite a key file", path.display())]
    KeyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// The signing key file could not be read.
    #[error("cannot read the signing key {}", path.display())]
    ReadKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The signing key file is not a zipsign key pair.
    #[error(
        "{}: not a zipsign signing key ({reason}); make one with `roomready-release keygen`",
        path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A base64 verifying key could not be decoded: `{text:?} {reason}`.
    #[error("{text:?} {reason}")]
    BadVerifyingKey {
        /// As given.
        text: String,
        /// Why, e.g. "is not standard base64: ...".
        reason: String,
    },
    /// The version is not bare semver.
    #[error("version {version:?} is not a bare semver version such as 0.2.0: {reason}")]
    BadVersion {
        /// As given.
        version: String,
        /// Why.
        reason: String,
    },
    /// The target is not a target triple.
    #[error("target {0:?} is not a target triple such as x86_64-unknown-linux-gnu")]
    BadTarget(String),
    /// The channel is neither `stable` nor `beta`.
    #[error("channel {0:?}: expected stable or beta")]
    BadChannel(String),
    /// The agent binary could not be read.
    #[error("cannot read the binary {}", path.display())]
    ReadBinary {
        /// The binary.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Building the archive failed.
    #[error("cannot build {name}: {reason}")]
    Archive {
        /// Artifact file name.
        name: String,
        /// Why.
        reason: String,
    },
    /// zipsign refused to sign.
    #[error("cannot sign {name}")]
    Sign {
        /// Artifact file name.
        name: String,
        /// Why.
        source: zipsign_api::ZipsignError,
    },
    /// Reading or writing the feed failed.
    #[error("{}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An existing manifest could not be parsed.
    #[error("{}: not a release manifest", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// An existing manifest has a schema this publisher does not write.
    #[error("{}: manifest schema {schema}, this publisher writes schema 1", path.display())]
    ManifestSchema {
        /// The manifest.
        path: PathBuf,
        /// The schema found.
        schema: u64,
    },
    /// The operating system's random source failed.
    #[error("cannot get random bytes for a key: {0}")]
    Random(String),
}

#[cfg(feature = "publish")]
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(io::Error) -> FeedError + '_ {
    move |source| FeedError::Io {
        path: path.to_path_buf(),
        source,
    }
}
