//! The wall clock, as the protocol's [`Timestamp`].

use std::time::{SystemTime, UNIX_EPOCH};

use roomready_protocol::Timestamp;

/// Now; a clock set before 1970 reads as the epoch.
pub fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    Timestamp::from_unix_ms(ms)
}
