//! The roomready agent as a library: everything the daemon and `check` do, with every source of
//! the outside world (facts, clock, broker address) handed in as a value, so the simulator can
//! run thousands of real agents in one process and tests need no hardware.
//!
//! Pipeline: [`facts`] (what the device is) → [`assess`] (pure rules → verdict and findings) →
//! [`report`] (a protocol `State`) → [`link`] (MQTT). [`daemon`] ties them together on a timer;
//! [`config`] reads the daemon's configuration file.
//! [`update`] replaces the binary with a signed release from the update feed. [`start`] is what
//! every start does before the daemon runs.

#![forbid(unsafe_code)]

pub mod app_update;
pub mod assess;
pub mod clock;
pub mod command;
pub mod config;
pub mod daemon;
pub mod exit;
pub mod facts;
pub mod link;
pub mod probe;
pub mod report;
pub mod start;
pub mod terminal;
pub mod update;

pub use daemon::{Agent, AgentError, AgentSettings};
/// Shared with the controller (crate `roomready-connect`): bounded file reads, located config
/// errors and the loopback rule.
pub use roomready_connect::{files, keyfile, loopback};

#[cfg(test)]
mod robustness;
