//! Who a device is: its validated [`DeviceId`] and its [`DeviceKind`].
//!
//! A device id becomes one level of an MQTT topic, so it is checked before it gets near one:
//! 1..=128 characters from `[A-Za-z0-9._-]`, which rules out the topic separator `/`, the
//! wildcards `+` and `#`, NUL, whitespace and anything a shell or a file name would trip over.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::version::echo;

/// A validated device identifier, safe to use as one MQTT topic level and as a client id suffix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// The longest accepted id, in characters (all accepted characters are one byte).
    pub const MAX_LEN: usize = 128;

    /// Validates `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, DeviceIdError> {
        let id = id.into();
        if id.is_empty() {
            return Err(DeviceIdError::Empty);
        }
        if let Some((offset, ch)) = id
            .char_indices()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(DeviceIdError::InvalidChar {
                id: echo(&id),
                ch,
                offset,
            });
        }
        if id.len() > Self::MAX_LEN {
            return Err(DeviceIdError::TooLong { len: id.len() });
        }
        Ok(DeviceId(id))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DeviceId::new(s)
    }
}

impl AsRef<str> for DeviceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DeviceId::new(text).map_err(serde::de::Error::custom)
    }
}

/// Why a string is not a [`DeviceId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    #[error("device id is empty")]
    Empty,
    #[error("device id is {len} characters long; at most 128 are allowed")]
    TooLong { len: usize },
    #[error(
        "device id {id}: character {ch:?} at byte {offset} is not allowed (allowed: A-Z a-z 0-9 . _ -)"
    )]
    InvalidChar { id: String, ch: char, offset: usize },
}

/// What kind of device the agent runs on; the rules that apply depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Microsoft Teams Rooms on Windows (formerly Skype Room System v2).
    TeamsRoomsWindows,
    /// Surface Hub (Windows 10 Team).
    SurfaceHub,
    /// Microsoft Teams Rooms on Android: its app has its own version scheme.
    TeamsRoomsAndroid,
    /// Not determined: no kind-specific rule can be applied.
    Unknown,
}

impl DeviceKind {
    /// The wire name (`teams_rooms_windows`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceKind::TeamsRoomsWindows => "teams_rooms_windows",
            DeviceKind::SurfaceHub => "surface_hub",
            DeviceKind::TeamsRoomsAndroid => "teams_rooms_android",
            DeviceKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for id in ["a", "MTR-0001", "room_4.floor-2", &"x".repeat(128)] {
            assert_eq!(DeviceId::new(id).expect(id).as_str(), id);
        }
    }

    #[test]
    fn rejects_topic_syntax_and_controls() {
        let cases = [
            ("", "device id is empty".to_owned()),
            (
                "a/b",
                "device id \"a/b\": character '/' at byte 1 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                "room+",
                "device id \"room+\": character '+' at byte 4 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                "#",
                "device id \"#\": character '#' at byte 0 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                "a\0b",
                "device id \"a\\0b\": character '\\0' at byte 1 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                "a b",
                "device id \"a b\": character ' ' at byte 1 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                "é",
                "device id \"é\": character 'é' at byte 0 is not allowed (allowed: A-Z a-z 0-9 . _ -)"
                    .to_owned(),
            ),
            (
                &"x".repeat(129),
                "device id is 129 characters long; at most 128 are allowed".to_owned(),
            ),
        ];
        for (input, message) in cases {
            let err = DeviceId::new(input).expect_err(input);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn deserialization_validates() {
        let id: DeviceId = serde_json::from_str("\"mtr-1\"").expect("valid");
        assert_eq!(id.as_str(), "mtr-1");
        let err = serde_json::from_str::<DeviceId>("\"a/b\"").expect_err("slash");
        assert!(err.to_string().contains("'/' at byte 1"), "{err}");
    }

    #[test]
    fn kinds_have_snake_case_wire_names() {
        for kind in [
            DeviceKind::TeamsRoomsWindows,
            DeviceKind::SurfaceHub,
            DeviceKind::TeamsRoomsAndroid,
            DeviceKind::Unknown,
        ] {
            let json = serde_json::to_string(&kind).expect("serialize");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }
}
