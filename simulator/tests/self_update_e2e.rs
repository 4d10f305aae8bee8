//! The publisher side against the updater the agent uses: releases made by
//! `roomready_feed` are served by `UpdateServer` and installed by `self_update`
//! 1.3's own `manifest` backend with `verifying_keys` (zipsign signature, file name as context)
//! and `checksums` (the manifest's `sha256:` digest) — the agent's code path, minus the agent.

use std::fs;
use std::path::{Path, PathBuf};

use roomready_feed::Channel;
use roomready_feed::keys::{KeyFiles, decode_verifying_key, keygen};
use roomready_feed::manifest::Manifest;
use roomready_feed::pack::{Artifact, sha256_hex};
use roomready_feed::publish::{ReleaseOptions, release};
use roomready_simulator::update_server::{Fault, UpdateServer};

/// Host target, so the installed binary's name has no `.exe` on unix hosts.
const TARGET: &str = "x86_64-unknown-linux-gnu";

struct World {
    _dir: tempfile::TempDir,
    root: PathBuf,
    feed: PathBuf,
    keys: KeyFiles,
    install: PathBuf,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let feed = root.join("feed");
    fs::create_dir_all(&feed).unwrap();
    let keys = keygen(&root.join("keys")).unwrap();
    let install = root.join("install").join("roomready-agent");
    fs::create_dir_all(install.parent().unwrap()).unwrap();
    fs::write(&install, b"agent 0.1.0").unwrap();
    World {
        _dir: dir,
        root,
        feed,
        keys,
        install,
    }
}

impl World {
    fn release(&self, version: &str, target: &str, contents: &[u8]) -> Artifact {
        let bin = self.root.join(format!("bin-{version}-{target}"));
        fs::write(&bin, contents).unwrap();
        let (artifact, _) = release(&ReleaseOptions {
            key: self.keys.signing_key.clone(),
            bin,
            version: version.into(),
            target: target.into(),
            channel: Channel::Stable,
            feed: self.feed.clone(),
        })
        .unwrap();
        artifact
    }

    fn pinned_key(&self) -> self_update::VerifyingKey {
        decode_verifying_key(&fs::read_to_string(&self.keys.verifying_key).unwrap()).unwrap()
    }
}

/// Runs self_update's manifest backend the way the agent does, on a blocking thread.
async fn update(
    url: String,
    install: PathBuf,
    key: self_update::VerifyingKey,
) -> Result<self_update::VersionStatus, String> {
    tokio::task::spawn_blocking(move || {
        self_update::backends::manifest::Update::configure()
            .manifest_url(format!("{url}stable/manifest.json"))
            .bin_name("roomready-agent")
            .target(TARGET)
            .current_version("0.1.0")
            .bin_install_path(&install)
            .verifying_keys(vec![key])
            .no_confirm(true)
            .show_output(false)
            .show_download_progress(false)
            .build()
            .and_then(|u| u.update())
            .map_err(|e| format!("{e:?}"))
    })
    .await
    .unwrap()
}

fn artifact_path(feed: &Path, name: &str) -> PathBuf {
    feed.join("stable").join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_update_installs_a_signed_release_from_the_feed() {
    let w = world();
    w.release("0.1.0", TARGET, b"agent 0.1.0");
    let artifact = w.release("0.2.0", TARGET, b"agent 0.2.0");
    let server = UpdateServer::start(&w.feed).await.unwrap();

    let status = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap();
    assert!(status.is_updated(), "{status:?}");
    assert_eq!(status.version(), "0.2.0");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.2.0");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&w.install).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "installed executable: {mode:o}");
    }
    assert_eq!(server.requests("/stable/manifest.json"), 1);
    assert_eq!(server.requests(&format!("/stable/{}", artifact.name)), 1);

    // Up to date now: nothing more is downloaded.
    let again = tokio::task::spawn_blocking({
        let url = server.url();
        let install = w.install.clone();
        let key = w.pinned_key();
        move || {
            self_update::backends::manifest::Update::configure()
                .manifest_url(format!("{url}stable/manifest.json"))
                .bin_name("roomready-agent")
                .target(TARGET)
                .current_version("0.2.0")
                .bin_install_path(&install)
                .verifying_keys(vec![key])
                .no_confirm(true)
                .show_output(false)
                .show_download_progress(false)
                .build()
                .and_then(|u| u.update())
        }
    })
    .await
    .unwrap()
    .unwrap();
    assert!(!again.is_updated());
    assert_eq!(server.requests(&format!("/stable/{}", artifact.name)), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_update_refuses_another_key_a_tampered_artifact_and_a_cut_download() {
    let w = world();
    let artifact = w.release("0.2.0", TARGET, b"agent 0.2.0");
    let path = format!("/stable/{}", artifact.name);
    let server = UpdateServer::start(&w.feed).await.unwrap();

    // A key the agent does not pin.
    let other = keygen(&w.root.join("other-keys")).unwrap();
    let other_key = decode_verifying_key(&other.verifying_key_b64).unwrap();
    let e = update(server.url(), w.install.clone(), other_key)
        .await
        .unwrap_err();
    assert!(e.contains("Signature"), "{e}");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.1.0");

    // The download cut short (full Content-Length announced): refused, nothing installed.
    server.fail_next(&path, Fault::CutAfter(100));
    let e = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap_err();
    assert!(e.contains("UnexpectedEof"), "{e}");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.1.0", "{e}");
    // A server error: refused too.
    server.fail_next(&path, Fault::Status(500));
    let e = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap_err();
    assert!(e.contains("500"), "{e}");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.1.0");

    // A byte changed on the server: the manifest digest catches it...
    let file = artifact_path(&w.feed, &artifact.name);
    let mut bytes = fs::read(&file).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x01;
    fs::write(&file, &bytes).unwrap();
    let e = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap_err();
    assert!(e.contains("ChecksumMismatch"), "{e}");
    // ...and with the digest "fixed" too, the signature does.
    let manifest_path = w.feed.join("stable/manifest.json");
    let mut manifest = Manifest::load(&manifest_path).unwrap();
    manifest.releases[0].assets[0].digest = Some(format!("sha256:{}", sha256_hex(&bytes)));
    fs::write(&manifest_path, manifest.to_json()).unwrap();
    let e = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap_err();
    assert!(e.contains("Signature"), "{e}");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.1.0");

    // Re-released intact: the same updater installs it.
    w.release("0.2.0", TARGET, b"agent 0.2.0");
    let status = update(server.url(), w.install.clone(), w.pinned_key())
        .await
        .unwrap();
    assert_eq!(status.version(), "0.2.0");
    assert_eq!(fs::read(&w.install).unwrap(), b"agent 0.2.0");
    assert_eq!(server.requests(&path), 6);
    server.stop().await;
}

/// `self_update::verify_signature` is the check `update()` runs on the download, named as the
/// asset: the file name is the context, for `.tar.gz` and `.zip` alike.
#[test]
fn self_update_verify_signature_takes_the_asset_name_as_context() {
    let w = world();
    let key = w.pinned_key();
    for target in [TARGET, "x86_64-pc-windows-msvc", "aarch64-pc-windows-msvc"] {
        let artifact = w.release("0.3.0", target, b"agent 0.3.0");
        let file = artifact_path(&w.feed, &artifact.name);
        self_update::verify_signature(&file, &[key]).unwrap();

        // The same bytes under another asset's name do not verify.
        let renamed_dir = w.root.join(format!("renamed-{target}"));
        fs::create_dir_all(&renamed_dir).unwrap();
        let other_name = artifact.name.replace("0.3.0", "0.3.1");
        let renamed = renamed_dir.join(&other_name);
        fs::copy(&file, &renamed).unwrap();
        assert!(
            self_update::verify_signature(&renamed, &[key]).is_err(),
            "{other_name} verified"
        );
    }
}
