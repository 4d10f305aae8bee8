//! Command validation: every rejection reason, id extraction from broken payloads, and hostile
//! input that must neither panic nor take unbounded work.

use roomready_protocol::CommandAction;

use super::*;

const MAX: usize = DEFAULT_MAX_BYTES;

fn decide_str(payload: &str) -> Decision {
    decide(payload.as_bytes(), Delivery::live(payload.len()), MAX)
}

fn reason(decision: &Decision) -> Option<&'static str> {
    match decision {
        Decision::Reject { reason, .. } => Some(reason),
        _ => None,
    }
}

#[test]
fn valid_commands_run() {
    let cases = [
        (
            r#"{"schema":"roomready.command/1","id":"c-1","command":"ping"}"#,
            CommandAction::Ping,
        ),
        (
            r#"{"schema":"roomready.command/1.3","id":"c-1","command":"check_now","future":true}"#,
            CommandAction::CheckNow,
        ),
        (
            r#"{"id":"c-1","schema":"roomready.command/1","command":"set_interval","seconds":86400}"#,
            CommandAction::SetInterval { seconds: 86_400 },
        ),
        (
            r#" { "schema" : "roomready.command/1" , "command":"set_interval","seconds":1, "id" : "c-1" } "#,
            CommandAction::SetInterval { seconds: 1 },
        ),
    ];
    for (payload, action) in cases {
        assert_eq!(
            decide_str(payload),
            Decision::Run {
                id: "c-1".into(),
                action
            },
            "{payload}"
        );
    }
}

#[test]
fn every_rejection_has_its_reason() {
    let cases = [
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"ping""#,
            "invalid_json",
        ),
        (r#"{"id":"c","command":"ping"}"#, "invalid_schema"),
        (
            r#"{"schema":"roomready.state/1","id":"c","command":"ping"}"#,
            "invalid_schema",
        ),
        (
            r#"{"schema":"roomready.command","id":"c","command":"ping"}"#,
            "invalid_schema",
        ),
        (
            r#"{"schema":"roomready.command/2","id":"c","command":"ping"}"#,
            "unsupported_schema",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c"}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":7}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"reboot"}"#,
            "unknown_command",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"set_interval"}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"set_interval","seconds":"60"}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"set_interval","seconds":-5}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"set_interval","seconds":0}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"set_interval","seconds":86401}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"update","version":"two"}"#,
            "invalid_argument",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"update","channel":"nightly"}"#,
            "invalid_argument",
        ),
    ];
    for (payload, expected) in cases {
        let decision = decide_str(payload);
        assert_eq!(reason(&decision), Some(expected), "{payload}: {decision:?}");
        let Decision::Reject { id, message, .. } = &decision else {
            unreachable!("checked above")
        };
        assert_eq!(id, "c");
        assert!(!message.is_empty());
    }
    let Decision::Reject { message, .. } = decide_str(
        r#"{"schema":"roomready.command/1","id":"c","command":"set_interval","seconds":0}"#,
    ) else {
        unreachable!("a rejection")
    };
    assert_eq!(message, "seconds must be 1..=86400, found 0");
}

/// One problem a command can have, at the level of the documented order where it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Retained,
    TooLarge,
    NotUtf8,
    NotJson,
    NoSchema,
    SchemaNotString,
    OtherMessage,
    OtherMajor,
    NoCommand,
    CommandNotString,
    UnknownCommand,
    BadArgument,
}

impl Problem {
    const ALL: [Problem; 12] = [
        Problem::Retained,
        Problem::TooLarge,
        Problem::NotUtf8,
        Problem::NotJson,
        Problem::NoSchema,
        Problem::SchemaNotString,
        Problem::OtherMessage,
        Problem::OtherMajor,
        Problem::NoCommand,
        Problem::CommandNotString,
        Problem::UnknownCommand,
        Problem::BadArgument,
    ];

    /// The reason it is rejected with.
    fn reason(self) -> &'static str {
        match self {
            Problem::Retained => "retained_command",
            Problem::TooLarge => "payload_too_large",
            Problem::NotUtf8 => "invalid_utf8",
            Problem::NotJson => "invalid_json",
            Problem::NoSchema | Problem::SchemaNotString | Problem::OtherMessage => {
                "invalid_schema"
            }
            Problem::OtherMajor => "unsupported_schema",
            Problem::NoCommand | Problem::CommandNotString | Problem::BadArgument => {
                "invalid_argument"
            }
            Problem::UnknownCommand => "unknown_command",
        }
    }

    /// The field it breaks: two problems of one field cannot be combined.
    fn field(self) -> u8 {
        match self {
            Problem::Retained | Problem::TooLarge | Problem::NotUtf8 | Problem::NotJson => {
                self as u8
            }
            Problem::NoSchema
            | Problem::SchemaNotString
            | Problem::OtherMessage
            | Problem::OtherMajor => 10,
            Problem::NoCommand | Problem::CommandNotString | Problem::UnknownCommand => 11,
            Problem::BadArgument => 12,
        }
    }
}

/// The decision on a `set_interval` command with `problems`.
fn decide_with(problems: &[Problem]) -> Decision {
    let payload = command_with(problems);
    let delivery = Delivery {
        length: payload.len(),
        retained: problems.contains(&Problem::Retained),
    };
    decide(&payload, delivery, MAX)
}

/// A `set_interval` command's payload with `problems`.
fn command_with(problems: &[Problem]) -> Vec<u8> {
    let has = |p| problems.contains(&p);
    let schema = if has(Problem::NoSchema) {
        String::new()
    } else if has(Problem::SchemaNotString) {
        r#""schema":7,"#.into()
    } else if has(Problem::OtherMessage) {
        r#""schema":"roomready.command_response/1","#.into()
    } else if has(Problem::OtherMajor) {
        r#""schema":"roomready.command/2","#.into()
    } else {
        r#""schema":"roomready.command/1","#.into()
    };
    let command = if has(Problem::NoCommand) {
        String::new()
    } else if has(Problem::CommandNotString) {
        r#""command":["set_interval"],"#.into()
    } else if has(Problem::UnknownCommand) {
        r#""command":"reboot","#.into()
    } else {
        r#""command":"set_interval","#.into()
    };
    let seconds = if has(Problem::BadArgument) { 0 } else { 60 };
    let mut payload =
        format!(r#"{{"id":"c",{schema}{command}"seconds":{seconds},"note":"x"}}"#).into_bytes();
    if has(Problem::NotUtf8) {
        let at = payload.len() - 3;
        payload[at] = 0xff;
    }
    if has(Problem::NotJson) {
        payload.pop();
    }
    if has(Problem::TooLarge) {
        let tail = payload.split_off(payload.len() - 3);
        payload.resize(MAX + 1, b' ');
        payload.extend_from_slice(&tail);
    }
    payload
}

#[test]
fn the_first_problem_in_the_documented_order_decides() {
    // Each problem alone, then with every later problem of another field: the earlier one wins.
    for (i, &first) in Problem::ALL.iter().enumerate() {
        assert_eq!(
            reason(&decide_with(&[first])),
            Some(first.reason()),
            "{first:?} alone"
        );
        for &later in &Problem::ALL[i + 1..] {
            if later.field() == first.field() {
                continue;
            }
            assert_eq!(
                reason(&decide_with(&[first, later])),
                Some(first.reason()),
                "{first:?} with {later:?}"
            );
        }
        let all_later: Vec<Problem> =
            Problem::ALL[i..]
                .iter()
                .copied()
                .fold(Vec::new(), |mut kept, p| {
                    if kept.iter().all(|k: &Problem| k.field() != p.field()) {
                        kept.push(p);
                    }
                    kept
                });
        assert_eq!(
            reason(&decide_with(&all_later)),
            Some(first.reason()),
            "{all_later:?}"
        );
    }
    // The reasons, in the order checked, are the documented list.
    let mut order: Vec<&str> = Vec::new();
    for problem in Problem::ALL {
        if !order.contains(&problem.reason()) {
            order.push(problem.reason());
        }
    }
    assert_eq!(order, REASONS);
}

#[test]
fn docs_state_the_set_interval_range_the_agent_checks() {
    let docs = include_str!("../../../docs/protocol.md");
    let range = format!("{}..={}", INTERVAL_SECS.start(), INTERVAL_SECS.end());
    assert!(
        docs.contains(&format!("| `set_interval` | `seconds`: {range} |")),
        "the command table states {range}"
    );
    // Every range the docs give for seconds is that one.
    for (at, _) in docs.match_indices("seconds must be ") {
        let stated = docs[at + "seconds must be ".len()..]
            .split([',', '"'])
            .next()
            .unwrap_or_default();
        assert_eq!(stated, range, "docs/protocol.md at byte {at}");
    }
}

#[test]
fn docs_list_the_reasons_in_the_order_they_are_checked() {
    let docs = include_str!("../../../docs/protocol.md");
    let start = docs
        .find("`reason` of a `rejected` answer, checked in this order")
        .expect("docs/protocol.md lists the rejection reasons");
    let paragraph = &docs[start..start + docs[start..].find("\n\n").unwrap_or(800)];
    let mut listed: Vec<&str> = Vec::new();
    for reason in paragraph.split('`').skip(1).step_by(2) {
        if REASONS.contains(&reason) && !listed.contains(&reason) {
            listed.push(reason);
        }
    }
    assert_eq!(listed, REASONS, "{paragraph}");
}

#[test]
fn oversized_and_non_utf8_payloads_are_answered() {
    let mut big =
        br#"{"id":"big","schema":"roomready.command/1","command":"ping","pad":""#.to_vec();
    big.resize(10 * 1024 * 1024, b'x');
    big.extend_from_slice(b"\"}");
    assert_eq!(
        reason(&decide(&big, Delivery::live(big.len()), MAX)),
        Some("payload_too_large")
    );
    // Only the head of a payload over the link's limit arrives: its id still gets the answer.
    let head = &big[..4096];
    let Decision::Reject {
        id,
        reason: why,
        message,
    } = decide(head, Delivery::live(big.len()), MAX)
    else {
        panic!("rejected");
    };
    assert_eq!((id.as_str(), why), ("big", "payload_too_large"));
    assert_eq!(
        message,
        format!("the command is {} bytes; the limit is {MAX}", big.len())
    );
    let bytes = b"{\"id\":\"u\",\"command\":\"\xff\xfe\"}";
    assert_eq!(
        reason(&decide(bytes, Delivery::live(bytes.len()), MAX)),
        Some("invalid_utf8")
    );
}

#[test]
fn deep_nesting_is_answered_without_recursion() {
    let depth = 10_000;
    let payload = format!(
        r#"{{"id":"deep","schema":"roomready.command/1","command":"ping","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(reason(&decide_str(&payload)), Some("invalid_json"));
    // The id after the nesting is still found by the scanner.
    let after = format!(
        r#"{{"x":{}{},"id":"late"}}"#,
        "{\"a\":".repeat(depth),
        "}".repeat(depth)
    );
    assert_eq!(top_level_id(after.as_bytes()), Ok("late".into()));
}

#[test]
fn ids_are_found_only_at_the_top_level() {
    let ok = |payload: &str, id: &str| {
        assert_eq!(top_level_id(payload.as_bytes()), Ok(id.into()), "{payload}")
    };
    ok(r#"{"id":"a"}"#, "a");
    ok(r#"{"x":{"id":"inner"},"id":"outer"}"#, "outer");
    ok(r#"{"x":["}", "{\"id\":\"no\"}"],"id":"yes"}"#, "yes");
    ok(r#"{"i\"d":1,"id":"esc\u00e9\n"}"#, "esc\u{e9}\n");
    ok(r#"{"id":"a", "id":"b"}"#, "a");
    let err = |payload: &[u8]| {
        let e = top_level_id(payload).expect_err("no id");
        assert!(!e.is_empty());
        e
    };
    assert!(err(b"").contains("not a JSON object"));
    assert!(err(b"[1]").contains("not a JSON object"));
    assert!(err(br#"{"x":{"id":"inner"}}"#).contains("no \"id\""));
    assert!(err(br#"{"id":7}"#).contains("not a string"));
    assert!(err(br#"{"id":""}"#).contains("1..=256"));
    assert!(err(format!(r#"{{"id":"{}"}}"#, "x".repeat(257)).as_bytes()).contains("1..=256"));
    assert!(err(br#"{"id":"\q"}"#).contains("not a valid JSON string"));
    assert!(err(b"{\"id\":\"\xff\"}").contains("not a valid JSON string"));
    assert!(err(br#"{"x":[1,2"#).contains("ends inside a value"));
    assert!(err(br#"{"id":"open"#).contains("not closed"));
    // A missing id means a drop, whatever else is wrong.
    assert!(matches!(
        decide_str(r#"{"schema":"roomready.command/1","command":"ping"}"#),
        Decision::Drop { .. }
    ));
}

/// xorshift64*: a tiny deterministic PRNG for the fuzz-style test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn hostile_payloads_never_panic() {
    let seeds: [&[u8]; 4] = [
        br#"{"schema":"roomready.command/1","id":"c-1","command":"set_interval","seconds":60}"#,
        br#"{"id":"c","x":[{"a":"\"]}"},[[[]]]],"command":"ping"}"#,
        b"{\"id\":\"\\u00e9\",\"command\":\"\\ud800\"}",
        b"{}",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let alphabet = b"{}[]\":,\\ idu0123456789abcxyz\xff\x00\n";
    for round in 0..20_000 {
        let mut input = seeds[round % seeds.len()].to_vec();
        for _ in 0..1 + rng.below(8) {
            match rng.below(4) {
                0 if !input.is_empty() => {
                    let i = rng.below(input.len());
                    input[i] = alphabet[rng.below(alphabet.len())];
                }
                1 => {
                    let i = rng.below(input.len() + 1);
                    input.insert(i, alphabet[rng.below(alphabet.len())]);
                }
                2 if !input.is_empty() => {
                    let cut = rng.below(input.len());
                    input.truncate(cut);
                }
                _ => {
                    let n = rng.below(64);
                    input.extend((0..n).map(|_| (rng.next() & 0xff) as u8));
                }
            }
        }
        let _ = decide(&input, Delivery::live(input.len()), 256);
    }
}

#[test]
fn fix_runs_with_the_arguments_its_mode_takes() {
    use roomready_protocol::FixMode;

    let run = |payload: &str| match decide_str(payload) {
        Decision::Run { action, .. } => Ok(action),
        Decision::Reject {
            reason, message, ..
        } => Err((reason, message)),
        Decision::Drop { why } => Err(("dropped", why)),
    };
    assert_eq!(
        run(r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"plan"}"#),
        Ok(CommandAction::Fix {
            mode: FixMode::Plan,
            plan: None
        })
    );
    assert_eq!(
        run(
            r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"apply","plan":"0123456789abcdef"}"#
        ),
        Ok(CommandAction::Fix {
            mode: FixMode::Apply,
            plan: Some("0123456789abcdef".into())
        })
    );
    for (payload, expected) in [
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"apply"}"#,
            "fix apply needs \"plan\"",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"apply","plan":"<b>x</b>"}"#,
            "plan must be 16 lowercase hex digits",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"undo","plan":"0123456789abcdef"}"#,
            "not \"undo\"",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"fix","mode":"reboot"}"#,
            "unknown variant `reboot`",
        ),
        (
            r#"{"schema":"roomready.command/1","id":"c","command":"fix"}"#,
            "missing field `mode`",
        ),
    ] {
        let (reason, message) = run(payload).expect_err(payload);
        assert_eq!(reason, "invalid_argument", "{payload}");
        assert!(message.contains(expected), "{expected:?} in {message}");
    }
}
