//! What an endpoint accepted on the wire, as reported in a `State` (`endpoints`).
//!
//! State minor version 1.1 added [`VersionProbe::alert`], [`CertificateCheck::version`],
//! [`EndpointReport::certificate_unavailable`], [`EndpointReport::client_certificate_required`]
//! and [`EndpointReport::tls12_suites`]; consumers of 1.0 ignore them.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::tls::{CipherSuite, TlsVersion};

/// Why an endpoint is probed; rules and remediation depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum EndpointRole {
    /// A Microsoft 365 service host (teams.microsoft.com, …).
    Microsoft365,
    /// An on-premises Skype for Business pool.
    OnpremSfb,
    /// An AD FS host.
    Adfs,
    /// Anything else the admin wants checked.
    Custom,
}

impl EndpointRole {
    pub const ALL: [EndpointRole; 4] = [
        EndpointRole::Microsoft365,
        EndpointRole::OnpremSfb,
        EndpointRole::Adfs,
        EndpointRole::Custom,
    ];

    /// The wire and config name (`microsoft365`, `onprem_sfb`, `adfs`, `custom`).
    pub const fn as_str(self) -> &'static str {
        match self {
            EndpointRole::Microsoft365 => "microsoft365",
            EndpointRole::OnpremSfb => "onprem_sfb",
            EndpointRole::Adfs => "adfs",
            EndpointRole::Custom => "custom",
        }
    }
}

/// How one version probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    /// The endpoint completed (or, for TLS 1.0/1.1, answered with a ServerHello of) that version.
    Accepted,
    /// The endpoint refused it with a TLS alert (see `detail`).
    Refused,
    /// The endpoint answered with a lower version: refused for this one.
    Downgraded,
    /// No answer within the timeout.
    NoAnswer,
    ConnectionRefused,
    ConnectionReset,
    /// The endpoint closed the connection without answering.
    Closed,
    /// The answer was not TLS.
    NotTls,
    /// The host name did not resolve.
    DnsFailure,
    /// Any other failure (see `detail`).
    Error,
}

impl ProbeOutcome {
    /// The wire name (`accepted`, `connection_refused`, ...).
    pub const fn as_str(self) -> &'static str {
        match self {
            ProbeOutcome::Accepted => "accepted",
            ProbeOutcome::Refused => "refused",
            ProbeOutcome::Downgraded => "downgraded",
            ProbeOutcome::NoAnswer => "no_answer",
            ProbeOutcome::ConnectionRefused => "connection_refused",
            ProbeOutcome::ConnectionReset => "connection_reset",
            ProbeOutcome::Closed => "closed",
            ProbeOutcome::NotTls => "not_tls",
            ProbeOutcome::DnsFailure => "dns_failure",
            ProbeOutcome::Error => "error",
        }
    }
}

impl std::fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result for one TLS version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct VersionProbe {
    pub version: TlsVersion,
    pub outcome: ProbeOutcome,
    /// The suite chosen by the endpoint, when it accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<CipherSuite>,
    /// Alert name, error text or the version it downgraded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<u64>,
    /// The alert description the server refused with, when it sent one (state 1.1), e.g. 70
    /// for `protocol_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<u8>,
}

/// The endpoint's certificate chain and its verdict: from the TLS 1.3 or 1.2 handshake, or, where
/// only a hand-built hello was answered, from the server's Certificate message (TLS 1.0-1.2 send it
/// in the clear).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CertificateCheck {
    /// Whether the chain verified against the trust anchors for the endpoint's name, and its keys
    /// and signatures are strong enough.
    pub valid: bool,
    /// Why it is not valid, for a person ("expired on 2020-01-01; RSA key of 1024 bits is too
    /// weak"); absent when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// The TLS version of the handshake the chain was read from (state 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<TlsVersion>,
}

/// The answer to one hand-built hello offering chosen suites.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct SuiteProbe {
    pub outcome: ProbeOutcome,
    /// The suite the server chose, when it accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<CipherSuite>,
    /// Alert name, error text, or how the answer was obtained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What the endpoint does with TLS 1.2 suites, asked directly (state 1.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Tls12Suites {
    /// The suite the server chose when offered every TLS 1.2 suite, strongest first: its own
    /// preference when it orders suites itself. Absent when that hello was not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred: Option<CipherSuite>,
    /// Whether it accepts one of Microsoft's suites (the Office 365 and Azure Front Door lists):
    /// `accepted` with the suite, or the refusal of a hello offering exactly those. Absent when
    /// it could not be asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microsoft: Option<SuiteProbe>,
}

/// Everything probed on one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct EndpointReport {
    pub host: String,
    pub port: u16,
    pub role: EndpointRole,
    /// For `onprem_sfb`: the Skype for Business Server version the admin stated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfb_version: Option<String>,
    /// The address probed, when the name resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// One entry per version probed, TLS 1.3 first.
    pub versions: Vec<VersionProbe>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<CertificateCheck>,
    /// Why no certificate could be checked although a version was accepted, e.g. the server chose
    /// a suite without one (state 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_unavailable: Option<String>,
    /// The server asked for a client certificate, so no handshake without one completes; the
    /// versions it chose and its certificate were still read (state 1.1).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_certificate_required: bool,
    /// TLS 1.2 suites, asked directly: absent when TLS 1.2 was not accepted (state 1.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls12_suites: Option<Tls12Suites>,
}

impl EndpointReport {
    /// A report with nothing probed yet.
    pub fn new(host: String, port: u16, role: EndpointRole, sfb_version: Option<String>) -> Self {
        EndpointReport {
            host,
            port,
            role,
            sfb_version,
            address: None,
            versions: Vec::new(),
            certificate: None,
            certificate_unavailable: None,
            client_certificate_required: false,
            tls12_suites: None,
        }
    }

    /// The result for `version`, if it was probed.
    pub fn version(&self, version: TlsVersion) -> Option<&VersionProbe> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// Whether `version` was accepted.
    pub fn accepted(&self, version: TlsVersion) -> bool {
        self.version(version)
            .is_some_and(|p| p.outcome == ProbeOutcome::Accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_names_are_the_wire_names() {
        for outcome in [
            ProbeOutcome::Accepted,
            ProbeOutcome::Refused,
            ProbeOutcome::Downgraded,
            ProbeOutcome::NoAnswer,
            ProbeOutcome::ConnectionRefused,
            ProbeOutcome::ConnectionReset,
            ProbeOutcome::Closed,
            ProbeOutcome::NotTls,
            ProbeOutcome::DnsFailure,
            ProbeOutcome::Error,
        ] {
            let wire = serde_json::to_string(&outcome).expect("serialises");
            assert_eq!(wire, format!("\"{}\"", outcome.as_str()));
        }
    }
}
