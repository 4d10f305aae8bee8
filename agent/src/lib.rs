//! The roomready agent as a library: everything the daemon and `check` do, with every source of
//! the outside world (facts, clock, broker address, storage, updater) handed in as a value, so
//! the simulator can run thousands of real agents in one process and tests need no hardware.
//!
//! Pipeline: [`facts`] (what the device is) → [`assess`] (pure rules → verdict and findings) →
//! [`report`] (a protocol `State`) → [`link`] (MQTT). The daemon (private) ties them together
//! on a timer; [`config`] reads the daemon's configuration file; [`update`] replaces the binary
//! with a signed release from the update feed.
//!
//! # The public API
//! Modules and items are private to the crate unless another crate uses them (the lint
//! `unreachable_pub` holds every `pub` to that); what is public:
//! - **Running an agent**: [`start::from_config`] turns a [`config::Config`] into a ready
//!   [`Agent`] the way `roomready-agent run`, the Windows service and the simulator's devices
//!   all start; [`Agent::new`] / [`Agent::with_storage`] build one from [`AgentSettings`] with
//!   the environment handed in: a [`facts::FactsSource`], a [`clock::Clock`], a [`Storage`]
//!   (a [`link::outbox::Spool`] and a [`command::ledger::Ledger`]), an [`Updater`] and an
//!   [`app_update::AppUpdater`]. It runs until its stop future completes ([`Stopped`]).
//! - **The binary's commands**: [`cli`] (`check`, `run`, `self-test`, `update`, `fix`), their
//!   exit codes in [`exit`], [`terminal`] colour.
//! - **The opt-in registry repair**: [`fix`] (plan, apply, undo) with its environment
//!   [`fix::FixEnv`] (a [`facts::registry::write::RegistryWrite`], the state directory,
//!   `allow_fix`), handed to an agent in [`AgentSettings::fix`].
//! - **The parts tested and reused on their own**: [`probe`] (TLS probes of an endpoint, used
//!   by the simulator's farm tests), [`assess`] and [`report`], [`link`] (the MQTT link and its
//!   journal), [`update`] (the feed client and the trial), [`command`] (the id rule and the
//!   ledger).
//! - Shared with the controller through `roomready-connect`: [`files`], [`keyfile`],
//!   [`loopback`].

// Denied, not forbidden: the one exception is the Windows Event Log FFI
// (`facts::schannel::native`), which allows it for itself.
#![deny(unsafe_code)]
#![warn(unreachable_pub)]
// Internal docs link private items on purpose: they are read with `--document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

pub mod app_update;
pub mod assess;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
mod daemon;
pub mod exit;
pub mod facts;
pub mod fix;
pub mod link;
pub mod probe;
pub mod report;
pub mod start;
pub mod terminal;
pub mod update;

pub use daemon::{
    Agent, AgentError, AgentSettings, MEMORY_SPOOL_RECORDS, Stopped, Storage, Updater,
};
/// Shared with the controller (crate `roomready-connect`): bounded file reads, located config
/// errors and the loopback rule.
pub use roomready_connect::{files, keyfile, loopback};

#[cfg(test)]
mod robustness;
