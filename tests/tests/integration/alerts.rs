//! Alerts end to end: devices' messages through a real broker into the controller, its rules,
//! and a real HTTP receiver that fails twice and then recovers: the grouped message is retried
//! until accepted and recorded with its attempts; maintenance is recorded, not sent; the quiet
//! period holds; a restart on the same database repeats nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_controller::alerts::{AlertSettings, Suppress};
use roomready_controller::store::{AlertOutcome, AlertRecord};
use roomready_protocol::Site;
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::WAIT;
use roomready_tests::console::{Console, config};
use roomready_tests::publish::publish;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

/// A webhook receiver on loopback: answers 500 to the first `failures` requests, then 204, and
/// keeps every body.
pub(crate) struct Receiver {
    pub(crate) url: String,
    bodies: Arc<Mutex<Vec<(u16, Value)>>>,
    count: watch::Receiver<usize>,
}

impl Receiver {
    pub(crate) async fn start(failures: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let url = format!(
            "http://{}/webhookb2/SECRET-TOKEN/IncomingWebhook",
            listener.local_addr().expect("address")
        );
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let (count_tx, count) = watch::channel(0);
        let kept = Arc::clone(&bodies);
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Headers, then the body by Content-Length.
                let body = loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        break None;
                    };
                    if n == 0 {
                        break None;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if request.len() >= end + 4 + length {
                        break Some(request[end + 4..end + 4 + length].to_vec());
                    }
                };
                let Some(body) = body else { continue };
                let seen = kept.lock().expect("bodies").len();
                let status: u16 = if seen < failures { 500 } else { 204 };
                let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                kept.lock().expect("bodies").push((status, value));
                let reason = if status == 500 {
                    "Internal Server Error"
                } else {
                    "No Content"
                };
                let answer = format!(
                    "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
                count_tx.send_modify(|c| *c += 1);
            }
        });
        Receiver { url, bodies, count }
    }

    pub(crate) async fn wait_for(&mut self, requests: usize) {
        tokio::time::timeout(WAIT, self.count.wait_for(|c| *c >= requests))
            .await
            .unwrap_or_else(|_| panic!("fewer than {requests} webhook requests within {WAIT:?}"))
            .expect("the receiver runs");
    }

    pub(crate) fn bodies(&self) -> Vec<(u16, Value)> {
        self.bodies.lock().expect("bodies").clone()
    }
}

fn state(device: &str, seq: u64, verdict: &str, site: &str) -> (String, Vec<u8>, bool) {
    let payload = json!({
        "schema": "roomready.state/1.2",
        "device": device,
        "seq": seq,
        "ts": format!("2026-12-01T10:00:{seq:02}.000Z"),
        "agent_version": "0.1.0",
        "facts": {"kind": "teams_rooms_windows", "app_version": "4.0.64.0"},
        "verdict": verdict,
        "findings": [],
        "placement": {"site": site},
    });
    (
        format!("roomready/v1/{device}/state"),
        payload.to_string().into_bytes(),
        true,
    )
}

fn event(device: &str, seq: u64, body: Value) -> (String, Vec<u8>, bool) {
    let mut payload = json!({
        "schema": "roomready.event/1",
        "device": device,
        "seq": seq,
        "ts": "2026-12-01T10:01:00.000Z",
    });
    for (k, v) in body.as_object().expect("an object") {
        payload[k] = v.clone();
    }
    (
        format!("roomready/v1/{device}/events"),
        payload.to_string().into_bytes(),
        false,
    )
}

fn offline(device: &str, seq: u64) -> (String, Vec<u8>, bool) {
    let payload = json!({
        "schema": "roomready.status/1",
        "device": device,
        "seq": seq,
        "ts": "2026-12-01T10:02:00.000Z",
        "status": "offline",
        "reason": "connection_lost",
    });
    (
        format!("roomready/v1/{device}/status"),
        payload.to_string().into_bytes(),
        true,
    )
}

fn settings(receiver: &Receiver) -> AlertSettings {
    let mut settings = AlertSettings::new(receiver.url.clone());
    // Wide enough that everything the test raises at once (over a few commits, on a busy
    // machine) goes out in one message; offline alerts as soon as the status is stored.
    settings.group = Duration::from_secs(2);
    settings.offline_after = Duration::ZERO;
    settings.suppress = vec![Suppress::Site(Site::new("lab").expect("site"))];
    settings
}

async fn alerts_where(
    console: &Console,
    what: &str,
    done: impl Fn(&[AlertRecord]) -> bool,
) -> Vec<AlertRecord> {
    console
        .until_alerts(what, |store| {
            let alerts = store.alerts(100).ok()?;
            done(&alerts).then_some(alerts)
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_raised_grouped_retried_until_delivered_and_never_repeated() {
    let broker = EmbeddedBroker::start().await.expect("broker");
    let url: BrokerUrl = broker.url();
    let mut receiver = Receiver::start(2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(&url, dir.path());
    cfg.alerts = Some(settings(&receiver));
    let console = Console::start_with(cfg.clone(), dir).await;
    console.subscribed().await;

    publish(
        &url,
        "fleet",
        vec![
            state("mtr-a", 1, "ready", "oslo-hq"),
            state("mtr-lab", 1, "ready", "lab"),
            state("mtr-c", 1, "ready", "oslo-hq"),
        ],
    )
    .await;
    console
        .until("three first states", |s| {
            (s.summary().ok()?.devices == 3).then_some(())
        })
        .await;
    // A first verdict is not a change; these are.
    publish(
        &url,
        "fleet",
        vec![
            state("mtr-a", 2, "not_ready", "oslo-hq"),
            state("mtr-lab", 2, "not_ready", "lab"),
            event(
                "mtr-a",
                3,
                json!({"event": "records_dropped", "count": 120, "total": 120}),
            ),
            offline("mtr-c", 1),
        ],
    )
    .await;

    // Two failures, then the third attempt delivers one message with every alert but the lab's.
    receiver.wait_for(3).await;
    let alerts = alerts_where(&console, "delivered", |a| {
        a.iter()
            .filter(|a| a.outcome == AlertOutcome::Delivered)
            .count()
            >= 3
    })
    .await;
    let rules: Vec<(String, String, AlertOutcome)> = alerts
        .iter()
        .rev()
        .map(|a| {
            (
                a.rule.clone(),
                a.device.as_ref().map(|d| d.to_string()).unwrap_or_default(),
                a.outcome,
            )
        })
        .collect();
    assert!(
        rules.contains(&(
            "verdict_worse".into(),
            "mtr-lab".into(),
            AlertOutcome::Suppressed
        )),
        "{rules:?}"
    );
    for (rule, device) in [
        ("verdict_worse", "mtr-a"),
        ("seq_gap", "mtr-a"),
        ("offline", "mtr-c"),
    ] {
        let alert = alerts
            .iter()
            .find(|a| a.rule == rule && a.device.as_ref().is_some_and(|d| d.as_str() == device))
            .unwrap_or_else(|| panic!("no {rule} alert for {device}: {rules:?}"));
        assert_eq!(alert.outcome, AlertOutcome::Delivered, "{alert:?}");
        assert_eq!(
            alert.attempts, 3,
            "two failures and the delivery: {alert:?}"
        );
    }
    let bodies = receiver.bodies();
    assert_eq!(
        bodies.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        [500, 500, 204]
    );
    let delivered = &bodies[2].1;
    assert_eq!(delivered, &bodies[0].1, "the same message, retried");
    let summaries: Vec<&str> = delivered["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| a["summary"].as_str().expect("summary"))
        .collect();
    assert!(
        summaries.contains(&"mtr-a (oslo-hq): verdict ready → not_ready"),
        "{summaries:?}"
    );
    assert!(
        !summaries.iter().any(|s| s.contains("mtr-lab")),
        "maintenance is not sent"
    );

    // Within the quiet period the same rule says nothing more for mtr-a.
    publish(
        &url,
        "fleet",
        vec![
            state("mtr-a", 4, "ready", "oslo-hq"),
            state("mtr-a", 5, "not_ready", "oslo-hq"),
        ],
    )
    .await;
    console
        .until("mtr-a's fifth message", |s| {
            let id = roomready_protocol::DeviceId::new("mtr-a").ok()?;
            (s.device(&id).ok()??.seq.highest == Some(5)).then_some(())
        })
        .await;
    // A restart on the same database: nothing raised again, nothing sent again.
    let dir = console.stop().await;
    let console = Console::start_with(cfg, dir).await;
    console.subscribed().await;
    publish(&url, "fleet", vec![state("mtr-c", 2, "at_risk", "oslo-hq")]).await;
    // mtr-c at_risk is new (its offline alert was another rule): the only new message.
    receiver.wait_for(4).await;
    let bodies = receiver.bodies();
    let last = &bodies[3].1["alerts"];
    assert_eq!(last.as_array().map(Vec::len), Some(1), "{last}");
    assert_eq!(last[0]["rule"], "verdict_worse");
    assert_eq!(last[0]["device"], "mtr-c");
    let all = console.store().alerts(100).expect("alerts");
    assert_eq!(
        all.len(),
        5,
        "four raised before the restart, one after: {all:#?}"
    );
    console.stop().await;
    broker.stop().await.expect("broker stops");
}
