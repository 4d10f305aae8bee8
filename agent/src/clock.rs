//! The clock as a value handed to the agent, so simulations and tests control time stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use roomready_protocol::Timestamp;

/// A source of wall-clock time stamps.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        // A clock set before 1970 reads as the epoch rather than failing the report.
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp::from_unix_ms(ms)
    }
}
