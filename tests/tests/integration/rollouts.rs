//! Staged rollouts end to end: simulated devices that really update themselves (signed feed,
//! update server, trial, rollback), placed in rings by their agents' config, and the real
//! controller rolling a release out ring by ring through its API: a good release goes through
//! rings 0, 1 and 2; a release that crashes at start is rolled back in ring 0 and the rollout
//! halts with ring 1 untouched (and alerts); a controller stopped mid-ring and started again on
//! the same database finishes without sending any device its update twice; a device offline in
//! its ring is updated when it comes back; the Teams Rooms app update rolls out the same way and
//! leaves the rooms ready.
#![cfg(unix)]

use roomready_controller::rollouts::step::Stage;
use roomready_controller::store::{RolloutDetail, RolloutState};
use roomready_protocol::{DeviceId, DeviceKind, Placement, Ring, TopicPrefix};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::{DeviceEnv, SimDevice, SimUpdate};
use roomready_simulator::update_server::UpdateServer;
use roomready_testkit::http::meta;
use roomready_tests::console::{Console, config};

/// The version the feed offers.
const NEW: &str = "9.9.9";

struct World {
    dir: tempfile::TempDir,
    broker: EmbeddedBroker,
    _server: UpdateServer,
    env: DeviceEnv,
}

impl World {
    async fn new(crash: bool) -> World {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let (feed, key) = roomready_tests::feed::signed_feed(dir.path(), NEW);
        let broker = EmbeddedBroker::start().await.expect("broker");
        let server = UpdateServer::start(feed).await.expect("update server");
        let mut update = SimUpdate::manifest(&server.url(), vec![key], dir.path().join("devices"));
        if crash {
            update.crash_on_start = vec![semver::Version::parse(NEW).expect("version")];
        }
        let env = DeviceEnv {
            update: Some(update),
            ..DeviceEnv::new(broker.url(), TopicPrefix::default())
        };
        World {
            dir,
            broker,
            _server: server,
            env,
        }
    }

    fn spawn(&self, id: &str, ring: u64) -> SimDevice {
        self.spawn_with_app(id, ring, "5.2.115.0")
    }

    /// A Teams Rooms device in `ring` running the Teams Rooms app `app`.
    fn spawn_with_app(&self, id: &str, ring: u64, app: &str) -> SimDevice {
        let mut spec = roomready_tests::spec(
            id,
            DeviceKind::TeamsRoomsWindows,
            Some(app),
            Some("19045.4894"),
        );
        spec.placement = Placement {
            ring: Some(Ring::new(ring).expect("ring")),
            ..Placement::default()
        };
        let _ = DeviceId::new(id).expect("id");
        SimDevice::try_spawn(spec, &self.env).expect("device spawns")
    }

    async fn console(&self, dir: tempfile::TempDir) -> Console {
        self.console_with(dir, None).await
    }

    async fn console_with(
        &self,
        dir: tempfile::TempDir,
        alerts: Option<roomready_controller::alerts::AlertSettings>,
    ) -> Console {
        let mut config = config(&self.broker.url(), dir.path());
        config.alerts = alerts;
        let console = Console::start_with(config, dir).await;
        console.subscribed().await;
        console
    }
}

/// Waits until every one of `count` devices is placed and online in the controller's store.
async fn placed(console: &Console, count: u64) {
    console
        .until("the devices placed and online", |store| {
            let groups = store.groups().ok()?;
            let placed: u64 = groups.rings.iter().map(|g| g.devices).sum();
            let online: u64 = groups.rings.iter().map(|g| g.online).sum();
            (placed == count && online == count).then_some(())
        })
        .await;
}

/// Starts a rollout through the API (as the local operator); its id.
async fn start(console: &Console, rings: &str) -> i64 {
    start_plan(
        console,
        serde_json::json!({"target": "agent", "version": NEW, "rings": rings}),
    )
    .await
}

/// Starts the rollout `plan` (the API's body) through the API; its id.
async fn start_plan(console: &Console, plan: serde_json::Value) -> i64 {
    console
        .http
        .run(move |http| {
            let page = http.get("/rollouts");
            assert_eq!(page.status, 200);
            let csrf = meta(&page.body, "csrf-token").expect("a token");
            let reply = http.post_json("/api/v1/rollouts", &plan, Some(&csrf));
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.json()["id"].as_i64().expect("an id")
        })
        .await
}

async fn until_state(console: &Console, id: i64, state: RolloutState) -> RolloutDetail {
    console
        .until_rollouts(&format!("rollout {id} {}", state.as_str()), |store| {
            store.rollout(id).ok()?.filter(|d| d.summary.state == state)
        })
        .await
}

fn stage_of(detail: &RolloutDetail, id: &str) -> Stage {
    detail
        .devices
        .iter()
        .find(|d| d.device.as_str() == id)
        .map(|d| d.stage)
        .unwrap_or_else(|| panic!("{id} is not in the rollout: {detail:#?}"))
}

/// Commands sent to `id`.
fn commands(console: &Console, id: &str) -> usize {
    console
        .store()
        .commands(&DeviceId::new(id).expect("id"), 100)
        .expect("commands")
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_release_goes_through_rings_zero_one_and_two() {
    let w = World::new(false).await;
    let console = w.console(tempfile::tempdir().expect("tempdir")).await;
    let fleet = [("r0-a", 0), ("r1-a", 1), ("r1-b", 1), ("r2-a", 2)];
    let devices: Vec<SimDevice> = fleet.iter().map(|(id, ring)| w.spawn(id, *ring)).collect();
    placed(&console, 4).await;
    let id = start(&console, "0:1:0,1:2:0,2:5:0").await;
    let done = until_state(&console, id, RolloutState::Done).await;
    for (device, _) in fleet {
        assert_eq!(stage_of(&done, device), Stage::Healthy, "{device}");
        assert_eq!(commands(&console, device), 1, "{device}: one update");
    }
    for device in &devices {
        assert_eq!(device.version(), NEW, "{}", device.spec().id);
    }
    // The ring order holds: each device of ring 1 was sent its update after ring 0's was healthy.
    let sent = |device: &str| {
        done.devices
            .iter()
            .find(|d| d.device.as_str() == device)
            .and_then(|d| d.sent_at)
            .expect("sent")
    };
    assert!(sent("r0-a") < sent("r1-a") && sent("r1-b") < sent("r2-a"));
    let actions: Vec<&str> = done.log.iter().map(|l| l.action.as_str()).collect();
    assert_eq!(actions, ["started", "done"]);
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
    console.stop().await;
    w.broker.stop().await.expect("broker stops");
    drop(w.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_crashes_is_rolled_back_in_ring_zero_and_the_rollout_halts() {
    let w = World::new(true).await;
    let mut receiver = super::alerts::Receiver::start(0).await;
    let mut alerts = roomready_controller::alerts::AlertSettings::new(receiver.url.clone());
    alerts.group = std::time::Duration::from_millis(100);
    let console = w
        .console_with(tempfile::tempdir().expect("tempdir"), Some(alerts))
        .await;
    let devices: Vec<SimDevice> = [("p-a", 0), ("q-a", 1), ("q-b", 1)]
        .iter()
        .map(|(id, ring)| w.spawn(id, *ring))
        .collect();
    placed(&console, 3).await;
    let id = start(&console, "0:1:0,1:2:0").await;
    let halted = until_state(&console, id, RolloutState::Halted).await;
    assert_eq!(stage_of(&halted, "p-a"), Stage::RolledBack);
    assert_eq!(
        halted.summary.reason.as_deref(),
        Some("1 of the 1 devices of ring 0 failed or rolled back")
    );
    for device in ["q-a", "q-b"] {
        assert_eq!(stage_of(&halted, device), Stage::Waiting, "{device}");
        assert_eq!(commands(&console, device), 0, "{device}: ring 1 untouched");
    }
    assert_eq!(
        devices[0].version(),
        roomready_agent::update::CURRENT_VERSION,
        "rolled back"
    );
    // The halt is an alert.
    receiver.wait_for(1).await;
    let halts: Vec<serde_json::Value> = receiver
        .bodies()
        .iter()
        .flat_map(|(_, body)| body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["rule"] == "rollout_halted")
        .collect();
    assert_eq!(halts.len(), 1, "{:?}", receiver.bodies());
    assert_eq!(
        halts[0]["summary"],
        format!("rollout {id} halted: 1 of the 1 devices of ring 0 failed or rolled back")
    );
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
    console.stop().await;
    w.broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_stopped_mid_ring_finishes_after_a_restart_without_sending_twice() {
    let w = World::new(false).await;
    let console = w.console(tempfile::tempdir().expect("tempdir")).await;
    let fleet = [("k-a", 0), ("k-b", 0), ("k-c", 1)];
    let devices: Vec<SimDevice> = fleet.iter().map(|(id, ring)| w.spawn(id, *ring)).collect();
    placed(&console, 3).await;
    let id = start(&console, "0:1:0,1:1:0").await;
    // Stopped as soon as the first update is under way.
    console
        .until_rollouts("the first update sent", |store| {
            let detail = store.rollout(id).ok()??;
            detail
                .devices
                .iter()
                .any(|d| d.stage != Stage::Waiting)
                .then_some(())
        })
        .await;
    let dir = console.stop().await;
    let console = w.console(dir).await;
    let done = until_state(&console, id, RolloutState::Done).await;
    for (device, _) in fleet {
        assert_eq!(stage_of(&done, device), Stage::Healthy, "{device}");
        assert_eq!(
            commands(&console, device),
            1,
            "{device}: one update command"
        );
    }
    for device in &devices {
        assert_eq!(device.version(), NEW);
        assert_eq!(device.restarts(), 1, "{}: updated once", device.spec().id);
    }
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
    console.stop().await;
    w.broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offline_in_its_ring_is_updated_when_it_comes_back() {
    let w = World::new(false).await;
    let console = w.console(tempfile::tempdir().expect("tempdir")).await;
    let present = w.spawn("o-a", 0);
    let away = w.spawn("o-b", 0);
    placed(&console, 2).await;
    away.shutdown().await.expect("o-b stops");
    console
        .until("o-b offline", |store| {
            let groups = store.groups().ok()?;
            (groups.rings.first()?.online == 1).then_some(())
        })
        .await;
    let id = start(&console, "0:2:0").await;
    let waiting = console
        .until_rollouts("o-a healthy while o-b waits", |store| {
            let detail = store.rollout(id).ok()??;
            (stage_of(&detail, "o-a") == Stage::Healthy).then_some(detail)
        })
        .await;
    let b = waiting
        .devices
        .iter()
        .find(|d| d.device.as_str() == "o-b")
        .expect("o-b");
    assert_eq!(b.stage, Stage::Waiting);
    assert_eq!(b.reason.as_deref(), Some("offline: sent when it is back"));
    assert_eq!(
        waiting.summary.state,
        RolloutState::Running,
        "not done without o-b"
    );
    // Back (the power came back): its update goes out and the rollout finishes.
    let back = w.spawn("o-b", 0);
    let done = until_state(&console, id, RolloutState::Done).await;
    assert_eq!(stage_of(&done, "o-b"), Stage::Healthy);
    assert_eq!(commands(&console, "o-b"), 1);
    assert_eq!(back.version(), NEW);
    for device in [present, back] {
        device.shutdown().await.expect("device stops");
    }
    console.stop().await;
    w.broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_teams_rooms_app_update_rolls_out_and_leaves_the_rooms_ready() {
    let w = World::new(false).await;
    let console = w.console(tempfile::tempdir().expect("tempdir")).await;
    let fleet = [("app-a", 0), ("app-b", 1)];
    let devices: Vec<SimDevice> = fleet
        .iter()
        .map(|(id, ring)| w.spawn_with_app(id, *ring, "4.0.51.0"))
        .collect();
    placed(&console, 2).await;
    let id = start_plan(
        &console,
        serde_json::json!({"target": "app", "rings": "0:1:0,1:1:0"}),
    )
    .await;
    let done = until_state(&console, id, RolloutState::Done).await;
    for (device, _) in fleet {
        assert_eq!(stage_of(&done, device), Stage::Healthy, "{device}");
        assert_eq!(commands(&console, device), 1, "{device}");
        let detail = console
            .store()
            .device(&DeviceId::new(device).expect("id"))
            .expect("store")
            .expect("the device");
        let state = detail.state.expect("a state");
        assert_eq!(
            state.facts.app_version.as_deref(),
            Some(roomready_simulator::device::SIM_APP_UPDATE_TO),
            "{device}"
        );
        assert_eq!(
            state.verdict,
            roomready_protocol::Verdict::Ready,
            "{device}: better than before"
        );
    }
    for device in devices {
        assert_eq!(device.restarts(), 0, "the app update restarts no agent");
        device.shutdown().await.expect("device stops");
    }
    console.stop().await;
    w.broker.stop().await.expect("broker stops");
}
