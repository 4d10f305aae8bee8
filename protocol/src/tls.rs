//! TLS protocol versions and cipher suites, by their IANA codes and names.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::suites::suite_name;

/// Name of a TLS alert description (RFC 8446, RFC 5246 and the RFC 6066 additions); "unknown"
/// otherwise.
pub fn alert_name(description: u8) -> &'static str {
    match description {
        0 => "close_notify",
        10 => "unexpected_message",
        20 => "bad_record_mac",
        21 => "decryption_failed",
        22 => "record_overflow",
        30 => "decompression_failure",
        40 => "handshake_failure",
        41 => "no_certificate",
        42 => "bad_certificate",
        43 => "unsupported_certificate",
        44 => "certificate_revoked",
        45 => "certificate_expired",
        46 => "certificate_unknown",
        47 => "illegal_parameter",
        48 => "unknown_ca",
        49 => "access_denied",
        50 => "decode_error",
        51 => "decrypt_error",
        60 => "export_restriction",
        70 => "protocol_version",
        71 => "insufficient_security",
        80 => "internal_error",
        86 => "inappropriate_fallback",
        90 => "user_canceled",
        100 => "no_renegotiation",
        109 => "missing_extension",
        110 => "unsupported_extension",
        111 => "certificate_unobtainable",
        112 => "unrecognized_name",
        113 => "bad_certificate_status_response",
        114 => "bad_certificate_hash_value",
        115 => "unknown_psk_identity",
        116 => "certificate_required",
        120 => "no_application_protocol",
        _ => "unknown",
    }
}

/// A TLS protocol version the agent assesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub enum TlsVersion {
    #[serde(rename = "tls1.0")]
    Tls10,
    #[serde(rename = "tls1.1")]
    Tls11,
    #[serde(rename = "tls1.2")]
    Tls12,
    #[serde(rename = "tls1.3")]
    Tls13,
}

impl TlsVersion {
    pub const ALL: [TlsVersion; 4] = [
        TlsVersion::Tls10,
        TlsVersion::Tls11,
        TlsVersion::Tls12,
        TlsVersion::Tls13,
    ];

    /// The version number on the wire (`0x0301` … `0x0304`).
    pub const fn wire(self) -> u16 {
        match self {
            TlsVersion::Tls10 => 0x0301,
            TlsVersion::Tls11 => 0x0302,
            TlsVersion::Tls12 => 0x0303,
            TlsVersion::Tls13 => 0x0304,
        }
    }

    /// The version with this wire number, if it is one of the four.
    pub const fn from_wire(wire: u16) -> Option<TlsVersion> {
        match wire {
            0x0301 => Some(TlsVersion::Tls10),
            0x0302 => Some(TlsVersion::Tls11),
            0x0303 => Some(TlsVersion::Tls12),
            0x0304 => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// `TLS 1.2` — also the SCHANNEL registry key name of the version.
    pub const fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS 1.0",
            TlsVersion::Tls11 => "TLS 1.1",
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }
}

impl fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A cipher suite: its IANA code and, when known, its IANA name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CipherSuite {
    /// The code as four upper-case hex digits, e.g. `C030`.
    #[cfg_attr(
        feature = "json-schema",
        schemars(
            description = "The IANA code, written as four upper-case hex digits, e.g. \
                                `C030` (read as any string)."
        )
    )]
    pub code: String,
    /// The IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`; absent if not in the
    /// registry ([`crate::suites::CIPHER_SUITES`]).
    #[cfg_attr(
        feature = "json-schema",
        schemars(
            description = "The IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`; \
                                absent if the code is not in IANA's registry."
        )
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl CipherSuite {
    pub fn from_code(code: u16) -> Self {
        CipherSuite {
            code: format!("{code:04X}"),
            name: suite_name(code).map(str::to_owned),
        }
    }

    /// The numeric code, if `code` is four hex digits.
    pub fn value(&self) -> Option<u16> {
        u16::from_str_radix(&self.code, 16)
            .ok()
            .filter(|_| self.code.len() == 4)
    }
}

impl fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} (0x{})", self.code),
            None => write!(f, "0x{}", self.code),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_show_code_and_name() {
        let s = CipherSuite::from_code(0x009D);
        assert_eq!(s.code, "009D");
        assert_eq!(s.value(), Some(0x009D));
        assert_eq!(s.to_string(), "TLS_RSA_WITH_AES_256_GCM_SHA384 (0x009D)");
    }

    #[test]
    fn versions_round_trip_their_wire_numbers() {
        for v in TlsVersion::ALL {
            assert_eq!(TlsVersion::from_wire(v.wire()), Some(v));
            let json = serde_json::to_string(&v).expect("ser");
            assert_eq!(serde_json::from_str::<TlsVersion>(&json).expect("de"), v);
        }
        assert_eq!(TlsVersion::from_wire(0x0300), None);
        assert_eq!(
            serde_json::to_string(&TlsVersion::Tls12).expect("ser"),
            "\"tls1.2\""
        );
    }
}
