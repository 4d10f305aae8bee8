//! The controller's broker connection against Mosquitto: ingest and commands over `mqtts://`
//! with a client certificate; a broker restart under a running controller, after which it
//! reconnects with a growing backoff, subscribes again and takes new states; a broker whose
//! certificate it does not trust, refused with a clear error on the pages an admin reads.
//!
//! Each test skips with a printed reason without `mosquitto`, and fails then under
//! `ROOMREADY_REQUIRE_PEERS=1`.

use std::time::{Duration, Instant};

use roomready_agent::clock::SystemClock;
use roomready_agent::config::{BrokerTls, BrokerUrl, ClientCertFiles};
use roomready_agent::{Agent, AgentSettings};
use roomready_controller::store::{HistoryKind, HistoryQuery};
use roomready_protocol::{DeviceId, Presence, ResponseStatus, Verdict};
use roomready_testkit::http::meta;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_testkit::pki::TestPki;
use roomready_tests::WAIT;
use roomready_tests::console::Console;
use roomready_tests::publish::publish;
use tokio::io::AsyncReadExt as _;
use tokio::sync::oneshot;

/// The controller's broker TLS: trust `ca`, present the test PKI's client certificate.
fn controller_tls(pki: &TestPki, ca: &std::path::Path) -> BrokerTls {
    BrokerTls {
        ca_file: Some(ca.to_owned()),
        server_name: None,
        client_cert: Some(ClientCertFiles {
            cert_file: pki.client_cert.clone(),
            key_file: pki.client_key.clone(),
        }),
    }
}

/// Waits until the controller's ingest records an error (a failed connection attempt). The
/// controller raises no event for a failed attempt, so its counters are read every 20 ms, at
/// most [`WAIT`].
async fn until_error(console: &Console) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(error) = console.running.ingest_stats.last_error() {
            return error;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection error within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A state of `device` with `seq` and `verdict`, as an agent publishes it.
fn state(device: &str, seq: u64, verdict: Verdict) -> Vec<u8> {
    serde_json::json!({
        "schema": "roomready.state/1",
        "device": device,
        "seq": seq,
        "ts": "2026-12-01T10:00:00.000Z",
        "agent_version": "0.1.0",
        "facts": {"kind": "teams_rooms_windows", "app_version": "4.0.105.0"},
        "verdict": verdict.as_str(),
        "findings": [],
    })
    .to_string()
    .into_bytes()
}

/// A real agent reports over `mqtts://` (mutual TLS) to Mosquitto and the controller, also on
/// mutual TLS, takes its state and presence into the store and its API, and its command reaches
/// the agent and is answered over the same TLS connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_ingests_and_commands_over_mqtts_with_a_client_certificate() {
    if !need_mosquitto("the_controller_ingests_and_commands_over_mqtts_with_a_client_certificate") {
        return;
    }
    let pki = TestPki::new();
    // The broker takes only TLS clients with a certificate from the test CA.
    let mosquitto = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        Some(&pki.ca),
    ));
    let url: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    assert!(url.tls, "{url}: an mqtts:// URL");
    let tls = controller_tls(&pki, &pki.ca);
    let console = Console::start(&url, |config, _| config.broker.tls = tls.clone()).await;
    // Fails naming the controller's last connection error.
    console.subscribed().await;

    let id = DeviceId::new("mtr-tls").expect("id");
    let mut settings = AgentSettings::new(id.clone(), url.clone());
    settings.report_interval = Duration::from_secs(3600);
    settings.broker_tls = Some(
        roomready_agent::link::tls::client_config(&controller_tls(&pki, &pki.ca))
            .expect("the agent's TLS"),
    );
    let agent = Agent::new(
        settings,
        roomready_tests::rooms_facts("4.0.51.0"),
        SystemClock,
    );
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    let detail = console
        .until("the agent's state and presence over TLS", |store| {
            let detail = store.device(&id).ok()??;
            (detail.state.is_some() && detail.row.presence == Some(Presence::Online))
                .then_some(detail)
        })
        .await;
    assert_eq!(detail.row.verdict, Some(Verdict::NotReady));
    assert_eq!(
        detail
            .state
            .as_ref()
            .and_then(|s| s.facts.app_version.as_deref()),
        Some("4.0.51.0")
    );

    let http = console.http.clone();
    let sent = http
        .run(|http| {
            let api = http.get("/api/v1/devices/mtr-tls").json();
            assert_eq!(api["row"]["verdict"], "not_ready");
            assert_eq!(api["state"]["facts"]["app_version"], "4.0.51.0");
            let ingest = http.get("/api/v1/ingest").json();
            assert_eq!(ingest["connected"], true);
            assert_eq!(ingest["connections"], 1);
            let csrf = meta(&http.get("/devices/mtr-tls").body, "csrf-token").expect("a token");
            let sent = http.post_json(
                "/api/v1/devices/mtr-tls/commands",
                &serde_json::json!({"command": "check_now"}),
                Some(&csrf),
            );
            assert_eq!(sent.status, 202, "{}", sent.body);
            sent.json()["id"].as_str().expect("an id").to_owned()
        })
        .await;
    console
        .until("the agent's answer over TLS", |store| {
            let record = store.command(&sent).ok()??;
            (record.status == Some(ResponseStatus::Accepted)).then_some(())
        })
        .await;
    assert!(
        mosquitto.log().contains("roomready-controller"),
        "the broker saw the controller's client id: {}",
        mosquitto.log()
    );

    let _ = stop.send(());
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the agent stops")
        .expect("agent task")
        .expect("agent stops cleanly");
    console.stop().await;
}

/// Mosquitto, without persistence, is killed under a running controller: the controller sees
/// the connection drop, retries with a growing backoff (observed on a listener that takes the
/// broker's port meanwhile and reads each attempt's CONNECT), and when Mosquitto is back on the
/// same port, having forgotten every session and subscription, it connects and subscribes again:
/// a state published after the restart reaches its store and API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_controller_reconnects_with_backoff_and_subscribes_again() {
    if !need_mosquitto(
        "after_a_broker_restart_the_controller_reconnects_with_backoff_and_subscribes_again",
    ) {
        return;
    }
    let mut mosquitto = Mosquitto::start(&[]);
    let url: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    let console = Console::start(&url, |_, _| {}).await;
    console.subscribed().await;
    let client_id = console.config.client_id.clone();
    let device = "mtr-restart";
    let id = DeviceId::new(device).expect("id");
    let topic = format!("roomready/v1/{device}/state");
    publish(
        &url,
        "before-restart",
        vec![(topic.clone(), state(device, 1, Verdict::NotReady), false)],
    )
    .await;
    console
        .until("the state before the restart", |store| {
            store.device(&id).ok()??.state.filter(|s| s.seq == 1)
        })
        .await;

    let mut subscribed = console.running.ingest_stats.subscribed.subscribe();
    mosquitto.kill();
    tokio::time::timeout(WAIT, subscribed.wait_for(|s| !*s))
        .await
        .expect("the controller notices the broker is gone")
        .expect("the controller runs");

    // The broker's port, held by a listener that reads each attempt's CONNECT and hangs up.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", mosquitto.port()))
        .await
        .expect("the broker's port is free again");
    let mut attempts = Vec::new();
    while attempts.len() < 3 {
        let (mut stream, _) = tokio::time::timeout(WAIT, listener.accept())
            .await
            .expect("the controller tries again")
            .expect("accept");
        let at = Instant::now();
        let mut connect = Vec::new();
        let read = tokio::time::timeout(WAIT, async {
            let mut buf = [0u8; 512];
            while !contains(&connect, client_id.as_bytes()) {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => connect.extend_from_slice(&buf[..n]),
                }
            }
        });
        read.await.expect("the attempt sends its CONNECT");
        assert!(
            contains(&connect, client_id.as_bytes()),
            "an attempt of the controller's session: {connect:?}"
        );
        attempts.push(at);
    }
    drop(listener);
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // The controller's backoff starts at 0.5 s and doubles, each delay in [ceiling/2, ceiling]:
    // whichever attempts these are, the second waited at least 0.5 s and the third at least 1 s.
    assert!(
        gaps[0] >= Duration::from_millis(500) && gaps[1] >= Duration::from_millis(1000),
        "the retries back off: {gaps:?}"
    );
    let error = console
        .running
        .ingest_stats
        .last_error()
        .expect("the failed attempts are recorded");
    assert!(!error.is_empty());

    mosquitto.start_again();
    tokio::time::timeout(WAIT, subscribed.wait_for(|s| *s))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "not subscribed again within {WAIT:?}: {:?}",
                console.running.ingest_stats.last_error()
            )
        })
        .expect("the controller runs");
    publish(
        &url,
        "after-restart",
        vec![(topic, state(device, 2, Verdict::Ready), false)],
    )
    .await;
    console
        .until("the state published after the restart", |store| {
            store.device(&id).ok()??.state.filter(|s| s.seq == 2)
        })
        .await;
    let verdicts = console
        .store()
        .history(&HistoryQuery {
            device: Some(id.clone()),
            kinds: vec![HistoryKind::Verdict],
            ..HistoryQuery::default()
        })
        .expect("history");
    assert_eq!(verdicts.len(), 2, "{verdicts:#?}");
    assert_eq!(verdicts[0].data["to"], "ready");

    console
        .http
        .clone()
        .run(|http| {
            let api = http.get("/api/v1/devices/mtr-restart").json();
            assert_eq!(api["state"]["seq"], 2);
            assert_eq!(api["row"]["verdict"], "ready");
            let ingest = http.get("/api/v1/ingest").json();
            assert_eq!(ingest["connected"], true);
            assert_eq!(
                ingest["connections"], 2,
                "one connection before the restart, one after (the refused attempts made none)"
            );
            let metrics = http.get("/metrics").body;
            assert!(
                metrics.lines().any(|l| l == "roomready_broker_connected 1"),
                "{metrics}"
            );
        })
        .await;
    console.stop().await;
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A broker whose certificate was issued by a CA the controller was not told to trust: the
/// controller never connects, and says why (the CA in `broker_ca_file` did not issue it) on
/// its ingest page, in its API and in `/metrics`; a CA file that does not exist stops the start
/// itself, naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_broker_certificate_is_refused_with_a_clear_error() {
    if !need_mosquitto("an_untrusted_broker_certificate_is_refused_with_a_clear_error") {
        return;
    }
    let pki = TestPki::new();
    let mosquitto = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        None,
    ));
    let url: BrokerUrl = mosquitto.url().parse().expect("mosquitto URL");
    let tls = controller_tls(&pki, &pki.other_ca);
    let console = Console::start(&url, |config, _| config.broker.tls = tls.clone()).await;
    let error = until_error(&console).await;
    assert!(
        error.starts_with(
            "TLS: the broker's certificate is not trusted: it was not issued by a CA in broker_ca_file"
        ),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
    let stats = &console.running.ingest_stats;
    assert!(!*stats.subscribed.borrow());
    assert_eq!(
        stats.connections.load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    console
        .http
        .clone()
        .run(|http| {
            let ingest = http.get("/api/v1/ingest").json();
            assert_eq!(ingest["connected"], false);
            assert_eq!(ingest["connections"], 0);
            let shown = ingest["last_error"].as_str().expect("the error");
            assert!(
                shown.contains("not issued by a CA in broker_ca_file"),
                "{shown}"
            );
            let page = http.get("/ingest").body;
            assert!(
                page.contains("the broker&#39;s certificate is not trusted")
                    || page.contains("the broker's certificate is not trusted"),
                "{page}"
            );
            let metrics = http.get("/metrics").body;
            assert!(
                metrics.lines().any(|l| l == "roomready_broker_connected 0"),
                "{metrics}"
            );
        })
        .await;
    console.stop().await;

    // A CA file that is not there: the controller does not start, and names the key and file.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = roomready_tests::console::config(&url, dir.path());
    let missing = dir.path().join("no-such-ca.pem");
    config.broker.tls = BrokerTls {
        ca_file: Some(missing.clone()),
        ..BrokerTls::default()
    };
    let error = match roomready_controller::start(&config).await {
        Ok(running) => {
            running.stop().await;
            panic!("started with a CA file that does not exist")
        }
        Err(e) => e.to_string(),
    };
    assert!(
        error.starts_with("broker_ca_file: ") && error.contains(&missing.display().to_string()),
        "{error}"
    );
}
