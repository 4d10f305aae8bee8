//! The published JSON Schemas (`docs/schemas/`) against the types and the golden fixtures.
//!
//! - The committed files are what the types generate today: a change of a message type that is
//!   not regenerated fails here. `ROOMREADY_WRITE_SCHEMAS=1 cargo test -p roomready-protocol
//!   --test json_schema` rewrites them.
//! - Every fixture in `tests/fixtures/` validates against its message's schema exactly when the
//!   decoder accepts it, and those the decoder must reject are listed with the reason.
//! - Hand-made payloads, device ids and timestamps get the same answer from the schema as from the
//!   decoder and the parsers.

use std::path::{Path, PathBuf};

use boon::{Compiler, SchemaIndex, Schemas};
use roomready_protocol::json_schema::{self, MessageSchema};
use roomready_protocol::{
    Command, CommandResponse, DeviceId, Event, Message, State, Status, Timestamp,
};
use serde_json::{Value, json};

mod support;
use support::decode;

const WRITE_VAR: &str = "ROOMREADY_WRITE_SCHEMAS";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("protocol/ is inside the workspace")
        .to_path_buf()
}

fn schema_dir() -> PathBuf {
    workspace_root().join(json_schema::SCHEMA_DIR)
}

#[test]
fn committed_schemas_are_what_the_types_generate() {
    let dir = schema_dir();
    let write = std::env::var_os(WRITE_VAR).is_some_and(|v| v == "1");
    let generated = json_schema::message_schemas();
    let mut problems = Vec::new();
    for schema in &generated {
        let path = dir.join(&schema.file_name);
        let text = schema.to_pretty_json();
        if write {
            std::fs::create_dir_all(&dir).expect("create docs/schemas");
            std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            continue;
        }
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == text => {}
            Ok(_) => problems.push(format!(
                "the types and {}/{} differ",
                json_schema::SCHEMA_DIR,
                schema.file_name
            )),
            Err(e) => problems.push(format!(
                "{}/{} cannot be read ({e})",
                json_schema::SCHEMA_DIR,
                schema.file_name
            )),
        }
    }
    // A schema file no message has any more is stale.
    let known: Vec<&str> = generated.iter().map(|s| s.file_name.as_str()).collect();
    let entries = std::fs::read_dir(&dir).into_iter().flatten();
    for entry in entries {
        let name = entry.expect("dir entry").file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".schema.json") && !known.contains(&name.as_ref()) {
            problems.push(format!(
                "{}/{name} is no message's schema: remove it",
                json_schema::SCHEMA_DIR
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{}; run `{WRITE_VAR}=1 cargo test -p roomready-protocol --test json_schema` to \
         regenerate, and review the diff",
        problems.join("; ")
    );
}

#[test]
fn schema_ids_and_titles_follow_the_message_tags() {
    fn check<M: Message>(schema: &MessageSchema) {
        assert_eq!(schema.name, M::NAME);
        assert_eq!(schema.tag, M::schema());
        assert_eq!(
            schema.schema["$id"],
            json_schema::schema_id(M::NAME, M::MAJOR)
        );
        assert_eq!(schema.schema["title"], M::schema());
        assert_eq!(
            schema.schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema.schema["required"][0], "schema", "{}", M::NAME);
        assert_eq!(
            schema.schema["properties"]["schema"]["pattern"],
            json_schema::tag_pattern(M::NAME, M::MAJOR)
        );
    }
    let schemas = json_schema::message_schemas();
    check::<Status>(&schemas[0]);
    check::<State>(&schemas[1]);
    check::<Event>(&schemas[2]);
    check::<Command>(&schemas[3]);
    check::<CommandResponse>(&schemas[4]);
    assert_eq!(schemas.len(), 5);
}

#[test]
fn descriptions_are_prose_for_any_reader() {
    fn walk(value: &Value, at: &str) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(text)) = object.get("description") {
                    for rustism in ["crate::", "[`", "`]", "module docs", "Ord`"] {
                        assert!(!text.contains(rustism), "{at}: {text:?}");
                    }
                    assert!(
                        !text.contains(" \n") && !text.contains("\n "),
                        "{at}: {text:?}"
                    );
                }
                for (key, inner) in object {
                    walk(inner, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, &format!("{at}/{i}"));
                }
            }
            _ => {}
        }
    }
    for schema in json_schema::message_schemas() {
        walk(&schema.schema, &schema.file_name);
    }
}

/// The committed schemas, compiled by a validator that asserts `format` too.
struct Validator {
    schemas: Schemas,
    messages: Vec<(MessageSchema, SchemaIndex)>,
    compiler: Compiler,
}

impl Validator {
    fn new() -> Validator {
        let mut schemas = Schemas::new();
        let mut compiler = Compiler::new();
        compiler.enable_format_assertions();
        let mut messages = Vec::new();
        for schema in json_schema::message_schemas() {
            let path = schema_dir().join(&schema.file_name);
            let index = compiler
                .compile(&path.to_string_lossy(), &mut schemas)
                .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
            messages.push((schema, index));
        }
        Validator {
            schemas,
            messages,
            compiler,
        }
    }

    fn message(&self, name: &str) -> &(MessageSchema, SchemaIndex) {
        self.messages
            .iter()
            .find(|(schema, _)| schema.name == name)
            .unwrap_or_else(|| panic!("no schema for {name}"))
    }

    /// Whether `payload` is valid as a `name` message, and why not.
    fn validate(&self, name: &str, payload: &Value) -> Result<(), String> {
        let (_, index) = self.message(name);
        self.schemas
            .validate(payload, *index)
            .map_err(|e| format!("{e}"))
    }

    /// A definition of one message's schema, e.g. `DeviceId` of `roomready.status`.
    fn definition(&mut self, name: &str, definition: &str) -> SchemaIndex {
        let path = schema_dir().join(&self.message(name).0.file_name);
        let location = format!("{}#/$defs/{definition}", path.to_string_lossy());
        self.compiler
            .compile(&location, &mut self.schemas)
            .unwrap_or_else(|e| panic!("{location}: {e:#}"))
    }
}

/// The message of a fixture, by its file name: the longest schema file stem it starts with
/// (`command_response_…` before `command_…`).
fn message_of_fixture(file_name: &str) -> &'static str {
    json_schema::message_schemas()
        .into_iter()
        .filter(|schema| {
            let stem = schema.file_name.trim_end_matches(".schema.json");
            file_name
                .strip_prefix(stem)
                .is_some_and(|rest| rest.starts_with(['_', '.']))
        })
        .max_by_key(|schema| schema.file_name.len())
        .map(|schema| schema.name)
        .unwrap_or_else(|| panic!("fixture {file_name} names no message"))
}

/// Fixtures the decoder rejects, and so must the schema.
const REJECTED_FIXTURES: &[(&str, &str)] = &[(
    "state_v2.json",
    "roomready.state/2 is another major version: published under a new topic version, never \
     read as 1",
)];

#[test]
fn every_fixture_validates_exactly_when_it_decodes() {
    let validator = Validator::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut seen = 0;
    let mut rejected = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    entries.sort();
    for path in entries {
        let file_name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let name = message_of_fixture(&file_name);
        let bytes = std::fs::read(&path).expect("read fixture");
        let value: Value = serde_json::from_slice(&bytes).expect("fixtures are JSON");
        let schema_says = validator.validate(name, &value);
        let decoder_says = decode(name, &bytes);
        let expect_rejected = REJECTED_FIXTURES.iter().any(|(f, _)| *f == file_name);
        assert_eq!(
            decoder_says.is_err(),
            expect_rejected,
            "{file_name}: decoder says {decoder_says:?}"
        );
        assert_eq!(
            schema_says.is_err(),
            expect_rejected,
            "{file_name} as {name}: schema says {schema_says:?}"
        );
        if expect_rejected {
            rejected.push(file_name);
        }
        seen += 1;
    }
    assert!(
        seen >= 19,
        "only {seen} fixtures found in {}",
        dir.display()
    );
    let mut listed: Vec<String> = REJECTED_FIXTURES
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    listed.sort();
    assert_eq!(rejected, listed, "a fixture listed as rejected is missing");
}

/// A fixture as a JSON value, to be changed by a test.
fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("read fixture")).expect("JSON")
}

/// Payloads made by hand: the schema and the decoder give the same answer, and it is `valid`.
#[test]
fn hand_made_payloads_get_the_decoders_answer() {
    let validator = Validator::new();
    let state = fixture("state.json");
    let with = |base: &Value, change: &dyn Fn(&mut Value)| {
        let mut value = base.clone();
        change(&mut value);
        value
    };
    let remove = |field: &'static str| {
        move |v: &mut Value| {
            v.as_object_mut().expect("object").remove(field);
        }
    };
    let event = fixture("event_check_completed.json");
    let command = fixture("command_ping.json");
    let status = fixture("status_will.json");
    let response = fixture("command_response_succeeded.json");
    let cases: Vec<(&str, &str, Value, bool)> = vec![
        // Invalid.
        (
            "no verdict",
            State::NAME,
            with(&state, &remove("verdict")),
            false,
        ),
        (
            "no schema",
            State::NAME,
            with(&state, &remove("schema")),
            false,
        ),
        (
            "no device",
            Status::NAME,
            with(&status, &remove("device")),
            false,
        ),
        ("no id", Command::NAME, with(&command, &remove("id")), false),
        (
            "verdict green",
            State::NAME,
            with(&state, &|v| v["verdict"] = "green".into()),
            false,
        ),
        (
            "device a/b",
            State::NAME,
            with(&state, &|v| v["device"] = "a/b".into()),
            false,
        ),
        (
            "device empty",
            Event::NAME,
            with(&event, &|v| v["device"] = "".into()),
            false,
        ),
        (
            "device of 129",
            Status::NAME,
            with(&status, &|v| {
                v["device"] = "x".repeat(DeviceId::MAX_LEN + 1).into()
            }),
            false,
        ),
        (
            "negative seq",
            State::NAME,
            with(&state, &|v| v["seq"] = (-1).into()),
            false,
        ),
        (
            "seq as text",
            Event::NAME,
            with(&event, &|v| v["seq"] = "43".into()),
            false,
        ),
        (
            "ts without zone",
            Event::NAME,
            with(&event, &|v| v["ts"] = "2026-11-23T14:07:25".into()),
            false,
        ),
        (
            "ts Feb 29 2026",
            Event::NAME,
            with(&event, &|v| v["ts"] = "2026-02-29T00:00:00Z".into()),
            false,
        ),
        (
            "ts 1960",
            Event::NAME,
            with(&event, &|v| v["ts"] = "1960-01-01T00:00:00Z".into()),
            false,
        ),
        (
            "another message",
            State::NAME,
            with(&state, &|v| v["schema"] = "roomready.status/1".into()),
            false,
        ),
        (
            "another major",
            Event::NAME,
            with(&event, &|v| v["schema"] = "roomready.event/2".into()),
            false,
        ),
        (
            "malformed tag",
            Event::NAME,
            with(&event, &|v| v["schema"] = "roomready.event/1.".into()),
            false,
        ),
        (
            "findings over u32",
            Event::NAME,
            with(&event, &|v| {
                v["findings"] = (u64::from(u32::MAX) + 1).into()
            }),
            false,
        ),
        (
            "known event, wrong field",
            Event::NAME,
            with(&event, &|v| v["verdict"] = "green".into()),
            false,
        ),
        (
            "known event, no field",
            Event::NAME,
            with(&event, &remove("findings")),
            false,
        ),
        (
            "unknown command",
            Command::NAME,
            with(&command, &|v| v["command"] = "reboot".into()),
            false,
        ),
        (
            "no command",
            Command::NAME,
            with(&command, &remove("command")),
            false,
        ),
        (
            "seconds as text",
            Command::NAME,
            json!({"schema":"roomready.command/1","id":"c-1","command":"set_interval","seconds":"900"}),
            false,
        ),
        (
            "bad status",
            CommandResponse::NAME,
            with(&response, &|v| v["status"] = "done".into()),
            false,
        ),
        (
            "presence away",
            Status::NAME,
            with(&status, &|v| v["status"] = "away".into()),
            false,
        ),
        (
            "percent 256",
            Event::NAME,
            with(&fixture("event_update_progress.json"), &|v| {
                v["percent"] = 256.into()
            }),
            false,
        ),
        // Valid.
        (
            "a later minor",
            State::NAME,
            with(&state, &|v| v["schema"] = "roomready.state/1.99".into()),
            true,
        ),
        (
            "major with a leading zero",
            State::NAME,
            with(&state, &|v| v["schema"] = "roomready.state/01".into()),
            true,
        ),
        (
            "unknown fields",
            State::NAME,
            with(&state, &|v| v["extra"] = json!({"any": [1, 2]})),
            true,
        ),
        (
            "no findings",
            State::NAME,
            with(&state, &remove("findings")),
            true,
        ),
        (
            "null app_version",
            State::NAME,
            with(&state, &|v| v["facts"]["app_version"] = Value::Null),
            true,
        ),
        (
            "ts with offset",
            Event::NAME,
            with(&event, &|v| {
                v["ts"] = "2026-11-23t15:07:25.1234+01:00".into()
            }),
            true,
        ),
        (
            "ts leap day",
            Event::NAME,
            with(&event, &|v| v["ts"] = "2024-02-29T00:00:00z".into()),
            true,
        ),
        (
            "unknown status reason",
            Status::NAME,
            with(&status, &|v| v["reason"] = "maintenance".into()),
            true,
        ),
        (
            "unknown event",
            Event::NAME,
            with(&event, &|v| v["event"] = "battery_low".into()),
            true,
        ),
        (
            "the event named unrecognized",
            Event::NAME,
            with(&event, &|v| v["event"] = "unrecognized".into()),
            true,
        ),
        (
            "records_dropped without total",
            Event::NAME,
            json!({"schema":"roomready.event/1","device":"d","seq":1,"ts":"2026-01-01T00:00:00Z","event":"records_dropped","count":3}),
            true,
        ),
        (
            "verdict_changed without from",
            Event::NAME,
            json!({"schema":"roomready.event/1","device":"d","seq":1,"ts":"2026-01-01T00:00:00Z","event":"verdict_changed","to":"ready"}),
            true,
        ),
        (
            "update without arguments",
            Command::NAME,
            json!({"schema":"roomready.command/1","id":"c-1","command":"update"}),
            true,
        ),
        (
            "command with unknown field",
            Command::NAME,
            with(&command, &|v| v["priority"] = "high".into()),
            true,
        ),
        (
            "check_now",
            Command::NAME,
            with(&command, &|v| v["command"] = "check_now".into()),
            true,
        ),
    ];
    for (what, name, payload, valid) in cases {
        let bytes = serde_json::to_vec(&payload).expect("JSON");
        let decoder_says = decode(name, &bytes);
        let schema_says = validator.validate(name, &payload);
        assert_eq!(
            decoder_says.is_ok(),
            valid,
            "{what}: decoder says {decoder_says:?}"
        );
        assert_eq!(
            schema_says.is_ok(),
            valid,
            "{what}: schema says {schema_says:?}"
        );
    }
}

#[test]
fn device_ids_valid_to_the_schema_are_the_ones_device_id_accepts() {
    let mut validator = Validator::new();
    let index = validator.definition(Status::NAME, "DeviceId");
    let mut inputs: Vec<String> = (0u8..=0x7f).map(|b| char::from(b).to_string()).collect();
    inputs.extend(
        [
            "é",
            "\u{ff10}",
            "a\u{200b}b",
            "",
            "mtr-0007",
            "room_4.floor-2",
        ]
        .map(String::from),
    );
    inputs.extend([DeviceId::MAX_LEN, DeviceId::MAX_LEN + 1].map(|n| "x".repeat(n)));
    for input in inputs {
        let parser = DeviceId::new(input.as_str()).is_ok();
        let schema = validator.schemas.validate(&json!(input), index).is_ok();
        assert_eq!(schema, parser, "device id {input:?}");
    }
}

#[test]
fn timestamps_valid_to_the_schema_are_the_ones_timestamp_parses() {
    let mut validator = Validator::new();
    let index = validator.definition(Status::NAME, "Timestamp");
    let agree = |input: &str| {
        let parser = input.parse::<Timestamp>().is_ok();
        let schema = validator.schemas.validate(&json!(input), index).is_ok();
        assert_eq!(schema, parser, "timestamp {input:?}");
    };
    // The calendar: month lengths and leap years, around the ends of the range.
    for year in [
        1968, 1970, 1971, 1972, 1996, 1999, 2000, 2023, 2024, 2100, 2400, 9996, 9998,
    ] {
        for month in 0..=13 {
            for day in 0..=32 {
                agree(&format!("{year:04}-{month:02}-{day:02}T12:00:00.000Z"));
            }
        }
    }
    // The form: times, fractions, offsets, separators.
    for input in [
        "2026-11-23T14:07:25Z",
        "2026-11-23t14:07:25z",
        "2026-11-23T14:07:25.1Z",
        "2026-11-23T14:07:25.123456789Z",
        "2026-11-23T15:07:25.123+01:00",
        "2026-11-23T09:37:25-04:30",
        "2026-11-23T09:37:25+23:59",
        "2026-11-23T09:37:25+24:00",
        "2026-11-23T09:37:25+01:60",
        "2026-11-23T09:37:25+0100",
        "2026-11-23T09:37:25+01",
        "2026-11-23T23:59:59Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T23:60:00Z",
        "2026-11-23T23:59:60Z",
        "2026-11-23T14:07:25.Z",
        "2026-11-23T14:07:25",
        "2026-11-23 14:07:25Z",
        "2026-11-23T14:07:25Zjunk",
        " 2026-11-23T14:07:25Z",
        "2026-1x-23T14:07:25Z",
        "20261-11-23T14:07:25Z",
        "2026-11-23T4:07:25Z",
        "1970-01-01T00:00:00Z",
        "1968-12-31T23:59:59Z",
        "9999-12-31T23:59:59.999Z",
        "",
    ] {
        agree(input);
    }
    // Where the two differ by design: the pattern lets 1969 and 9999 through for offsets that
    // bring the instant into 1970..=9999 UTC, and leaves the instant itself to the decoder.
    for (input, parser) in [
        ("1969-12-31T23:30:00-01:00", true),
        ("1969-12-31T23:59:59Z", false),
        ("1969-06-01T00:00:00Z", false),
        ("9999-12-31T23:30:00-01:00", false),
    ] {
        assert_eq!(input.parse::<Timestamp>().is_ok(), parser, "{input}");
        assert!(
            validator.schemas.validate(&json!(input), index).is_ok(),
            "{input}"
        );
    }
}

/// What JSON Schema cannot say, and the decoder still rejects (the `json_schema` module's docs
/// list these): an integer written with a fraction, and a key given twice.
#[test]
fn what_the_schema_cannot_say() {
    let validator = Validator::new();
    let fraction = br#"{"schema":"roomready.status/1","device":"d","seq":41.0,"ts":"2026-11-23T14:07:24.900Z","status":"online"}"#;
    let twice = br#"{"schema":"roomready.status/1","device":"d","seq":41,"seq":42,"ts":"2026-11-23T14:07:24.900Z","status":"online"}"#;
    for payload in [&fraction[..], &twice[..]] {
        let value: Value = serde_json::from_slice(payload).expect("JSON");
        assert!(validator.validate(Status::NAME, &value).is_ok());
        assert!(decode(Status::NAME, payload).is_err());
    }
}
