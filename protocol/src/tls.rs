//! TLS protocol versions and cipher suites, by their IANA codes and names.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A TLS protocol version the agent assesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
pub struct CipherSuite {
    /// The code as four upper-case hex digits, e.g. `C030`.
    pub code: String,
    /// The IANA name, e.g. `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`; absent if not in our table.
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

/// IANA names of the suites that matter for Microsoft 365 readiness and the common others.
const SUITES: &[(u16, &str)] = &[
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
];

/// The IANA name of suite `code`, if it is in our table.
pub fn suite_name(code: u16) -> Option<&'static str> {
    SUITES
        .binary_search_by_key(&code, |&(c, _)| c)
        .ok()
        .map(|i| SUITES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_table_is_sorted_and_named() {
        assert!(
            SUITES.windows(2).all(|w| w[0].0 < w[1].0),
            "binary search needs order"
        );
        assert_eq!(
            suite_name(0xC030),
            Some("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384")
        );
        assert_eq!(suite_name(0x1234), None);
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
