//! What the device is: identity, kind, Teams Rooms app version, OS build.
//!
//! Every fact records where it came from and distinguishes a value that is *absent* (nothing
//! there: the rule decides what that means) from one that is *unreadable* (an error, with its
//! reason). Facts come from a [`FactsSource`], a value handed to the agent, so the daemon, the
//! one-shot `check` and the simulator's devices all run the same assessment on facts from
//! different places: the device itself ([`HostFacts`]: the registry, live or dumped, and
//! PowerShell, under an optional facts file), a facts file alone ([`FactsFile`]) or fixed values
//! ([`FixedFacts`]).

pub(crate) mod appx;
mod file;
pub(crate) mod host;
pub mod registry;
pub mod schannel;
pub(crate) mod tls;

use std::fmt;
use std::future::Future;

use roomready_protocol::{DeviceFacts, DeviceId, DeviceKind};

pub use file::FactsFile;
pub(crate) use host::{AppSource, HostFacts};

use crate::keyfile::KeyFileError;

/// Where a fact was read, for the evidence of findings (`facts file /x.toml, key app_version`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source(String);

impl Source {
    pub fn new(description: impl Into<String>) -> Self {
        Source(description.into())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One fact about the device and how it was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact<T> {
    /// Read successfully.
    Known { value: T, source: Source },
    /// Looked for and not there.
    Absent { source: Source },
    /// Looking for it failed; `reason` says why.
    Unreadable { source: Source, reason: String },
}

impl<T> Fact<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Fact::Known { value, .. } => Some(value),
            _ => None,
        }
    }

    pub fn source(&self) -> &Source {
        match self {
            Fact::Known { source, .. }
            | Fact::Absent { source }
            | Fact::Unreadable { source, .. } => source,
        }
    }
}

/// Everything the rules know about one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The id the facts were collected for, when the source names one.
    pub device_id: Option<DeviceId>,
    pub kind: Fact<DeviceKind>,
    /// The Teams Rooms app version, as read (parsed by the rule that needs it).
    pub app_version: Fact<String>,
    /// The OS build as `CurrentBuild.UBR`, as read.
    pub os_build: Fact<String>,
    /// The operating system's name and version as text (`Android 4.3`, `Windows 10 IoT
    /// Enterprise`), for the list of clients known unable to use TLS 1.2.
    pub os_name: Fact<String>,
    /// Windows TLS settings from the registry (unreadable when there is no registry source).
    pub tls: Fact<tls::TlsSettings>,
    /// What Schannel logged of the device's handshakes (absent when no evidence source was
    /// read: off Windows without an export, or `schannel_events = false`).
    pub observed: Fact<schannel::Observations>,
}

impl Facts {
    /// The device kind, `unknown` unless it was read.
    pub fn kind(&self) -> DeviceKind {
        self.kind.known().copied().unwrap_or(DeviceKind::Unknown)
    }

    /// The summary of these facts that travels in a `State`.
    pub(crate) fn to_wire(&self) -> DeviceFacts {
        DeviceFacts {
            kind: self.kind(),
            app_version: self.app_version.known().cloned(),
            os_build: self.os_build.known().cloned(),
        }
    }
}

/// Why no facts could be collected at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FactsError {
    /// The facts file is unreadable or malformed.
    #[error(transparent)]
    File(#[from] KeyFileError),
}

/// Something that can tell the agent what the device is.
pub trait FactsSource: Send + Sync + 'static {
    /// Collects the facts now. Individual facts may be absent or unreadable; an error means the
    /// source as a whole failed.
    fn collect(&self) -> impl Future<Output = Result<Facts, FactsError>> + Send;
}

/// One of the sources the binary chooses between at start (the `FactsSource` trait is static).
#[derive(Clone)]
pub enum AnyFacts {
    /// A facts file alone.
    File(FactsFile),
    /// Native facts (live registry or a dump), under an optional facts file.
    Host(HostFacts),
}

impl AnyFacts {
    /// The facts of this host: on Windows the live registry and PowerShell, under `facts_file`
    /// when given, and Schannel's events from the System log within `schannel` (none when
    /// `None`); elsewhere `facts_file` alone, and `None` without one (nothing to read).
    pub fn local(
        facts_file: Option<&std::path::Path>,
        schannel: Option<schannel::Bounds>,
    ) -> Option<AnyFacts> {
        #[cfg(windows)]
        {
            Some(AnyFacts::Host(
                HostFacts::native(appx::DEFAULT_TIMEOUT, facts_file.map(FactsFile::new))
                    .with_system_log(schannel),
            ))
        }
        #[cfg(not(windows))]
        {
            let _ = schannel;
            facts_file.map(|path| AnyFacts::File(FactsFile::new(path)))
        }
    }
}

impl FactsSource for AnyFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        match self {
            AnyFacts::File(file) => file.collect().await,
            AnyFacts::Host(host) => host.collect().await,
        }
    }
}

/// Facts fixed in memory: simulated devices and tests.
#[derive(Debug, Clone)]
pub struct FixedFacts(pub Facts);

impl FactsSource for FixedFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        Ok(self.0.clone())
    }
}
