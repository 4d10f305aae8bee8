//! Two controllers on one PostgreSQL database, sharing the fleet's messages through an MQTT 5
//! shared subscription (`$share/controllers/…`) on Mosquitto: both take a share of the
//! messages; one is killed with SIGKILL and the other goes on; when the killed one returns to
//! its session (which holds what the broker had handed it), the store holds every `seq` the
//! fleet published, each taken once.
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_protocol::TopicPrefix;
use roomready_simulator::device::{DeviceEnv, SimDevice};
use roomready_simulator::fleet::demo_fleet;
use roomready_testkit::http::Http;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_testkit::postgres::need_postgres;
use roomready_tests::child::{
    self, ChildController, numbers, poll_until, store_ranges, taken, witness,
};

const DEVICES: usize = 200;
const CHILD: &str = "controller_cluster::cluster_child";

/// Not a test of its own: a controller of the cluster test, in a child process.
#[test]
#[ignore = "a child process of two_controllers_on_one_postgresql_share_the_fleet_and_survive_a_kill"]
fn cluster_child() {
    child::child_main();
}

fn config(dir: &Path, name: &str, broker: &BrokerUrl, database: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "broker_url = \"{broker}\"\nlisten = \"127.0.0.1:0\"\ndatabase = \"{database}\"\n\
             client_id = \"ctl-{name}\"\nshared_group = \"controllers\"\n"
        ),
    )
    .expect("config");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_controllers_on_one_postgresql_share_the_fleet_and_survive_a_kill() {
    const TEST: &str = "two_controllers_on_one_postgresql_share_the_fleet_and_survive_a_kill";
    if !need_mosquitto(TEST) {
        return;
    }
    let Some(postgres) = need_postgres(TEST) else {
        return;
    };
    let database = postgres.database("fleet");
    // Everything queued for a controller's session while it is down is kept.
    let mosquitto = Mosquitto::start(&[
        "max_queued_messages 0".into(),
        "max_inflight_messages 1000".into(),
    ]);
    let broker: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    let dir = tempfile::tempdir().expect("tempdir");
    let config_a = config(dir.path(), "a", &broker, &database);
    let config_b = config(dir.path(), "b", &broker, &database);

    // An independent witness of everything the devices publish.
    let witness = witness(&broker).await;
    let mut a = ChildController::start(CHILD, &config_a);
    let b = ChildController::start(CHILD, &config_b);
    let (http_a, http_b) = (Http::new(&a.url), Http::new(&b.url));
    let env = DeviceEnv {
        report_interval: Duration::from_secs(1),
        keep_alive: Duration::from_secs(10),
        ..DeviceEnv::new(broker.clone(), TopicPrefix::default())
    };
    let devices: Vec<SimDevice> = demo_fleet(DEVICES)
        .into_iter()
        .map(|spec| SimDevice::spawn(spec, &env))
        .collect();

    // The broker hands the fleet's messages out between the two.
    let share = DEVICES as u64 / 2;
    for (name, http) in [("a", &http_a), ("b", &http_b)] {
        assert!(
            poll_until(http, Duration::from_secs(60), move |h| taken(h) >= share).await,
            "controller {name} took no share of the fleet's messages"
        );
    }

    // A goes without warning; B goes on: every device's newer numbers reach the store.
    a.kill();
    let at_kill: BTreeMap<String, u64> = witness
        .snapshot()
        .devices
        .iter()
        .map(|(id, d)| (id.to_string(), d.seqs.last().copied().unwrap_or(0)))
        .collect();
    assert_eq!(
        at_kill.len(),
        DEVICES,
        "every device reported before the kill"
    );
    let taken_b = http_b.run(taken).await;
    let newer = at_kill.clone();
    // Behind: the devices whose store has nothing past `last + 2` yet.
    let behind = |ranges: &BTreeMap<String, String>, newer: &BTreeMap<String, u64>| {
        newer
            .iter()
            .filter(|(id, last)| {
                ranges
                    .get(*id)
                    .and_then(|r| numbers(r).last().copied())
                    .is_none_or(|n| n <= *last + 2)
            })
            .map(|(id, _)| id.clone())
            .collect::<Vec<_>>()
    };
    // The whole suite runs beside this test on two cores: the bound is for a loaded machine.
    let carried = poll_until(&http_b, Duration::from_secs(180), move |h| {
        behind(&store_ranges(h), &newer).is_empty()
    })
    .await;
    if !carried {
        let late = behind(&http_b.run(store_ranges).await, &at_kill);
        panic!(
            "with A killed, B did not carry every device's new reports into the store: {} of \
             {DEVICES} devices behind (e.g. {:?}); B took {} messages, {taken_b} at the kill",
            late.len(),
            late.iter().take(5).collect::<Vec<_>>(),
            http_b.run(taken).await
        );
    }
    assert!(http_b.run(taken).await > taken_b);

    // A returns to its session: what the broker had handed it (and queued for it) arrives.
    a = ChildController::start(CHILD, &config_a);
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
    let seen: BTreeMap<String, BTreeSet<u64>> = witness
        .snapshot()
        .devices
        .iter()
        .map(|(id, d)| (id.to_string(), d.seqs.clone()))
        .collect();
    let expected = seen.clone();
    poll_until(&http_b, Duration::from_secs(60), move |h| {
        let ranges = store_ranges(h);
        expected
            .iter()
            .all(|(id, seqs)| ranges.get(id).is_some_and(|r| seqs.is_subset(&numbers(r))))
    })
    .await;
    let ranges = http_b.run(store_ranges).await;
    let lost: BTreeMap<&String, Vec<u64>> = seen
        .iter()
        .map(|(id, seqs)| {
            let stored = ranges.get(id).map(|r| numbers(r)).unwrap_or_default();
            (id, seqs.difference(&stored).copied().collect::<Vec<_>>())
        })
        .filter(|(_, missing)| !missing.is_empty())
        .collect();
    assert!(
        lost.is_empty(),
        "messages the broker delivered were lost: {lost:?}"
    );
    let summary = http_b.run(|h| h.get("/api/v1/summary").json()).await;
    assert_eq!(
        summary["missing"], 0,
        "no gap in any device's numbers: {summary}"
    );
    // Each message taken once: one history entry per event, whichever controller took it.
    let twice = postgres
        .psql_in(
            "fleet",
            "SELECT count(*) - count(DISTINCT (device_id, seq)) FROM history WHERE kind = 'event'",
        )
        .expect("psql");
    assert_eq!(twice, "0", "events recorded twice: {twice}");
    let events = postgres
        .psql_in("fleet", "SELECT count(*) FROM history WHERE kind = 'event'")
        .expect("psql");
    eprintln!(
        "{} numbered messages of {DEVICES} devices in the store, {} events, each once; B took \
         {} messages",
        seen.values().map(BTreeSet::len).sum::<usize>(),
        events,
        http_b.run(taken).await
    );
    drop(a);
    drop(b);
    drop(mosquitto);
}
