//! The hand-built hellos against real peers: `openssl s_server` limited to one TLS version (the
//! verdict of `probe_version` must agree with `openssl s_client` for every version, and an
//! accepted hello brings the server's chain), and plain TCP listeners that refuse, close, reset,
//! stay silent or speak HTTP (`hello_probe`, one hello).
#![cfg(unix)]

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use roomready_agent::probe::flight::{Chain, Reply};
use roomready_agent::probe::hello::{HelloOutcome, alert_name, hello_probe, probe_version};
use roomready_agent::probe::suites;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{OpensslServer, TestCert, need_openssl, s_client_accepts};

const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// (version, the matching s_client flag).
const VERSIONS: [(u16, &str); 3] = [(0x0301, "-tls1"), (0x0302, "-tls1_1"), (0x0303, "-tls1_2")];

fn describe(outcome: &HelloOutcome) -> String {
    match outcome {
        HelloOutcome::Reply(Reply::Alert { level, description }) => {
            format!(
                "alert level {level} {} ({description})",
                alert_name(*description)
            )
        }
        other => format!("{other:?}"),
    }
}

/// Probes a server started with `server_args` for every version and checks the verdicts agree
/// with s_client; returns which versions were accepted.
async fn compare_with_s_client(test: &str, server_args: &[&str]) -> Vec<u16> {
    let cert = TestCert::new();
    let server = OpensslServer::start(&cert, server_args);
    let mut accepted = Vec::new();
    for (version, flag) in VERSIONS {
        let outcome = probe_version(server.addr(), Some("localhost"), version, PROBE_TIMEOUT).await;
        let probe_accepts = outcome.flight().is_some_and(|f| f.hello.version == version);
        let reference = s_client_accepts(server.port, flag);
        println!(
            "{test}: server {server_args:?}, hello {version:#06x}: {} (s_client {flag}: {})",
            describe(&outcome),
            if reference { "handshake" } else { "refused" }
        );
        assert_eq!(
            probe_accepts, reference,
            "{test}: version {version:#06x} probe {outcome:?} vs s_client {flag} {reference}"
        );
        if probe_accepts {
            // The flight was read to its end, the server's certificate with it.
            let flight = outcome.flight().expect("accepted");
            assert!(flight.complete, "{test}: {flight:?}");
            assert!(
                matches!(&flight.chain, Some(Chain::Certificates(c)) if c.len() == 1),
                "{test}: {flight:?}"
            );
            accepted.push(version);
        } else {
            // A refusal is an alert or a downgrade ServerHello, never silence or garbage.
            assert!(
                matches!(
                    outcome,
                    HelloOutcome::Reply(Reply::Alert { .. } | Reply::Hello(_))
                ),
                "{test}: unexpected refusal {outcome:?}"
            );
        }
    }
    accepted
}

#[tokio::test]
async fn tls1_0_only_server() {
    if !need_openssl("tls1_0_only_server") {
        return;
    }
    let accepted = compare_with_s_client(
        "tls1_0_only_server",
        &["-tls1", "-cipher", "ALL:@SECLEVEL=0"],
    )
    .await;
    assert_eq!(accepted, [0x0301]);
}

#[tokio::test]
async fn tls1_1_only_server() {
    if !need_openssl("tls1_1_only_server") {
        return;
    }
    let accepted = compare_with_s_client(
        "tls1_1_only_server",
        &["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"],
    )
    .await;
    assert_eq!(accepted, [0x0302]);
}

#[tokio::test]
async fn tls1_2_only_server() {
    if !need_openssl("tls1_2_only_server") {
        return;
    }
    let accepted = compare_with_s_client("tls1_2_only_server", &["-tls1_2"]).await;
    assert_eq!(accepted, [0x0303]);
}

#[tokio::test]
async fn tls1_3_only_server() {
    if !need_openssl("tls1_3_only_server") {
        return;
    }
    let accepted = compare_with_s_client("tls1_3_only_server", &["-tls1_3"]).await;
    assert_eq!(accepted, Vec::<u16>::new());
}

#[tokio::test]
async fn expired_certificate_does_not_change_the_hello_verdict() {
    if !need_openssl("expired_certificate_does_not_change_the_hello_verdict") {
        return;
    }
    let cert = TestCert::expired();
    let server = OpensslServer::start(&cert, &["-tls1_2"]);
    let outcome = probe_version(server.addr(), Some("localhost"), 0x0303, PROBE_TIMEOUT).await;
    assert!(
        outcome.flight().is_some_and(|f| f.hello.version == 0x0303),
        "{outcome:?}"
    );
}

#[test]
fn test_certificates_chain_to_their_ca() {
    if !need_openssl("test_certificates_chain_to_their_ca") {
        return;
    }
    let verify = |cert: &TestCert| {
        std::process::Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&cert.ca_pem)
            .arg(&cert.cert_pem)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl verify")
            .success()
    };
    assert!(verify(&TestCert::new()), "fresh leaf must verify");
    assert!(
        !verify(&TestCert::expired()),
        "expired leaf must not verify"
    );
}

async fn local_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    (listener, addr)
}

/// One hello (the first group of suites) to `addr`.
async fn probe(addr: SocketAddr, timeout: Duration) -> HelloOutcome {
    let first = suites::offer_chunks(0x0303).next().expect("a first hello");
    hello_probe(addr, Some("localhost"), 0x0303, first, timeout).await
}

#[tokio::test]
async fn nothing_listening_is_connection_refused() {
    let (addr, _reserved) = support::refused_addr();
    assert_eq!(
        probe(addr, PROBE_TIMEOUT).await,
        HelloOutcome::ConnectionRefused
    );
}

#[tokio::test]
async fn listener_that_closes_at_once_is_closed_or_reset() {
    let (listener, addr) = local_listener().await;
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        drop(stream);
    });
    let outcome = probe(addr, PROBE_TIMEOUT).await;
    // Racy by nature: EOF if the FIN is read first, reset if the hello reached the closed socket.
    assert!(
        matches!(outcome, HelloOutcome::Closed | HelloOutcome::Reset),
        "{outcome:?}"
    );
    server.await.expect("server task");
}

#[tokio::test]
async fn listener_that_reads_then_closes_is_closed() {
    let (listener, addr) = local_listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.expect("record header");
        let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await.expect("record body");
        stream.shutdown().await.expect("shutdown");
        // Hold the socket until the client has seen EOF and gone.
        let _ = stream.read(&mut buf).await;
    });
    assert_eq!(probe(addr, PROBE_TIMEOUT).await, HelloOutcome::Closed);
    server.await.expect("server task");
}

#[tokio::test]
async fn listener_that_resets_is_reset() {
    let (listener, addr) = local_listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 5];
        stream.read_exact(&mut buf).await.expect("record header");
        stream.set_zero_linger().expect("SO_LINGER 0");
        drop(stream);
    });
    assert_eq!(probe(addr, PROBE_TIMEOUT).await, HelloOutcome::Reset);
    server.await.expect("server task");
}

#[tokio::test]
async fn silent_listener_times_out() {
    let (listener, addr) = local_listener().await;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.expect("accept");
        // Never answer; keep the connection open until the test is done.
        let _ = done_rx.await;
        drop(stream);
    });
    let started = Instant::now();
    let outcome = probe(addr, Duration::from_millis(500)).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, HelloOutcome::Timeout);
    assert!(
        elapsed >= Duration::from_millis(450) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    let _ = done_tx.send(());
    server.await.expect("server task");
}

#[tokio::test]
async fn http_server_is_not_tls() {
    const RESPONSE: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\r\n";
    let (listener, addr) = local_listener().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf).await;
        stream.write_all(RESPONSE).await.expect("write response");
        let _ = stream.shutdown().await;
        let _ = stream.read(&mut buf).await;
    });
    match probe(addr, PROBE_TIMEOUT).await {
        HelloOutcome::Reply(Reply::NotTls { first_bytes }) => {
            assert!(!first_bytes.is_empty() && first_bytes.len() <= 16);
            assert!(RESPONSE.starts_with(&first_bytes), "{first_bytes:?}");
        }
        other => panic!("expected NotTls, got {other:?}"),
    }
    server.await.expect("server task");
}
