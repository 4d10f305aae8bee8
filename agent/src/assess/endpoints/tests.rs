//! The endpoint rules on hand-made reports: each verdict, each boundary, and the findings that
//! say what could not be decided.

use roomready_protocol::suites::{AFD_TLS12_SUITES, OFFICE365_TLS12_SUITES};
use roomready_protocol::{CertificateCheck, CipherSuite, SuiteProbe, Tls12Suites, VersionProbe};

use super::*;

const VERSIONS: [TlsVersion; 4] = [
    TlsVersion::Tls13,
    TlsVersion::Tls12,
    TlsVersion::Tls11,
    TlsVersion::Tls10,
];

fn valid_certificate() -> CertificateCheck {
    CertificateCheck {
        valid: true,
        error: None,
        not_after: None,
        days_left: Some(200),
        version: Some(TlsVersion::Tls12),
    }
}

/// A report with these outcomes (TLS 1.3 first); when TLS 1.2 is accepted, `suite` is the one
/// the server chose, and whether it accepts one of Microsoft's follows from it. Anything
/// accepted comes with a valid certificate.
fn report(outcomes: [ProbeOutcome; 4], suite: Option<u16>) -> EndpointReport {
    let mut e = EndpointReport::new("pool.example".into(), 443, EndpointRole::OnpremSfb, None);
    e.address = Some("192.0.2.1:443".into());
    e.versions = VERSIONS
        .into_iter()
        .zip(outcomes)
        .map(|(version, outcome)| VersionProbe {
            version,
            outcome,
            suite: (version == TlsVersion::Tls12 && outcome == ProbeOutcome::Accepted)
                .then(|| suite.map(CipherSuite::from_code))
                .flatten(),
            detail: None,
            handshake_ms: None,
            alert: (outcome == ProbeOutcome::Refused).then_some(ALERT_PROTOCOL_VERSION),
        })
        .collect();
    if outcomes.contains(&ProbeOutcome::Accepted) {
        e.certificate = Some(valid_certificate());
    }
    if e.accepted(TlsVersion::Tls12) {
        let microsoft = suite.filter(|&s| MICROSOFT_TLS12_SUITES.contains(&s));
        e.tls12_suites = Some(Tls12Suites {
            preferred: suite.map(CipherSuite::from_code),
            microsoft: Some(SuiteProbe {
                outcome: if microsoft.is_some() {
                    ProbeOutcome::Accepted
                } else {
                    ProbeOutcome::Refused
                },
                suite: microsoft.map(CipherSuite::from_code),
                detail: microsoft
                    .is_none()
                    .then(|| "alert handshake_failure (40)".into()),
            }),
        });
    }
    e
}

fn outcomes_of(e: &EndpointReport) -> Vec<Outcome> {
    ENDPOINT_RULES.iter().map(|rule| rule(e)).collect()
}

fn codes_of(e: &EndpointReport) -> Vec<(Verdict, String)> {
    outcomes_of(e)
        .into_iter()
        .filter_map(|outcome| match outcome {
            Outcome::Flag(v, f) => Some((v, f.code)),
            _ => None,
        })
        .collect()
}

fn finding_of(outcome: Outcome) -> Finding {
    match outcome {
        Outcome::Flag(_, f) | Outcome::Note(f) => f,
        other => panic!("no finding: {other:?}"),
    }
}

use ProbeOutcome::*;

#[test]
fn tls12_or_13_is_required() {
    assert!(codes_of(&report([Accepted, Refused, Refused, Refused], None)).is_empty());
    assert!(
        codes_of(&report(
            [Refused, Accepted, Accepted, Accepted],
            Some(0xC030)
        ))
        .is_empty()
    );
    let none = report([Refused, Refused, Accepted, Accepted], None);
    assert_eq!(
        codes_of(&none),
        [(Verdict::NotReady, codes::ENDPOINT_NO_TLS12.to_string())]
    );
    let finding = finding_of(tls12_or_13_accepted(&none));
    assert!(
        finding.remediation.contains("2015 CU9"),
        "on-prem SfB remediation"
    );
    let downgraded = report([Refused, Downgraded, Accepted, Accepted], None);
    assert_eq!(codes_of(&downgraded)[0].1, codes::ENDPOINT_NO_TLS12);
    for silent in [
        NoAnswer,
        ConnectionRefused,
        DnsFailure,
        ConnectionReset,
        Closed,
    ] {
        let e = report([silent, silent, silent, silent], None);
        assert_eq!(
            codes_of(&e),
            [(Verdict::Unknown, codes::ENDPOINT_UNREACHABLE.to_string())]
        );
    }
}

/// `e` with TLS 1.3 and 1.2 refused by alert `code` (and nothing else accepted).
fn refused_with(mut e: EndpointReport, code: u8) -> EndpointReport {
    for probe in &mut e.versions {
        probe.outcome = Refused;
        probe.alert = Some(code);
    }
    e.certificate = None;
    e.tls12_suites = None;
    e
}

#[test]
fn a_refusal_about_the_name_is_not_a_missing_tls12() {
    let named = report([Refused; 4], None);
    // The server does not know the name: unknown, not "enable TLS 1.2".
    let unrecognized = refused_with(named.clone(), ALERT_UNRECOGNIZED_NAME);
    assert_eq!(
        codes_of(&unrecognized),
        [(
            Verdict::Unknown,
            codes::ENDPOINT_NEEDS_SERVER_NAME.to_string()
        )]
    );
    // A named endpoint that refuses with handshake_failure after every suite: not ready.
    assert_eq!(
        codes_of(&refused_with(named.clone(), 40)),
        [(Verdict::NotReady, codes::ENDPOINT_NO_TLS12.to_string())]
    );
    // By address, without SNI, a handshake_failure may be about the missing name.
    let mut by_address = refused_with(named, 40);
    by_address.host = "192.0.2.1".into();
    assert_eq!(
        codes_of(&by_address),
        [(
            Verdict::Unknown,
            codes::ENDPOINT_NEEDS_SERVER_NAME.to_string()
        )]
    );
    let finding = finding_of(tls12_or_13_accepted(&by_address));
    assert!(finding.evidence.contains("no SNI"), "{finding:?}");
    assert!(finding.remediation.contains("--resolve"), "{finding:?}");
    // By address, but the version itself is refused (protocol_version), or another version was
    // accepted without a name: not ready.
    let mut version_refused = refused_with(by_address.clone(), ALERT_PROTOCOL_VERSION);
    version_refused.host = "2001:db8::1".into();
    assert_eq!(codes_of(&version_refused)[0].1, codes::ENDPOINT_NO_TLS12);
    assert!(
        finding_of(tls12_or_13_accepted(&version_refused))
            .title
            .starts_with("[2001:db8::1]:443 ")
    );
    let mut legacy_ok = by_address;
    legacy_ok.versions[3].outcome = Accepted;
    legacy_ok.certificate = Some(valid_certificate());
    assert_eq!(codes_of(&legacy_ok)[0].1, codes::ENDPOINT_NO_TLS12);
}

#[test]
fn sfb_cu_boundaries() {
    let with = |version: &str, legacy: ProbeOutcome| {
        let mut e = report([Accepted, Accepted, legacy, legacy], Some(0xC030));
        e.sfb_version = Some(version.into());
        sfb_cumulative_update(&e)
    };
    let code = |o: Outcome| match o {
        Outcome::Flag(v, f) => Some((v, f.code)),
        _ => None,
    };
    assert_eq!(code(with("6.0.9319.548", Refused)), None);
    assert_eq!(
        code(with("6.0.9319.547", Refused)),
        Some((Verdict::NotReady, codes::SFB_CU_MISSING.into()))
    );
    assert_eq!(
        code(with("6.0.9319.547", Accepted)),
        Some((
            Verdict::AtRisk,
            codes::SFB_CU_MISSING_BEFORE_TLS_CUTOFF.into()
        ))
    );
    assert_eq!(code(with("17.0.2046.123", Refused)), None);
    assert_eq!(
        code(with("7.0.2046.122", Refused)),
        Some((Verdict::NotReady, codes::SFB_CU_MISSING.into()))
    );
    let mut custom = report([Accepted, Accepted, Refused, Refused], None);
    custom.role = EndpointRole::Custom;
    custom.sfb_version = Some("6.0.1.1".into());
    assert_eq!(sfb_cumulative_update(&custom), Outcome::NotApplicable);
}

#[test]
fn an_sfb_version_outside_the_guidance_is_unknown_never_ready() {
    for (version, why) in [
        ("5.0.8308.1091", "major version 5"),
        ("4.0.7577.0", "major version 4"),
        ("18.0.1.1", "major version 18"),
        ("six", "not a version"),
    ] {
        let mut e = report([Accepted, Accepted, Accepted, Accepted], Some(0xC030));
        e.sfb_version = Some(version.into());
        let outcome = sfb_cumulative_update(&e);
        assert!(
            matches!(&outcome, Outcome::Flag(Verdict::Unknown, f) if f.code == codes::SFB_VERSION_NOT_COVERED && f.evidence.contains(why)),
            "{version}: {outcome:?}"
        );
    }
}

#[test]
fn the_suite_rule_asks_the_server_not_the_negotiation() {
    for ok in OFFICE365_TLS12_SUITES.iter().chain(&AFD_TLS12_SUITES) {
        assert!(codes_of(&report([Refused, Accepted, Refused, Refused], Some(*ok))).is_empty());
    }
    for risky in [0xCCA8, 0xC02B, 0x003D, 0x000A] {
        let e = report([Refused, Accepted, Refused, Refused], Some(risky));
        assert_eq!(
            codes_of(&e),
            [(
                Verdict::AtRisk,
                codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS.to_string()
            )],
            "{risky:04X}"
        );
        let finding = finding_of(suite_in_m365_lists(&e));
        assert!(
            finding
                .evidence
                .contains("C030 C02F C028 C027 C014 C013 009D 009C 009F 009E"),
            "{finding:?}"
        );
        assert!(
            finding.evidence.contains(&format!("{risky:04X}")),
            "preference shown"
        );
    }
    // It prefers CHACHA20 but accepts C030 when asked: no risk.
    let mut prefers_chacha = report([Refused, Accepted, Refused, Refused], Some(0xCCA8));
    if let Some(suites) = &mut prefers_chacha.tls12_suites {
        suites.microsoft = Some(SuiteProbe {
            outcome: Accepted,
            suite: Some(CipherSuite::from_code(0xC030)),
            detail: None,
        });
    }
    assert!(codes_of(&prefers_chacha).is_empty());
    // No answer to the question: unknown, not a guess either way.
    let mut silent = prefers_chacha;
    if let Some(suites) = &mut silent.tls12_suites {
        suites.microsoft = Some(SuiteProbe {
            outcome: NoAnswer,
            suite: None,
            detail: None,
        });
    }
    assert_eq!(
        codes_of(&silent),
        [(Verdict::Unknown, codes::ENDPOINT_SUITES_UNKNOWN.to_string())]
    );
}

#[test]
fn certificate_boundaries() {
    let mut e = report([Accepted, Accepted, Refused, Refused], Some(0xC02F));
    let check = |valid, days| CertificateCheck {
        valid,
        error: (!valid).then(|| "expired on 2020-01-01".to_string()),
        not_after: None,
        days_left: Some(days),
        version: Some(TlsVersion::Tls12),
    };
    e.certificate = Some(check(true, 14));
    assert!(codes_of(&e).is_empty());
    e.certificate = Some(check(true, 13));
    assert_eq!(
        codes_of(&e),
        [(Verdict::AtRisk, codes::ENDPOINT_CERT_EXPIRING.to_string())]
    );
    e.certificate = Some(check(false, -1));
    assert_eq!(
        codes_of(&e),
        [(Verdict::NotReady, codes::ENDPOINT_CERT_INVALID.to_string())]
    );
    let finding = finding_of(certificate_valid(&e));
    assert!(
        finding.title.ends_with("expired on 2020-01-01"),
        "{finding:?}"
    );
    assert!(
        finding.evidence.contains("read from the TLS 1.2 handshake"),
        "{finding:?}"
    );
}

#[test]
fn an_accepting_endpoint_without_a_certificate_is_unknown() {
    let mut e = report([Refused, Accepted, Refused, Refused], Some(0xC030));
    e.certificate = None;
    e.certificate_unavailable = Some("TLS 1.2: the server sent no certificate with X".into());
    assert_eq!(
        codes_of(&e),
        [(
            Verdict::Unknown,
            codes::ENDPOINT_CERT_UNAVAILABLE.to_string()
        )]
    );
    assert!(
        finding_of(certificate_valid(&e))
            .evidence
            .contains("sent no certificate")
    );
    // Nothing accepted: nothing to say about a certificate.
    let refused = report([Refused; 4], None);
    assert_eq!(certificate_valid(&refused), Outcome::NotApplicable);
}

#[test]
fn a_client_certificate_requirement_is_said_without_changing_the_verdict() {
    let mut e = report([Accepted, Accepted, Refused, Refused], Some(0xC030));
    e.client_certificate_required = true;
    assert!(codes_of(&e).is_empty(), "information only");
    let Outcome::Note(finding) = client_certificate(&e) else {
        panic!("a note");
    };
    assert_eq!(finding.code, codes::ENDPOINT_CLIENT_CERT_REQUIRED);
    assert_eq!(finding.severity, Severity::Info);
    assert!(finding.evidence.contains("TLS 1.3, TLS 1.2"), "{finding:?}");
}
