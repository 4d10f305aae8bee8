//! One endpoint probed at all four versions against real `openssl s_server` peers: the
//! per-version outcomes must agree with `openssl s_client`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::probe::modern::roots;
use roomready_agent::probe::{Endpoint, ProbeSettings, probe_endpoint};
use roomready_protocol::{EndpointRole, ProbeOutcome, TlsVersion};
use support::{OpensslServer, TestCert, need_openssl, s_client_accepts};

fn settings(cert: &TestCert) -> ProbeSettings {
    let ca = std::fs::read(&cert.ca_pem).expect("CA file");
    ProbeSettings {
        roots: Arc::new(roots(Some(&ca)).expect("CA")),
        timeout: Duration::from_secs(5),
        resolve: Arc::default(),
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint {
        host: "localhost".into(),
        port,
        role: EndpointRole::Custom,
        sfb_version: None,
    }
}

const FLAGS: [(TlsVersion, &str); 4] = [
    (TlsVersion::Tls13, "-tls1_3"),
    (TlsVersion::Tls12, "-tls1_2"),
    (TlsVersion::Tls11, "-tls1_1"),
    (TlsVersion::Tls10, "-tls1"),
];

#[tokio::test]
async fn every_version_agrees_with_s_client() {
    if !need_openssl("every_version_agrees_with_s_client") {
        return;
    }
    let cert = TestCert::new();
    let legacy = ["-cipher", "ALL:@SECLEVEL=0"];
    let servers: [Vec<&str>; 4] = [
        vec!["-tls1_2"],
        vec!["-tls1_3"],
        [&["-tls1"][..], &legacy[..]].concat(),
        [&["-tls1_1"][..], &legacy[..]].concat(),
    ];
    for args in servers {
        let server = OpensslServer::start(&cert, &args);
        let report =
            probe_endpoint(&endpoint(server.port), &settings(&cert), SystemClock.now()).await;
        assert!(report.address.is_some());
        for (version, flag) in FLAGS {
            let probed = report.version(version).expect("every version probed");
            assert_eq!(
                probed.outcome == ProbeOutcome::Accepted,
                s_client_accepts(server.port, flag),
                "server {args:?}, {version}: {probed:?}"
            );
            if probed.outcome == ProbeOutcome::Accepted {
                assert!(probed.suite.is_some(), "{probed:?}");
            }
        }
        // Every server accepts some version, so every one has a certificate verdict, read from
        // the highest version it accepts (in the clear up to TLS 1.2).
        let highest = FLAGS.iter().map(|(v, _)| *v).find(|&v| report.accepted(v));
        let c = report.certificate.as_ref().expect("a certificate verdict");
        assert_eq!(c.version, highest, "{args:?}: {c:?}");
        assert!(c.valid, "{c:?}");
        assert!(
            c.days_left.is_some_and(|d| (363..=365).contains(&d)),
            "{c:?}"
        );
    }
}

#[tokio::test]
async fn nothing_listening_is_connection_refused_for_every_version() {
    let cert_roots = Arc::new(roots(None).expect("roots"));
    let settings = ProbeSettings {
        roots: cert_roots,
        timeout: Duration::from_secs(2),
        resolve: Arc::default(),
    };
    let (reserved, _socket) = support::refused_addr();
    let report = probe_endpoint(&endpoint(reserved.port()), &settings, SystemClock.now()).await;
    assert_eq!(report.versions.len(), 4);
    assert!(
        report
            .versions
            .iter()
            .all(|v| v.outcome == ProbeOutcome::ConnectionRefused),
        "{:?}",
        report.versions
    );
    assert_eq!(report.certificate, None);
}

#[tokio::test]
async fn resolve_override_stands_in_for_dns() {
    let (reserved, _socket) = support::refused_addr();
    let endpoint = Endpoint {
        host: "Teams.Example.invalid".into(),
        port: 443,
        role: EndpointRole::Microsoft365,
        sfb_version: None,
    };
    let resolve = [(("teams.example.invalid".to_owned(), 443), reserved)]
        .into_iter()
        .collect();
    let settings = ProbeSettings {
        roots: Arc::new(roots(None).expect("roots")),
        timeout: Duration::from_secs(2),
        resolve: Arc::new(resolve),
    };
    let report = probe_endpoint(&endpoint, &settings, SystemClock.now()).await;
    // Probed at the override (host matched case-insensitively), never looked up.
    assert_eq!(report.address, Some(reserved.to_string()));
    assert_eq!(report.host, "Teams.Example.invalid");
    assert!(
        report
            .versions
            .iter()
            .all(|v| v.outcome == ProbeOutcome::ConnectionRefused),
        "{:?}",
        report.versions
    );
    // Another port of the same host is not overridden.
    let other = Endpoint {
        port: 5061,
        ..endpoint
    };
    let report = probe_endpoint(&other, &settings, SystemClock.now()).await;
    assert!(
        report
            .versions
            .iter()
            .all(|v| v.outcome == ProbeOutcome::DnsFailure),
        "{:?}",
        report.versions
    );
}
