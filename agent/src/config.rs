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
//! # Signed self-update (`roomready-agent update`).
//! update_feed_url = "https://updates.example/roomready"  # optional; the feed's base URL, read
//!                                        # as {url}/{channel}/manifest.json; http:// only to a
//!                                        # loopback host
//! update_github_repo = "contoso/roomready"  # or: the releases of a GitHub repository (not both)
//! update_github_api_url = "https://github.contoso.com/api/v3"  # optional; GitHub Enterprise's
//!                                        # API, default https://api.github.com
//! update_github_token_file = "github-token"  # optional; its first line is a token, for a
//!                                        # private repository
//! update_keys = ["base64 of a 32-byte ed25519 key"]  # required with a feed; the publisher's
//!                                        # verifying keys (any one must have signed)
//! update_channel = "stable"              # optional; "stable" (default) or "beta"
//! allow_downgrade = false                # optional; true permits installing an older version
//! update_max_mib = 64                    # optional; 1..=4096, default 64: largest artifact
//! update_ca_file = "feed-ca.pem"         # optional; PEM trust anchors for the feed's HTTPS
//!                                        # (default Mozilla's roots)
//! update_health_secs = 120               # optional; 10..=3600, default 120: how long a new
//!                                        # version has to report healthy before it is kept
//! auto_update = false                    # optional; true: check and install once a day
//!                                        # (needs a feed and update_keys)
//! update_window = "01:00-05:00"          # optional; local-time window for auto_update
//!                                        # (default 01:00-05:00)
//! ```
//!
//! Every file named here is read as a regular file, within its size limit ([`crate::files`]).
//!
//! Every problem is reported as one [`KeyFileError`] naming the file, the line and column, the
//! key and the reason; the binary turns it into exit code 78 (`EX_CONFIG`).

use std::ffi::OsString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_protocol::{DeviceId, TopicPrefix};
use toml::Spanned;

use crate::keyfile::{KeyFile, KeyFileError};
pub use roomready_connect::broker::{
    BrokerSettings, BrokerTls, BrokerUrl, BrokerUrlError, ClientCertFiles, Credentials, Password,
    beside,
};

/// The keys this version understands, for "unknown key" messages.
const KNOWN_KEYS: &str = "broker_url, device_id, facts_file, report_interval_secs, topic_prefix, \
                          endpoints, resolve, ca_file, probe_timeout_secs, journal_dir, journal_max_mib, \
                          journal_fsync, command_max_bytes, broker_ca_file, broker_server_name, \
                          client_cert_file, client_key_file, username, password_file, \
                          password_env, allow_insecure, mqtt_version, app_update_command, \
                          app_update_timeout_secs, update_feed_url, update_github_repo, \
                          update_github_api_url, update_github_token_file, update_keys, \
                          update_channel, allow_downgrade, update_max_mib, update_health_secs, \
                          auto_update, update_window, update_ca_file";

/// How long a new version has to prove itself after an update's restart.
pub const DEFAULT_UPDATE_HEALTH: Duration = Duration::from_secs(120);

/// The journal's default size bound.
pub const DEFAULT_JOURNAL_MAX_MIB: u64 = 64;

/// Default bound on each probe connection.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default bound on a downloaded update artifact.
pub const DEFAULT_UPDATE_MAX_MIB: u64 = 64;

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

/// The `update_*` keys: where signed releases are published and which keys sign them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateConfig {
    /// Where releases are published; `None`: no feed configured.
    pub feed: Option<UpdateFeed>,
    /// `update_keys`: raw ed25519 verifying keys; an artifact must be signed by one of them.
    pub keys: Vec<[u8; 32]>,
    pub channel: UpdateChannel,
    /// `allow_downgrade`: whether a version older than the running one may be installed.
    pub allow_downgrade: bool,
    /// `update_max_mib` in bytes (default 64 MiB): larger artifacts are refused.
    pub max_bytes: u64,
    /// `update_health_secs` (default 120): how long a new version has, after its restart, to
    /// connect and deliver a state before the previous version is restored.
    pub health_timeout: Duration,
    /// `auto_update` (default false): check (and install) by itself once a day, inside
    /// `update_window` (local time, default 01:00-05:00).
    pub auto: Option<crate::update::window::Window>,
    /// `update_ca_file`: PEM trust anchors for an https feed (default: Mozilla's roots).
    pub ca_file: Option<PathBuf>,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            feed: None,
            keys: Vec::new(),
            channel: UpdateChannel::Stable,
            allow_downgrade: false,
            max_bytes: DEFAULT_UPDATE_MAX_MIB * 1024 * 1024,
            health_timeout: DEFAULT_UPDATE_HEALTH,
            auto: None,
            ca_file: None,
        }
    }
}

/// Where signed releases are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateFeed {
    /// `update_feed_url` (without a trailing `/`): a static feed, `{url}/{channel}/manifest.json`.
    Manifest { url: String },
    /// `update_github_repo`: the releases of a GitHub or GitHub Enterprise repository.
    GitHub {
        /// `update_github_api_url` without a trailing `/` (default [`GITHUB_API_URL`]).
        api_url: String,
        owner: String,
        repo: String,
        /// `update_github_token_file`'s first line, for a private repository.
        token: Option<Password>,
    },
}

/// GitHub's public API.
pub const GITHUB_API_URL: &str = "https://api.github.com";

impl fmt::Display for UpdateFeed {
    /// The feed as an operator names it: its URL, or `github:OWNER/REPO` (with the API URL when
    /// it is not GitHub's).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateFeed::Manifest { url } => f.write_str(url),
            UpdateFeed::GitHub {
                api_url,
                owner,
                repo,
                ..
            } if api_url == GITHUB_API_URL => write!(f, "github:{owner}/{repo}"),
            UpdateFeed::GitHub {
                api_url,
                owner,
                repo,
                ..
            } => write!(f, "github:{owner}/{repo} at {api_url}"),
        }
    }
}

/// `update_channel`: the feed's channel, the publisher's own type.
pub use roomready_feed::Channel as UpdateChannel;

/// Decodes one `update_keys` entry: standard base64 of a 32-byte ed25519 verifying key.
pub fn decode_update_key(text: &str) -> Result<[u8; 32], String> {
    roomready_feed::keys::decode_verifying_key(text).map_err(|e| e.to_string())
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
        let update = update(&mut file, path.parent())?;
        file.finish(KNOWN_KEYS)?;
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

/// The `update_*` keys and `allow_downgrade`.
fn update(file: &mut KeyFile<'_>, config_dir: Option<&Path>) -> Result<UpdateConfig, KeyFileError> {
    let feed = update_feed(file, config_dir)?;
    let mut keys = Vec::new();
    if let Some(items) = file.string_array("update_keys")? {
        for item in items {
            let key = decode_update_key(item.get_ref())
                .map_err(|reason| file.error("update_keys", item.span(), reason))?;
            keys.push(key);
        }
    }
    if let Some((_, key, span)) = &feed
        && keys.is_empty()
    {
        return Err(file.error(
            key,
            span.clone(),
            "update_keys is missing or empty: pin the publisher's verifying keys (base64); \
             updates are installed only when signed by one of them",
        ));
    }
    let channel = match file.string("update_channel")? {
        None => UpdateChannel::Stable,
        Some(c) => c
            .get_ref()
            .parse()
            .map_err(|reason| file.error("update_channel", c.span(), reason))?,
    };
    let allow_downgrade = file
        .boolean("allow_downgrade")?
        .is_some_and(Spanned::into_inner);
    let max_bytes = file
        .integer("update_max_mib", 1..=4096)?
        .map_or(DEFAULT_UPDATE_MAX_MIB, |m| m.into_inner())
        * 1024
        * 1024;
    let health_timeout = file
        .integer("update_health_secs", 10..=3600)?
        .map_or(DEFAULT_UPDATE_HEALTH, |s| {
            Duration::from_secs(s.into_inner())
        });
    let auto = file
        .boolean("auto_update")?
        .is_some_and(Spanned::into_inner);
    let window = match file.string("update_window")? {
        None => crate::update::window::Window::default(),
        Some(w) => w
            .get_ref()
            .parse()
            .map_err(|reason: String| file.error("update_window", w.span(), reason))?,
    };
    if auto && feed.is_none() {
        return Err(file.missing(
            "update_feed_url",
            "auto_update needs a feed (update_feed_url or update_github_repo, and update_keys)",
        ));
    }
    let ca_file = file.string("update_ca_file")?.map(|p| {
        let path = PathBuf::from(p.into_inner());
        match config_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    });
    Ok(UpdateConfig {
        ca_file,
        feed: feed.map(|f| f.0),
        keys,
        channel,
        allow_downgrade,
        max_bytes,
        health_timeout,
        auto: auto.then_some(window),
    })
}

/// A feed with the key that named it and that key's span, for errors about it.
type NamedFeed = (UpdateFeed, &'static str, Range<usize>);

/// `update_feed_url`, or `update_github_repo` with its API URL and token.
fn update_feed(
    file: &mut KeyFile<'_>,
    config_dir: Option<&Path>,
) -> Result<Option<NamedFeed>, KeyFileError> {
    let url = file.string("update_feed_url")?;
    let repo = file.string("update_github_repo")?;
    let api_url = file.string("update_github_api_url")?;
    let token_file = file.string("update_github_token_file")?;
    if repo.is_none() {
        for (key, given) in [
            ("update_github_api_url", &api_url),
            ("update_github_token_file", &token_file),
        ] {
            if let Some(given) = given {
                return Err(file.error(key, given.span(), "needs update_github_repo"));
            }
        }
    }
    match (url, repo) {
        (Some(_), Some(repo)) => Err(file.error(
            "update_github_repo",
            repo.span(),
            "update_feed_url is set too: releases come from one feed, not both",
        )),
        (None, None) => Ok(None),
        (Some(url), None) => {
            let span = url.span();
            let url = feed_url(url.get_ref())
                .map_err(|reason| file.error("update_feed_url", span.clone(), reason))?;
            Ok(Some((
                UpdateFeed::Manifest { url },
                "update_feed_url",
                span,
            )))
        }
        (None, Some(repo)) => {
            let span = repo.span();
            let (owner, name) = github_repo(repo.get_ref())
                .map_err(|reason| file.error("update_github_repo", span.clone(), reason))?;
            let api_url = match api_url {
                None => GITHUB_API_URL.to_owned(),
                Some(url) => feed_url(url.get_ref())
                    .map_err(|reason| file.error("update_github_api_url", url.span(), reason))?,
            };
            let token = match token_file {
                None => None,
                Some(p) if p.get_ref().is_empty() => {
                    return Err(file.error("update_github_token_file", p.span(), "is empty"));
                }
                Some(p) => {
                    let token_span = p.span();
                    let path = PathBuf::from(p.into_inner());
                    let path = match config_dir {
                        Some(dir) if path.is_relative() => dir.join(path),
                        _ => path,
                    };
                    let text =
                        crate::files::read_text(&path, crate::files::SECRET).map_err(|e| {
                            file.error(
                                "update_github_token_file",
                                token_span.clone(),
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?;
                    let first = text.lines().next().unwrap_or_default().trim();
                    if first.is_empty() {
                        return Err(file.error(
                            "update_github_token_file",
                            token_span,
                            format!("the first line of {} is empty", path.display()),
                        ));
                    }
                    Some(Password::new(first))
                }
            };
            Ok(Some((
                UpdateFeed::GitHub {
                    api_url,
                    owner,
                    repo: name,
                    token,
                },
                "update_github_repo",
                span,
            )))
        }
    }
}

/// Checks an `update_github_repo`: `OWNER/NAME`, as GitHub spells repository names.
pub fn github_repo(text: &str) -> Result<(String, String), String> {
    let expected = || format!("expected OWNER/NAME, found {text:?}");
    let (owner, name) = text.split_once('/').ok_or_else(expected)?;
    let valid = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    if !valid(owner) || !valid(name) {
        return Err(expected());
    }
    Ok((owner.to_owned(), name.to_owned()))
}

/// The host of a URL's `authority` (`HOST[:PORT]`, or `[V6][:PORT]` without the brackets);
/// `None` for an unclosed `[`.
pub fn authority_host(authority: &str) -> Option<&str> {
    match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(host, _)| host),
        None => Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h)),
    }
}

/// Checks an `update_feed_url`: `https://HOST[:PORT][/PATH]`, or `http://` to a loopback host
/// (tests, a local mirror); returned without a trailing `/`.
pub fn feed_url(url: &str) -> Result<String, String> {
    const EXPECTED: &str = "expected https://HOST[:PORT][/PATH] (http:// only to a loopback host)";
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(EXPECTED.to_owned());
    };
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        _ => return Err(format!("unsupported scheme {scheme:?}; {EXPECTED}")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if rest[authority.len()..].contains(['?', '#']) {
        return Err(format!("a query or fragment is not allowed; {EXPECTED}"));
    }
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".to_owned());
    }
    let Some(host) = authority_host(authority) else {
        return Err("unclosed '[' in IPv6 address".to_owned());
    };
    if host.is_empty() {
        return Err(format!("host is empty; {EXPECTED}"));
    }
    if !tls && !crate::loopback::is_loopback_host(host) {
        return Err(format!(
            "plain http:// to {host:?}, which is not a loopback address, could be tampered with \
             or replayed in transit; use https://"
        ));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests;
