//! Publisher side of the agent's signed self-update (issue 5): zipsign ed25519 key pairs, signed
//! release artifacts and the `self_update` manifest feed the agent polls.
//!
//! The contract with the agent (which updates itself with `self_update`'s `manifest` backend,
//! features `signatures` and `checksums`):
//!
//! - **Keys** ([`keygen`]): `signing.key` holds the 64 ed25519 key-pair bytes (secret key then
//!   public key, `SigningKey::to_keypair_bytes`), exactly what `zipsign_api::sign::read_signing_keys`
//!   and the `zipsign gen-key` tool use; `verifying.key.b64` holds the 32-byte verifying key in
//!   standard base64 on one line, the form the agent pins in `update_keys`.
//! - **Artifacts** ([`package_and_sign`]): `roomready-agent-{version}-{target}.tar.gz` (or `.zip`
//!   for `*-windows-*` targets) holding exactly one file, `roomready-agent` (`.exe` on Windows),
//!   mode 0755. Signed with zipsign (ed25519ph) with the artifact's file name as the context:
//!   `self_update::verify_signature` verifies with `Some(file_name.as_bytes())`, the file name of
//!   the download, which is the manifest asset's `name`.
//! - **Feed** ([`publish`]): `{feed}/{channel}/manifest.json` in `self_update`'s manifest schema 1,
//!   the artifacts next to it, asset `url`s relative (resolved against the manifest's URL) and
//!   `digest` `sha256:<hex>` of the signed artifact.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
pub use roomready_agent::update::feed::{
    AGENT_BIN, MANIFEST_FILE, artifact_name, binary_name, is_windows_target,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zipsign_api::{KEYPAIR_LENGTH, PUBLIC_KEY_LENGTH, SigningKey, VerifyingKey};

/// File name of the signing key written by [`keygen`].
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the base64 verifying key written by [`keygen`].
pub const VERIFYING_KEY_FILE: &str = "verifying.key.b64";
/// The manifest schema `self_update` 1.3 understands.
pub const MANIFEST_SCHEMA: u64 = 1;

/// Everything that can go wrong making keys, artifacts and feeds. The underlying error, where
/// there is one, is the `source()` (not repeated in the message): print with `{:#}` (anyhow) or
/// walk the chain.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
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
        "{}: not a zipsign signing key ({reason}); make one with `roomready-sim keygen`",
        path.display()
    )]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A base64 verifying key could not be decoded.
    #[error("not a base64 ed25519 verifying key: {0}")]
    BadVerifyingKey(String),
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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReleaseError + '_ {
    move |source| ReleaseError::Io {
        path: path.to_path_buf(),
        source,
    }
}

// --- keys ---------------------------------------------------------------------------------------

/// What [`keygen`] wrote.
#[derive(Debug, Clone)]
pub struct KeyFiles {
    /// `DIR/signing.key`: 64 bytes, mode 0600 on unix.
    pub signing_key: PathBuf,
    /// `DIR/verifying.key.b64`: one line of base64.
    pub verifying_key: PathBuf,
    /// The verifying key in standard base64, as written (without the newline).
    pub verifying_key_b64: String,
}

/// Generates a zipsign ed25519 key pair into `dir` (created if missing): `signing.key` (the
/// 64 key-pair bytes, mode 0600 on unix) and `verifying.key.b64`. Refuses, writing nothing, when
/// either file already exists.
pub fn keygen(dir: &Path) -> Result<KeyFiles, ReleaseError> {
    let signing_path = dir.join(SIGNING_KEY_FILE);
    let verifying_path = dir.join(VERIFYING_KEY_FILE);
    for path in [&signing_path, &verifying_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(ReleaseError::KeyExists { path: path.clone() });
        }
    }
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| ReleaseError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let b64 = verifying_key_b64(&key.verifying_key());

    let mut keypair = key.to_keypair_bytes();
    let written = write_new(&signing_path, &keypair, true);
    keypair.fill(0);
    written?;
    if let Err(e) = write_new(&verifying_path, format!("{b64}\n").as_bytes(), false) {
        // Do not leave half a key pair behind.
        let _ = fs::remove_file(&signing_path);
        return Err(e);
    }
    Ok(KeyFiles {
        signing_key: signing_path,
        verifying_key: verifying_path,
        verifying_key_b64: b64,
    })
}

/// Creates `path` (failing if it exists) with `bytes`; `secret` files get mode 0600 on unix.
fn write_new(path: &Path, bytes: &[u8], secret: bool) -> Result<(), ReleaseError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(|source| {
        if source.kind() == io::ErrorKind::AlreadyExists {
            ReleaseError::KeyExists {
                path: path.to_path_buf(),
            }
        } else {
            ReleaseError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path))
}

/// Reads a signing key written by [`keygen`] (or `zipsign gen-key`): exactly 64 key-pair bytes
/// whose public half matches the secret half.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, ReleaseError> {
    let bytes = fs::read(path).map_err(|source| ReleaseError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    let keypair: [u8; KEYPAIR_LENGTH] =
        bytes
            .as_slice()
            .try_into()
            .map_err(|_| ReleaseError::BadKey {
                path: path.to_path_buf(),
                reason: format!("{} bytes, expected {KEYPAIR_LENGTH}", bytes.len()),
            })?;
    SigningKey::from_keypair_bytes(&keypair).map_err(|e| ReleaseError::BadKey {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// The verifying key as the agent's `update_keys` holds it: standard base64 of the 32 bytes.
pub fn verifying_key_b64(key: &VerifyingKey) -> String {
    BASE64.encode(key.as_bytes())
}

/// Decodes a base64 verifying key (surrounding whitespace ignored) into the raw 32 bytes that
/// `self_update`'s `verifying_keys` takes.
pub fn decode_verifying_key(b64: &str) -> Result<[u8; PUBLIC_KEY_LENGTH], ReleaseError> {
    let bytes = BASE64
        .decode(b64.trim())
        .map_err(|e| ReleaseError::BadVerifyingKey(e.to_string()))?;
    let raw: [u8; PUBLIC_KEY_LENGTH] = bytes.as_slice().try_into().map_err(|_| {
        ReleaseError::BadVerifyingKey(format!(
            "{} bytes, expected {PUBLIC_KEY_LENGTH}",
            bytes.len()
        ))
    })?;
    VerifyingKey::from_bytes(&raw).map_err(|e| ReleaseError::BadVerifyingKey(e.to_string()))?;
    Ok(raw)
}

// --- names --------------------------------------------------------------------------------------

/// An update channel: the feed's subdirectory. The agent's own type, so publisher and agent
/// name the channels alike.
pub use roomready_agent::config::UpdateChannel as Channel;

/// Parses a bare semver version (`0.2.0`, `1.0.0-beta.1`; not `v0.2.0`, not `0.2`).
pub fn parse_version(version: &str) -> Result<semver::Version, ReleaseError> {
    semver::Version::parse(version).map_err(|e| ReleaseError::BadVersion {
        version: version.to_string(),
        reason: e.to_string(),
    })
}

/// Checks that `target` looks like a target triple: ASCII letters, digits, `_`, `.` and `-`, at
/// least two `-`-separated parts, no empty part. It ends up in a file name, so nothing else.
pub fn check_target(target: &str) -> Result<(), ReleaseError> {
    let ok = target.split('-').count() >= 2
        && target.split('-').all(|part| !part.is_empty())
        && !target.starts_with('.')
        && target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::BadTarget(target.to_string()))
    }
}

// --- packaging ----------------------------------------------------------------------------------

/// A signed artifact, in memory.
#[derive(Clone)]
pub struct Artifact {
    /// Published file name (and signature context).
    pub name: String,
    /// The release's version.
    pub version: semver::Version,
    /// The target triple.
    pub target: String,
    /// The signed archive.
    pub bytes: Vec<u8>,
    /// Lowercase hex SHA-256 of `bytes`.
    pub sha256: String,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("target", &self.target)
            .field("len", &self.bytes.len())
            .field("sha256", &self.sha256)
            .finish()
    }
}

impl Artifact {
    /// The manifest digest, `sha256:<hex>`.
    pub fn digest(&self) -> String {
        format!("sha256:{}", self.sha256)
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        use fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Packages the agent binary at `bin` for `version` and `target` and signs it with `key`, using
/// the artifact's file name as the zipsign context.
pub fn package_and_sign(
    key: &SigningKey,
    bin: &Path,
    version: &str,
    target: &str,
) -> Result<Artifact, ReleaseError> {
    let version = parse_version(version)?;
    check_target(target)?;
    let binary = fs::read(bin).map_err(|source| ReleaseError::ReadBinary {
        path: bin.to_path_buf(),
        source,
    })?;
    if fs::metadata(bin).map(|m| !m.is_file()).unwrap_or(false) {
        return Err(ReleaseError::ReadBinary {
            path: bin.to_path_buf(),
            source: io::Error::other("not a regular file"),
        });
    }
    package_bytes_and_sign(key, &binary, &version, target)
}

/// [`package_and_sign`] for a binary already in memory.
pub fn package_bytes_and_sign(
    key: &SigningKey,
    binary: &[u8],
    version: &semver::Version,
    target: &str,
) -> Result<Artifact, ReleaseError> {
    check_target(target)?;
    let name = artifact_name(version, target);
    let bin_name = binary_name(target);
    let archive_err = |reason: String| ReleaseError::Archive {
        name: name.clone(),
        reason,
    };
    let sign_err = |source: zipsign_api::ZipsignError| ReleaseError::Sign {
        name: name.clone(),
        source,
    };
    let context = Some(name.as_bytes());
    let mut signed = Cursor::new(Vec::new());
    if is_windows_target(target) {
        let unsigned = zip_one(&bin_name, binary).map_err(archive_err)?;
        zipsign_api::sign::copy_and_sign_zip(
            &mut Cursor::new(unsigned),
            &mut signed,
            std::slice::from_ref(key),
            context,
        )
        .map_err(|e| sign_err(e.into()))?;
    } else {
        let unsigned = tar_gz_one(&bin_name, binary).map_err(|e| archive_err(e.to_string()))?;
        zipsign_api::sign::copy_and_sign_tar(
            &mut Cursor::new(unsigned),
            &mut signed,
            std::slice::from_ref(key),
            context,
        )
        .map_err(|e| sign_err(e.into()))?;
    }
    let bytes = signed.into_inner();
    let sha256 = sha256_hex(&bytes);
    Ok(Artifact {
        name,
        version: version.clone(),
        target: target.to_string(),
        bytes,
        sha256,
    })
}

/// A `.tar.gz` with one regular file `name`, mode 0755, owned by 0:0, mtime now.
fn tar_gz_one(name: &str, contents: &[u8]) -> io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut builder = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(contents.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(unix_now());
    builder.append_data(&mut header, name, contents)?;
    builder.into_inner()?.finish()
}

/// A `.zip` with one deflated file `name`, unix mode 0755.
fn zip_one(name: &str, contents: &[u8]) -> Result<Vec<u8>, String> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .unix_permissions(0o755);
    writer
        .start_file(name, options)
        .map_err(|e| e.to_string())?;
    writer.write_all(contents).map_err(|e| e.to_string())?;
    let cursor = writer.finish().map_err(|e| e.to_string())?;
    Ok(cursor.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `secs` since the epoch as RFC 3339 UTC to the second (`2026-07-16T09:30:00Z`).
pub fn rfc3339_utc(secs: u64) -> String {
    roomready_protocol::Timestamp::from_unix_ms(secs.saturating_mul(1000)).to_rfc3339_secs()
}

// --- manifest -----------------------------------------------------------------------------------

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
    pub fn load(path: &Path) -> Result<Manifest, ReleaseError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Manifest::default()),
            Err(source) => {
                return Err(ReleaseError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| ReleaseError::Manifest {
                path: path.to_path_buf(),
                source,
            })?;
        if manifest.schema != MANIFEST_SCHEMA {
            return Err(ReleaseError::ManifestSchema {
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

// --- publishing ---------------------------------------------------------------------------------

/// Where [`publish`] put things.
#[derive(Debug, Clone)]
pub struct Published {
    /// The artifact file.
    pub artifact: PathBuf,
    /// The channel's manifest.
    pub manifest: PathBuf,
}

/// Writes `artifact` to `{feed}/{channel}/` and adds (or replaces) it in that channel's manifest,
/// keeping the other releases. The artifact is in place before the manifest names it, and both
/// are replaced atomically (write to a temporary file, then rename), so a client polling the feed
/// never sees a manifest naming a missing or half-written artifact.
pub fn publish(
    feed: &Path,
    channel: Channel,
    artifact: &Artifact,
) -> Result<Published, ReleaseError> {
    let dir = feed.join(channel.as_str());
    fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let artifact_path = dir.join(&artifact.name);
    write_atomic(&artifact_path, &artifact.bytes)?;

    let manifest_path = dir.join(MANIFEST_FILE);
    let mut manifest = Manifest::load(&manifest_path)?;
    manifest.upsert(
        &artifact.version,
        ManifestAsset {
            name: artifact.name.clone(),
            url: artifact.name.clone(),
            digest: Some(artifact.digest()),
            extra: BTreeMap::new(),
        },
        &rfc3339_utc(unix_now()),
    );
    write_atomic(&manifest_path, manifest.to_json().as_bytes())?;
    Ok(Published {
        artifact: artifact_path,
        manifest: manifest_path,
    })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReleaseError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// What `roomready-sim release` does: read the key, package and sign, publish.
#[derive(Debug, Clone)]
pub struct ReleaseOptions {
    /// The signing key file.
    pub key: PathBuf,
    /// The agent binary.
    pub bin: PathBuf,
    /// Bare semver.
    pub version: String,
    /// Target triple.
    pub target: String,
    /// Channel.
    pub channel: Channel,
    /// The feed directory.
    pub feed: PathBuf,
}

/// Reads the key, packages and signs the binary, publishes it. Checks the cheap things (version,
/// target) before reading anything.
pub fn release(options: &ReleaseOptions) -> Result<(Artifact, Published), ReleaseError> {
    parse_version(&options.version)?;
    check_target(&options.target)?;
    let key = read_signing_key(&options.key)?;
    let artifact = package_and_sign(&key, &options.bin, &options.version, &options.target)?;
    let published = publish(&options.feed, options.channel, &artifact)?;
    Ok((artifact, published))
}

#[cfg(test)]
mod tests;
