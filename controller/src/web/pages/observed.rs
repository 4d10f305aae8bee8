//! The device page's "Prediction and evidence" section: what Schannel logged of the device's
//! handshakes (`state.observed`, state 1.3) beside the verdict the prediction alone gives.
//! Every value the device sent is written through maud, which escapes it.

use maud::{Markup, html};
use roomready_protocol::tls::alert_name;
use roomready_protocol::{Observed, ObservedSource, State, suite_name};

fn failure_kind(event: u32) -> &'static str {
    match event {
        36874 => "no common cipher suite",
        36887 => "fatal alert received",
        36888 => "fatal alert sent",
        _ => "failed handshake",
    }
}

/// The section, or a line saying no evidence was reported.
pub(super) fn section(state: Option<&State>) -> Markup {
    let Some(state) = state else {
        return html! {};
    };
    html! {
        section #observed {
            h2 { "Prediction and evidence" }
            @match &state.observed {
                None => p.note { "No Schannel evidence reported (an agent before 1.3, not on Windows, or schannel_events = false)." },
                Some(o) => (evidence(state, o)),
            }
        }
    }
}

fn evidence(state: &State, o: &Observed) -> Markup {
    let source = match o.source {
        ObservedSource::SystemLog => "the System log",
        ObservedSource::Export => "a saved export",
    };
    let differs = o.predicted != state.verdict;
    html! {
        p #observed-summary {
            "Predicted: " span class={ "badge v-" (o.predicted.as_str()) } #predicted { (o.predicted.as_str()) }
            " · with the evidence: " span class={ "badge v-" (state.verdict.as_str()) } { (state.verdict.as_str()) }
            @if differs && o.legacy() { " — " strong #observed-legacy { "predicted " (o.predicted.as_str()) ", observed legacy TLS" } }
        }
        p.note {
            "Schannel events from " (source) ", "
            @match (o.since, o.until) {
                (Some(since), Some(until)) => { (since.to_rfc3339_secs()) " to " (until.to_rfc3339_secs()) }
                _ => { "none in the last " (o.window_days) " days" }
            }
            ": " (o.events) " event(s)"
            @if o.truncated { " (the newest; the window holds more)" }
            "."
            @match o.success_logging {
                Some(false) => { " Schannel does not log successful handshakes here (EventLogging lacks 0x4): no handshake can show." }
                Some(true) => { " Successful handshakes are logged." }
                None => {}
            }
        }
        @if !o.handshakes.is_empty() {
            table #observed-handshakes {
                thead { tr { th { "Protocol" } th { "Target" } th { "Last suite" } th.num { "Handshakes" } th { "Last" } } }
                tbody {
                    @for h in &o.handshakes {
                        tr class=(if h.protocol.is_legacy() { "legacy" } else { "" }) {
                            td { @if h.protocol.is_legacy() { span.no { (h.protocol.name()) } } @else { span.ok { (h.protocol.name()) } } }
                            td { @match &h.target { Some(t) => (t.as_str()), None => small { "not logged" } } }
                            td { @if let Some(code) = h.suite { (suite_name(code).map_or_else(|| format!("0x{code:04X}"), str::to_owned)) } }
                            td.num { (h.count) }
                            td { (h.last.to_rfc3339_secs()) }
                        }
                    }
                }
            }
        }
        @if !o.failures.is_empty() {
            table #observed-failures {
                thead { tr { th { "Failure" } th { "Alert" } th { "Target" } th.num { "Count" } th { "Last" } } }
                tbody {
                    @for f in &o.failures {
                        tr {
                            td { (failure_kind(f.event)) " (" (f.event) ")" @if let Some(p) = f.protocol { br; small { (p.name()) } } }
                            td { @if let Some(a) = f.alert { (a) " " small { (alert_name(a)) } } }
                            td { @if let Some(t) = &f.target { (t.as_str()) } }
                            td.num { (f.count) }
                            td { (f.last.to_rfc3339_secs()) }
                        }
                    }
                }
            }
        }
        @if o.rows_omitted > 0 { p.note { (o.rows_omitted) " more row(s) left out by the agent's bound." } }
    }
}
