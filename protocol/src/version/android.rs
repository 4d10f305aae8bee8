//! The Teams Rooms on Android app version: its own scheme, recognised so that it is never
//! compared with, or mistaken for, a Windows app version.

use std::fmt;
use std::str::FromStr;

use super::{FieldError, MAX_ECHO, echo, parse_field};

/// A Teams Rooms on Android app version in the one form Microsoft documents for it:
/// `BUILD/MAJOR.MINOR.PATCH.STAMP`, e.g. `1449/1.0.96.2024091202`. The release notes
/// (rooms-release-note, Android tab), the app and firmware table (android-app-firmware, column
/// "Teams client") and Devices for Teams (teams-ip-phones, "Microsoft Teams app version") all
/// show it so: build 1449, release 1.0.94 (2020), 1.0.96 or 1.0.97, then a ten-digit stamp. The
/// stamp is a number, not a date (`1449/1.0.96.2025325609` is the October 2025 release), so it
/// is kept as a number and never read as one. `BUILD/MAJOR.MINOR.PATCH` without the stamp is
/// accepted too (earlier versions of roomready accepted it).
///
/// Parsing is strict: ASCII digits, one `/`, dots, nothing else (no label such as
/// "Teams version", no spaces, no other digits than `0-9`) and at most
/// [`AndroidAppVersion::MAX_LEN`] bytes; every rejection says what is wrong and where.
/// The 4.0.64.0 threshold of Teams Rooms on Windows does not apply to it: it is recognised so
/// that it is never compared with, or mistaken for, a Windows app version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AndroidAppVersion {
    build: u32,
    release: [u32; 3],
    stamp: Option<u64>,
}

impl AndroidAppVersion {
    /// The longest text accepted, in bytes: documented versions have 22 characters.
    pub const MAX_LEN: usize = 64;

    /// The build number before the `/` (1449 in every documented version).
    pub fn build(&self) -> u32 {
        self.build
    }

    /// `MAJOR.MINOR.PATCH` after the `/`: `[1, 0, 96]`.
    pub fn release(&self) -> [u32; 3] {
        self.release
    }

    /// The stamp after the release (`2024091202`), when the version has one.
    pub fn stamp(&self) -> Option<u64> {
        self.stamp
    }
}

impl fmt::Display for AndroidAppVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [major, minor, patch] = self.release;
        write!(f, "{}/{major}.{minor}.{patch}", self.build)?;
        if let Some(stamp) = self.stamp {
            write!(f, ".{stamp}")?;
        }
        Ok(())
    }
}

/// Why a text is not an [`AndroidAppVersion`]; the message names the input (cut to 64
/// characters) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not a Teams Rooms on Android app version (BUILD/MAJOR.MINOR.PATCH.STAMP, e.g. 1449/1.0.96.2024091202): {reason}", echo(.input))]
pub struct AndroidAppVersionError {
    /// The rejected input, cut after 65 characters so that a huge input stays small here
    /// (the message shows 64 and marks the cut).
    pub input: String,
    /// What is wrong with it.
    pub reason: AndroidAppVersionErrorReason,
}

/// What is wrong with a rejected [`AndroidAppVersion`]. Positions are 1-based characters;
/// fields are counted after the `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AndroidAppVersionErrorReason {
    #[error("empty version")]
    Empty,
    #[error("{0} bytes long; a version has at most {max}", max = AndroidAppVersion::MAX_LEN)]
    TooLong(usize),
    #[error(
        "character {position} ({found:?}) is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces"
    )]
    UnexpectedCharacter { position: usize, found: char },
    #[error("no '/' between the build number and the release")]
    NoSlash,
    #[error("more than one '/'")]
    ExtraSlash,
    #[error("the build number before '/' is empty")]
    EmptyBuild,
    #[error("the build number before '/' is not a number")]
    BuildNotANumber,
    #[error("the build number before '/' is greater than 4294967295")]
    BuildTooLarge,
    #[error("expected 3 or 4 dot-separated fields after '/' (MAJOR.MINOR.PATCH.STAMP), found {0}")]
    FieldCount(usize),
    #[error("field {0} after '/' is empty")]
    EmptyField(usize),
    #[error("field {0} after '/' is greater than 4294967295")]
    TooLarge(usize),
    #[error("the stamp (field 4 after '/') is greater than 18446744073709551615")]
    StampTooLarge,
}

impl FromStr for AndroidAppVersion {
    type Err = AndroidAppVersionError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        use AndroidAppVersionErrorReason as Reason;
        let fail = |reason| AndroidAppVersionError {
            input: input.chars().take(MAX_ECHO + 1).collect(),
            reason,
        };
        if input.is_empty() {
            return Err(fail(Reason::Empty));
        }
        if input.len() > Self::MAX_LEN {
            return Err(fail(Reason::TooLong(input.len())));
        }
        // Only digits, dots and slashes from here on: every field below is ASCII digits.
        if let Some((index, found)) = input
            .chars()
            .enumerate()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '/'))
        {
            return Err(fail(Reason::UnexpectedCharacter {
                position: index + 1,
                found,
            }));
        }
        let (build, release) = input.split_once('/').ok_or_else(|| fail(Reason::NoSlash))?;
        if release.contains('/') {
            return Err(fail(Reason::ExtraSlash));
        }
        let build = parse_field(build, u32::MAX).map_err(|e| {
            fail(match e {
                FieldError::Empty => Reason::EmptyBuild,
                FieldError::NotANumber => Reason::BuildNotANumber,
                FieldError::TooLarge => Reason::BuildTooLarge,
            })
        })?;
        let fields: Vec<&str> = release.split('.').collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(fail(Reason::FieldCount(fields.len())));
        }
        let mut release = [0u32; 3];
        for (index, text) in fields.iter().take(3).enumerate() {
            let number = index + 1;
            release[index] = parse_field(text, u32::MAX).map_err(|e| {
                fail(match e {
                    FieldError::Empty => Reason::EmptyField(number),
                    // Only digits are left: a field that is not a number is too long for one.
                    FieldError::NotANumber | FieldError::TooLarge => Reason::TooLarge(number),
                })
            })?;
        }
        let stamp = match fields.get(3) {
            None => None,
            Some(&"") => return Err(fail(Reason::EmptyField(4))),
            // Digits only (checked above): parsing fails only on overflow.
            Some(text) => Some(
                text.parse::<u64>()
                    .map_err(|_| fail(Reason::StampTooLarge))?,
            ),
        };
        Ok(AndroidAppVersion {
            build,
            release,
            stamp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::AppVersion;

    fn android(s: &str) -> AndroidAppVersion {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    #[test]
    fn android_versions_in_every_documented_form() {
        let v = android("1449/1.0.96.2024091202");
        assert_eq!(v.build(), 1449);
        assert_eq!(v.release(), [1, 0, 96]);
        assert_eq!(v.stamp(), Some(2_024_091_202));
        assert_eq!(v.to_string(), "1449/1.0.96.2024091202");
        // Every shape the docs show: the first release (1.0.94, 2020), AudioCodes' 1.0.97, a
        // stamp that is not a date (October 2025), and the largest numbers a field holds.
        for text in [
            "1449/1.0.94.2020062501",
            "1449/1.0.94.2020102101",
            "1449/1.0.97.2023062301",
            "1449/1.0.96.2025325609",
            "1449/1.0.96.2026129709",
            "4294967295/4294967295.0.0.18446744073709551615",
        ] {
            assert_eq!(android(text).to_string(), text);
        }
        assert_eq!(
            android("1449/1.0.96.2025325609").stamp(),
            Some(2_025_325_609)
        );
        // Without the stamp (accepted before), and leading zeros read as numbers.
        assert_eq!(android("1449/1.0.96").stamp(), None);
        assert_eq!(android("1449/1.0.96").to_string(), "1449/1.0.96");
        assert_eq!(android("01449/01.0.96.2"), android("1449/1.0.96.2"));
        // A Windows quad is not an Android version, nor the other way round.
        assert!("4.0.64.0".parse::<AndroidAppVersion>().is_err());
        assert!("1449/1.0.96.2024091202".parse::<AppVersion>().is_err());
    }

    #[test]
    fn android_rejections_say_what_and_where() {
        let prefix = " is not a Teams Rooms on Android app version (BUILD/MAJOR.MINOR.PATCH.STAMP, e.g. 1449/1.0.96.2024091202): ";
        let cases = [
            ("", "empty version"),
            ("1449", "no '/' between the build number and the release"),
            (
                "4.0.64.0",
                "no '/' between the build number and the release",
            ),
            ("/", "the build number before '/' is empty"),
            ("/1.0.96.1", "the build number before '/' is empty"),
            (
                "1.4/1.0.96.1",
                "the build number before '/' is not a number",
            ),
            (
                "4294967296/1.0.96.1",
                "the build number before '/' is greater than 4294967295",
            ),
            (
                "1449/",
                "expected 3 or 4 dot-separated fields after '/' (MAJOR.MINOR.PATCH.STAMP), found 1",
            ),
            ("1449//1.0.96.1", "more than one '/'"),
            ("1449/1.0.96.1/", "more than one '/'"),
            (
                "1449/1.0",
                "expected 3 or 4 dot-separated fields after '/' (MAJOR.MINOR.PATCH.STAMP), found 2",
            ),
            (
                "1449/1.0.96.1.2",
                "expected 3 or 4 dot-separated fields after '/' (MAJOR.MINOR.PATCH.STAMP), found 5",
            ),
            ("1449/1..96.1", "field 2 after '/' is empty"),
            ("1449/1.0.96.", "field 4 after '/' is empty"),
            ("1449/.1.0.96", "field 1 after '/' is empty"),
            (
                "1449/1.4294967296.96.1",
                "field 2 after '/' is greater than 4294967295",
            ),
            (
                "1449/1.0.96.18446744073709551616",
                "the stamp (field 4 after '/') is greater than 18446744073709551615",
            ),
            (
                "1449/1.0.9a.1",
                "character 11 ('a') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "-1/1.0.96.1",
                "character 1 ('-') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "+1449/1.0.96.1",
                "character 1 ('+') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                " 1449/1.0.96.1",
                "character 1 (' ') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449/1.0.96.1\n",
                "character 14 ('\\n') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449/1.0.96.1\0",
                "character 14 ('\\0') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            // Labels the docs put in front of the version are not part of it.
            (
                "Teams version 1449/1.0.96.2021051904",
                "character 1 ('T') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            // Other separators and other digits.
            (
                "1449\\1.0.96.1",
                "character 5 ('\\\\') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449/1,0,96,1",
                "character 7 (',') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449∕1.0.96.1",
                "character 5 ('∕') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "１４４９/1.0.96.1",
                "character 1 ('１') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449/١.0.96.1",
                "character 6 ('١') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
            (
                "1449/1.0.96.1e3",
                "character 14 ('e') is not an ASCII digit, '.' or '/'; give the version alone, without a label or spaces",
            ),
        ];
        for (input, reason) in cases {
            let err = input.parse::<AndroidAppVersion>().expect_err(input);
            assert_eq!(
                err.to_string(),
                format!("{}{prefix}{reason}", echo(input)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn huge_android_input_is_refused_and_its_error_stays_small() {
        let huge = format!("1449/1.0.96.{}", "9".repeat(1 << 20));
        let err = huge.parse::<AndroidAppVersion>().expect_err("huge");
        assert_eq!(
            err.reason,
            AndroidAppVersionErrorReason::TooLong(huge.len())
        );
        assert_eq!(
            err.input.chars().count(),
            MAX_ECHO + 1,
            "the error keeps a bounded cut"
        );
        let message = err.to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.contains("…"), "the cut is marked: {message}");
        assert!(
            message.ends_with("1048588 bytes long; a version has at most 64"),
            "{message}"
        );
        // 65 bytes is one too many, 64 is fine.
        let at_limit = format!("1449/1.0.96.{}", "9".repeat(64 - 12));
        assert_eq!(at_limit.len(), AndroidAppVersion::MAX_LEN);
        assert_eq!(
            at_limit
                .parse::<AndroidAppVersion>()
                .expect_err("52 nines")
                .reason,
            AndroidAppVersionErrorReason::StampTooLarge,
            "within the length limit, the stamp's own bound applies"
        );
        let at_limit = format!("1449/{}.0.96.1", "0".repeat(64 - 12));
        assert_eq!(android(&at_limit).release(), [0, 0, 96]);
        let over = format!("0{at_limit}");
        assert_eq!(
            over.parse::<AndroidAppVersion>()
                .expect_err("65 bytes")
                .reason,
            AndroidAppVersionErrorReason::TooLong(65)
        );
        // Multi-byte input counts in bytes and is cut on a character boundary.
        let wide = "版".repeat(100);
        let err = wide.parse::<AndroidAppVersion>().expect_err("wide");
        assert_eq!(err.reason, AndroidAppVersionErrorReason::TooLong(300));
        assert_eq!(err.input.chars().count(), MAX_ECHO + 1);
    }

    /// Every string of a small alphabet of the characters that matter, up to 6 long, plus
    /// pseudo-random bytes: nothing panics, and whatever parses prints back to a text that
    /// parses to the same version.
    #[test]
    fn android_parser_never_panics_and_round_trips() {
        let alphabet = ['1', '0', '9', '.', '/', ' ', 'x', '\u{0}', '١'];
        let mut checked = 0usize;
        let mut text = String::new();
        fn each(alphabet: &[char], text: &mut String, depth: usize, checked: &mut usize) {
            if let Ok(v) = text.parse::<AndroidAppVersion>() {
                assert_eq!(
                    v.to_string().parse::<AndroidAppVersion>(),
                    Ok(v),
                    "{text:?}"
                );
            }
            *checked += 1;
            if depth == 0 {
                return;
            }
            for &c in alphabet {
                text.push(c);
                each(alphabet, text, depth - 1, checked);
                text.pop();
            }
        }
        each(&alphabet, &mut text, 6, &mut checked);
        assert!(checked > 500_000, "{checked}");
        // xorshift: deterministic pseudo-random byte strings, lossily made text.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            let mut bytes = Vec::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 80) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly digits, dots and slashes, so that deep paths are reached.
                bytes.push(match state % 8 {
                    0..=4 => b'0' + (state >> 8) as u8 % 10,
                    5 => b'.',
                    6 => b'/',
                    _ => (state >> 16) as u8,
                });
            }
            let text = String::from_utf8_lossy(&bytes);
            match text.parse::<AndroidAppVersion>() {
                Ok(v) => assert_eq!(v.to_string().parse::<AndroidAppVersion>(), Ok(v)),
                Err(e) => assert!(e.to_string().len() < 600, "{e}"),
            }
        }
    }
}
