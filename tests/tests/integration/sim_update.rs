//! Simulated devices that really update themselves (`DeviceEnv::update`): the controller's
//! `update` makes each device's agent download, verify and install a signed release from the
//! update server through the agent's own update code, restart (the device task is its service
//! manager) and confirm itself as the new version; a corrupt artifact is refused with nothing
//! installed; a release that crashes at start is rolled back and the old version reports it
//! (the rollback of a version that is not healthy in time is the agent's own code, tested with
//! the real binary in agent/tests/update_daemon.rs); a device without the update environment
//! rejects `update`.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use roomready_agent::update::trial::TRIAL_FILE;
use roomready_protocol::{
    DeviceId, DeviceKind, EventBody, Presence, ResponseStatus, StatusReason, TopicPrefix,
    UpdateStage,
};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::{DeviceEnv, DeviceSpec, SimDevice, SimUpdate, SimValue};
use roomready_simulator::update_server::UpdateServer;
use roomready_tests::controller::{Controller, Seen};
use roomready_tests::feed::{release_script, signed_feed};

/// Bound on every wait; the waits end as soon as what they wait for is seen.
const WAIT: Duration = Duration::from_secs(60);
/// The version the feed offers.
const NEW: &str = "9.9.9";

struct World {
    dir: tempfile::TempDir,
    broker: EmbeddedBroker,
    server: UpdateServer,
    key: [u8; 32],
}

impl World {
    /// A broker, and an update server whose feed offers [`NEW`] for this host.
    async fn new() -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let (feed, key) = signed_feed(dir.path(), NEW);
        World {
            key,
            broker: EmbeddedBroker::start().await.expect("broker"),
            server: UpdateServer::start(feed).await.expect("update server"),
            dir,
        }
    }

    fn devices_dir(&self) -> PathBuf {
        self.dir.path().join("devices")
    }

    fn env(&self) -> DeviceEnv {
        DeviceEnv {
            update: Some(SimUpdate::manifest(
                &self.server.url(),
                vec![self.key],
                self.devices_dir(),
            )),
            ..DeviceEnv::new(self.broker.url(), TopicPrefix::default())
        }
    }

    /// A controller for `id`, then the device with `env`; waits for its first state (the device
    /// is then subscribed to its commands).
    async fn device(&self, id: &str, env: &DeviceEnv) -> (SimDevice, Controller) {
        let device = DeviceId::new(id).expect("device id");
        let mut controller =
            Controller::connect(&self.broker.url(), &device, &format!("ctl-{id}"), false);
        // Subscribed before the device starts, so its first events are seen too.
        controller
            .wait_until(WAIT, |seen| seen.subscribed)
            .await
            .unwrap_or_else(|seen| panic!("{id}: controller not subscribed: {seen:?}"));
        let sim = SimDevice::try_spawn(spec(device), env).expect("device spawns");
        controller
            .wait_until(WAIT, |seen| !seen.states.is_empty())
            .await
            .unwrap_or_else(|seen| panic!("{id}: no state: {seen:?}"));
        (sim, controller)
    }
}

fn spec(id: DeviceId) -> DeviceSpec {
    DeviceSpec {
        id,
        kind: DeviceKind::TeamsRoomsWindows,
        app_version: SimValue::Known("5.2.115.0".into()),
        os_build: SimValue::Known("19045.4894".into()),
        registry: Vec::new(),
        endpoints: Vec::new(),
        placement: Default::default(),
        handshakes: Vec::new(),
    }
}

fn update_cmd(id: &str) -> String {
    format!(
        r#"{{"schema":"roomready.command/1","id":"{id}","command":"update","version":"latest"}}"#
    )
}

fn stages(seen: &Seen) -> Vec<(UpdateStage, Option<String>)> {
    seen.events
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::UpdateProgress { stage, version, .. } => Some((*stage, version.clone())),
            _ => None,
        })
        .collect()
}

fn has_stage(seen: &Seen, stage: UpdateStage) -> bool {
    stages(seen).iter().any(|(s, _)| *s == stage)
}

/// Waits for request `id`'s final answer (one that is not `accepted`).
async fn final_answer(controller: &mut Controller, id: &str, what: &str) -> Seen {
    controller
        .wait_until(WAIT, |seen| seen.answered(id))
        .await
        .unwrap_or_else(|seen| {
            panic!(
                "{what}: no final answer to {id}: {:?} {:?}",
                seen.answers(id),
                stages(&seen)
            )
        })
}

/// Every seq from 1 to the highest seen arrived, and none was used twice.
fn assert_no_gap(seen: &Seen, what: &str) {
    let highest = seen.seqs().last().copied().unwrap_or(0);
    assert_eq!(
        seen.contiguous(),
        highest,
        "{what}: seq gap in {:?}",
        seen.seqs()
    );
    assert_eq!(seen.reused_seqs(), Vec::<u64>::new(), "{what}: seq reused");
}

fn installed(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("roomready-agent")).expect("installed binary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_updates_restarts_and_confirms_the_new_version() {
    let started = Instant::now();
    let w = World::new().await;
    let env = w.env();
    let mut fleet = Vec::new();
    for id in ["mtr-u1", "mtr-u2", "mtr-u3"] {
        let (sim, controller) = w.device(id, &env).await;
        assert_eq!(sim.version(), roomready_agent::update::CURRENT_VERSION);
        fleet.push((id, sim, controller));
    }
    let old = installed(fleet[0].1.install_dir().expect("an installation"));
    for (_, _, controller) in &fleet {
        controller.command(update_cmd("u-1")).await;
    }
    for (id, sim, controller) in &mut fleet {
        let seen = final_answer(controller, "u-1", id).await;
        let answers = seen.answers("u-1");
        assert_eq!(
            answers[0].status,
            ResponseStatus::Accepted,
            "{id}: {answers:?}"
        );
        let last = answers.last().expect("final answer");
        assert_eq!(last.status, ResponseStatus::Succeeded, "{id}: {answers:?}");
        assert!(
            last.message
                .as_deref()
                .is_some_and(|m| m.ends_with(&format!("to {NEW}"))),
            "{id}: {last:?}"
        );
        let stages = stages(&seen);
        for stage in [
            UpdateStage::Checking,
            UpdateStage::Downloading,
            UpdateStage::Installing,
            UpdateStage::Restarting,
        ] {
            assert!(
                stages.iter().any(|(s, _)| *s == stage),
                "{id}: {stage:?} missing from {stages:?}"
            );
        }
        assert!(
            stages.contains(&(UpdateStage::Healthy, Some(NEW.into()))),
            "{id}: the new version confirms itself: {stages:?}"
        );
        assert_eq!((sim.restarts(), sim.version().as_str()), (1, NEW), "{id}");
        // The new version's state says so.
        let seen = controller
            .wait_until(WAIT, |seen| {
                seen.states.iter().any(|s| s.agent_version == NEW)
            })
            .await
            .unwrap_or_else(|seen| panic!("{id}: no state from {NEW}: {:?}", seen.states));
        assert_no_gap(&seen, id);
        let dir = sim.install_dir().expect("an installation");
        assert_eq!(
            installed(dir),
            release_script(NEW),
            "{id}: the release is installed"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("roomready-agent.prev")).expect("prev"),
            old,
            "{id}: the previous binary is kept"
        );
        assert!(!dir.join(TRIAL_FILE).exists(), "{id}: the trial is over");
    }

    // Once there, `latest` is the running version; the command ledger survived the restart.
    let (id, _, controller) = &mut fleet[0];
    controller.command(update_cmd("u-2")).await;
    let seen = final_answer(controller, "u-2", id).await;
    let last = *seen.answers("u-2").last().expect("final answer");
    assert_eq!(last.status, ResponseStatus::Succeeded, "{last:?}");
    assert_eq!(
        last.message.as_deref(),
        Some(format!("already up to date ({NEW})").as_str())
    );

    // kill() and shutdown() reach the agent that runs after the restart.
    let (id, sim, mut controller) = fleet.pop().expect("a device");
    sim.kill();
    controller
        .wait_until(WAIT, |seen| {
            seen.statuses.last().is_some_and(|s| {
                s.status == Presence::Offline && s.reason == Some(StatusReason::ConnectionLost)
            })
        })
        .await
        .unwrap_or_else(|seen| panic!("{id}: no last will: {:?}", seen.statuses));
    for (id, sim, mut controller) in fleet {
        sim.shutdown().await.expect("clean shutdown");
        controller
            .wait_until(WAIT, |seen| {
                seen.statuses.last().is_some_and(|s| {
                    s.status == Presence::Offline && s.reason == Some(StatusReason::Shutdown)
                })
            })
            .await
            .unwrap_or_else(|seen| panic!("{id}: no offline: {:?}", seen.statuses));
    }
    eprintln!("group update: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_artifact_is_refused_and_nothing_is_installed() {
    let started = Instant::now();
    let w = World::new().await;
    w.server.corrupt_artifacts(true);
    let env = w.env();
    let mut fleet = Vec::new();
    for id in ["mtr-c1", "mtr-c2", "mtr-c3"] {
        fleet.push(w.device(id, &env).await);
    }
    for (_, controller) in &fleet {
        controller.command(update_cmd("u-1")).await;
    }
    for (sim, controller) in &mut fleet {
        let id = sim.spec().id.to_string();
        let seen = final_answer(controller, "u-1", &id).await;
        let answers = seen.answers("u-1");
        assert_eq!(
            answers[0].status,
            ResponseStatus::Accepted,
            "{id}: {answers:?}"
        );
        let last = answers.last().expect("final answer");
        assert_eq!(last.status, ResponseStatus::Failed, "{id}: {answers:?}");
        assert_eq!(last.reason.as_deref(), Some("checksum_mismatch"), "{id}");
        assert!(has_stage(&seen, UpdateStage::Failed), "{id}");
        assert!(
            !has_stage(&seen, UpdateStage::Restarting),
            "{id}: no restart"
        );
        assert_eq!(sim.restarts(), 0, "{id}");
        assert_eq!(sim.version(), roomready_agent::update::CURRENT_VERSION);
        let dir = sim.install_dir().expect("an installation");
        assert!(
            installed(dir).contains(roomready_agent::update::CURRENT_VERSION),
            "{id}: the simulated binary is untouched"
        );
        assert!(!dir.join("roomready-agent.prev").exists(), "{id}");
        assert_no_gap(&seen, &id);
    }
    assert_eq!(w.server.corrupted(), 3, "one download per device");

    // The server mended, the same devices update.
    w.server.corrupt_artifacts(false);
    let (sim, controller) = &mut fleet[0];
    controller.command(update_cmd("u-2")).await;
    let seen = final_answer(controller, "u-2", "after the fault").await;
    let last = *seen.answers("u-2").last().expect("final answer");
    assert_eq!(last.status, ResponseStatus::Succeeded, "{last:?}");
    assert_eq!(sim.version(), NEW);
    for (sim, _) in fleet {
        sim.shutdown().await.expect("clean shutdown");
    }
    eprintln!("corrupt artifact: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_crashes_at_start_is_rolled_back_and_reported() {
    let started = Instant::now();
    let w = World::new().await;
    let mut env = w.env();
    if let Some(update) = &mut env.update {
        update.crash_on_start = vec![semver::Version::parse(NEW).expect("version")];
    }
    let (sim, mut controller) = w.device("mtr-rb", &env).await;
    let dir = sim.install_dir().expect("an installation").to_owned();
    let old = installed(&dir);
    controller.command(update_cmd("u-1")).await;
    let seen = final_answer(&mut controller, "u-1", "rollback").await;
    let last = *seen.answers("u-1").last().expect("final answer");
    assert_eq!(last.status, ResponseStatus::Failed, "{last:?}");
    assert_eq!(last.reason.as_deref(), Some("rolled_back"), "{last:?}");
    assert!(
        last.message
            .as_deref()
            .is_some_and(|m| m.contains("did not confirm itself")),
        "{last:?}"
    );
    let stages = stages(&seen);
    assert!(
        stages.contains(&(UpdateStage::RolledBack, Some(NEW.into()))),
        "{stages:?}"
    );
    assert!(stages.iter().any(|(s, _)| *s == UpdateStage::Restarting));
    assert!(!stages.iter().any(|(s, _)| *s == UpdateStage::Healthy));
    assert_eq!(installed(&dir), old, "the previous binary is back");
    let crashes = u64::from(roomready_agent::update::trial::MAX_ATTEMPTS);
    assert_eq!(
        sim.restarts(),
        1 + crashes,
        "into the new version, its crashes"
    );
    assert_eq!(sim.version(), roomready_agent::update::CURRENT_VERSION);
    assert!(!dir.join(TRIAL_FILE).exists(), "the trial is over");
    let seen = controller
        .wait_until(WAIT, |seen| seen.checks() >= 2)
        .await
        .unwrap_or_else(|seen| panic!("no state after the rollback: {:?}", seen.states));
    assert!(
        seen.states
            .iter()
            .all(|s| s.agent_version == roomready_agent::update::CURRENT_VERSION),
        "{:?}",
        seen.states
    );
    assert_no_gap(&seen, "rollback");
    sim.shutdown().await.expect("clean shutdown");
    eprintln!("rollback: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_without_the_update_environment_rejects_update() {
    let w = World::new().await;
    let env = DeviceEnv::new(w.broker.url(), TopicPrefix::default());
    let (sim, mut controller) = w.device("mtr-plain", &env).await;
    assert_eq!(sim.install_dir(), None);
    controller.command(update_cmd("u-1")).await;
    let seen = final_answer(&mut controller, "u-1", "no update env").await;
    let answers = seen.answers("u-1");
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].status, ResponseStatus::Rejected);
    assert_eq!(answers[0].reason.as_deref(), Some("not_configured"));
    assert_eq!(w.server.request_counts().len(), 0, "the feed is not asked");
    sim.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_that_cannot_be_prepared_is_an_error() {
    let w = World::new().await;
    let mut env = w.env();
    let file = w.dir.path().join("not-a-dir");
    std::fs::write(&file, b"").expect("file");
    if let Some(update) = &mut env.update {
        update.dir = file;
    }
    let id = DeviceId::new("mtr-x").expect("id");
    let error = SimDevice::try_spawn(spec(id.clone()), &env)
        .err()
        .expect("no installation");
    assert!(error.to_string().contains("not-a-dir"), "{error}");
    // spawn() starts nothing and says why on shutdown.
    let sim = SimDevice::spawn(spec(id), &env);
    let error = sim.shutdown().await.expect_err("not started");
    assert!(error.to_string().contains("not-a-dir"), "{error}");
}
