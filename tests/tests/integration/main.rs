//! roomready's cross-crate tests, as one integration test binary (one link, one run) with a
//! module per subject. Every module runs real components: the simulator's embedded broker or
//! Mosquitto, real agents (in process through the library, or the `roomready-agent` binary as a
//! child: [`roomready_tests::agent_exe`]), the controller, and headless Chromium. Peers come
//! from `roomready-testkit`; roomready-specific helpers from `roomready-tests` (`tests/src/`).
//!
//! Run one module with a filter: `cargo test -p roomready-tests --test integration
//! controller_kill::`.
//!
//! - The agent as a process: [`agent_run`], [`journal_restart`], [`update_daemon`],
//!   [`update_faults`], [`wine_service`].
//! - The agent and the fleet over a broker: [`e2e`], [`daemon`], [`delivery`], [`half_open`],
//!   [`journal_bound`], [`mqtt5`], [`resubscribe`], [`commands`], [`app_update`], [`sim_update`].
//! - The controller: [`controller`], [`controller_broker`], [`controller_kill`], [`alerts`],
//!   [`rollouts`], [`controller_fix`] (the registry fix, through in-process agents); in
//!   headless Chromium: [`controller_browser`], [`controller_markup`], [`operations_browser`],
//!   [`controller_fix_browser`], and the browser harness itself: [`browser`].

mod agent_run;
mod alerts;
mod app_update;
mod browser;
mod commands;
mod controller;
mod controller_auth;
mod controller_broker;
mod controller_browser;
mod controller_cluster;
mod controller_device_page;
mod controller_evidence;
mod controller_exports;
mod controller_fix;
mod controller_fix_browser;
mod controller_kill;
mod controller_markup;
mod daemon;
mod delivery;
mod e2e;
mod half_open;
mod journal_bound;
mod journal_restart;
mod mqtt5;
mod operations_browser;
mod resubscribe;
mod rollouts;
mod sim_update;
mod update_daemon;
mod update_faults;
mod wine_service;
