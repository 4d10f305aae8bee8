//! What one farm endpoint is: the host it stands for, the TLS versions and suites it offers, its
//! certificate and how it behaves. [`EndpointSpec`] deserializes straight from a scenario's TOML
//! table; [`EndpointSpec::validate`] turns it into the checked form the farm serves.

use std::collections::BTreeSet;

use roomready_protocol::{AppVersion, EndpointRole, TlsVersion};
use rustls::SupportedCipherSuite;
use rustls::pki_types::ServerName;
use serde::Deserialize;

/// One simulated endpoint, as a scenario states it.
///
/// ```toml
/// name = "teams.microsoft.com"
/// role = "microsoft365"
/// versions = ["tls1.2", "tls1.3"]
/// suites = ["TLS13_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
/// certificate = "valid"
/// behaviour = { slow = { ms = 250 } }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct EndpointSpec {
    /// The host name (or IP address) it stands for: the agents probe this name, and a valid
    /// certificate is issued for it.
    pub name: String,
    /// The port the agents probe it on (443 by default); the farm itself listens on an ephemeral
    /// loopback port and [`crate::farm::EndpointFarm::resolve_overrides`] maps one to the other.
    #[serde(default = "default_port")]
    pub port: u16,
    pub role: EndpointRole,
    /// For `onprem_sfb`: the Skype for Business Server version the agents are told.
    #[serde(default)]
    pub sfb_version: Option<String>,
    /// The TLS versions it accepts (`"tls1.0"` … `"tls1.3"`); at least one.
    pub versions: BTreeSet<TlsVersion>,
    /// The TLS 1.2 / 1.3 suites it accepts, by rustls name (`TLS13_AES_128_GCM_SHA256`,
    /// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`, …; the IANA names of the TLS 1.3 suites too);
    /// `None` for all of rustls's (ring). TLS 1.0 / 1.1 always offer the farm's fixed legacy list.
    #[serde(default)]
    pub suites: Option<Vec<String>>,
    #[serde(default)]
    pub certificate: CertificateKind,
    #[serde(default)]
    pub behaviour: Behaviour,
}

fn default_port() -> u16 {
    443
}

/// Which leaf certificate an endpoint presents; all are issued by the farm's CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateKind {
    /// For the endpoint's name, valid from yesterday for a year.
    #[default]
    Valid,
    /// For the endpoint's name, but its validity ended yesterday.
    Expired,
    /// Valid dates, but for [`WRONG_NAME`] only.
    WrongName,
}

/// The only name in a [`CertificateKind::WrongName`] certificate.
pub const WRONG_NAME: &str = "wrong-name.invalid";

/// How an endpoint treats a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Behaviour {
    /// Answers at once.
    #[default]
    Normal,
    /// Reads the ClientHello, waits `ms` milliseconds, then answers as [`Behaviour::Normal`].
    Slow { ms: u64 },
    /// Nothing listens: every connection attempt is refused (a TCP RST answers the SYN), as for a
    /// host whose service is stopped or a firewall rule that rejects. Probes see
    /// `connection_refused`.
    Refuses,
    /// Accepts the TCP connection, reads, and never answers: probes time out (`no_answer`), as
    /// behind a middlebox that black-holes TLS.
    Silent,
}

/// The key type of an endpoint's leaf certificate, which decides the suites it can negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// RSA 2048: `ECDHE_RSA` suites, as Microsoft 365 endpoints. The default.
    Rsa,
    /// ECDSA P-256: `ECDHE_ECDSA` suites; chosen when the TLS 1.2 suites named are all ECDSA ones.
    Ecdsa,
}

/// Why an [`EndpointSpec`] cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("endpoint {name:?}: not a valid host name or IP address")]
    InvalidName { name: String },
    #[error("endpoint {name:?}: port 0; expected 1..=65535")]
    InvalidPort { name: String },
    #[error("endpoint {name:?}: no TLS version offered; expected at least one of tls1.0 … tls1.3")]
    NoVersion { name: String },
    #[error("endpoint {name:?}: sfb_version is only for role onprem_sfb")]
    SfbVersionNotSfb { name: String },
    #[error("endpoint {name:?}: sfb_version {version:?}: {reason}")]
    InvalidSfbVersion {
        name: String,
        version: String,
        reason: String,
    },
    #[error("endpoint {name:?}: unknown suite {suite:?}; expected one of {known}")]
    UnknownSuite {
        name: String,
        suite: String,
        known: String,
    },
    #[error("endpoint {name:?}: suite {suite} is a {version} suite, but {version} is not offered")]
    SuiteVersionNotOffered {
        name: String,
        suite: String,
        version: TlsVersion,
    },
    #[error("endpoint {name:?}: {version} is offered but none of its suites is listed")]
    NoSuiteFor { name: String, version: TlsVersion },
    #[error(
        "endpoint {name:?}: suites only restrict TLS 1.2 and 1.3, and neither is offered \
         (TLS 1.0 / 1.1 use the farm's fixed legacy list)"
    )]
    SuitesWithoutModernVersion { name: String },
    #[error(
        "endpoint {name:?}: the TLS 1.2 suites mix ECDHE_RSA and ECDHE_ECDSA; an endpoint has one \
         certificate (RSA or ECDSA), so list suites of one kind"
    )]
    MixedKeyKinds { name: String },
}

/// An [`EndpointSpec`] checked: the rustls suites it resolves to and its key type.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    pub spec: EndpointSpec,
    /// `None`: all of rustls's (ring) suites.
    pub suites: Option<Vec<SupportedCipherSuite>>,
    pub key: KeyKind,
}

/// The suite of the ring provider called `name` (rustls name, or IANA name for TLS 1.3).
fn find_suite(name: &str) -> Option<SupportedCipherSuite> {
    rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .copied()
        .find(|s| {
            let suite = s.suite();
            suite.as_str() == Some(name)
                || roomready_protocol::suite_name(u16::from(suite)) == Some(name)
        })
}

/// The names [`find_suite`] knows, for error messages.
fn known_suites() -> String {
    rustls::crypto::ring::ALL_CIPHER_SUITES
        .iter()
        .filter_map(|s| s.suite().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn suite_version(suite: SupportedCipherSuite) -> TlsVersion {
    match suite {
        SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
        SupportedCipherSuite::Tls12(_) => TlsVersion::Tls12,
    }
}

impl EndpointSpec {
    /// Checks the spec: a valid name and port, at least one version, known suites that cover every
    /// offered modern version and only those, one key type, `sfb_version` only for `onprem_sfb`.
    pub fn validate(&self) -> Result<ValidSpec, SpecError> {
        let name = || self.name.clone();
        if self.name.is_empty() || ServerName::try_from(self.name.as_str()).is_err() {
            return Err(SpecError::InvalidName { name: name() });
        }
        if self.port == 0 {
            return Err(SpecError::InvalidPort { name: name() });
        }
        if self.versions.is_empty() {
            return Err(SpecError::NoVersion { name: name() });
        }
        if let Some(version) = &self.sfb_version {
            if self.role != EndpointRole::OnpremSfb {
                return Err(SpecError::SfbVersionNotSfb { name: name() });
            }
            version
                .parse::<AppVersion>()
                .map_err(|e| SpecError::InvalidSfbVersion {
                    name: name(),
                    version: version.clone(),
                    reason: e.to_string(),
                })?;
        }
        let modern: Vec<TlsVersion> = self
            .versions
            .iter()
            .copied()
            .filter(|v| *v >= TlsVersion::Tls12)
            .collect();
        let Some(names) = &self.suites else {
            return Ok(ValidSpec {
                spec: self.clone(),
                suites: None,
                key: KeyKind::Rsa,
            });
        };
        if modern.is_empty() {
            return Err(SpecError::SuitesWithoutModernVersion { name: name() });
        }
        let mut suites = Vec::with_capacity(names.len());
        for suite_name in names {
            let suite = find_suite(suite_name).ok_or_else(|| SpecError::UnknownSuite {
                name: name(),
                suite: suite_name.clone(),
                known: known_suites(),
            })?;
            let version = suite_version(suite);
            if !modern.contains(&version) {
                return Err(SpecError::SuiteVersionNotOffered {
                    name: name(),
                    suite: suite_name.clone(),
                    version,
                });
            }
            if !suites.contains(&suite) {
                suites.push(suite);
            }
        }
        for version in modern {
            if !suites.iter().any(|s| suite_version(*s) == version) {
                return Err(SpecError::NoSuiteFor {
                    name: name(),
                    version,
                });
            }
        }
        let tls12_names: Vec<&str> = suites
            .iter()
            .filter(|s| suite_version(**s) == TlsVersion::Tls12)
            .filter_map(|s| s.suite().as_str())
            .collect();
        let ecdsa = tls12_names.iter().any(|n| n.contains("_ECDSA_"));
        let rsa = tls12_names.iter().any(|n| n.contains("_RSA_"));
        let key = match (rsa, ecdsa) {
            (true, true) => return Err(SpecError::MixedKeyKinds { name: name() }),
            (false, true) => KeyKind::Ecdsa,
            _ => KeyKind::Rsa,
        };
        Ok(ValidSpec {
            spec: self.clone(),
            suites: Some(suites),
            key,
        })
    }
}
