//! The facts file: a small TOML file stating what the device is, for hosts where the facts
//! cannot be read natively and for simulation.
//!
//! ```toml
//! device_id = "mtr-0001"            # optional
//! kind = "teams_rooms_windows"      # teams_rooms_windows | surface_hub | teams_rooms_android | unknown
//! app_version = "4.0.64.0"          # Teams Rooms app version, as Get-AppxPackage reports it
//! os_build = "19045.4894"           # CurrentBuild.UBR
//! os_name = "Windows 10 IoT Enterprise"  # optional: OS name and version
//!
//! [registry]                      # optional: Windows TLS registry values, REG_DWORD
//! "HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\TLS 1.2\\Client\\Enabled" = 0
//! ```
//!
//! With a `[registry]` table (even an empty one) the registry facts come from it: listed values
//! are known, the others absent (OS default). Without it there is no registry source and the
//! registry rules answer `unknown`.
//!
//! A key that is not there is an *absent* fact. The file is read again for every assessment,
//! so a tool that updates it is picked up without restarting the agent.

use std::path::{Path, PathBuf};

use roomready_protocol::{DeviceId, DeviceKind};

use super::registry::{MapRegistry, read_tls_settings};
use super::{Fact, Facts, FactsError, FactsSource, Source};
use crate::keyfile::{KeyFile, KeyFileError};

/// Why a facts file alone gives no registry facts.
pub(super) const NO_REGISTRY: &str = "no registry source: run on Windows, pass --registry-dump, or add a \
                               [registry] table to the facts file";
const KNOWN_KEYS: &str = "device_id, kind, app_version, os_build, os_name, [registry]";
const KINDS: [DeviceKind; 4] = [
    DeviceKind::TeamsRoomsWindows,
    DeviceKind::SurfaceHub,
    DeviceKind::TeamsRoomsAndroid,
    DeviceKind::Unknown,
];

/// The values of a `[registry]` table: each entry is a full value path,
/// `"HKLM\\KEY\\PATH\\ValueName" = 0x800`; a value not listed is absent.
fn registry_table(path: &Path, entries: &[(String, u32)]) -> Result<MapRegistry, KeyFileError> {
    let mut registry =
        MapRegistry::new().with_label(format!("facts file {}, [registry]", path.display()));
    for (full, value) in entries {
        match full.rsplit_once('\\') {
            Some((key, name)) if MapRegistry::accepts(key) && !name.is_empty() => {
                registry.insert(key, name, *value);
            }
            _ => {
                return Err(KeyFileError {
                    file: path.to_owned(),
                    position: None,
                    key: Some(format!("registry.{full}")),
                    reason: "expected a full value path: HKLM\\KEY\\PATH\\ValueName".into(),
                    io: None,
                });
            }
        }
    }
    Ok(registry)
}

/// What a facts file states, key by key: a key the file leaves out is `None`, so that the
/// facts file can lie over native facts and override only what it states.
#[derive(Debug, Clone, Default)]
pub(crate) struct FactsOverrides {
    pub device_id: Option<DeviceId>,
    pub kind: Option<Fact<DeviceKind>>,
    pub app_version: Option<Fact<String>>,
    pub os_build: Option<Fact<String>>,
    pub os_name: Option<Fact<String>>,
    /// The `[registry]` table's values (REG_DWORD), when the file has the table.
    pub registry: Option<MapRegistry>,
}

/// Facts read from a TOML file.
#[derive(Debug, Clone)]
pub struct FactsFile {
    path: PathBuf,
}

impl FactsFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FactsFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Parses what facts `text`, read from `path`, states.
    pub(crate) fn parse_overrides(path: &Path, text: &str) -> Result<FactsOverrides, KeyFileError> {
        let mut file = KeyFile::parse(path, text)?;
        let source = |key: &str| Source::new(format!("facts file {}, key {key}", path.display()));

        let device_id = match file.string("device_id")? {
            Some(id) => Some(
                DeviceId::new(id.get_ref().as_str())
                    .map_err(|e| file.error("device_id", id.span(), e.to_string()))?,
            ),
            None => None,
        };
        let kind = match file.string("kind")? {
            Some(text) => {
                let found = KINDS.into_iter().find(|k| k.as_str() == text.get_ref());
                let Some(kind) = found else {
                    let names: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
                    let reason = format!(
                        "unknown device kind {:?}; expected one of: {}",
                        text.get_ref(),
                        names.join(", ")
                    );
                    return Err(file.error("kind", text.span(), reason));
                };
                Some(Fact::Known {
                    value: kind,
                    source: source("kind"),
                })
            }
            None => None,
        };
        let mut text_fact = |key: &str| -> Result<Option<Fact<String>>, KeyFileError> {
            Ok(file.string(key)?.map(|value| Fact::Known {
                value: value.into_inner(),
                source: source(key),
            }))
        };
        let app_version = text_fact("app_version")?;
        let os_build = text_fact("os_build")?;
        let os_name = text_fact("os_name")?;
        let registry = match file.dword_table("registry")? {
            Some(entries) => Some(registry_table(path, &entries)?),
            None => None,
        };
        file.finish(KNOWN_KEYS)?;
        Ok(FactsOverrides {
            device_id,
            kind,
            app_version,
            os_build,
            os_name,
            registry,
        })
    }

    /// Parses facts `text` read from `path` as the only source of facts: a key the file leaves
    /// out is an *absent* fact, and without a `[registry]` table the registry facts are
    /// *unreadable* ([`NO_REGISTRY`]).
    pub fn parse(path: &Path, text: &str) -> Result<Facts, KeyFileError> {
        let stated = Self::parse_overrides(path, text)?;
        fn absent<T>(path: &Path, key: &str) -> Fact<T> {
            Fact::Absent {
                source: Source::new(format!("facts file {}, key {key}", path.display())),
            }
        }
        let tls = match stated.registry {
            Some(registry) => Fact::Known {
                value: read_tls_settings(&registry),
                source: Source::new(format!("facts file {}, key [registry]", path.display())),
            },
            None => Fact::Unreadable {
                source: Source::new(format!("facts file {}", path.display())),
                reason: NO_REGISTRY.into(),
            },
        };
        Ok(Facts {
            device_id: stated.device_id,
            kind: stated.kind.unwrap_or_else(|| absent(path, "kind")),
            app_version: stated
                .app_version
                .unwrap_or_else(|| absent(path, "app_version")),
            os_build: stated.os_build.unwrap_or_else(|| absent(path, "os_build")),
            os_name: stated.os_name.unwrap_or_else(|| absent(path, "os_name")),
            tls,
            observed: Fact::Absent {
                source: Source::new(format!(
                    "no Schannel events: facts from {} alone",
                    path.display()
                )),
            },
        })
    }

    /// Reads what the file states now (blocking).
    pub(crate) fn read_overrides(&self) -> Result<FactsOverrides, KeyFileError> {
        Self::parse_overrides(&self.path, &self.read_text()?)
    }

    fn read_text(&self) -> Result<String, KeyFileError> {
        crate::files::read_text(&self.path, crate::files::FACTS)
            .map_err(|e| KeyFileError::unreadable(&self.path, "facts file", &e))
    }

    /// Reads and parses the file now (blocking).
    pub fn read(&self) -> Result<Facts, KeyFileError> {
        Self::parse(&self.path, &self.read_text()?)
    }
}

impl FactsSource for FactsFile {
    async fn collect(&self) -> Result<Facts, FactsError> {
        let file = self.clone();
        match tokio::task::spawn_blocking(move || file.read()).await {
            Ok(result) => Ok(result?),
            Err(join) => {
                let error = std::io::Error::other(join.to_string());
                Err(KeyFileError::unreadable(&self.path, "facts file", &error).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Facts, KeyFileError> {
        FactsFile::parse(Path::new("facts.toml"), text)
    }

    #[test]
    fn full_file() {
        let facts = parse(
            "device_id = \"mtr-1\"\nkind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\nos_build = \"19045.1\"\n",
        )
        .expect("valid");
        assert_eq!(
            facts.device_id.as_ref().map(DeviceId::as_str),
            Some("mtr-1")
        );
        assert_eq!(facts.kind(), DeviceKind::TeamsRoomsWindows);
        assert_eq!(
            facts.app_version,
            Fact::Known {
                value: "4.0.64.0".into(),
                source: Source::new("facts file facts.toml, key app_version"),
            }
        );
        assert_eq!(facts.os_build.known().map(String::as_str), Some("19045.1"));
    }

    #[test]
    fn missing_keys_are_absent_facts() {
        let facts = parse("").expect("empty file is valid");
        assert_eq!(facts.kind(), DeviceKind::Unknown);
        assert!(matches!(facts.kind, Fact::Absent { .. }));
        assert!(matches!(facts.app_version, Fact::Absent { .. }));
        assert_eq!(facts.device_id, None);
    }

    #[test]
    fn errors_name_the_key() {
        let err = parse("kind = \"surfacehub\"\n").expect_err("typo");
        assert_eq!(
            err.to_string(),
            "facts.toml:1:8: key \"kind\": unknown device kind \"surfacehub\"; expected one of: teams_rooms_windows, surface_hub, teams_rooms_android, unknown"
        );
        let err = parse("app_version = 4.0\n").expect_err("float");
        assert_eq!(
            err.to_string(),
            "facts.toml:1:15: key \"app_version\": expected a string, found a float 4.0"
        );
        let err = parse("app_versoin = \"4.0.64.0\"\n").expect_err("typo");
        assert!(
            err.to_string()
                .contains("unknown key; known keys: device_id, kind"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_naming_it() {
        let source = FactsFile::new("/nonexistent/facts.toml");
        let err = source.collect().await.expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("/nonexistent/facts.toml: cannot read facts file:"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod registry_table_tests {
    use super::*;
    use crate::facts::tls::Side;
    use roomready_protocol::TlsVersion;

    #[test]
    fn registry_table_sets_values_and_leaves_the_rest_absent() {
        let text = "kind = \"surface_hub\"\n[registry]\n\"HKEY_LOCAL_MACHINE\\\\system\\\\CurrentControlSet\\\\Control\\\\SecurityProviders\\\\SCHANNEL\\\\Protocols\\\\TLS 1.2\\\\Client\\\\enabled\" = 0\n";
        let facts = FactsFile::parse(Path::new("f.toml"), text).expect("valid");
        let tls = facts.tls.known().expect("registry facts");
        let client = tls
            .schannel(TlsVersion::Tls12, Side::Client)
            .expect("entry");
        assert_eq!(client.enabled.known(), Some(&0));
        assert!(matches!(client.disabled_by_default, Fact::Absent { .. }));
        assert!(matches!(tls.dotnet4_release, Fact::Absent { .. }));
    }

    #[test]
    fn registry_values_must_be_dwords() {
        let err = FactsFile::parse(
            Path::new("f.toml"),
            "[registry]\n\"HKLM\\\\X\\\\V\" = \"1\"\n",
        )
        .expect_err("string");
        assert!(
            err.to_string().contains("expected a REG_DWORD value"),
            "{err}"
        );
        let err = FactsFile::parse(
            Path::new("f.toml"),
            "[registry]\n\"HKLM\\\\X\\\\V\" = 0x100000000\n",
        )
        .expect_err("too big");
        assert!(err.to_string().contains("f.toml:2:"), "{err}");
        let err = FactsFile::parse(Path::new("f.toml"), "[registry]\nEnabled = 0\n")
            .expect_err("not a value path");
        assert!(
            err.to_string()
                .contains("key \"registry.Enabled\": expected a full value path"),
            "{err}"
        );
        let facts =
            FactsFile::parse(Path::new("f.toml"), "kind = \"surface_hub\"\n").expect("valid");
        assert!(
            matches!(facts.tls, Fact::Unreadable { .. }),
            "no table, no registry source"
        );
    }
}
