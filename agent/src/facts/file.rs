//! The facts file: a small TOML file stating what the device is, for hosts where the facts
//! cannot be read natively and for simulation.
//!
//! ```toml
//! device_id = "mtr-0001"            # optional
//! kind = "teams_rooms_windows"      # teams_rooms_windows | surface_hub | teams_rooms_android | unknown
//! app_version = "4.0.64.0"          # Teams Rooms app version, as Get-AppxPackage reports it
//! os_build = "19045.4894"           # CurrentBuild.UBR
//! ```
//!
//! A key that is not there is an *absent* fact. The file is read again for every assessment,
//! so a tool that updates it is picked up without restarting the agent.

use std::path::{Path, PathBuf};

use roomready_protocol::{DeviceId, DeviceKind};

use super::{Fact, Facts, FactsError, FactsSource, Source};
use crate::keyfile::{KeyFile, KeyFileError};

const KNOWN_KEYS: &str = "device_id, kind, app_version, os_build";
const KINDS: [DeviceKind; 4] = [
    DeviceKind::TeamsRoomsWindows,
    DeviceKind::SurfaceHub,
    DeviceKind::TeamsRoomsAndroid,
    DeviceKind::Unknown,
];

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

    /// Parses facts `text` read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Facts, KeyFileError> {
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
                Fact::Known {
                    value: kind,
                    source: source("kind"),
                }
            }
            None => Fact::Absent {
                source: source("kind"),
            },
        };
        let mut text_fact = |key: &str| -> Result<Fact<String>, KeyFileError> {
            Ok(match file.string(key)? {
                Some(value) => Fact::Known {
                    value: value.into_inner(),
                    source: source(key),
                },
                None => Fact::Absent {
                    source: source(key),
                },
            })
        };
        let app_version = text_fact("app_version")?;
        let os_build = text_fact("os_build")?;
        file.finish(KNOWN_KEYS)?;
        Ok(Facts {
            device_id,
            kind,
            app_version,
            os_build,
        })
    }

    /// Reads and parses the file now (blocking).
    pub fn read(&self) -> Result<Facts, KeyFileError> {
        let text = std::fs::read_to_string(&self.path)
            .map_err(|e| KeyFileError::unreadable(&self.path, "facts file", &e))?;
        Self::parse(&self.path, &text)
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
