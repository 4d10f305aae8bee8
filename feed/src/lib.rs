//! The agent's update feed, both sides of one contract: the updater that reads it (the agent),
//! the publisher that writes it (`roomready-release`), and the simulator's update server that
//! serves it all use this crate, so a change here changes every side at once.
//!
//! - [`naming`]: channels, the manifest's file name, artifact and binary names, versions and
//!   targets.
//! - [`keys`]: the pinned verifying key's encoding; with `publish`, key generation.
//! - [`manifest`]: `{feed}/{channel}/manifest.json` (`self_update`'s schema 1).
//! - With the `publish` feature: [`pack`] (one-file archives signed with zipsign, the file name
//!   as context), [`publish`] (artifact and manifest into a feed, atomically) and [`cli`] (the
//!   `keygen` and `release` commands of `roomready-release`, also `roomready-sim`'s).
//!
//! Verifying a download is the updater's (`roomready_agent::update`, through `self_update` and
//! zipsign with the keys [`keys::decode_verifying_key`] decoded).
#![forbid(unsafe_code)]

mod error;
pub mod keys;
pub mod manifest;
pub mod naming;

#[cfg(feature = "publish")]
pub mod cli;
#[cfg(feature = "publish")]
pub mod pack;
#[cfg(feature = "publish")]
pub mod publish;

pub use error::FeedError;
pub use naming::{
    AGENT_BIN, Channel, MANIFEST_FILE, archive_ext, artifact_name, binary_name, check_target,
    is_windows_target, parse_version, this_target,
};

#[cfg(all(test, feature = "publish"))]
mod tests;
