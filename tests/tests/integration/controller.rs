//! The controller end to end: a simulated fleet of real agents → a real broker → the controller
//! → its API, pages, exports and metrics; commands back to the devices; hostile payloads;
//! logins, CSRF and HTTPS.

use roomready_agent::config::BrokerUrl;
use roomready_controller::store::{HistoryKind, HistoryQuery};
use roomready_controller::users::{Role, Users};
use roomready_protocol::{DeviceId, Verdict};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::SimDevice;
use roomready_testkit::http::{Http, hidden, meta};
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::console::Console;
use roomready_tests::publish::publish;

async fn shutdown(devices: Vec<SimDevice>) {
    for device in devices {
        device.shutdown().await.expect("device stops");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_what_the_fleet_reported() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let (devices, seen) = console.fleet(&broker.url(), 24).await;

    let http = console.http.clone();
    let expected = seen.clone();
    http.run(move |http| {
        let summary = http.get("/api/v1/summary").json();
        assert_eq!(summary["devices"], 24);
        for (verdict, count) in summary["by_verdict"]
            .as_array()
            .expect("list")
            .iter()
            .map(|p| {
                (
                    p[0].as_str().expect("name").to_owned(),
                    p[1].as_u64().expect("count"),
                )
            })
        {
            let want = expected.values().filter(|v| v.as_str() == verdict).count() as u64;
            assert_eq!(count, want, "{verdict}");
        }
        // Filtering by verdict gives exactly the devices with that verdict.
        for verdict in Verdict::ALL {
            let page = http
                .get(&format!(
                    "/api/v1/devices?verdict={}&per_page=1000",
                    verdict.as_str()
                ))
                .json();
            let ids: Vec<String> = page["devices"]
                .as_array()
                .expect("devices")
                .iter()
                .map(|d| d["id"].as_str().expect("id").to_owned())
                .collect();
            let want: Vec<String> = expected
                .iter()
                .filter(|(_, v)| **v == verdict)
                .map(|(id, _)| id.clone())
                .collect();
            assert_eq!(ids, want, "{verdict}");
        }
        // A device's detail is its latest state.
        let not_ready = expected
            .iter()
            .find(|(_, v)| **v == Verdict::NotReady)
            .map(|(id, _)| id.clone())
            .expect("the demo fleet has a not_ready device");
        let detail = http.get(&format!("/api/v1/devices/{not_ready}")).json();
        assert_eq!(detail["row"]["verdict"], "not_ready");
        let findings = detail["state"]["findings"].as_array().expect("findings");
        assert!(!findings.is_empty());
        assert!(
            findings
                .iter()
                .all(|f| !f["remediation"].as_str().unwrap_or("").is_empty())
        );
        assert_eq!(http.get("/api/v1/devices/nobody").status, 404);
        assert_eq!(http.get("/api/v1/devices?verdict=green").status, 400);
        // The cutover view groups exactly the not_ready and at_risk devices' findings.
        let cutover = http.get("/api/v1/cutover").json();
        assert!(cutover.as_array().is_some_and(|groups| !groups.is_empty()));
        // Exports list every device; metrics count them.
        let csv = http.get("/export/fleet.csv");
        assert_eq!(csv.status, 200);
        assert_eq!(csv.body.lines().count(), 25, "a header and 24 devices");
        let json = http.get("/export/fleet.json").json();
        assert_eq!(json.as_array().map(Vec::len), Some(24));
        let metrics = http.get("/metrics").body;
        let total: u64 = metrics
            .lines()
            .filter(|l| l.starts_with("roomready_devices{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(total, 24, "{metrics}");
        assert!(metrics.contains("roomready_broker_connected 1"));
        // The pages render.
        let fleet = http.get("/");
        assert_eq!(fleet.status, 200);
        assert!(fleet.body.contains(&not_ready));
        assert_eq!(http.get(&format!("/devices/{not_ready}")).status, 200);
        assert_eq!(http.get("/findings").status, 200);
        assert_eq!(http.get("/nowhere").status, 404);
    })
    .await;

    // History: one verdict entry per device (its first state).
    let verdicts = console
        .store()
        .history(&HistoryQuery {
            kinds: vec![HistoryKind::Verdict],
            limit: 1000,
            ..HistoryQuery::default()
        })
        .expect("history");
    assert_eq!(verdicts.len(), 24);
    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

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

/// A golden fixture of `roomready-protocol` as JSON.
fn fixture(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../protocol/tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("a golden fixture");
    serde_json::from_str(&text).expect("the fixture is JSON")
}

/// The part of a page from the `<section>` with `id` to the end of that section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .match_indices("<section")
        .map(|(at, _)| at)
        .find(|&at| {
            let tag = &html[at..at + html[at..].find('>').unwrap_or(0)];
            tag.contains(&format!(" id=\"{id}\""))
        })
        .unwrap_or_else(|| panic!("no section #{id} in {html}"));
    let rest = &html[start..];
    &rest[..rest.find("</section>").expect("the section ends")]
}

/// Text of an HTML fragment as a reader sees it: tags dropped (a `<br>` as ` | `), entities
/// read, whitespace runs as one space.
fn text_of(fragment: &str) -> String {
    let mut out = String::new();
    let mut rest = fragment;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let end = rest[at..].find('>').expect("a tag ends") + at;
        if rest[at..=end].starts_with("<br") {
            out.push_str(" | ");
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The value of attribute `name` in the start tag `tag`, entities read.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[at..].find('"')? + at;
    Some(text_of(&tag[at..end]))
}

/// One table cell: its `class` and `title` attributes and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cell {
    class: Option<String>,
    title: Option<String>,
    text: String,
}

/// The rows of the tables in `fragment`, each as its `th` and `td` cells.
fn table_rows(fragment: &str) -> Vec<Vec<Cell>> {
    fragment
        .split("<tr")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").expect("the row ends")];
            let mut cells = Vec::new();
            let mut rest = row;
            while let Some(at) = ["<td", "<th"]
                .iter()
                .filter_map(|open| {
                    rest.match_indices(open)
                        .find(|(i, _)| matches!(rest.as_bytes().get(i + 3), Some(b' ' | b'>')))
                        .map(|(i, _)| i)
                })
                .min()
            {
                let close = if rest[at..].starts_with("<td") {
                    "</td>"
                } else {
                    "</th>"
                };
                let tag_end = rest[at..].find('>').expect("a tag ends") + at;
                let tag = &rest[at..=tag_end];
                let end = rest[tag_end..].find(close).expect("the cell ends") + tag_end;
                cells.push(Cell {
                    class: attribute(tag, "class"),
                    title: attribute(tag, "title"),
                    text: text_of(&rest[tag_end + 1..end]),
                });
                rest = &rest[end + close.len()..];
            }
            cells
        })
        .collect()
}

fn texts(row: &[Cell]) -> Vec<&str> {
    row.iter().map(|c| c.text.as_str()).collect()
}

/// The device page's sections from a device's own messages, rendered by the server: its facts
/// with where each came from (the agent on the device, its own version, its config), the
/// endpoint table (each TLS version's outcome with the suite chosen and the probe's detail, the
/// preferred TLS 1.2 suite, the certificate's verdict, why none was checked, a required client
/// certificate, the days left), the verdict timeline drawn from the store's verdict changes,
/// and the presence history, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_shows_facts_endpoints_timeline_and_presence() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;

    // The golden fixtures of mtr-0007: online, a not_ready state, then at_risk with the
    // endpoint reports (and, added here, where it is and two more endpoints), offline by its
    // last will, online again.
    let mut endpoints = fixture("state_endpoints.json");
    endpoints["placement"] = serde_json::json!({
        "site": "oslo-hq", "room": "Fjord 4", "ring": 0, "tags": ["board", "vip"]
    });
    let more = endpoints["endpoints"].as_array_mut().expect("endpoints");
    more.push(serde_json::json!({
        "host": "adfs.contoso.com",
        "port": 443,
        "role": "adfs",
        "versions": [
            {"version": "tls1.3", "outcome": "no_answer", "detail": "no answer in 5 s"},
            {"version": "tls1.2", "outcome": "accepted",
             "suite": {"code": "C02F", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
        ],
        "certificate": {
            "valid": false,
            "error": "expired on 2026-11-01",
            "not_after": "2026-11-01T00:00:00.000Z",
            "days_left": -22
        },
        "tls12_suites": {"preferred": {"code": "C02F", "name": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}}
    }));
    more.push(serde_json::json!({
        "host": "anon.contoso.com",
        "port": 8443,
        "role": "custom",
        "versions": [{"version": "tls1.2", "outcome": "accepted", "suite": {"code": "00A7"}}],
        "certificate_unavailable": "the server chose a suite without a certificate"
    }));
    let mut offline = fixture("status_will.json");
    offline["seq"] = 43.into();
    offline["ts"] = "2026-11-23T14:30:00.000Z".into();
    let mut online_again = fixture("status_online.json");
    online_again["seq"] = 43.into();
    online_again["ts"] = "2026-11-23T14:31:00.000Z".into();
    let topic = |channel: &str| format!("roomready/v1/mtr-0007/{channel}");
    let bytes = |v: serde_json::Value| v.to_string().into_bytes();
    publish(
        &broker.url(),
        "fixtures",
        vec![
            (topic("status"), bytes(fixture("status_online.json")), false),
            (topic("state"), bytes(fixture("state.json")), false),
            (topic("state"), bytes(endpoints), false),
            (topic("status"), bytes(offline), false),
            (topic("status"), bytes(online_again), false),
        ],
    )
    .await;
    let id = DeviceId::new("mtr-0007").expect("id");
    let history = |kind| {
        console
            .store()
            .history(&HistoryQuery {
                device: Some(id.clone()),
                kinds: vec![kind],
                ..HistoryQuery::default()
            })
            .expect("history")
    };
    let detail = console
        .until("the device's states and presence", |store| {
            let detail = store.device(&id).ok()??;
            let presence = store
                .history(&HistoryQuery {
                    device: Some(id.clone()),
                    kinds: vec![HistoryKind::Presence],
                    ..HistoryQuery::default()
                })
                .ok()?;
            (detail.state.as_ref().is_some_and(|s| s.seq == 43) && presence.len() == 3)
                .then_some(detail)
        })
        .await;
    let verdicts = history(HistoryKind::Verdict);
    let presence = history(HistoryKind::Presence);

    let page = console
        .http
        .clone()
        .run(|http| {
            let page = http.get("/devices/mtr-0007");
            assert_eq!(page.status, 200);
            page.body
        })
        .await;

    // Facts, each with its source.
    let facts: Vec<Vec<String>> = table_rows(section(&page, "facts"))
        .iter()
        .map(|row| texts(row).into_iter().map(str::to_owned).collect())
        .collect();
    let agent = "as read by the agent on the device";
    let config = "the agent's config";
    assert_eq!(
        facts,
        [
            ["Kind", "teams_rooms_windows", agent],
            ["Teams Rooms app", "4.0.105.0", agent],
            ["OS build", "19045.4894", agent],
            ["Agent", "0.1.0", "the agent's own version"],
            ["Assessed", "2026-11-23T14:07:25Z", "state #43"],
            ["Site", "oslo-hq", config],
            ["Room", "Fjord 4", config],
            ["Ring", "0 (pilot)", config],
            ["Tags", "board vip", config],
        ]
        .map(|row| row.map(str::to_owned).to_vec())
    );

    // The endpoint table: a column per TLS version, oldest first, then the suite, the
    // certificate and its days left.
    let table = table_rows(section(&page, "endpoints"));
    assert_eq!(
        texts(&table[0]),
        [
            "Endpoint",
            "Role",
            "TLS 1.0",
            "TLS 1.1",
            "TLS 1.2",
            "TLS 1.3",
            "TLS 1.2 suite",
            "Certificate",
            "Days left"
        ]
    );
    assert_eq!(table.len(), 4, "a header and the three endpoints");
    let dhe = "TLS_DHE_RSA_WITH_AES_128_CBC_SHA";
    let sfb = &table[1];
    assert_eq!(
        texts(sfb),
        [
            "pool.contoso.com:443 | at 192.0.2.10:443",
            "onprem_sfb | 6.0.9319.548",
            &format!("accepted | {dhe}"),
            "downgraded",
            &format!("accepted | {dhe}"),
            "refused",
            dhe,
            "valid | asks for a client certificate",
            "209",
        ]
    );
    let outcome = |cell: &Cell| (cell.class.clone(), cell.title.clone());
    let some = |class: &str, title: &str| (Some(class.to_owned()), Some(title.to_owned()));
    assert_eq!(outcome(&sfb[2]), some("ok", ""), "TLS 1.0 accepted");
    assert_eq!(
        outcome(&sfb[3]),
        some("err", "answered TLS 1.0"),
        "TLS 1.1 downgraded"
    );
    assert_eq!(
        outcome(&sfb[4]),
        some("ok", "the server asks for a client certificate")
    );
    assert_eq!(outcome(&sfb[5]), some("no", "alert protocol_version (70)"));
    assert_eq!(sfb[8].class.as_deref(), Some("num"));
    let adfs = &table[2];
    assert_eq!(
        texts(adfs),
        [
            "adfs.contoso.com:443",
            "adfs",
            "—",
            "—",
            "accepted | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "no_answer",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "invalid | expired on 2026-11-01",
            "-22",
        ]
    );
    assert_eq!(outcome(&adfs[5]), some("err", "no answer in 5 s"));
    assert!(
        section(&page, "endpoints").contains("<span class=\"no\">invalid</span>"),
        "an invalid certificate is marked"
    );
    assert_eq!(
        texts(&table[3]),
        [
            "anon.contoso.com:8443",
            "custom",
            "—",
            "—",
            "accepted | 00A7",
            "—",
            "",
            "the server chose a suite without a certificate",
            "",
        ],
        "a suite without a name shows its code; no certificate, the reason"
    );

    // The verdict timeline: one band per verdict the store recorded, in order, the last one up
    // to now, each titled with its verdict and when it began.
    let timeline = section(&page, "timeline");
    let rects: Vec<&str> = timeline
        .split("<rect ")
        .skip(1)
        .map(|r| &r[..r.find("</rect>").expect("rect ends")])
        .collect();
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    let bands: Vec<(String, String)> = rects
        .iter()
        .map(|r| {
            let tag = format!("<rect {}", &r[..=r.find('>').expect("tag ends")]);
            (
                attribute(&tag, "class").expect("class"),
                text_of(&r[r.find("<title>").expect("a title")..]),
            )
        })
        .collect();
    let began = |i: usize| verdicts[i].at.to_rfc3339_secs();
    assert_eq!(
        bands,
        [
            (
                "v-not_ready".to_owned(),
                format!("not_ready from {}", began(1))
            ),
            ("v-at_risk".to_owned(), format!("at_risk from {}", began(0))),
        ],
        "oldest first"
    );
    let number = |r: &str, name: &str| -> f64 {
        attribute(&format!("<rect {r}"), name)
            .expect("the attribute")
            .parse()
            .expect("a number")
    };
    let (x0, x1, w1) = (
        number(rects[0], "x"),
        number(rects[1], "x"),
        number(rects[1], "width"),
    );
    assert!((0.0..=x1).contains(&x0), "{x0} {x1}");
    assert!(
        (x1 + w1 - 1000.0).abs() <= 1.1,
        "the last band reaches now: {x1} + {w1}"
    );
    let start = verdicts[1].at.min(detail.first_seen).to_rfc3339_secs();
    assert!(
        timeline.contains(&format!("<span>{start}</span><span>now</span>")),
        "the axis runs from the first sighting to now: {timeline}"
    );
    for verdict in Verdict::ALL {
        assert!(
            timeline.contains(&format!("data-verdict=\"{}\"", verdict.as_str())),
            "the legend names {verdict}"
        );
    }

    // Presence history: newest first, the reason of the last will shown.
    let presence_html = section(&page, "presence-history");
    let items: Vec<(String, String)> = presence_html
        .split("<li ")
        .skip(1)
        .map(|li| {
            let tag_end = li.find('>').expect("tag ends");
            let tag = format!("<li {}", &li[..=tag_end]);
            (
                attribute(&tag, "data-kind").expect("a kind"),
                text_of(&li[tag_end + 1..li.find("</li>").expect("li ends")]),
            )
        })
        .collect();
    let at = |i: usize| presence[i].at.to_rfc3339_secs();
    assert_eq!(
        items,
        [
            ("presence".to_owned(), format!("{} online", at(0))),
            (
                "presence".to_owned(),
                format!("{} offline (connection_lost)", at(1))
            ),
            ("presence".to_owned(), format!("{} online", at(2))),
        ]
    );
    assert!(
        section(&page, "summary").contains("<span class=\"badge p-online\">online</span>"),
        "the summary shows it online"
    );
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_go_to_the_device_and_their_answers_come_back() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 3).await;
    let id = "mtr-0001";
    let http = console.http.clone();
    let sent = http
        .run(move |http| {
            // A page first: the session cookie and its CSRF token.
            let page = http.get(&format!("/devices/{id}"));
            assert_eq!(page.status, 200);
            let csrf = meta(&page.body, "csrf-token").expect("the page carries a token");
            let forged = http.post_json(
                &format!("/api/v1/devices/{id}/commands"),
                &serde_json::json!({"command": "check_now"}),
                None,
            );
            assert_eq!(forged.status, 403, "no CSRF token: {}", forged.body);
            let bad = http.post_json(
                &format!("/api/v1/devices/{id}/commands"),
                &serde_json::json!({"command": "set_interval", "seconds": 0}),
                Some(&csrf),
            );
            assert_eq!(bad.status, 400, "{}", bad.body);
            assert!(bad.body.contains("1..=86400"), "{}", bad.body);
            let unknown = http.post_json(
                "/api/v1/devices/nobody/commands",
                &serde_json::json!({"command": "check_now"}),
                Some(&csrf),
            );
            assert_eq!(unknown.status, 404, "{}", unknown.body);
            let sent = http.post_json(
                &format!("/api/v1/devices/{id}/commands"),
                &serde_json::json!({"command": "check_now"}),
                Some(&csrf),
            );
            assert_eq!(sent.status, 202, "{}", sent.body);
            assert_eq!(sent.json()["by"], "local");
            // A form post, as the page sends without JavaScript.
            let form = http.post_form(
                &format!("/devices/{id}/commands"),
                &[
                    ("csrf", &csrf),
                    ("command", "set_interval"),
                    ("seconds", "600"),
                    ("confirm", "yes"),
                ],
            );
            assert_eq!(form.status, 303, "{}", form.body);
            sent.json()["id"].as_str().expect("an id").to_owned()
        })
        .await;
    let device = DeviceId::new(id).expect("valid");
    console
        .until("the device's `accepted` to check_now", |store| {
            // check_now is answered `accepted`; the check itself follows as events and a state.
            let record = store.command(&sent).ok()??;
            (record.status == Some(roomready_protocol::ResponseStatus::Accepted)).then_some(())
        })
        .await;
    // The check it asked for arrived as an event after the command.
    console
        .until("a check after the command", |store| {
            let history = store
                .history(&HistoryQuery {
                    device: Some(device.clone()),
                    limit: 100,
                    ..HistoryQuery::default()
                })
                .ok()?;
            let command_at = history
                .iter()
                .position(|e| e.kind == HistoryKind::Command)?;
            history[..command_at]
                .iter()
                .any(|e| e.kind == HistoryKind::Event && e.data["event"] == "check_completed")
                .then_some(())
        })
        .await;
    let commands = console.store().commands(&device, 10).expect("commands");
    assert_eq!(commands.len(), 2);
    assert!(commands.iter().all(|c| c.by == "local"));
    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_are_kept_as_text_and_never_trusted() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let xss = "<script>alert(\"x\")</script>";
    let state = |device: &str, seq: u64| {
        serde_json::json!({
            "schema": "roomready.state/1",
            "device": device,
            "seq": seq,
            "ts": "2026-12-01T10:00:00.000Z",
            "agent_version": "0.1.0",
            "facts": {"kind": "teams_rooms_windows", "app_version": xss},
            "verdict": "not_ready",
            "findings": [{
                "code": "TLS12_APP_TOO_OLD",
                "severity": "critical",
                "title": xss,
                "evidence": format!("seen {xss}"),
                "remediation": "update",
                "reference": "javascript:alert(1)"
            }]
        })
        .to_string()
        .into_bytes()
    };
    let event = |seq: u64, body: serde_json::Value| {
        let mut event = serde_json::json!({
            "schema": "roomready.event/1",
            "device": "mtr-x",
            "seq": seq,
            "ts": "2026-12-01T10:00:00.000Z",
        });
        if let (Some(e), Some(b)) = (event.as_object_mut(), body.as_object()) {
            e.extend(b.clone());
        }
        event.to_string().into_bytes()
    };
    let topic = |device: &str, channel: &str| format!("roomready/v1/{device}/{channel}");
    publish(
        &broker.url(),
        "hostile",
        vec![
            (topic("mtr-x", "state"), state("mtr-x", 1), false),
            // Another device's name in the payload: refused, not stored under either.
            (topic("mtr-x", "state"), state("mtr-y", 2), false),
            (
                topic("mtr-x", "events"),
                b"\x1b[31m{not json\xff".to_vec(),
                false,
            ),
            (
                topic("mtr-x", "status"),
                br#"{"schema":"roomready.status/9"}"#.to_vec(),
                false,
            ),
            // A duplicate, a gap of two, and the device saying it dropped one record.
            (topic("mtr-x", "state"), state("mtr-x", 1), false),
            (
                topic("mtr-x", "events"),
                event(
                    4,
                    serde_json::json!({"event": "records_dropped", "count": 1, "total": 1}),
                ),
                false,
            ),
        ],
    )
    .await;
    let detail = console
        .until("the hostile device's events", |store| {
            let detail = store.device(&DeviceId::new("mtr-x").ok()?).ok()??;
            (detail.seq.highest == Some(4)).then_some(detail)
        })
        .await;
    assert_eq!(detail.seq.ranges, "1,4");
    assert_eq!(
        (
            detail.seq.missing,
            detail.seq.explained,
            detail.seq.duplicates
        ),
        (2, 1, 1)
    );
    let failures = console.store().decode_failures().expect("failures");
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures
            .iter()
            .any(|f| f.reason.contains("is not the topic's device"))
    );
    assert!(
        console
            .store()
            .device(&DeviceId::new("mtr-y").expect("id"))
            .expect("query")
            .is_none()
    );

    let http = console.http.clone();
    http.run(move |http| {
        for path in ["/devices/mtr-x", "/", "/findings", "/ingest"] {
            let page = http.get(path);
            assert_eq!(page.status, 200, "{path}");
            assert!(
                !page.body.contains("<script>alert"),
                "{path}: raw script in the page"
            );
            assert!(
                !page.body.contains("href=\"javascript:"),
                "{path}: a javascript: link"
            );
        }
        let device = http.get("/devices/mtr-x").body;
        assert!(
            device.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "{device}"
        );
        assert!(
            http.get("/ingest")
                .body
                .contains("\\u{1b}[31m{not json\\xff")
        );
        let api = http.get("/api/v1/devices/mtr-x").json();
        assert_eq!(
            api["state"]["findings"][0]["title"],
            "<script>alert(\"x\")</script>"
        );
        let csv = http.get("/export/fleet.csv").body;
        assert!(csv.contains("mtr-x"), "{csv}");
    })
    .await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_database_keeps_history_and_drops_redeliveries() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 5).await;
    let config = console.config.clone();
    let dir = console.stop().await;
    let again = Console::start_with(config, dir).await;
    again.subscribed().await;
    // The retained states come again on subscribing: all duplicates, no new transitions.
    again
        .until("the retained states again, as duplicates", |store| {
            let detail = store.device(&DeviceId::new("mtr-0001").ok()?).ok()??;
            (detail.seq.duplicates >= 1).then_some(())
        })
        .await;
    let verdicts = again
        .store()
        .history(&HistoryQuery {
            kinds: vec![HistoryKind::Verdict],
            limit: 100,
            ..HistoryQuery::default()
        })
        .expect("history");
    assert_eq!(
        verdicts.len(),
        5,
        "one first verdict per device, none added"
    );
    assert_eq!(again.store().summary().expect("summary").devices, 5);
    shutdown(devices).await;
    again.stop().await;
    broker.stop().await.expect("broker stops");
}

fn users_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("users");
    let mut users = Users::default();
    users
        .add("olga", Role::Operator, "operator-pass")
        .expect("add");
    users.add("vic", Role::Viewer, "viewer-pass").expect("add");
    users.save(&path).expect("save");
    path
}

/// Logs `http` in as `name` and returns the session's CSRF token.
fn log_in(http: &Http, name: &str, password: &str) -> String {
    let form = http.get("/login");
    assert_eq!(form.status, 200);
    let csrf = hidden(&form.body, "csrf").expect("the login form carries a token");
    let done = http.post_form(
        "/login",
        &[
            ("csrf", &csrf),
            ("name", name),
            ("password", password),
            ("next", "/findings"),
        ],
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.header("location"), Some("/findings"));
    let cookie = done.header("set-cookie").expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    meta(&http.get("/").body, "csrf-token").expect("a token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_roles_csrf_and_the_failure_limit() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |config, dir| {
        config.users_file = Some(users_file(dir));
    })
    .await;
    console.subscribed().await;
    let (devices, _) = console.fleet(&broker.url(), 2).await;
    let http = console.http.clone();
    http.run(|http| {
        // Nothing without a login: pages go to the login, the API answers 401.
        let page = http.get("/devices/mtr-0001");
        assert_eq!(page.status, 303);
        assert_eq!(
            page.header("location"),
            Some("/login?next=%2Fdevices%2Fmtr-0001")
        );
        let api = http.get("/api/v1/summary");
        assert_eq!(api.status, 401);
        assert!(
            api.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Basic"))
        );
        assert_eq!(http.get("/metrics").status, 401);
        assert_eq!(http.get("/healthz").status, 200);

        // A viewer reads, sees no command buttons, and cannot send one.
        let viewer = http.fresh();
        let csrf = log_in(&viewer, "vic", "viewer-pass");
        let device = viewer.get("/devices/mtr-0001").body;
        assert!(
            !device.contains("form class=\"command\""),
            "a viewer sees no command forms"
        );
        let refused = viewer.post_json(
            "/api/v1/devices/mtr-0001/commands",
            &serde_json::json!({"command": "check_now"}),
            Some(&csrf),
        );
        assert_eq!(refused.status, 403, "{}", refused.body);

        // An operator can, with the session's token only.
        let operator = http.fresh();
        let csrf = log_in(&operator, "olga", "operator-pass");
        assert!(
            operator
                .get("/devices/mtr-0001")
                .body
                .contains("form class=\"command\"")
        );
        let forged = operator.post_form(
            "/devices/mtr-0001/commands",
            &[
                ("csrf", "not-the-token"),
                ("command", "check_now"),
                ("confirm", "yes"),
            ],
        );
        assert_eq!(forged.status, 403);
        let sent = operator.post_json(
            "/api/v1/devices/mtr-0001/commands",
            &serde_json::json!({"command": "check_now"}),
            Some(&csrf),
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(sent.json()["by"], "olga");
        // Logged out, the session is gone.
        assert_eq!(
            operator.post_form("/logout", &[("csrf", &csrf)]).status,
            303
        );
        assert_eq!(operator.get("/api/v1/summary").status, 401);

        // Scripts use HTTP Basic, and need no CSRF token (they send no cookie).
        let script = http.basic("olga", "operator-pass");
        assert_eq!(script.get("/api/v1/summary").status, 200);
        let sent = script.post_json(
            "/api/v1/devices/mtr-0002/commands",
            &serde_json::json!({"command": "check_now"}),
            None,
        );
        assert_eq!(sent.status, 202, "{}", sent.body);
        assert_eq!(
            http.basic("olga", "wrong").get("/api/v1/summary").status,
            401
        );

        // Five failures and the name waits, even with the right password.
        let guesser = http.fresh();
        for _ in 0..4 {
            let form = guesser.get("/login");
            let csrf = hidden(&form.body, "csrf").expect("token");
            let refused = guesser.post_form(
                "/login",
                &[("csrf", &csrf), ("name", "vic"), ("password", "guess")],
            );
            assert_eq!(refused.status, 401);
        }
        let limited = http.basic("vic", "viewer-pass").get("/api/v1/summary");
        assert_eq!(limited.status, 429, "{}", limited.body);
        assert!(limited.header("retry-after").is_some());
        // A login form posted without its pre-login cookie is refused.
        let stale = http.fresh().post_form(
            "/login",
            &[
                ("csrf", "x"),
                ("name", "olga"),
                ("password", "operator-pass"),
            ],
        );
        assert_eq!(stale.status, 403);
    })
    .await;
    shutdown(devices).await;
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_off_loopback_with_secure_cookies() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("certificate");
    std::fs::write(dir.path().join("https.pem"), cert.cert.pem()).expect("write");
    std::fs::write(
        dir.path().join("https.key"),
        cert.signing_key.serialize_pem(),
    )
    .expect("write");
    // The config file as an admin writes it: off loopback, HTTPS, users.
    users_file(dir.path());
    let url = broker.url();
    let text = format!(
        "broker_url = \"{url}\"\nlisten = \"0.0.0.0:0\"\ntls_cert_file = \"https.pem\"\n\
         tls_key_file = \"https.key\"\nusers_file = \"users\"\n"
    );
    std::fs::write(dir.path().join("controller.toml"), &text).expect("write");
    let config = roomready_controller::config::Config::load(&dir.path().join("controller.toml"))
        .expect("a valid config");
    let running = roomready_controller::start(&config).await.expect("starts");
    let port = running.server.local_addr.port();
    assert!(running.url().starts_with("https://"));
    let http = Http::with_roots(
        &format!("https://127.0.0.1:{port}"),
        Some(cert.cert.pem().as_bytes()),
    );
    http.run(|http| {
        let form = http.get("/login");
        assert_eq!(form.status, 200);
        assert!(
            form.header("set-cookie")
                .is_some_and(|c| c.contains("; Secure"))
        );
        let csrf = hidden(&form.body, "csrf").expect("token");
        let done = http.post_form(
            "/login",
            &[
                ("csrf", &csrf),
                ("name", "vic"),
                ("password", "viewer-pass"),
            ],
        );
        assert_eq!(done.status, 303);
        assert!(
            done.header("set-cookie")
                .is_some_and(|c| c.contains("; Secure"))
        );
        assert_eq!(http.get("/api/v1/summary").status, 200);
    })
    .await;
    // Plain HTTP to the HTTPS port gets no answer.
    let plain = Http::new(&format!("http://127.0.0.1:{port}"));
    let refused = tokio::task::spawn_blocking(move || plain.try_get("/healthz").is_err())
        .await
        .expect("task");
    assert!(refused, "plain HTTP is not served on the HTTPS port");
    running.stop().await;
    broker.stop().await.expect("broker stops");
}

/// The controller on MQTT 3.1.1 and on MQTT 5, against Mosquitto.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_mosquitto_on_both_mqtt_versions() {
    if !need_mosquitto("against_mosquitto_on_both_mqtt_versions") {
        return;
    }
    let mosquitto = Mosquitto::start(&[]);
    let url: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    for version in [
        roomready_connect::broker::MqttVersion::V311,
        roomready_connect::broker::MqttVersion::V5,
    ] {
        let console = Console::start(&url, |config, _| {
            config.broker.version = version;
            config.client_id = format!("ctl-{version:?}");
        })
        .await;
        console.subscribed().await;
        let (devices, seen) = console.fleet(&url, 8).await;
        let summary = console.store().summary().expect("summary");
        for (verdict, count) in summary.by_verdict {
            let want = seen.values().filter(|v| **v == verdict).count() as u64;
            assert_eq!(count, want, "{version:?} {verdict}");
        }
        shutdown(devices).await;
        console.stop().await;
    }
}

/// Where a device is travels from its settings (the config keys `site`, `room`, `ring`, `tags`)
/// in its state to the controller's filters, totals, pages and exports; a room name with markup
/// is shown as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_placement_reaches_filters_totals_pages_and_exports() {
    use roomready_agent::clock::SystemClock;
    use roomready_agent::{Agent, AgentSettings};
    use roomready_protocol::{Placement, Ring, Room, Site, Tag, Tags};

    let broker = EmbeddedBroker::start().await.expect("broker");
    let console = Console::start(&broker.url(), |_, _| {}).await;
    console.subscribed().await;
    let mut stops = Vec::new();
    for (id, site, ring, tags) in [
        ("mtr-oslo-1", "oslo-hq", 0, vec!["board"]),
        ("mtr-oslo-2", "oslo-hq", 1, vec!["board", "vip"]),
        ("mtr-bergen-1", "bergen", 1, vec![]),
    ] {
        let mut settings = AgentSettings::new(DeviceId::new(id).expect("id"), broker.url());
        settings.report_interval = std::time::Duration::from_secs(3600);
        settings.placement = Placement {
            site: Some(Site::new(site).expect("site")),
            room: Some(Room::new(format!("<b>Fjord</b> {id}")).expect("room")),
            ring: Some(Ring::new(ring).expect("ring")),
            tags: Tags::new(
                tags.into_iter()
                    .map(|t| Tag::new(t).expect("tag"))
                    .collect(),
            )
            .expect("tags"),
            utc_offset_minutes: None,
        };
        let agent = Agent::new(
            settings,
            roomready_tests::rooms_facts("4.0.64.0"),
            SystemClock,
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        stops.push(stop);
    }
    console
        .until("three placed devices", |store| {
            let groups = store.groups().ok()?;
            (groups.sites.iter().map(|g| g.devices).sum::<u64>() == 3).then_some(())
        })
        .await;

    console
        .http
        .clone()
        .run(|http| {
            let ids = |query: &str| -> Vec<String> {
                let page = http.get(&format!("/api/v1/devices?{query}")).json();
                page["devices"]
                    .as_array()
                    .expect("devices")
                    .iter()
                    .map(|d| d["id"].as_str().expect("id").to_owned())
                    .collect()
            };
            assert_eq!(ids("site=oslo-hq"), ["mtr-oslo-1", "mtr-oslo-2"]);
            assert_eq!(ids("ring=1"), ["mtr-bergen-1", "mtr-oslo-2"]);
            assert_eq!(ids("tag=vip"), ["mtr-oslo-2"]);
            assert_eq!(http.get("/api/v1/devices?ring=12").status, 400);
            assert_eq!(http.get("/api/v1/devices?site=a%20b").status, 400);

            let groups = http.get("/api/v1/groups").json();
            assert_eq!(groups["sites"][0]["name"], "oslo-hq");
            assert_eq!(groups["sites"][0]["devices"], 2);
            assert_eq!(groups["rings"][1]["name"], "1");
            assert_eq!(groups["rings"][1]["devices"], 2);
            assert_eq!(groups["tags"][0]["name"], "board");

            let fleet = http.get("/?site=oslo-hq");
            assert_eq!(fleet.status, 200);
            assert!(fleet.body.contains("id=\"by-site\""), "the totals by site");
            assert!(fleet.body.contains("oslo-hq · ring 1"), "the where column");
            assert!(!fleet.body.contains("mtr-bergen-1\""), "filtered out");
            let device = http.get("/devices/mtr-oslo-2").body;
            assert!(
                device.contains("&lt;b&gt;Fjord&lt;/b&gt; mtr-oslo-2"),
                "the room as text"
            );
            assert!(!device.contains("<b>Fjord"), "never as markup");
            assert!(device.contains("href=\"/?tag=vip\""));

            let metrics = http.get("/metrics").body;
            grafana_uses_only_served_metrics(&metrics);
            for line in [
                "roomready_site_devices{site=\"oslo-hq\"} 2",
                "roomready_site_devices{site=\"bergen\"} 1",
                "roomready_ring_devices{ring=\"1\"} 2",
                "roomready_ring_online{ring=\"0\"} 1",
            ] {
                assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
            }

            let csv = http.get("/export/fleet.csv").body;
            let header = csv.lines().next().expect("header");
            assert!(header.ends_with("site,room,ring,tags"), "{header}");
            assert!(
                csv.lines()
                    .any(|l| l.starts_with("mtr-oslo-2,") && l.ends_with(",1,board vip")),
                "{csv}"
            );
        })
        .await;
    drop(stops);
    console.stop().await;
    broker.stop().await.expect("broker stops");
}

/// Every metric docs/deploy/grafana-roomready.json queries is one `/metrics` serves (`metrics`,
/// from a fleet with sites and rings), and every panel reads the dashboard's data source input.
fn grafana_uses_only_served_metrics(metrics: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/deploy/grafana-roomready.json");
    let text = std::fs::read_to_string(&path).expect("docs/deploy/grafana-roomready.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let served: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut queried = std::collections::BTreeSet::new();
    for panel in panels {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}: the import's data source",
            panel["title"]
        );
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("roomready_") {
                    queried.insert(word.to_owned());
                }
            }
        }
    }
    let unknown: Vec<&String> = queried
        .iter()
        .filter(|m| !served.contains(m.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries {unknown:?}, which /metrics does not serve"
    );
    assert!(
        queried.contains("roomready_site_not_ready") && queried.contains("roomready_ring_devices")
    );
}
