//! The `OBSERVED HANDSHAKES` section of `check`'s tables: what Schannel logged, beside the
//! prediction's verdict (`state.observed`).

use std::fmt::Write as _;

use roomready_protocol::{Observed, ObservedSource, suite_name};

use super::{Style, cell, shout};

/// Writes the section for `observed`.
pub(super) fn section(out: &mut String, observed: &Observed, s: Style) {
    let source = match observed.source {
        ObservedSource::SystemLog => "System log",
        ObservedSource::Export => "export",
    };
    let window = match (observed.since, observed.until) {
        (Some(since), Some(until)) => {
            format!("{} to {}", since.to_rfc3339_secs(), until.to_rfc3339_secs())
        }
        _ => format!("no event in the last {} days", observed.window_days),
    };
    let _ = writeln!(
        out,
        "\n{}  {}",
        s.bold("OBSERVED HANDSHAKES"),
        s.dim(&format!(
            "Schannel, {source}: {window}, {} event(s){}; predicted {}",
            observed.events,
            if observed.truncated {
                " (the newest; more in the window)"
            } else {
                ""
            },
            shout(observed.predicted).to_lowercase()
        ))
    );
    if observed.success_logging == Some(false) && observed.handshakes.is_empty() {
        let _ = writeln!(
            out,
            "  {}",
            s.paint(
                "33",
                "successful handshakes are not logged (EventLogging lacks 0x4)"
            )
        );
    }
    if observed.handshakes.is_empty() && observed.failures.is_empty() {
        let _ = writeln!(out, "  none");
        return;
    }
    let target_width = observed
        .handshakes
        .iter()
        .filter_map(|h| h.target.as_ref())
        .chain(observed.failures.iter().filter_map(|f| f.target.as_ref()))
        .map(|t| t.as_str().chars().count())
        .max()
        .unwrap_or(0)
        .max("(no target)".len());
    for h in &observed.handshakes {
        let protocol = h.protocol.name();
        let colour = if h.protocol.is_legacy() { "33" } else { "32" };
        let target = h.target.as_ref().map_or("(no target)", |t| t.as_str());
        let suite = h.suite.map_or(String::new(), |code| {
            suite_name(code).map_or(format!("0x{code:04X}"), str::to_owned)
        });
        let _ = writeln!(
            out,
            "  {}  {:>6}  {}  last {}  {}",
            cell(protocol, 8, |t| s.paint(colour, t)),
            format!("×{}", h.count),
            cell(target, target_width, |t| t.to_owned()),
            h.last.to_rfc3339_secs(),
            s.dim(&suite)
        );
    }
    for f in &observed.failures {
        let what = match f.alert {
            Some(alert) => format!("event {} alert {alert}", f.event),
            None => format!("event {}", f.event),
        };
        let target = f.target.as_ref().map_or("(no target)", |t| t.as_str());
        let _ = writeln!(
            out,
            "  {}  {:>6}  {}  last {}  {}",
            cell("failed", 8, |t| s.paint("31", t)),
            format!("×{}", f.count),
            cell(target, target_width, |t| t.to_owned()),
            f.last.to_rfc3339_secs(),
            s.dim(&what)
        );
    }
    if observed.rows_omitted > 0 {
        let _ = writeln!(out, "  … and {} more row(s)", observed.rows_omitted);
    }
}
