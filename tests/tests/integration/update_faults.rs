//! Faults during a self-update, through `roomready-agent update` in a child process against a
//! release made by `roomready-sim`'s release code and served by its update server:
//!
//! - the server cuts the download short: nothing is installed, and the next attempt succeeds;
//! - the updater is SIGKILLed at moments spread over the whole update: the installed binary is
//!   always whole — byte for byte the old one or the new one — and runnable;
//! - over HTTPS: the feed's certificate must chain to `update_ca_file` (or Mozilla's roots).
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use roomready_feed::Channel;
use roomready_feed::keys::keygen;
use roomready_feed::publish::{ReleaseOptions, release};
use roomready_simulator::update_server::{Fault, UpdateServer};
use roomready_tests::agent_exe;

/// A "new version": a script that passes the self-test and reports itself.
const NEW: &str =
    "#!/bin/sh\nif [ \"$1\" = self-test ]; then echo self-test ok; exit 0; fi\necho new-version\n";

struct World {
    dir: tempfile::TempDir,
    installed: PathBuf,
    config: PathBuf,
    artifact_path: String,
}

/// An installed copy of `old` (a small script, so every attempt is quick), a feed with a signed
/// 9.9.9 whose binary is [`NEW`], and a config pointing at `server`.
async fn world() -> (World, UpdateServer) {
    world_with(None).await
}

/// [`world`], served over HTTPS with `tls` (certificate and key PEM) when given.
async fn world_with(tls: Option<(&str, &str)>) -> (World, UpdateServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let installed = bin.join("roomready-agent");
    let new = dir.path().join("new-agent");
    std::fs::write(&new, NEW).expect("new");
    std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let keys = keygen(&dir.path().join("keys")).expect("keygen");
    let feed = dir.path().join("feed");
    let target = roomready_feed::this_target();
    release(&ReleaseOptions {
        key: keys.signing_key.clone(),
        bin: new,
        version: "9.9.9".into(),
        target: target.into(),
        channel: Channel::Stable,
        feed: feed.clone(),
    })
    .expect("release");
    let server = match tls {
        Some((cert, key)) => UpdateServer::start_tls(feed, cert, key)
            .await
            .expect("https server"),
        None => UpdateServer::start(feed).await.expect("server"),
    };
    let config = dir.path().join("agent.toml");
    std::fs::write(dir.path().join("facts.toml"), "kind = \"unknown\"\n").expect("facts");
    std::fs::write(
        &config,
        format!(
            "broker_url = \"mqtt://127.0.0.1:1\"\ndevice_id = \"mtr-faults\"\nfacts_file = \"facts.toml\"\n\
             update_feed_url = \"{}\"\nupdate_keys = [\"{}\"]\n",
            server.url().trim_end_matches('/'),
            keys.verifying_key_b64
        ),
    )
    .expect("config");
    let world = World {
        artifact_path: format!("/stable/roomready-agent-9.9.9-{target}.tar.gz"),
        dir,
        installed,
        config,
    };
    world.install_old();
    (world, server)
}

impl World {
    /// The "old version" installed: the real agent, so that `update` runs its real code; it is
    /// started from this path, so that is the binary replaced.
    fn install_old(&self) {
        std::fs::copy(agent_exe(), &self.installed).expect("install the old version");
        let _ = std::fs::remove_file(self.installed.with_file_name("roomready-agent.prev"));
    }

    fn update(&self) -> tokio::process::Child {
        tokio::process::Command::new(&self.installed)
            .args(["update", "--config", self.config.to_str().expect("utf-8")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the updater")
    }

    /// Runs the updater to its end; it must exit 0.
    async fn update_succeeds(&self) {
        let out = self.update().wait_with_output().await.expect("updater ran");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn is_new(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes == NEW.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_cut_short_installs_nothing_and_the_next_attempt_succeeds() {
    let (w, server) = world().await;
    let old = std::fs::read(&w.installed).expect("old");
    server.fail_next(&w.artifact_path, Fault::CutAfter(64));
    let out = w.update().wait_with_output().await.expect("updater ran");
    assert_ne!(out.status.code(), Some(0), "a cut download is an error");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("roomready-agent"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&w.installed).expect("installed"),
        old,
        "nothing installed"
    );
    // Retried: the server answers in full this time.
    w.update_succeeds().await;
    assert!(is_new(&w.installed), "the new version is installed");
    assert!(server.requests(&w.artifact_path) >= 2);
    drop(w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_any_moment_leaves_a_whole_runnable_binary() {
    let (w, _server) = world().await;
    let old = std::fs::read(&w.installed).expect("old");
    // How long a whole update takes here, to spread the kills over it.
    let started = Instant::now();
    w.update_succeeds().await;
    let whole = started.elapsed();
    let mut outcomes = (0, 0);
    for step in 0..12u32 {
        w.install_old();
        let mut child = w.update();
        tokio::time::sleep(whole * step / 10).await;
        let _ = child.start_kill();
        let _ = child.wait().await;
        let bytes = std::fs::read(&w.installed).expect("a binary is installed");
        if bytes == old {
            outcomes.0 += 1;
        } else {
            assert!(
                is_new(&w.installed),
                "step {step}: neither old nor new ({} bytes)",
                bytes.len()
            );
            outcomes.1 += 1;
        }
        let mode = std::fs::metadata(&w.installed)
            .expect("meta")
            .permissions()
            .mode();
        assert!(mode & 0o111 != 0, "step {step}: not executable ({mode:o})");
        let runs = tokio::process::Command::new(&w.installed)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .expect("the installed binary starts");
        assert!(
            runs.success(),
            "step {step}: the installed binary does not run"
        );
    }
    println!(
        "update takes {whole:?}; after a SIGKILL at 12 moments: {} old, {} new, never broken",
        outcomes.0, outcomes.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_feed_is_trusted_only_through_its_ca() {
    let cert = roomready_testkit::pki::TestCert::new();
    let chain = std::fs::read_to_string(&cert.cert_pem).expect("cert");
    let key = std::fs::read_to_string(&cert.key_pem).expect("key");
    let (w, server) = world_with(Some((&chain, &key))).await;
    assert!(server.url().starts_with("https://"), "{}", server.url());
    // Mozilla's roots do not know the test CA: refused, nothing installed.
    let old = std::fs::read(&w.installed).expect("old");
    let out = w.update().wait_with_output().await.expect("updater ran");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(69), "feed unreachable: {stderr}");
    assert!(
        stderr.to_lowercase().contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&w.installed).expect("installed"), old);
    // With the CA pinned for the feed, the update goes through.
    let mut config = std::fs::read_to_string(&w.config).expect("config");
    config.push_str(&format!("update_ca_file = \"{}\"\n", cert.ca_pem.display()));
    std::fs::write(&w.config, config).expect("config");
    w.update_succeeds().await;
    assert!(is_new(&w.installed), "installed over https");
}
