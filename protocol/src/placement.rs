//! Where a device is: its site, room, rollout ring and tags, as the admin configured them on the
//! agent (keys `site`, `room`, `ring`, `tags`), and its local time's offset from UTC, as the
//! agent read it. Carried in `state` since 1.2 (absent when none is
//! configured), so a controller can show, filter and total the fleet by site, ring and tag, and
//! roll updates out ring by ring.
//!
//! Each part is a validated type, checked the same way when the agent reads its config and when
//! a controller decodes a `state`, so what a device sends cannot smuggle markup, control
//! characters or unbounded text into a dashboard, a metric label or a URL.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Where a device is. Every part is optional; an empty placement is not written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<Room>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ring: Option<Ring>,
    /// Distinct, at most [`Tags::MAX`], in the order configured.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
    /// The device's local time's offset from UTC when the agent started, in minutes (the agent
    /// reads it; rollout windows are in device local time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_offset_minutes: Option<UtcOffset>,
}

/// A local time's offset from UTC in minutes, within UTC-14:00..=UTC+14:00.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct UtcOffset(i16);

impl UtcOffset {
    /// The widest offset in use (UTC+14:00, Kiribati; UTC-12:00 is the lowest in use).
    pub const MAX_MINUTES: i16 = 14 * 60;

    pub fn new(minutes: i64) -> Result<UtcOffset, PlacementError> {
        i16::try_from(minutes)
            .ok()
            .filter(|m| m.abs() <= Self::MAX_MINUTES)
            .map(UtcOffset)
            .ok_or(PlacementError::OffsetOutOfRange { minutes })
    }

    /// From an offset in seconds (as the OS gives it), rounded toward zero to whole minutes.
    pub fn from_seconds(seconds: i32) -> Result<UtcOffset, PlacementError> {
        UtcOffset::new(i64::from(seconds / 60))
    }

    pub fn minutes(self) -> i16 {
        self.0
    }
}

impl<'de> Deserialize<'de> for UtcOffset {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes = i64::deserialize(deserializer)?;
        UtcOffset::new(minutes).map_err(serde::de::Error::custom)
    }
}

impl Placement {
    /// Whether nothing is configured (the `state` then carries no `placement`).
    pub fn is_empty(&self) -> bool {
        self.site.is_none()
            && self.room.is_none()
            && self.ring.is_none()
            && self.tags.is_empty()
            && self.utc_offset_minutes.is_none()
    }
}

/// Why a value is not a valid part of a [`Placement`]: what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("{what} is empty")]
    Empty { what: &'static str },
    #[error("{what} is {len} characters long; at most {max} are allowed")]
    TooLong {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error(
        "{what} {value}: character {ch:?} at byte {offset} is not allowed (allowed: {allowed})"
    )]
    InvalidChar {
        what: &'static str,
        value: String,
        ch: char,
        offset: usize,
        allowed: &'static str,
    },
    #[error("{what} {value}: starts or ends with a space")]
    Padded { what: &'static str, value: String },
    #[error("ring {ring} is out of range (0 = pilot ..= {max})")]
    RingOutOfRange { ring: u64, max: u8 },
    #[error("{count} tags; at most {max} are allowed")]
    TooManyTags { count: usize, max: usize },
    #[error("tag {tag:?} is given twice")]
    DuplicateTag { tag: String },
    #[error("a UTC offset of {minutes} minutes is out of range (-840..=840)")]
    OffsetOutOfRange { minutes: i64 },
}

/// `value` quoted and cut for an error message.
fn quoted(value: &str) -> String {
    const SHOWN: usize = 40;
    if value.chars().count() <= SHOWN {
        format!("{value:?}")
    } else {
        let head: String = value.chars().take(SHOWN).collect();
        format!("{head:?}...")
    }
}

/// Checks `value` against a length bound (in characters) and an alphabet.
fn check(
    what: &'static str,
    value: &str,
    max: usize,
    allowed: &'static str,
    accept: impl Fn(char) -> bool,
) -> Result<(), PlacementError> {
    if value.is_empty() {
        return Err(PlacementError::Empty { what });
    }
    let len = value.chars().count();
    if len > max {
        return Err(PlacementError::TooLong { what, len, max });
    }
    if let Some((offset, ch)) = value.char_indices().find(|&(_, c)| !accept(c)) {
        return Err(PlacementError::InvalidChar {
            what,
            value: quoted(value),
            ch,
            offset,
            allowed,
        });
    }
    Ok(())
}

/// A site: 1..=64 characters of A-Z a-z 0-9 . _ - (a building, a campus; usable as a filter,
/// a URL query value and a metric label as it is).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Site(String);

impl Site {
    pub const MAX_LEN: usize = 64;
    pub const ALLOWED: &'static str = "A-Z a-z 0-9 . _ -";

    pub fn new(site: impl Into<String>) -> Result<Site, PlacementError> {
        let site = site.into();
        check("site", &site, Self::MAX_LEN, Self::ALLOWED, |c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
        })?;
        Ok(Site(site))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A room: free text people read ("Fjord 4.12", "Salle Everest"), 1..=128 characters, no
/// control characters, not starting or ending with a space.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Room(String);

impl Room {
    pub const MAX_LEN: usize = 128;
    pub const ALLOWED: &'static str = "any character but a control character";

    pub fn new(room: impl Into<String>) -> Result<Room, PlacementError> {
        let room = room.into();
        check("room", &room, Self::MAX_LEN, Self::ALLOWED, |c| {
            !c.is_control()
        })?;
        if room.starts_with(' ') || room.ends_with(' ') {
            return Err(PlacementError::Padded {
                what: "room",
                value: quoted(&room),
            });
        }
        Ok(Room(room))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A rollout ring: 0 (the pilot ring, updated first) ..= [`Ring::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Ring(u8);

impl Ring {
    pub const PILOT: Ring = Ring(0);
    pub const MAX: u8 = 9;

    pub fn new(ring: u64) -> Result<Ring, PlacementError> {
        u8::try_from(ring)
            .ok()
            .filter(|r| *r <= Self::MAX)
            .map(Ring)
            .ok_or(PlacementError::RingOutOfRange {
                ring,
                max: Self::MAX,
            })
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A tag: 1..=32 characters of a-z 0-9 . _ - : (lower case, so `VIP` and `vip` cannot be two
/// tags).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    pub const MAX_LEN: usize = 32;
    pub const ALLOWED: &'static str = "a-z 0-9 . _ - :";

    pub fn new(tag: impl Into<String>) -> Result<Tag, PlacementError> {
        let tag = tag.into();
        check("tag", &tag, Self::MAX_LEN, Self::ALLOWED, |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | ':')
        })?;
        Ok(Tag(tag))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A device's tags: distinct, at most [`Tags::MAX`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Tags(Vec<Tag>);

impl Tags {
    pub const MAX: usize = 16;

    pub fn new(tags: Vec<Tag>) -> Result<Tags, PlacementError> {
        if tags.len() > Self::MAX {
            return Err(PlacementError::TooManyTags {
                count: tags.len(),
                max: Self::MAX,
            });
        }
        for (i, tag) in tags.iter().enumerate() {
            if tags[..i].contains(tag) {
                return Err(PlacementError::DuplicateTag { tag: tag.0.clone() });
            }
        }
        Ok(Tags(tags))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Tag> {
        self.0.iter()
    }

    pub fn contains(&self, tag: &str) -> bool {
        self.0.iter().any(|t| t.0 == tag)
    }
}

macro_rules! text_type {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = PlacementError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $ty::new(text).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_type!(Site);
text_type!(Room);
text_type!(Tag);

impl fmt::Display for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Ring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ring = u64::deserialize(deserializer)?;
        Ring::new(ring).map_err(serde::de::Error::custom)
    }
}

impl<'de> Deserialize<'de> for Tags {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// Reads at most one tag past the bound, so a huge array costs nothing more.
        struct Bounded;
        impl<'de> serde::de::Visitor<'de> for Bounded {
            type Value = Vec<Tag>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an array of at most {} tags", Tags::MAX)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Vec<Tag>, A::Error> {
                let mut tags = Vec::new();
                while let Some(tag) = seq.next_element::<Tag>()? {
                    if tags.len() == Tags::MAX {
                        return Err(serde::de::Error::custom(PlacementError::TooManyTags {
                            count: Tags::MAX + 1,
                            max: Tags::MAX,
                        }));
                    }
                    tags.push(tag);
                }
                Ok(tags)
            }
        }
        let tags = deserializer.deserialize_seq(Bounded)?;
        Tags::new(tags).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_parts_are_taken_as_written() {
        assert_eq!(
            Site::new("oslo-hq.b2").expect("site").as_str(),
            "oslo-hq.b2"
        );
        assert_eq!(
            Room::new("Fjord 4.12 – Sjø").expect("room").as_str(),
            "Fjord 4.12 – Sjø"
        );
        assert_eq!(Ring::new(0).expect("ring"), Ring::PILOT);
        assert_eq!(Ring::new(9).expect("ring").get(), 9);
        assert_eq!(Tag::new("board:vip").expect("tag").as_str(), "board:vip");
        let tags = Tags::new(vec![Tag::new("a").expect("a"), Tag::new("b").expect("b")]);
        assert!(tags.expect("tags").contains("b"));
    }

    #[test]
    fn invalid_parts_say_what_and_where() {
        let cases: Vec<(Result<(), PlacementError>, &str)> = vec![
            (Site::new("").map(drop), "site is empty"),
            (
                Site::new("oslo hq").map(drop),
                "site \"oslo hq\": character ' ' at byte 4 is not allowed (allowed: A-Z a-z 0-9 . _ -)",
            ),
            (
                Site::new("x".repeat(65)).map(drop),
                "site is 65 characters long; at most 64 are allowed",
            ),
            (
                Room::new("Fjord\u{7}").map(drop),
                "room \"Fjord\\u{7}\": character '\\u{7}' at byte 5 is not allowed (allowed: any character but a control character)",
            ),
            (
                Room::new(" Fjord").map(drop),
                "room \" Fjord\": starts or ends with a space",
            ),
            (
                Room::new("é".repeat(129)).map(drop),
                "room is 129 characters long; at most 128 are allowed",
            ),
            (
                Ring::new(10).map(drop),
                "ring 10 is out of range (0 = pilot ..= 9)",
            ),
            (
                Tag::new("VIP").map(drop),
                "tag \"VIP\": character 'V' at byte 0 is not allowed (allowed: a-z 0-9 . _ - :)",
            ),
            (
                Tags::new(vec![Tag::new("a").expect("a"), Tag::new("a").expect("a")]).map(drop),
                "tag \"a\" is given twice",
            ),
        ];
        for (result, message) in cases {
            assert_eq!(result.expect_err(message).to_string(), message);
        }
    }

    #[test]
    fn decoding_applies_the_same_rules_and_bounds_the_tags() {
        let placement: Placement = serde_json::from_str(
            r#"{"site":"oslo-hq","room":"Fjord","ring":1,"tags":["board","vip"]}"#,
        )
        .expect("valid placement");
        assert_eq!(placement.ring, Some(Ring(1)));
        assert!(serde_json::from_str::<Placement>(r#"{"site":"<script>"}"#).is_err());
        assert!(serde_json::from_str::<Placement>(r#"{"ring":-1}"#).is_err());
        assert!(serde_json::from_str::<Placement>(r#"{"ring":256}"#).is_err());
        assert!(serde_json::from_str::<Placement>(r#"{"utc_offset_minutes":841}"#).is_err());
        let east: Placement =
            serde_json::from_str(r#"{"utc_offset_minutes":330}"#).expect("UTC+05:30");
        assert_eq!(east.utc_offset_minutes.map(UtcOffset::minutes), Some(330));
        assert_eq!(
            UtcOffset::from_seconds(-3600 * 5)
                .expect("UTC-05:00")
                .minutes(),
            -300
        );
        let many = format!(
            r#"{{"tags":[{}]}}"#,
            (0..10_000)
                .map(|i| format!("\"t{i}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let error = serde_json::from_str::<Placement>(&many).expect_err("too many tags");
        assert!(error.to_string().contains("17 tags; at most 16"), "{error}");
        assert!(Placement::default().is_empty());
        assert_eq!(
            serde_json::to_string(&Placement::default()).expect("json"),
            "{}"
        );
    }
}
