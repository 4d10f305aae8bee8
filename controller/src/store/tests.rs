//! The store against real databases, every case on both backends (a SQLite file, and a database
//! of a throwaway PostgreSQL cluster): commits, duplicates across a reopen, the queries behind
//! every page, commands and their answers, retention, placement, alerts; and the files and
//! databases each refuses.

use roomready_protocol::{
    CommandAction, DeviceFacts, Event, EventBody, Finding, Placement, Ring, Room, Site,
    StatusReason, Tag, Tags,
};

use super::*;

fn id(name: &str) -> DeviceId {
    DeviceId::new(name).expect("valid id")
}

fn at(ms: u64) -> Timestamp {
    Timestamp::from_unix_ms(ms)
}

fn open(dir: &std::path::Path) -> SqliteStore {
    SqliteStore::open(&SqliteOptions {
        path: dir.join("controller.db"),
        synchronous: Synchronous::Normal,
    })
    .expect("open")
}

fn finding(code: &str, severity: Severity) -> Finding {
    Finding {
        code: code.into(),
        severity,
        title: format!("{code} title"),
        evidence: "seen <b>here</b>".into(),
        remediation: format!("fix {code}"),
        reference: "https://learn.microsoft.com/".into(),
    }
}

fn state(device: &str, seq: u64, verdict: Verdict, findings: Vec<Finding>) -> Item {
    message(Decoded::State(State {
        device: id(device),
        seq,
        ts: at(seq * 10),
        agent_version: "0.1.0".into(),
        facts: DeviceFacts {
            kind: DeviceKind::TeamsRoomsWindows,
            app_version: Some("4.0.64.0".into()),
            os_build: Some("19045.4894".into()),
        },
        verdict,
        findings,
        endpoints: Vec::new(),
        placement: Default::default(),
        observed: None,
    }))
}

fn status(device: &str, seq: u64, presence: Presence) -> Item {
    message(Decoded::Status(Status {
        device: id(device),
        seq,
        ts: at(seq * 10),
        status: presence,
        reason: (presence == Presence::Offline).then_some(StatusReason::ConnectionLost),
    }))
}

fn event(device: &str, seq: u64, body: EventBody) -> Item {
    message(Decoded::Event(Event {
        device: id(device),
        seq,
        ts: at(seq * 10),
        body,
    }))
}

fn message(message: Decoded) -> Item {
    Item::Message {
        message,
        received_at: at(1_000_000),
    }
}

/// Where a case's store lives.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    fn open(&self) -> Box<dyn Store> {
        match self {
            Db::Sqlite(dir) => Box::new(open(dir.path())),
            Db::Postgres(url) => {
                Box::new(PostgresStore::open(&PostgresOptions::new(url)).expect("open postgres"))
            }
        }
    }
}

fn commit(store: &dyn Store, items: Vec<Item>) -> Committed {
    store.commit(&Batch { items }).expect("commit")
}

fn a_batch_makes_devices_history_and_counts(db: &Db) {
    let store = db.open();
    let committed = commit(
        &*store,
        vec![
            status("mtr-1", 0, Presence::Online),
            state(
                "mtr-1",
                1,
                Verdict::NotReady,
                vec![
                    finding("TLS12_APP_TOO_OLD", Severity::Critical),
                    finding("INFO", Severity::Info),
                ],
            ),
            state("mtr-2", 1, Verdict::Ready, vec![]),
            event(
                "mtr-1",
                2,
                EventBody::CheckCompleted {
                    verdict: Verdict::NotReady,
                    findings: 2,
                },
            ),
            // The same state again (a broker redelivery): dropped.
            state("mtr-2", 1, Verdict::Ready, vec![]),
        ],
    );
    assert_eq!(committed.taken, 4);
    assert_eq!(committed.duplicates, 1);
    assert_eq!(committed.devices.len(), 2);
    let kinds: Vec<HistoryKind> = committed.history.iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        [
            HistoryKind::Presence,
            HistoryKind::Verdict,
            HistoryKind::FindingAppeared,
            HistoryKind::FindingAppeared,
            HistoryKind::Verdict,
            HistoryKind::Event,
        ]
    );

    let summary = store.summary().expect("summary");
    assert_eq!(summary.devices, 2);
    assert_eq!(
        summary.by_verdict,
        vec![
            (Verdict::Ready, 1),
            (Verdict::AtRisk, 0),
            (Verdict::NotReady, 1),
            (Verdict::Unknown, 0)
        ]
    );
    assert_eq!((summary.online, summary.presence_unknown), (1, 1));
    assert_eq!(summary.by_kind, vec![(DeviceKind::TeamsRoomsWindows, 2)]);

    let detail = store.device(&id("mtr-1")).expect("query").expect("exists");
    assert_eq!(detail.row.verdict, Some(Verdict::NotReady));
    assert_eq!(
        detail.row.top_finding.as_ref().map(|f| f.code.as_str()),
        Some("TLS12_APP_TOO_OLD")
    );
    assert_eq!(detail.row.findings, 2);
    assert_eq!(detail.row.presence, Some(Presence::Online));
    assert_eq!(
        detail
            .state
            .as_ref()
            .map(|s| s.findings[0].evidence.as_str()),
        Some("seen <b>here</b>")
    );
    assert_eq!(detail.seq.ranges, "1-2");
    assert_eq!(store.device(&id("nobody")).expect("query"), None);
}

fn duplicates_are_recognised_after_a_reopen(db: &Db) {
    {
        let store = db.open();
        commit(
            &*store,
            vec![
                state("mtr-1", 1, Verdict::Ready, vec![]),
                status("mtr-1", 1, Presence::Online),
            ],
        );
    }
    let store = db.open();
    let again = commit(
        &*store,
        vec![
            state("mtr-1", 1, Verdict::Ready, vec![]),
            status("mtr-1", 1, Presence::Online),
            event("mtr-1", 4, EventBody::RecordsDropped { count: 1, total: 1 }),
        ],
    );
    assert_eq!(again.duplicates, 2);
    assert_eq!(again.taken, 1);
    assert_eq!(again.gaps, 2);
    let detail = store.device(&id("mtr-1")).expect("query").expect("exists");
    assert_eq!(detail.seq.ranges, "1,4");
    assert_eq!(
        (
            detail.seq.missing,
            detail.seq.explained,
            detail.seq.duplicates
        ),
        (2, 1, 2)
    );
    let summary = store.summary().expect("summary");
    assert_eq!((summary.missing, summary.missing_explained), (2, 1));
}

fn the_device_table_filters_sorts_and_pages(db: &Db) {
    let store = db.open();
    let mut items = Vec::new();
    for n in 0..30 {
        let (verdict, findings) = match n % 3 {
            0 => (Verdict::Ready, vec![]),
            1 => (
                Verdict::AtRisk,
                vec![finding("SUITE_WEAK", Severity::Warning)],
            ),
            _ => (
                Verdict::NotReady,
                vec![finding("TLS12_APP_TOO_OLD", Severity::Critical)],
            ),
        };
        items.push(state(&format!("mtr-{n:02}"), 1, verdict, findings));
    }
    commit(&*store, items);
    let query = |q: DeviceQuery| store.devices(&q).expect("query");
    let not_ready = query(DeviceQuery {
        verdict: Some(Verdict::NotReady),
        ..DeviceQuery::default()
    });
    assert_eq!(not_ready.total, 10);
    assert!(
        not_ready
            .devices
            .iter()
            .all(|d| d.verdict == Some(Verdict::NotReady))
    );
    let by_finding = query(DeviceQuery {
        finding: Some("SUITE_WEAK".into()),
        ..DeviceQuery::default()
    });
    assert_eq!(by_finding.total, 10);
    let text = query(DeviceQuery {
        text: Some("MTR-0".into()),
        ..DeviceQuery::default()
    });
    assert_eq!(text.total, 10, "case-insensitive, mtr-00..mtr-09");
    // A LIKE wildcard in the text is a literal character.
    let wildcard = query(DeviceQuery {
        text: Some("%".into()),
        ..DeviceQuery::default()
    });
    assert_eq!(wildcard.total, 0);
    let worst_first = query(DeviceQuery {
        sort: SortKey::Verdict,
        descending: true,
        per_page: 7,
        page: 2,
        ..DeviceQuery::default()
    });
    assert_eq!(worst_first.total, 30);
    assert_eq!(worst_first.devices.len(), 7);
    assert_eq!(worst_first.devices[0].verdict, Some(Verdict::NotReady));
    assert_eq!(worst_first.devices[6].verdict, Some(Verdict::AtRisk));
    let past_the_end = query(DeviceQuery {
        page: 99,
        ..DeviceQuery::default()
    });
    assert!(past_the_end.devices.is_empty());

    let findings = store.findings().expect("findings");
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0].devices, 10);
    let app = findings
        .iter()
        .find(|f| f.code == "TLS12_APP_TOO_OLD")
        .expect("listed");
    assert_eq!(app.by_verdict, vec![(Verdict::NotReady, 10)]);
    assert_eq!(app.remediation, "fix TLS12_APP_TOO_OLD");
    let with = store
        .devices_with_finding("SUITE_WEAK", 3)
        .expect("devices");
    assert_eq!(with.len(), 3);
}

fn commands_are_recorded_and_answered(db: &Db) {
    let store = db.open();
    let command = CommandRecord {
        id: "c-1".into(),
        device: id("mtr-1"),
        command: Command {
            id: "c-1".into(),
            action: CommandAction::CheckNow,
        },
        by: "alice".into(),
        sent_at: at(5),
        status: None,
        reason: None,
        message: None,
        answered_at: None,
    };
    let entry = store.record_command(&command).expect("record");
    assert_eq!(entry.kind, HistoryKind::Command);
    assert_eq!(entry.data["by"], "alice");
    assert!(matches!(
        store.record_command(&command),
        Err(StoreError::Invalid(_))
    ));
    let answer = |device: &str, seq, status| {
        message(Decoded::Response(CommandResponse {
            device: id(device),
            id: "c-1".into(),
            status,
            reason: None,
            message: Some("done".into()),
            seq,
            ts: at(seq),
        }))
    };
    commit(
        &*store,
        vec![
            answer("mtr-1", 1, ResponseStatus::Succeeded),
            // A late `accepted` does not replace the final answer; another device's answer to
            // this id is not this command's.
            answer("mtr-1", 2, ResponseStatus::Accepted),
            answer("mtr-9", 1, ResponseStatus::Failed),
        ],
    );
    let record = store.command("c-1").expect("query").expect("exists");
    assert_eq!(record.status, Some(ResponseStatus::Succeeded));
    assert_eq!(record.by, "alice");
    assert_eq!(store.commands(&id("mtr-1"), 10).expect("list").len(), 1);
    let history = store
        .history(&HistoryQuery {
            device: Some(id("mtr-1")),
            ..HistoryQuery::default()
        })
        .expect("history");
    let kinds: Vec<HistoryKind> = history.iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        [
            HistoryKind::Response,
            HistoryKind::Response,
            HistoryKind::Command
        ]
    );
}

fn undecodable_payloads_are_kept_bounded(db: &Db) {
    let store = db.open();
    let items = (0..MAX_DECODE_ERRORS + 20)
        .map(|n| {
            Item::Undecodable(DecodeFailure {
                received_at: at(n as u64),
                topic: format!("roomready/v1/x{n}/state"),
                reason: "not JSON".into(),
                payload_head: "garbage".into(),
                payload_len: 7,
            })
        })
        .collect();
    assert_eq!(commit(&*store, items).undecodable, 120);
    let kept = store.decode_failures().expect("list");
    assert_eq!(kept.len(), MAX_DECODE_ERRORS);
    assert_eq!(kept[0].topic, "roomready/v1/x119/state");
}

fn history_is_pruned_by_its_retention(db: &Db) {
    let store = db.open();
    let day = 86_400_000;
    let old = |item: Item| match item {
        Item::Message { message, .. } => Item::Message {
            message,
            received_at: at(day),
        },
        other => other,
    };
    commit(
        &*store,
        vec![
            old(state("mtr-1", 1, Verdict::Ready, vec![])),
            old(event(
                "mtr-1",
                2,
                EventBody::CheckCompleted {
                    verdict: Verdict::Ready,
                    findings: 0,
                },
            )),
        ],
    );
    let retention = Retention {
        transitions_days: 400,
        events_days: 90,
    };
    // 100 days later: the event goes, the verdict transition stays.
    assert_eq!(store.prune(retention, at(101 * day)).expect("prune"), 1);
    let left = store.history(&HistoryQuery::default()).expect("history");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].kind, HistoryKind::Verdict);
    assert_eq!(store.prune(retention, at(500 * day)).expect("prune"), 1);
}

#[test]
fn files_that_are_not_its_database_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("controller.db");
    let options = SqliteOptions {
        path: path.clone(),
        synchronous: Synchronous::Full,
    };
    let refused = |expect: &str| {
        let before = std::fs::read(&path).expect("read");
        let err = match SqliteStore::open(&options) {
            Ok(_) => panic!("opened"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(expect), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert_eq!(
            std::fs::read(&path).expect("read"),
            before,
            "never rewritten"
        );
    };
    std::fs::write(&path, vec![0x5a; 8192]).expect("write");
    refused("not a usable roomready controller database");

    std::fs::remove_file(&path).expect("remove");
    {
        let other = rusqlite::Connection::open(&path).expect("sqlite");
        other
            .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .expect("other app");
    }
    refused("another application");

    std::fs::remove_file(&path).expect("remove");
    drop(SqliteStore::open(&options).expect("create"));
    {
        let conn = rusqlite::Connection::open(&path).expect("sqlite");
        conn.pragma_update(None, "user_version", 99)
            .expect("set version");
    }
    refused("newer roomready-controller (schema 99");
}

fn placed(device: &str, seq: u64, verdict: Verdict, site: &str, ring: u64, tags: &[&str]) -> Item {
    let Item::Message {
        message: Decoded::State(mut state),
        ..
    } = state(device, seq, verdict, Vec::new())
    else {
        unreachable!("state() makes a state")
    };
    state.placement = Placement {
        site: Some(Site::new(site).expect("site")),
        room: Some(Room::new(format!("Room {device}")).expect("room")),
        ring: Some(Ring::new(ring).expect("ring")),
        tags: Tags::new(tags.iter().map(|t| Tag::new(*t).expect("tag")).collect()).expect("tags"),
        utc_offset_minutes: None,
    };
    message(Decoded::State(state))
}

fn devices_are_filtered_and_totalled_by_site_ring_and_tag(db: &Db) {
    let store = db.open();
    commit(
        &*store,
        vec![
            placed("a", 1, Verdict::Ready, "oslo", 0, &["board"]),
            placed("b", 1, Verdict::NotReady, "oslo", 1, &["board", "vip"]),
            placed("c", 1, Verdict::AtRisk, "bergen", 1, &[]),
            state("d", 1, Verdict::Ready, Vec::new()),
        ],
    );
    let ids = |query: DeviceQuery| -> Vec<String> {
        let page = store.devices(&query).expect("devices");
        page.devices.iter().map(|d| d.id.to_string()).collect()
    };
    let site = |s: &str| DeviceQuery {
        site: Some(s.into()),
        ..DeviceQuery::default()
    };
    assert_eq!(ids(site("oslo")), ["a", "b"]);
    assert_eq!(
        ids(DeviceQuery {
            ring: Some(1),
            ..DeviceQuery::default()
        }),
        ["b", "c"]
    );
    assert_eq!(
        ids(DeviceQuery {
            tag: Some("vip".into()),
            ..DeviceQuery::default()
        }),
        ["b"]
    );
    assert_eq!(
        ids(DeviceQuery {
            text: Some("room c".into()),
            ..DeviceQuery::default()
        }),
        ["c"],
        "the text filter reads rooms"
    );
    let b = &store.devices(&site("oslo")).expect("devices").devices[1];
    assert_eq!(
        (b.site.as_deref(), b.room.as_deref(), b.ring, b.tags.clone()),
        (
            Some("oslo"),
            Some("Room b"),
            Some(1),
            vec!["board".to_owned(), "vip".to_owned()]
        )
    );

    let groups = store.groups().expect("groups");
    let row = |rows: &[GroupTotal], name: &str| {
        rows.iter()
            .find(|g| g.name == name)
            .map(|g| (g.devices, g.not_ready, g.at_risk))
    };
    assert_eq!(groups.sites[0].name, "oslo", "largest first");
    assert_eq!(row(&groups.sites, "oslo"), Some((2, 1, 0)));
    assert_eq!(row(&groups.sites, "bergen"), Some((1, 0, 1)));
    assert_eq!(
        groups
            .rings
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["0", "1"],
        "rings in order"
    );
    assert_eq!(row(&groups.rings, "1"), Some((2, 1, 1)));
    assert_eq!(row(&groups.tags, "board"), Some((2, 1, 0)));
    assert_eq!((groups.without_site, groups.without_ring), (1, 1));

    // A later state that moves the device replaces where it was, tags included.
    commit(
        &*store,
        vec![placed("b", 2, Verdict::Ready, "bergen", 2, &["spare"])],
    );
    let groups = store.groups().expect("groups");
    assert_eq!(row(&groups.sites, "oslo"), Some((1, 0, 0)));
    assert_eq!(row(&groups.tags, "vip"), None);
    assert_eq!(row(&groups.tags, "spare"), Some((1, 0, 0)));
}

fn new_alert(key: &str, quiet_key: &str, at_ms: u64, suppressed: bool) -> NewAlert {
    NewAlert {
        rule: "offline",
        key: key.into(),
        quiet_key: quiet_key.into(),
        device: Some(id("a")),
        site: None,
        raised_at: at(at_ms),
        summary: format!("alert {key}"),
        suppressed,
    }
}

fn alerts_are_recorded_once_kept_quiet_and_delivered_or_given_up(db: &Db) {
    let store = db.open();
    // The very first scan starts at the newest history entry: nothing from before.
    commit(&*store, vec![state("a", 1, Verdict::Ready, Vec::new())]);
    let first = store.alert_scan(at(0), None).expect("scan");
    assert!(first.history.is_empty());
    let minute = std::time::Duration::from_secs(60);
    let recorded = store
        .record_alerts(
            &[
                new_alert("offline/a/1", "offline/a", 1_000, false),
                new_alert("offline/a/1", "offline/a", 1_000, false),
                new_alert("offline/a/2", "offline/a", 30_000, false),
                new_alert("offline/a/3", "offline/a", 30_000, true),
            ],
            minute,
            first.cursor,
        )
        .expect("record");
    assert_eq!(
        recorded, 2,
        "a key once; within the quiet minute only the suppressed one"
    );
    // From the cursor on: a verdict change after it is read, once.
    commit(&*store, vec![state("a", 2, Verdict::NotReady, Vec::new())]);
    let scan = store.alert_scan(at(0), None).expect("scan");
    assert_eq!(scan.history.len(), 1);
    store
        .record_alerts(&[], minute, scan.cursor)
        .expect("cursor");
    assert!(
        store
            .alert_scan(at(0), None)
            .expect("scan")
            .history
            .is_empty()
    );
    // After the quiet minute, the same rule speaks again.
    let later = store
        .record_alerts(
            &[new_alert("offline/a/4", "offline/a", 62_000, false)],
            minute,
            scan.cursor,
        )
        .expect("record");
    assert_eq!(later, 1);

    let pending = store.pending_alerts(10).expect("pending");
    assert_eq!(pending.len(), 2);
    let ids: Vec<i64> = pending.iter().map(|a| a.id).collect();
    store
        .finish_alerts(
            &ids[..1],
            AlertOutcome::Pending,
            Some("HTTP 500"),
            at(70_000),
        )
        .expect("an attempt");
    store
        .finish_alerts(&ids[..1], AlertOutcome::Delivered, None, at(71_000))
        .expect("delivered");
    store
        .finish_alerts(
            &ids[1..],
            AlertOutcome::Failed,
            Some("HTTP 404"),
            at(72_000),
        )
        .expect("given up");
    assert!(store.pending_alerts(10).expect("pending").is_empty());
    let all = store.alerts(10).expect("alerts");
    let outcomes: Vec<(AlertOutcome, u64)> = all.iter().map(|a| (a.outcome, a.attempts)).collect();
    assert_eq!(
        outcomes,
        [
            (AlertOutcome::Failed, 1),
            (AlertOutcome::Suppressed, 0),
            (AlertOutcome::Delivered, 2),
        ],
        "newest first"
    );
    assert_eq!(all[0].last_error.as_deref(), Some("HTTP 404"));
    // A finished alert is not touched again.
    store
        .finish_alerts(&ids[..1], AlertOutcome::Failed, Some("late"), at(80_000))
        .expect("no-op");
    assert_eq!(
        store.alerts(10).expect("alerts")[2].outcome,
        AlertOutcome::Delivered
    );
}

fn a_device_is_offline_since_its_presence_changed_not_since_its_last_message(db: &Db) {
    let store = db.open();
    let received = |item: Item, ms: u64| match item {
        Item::Message { message, .. } => Item::Message {
            message,
            received_at: at(ms),
        },
        other => other,
    };
    commit(
        &*store,
        vec![
            received(state("a", 1, Verdict::Ready, Vec::new()), 1_000),
            received(status("a", 1, Presence::Online), 1_000),
            received(status("a", 1, Presence::Offline), 5_000),
            // A retained state redelivered while it is away moves last_seen, not the spell.
            received(state("a", 2, Verdict::Ready, Vec::new()), 9_000),
        ],
    );
    let scan = store.alert_scan(at(6_000), None).expect("scan");
    assert_eq!(scan.offline, [(id("a"), None, at(5_000))]);
    assert!(
        store
            .alert_scan(at(5_000), None)
            .expect("scan")
            .offline
            .is_empty()
    );
}

fn the_rollout_runner_observes_each_device_and_only_its_own_answers(db: &Db) {
    let store = db.open();
    commit(
        &*store,
        vec![
            state("a", 3, Verdict::Ready, Vec::new()),
            status("a", 1, Presence::Online),
            state("b", 7, Verdict::AtRisk, Vec::new()),
            state("c", 1, Verdict::NotReady, Vec::new()),
        ],
    );
    let send = |command: &str, device: &str| {
        store
            .record_command(&CommandRecord {
                id: command.into(),
                device: id(device),
                command: Command {
                    id: command.into(),
                    action: CommandAction::CheckNow,
                },
                by: "rollout".into(),
                sent_at: at(5),
                status: None,
                reason: None,
                message: None,
                answered_at: None,
            })
            .expect("record");
    };
    send("u-a", "a");
    send("u-b", "b");
    let answer = |device: &str, command: &str, seq, status| {
        message(Decoded::Response(CommandResponse {
            device: id(device),
            id: command.into(),
            status,
            reason: Some("why".into()),
            message: None,
            seq,
            ts: at(seq),
        }))
    };
    commit(
        &*store,
        vec![
            answer("a", "u-a", 4, ResponseStatus::Succeeded),
            // c answers b's command: not an answer to it.
            answer("c", "u-b", 2, ResponseStatus::Failed),
        ],
    );
    // Asked in an order of its own, with a device the store has never heard of, and more
    // devices than one query reads.
    let mut asked: Vec<(DeviceId, Option<String>)> = vec![
        (id("c"), None),
        (id("nobody"), Some("u-x".into())),
        (id("b"), Some("u-b".into())),
        (id("a"), Some("u-a".into())),
    ];
    for n in 0..600 {
        asked.push((id(&format!("z-{n}")), None));
    }
    let seen = store.observe(&asked).expect("observe");
    assert_eq!(seen.len(), asked.len());
    assert_eq!(seen[0].verdict, Some(Verdict::NotReady));
    assert_eq!(seen[0].state_seq, Some(1));
    assert_eq!(seen[1], Default::default(), "unknown device");
    assert_eq!(
        (
            seen[2].verdict,
            seen[2].state_seq,
            seen[2].online,
            &seen[2].answer
        ),
        (Some(Verdict::AtRisk), Some(7), false, &None),
        "c's answer is not b's"
    );
    assert!(seen[3].online);
    assert_eq!(
        seen[3]
            .answer
            .as_ref()
            .map(|a| (a.status, a.reason.as_deref())),
        Some((ResponseStatus::Succeeded, Some("why")))
    );
    assert!(seen[4..].iter().all(|o| *o == Default::default()));
}

fn devices_are_filtered_by_what_schannel_observed(db: &Db) {
    use roomready_protocol::observed::{HandshakeCount, Target};
    use roomready_protocol::{Observed, ObservedProtocol, ObservedSource};
    let store = db.open();
    let with = |device: &str, predicted: Verdict, protocol: ObservedProtocol| {
        let legacy = protocol.is_legacy();
        let (verdict, findings) = match (predicted, legacy) {
            (Verdict::Ready, true) => (
                Verdict::AtRisk,
                vec![finding(
                    roomready_protocol::codes::OBSERVED_LEGACY_TLS,
                    Severity::Warning,
                )],
            ),
            (Verdict::NotReady, true) => (
                Verdict::NotReady,
                vec![
                    finding("TLS12_APP_TOO_OLD", Severity::Critical),
                    finding(
                        roomready_protocol::codes::OBSERVED_LEGACY_TLS,
                        Severity::Warning,
                    ),
                ],
            ),
            (v, _) => (v, Vec::new()),
        };
        let Item::Message {
            message: Decoded::State(mut state),
            received_at,
        } = state(device, 1, verdict, findings)
        else {
            unreachable!("state() makes a state");
        };
        state.observed = Some(Box::new(Observed {
            source: ObservedSource::SystemLog,
            window_days: 7,
            since: Some(at(5)),
            until: Some(at(10)),
            events: 3,
            truncated: false,
            success_logging: Some(true),
            handshakes: vec![HandshakeCount {
                protocol,
                target: Some(Target::new("sfb-pool.contoso.local").expect("target")),
                suite: Some(0xC014),
                count: 3,
                last: at(10),
            }],
            failures: Vec::new(),
            rows_omitted: 0,
            predicted,
        }));
        Item::Message {
            message: Decoded::State(state),
            received_at,
        }
    };
    commit(
        &*store,
        vec![
            with("mtr-legacy", Verdict::Ready, ObservedProtocol::Tls10),
            with("mtr-old-app", Verdict::NotReady, ObservedProtocol::Tls11),
            with("mtr-modern", Verdict::Ready, ObservedProtocol::Tls12),
            state("mtr-no-evidence", 1, Verdict::Ready, Vec::new()),
        ],
    );
    let ids = |observed: ObservedFilter| -> Vec<String> {
        let page = store
            .devices(&DeviceQuery {
                observed: Some(observed),
                ..DeviceQuery::default()
            })
            .expect("query");
        page.devices.iter().map(|d| d.id.to_string()).collect()
    };
    assert_eq!(ids(ObservedFilter::Legacy), ["mtr-legacy", "mtr-old-app"]);
    assert_eq!(ids(ObservedFilter::LegacyPredictedReady), ["mtr-legacy"]);
    // The evidence survives in the device's latest state.
    let detail = store
        .device(&id("mtr-legacy"))
        .expect("device")
        .expect("known");
    let observed = detail.state.and_then(|s| s.observed).expect("observed");
    assert_eq!(observed.predicted, Verdict::Ready);
    assert_eq!(observed.legacy_handshakes(), 3);
}

/// Every case above, as a test of its own on SQLite, and all of them in one test on PostgreSQL
/// (one cluster, a new database per case; the test fails naming the case).
macro_rules! on_both_backends {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    super::$case(&super::Db::Sqlite(tempfile::tempdir().expect("tempdir")));
                }
            )*
        }

        #[cfg(unix)]
        #[test]
        fn every_case_on_postgres() {
            let Some(cluster) =
                roomready_testkit::postgres::need_postgres("store::tests::every_case_on_postgres")
            else {
                return;
            };
            $(
                eprintln!("store case on PostgreSQL: {}", stringify!($case));
                $case(&Db::Postgres(cluster.database(stringify!($case))));
            )*
        }
    };
}

on_both_backends!(
    a_batch_makes_devices_history_and_counts,
    duplicates_are_recognised_after_a_reopen,
    the_device_table_filters_sorts_and_pages,
    commands_are_recorded_and_answered,
    undecodable_payloads_are_kept_bounded,
    history_is_pruned_by_its_retention,
    devices_are_filtered_and_totalled_by_site_ring_and_tag,
    alerts_are_recorded_once_kept_quiet_and_delivered_or_given_up,
    a_device_is_offline_since_its_presence_changed_not_since_its_last_message,
    the_rollout_runner_observes_each_device_and_only_its_own_answers,
    devices_are_filtered_by_what_schannel_observed,
);
