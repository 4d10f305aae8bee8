//! Schema tags and the [`Message`] trait: how every payload is encoded and checked when decoded.
//!
//! Every payload is a JSON object whose `schema` field names the message and its version:
//! `roomready.state/1`, optionally with a minor version (`roomready.state/1.2`). Minor versions
//! only add fields, which consumers ignore, so any minor of a known major decodes. A different
//! major, or a payload of another message type, is rejected with a typed [`DecodeError`] before
//! any field is interpreted.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::version::echo;

/// A message type of the contract with its schema tag.
pub trait Message: Serialize + DeserializeOwned {
    /// The schema name without version, e.g. `roomready.state`.
    const NAME: &'static str;
    /// The major version this crate reads and writes.
    const MAJOR: u32;
    /// The minor version this crate writes: how many times fields were added to this major.
    const MINOR: u32 = 0;

    /// The full tag written into `schema`: `roomready.state/1`, or with the minor version once
    /// there is one (`roomready.state/1.1`).
    fn schema() -> String {
        if Self::MINOR == 0 {
            format!("{}/{}", Self::NAME, Self::MAJOR)
        } else {
            format!("{}/{}.{}", Self::NAME, Self::MAJOR, Self::MINOR)
        }
    }

    /// Encodes as compact JSON with `schema` as the first field.
    fn encode(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Envelope<'a, T> {
            schema: String,
            #[serde(flatten)]
            body: &'a T,
        }
        let envelope = Envelope {
            schema: Self::schema(),
            body: self,
        };
        serde_json::to_vec(&envelope)
            .expect("message types are structs with string keys, which always serialize")
    }

    /// Checks a `schema` tag: this message (any minor version of [`Message::MAJOR`]), or why not.
    fn check_schema(tag: &str) -> Result<(), DecodeError> {
        let (name, major) =
            split_tag(tag).ok_or_else(|| DecodeError::MalformedSchema { found: echo(tag) })?;
        if name != Self::NAME {
            return Err(DecodeError::WrongMessage {
                expected: Self::NAME,
                found: echo(name),
            });
        }
        if major != Self::MAJOR {
            return Err(DecodeError::UnsupportedMajor {
                name: Self::NAME,
                supported: Self::MAJOR,
                found: major,
            });
        }
        Ok(())
    }

    /// Decodes a payload: checks the schema tag, then the fields; unknown fields are ignored.
    fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Head<'a> {
            #[serde(borrow)]
            schema: Option<Cow<'a, str>>,
        }
        let head: Head<'_> =
            serde_json::from_slice(payload).map_err(|source| DecodeError::Json {
                expected: Self::NAME,
                source,
            })?;
        let tag = head.schema.ok_or(DecodeError::MissingSchema {
            expected: Self::NAME,
        })?;
        Self::check_schema(&tag)?;
        serde_json::from_slice(payload).map_err(|source| DecodeError::Json {
            expected: Self::NAME,
            source,
        })
    }
}

/// Splits `roomready.state/1` or `roomready.state/1.4` into its name and major version.
fn split_tag(tag: &str) -> Option<(&str, u32)> {
    let (name, version) = tag.rsplit_once('/')?;
    let major = version.split_once('.').map_or(version, |(major, minor)| {
        if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
            ""
        } else {
            major
        }
    });
    if name.is_empty() || major.is_empty() || !major.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((name, major.parse().ok()?))
}

/// Why a payload could not be decoded as the expected message.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, not an object, or a field has the wrong type or value (line and column inside).
    #[error("invalid {expected} payload: {source}")]
    Json {
        expected: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("payload has no \"schema\" field (expected {expected}/N)")]
    MissingSchema { expected: &'static str },
    #[error("schema {found} is not of the form NAME/MAJOR[.MINOR]")]
    MalformedSchema { found: String },
    #[error("expected a {expected} payload, found schema {found}")]
    WrongMessage {
        expected: &'static str,
        found: String,
    },
    #[error("{name} major version {found} is not supported (this build reads {supported})")]
    UnsupportedMajor {
        name: &'static str,
        supported: u32,
        found: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::split_tag;

    #[test]
    fn splits_tags() {
        assert_eq!(split_tag("roomready.state/1"), Some(("roomready.state", 1)));
        assert_eq!(
            split_tag("roomready.state/1.7"),
            Some(("roomready.state", 1))
        );
        assert_eq!(
            split_tag("roomready.state/12"),
            Some(("roomready.state", 12))
        );
        for bad in [
            "",
            "roomready.state",
            "roomready.state/",
            "/1",
            "roomready.state/x",
            "roomready.state/1.",
            "roomready.state/1.x",
            "roomready.state/-1",
            "roomready.state/99999999999",
        ] {
            assert_eq!(split_tag(bad), None, "{bad:?}");
        }
    }
}
