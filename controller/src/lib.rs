//! The roomready controller as a library: the admin's side of the fleet.
//!
//! [`ingest`] subscribes to every device's `state`, `status`, `events` and `cmd/res` over a
//! persistent MQTT session, decodes each payload with `roomready-protocol` and commits it to the
//! [`store`] before acknowledging it to the broker; [`model`] decides what each message changes
//! (duplicates, gaps, verdict and finding transitions, presence); the web side serves the
//! dashboard, the JSON API, exports, `/metrics` and commands from the same store.

pub mod clock;
pub mod config;
pub mod ingest;
pub mod model;
pub mod seq;
pub mod store;
pub mod users;
