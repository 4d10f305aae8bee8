//! The evidence rules: what Schannel recorded ([`crate::facts::schannel`]) weighed after the
//! prediction. [`super::assess_device`] applies them last, so a state keeps the verdict of the
//! prediction alone (`observed.predicted`) beside the verdict with the evidence.
//!
//! - `OBSERVED_LEGACY_TLS` (warning, at_risk): SSL or TLS 1.0/1.1 was negotiated in the window,
//!   with the targets and counts.
//! - `SCHANNEL_EVENT_LOGGING_OFF` (info): Schannel does not log successful handshakes, so there
//!   is no evidence; the registry value that turns it on and its cost.
//! - `SCHANNEL_EVENTS_UNREADABLE` (info): the events, or some of them, could not be read.
//! - `OBSERVED_HANDSHAKE_FAILURES` (info): failed handshakes in the window, by alert.

use roomready_protocol::tls::alert_name;
use roomready_protocol::{Finding, Severity, Verdict, codes};

use super::Outcome;
use super::rules::{REF_SCHANNEL, REF_TLS12_M365};
use crate::facts::schannel::{
    EVENT_ALERT_RECEIVED, EVENT_ALERT_SENT, EVENT_HANDSHAKE, EVENT_NO_COMMON_SUITE, Observations,
};
use crate::facts::tls::{SCHANNEL, event_logging_bits};
use crate::facts::{Fact, Facts};

/// Schannel event logging ("How to enable Schannel event logging in IIS").
pub(crate) const REF_SCHANNEL_LOGGING: &str = "https://learn.microsoft.com/troubleshoot/developer/webapps/iis/health-diagnostic-performance/enable-schannel-event-logging";

/// At most this many targets are named in a finding's evidence (the state has them all).
const TARGETS_NAMED: usize = 5;

/// Whether Schannel logs successful handshakes, from the registry: `Some(false)` when
/// `EventLogging` lacks bit 0x4 (absent means Windows' default, errors only), `None` when the
/// registry could not be read.
pub(crate) fn success_logging(facts: &Facts) -> Option<bool> {
    match &facts.tls {
        Fact::Known { value, .. } => match &value.event_logging {
            Fact::Known { value, .. } => Some(value & event_logging_bits::SUCCESS != 0),
            Fact::Absent { .. } => Some(false),
            Fact::Unreadable { .. } => None,
        },
        _ => None,
    }
}

/// Every evidence outcome for `facts` (Windows kinds; nothing when no evidence was looked for).
pub(crate) fn outcomes(facts: &Facts) -> Vec<Outcome> {
    let mut out = Vec::new();
    let observations = match &facts.observed {
        Fact::Known { value, .. } => value,
        Fact::Absent { .. } => return out,
        Fact::Unreadable { source, reason } => {
            out.push(Outcome::Note(unreadable(format!("{source}: {reason}"))));
            if let Some(off) = logging_off(facts, None) {
                out.push(off);
            }
            return out;
        }
    };
    if observations.malformed > 0 {
        out.push(Outcome::Note(unreadable(format!(
            "{} Schannel event(s) in {} could not be read; the first: {}",
            observations.malformed,
            observations.label,
            observations.problem.as_deref().unwrap_or("no detail")
        ))));
    } else if let Some(problem) = &observations.problem {
        out.push(Outcome::Note(unreadable(format!(
            "{}: {problem}",
            observations.label
        ))));
    }
    if let Some(legacy) = legacy(observations) {
        out.push(legacy);
    }
    if let Some(off) = logging_off(facts, Some(observations)) {
        out.push(off);
    }
    if let Some(failures) = failures(observations) {
        out.push(failures);
    }
    out
}

fn unreadable(evidence: String) -> Finding {
    Finding {
        code: codes::SCHANNEL_EVENTS_UNREADABLE.into(),
        severity: Severity::Info,
        title: "Schannel events could not be read (wholly or in part); the evidence of what \
                this device negotiated is incomplete"
            .into(),
        evidence,
        remediation: "Fix what the evidence names (an export cut short or edited, or the Event \
                      Log API refusing the query); the prediction is unaffected."
            .into(),
        reference: REF_SCHANNEL_LOGGING.into(),
    }
}

fn window(o: &Observations) -> String {
    match (o.since, o.until) {
        (Some(since), Some(until)) => format!(
            "{} to {}{}",
            since.to_rfc3339_secs(),
            until.to_rfc3339_secs(),
            if o.truncated {
                format!(
                    " (the newest {} events of the last {} days)",
                    o.events, o.window_days
                )
            } else {
                String::new()
            }
        ),
        _ => format!("the last {} days", o.window_days),
    }
}

fn legacy(o: &Observations) -> Option<Outcome> {
    let rows: Vec<_> = o.legacy().collect();
    if rows.is_empty() {
        return None;
    }
    let total: u64 = rows.iter().map(|h| h.count).sum();
    let mut protocols: Vec<_> = rows.iter().map(|h| h.protocol).collect();
    protocols.sort();
    protocols.dedup();
    let names = protocols
        .iter()
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join("/");
    let mut named: Vec<String> = rows
        .iter()
        .take(TARGETS_NAMED)
        .map(|h| {
            format!(
                "{} ×{} to {} (last {})",
                h.protocol,
                h.count,
                h.target
                    .as_ref()
                    .map_or("an unnamed target", |t| t.as_str()),
                h.last.to_rfc3339_secs()
            )
        })
        .collect();
    if rows.len() > TARGETS_NAMED {
        named.push(format!("and {} more", rows.len() - TARGETS_NAMED));
    }
    Some(Outcome::Flag(
        Verdict::AtRisk,
        Finding {
            code: codes::OBSERVED_LEGACY_TLS.into(),
            severity: Severity::Warning,
            title: format!(
                "This device negotiated {names} {total} time(s) recently: something on it still \
                 talks legacy TLS"
            ),
            evidence: format!(
                "{}; Schannel event {EVENT_HANDSHAKE} from {}, {}",
                named.join(", "),
                o.label,
                window(o)
            ),
            remediation: "Find the component that makes these connections (the targets name the \
                          servers: an on-premises Skype for Business pool needs 2015 CU9 or 2019 \
                          CU1, an AD FS server or proxy must offer TLS 1.2, an app may pin TLS \
                          1.0) and move it to TLS 1.2; Microsoft 365 refuses TLS 1.0 and 1.1. Only \
                          then turn the TLS 1.0/1.1 client off in SCHANNEL."
                .into(),
            reference: REF_TLS12_M365.into(),
        },
    ))
}

/// The info finding when Schannel logs no successful handshakes and none was seen.
fn logging_off(facts: &Facts, observations: Option<&Observations>) -> Option<Outcome> {
    if observations.is_some_and(|o| !o.handshakes.is_empty()) {
        return None;
    }
    if success_logging(facts) != Some(false) {
        return None;
    }
    let current = match &facts.tls {
        Fact::Known { value, .. } => match &value.event_logging {
            Fact::Known { value: v, source } => format!("EventLogging = {v:#x} ({source})"),
            other => format!(
                "EventLogging absent ({}): Windows' default, 0x1, logs errors only",
                other.source()
            ),
        },
        _ => return None,
    };
    Some(Outcome::Note(Finding {
        code: codes::SCHANNEL_EVENT_LOGGING_OFF.into(),
        severity: Severity::Info,
        title: "Schannel does not log successful handshakes: there is no evidence of which TLS \
                versions this device negotiates"
            .into(),
        evidence: format!(
            "{current}; successful handshakes (event {EVENT_HANDSHAKE}) are logged only with bit \
             {:#x}",
            event_logging_bits::SUCCESS
        ),
        remediation: format!(
            "To collect the evidence, set {SCHANNEL}\\EventLogging (REG_DWORD) to 7 (errors, \
             warnings and successful handshakes) and restart. Cost: one System log event for \
             every TLS handshake Schannel makes, which can roll older events out of the System \
             log; enlarge it (wevtutil sl System /ms:BYTES) or set EventLogging back to 1 once \
             the evidence is collected."
        ),
        reference: REF_SCHANNEL_LOGGING.into(),
    }))
}

fn failures(o: &Observations) -> Option<Outcome> {
    if o.failures.is_empty() {
        return None;
    }
    let total: u64 = o.failures.iter().map(|f| f.count).sum();
    let mut parts: Vec<String> = o
        .failures
        .iter()
        .take(TARGETS_NAMED)
        .map(|f| {
            let what = match (f.event, f.alert) {
                (EVENT_ALERT_RECEIVED, Some(a)) => {
                    format!("alert {a} ({}) received", alert_name(a))
                }
                (EVENT_ALERT_SENT, Some(a)) => format!("alert {a} ({}) sent", alert_name(a)),
                (EVENT_NO_COMMON_SUITE, _) => format!(
                    "no common cipher suite{}",
                    f.protocol.map(|p| format!(" ({p})")).unwrap_or_default()
                ),
                (event, _) => format!("event {event}"),
            };
            let target = f
                .target
                .as_ref()
                .map(|t| format!(" to {t}"))
                .unwrap_or_default();
            format!(
                "{what}{target} ×{} (last {})",
                f.count,
                f.last.to_rfc3339_secs()
            )
        })
        .collect();
    if o.failures.len() > TARGETS_NAMED {
        parts.push(format!("and {} more", o.failures.len() - TARGETS_NAMED));
    }
    let version_refused = o.failures.iter().any(|f| f.alert == Some(70));
    Some(Outcome::Note(Finding {
        code: codes::OBSERVED_HANDSHAKE_FAILURES.into(),
        severity: Severity::Info,
        title: format!("{total} TLS handshake(s) failed recently"),
        evidence: format!("{}; from {}, {}", parts.join(", "), o.label, window(o)),
        remediation: if version_refused {
            "Alert 70 (protocol_version) means one side refused the other's TLS version: a \
             server that refuses TLS 1.0/1.1 meeting a client that offers nothing newer, or the \
             reverse. Find the component by its target and time."
                .into()
        } else {
            "Find the component by its target and time; the alert names what the other side \
             objected to."
                .into()
        },
        reference: REF_SCHANNEL.into(),
    }))
}

#[cfg(test)]
mod tests;
