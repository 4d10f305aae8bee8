//! When the daemon checks for updates by itself (`auto_update = true`): once a day, at a random
//! moment inside the maintenance window (`update_window`, local time, default 01:00–05:00), so a
//! fleet does not hit the feed at the same second and rooms are not disturbed in office hours.
//! Pure: the caller supplies the time, the local UTC offset and the randomness.

use std::fmt;
use std::str::FromStr;

/// Minutes in a day.
const DAY: u32 = 24 * 60;

/// A daily time range in local time, `HH:MM-HH:MM`; it may wrap past midnight (`22:00-02:00`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Minutes after local midnight.
    pub start: u32,
    pub end: u32,
}

impl Default for Window {
    /// 01:00–05:00.
    fn default() -> Self {
        Window {
            start: 60,
            end: 300,
        }
    }
}

impl Window {
    /// Its length in minutes (a wrapping window counts across midnight).
    pub fn minutes(&self) -> u32 {
        (self.end + DAY - self.start) % DAY
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl FromStr for Window {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || format!("expected HH:MM-HH:MM (local time), found {text:?}");
        let (start, end) = text.split_once('-').ok_or_else(expected)?;
        let minute = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let window = Window {
            start: minute(start).ok_or_else(expected)?,
            end: minute(end).ok_or_else(expected)?,
        };
        if window.minutes() == 0 {
            return Err(format!("the window {text:?} is empty"));
        }
        Ok(window)
    }
}

/// Milliseconds from `now_ms` (UTC, Unix) to the next check: a moment `random` (any u64) picks
/// uniformly within the rest of today's window when `now` is inside it and no check ran in it
/// yet (`checked_in_window == false`), else within the next window.
pub(crate) fn next_check_in(
    now_ms: u64,
    utc_offset_secs: i32,
    window: Window,
    checked_in_window: bool,
    random: u64,
) -> u64 {
    let day_ms = u64::from(DAY) * 60_000;
    let local_ms =
        (i128::from(now_ms) + i128::from(utc_offset_secs) * 1000).rem_euclid(i128::from(day_ms));
    let local_ms = u64::try_from(local_ms).expect("rem_euclid of a positive modulus is in range");
    let start_ms = u64::from(window.start) * 60_000;
    let length_ms = u64::from(window.minutes()) * 60_000;
    // How far into the window we are, if inside it.
    let into = (local_ms + day_ms - start_ms) % day_ms;
    if into < length_ms && !checked_in_window {
        let rest = length_ms - into;
        return random % rest;
    }
    let until_start = (start_ms + day_ms - local_ms) % day_ms;
    let until_start = if until_start == 0 {
        day_ms
    } else {
        until_start
    };
    until_start + random % length_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn windows_parse_and_print() {
        assert_eq!("01:00-05:00".parse::<Window>(), Ok(Window::default()));
        assert_eq!(Window::default().to_string(), "01:00-05:00");
        let wrap: Window = "22:30-02:00".parse().expect("wraps");
        assert_eq!(wrap.minutes(), 210);
        for bad in [
            "",
            "1:00-5:00",
            "01:00",
            "25:00-01:00",
            "01:60-02:00",
            "03:00-03:00",
            "aa:bb-cc:dd",
        ] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_next_check_falls_inside_the_window() {
        let w = Window::default();
        // 00:00 UTC, offset 0: the window opens in 1 h and lasts 4 h.
        for random in [0, 1, 7, u64::MAX, 123_456_789] {
            let wait = next_check_in(0, 0, w, false, random);
            assert!((HOUR..5 * HOUR).contains(&wait), "{wait}");
        }
        // 03:00, inside, not yet checked: within the remaining 2 h.
        let wait = next_check_in(3 * HOUR, 0, w, false, u64::MAX);
        assert!(wait < 2 * HOUR, "{wait}");
        // 03:00, already checked: tomorrow's window, 22..26 h away.
        let wait = next_check_in(3 * HOUR, 0, w, true, 5);
        assert!((22 * HOUR..26 * HOUR).contains(&wait), "{wait}");
        // 06:00: tomorrow's window.
        let wait = next_check_in(6 * HOUR, 0, w, false, 0);
        assert_eq!(wait, 19 * HOUR);
    }

    #[test]
    fn the_local_offset_moves_the_window() {
        let w = Window::default();
        // 23:00 UTC is 01:00 at UTC+2: inside the window.
        let wait = next_check_in(23 * HOUR, 2 * 3600, w, false, u64::MAX);
        assert!(wait < 4 * HOUR, "{wait}");
        // 02:00 UTC is 21:00 at UTC-5: the window opens in 4 h.
        assert_eq!(next_check_in(2 * HOUR, -5 * 3600, w, false, 0), 4 * HOUR);
    }

    #[test]
    fn a_window_across_midnight() {
        let w: Window = "23:00-01:00".parse().expect("valid");
        assert!(next_check_in(HOUR / 2, 0, w, false, u64::MAX) < HOUR / 2);
        assert_eq!(next_check_in(22 * HOUR, 0, w, false, 0), HOUR);
    }
}
