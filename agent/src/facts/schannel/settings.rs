//! The Schannel evidence's settings, owned here: whether the daemon reads the System log and
//! within which [`Bounds`], read from the agent's config file by [`read`].
//!
//! ```toml
//! schannel_events = true                 # optional; read Schannel's handshake events from the
//!                                        # System log on each check (Windows; default true)
//! schannel_window_days = 7               # optional; 1..=365, default 7: how far back
//! schannel_max_events = 20000            # optional; 1..=1000000, default 20000: the newest kept
//! ```
//!
//! Off Windows there is no System log: the keys are accepted (one config for a mixed fleet) and
//! the evidence is absent.

use super::Bounds;
use crate::keyfile::{KeyFile, KeyFileError};

/// The keys of this section.
pub(crate) const KEYS: &[&str] = &[
    "schannel_events",
    "schannel_window_days",
    "schannel_max_events",
];

/// Reads the section: `None` when `schannel_events = false`, else the bounds.
pub(crate) fn read(file: &mut KeyFile<'_>) -> Result<Option<Bounds>, KeyFileError> {
    let enabled = file
        .boolean("schannel_events")?
        .is_none_or(|b| b.into_inner());
    let window_days = file
        .integer(
            "schannel_window_days",
            1..=u64::from(Bounds::MAX_WINDOW_DAYS),
        )?
        .map_or(Bounds::DEFAULT_WINDOW_DAYS, |d| {
            u32::try_from(d.into_inner()).unwrap_or(Bounds::MAX_WINDOW_DAYS)
        });
    let max_events = file
        .integer("schannel_max_events", 1..=Bounds::MAX_EVENTS as u64)?
        .map_or(Bounds::DEFAULT_MAX_EVENTS, |n| {
            usize::try_from(n.into_inner()).unwrap_or(Bounds::MAX_EVENTS)
        });
    Ok(enabled.then_some(Bounds {
        window_days,
        max_events,
    }))
}
