//! Rules over what the probed endpoints accepted on the wire. They apply to every device kind:
//! the question is whether the path from this device to that endpoint works with TLS 1.2.

use roomready_protocol::suites::MICROSOFT_TLS12_SUITES;
use roomready_protocol::{
    AppVersion, EndpointReport, EndpointRole, Finding, ProbeOutcome, Severity, TlsVersion, Verdict,
    codes,
};

use super::Outcome;
use crate::probe::endpoint::is_ip_address;

/// A certificate this close to expiry is a risk.
pub(super) const CERT_EXPIRY_WARNING_DAYS: i64 = 14;

/// Alert `protocol_version`: the server refuses the version itself.
const ALERT_PROTOCOL_VERSION: u8 = 70;
/// Alert `unrecognized_name`: the server does not serve the name asked for (or needs one).
const ALERT_UNRECOGNIZED_NAME: u8 = 112;

const REF: &str = super::rules::REF_TLS12_M365;

/// Every endpoint rule, in the order their findings are listed.
pub static ENDPOINT_RULES: &[fn(&EndpointReport) -> Outcome] = &[
    tls12_or_13_accepted,
    sfb_cumulative_update,
    suite_in_m365_lists,
    certificate_valid,
    client_certificate,
];

/// Skype for Business Server 2015 CU9 (May 2019).
pub(super) const SFB2015_CU9: AppVersion = AppVersion::new(6, 0, 9319, 548);
/// Skype for Business Server 2019 CU1 (June 2019), as given in the reference facts.
pub(super) const SFB2019_CU1: AppVersion = AppVersion::new(17, 0, 2046, 123);

/// An on-premises Skype for Business pool needs 2015 CU9 / 2019 CU1 before TLS 1.0/1.1 goes.
fn sfb_cumulative_update(e: &EndpointReport) -> Outcome {
    if e.role != EndpointRole::OnpremSfb {
        return Outcome::NotApplicable;
    }
    let Some(text) = &e.sfb_version else {
        return Outcome::NotApplicable;
    };
    let not_covered = |why: String| {
        flag(
            Verdict::Unknown,
            Severity::Warning,
            codes::SFB_VERSION_NOT_COVERED,
            format!(
                "{} states Skype for Business Server version {text}, not covered by Microsoft's guidance",
                name(e)
            ),
            format!("server version {text} (stated): {why}"),
            "Microsoft's TLS 1.2 guidance covers Skype for Business Server 2015 (6.0.x, CU9 = \
             6.0.9319.548) and 2019 (7.0.x / 17.0.x, CU1 = build 2046.123). Check the version; \
             move an older server (Lync Server 2013 is 5.0.x) to a covered release before TLS \
             1.0/1.1 is turned off."
                .into(),
        )
    };
    let version = match text.parse::<AppVersion>() {
        Ok(version) => version,
        Err(e) => return not_covered(format!("not a version ({e})")),
    };
    let [major, ..] = version.fields();
    let (cu, cu_name) = match major {
        6 => (SFB2015_CU9, "Skype for Business Server 2015 CU9"),
        7 | 17 => (SFB2019_CU1, "Skype for Business Server 2019 CU1"),
        _ => {
            return not_covered(format!(
                "major version {major} is neither 2015 (6) nor 2019 (7 or 17)"
            ));
        }
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
    let legacy_accepted = e.accepted(TlsVersion::Tls10) || e.accepted(TlsVersion::Tls11);
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
    if e.host.contains(':') {
        format!("[{}]:{}", e.host, e.port)
    } else {
        format!("{}:{}", e.host, e.port)
    }
}

fn finding(
    severity: Severity,
    code: &str,
    title: String,
    evidence: String,
    remediation: String,
) -> Finding {
    Finding {
        code: code.into(),
        severity,
        title,
        evidence,
        remediation,
        reference: REF.into(),
    }
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
        finding(severity, code, title, evidence, remediation),
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
    if modern.iter().any(|&v| e.accepted(v)) {
        return Outcome::Pass;
    }
    let results: Vec<_> = modern.iter().filter_map(|&v| e.version(v)).collect();
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
    if let Some(outcome) = name_problem(e, &results, &evidence) {
        return outcome;
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

/// A refusal that may be about the server name rather than the version: the server said it does
/// not know the name (`unrecognized_name`), or it was probed by address, without SNI, and
/// nothing shows that it refuses the version itself (a `protocol_version` alert, a downgrade, a
/// non-TLS answer, or another version accepted without a name).
fn name_problem(
    e: &EndpointReport,
    modern: &[&roomready_protocol::VersionProbe],
    evidence: &str,
) -> Option<Outcome> {
    let unrecognized = modern
        .iter()
        .any(|p| p.alert == Some(ALERT_UNRECOGNIZED_NAME));
    let version_refused = modern.iter().any(|p| {
        matches!(p.outcome, ProbeOutcome::Downgraded | ProbeOutcome::NotTls)
            || p.alert == Some(ALERT_PROTOCOL_VERSION)
    }) || e.accepted(TlsVersion::Tls11)
        || e.accepted(TlsVersion::Tls10);
    let by_address = is_ip_address(&e.host);
    let (title, evidence) = if unrecognized {
        (
            format!(
                "{} does not serve the name {} (unrecognized_name); its TLS 1.2 support is unknown",
                name(e),
                e.host
            ),
            evidence.to_owned(),
        )
    } else if by_address && !version_refused {
        (
            format!(
                "{} refused TLS 1.2 and 1.3 when asked without a server name; its TLS 1.2 support is unknown",
                name(e)
            ),
            format!("probed by IP address, so no SNI was sent; {evidence}"),
        )
    } else {
        return None;
    };
    Some(flag(
        Verdict::Unknown,
        Severity::Warning,
        codes::ENDPOINT_NEEDS_SERVER_NAME,
        title,
        evidence,
        "Probe the endpoint by the DNS name its clients use (--endpoint NAME:PORT); to reach it at a \
         given address, name the address with --resolve NAME:PORT:ADDRESS (config key resolve)."
            .into(),
    ))
}

/// The endpoint must accept at least one TLS 1.2 suite on Microsoft's lists, asked directly.
fn suite_in_m365_lists(e: &EndpointReport) -> Outcome {
    let Some(suites) = &e.tls12_suites else {
        return Outcome::NotApplicable;
    };
    let preferred = suites
        .preferred
        .as_ref()
        .map_or_else(|| "not known".to_owned(), ToString::to_string);
    let offered = MICROSOFT_TLS12_SUITES
        .iter()
        .map(|c| format!("{c:04X}"))
        .collect::<Vec<_>>()
        .join(" ");
    let Some(answer) = &suites.microsoft else {
        return suites_unknown(e, "it was not asked".into(), &preferred);
    };
    match answer.outcome {
        ProbeOutcome::Accepted => Outcome::Pass,
        ProbeOutcome::Refused
        | ProbeOutcome::Downgraded
        | ProbeOutcome::Closed
        | ProbeOutcome::ConnectionReset => flag(
            Verdict::AtRisk,
            Severity::Warning,
            codes::ENDPOINT_SUITE_NOT_IN_M365_LISTS,
            format!(
                "{} accepts TLS 1.2 but no suite on the Office 365 / Azure Front Door lists",
                name(e)
            ),
            format!(
                "a TLS 1.2 hello offering exactly {offered}: {}{}; the server's own choice from every suite: {preferred}",
                answer.outcome,
                answer
                    .detail
                    .as_ref()
                    .map_or_else(String::new, |d| format!(", {d}"))
            ),
            "Enable ECDHE_RSA_AES_256_GCM_SHA384 (C030) or ECDHE_RSA_AES_128_GCM_SHA256 (C02F): suites on the Office 365 and Azure Front Door lists.".into(),
        ),
        other => suites_unknown(
            e,
            format!(
                "the hello offering exactly {offered}: {other}{}",
                answer
                    .detail
                    .as_ref()
                    .map_or_else(String::new, |d| format!(", {d}"))
            ),
            &preferred,
        ),
    }
}

fn suites_unknown(e: &EndpointReport, why: String, preferred: &str) -> Outcome {
    flag(
        Verdict::Unknown,
        Severity::Warning,
        codes::ENDPOINT_SUITES_UNKNOWN,
        format!(
            "Whether {} accepts a suite on Microsoft's TLS 1.2 lists is unknown",
            name(e)
        ),
        format!("{why}; the server's own choice from every suite: {preferred}"),
        "Check again; if it persists, check the endpoint's TLS 1.2 cipher suites against the Office 365 and Azure Front Door lists.".into(),
    )
}

/// Every accepting endpoint must show a certificate that verifies and does not expire within 14
/// days.
fn certificate_valid(e: &EndpointReport) -> Outcome {
    let Some(cert) = &e.certificate else {
        if !TlsVersion::ALL.iter().any(|&v| e.accepted(v)) {
            return Outcome::NotApplicable;
        }
        return flag(
            Verdict::Unknown,
            Severity::Warning,
            codes::ENDPOINT_CERT_UNAVAILABLE,
            format!("{}'s certificate could not be checked", name(e)),
            e.certificate_unavailable
                .clone()
                .unwrap_or_else(|| "no handshake showed a certificate".into()),
            "Check that the endpoint presents a certificate with the suites it accepts (no anonymous suites).".into(),
        );
    };
    let read_from = cert
        .version
        .map_or_else(String::new, |v| format!(" (read from the {v} handshake)"));
    if !cert.valid {
        let error = cert.error.as_deref().unwrap_or("does not verify");
        return flag(
            Verdict::NotReady,
            Severity::Critical,
            codes::ENDPOINT_CERT_INVALID,
            format!("{}'s certificate is not valid: {error}", name(e)),
            format!("certificate{read_from}: {error}"),
            "Install a certificate that is valid for this name, chains to a trusted root and has a strong key (RSA 2048 bits or more, or ECDSA) and a SHA-2 signature."
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
                "certificate{read_from} valid until {}",
                cert.not_after.map_or_else(|| "?".into(), |t| t.to_string())
            ),
            "Renew the certificate before it expires.".into(),
        ),
        _ => Outcome::Pass,
    }
}

/// A server that asks for a client certificate is worth knowing about (information only: its
/// versions and certificate were checked all the same).
fn client_certificate(e: &EndpointReport) -> Outcome {
    if !e.client_certificate_required {
        return Outcome::NotApplicable;
    }
    let accepted: Vec<&str> = TlsVersion::ALL
        .iter()
        .rev()
        .filter(|&&v| e.accepted(v))
        .map(|v| v.name())
        .collect();
    Outcome::Note(finding(
        Severity::Info,
        codes::ENDPOINT_CLIENT_CERT_REQUIRED,
        format!("{} requires a client certificate", name(e)),
        format!(
            "it asked for a client certificate during the handshake; accepted: {}",
            if accepted.is_empty() {
                "none".into()
            } else {
                accepted.join(", ")
            }
        ),
        "Devices that connect to it need a client certificate it trusts; the probe, which has none, checked its versions and certificate up to that point.".into(),
    ))
}

#[cfg(test)]
mod tests;
