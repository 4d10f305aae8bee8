//! The controller end to end: a simulated fleet of real agents → a real broker → the controller
//! → its API, pages, exports and metrics; commands back to the devices; hostile payloads;
//! logins, CSRF and HTTPS.

use roomready_agent::config::BrokerUrl;
use roomready_controller::store::{HistoryKind, HistoryQuery};
use roomready_protocol::{DeviceId, Verdict};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_simulator::device::SimDevice;
use roomready_testkit::http::meta;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::console::Console;
use roomready_tests::publish::publish;

pub(crate) async fn shutdown(devices: Vec<SimDevice>) {
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
