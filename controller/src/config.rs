//! The controller's configuration file (`roomready-controller run --config controller.toml`),
//! validated completely at start: every key's type and range, the broker keys (shared with the
//! agent, `roomready_connect::broker`), and the rules that keep the dashboard safe off loopback.
//!
//! ```toml
//! broker_url = "mqtts://broker.example"  # required; and the other broker keys of the agent:
//!                                        # broker_ca_file, broker_server_name, client_cert_file,
//!                                        # client_key_file, username, password_file,
//!                                        # password_env, allow_insecure, mqtt_version (default 5)
//! topic_prefix = "roomready"             # optional; default "roomready"
//! client_id = "roomready-controller"     # optional; the persistent session's client id
//! shared_group = "controllers"           # optional; subscribe as $share/GROUP/… (several
//!                                        # controllers share the fleet)
//! session_expiry_secs = 604800           # optional; MQTT 5 session expiry, 60..=4294967295,
//!                                        # default 7 days
//! max_payload_bytes = 1048576            # optional; 1024..=16777216, default 1 MiB
//! database = "controller.db"             # optional; SQLite file, default beside this file; or
//!                                        # postgres://USER@HOST[:PORT]/DB for PostgreSQL
//! database_sync = "normal"               # optional, SQLite; "normal" (default) or "full"
//! database_password_file = "db-password" # optional, PostgreSQL; its first line is the password
//! database_ca_file = "db-ca.pem"         # optional, PostgreSQL; CAs for its TLS certificate
//! database_max_connections = 16          # optional, PostgreSQL; 2..=256, default 16
//! listen = "127.0.0.1:8080"              # optional; default 127.0.0.1:8080
//! tls_cert_file = "https.pem"            # optional, with tls_key_file: serve HTTPS
//! tls_key_file = "https.key"
//! allow_insecure_http = false            # optional; true permits plain HTTP off loopback
//! users_file = "users"                   # optional; required off loopback (login)
//! login_hours = 12                       # optional; 1..=720, how long a login lasts
//! retention_transitions_days = 400       # optional; 1..=36500
//! retention_events_days = 90             # optional; 1..=36500
//! web_max_body_bytes = 65536             # optional; 1024..=16777216, the largest request body
//! # Alerts: the alert_* keys (crate::alerts::settings).
//! ```
//!
//! Every problem is one [`KeyFileError`] naming the file, line, column, key and reason.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use roomready_connect::broker::{BrokerSettings, MqttVersion, beside};
use roomready_connect::keyfile::{KeyFile, KeyFileError};
use roomready_protocol::TopicPrefix;

use crate::store::{PostgresOptions, Retention, Synchronous};

/// The controller's own keys (the broker keys are `roomready_connect::broker::KEYS`).
pub const KEYS: [&str; 19] = [
    "topic_prefix",
    "client_id",
    "shared_group",
    "session_expiry_secs",
    "max_payload_bytes",
    "database",
    "database_sync",
    "database_password_file",
    "database_ca_file",
    "database_max_connections",
    "listen",
    "tls_cert_file",
    "tls_key_file",
    "allow_insecure_http",
    "users_file",
    "login_hours",
    "retention_transitions_days",
    "retention_events_days",
    "web_max_body_bytes",
];

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_CLIENT_ID: &str = "roomready-controller";
pub const DEFAULT_SESSION_EXPIRY: Duration = Duration::from_secs(7 * 86_400);
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
pub const DEFAULT_LOGIN_HOURS: u64 = 12;
pub const DEFAULT_WEB_MAX_BODY: usize = 64 * 1024;

/// The HTTPS certificate chain and key (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub broker: BrokerSettings,
    pub topic_prefix: TopicPrefix,
    pub client_id: String,
    pub shared_group: Option<String>,
    pub session_expiry: Duration,
    pub max_payload: usize,
    /// The SQLite file (unless `postgres` is set).
    pub database: PathBuf,
    pub synchronous: Synchronous,
    /// The PostgreSQL database, when `database` is a `postgres://` URL.
    pub postgres: Option<PostgresOptions>,
    pub listen: SocketAddr,
    pub https: Option<HttpsFiles>,
    pub allow_insecure_http: bool,
    pub users_file: Option<PathBuf>,
    pub login: Duration,
    pub retention: Retention,
    /// The largest request body the web side takes.
    pub web_max_body: usize,
    /// Where and when alerts go; `None`: no `alert_webhook_url`, no alerts.
    pub alerts: Option<crate::alerts::AlertSettings>,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, KeyFileError> {
        let text = roomready_connect::files::read_text(path, roomready_connect::files::CONFIG)
            .map_err(|e| KeyFileError::unreadable(path, "config file", &e))?;
        Config::parse(path, &text, &|name| std::env::var_os(name))
    }

    /// Validates config `text` read from `path`; `env` looks up `password_env`.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<OsString>,
    ) -> Result<Config, KeyFileError> {
        let mut file = KeyFile::parse(path, text)?;
        let broker = BrokerSettings::read(&mut file, env, MqttVersion::V5)?;
        let topic_prefix = match file.string("topic_prefix")? {
            Some(p) => TopicPrefix::new(p.get_ref().as_str())
                .map_err(|e| file.error("topic_prefix", p.span(), e.to_string()))?,
            None => TopicPrefix::default(),
        };
        let client_id = match file.string("client_id")? {
            None => DEFAULT_CLIENT_ID.to_owned(),
            Some(id) => {
                check_name(id.get_ref()).map_err(|r| file.error("client_id", id.span(), r))?;
                id.into_inner()
            }
        };
        let shared_group = match file.string("shared_group")? {
            None => None,
            Some(group) => {
                check_name(group.get_ref())
                    .map_err(|r| file.error("shared_group", group.span(), r))?;
                Some(group.into_inner())
            }
        };
        let session_expiry = file
            .integer("session_expiry_secs", 60..=u64::from(u32::MAX))?
            .map_or(DEFAULT_SESSION_EXPIRY, |s| {
                Duration::from_secs(s.into_inner())
            });
        let max_payload = file
            .integer("max_payload_bytes", 1024..=16 * 1024 * 1024)?
            .map_or(DEFAULT_MAX_PAYLOAD, |b| {
                usize::try_from(b.into_inner()).unwrap_or(usize::MAX)
            });
        let (database, postgres) = read_database(&mut file, path)?;
        let synchronous = match file.string("database_sync")? {
            None => Synchronous::Normal,
            Some(v) if postgres.is_some() => {
                return Err(file.error(
                    "database_sync",
                    v.span(),
                    "applies to a SQLite database only (PostgreSQL's durability is its own \
                     synchronous_commit)",
                ));
            }
            Some(v) if v.get_ref() == "normal" => Synchronous::Normal,
            Some(v) if v.get_ref() == "full" => Synchronous::Full,
            Some(v) => {
                let reason = format!("expected \"normal\" or \"full\", found {:?}", v.get_ref());
                return Err(file.error("database_sync", v.span(), reason));
            }
        };
        let (listen, listen_span) = match file.string("listen")? {
            None => (
                DEFAULT_LISTEN
                    .parse::<SocketAddr>()
                    .expect("the default listen address parses"),
                None,
            ),
            Some(l) => {
                let addr = l.get_ref().parse::<SocketAddr>().map_err(|_| {
                    file.error(
                        "listen",
                        l.span(),
                        format!(
                            "{:?} is not IP:PORT (e.g. \"127.0.0.1:8080\", \"0.0.0.0:8443\", \
                             \"[::1]:8080\")",
                            l.get_ref()
                        ),
                    )
                })?;
                (addr, Some(l.span()))
            }
        };
        let cert = file.string("tls_cert_file")?;
        let key = file.string("tls_key_file")?;
        let https = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (name, value) in [("tls_cert_file", &cert), ("tls_key_file", &key)] {
                    if value.get_ref().is_empty() {
                        return Err(file.error(name, value.span(), "is empty"));
                    }
                }
                Some(HttpsFiles {
                    cert_file: beside(path, cert.into_inner()),
                    key_file: beside(path, key.into_inner()),
                })
            }
            (Some(cert), None) => {
                return Err(file.error(
                    "tls_cert_file",
                    cert.span(),
                    "tls_key_file is missing: set both tls_cert_file and tls_key_file, or neither",
                ));
            }
            (None, Some(key)) => {
                return Err(file.error(
                    "tls_key_file",
                    key.span(),
                    "tls_cert_file is missing: set both tls_cert_file and tls_key_file, or neither",
                ));
            }
        };
        let allow_insecure_http = file
            .boolean("allow_insecure_http")?
            .is_some_and(toml::Spanned::into_inner);
        let users_file = match file.string("users_file")? {
            Some(p) if p.get_ref().is_empty() => {
                return Err(file.error("users_file", p.span(), "is empty"));
            }
            Some(p) => Some(beside(path, p.into_inner())),
            None => None,
        };
        let loopback = listen.ip().is_loopback();
        if !loopback {
            let span = listen_span.clone().unwrap_or(0..0);
            if https.is_none() && !allow_insecure_http {
                return Err(file.error(
                    "listen",
                    span,
                    format!(
                        "{listen} is not a loopback address: serving the dashboard there needs \
                         HTTPS (tls_cert_file and tls_key_file) or allow_insecure_http = true"
                    ),
                ));
            }
            if users_file.is_none() {
                return Err(file.error(
                    "listen",
                    span,
                    format!(
                        "{listen} is not a loopback address: a login is required there; set \
                         users_file (create users with `roomready-controller user add`)"
                    ),
                ));
            }
        }
        let login_hours = file
            .integer("login_hours", 1..=720)?
            .map_or(DEFAULT_LOGIN_HOURS, |h| h.into_inner());
        let defaults = Retention::default();
        let transitions_days = file
            .integer("retention_transitions_days", 1..=36_500)?
            .map_or(defaults.transitions_days, |d| d.into_inner());
        let events_days = file
            .integer("retention_events_days", 1..=36_500)?
            .map_or(defaults.events_days, |d| d.into_inner());
        let web_max_body = file
            .integer("web_max_body_bytes", 1024..=16 * 1024 * 1024)?
            .map_or(DEFAULT_WEB_MAX_BODY, |b| {
                usize::try_from(b.into_inner()).unwrap_or(usize::MAX)
            });
        let alerts = crate::alerts::settings::read(&mut file)?;
        file.finish(&known_keys())?;
        Ok(Config {
            broker,
            topic_prefix,
            client_id,
            shared_group,
            session_expiry,
            max_payload,
            database,
            synchronous,
            postgres,
            listen,
            https,
            allow_insecure_http,
            users_file,
            login: Duration::from_secs(login_hours * 3600),
            retention: Retention {
                transitions_days,
                events_days,
            },
            web_max_body,
            alerts,
        })
    }

    /// A configuration with every default, for `broker` (the demo and tests).
    pub fn with_defaults(broker: BrokerSettings, database: PathBuf) -> Config {
        Config {
            broker,
            topic_prefix: TopicPrefix::default(),
            client_id: DEFAULT_CLIENT_ID.to_owned(),
            shared_group: None,
            session_expiry: DEFAULT_SESSION_EXPIRY,
            max_payload: DEFAULT_MAX_PAYLOAD,
            database,
            synchronous: Synchronous::Normal,
            postgres: None,
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
            https: None,
            allow_insecure_http: false,
            users_file: None,
            login: Duration::from_secs(DEFAULT_LOGIN_HOURS * 3600),
            retention: Retention::default(),
            web_max_body: DEFAULT_WEB_MAX_BODY,
            alerts: None,
        }
    }

    /// Whether the dashboard asks for a login: always off loopback, and whenever users exist.
    pub fn login_required(&self) -> bool {
        self.users_file.is_some() || !self.listen.ip().is_loopback()
    }
}

/// Every key this file takes, section by section: the broker's (`roomready_connect`), the
/// controller's own ([`KEYS`]) and the alerts' (`crate::alerts::settings::KEYS`). The docs are
/// tested against it.
pub fn all_keys() -> impl Iterator<Item = &'static str> {
    roomready_connect::broker::KEYS
        .iter()
        .chain(KEYS.iter())
        .chain(crate::alerts::settings::KEYS.iter())
        .copied()
}

/// [`all_keys`] as one list, for the "unknown key" error.
pub fn known_keys() -> String {
    all_keys().collect::<Vec<_>>().join(", ")
}

/// A client id or shared-subscription group: 1..=64 of `A-Z a-z 0-9 . _ -`.
/// The `database` key (a SQLite path, or a PostgreSQL URL) and the PostgreSQL keys, which are
/// errors with a SQLite file.
fn read_database(
    file: &mut KeyFile<'_>,
    path: &Path,
) -> Result<(PathBuf, Option<PostgresOptions>), KeyFileError> {
    let is_url = |text: &str| text.starts_with("postgres://") || text.starts_with("postgresql://");
    let (span, url) = match file.string("database")? {
        Some(p) if p.get_ref().is_empty() => {
            return Err(file.error("database", p.span(), "is empty"));
        }
        Some(p) if is_url(p.get_ref()) => (p.span(), p.into_inner()),
        Some(p) => return finish_sqlite(file, beside(path, p.into_inner())),
        None => return finish_sqlite(file, beside(path, "controller.db".into())),
    };
    let mut options = PostgresOptions::new(url);
    if let Some(n) = file.integer("database_max_connections", 2..=256)? {
        options.max_connections = usize::try_from(n.into_inner()).unwrap_or(256);
    }
    if let Some(p) = file.string("database_ca_file")? {
        if p.get_ref().is_empty() {
            return Err(file.error("database_ca_file", p.span(), "is empty"));
        }
        options.ca_file = Some(beside(path, p.into_inner()));
    }
    if let Some(p) = file.string("database_password_file")? {
        options.password = Some(roomready_connect::broker::secret_file(
            file,
            "database_password_file",
            p,
        )?);
    }
    // The URL is checked now (never echoed: it may hold a password); connecting comes at start.
    options
        .check()
        .map_err(|e| file.error("database", span, e.to_string()))?;
    Ok((PathBuf::new(), Some(options)))
}

/// A SQLite database: the PostgreSQL keys are errors.
fn finish_sqlite(
    file: &mut KeyFile<'_>,
    database: PathBuf,
) -> Result<(PathBuf, Option<PostgresOptions>), KeyFileError> {
    let only = "applies to a PostgreSQL database only (database = \"postgres://…\")";
    for key in ["database_password_file", "database_ca_file"] {
        if let Some(v) = file.string(key)? {
            return Err(file.error(key, v.span(), only));
        }
    }
    if let Some(v) = file.integer("database_max_connections", 0..=u64::MAX)? {
        return Err(file.error("database_max_connections", v.span(), only));
    }
    Ok((database, None))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    match name
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some((at, c)) => Err(format!(
            "character {c:?} at byte {at} is not allowed (allowed: A-Z a-z 0-9 . _ -)"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, KeyFileError> {
        Config::parse(Path::new("/etc/roomready/controller.toml"), text, &|_| None)
    }

    fn error(text: &str) -> String {
        match parse(text) {
            Ok(config) => panic!("accepted: {config:?}"),
            Err(e) => e.to_string(),
        }
    }

    const BROKER: &str = "broker_url = \"mqtt://127.0.0.1:1883\"\n";

    #[test]
    fn defaults() {
        let config = parse(BROKER).expect("valid");
        assert_eq!(config.broker.version, MqttVersion::V5);
        assert_eq!(config.client_id, "roomready-controller");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            config.database,
            PathBuf::from("/etc/roomready/controller.db")
        );
        assert_eq!(config.retention, Retention::default());
        assert!(!config.login_required());
        assert_eq!(
            config,
            Config::with_defaults(
                config.broker.clone(),
                PathBuf::from("/etc/roomready/controller.db")
            )
        );
    }

    #[test]
    fn every_key() {
        let config = parse(&format!(
            "{BROKER}mqtt_version = 4\ntopic_prefix = \"acme/rooms\"\nclient_id = \"ctl-1\"\n\
             shared_group = \"ctls\"\nsession_expiry_secs = 3600\nmax_payload_bytes = 2048\n\
             database = \"/var/lib/rr.db\"\ndatabase_sync = \"full\"\nlisten = \"0.0.0.0:8443\"\n\
             tls_cert_file = \"c.pem\"\ntls_key_file = \"c.key\"\nusers_file = \"users\"\n\
             login_hours = 2\nretention_transitions_days = 30\nretention_events_days = 7\n\
             web_max_body_bytes = 4096\n"
        ))
        .expect("valid");
        assert_eq!(config.broker.version, MqttVersion::V311);
        assert_eq!(config.topic_prefix.as_str(), "acme/rooms");
        assert_eq!(config.shared_group.as_deref(), Some("ctls"));
        assert_eq!(config.synchronous, Synchronous::Full);
        assert_eq!(
            config.https,
            Some(HttpsFiles {
                cert_file: "/etc/roomready/c.pem".into(),
                key_file: "/etc/roomready/c.key".into(),
            })
        );
        assert!(config.login_required());
        assert_eq!(config.login, Duration::from_secs(7200));
        assert_eq!(config.web_max_body, 4096);
    }

    #[test]
    fn off_loopback_needs_https_or_consent_and_always_a_login() {
        assert_eq!(
            error(&format!("{BROKER}listen = \"0.0.0.0:8080\"\n")),
            "/etc/roomready/controller.toml:2:10: key \"listen\": 0.0.0.0:8080 is not a loopback \
             address: serving the dashboard there needs HTTPS (tls_cert_file and tls_key_file) \
             or allow_insecure_http = true"
        );
        assert!(
            error(&format!(
                "{BROKER}listen = \"10.0.0.2:80\"\nallow_insecure_http = true\n"
            ))
            .contains("a login is required there; set users_file")
        );
        let config = parse(&format!(
            "{BROKER}listen = \"10.0.0.2:80\"\nallow_insecure_http = true\nusers_file = \"u\"\n"
        ))
        .expect("valid");
        assert!(config.login_required());
        // On loopback a users file still turns the login on.
        assert!(
            parse(&format!("{BROKER}users_file = \"u\"\n"))
                .expect("valid")
                .login_required()
        );
    }

    #[test]
    fn a_postgres_url_chooses_postgresql_with_its_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("db-password"), "s3cret\nignored\n").expect("write");
        let path = dir.path().join("controller.toml");
        let text = format!(
            "{BROKER}database = \"postgresql://fleet@db.example:6543/rr\"\n\
             database_password_file = \"db-password\"\ndatabase_max_connections = 4\n"
        );
        let config = Config::parse(&path, &text, &|_| None).expect("valid");
        let options = config.postgres.expect("postgres");
        assert_eq!(options.password.as_deref(), Some("s3cret"));
        assert_eq!(options.max_connections, 4);
        assert_eq!(
            options.check().expect("checks"),
            "postgres://fleet@db.example:6543/rr"
        );
        assert!(!format!("{options:?}").contains("s3cret"));
        let config = parse(BROKER).expect("valid");
        assert!(config.postgres.is_none() && config.database.ends_with("controller.db"));
        // A bad URL is named, never echoed.
        let e = error(&format!(
            "{BROKER}database = \"postgres://u:sekrit@[::1/x\"\n"
        ));
        assert!(e.contains("not a PostgreSQL connection string"), "{e}");
        assert!(!e.contains("sekrit"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        for (text, expected) in [
            (
                "listen = \"localhost:80\"",
                "key \"listen\": \"localhost:80\" is not IP:PORT",
            ),
            (
                "tls_cert_file = \"c.pem\"",
                "key \"tls_cert_file\": tls_key_file is missing",
            ),
            (
                "client_id = \"a b\"",
                "key \"client_id\": character ' ' at byte 1",
            ),
            (
                "database_sync = \"sometimes\"",
                "key \"database_sync\": expected \"normal\"",
            ),
            (
                "login_hours = 0",
                "key \"login_hours\": must be an integer in 1..=720",
            ),
            (
                "database_ca_file = \"ca.pem\"",
                "key \"database_ca_file\": applies to a PostgreSQL database only",
            ),
            (
                "database_max_connections = 4",
                "key \"database_max_connections\": applies to a PostgreSQL database only",
            ),
            (
                "database_sync = \"full\"\ndatabase = \"postgres://u@db/x\"",
                "key \"database_sync\": applies to a SQLite database only",
            ),
            (
                "database = \"postgres://u:sekrit@db.example/x?sslmode=disable\"",
                "key \"database\": database postgres://u@db.example:5432/x: sslmode=disable is \
                 refused",
            ),
            ("topic_prefix = \"a/#\"", "key \"topic_prefix\""),
            (
                "colour = \"blue\"",
                "key \"colour\": unknown key; known keys: broker_url",
            ),
        ] {
            let e = error(&format!("{BROKER}{text}\n"));
            assert!(e.contains(expected), "{text}: {e}");
            assert!(e.starts_with("/etc/roomready/controller.toml:2:"), "{e}");
        }
        assert!(error("").contains("key \"broker_url\": missing"));
    }

    #[test]
    fn alerts_are_off_without_a_webhook_and_checked_with_one() {
        assert_eq!(parse(BROKER).expect("valid").alerts, None);
        let text = format!(
            "{BROKER}alert_webhook_url = \"https://hooks.example/abc\"\nalert_webhook_format = \"teams\"\n\
             alert_rules = [\"offline\", \"offline\", \"seq_gap\"]\nalert_offline_minutes = 5\n\
             alert_quiet_minutes = 0\nalert_suppress = [\"site:lab\", \"device:mtr-9\"]\n"
        );
        let alerts = parse(&text).expect("valid").alerts.expect("alerts on");
        assert_eq!(alerts.format, crate::alerts::Format::Teams);
        assert_eq!(
            alerts.rules,
            [crate::alerts::Rule::Offline, crate::alerts::Rule::SeqGap]
        );
        assert_eq!(alerts.offline_after, Duration::from_secs(300));
        assert_eq!(alerts.quiet, Duration::ZERO);
        assert_eq!(alerts.suppress.len(), 2);
        assert_eq!(alerts.webhook_host(), "https://hooks.example");
        for (line, expected) in [
            (
                "alert_webhook_url = \"http://hooks.example/abc\"",
                "http:// only to this machine (loopback), not \"hooks.example\": use https://",
            ),
            (
                "alert_webhook_url = \"ftp://x/y\"",
                "unsupported scheme \"ftp\"",
            ),
            (
                "alert_rules = [\"sometimes\"]",
                "\"sometimes\" is not a rule (known: verdict_worse, offline, seq_gap, cert_expiring, rollout_halted)",
            ),
            (
                "alert_suppress = [\"room:x\"]",
                "expected \"site:NAME\" or \"device:ID\"",
            ),
            (
                "alert_suppress = [\"site:a b\"]",
                "site \"a b\": character ' '",
            ),
            (
                "alert_group_secs = 0",
                "key \"alert_group_secs\": must be an integer in 1..=3600",
            ),
        ] {
            let e = error(&format!("{BROKER}{line}\n"));
            assert!(e.contains(expected), "{line}: {e}");
            assert!(e.starts_with("/etc/roomready/controller.toml:2:"), "{e}");
        }
        let local = parse(&format!(
            "{BROKER}alert_webhook_url = \"http://127.0.0.1:9/hook\"\n"
        ));
        assert!(local.expect("loopback http").alerts.is_some());
    }
}
