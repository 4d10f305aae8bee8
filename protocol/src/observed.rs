//! What the device's own TLS stack negotiated, as Windows' Schannel recorded it in the System
//! log: the evidence beside the prediction. Carried in `state` since 1.3 (absent when the agent
//! read no evidence, e.g. off Windows without an export).
//!
//! The verdict of a `state` is a prediction: the app version, the OS build and the registry say
//! what the device should be able to do, the probes what its endpoints accept. [`Observed`] says
//! what it did: how many handshakes Schannel logged per protocol version and target within a
//! window (event 36880), and how many failed (36874, 36887, 36888). A component pinned to TLS
//! 1.0, or a proxy that downgrades, shows up only here. `predicted` keeps the verdict of the
//! prediction alone, so a dashboard can find the rooms that should be ready and still talk
//! legacy TLS.
//!
//! Every list is bounded and every text validated the same way when the agent builds it and when
//! a controller decodes it: what a device sends cannot smuggle control characters or unbounded
//! text into a dashboard.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::messages::Verdict;
use crate::time::Timestamp;

/// Schannel's evidence of what a device negotiated within a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Observed {
    /// Where the events were read.
    pub source: ObservedSource,
    /// How far back the agent looked, in days.
    pub window_days: u32,
    /// The oldest and the newest Schannel event read (absent when none was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// Schannel events read within the window (handshakes and failures).
    pub events: u64,
    /// True when the bound on the number of events stopped the read before the window's start:
    /// the counts cover `since`..`until`, not the whole window.
    #[serde(default)]
    pub truncated: bool,
    /// Whether Schannel logs successful handshakes (`EventLogging` has bit 0x4): `false` means
    /// no 36880 event can exist, so the absence of legacy handshakes proves nothing; absent when
    /// unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_logging: Option<bool>,
    /// Successful client handshakes per protocol version and target, most recent first; at most
    /// [`Observed::MAX_ROWS`].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "bounded_rows"
    )]
    #[cfg_attr(feature = "json-schema", schemars(length(max = 64)))]
    pub handshakes: Vec<HandshakeCount>,
    /// Failed handshakes per event, alert and target, most recent first; at most
    /// [`Observed::MAX_ROWS`].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "bounded_rows"
    )]
    #[cfg_attr(feature = "json-schema", schemars(length(max = 64)))]
    pub failures: Vec<FailureCount>,
    /// Rows left out by the bound on `handshakes` and `failures` (their events are in `events`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rows_omitted: u64,
    /// The verdict of the prediction alone (app version, OS build, registry, probes), before this
    /// evidence was weighed.
    pub predicted: Verdict,
}

/// A list of at most [`Observed::MAX_ROWS`] rows.
fn bounded_rows<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let rows = Vec::<T>::deserialize(deserializer)?;
    if rows.len() > Observed::MAX_ROWS {
        return Err(serde::de::Error::custom(format!(
            "{} rows; at most {} are allowed",
            rows.len(),
            Observed::MAX_ROWS
        )));
    }
    Ok(rows)
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Observed {
    /// The most rows `handshakes` and `failures` each carry.
    pub const MAX_ROWS: usize = 64;

    /// Whether a legacy protocol (SSL, TLS 1.0 or 1.1) was negotiated in the window.
    pub fn legacy(&self) -> bool {
        self.handshakes.iter().any(|h| h.protocol.is_legacy())
    }

    /// Handshakes with a legacy protocol, summed.
    pub fn legacy_handshakes(&self) -> u64 {
        self.handshakes
            .iter()
            .filter(|h| h.protocol.is_legacy())
            .map(|h| h.count)
            .sum()
    }
}

/// Where the agent read the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ObservedSource {
    /// The device's live System log, through the Windows Event Log API.
    SystemLog,
    /// A saved export (`wevtutil qe System … /f:xml`) given to `check`.
    Export,
}

/// A protocol as Schannel names it in its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "json-schema",
    derive(schemars::JsonSchema),
    schemars(transform = crate::json_schema::other_observed_protocol)
)]
pub enum ObservedProtocol {
    #[serde(rename = "ssl2")]
    Ssl2,
    #[serde(rename = "ssl3")]
    Ssl3,
    #[serde(rename = "tls1.0")]
    Tls10,
    #[serde(rename = "tls1.1")]
    Tls11,
    #[serde(rename = "tls1.2")]
    Tls12,
    #[serde(rename = "tls1.3")]
    Tls13,
    #[serde(rename = "dtls1.0")]
    Dtls10,
    #[serde(rename = "dtls1.2")]
    Dtls12,
    /// A name this version of the contract does not know.
    #[serde(other, rename = "other")]
    Other,
}

impl ObservedProtocol {
    pub const ALL: [ObservedProtocol; 9] = [
        ObservedProtocol::Ssl2,
        ObservedProtocol::Ssl3,
        ObservedProtocol::Tls10,
        ObservedProtocol::Tls11,
        ObservedProtocol::Tls12,
        ObservedProtocol::Tls13,
        ObservedProtocol::Dtls10,
        ObservedProtocol::Dtls12,
        ObservedProtocol::Other,
    ];

    /// The name Schannel writes (`TLS 1.2`), also what a page shows.
    pub const fn name(self) -> &'static str {
        match self {
            ObservedProtocol::Ssl2 => "SSL 2.0",
            ObservedProtocol::Ssl3 => "SSL 3.0",
            ObservedProtocol::Tls10 => "TLS 1.0",
            ObservedProtocol::Tls11 => "TLS 1.1",
            ObservedProtocol::Tls12 => "TLS 1.2",
            ObservedProtocol::Tls13 => "TLS 1.3",
            ObservedProtocol::Dtls10 => "DTLS 1.0",
            ObservedProtocol::Dtls12 => "DTLS 1.2",
            ObservedProtocol::Other => "other",
        }
    }

    /// The wire name (`tls1.2`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ObservedProtocol::Ssl2 => "ssl2",
            ObservedProtocol::Ssl3 => "ssl3",
            ObservedProtocol::Tls10 => "tls1.0",
            ObservedProtocol::Tls11 => "tls1.1",
            ObservedProtocol::Tls12 => "tls1.2",
            ObservedProtocol::Tls13 => "tls1.3",
            ObservedProtocol::Dtls10 => "dtls1.0",
            ObservedProtocol::Dtls12 => "dtls1.2",
            ObservedProtocol::Other => "other",
        }
    }

    /// SSL 2.0/3.0, TLS 1.0/1.1 and DTLS 1.0 (built on TLS 1.1): what Microsoft 365 refuses.
    pub const fn is_legacy(self) -> bool {
        matches!(
            self,
            ObservedProtocol::Ssl2
                | ObservedProtocol::Ssl3
                | ObservedProtocol::Tls10
                | ObservedProtocol::Tls11
                | ObservedProtocol::Dtls10
        )
    }

    /// The protocol Schannel names `text` (`TLS 1.0`, `TLS1.2`, `tls 1.1`, `SSL 3.0`;
    /// case and spaces ignored); `None` for anything else.
    pub fn from_schannel(text: &str) -> Option<ObservedProtocol> {
        let squeezed: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
            .collect();
        let protocol = match squeezed.as_str() {
            "ssl2.0" | "ssl2" => ObservedProtocol::Ssl2,
            "ssl3.0" | "ssl3" => ObservedProtocol::Ssl3,
            "tls1.0" | "tls1" => ObservedProtocol::Tls10,
            "tls1.1" => ObservedProtocol::Tls11,
            "tls1.2" => ObservedProtocol::Tls12,
            "tls1.3" => ObservedProtocol::Tls13,
            "dtls1.0" | "dtls1" => ObservedProtocol::Dtls10,
            "dtls1.2" => ObservedProtocol::Dtls12,
            _ => return None,
        };
        Some(protocol)
    }
}

impl fmt::Display for ObservedProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Successful client handshakes with one protocol to one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct HandshakeCount {
    pub protocol: ObservedProtocol,
    /// The server the device connected to, as Schannel logged it (`TargetName`; absent in
    /// events of Windows versions that do not log it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// The cipher suite of the most recent of these handshakes (IANA code), when logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<u16>,
    pub count: u64,
    /// When the most recent of them happened.
    pub last: Timestamp,
}

/// Failed handshakes of one kind: a Schannel event id and, for alerts, the TLS alert code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct FailureCount {
    /// 36874 (no common cipher suite), 36887 (fatal alert received), 36888 (fatal alert sent).
    pub event: u32,
    /// The TLS alert (70 protocol_version, 40 handshake_failure, …) for 36887 and 36888.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<u8>,
    /// The protocol the failing handshake was attempted with, when logged (36874).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ObservedProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    pub count: u64,
    pub last: Timestamp,
}

/// A server name as Schannel logged it: 1..=255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Target(String);

impl Target {
    /// The longest accepted target, in characters (a DNS name is at most 253).
    pub const MAX_CHARS: usize = 255;

    pub fn new(text: impl Into<String>) -> Result<Target, TargetError> {
        let text = text.into();
        if text.is_empty() {
            return Err(TargetError::Empty);
        }
        let chars = text.chars().count();
        if chars > Self::MAX_CHARS {
            return Err(TargetError::TooLong { chars });
        }
        if let Some((offset, ch)) = text.char_indices().find(|(_, c)| c.is_control()) {
            return Err(TargetError::Control { ch, offset });
        }
        Ok(Target(text))
    }

    /// `text` made acceptable: control characters become `?`, the rest is cut to
    /// [`Target::MAX_CHARS`]; `None` when nothing but whitespace is left.
    pub fn lossy(text: &str) -> Option<Target> {
        let cleaned: String = text
            .trim()
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .take(Self::MAX_CHARS)
            .collect();
        Target::new(cleaned).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Target::new(text).map_err(serde::de::Error::custom)
    }
}

/// Why a string is not a [`Target`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("observed target is empty")]
    Empty,
    #[error("observed target is {chars} characters long; at most 255 are allowed")]
    TooLong { chars: usize },
    #[error("observed target: control character {ch:?} at byte {offset}")]
    Control { ch: char, offset: usize },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schannel_names_map_to_protocols() {
        for p in ObservedProtocol::ALL {
            if p != ObservedProtocol::Other {
                assert_eq!(ObservedProtocol::from_schannel(p.name()), Some(p));
                let json = serde_json::to_string(&p).expect("ser");
                assert_eq!(json, format!("\"{}\"", p.as_str()));
            }
        }
        assert_eq!(
            ObservedProtocol::from_schannel(" tls1.2 "),
            Some(ObservedProtocol::Tls12)
        );
        assert_eq!(ObservedProtocol::from_schannel("TLS 1.4"), None);
        assert_eq!(ObservedProtocol::from_schannel(""), None);
        let later: ObservedProtocol = serde_json::from_str("\"quic1\"").expect("other");
        assert_eq!(later, ObservedProtocol::Other);
        assert!(ObservedProtocol::Tls10.is_legacy() && !ObservedProtocol::Tls12.is_legacy());
    }

    #[test]
    fn targets_are_bounded_and_printable() {
        assert!(Target::new("outlook.office365.com").is_ok());
        assert_eq!(Target::new(""), Err(TargetError::Empty));
        assert_eq!(
            Target::new("a".repeat(256)),
            Err(TargetError::TooLong { chars: 256 })
        );
        assert!(Target::new("é".repeat(255)).is_ok());
        assert_eq!(
            Target::new("bad\u{1b}[31m"),
            Err(TargetError::Control {
                ch: '\u{1b}',
                offset: 3
            })
        );
        assert_eq!(
            Target::lossy("  x\ny  ").map(|t| t.0),
            Some("x?y".to_string())
        );
        assert_eq!(Target::lossy(" \t "), None);
        assert_eq!(
            Target::lossy(&"b".repeat(1000)).map(|t| t.0.len()),
            Some(255)
        );
        assert!(serde_json::from_str::<Target>("\"a\\u0000b\"").is_err());
    }
}
