//! Publishing: an artifact into `{feed}/{channel}/` and its channel's manifest, both replaced
//! atomically; and [`release`], the whole step from key and binary to published feed.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::FeedError;
use crate::error::io_err;
use crate::keys::read_signing_key;
use crate::manifest::{Manifest, ManifestAsset};
use crate::naming::{Channel, MANIFEST_FILE, check_target, parse_version};
use crate::pack::{Artifact, package_and_sign, unix_now};

/// `secs` since the epoch as RFC 3339 UTC to the second (`2026-07-16T09:30:00Z`).
pub fn rfc3339_utc(secs: u64) -> String {
    roomready_protocol::Timestamp::from_unix_ms(secs.saturating_mul(1000)).to_rfc3339_secs()
}

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
pub fn publish(feed: &Path, channel: Channel, artifact: &Artifact) -> Result<Published, FeedError> {
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

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FeedError> {
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

/// What `roomready-release release` does: read the key, package and sign, publish.
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
pub fn release(options: &ReleaseOptions) -> Result<(Artifact, Published), FeedError> {
    parse_version(&options.version)?;
    check_target(&options.target)?;
    let key = read_signing_key(&options.key)?;
    let artifact = package_and_sign(&key, &options.bin, &options.version, &options.target)?;
    let published = publish(&options.feed, options.channel, &artifact)?;
    Ok((artifact, published))
}
