//! The certificate fields the verdict needs beyond webpki's answer, read from the DER with a
//! minimal, bounded walk: validity, subject and issuer, the public key's type and size, the
//! signature algorithm, and the names (SAN, else the common name) a person recognises.
//!
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
//! signature, issuer, validity SEQUENCE { notBefore, notAfter }, subject, subjectPublicKeyInfo,
//! ..., [3] extensions OPTIONAL }, signatureAlgorithm, signature }`. Every input gives an answer
//! or `None`, never a panic: the certificates come from the network.

use roomready_protocol::Timestamp;

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OCTET_STRING: u8 = 0x04;

/// Longest name shown, and most names listed (they come from the certificate).
const MAX_NAME_LEN: usize = 64;
const MAX_NAMES: usize = 6;

/// OIDs (DER contents).
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// Signature algorithms by OID: (OID, name, uses a broken hash).
const SIGNATURE_ALGORITHMS: [(&[u8], &str, bool); 13] = [
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02],
        "MD2 with RSA",
        true,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04],
        "MD5 with RSA",
        true,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05],
        "SHA-1 with RSA",
        true,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],
        "ECDSA with SHA-1",
        true,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],
        "DSA with SHA-1",
        true,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0e],
        "SHA-224 with RSA",
        false,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b],
        "SHA-256 with RSA",
        false,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c],
        "SHA-384 with RSA",
        false,
    ),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d],
        "SHA-512 with RSA",
        false,
    ),
    (OID_RSA_PSS, "RSA-PSS", false),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
        "ECDSA with SHA-256",
        false,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],
        "ECDSA with SHA-384",
        false,
    ),
    (
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],
        "ECDSA with SHA-512",
        false,
    ),
];

/// One DER element: tag, contents, and the rest of the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The contents of an element with tag `want`, and the rest.
fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8])> {
    let (tag, body, rest) = element(input)?;
    (tag == want).then_some((body, rest))
}

/// A certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PublicKey {
    Rsa {
        bits: u32,
    },
    /// An EC key on a named curve (`P-256`, …), or on another curve (`None`).
    Ec {
        curve: Option<&'static str>,
    },
    Dsa {
        bits: u32,
    },
    Ed25519,
    Ed448,
    Other,
}

impl PublicKey {
    /// Why a TLS client would refuse this key, if it would: RSA and DSA keys need 2048 bits.
    pub(crate) fn weakness(self) -> Option<String> {
        match self {
            PublicKey::Rsa { bits } if bits < 2048 => Some(format!(
                "RSA key of {bits} bits is too weak (at least 2048 bits are needed)"
            )),
            PublicKey::Dsa { bits } if bits < 2048 => Some(format!(
                "DSA key of {bits} bits is too weak (at least 2048 bits are needed)"
            )),
            _ => None,
        }
    }
}

/// What the verdict needs of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Certificate<'a> {
    pub not_before: Option<Timestamp>,
    pub not_after: Option<Timestamp>,
    /// The issuer and subject names, raw DER (equal for a self-issued certificate).
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    pub key: PublicKey,
    /// The signature algorithm's OID (DER contents).
    pub signature_algorithm: &'a [u8],
    /// The SAN's DNS names and IP addresses, as text.
    pub names: Vec<String>,
}

impl<'a> Certificate<'a> {
    /// Reads `der`; `None` if it is not a well-formed X.509 certificate.
    pub(crate) fn parse(der: &'a [u8]) -> Option<Certificate<'a>> {
        let (cert, _) = expect(der, SEQUENCE)?;
        let (tbs, after_tbs) = expect(cert, SEQUENCE)?;
        let (sig_alg, _) = expect(after_tbs, SEQUENCE)?;
        let (signature_algorithm, _) = expect(sig_alg, OID)?;
        let mut rest = tbs;
        // Optional explicit [0] version.
        if rest.first() == Some(&0xA0) {
            rest = element(rest)?.2;
        }
        // serialNumber, signature.
        for _ in 0..2 {
            rest = element(rest)?.2;
        }
        let (issuer, rest) = expect(rest, SEQUENCE)?;
        let (validity, rest) = expect(rest, SEQUENCE)?;
        let (subject, rest) = expect(rest, SEQUENCE)?;
        let (spki, rest) = expect(rest, SEQUENCE)?;
        let (not_before, after) = element(validity).map(|(t, b, r)| (time(t, b), r))?;
        let not_after = element(after).and_then(|(t, b, _)| time(t, b));
        Some(Certificate {
            not_before,
            not_after,
            issuer,
            subject,
            key: public_key(spki).unwrap_or(PublicKey::Other),
            signature_algorithm,
            names: subject_alt_names(rest),
        })
    }

    /// Whether issuer and subject are the same name (a self-signed certificate, or a root).
    pub(crate) fn self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// The issuer's common name, for a person (bounded, printable).
    pub(crate) fn issuer_name(&self) -> Option<String> {
        common_name(self.issuer)
    }

    /// The names the certificate is for: its SAN, else its subject's common name.
    pub(crate) fn shown_names(&self) -> Vec<String> {
        if self.names.is_empty() {
            common_name(self.subject).into_iter().collect()
        } else {
            self.names.clone()
        }
    }
}

/// The name and brokenness of a signature algorithm given as OID contents or as a whole
/// AlgorithmIdentifier (webpki reports the latter).
pub(crate) fn signature_algorithm(id: &[u8]) -> Option<(&'static str, bool)> {
    let oid = match element(id) {
        Some((OID, oid, _)) => oid,
        Some((SEQUENCE, body, _)) => expect(body, OID)?.0,
        _ => id,
    };
    SIGNATURE_ALGORITHMS
        .iter()
        .find(|(known, _, _)| *known == oid)
        .map(|&(_, name, broken)| (name, broken))
}

/// `notBefore` / `notAfter`: UTCTime (years 50..99 are 19xx, RFC 5280) or GeneralizedTime.
fn time(tag: u8, body: &[u8]) -> Option<Timestamp> {
    let text = std::str::from_utf8(body).ok()?;
    let full = match (tag, text.len()) {
        (0x17, 13) => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        (0x18, 15) => text.to_owned(),
        _ => return None,
    };
    if full.as_bytes().get(14) != Some(&b'Z') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        full.get(0..4)?,
        full.get(4..6)?,
        full.get(6..8)?,
        full.get(8..10)?,
        full.get(10..12)?,
        full.get(12..14)?
    );
    rfc3339.parse().ok()
}

/// Bits of a big-endian unsigned INTEGER's contents.
fn integer_bits(contents: &[u8]) -> u32 {
    let significant = contents
        .iter()
        .position(|&b| b != 0)
        .map_or(&[][..], |i| &contents[i..]);
    match significant.first() {
        None => 0,
        Some(&first) => {
            let bytes = u32::try_from(significant.len()).unwrap_or(u32::MAX / 8);
            bytes.saturating_mul(8) - first.leading_zeros()
        }
    }
}

fn public_key(spki: &[u8]) -> Option<PublicKey> {
    let (algorithm, rest) = expect(spki, SEQUENCE)?;
    let (oid, params) = expect(algorithm, OID)?;
    let key = match oid {
        _ if oid == OID_RSA || oid == OID_RSA_PSS => {
            let (bits, _) = expect(rest, BIT_STRING)?;
            let (rsa, _) = expect(bits.get(1..)?, SEQUENCE)?;
            let (modulus, _) = expect(rsa, INTEGER)?;
            PublicKey::Rsa {
                bits: integer_bits(modulus),
            }
        }
        _ if oid == OID_EC => {
            let curve = expect(params, OID).and_then(|(curve, _)| match curve {
                c if c == OID_P256 => Some("P-256"),
                c if c == OID_P384 => Some("P-384"),
                c if c == OID_P521 => Some("P-521"),
                _ => None,
            });
            PublicKey::Ec { curve }
        }
        _ if oid == OID_DSA => {
            let (dss, _) = expect(params, SEQUENCE)?;
            let (p, _) = expect(dss, INTEGER)?;
            PublicKey::Dsa {
                bits: integer_bits(p),
            }
        }
        _ if oid == OID_ED25519 => PublicKey::Ed25519,
        _ if oid == OID_ED448 => PublicKey::Ed448,
        _ => PublicKey::Other,
    };
    Some(key)
}

/// Text a certificate carries, made safe to show: printable ASCII only, bounded.
fn shown(bytes: &[u8]) -> String {
    let mut text: String = bytes
        .iter()
        .take(MAX_NAME_LEN)
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    if bytes.len() > MAX_NAME_LEN {
        text.push('…');
    }
    text
}

/// The first common name of a DER Name (`SEQUENCE OF SET OF AttributeTypeAndValue`).
fn common_name(name: &[u8]) -> Option<String> {
    let mut rdns = name;
    while let Some((SET, set, rest)) = element(rdns) {
        let mut attrs = set;
        while let Some((SEQUENCE, attr, more)) = element(attrs) {
            if let Some((oid, value)) = expect(attr, OID)
                && oid == OID_COMMON_NAME
            {
                return element(value).map(|(_, text, _)| shown(text));
            }
            attrs = more;
        }
        rdns = rest;
    }
    None
}

/// The DNS names and IP addresses of the subjectAltName extension in `rest` (what follows the
/// SubjectPublicKeyInfo in the TBSCertificate).
fn subject_alt_names(mut rest: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    // Skip issuerUniqueID [1] and subjectUniqueID [2]; the extensions are [3].
    while let Some((tag, body, more)) = element(rest) {
        rest = more;
        if tag != 0xA3 {
            continue;
        }
        let Some((mut extensions, _)) = expect(body, SEQUENCE) else {
            break;
        };
        while let Some((SEQUENCE, extension, more)) = element(extensions) {
            extensions = more;
            let Some((oid, mut value)) = expect(extension, OID) else {
                continue;
            };
            if oid != OID_SUBJECT_ALT_NAME {
                continue;
            }
            // Optional `critical BOOLEAN` before the OCTET STRING.
            if value.first() == Some(&0x01) {
                value = element(value).map_or(&[][..], |(_, _, r)| r);
            }
            let Some((octets, _)) = expect(value, OCTET_STRING) else {
                continue;
            };
            let Some((mut general, _)) = expect(octets, SEQUENCE) else {
                continue;
            };
            while let Some((tag, name, more)) = element(general) {
                general = more;
                let text = match (tag, name.len()) {
                    // dNSName [2] IA5String.
                    (0x82, _) => shown(name),
                    // iPAddress [7] OCTET STRING.
                    (0x87, 4) => {
                        std::net::Ipv4Addr::new(name[0], name[1], name[2], name[3]).to_string()
                    }
                    (0x87, 16) => {
                        let mut octets = [0u8; 16];
                        octets.copy_from_slice(name);
                        std::net::Ipv6Addr::from(octets).to_string()
                    }
                    _ => continue,
                };
                if names.len() < MAX_NAMES {
                    names.push(text);
                }
            }
        }
    }
    names
}

/// `notAfter` of a DER certificate, or `None` if it is not a well-formed X.509 certificate.
#[cfg(test)]
pub(crate) fn not_after(der: &[u8]) -> Option<Timestamp> {
    Certificate::parse(der)?.not_after
}

/// Whole days from `now` until `not_after` (negative once expired).
pub(crate) fn days_left(not_after: Timestamp, now: Timestamp) -> i64 {
    let diff = i128::from(not_after.unix_ms()) - i128::from(now.unix_ms());
    i64::try_from(diff.div_euclid(86_400_000)).unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests;
