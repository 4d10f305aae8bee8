//! End to end on real components: the embedded MQTT broker, three real agents (the agent
//! library with simulated facts) and an independent dashboard subscriber.

use std::collections::BTreeMap;
use std::time::Duration;

use roomready_protocol::{DeviceKind, Presence, StatusReason, TopicPrefix, Verdict, codes};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::dashboard::{Dashboard, FleetView};
use roomready_simulator::device::{DeviceEnv, SimDevice};
use roomready_tests::{WAIT, spec};

fn env(broker: &EmbeddedBroker) -> DeviceEnv {
    DeviceEnv {
        keep_alive: Duration::from_secs(5),
        ..DeviceEnv::new(broker.url(), TopicPrefix::default())
    }
}

fn three_devices(env: &DeviceEnv) -> Vec<SimDevice> {
    [
        spec(
            "mtr-ready",
            DeviceKind::TeamsRoomsWindows,
            Some("4.0.105.0"),
            Some("19045.1"),
        ),
        spec(
            "mtr-old",
            DeviceKind::TeamsRoomsWindows,
            Some("4.0.51.0"),
            Some("19045.1"),
        ),
        spec(
            "hub-setup",
            DeviceKind::SurfaceHub,
            None,
            Some("15063.1835"),
        ),
    ]
    .into_iter()
    .map(|s| SimDevice::spawn(s, env))
    .collect()
}

fn verdicts(view: &FleetView) -> BTreeMap<String, Verdict> {
    view.devices
        .iter()
        .filter_map(|(id, d)| d.state.as_ref().map(|s| (id.to_string(), s.verdict)))
        .collect()
}

fn expected_verdicts() -> BTreeMap<String, Verdict> {
    [
        ("hub-setup".to_owned(), Verdict::AtRisk),
        ("mtr-old".to_owned(), Verdict::NotReady),
        ("mtr-ready".to_owned(), Verdict::Ready),
    ]
    .into()
}

fn status_of(view: &FleetView, id: &str) -> Option<(Presence, Option<StatusReason>)> {
    view.devices
        .iter()
        .find(|(d, _)| d.as_str() == id)
        .and_then(|(_, d)| d.status.as_ref())
        .map(|s| (s.status, s.reason))
}

async fn wait_for_states(dashboard: &mut Dashboard, n: usize) -> FleetView {
    dashboard
        .wait_until(WAIT, |v| v.states_where(|_| true) == n)
        .await
        .unwrap_or_else(|t| panic!("expected {n} states, saw {:?}", verdicts(&t.0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn states_reach_early_and_late_subscribers_and_the_will_marks_a_dead_agent_offline() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let mut early = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    let mut devices = three_devices(&env(&broker));

    let view = wait_for_states(&mut early, 3).await;
    assert_eq!(verdicts(&view), expected_verdicts());
    let old = view
        .devices
        .values()
        .find_map(|d| d.state.as_ref().filter(|s| s.device.as_str() == "mtr-old"))
        .expect("mtr-old state");
    assert_eq!(old.findings.len(), 1);
    assert_eq!(old.findings[0].code, codes::TLS12_APP_TOO_OLD);
    assert_eq!(old.facts.app_version.as_deref(), Some("4.0.51.0"));
    assert!(view.decode_errors.is_empty(), "{:?}", view.decode_errors);

    // A dashboard that connects after the fact still gets every state: they are retained.
    let mut late = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    let view = wait_for_states(&mut late, 3).await;
    assert_eq!(verdicts(&view), expected_verdicts());
    let view = late
        .wait_until(WAIT, |v| {
            ["mtr-ready", "mtr-old", "hub-setup"]
                .iter()
                .all(|id| status_of(v, id).is_some_and(|(p, _)| p == Presence::Online))
        })
        .await
        .unwrap_or_else(|t| panic!("all three online: {:?}", t.0.devices));
    assert_eq!(status_of(&view, "mtr-old"), Some((Presence::Online, None)));

    // Killing an agent drops its connection without DISCONNECT: the broker publishes the will.
    let killed = devices.remove(1);
    assert_eq!(killed.spec().id.as_str(), "mtr-old");
    killed.kill();
    let view = early
        .wait_until(WAIT, |v| {
            status_of(v, "mtr-old").is_some_and(|(p, _)| p == Presence::Offline)
        })
        .await
        .unwrap_or_else(|t| panic!("mtr-old never went offline: {:?}", t.0.devices));
    assert_eq!(
        status_of(&view, "mtr-old"),
        Some((Presence::Offline, Some(StatusReason::ConnectionLost)))
    );
    assert_eq!(
        status_of(&view, "mtr-ready").map(|s| s.0),
        Some(Presence::Online)
    );

    // A clean stop says so itself.
    let stopped = devices.remove(0);
    stopped.shutdown().await.expect("clean shutdown");
    let view = early
        .wait_until(WAIT, |v| {
            status_of(v, "mtr-ready").is_some_and(|(p, _)| p == Presence::Offline)
        })
        .await
        .unwrap_or_else(|t| panic!("mtr-ready never went offline: {:?}", t.0.devices));
    assert_eq!(
        status_of(&view, "mtr-ready"),
        Some((Presence::Offline, Some(StatusReason::Shutdown)))
    );

    for device in devices {
        device.shutdown().await.expect("clean shutdown");
    }
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_republish_presence_and_state_after_a_broker_restart() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let addr = broker.addr();
    let devices = three_devices(&env(&broker));
    let mut dashboard = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    let before = wait_for_states(&mut dashboard, 3).await;
    drop(dashboard);

    // The restarted broker keeps nothing in memory: whatever a new subscriber gets was
    // published again by the agents after they reconnected.
    broker.stop().await.expect("broker stops");
    let broker = EmbeddedBroker::start_on(addr)
        .await
        .expect("broker restarts on its port");
    let mut fresh = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    let after = wait_for_states(&mut fresh, 3).await;
    assert_eq!(verdicts(&after), expected_verdicts());
    for (id, device) in &after.devices {
        let state = device.state.as_ref().expect("state");
        let earlier = before.devices[id].state.as_ref().expect("state before");
        assert_eq!(state.seq, earlier.seq, "{id}: the same state, republished");
    }
    fresh
        .wait_until(WAIT, |v| {
            v.devices
                .values()
                .filter(|d| {
                    d.status
                        .as_ref()
                        .is_some_and(|s| s.status == Presence::Online)
                })
                .count()
                == 3
        })
        .await
        .unwrap_or_else(|t| panic!("all online again: {:?}", t.0.devices));

    for device in devices {
        device.shutdown().await.expect("clean shutdown");
    }
    broker.stop().await.expect("broker stops");
}
