//! The daemon updating itself, in child processes under a small "service manager" (this test:
//! it starts the installed binary again whenever it exits with 75), against a signed release
//! made by `roomready-sim`'s release code and served by its update server:
//!
//! - the happy path: `update` → accepted, progress events, restart into the new version, which
//!   confirms itself (`healthy`) and answers `succeeded`;
//! - a new version that cannot get connected and reporting within `update_health_secs` restores
//!   the previous binary, and the previous version reports `rolled_back` and answers `failed`;
//! - `auto_update`: with the local time zone (`TZ`) chosen so that the agent starts 20 s before
//!   the end of its `update_window`, it updates itself inside the window with no command.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use roomready_feed::Channel;
use roomready_feed::keys::keygen;
use roomready_feed::publish::{ReleaseOptions, release};
use roomready_protocol::{DeviceId, EventBody, ResponseStatus, UpdateStage};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::update_server::UpdateServer;
use roomready_tests::agent_exe;
use roomready_tests::controller::{Controller, Seen};
use tokio::task::JoinHandle;

/// Long enough for a debug build to restart, connect and deliver a state on a busy machine.
const WAIT: Duration = Duration::from_secs(90);

struct Setup {
    dir: tempfile::TempDir,
    installed: PathBuf,
    config: PathBuf,
    feed: PathBuf,
    key: PathBuf,
    verifying_b64: String,
}

fn setup(broker: &EmbeddedBroker, device: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let installed = bin.join("roomready-agent");
    std::fs::copy(agent_exe(), &installed).expect("install a copy of the agent");
    let keys = keygen(&dir.path().join("keys")).expect("keygen");
    let feed = dir.path().join("feed");
    std::fs::create_dir_all(&feed).expect("feed dir");
    std::fs::write(
        dir.path().join("facts.toml"),
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.105.0\"\n[registry]\n",
    )
    .expect("facts");
    let config = dir.path().join("agent.toml");
    Setup {
        config,
        installed,
        feed,
        key: keys.signing_key,
        verifying_b64: keys.verifying_key_b64,
        dir,
    }
    .with_config(broker, device)
}

impl Setup {
    fn with_config(self, broker: &EmbeddedBroker, device: &str) -> Setup {
        write_config(
            &self.config,
            broker.url().port,
            device,
            "http://127.0.0.1:1",
            &self.verifying_b64,
        );
        self
    }

    fn point_at(&self, server: &UpdateServer, broker_port: u16, device: &str) {
        write_config(
            &self.config,
            broker_port,
            device,
            server.url().trim_end_matches('/'),
            &self.verifying_b64,
        );
    }

    /// [`Setup::point_at`] plus `extra` config lines.
    fn point_at_with(&self, server: &UpdateServer, broker_port: u16, device: &str, extra: &str) {
        self.point_at(server, broker_port, device);
        let mut text = std::fs::read_to_string(&self.config).expect("config");
        text.push_str(extra);
        std::fs::write(&self.config, text).expect("config");
    }

    fn release(&self, version: &str, bin: &Path) {
        release(&ReleaseOptions {
            key: self.key.clone(),
            bin: bin.to_owned(),
            version: version.into(),
            target: roomready_feed::this_target().into(),
            channel: Channel::Stable,
            feed: self.feed.clone(),
        })
        .expect("release");
    }
}

fn write_config(path: &Path, port: u16, device: &str, feed: &str, key: &str) {
    std::fs::write(
        path,
        format!(
            "broker_url = \"mqtt://127.0.0.1:{port}\"\ndevice_id = \"{device}\"\n\
             facts_file = \"facts.toml\"\nendpoints = []\nreport_interval_secs = 3600\n\
             update_feed_url = \"{feed}\"\nupdate_keys = [\"{key}\"]\nupdate_health_secs = 10\nupdate_max_mib = 1024\n"
        ),
    )
    .expect("config");
}

/// The "service manager": runs the installed binary, and again whenever it exits with 75.
fn supervise(installed: PathBuf, config: PathBuf) -> JoinHandle<Vec<i32>> {
    supervise_in(installed, config, None)
}

/// [`supervise`] with `TZ` set to `tz` for the agent.
fn supervise_in(installed: PathBuf, config: PathBuf, tz: Option<String>) -> JoinHandle<Vec<i32>> {
    tokio::spawn(async move {
        let mut exits = Vec::new();
        loop {
            let mut command = tokio::process::Command::new(&installed);
            if let Some(tz) = &tz {
                command.env("TZ", tz);
            }
            let status = command
                .args(["run", "--config", config.to_str().expect("utf-8")])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .status()
                .await
                .expect("start the installed agent");
            let code = status.code().unwrap_or(-1);
            exits.push(code);
            if code != 75 || exits.len() > 5 {
                return exits;
            }
        }
    })
}

/// Connects a controller for `device`, starts the installed agent under [`supervise`] and waits
/// for its first state.
async fn start_reporting(
    broker: &EmbeddedBroker,
    s: &Setup,
    device: &str,
) -> (Controller, JoinHandle<Vec<i32>>) {
    let id = DeviceId::new(device).expect("id");
    let mut controller =
        Controller::connect(&broker.url(), &id, &format!("controller-{device}"), false);
    let manager = supervise(s.installed.clone(), s.config.clone());
    controller
        .wait_until(WAIT, |seen| !seen.states.is_empty())
        .await
        .unwrap_or_else(|seen| panic!("{device}: no state: {seen:?}"));
    (controller, manager)
}

fn stages(seen: &Seen) -> Vec<UpdateStage> {
    seen.events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::UpdateProgress { stage, .. } => Some(*stage),
            _ => None,
        })
        .collect()
}

/// Sends `update` with request `id` and waits for its final answer (after `accepted`).
async fn update_and_wait(controller: &mut Controller, id: &str, version: &str) -> Seen {
    controller.command(update_cmd(id, version)).await;
    controller
        .wait_until(WAIT, |seen| seen.answered(id))
        .await
        .unwrap_or_else(|seen| {
            panic!(
                "no final answer to {id}: {:?} {:?}",
                seen.answers(id),
                stages(&seen)
            )
        })
}

fn update_cmd(id: &str, version: &str) -> String {
    format!(
        r#"{{"schema":"roomready.command/1","id":"{id}","command":"update","version":"{version}"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_restarts_into_the_new_version_which_confirms_itself() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let s = setup(&broker, "mtr-upd");
    s.release("9.9.9", agent_exe());
    let server = UpdateServer::start(s.feed.clone())
        .await
        .expect("update server");
    s.point_at(&server, broker.url().port, "mtr-upd");
    let (mut controller, manager) = start_reporting(&broker, &s, "mtr-upd").await;

    let seen = update_and_wait(&mut controller, "u-1", "9.9.9").await;
    let answers = seen.answers("u-1");
    assert_eq!(answers[0].status, ResponseStatus::Accepted);
    let last = answers.last().expect("final");
    assert_eq!(last.status, ResponseStatus::Succeeded, "{answers:?}");
    assert!(
        last.message
            .as_deref()
            .is_some_and(|m| m.contains("to 9.9.9")),
        "{last:?}"
    );
    let stages = stages(&seen);
    for stage in [
        UpdateStage::Checking,
        UpdateStage::Downloading,
        UpdateStage::Restarting,
        UpdateStage::Healthy,
    ] {
        assert!(stages.contains(&stage), "{stage:?} missing from {stages:?}");
    }
    assert!(
        s.installed.with_file_name("roomready-agent.prev").exists(),
        "the previous binary is kept"
    );
    assert!(
        !s.dir
            .path()
            .join("journal")
            .join("update-trial.json")
            .exists(),
        "trial over"
    );
    assert_eq!(seen.reused_seqs(), Vec::<u64>::new());
    manager.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_that_cannot_report_is_rolled_back() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let s = setup(&broker, "mtr-rb");
    // The "new version": the real agent, but its `run` is pointed at a broker that is not there
    // (same journal), so it never gets connected and reporting; its self-test passes.
    let bad_config = s.dir.path().join("bad.toml");
    let wrapper = s.dir.path().join("new-agent.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nif [ \"$1\" = run ]; then exec {agent} run --config {}; fi\nexec {agent} \"$@\"\n",
            bad_config.display(),
            agent = agent_exe().display()
        ),
    )
    .expect("wrapper");
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    s.release("9.9.10", &wrapper);
    let server = UpdateServer::start(s.feed.clone())
        .await
        .expect("update server");
    s.point_at(&server, broker.url().port, "mtr-rb");
    let (dead, _hold) = {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        (socket.local_addr().expect("addr").port(), socket)
    };
    let good = std::fs::read_to_string(&s.config).expect("config");
    std::fs::write(
        &bad_config,
        good.replace(
            &format!("127.0.0.1:{}", broker.url().port),
            &format!("127.0.0.1:{dead}"),
        )
        .replace(
            "facts.toml",
            &s.dir.path().join("facts.toml").display().to_string(),
        ) + &format!(
            "journal_dir = \"{}\"\n",
            s.dir.path().join("journal").display()
        ),
    )
    .expect("bad config");

    let (mut controller, manager) = start_reporting(&broker, &s, "mtr-rb").await;
    let original = std::fs::read(&s.installed).expect("installed binary");

    let seen = update_and_wait(&mut controller, "u-2", "9.9.10").await;
    let last = *seen.answers("u-2").last().expect("final");
    assert_eq!(last.status, ResponseStatus::Failed, "{last:?}");
    assert_eq!(last.reason.as_deref(), Some("rolled_back"));
    assert!(
        stages(&seen).contains(&UpdateStage::RolledBack),
        "{:?}",
        stages(&seen)
    );
    assert_eq!(
        std::fs::read(&s.installed).expect("binary"),
        original,
        "the previous binary is back"
    );
    manager.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_signed_by_another_key_is_refused_and_reported() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let s = setup(&broker, "mtr-refuse");
    // Signed, but by a key the agent does not pin.
    let rogue = keygen(&s.dir.path().join("rogue")).expect("rogue keygen");
    let script = s.dir.path().join("rogue-agent.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("script");
    release(&ReleaseOptions {
        key: rogue.signing_key,
        bin: script,
        version: "9.9.11".into(),
        target: roomready_feed::this_target().into(),
        channel: Channel::Stable,
        feed: s.feed.clone(),
    })
    .expect("release");
    let server = UpdateServer::start(s.feed.clone())
        .await
        .expect("update server");
    s.point_at(&server, broker.url().port, "mtr-refuse");
    let (mut controller, manager) = start_reporting(&broker, &s, "mtr-refuse").await;
    let original = std::fs::read(&s.installed).expect("installed binary");

    let seen = update_and_wait(&mut controller, "u-3", "latest").await;
    let last = *seen.answers("u-3").last().expect("final");
    assert_eq!(last.status, ResponseStatus::Failed, "{last:?}");
    assert_eq!(last.reason.as_deref(), Some("wrong_key"), "{last:?}");
    let stages = stages(&seen);
    assert!(stages.contains(&UpdateStage::Failed), "{stages:?}");
    assert!(!stages.contains(&UpdateStage::Restarting), "{stages:?}");
    assert_eq!(
        std::fs::read(&s.installed).expect("binary"),
        original,
        "nothing replaced"
    );
    assert!(!manager.is_finished(), "the agent runs on, no restart");
    manager.abort();
}

/// A POSIX `TZ` under which the local time of day is `local_secs` (seconds after midnight) now.
fn tz_where_it_is(local_secs: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let utc = i64::try_from(now % 86_400).expect("a second of the day");
    // Local = UTC + ahead, with ahead in (-12 h, +12 h].
    let mut ahead = (local_secs - utc).rem_euclid(86_400);
    if ahead > 43_200 {
        ahead -= 86_400;
    }
    // POSIX counts the other way: "RRT-02:00:00" is two hours ahead of UTC.
    let sign = if ahead >= 0 { '-' } else { '+' };
    let a = ahead.abs();
    format!("RRT{sign}{:02}:{:02}:{:02}", a / 3600, a / 60 % 60, a % 60)
}

#[test]
fn tz_strings() {
    // Whatever the time now, the string parses as hh:mm:ss within a day.
    for local in [0, 100, 43_200, 86_399] {
        let tz = tz_where_it_is(local);
        assert!(tz.starts_with("RRT+") || tz.starts_with("RRT-"), "{tz}");
        let parts: Vec<u32> = tz[4..]
            .split(':')
            .map(|p| p.parse().expect("number"))
            .collect();
        assert!(parts[0] <= 12 && parts[1] < 60 && parts[2] < 60, "{tz}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_update_updates_inside_the_window_without_a_command() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let s = setup(&broker, "mtr-auto");
    s.release("9.9.10", agent_exe());
    let server = UpdateServer::start(s.feed.clone())
        .await
        .expect("update server");
    // The window is 00:00-00:02 local time and the agent starts at about 00:01:40 local time,
    // so its one check this window falls within the next 20 s.
    s.point_at_with(
        &server,
        broker.url().port,
        "mtr-auto",
        "auto_update = true\nupdate_window = \"00:00-00:02\"\n",
    );
    let device = DeviceId::new("mtr-auto").expect("id");
    let mut controller = Controller::connect(&broker.url(), &device, "controller-auto", false);
    let manager = supervise_in(
        s.installed.clone(),
        s.config.clone(),
        Some(tz_where_it_is(100)),
    );
    let seen = controller
        .wait_until(WAIT, |seen| {
            stages(seen).contains(&UpdateStage::Healthy)
                || stages(seen).contains(&UpdateStage::Failed)
        })
        .await
        .unwrap_or_else(|seen| panic!("no update by itself: {:?}", stages(&seen)));
    let stages = stages(&seen);
    for stage in [
        UpdateStage::Checking,
        UpdateStage::Downloading,
        UpdateStage::Verifying,
        UpdateStage::Installing,
        UpdateStage::Restarting,
        UpdateStage::Healthy,
    ] {
        assert!(stages.contains(&stage), "{stage:?} missing from {stages:?}");
    }
    let healthy = seen
        .events
        .iter()
        .find_map(|e| match &e.body {
            EventBody::UpdateProgress {
                stage: UpdateStage::Healthy,
                version,
                ..
            } => Some(version.clone()),
            _ => None,
        })
        .flatten();
    assert_eq!(healthy.as_deref(), Some("9.9.10"));
    assert!(
        seen.responses.is_empty(),
        "no command, so no answer: {:?}",
        seen.responses
    );
    assert!(
        s.installed.with_file_name("roomready-agent.prev").exists(),
        "the previous binary is kept"
    );
    assert_eq!(server.requests("/stable/manifest.json"), 1, "one check");
    assert!(!manager.is_finished(), "the new version runs on");
    manager.abort();
}
