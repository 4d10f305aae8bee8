//! Packing and signing: the agent binary in a one-file `.tar.gz` (`.zip` for Windows targets),
//! signed with zipsign (ed25519ph) with the artifact's file name as the context, so that
//! `self_update::verify_signature` verifies it with `Some(file_name.as_bytes())`.

use std::fmt;
use std::fs;
use std::io::{self, Cursor, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use zipsign_api::SigningKey;

use crate::FeedError;
use crate::naming::{artifact_name, binary_name, check_target, is_windows_target, parse_version};

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
) -> Result<Artifact, FeedError> {
    let version = parse_version(version)?;
    check_target(target)?;
    let binary = fs::read(bin).map_err(|source| FeedError::ReadBinary {
        path: bin.to_path_buf(),
        source,
    })?;
    if fs::metadata(bin).map(|m| !m.is_file()).unwrap_or(false) {
        return Err(FeedError::ReadBinary {
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
) -> Result<Artifact, FeedError> {
    check_target(target)?;
    let name = artifact_name(version, target);
    let bin_name = binary_name(target);
    let archive_err = |reason: String| FeedError::Archive {
        name: name.clone(),
        reason,
    };
    let unsigned = if is_windows_target(target) {
        zip_one(&bin_name, binary).map_err(archive_err)?
    } else {
        tar_gz_one(&bin_name, binary, Compression::Smallest)
            .map_err(|e| archive_err(e.to_string()))?
    };
    let bytes = sign_archive(&unsigned, key, &name, is_windows_target(target))?;
    let sha256 = sha256_hex(&bytes);
    Ok(Artifact {
        name,
        version: version.clone(),
        target: target.to_string(),
        bytes,
        sha256,
    })
}

/// `archive` (a `.zip` when `zip`, else a `.tar.gz`) signed by `key` for the published file name
/// `name`, zipsign's context.
pub fn sign_archive(
    archive: &[u8],
    key: &SigningKey,
    name: &str,
    zip: bool,
) -> Result<Vec<u8>, FeedError> {
    let sign_err = |source: zipsign_api::ZipsignError| FeedError::Sign {
        name: name.to_owned(),
        source,
    };
    let context = Some(name.as_bytes());
    let mut signed = Cursor::new(Vec::new());
    let keys = std::slice::from_ref(key);
    if zip {
        zipsign_api::sign::copy_and_sign_zip(&mut Cursor::new(archive), &mut signed, keys, context)
            .map_err(|e| sign_err(e.into()))?;
    } else {
        zipsign_api::sign::copy_and_sign_tar(&mut Cursor::new(archive), &mut signed, keys, context)
            .map_err(|e| sign_err(e.into()))?;
    }
    Ok(signed.into_inner())
}

/// How hard [`tar_gz_one`] compresses: releases are packed [`Compression::Smallest`]; a test
/// packing a large debug binary many times wants [`Compression::Fastest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Smallest,
    Fastest,
}

/// A `.tar.gz` with one regular file `name`, mode 0755, owned by 0:0, mtime now.
pub fn tar_gz_one(name: &str, contents: &[u8], level: Compression) -> io::Result<Vec<u8>> {
    let level = match level {
        Compression::Smallest => flate2::Compression::best(),
        Compression::Fastest => flate2::Compression::fast(),
    };
    let gz = flate2::write::GzEncoder::new(Vec::new(), level);
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

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
