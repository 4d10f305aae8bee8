//! The agent's GitHub feed (`update_github_repo`, `update_github_api_url`) against the update
//! server's GitHub release API: releases made by `roomready_feed` are listed as
//! GitHub releases and installed by the agent's own `update::check` and `update::install`, with
//! channels mapped to semver pre-releases, a private repository's token, and the same refusals
//! as the manifest feed.

use std::fs;
use std::path::PathBuf;

use roomready_agent::config::Config;
use roomready_agent::update::{self, UpdateError, UpdateSettings};
use roomready_feed::Channel;
use roomready_feed::keys::{KeyFiles, keygen};
use roomready_feed::publish::{ReleaseOptions, release};
use roomready_simulator::update_server::UpdateServer;

const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A release "binary" that passes the self-test the installer runs: a script that exits 0.
fn script(version: &str) -> Vec<u8> {
    format!("#!/bin/sh\n# roomready-agent {version}\nexit 0\n").into_bytes()
}

struct World {
    dir: tempfile::TempDir,
    feed: PathBuf,
    keys: KeyFiles,
    install: PathBuf,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().expect("tempdir");
        let feed = dir.path().join("feed");
        fs::create_dir_all(&feed).expect("feed dir");
        let keys = keygen(&dir.path().join("keys")).expect("keygen");
        let install = dir.path().join("roomready-agent");
        fs::write(&install, script("0.1.0")).expect("install");
        World {
            dir,
            feed,
            keys,
            install,
        }
    }

    fn release_with(&self, key: &std::path::Path, version: &str, channel: Channel) {
        let bin = self.dir.path().join(format!("bin-{version}"));
        fs::write(&bin, script(version)).expect("bin");
        release(&ReleaseOptions {
            key: key.to_path_buf(),
            bin,
            version: version.into(),
            target: TARGET.into(),
            channel,
            feed: self.feed.clone(),
        })
        .expect("release");
    }

    fn release(&self, version: &str, channel: Channel) {
        self.release_with(&self.keys.signing_key, version, channel);
    }

    /// Settings from a config naming the GitHub feed, for `extra` config lines.
    fn settings(&self, server: &UpdateServer, extra: &str) -> UpdateSettings {
        let key = fs::read_to_string(&self.keys.verifying_key).expect("verifying key");
        let config = self.dir.path().join("agent.toml");
        fs::write(
            &config,
            format!(
                "broker_url = \"mqtt://127.0.0.1\"\ndevice_id = \"mtr-1\"\nfacts_file = \"f.toml\"\n\
                 update_github_repo = \"contoso/roomready\"\nupdate_github_api_url = \"{}\"\n\
                 update_keys = [\"{}\"]\n{extra}",
                server.github_api_url(),
                key.trim()
            ),
        )
        .expect("config");
        let parsed = Config::load(&config).expect("valid config");
        let mut settings = UpdateSettings::from_config(&parsed.update, &config).expect("settings");
        settings.install_path = self.install.clone();
        settings.target = TARGET.into();
        settings.current_version = semver::Version::new(0, 1, 0);
        settings
    }
}

/// `check`, then `install` of what it found, on a blocking thread (ureq blocks).
async fn check_and_install(
    settings: UpdateSettings,
) -> Result<Option<update::Installed>, UpdateError> {
    tokio::task::spawn_blocking(move || {
        let Some(release) = update::check(&settings)? else {
            return Ok(None);
        };
        update::install(&settings, &release, |_, _| {}).map(Some)
    })
    .await
    .expect("the update thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stable_takes_the_newest_release_and_beta_a_pre_release() {
    let w = World::new();
    w.release("0.2.0", Channel::Stable);
    w.release("0.3.0-beta.1", Channel::Beta);
    let server = UpdateServer::start(&w.feed).await.expect("server");

    let installed = check_and_install(w.settings(&server, ""))
        .await
        .expect("installs")
        .expect("a newer release");
    assert_eq!(installed.version.to_string(), "0.2.0");
    assert_eq!(fs::read(&w.install).expect("read"), script("0.2.0"));
    assert_eq!(
        fs::read(&installed.prev).expect("prev"),
        script("0.1.0"),
        "the previous binary is kept"
    );
    assert_eq!(
        server.requests("/api/v3/repos/contoso/roomready/releases"),
        1
    );
    let asset = format!("roomready-agent-0.2.0-{TARGET}.tar.gz");
    assert_eq!(
        server.requests(&format!(
            "/api/v3/repos/contoso/roomready/releases/assets/stable/{asset}"
        )),
        1,
        "downloaded through the API's asset URL"
    );
    assert_eq!(
        server.requests(&format!("/stable/{asset}")),
        1,
        "then its redirect"
    );
    assert_eq!(
        server.authorization("/api/v3/repos/contoso/roomready/releases"),
        None,
        "a public repository"
    );

    // Beta sees the pre-release.
    let mut beta = w.settings(&server, "update_channel = \"beta\"\n");
    beta.current_version = semver::Version::new(0, 2, 0);
    let found = tokio::task::spawn_blocking(move || update::check(&beta))
        .await
        .expect("thread")
        .expect("check")
        .expect("a pre-release");
    assert_eq!(found.version.to_string(), "0.3.0-beta.1");
    // Stable on 0.2.0 is up to date.
    let mut stable = w.settings(&server, "");
    stable.current_version = semver::Version::new(0, 2, 0);
    let found = tokio::task::spawn_blocking(move || update::check(&stable))
        .await
        .expect("thread")
        .expect("check");
    assert_eq!(found, None);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_needs_its_token() {
    let w = World::new();
    w.release("0.2.0", Channel::Stable);
    let server = UpdateServer::start(&w.feed).await.expect("server");
    server.require_github_token(Some("ghp_t0k3n"));

    let err = check_and_install(w.settings(&server, ""))
        .await
        .expect_err("no token");
    assert!(
        matches!(&err, UpdateError::FeedUnreachable { url, .. } if url.ends_with("/repos/contoso/roomready/releases")),
        "{err}"
    );
    assert_eq!(err.reason(), "feed_unreachable");
    assert_eq!(fs::read(&w.install).expect("read"), script("0.1.0"));

    fs::write(w.dir.path().join("token"), "ghp_t0k3n\n").expect("token");
    let settings = w.settings(&server, "update_github_token_file = \"token\"\n");
    assert!(
        !format!("{settings:?}").contains("t0k3n"),
        "the token stays out of Debug output"
    );
    let installed = check_and_install(settings)
        .await
        .expect("installs")
        .expect("a newer release");
    assert_eq!(installed.version.to_string(), "0.2.0");
    let asset = format!("roomready-agent-0.2.0-{TARGET}.tar.gz");
    assert_eq!(
        server
            .authorization(&format!(
                "/api/v3/repos/contoso/roomready/releases/assets/stable/{asset}"
            ))
            .as_deref(),
        Some("token ghp_t0k3n"),
        "the asset download carried the token too"
    );
    assert_eq!(
        server.authorization(&format!("/stable/{asset}")),
        None,
        "the redirect's target (GitHub's storage host) never sees the token"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_hold_on_the_github_feed() {
    let w = World::new();
    // Signed by a key that is not pinned.
    let other = keygen(&w.dir.path().join("other-keys")).expect("keygen");
    w.release_with(&other.signing_key, "0.2.0", Channel::Stable);
    let server = UpdateServer::start(&w.feed).await.expect("server");
    let err = check_and_install(w.settings(&server, ""))
        .await
        .expect_err("wrong key");
    assert_eq!(err.reason(), "wrong_key", "{err}");
    assert_eq!(fs::read(&w.install).expect("read"), script("0.1.0"));

    // An asset without a digest (an older GitHub Enterprise) is refused before any download.
    let manifest = w.feed.join("stable/manifest.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).expect("manifest")).expect("json");
    json["releases"][0]["assets"][0]
        .as_object_mut()
        .expect("asset")
        .remove("digest");
    fs::write(&manifest, json.to_string()).expect("write");
    let err = check_and_install(w.settings(&server, ""))
        .await
        .expect_err("no digest");
    assert!(
        matches!(&err, UpdateError::ManifestInvalid { reason, .. } if reason.contains("has no digest")),
        "{err}"
    );

    server.stop().await;
}
