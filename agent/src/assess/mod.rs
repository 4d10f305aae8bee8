//! The readiness rules: pure functions from [`Facts`] to a verdict and findings.
//!
//! Rules are a table ([`RULES`]) a domain expert can read top to bottom: which device kinds a
//! rule applies to, and what it concludes. Each rule returns one [`Outcome`]; the verdict is the
//! worst outcome by [`Verdict::rank`]. A fact a rule needs that is absent, unreadable or
//! unparsable makes that rule `unknown`, never a guess. Sources of the thresholds:
//! `shared/reference/microsoft-tls-facts.md`.

mod endpoints;
mod observed;
pub(crate) mod rules;

use roomready_protocol::{DeviceKind, EndpointReport, Finding, Observed, Severity, Verdict, codes};

use crate::facts::Facts;

pub use endpoints::ENDPOINT_RULES;
pub(crate) use rules::RULES;

/// The result of assessing one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// Schannel's evidence with the verdict of the prediction alone, when evidence was read.
    pub observed: Option<Box<Observed>>,
}

/// What one rule concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The rule does not apply to this device.
    NotApplicable,
    /// The rule applies and is satisfied.
    Pass,
    /// The rule applies and is satisfied, with something worth saying (an info finding).
    Note(Finding),
    /// The rule applies and concludes `verdict` (at_risk, not_ready or unknown) for this reason.
    Flag(Verdict, Finding),
}

/// One readiness rule.
pub(crate) struct Rule {
    /// A short stable name, for logs and tests.
    pub name: &'static str,
    /// The device kinds it applies to.
    pub applies_to: &'static [DeviceKind],
    /// The check itself, only called for applicable kinds.
    pub check: fn(&Facts) -> Outcome,
}

/// Assesses `facts` with every rule of [`RULES`] (no endpoints probed).
pub fn assess(facts: &Facts) -> Assessment {
    assess_with(RULES, facts, &[])
}

/// Assesses `facts` with the device rules and each probed endpoint with [`ENDPOINT_RULES`]:
/// the prediction; then weighs Schannel's evidence, when there is any ([`observed`]), keeping
/// the prediction's verdict beside it.
pub(crate) fn assess_device(facts: &Facts, endpoints: &[EndpointReport]) -> Assessment {
    let mut assessment = assess_with(RULES, facts, endpoints);
    let predicted = assessment.verdict;
    for outcome in observed::outcomes(facts) {
        match outcome {
            Outcome::NotApplicable | Outcome::Pass => {}
            Outcome::Note(finding) => assessment.findings.push(finding),
            Outcome::Flag(verdict, finding) => {
                assessment.verdict = assessment.verdict.worst(verdict);
                assessment.findings.push(finding);
            }
        }
    }
    if let crate::facts::Fact::Known { value, .. } = &facts.observed {
        assessment.observed = Some(Box::new(
            value.to_wire(observed::success_logging(facts), predicted),
        ));
    }
    assessment
}

/// Assesses with the device rules `rules` (a parameter so tests can exercise the combining).
pub(crate) fn assess_with(
    rules: &[Rule],
    facts: &Facts,
    endpoints: &[EndpointReport],
) -> Assessment {
    let kind = facts.kind();
    let mut verdict = Verdict::Ready;
    let mut findings = Vec::new();
    let mut applied = 0usize;
    let device_outcomes = rules
        .iter()
        .filter(|r| r.applies_to.contains(&kind))
        .map(|rule| {
            let outcome = (rule.check)(facts);
            tracing::trace!(rule = rule.name, ?outcome, "rule applied");
            outcome
        });
    let endpoint_outcomes = endpoints
        .iter()
        .flat_map(|e| ENDPOINT_RULES.iter().map(move |rule| rule(e)));
    for outcome in device_outcomes.chain(endpoint_outcomes) {
        match outcome {
            Outcome::NotApplicable => {}
            Outcome::Pass => applied += 1,
            Outcome::Note(finding) => {
                applied += 1;
                findings.push(finding);
            }
            Outcome::Flag(flagged, finding) => {
                applied += 1;
                verdict = verdict.worst(flagged);
                // Several rules may trip over the same missing source: say it once.
                let seen = findings
                    .iter()
                    .any(|f: &Finding| f.code == finding.code && f.evidence == finding.evidence);
                if !seen {
                    findings.push(finding);
                }
            }
        }
    }
    // An unknown kind means the device rules could not run, whatever else passed.
    if applied == 0 || kind == DeviceKind::Unknown {
        findings.push(nothing_applied(facts));
        verdict = verdict.worst(Verdict::Unknown);
    }
    Assessment {
        verdict,
        findings,
        observed: None,
    }
}

/// Why nothing could be assessed: an unknown kind, or a kind no rule covers yet.
fn nothing_applied(facts: &Facts) -> Finding {
    let kind = facts.kind();
    if kind == DeviceKind::Unknown {
        Finding {
            code: codes::DEVICE_KIND_UNKNOWN.into(),
            severity: Severity::Warning,
            title: "Device kind is unknown; no readiness rule could be applied".into(),
            evidence: match &facts.kind {
                crate::facts::Fact::Unreadable { source, reason } => {
                    format!("device kind unreadable ({source}): {reason}")
                }
                other => format!("device kind not set ({})", other.source()),
            },
            remediation: "Set the device kind (teams_rooms_windows, surface_hub or \
                          teams_rooms_android) so the matching rules run."
                .into(),
            reference: rules::REF_TLS12_M365.into(),
        }
    } else {
        Finding {
            code: codes::NO_APPLICABLE_RULE.into(),
            severity: Severity::Info,
            title: format!("No readiness rule covers {kind} devices yet"),
            evidence: format!("device kind {kind} ({})", facts.kind.source()),
            remediation: "Check this device's TLS 1.2 readiness manually against the Microsoft \
                          guidance."
                .into(),
            reference: rules::REF_TLS12_M365.into(),
        }
    }
}

/// The assessment when no facts could be collected at all: `unknown`, with the reason.
pub(crate) fn facts_unavailable(reason: &str) -> Assessment {
    Assessment {
        verdict: Verdict::Unknown,
        findings: vec![Finding {
            code: codes::FACTS_UNAVAILABLE.into(),
            severity: Severity::Warning,
            title: "Device facts could not be collected; readiness is unknown".into(),
            evidence: reason.to_owned(),
            remediation: "Fix the problem named in the evidence; the next check picks it up."
                .into(),
            reference: rules::REF_TLS12_M365.into(),
        }],
        observed: None,
    }
}

#[cfg(test)]
mod tests;
