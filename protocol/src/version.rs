//! Version numbers that rules compare: the Teams Rooms app's AppX quad and the Windows OS build;
//! the Teams Rooms on Android app's own scheme is [`AndroidAppVersion`] (module `android`).
//!
//! Both are compared numerically, field by field, never as text: `4.0.105.0 > 4.0.64.0` and
//! `15063.1897 > 15063.1835`. Parsing is strict and every rejection says which field is wrong and
//! why, because a version we misread would turn into a wrong verdict.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod android;

pub use android::{AndroidAppVersion, AndroidAppVersionError, AndroidAppVersionErrorReason};

/// Longest input echoed back in an error message; longer input is cut and marked with `…`.
const MAX_ECHO: usize = 64;

/// Quotes `input` for an error message: escaped like a Rust string, cut at [`MAX_ECHO`] chars.
pub(crate) fn echo(input: &str) -> String {
    if input.chars().count() <= MAX_ECHO {
        format!("{input:?}")
    } else {
        let cut: String = input.chars().take(MAX_ECHO).collect();
        format!("{cut:?}…")
    }
}

/// Parses one dot-separated numeric field: ASCII digits only (no sign, no spaces), at most `max`.
fn parse_field(text: &str, max: u32) -> Result<u32, FieldError> {
    // u64 with saturation: any overflow of u32 stays visible as a value above `max`.
    if text.is_empty() {
        return Err(FieldError::Empty);
    }
    let mut value: u64 = 0;
    for byte in text.bytes() {
        if !byte.is_ascii_digit() {
            return Err(FieldError::NotANumber);
        }
        value = value
            .saturating_mul(10)
            .saturating_add(u64::from(byte - b'0'));
    }
    u32::try_from(value)
        .ok()
        .filter(|&v| v <= max)
        .ok_or(FieldError::TooLarge)
}

enum FieldError {
    Empty,
    NotANumber,
    TooLarge,
}

/// A Teams Rooms app version: an AppX package version quad `major.minor.build.revision`, each
/// field 0..=65535 (AppX packs them as four 16-bit words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AppVersion {
    fields: [u16; 4],
}

impl AppVersion {
    /// The first Teams Rooms app version with TLS 1.2 client support (released 2018-12-14).
    pub const TLS12_MINIMUM: AppVersion = AppVersion::new(4, 0, 64, 0);

    /// Builds a version from its four fields.
    pub const fn new(major: u16, minor: u16, build: u16, revision: u16) -> Self {
        AppVersion {
            fields: [major, minor, build, revision],
        }
    }

    /// The four fields, most significant first.
    pub const fn fields(&self) -> [u16; 4] {
        self.fields
    }
}

impl fmt::Display for AppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.fields;
        write!(f, "{a}.{b}.{c}.{d}")
    }
}

/// Why a string is not an [`AppVersion`]; the message names the input and the field (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", echo(.input))]
pub struct AppVersionError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: AppVersionErrorReason,
}

/// What is wrong with a rejected [`AppVersion`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AppVersionErrorReason {
    #[error("empty version")]
    Empty,
    #[error("expected 4 dot-separated fields (major.minor.build.revision), found {0}")]
    FieldCount(usize),
    #[error("field {0} is empty")]
    EmptyField(usize),
    #[error("field {0} is not a number")]
    NotANumber(usize),
    #[error("field {0} is greater than 65535")]
    TooLarge(usize),
}

impl FromStr for AppVersion {
    type Err = AppVersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| AppVersionError {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(fail(AppVersionErrorReason::Empty));
        }
        let count = input.split('.').count();
        if count != 4 {
            return Err(fail(AppVersionErrorReason::FieldCount(count)));
        }
        let mut fields = [0u16; 4];
        for (index, text) in input.split('.').enumerate() {
            let number = index + 1;
            let value = parse_field(text, u32::from(u16::MAX)).map_err(|e| {
                fail(match e {
                    FieldError::Empty => AppVersionErrorReason::EmptyField(number),
                    FieldError::NotANumber => AppVersionErrorReason::NotANumber(number),
                    FieldError::TooLarge => AppVersionErrorReason::TooLarge(number),
                })
            })?;
            fields[index] = u16::try_from(value).expect("parse_field bounds the value to u16::MAX");
        }
        Ok(AppVersion { fields })
    }
}

impl Serialize for AppVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AppVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A Windows OS build as `CurrentBuild.UBR`, e.g. `15063.1835` (Surface Hub May 2019 update).
///
/// A full `10.0.15063.1835` is accepted too; its `10.0.` product prefix is ignored because the
/// build and update revision alone order Windows 10 and 11 releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsBuild {
    /// `CurrentBuild` (e.g. 15063, 19045).
    pub build: u32,
    /// `UBR`, the update build revision (e.g. 1835).
    pub revision: u32,
}

impl OsBuild {
    /// Surface Hub with KB4499162 (2019-05-28): TLS 1.2 for Skype for Business.
    pub const SURFACE_HUB_TLS12: OsBuild = OsBuild::new(15063, 1835);
    /// Surface Hub with KB4503289 (2019-06-18): TLS 1.2 during device-account setup.
    pub const SURFACE_HUB_TLS12_SETUP: OsBuild = OsBuild::new(15063, 1897);

    pub const fn new(build: u32, revision: u32) -> Self {
        OsBuild { build, revision }
    }
}

impl fmt::Display for OsBuild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.build, self.revision)
    }
}

/// Why a string is not an [`OsBuild`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", echo(.input))]
pub struct OsBuildError {
    pub input: String,
    pub reason: OsBuildErrorReason,
}

/// What is wrong with a rejected [`OsBuild`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OsBuildErrorReason {
    #[error("empty build")]
    Empty,
    #[error("expected BUILD.UBR (e.g. 15063.1835) or 10.0.BUILD.UBR, found {0} fields")]
    FieldCount(usize),
    #[error("field {0} is empty")]
    EmptyField(usize),
    #[error("field {0} is not a number")]
    NotANumber(usize),
    #[error("field {0} is greater than 4294967295")]
    TooLarge(usize),
}

impl FromStr for OsBuild {
    type Err = OsBuildError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| OsBuildError {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(fail(OsBuildErrorReason::Empty));
        }
        let count = input.split('.').count();
        if count != 2 && count != 4 {
            return Err(fail(OsBuildErrorReason::FieldCount(count)));
        }
        let mut values = [0u32; 4];
        for (index, text) in input.split('.').enumerate() {
            let number = index + 1;
            values[index] = parse_field(text, u32::MAX).map_err(|e| {
                fail(match e {
                    FieldError::Empty => OsBuildErrorReason::EmptyField(number),
                    FieldError::NotANumber => OsBuildErrorReason::NotANumber(number),
                    FieldError::TooLarge => OsBuildErrorReason::TooLarge(number),
                })
            })?;
        }
        let (build, revision) = if count == 2 {
            (values[0], values[1])
        } else {
            (values[2], values[3])
        };
        Ok(OsBuild { build, revision })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> AppVersion {
        s.parse().expect("valid version")
    }

    #[test]
    fn parses_and_prints_quads() {
        assert_eq!(v("4.0.64.0"), AppVersion::new(4, 0, 64, 0));
        assert_eq!(
            v("65535.65535.65535.65535").to_string(),
            "65535.65535.65535.65535"
        );
        assert_eq!(v("0.0.0.0").to_string(), "0.0.0.0");
        assert_eq!(v("04.00.064.0"), AppVersion::new(4, 0, 64, 0));
    }

    #[test]
    fn orders_numerically_not_textually() {
        assert!(v("4.0.105.0") > v("4.0.64.0"));
        assert!(v("4.0.63.65535") < v("4.0.64.0"));
        assert!(v("5.0.0.0") > v("4.65535.65535.65535"));
        assert!(v("4.0.64.1") > AppVersion::TLS12_MINIMUM);
        assert_eq!(v("4.0.64.0"), AppVersion::TLS12_MINIMUM);
    }

    #[test]
    fn rejections_name_the_field_and_reason() {
        let cases = [
            ("4.0.x.0", "\"4.0.x.0\": field 3 is not a number"),
            ("", "\"\": empty version"),
            (
                "4.0.64",
                "\"4.0.64\": expected 4 dot-separated fields (major.minor.build.revision), found 3",
            ),
            (
                "4.0.64.0.1",
                "\"4.0.64.0.1\": expected 4 dot-separated fields (major.minor.build.revision), found 5",
            ),
            ("4..64.0", "\"4..64.0\": field 2 is empty"),
            (
                "4.0.65536.0",
                "\"4.0.65536.0\": field 3 is greater than 65535",
            ),
            (
                "4.0.99999999999999999999.0",
                "\"4.0.99999999999999999999.0\": field 3 is greater than 65535",
            ),
            ("+4.0.64.0", "\"+4.0.64.0\": field 1 is not a number"),
            ("4.0.64.0 ", "\"4.0.64.0 \": field 4 is not a number"),
            ("4.0.-1.0", "\"4.0.-1.0\": field 3 is not a number"),
            ("4.0.６4.0", "\"4.0.６4.0\": field 3 is not a number"),
            (
                "1449/1.0.96.2024091202",
                "\"1449/1.0.96.2024091202\": field 1 is not a number",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<AppVersion>().expect_err(input);
            assert_eq!(err.to_string(), message, "input {input:?}");
        }
    }

    #[test]
    fn long_garbage_is_cut_in_messages() {
        let input = "x".repeat(10_000);
        let message = input
            .parse::<AppVersion>()
            .expect_err("garbage")
            .to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.contains('…'));
    }

    #[test]
    fn serde_uses_the_dotted_text() {
        let json = serde_json::to_string(&v("4.0.105.0")).expect("serialize");
        assert_eq!(json, "\"4.0.105.0\"");
        let back: AppVersion = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, v("4.0.105.0"));
        let err = serde_json::from_str::<AppVersion>("\"4.0\"").expect_err("short");
        assert!(err.to_string().contains("found 2"), "{err}");
    }

    #[test]
    fn os_builds_parse_and_order() {
        let b = |s: &str| s.parse::<OsBuild>().expect(s);
        assert_eq!(b("15063.1835"), OsBuild::SURFACE_HUB_TLS12);
        assert_eq!(b("10.0.15063.1897"), OsBuild::SURFACE_HUB_TLS12_SETUP);
        assert!(b("15063.1834") < OsBuild::SURFACE_HUB_TLS12);
        assert!(b("15063.10000") > OsBuild::SURFACE_HUB_TLS12_SETUP);
        assert!(b("19045.0") > OsBuild::SURFACE_HUB_TLS12_SETUP);
        assert_eq!(b("19045.4894").to_string(), "19045.4894");
    }

    #[test]
    fn os_build_rejections() {
        let cases = [
            ("", "\"\": empty build"),
            (
                "15063",
                "\"15063\": expected BUILD.UBR (e.g. 15063.1835) or 10.0.BUILD.UBR, found 1 fields",
            ),
            ("15063.", "\"15063.\": field 2 is empty"),
            ("15063.18a5", "\"15063.18a5\": field 2 is not a number"),
            (
                "15063.99999999999",
                "\"15063.99999999999\": field 2 is greater than 4294967295",
            ),
        ];
        for (input, message) in cases {
            let err = input.parse::<OsBuild>().expect_err(input);
            assert_eq!(err.to_string(), message);
        }
    }
}
