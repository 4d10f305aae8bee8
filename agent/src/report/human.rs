//! The human form of an assessment, as `check` prints it: one heading line with the verdict,
//! then three groups a person reads at a glance — the facts with where each came from, a table
//! of the probed endpoints (one column per TLS version), and the findings, worst first, each
//! with its evidence and what to do. Colour (ANSI) only when asked for, which `check` does only
//! when standard output is a terminal and `NO_COLOR` is not set.

mod observed;

use std::fmt::Write as _;

use roomready_protocol::{
    EndpointReport, Finding, ProbeOutcome, Severity, State, TlsVersion, Verdict,
};

use crate::facts::{Fact, Facts};

/// One line of the facts group: what, its value, where it came from, and for an unreadable
/// fact why (printed on a line of its own: reasons are long).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRow {
    pub label: &'static str,
    pub value: String,
    pub source: String,
    pub reason: Option<String>,
}

/// The facts group of `facts`, in a fixed order.
pub(crate) fn fact_rows(facts: &Facts) -> Vec<FactRow> {
    fn row<T>(label: &'static str, fact: &Fact<T>, show: impl Fn(&T) -> String) -> FactRow {
        let (value, reason) = match fact {
            Fact::Known { value, .. } => (show(value), None),
            Fact::Absent { .. } => ("(absent)".to_owned(), None),
            Fact::Unreadable { reason, .. } => ("(unreadable)".to_owned(), Some(reason.clone())),
        };
        FactRow {
            label,
            value,
            source: fact.source().to_string(),
            reason,
        }
    }
    vec![
        row("kind", &facts.kind, |k| k.as_str().to_owned()),
        row("app version", &facts.app_version, Clone::clone),
        row("os build", &facts.os_build, Clone::clone),
        row("os name", &facts.os_name, Clone::clone),
        row("tls registry", &facts.tls, |_| "read".to_owned()),
    ]
}

/// ANSI styles, or none.
#[derive(Debug, Clone, Copy)]
struct Style {
    colour: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.colour && !text.is_empty() {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }

    fn verdict(self, verdict: Verdict, text: &str) -> String {
        let code = match verdict {
            Verdict::Ready => "1;32",
            Verdict::AtRisk => "1;33",
            Verdict::NotReady => "1;31",
            Verdict::Unknown => "1;35",
        };
        self.paint(code, text)
    }

    fn severity(self, severity: Severity, text: &str) -> String {
        let code = match severity {
            Severity::Info => "36",
            Severity::Warning => "33",
            Severity::Critical => "31",
        };
        self.paint(code, text)
    }

    /// Green where the outcome is what Microsoft 365 wants at that version, yellow where a
    /// legacy version is still accepted, dim where nothing conclusive came back.
    fn outcome(self, version: TlsVersion, outcome: ProbeOutcome, text: &str) -> String {
        let modern = matches!(version, TlsVersion::Tls12 | TlsVersion::Tls13);
        let code = match outcome {
            ProbeOutcome::Accepted if modern => "32",
            ProbeOutcome::Accepted => "33",
            ProbeOutcome::Refused | ProbeOutcome::Downgraded if modern => "31",
            ProbeOutcome::Refused | ProbeOutcome::Downgraded => "32",
            _ => "2",
        };
        self.paint(code, text)
    }
}

/// A verdict as shown: `NOT READY`.
fn shout(verdict: Verdict) -> String {
    verdict.as_str().replace('_', " ").to_uppercase()
}

fn outcome_name(outcome: ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Accepted => "accepted",
        ProbeOutcome::Refused => "refused",
        ProbeOutcome::Downgraded => "downgraded",
        ProbeOutcome::NoAnswer => "no answer",
        ProbeOutcome::ConnectionRefused => "conn refused",
        ProbeOutcome::ConnectionReset => "reset",
        ProbeOutcome::Closed => "closed",
        ProbeOutcome::NotTls => "not TLS",
        ProbeOutcome::DnsFailure => "DNS failure",
        ProbeOutcome::Error => "error",
    }
}

/// Pads `text` (plain) to `width` characters, then styles it, so colour never shifts columns.
fn cell(text: &str, width: usize, style: impl FnOnce(&str) -> String) -> String {
    let pad = width.saturating_sub(text.chars().count());
    format!("{}{}", style(text), " ".repeat(pad))
}

/// The versions in table order, newest first.
const VERSIONS: [TlsVersion; 4] = [
    TlsVersion::Tls13,
    TlsVersion::Tls12,
    TlsVersion::Tls11,
    TlsVersion::Tls10,
];

/// Renders `state` (and, when known, the facts behind it) for a person.
pub fn render(state: &State, facts: &[FactRow], colour: bool) -> String {
    let s = Style { colour };
    let mut out = String::new();
    let verdict = shout(state.verdict);
    let _ = writeln!(
        out,
        "{} {}  {}",
        s.bold("roomready check:"),
        s.bold(state.device.as_str()),
        s.verdict(state.verdict, &verdict)
    );

    let _ = writeln!(out, "\n{}", s.bold("FACTS"));
    let label_width = facts.iter().map(|r| r.label.len()).max().unwrap_or(0);
    let value_width = facts
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0);
    for row in facts {
        let value = cell(&row.value, value_width, |t| t.to_owned());
        let _ = writeln!(
            out,
            "  {:<label_width$}  {value}  {}",
            row.label,
            s.dim(&row.source)
        );
        if let Some(reason) = &row.reason {
            let _ = writeln!(out, "  {:<label_width$}  {}", "", s.paint("33", reason));
        }
    }

    if !state.endpoints.is_empty() {
        let _ = writeln!(out, "\n{}", s.bold("ENDPOINTS"));
        endpoints(&mut out, &state.endpoints, s);
    }

    if let Some(observed) = &state.observed {
        observed::section(&mut out, observed, s);
    }

    let _ = writeln!(out, "\n{}", s.bold("FINDINGS"));
    if state.findings.is_empty() {
        let _ = writeln!(out, "  none");
    }
    let mut findings: Vec<&Finding> = state.findings.iter().collect();
    // Worst first; the stable sort keeps the rules' order within a severity.
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    for finding in findings {
        let severity = finding.severity.as_str();
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            cell(severity, 8, |t| s.severity(finding.severity, t)),
            s.bold(&finding.code),
            finding.title
        );
        for (label, text) in [
            ("evidence", &finding.evidence),
            ("fix", &finding.remediation),
            ("see", &finding.reference),
        ] {
            let _ = writeln!(out, "            {}  {text}", cell(label, 8, |t| s.dim(t)));
        }
    }
    out
}

fn endpoints(out: &mut String, reports: &[EndpointReport], s: Style) {
    let names: Vec<String> = reports
        .iter()
        .map(|e| {
            if e.host.contains(':') {
                format!("[{}]:{}", e.host, e.port)
            } else {
                format!("{}:{}", e.host, e.port)
            }
        })
        .collect();
    let suites: Vec<String> = reports.iter().map(suite).collect();
    let certs: Vec<String> = reports.iter().map(certificate).collect();
    let width = |header: &str, cells: &[String]| {
        cells
            .iter()
            .map(|c| c.chars().count())
            .chain([header.len()])
            .max()
            .unwrap_or(0)
    };
    let name_w = width("endpoint", &names);
    let role_w = width(
        "role",
        &reports
            .iter()
            .map(|e| e.role.as_str().to_owned())
            .collect::<Vec<_>>(),
    );
    let outcome_w = 12;
    let suite_w = width("suite", &suites);
    let mut header = format!("  {:<name_w$}  {:<role_w$}", "endpoint", "role");
    for version in VERSIONS {
        let _ = write!(header, "  {:<outcome_w$}", version.name());
    }
    let _ = write!(header, "  {:<suite_w$}  certificate", "suite");
    let _ = writeln!(out, "{}", s.dim(&header));
    let mut details = Vec::new();
    for (i, report) in reports.iter().enumerate() {
        let mut line = format!("  {:<name_w$}  {:<role_w$}", names[i], report.role.as_str());
        for version in VERSIONS {
            let (text, outcome) = match report.version(version) {
                Some(probe) => {
                    if let Some(detail) = &probe.detail {
                        details.push(format!(
                            "{} {}: {} ({detail})",
                            names[i],
                            version.name(),
                            outcome_name(probe.outcome)
                        ));
                    }
                    (outcome_name(probe.outcome), Some(probe.outcome))
                }
                None => ("-", None),
            };
            let styled = cell(text, outcome_w, |t| match outcome {
                Some(outcome) => s.outcome(version, outcome, t),
                None => t.to_owned(),
            });
            let _ = write!(line, "  {styled}");
        }
        let _ = write!(line, "  {:<suite_w$}  {}", suites[i], certs[i]);
        let _ = writeln!(out, "{}", line.trim_end());
        details.extend(endpoint_notes(&names[i], report));
    }
    for detail in details {
        let _ = writeln!(out, "    {}", s.dim(&detail));
    }
}

/// What the table has no column for: TLS 1.2 suites asked directly, a certificate that could not
/// be checked, a client certificate requirement.
fn endpoint_notes(name: &str, report: &EndpointReport) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(suites) = &report.tls12_suites {
        let preferred = suites
            .preferred
            .as_ref()
            .map_or_else(|| "-".to_owned(), ToString::to_string);
        let microsoft = match &suites.microsoft {
            None => "not asked".to_owned(),
            Some(answer) => match (&answer.suite, &answer.detail) {
                (Some(suite), _) if answer.outcome == ProbeOutcome::Accepted => {
                    format!("accepted ({suite})")
                }
                (_, Some(detail)) => format!("{} ({detail})", outcome_name(answer.outcome)),
                (_, None) => outcome_name(answer.outcome).to_owned(),
            },
        };
        notes.push(format!(
            "{name} TLS 1.2 suites: the server's choice from every suite {preferred}; Microsoft's lists {microsoft}"
        ));
    }
    if let Some(cert) = &report.certificate
        && let Some(version) = cert.version
    {
        notes.push(format!(
            "{name} certificate read from the {version} handshake"
        ));
    }
    if let Some(why) = &report.certificate_unavailable {
        notes.push(format!("{name} certificate not checked: {why}"));
    }
    if report.client_certificate_required {
        notes.push(format!("{name} requires a client certificate"));
    }
    notes
}

/// The negotiated suite: TLS 1.2's when it was accepted (the one the Microsoft lists are
/// about), else TLS 1.3's, else `-`.
fn suite(report: &EndpointReport) -> String {
    [TlsVersion::Tls12, TlsVersion::Tls13]
        .iter()
        .filter_map(|v| report.version(*v))
        .find_map(|p| p.suite.as_ref())
        .map_or_else(|| "-".to_owned(), |suite| suite.to_string())
}

fn certificate(report: &EndpointReport) -> String {
    match &report.certificate {
        None if report.certificate_unavailable.is_some() => "not checked".to_owned(),
        None => "-".to_owned(),
        Some(cert) => match (&cert.error, cert.days_left) {
            (Some(error), _) => format!("invalid: {error}"),
            (None, Some(days)) => format!("valid, {days} days left"),
            (None, None) => "valid".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use roomready_protocol::{
        CertificateCheck, CipherSuite, DeviceFacts, DeviceId, DeviceKind, EndpointRole, SuiteProbe,
        Timestamp, Tls12Suites, VersionProbe,
    };

    use super::*;
    use crate::facts::Source;

    fn state() -> State {
        let probe = |version, outcome, suite: Option<u16>, detail: Option<&str>| VersionProbe {
            version,
            outcome,
            suite: suite.map(CipherSuite::from_code),
            detail: detail.map(str::to_owned),
            handshake_ms: None,
            alert: None,
        };
        State {
            device: DeviceId::new("mtr-1").expect("valid id"),
            seq: 0,
            ts: Timestamp::from_unix_ms(0),
            agent_version: "0.1.0".into(),
            facts: DeviceFacts {
                kind: DeviceKind::TeamsRoomsWindows,
                app_version: Some("4.0.51.0".into()),
                os_build: None,
            },
            verdict: Verdict::NotReady,
            findings: vec![
                Finding {
                    code: "INFO_ONE".into(),
                    severity: Severity::Info,
                    title: "an info".into(),
                    evidence: "e1".into(),
                    remediation: "r1".into(),
                    reference: "https://example.com/1".into(),
                },
                Finding {
                    code: "TLS12_APP_TOO_OLD".into(),
                    severity: Severity::Critical,
                    title: "too old".into(),
                    evidence: "app version 4.0.51.0".into(),
                    remediation: "update".into(),
                    reference: "https://example.com/2".into(),
                },
            ],
            endpoints: vec![EndpointReport {
                versions: vec![
                    probe(
                        TlsVersion::Tls13,
                        ProbeOutcome::Refused,
                        None,
                        Some("alert protocol_version"),
                    ),
                    probe(
                        TlsVersion::Tls12,
                        ProbeOutcome::Accepted,
                        Some(0xC030),
                        None,
                    ),
                    probe(TlsVersion::Tls11, ProbeOutcome::Accepted, None, None),
                    probe(TlsVersion::Tls10, ProbeOutcome::Refused, None, None),
                ],
                certificate: Some(CertificateCheck {
                    valid: true,
                    error: None,
                    not_after: None,
                    days_left: Some(42),
                    version: Some(TlsVersion::Tls12),
                }),
                client_certificate_required: true,
                tls12_suites: Some(Tls12Suites {
                    preferred: Some(CipherSuite::from_code(0xCCA8)),
                    microsoft: Some(SuiteProbe {
                        outcome: ProbeOutcome::Accepted,
                        suite: Some(CipherSuite::from_code(0xC030)),
                        detail: None,
                    }),
                }),
                ..EndpointReport::new(
                    "pool.contoso.com".into(),
                    443,
                    EndpointRole::OnpremSfb,
                    None,
                )
            }],
            placement: Default::default(),
            observed: None,
        }
    }

    fn rows() -> Vec<FactRow> {
        vec![FactRow {
            label: "app version",
            value: "4.0.51.0".into(),
            source: "facts file f.toml, key app_version".into(),
            reason: None,
        }]
    }

    #[test]
    fn plain_output_groups_facts_endpoints_and_findings() {
        let text = render(&state(), &rows(), false);
        assert!(!text.contains('\x1b'), "no colour when not asked: {text}");
        let facts = text.find("FACTS").expect("facts group");
        let endpoints = text.find("ENDPOINTS").expect("endpoints group");
        let findings = text.find("FINDINGS").expect("findings group");
        assert!(facts < endpoints && endpoints < findings, "{text}");
        assert!(
            text.starts_with("roomready check: mtr-1  NOT READY\n"),
            "{text}"
        );
        assert!(
            text.contains("4.0.51.0  facts file f.toml, key app_version"),
            "{text}"
        );
        // The version columns line up under their headers.
        let header = text
            .lines()
            .find(|l| l.contains("TLS 1.3"))
            .expect("header");
        let row = text
            .lines()
            .find(|l| l.contains("pool.contoso.com:443"))
            .expect("row");
        for (name, value) in [("TLS 1.2", "accepted"), ("TLS 1.0", "refused")] {
            let column = header.find(name).expect("column");
            assert_eq!(
                row.get(column..column + value.len()),
                Some(value),
                "{header}\n{row}"
            );
        }
        assert!(
            row.contains("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (0xC030)"),
            "{row}"
        );
        assert!(row.ends_with("valid, 42 days left"), "{row}");
        assert!(
            text.contains("TLS 1.3: refused (alert protocol_version)"),
            "{text}"
        );
        assert!(
            text.contains(
                "pool.contoso.com:443 TLS 1.2 suites: the server's choice from every suite \
                 TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 (0xCCA8); Microsoft's lists accepted \
                 (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 (0xC030))"
            ),
            "{text}"
        );
        assert!(
            text.contains("pool.contoso.com:443 certificate read from the TLS 1.2 handshake"),
            "{text}"
        );
        assert!(
            text.contains("pool.contoso.com:443 requires a client certificate"),
            "{text}"
        );
        // Worst finding first.
        let critical = text.find("TLS12_APP_TOO_OLD").expect("critical");
        let info = text.find("INFO_ONE").expect("info");
        assert!(critical < info, "{text}");
    }

    #[test]
    fn colour_is_added_without_moving_columns() {
        let plain = render(&state(), &rows(), false);
        let coloured = render(&state(), &rows(), true);
        assert!(
            coloured.contains("\x1b[1;31mNOT READY\x1b[0m"),
            "{coloured}"
        );
        let mut stripped = String::new();
        let mut rest = coloured.as_str();
        while let Some(start) = rest.find('\x1b') {
            stripped.push_str(&rest[..start]);
            let end = rest[start..].find('m').expect("escape ends with m");
            rest = &rest[start + end + 1..];
        }
        stripped.push_str(rest);
        assert_eq!(stripped, plain);
    }

    #[test]
    fn fact_rows_say_what_is_missing_and_why() {
        let facts = Facts {
            device_id: None,
            kind: Fact::Known {
                value: DeviceKind::SurfaceHub,
                source: Source::new("registry EditionID"),
            },
            app_version: Fact::Absent {
                source: Source::new("appx"),
            },
            os_build: Fact::Unreadable {
                source: Source::new("registry CurrentBuild"),
                reason: "access denied".into(),
            },
            os_name: Fact::Absent {
                source: Source::new("x"),
            },
            tls: Fact::Absent {
                source: Source::new("y"),
            },
            observed: Fact::Absent {
                source: Source::new("z"),
            },
        };
        let rows = fact_rows(&facts);
        assert_eq!(rows[0].value, "surface_hub");
        assert_eq!(rows[0].source, "registry EditionID");
        assert_eq!(rows[1].value, "(absent)");
        assert_eq!(rows[2].value, "(unreadable)");
        assert_eq!(rows[2].reason.as_deref(), Some("access denied"));
    }
}
