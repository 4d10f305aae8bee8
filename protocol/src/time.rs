//! [`Timestamp`]: a UTC instant with millisecond precision, written as RFC 3339
//! (`2026-11-23T14:07:25.123Z`) on the wire.
//!
//! The conversion is done here (days-from-civil arithmetic) rather than with a date crate because
//! the protocol needs exactly one format, and keeping this crate dependency-free beyond serde lets
//! dashboards use it cheaply. Reading the clock is the caller's job: this crate does no I/O.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::version::echo;

/// Milliseconds since 1970-01-01T00:00:00Z (no leap seconds), years 1970..=9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

/// 9999-12-31T23:59:59.999Z, the last instant RFC 3339's four-digit year can write.
const MAX_MS: u64 = 253_402_300_799_999;

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp(0);

    /// From milliseconds since the Unix epoch; instants after year 9999 are clamped to its end.
    pub const fn from_unix_ms(ms: u64) -> Self {
        Timestamp(if ms > MAX_MS { MAX_MS } else { ms })
    }

    pub const fn unix_ms(self) -> u64 {
        self.0
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number from [`days_from_civil`] (Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

impl Timestamp {
    /// RFC 3339 to the whole second (`2026-07-16T09:30:45Z`), as file formats such as
    /// self_update's manifest date their entries; the wire format ([`fmt::Display`]) keeps the
    /// milliseconds.
    pub fn to_rfc3339_secs(self) -> String {
        let mut text = self.to_string();
        // "YYYY-MM-DDThh:mm:ss.mmmZ": drop ".mmm".
        text.replace_range(19..23, "");
        text
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = i64::try_from(self.0).expect("timestamps are clamped below year 10000");
        let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            sod / 3600,
            sod % 3600 / 60,
            sod % 60
        )
    }
}

/// Why a string is not an RFC 3339 [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {input}: {reason}")]
pub struct TimestampError {
    pub input: String,
    pub reason: &'static str,
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    /// Accepts `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t`/`z` in lower case too; fractions
    /// beyond milliseconds are truncated. Instants before 1970 are rejected.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TimestampError {
            input: echo(input),
            reason,
        };
        let b = input.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = b.get(range)?;
            digits.iter().try_fold(0i64, |acc, &d| {
                d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
            })
        };
        let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
        if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt") && sep(13, b":") && sep(16, b":")) {
            return Err(fail(
                "expected YYYY-MM-DDTHH:MM:SS followed by Z or an offset",
            ));
        }
        let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
            num(0..4),
            num(5..7),
            num(8..10),
            num(11..13),
            num(14..16),
            num(17..19),
        ) else {
            return Err(fail("date or time field is not a number"));
        };
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(fail("no such date"));
        }
        if hour > 23 || minute > 59 || second > 59 {
            return Err(fail("no such time of day"));
        }
        let mut at = 19;
        let mut millis = 0i64;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                if at - start < 3 {
                    millis = millis * 10 + i64::from(b[at] - b'0');
                }
                at += 1;
            }
            if at == start {
                return Err(fail("empty fraction of a second"));
            }
            for _ in (at - start)..3 {
                millis *= 10;
            }
        }
        let offset_minutes = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() && b[at + 3] == b':' => {
                let (Some(oh), Some(om)) = (num(at + 1..at + 3), num(at + 4..at + 6)) else {
                    return Err(fail("offset is not a number"));
                };
                if oh > 23 || om > 59 {
                    return Err(fail("offset out of range"));
                }
                let minutes = oh * 60 + om;
                if sign == b'+' { minutes } else { -minutes }
            }
            _ => return Err(fail("expected Z or ±HH:MM after the time")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
        let ms = secs * 1000 + millis;
        match u64::try_from(ms) {
            Ok(ms) if ms <= MAX_MS => Ok(Timestamp(ms)),
            _ => Err(fail("outside 1970-01-01 ..= 9999-12-31 UTC")),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect(s)
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(
            Timestamp::from_unix_ms(1_795_442_845_123).to_rfc3339_secs(),
            "2026-11-23T14:07:25Z"
        );
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_rfc3339_secs(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX).to_rfc3339_secs(),
            "9999-12-31T23:59:59Z"
        );
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(
            Timestamp::UNIX_EPOCH.to_string(),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(1_795_442_845_123).to_string(),
            "2026-11-23T14:07:25.123Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(
            Timestamp::from_unix_ms(u64::MAX).to_string(),
            "9999-12-31T23:59:59.999Z"
        );
    }

    #[test]
    fn parse_inverts_format_across_the_range() {
        let mut ms = 0u64;
        while ms < MAX_MS {
            let t = Timestamp::from_unix_ms(ms);
            assert_eq!(ts(&t.to_string()), t);
            ms = ms * 3 + 86_399_999 + 7;
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        assert_eq!(
            ts("2026-11-23T15:07:25.123+01:00"),
            ts("2026-11-23T14:07:25.123Z")
        );
        assert_eq!(ts("2026-11-23t14:07:25z").unix_ms(), 1_795_442_845_000);
        assert_eq!(ts("2026-11-23T14:07:25.1Z").unix_ms(), 1_795_442_845_100);
        assert_eq!(
            ts("2026-11-23T14:07:25.123456789Z").unix_ms(),
            1_795_442_845_123
        );
        assert_eq!(ts("2026-11-23T09:37:25-04:30"), ts("2026-11-23T14:07:25Z"));
    }

    #[test]
    fn rejects_malformed() {
        for (input, reason) in [
            ("", "expected YYYY-MM-DD"),
            ("2026-11-23", "expected YYYY-MM-DD"),
            ("2026-11-23 14:07:25Z", "expected YYYY-MM-DD"),
            ("2026-1x-23T14:07:25Z", "not a number"),
            ("2026-02-29T00:00:00Z", "no such date"),
            ("2026-13-01T00:00:00Z", "no such date"),
            ("2026-11-23T24:00:00Z", "no such time"),
            ("2026-11-23T14:07:25", "expected Z"),
            ("2026-11-23T14:07:25.Z", "empty fraction"),
            ("2026-11-23T14:07:25Zjunk", "expected Z"),
            ("2026-11-23T14:07:25+0100", "expected Z"),
            ("1969-12-31T23:59:59Z", "outside"),
        ] {
            let err = input.parse::<Timestamp>().expect_err(input);
            assert!(err.to_string().contains(reason), "{input:?}: {err}");
        }
    }
}
