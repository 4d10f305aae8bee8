//! Signed self-update end to end: a feed served over loopback HTTP from a temporary directory,
//! artifacts packed and signed here with zipsign the way the publisher does, and a copy of the
//! agent binary as the "installed" one (the test binary itself is never replaced).
#![cfg(unix)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use roomready_agent::config::UpdateFeed;
use roomready_agent::update::{self, Release, UpdateError, UpdateSettings};
use semver::Version;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use zipsign_api::SigningKey;

const AGENT: &str = env!("CARGO_BIN_EXE_roomready-agent");
const TARGET: &str = "x86_64-test-linux";

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A feed directory served on 127.0.0.1 by a tiny HTTP/1.0 file server.
struct Feed {
    root: tempfile::TempDir,
    url: String,
    _runtime: tokio::runtime::Runtime,
}

impl Feed {
    fn start() -> Feed {
        let root = tempfile::tempdir().expect("feed dir");
        let dir = root.path().to_owned();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        runtime.spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let dir = dir.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split(' ').nth(1).unwrap_or("/").trim_start_matches('/');
                    let response = match std::fs::read(dir.join(path)) {
                        Ok(body) if !path.contains("..") => {
                            let mut r = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes();
                            r.extend(body);
                            r
                        }
                        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Feed {
            root,
            url,
            _runtime: runtime,
        }
    }

    /// Publishes `artifact` as `version` in the stable channel's manifest (replacing it), with
    /// `digest` or the artifact's own sha256.
    fn publish(&self, releases: &[(&str, &[u8], Option<String>)]) {
        let dir = self.root.path().join("stable");
        std::fs::create_dir_all(&dir).expect("channel dir");
        let mut entries = Vec::new();
        for (version, artifact, digest) in releases {
            let name = asset_name(version);
            std::fs::write(dir.join(&name), artifact).expect("artifact");
            let digest = digest.clone().unwrap_or_else(|| sha256(artifact));
            entries.push(serde_json::json!({
                "version": version,
                "assets": [{ "name": name, "url": name, "digest": digest }],
            }));
        }
        let manifest = serde_json::json!({ "schema": 1, "releases": entries });
        std::fs::write(dir.join("manifest.json"), manifest.to_string()).expect("manifest");
    }
}

/// The feed's artifact name (`update::feed`), also for versions no semver parser takes.
fn asset_name(version: &str) -> String {
    use roomready_feed::{AGENT_BIN, archive_ext};
    format!("{AGENT_BIN}-{version}-{TARGET}.{}", archive_ext(TARGET))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", roomready_feed::pack::sha256_hex(bytes))
}

/// A `.tar.gz` holding `binary` as `roomready-agent` (mode 755), as the publisher packs it.
fn tar_gz(binary: &[u8]) -> Vec<u8> {
    use roomready_feed::pack::{Compression, tar_gz_one};
    tar_gz_one(
        &roomready_feed::binary_name(TARGET),
        binary,
        Compression::Fastest,
    )
    .expect("tar")
}

/// `archive` signed by `key` for the file name of `version` (zipsign's context), as the
/// publisher signs it; `version` need not be semver.
fn sign(archive: &[u8], key: &SigningKey, version: &str) -> Vec<u8> {
    roomready_feed::pack::sign_archive(archive, key, &asset_name(version), false).expect("sign")
}

/// The agent binary packed (once: it is large in a debug build).
fn agent_archive() -> &'static [u8] {
    static ARCHIVE: OnceLock<Vec<u8>> = OnceLock::new();
    ARCHIVE.get_or_init(|| tar_gz(&std::fs::read(AGENT).expect("agent binary")))
}

/// An installed "old" agent (the real binary plus a marker, so a swap is visible), a config
/// pointing at the feed, and the settings for them.
struct Install {
    dir: tempfile::TempDir,
    settings: UpdateSettings,
}

impl Install {
    fn new(feed: &Feed) -> Install {
        let dir = tempfile::tempdir().expect("install dir");
        let bin = dir.path().join("roomready-agent");
        let mut old = std::fs::read(AGENT).expect("agent");
        old.extend_from_slice(b"old-version-marker");
        std::fs::write(&bin, &old).expect("install");
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let pinned = roomready_feed::keys::verifying_key_b64(&key(1).verifying_key());
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "broker_url = \"mqtt://127.0.0.1\"\ndevice_id = \"mtr-1\"\nfacts_file = \"facts.toml\"\n\
                 update_feed_url = \"{}\"\nupdate_keys = [\"{pinned}\"]\nupdate_max_mib = 1024\n",
                feed.url
            ),
        )
        .expect("config");
        let parsed = roomready_agent::config::Config::load(&config).expect("valid config");
        let mut settings = UpdateSettings::from_config(&parsed.update, &config).expect("settings");
        settings.install_path = bin;
        settings.target = TARGET.into();
        Install { dir, settings }
    }

    fn bin(&self) -> PathBuf {
        self.settings.install_path.clone()
    }

    fn prev(&self) -> PathBuf {
        self.dir.path().join("roomready-agent.prev")
    }

    fn run(&self) -> Result<update::Installed, UpdateError> {
        let release: Release = update::check(&self.settings)?.expect("a release to install");
        update::install(&self.settings, &release, |_, _| {})
    }

    fn assert_untouched(&self) {
        assert!(
            read(&self.bin()).ends_with(b"old-version-marker"),
            "the binary was replaced"
        );
        assert!(!self.prev().exists(), "a .prev was made");
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

#[test]
fn a_signed_newer_release_is_installed_and_the_previous_binary_kept() {
    let feed = Feed::start();
    feed.publish(&[("9.9.9", &sign(agent_archive(), &key(1), "9.9.9"), None)]);
    let install = Install::new(&feed);
    let release = update::check(&install.settings)
        .expect("check")
        .expect("newer");
    assert_eq!(release.version, Version::new(9, 9, 9));
    let installed = update::install(&install.settings, &release, |_, _| {}).expect("installed");
    assert_eq!(installed.version, Version::new(9, 9, 9));
    assert_eq!(installed.prev, install.prev());
    assert_eq!(
        read(&install.bin()),
        read(Path::new(AGENT)),
        "the new binary is in place"
    );
    assert!(
        read(&install.prev()).ends_with(b"old-version-marker"),
        "the old one is kept"
    );
    // Nothing newer than 9.9.9 once that is the running version.
    let mut after = install.settings.clone();
    after.current_version = Version::new(9, 9, 9);
    assert_eq!(update::check(&after).expect("check"), None);
}

/// A small stand-in binary: these releases are refused before anything would run.
const SCRIPT: &[u8] = b"#!/bin/sh\necho should never run >&2\nexit 0\n";

#[test]
fn an_unsigned_artifact_is_refused() {
    let feed = Feed::start();
    feed.publish(&[("9.9.9", &tar_gz(SCRIPT), None)]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("unsigned");
    assert!(matches!(err, UpdateError::Unsigned { .. }), "{err}");
    assert!(err.to_string().contains("is not signed"), "{err}");
    install.assert_untouched();
}

#[test]
fn an_artifact_signed_by_another_key_is_refused() {
    let feed = Feed::start();
    feed.publish(&[("9.9.9", &sign(&tar_gz(SCRIPT), &key(2), "9.9.9"), None)]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("wrong key");
    assert_eq!(
        err,
        UpdateError::WrongKey {
            asset: asset_name("9.9.9"),
            keys: 1
        },
        "{err}"
    );
    install.assert_untouched();
}

#[test]
fn an_artifact_signed_for_another_version_is_refused_naming_that_version() {
    let feed = Feed::start();
    // A genuine artifact of 1.0.0, signed by the pinned key, republished as 9.9.9.
    let genuine = sign(&tar_gz(SCRIPT), &key(1), "1.0.0");
    feed.publish(&[("1.0.0", &genuine, None), ("9.9.9", &genuine, None)]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("misnamed");
    assert_eq!(
        err,
        UpdateError::Misnamed {
            asset: asset_name("9.9.9"),
            signed_as: asset_name("1.0.0"),
        },
        "{err}"
    );
    assert_eq!(err.reason(), "misnamed");
    assert_eq!(err.exit_code(), 76);
    assert!(
        err.to_string().contains(&format!(
            "is signed by a pinned key, but as {}",
            asset_name("1.0.0")
        )),
        "{err}"
    );
    install.assert_untouched();

    // The name it was signed for is no longer listed: the refusal cannot tell another key from
    // another name, and says both.
    feed.publish(&[("9.9.9", &genuine, None)]);
    let err = install.run().expect_err("signed for an unlisted name");
    assert!(matches!(err, UpdateError::WrongKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("signed with another key, or for another file name"),
        "{err}"
    );
    install.assert_untouched();
}

#[test]
fn an_altered_artifact_is_refused_even_with_a_matching_digest() {
    let feed = Feed::start();
    let mut artifact = sign(&tar_gz(&SCRIPT.repeat(50)), &key(1), "9.9.9");
    let middle = artifact.len() / 3;
    artifact[middle] ^= 0x55;
    // The attacker controls the manifest too: the digest is the altered file's.
    feed.publish(&[("9.9.9", &artifact, None)]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("tampered");
    assert!(matches!(err, UpdateError::Tampered { .. }), "{err}");
    install.assert_untouched();
}

#[test]
fn a_digest_mismatch_is_refused() {
    let feed = Feed::start();
    let artifact = sign(&tar_gz(SCRIPT), &key(1), "9.9.9");
    feed.publish(&[("9.9.9", &artifact, Some(sha256(b"something else")))]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("digest");
    assert!(matches!(err, UpdateError::DigestMismatch { .. }), "{err}");
    install.assert_untouched();
}

#[test]
fn an_artifact_over_update_max_mib_is_refused() {
    let feed = Feed::start();
    // 2 MiB that gzip cannot shrink.
    let mut noise = Vec::with_capacity(2 << 20);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while noise.len() < 2 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    feed.publish(&[("9.9.9", &sign(&tar_gz(&noise), &key(1), "9.9.9"), None)]);
    let mut install = Install::new(&feed);
    install.settings.max_bytes = 1 << 20;
    let err = install.run().expect_err("oversize");
    assert!(
        matches!(
            err,
            UpdateError::Oversize {
                limit: 1_048_576,
                ..
            }
        ),
        "{err}"
    );
    install.assert_untouched();
}

#[test]
fn a_downgrade_is_refused_unless_allowed() {
    let feed = Feed::start();
    feed.publish(&[("0.0.1", &sign(agent_archive(), &key(1), "0.0.1"), None)]);
    let mut install = Install::new(&feed);
    // Nothing newer: the feed only has an older release.
    assert_eq!(update::check(&install.settings).expect("check"), None);
    install.settings.requested = Some(Version::new(0, 0, 1));
    let err = install.run().expect_err("downgrade");
    assert!(matches!(err, UpdateError::Downgrade { .. }), "{err}");
    assert!(err.to_string().contains("allow_downgrade"), "{err}");
    install.assert_untouched();

    install.settings.allow_downgrade = true;
    let installed = install.run().expect("downgrade allowed");
    assert_eq!(installed.version, Version::new(0, 0, 1));
    assert_eq!(read(&install.bin()), read(Path::new(AGENT)));
}

#[test]
fn a_new_binary_that_fails_its_self_test_is_not_swapped_in() {
    let feed = Feed::start();
    let broken = b"#!/bin/sh\necho self-test: broken >&2\nexit 1\n";
    feed.publish(&[("9.9.9", &sign(&tar_gz(broken), &key(1), "9.9.9"), None)]);
    let install = Install::new(&feed);
    let err = install.run().expect_err("self-test");
    match &err {
        UpdateError::SelfTestFailed { output, .. } => assert!(output.contains("broken"), "{err}"),
        other => panic!("expected SelfTestFailed, got {other}"),
    }
    install.assert_untouched();
}

#[test]
fn an_unreachable_feed_and_an_invalid_manifest_are_refused() {
    let feed = Feed::start();
    let mut install = Install::new(&feed);
    // No manifest published: 404.
    let err = update::check(&install.settings).expect_err("404");
    assert!(matches!(err, UpdateError::FeedUnreachable { .. }), "{err}");
    std::fs::create_dir_all(feed.root.path().join("stable")).expect("dir");
    std::fs::write(feed.root.path().join("stable/manifest.json"), "not json").expect("write");
    let err = update::check(&install.settings).expect_err("invalid");
    assert!(matches!(err, UpdateError::ManifestInvalid { .. }), "{err}");
    // A version that does not parse (too large for u64, not semver at all) is an invalid
    // manifest too, never passed over into "up to date".
    for version in ["9999999999999999999999.0.0", "latest", "1.2"] {
        feed.publish(&[(version, &tar_gz(SCRIPT), None)]);
        let err = update::check(&install.settings).expect_err(version);
        assert!(
            matches!(err, UpdateError::ManifestInvalid { .. }),
            "{version}: {err}"
        );
        assert_eq!(err.exit_code(), 65);
        assert!(
            err.to_string().contains(&format!(
                "is invalid: releases[0]: version {version:?} is not a semantic version"
            )),
            "{err}"
        );
    }
    // Nothing listens on port 9 of loopback.
    install.settings.feed = UpdateFeed::Manifest {
        url: "http://127.0.0.1:9".into(),
    };
    let err = update::check(&install.settings).expect_err("refused");
    assert!(matches!(err, UpdateError::FeedUnreachable { .. }), "{err}");
}

#[test]
fn cli_check_prints_the_available_version_and_refuses_a_downgrade() {
    let feed = Feed::start();
    let install = Install::new(&feed);
    let config = install.dir.path().join("agent.toml");
    let script = sign(&tar_gz(SCRIPT), &key(1), "9.9.9");
    let target = roomready_feed::this_target();
    let dir = feed.root.path().join("stable");
    std::fs::create_dir_all(&dir).expect("dir");
    let mut entries = Vec::new();
    for version in ["0.0.1", "9.9.9"] {
        let name = format!("roomready-agent-{version}-{target}.tar.gz");
        std::fs::write(dir.join(&name), &script).expect("artifact");
        entries.push(serde_json::json!({
            "version": version,
            "assets": [{ "name": name, "url": name, "digest": sha256(&script) }],
        }));
    }
    let manifest = serde_json::json!({ "schema": 1, "releases": entries }).to_string();
    std::fs::File::create(dir.join("manifest.json"))
        .and_then(|mut f| f.write_all(manifest.as_bytes()))
        .expect("manifest");

    let out = std::process::Command::new(AGENT)
        .args(["update", "--check", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("9.9.9 available"),
        "{out:?}"
    );

    // Refused before any download: the running test binary is never at risk.
    let out = std::process::Command::new(AGENT)
        .args(["update", "--version", "0.0.1", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(77), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing to downgrade"),
        "{out:?}"
    );

    let out = std::process::Command::new(AGENT)
        .args(["self-test", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(install.dir.path().join("journal").is_dir());
}
