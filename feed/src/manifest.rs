//! A channel's `manifest.json`: `self_update`'s manifest schema 1, as the publisher writes it
//! and the update server serves it. Asset `url`s are relative (resolved against the manifest's
//! URL); `digest` is `sha256:<hex>` of the signed artifact.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::FeedError;

/// The manifest schema `self_update` 1.3 understands.
pub const MANIFEST_SCHEMA: u64 = 1;

/// A channel's `manifest.json`, `self_update`'s manifest schema 1. Fields this publisher does not
/// know are kept as they were.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_SCHEMA`].
    pub schema: u64,
    /// Newest first.
    #[serde(default)]
    pub releases: Vec<ManifestRelease>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One release in a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRelease {
    /// Bare semver.
    pub version: String,
    /// RFC 3339 date of first publication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// Release notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_url: Option<String>,
    /// One per target.
    #[serde(default)]
    pub assets: Vec<ManifestAsset>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One artifact of a [`ManifestRelease`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestAsset {
    /// The file name: what the agent matches its target against and the signature context.
    pub name: String,
    /// Relative to the manifest's directory (or absolute).
    pub url: String,
    /// `sha256:<hex>` of the signed artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            schema: MANIFEST_SCHEMA,
            releases: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

impl Manifest {
    /// Reads `path`; a missing file is an empty manifest.
    pub fn load(path: &Path) -> Result<Manifest, FeedError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => {
                return Err(FeedError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| FeedError::Manifest {
                path: path.to_path_buf(),
                source,
            })?;
        if manifest.schema != MANIFEST_SCHEMA {
            return Err(FeedError::ManifestSchema {
                path: path.to_path_buf(),
                schema: manifest.schema,
            });
        }
        Ok(manifest)
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Serializing these types (string keys, no maps with non-string keys) cannot fail.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Adds `asset` to release `version` (creating the release, dated `date`, if it is new) or
    /// replaces the asset of the same name; then sorts releases newest first by semver (releases
    /// whose version is not semver, from a hand-edited manifest, go last in their order).
    pub fn upsert(&mut self, version: &semver::Version, asset: ManifestAsset, date: &str) {
        let position = self
            .releases
            .iter()
            .position(|r| semver::Version::parse(&r.version).ok().as_ref() == Some(version));
        let release = match position {
            Some(i) => &mut self.releases[i],
            None => {
                self.releases.push(ManifestRelease {
                    version: version.to_string(),
                    date: Some(date.to_string()),
                    notes_url: None,
                    assets: Vec::new(),
                    extra: BTreeMap::new(),
                });
                let last = self.releases.len() - 1;
                &mut self.releases[last]
            }
        };
        match release.assets.iter_mut().find(|a| a.name == asset.name) {
            Some(existing) => {
                existing.url = asset.url;
                existing.digest = asset.digest;
            }
            None => release.assets.push(asset),
        }
        release.assets.sort_by(|a, b| a.name.cmp(&b.name));
        self.sort();
    }

    /// Newest first by semver; non-semver versions last, in their order (the sort is stable).
    pub fn sort(&mut self) {
        self.releases.sort_by(|a, b| {
            let a = semver::Version::parse(&a.version).ok();
            let b = semver::Version::parse(&b.version).ok();
            match (a, b) {
                (Some(a), Some(b)) => b.cmp(&a),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        });
    }
}
