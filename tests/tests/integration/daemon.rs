//! The daemon over time: it assesses on its interval, reads the facts file again each time, and
//! publishes each check's state and events in `seq` order.

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::facts::FactsFile;
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::{DeviceId, EventBody, TopicPrefix, Verdict, codes};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::dashboard::{Dashboard, FleetView};
use roomready_tests::WAIT;

fn latest_state(view: &FleetView) -> Option<&roomready_protocol::State> {
    view.devices.values().find_map(|d| d.state.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rechecks_every_interval_and_follows_the_facts_file() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let dir = tempfile::tempdir().expect("tempdir");
    let facts = dir.path().join("facts.toml");
    let write = |text: &str| std::fs::write(&facts, text).expect("write facts");
    write("kind = \"teams_rooms_windows\"\napp_version = \"4.0.51.0\"\n[registry]\n");

    let mut settings =
        AgentSettings::new(DeviceId::new("mtr-interval").expect("valid"), broker.url());
    settings.report_interval = Duration::from_secs(1);
    settings.keep_alive = Duration::from_secs(5);
    // Events are not retained: subscribe before the agent starts, or the first ones are missed.
    let mut dashboard = Dashboard::connect(&broker.url(), &TopicPrefix::default());
    dashboard
        .wait_subscribed(WAIT)
        .await
        .unwrap_or_else(|t| panic!("dashboard not subscribed: {:?}", t.0.last_error));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let agent = Agent::new(settings, FactsFile::new(&facts), SystemClock);
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    let verdict_is = |verdict: Verdict| {
        move |v: &FleetView| latest_state(v).is_some_and(|s| s.verdict == verdict)
    };
    let first = dashboard
        .wait_until(WAIT, verdict_is(Verdict::NotReady))
        .await
        .unwrap_or_else(|t| panic!("first check: {:?}", t.0.devices));
    let first_seq = latest_state(&first).expect("state").seq;

    // The app was updated: the next check reads the file again.
    write("kind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\n[registry]\n");
    let updated = dashboard
        .wait_until(WAIT, verdict_is(Verdict::Ready))
        .await
        .unwrap_or_else(|t| panic!("after the update: {:?}", t.0.devices));
    assert!(latest_state(&updated).expect("state").seq > first_seq);

    // A broken facts file is not a guess: unknown, with the reason.
    write("kind = \"teams_rooms_windows\"\napp_version = \n");
    let broken = dashboard
        .wait_until(WAIT, verdict_is(Verdict::Unknown))
        .await
        .unwrap_or_else(|t| panic!("after breaking the file: {:?}", t.0.devices));
    let state = latest_state(&broken).expect("state");
    assert_eq!(state.findings[0].code, codes::FACTS_UNAVAILABLE);
    assert!(
        state.findings[0].evidence.contains("facts.toml:2:"),
        "{:?}",
        state.findings
    );

    let _ = stop.send(());
    running.await.expect("agent task").expect("clean stop");

    // Events: one check_completed per check, verdict_changed on each change, seq increasing.
    let verdict_changes = |v: &FleetView| -> Vec<(Option<Verdict>, Verdict)> {
        v.devices
            .values()
            .flat_map(|d| &d.events)
            .filter_map(|e| match e.body {
                EventBody::VerdictChanged { from, to } => Some((from, to)),
                _ => None,
            })
            .collect()
    };
    let view = dashboard
        .wait_until(WAIT, |v| verdict_changes(v).len() >= 3)
        .await
        .unwrap_or_else(|t| panic!("verdict changes: {:?}", verdict_changes(&t.0)));
    assert!(view.decode_errors.is_empty(), "{:?}", view.decode_errors);
    assert_eq!(
        verdict_changes(&view),
        [
            (None, Verdict::NotReady),
            (Some(Verdict::NotReady), Verdict::Ready),
            (Some(Verdict::Ready), Verdict::Unknown),
        ]
    );
    let events = &view.devices.values().next().expect("device").events;
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in order, no duplicates: {seqs:?}"
    );
    let checks = events
        .iter()
        .filter(|e| matches!(e.body, EventBody::CheckCompleted { .. }))
        .count();
    assert!(checks >= 3, "{events:?}");
    broker.stop().await.expect("broker stops");
}
