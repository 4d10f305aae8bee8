//! Which `seq` numbers of one device have arrived, as ranges: duplicates are recognised, gaps
//! counted, and a late message that fills a gap is taken (never counted twice).
//!
//! A device numbers every state, event and command response it sends (`seq`, surviving restarts).
//! The controller starts counting at the first number it sees of a device: what the device sent
//! before that was never the controller's to lose. [`SeqLog`] is kept per device and stored as
//! compact text (`"1-40,42-97"`), so the usual case, everything in order, is one range.

use std::fmt;

/// What one arriving `seq` was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqOutcome {
    /// The first number seen of this device.
    First,
    /// New: the next in order, or a late one filling a hole.
    New,
    /// New, after a jump over `missing` numbers that have not arrived (yet).
    Gap { missing: u64 },
    /// Seen before: drop it.
    Duplicate,
}

/// The numbers seen, as sorted, disjoint, non-adjacent inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqLog {
    ranges: Vec<(u64, u64)>,
    /// Missing numbers of holes given up by [`SeqLog::bound`]: still missing, no longer
    /// fillable.
    forgotten: u64,
}

/// At most this many ranges are kept per device; beyond it the oldest hole is given up (its
/// numbers stay counted as missing, a late arrival into it is taken for a duplicate), so a device
/// that skips numbers all the time stays bounded.
pub const MAX_RANGES: usize = 256;

impl SeqLog {
    /// Records `seq`.
    pub fn insert(&mut self, seq: u64) -> SeqOutcome {
        let Some(&(_, last)) = self.ranges.last() else {
            self.ranges.push((seq, seq));
            return SeqOutcome::First;
        };
        if seq == last.saturating_add(1) {
            if let Some(range) = self.ranges.last_mut() {
                range.1 = seq;
            }
            return SeqOutcome::New;
        }
        if seq > last {
            self.ranges.push((seq, seq));
            self.bound();
            return SeqOutcome::Gap {
                missing: seq - last - 1,
            };
        }
        // At or below the highest: a duplicate, or a late arrival into a hole (or before the
        // first number seen, which extends the log downwards).
        let index = self.ranges.partition_point(|&(_, hi)| hi < seq);
        if let Some(&(lo, _)) = self.ranges.get(index)
            && lo <= seq
        {
            return SeqOutcome::Duplicate;
        }
        // `seq` lies just before ranges[index] (which exists: seq < last) and after
        // ranges[index - 1], if any.
        let joins_next = self.ranges[index].0 == seq + 1;
        let joins_prev = index > 0 && self.ranges[index - 1].1 + 1 == seq;
        match (joins_prev, joins_next) {
            (true, true) => {
                self.ranges[index - 1].1 = self.ranges[index].1;
                self.ranges.remove(index);
            }
            (true, false) => self.ranges[index - 1].1 = seq,
            (false, true) => self.ranges[index].0 = seq,
            (false, false) => {
                self.ranges.insert(index, (seq, seq));
                self.bound();
            }
        }
        SeqOutcome::New
    }

    /// Keeps at most [`MAX_RANGES`] ranges by merging the oldest hole away.
    fn bound(&mut self) {
        while self.ranges.len() > MAX_RANGES {
            let (lo, hi) = self.ranges.remove(0);
            self.forgotten += self.ranges[0].0 - hi - 1;
            self.ranges[0].0 = lo;
        }
    }

    /// The highest number seen.
    pub fn highest(&self) -> Option<u64> {
        self.ranges.last().map(|&(_, hi)| hi)
    }

    /// How many numbers between the first and the highest seen have not arrived.
    pub fn missing(&self) -> u64 {
        self.forgotten
            + self
                .ranges
                .windows(2)
                .map(|w| w[1].0 - w[0].1 - 1)
                .sum::<u64>()
    }

    /// How many numbers have arrived (each once).
    pub fn received(&self) -> u64 {
        self.ranges.iter().map(|&(lo, hi)| hi - lo + 1).sum::<u64>() - self.forgotten
    }

    /// Whether `seq` has arrived.
    pub fn contains(&self, seq: u64) -> bool {
        let index = self.ranges.partition_point(|&(_, hi)| hi < seq);
        self.ranges.get(index).is_some_and(|&(lo, _)| lo <= seq)
    }

    /// The ranges, oldest first.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.ranges
    }

    /// Parses the text [`fmt::Display`] writes; `None` for anything else (a damaged value is
    /// then started afresh by the caller, not trusted).
    pub fn parse(text: &str) -> Option<SeqLog> {
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let (forgotten, text) = match text.split_once('!') {
            Some((n, rest)) => (n.parse().ok()?, rest),
            None => (0, text),
        };
        if text.is_empty() {
            return (forgotten == 0).then(SeqLog::default);
        }
        for part in text.split(',') {
            let (lo, hi) = match part.split_once('-') {
                Some((lo, hi)) => (lo.parse().ok()?, hi.parse().ok()?),
                None => {
                    let n = part.parse().ok()?;
                    (n, n)
                }
            };
            if lo > hi
                || ranges
                    .last()
                    .is_some_and(|&(_, prev)| lo <= prev.saturating_add(1))
            {
                return None;
            }
            ranges.push((lo, hi));
        }
        let span = ranges.last()?.1 - ranges.first()?.0 + 1;
        let holes: u64 = ranges.windows(2).map(|w| w[1].0 - w[0].1 - 1).sum();
        if ranges.len() > MAX_RANGES || forgotten > span - holes {
            return None;
        }
        Some(SeqLog { ranges, forgotten })
    }
}

impl fmt::Display for SeqLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.forgotten > 0 {
            write!(f, "{}!", self.forgotten)?;
        }
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_one_range() {
        let mut log = SeqLog::default();
        assert_eq!(log.insert(5), SeqOutcome::First);
        for seq in 6..=100 {
            assert_eq!(log.insert(seq), SeqOutcome::New);
        }
        assert_eq!(log.to_string(), "5-100");
        assert_eq!(log.missing(), 0);
        assert_eq!(log.received(), 96);
        assert_eq!(log.highest(), Some(100));
    }

    #[test]
    fn duplicates_are_recognised_anywhere() {
        let mut log = SeqLog::default();
        for seq in [1, 2, 3, 7, 8] {
            log.insert(seq);
        }
        for seq in [1, 2, 3, 7, 8] {
            assert_eq!(log.insert(seq), SeqOutcome::Duplicate, "{seq}");
        }
        assert_eq!(log.to_string(), "1-3,7-8");
    }

    #[test]
    fn gaps_are_counted_and_filled() {
        let mut log = SeqLog::default();
        log.insert(1);
        assert_eq!(log.insert(5), SeqOutcome::Gap { missing: 3 });
        assert_eq!(log.missing(), 3);
        assert_eq!(log.insert(3), SeqOutcome::New);
        assert_eq!(log.to_string(), "1,3,5");
        assert_eq!(log.insert(2), SeqOutcome::New);
        assert_eq!(log.to_string(), "1-3,5");
        assert_eq!(log.insert(4), SeqOutcome::New);
        assert_eq!(log.to_string(), "1-5");
        assert_eq!(log.missing(), 0);
        // Below the first number seen: taken, extending the log.
        assert_eq!(log.insert(0), SeqOutcome::New);
        assert_eq!(log.to_string(), "0-5");
    }

    #[test]
    fn text_round_trips_and_damage_is_refused() {
        let mut log = SeqLog::default();
        for seq in [1, 2, 4, 9, 10, 11] {
            log.insert(seq);
        }
        let text = log.to_string();
        assert_eq!(text, "1-2,4,9-11");
        assert_eq!(SeqLog::parse(&text), Some(log));
        assert_eq!(SeqLog::parse(""), Some(SeqLog::default()));
        for bad in [
            "x", "3-1", "1-2,2-3", "1-2,3", "5,1", "1-", "-", "1,,2", "3!", "9!1-5", "x!1",
        ] {
            assert_eq!(SeqLog::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn holes_are_bounded() {
        let mut log = SeqLog::default();
        for i in 0..(MAX_RANGES as u64 * 3) {
            log.insert(i * 2);
        }
        let n = MAX_RANGES as u64 * 3;
        assert_eq!(log.ranges().len(), MAX_RANGES);
        assert!(log.contains(n * 2 - 2));
        // Every odd number below the highest is still missing, every even one received.
        assert_eq!(log.missing(), n - 1);
        assert_eq!(log.received(), n);
        assert_eq!(SeqLog::parse(&log.to_string()), Some(log));
    }
}
