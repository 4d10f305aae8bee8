//! TLS and credentials to a real Mosquitto broker: mutual TLS, the refusals an operator must be
//! able to diagnose (untrusted broker, missing client certificate, wrong name, bad password),
//! the server-name override, and `roomready-agent run` over `mqtts://`.
//!
//! Certificates are made with rcgen per test; each test starts its own broker on a free
//! loopback port. The subscriber that checks deliveries is independent of the code under test:
//! rumqttc with a rustls configuration built here, not by `roomready_agent::link::tls`.
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use roomready_agent::config::{BrokerTls, BrokerUrl, ClientCertFiles, Credentials, Password};
use roomready_agent::link::{Link, LinkEvent, LinkOptions, tls};
use roomready_protocol::{DeviceId, Message, Presence, Status, TopicPrefix, Topics};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use support::{Mosquitto, TestPki, mosquitto_password_file, need_mosquitto};

const AGENT: &str = env!("CARGO_BIN_EXE_roomready-agent");
const WAIT: Duration = Duration::from_secs(20);

/// The agent's TLS configuration, as `run` builds it from the config keys.
fn agent_tls(
    ca: &Path,
    server_name: Option<&str>,
    client: Option<(&Path, &Path)>,
) -> Arc<rustls::ClientConfig> {
    tls::client_config(&BrokerTls {
        ca_file: Some(ca.to_owned()),
        server_name: server_name.map(str::to_owned),
        client_cert: client.map(|(cert, key)| ClientCertFiles {
            cert_file: cert.to_owned(),
            key_file: key.to_owned(),
        }),
    })
    .expect("agent TLS config")
}

/// An agent link to `broker`.
fn start_link(
    broker: &Mosquitto,
    tls: Option<Arc<rustls::ClientConfig>>,
    credentials: Option<Credentials>,
) -> Link {
    let broker: BrokerUrl = broker.url().parse().expect("broker URL");
    let options = LinkOptions {
        broker,
        client_id: "roomready-tls-test".into(),
        keep_alive: Duration::from_secs(30),
        will_topic: "roomready/test/will".into(),
        tls,
        credentials,
        reconnect: roomready_agent::link::Reconnect::default(),
        version: roomready_agent::link::MqttVersion::default(),
        max_incoming_packet: roomready_agent::link::max_incoming_packet(65_536),
    };
    Link::start(options, b"gone".to_vec(), 7)
}

/// The link's first event: connected, or why the first attempt failed.
async fn first_event(link: &mut Link) -> LinkEvent {
    tokio::time::timeout(WAIT, link.next_event())
        .await
        .expect("a link event in time")
        .expect("the link driver runs")
}

/// The error of the link's first attempt; panics if it connected.
async fn first_error(link: &mut Link, broker: &Mosquitto) -> String {
    match first_event(link).await {
        LinkEvent::Disconnected { error } => {
            eprintln!("link error: {error}");
            error
        }
        LinkEvent::Connected => panic!(
            "connected, expected a refusal; broker log:\n{}",
            broker.log()
        ),
        other => panic!("expected a connection event first, got {other:?}"),
    }
}

async fn expect_connected(link: &mut Link, broker: &Mosquitto) {
    let event = first_event(link).await;
    assert_eq!(event, LinkEvent::Connected, "broker log:\n{}", broker.log());
}

/// A client TLS configuration built directly with rustls (trusting `pki.ca`, presenting the
/// client certificate), independent of `roomready_agent::link::tls`.
fn independent_tls(pki: &TestPki) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca).expect("CA file") {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let chain = CertificateDer::pem_file_iter(&pki.client_cert)
        .expect("client cert")
        .collect::<Result<Vec<_>, _>>()
        .expect("client PEM");
    let key = PrivateKeyDer::from_pem_file(&pki.client_key).expect("client key");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_client_auth_cert(chain, key)
    .expect("client auth");
    Arc::new(config)
}

/// A plain rumqttc subscriber, subscribed (SUBACK received) to `topic`.
struct Subscriber {
    _client: AsyncClient,
    events: EventLoop,
}

impl Subscriber {
    async fn new(
        broker: &Mosquitto,
        tls: Option<Arc<rustls::ClientConfig>>,
        credentials: Option<(&str, &str)>,
        topic: &str,
    ) -> Subscriber {
        let mut options = MqttOptions::new("independent-subscriber", "127.0.0.1", broker.port());
        if let Some(config) = tls {
            options.set_transport(rumqttc::Transport::tls_with_config(
                rumqttc::TlsConfiguration::Rustls(config),
            ));
        }
        if let Some((user, password)) = credentials {
            options.set_credentials(user, password);
        }
        let (client, events) = AsyncClient::new(options, 10);
        client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .expect("queue SUBSCRIBE");
        let mut subscriber = Subscriber {
            _client: client,
            events,
        };
        let subscribed = tokio::time::timeout(WAIT, async {
            loop {
                match subscriber.events.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => return,
                    Ok(_) => {}
                    Err(e) => panic!("subscriber: {e}; broker log:\n{}", broker.log()),
                }
            }
        });
        subscribed.await.expect("SUBACK in time");
        subscriber
    }

    /// The next message published to the subscription: (topic, payload).
    async fn next_publish(&mut self) -> (String, Vec<u8>) {
        let next = async {
            loop {
                match self.events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        return (p.topic, p.payload.to_vec());
                    }
                    Ok(_) => {}
                    Err(e) => panic!("subscriber: {e}"),
                }
            }
        };
        tokio::time::timeout(WAIT, next)
            .await
            .expect("a message in time")
    }
}

#[tokio::test]
async fn mutual_tls_connects_and_delivers() {
    if !need_mosquitto("mutual_tls_connects_and_delivers") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        Some(&pki.ca),
    ));
    assert!(broker.url().starts_with("mqtts://127.0.0.1:"));
    let topic = "roomready/test/mtls";
    let mut subscriber = Subscriber::new(&broker, Some(independent_tls(&pki)), None, topic).await;

    let tls = agent_tls(&pki.ca, None, Some((&pki.client_cert, &pki.client_key)));
    let mut link = start_link(&broker, Some(tls), None);
    expect_connected(&mut link, &broker).await;
    link.publish(topic, b"over mutual TLS".to_vec(), false)
        .expect("queued");
    let (got_topic, payload) = subscriber.next_publish().await;
    assert_eq!(got_topic, topic);
    assert_eq!(payload, b"over mutual TLS");
    assert!(
        broker.log().contains("roomready-tls-test"),
        "the broker saw the agent's client id: {}",
        broker.log()
    );
}

#[tokio::test]
async fn untrusted_broker_certificate_is_refused() {
    if !need_mosquitto("untrusted_broker_certificate_is_refused") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        None,
    ));
    let tls = agent_tls(&pki.other_ca, None, None);
    let mut link = start_link(&broker, Some(tls), None);
    let error = first_error(&mut link, &broker).await;
    assert!(
        error.starts_with("TLS: the broker's certificate is not trusted: it was not issued by a CA in broker_ca_file"),
        "{error}"
    );
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn missing_client_certificate_is_refused() {
    if !need_mosquitto("missing_client_certificate_is_refused") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        Some(&pki.ca),
    ));
    let tls = agent_tls(&pki.ca, None, None);
    let mut link = start_link(&broker, Some(tls), None);
    let error = first_error(&mut link, &broker).await;
    // Mosquitto sends `certificate_required` and closes; when the agent's CONNECT is still unread
    // there the close is a reset that can overtake the alert: either way the fix is named.
    let alert = error.starts_with(
        "TLS: the broker requires a client certificate (set client_cert_file and client_key_file)",
    ) && error.contains("CertificateRequired");
    let reset = error.starts_with(
        "TLS: the broker ended the connection right after the handshake, before CONNACK: it may \
         require a client certificate (set client_cert_file and client_key_file)",
    );
    assert!(alert || reset, "{error}");
}

#[tokio::test]
async fn wrong_server_name_is_refused() {
    if !need_mosquitto("wrong_server_name_is_refused") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        None,
    ));
    let tls = agent_tls(&pki.ca, Some("wrong.example"), None);
    let mut link = start_link(&broker, Some(tls), None);
    let error = first_error(&mut link, &broker).await;
    assert!(
        error.starts_with(
            "TLS: the broker's certificate does not match the name it was checked against"
        ),
        "{error}"
    );
    assert!(
        error.contains("certificate not valid for name \"wrong.example\""),
        "{error}"
    );

    // Without an override the URL's host is checked: 127.0.0.1 is not in a localhost-only
    // certificate.
    let localhost_only = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.localhost_cert,
        &pki.localhost_key,
        None,
    ));
    let mut link = start_link(&localhost_only, Some(agent_tls(&pki.ca, None, None)), None);
    let error = first_error(&mut link, &localhost_only).await;
    assert!(
        error.contains("does not match the name")
            && error.contains("not valid for name \"127.0.0.1\""),
        "{error}"
    );
}

#[tokio::test]
async fn server_name_override_accepts_a_certificate_for_another_name() {
    if !need_mosquitto("server_name_override_accepts_a_certificate_for_another_name") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.localhost_cert,
        &pki.localhost_key,
        None,
    ));
    let tls = agent_tls(&pki.ca, Some("localhost"), None);
    let mut link = start_link(&broker, Some(tls), None);
    expect_connected(&mut link, &broker).await;
}

#[tokio::test]
async fn username_and_password_are_checked_by_the_broker() {
    const TEST: &str = "username_and_password_are_checked_by_the_broker";
    if !need_mosquitto(TEST) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(passwords) = mosquitto_password_file(TEST, dir.path(), "room-7", "right-pass") else {
        return;
    };
    let broker = Mosquitto::start(&Mosquitto::password_lines(&passwords));
    let credentials = |password: Option<&str>| {
        Some(Credentials {
            username: "room-7".into(),
            password: password.map(Password::new),
        })
    };

    let mut link = start_link(&broker, None, credentials(Some("right-pass")));
    expect_connected(&mut link, &broker).await;
    link.close(Duration::from_secs(5)).await;

    for (case, creds) in [
        ("wrong password", credentials(Some("wrong-pass"))),
        ("no password", credentials(None)),
        ("no credentials", None),
    ] {
        let mut link = start_link(&broker, None, creds);
        let error = first_error(&mut link, &broker).await;
        assert!(
            error.starts_with("the broker refused the connection: not authorized (check username and the password)"),
            "{case}: {error}"
        );
    }
}

#[tokio::test]
async fn link_reconnects_after_the_broker_restarts_on_the_same_port() {
    if !need_mosquitto("link_reconnects_after_the_broker_restarts_on_the_same_port") {
        return;
    }
    let pki = TestPki::new();
    let mut broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        Some(&pki.ca),
    ));
    let port = broker.port();
    let tls = agent_tls(&pki.ca, None, Some((&pki.client_cert, &pki.client_key)));
    let mut link = start_link(&broker, Some(tls), None);
    expect_connected(&mut link, &broker).await;
    broker.kill();
    assert!(
        matches!(first_event(&mut link).await, LinkEvent::Disconnected { .. }),
        "the link notices the broker is gone"
    );
    broker.restart();
    assert_eq!(broker.port(), port);
    loop {
        // Attempts may fail until the backoff has passed; the next success is a reconnect.
        if first_event(&mut link).await == LinkEvent::Connected {
            break;
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// A config for `run`: `broker_lines` then a device with a ready facts file and no probes.
fn agent_config(dir: &Path, device: &str, broker_lines: &str) -> PathBuf {
    write(
        dir,
        "facts.toml",
        "kind = \"teams_rooms_windows\"\napp_version = \"4.0.64.0\"\n[registry]\n",
    );
    write(
        dir,
        "agent.toml",
        &format!(
            "{broker_lines}device_id = \"{device}\"\nfacts_file = \"facts.toml\"\nendpoints = []\n"
        ),
    )
}

/// Runs the agent on `config` until a retained `online` status arrives at `subscriber`, then
/// stops it with SIGTERM; returns its stderr.
async fn run_until_online(config: &Path, subscriber: &mut Subscriber, device: &str) -> String {
    let mut child = tokio::process::Command::new(AGENT)
        .args(["run", "--config", config.to_str().expect("utf-8")])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the agent");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let log = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut stderr, &mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    });
    loop {
        let (_, payload) = subscriber.next_publish().await;
        let status = Status::decode(&payload).expect("a status message");
        assert_eq!(status.device.as_str(), device);
        if status.status == Presence::Online {
            break;
        }
    }
    let pid = libc::pid_t::try_from(child.id().expect("running")).expect("pid fits pid_t");
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "SIGTERM sent");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("agent exits after SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    log.await.expect("stderr reader")
}

fn status_topic(device: &str) -> String {
    let device = DeviceId::new(device).expect("device id");
    Topics::new(&TopicPrefix::default(), &device)
        .status()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_over_mutual_tls_goes_online() {
    if !need_mosquitto("run_over_mutual_tls_goes_online") {
        return;
    }
    let pki = TestPki::new();
    let broker = Mosquitto::start(&Mosquitto::tls_lines(
        &pki.server_cert,
        &pki.server_key,
        Some(&pki.ca),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = agent_config(
        dir.path(),
        "tls-1",
        &format!(
            "broker_url = \"{}\"\nbroker_ca_file = \"{}\"\nclient_cert_file = \"{}\"\n\
             client_key_file = \"{}\"\n",
            broker.url(),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display()
        ),
    );
    let topic = status_topic("tls-1");
    let mut subscriber = Subscriber::new(&broker, Some(independent_tls(&pki)), None, &topic).await;
    let log = run_until_online(&config, &mut subscriber, "tls-1").await;
    assert!(log.contains("connected to the broker"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_never_logs_the_password() {
    const TEST: &str = "run_never_logs_the_password";
    if !need_mosquitto(TEST) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    const PASSWORD: &str = "Zq7-never-in-logs";
    let Some(passwords) = mosquitto_password_file(TEST, dir.path(), "room-8", PASSWORD) else {
        return;
    };
    let broker = Mosquitto::start(&Mosquitto::password_lines(&passwords));
    write(dir.path(), "password", &format!("{PASSWORD}\n"));
    let config = agent_config(
        dir.path(),
        "pw-1",
        &format!(
            "broker_url = \"{}\"\nusername = \"room-8\"\npassword_file = \"password\"\n",
            broker.url()
        ),
    );
    let topic = status_topic("pw-1");
    let mut subscriber = Subscriber::new(&broker, None, Some(("room-8", PASSWORD)), &topic).await;
    let log = run_until_online(&config, &mut subscriber, "pw-1").await;
    assert!(
        log.contains("connected to the broker"),
        "trace log captured: {log}"
    );
    assert!(
        !log.contains(PASSWORD),
        "the password leaked into the log:\n{log}"
    );
}

#[test]
fn run_exits_78_for_an_unusable_client_key() {
    let pki = TestPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.key");
    let broker_lines = format!(
        "broker_url = \"mqtts://127.0.0.1:1\"\nbroker_ca_file = \"{}\"\nclient_cert_file = \"{}\"\n",
        pki.ca.display(),
        pki.client_cert.display(),
    );
    let run = |config: &Path| {
        let out = std::process::Command::new(AGENT)
            .args(["run", "--config", config.to_str().expect("utf-8")])
            .output()
            .expect("run the agent");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // The key file named but not there: found when the TLS configuration is built.
    let config = agent_config(
        dir.path(),
        "tls-2",
        &format!(
            "{broker_lines}client_key_file = \"{}\"\n",
            missing.display()
        ),
    );
    let (code, stderr) = run(&config);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "bad config: {}: key \"client_key_file\": cannot read {}: ",
            config.display(),
            missing.display()
        )),
        "{stderr}"
    );

    // The key not named at all: a config error at the certificate's key.
    let config = agent_config(dir.path(), "tls-2", &broker_lines);
    let (code, stderr) = run(&config);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains("agent.toml:3:20: key \"client_cert_file\": client_key_file is missing"),
        "{stderr}"
    );

    // A key that belongs to another certificate.
    let config = agent_config(
        dir.path(),
        "tls-2",
        &format!(
            "{broker_lines}client_key_file = \"{}\"\n",
            pki.server_key.display()
        ),
    );
    let (code, stderr) = run(&config);
    assert_eq!(code, Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "key \"client_key_file\": the key in {} does not belong to the certificate in {}",
            pki.server_key.display(),
            pki.client_cert.display()
        )),
        "{stderr}"
    );
}
