//! Truth on the wire: the probe's verdict on servers a fleet really meets agrees with sslscan,
//! `openssl s_client` and `openssl verify` on the same server.
//!
//! Each case starts `openssl s_server` with one suite or certificate variant (the classes of
//! error the independent test suite found: suites outside a short hello, certificates only seen
//! on the hand-built path, keys and signatures the verifier rejects, a client certificate
//! requirement, suite preference), probes it, and checks per version that the probe accepts
//! exactly what sslscan reports enabled and `s_client` negotiates, that the certificate verdict
//! is `openssl verify`'s at security level 2, and the endpoint's findings and verdict. Servers
//! OpenSSL cannot imitate are small fakes ([`support::fakes`]): old-style version negotiation,
//! and a server that needs SNI.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roomready_agent::assess::{ENDPOINT_RULES, Outcome};
use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::probe::modern::roots;
use roomready_agent::probe::{Endpoint, ProbeSettings, probe_endpoint};
use roomready_protocol::{EndpointReport, ProbeOutcome, TlsVersion, Verdict, codes};
use support::fakes::{Chooses, NeedsSni, Tls10Only};
use support::pki::{Issued, Leaf, OpensslPki};
use support::reference::{Sslscan, openssl_verify, s_client_negotiates, sslscan};
use support::{OpensslServer, need_openssl, need_program};

const VERSIONS: [TlsVersion; 4] = [
    TlsVersion::Tls13,
    TlsVersion::Tls12,
    TlsVersion::Tls11,
    TlsVersion::Tls10,
];

/// Whether every reference tool is there (skips, or fails under ROOMREADY_REQUIRE_PEERS=1).
fn peers(test: &str) -> bool {
    need_openssl(test) && need_program(test, "sslscan")
}

/// Probes `host` on `addr`'s port, reached at `addr`, trusting `pki`'s CA; an on-premises Skype
/// for Business pool of that version if `sfb_version` is given.
async fn probe(
    pki: &OpensslPki,
    host: &str,
    addr: SocketAddr,
    sfb_version: Option<&str>,
) -> EndpointReport {
    let ca = std::fs::read(&pki.ca.cert).expect("CA file");
    let text = match sfb_version {
        Some(version) => format!("onprem_sfb={host}:{}@{version}", addr.port()),
        None => format!("{host}:{}", addr.port()),
    };
    let endpoint: Endpoint = text.parse().expect("endpoint");
    let resolve = [((host.to_owned(), addr.port()), addr)]
        .into_iter()
        .collect();
    let settings = ProbeSettings {
        roots: Arc::new(roots(Some(&ca)).expect("CA")),
        timeout: Duration::from_secs(5),
        resolve: Arc::new(resolve),
    };
    probe_endpoint(&endpoint, &settings, SystemClock.now()).await
}

/// Asserts that `report` accepts exactly the versions sslscan finds enabled on 127.0.0.1:`port`
/// (SNI `name`); returns sslscan's findings.
fn agrees_with_sslscan(what: &str, report: &EndpointReport, port: u16, name: &str) -> Sslscan {
    let scan = sslscan(port, name);
    for version in VERSIONS {
        assert_eq!(
            report.accepted(version),
            scan.enabled[&version],
            "{what}: {version}: probe {:?}, sslscan {:?}",
            report.version(version),
            scan.enabled
        );
    }
    scan
}

/// Asserts that `report` accepts exactly the versions `openssl s_client` negotiates with
/// 127.0.0.1:`port` (SNI `name`, client certificate `client`).
fn agrees_with_s_client(
    what: &str,
    report: &EndpointReport,
    port: u16,
    name: Option<&str>,
    client: Option<&Issued>,
) {
    for version in VERSIONS {
        assert_eq!(
            report.accepted(version),
            s_client_negotiates(port, version, name, client),
            "{what}: {version}: probe {:?} vs s_client",
            report.version(version)
        );
    }
}

/// The endpoint's verdict and the codes of its findings that decide it, by the endpoint rules.
fn assessed(report: &EndpointReport) -> (Verdict, Vec<String>) {
    let mut verdict = Verdict::Ready;
    let mut found = Vec::new();
    for rule in ENDPOINT_RULES {
        if let Outcome::Flag(flagged, finding) = rule(report) {
            verdict = verdict.worst(flagged);
            found.push(finding.code);
        }
    }
    found.sort();
    (verdict, found)
}

/// One server configuration and what the probe must conclude about it.
struct Case {
    name: &'static str,
    leaf: Leaf,
    /// `s_server` options after the certificate.
    args: &'static [&'static str],
    /// Probe it as an on-premises Skype for Business pool of this version.
    sfb_version: Option<&'static str>,
    verdict: Verdict,
    codes: &'static [&'static str],
    /// A part of the certificate's reason, when it is invalid.
    reason: Option<&'static str>,
    /// The server's TLS 1.2 preference is its own (one suite, or -serverpref), so sslscan sees
    /// the same.
    own_preference: Option<u16>,
}

fn cases() -> Vec<Case> {
    use codes::*;
    let case = |name, leaf, args| Case {
        name,
        leaf,
        args,
        sfb_version: None,
        verdict: Verdict::Ready,
        codes: &[],
        reason: None,
        own_preference: None,
    };
    vec![
        case("modern_defaults", Leaf::Good, &[]),
        Case {
            verdict: Verdict::AtRisk,
            codes: &[ENDPOINT_SUITE_NOT_IN_M365_LISTS],
            own_preference: Some(0x0033),
            ..case(
                "dhe_rsa_cbc_only",
                Leaf::Good,
                &["-tls1_2", "-cipher", "DHE-RSA-AES128-SHA"],
            )
        },
        Case {
            verdict: Verdict::AtRisk,
            codes: &[ENDPOINT_SUITE_NOT_IN_M365_LISTS],
            own_preference: Some(0xC009),
            ..case(
                "ecdhe_ecdsa_cbc_only",
                Leaf::Ecdsa,
                &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"],
            )
        },
        Case {
            sfb_version: Some("6.0.9319.500"),
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_NO_TLS12, SFB_CU_MISSING_BEFORE_TLS_CUTOFF],
            ..case(
                "camellia_tls1_0_only_before_the_cu",
                Leaf::Good,
                &["-tls1", "-cipher", "CAMELLIA256-SHA:@SECLEVEL=0"],
            )
        },
        Case {
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_CERT_INVALID, ENDPOINT_SUITE_NOT_IN_M365_LISTS],
            reason: Some("self-signed: not issued by a trusted CA"),
            own_preference: Some(0x002F),
            ..case(
                "self_signed_behind_cbc_only",
                Leaf::SelfSigned,
                &["-tls1_2", "-cipher", "AES128-SHA"],
            )
        },
        Case {
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_CERT_INVALID],
            reason: Some("expired on 2021-01-01"),
            own_preference: Some(0x009D),
            ..case(
                "expired_behind_rsa_key_exchange_only",
                Leaf::Expired,
                &["-tls1_2", "-cipher", "AES256-GCM-SHA384"],
            )
        },
        Case {
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_CERT_INVALID],
            reason: Some("RSA key of 1024 bits is too weak"),
            ..case("rsa_1024", Leaf::Rsa1024, &["-cipher", "ALL:@SECLEVEL=0"])
        },
        Case {
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_CERT_INVALID],
            reason: Some("signed with SHA-1 with RSA"),
            // OpenSSL 3 loads a SHA-1 certificate only at security level 0.
            ..case(
                "sha1_signature",
                Leaf::Sha1,
                &["-cipher", "DEFAULT:@SECLEVEL=0"],
            )
        },
        Case {
            verdict: Verdict::NotReady,
            codes: &[ENDPOINT_CERT_INVALID],
            reason: Some(
                "name does not match: the certificate is for other.example, not localhost",
            ),
            ..case("other_name", Leaf::OtherName, &[])
        },
        Case {
            own_preference: Some(0xCCA8),
            ..case(
                "prefers_chacha20_accepts_c030",
                Leaf::Good,
                &[
                    "-tls1_2",
                    "-serverpref",
                    "-cipher",
                    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384",
                ],
            )
        },
        Case {
            verdict: Verdict::AtRisk,
            codes: &[ENDPOINT_SUITE_NOT_IN_M365_LISTS],
            own_preference: Some(0xCCA8),
            ..case(
                "chacha20_only",
                Leaf::Good,
                &["-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"],
            )
        },
        Case {
            verdict: Verdict::Unknown,
            codes: &[ENDPOINT_CERT_UNAVAILABLE, ENDPOINT_SUITE_NOT_IN_M365_LISTS],
            own_preference: Some(0x0034),
            ..case(
                "anonymous_suite_only",
                Leaf::Good,
                &["-tls1_2", "-cipher", "ADH-AES128-SHA:@SECLEVEL=0"],
            )
        },
    ]
}

/// Probes one case's server and compares with the reference tools.
async fn check(pki: &OpensslPki, case: &Case) {
    let name = case.name;
    eprintln!("case {name}");
    let leaf = pki.issue(case.leaf);
    let server = OpensslServer::start_with(&leaf.cert, &leaf.key, case.args);
    let report = probe(pki, "localhost", server.addr(), case.sfb_version).await;
    let scan = agrees_with_sslscan(name, &report, server.port, "localhost");
    agrees_with_s_client(name, &report, server.port, Some("localhost"), None);
    let reference = openssl_verify(&leaf.cert, &pki.ca.cert, "localhost");
    match &report.certificate {
        Some(cert) => {
            assert_eq!(
                cert.valid,
                reference.is_ok(),
                "{name}: {cert:?} vs openssl verify {reference:?}"
            );
            if let Some(reason) = case.reason {
                let error = cert.error.as_deref().unwrap_or_default();
                assert!(error.contains(reason), "{name}: {error:?}");
            }
        }
        None => assert!(
            report.certificate_unavailable.is_some(),
            "{name}: neither a certificate nor why not: {report:?}"
        ),
    }
    if let Some(suite) = case.own_preference {
        let preferred = report
            .tls12_suites
            .as_ref()
            .and_then(|s| s.preferred.as_ref())
            .and_then(|s| s.value());
        assert_eq!(preferred, Some(suite), "{name}: {:?}", report.tls12_suites);
        assert_eq!(
            scan.preferred.get(&TlsVersion::Tls12),
            Some(&suite),
            "{name}: sslscan's preference"
        );
    }
    let (verdict, found) = assessed(&report);
    let mut want: Vec<String> = case.codes.iter().map(|c| (*c).to_owned()).collect();
    want.sort();
    assert_eq!(
        (verdict, found),
        (case.verdict, want),
        "{name}: {report:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_class_agrees_with_sslscan_s_client_and_openssl_verify() {
    if !peers("every_server_class_agrees_with_sslscan_s_client_and_openssl_verify") {
        return;
    }
    let pki = OpensslPki::new();
    for case in cases() {
        check(&pki, &case).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3des_only_server_is_accepted() {
    // Debian's OpenSSL 3 has no 3DES suite left to serve (nor to offer: s_client cannot take
    // part), so a fake chooses TLS_RSA_WITH_3DES_EDE_CBC_SHA when a TLS 1.2 hello offers it.
    if !peers("a_3des_only_server_is_accepted") {
        return;
    }
    let pki = OpensslPki::new();
    let leaf = pki.issue(Leaf::Good);
    let fake = Chooses::start(&leaf.cert, 0x0303, 0x000A).await;
    let report = probe(&pki, "localhost", fake.addr(), None).await;
    let tls12 = report.version(TlsVersion::Tls12).expect("probed");
    assert_eq!(tls12.outcome, ProbeOutcome::Accepted, "{tls12:?}");
    assert_eq!(tls12.suite.as_ref().and_then(|s| s.value()), Some(0x000A));
    agrees_with_sslscan("3DES only", &report, fake.addr().port(), "localhost");
    assert!(
        report.certificate.as_ref().is_some_and(|c| c.valid),
        "{report:?}"
    );
    assert_eq!(
        assessed(&report),
        (
            Verdict::AtRisk,
            vec![codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS.to_owned()]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_certificate_as_server_certificate_is_invalid() {
    if !peers("a_ca_certificate_as_server_certificate_is_invalid") {
        return;
    }
    let pki = OpensslPki::new();
    let server = OpensslServer::start_with(&pki.ca.cert, &pki.ca.key, &[]);
    let report = probe(&pki, "localhost", server.addr(), None).await;
    let cert = report.certificate.as_ref().expect("checked");
    assert_eq!(
        cert.error.as_deref(),
        Some("a CA certificate is used as the server certificate"),
        "{cert:?}"
    );
    // OpenSSL rejects it too (for its name; it does not forbid a CA as end entity).
    assert!(openssl_verify(&pki.ca.cert, &pki.ca.cert, "localhost").is_err());
    assert_eq!(
        assessed(&report),
        (
            Verdict::NotReady,
            vec![codes::ENDPOINT_CERT_INVALID.to_owned()]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_client_certificate_is_recognised_and_the_server_certificate_checked() {
    if !peers("a_required_client_certificate_is_recognised") {
        return;
    }
    let pki = OpensslPki::new();
    let leaf = pki.issue(Leaf::Good);
    let client: Issued = pki.issue(Leaf::Client);
    let ca = pki.ca.cert.to_str().expect("utf-8 path");
    let server = OpensslServer::start_with(&leaf.cert, &leaf.key, &["-Verify", "1", "-CAfile", ca]);
    let report = probe(&pki, "localhost", server.addr(), None).await;
    assert!(report.client_certificate_required, "{report:#?}");
    agrees_with_sslscan("client certificate", &report, server.port, "localhost");
    // With a client certificate s_client completes exactly what the probe accepted.
    agrees_with_s_client(
        "client certificate",
        &report,
        server.port,
        Some("localhost"),
        Some(&client),
    );
    assert!(!s_client_negotiates(
        server.port,
        TlsVersion::Tls12,
        Some("localhost"),
        None
    ));
    assert!(report.accepted(TlsVersion::Tls12) && report.accepted(TlsVersion::Tls13));
    let tls12 = report.version(TlsVersion::Tls12).expect("probed");
    assert!(
        tls12
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("asks for a client certificate")),
        "{tls12:?}"
    );
    assert!(report.certificate.as_ref().is_some_and(|c| c.valid));
    assert_eq!(assessed(&report), (Verdict::Ready, vec![]));
    let notes: Vec<String> = ENDPOINT_RULES
        .iter()
        .filter_map(|rule| match rule(&report) {
            Outcome::Note(f) => Some(f.code),
            _ => None,
        })
        .collect();
    assert_eq!(notes, [codes::ENDPOINT_CLIENT_CERT_REQUIRED]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_style_version_negotiation_is_a_downgrade_on_every_path() {
    if !peers("old_style_version_negotiation_is_a_downgrade_on_every_path") {
        return;
    }
    let pki = OpensslPki::new();
    let leaf = pki.issue(Leaf::Good);
    let fake = Tls10Only::start(&leaf.cert).await;
    let report = probe(&pki, "localhost", fake.addr(), None).await;
    for version in [TlsVersion::Tls13, TlsVersion::Tls12, TlsVersion::Tls11] {
        let probed = report.version(version).expect("probed");
        assert_eq!(probed.outcome, ProbeOutcome::Downgraded, "{probed:?}");
        assert_eq!(probed.detail.as_deref(), Some("answered TLS 1.0"));
        assert!(!s_client_negotiates(
            fake.addr().port(),
            version,
            Some("localhost"),
            None
        ));
    }
    assert!(report.accepted(TlsVersion::Tls10));
    agrees_with_sslscan(
        "TLS 1.0 to everything",
        &report,
        fake.addr().port(),
        "localhost",
    );
    let cert = report
        .certificate
        .as_ref()
        .expect("read from the TLS 1.0 flight");
    assert!(
        cert.valid && cert.version == Some(TlsVersion::Tls10),
        "{cert:?}"
    );
    assert_eq!(
        assessed(&report),
        (Verdict::NotReady, vec![codes::ENDPOINT_NO_TLS12.to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_needs_sni_is_probed_by_name_not_told_to_enable_tls12() {
    if !peers("a_server_that_needs_sni_is_probed_by_name") {
        return;
    }
    let pki = OpensslPki::new();
    let leaf = pki.issue(Leaf::Good);
    let server = OpensslServer::start_with(&leaf.cert, &leaf.key, &[]);
    let fake = NeedsSni::start(server.addr()).await;
    let port = fake.addr().port();

    // By address: no SNI, refused with unrecognized_name: unknown, and says how to name it.
    let by_address = probe(&pki, "127.0.0.1", fake.addr(), None).await;
    for version in VERSIONS {
        let probed = by_address.version(version).expect("probed");
        assert_eq!(probed.alert, Some(112), "{probed:?}");
        assert!(!s_client_negotiates(port, version, None, None), "{version}");
    }
    assert_eq!(
        assessed(&by_address),
        (
            Verdict::Unknown,
            vec![codes::ENDPOINT_NEEDS_SERVER_NAME.to_owned()]
        )
    );

    // By name at that address (as --resolve sni.example:PORT:127.0.0.1): what the server is.
    let by_name = probe(&pki, "sni.example", fake.addr(), None).await;
    agrees_with_sslscan("by name", &by_name, port, "sni.example");
    agrees_with_s_client("by name", &by_name, port, Some("sni.example"), None);
    assert!(
        by_name.certificate.as_ref().is_some_and(|c| c.valid),
        "{by_name:?}"
    );
    assert_eq!(by_name.address, Some(fake.addr().to_string()));
    assert_eq!(assessed(&by_name), (Verdict::Ready, vec![]));
}
