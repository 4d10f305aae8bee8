//! What only the PostgreSQL store does: it refuses a database it must not touch (and never
//! shows the password), serializes the writes of several controllers on one database so every
//! `seq` is taken once, and lets one controller at a time lead a background task.

use std::sync::Arc;

use roomready_protocol::{DeviceFacts, DeviceId, DeviceKind, State, Timestamp, Verdict};
use roomready_testkit::postgres::need_postgres;

use super::{PostgresOptions, PostgresStore};
use crate::store::{Batch, Decoded, Item, Store};

fn open(url: &str) -> Result<PostgresStore, String> {
    PostgresStore::open(&PostgresOptions::new(url)).map_err(|e| e.to_string())
}

#[test]
fn databases_it_must_not_touch_are_refused_and_left_alone() {
    let Some(cluster) = need_postgres("databases_it_must_not_touch_are_refused_and_left_alone")
    else {
        return;
    };
    drop(open(&cluster.database("empty")).expect("an empty database is taken"));
    // A database with another application's table.
    let foreign = cluster.database("foreign_app");
    let psql = |db: &str, sql: &str| cluster.psql_in(db, sql).expect("psql");
    psql(
        "foreign_app",
        "CREATE TABLE t (x int); INSERT INTO t VALUES (7)",
    );
    let err = open(&foreign).err().expect("refused");
    assert!(err.contains("another application"), "{err}");
    assert!(err.contains("/foreign_app"), "names the database: {err}");
    assert_eq!(psql("foreign_app", "SELECT x FROM t"), "7", "left alone");
    // A database a newer controller wrote.
    let newer = cluster.database("newer");
    drop(open(&newer).expect("create"));
    psql("newer", "UPDATE roomready_meta SET schema_version = 99");
    let err = open(&newer).err().expect("refused");
    assert!(
        err.contains("newer roomready-controller (schema 99"),
        "{err}"
    );
    // A second open of a current database migrates nothing and works.
    psql("newer", "UPDATE roomready_meta SET schema_version = 1");
    drop(open(&newer).expect("reopen"));
}

#[test]
fn a_password_is_never_shown_and_tls_is_required_off_loopback() {
    let err = open("postgres://fleet:sekrit@127.0.0.1:1/roomready")
        .err()
        .expect("nothing listens on port 1");
    assert!(!err.contains("sekrit"), "{err}");
    assert!(
        err.contains("postgres://fleet@127.0.0.1:1/roomready"),
        "{err}"
    );
    let err = open("postgres://fleet:sekrit@db.example.net/roomready?sslmode=disable")
        .err()
        .expect("refused before connecting");
    assert!(err.contains("sslmode=disable is refused"), "{err}");
    assert!(!err.contains("sekrit"), "{err}");
    let err = open("postgres://fleet:sekrit@[::1/x")
        .err()
        .expect("bad URL");
    assert!(err.contains("not a PostgreSQL connection string"), "{err}");
    assert!(!err.contains("sekrit"), "{err}");
    let options = PostgresOptions::new("postgres://fleet:sekrit@127.0.0.1/x");
    assert!(!format!("{options:?}").contains("sekrit"));
}

fn state(device: &str, seq: u64) -> Item {
    Item::Message {
        message: Decoded::State(State {
            device: DeviceId::new(device).expect("id"),
            seq,
            ts: Timestamp::from_unix_ms(seq * 1000),
            agent_version: "0.1.0".into(),
            facts: DeviceFacts {
                kind: DeviceKind::TeamsRoomsWindows,
                app_version: Some("4.0.64.0".into()),
                os_build: None,
            },
            verdict: if seq.is_multiple_of(10) {
                Verdict::AtRisk
            } else {
                Verdict::Ready
            },
            findings: Vec::new(),
            endpoints: Vec::new(),
            placement: Default::default(),
            observed: None,
        }),
        received_at: Timestamp::from_unix_ms(seq * 1000),
    }
}

#[test]
fn two_controllers_on_one_database_take_every_seq_once_and_one_leads() {
    let Some(cluster) =
        need_postgres("two_controllers_on_one_database_take_every_seq_once_and_one_leads")
    else {
        return;
    };
    let url = cluster.database("shared");
    let a = Arc::new(open(&url).expect("a"));
    let b = Arc::new(open(&url).expect("b"));
    // Each controller gets every other message of the same devices (a shared subscription
    // hands messages out one by one), committed concurrently in small batches; each also gets
    // a redelivery of some of the other's.
    let devices = ["mtr-1", "mtr-2", "mtr-3"];
    let run = |store: Arc<PostgresStore>, parity: u64| {
        std::thread::spawn(move || {
            let (mut duplicates, mut redelivered) = (0, 0);
            for chunk in (1..=200u64)
                .filter(|s| s % 2 == parity)
                .collect::<Vec<_>>()
                .chunks(5)
            {
                let mut items = Vec::new();
                for seq in chunk {
                    for device in devices {
                        items.push(state(device, *seq));
                    }
                }
                if chunk[0] > 1 && chunk[0] % 20 < 2 {
                    items.push(state("mtr-1", chunk[0] - 1));
                    redelivered += 1;
                }
                duplicates += store.commit(&Batch { items }).expect("commit").duplicates;
            }
            (duplicates, redelivered)
        })
    };
    let ta = run(Arc::clone(&a), 1);
    let tb = run(Arc::clone(&b), 0);
    let (dup_a, again_a) = ta.join().expect("a");
    let (dup_b, again_b) = tb.join().expect("b");
    let dup = dup_a + dup_b;
    assert_eq!(
        dup,
        again_a + again_b,
        "every redelivery, and only those, is a duplicate"
    );
    assert!(dup > 0);
    for device in devices {
        let detail = a
            .device(&DeviceId::new(device).expect("id"))
            .expect("query")
            .expect("exists");
        assert_eq!(detail.seq.ranges, "1-200", "{device}");
        assert_eq!(detail.seq.missing, 0, "{device}");
        assert_eq!(detail.row.state_ts, Some(Timestamp::from_unix_ms(200_000)));
    }
    let mtr1 = a
        .device(&DeviceId::new("mtr-1").expect("id"))
        .expect("query")
        .expect("exists");
    assert_eq!(mtr1.seq.duplicates, dup, "redeliveries counted once each");
    // History ids grow in commit order; the last verdict is the newest state's.
    let history = b
        .history(&crate::store::HistoryQuery {
            device: Some(DeviceId::new("mtr-2").expect("id")),
            kinds: vec![crate::store::HistoryKind::Verdict],
            limit: 10_000,
            ..Default::default()
        })
        .expect("history");
    assert!(
        history.windows(2).all(|w| w[0].id > w[1].id),
        "newest first, ids unique"
    );
    assert!(!history.is_empty() && history.len() <= 40, "{history:#?}");
    assert_eq!(history[0].data["to"], "at_risk", "{history:#?}");

    // One leader per task; it passes on when the leader's connection goes.
    assert!(a.lead("rollouts").expect("lead"));
    assert!(a.lead("rollouts").expect("still"), "a leader stays leader");
    assert!(!b.lead("rollouts").expect("lead"));
    assert!(b.lead("alerts").expect("another task"));
    drop(ta_store(a));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !b.lead("rollouts").expect("lead") {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock passes when its holder's session ends"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Takes the store out of its `Arc` (the worker threads have ended) so dropping it closes
/// its connections.
fn ta_store(store: Arc<PostgresStore>) -> PostgresStore {
    Arc::try_unwrap(store)
        .ok()
        .expect("the only reference is left")
}
