//! Rules over what the probed endpoints accepted on the wire. They apply to every device kind:
//! the question is whether the path from this device to that endpoint works with TLS 1.2.

use roomready_protocol::{
    AppVersion, EndpointReport, EndpointRole, Finding, ProbeOutcome, Severity, TlsVersion, Verdict,
    codes,
};

use super::Outcome;

/// Office 365 TLS 1.2 suites, strongest first.
pub const OFFICE365_TLS12_SUITES: [u16; 8] = [
    0xC030, 0xC02F, 0xC028, 0xC027, 0xC014, 0xC013, 0x009D, 0x009C,
];
/// Azure Front Door TLS 1.2 suites.
pub const AFD_TLS12_SUITES: [u16; 6] = [0xC030, 0xC02F, 0xC028, 0xC027, 0x009F, 0x009E];
/// A certificate this close to expiry is a risk.
pub const CERT_EXPIRY_WARNING_DAYS: i64 = 14;

const REF: &str = super::rules::REF_TLS12_M365;

/// Every endpoint rule, in the order their findings are listed.
pub static ENDPOINT_RULES: &[fn(&EndpointReport) -> Outcome] = &[
    tls12_or_13_accepted,
    sfb_cumulative_update,
    suite_in_m365_lists,
    certificate_valid,
];

/// Skype for Business Server 2015 CU9 (May 2019).
pub const SFB2015_CU9: AppVersion = AppVersion::new(6, 0, 9319, 548);
/// Skype for Business Server 2019 CU1 (June 2019), as given in the reference facts.
pub const SFB2019_CU1: AppVersion = AppVersion::new(17, 0, 2046, 123);

/// An on-premises Skype for Business pool needs 2015 CU9 / 2019 CU1 before TLS 1.0/1.1 goes.
fn sfb_cumulative_update(e: &EndpointReport) -> Outcome {
    if e.role != EndpointRole::OnpremSfb {
        return Outcome::NotApplicable;
    }
    let Some(text) = &e.sfb_version else {
        return Outcome::NotApplicable;
    };
    let Ok(version) = text.parse::<AppVersion>() else {
        return Outcome::NotApplicable;
    };
    let [major, ..] = version.fields();
    let (cu, cu_name) = match major {
        6 => (SFB2015_CU9, "Skype for Business Server 2015 CU9"),
        7 | 17 => (SFB2019_CU1, "Skype for Business Server 2019 CU1"),
        _ => return Outcome::NotApplicable,
    };
    // 2019 builds are compared on their build and revision (the reference gives 17.0.2046.123;
    // 2019 servers also report 7.0.x), so the major's spelling does not decide.
    let below = if major == 6 {
        version < cu
    } else {
        version.fields()[2..] < cu.fields()[2..]
    };
    if !below {
        return Outcome::Pass;
    }
    let legacy_accepted = [TlsVersion::Tls10, TlsVersion::Tls11].iter().any(|&v| {
        e.version(v)
            .is_some_and(|p| p.outcome == ProbeOutcome::Accepted)
    });
    let evidence = format!(
        "server version {version} (stated); {}; {}",
        describe(e, TlsVersion::Tls11),
        describe(e, TlsVersion::Tls10)
    );
    if legacy_accepted {
        flag(
            Verdict::AtRisk,
            Severity::Warning,
            codes::SFB_CU_MISSING_BEFORE_TLS_CUTOFF,
            format!(
                "{} runs {version}, below {cu_name}: install the CU before disabling TLS 1.0/1.1",
                name(e)
            ),
            evidence,
            format!("Install {cu_name} ({cu}) or later before TLS 1.0/1.1 is disabled."),
        )
    } else {
        flag(
            Verdict::NotReady,
            Severity::Critical,
            codes::SFB_CU_MISSING,
            format!(
                "{} runs {version}, below {cu_name}, with TLS 1.0/1.1 already refused",
                name(e)
            ),
            evidence,
            format!(
                "Install {cu_name} ({cu}) or later; TLS 1.2 for Teams Rooms and Surface Hub needs it."
            ),
        )
    }
}

fn name(e: &EndpointReport) -> String {
    format!("{}:{}", e.host, e.port)
}

fn flag(
    verdict: Verdict,
    severity: Severity,
    code: &str,
    title: String,
    evidence: String,
    remediation: String,
) -> Outcome {
    Outcome::Flag(
        verdict,
        Finding {
            code: code.into(),
            severity,
            title,
            evidence,
            remediation,
            reference: REF.into(),
        },
    )
}

fn describe(e: &EndpointReport, version: TlsVersion) -> String {
    match e.version(version) {
        Some(p) => match &p.detail {
            Some(d) => format!("{version}: {}, {d}", p.outcome),
            None => format!("{version}: {}", p.outcome),
        },
        None => format!("{version}: not probed"),
    }
}

/// The endpoint must accept TLS 1.2 or TLS 1.3.
fn tls12_or_13_accepted(e: &EndpointReport) -> Outcome {
    let modern = [TlsVersion::Tls13, TlsVersion::Tls12];
    let results: Vec<_> = modern.iter().filter_map(|&v| e.version(v)).collect();
    if results.iter().any(|p| p.outcome == ProbeOutcome::Accepted) {
        return Outcome::Pass;
    }
    let evidence = modern.map(|v| describe(e, v)).join("; ");
    // An answer that refuses (alert, downgrade, not TLS) is certain; no answer is not.
    let answered = results.iter().any(|p| {
        matches!(
            p.outcome,
            ProbeOutcome::Refused | ProbeOutcome::Downgraded | ProbeOutcome::NotTls
        )
    });
    if !answered {
        return flag(
            Verdict::Unknown,
            Severity::Warning,
            codes::ENDPOINT_UNREACHABLE,
            format!("{} could not be reached; its TLS 1.2 support is unknown", name(e)),
            evidence,
            "Check name resolution, routing and the firewall (outbound TCP to the endpoint's port).".into(),
        );
    }
    let remediation = match e.role {
        EndpointRole::OnpremSfb => {
            "Install Skype for Business Server 2015 CU9 (6.0.9319.548) or 2019 CU1 (17.0.2046.123) and enable TLS 1.2 on the pool before TLS 1.0/1.1 is turned off."
        }
        EndpointRole::Adfs => {
            "Enable TLS 1.2 inbound and outbound on the AD FS servers and proxies (SCHANNEL, .NET)."
        }
        EndpointRole::Microsoft365 => {
            "Microsoft 365 accepts TLS 1.2: something on the path (proxy, TLS inspection) does not. Allow TLS 1.2 end to end."
        }
        EndpointRole::Custom => "Enable TLS 1.2 (or 1.3) on this endpoint.",
    };
    flag(
        Verdict::NotReady,
        Severity::Critical,
        codes::ENDPOINT_NO_TLS12,
        format!("{} accepts neither TLS 1.2 nor TLS 1.3", name(e)),
        evidence,
        remediation.into(),
    )
}

/// A negotiated TLS 1.2 suite should be one Office 365 or Azure Front Door accepts.
fn suite_in_m365_lists(e: &EndpointReport) -> Outcome {
    let Some(suite) = e
        .version(TlsVersion::Tls12)
        .filter(|p| p.outcome == ProbeOutcome::Accepted)
        .and_then(|p| p.suite.as_ref())
    else {
        return Outcome::NotApplicable;
    };
    match suite.value() {
        Some(code) if OFFICE365_TLS12_SUITES.contains(&code) || AFD_TLS12_SUITES.contains(&code) => {
            Outcome::Pass
        }
        _ => flag(
            Verdict::AtRisk,
            Severity::Warning,
            codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS,
            format!("{} negotiated TLS 1.2 suite {suite}, outside the Office 365 / Azure Front Door lists", name(e)),
            format!("TLS 1.2 suite {suite}"),
            "Prefer ECDHE_RSA_AES_256_GCM_SHA384 (C030) or ECDHE_RSA_AES_128_GCM_SHA256 (C02F): suites on the Office 365 and Azure Front Door lists.".into(),
        ),
    }
}

/// The certificate must verify and not expire within 14 days.
fn certificate_valid(e: &EndpointReport) -> Outcome {
    let Some(cert) = &e.certificate else {
        return Outcome::NotApplicable;
    };
    if !cert.valid {
        let error = cert.error.as_deref().unwrap_or("does not verify");
        return flag(
            Verdict::NotReady,
            Severity::Critical,
            codes::ENDPOINT_CERT_INVALID,
            format!("{}'s certificate is not valid", name(e)),
            format!("certificate: {error}"),
            "Install a certificate that is valid for this name and chains to a trusted root."
                .into(),
        );
    }
    match cert.days_left {
        Some(days) if days < CERT_EXPIRY_WARNING_DAYS => flag(
            Verdict::AtRisk,
            Severity::Warning,
            codes::ENDPOINT_CERT_EXPIRING,
            format!("{}'s certificate expires in {days} days", name(e)),
            format!(
                "certificate valid until {}",
                cert.not_after.map_or_else(|| "?".into(), |t| t.to_string())
            ),
            "Renew the certificate before it expires.".into(),
        ),
        _ => Outcome::Pass,
    }
}

#[cfg(test)]
mod tests {
    use roomready_protocol::{CertificateCheck, CipherSuite, VersionProbe};

    use super::*;

    fn report(outcomes: [ProbeOutcome; 4], suite: Option<u16>) -> EndpointReport {
        let versions = [
            TlsVersion::Tls13,
            TlsVersion::Tls12,
            TlsVersion::Tls11,
            TlsVersion::Tls10,
        ];
        EndpointReport {
            host: "pool.example".into(),
            port: 443,
            role: EndpointRole::OnpremSfb,
            sfb_version: None,
            address: Some("192.0.2.1:443".into()),
            versions: versions
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
                })
                .collect(),
            certificate: None,
        }
    }

    fn codes_of(e: &EndpointReport) -> Vec<(Verdict, String)> {
        ENDPOINT_RULES
            .iter()
            .filter_map(|rule| match rule(e) {
                Outcome::Flag(v, f) => Some((v, f.code)),
                _ => None,
            })
            .collect()
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
        let finding = match tls12_or_13_accepted(&none) {
            Outcome::Flag(_, f) => f,
            other => panic!("{other:?}"),
        };
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
    fn suites_outside_the_lists_are_a_risk() {
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
        }
    }

    #[test]
    fn certificate_boundaries() {
        let mut e = report([Accepted, Accepted, Refused, Refused], Some(0xC02F));
        let check = |valid, days| CertificateCheck {
            valid,
            error: (!valid).then(|| "certificate expired".to_string()),
            not_after: None,
            days_left: Some(days),
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
    }
}
