//! JSON Schemas of the wire payloads (feature `json-schema`): the `schemars::JsonSchema` impls
//! of the validated string types, and [`message_schemas`], from which `docs/schemas/` is generated.
//!
//! A schema describes a payload exactly as [`Message::encode`] writes it and as
//! [`Message::decode`] accepts it: the `schema` tag the envelope adds (any minor version of the
//! major this crate reads), the string types with the rules their parsers enforce, tagged enums
//! (an `event` this version does not know is accepted, as the decoder accepts it), optional
//! fields and defaults. Unknown fields are never forbidden: consumers ignore them.
//!
//! What JSON Schema cannot say, and the decoder still checks: an integer written with a
//! fraction (`1.0`) is an integer to JSON Schema but not to the decoder; a timestamp whose
//! offset moves its instant before 1970-01-01T00:00:00Z or after 9999-12-31T23:59:59.999Z (the
//! pattern checks its form, its calendar and a year of 1969..=9999); and a duplicated key.
//!
//! The test `protocol/tests/json_schema.rs` regenerates the files in memory and fails when a
//! committed one differs; `ROOMREADY_WRITE_SCHEMAS=1` on that test rewrites them.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use crate::device::DeviceId;
use crate::messages::{Command, CommandResponse, Event, State, Status};
use crate::observed::Target;
use crate::placement::{Ring, Room, Site, Tag, Tags, UtcOffset};
use crate::schema::Message;
use crate::time::Timestamp;

/// Where the schema files live, relative to the workspace root.
pub const SCHEMA_DIR: &str = "docs/schemas";

/// One message type's schema, as published in [`SCHEMA_DIR`].
#[derive(Debug, Clone, PartialEq)]
pub struct MessageSchema {
    /// [`Message::NAME`], e.g. `roomready.state`.
    pub name: &'static str,
    /// [`Message::MAJOR`]: the schema accepts every minor version of it.
    pub major: u32,
    /// [`Message::schema`]: the tag this crate writes, e.g. `roomready.state/1.2`.
    pub tag: String,
    /// The file name in [`SCHEMA_DIR`], e.g. `state.schema.json`.
    pub file_name: String,
    /// The schema itself (draft 2020-12).
    pub schema: Value,
}

impl MessageSchema {
    /// The file's text: pretty-printed, keys in a fixed order (whatever order serde_json's map
    /// keeps), a final newline.
    pub fn to_pretty_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&Ordered(&self.schema, Place::Schema))
            .expect("a JSON value with string keys always serializes");
        text.push('\n');
        text
    }
}

/// The schemas of the five message types, in the order of the topics table.
pub fn message_schemas() -> Vec<MessageSchema> {
    vec![
        message_schema::<Status>(),
        message_schema::<State>(),
        message_schema::<Event>(),
        message_schema::<Command>(),
        message_schema::<CommandResponse>(),
    ]
}

/// The `$id` of a message's schema: `urn:roomready:schema:roomready.state/1` (one per major).
pub fn schema_id(name: &str, major: u32) -> String {
    format!("urn:roomready:schema:{name}/{major}")
}

/// The file name of a message's schema: `roomready.command_response` → `command_response.schema.json`.
pub fn schema_file_name(name: &str) -> String {
    let short = name.strip_prefix("roomready.").unwrap_or(name);
    format!("{short}.schema.json")
}

/// The pattern of the `schema` tags the decoder accepts for `name` and `major`: any minor version,
/// and the major with leading zeros too (the decoder reads it as a number).
pub fn tag_pattern(name: &str, major: u32) -> String {
    format!("^{}/0*{major}(\\.[0-9]+)?$", regex_escape(name))
}

/// The schema of one message: the type's schema with the envelope's `schema` field added.
pub fn message_schema<M: Message + JsonSchema>() -> MessageSchema {
    let generator = SchemaGenerator::default();
    let mut schema = generator.into_root_schema_for::<M>();
    let object = schema.ensure_object();
    object.insert("$id".into(), schema_id(M::NAME, M::MAJOR).into());
    object.insert("title".into(), M::schema().into());
    let tag = json_schema!({
        "description": format!(
            "The message and its version: {} (any minor version of major {} is read; this \
             version writes {}).",
            M::NAME, M::MAJOR, M::schema()
        ),
        "type": "string",
        "pattern": tag_pattern(M::NAME, M::MAJOR),
        "examples": [M::schema()],
    });
    if let Some(Value::Object(properties)) = object.get_mut("properties") {
        properties.insert("schema".into(), tag.to_value());
    }
    if let Some(Value::Array(required)) = object.get_mut("required") {
        required.insert(0, "schema".into());
    }
    MessageSchema {
        name: M::NAME,
        major: M::MAJOR,
        tag: M::schema(),
        file_name: schema_file_name(M::NAME),
        schema: {
            let mut value = schema.to_value();
            finish(&mut value);
            value
        },
    }
}

/// Escapes the characters a regular expression would read as syntax.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The pattern of a [`Timestamp`] as `Timestamp::from_str` reads it: `YYYY-MM-DDTHH:MM:SS`, an
/// optional fraction of any length, then `Z` or `±HH:MM` (`t` and `z` in lower case too); months
/// of their real length, February 29 only in leap years, no leap second, years 1969..=9999 (1969
/// only reaches 1970 UTC with a negative offset; the decoder checks the instant itself).
fn timestamp_pattern() -> String {
    // Years 1969..=9999, and the leap years among them (every 4th, not the 100th, the 400th).
    let year = "(?:19(?:69|[7-9][0-9])|[2-9][0-9]{3})";
    let leap_year = "(?:19(?:7[26]|8[048]|9[26])|[2-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[3579][26])00)";
    // Month and day in every year: 1-28 of every month, 29-30 but in February, 31 of the long ones.
    let month_day = "(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)";
    let time = "[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]+)?";
    let offset = "(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])";
    format!("^(?:{year}-{month_day}|{leap_year}-02-29){time}{offset}$")
}

impl JsonSchema for DeviceId {
    fn schema_name() -> Cow<'static, str> {
        "DeviceId".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::DeviceId").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": format!(
                "A device id: 1..={} characters of A-Z a-z 0-9 . _ - (one MQTT topic level: \
                 never /, +, #, NUL or whitespace).",
                DeviceId::MAX_LEN
            ),
            "type": "string",
            "minLength": 1,
            "maxLength": DeviceId::MAX_LEN,
            "pattern": "^[A-Za-z0-9._-]+$",
            "examples": ["mtr-0007"],
        })
    }
}

/// A `JsonSchema` impl for a validated type of [`crate::placement`].
macro_rules! placement_schema {
    ($ty:ident, $schema:expr) => {
        impl JsonSchema for $ty {
            fn schema_name() -> Cow<'static, str> {
                stringify!($ty).into()
            }

            fn schema_id() -> Cow<'static, str> {
                concat!(module_path!(), "::", stringify!($ty)).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                $schema
            }
        }
    };
}

placement_schema!(
    Site,
    json_schema!({
        "description": format!(
            "A site: 1..={} characters of {}.",
            Site::MAX_LEN,
            Site::ALLOWED
        ),
        "type": "string",
        "minLength": 1,
        "maxLength": Site::MAX_LEN,
        "pattern": "^[A-Za-z0-9._-]+$",
        "examples": ["oslo-hq"],
    })
);

placement_schema!(
    Room,
    json_schema!({
        "description": format!(
            "A room: 1..={} characters, no control characters (Unicode Cc), not starting or \
             ending with a space.",
            Room::MAX_LEN
        ),
        "type": "string",
        "minLength": 1,
        "maxLength": Room::MAX_LEN,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f ](?:[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\u0000-\\u001f\\u007f-\\u009f ])?$",
        "examples": ["Fjord 4.12"],
    })
);

placement_schema!(
    Ring,
    json_schema!({
        "description": "A rollout ring: 0 (the pilot ring, updated first) and up.",
        "type": "integer",
        "minimum": 0,
        "maximum": Ring::MAX,
    })
);

placement_schema!(
    Tag,
    json_schema!({
        "description": format!(
            "A tag: 1..={} characters of {}.",
            Tag::MAX_LEN,
            Tag::ALLOWED
        ),
        "type": "string",
        "minLength": 1,
        "maxLength": Tag::MAX_LEN,
        "pattern": "^[a-z0-9._:-]+$",
        "examples": ["board"],
    })
);

placement_schema!(
    UtcOffset,
    json_schema!({
        "description": "The device's local time's offset from UTC in minutes.",
        "type": "integer",
        "minimum": -UtcOffset::MAX_MINUTES,
        "maximum": UtcOffset::MAX_MINUTES,
    })
);

placement_schema!(
    Target,
    json_schema!({
        "description": format!(
            "A server name as Schannel logged it: 1..={} characters, no control characters \
             (Unicode Cc).",
            Target::MAX_CHARS
        ),
        "type": "string",
        "minLength": 1,
        "maxLength": Target::MAX_CHARS,
        "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
        "examples": ["outlook.office365.com"],
    })
);

impl JsonSchema for Tags {
    fn schema_name() -> Cow<'static, str> {
        "Tags".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Tags").into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Distinct tags.",
            "type": "array",
            "items": generator.subschema_for::<Tag>(),
            "maxItems": Tags::MAX,
            "uniqueItems": true,
        })
    }
}

impl JsonSchema for Timestamp {
    fn schema_name() -> Cow<'static, str> {
        "Timestamp".into()
    }

    fn schema_id() -> Cow<'static, str> {
        concat!(module_path!(), "::Timestamp").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An instant, RFC 3339: written in UTC with milliseconds \
                            (2026-11-23T14:07:25.123Z); read with any fraction and Z or an \
                            offset, within 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999Z.",
            "type": "string",
            "format": "date-time",
            "pattern": timestamp_pattern(),
            "examples": ["2026-11-23T14:07:25.123Z"],
        })
    }
}

/// [`StatusReason`](crate::StatusReason): a reason of a later minor version reads as `other`.
pub(crate) fn other_status_reason(schema: &mut Schema) {
    other_variant(schema, None, "other");
}

/// [`ObservedProtocol`](crate::ObservedProtocol): a name of a later minor version reads as
/// `other`.
pub(crate) fn other_observed_protocol(schema: &mut Schema) {
    other_variant(schema, None, "other");
}

/// [`EventBody`](crate::EventBody): an event of a later minor version reads as `unrecognized`.
pub(crate) fn other_event(schema: &mut Schema) {
    other_variant(schema, Some("event"), "unrecognized");
}

/// A transform for an enum with a `#[serde(other)]` variant named `other`: that variant's branch
/// of `oneOf` takes every name the other branches do not, as the decoder does. `tag` is the
/// field of an internally tagged enum (`event`), or `None` for an enum of plain strings.
fn other_variant(schema: &mut Schema, tag: Option<&str>, other: &str) {
    fn names(branch: &Value, tag: Option<&str>) -> Vec<Value> {
        let holder = match tag {
            Some(tag) => branch.pointer(&format!("/properties/{tag}")),
            None => Some(branch),
        };
        match holder {
            Some(Value::Object(holder)) => match (holder.get("const"), holder.get("enum")) {
                (Some(name), _) => vec![name.clone()],
                (None, Some(Value::Array(names))) => names.clone(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
    let Some(Value::Array(branches)) = schema.get_mut("oneOf") else {
        return;
    };
    let known: Vec<Value> = branches
        .iter()
        .flat_map(|branch| names(branch, tag))
        .filter(|name| name != other)
        .collect();
    for branch in branches.iter_mut() {
        if names(branch, tag) != [Value::from(other)] {
            continue;
        }
        let holder = match tag {
            Some(tag) => branch.pointer_mut(&format!("/properties/{tag}")),
            None => Some(branch),
        };
        if let Some(Value::Object(holder)) = holder {
            holder.remove("const");
            holder.insert("type".into(), "string".into());
            holder.insert("not".into(), serde_json::json!({ "enum": known }));
        }
    }
}

/// Gives every integer the range its Rust type decodes (schemars bounds only `u8` and `u16`).
fn integer_bounds(object: &mut Map<String, Value>) {
    let (minimum, maximum): (Value, Value) = match object.get("format").and_then(Value::as_str) {
        Some("uint32") => (0.into(), u32::MAX.into()),
        Some("uint64") => (0.into(), u64::MAX.into()),
        Some("int64") => (i64::MIN.into(), i64::MAX.into()),
        _ => return,
    };
    object.insert("minimum".into(), minimum);
    object.insert("maximum".into(), maximum);
}

/// A description from a doc comment as prose: lines of one paragraph joined, rustdoc links
/// (``[`Name`]``) as plain code spans.
fn tidy_description(text: &str) -> String {
    let joined = text
        .split("\n\n")
        .map(|paragraph| {
            paragraph
                .split('\n')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    joined.replace("[`", "`").replace("`]", "`")
}

/// Applies [`integer_bounds`] and [`tidy_description`] everywhere in `value`.
fn finish(value: &mut Value) {
    match value {
        Value::Object(object) => {
            integer_bounds(object);
            if let Some(Value::String(text)) = object.get_mut("description") {
                *text = tidy_description(text);
            }
            object.values_mut().for_each(finish);
        }
        Value::Array(items) => items.iter_mut().for_each(finish),
        _ => {}
    }
}

/// What a JSON value is inside a schema, for the order of its keys in the files.
#[derive(Clone, Copy)]
enum Place {
    /// A schema: its keywords in [`KEYWORD_ORDER`], then the others by name, `$defs` last.
    Schema,
    /// A map of names to schemas (`properties`, `$defs`): by name.
    SchemaMap,
    /// An array of schemas (`oneOf`, …).
    SchemaList,
    /// Data (`enum`, `examples`, `default`, …): object keys by name.
    Data,
}

/// The keywords that lead a schema, in this order.
const KEYWORD_ORDER: [&str; 20] = [
    "$schema",
    "$id",
    "$ref",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "default",
    "examples",
    "properties",
    "required",
    "oneOf",
    "anyOf",
];

/// Where the value of `key` in a schema stands.
fn place_of(key: &str) -> Place {
    match key {
        "properties" | "patternProperties" | "$defs" | "dependentSchemas" => Place::SchemaMap,
        "oneOf" | "anyOf" | "allOf" | "prefixItems" => Place::SchemaList,
        "items"
        | "not"
        | "additionalProperties"
        | "unevaluatedProperties"
        | "if"
        | "then"
        | "else"
        | "contains"
        | "propertyNames" => Place::Schema,
        _ => Place::Data,
    }
}

/// Serializes a schema with its keys in a fixed order (see [`Place`]), whatever order
/// serde_json's map keeps: its `preserve_order` feature, which any crate of a build may turn on,
/// would otherwise change the files.
struct Ordered<'a>(&'a Value, Place);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(object) => {
                let mut entries: Vec<(&String, &Value)> = object.iter().collect();
                match self.1 {
                    Place::Schema => {
                        let rank = |key: &str| match KEYWORD_ORDER.iter().position(|k| *k == key) {
                            Some(rank) => rank,
                            None if key == "$defs" => KEYWORD_ORDER.len() + 1,
                            None => KEYWORD_ORDER.len(),
                        };
                        entries.sort_by(|(a, _), (b, _)| (rank(a), a).cmp(&(rank(b), b)));
                    }
                    _ => entries.sort_by_key(|(a, _)| *a),
                }
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    let inner = match self.1 {
                        Place::Schema => place_of(key),
                        Place::SchemaMap => Place::Schema,
                        Place::SchemaList | Place::Data => Place::Data,
                    };
                    map.serialize_entry(key, &Ordered(value, inner))?;
                }
                map.end()
            }
            Value::Array(items) => {
                let inner = match self.1 {
                    Place::SchemaList => Place::Schema,
                    _ => Place::Data,
                };
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Ordered(item, inner))?;
                }
                seq.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_and_tags() {
        assert_eq!(
            schema_file_name("roomready.command_response"),
            "command_response.schema.json"
        );
        assert_eq!(
            tag_pattern("roomready.state", 1),
            "^roomready\\.state/0*1(\\.[0-9]+)?$"
        );
    }
}
