//! The controller killed with SIGKILL while 1,000 devices report through Mosquitto, then started
//! again on the same database: every `seq` of every device that the broker delivered is in the
//! store, none missing. This is the promise of "acknowledge after commit": what the controller
//! acknowledged is committed, and what it had not yet acknowledged the broker delivers again to
//! the same persistent session.
//!
//! The controller runs in a child process (this test binary again, running the ignored test
//! `controller_child`, which starts the controller library exactly as the binary does), so that
//! it can be killed without warning.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_protocol::TopicPrefix;
use roomready_simulator::device::{DeviceEnv, SimDevice};
use roomready_simulator::fleet::demo_fleet;
use roomready_testkit::http::Http;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::WAIT;
use roomready_tests::child::{
    self, ChildController, in_flight, numbers, poll_until, store_ranges, witness,
};

const DEVICES: usize = 1000;
/// Messages delivered and not yet committed when a kill counts as landing mid-flight.
const IN_FLIGHT: u64 = 200;
/// How many times the controller is killed.
const KILLS: usize = 5;

/// Not a test of its own: the controller of [`a_controller_killed_with_sigkill_loses_nothing`],
/// run in a child process (`roomready_tests::child`).
#[test]
#[ignore = "the child process of a_controller_killed_with_sigkill_loses_nothing"]
fn controller_child() {
    child::child_main();
}

fn start_controller(config: &Path) -> ChildController {
    ChildController::start("controller_kill::controller_child", config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_killed_with_sigkill_loses_nothing() {
    if !need_mosquitto("a_controller_killed_with_sigkill_loses_nothing") {
        return;
    }
    // Everything queued for the controller's session while it is down is kept (Mosquitto's
    // default keeps 1,000 per client and drops the rest, which would not be the controller's
    // loss).
    // And up to 1,000 messages to it unacknowledged at a time (the default, 20, would leave
    // little in flight at a kill).
    let mosquitto = Mosquitto::start(&[
        "max_queued_messages 0".into(),
        "max_inflight_messages 1000".into(),
    ]);
    let broker: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("controller.toml");
    std::fs::write(
        &config,
        format!(
            "broker_url = \"{broker}\"\nlisten = \"127.0.0.1:0\"\ndatabase = \"controller.db\"\n\
             client_id = \"ctl-kill\"\n"
        ),
    )
    .expect("config");

    // An independent witness of everything the devices publish.
    let mut witness = witness(&broker).await;

    let mut controller = start_controller(&config);
    let http = Http::new(&controller.url);
    let env = DeviceEnv {
        report_interval: Duration::from_secs(1),
        keep_alive: Duration::from_secs(10),
        ..DeviceEnv::new(broker.clone(), TopicPrefix::default())
    };
    let devices: Vec<SimDevice> = demo_fleet(DEVICES)
        .into_iter()
        .map(|spec| SimDevice::spawn(spec, &env))
        .collect();
    // Killed [`KILLS`] times, each while messages are in flight: delivered by the broker but not
    // yet committed (the first burst of 1,000 devices' status, state and events; then the
    // backlog the broker queued while the controller was down). A controller that acknowledged
    // before committing loses exactly those.
    let mut http = http;
    let mut backlogs = Vec::new();
    for _ in 0..KILLS {
        let mut backlog = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while backlog < IN_FLIGHT && tokio::time::Instant::now() < deadline {
            backlog = http.run(in_flight).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        controller.kill();
        backlogs.push(backlog);
        // Reports go on meanwhile: queued by the broker for the controller's session.
        let before = witness.snapshot().messages;
        witness
            .wait_until(WAIT, |v| v.messages >= before + 2 * DEVICES as u64)
            .await
            .expect("the fleet reports while the controller is down");
        controller = start_controller(&config);
        http = Http::new(&controller.url);
    }
    // The test proves something only if a kill found messages in flight.
    assert!(
        backlogs.iter().any(|b| *b >= IN_FLIGHT),
        "no kill found {IN_FLIGHT} messages in flight: {backlogs:?}"
    );

    // Stop the fleet cleanly, then compare what the witness saw with the store.
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
    let seen: BTreeMap<String, BTreeSet<u64>> = witness
        .snapshot()
        .devices
        .iter()
        .map(|(id, d)| (id.to_string(), d.seqs.clone()))
        .collect();
    assert_eq!(seen.len(), DEVICES);
    let expected = seen.clone();
    // What the broker still holds for the session arrives in a moment; a message that was
    // acknowledged and not committed never does (the assertion below names them).
    poll_until(&http, Duration::from_secs(60), move |http| {
        let ranges = store_ranges(http);
        expected
            .iter()
            .all(|(id, seqs)| ranges.get(id).is_some_and(|r| seqs.is_subset(&numbers(r))))
    })
    .await;
    let ranges = http.run(store_ranges).await;
    let mut total = 0;
    let mut lost = BTreeMap::new();
    for (id, seqs) in &seen {
        let stored = ranges.get(id).map(|r| numbers(r)).unwrap_or_default();
        let missing: Vec<u64> = seqs.difference(&stored).copied().collect();
        if !missing.is_empty() {
            lost.insert(id.clone(), missing);
        }
        total += seqs.len();
    }
    assert!(
        lost.is_empty(),
        "{} of {DEVICES} devices lost messages the broker delivered: {lost:?}",
        lost.len()
    );
    let summary = http.run(|http| http.get("/api/v1/summary").json()).await;
    assert_eq!(
        summary["missing"], 0,
        "no gap in any device's numbers: {summary}"
    );
    eprintln!(
        "{total} numbered messages of {DEVICES} devices, all in the store after {KILLS} SIGKILLs \
         with {backlogs:?} messages in flight"
    );
    drop(controller);
    drop(mosquitto);
    drop(dir);
}

/// A backlog far larger than the controller's queues (the received publishes and the
/// acknowledgements waiting for the event loop) arrives at once when the controller returns to
/// its session: all of it is committed. Acknowledging by waiting for room in the client's queue
/// deadlocked here once both queues were full (found by tests/bench/controller.sh).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_controllers_queues_is_all_committed() {
    const TEST: &str = "a_backlog_larger_than_the_controllers_queues_is_all_committed";
    const DEVICES: usize = 50;
    const EVENTS: usize = 600;
    if !need_mosquitto(TEST) {
        return;
    }
    let mosquitto = Mosquitto::start(&[
        "max_queued_messages 0".into(),
        "max_inflight_messages 1000".into(),
    ]);
    let broker: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    // The controller's session exists; then it goes away and the backlog is queued for it.
    let console = roomready_tests::console::Console::start(&broker, |_, _| {}).await;
    console.subscribed().await;
    drop(console.stop().await);
    let mut messages = Vec::with_capacity(DEVICES * EVENTS);
    for seq in 1..=EVENTS {
        for device in 0..DEVICES {
            let payload = format!(
                "{{\"schema\":\"roomready.event/1\",\"device\":\"mtr-{device:04}\",\"seq\":{seq},\
                 \"ts\":\"2026-11-23T14:07:25.200Z\",\"event\":\"check_completed\",\
                 \"verdict\":\"ready\",\"findings\":0}}"
            );
            let topic = format!("roomready/v1/mtr-{device:04}/events");
            messages.push((topic, payload.into_bytes(), false));
        }
    }
    roomready_tests::publish::publish(&broker, "backlog", messages).await;

    let console = roomready_tests::console::Console::start(&broker, |_, _| {}).await;
    let mut committed = console.running.subscribe();
    let stats = std::sync::Arc::clone(&console.running.ingest_stats);
    let all = (DEVICES * EVENTS) as u64;
    let taken = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let done = stats.taken.load(std::sync::atomic::Ordering::Relaxed)
                + stats.duplicates.load(std::sync::atomic::Ordering::Relaxed);
            if done >= all {
                return done;
            }
            match committed.recv().await {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return done,
            }
        }
    })
    .await;
    let received = stats.received.load(std::sync::atomic::Ordering::Relaxed);
    let taken = taken.unwrap_or_else(|_| {
        panic!(
            "the backlog of {all} was not committed within 120 s: {} taken of {received} received",
            stats.taken.load(std::sync::atomic::Ordering::Relaxed)
        )
    });
    assert_eq!(taken, all, "every queued message once");
    let summary = console.http.run(|h| h.get("/api/v1/summary").json()).await;
    assert_eq!(summary["missing"], 0, "{summary}");
    console.stop().await;
}
