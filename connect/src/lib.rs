//! How roomready reaches its MQTT broker, shared by the agent and the controller so that both
//! accept exactly the same settings and say the same things about them:
//!
//! - [`broker`]: the broker keys of a config file (`broker_url`, TLS files, credentials,
//!   `allow_insecure`, `mqtt_version`) read into [`broker::BrokerSettings`];
//! - [`tls`]: the rustls client configuration built from them, and plain-language reasons for a
//!   failed connection;
//! - [`loopback`]: which hosts are this machine (plain `mqtt://` and `http://` are allowed only
//!   to them);
//! - [`keyfile`]: flat TOML files read key by key with errors naming file, line, column and key;
//! - [`files`]: every file read as a regular file within a size limit;
//! - [`backoff`]: reconnect delays with jitter.

pub mod backoff;
pub mod broker;
pub mod files;
pub mod keyfile;
pub mod loopback;
pub mod tls;
