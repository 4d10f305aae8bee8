//! The device's own facts: the registry (live on Windows, or a saved `reg query` dump) gives
//! the OS build, the OS name, the edition and the TLS settings; `Get-AppxPackage` gives the
//! Teams Rooms app version; the device kind follows from both. A facts file lies over them and
//! overrides, fact by fact, whatever it states:
//!
//! | fact          | native source                                                   | facts file key |
//! |---------------|-----------------------------------------------------------------|----------------|
//! | `kind`        | `EditionID` = `PPIPro` (Windows 10 Team) → surface_hub; else the app installed → teams_rooms_windows | `kind` |
//! | `app_version` | `Get-AppxPackage -User Skype -Name Microsoft.SkypeRoomSystem`   | `app_version`  |
//! | `os_build`    | `CurrentBuild` + `.` + `UBR` under [`CURRENT_VERSION`]          | `os_build`     |
//! | `os_name`     | `ProductName` under [`CURRENT_VERSION`]                         | `os_name`      |
//! | TLS settings  | the values of [`TlsSettings::read`]                             | `[registry]`, value by value |
//! | `observed`    | Schannel's events in the System log ([`super::schannel`]), when enabled | — |
//!
//! Without a native source (not on Windows, no dump) the facts file is the only source, read as
//! [`FactsFile`] reads it.

use std::sync::Arc;

use roomready_protocol::DeviceKind;

use super::appx::AppxQuery;
use super::file::FactsOverrides;
use super::registry::{CURRENT_VERSION, LayeredRegistry, Registry, read_tls_settings};
use super::{Fact, Facts, FactsError, FactsFile, FactsSource, Source};
use crate::keyfile::KeyFileError;

#[cfg(doc)]
use super::tls::TlsSettings;

/// The `EditionID` of Windows 10 Team, the Surface Hub's edition.
pub(crate) const SURFACE_HUB_EDITION: &str = "PPIPro";

/// Where the app version comes from when the facts file does not state it.
#[derive(Debug, Clone)]
pub enum AppSource {
    /// Run this query (PowerShell on the device).
    Query(AppxQuery),
    /// It cannot be read here; the reason says why (e.g. facts from a dump of another machine).
    Unavailable(String),
}

impl AppSource {
    async fn read(&self) -> Fact<String> {
        match self {
            AppSource::Query(query) => query.read().await,
            AppSource::Unavailable(reason) => Fact::Unreadable {
                source: Source::new(super::appx::SOURCE),
                reason: reason.clone(),
            },
        }
    }
}

/// Native facts with an optional facts file over them (see the module documentation).
#[derive(Clone)]
pub struct HostFacts {
    registry: Arc<dyn Registry>,
    /// Names the registry in the TLS fact's source (`registry`, `registry dump FILE`).
    registry_label: String,
    app: AppSource,
    overrides: Option<FactsFile>,
    /// Read Schannel's events from the System log within these bounds (Windows).
    system_log: Option<super::schannel::Bounds>,
}

impl HostFacts {
    /// Facts from `registry` (named `registry_label` in sources) and `app`, with the facts file
    /// `overrides`, when given, lying over them.
    pub fn new(
        registry: Arc<dyn Registry>,
        registry_label: impl Into<String>,
        app: AppSource,
        overrides: Option<FactsFile>,
    ) -> Self {
        HostFacts {
            registry,
            registry_label: registry_label.into(),
            app,
            overrides,
            system_log: None,
        }
    }

    /// Also reads Schannel's events from the live System log within `bounds` (none when
    /// `None`; off Windows the evidence is unreadable).
    pub fn with_system_log(mut self, bounds: Option<super::schannel::Bounds>) -> Self {
        self.system_log = bounds;
        self
    }

    /// The live registry and PowerShell (with `timeout`), under the facts file `overrides`.
    #[cfg(windows)]
    pub fn native(timeout: std::time::Duration, overrides: Option<FactsFile>) -> Self {
        HostFacts::new(
            Arc::new(super::registry::NativeRegistry),
            "registry",
            AppSource::Query(AppxQuery::powershell(timeout)),
            overrides,
        )
    }

    /// Collects the facts (blocking registry reads run off the async threads).
    async fn gather(&self) -> Result<Facts, FactsError> {
        let stated = match &self.overrides {
            Some(file) => {
                let file = file.clone();
                let path = file.path().to_owned();
                blocking(move || file.read_overrides(), &path).await??
            }
            None => FactsOverrides::default(),
        };
        let app_version = match stated.app_version.clone() {
            Some(fact) => fact,
            None => self.app.read().await,
        };
        let base = Arc::clone(&self.registry);
        let label = self.registry_label.clone();
        let top = stated.registry.clone();
        let path = self.overrides.as_ref().map(|f| f.path().to_owned());
        let read = move || {
            let (tls_label, registry): (String, Box<dyn Registry>) = match top {
                Some(top) => (
                    format!("{label}, under the facts file's [registry] table"),
                    Box::new(LayeredRegistry { top, base }),
                ),
                None => (label, Box::new(base)),
            };
            let tls = Fact::Known {
                value: read_tls_settings(registry.as_ref()),
                source: Source::new(tls_label),
            };
            let os_build = os_build(registry.as_ref());
            let os_name = registry.string(CURRENT_VERSION, "ProductName");
            let edition = registry.string(CURRENT_VERSION, "EditionID");
            (tls, os_build, os_name, edition)
        };
        let where_ = path.unwrap_or_else(|| "registry".into());
        let (tls, os_build, os_name, edition) = blocking(read, &where_).await?;
        let observed = match self.system_log {
            Some(bounds) => {
                let now = crate::clock::Clock::now(&crate::clock::SystemClock);
                let read = move || super::schannel::from_system_log(now, bounds);
                let source = || Source::new("the System log (Schannel events)");
                match tokio::task::spawn_blocking(read).await {
                    Ok(Ok(observations)) => Fact::Known {
                        source: Source::new(observations.label.clone()),
                        value: observations,
                    },
                    Ok(Err(reason)) => Fact::Unreadable {
                        source: source(),
                        reason,
                    },
                    Err(join) => Fact::Unreadable {
                        source: source(),
                        reason: format!("reading the events failed: {join}"),
                    },
                }
            }
            None => Fact::Absent {
                source: Source::new("no Schannel events read (schannel_events = false)"),
            },
        };
        let kind = match stated.kind {
            Some(kind) => kind,
            None => device_kind(&edition, &app_version),
        };
        Ok(Facts {
            device_id: stated.device_id,
            kind,
            app_version,
            os_build: stated.os_build.unwrap_or(os_build),
            os_name: stated.os_name.unwrap_or(os_name),
            tls,
            observed,
        })
    }
}

impl FactsSource for HostFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        self.gather().await
    }
}

/// Runs blocking `work` on tokio's blocking pool; a panic there is reported as an unreadable
/// `what` instead of taking the daemon down.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
    what: &std::path::Path,
) -> Result<T, FactsError> {
    tokio::task::spawn_blocking(work).await.map_err(|join| {
        let error = std::io::Error::other(join.to_string());
        FactsError::File(KeyFileError::unreadable(what, "facts", &error))
    })
}

/// `CurrentBuild.UBR` (e.g. `15063.1835`) from [`CURRENT_VERSION`]. A missing `UBR` makes the
/// build *unreadable*: without the revision no build rule can be decided.
pub(crate) fn os_build(registry: &dyn Registry) -> Fact<String> {
    let (build, source) = match registry.string(CURRENT_VERSION, "CurrentBuild") {
        Fact::Known { value, source } => (value, source),
        Fact::Absent { source } => return Fact::Absent { source },
        Fact::Unreadable { source, reason } => return Fact::Unreadable { source, reason },
    };
    let build = build.trim();
    let source = Source::new(format!("{source} + UBR"));
    match registry.dword(CURRENT_VERSION, "UBR") {
        Fact::Known { value: ubr, .. } => Fact::Known {
            value: format!("{build}.{ubr}"),
            source,
        },
        Fact::Absent { .. } => Fact::Unreadable {
            source,
            reason: format!("CurrentBuild is {build} but UBR is absent: the revision is unknown"),
        },
        Fact::Unreadable { reason, .. } => Fact::Unreadable { source, reason },
    }
}

/// The device kind from the edition and the app: Windows 10 Team is a Surface Hub; another
/// Windows with the Teams Rooms app installed is Teams Rooms on Windows; otherwise the kind is
/// *absent* (or *unreadable* when what decides it could not be read).
pub(crate) fn device_kind(edition: &Fact<String>, app_version: &Fact<String>) -> Fact<DeviceKind> {
    match edition {
        Fact::Known { value, source } if value.trim().eq_ignore_ascii_case(SURFACE_HUB_EDITION) => {
            return Fact::Known {
                value: DeviceKind::SurfaceHub,
                source: Source::new(format!(
                    "{source} = {SURFACE_HUB_EDITION} (Windows 10 Team)"
                )),
            };
        }
        Fact::Unreadable { source, reason } => {
            return Fact::Unreadable {
                source: source.clone(),
                reason: format!("the Windows edition decides Surface Hub: {reason}"),
            };
        }
        _ => {}
    }
    let edition = edition.known().map_or("absent", |e| e.as_str());
    match app_version {
        Fact::Known { source, .. } => Fact::Known {
            value: DeviceKind::TeamsRoomsWindows,
            source: Source::new(format!("Microsoft.SkypeRoomSystem installed ({source})")),
        },
        Fact::Absent { source } => Fact::Absent {
            source: Source::new(format!(
                "EditionID {edition} is not Windows 10 Team and Microsoft.SkypeRoomSystem is \
                 not installed ({source})"
            )),
        },
        Fact::Unreadable { source, reason } => Fact::Unreadable {
            source: source.clone(),
            reason: format!(
                "EditionID {edition} is not Windows 10 Team, and whether Microsoft.SkypeRoomSystem \
                 is installed is unknown: {reason}"
            ),
        },
    }
}

#[cfg(test)]
mod tests;
