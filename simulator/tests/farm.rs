//! The endpoint farm through the agent's real probes (`probe_endpoint`): every version
//! combination, certificate kind, behaviour and suite restriction gives the report an equivalent
//! `openssl s_server` gives; endpoints go down and up; specs parse from TOML and fail with typed
//! errors; garbage on the wire or in the ClientHello parser never stops the farm.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use roomready_agent::assess::{ENDPOINT_RULES, Outcome};
use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::probe::flight::Reply;
use roomready_agent::probe::hello::{self, HelloOutcome};
use roomready_agent::probe::suites;
use roomready_agent::probe::{Endpoint, ProbeSettings, probe_all, probe_endpoint};
use roomready_protocol::{EndpointReport, EndpointRole, ProbeOutcome, TlsVersion};
use roomready_simulator::farm::client_hello::{self, Parsed};
use roomready_simulator::farm::{
    Behaviour, CertificateKind, EndpointFarm, EndpointSpec, FarmError, SpecError, WRONG_NAME,
};
use roomready_testkit::openssl::OpensslServer;
use roomready_testkit::peers::need_program;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use TlsVersion::{Tls10, Tls11, Tls12, Tls13};

const TIMEOUT: Duration = Duration::from_secs(5);

fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn spec(name: &str, versions: &[TlsVersion]) -> EndpointSpec {
    EndpointSpec {
        name: name.to_owned(),
        port: 443,
        role: EndpointRole::Microsoft365,
        sfb_version: None,
        versions: versions.iter().copied().collect(),
        suites: None,
        certificate: CertificateKind::Valid,
        behaviour: Behaviour::Normal,
    }
}

fn endpoint_of(spec: &EndpointSpec) -> Endpoint {
    Endpoint {
        host: spec.name.clone(),
        port: spec.port,
        role: spec.role,
        sfb_version: spec.sfb_version.clone(),
    }
}

/// Probes the farm's only (first) endpoint through the real probe code.
async fn probe_first(farm: &EndpointFarm, timeout: Duration) -> EndpointReport {
    let settings = farm.probe_settings(timeout).expect("settings");
    let endpoint = farm.agent_endpoints().remove(0);
    probe_endpoint(&endpoint, &settings, SystemClock.now()).await
}

async fn probe_one(spec: EndpointSpec) -> EndpointReport {
    let farm = EndpointFarm::start([spec]).await.expect("farm starts");
    probe_first(&farm, TIMEOUT).await
}

/// Per version, TLS 1.3 first: (outcome, suite code, detail).
type Row = (ProbeOutcome, Option<String>, Option<String>);

fn rows(report: &EndpointReport) -> Vec<(TlsVersion, Row)> {
    report
        .versions
        .iter()
        .map(|v| {
            let suite = v.suite.as_ref().map(|s| s.code.clone());
            (v.version, (v.outcome, suite, v.detail.clone()))
        })
        .collect()
}

fn accepted(code: &str) -> Row {
    (ProbeOutcome::Accepted, Some(code.to_owned()), None)
}

fn alert(name: &str, code: u8) -> Row {
    (
        ProbeOutcome::Refused,
        None,
        Some(format!("alert {name} ({code})")),
    )
}

fn protocol_version() -> Row {
    alert("protocol_version", 70)
}

fn downgraded(to: &str) -> Row {
    (
        ProbeOutcome::Downgraded,
        None,
        Some(format!("answered {to}")),
    )
}

fn all(outcome: ProbeOutcome) -> Vec<(TlsVersion, Row)> {
    [Tls13, Tls12, Tls11, Tls10]
        .into_iter()
        .map(|v| (v, (outcome, None, None)))
        .collect()
}

/// Every version set that matters, and what the probes see (RSA certificate, default suites).
fn combinations() -> Vec<(Vec<TlsVersion>, [Row; 4])> {
    vec![
        (
            vec![Tls13],
            [
                accepted("1302"),
                protocol_version(),
                protocol_version(),
                protocol_version(),
            ],
        ),
        (
            vec![Tls12],
            [
                protocol_version(),
                accepted("C030"),
                protocol_version(),
                protocol_version(),
            ],
        ),
        (
            vec![Tls12, Tls13],
            [
                accepted("1302"),
                accepted("C030"),
                protocol_version(),
                protocol_version(),
            ],
        ),
        (
            vec![Tls11, Tls12, Tls13],
            [
                accepted("1302"),
                accepted("C030"),
                accepted("0035"),
                protocol_version(),
            ],
        ),
        (
            vec![Tls10, Tls11, Tls12],
            [
                protocol_version(),
                accepted("C030"),
                accepted("0035"),
                accepted("0035"),
            ],
        ),
        (
            vec![Tls10, Tls11, Tls12, Tls13],
            [
                accepted("1302"),
                accepted("C030"),
                accepted("0035"),
                accepted("0035"),
            ],
        ),
        (
            vec![Tls10, Tls12],
            [
                protocol_version(),
                accepted("C030"),
                downgraded("TLS 1.0"),
                accepted("0035"),
            ],
        ),
        (
            vec![Tls10],
            [
                protocol_version(),
                // The hello without supported_versions gets the server's highest version.
                downgraded("TLS 1.0"),
                downgraded("TLS 1.0"),
                accepted("0035"),
            ],
        ),
        (
            vec![Tls11],
            [
                protocol_version(),
                downgraded("TLS 1.1"),
                accepted("0035"),
                protocol_version(),
            ],
        ),
        (
            vec![Tls10, Tls11],
            [
                protocol_version(),
                downgraded("TLS 1.1"),
                accepted("0035"),
                accepted("0035"),
            ],
        ),
    ]
}

#[tokio::test]
async fn every_version_combination() {
    init();
    for (versions, want) in combinations() {
        let report = probe_one(spec("teams.microsoft.com", &versions)).await;
        let want: Vec<_> = [Tls13, Tls12, Tls11, Tls10].into_iter().zip(want).collect();
        assert_eq!(rows(&report), want, "versions {versions:?}");
        // Whatever version it accepts, the endpoint's certificate is checked: up to TLS 1.2
        // the hand-built hellos read it from the flight.
        let certificate = report.certificate.as_ref().expect("a certificate verdict");
        assert!(
            certificate.valid && certificate.error.is_none(),
            "{certificate:?}"
        );
        assert_eq!(
            certificate.version,
            [Tls13, Tls12, Tls11, Tls10]
                .into_iter()
                .find(|v| versions.contains(v)),
            "{versions:?}"
        );
        assert!(report.address.is_some_and(|a| a.starts_with("127.0.0.1:")));
        assert_eq!(report.host, "teams.microsoft.com");
    }
}

#[tokio::test]
async fn certificates_valid_expired_and_wrong_name() {
    init();
    let kinds = [
        CertificateKind::Valid,
        CertificateKind::Expired,
        CertificateKind::WrongName,
    ];
    for kind in kinds {
        let report = probe_one(EndpointSpec {
            certificate: kind,
            ..spec("pool.contoso.com", &[Tls12, Tls13])
        })
        .await;
        // The certificate never changes which versions are accepted.
        assert!(
            report.versions[..2]
                .iter()
                .all(|v| v.outcome == ProbeOutcome::Accepted),
            "{kind:?}: {:?}",
            report.versions
        );
        let c = report.certificate.expect("certificate checked");
        let days = c.days_left.expect("days left");
        match kind {
            CertificateKind::Valid => {
                assert!(c.valid && c.error.is_none(), "{c:?}");
                assert!((363..=365).contains(&days), "{c:?}");
            }
            CertificateKind::Expired => {
                assert!(!c.valid, "{c:?}");
                let error = c.error.as_deref().unwrap_or_default();
                assert!(error.starts_with("expired on 20"), "{c:?}");
                assert!((-2..=-1).contains(&days), "{c:?}");
            }
            CertificateKind::WrongName => {
                assert!(!c.valid, "{c:?}");
                let error = c.error.as_deref().unwrap_or_default();
                assert_eq!(
                    error,
                    format!(
                        "name does not match: the certificate is for {WRONG_NAME}, not pool.contoso.com"
                    ),
                    "{c:?}"
                );
                assert!((363..=365).contains(&days), "{c:?}");
            }
        }
    }
}

#[tokio::test]
async fn suites_restrict_what_is_negotiated() {
    init();
    let cases: [(&[&str], [Row; 2]); 4] = [
        (
            &[
                "TLS13_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ],
            [accepted("1301"), accepted("C02F")],
        ),
        (
            // IANA name for the TLS 1.3 suite; ChaCha20 for TLS 1.2.
            &[
                "TLS_CHACHA20_POLY1305_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ],
            [accepted("1303"), accepted("CCA8")],
        ),
        (
            // ECDSA suites only: the endpoint gets an ECDSA certificate.
            &[
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ],
            [accepted("1302"), accepted("C02B")],
        ),
        (
            &[
                "TLS13_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            ],
            [accepted("1302"), accepted("C02C")],
        ),
    ];
    for (suites, want) in cases {
        let report = probe_one(EndpointSpec {
            suites: Some(suites.iter().map(|s| (*s).to_owned()).collect()),
            ..spec("teams.microsoft.com", &[Tls10, Tls12, Tls13])
        })
        .await;
        let got = rows(&report);
        assert_eq!(got[0].1, want[0], "{suites:?}");
        assert_eq!(got[1].1, want[1], "{suites:?}");
        // TLS 1.0 keeps the fixed legacy list of the certificate's key type; the probe's legacy
        // hello offers RSA key exchange first.
        let legacy = if suites.iter().any(|s| s.contains("ECDSA")) {
            "C00A"
        } else {
            "0035"
        };
        assert_eq!(got[3].1, accepted(legacy), "{suites:?}");
        assert!(report.certificate.is_some_and(|c| c.valid));
    }
}

#[tokio::test]
async fn a_microsoft_like_endpoint_passes_every_endpoint_rule() {
    init();
    let report = probe_one(spec("teams.microsoft.com", &[Tls12, Tls13])).await;
    for rule in ENDPOINT_RULES {
        let outcome = rule(&report);
        assert!(
            matches!(outcome, Outcome::Pass | Outcome::NotApplicable),
            "{outcome:?}"
        );
    }
    // An ECDSA-only endpoint negotiates a suite outside the Office 365 lists.
    let report = probe_one(EndpointSpec {
        suites: Some(vec![
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
            "TLS13_AES_256_GCM_SHA384".into(),
        ]),
        ..spec("teams.microsoft.com", &[Tls12, Tls13])
    })
    .await;
    assert!(
        ENDPOINT_RULES
            .iter()
            .any(|rule| matches!(rule(&report), Outcome::Flag(..))),
        "{report:?}"
    );
}

#[tokio::test]
async fn legacy_hello_without_a_common_suite_gets_handshake_failure() {
    init();
    let farm = EndpointFarm::start([spec("legacy.contoso.com", &[Tls10, Tls11])])
        .await
        .expect("farm");
    let addr = farm.addr("legacy.contoso.com").expect("addr");
    // Only TLS 1.2 AEAD suites in a TLS 1.0 hello: nothing a TLS 1.0 server can choose.
    let outcome = hello::hello_probe(
        addr,
        Some("legacy.contoso.com"),
        0x0301,
        &[0x009c, 0xc02f],
        TIMEOUT,
    )
    .await;
    assert_eq!(answer(&outcome), "alert 2 40");
    // A TLS 1.2 hello (no supported_versions) is answered with the highest version offered.
    let outcome = hello::hello_probe(
        addr,
        Some("legacy.contoso.com"),
        0x0303,
        first_hello(),
        TIMEOUT,
    )
    .await;
    assert_eq!(answer(&outcome), "hello 0x0302 0xc014");
    // The first of the client's suites the server holds, in the client's order.
    let outcome = hello::hello_probe(addr, None, 0x0302, &[0x009c, 0x002f, 0xc013], TIMEOUT).await;
    assert_eq!(answer(&outcome), "hello 0x0302 0x002f");
    // The farm's flight carries the endpoint's certificate, as OpenSSL's does.
    let chain = outcome.flight().and_then(|f| f.chain.clone());
    assert!(
        matches!(chain, Some(roomready_agent::probe::flight::Chain::Certificates(c)) if c.len() == 1)
    );
}

/// The suites of a TLS 1.2 probe's first hello.
fn first_hello() -> &'static [u16] {
    suites::offer_chunks(0x0303).next().expect("a first hello")
}

/// The part of a hello's answer two servers must agree on: the version and suite chosen, or the
/// alert (the rest of a flight holds each server's own certificate and randoms).
fn answer(outcome: &HelloOutcome) -> String {
    match outcome {
        HelloOutcome::Reply(Reply::Hello(f)) => {
            format!(
                "hello {:#06x} {:#06x}",
                f.hello.version, f.hello.cipher_suite
            )
        }
        HelloOutcome::Reply(Reply::Alert { level, description }) => {
            format!("alert {level} {description}")
        }
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn slow_endpoint_answers_late() {
    init();
    let report = probe_one(EndpointSpec {
        behaviour: Behaviour::Slow { ms: 300 },
        ..spec("teams.microsoft.com", &[Tls10, Tls12, Tls13])
    })
    .await;
    for v in &report.versions[..2] {
        assert_eq!(v.outcome, ProbeOutcome::Accepted, "{v:?}");
    }
    // Only the TLS 1.3 handshake completes, and its time shows the delay.
    let tls13 = &report.versions[0];
    assert!(tls13.handshake_ms.is_some_and(|ms| ms >= 300), "{tls13:?}");
    assert_eq!(report.versions[3].outcome, ProbeOutcome::Accepted);

    // Slower than the probe's timeout: no answer.
    let farm = EndpointFarm::start([EndpointSpec {
        behaviour: Behaviour::Slow { ms: 10_000 },
        ..spec("teams.microsoft.com", &[Tls10, Tls12, Tls13])
    }])
    .await
    .expect("farm");
    let started = Instant::now();
    let report = probe_first(&farm, Duration::from_millis(400)).await;
    assert_eq!(rows(&report), all(ProbeOutcome::NoAnswer));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn refusing_endpoint_refuses_connections() {
    init();
    let farm = EndpointFarm::start([EndpointSpec {
        behaviour: Behaviour::Refuses,
        ..spec("teams.microsoft.com", &[Tls12, Tls13])
    }])
    .await
    .expect("farm");
    let report = probe_first(&farm, TIMEOUT).await;
    assert_eq!(rows(&report), all(ProbeOutcome::ConnectionRefused));
    assert_eq!(report.certificate, None);
    // Bringing it "up" does not change its nature.
    farm.set_down("teams.microsoft.com", false)
        .await
        .expect("set_down");
    let report = probe_first(&farm, TIMEOUT).await;
    assert_eq!(rows(&report), all(ProbeOutcome::ConnectionRefused));
}

#[tokio::test]
async fn silent_endpoint_times_out() {
    init();
    let farm = EndpointFarm::start([EndpointSpec {
        behaviour: Behaviour::Silent,
        ..spec("teams.microsoft.com", &[Tls10, Tls12, Tls13])
    }])
    .await
    .expect("farm");
    let started = Instant::now();
    let report = probe_first(&farm, Duration::from_millis(400)).await;
    assert_eq!(rows(&report), all(ProbeOutcome::NoAnswer));
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn endpoints_go_down_and_up_on_the_same_address() {
    init();
    let farm = EndpointFarm::start([
        spec("teams.microsoft.com", &[Tls12, Tls13]),
        spec("login.microsoftonline.com", &[Tls12, Tls13]),
    ])
    .await
    .expect("farm");
    let settings = farm.probe_settings(TIMEOUT).expect("settings");
    let endpoints = farm.agent_endpoints();
    let addr = farm.addr("teams.microsoft.com").expect("addr");
    let up = |r: &EndpointReport| {
        r.versions[..2]
            .iter()
            .all(|v| v.outcome == ProbeOutcome::Accepted)
    };
    for round in 0..3 {
        farm.set_down("teams.microsoft.com", true)
            .await
            .expect("down");
        assert_eq!(farm.is_down("teams.microsoft.com"), Some(true));
        let reports = probe_all(&endpoints, &settings, SystemClock.now()).await;
        assert_eq!(
            rows(&reports[0]),
            all(ProbeOutcome::ConnectionRefused),
            "round {round}"
        );
        assert!(
            up(&reports[1]),
            "the other endpoint stays up: {:?}",
            reports[1]
        );
        // Going down twice is a no-op.
        farm.set_down("TEAMS.microsoft.com", true)
            .await
            .expect("down again");

        farm.set_down("teams.microsoft.com", false)
            .await
            .expect("up");
        assert_eq!(farm.is_down("teams.microsoft.com"), Some(false));
        assert_eq!(farm.addr("teams.microsoft.com"), Some(addr));
        let reports = probe_all(&endpoints, &settings, SystemClock.now()).await;
        assert!(up(&reports[0]), "round {round}: {:?}", reports[0]);
        assert_eq!(reports[0].address, Some(addr.to_string()));
    }
    match farm.set_down("nowhere.example", true).await {
        Err(FarmError::UnknownEndpoint { name }) => assert_eq!(name, "nowhere.example"),
        other => panic!("{other:?}"),
    }
    farm.stop().await;
    // Stopped: nothing listens any more.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn farm_stands_in_for_microsoft365_and_the_onprem_pool() {
    init();
    let sfb = EndpointSpec {
        port: 5061,
        role: EndpointRole::OnpremSfb,
        sfb_version: Some("6.0.9319.548".into()),
        ..spec("pool.contoso.com", &[Tls10, Tls11, Tls12])
    };
    let farm = EndpointFarm::start([spec("teams.microsoft.com", &[Tls12, Tls13]), sfb.clone()])
        .await
        .expect("farm");
    let endpoints = farm.agent_endpoints();
    assert_eq!(endpoints[1], endpoint_of(&sfb));
    let overrides = farm.resolve_overrides();
    assert_eq!(
        overrides.get(&("pool.contoso.com".to_owned(), 5061)),
        farm.addr("pool.contoso.com").as_ref()
    );
    let settings = farm.probe_settings(TIMEOUT).expect("settings");
    let reports = probe_all(&endpoints, &settings, SystemClock.now()).await;
    assert_eq!(reports[0].host, "teams.microsoft.com");
    assert_eq!(reports[1].host, "pool.contoso.com");
    assert_eq!(reports[1].port, 5061);
    assert_eq!(reports[1].role, EndpointRole::OnpremSfb);
    assert_eq!(reports[1].sfb_version.as_deref(), Some("6.0.9319.548"));
    for report in &reports {
        // SNI and the name check used the real names: both certificates verify.
        assert!(
            report.certificate.as_ref().is_some_and(|c| c.valid),
            "{report:?}"
        );
    }
    // Without the overrides, the names go to DNS: the farm is not reached.
    let plain = ProbeSettings {
        resolve: Default::default(),
        ..settings
    };
    let report = probe_endpoint(
        &Endpoint {
            host: "pool.contoso.invalid".into(),
            ..endpoint_of(&sfb)
        },
        &plain,
        SystemClock.now(),
    )
    .await;
    assert!(
        report
            .versions
            .iter()
            .all(|v| v.outcome == ProbeOutcome::DnsFailure)
    );
}

#[test]
fn specs_parse_from_toml() {
    let text = r#"
        name = "pool.contoso.com"
        port = 5061
        role = "onprem_sfb"
        sfb_version = "6.0.9319.548"
        versions = ["tls1.0", "tls1.2"]
        suites = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
        certificate = "wrong_name"
        behaviour = { slow = { ms = 250 } }
    "#;
    let parsed: EndpointSpec = toml::from_str(text).expect("full spec");
    assert_eq!(
        parsed,
        EndpointSpec {
            name: "pool.contoso.com".into(),
            port: 5061,
            role: EndpointRole::OnpremSfb,
            sfb_version: Some("6.0.9319.548".into()),
            versions: BTreeSet::from([Tls10, Tls12]),
            suites: Some(vec!["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into()]),
            certificate: CertificateKind::WrongName,
            behaviour: Behaviour::Slow { ms: 250 },
        }
    );
    parsed.validate().expect("valid");

    let minimal: EndpointSpec = toml::from_str(
        r#"
        name = "teams.microsoft.com"
        role = "microsoft365"
        versions = ["tls1.3"]
        "#,
    )
    .expect("minimal spec");
    assert_eq!(minimal, spec("teams.microsoft.com", &[Tls13]));
    for (behaviour, want) in [
        ("\"refuses\"", Behaviour::Refuses),
        ("\"silent\"", Behaviour::Silent),
        ("\"normal\"", Behaviour::Normal),
    ] {
        let text = format!(
            "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"tls1.2\"]\nbehaviour = {behaviour}"
        );
        let parsed: EndpointSpec = toml::from_str(&text).expect("behaviour");
        assert_eq!(parsed.behaviour, want);
    }
    for bad in [
        // Unknown field.
        "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"tls1.2\"]\ncolour = \"red\"",
        // Unknown version, role, certificate, behaviour.
        "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"ssl3\"]",
        "name = \"a.example\"\nrole = \"lync\"\nversions = [\"tls1.2\"]",
        "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"tls1.2\"]\ncertificate = \"self_signed\"",
        "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"tls1.2\"]\nbehaviour = \"flaky\"",
        "name = \"a.example\"\nrole = \"adfs\"\nversions = [\"tls1.2\"]\nbehaviour = { slow = { seconds = 1 } }",
        // Missing versions.
        "name = \"a.example\"\nrole = \"adfs\"",
    ] {
        assert!(toml::from_str::<EndpointSpec>(bad).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn invalid_specs_are_typed_errors() {
    init();
    let base = || spec("teams.microsoft.com", &[Tls12, Tls13]);
    let suites = |names: &[&str]| Some(names.iter().map(|s| (*s).to_owned()).collect());
    type IsExpected = fn(&SpecError) -> bool;
    let cases: Vec<(EndpointSpec, IsExpected)> = vec![
        (
            EndpointSpec {
                name: "not a host".into(),
                ..base()
            },
            |e| matches!(e, SpecError::InvalidName { .. }),
        ),
        (EndpointSpec { port: 0, ..base() }, |e| {
            matches!(e, SpecError::InvalidPort { .. })
        }),
        (
            EndpointSpec {
                versions: BTreeSet::new(),
                ..base()
            },
            |e| matches!(e, SpecError::NoVersion { .. }),
        ),
        (
            EndpointSpec {
                sfb_version: Some("6.0.9319.548".into()),
                ..base()
            },
            |e| matches!(e, SpecError::SfbVersionNotSfb { .. }),
        ),
        (
            EndpointSpec {
                role: EndpointRole::OnpremSfb,
                sfb_version: Some("six".into()),
                ..base()
            },
            |e| matches!(e, SpecError::InvalidSfbVersion { .. }),
        ),
        (
            EndpointSpec {
                suites: suites(&["TLS_RSA_WITH_RC4_128_MD5"]),
                ..base()
            },
            |e| {
                matches!(e, SpecError::UnknownSuite { suite, known, .. }
                if suite == "TLS_RSA_WITH_RC4_128_MD5" && known.contains("TLS13_AES_128_GCM_SHA256"))
            },
        ),
        (
            EndpointSpec {
                suites: suites(&[
                    "TLS13_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                ]),
                ..spec("teams.microsoft.com", &[Tls13])
            },
            |e| matches!(e, SpecError::SuiteVersionNotOffered { version: Tls12, .. }),
        ),
        (
            EndpointSpec {
                suites: suites(&["TLS13_AES_128_GCM_SHA256"]),
                ..base()
            },
            |e| matches!(e, SpecError::NoSuiteFor { version: Tls12, .. }),
        ),
        (
            EndpointSpec {
                suites: suites(&[]),
                ..spec("teams.microsoft.com", &[Tls10])
            },
            |e| matches!(e, SpecError::SuitesWithoutModernVersion { .. }),
        ),
        (
            EndpointSpec {
                suites: suites(&[
                    "TLS13_AES_128_GCM_SHA256",
                    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                ]),
                ..base()
            },
            |e| matches!(e, SpecError::MixedKeyKinds { .. }),
        ),
    ];
    for (spec, check) in cases {
        let error = spec.validate().expect_err("invalid");
        assert!(check(&error), "{spec:?}: {error:?}");
        assert!(
            error.to_string().contains("teams.microsoft.com")
                || error.to_string().contains("not a host"),
            "the message names the endpoint: {error}"
        );
        match EndpointFarm::start([spec]).await {
            Err(FarmError::Spec(e)) => assert_eq!(e, error),
            other => panic!("{other:?}"),
        }
    }
    match EndpointFarm::start([base(), spec("Teams.Microsoft.com", &[Tls12])]).await {
        Err(FarmError::DuplicateName { name }) => assert_eq!(name, "Teams.Microsoft.com"),
        other => panic!("{other:?}"),
    }
}

/// The simulator's seeded generator, with what the fuzz-style test needs.
struct Rng(roomready_simulator::scenario::fleet::SplitMix64);

impl Rng {
    fn seeded(seed: u64) -> Self {
        Rng(roomready_simulator::scenario::fleet::SplitMix64::new(seed))
    }
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
    }
    fn byte(&mut self) -> u8 {
        self.next().to_be_bytes()[0]
    }
}

#[test]
fn client_hello_parser_handles_any_bytes() {
    let started = Instant::now();
    let hellos: Vec<Vec<u8>> = [0x0301u16, 0x0302, 0x0303]
        .into_iter()
        .map(|v| hello::client_hello(v, Some("teams.microsoft.com"), first_hello(), [9; 32]))
        .collect();
    for (bytes, version) in hellos.iter().zip([0x0301u16, 0x0302, 0x0303]) {
        match client_hello::parse(bytes) {
            Parsed::Hello(h) => {
                assert_eq!(h.client_version, version);
                assert_eq!(h.cipher_suites, first_hello());
                assert_eq!(h.supported_versions, None);
                assert!(h.ec_point_formats);
            }
            other => panic!("{other:?}"),
        }
        // Every strict prefix needs more; the same hello split over two records parses too.
        for n in 0..bytes.len() {
            assert_eq!(
                client_hello::parse(&bytes[..n]),
                Parsed::NeedMore,
                "prefix {n}"
            );
        }
        let message = &bytes[5..];
        for cut in [1, 4, 40, message.len() - 1] {
            let mut split = Vec::new();
            for part in [&message[..cut], &message[cut..]] {
                split.extend_from_slice(&[0x16, 3, 1]);
                split.extend_from_slice(&u16::try_from(part.len()).expect("short").to_be_bytes());
                split.extend_from_slice(part);
            }
            assert!(
                matches!(client_hello::parse(&split), Parsed::Hello(_)),
                "cut {cut}"
            );
        }
    }
    // Known shapes of garbage.
    assert_eq!(
        client_hello::parse(b"GET / HTTP/1.1\r\n\r\n"),
        Parsed::NotTls
    );
    assert_eq!(
        client_hello::parse(&[0x80, 0x2e, 0x01, 0x03, 0x01]),
        Parsed::NotTls
    );
    assert_eq!(
        client_hello::parse(&[0x16, 3, 1, 0x48, 0x01]),
        Parsed::Malformed { alert: 22 }
    );
    assert_eq!(
        client_hello::parse(&[0x16, 3, 1, 0, 4, 2, 0, 0, 0]),
        Parsed::Malformed { alert: 10 }
    );
    assert_eq!(
        client_hello::parse(&[0x16, 3, 1, 0, 4, 1, 0, 0, 0]),
        Parsed::Malformed { alert: 50 }
    );
    // Noise, noise behind a plausible header, and every mutation of real hellos.
    let mut rng = Rng::seeded(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(400);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if len >= 6 && rng.below(2) == 0 {
            bytes[..3].copy_from_slice(&[0x16, 3, 1]);
            bytes[5] = 1;
        }
        let _ = client_hello::parse(&bytes);
    }
    for bytes in &hellos {
        for i in 0..bytes.len() {
            for value in [0u8, 1, 0x7f, 0x80, 0xff, rng.byte()] {
                let mut mutated = bytes.clone();
                mutated[i] = value;
                let _ = client_hello::parse(&mutated);
                let _ = client_hello::parse(&mutated[..rng.below(mutated.len() + 1)]);
            }
        }
    }
    // A chain of tiny records stops at the bound.
    let mut chain = vec![0x16, 3, 1, 0, 4, 1, 0, 0xff, 0];
    while chain.len() < 2 * client_hello::MAX_HELLO_BYTES {
        chain.extend_from_slice(&[0x16, 3, 1, 0, 1, 0]);
    }
    assert!(matches!(
        client_hello::parse(&chain),
        Parsed::Malformed { .. }
    ));
    assert!(started.elapsed() < Duration::from_secs(10), "too slow");
}

/// Sends `bytes`, half-closes, and returns everything the server sends until it closes.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("send");
    stream.shutdown().await.expect("half-close");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server closes after garbage: {bytes:?}");
    answer
}

#[tokio::test]
async fn garbage_on_the_wire_never_stops_the_farm() {
    init();
    let farm = EndpointFarm::start([spec("teams.microsoft.com", &[Tls10, Tls12, Tls13])])
        .await
        .expect("farm");
    let addr = farm.addr("teams.microsoft.com").expect("addr");
    let full = hello::client_hello(0x0301, None, first_hello(), [1; 32]);
    // Closed without a word: not TLS, or a hello cut short.
    for bytes in [&b"GET / HTTP/1.1\r\n\r\n"[..], &full[..full.len() / 2], b""] {
        assert_eq!(exchange(addr, bytes).await, b"", "{bytes:?}");
    }
    // Answered with a fatal alert: a TLS record that is not a usable ClientHello.
    for (bytes, description) in [
        (&[0x16, 3, 1, 0, 4, 1, 0, 0, 0][..], 50u8),
        (&[0x16, 3, 1, 0, 4, 11, 0, 0, 0][..], 10),
        (&[0x16, 3, 1, 0xff, 0xff][..], 22),
    ] {
        let answer = exchange(addr, bytes).await;
        assert_eq!(answer.len(), 7, "{answer:?}");
        assert_eq!((answer[0], answer[5], answer[6]), (0x15, 2, description));
    }
    let mut rng = Rng::seeded(42);
    for _ in 0..50 {
        let mut bytes = full.clone();
        let i = rng.below(bytes.len());
        bytes[i] = rng.byte();
        let cut = rng.below(bytes.len() + 1);
        let _ = exchange(addr, &bytes[..cut]).await;
    }
    // Still serving.
    let report = probe_first(&farm, TIMEOUT).await;
    assert_eq!(report.versions[0].outcome, ProbeOutcome::Accepted);
    assert_eq!(report.versions[3].outcome, ProbeOutcome::Accepted);
}

/// `openssl s_server` arguments equivalent to `spec` (versions; suites as OpenSSL names).
fn openssl_args(spec: &EndpointSpec, tls12: Option<&str>, tls13: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    for (version, flag) in [
        (Tls10, "-no_tls1"),
        (Tls11, "-no_tls1_1"),
        (Tls12, "-no_tls1_2"),
        (Tls13, "-no_tls1_3"),
    ] {
        if !spec.versions.contains(&version) {
            args.push(flag.to_owned());
        }
    }
    let legacy = spec.versions.contains(&Tls10) || spec.versions.contains(&Tls11);
    // With a TLS 1.2 list: that list, then the farm's fixed legacy lists (farm/legacy.rs) but
    // for 3DES, which Debian's OpenSSL 3 no longer has.
    let cipher = match (tls12, legacy) {
        (Some(list), _) => format!(
            "{list}:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA:AES256-SHA:AES128-SHA:@SECLEVEL=0"
        ),
        (None, true) => "ALL:@SECLEVEL=0".to_owned(),
        (None, false) => "DEFAULT".to_owned(),
    };
    args.extend(["-cipher".to_owned(), cipher]);
    if let Some(list) = tls13 {
        args.extend(["-ciphersuites".to_owned(), list.to_owned()]);
    }
    args
}

/// The report of `spec` served by the farm equals the report of `openssl s_server` with the same
/// certificate and the equivalent flags, probed under the same name.
async fn compare_with_openssl(spec: EndpointSpec, tls12: Option<&str>, tls13: Option<&str>) {
    let farm = EndpointFarm::start([spec.clone()]).await.expect("farm");
    let leaf = farm.leaf(&spec.name).expect("leaf");
    let args = openssl_args(&spec, tls12, tls13);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = OpensslServer::start_pem(&leaf.cert_pem, &leaf.key_pem, &args);
    let endpoint = endpoint_of(&spec);
    let from_farm = probe_first(&farm, TIMEOUT).await;
    let mut settings = farm.probe_settings(TIMEOUT).expect("settings");
    settings.resolve = std::sync::Arc::new(
        [((spec.name.clone(), spec.port), server.addr())]
            .into_iter()
            .collect(),
    );
    let from_openssl = probe_endpoint(&endpoint, &settings, SystemClock.now()).await;
    assert_eq!(
        rows(&from_farm),
        rows(&from_openssl),
        "{:?} (openssl {args:?})",
        spec.versions
    );
    let check = |r: &EndpointReport| {
        r.certificate
            .as_ref()
            .map(|c| (c.valid, c.error.clone(), c.not_after))
    };
    assert_eq!(check(&from_farm), check(&from_openssl), "{args:?}");
    // The hand-built hellos alone, TLS 1.2 included (the probes' fallback for servers with only
    // suites rustls lacks): the same ServerHello or alert.
    let farm_addr = farm.addr(&spec.name).expect("addr");
    for version in [0x0301u16, 0x0302, 0x0303] {
        let sni = Some(spec.name.as_str());
        let farm_reply = hello::probe_version(farm_addr, sni, version, TIMEOUT).await;
        let openssl_reply = hello::probe_version(server.addr(), sni, version, TIMEOUT).await;
        assert_eq!(
            answer(&farm_reply),
            answer(&openssl_reply),
            "{:?}, hello {version:#06x} (openssl {args:?})",
            spec.versions
        );
    }
}

#[tokio::test]
async fn every_combination_agrees_with_openssl_s_server() {
    init();
    if !need_program("every_combination_agrees_with_openssl_s_server", "openssl") {
        return;
    }
    for (versions, _) in combinations() {
        compare_with_openssl(spec("teams.microsoft.com", &versions), None, None).await;
    }
    for kind in [CertificateKind::Expired, CertificateKind::WrongName] {
        let spec = EndpointSpec {
            certificate: kind,
            ..spec("pool.contoso.com", &[Tls10, Tls12, Tls13])
        };
        compare_with_openssl(spec, None, None).await;
    }
    let restricted = |suites: &[&str]| EndpointSpec {
        suites: Some(suites.iter().map(|s| (*s).to_owned()).collect()),
        ..spec("teams.microsoft.com", &[Tls10, Tls11, Tls12, Tls13])
    };
    compare_with_openssl(
        restricted(&[
            "TLS13_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ]),
        Some("ECDHE-RSA-AES128-GCM-SHA256"),
        Some("TLS_AES_128_GCM_SHA256"),
    )
    .await;
    compare_with_openssl(
        restricted(&[
            "TLS13_CHACHA20_POLY1305_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ]),
        Some("ECDHE-ECDSA-AES256-GCM-SHA384"),
        Some("TLS_CHACHA20_POLY1305_SHA256"),
    )
    .await;
}
