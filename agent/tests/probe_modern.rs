//! The rustls probe against real `openssl s_server` peers: each version's verdict must equal
//! `openssl s_client`'s, and the certificate (kept for `verify`, not judged here) is independent
//! of protocol support.

mod support;

use std::sync::Arc;
use std::time::Duration;

use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::probe::modern::{ModernOutcome, probe_modern, roots};
use roomready_agent::probe::verify::{self, Presented};
use roomready_protocol::{CertificateCheck, TlsVersion, suite_name};
use support::{OpensslServer, TestCert, need_openssl, s_client_accepts};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn probe(server: &OpensslServer, cert: &TestCert, version: TlsVersion) -> ModernOutcome {
    let ca = std::fs::read(&cert.ca_pem).expect("CA file");
    let roots = Arc::new(roots(Some(&ca)).expect("CA parses"));
    probe_modern(server.addr(), "localhost", version, roots, TIMEOUT).await
}

fn accepted(outcome: &ModernOutcome) -> bool {
    matches!(outcome, ModernOutcome::Accepted(a) if a.incomplete.is_none())
}

/// The verdict on the chain an accepted handshake showed, for "localhost" against `roots`.
fn verdict(outcome: &ModernOutcome, roots: &Arc<rustls::RootCertStore>) -> CertificateCheck {
    let ModernOutcome::Accepted(a) = outcome else {
        panic!("not accepted: {outcome:?}");
    };
    let presented = Presented {
        chain: a.chain.clone().expect("the chain is kept"),
        version: TlsVersion::Tls12,
        signature_error: a.signature_error.clone(),
    };
    verify::check(&presented, "localhost", roots, SystemClock.now())
}

fn ca_roots(cert: &TestCert) -> Arc<rustls::RootCertStore> {
    let ca = std::fs::read(&cert.ca_pem).expect("CA file");
    Arc::new(roots(Some(&ca)).expect("CA parses"))
}

#[tokio::test]
async fn versions_match_s_client() {
    if !need_openssl("versions_match_s_client") {
        return;
    }
    let cert = TestCert::new();
    for args in [&["-tls1_2"][..], &["-tls1_3"][..], &[][..]] {
        let server = OpensslServer::start(&cert, args);
        for (version, flag) in [
            (TlsVersion::Tls12, "-tls1_2"),
            (TlsVersion::Tls13, "-tls1_3"),
        ] {
            let outcome = probe(&server, &cert, version).await;
            assert_eq!(
                accepted(&outcome),
                s_client_accepts(server.port, flag),
                "server {args:?}, {version}: {outcome:?}"
            );
            if accepted(&outcome) {
                let check = verdict(&outcome, &ca_roots(&cert));
                assert!(check.valid, "a valid chain to the given CA: {check:?}");
            }
        }
    }
}

#[tokio::test]
async fn negotiated_suite_is_reported() {
    if !need_openssl("negotiated_suite_is_reported") {
        return;
    }
    let cert = TestCert::new();
    // A TLS 1.2 server offering only a suite outside the Office 365 list.
    let server = OpensslServer::start(
        &cert,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"],
    );
    match probe(&server, &cert, TlsVersion::Tls12).await {
        ModernOutcome::Accepted(a) => {
            assert_eq!(a.suite, 0xCCA9);
            assert_eq!(
                suite_name(a.suite),
                Some("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256")
            );
        }
        other => panic!("expected a TLS 1.2 handshake: {other:?}"),
    }
}

#[tokio::test]
async fn an_expired_certificate_is_reported_without_hiding_protocol_support() {
    if !need_openssl("an_expired_certificate_is_reported_without_hiding_protocol_support") {
        return;
    }
    let cert = TestCert::expired();
    let server = OpensslServer::start(&cert, &["-tls1_2"]);
    let outcome = probe(&server, &cert, TlsVersion::Tls12).await;
    assert!(accepted(&outcome), "TLS 1.2 is still accepted: {outcome:?}");
    let check = verdict(&outcome, &ca_roots(&cert));
    let error = check.error.as_deref().expect("expired");
    assert!(error.starts_with("expired on "), "{error}");
    // Expired a day ago; days are counted down to whole days, so -2 or -1.
    let days = check.days_left.expect("days left");
    assert!((-2..=-1).contains(&days), "expired yesterday: {days}");
}

#[tokio::test]
async fn the_wrong_trust_anchor_fails_the_chain() {
    if !need_openssl("the_wrong_trust_anchor_fails_the_chain") {
        return;
    }
    let cert = TestCert::new();
    let server = OpensslServer::start(&cert, &[]);
    // Mozilla's roots do not know the test CA.
    let roots = Arc::new(roots(None).expect("webpki roots"));
    match probe_modern(
        server.addr(),
        "localhost",
        TlsVersion::Tls13,
        roots.clone(),
        TIMEOUT,
    )
    .await
    {
        outcome @ ModernOutcome::Accepted(_) => {
            let check = verdict(&outcome, &roots);
            assert_eq!(
                check.error.as_deref(),
                Some("issued by \"roomready test CA\", which is not among the trusted roots"),
                "unknown issuer must not verify"
            );
        }
        other => panic!("TLS 1.3 is accepted: {other:?}"),
    }
}

#[tokio::test]
async fn connection_failures_are_distinct() {
    let cert_roots = Arc::new(roots(None).expect("webpki roots"));
    let (addr, _reserved) = support::refused_addr();
    let outcome = probe_modern(
        addr,
        "localhost",
        TlsVersion::Tls12,
        cert_roots.clone(),
        TIMEOUT,
    )
    .await;
    assert_eq!(outcome, ModernOutcome::ConnectionRefused);

    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = silent.local_addr().expect("addr");
    let outcome = probe_modern(
        addr,
        "localhost",
        TlsVersion::Tls12,
        cert_roots.clone(),
        Duration::from_millis(300),
    )
    .await;
    assert_eq!(outcome, ModernOutcome::Timeout);

    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = http.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut s, _)) = http.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let outcome = probe_modern(addr, "localhost", TlsVersion::Tls12, cert_roots, TIMEOUT).await;
    assert!(matches!(outcome, ModernOutcome::NotTls(_)), "{outcome:?}");
}
