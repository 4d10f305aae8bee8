//! Reconnect delays: exponential from 1 s, doubling to at most 5 min, with jitter so a fleet
//! that lost its broker at the same moment does not come back at the same moment.

use std::time::Duration;

/// Exponential backoff with "equal jitter": each delay is uniform in `[d/2, d]` where `d`
/// doubles from `initial` up to `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    pub const INITIAL: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(300);

    /// A backoff with the default bounds; `seed` decorrelates devices (any value, e.g. a hash of
    /// the device id mixed with the start time).
    pub fn new(seed: u64) -> Self {
        Self::with_bounds(Self::INITIAL, Self::MAX, seed)
    }

    pub fn with_bounds(initial: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            attempt: 0,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1u32.checked_shl(self.attempt).unwrap_or(u32::MAX))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let span = u64::try_from((ceiling - half).as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(self.random() % (span + 1))
    }

    /// Back to the initial delay, after a connection proved stable.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_bounds_and_caps() {
        let mut b = Backoff::new(42);
        let mut ceiling = Duration::from_secs(1);
        for _ in 0..20 {
            let d = b.next_delay();
            assert!(
                d >= ceiling / 2 && d <= ceiling,
                "{d:?} not in [{:?}, {ceiling:?}]",
                ceiling / 2
            );
            ceiling = (ceiling * 2).min(Backoff::MAX);
        }
        assert!(b.next_delay() >= Backoff::MAX / 2);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(7);
        for _ in 0..10 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
    }

    #[test]
    fn seeds_spread_devices() {
        let delays: std::collections::HashSet<Duration> = (0..50)
            .map(|seed| Backoff::new(seed * 7919).next_delay())
            .collect();
        assert!(delays.len() > 10, "jitter should spread: {delays:?}");
    }
}
