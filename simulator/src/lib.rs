//! The world around the roomready agent, simulated, so the whole system runs with no hardware: an
//! embedded MQTT broker ([`broker`]), a fleet of simulated devices running the real agent library
//! with simulated facts, which can update themselves from a release feed ([`device`], [`fleet`]), a
//! dashboard-like subscriber ([`dashboard`]) and the `demo` that puts them together ([`demo`]). For
//! the agent's signed self-update: the publisher side ([`release`]: keys, signed artifacts,
//! manifest feed) and a local update server with fault injection ([`update_server`]), which also
//! answers GitHub's release API ([`github_api`]). The endpoint farm ([`farm`]): loopback TLS
//! servers with chosen versions, suites, certificates and behaviours that stand in for
//! teams.microsoft.com and the on-prem pool when simulated agents probe. Scenario files run by
//! `roomready-sim run` ([`scenario`]): fleets, faults on a timeline, expectations and their
//! reports.

pub mod broker;
pub mod dashboard;
pub mod demo;
pub mod device;
pub mod farm;
pub mod fleet;
pub mod github_api;
pub mod scenario;
pub mod update_server;
