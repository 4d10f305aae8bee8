//! The daemon's configuration file (TOML), validated completely at start.
//!
//! ```toml
//! broker_url = "mqtts://broker.example"  # required; mqtt://HOST[:PORT] (port 1883) or
//!                                        # mqtts://HOST[:PORT] (MQTT over TLS, port 8883)
//! device_id = "mtr-0001"                 # required; 1..=128 of A-Z a-z 0-9 . _ -
//! facts_file = "facts.toml"              # relative paths are relative to this file; required
//!                                        # except on Windows, where it overrides native facts
//! report_interval_secs = 900             # optional; 1..=86400, default 900
//! topic_prefix = "roomready"             # optional; default "roomready"
//! mqtt_version = 5                       # optional; 4 = MQTT 3.1.1 (default, 3 accepted too)
//!                                        # or 5 (a 24 h session, response topics)
//!
//! # The broker connection. The broker_* and client_* keys need mqtts://.
//! broker_ca_file = "broker-ca.pem"       # optional; PEM trust anchors for the broker's
//!                                        # certificate; default Mozilla's roots
//! broker_server_name = "broker.example"  # optional; verify the broker's certificate against
//!                                        # this name instead of the URL's host
//! client_cert_file = "client.pem"        # optional, with client_key_file: mutual TLS (PEM)
//! client_key_file = "client.key"         # PEM PKCS#8, SEC1 (EC) or PKCS#1 (RSA)
//! username = "mtr-0001"                  # optional; MQTT user name
//! password_file = "password"             # optional; its first line is the password
//! password_env = "ROOMREADY_MQTT_PASSWORD"  # or: the environment variable holding it
//! allow_insecure = false                 # optional; true permits mqtt:// to a host that is not
//!                                        # loopback (127.0.0.0/8 in any form, ::1,
//!                                        # ::ffff:127.x.x.x, localhost; see crate::loopback)
//!
//! # The sections the features own, each defined and documented in its settings module:
//! # Probing: endpoints, resolve, ca_file, probe_timeout_secs (crate::probe::settings).
//! # The journal: journal_dir, journal_max_mib, journal_fsync (crate::link::journal::settings).
//! # Commands: command_max_bytes (crate::command::settings).
//! # The app update: app_update_command, app_update_timeout_secs (crate::app_update::settings).
//! # Signed self-update: the update_* keys and allow_downgrade (crate::update::settings).
//! # Where the device is: site, room, ring, tags (crate::report::placement).
//! # Schannel evidence: schannel_events, schannel_window_days, schannel_max_events
//! #   (crate::facts::schannel::settings).
//! # The opt-in registry repair: allow_fix (crate::fix::settings).
//! ```
//!
//! Every file named here is read as a regular file, within its size limit ([`crate::files`]),
//! and [`Config::load`] reads them all (trust anchors, the broker's TLS files, the feed's CA,
//! password and token files): a bad one is a config error naming its key, before anything runs.
//!
//! Every problem is reported as one [`KeyFileError`] naming the file, the line and column, the
//! key and the reason; the binary turns it into exit code 78 (`EX_CONFIG`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_protocol::{DeviceId, TopicPrefix};

use crate::keyfile::{KeyFile, KeyFileError};
/// The sections the features own, as [`Config`]'s fields hold them.
pub use crate::link::journal::settings::JournalConfig;
pub use crate::update::settings::{UpdateChannel, UpdateConfig, UpdateFeed, feed_url};
pub use roomready_connect::broker::{
    BrokerSettings, BrokerTls, BrokerUrl, BrokerUrlError, ClientCertFiles, Credentials, Password,
    beside,
};

/// The keys this module reads itself: the device's identity and reporting.
const OWN_KEYS: &[&str] = &[
    "device_id",
    "facts_file",
    "report_interval_secs",
    "topic_prefix",
];

/// Every key this version understands, section by section: the broker connection's
/// (`roomready_connect::broker::KEYS`, shared with the controller), this module's own, then
/// those of the features that own their sections: probing, the journal, commands, the app update
/// and the self-update (each `settings::KEYS`). Unknown keys are errors that list them;
/// the docs are tested against them.
pub(crate) const SECTIONS: &[&[&str]] = &[
    &roomready_connect::broker::KEYS,
    OWN_KEYS,
    crate::probe::settings::KEYS,
    crate::link::journal::settings::KEYS,
    crate::command::settings::KEYS,
    crate::app_update::settings::KEYS,
    crate::update::settings::KEYS,
    crate::report::placement::KEYS,
    crate::facts::schannel::settings::KEYS,
    crate::fix::settings::KEYS,
];

/// [`SECTIONS`] as one list, for "unknown key" messages.
fn known_keys() -> String {
    SECTIONS
        .iter()
        .flat_map(|keys| keys.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(", ")
}

/// Default time between two assessments.
pub(crate) const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(900);

/// The validated configuration of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub broker: BrokerUrl,
    /// How the broker's certificate is checked and the agent's own presented (`mqtts://` only;
    /// all defaults otherwise).
    pub broker_tls: BrokerTls,
    /// MQTT user name and password, if configured.
    pub credentials: Option<Credentials>,
    pub device_id: DeviceId,
    /// Absolute, or relative to the working directory when the config itself was given so.
    /// `None` only on Windows, where the facts are read natively.
    pub facts_file: Option<PathBuf>,
    pub report_interval: Duration,
    pub topic_prefix: TopicPrefix,
    /// Endpoints probed on every check (none by default).
    pub endpoints: Vec<crate::probe::Endpoint>,
    /// `resolve`: the address to probe an endpoint at, by lower-case host and port.
    pub resolve: crate::probe::ResolveOverrides,
    /// PEM trust anchors for endpoint certificates; Mozilla's roots when `None`.
    pub ca_file: Option<PathBuf>,
    pub probe_timeout: Duration,
    pub journal: JournalConfig,
    /// `mqtt_version`: 4 (MQTT 3.1.1, also accepted as 3; the default) or 5.
    pub mqtt_version: crate::link::MqttVersion,
    /// `app_update_command` (program and arguments, run without a shell on `update_app`) with
    /// its `app_update_timeout_secs`.
    pub app_update: Option<crate::app_update::CommandUpdater>,
    /// Largest command payload accepted.
    pub command_max_bytes: usize,
    /// Where and how the agent updates itself.
    pub update: UpdateConfig,
    /// Where the device is: `site`, `room`, `ring`, `tags`.
    pub placement: roomready_protocol::Placement,
    /// Read Schannel's events from the System log within these bounds (`None`:
    /// `schannel_events = false`).
    pub schannel: Option<crate::facts::schannel::Bounds>,
    /// `allow_fix`: `fix` may write the registry (default `false`).
    pub allow_fix: bool,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, KeyFileError> {
        let text = crate::files::read_text(path, crate::files::CONFIG)
            .map_err(|e| KeyFileError::unreadable(path, "config file", &e))?;
        let config = Config::parse(path, &text)?;
        config.check_files(path)?;
        Ok(config)
    }

    /// Loads the files the config names that are otherwise read only when they are used (the
    /// endpoints' trust anchors, the broker's TLS files, the feed's CA), so that a bad one is a
    /// config error when the config is loaded, for `run`, `self-test` and `update` alike. (The
    /// password and token files are read while parsing.)
    fn check_files(&self, path: &Path) -> Result<(), KeyFileError> {
        let error = |key: &str, reason: String| KeyFileError {
            file: path.to_owned(),
            position: None,
            key: Some(key.to_owned()),
            reason,
            io: None,
        };
        crate::probe::modern::load_roots(self.ca_file.as_deref())
            .map_err(|e| error("ca_file", e.to_string()))?;
        if self.broker.tls {
            roomready_connect::tls::client_config(&self.broker_tls)
                .map_err(|e| error(e.key(), e.to_string()))?;
        }
        if let Some(ca) = &self.update.ca_file {
            crate::update::http::Roots::load(ca)
                .map_err(|reason| error("update_ca_file", reason))?;
        }
        Ok(())
    }

    /// Validates config `text` read from `path` (used to resolve relative paths), reading
    /// `password_env` from the process environment.
    pub fn parse(path: &Path, text: &str) -> Result<Config, KeyFileError> {
        Config::parse_with_env(path, text, &|name| std::env::var_os(name))
    }

    /// As [`Config::parse`], with `env` looking up environment variables.
    pub(crate) fn parse_with_env(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Config, KeyFileError> {
        let mut file = KeyFile::parse(path, text)?;

        let BrokerSettings {
            url: broker,
            tls: broker_tls,
            credentials,
            version: mqtt_version,
        } = BrokerSettings::read(&mut file, env, crate::link::MqttVersion::V311)?;
        let device_id = match file.string("device_id")? {
            Some(id) => DeviceId::new(id.get_ref().as_str())
                .map_err(|e| file.error("device_id", id.span(), e.to_string()))?,
            None => return Err(file.missing("device_id", "this device's id")),
        };
        let facts_file = match file.string("facts_file")? {
            Some(p) if p.get_ref().is_empty() => {
                return Err(file.error("facts_file", p.span(), "is empty"));
            }
            Some(p) => Some(beside(path, p.into_inner())),
            // On Windows the facts are read natively; the file only overrides them.
            None if cfg!(windows) => None,
            None => {
                return Err(file.missing(
                    "facts_file",
                    "path of the device facts file (facts are read natively only on Windows)",
                ));
            }
        };
        let report_interval = file
            .integer("report_interval_secs", 1..=86_400)?
            .map_or(DEFAULT_REPORT_INTERVAL, |s| {
                Duration::from_secs(s.into_inner())
            });
        let topic_prefix = match file.string("topic_prefix")? {
            Some(p) => TopicPrefix::new(p.get_ref().as_str())
                .map_err(|e| file.error("topic_prefix", p.span(), e.to_string()))?,
            None => TopicPrefix::default(),
        };
        let probe = crate::probe::settings::read(&mut file, path)?;
        let journal = crate::link::journal::settings::read(&mut file, path)?;
        let command_max_bytes = crate::command::settings::read(&mut file)?;
        let app_update = crate::app_update::settings::read(&mut file)?;
        let update = crate::update::settings::read(&mut file, path.parent())?;
        let placement = crate::report::placement::read(&mut file)?;
        let schannel = crate::facts::schannel::settings::read(&mut file)?;
        let allow_fix = crate::fix::settings::read(&mut file)?;
        file.finish(&known_keys())?;
        Ok(Config {
            schannel,
            allow_fix,
            app_update,
            update,
            placement,
            mqtt_version,
            journal,
            command_max_bytes,
            broker,
            broker_tls,
            credentials,
            device_id,
            facts_file,
            report_interval,
            topic_prefix,
            endpoints: probe.endpoints,
            resolve: probe.resolve,
            ca_file: probe.ca_file,
            probe_timeout: probe.timeout,
        })
    }
}

#[cfg(test)]
mod tests;
