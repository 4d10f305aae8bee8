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
//! endpoints = ["microsoft365", "onprem_sfb=pool.contoso.com@6.0.9319.548"]
//!                                        # optional; probed each check. [ROLE=]HOST[:PORT][@VERSION],
//!                                        # "microsoft365" = its three hosts (the default); [] = none
//! resolve = ["pool.contoso.com:5061:10.0.0.5"]
//!                                        # optional; HOST:PORT:ADDRESS, probe that endpoint at
//!                                        # ADDRESS (SNI and certificate name stay HOST)
//! ca_file = "ca.pem"                     # optional; trust anchors for endpoint certificates
//! probe_timeout_secs = 5                 # optional; 1..=120, default 5
//! journal_dir = "journal"                # optional; undelivered messages, command ids, seq
//!                                        # (default: "journal" beside this file)
//! journal_max_mib = 64                   # optional; 1..=65536, default 64
//! journal_fsync = "always"               # optional; "always" (default) or "never"
//! command_max_bytes = 65536              # optional; 1024..=16777216, default 65536
//! mqtt_version = 5                       # optional; 4 = MQTT 3.1.1 (default, 3 accepted too)
//!                                        # or 5 (a 24 h session, response topics)
//! app_update_command = ["powershell.exe", "-File", "C:\\roomready\\update-app.ps1"]
//!                                        # optional; run (no shell) on the update_app command
//! app_update_timeout_secs = 1800         # optional; 1..=86400, default 1800
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
//! # Signed self-update: the update_* keys and allow_downgrade, defined and documented in
//! # crate::update::settings.
//! ```
//!
//! Every file named here is read as a regular file, within its size limit ([`crate::files`]).
//!
//! Every problem is reported as one [`KeyFileError`] naming the file, the line and column, the
//! key and the reason; the binary turns it into exit code 78 (`EX_CONFIG`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_protocol::{DeviceId, TopicPrefix};

use crate::keyfile::{KeyFile, KeyFileError};
/// The self-update's section, defined in [`crate::update::settings`].
pub use crate::update::settings::{
    DEFAULT_UPDATE_HEALTH, DEFAULT_UPDATE_MAX_MIB, GITHUB_API_URL, UpdateChannel, UpdateConfig,
    UpdateFeed, authority_host, decode_update_key, feed_url, github_repo,
};
pub use roomready_connect::broker::{
    BrokerSettings, BrokerTls, BrokerUrl, BrokerUrlError, ClientCertFiles, Credentials, Password,
    beside,
};

/// The keys of the sections this module reads itself: the device's identity and reporting,
/// probing, the journal, commands and the app update.
const OWN_KEYS: &[&str] = &[
    "device_id",
    "facts_file",
    "report_interval_secs",
    "topic_prefix",
    "endpoints",
    "resolve",
    "ca_file",
    "probe_timeout_secs",
    "journal_dir",
    "journal_max_mib",
    "journal_fsync",
    "command_max_bytes",
    "app_update_command",
    "app_update_timeout_secs",
];

/// Every key this version understands, section by section: the broker connection's
/// (`roomready_connect::broker::KEYS`, shared with the controller), this module's own, and the
/// self-update's ([`crate::update::settings::KEYS`]). Unknown keys are errors that list them;
/// the docs are tested against them.
pub const SECTIONS: &[&[&str]] = &[
    &roomready_connect::broker::KEYS,
    OWN_KEYS,
    crate::update::settings::KEYS,
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

/// The journal's default size bound.
pub const DEFAULT_JOURNAL_MAX_MIB: u64 = 64;

/// Default bound on each probe connection.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default time between two assessments.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(900);

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
}

/// Where and how the agent keeps undelivered messages and answered command ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalConfig {
    /// `journal_dir`; default: `journal` beside the config file.
    pub dir: PathBuf,
    /// `journal_max_mib` in bytes (default 64 MiB).
    pub max_bytes: u64,
    /// `journal_fsync = "always"` (default): every record is on disk before it is sent;
    /// `"never"` leaves it to the OS (faster, loses the newest records on power loss).
    pub fsync: bool,
}

impl JournalConfig {
    /// The journal's open options.
    pub fn options(&self) -> crate::link::journal::JournalOptions {
        use crate::link::journal::{Fsync, JournalOptions};
        JournalOptions {
            dir: self.dir.clone(),
            max_bytes: self.max_bytes,
            fsync: if self.fsync {
                Fsync::Always
            } else {
                Fsync::Never
            },
        }
    }
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, KeyFileError> {
        let text = crate::files::read_text(path, crate::files::CONFIG)
            .map_err(|e| KeyFileError::unreadable(path, "config file", &e))?;
        Config::parse(path, &text)
    }

    /// Validates config `text` read from `path` (used to resolve relative paths), reading
    /// `password_env` from the process environment.
    pub fn parse(path: &Path, text: &str) -> Result<Config, KeyFileError> {
        Config::parse_with_env(path, text, &|name| std::env::var_os(name))
    }

    /// As [`Config::parse`], with `env` looking up environment variables.
    pub fn parse_with_env(
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
        // Without the key the Microsoft 365 endpoints are probed; `[]` probes none.
        let endpoints = match file.string_array("endpoints")? {
            None => crate::probe::microsoft365_endpoints(),
            Some(items) => {
                let mut endpoints = Vec::new();
                for item in items {
                    match crate::probe::parse_entry(item.get_ref()) {
                        Ok(parsed) => endpoints.extend(parsed),
                        Err(reason) => return Err(file.error("endpoints", item.span(), reason)),
                    }
                }
                crate::probe::dedup(endpoints)
            }
        };
        let mut resolve = crate::probe::ResolveOverrides::new();
        for item in file.string_array("resolve")?.unwrap_or_default() {
            crate::probe::endpoint::add_resolve(&mut resolve, item.get_ref(), &endpoints)
                .map_err(|reason| file.error("resolve", item.span(), reason))?;
        }
        let ca_file = file
            .string("ca_file")?
            .map(|p| beside(path, p.into_inner()));
        let probe_timeout = file
            .integer("probe_timeout_secs", 1..=120)?
            .map_or(DEFAULT_PROBE_TIMEOUT, |s| {
                Duration::from_secs(s.into_inner())
            });
        let dir = file.string("journal_dir")?.map_or_else(
            || beside(path, "journal".into()),
            |p| beside(path, p.into_inner()),
        );
        let max_bytes = file
            .integer("journal_max_mib", 1..=65_536)?
            .map_or(DEFAULT_JOURNAL_MAX_MIB, |m| m.into_inner())
            * 1024
            * 1024;
        let fsync = match file.string("journal_fsync")? {
            None => true,
            Some(v) if v.get_ref() == "always" => true,
            Some(v) if v.get_ref() == "never" => false,
            Some(v) => {
                let reason = format!("expected \"always\" or \"never\", found {:?}", v.get_ref());
                return Err(file.error("journal_fsync", v.span(), reason));
            }
        };
        let command_max_bytes = file
            .integer("command_max_bytes", 1024..=16 * 1024 * 1024)?
            .map_or(crate::command::DEFAULT_MAX_BYTES, |b| {
                usize::try_from(b.into_inner()).unwrap_or(usize::MAX)
            });
        let app_update_argv = match file.string_array("app_update_command")? {
            None => None,
            Some(items) => {
                let argv: Vec<String> = items.iter().map(|i| i.get_ref().clone()).collect();
                if argv.first().is_none_or(|program| program.is_empty()) {
                    let span = items.first().map(|i| i.span());
                    let reason = "must name a program first: [\"PROGRAM\", \"ARG\", ...]";
                    return Err(match span {
                        Some(span) => file.error("app_update_command", span, reason),
                        None => file
                            .missing("app_update_command", "a program to run (the list is empty)"),
                    });
                }
                Some(argv)
            }
        };
        let app_update_timeout = file
            .integer("app_update_timeout_secs", 1..=86_400)?
            .map_or(crate::app_update::DEFAULT_TIMEOUT, |s| {
                Duration::from_secs(s.into_inner())
            });
        let app_update = app_update_argv.map(|argv| crate::app_update::CommandUpdater {
            argv,
            timeout: app_update_timeout,
        });
        let update = crate::update::settings::read(&mut file, path.parent())?;
        file.finish(&known_keys())?;
        Ok(Config {
            app_update,
            update,
            mqtt_version,
            journal: JournalConfig {
                dir,
                max_bytes,
                fsync,
            },
            command_max_bytes,
            broker,
            broker_tls,
            credentials,
            device_id,
            facts_file,
            report_interval,
            topic_prefix,
            endpoints,
            resolve,
            ca_file,
            probe_timeout,
        })
    }
}

#[cfg(test)]
mod tests;
