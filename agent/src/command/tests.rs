//! Command validation: every rejection reason, id extraction from broken payloads, and hostile
//! input that must neither panic nor take unbounded work.

use roomready_protocol::CommandAction;

use super::*;

const MAX: usize = DEFAULT_MAX_BYTES;

fn decide_str(payload: &str) -> Decision {
    decide(payload.as_bytes(), MAX)
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

#[test]
fn oversized_and_non_utf8_payloads_are_answered() {
    let mut big =
        br#"{"id":"big","schema":"roomready.command/1","command":"ping","pad":""#.to_vec();
    big.resize(10 * 1024 * 1024, b'x');
    big.extend_from_slice(b"\"}");
    assert_eq!(reason(&decide(&big, MAX)), Some("payload_too_large"));
    let bytes = b"{\"id\":\"u\",\"command\":\"\xff\xfe\"}";
    assert_eq!(reason(&decide(bytes, MAX)), Some("invalid_utf8"));
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
        let _ = decide(&input, 256);
    }
}
