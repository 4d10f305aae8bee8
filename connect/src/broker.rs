//! The broker connection both the agent and the controller make: where the broker is
//! ([`BrokerUrl`]), how it is verified ([`BrokerTls`]), who connects ([`Credentials`]) and which
//! MQTT version is spoken, read from a config file's keys by [`BrokerSettings::read`].
//!
//! ```toml
//! broker_url = "mqtts://broker.example"  # required; mqtt://HOST[:PORT] (port 1883) or
//!                                        # mqtts://HOST[:PORT] (MQTT over TLS, port 8883)
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
//!                                        # loopback (see crate::loopback)
//! mqtt_version = 5                       # optional; 4 = MQTT 3.1.1 (3 accepted too) or 5;
//!                                        # the default is the caller's (agent 4, controller 5)
//! ```
//!
//! The `broker_*` and `client_*` keys need `mqtts://`. Relative paths are relative to the config
//! file. Every problem is one [`KeyFileError`] naming the file, line, column, key and reason.

use std::ffi::OsString;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::keyfile::{KeyFile, KeyFileError};

/// The keys [`BrokerSettings::read`] takes, for a config's list of known keys.
pub const KEYS: [&str; 10] = [
    "broker_url",
    "allow_insecure",
    "broker_ca_file",
    "broker_server_name",
    "client_cert_file",
    "client_key_file",
    "username",
    "password_file",
    "password_env",
    "mqtt_version",
];

/// Which MQTT protocol a client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MqttVersion {
    /// MQTT 3.1.1.
    #[default]
    V311,
    /// MQTT 5.
    V5,
}

/// Everything needed to connect to the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerSettings {
    pub url: BrokerUrl,
    /// Used only with `mqtts://` (all `None` otherwise).
    pub tls: BrokerTls,
    pub credentials: Option<Credentials>,
    pub version: MqttVersion,
}

impl BrokerSettings {
    /// Takes [`KEYS`] from `file`; `env` looks up `password_env`; without `mqtt_version` the
    /// client speaks `default_version`. `broker_url` is required, and plain `mqtt://` is refused
    /// to a host that is not loopback unless `allow_insecure = true`.
    pub fn read(
        file: &mut KeyFile<'_>,
        env: &dyn Fn(&str) -> Option<OsString>,
        default_version: MqttVersion,
    ) -> Result<BrokerSettings, KeyFileError> {
        let (url, url_span) = match file.string("broker_url")? {
            Some(url) => {
                let parsed = url
                    .get_ref()
                    .parse::<BrokerUrl>()
                    .map_err(|e| file.error("broker_url", url.span(), e.to_string()))?;
                (parsed, url.span())
            }
            None => {
                return Err(file.missing("broker_url", "mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"));
            }
        };
        let allow_insecure = file
            .boolean("allow_insecure")?
            .is_some_and(toml::Spanned::into_inner);
        if !url.tls && !allow_insecure && !url.is_loopback() {
            return Err(file.error(
                "broker_url",
                url_span,
                format!(
                    "plain mqtt:// to {:?}, which is not a loopback address, would send messages \
                     and credentials unencrypted; use mqtts:// or set allow_insecure = true",
                    url.host
                ),
            ));
        }
        let tls = broker_tls(file, &url)?;
        let credentials = credentials(file, env)?;
        let version = match file.integer("mqtt_version", 3..=5)? {
            None => default_version,
            Some(v) if *v.get_ref() == 5 => MqttVersion::V5,
            Some(_) => MqttVersion::V311,
        };
        Ok(BrokerSettings {
            url,
            tls,
            credentials,
            version,
        })
    }
}

/// The TLS settings of an `mqtts://` broker connection (the files are read by
/// [`crate::tls::client_config`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerTls {
    /// PEM trust anchors for the broker's certificate; Mozilla's roots when `None`.
    pub ca_file: Option<PathBuf>,
    /// The name the broker's certificate must be valid for, instead of the URL's host.
    pub server_name: Option<String>,
    /// The client's own certificate, for brokers that require one (mutual TLS).
    pub client_cert: Option<ClientCertFiles>,
}

/// A client certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertFiles {
    /// The certificate (and any intermediates), leaf first.
    pub cert_file: PathBuf,
    /// The private key: PKCS#8, SEC1 (EC) or PKCS#1 (RSA).
    pub key_file: PathBuf,
}

/// MQTT user name and optional password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Option<Password>,
}

/// A password: kept out of logs, its `Debug` prints `***` and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(password: impl Into<String>) -> Self {
        Password(password.into())
    }

    /// The password itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A path-valued key, resolved relative to the config file; empty is an error.
fn path_key(
    file: &mut KeyFile<'_>,
    key: &str,
) -> Result<Option<(PathBuf, Range<usize>)>, KeyFileError> {
    match file.string(key)? {
        None => Ok(None),
        Some(p) if p.get_ref().is_empty() => Err(file.error(key, p.span(), "is empty")),
        Some(p) => {
            let span = p.span();
            Ok(Some((beside(file.path(), p.into_inner()), span)))
        }
    }
}

/// The `broker_*` and `client_*` keys; each is an error unless the URL is `mqtts://`.
fn broker_tls(file: &mut KeyFile<'_>, broker: &BrokerUrl) -> Result<BrokerTls, KeyFileError> {
    let ca_file = path_key(file, "broker_ca_file")?;
    let server_name = match file.string("broker_server_name")? {
        None => None,
        Some(name) => {
            if rustls::pki_types::ServerName::try_from(name.get_ref().as_str()).is_err() {
                return Err(file.error(
                    "broker_server_name",
                    name.span(),
                    format!("{:?} is not a valid DNS name or IP address", name.get_ref()),
                ));
            }
            let span = name.span();
            Some((name.into_inner(), span))
        }
    };
    let cert_file = path_key(file, "client_cert_file")?;
    let key_file = path_key(file, "client_key_file")?;
    if !broker.tls {
        let given = [
            ("broker_ca_file", ca_file.as_ref().map(|c| c.1.clone())),
            (
                "broker_server_name",
                server_name.as_ref().map(|n| n.1.clone()),
            ),
            ("client_cert_file", cert_file.as_ref().map(|c| c.1.clone())),
            ("client_key_file", key_file.as_ref().map(|k| k.1.clone())),
        ];
        if let Some((key, Some(span))) = given.into_iter().find(|(_, span)| span.is_some()) {
            return Err(file.error(
                key,
                span,
                format!("applies only to TLS, but broker_url is {broker}; use mqtts://"),
            ));
        }
    }
    let client_cert = match (cert_file, key_file) {
        (Some((cert_file, _)), Some((key_file, _))) => Some(ClientCertFiles {
            cert_file,
            key_file,
        }),
        (None, None) => None,
        (Some((_, span)), None) => {
            return Err(file.error(
                "client_cert_file",
                span,
                "client_key_file is missing: set both client_cert_file and client_key_file, or neither",
            ));
        }
        (None, Some((_, span))) => {
            return Err(file.error(
                "client_key_file",
                span,
                "client_cert_file is missing: set both client_cert_file and client_key_file, or neither",
            ));
        }
    };
    Ok(BrokerTls {
        ca_file: ca_file.map(|c| c.0),
        server_name: server_name.map(|n| n.0),
        client_cert,
    })
}

/// The secret in the file a key names (resolved beside the config file, read with the
/// [`crate::files::SECRET`] bound): its first line, without the line ending; an empty name, an
/// unreadable file or an empty first line is an error at `key`.
pub fn secret_file(
    file: &KeyFile<'_>,
    key: &str,
    name: toml::Spanned<String>,
) -> Result<String, KeyFileError> {
    let span = name.span();
    if name.get_ref().is_empty() {
        return Err(file.error(key, span, "is empty"));
    }
    let path = beside(file.path(), name.into_inner());
    let text = crate::files::read_text(&path, crate::files::SECRET).map_err(|e| {
        file.error(
            key,
            span.clone(),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(file.error(
            key,
            span,
            format!("the first line of {} is empty", path.display()),
        ));
    }
    Ok(first.to_owned())
}

/// `username` and the password from `password_file` or `password_env`.
fn credentials(
    file: &mut KeyFile<'_>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Option<Credentials>, KeyFileError> {
    let username = match file.string("username")? {
        None => None,
        Some(u) if u.get_ref().is_empty() => {
            return Err(file.error("username", u.span(), "is empty"));
        }
        Some(u) if u.get_ref().contains('\0') || u.get_ref().len() > usize::from(u16::MAX) => {
            return Err(file.error(
                "username",
                u.span(),
                "must be at most 65535 bytes without NUL characters",
            ));
        }
        Some(u) => Some(u.into_inner()),
    };
    let password_file = file.string("password_file")?;
    let password_env = file.string("password_env")?;
    let password = match (password_file, password_env) {
        (Some(_), Some(name)) => {
            return Err(file.error(
                "password_env",
                name.span(),
                "password_file is set too: give the password one way, not both",
            ));
        }
        (None, None) => None,
        (Some(p), None) => {
            let span = p.span();
            Some((
                "password_file",
                span,
                secret_file(file, "password_file", p)?,
            ))
        }
        (None, Some(name)) => {
            let span = name.span();
            let name = name.into_inner();
            if name.is_empty() || name.contains(['=', '\0']) {
                return Err(file.error(
                    "password_env",
                    span,
                    "must be the name of an environment variable",
                ));
            }
            let value = match env(&name).map(OsString::into_string) {
                None => {
                    return Err(file.error(
                        "password_env",
                        span,
                        format!("environment variable {name} is not set"),
                    ));
                }
                Some(Err(_)) => {
                    return Err(file.error(
                        "password_env",
                        span,
                        format!("environment variable {name} is not valid UTF-8"),
                    ));
                }
                Some(Ok(value)) if value.is_empty() => {
                    return Err(file.error(
                        "password_env",
                        span,
                        format!("environment variable {name} is empty"),
                    ));
                }
                Some(Ok(value)) => value,
            };
            Some(("password_env", span, value))
        }
    };
    if let Some((key, span, password)) = &password
        && password.len() > usize::from(u16::MAX)
    {
        return Err(file.error(key, span.clone(), "the password is longer than 65535 bytes"));
    }
    match (username, password) {
        (Some(username), password) => Ok(Some(Credentials {
            username,
            password: password.map(|p| Password::new(p.2)),
        })),
        (None, Some((key, span, _))) => {
            Err(file.error(key, span, "a password needs a user name: set username too"))
        }
        (None, None) => Ok(None),
    }
}

/// `given`, resolved relative to the directory of the config file at `config` when relative.
pub fn beside(config: &Path, given: String) -> PathBuf {
    let given = PathBuf::from(given);
    match config.parent() {
        Some(dir) if given.is_relative() => dir.join(given),
        _ => given,
    }
}

/// Where the broker is: `mqtt://HOST[:PORT]` (plain MQTT over TCP, port 1883 by default) or
/// `mqtts://HOST[:PORT]` (MQTT over TLS, port 8883 by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    /// `mqtts://`: MQTT over TLS.
    pub tls: bool,
}

impl BrokerUrl {
    pub const DEFAULT_PORT: u16 = 1883;
    pub const DEFAULT_TLS_PORT: u16 = 8883;

    /// Whether the host is this machine, in any spelling ([`crate::loopback`]).
    pub fn is_loopback(&self) -> bool {
        crate::loopback::is_loopback_host(&self.host)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
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
        const EXPECTED: &str = "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]";
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(fail(EXPECTED));
        };
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "mqtt" => false,
            "mqtts" => true,
            "tcp" => {
                return Err(fail(&format!(
                    "unsupported scheme; {EXPECTED} (write mqtt:// for tcp://)"
                )));
            }
            "ssl" | "tls" => {
                return Err(fail(&format!(
                    "unsupported scheme; {EXPECTED} (write mqtts:// for {scheme}://)"
                )));
            }
            _ => return Err(fail(&format!("unsupported scheme; {EXPECTED}"))),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#']) {
            return Err(fail(&format!(
                "a path, query or fragment is not allowed; {EXPECTED}"
            )));
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
            None if tls => Self::DEFAULT_TLS_PORT,
            None => Self::DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(fail("port must be a number in 1..=65535")),
                Ok(p) => p,
            },
        };
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

#[cfg(test)]
mod tests;
