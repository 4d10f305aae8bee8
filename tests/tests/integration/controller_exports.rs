//! The controller's history exports end to end: what a real fleet did, a command with its user,
//! hostile text quoted and defused in CSV, the filters and limits, and who may export.

use roomready_controller::store::{HistoryKind, HistoryQuery};
use roomready_protocol::DeviceId;
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::console::Console;
use roomready_tests::publish::publish;

use crate::controller::shutdown;
use crate::controller_auth::users_file;

/// A finding title a hostile device could send: a spreadsheet formula, quotes, a comma and a
/// line break.
const HOSTILE_TITLE: &str = "=HYPERLINK(\"http://evil.example\",\"open\"), say \"hi\"\r\nline two";

/// More history entries than one page of the export's stream (5,000), so the export crosses a
/// page boundary.
const EXPORT_EVENTS: u64 = 5100;

/// Records of `text` read as RFC 4180 CSV (CRLF line ends, `"` quoting with doubled quotes); a
/// bare LF outside quotes, a quote inside an unquoted cell or a text not ending with a line end
/// fails.
fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(cell.is_empty(), "a quote inside an unquoted cell: {cell}");
                quoted = true;
            }
            ',' => record.push(std::mem::take(&mut cell)),
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR LF ends a line");
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            '\n' => panic!("a bare LF after {record:?} {cell:?}"),
            _ => cell.push(c),
        }
    }
    assert!(
        !quoted && cell.is_empty() && record.is_empty(),
        "the CSV ends inside a record: {record:?} {cell:?}"
    );
    records
}

/// The history exports hold what the fleet did: real agents' presence, checks and events, a
/// command with the user who sent it and the device's answer, and a hostile device's verdict
/// change and findings, as many entries as the store holds (more than one page of the stream),
/// in the same order and with the same data as JSON and as CSV; the CSV quotes hostile text and
/// defuses cells a spreadsheet would run; the filters narrow it and bad ones are 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_exports_hold_what_the_fleet_did() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |config, dir| {
        config.users_file = Some(users_file(dir));
    })
    .await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 2).await;

    // A command from the operator olga (HTTP Basic, as a script sends it).
    let olga = console.http.basic("olga", "operator-pass");
    let sent = olga
        .run(|http| {
            let sent = http.post_json(
                "/api/v1/devices/mtr-0001/commands",
                &serde_json::json!({"command": "check_now"}),
                None,
            );
            assert_eq!(sent.status, 202, "{}", sent.body);
            assert_eq!(sent.json()["by"], "olga");
            sent.json()["id"].as_str().expect("an id").to_owned()
        })
        .await;
    let mtr1 = DeviceId::new("mtr-0001").expect("id");
    console
        .until(
            "the answer to check_now and the check it asked for",
            |store| {
                let history = store
                    .history(&HistoryQuery {
                        device: Some(mtr1.clone()),
                        limit: 100,
                        ..HistoryQuery::default()
                    })
                    .ok()?;
                let command_at = history
                    .iter()
                    .position(|e| e.kind == HistoryKind::Command)?;
                let after = &history[..command_at];
                (after
                    .iter()
                    .any(|e| e.kind == HistoryKind::Response && e.data["id"] == sent.as_str())
                    && after.iter().any(|e| {
                        e.kind == HistoryKind::Event && e.data["event"] == "check_completed"
                    }))
                .then_some(())
            },
        )
        .await;

    // A hostile device: an id a spreadsheet would read as a number, a finding whose title is a
    // formula with quotes and a line break, then ready (the verdict changes, the finding clears),
    // then enough events to fill more than one page of the export.
    let hostile = "-1.5";
    let topic = |channel: &str| format!("roomready/v1/{hostile}/{channel}");
    let state = |seq: u64, verdict: &str, findings: serde_json::Value| {
        serde_json::json!({
            "schema": "roomready.state/1",
            "device": hostile,
            "seq": seq,
            "ts": "2026-12-01T10:00:00.000Z",
            "agent_version": "0.1.0",
            "facts": {"kind": "teams_rooms_windows", "app_version": "4.0.51.0"},
            "verdict": verdict,
            "findings": findings,
        })
        .to_string()
        .into_bytes()
    };
    let mut messages = vec![
        (
            topic("state"),
            state(
                1,
                "not_ready",
                serde_json::json!([{
                    "code": "TLS12_APP_TOO_OLD",
                    "severity": "critical",
                    "title": HOSTILE_TITLE,
                    "evidence": "app 4.0.51.0",
                    "remediation": "update",
                    "reference": "https://example.invalid/"
                }]),
            ),
            false,
        ),
        (
            topic("state"),
            state(2, "ready", serde_json::json!([])),
            false,
        ),
    ];
    for seq in 3..3 + EXPORT_EVENTS {
        let event = serde_json::json!({
            "schema": "roomready.event/1",
            "device": hostile,
            "seq": seq,
            "ts": "2026-12-01T10:00:01.000Z",
            "event": "check_completed",
            "verdict": "ready",
            "findings": 0,
        });
        messages.push((topic("events"), event.to_string().into_bytes(), false));
    }
    publish(&broker.url(), "hostile", messages).await;
    let hostile_id = DeviceId::new(hostile).expect("a valid id");
    console
        .until("every message of the hostile device", |store| {
            let detail = store.device(&hostile_id).ok()??;
            (detail.seq.highest == Some(2 + EXPORT_EVENTS)).then_some(())
        })
        .await;

    // What the store holds, read directly (one query, not the export's pages); the exports are
    // compared up to its newest entry (`before`), so anything arriving later cannot race them.
    let stored = console
        .store()
        .history(&HistoryQuery {
            limit: HistoryQuery::MAX_LIMIT,
            ..HistoryQuery::default()
        })
        .expect("history");
    assert!(
        stored.len() > 5000 && stored.len() < HistoryQuery::MAX_LIMIT as usize,
        "{} entries: more than a page of the export, all in one query",
        stored.len()
    );
    let before = stored[0].id + 1;
    let stored_json = serde_json::to_value(&stored).expect("entries serialize");

    olga.run(move |http| {
        // JSON: exactly the stored entries, newest first, with their data.
        let reply = http.get(&format!("/export/history.json?before={before}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(
            reply.header("content-disposition"),
            Some("attachment; filename=\"roomready-history.json\"")
        );
        let json = reply.json();
        assert_eq!(json, stored_json);
        let entries = json.as_array().expect("an array");
        let find = |what: &str, test: &dyn Fn(&serde_json::Value) -> bool| {
            entries
                .iter()
                .find(|e| test(e))
                .unwrap_or_else(|| panic!("no {what} in the export"))
                .clone()
        };
        let command = find("command", &|e| e["kind"] == "command");
        assert_eq!(command["device"], "mtr-0001");
        assert_eq!(command["data"]["id"], sent.as_str());
        assert_eq!(command["data"]["by"], "olga");
        assert_eq!(command["data"]["command"]["command"], "check_now");
        let answer = find("answer", &|e| {
            e["kind"] == "response" && e["data"]["id"] == sent.as_str()
        });
        assert_eq!(answer["data"]["status"], "accepted");
        find("agent's check", &|e| {
            e["device"] == "mtr-0001"
                && e["kind"] == "event"
                && e["data"]["event"] == "check_completed"
        });
        find("agent's presence", &|e| {
            e["device"] == "mtr-0002" && e["kind"] == "presence" && e["data"]["status"] == "online"
        });
        let change = find("verdict change", &|e| {
            e["device"] == hostile && e["kind"] == "verdict" && e["data"]["to"] == "ready"
        });
        assert_eq!(change["data"]["from"], "not_ready");
        assert_eq!(change["seq"], 2);
        let appeared = find("finding appeared", &|e| {
            e["device"] == hostile && e["kind"] == "finding_appeared"
        });
        assert_eq!(appeared["data"]["title"], HOSTILE_TITLE);
        find("finding cleared", &|e| {
            e["device"] == hostile && e["kind"] == "finding_cleared"
        });
        let events = entries
            .iter()
            .filter(|e| e["device"] == hostile && e["kind"] == "event")
            .count();
        assert_eq!(events as u64, EXPORT_EVENTS);

        // CSV: the same entries in the same order, each cell as the JSON has it.
        let reply = http.get(&format!("/export/history.csv?before={before}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("text/csv; charset=utf-8")
        );
        assert_eq!(
            reply.header("content-disposition"),
            Some("attachment; filename=\"roomready-history.csv\"")
        );
        let records = csv_records(&reply.body);
        assert_eq!(
            records[0],
            ["id", "device", "at", "ts", "seq", "kind", "data"],
            "one header, first"
        );
        assert_eq!(records.len() - 1, entries.len());
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        for (record, entry) in records[1..].iter().zip(entries) {
            // The hostile id starts with `-`: defused with a leading `'`.
            let device = text(&entry["device"]);
            let device = if device.starts_with('-') {
                format!("'{device}")
            } else {
                device
            };
            assert_eq!(
                record[..6],
                [
                    text(&entry["id"]),
                    device,
                    text(&entry["at"]),
                    text(&entry["ts"]),
                    text(&entry["seq"]),
                    text(&entry["kind"]),
                ],
                "{entry}"
            );
            let data: serde_json::Value =
                serde_json::from_str(&record[6]).expect("the data cell is the entry's JSON");
            assert_eq!(data, entry["data"], "{entry}");
            assert_eq!(record.len(), 7);
        }
        // The hostile title is inside one quoted cell: its quotes doubled, its line break kept
        // escaped as the JSON has it, so the record stays one line.
        let line = reply
            .body
            .split("\r\n")
            .find(|l| l.contains("finding_appeared") && l.contains("HYPERLINK"))
            .expect("the finding's line");
        assert!(
            line.starts_with(&format!("{},'{hostile},", appeared["id"])),
            "{line}"
        );
        assert!(
            line.contains(r#",finding_appeared,"{""code"":""TLS12_APP_TOO_OLD"""#),
            "{line}"
        );
        assert!(
            line.contains(
                r#"=HYPERLINK(\""http://evil.example\"",\""open\""), say \""hi\""\r\nline two"#
            ),
            "{line}"
        );

        // Without `before`: every entry, newest first (nothing older is left out).
        let all = http.get("/export/history.json").json();
        let all = all.as_array().expect("an array");
        assert!(all.len() >= entries.len());
        assert_eq!(all[all.len() - entries.len()..], entries[..]);

        // Filters: a device, kinds, a time; each exactly what the store answers.
        let ids = |path: &str| -> Vec<i64> {
            let reply = http.get(path);
            assert_eq!(reply.status, 200, "{path}: {}", reply.body);
            reply
                .json()
                .as_array()
                .expect("an array")
                .iter()
                .map(|e| e["id"].as_i64().expect("id"))
                .collect()
        };
        let want = |test: &dyn Fn(&serde_json::Value) -> bool| -> Vec<i64> {
            entries
                .iter()
                .filter(|e| test(e))
                .map(|e| e["id"].as_i64().expect("id"))
                .collect()
        };
        assert_eq!(
            ids(&format!(
                "/export/history.json?before={before}&device=mtr-0001"
            )),
            want(&|e| e["device"] == "mtr-0001")
        );
        assert_eq!(
            ids(&format!(
                "/export/history.json?before={before}&kind=verdict,command"
            )),
            want(&|e| e["kind"] == "verdict" || e["kind"] == "command")
        );
        assert_eq!(
            ids(&format!(
                "/export/history.json?before={before}&device=mtr-0001&kind=command"
            )),
            [command["id"].as_i64().expect("id")]
        );
        let since = change["at"].as_str().expect("at");
        let since_ids = ids(&format!(
            "/export/history.json?before={before}&since={since}"
        ));
        assert_eq!(since_ids, want(&|e| e["at"].as_str() >= Some(since)));
        assert!(since_ids.contains(&change["id"].as_i64().expect("id")));
        let csv = http.get(&format!(
            "/export/history.csv?before={before}&device=mtr-0002&kind=presence"
        ));
        let presence = csv_records(&csv.body);
        assert_eq!(
            presence.len() - 1,
            want(&|e| e["device"] == "mtr-0002" && e["kind"] == "presence").len()
        );
        assert!(
            presence[1..]
                .iter()
                .all(|r| r[1] == "mtr-0002" && r[5] == "presence")
        );

        // `limit`: the newest that many, across pages as within one; without it, everything.
        let newest = |n: usize| -> Vec<i64> {
            entries[..n]
                .iter()
                .map(|e| e["id"].as_i64().expect("id"))
                .collect()
        };
        assert_eq!(
            ids(&format!("/export/history.json?before={before}&limit=3")),
            newest(3)
        );
        assert_eq!(
            ids(&format!("/export/history.json?before={before}&limit=5001")),
            newest(5001)
        );
        let limited = csv_records(
            &http
                .get(&format!("/export/history.csv?before={before}&limit=7"))
                .body,
        );
        assert_eq!(limited.len(), 1 + 7, "the header and 7 entries");

        for (path, reason) in [
            (
                "/export/history.csv?limit=0",
                "limit must be a whole number in 1..=10000",
            ),
            (
                "/export/history.json?limit=lots",
                "limit must be a whole number",
            ),
            ("/export/history.csv?kind=bogus", "kind must be among"),
            (
                "/export/history.json?since=yesterday",
                "since must be an RFC 3339 time",
            ),
            ("/export/history.csv?device=a%20b", "is not allowed"),
            (
                "/export/history.json?before=newest",
                "before must be an entry id",
            ),
        ] {
            let reply = http.get(path);
            assert_eq!(reply.status, 400, "{path}: {}", reply.body);
            assert!(reply.body.contains(reason), "{path}: {}", reply.body);
        }

        // A viewer exports too; no one without a login.
        let viewer = http.basic("vic", "viewer-pass");
        assert_eq!(viewer.get("/export/history.csv?kind=command").status, 200);
        assert_eq!(http.fresh().get("/export/history.json").status, 401);
    })
    .await;
    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}
