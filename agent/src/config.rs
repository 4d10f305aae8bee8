//! The daemon's configuration file (TOML), validated completely at start.
//!
//! ```toml
//! broker_url = "mqtt://127.0.0.1:1883"   # required; mqtt://HOST[:PORT], port defaults to 1883
//! device_id = "mtr-0001"                 # required; 1..=128 of A-Z a-z 0-9 . _ -
//! facts_file = "facts.toml"              # relative paths are relative to this file; required
//!                                        # except on Windows, where it overrides native facts
//! report_interval_secs = 900             # optional; 1..=86400, default 900
//! topic_prefix = "roomready"             # optional; default "roomready"
//! endpoints = ["microsoft365", "onprem_sfb=pool.contoso.com@6.0.9319.548"]
//!                                        # optional; probed each check. [ROLE=]HOST[:PORT][@VERSION],
//!                                        # "microsoft365" = its three hosts (the default); [] = none
//! ca_file = "ca.pem"                     # optional; trust anchors for endpoint certificates
//! probe_timeout_secs = 5                 # optional; 1..=120, default 5
//! journal_dir = "journal"                # optional; undelivered messages, command ids, seq
//!                                        # (default: "journal" beside this file)
//! journal_max_mib = 64                   # optional; 1..=65536, default 64
//! journal_fsync = "always"               # optional; "always" (default) or "never"
//! command_max_bytes = 65536              # optional; 1024..=16777216, default 65536
//! ```
//!
//! Every problem is reported as one [`KeyFileError`] naming the file, the line and column, the
//! key and the reason; the binary turns it into exit code 78 (`EX_CONFIG`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use roomready_protocol::{DeviceId, TopicPrefix};

use crate::keyfile::{KeyFile, KeyFileError};

/// The keys this version understands, for "unknown key" messages.
const KNOWN_KEYS: &str = "broker_url, device_id, facts_file, report_interval_secs, topic_prefix, endpoints, ca_file, probe_timeout_secs, journal_dir, journal_max_mib, journal_fsync, command_max_bytes";

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
    pub device_id: DeviceId,
    /// Absolute, or relative to the working directory when the config itself was given so.
    /// `None` only on Windows, where the facts are read natively.
    pub facts_file: Option<PathBuf>,
    pub report_interval: Duration,
    pub topic_prefix: TopicPrefix,
    /// Endpoints probed on every check (none by default).
    pub endpoints: Vec<crate::probe::Endpoint>,
    /// PEM trust anchors for endpoint certificates; Mozilla's roots when `None`.
    pub ca_file: Option<PathBuf>,
    pub probe_timeout: Duration,
    pub journal: JournalConfig,
    /// Largest command payload accepted.
    pub command_max_bytes: usize,
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

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, KeyFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyFileError::unreadable(path, "config file", &e))?;
        Config::parse(path, &text)
    }

    /// Validates config `text` read from `path` (used to resolve a relative `facts_file`).
    pub fn parse(path: &Path, text: &str) -> Result<Config, KeyFileError> {
        let mut file = KeyFile::parse(path, text)?;

        let broker = match file.string("broker_url")? {
            Some(url) => url
                .get_ref()
                .parse::<BrokerUrl>()
                .map_err(|e| file.error("broker_url", url.span(), e.to_string()))?,
            None => return Err(file.missing("broker_url", "mqtt://HOST:PORT")),
        };
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
        file.finish(KNOWN_KEYS)?;
        Ok(Config {
            journal: JournalConfig {
                dir,
                max_bytes,
                fsync,
            },
            command_max_bytes,
            broker,
            device_id,
            facts_file,
            report_interval,
            topic_prefix,
            endpoints,
            ca_file,
            probe_timeout,
        })
    }
}

/// `given`, resolved relative to the directory of the config file at `config` when relative.
fn beside(config: &Path, given: String) -> PathBuf {
    let given = PathBuf::from(given);
    match config.parent() {
        Some(dir) if given.is_relative() => dir.join(given),
        _ => given,
    }
}

/// Where the broker is: `mqtt://HOST[:PORT]` (plain MQTT over TCP; port 1883 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
}

impl BrokerUrl {
    pub const DEFAULT_PORT: u16 = 1883;
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "mqtt://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "mqtt://{}:{}", self.host, self.port)
        }
    }
}

/// Why a string is not a [`BrokerUrl`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL {url:?}: {reason}")]
pub struct BrokerUrlError {
    pub url: String,
    pub reason: String,
}

impl FromStr for BrokerUrl {
    type Err = BrokerUrlError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let fail = |reason: &str| BrokerUrlError {
            url: url.chars().take(200).collect(),
            reason: reason.to_owned(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(fail("expected mqtt://HOST:PORT"));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "mqtt" | "tcp" => {}
            "mqtts" | "ssl" | "tls" => {
                return Err(fail(
                    "TLS to the broker (mqtts://) is not available in this version; use mqtt://",
                ));
            }
            _ => return Err(fail("unsupported scheme; expected mqtt://HOST:PORT")),
        }
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(fail(
                "a path, query or fragment is not allowed; expected mqtt://HOST:PORT",
            ));
        }
        if authority.contains('@') {
            return Err(fail("credentials in the URL are not supported"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(fail("unclosed '[' in IPv6 address"));
            };
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(fail("expected ':PORT' after the IPv6 address")),
                },
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(fail("host is empty"));
        }
        if host.contains(':') && !authority.starts_with('[') {
            return Err(fail("write an IPv6 address in brackets: mqtt://[::1]:1883"));
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
        {
            return Err(fail("host contains characters not allowed in a host name"));
        }
        let port = match port {
            None => Self::DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(fail("port must be a number in 1..=65535")),
                Ok(p) => p,
            },
        };
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_protocol::EndpointRole;

    fn parse(text: &str) -> Result<Config, KeyFileError> {
        Config::parse(Path::new("/etc/roomready/agent.toml"), text)
    }

    const GOOD: &str = "broker_url = \"mqtt://broker.example:1884\"\ndevice_id = \"mtr-1\"\nfacts_file = \"facts.toml\"\n";

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(GOOD).expect("valid");
        assert_eq!(
            config.broker,
            BrokerUrl {
                host: "broker.example".into(),
                port: 1884
            }
        );
        assert_eq!(config.device_id.as_str(), "mtr-1");
        assert_eq!(
            config.facts_file,
            Some(PathBuf::from("/etc/roomready/facts.toml"))
        );
        assert_eq!(config.report_interval, DEFAULT_REPORT_INTERVAL);
        assert_eq!(config.topic_prefix.as_str(), "roomready");
    }

    #[test]
    fn all_keys() {
        let text = format!("{GOOD}report_interval_secs = 60\ntopic_prefix = \"acme/rooms\"\n")
            .replace("facts.toml", "/var/lib/facts.toml");
        let config = parse(&text).expect("valid");
        assert_eq!(config.report_interval, Duration::from_secs(60));
        assert_eq!(config.topic_prefix.as_str(), "acme/rooms");
        assert_eq!(
            config.facts_file,
            Some(PathBuf::from("/var/lib/facts.toml"))
        );
    }

    #[test]
    fn errors_name_file_line_key_and_reason() {
        let cases = [
            (
                GOOD.replace("mqtt://broker.example:1884", "http://x"),
                "/etc/roomready/agent.toml:1:14: key \"broker_url\": invalid broker URL \"http://x\": unsupported scheme; expected mqtt://HOST:PORT",
            ),
            (
                GOOD.replace("mtr-1", "mtr/1"),
                "/etc/roomready/agent.toml:2:13: key \"device_id\": device id \"mtr/1\": character '/' at byte 3 is not allowed (allowed: A-Z a-z 0-9 . _ -)",
            ),
            (
                format!("{GOOD}report_interval_secs = 0\n"),
                "/etc/roomready/agent.toml:4:24: key \"report_interval_secs\": must be an integer in 1..=86400, found an integer 0",
            ),
            (
                format!("{GOOD}report_interval_secs = \"5m\"\n"),
                "/etc/roomready/agent.toml:4:24: key \"report_interval_secs\": expected an integer, found a string \"5m\"",
            ),
            (
                format!("{GOOD}topic_prefix = \"a/#\"\n"),
                "/etc/roomready/agent.toml:4:16: key \"topic_prefix\": topic prefix \"a/#\" contains an MQTT wildcard ('+' or '#')",
            ),
            (
                format!("{GOOD}brokr = 1\n"),
                "/etc/roomready/agent.toml:4:1: key \"brokr\": unknown key; known keys: broker_url, device_id, facts_file, report_interval_secs, topic_prefix, endpoints, ca_file, probe_timeout_secs, journal_dir, journal_max_mib, journal_fsync, command_max_bytes",
            ),
            (
                GOOD.replace("device_id = \"mtr-1\"\n", ""),
                "/etc/roomready/agent.toml: key \"device_id\": missing; required: this device's id",
            ),
        ];
        for (text, message) in cases {
            let err = parse(&text).expect_err(&text);
            assert_eq!(err.to_string(), message);
        }
    }

    #[test]
    fn endpoints_default_to_microsoft365() {
        let hosts = |text: &str| -> Vec<(String, u16, EndpointRole)> {
            parse(text)
                .expect(text)
                .endpoints
                .into_iter()
                .map(|e| (e.host, e.port, e.role))
                .collect()
        };
        let m365: Vec<_> = crate::probe::MICROSOFT365_HOSTS
            .iter()
            .map(|h| ((*h).to_owned(), 443, EndpointRole::Microsoft365))
            .collect();
        assert_eq!(hosts(GOOD), m365, "no key: the Microsoft 365 hosts");
        assert_eq!(
            hosts(&format!("{GOOD}endpoints = []\n")),
            vec![],
            "[]: none"
        );
        let listed = hosts(&format!(
            "{GOOD}endpoints = [\"microsoft365\", \"adfs=sts.contoso.com\", \"MICROSOFT365\"]\n"
        ));
        let mut expected = m365.clone();
        expected.push(("sts.contoso.com".into(), 443, EndpointRole::Adfs));
        assert_eq!(listed, expected, "expanded once, repeats dropped");
        let err = parse(&format!("{GOOD}endpoints = [\"microsoft 365\"]\n")).expect_err("bad");
        assert!(
            err.to_string()
                .starts_with("/etc/roomready/agent.toml:4:14: key \"endpoints\": invalid host"),
            "{err}"
        );
    }

    #[test]
    fn journal_and_command_keys() {
        let config = parse(GOOD).expect("valid");
        assert_eq!(
            config.journal,
            JournalConfig {
                dir: PathBuf::from("/etc/roomready/journal"),
                max_bytes: 64 * 1024 * 1024,
                fsync: true,
            }
        );
        assert_eq!(config.command_max_bytes, 65_536);
        let text = format!(
            "{GOOD}journal_dir = \"/var/spool/roomready\"\njournal_max_mib = 8\njournal_fsync = \"never\"\ncommand_max_bytes = 4096\n"
        );
        let config = parse(&text).expect("valid");
        assert_eq!(config.journal.dir, PathBuf::from("/var/spool/roomready"));
        assert_eq!(config.journal.max_bytes, 8 * 1024 * 1024);
        assert!(!config.journal.fsync);
        assert_eq!(config.command_max_bytes, 4096);
        for (extra, message) in [
            (
                "journal_fsync = \"sometimes\"\n",
                "key \"journal_fsync\": expected \"always\" or \"never\", found \"sometimes\"",
            ),
            (
                "journal_max_mib = 0\n",
                "key \"journal_max_mib\": must be an integer in 1..=65536, found an integer 0",
            ),
            (
                "command_max_bytes = 10\n",
                "key \"command_max_bytes\": must be an integer in 1024..=16777216, found an integer 10",
            ),
        ] {
            let err = parse(&format!("{GOOD}{extra}")).expect_err(extra);
            assert!(err.to_string().contains(message), "{err}");
        }
    }

    #[test]
    fn facts_file_is_required_where_there_are_no_native_facts() {
        let without = GOOD.replace("facts_file = \"facts.toml\"\n", "");
        let parsed = parse(&without);
        assert_eq!(
            parsed.is_ok(),
            cfg!(windows),
            "only Windows reads facts natively"
        );
        match parsed {
            Ok(config) => assert_eq!(config.facts_file, None),
            Err(err) => {
                assert_eq!(
                    err.to_string(),
                    "/etc/roomready/agent.toml: key \"facts_file\": missing; required: path of the \
                     device facts file (facts are read natively only on Windows)"
                );
            }
        }
    }

    #[test]
    fn unreadable_file_names_the_file() {
        let err = Config::load(Path::new("/nonexistent/agent.toml")).expect_err("missing");
        assert!(
            err.to_string()
                .starts_with("/nonexistent/agent.toml: cannot read config file:"),
            "{err}"
        );
    }

    #[test]
    fn broker_urls() {
        let ok = |s: &str| s.parse::<BrokerUrl>().expect(s);
        assert_eq!(
            ok("mqtt://127.0.0.1:1883"),
            BrokerUrl {
                host: "127.0.0.1".into(),
                port: 1883
            }
        );
        assert_eq!(
            ok("mqtt://broker"),
            BrokerUrl {
                host: "broker".into(),
                port: 1883
            }
        );
        assert_eq!(
            ok("MQTT://broker:9/"),
            BrokerUrl {
                host: "broker".into(),
                port: 9
            }
        );
        assert_eq!(
            ok("mqtt://[::1]:2000"),
            BrokerUrl {
                host: "::1".into(),
                port: 2000
            }
        );
        assert_eq!(ok("mqtt://[::1]:2000").to_string(), "mqtt://[::1]:2000");
        for (bad, reason) in [
            ("broker:1883", "expected mqtt://HOST:PORT"),
            ("mqtts://broker:8883", "not available in this version"),
            ("ws://broker", "unsupported scheme"),
            ("mqtt://:1883", "host is empty"),
            ("mqtt://broker:0", "port must be"),
            ("mqtt://broker:65536", "port must be"),
            ("mqtt://broker:x", "port must be"),
            ("mqtt://u:p@broker", "credentials"),
            ("mqtt://broker/path", "path, query or fragment"),
            ("mqtt://::1", "brackets"),
            ("mqtt://[::1", "unclosed"),
            ("mqtt://bro ker", "not allowed in a host name"),
        ] {
            let err = bad.parse::<BrokerUrl>().expect_err(bad);
            assert!(err.to_string().contains(reason), "{bad}: {err}");
        }
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The example in docs/ must stay a valid config, and its facts file valid facts.
    #[test]
    fn documented_examples_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples");
        let config = Config::load(&dir.join("agent.toml")).expect("docs/examples/agent.toml");
        assert_eq!(config.device_id.as_str(), "mtr-0001");
        let facts_file = config
            .facts_file
            .as_ref()
            .expect("the example names its facts file");
        let facts = crate::facts::FactsFile::new(facts_file)
            .read()
            .expect("docs/examples/facts.toml");
        assert_eq!(
            crate::assess::assess(&facts).verdict,
            roomready_protocol::Verdict::Ready
        );
    }
}
