//! Commands from the controller (`cmd` topic): untrusted bytes in, a [`Decision`] out. Pure: no
//! I/O, no panics on any input, bounded work.
//!
//! The request `id` is found first, by a depth-aware scan of the top level of the payload that
//! needs no full parse ([`top_level_id`]), so that even a payload too large, too deep, not UTF-8
//! or otherwise broken gets a `rejected` answer when it names an id. A payload without a usable
//! id cannot be answered and is dropped (the caller logs it). Then the checks run in this order,
//! the first that fails giving the answer, whatever else is wrong (the payload as a whole, then
//! `schema`, then `command`, then its arguments):
//!
//! | check | reason in the `rejected` response |
//! |---|---|
//! | delivered from the broker's retained store | `retained_command` |
//! | larger than the limit (64 KiB by default) | `payload_too_large` |
//! | not UTF-8 | `invalid_utf8` |
//! | not JSON, not an object, or nested deeper than 128 levels | `invalid_json` |
//! | `schema` missing, not a string, malformed or of another message | `invalid_schema` |
//! | `schema` of another major version | `unsupported_schema` |
//! | `command` missing or not a string | `invalid_argument` |
//! | `command` not one of `ping`, `check_now`, `set_interval`, `update`, `update_app`, `fix` | `unknown_command` |
//! | arguments of the wrong type or out of range | `invalid_argument` |
//! | `update` with a `version` that is neither `latest` nor semver, or another `channel` | `invalid_argument` |
//! | `fix` `apply` without a `plan` digest of 16 hex digits, or `plan`/`undo` with one | `invalid_argument` |
//!
//! `REASONS` (in the tests) lists the reasons in that order; docs/protocol.md lists them too, and a test keeps
//! the two the same.

pub mod ledger;
pub(crate) mod settings;

use roomready_protocol::{Command, CommandAction, DecodeError, Message};

/// The default limit on a command payload.
pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;
/// Longest request id answered (bytes): the contract's.
pub const MAX_ID_BYTES: usize = roomready_protocol::Command::MAX_ID_BYTES;
/// The `set_interval` range (the contract's), as the config's `report_interval_secs`.
pub const INTERVAL_SECS: std::ops::RangeInclusive<u64> =
    roomready_protocol::CommandAction::INTERVAL_SECS;
/// The commands this version knows.
pub(crate) const KNOWN: [&str; 6] = [
    "ping",
    "check_now",
    "set_interval",
    "update",
    "update_app",
    "fix",
];
/// The rejection reasons of [`decide`], in the order they are checked.
#[cfg(test)]
pub(crate) const REASONS: [&str; 8] = [
    "retained_command",
    "payload_too_large",
    "invalid_utf8",
    "invalid_json",
    "invalid_schema",
    "unsupported_schema",
    "invalid_argument",
    "unknown_command",
];

/// What to do with one command payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No usable request id: nothing can be answered. `why` is for the log.
    Drop { why: String },
    /// Answer `rejected` with a machine-readable `reason` and a human `message`.
    Reject {
        id: String,
        reason: &'static str,
        message: String,
    },
    /// A valid command: run it.
    Run { id: String, action: CommandAction },
}

/// How a command payload was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// The payload's whole length: more than the bytes at hand when the link kept only the head
    /// of a payload over its limit.
    pub length: usize,
    /// From the broker's retained store rather than as published.
    pub retained: bool,
}

impl Delivery {
    /// A whole payload of `length` bytes, published live.
    pub fn live(length: usize) -> Delivery {
        Delivery {
            length,
            retained: false,
        }
    }
}

/// Validates `payload` as delivered (see the module documentation for the order of checks); a
/// payload over `max_bytes` need only be its head, to find the id in.
pub fn decide(payload: &[u8], delivery: Delivery, max_bytes: usize) -> Decision {
    let id = match top_level_id(payload) {
        Ok(id) => id,
        Err(why) => return Decision::Drop { why },
    };
    let reject = |reason, message: String| Decision::Reject {
        id: id.clone(),
        reason,
        message,
    };
    if delivery.retained {
        return reject(
            "retained_command",
            "a retained command is never run: publish commands without the retain flag, and clear \
             the retained message on this topic"
                .into(),
        );
    }
    let length = delivery.length.max(payload.len());
    if length > max_bytes {
        return reject(
            "payload_too_large",
            format!("the command is {length} bytes; the limit is {max_bytes}"),
        );
    }
    if let Err(e) = std::str::from_utf8(payload) {
        return reject(
            "invalid_utf8",
            format!("the payload is not UTF-8 (byte {})", e.valid_up_to()),
        );
    }
    let value: serde_json::Value = match serde_json::from_slice(payload) {
        Ok(value @ serde_json::Value::Object(_)) => value,
        Ok(_) => return reject("invalid_json", "the payload is not a JSON object".into()),
        Err(e) => {
            return reject(
                "invalid_json",
                format!("the payload is not valid JSON: {e}"),
            );
        }
    };
    let schema_problem = match value.get("schema") {
        None => Some((
            "invalid_schema",
            "the \"schema\" field is missing".to_owned(),
        )),
        Some(serde_json::Value::String(tag)) => Command::check_schema(tag).err().map(|e| {
            let reason = match e {
                DecodeError::UnsupportedMajor { .. } => "unsupported_schema",
                _ => "invalid_schema",
            };
            (reason, e.to_string())
        }),
        Some(_) => Some((
            "invalid_schema",
            "the \"schema\" field must be a string".to_owned(),
        )),
    };
    if let Some((reason, message)) = schema_problem {
        return reject(reason, message);
    }
    match value.get("command") {
        None => {
            return reject(
                "invalid_argument",
                "the \"command\" field is missing".into(),
            );
        }
        Some(serde_json::Value::String(name)) if !KNOWN.contains(&name.as_str()) => {
            return reject(
                "unknown_command",
                format!(
                    "unknown command {:?}; this agent knows {}",
                    clip(name),
                    KNOWN.join(", ")
                ),
            );
        }
        Some(serde_json::Value::String(_)) => {}
        Some(_) => {
            return reject(
                "invalid_argument",
                "the \"command\" field must be a string".into(),
            );
        }
    }
    // The schema and the command were checked above: what is left to fail is the arguments.
    let command = match Command::decode(payload) {
        Ok(command) => command,
        Err(error) => return reject("invalid_argument", error.to_string()),
    };
    match command.action {
        CommandAction::SetInterval { seconds } if !INTERVAL_SECS.contains(&seconds) => reject(
            "invalid_argument",
            format!(
                "seconds must be {}..={}, found {seconds}",
                INTERVAL_SECS.start(),
                INTERVAL_SECS.end()
            ),
        ),
        CommandAction::Update { version, channel } => {
            if let Some(v) = &version
                && v != "latest"
                && semver::Version::parse(v).is_err()
            {
                return reject(
                    "invalid_argument",
                    format!(
                        "version must be \"latest\" or a semantic version, found {:?}",
                        clip(v)
                    ),
                );
            }
            if let Some(c) = &channel
                && c != "stable"
                && c != "beta"
            {
                return reject(
                    "invalid_argument",
                    format!(
                        "channel must be \"stable\" or \"beta\", found {:?}",
                        clip(c)
                    ),
                );
            }
            Decision::Run {
                id,
                action: CommandAction::Update { version, channel },
            }
        }
        CommandAction::Fix { mode, plan } => {
            match roomready_protocol::fix::check_fix(mode, plan.as_deref()) {
                Ok(()) => Decision::Run {
                    id,
                    action: CommandAction::Fix { mode, plan },
                },
                Err(message) => reject("invalid_argument", message),
            }
        }
        action => Decision::Run { id, action },
    }
}

/// At most 64 characters of `text`, for messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The string value of the top-level `"id"` key of a JSON object, found by scanning: nesting is
/// only counted (no recursion), values are skipped without being built, and the rest of the
/// payload need not be valid. `Err` says why there is no usable id: not an object, no `id` key
/// at the top level, an `id` that is not a non-empty string of at most [`MAX_ID_BYTES`] UTF-8
/// bytes, or input cut before the id was found.
pub fn top_level_id(payload: &[u8]) -> Result<String, String> {
    let mut scan = Scanner {
        bytes: payload,
        at: 0,
    };
    scan.skip_ws();
    if scan.peek() != Some(b'{') {
        return Err("the payload is not a JSON object".into());
    }
    scan.at += 1;
    loop {
        scan.skip_ws();
        match scan.peek() {
            Some(b'}') => return Err("no \"id\" field".into()),
            Some(b',') => {
                scan.at += 1;
                continue;
            }
            Some(b'"') => {}
            Some(other) => {
                return Err(format!(
                    "unexpected byte 0x{other:02x} at offset {} before the \"id\" field",
                    scan.at
                ));
            }
            None => return Err("the payload ends before an \"id\" field".into()),
        }
        let key = scan.string()?;
        scan.skip_ws();
        if scan.peek() != Some(b':') {
            return Err(format!("expected ':' at offset {}", scan.at));
        }
        scan.at += 1;
        scan.skip_ws();
        if key == b"id" {
            if scan.peek() != Some(b'"') {
                return Err("\"id\" is not a string".into());
            }
            let raw = scan.string()?;
            let id = unescape(raw).ok_or("\"id\" is not a valid JSON string")?;
            if id.is_empty() || id.len() > MAX_ID_BYTES {
                return Err(format!(
                    "\"id\" must be 1..={MAX_ID_BYTES} bytes, found {}",
                    id.len()
                ));
            }
            return Ok(id);
        }
        scan.skip_value()?;
    }
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    /// A string starting at the opening quote: its raw bytes between the quotes.
    fn string(&mut self) -> Result<&'a [u8], String> {
        let start = self.at + 1;
        let mut i = start;
        while let Some(&b) = self.bytes.get(i) {
            match b {
                b'\\' => i += 2,
                b'"' => {
                    self.at = i + 1;
                    return Ok(&self.bytes[start..i]);
                }
                _ => i += 1,
            }
        }
        Err(format!(
            "a string starting at offset {} is not closed",
            start - 1
        ))
    }

    /// Skips one value of any kind, counting brackets instead of recursing.
    fn skip_value(&mut self) -> Result<(), String> {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                None => return Err("the payload ends inside a value".into()),
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    self.at += 1;
                }
                Some(b'}' | b']') => {
                    if depth == 0 {
                        // The end of the enclosing object: the value was empty or scalar.
                        return Ok(());
                    }
                    depth -= 1;
                    self.at += 1;
                }
                Some(b',') if depth == 0 => return Ok(()),
                Some(_) => self.at += 1,
            }
            if depth == 0 && matches!(self.peek(), Some(b',' | b'}')) {
                return Ok(());
            }
        }
    }
}

/// Decodes the JSON escapes of a string's raw bytes; `None` when invalid (bad escape, not
/// UTF-8, a control character).
fn unescape(raw: &[u8]) -> Option<String> {
    let mut quoted = Vec::with_capacity(raw.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(raw);
    quoted.push(b'"');
    serde_json::from_slice(&quoted).ok()
}

#[cfg(test)]
mod tests;
