//! A run's [`Outcome`] for people and for CI: a summary table (expectation, expected, observed,
//! result, then the timeline's steps), JUnit XML (one test case per expectation, and per
//! skipped step, so CI shows each), and JSON (the whole outcome).

use std::fmt::Write as _;

use crate::scenario::fmt_duration;
use crate::scenario::run::{Outcome, Status};

/// The summary table.
pub fn table(outcome: &Outcome) -> String {
    let mut out = String::new();
    let ms = |v: u64| fmt_duration(std::time::Duration::from_millis(v));
    let _ = writeln!(
        out,
        "scenario {:?} (seed {}, {} devices, broker {}): ramp-up {}, {}, {} messages",
        outcome.scenario,
        outcome.seed,
        outcome.devices,
        outcome.broker,
        ms(outcome.ramp_ms),
        match outcome.converged_ms {
            Some(c) => format!("converged at {}", ms(c)),
            None => "did not converge".into(),
        },
        outcome.messages
    );
    let mut rows: Vec<[String; 4]> = vec![[
        "expectation".into(),
        "expected".into(),
        "observed".into(),
        "result".into(),
    ]];
    for e in &outcome.expectations {
        let mut result = e.status.as_str().to_owned();
        if let Some(note) = &e.note {
            result.push_str(&format!(": {note}"));
        }
        rows.push([
            e.name.clone(),
            e.expected.clone(),
            e.observed.clone(),
            result,
        ]);
    }
    write_rows(&mut out, &rows);
    if !outcome.steps.is_empty() {
        out.push('\n');
        let mut rows: Vec<[String; 4]> =
            vec![["at".into(), "step".into(), "target".into(), "result".into()]];
        for s in &outcome.steps {
            let mut result = s.status.as_str().to_owned();
            if let Some(note) = &s.note {
                result.push_str(&format!(": {note}"));
            }
            rows.push([ms(s.at_ms), s.action.to_owned(), s.target.clone(), result]);
        }
        write_rows(&mut out, &rows);
    }
    let failed = outcome
        .expectations
        .iter()
        .filter(|e| e.status == Status::Fail)
        .count();
    let _ = writeln!(
        out,
        "\n{} of {} expectations passed in {}",
        outcome.expectations.len() - failed,
        outcome.expectations.len(),
        ms(outcome.elapsed_ms)
    );
    out
}

fn write_rows(out: &mut String, rows: &[[String; 4]]) {
    let mut widths = [0usize; 4];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(w - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// XML text with `&`, `<`, `>`, `"` and `'` escaped, and control characters XML 1.0 cannot
/// carry replaced.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testcase>` per expectation (a `<failure>` when it failed) and one per
/// skipped step (`<skipped>`).
pub fn junit(outcome: &Outcome) -> String {
    let failures = outcome
        .expectations
        .iter()
        .filter(|e| e.status == Status::Fail)
        .count();
    let skipped: Vec<_> = outcome
        .steps
        .iter()
        .filter(|s| s.status == Status::Skipped)
        .collect();
    let tests = outcome.expectations.len() + skipped.len();
    let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let class = format!("roomready.scenario.{}", outcome.scenario);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites tests=\"{tests}\" failures=\"{failures}\" skipped=\"{}\" time=\"{}\">",
        skipped.len(),
        seconds(outcome.elapsed_ms)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{}\" time=\"{}\">",
        xml(&outcome.scenario),
        skipped.len(),
        seconds(outcome.elapsed_ms)
    );
    let _ = writeln!(
        out,
        "    <properties><property name=\"seed\" value=\"{}\"/><property name=\"devices\" value=\"{}\"/><property name=\"broker\" value=\"{}\"/></properties>",
        outcome.seed,
        outcome.devices,
        xml(&outcome.broker)
    );
    for e in &outcome.expectations {
        let time = e.held_from_ms.unwrap_or(outcome.elapsed_ms);
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            xml(&class),
            xml(&e.name),
            seconds(time)
        );
        if e.status == Status::Fail {
            let mut message = format!("expected {}, observed {}", e.expected, e.observed);
            if let Some(note) = &e.note {
                message.push_str(&format!("; {note}"));
            }
            let _ = writeln!(
                out,
                ">\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>",
                xml(&message),
                xml(&message)
            );
        } else {
            out.push_str("/>\n");
        }
    }
    for s in skipped {
        let _ = writeln!(
            out,
            "    <testcase classname=\"{}\" name=\"{} {} at {}\" time=\"0\">\n      <skipped message=\"{}\"/>\n    </testcase>",
            xml(&class),
            s.action,
            xml(&s.target),
            fmt_duration(std::time::Duration::from_millis(s.at_ms)),
            xml(s.note.as_deref().unwrap_or("skipped"))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The outcome as pretty JSON.
pub fn json(outcome: &Outcome) -> String {
    // Plain data (strings, numbers, options, vectors): serialization cannot fail.
    let mut text = serde_json::to_string_pretty(outcome).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::run::{ExpectationResult, StepResult};

    fn outcome() -> Outcome {
        Outcome {
            scenario: "demo <&>".into(),
            file: "s.toml".into(),
            seed: 7,
            broker: "embedded".into(),
            devices: 3,
            ramp_ms: 20,
            converged_ms: None,
            elapsed_ms: 1500,
            messages: 9,
            expectations: vec![
                ExpectationResult {
                    name: "reported all".into(),
                    expected: "3 of 3 devices reported a state".into(),
                    observed: "3 of 3 devices reported a state".into(),
                    status: Status::Pass,
                    held_from_ms: Some(400),
                    note: None,
                },
                ExpectationResult {
                    name: "verdicts ready=3".into(),
                    expected: "ready=3".into(),
                    observed: "ready=2 at_risk=0 not_ready=1 unknown=0".into(),
                    status: Status::Fail,
                    held_from_ms: None,
                    note: Some("did not hold at the end".into()),
                },
            ],
            steps: vec![StepResult {
                at_ms: 1000,
                action: "broker_down",
                target: "broker".into(),
                status: Status::Skipped,
                note: Some("external \"broker\"".into()),
            }],
        }
    }

    #[test]
    fn the_table_lines_up() {
        let text = table(&outcome());
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("scenario \"demo <&>\" (seed 7, 3 devices"),
            "{text}"
        );
        let header = lines[1];
        let col = header.find("observed").expect("observed column");
        assert_eq!(
            lines[2]
                .find("3 of 3")
                .map(|_| lines[2][col..].starts_with("3 of 3")),
            Some(true),
            "{text}"
        );
        assert!(
            lines[3].ends_with("FAIL: did not hold at the end"),
            "{text}"
        );
        assert!(
            text.contains("1s  broker_down  broker  skipped: external"),
            "{text}"
        );
        assert!(
            text.ends_with("1 of 2 expectations passed in 1.5s\n"),
            "{text}"
        );
    }

    #[test]
    fn junit_has_a_case_per_expectation_and_skipped_step() {
        let xml = junit(&outcome());
        assert!(
            xml.contains(
                "<testsuite name=\"demo &lt;&amp;&gt;\" tests=\"3\" failures=\"1\" skipped=\"1\""
            ),
            "{xml}"
        );
        assert!(
            xml.contains("name=\"reported all\" time=\"0.400\"/>"),
            "{xml}"
        );
        assert!(xml.contains("<failure message=\"expected ready=3, observed ready=2 at_risk=0 not_ready=1 unknown=0; did not hold at the end\""), "{xml}");
        assert!(
            xml.contains("<skipped message=\"external &quot;broker&quot;\"/>"),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase").count(), 3);
        assert_eq!(xml.matches("</testcase>").count(), 2);
    }

    #[test]
    fn json_round_trips_as_json() {
        let value: serde_json::Value = serde_json::from_str(&json(&outcome())).expect("json");
        assert_eq!(value["seed"], 7);
        assert_eq!(value["expectations"][1]["status"], "fail");
        assert_eq!(value["steps"][0]["status"], "skipped");
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(xml("a\u{1}b\tc"), "a\u{FFFD}b\tc");
    }
}
