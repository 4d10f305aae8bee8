//! How a farm endpoint answers a ClientHello before (or instead of) rustls: the version it
//! negotiates, and for TLS 1.0 / 1.1, which rustls cannot speak, the bytes an OpenSSL server
//! sends (ServerHello, Certificate, ServerHelloDone, or a fatal alert).
//!
//! Version negotiation follows OpenSSL 3 (`ssl_choose_server_version`): with a
//! `supported_versions` extension, the highest version in both lists; without one, the highest
//! offered version not above the hello's `client_version` (TLS 1.3 only through the extension).
//! No common version: alert `protocol_version` (70). A TLS 1.0 / 1.1 result takes the first suite
//! of the client's list that the endpoint's legacy list holds (OpenSSL's default, client order);
//! none: alert `handshake_failure` (40).
//!
//! The legacy handshake never completes: the flight has no ServerKeyExchange (ring cannot make
//! the MD5/SHA-1 signatures TLS 1.0 needs), which no probe reads that far to notice.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use roomready_protocol::TlsVersion;

use super::client_hello::{ClientHello, alert};
use super::spec::KeyKind;

/// TLS 1.0 / 1.1 suites of an RSA endpoint, as `openssl s_server -cipher ALL:@SECLEVEL=0` with
/// an RSA certificate: ECDHE-RSA and DHE-RSA AES, plain RSA AES, 3DES.
const LEGACY_RSA_SUITES: [u16; 8] = [
    0xc014, 0xc013, 0x0039, 0x0033, 0x0035, 0x002f, 0xc012, 0x000a,
];
/// TLS 1.0 / 1.1 suites of an ECDSA endpoint: ECDHE-ECDSA AES.
const LEGACY_ECDSA_SUITES: [u16; 2] = [0xc00a, 0xc009];

/// Record content types.
const CONTENT_ALERT: u8 = 0x15;
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Largest record payload sent.
const MAX_RECORD: usize = 16384;

/// What to do with a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// TLS 1.2 or 1.3 was negotiated: rustls handles the handshake.
    Modern,
    /// Send these bytes (a legacy ServerHello flight), then wait for the client to go.
    Flight(Vec<u8>),
    /// Send this fatal alert record, then close.
    Alert(Vec<u8>),
}

/// The version an OpenSSL server offering `offered` picks for `hello`, if any.
pub fn choose_version(offered: &BTreeSet<TlsVersion>, hello: &ClientHello) -> Option<TlsVersion> {
    match &hello.supported_versions {
        Some(list) => list
            .iter()
            .filter_map(|&wire| TlsVersion::from_wire(wire))
            .filter(|v| offered.contains(v))
            .max(),
        None => {
            let ceiling = hello.client_version.min(TlsVersion::Tls12.wire());
            offered
                .iter()
                .copied()
                .filter(|v| v.wire() <= ceiling)
                .max()
        }
    }
}

/// How an endpoint offering `offered` with a `key` certificate (DER `cert_der`) answers `hello`.
pub fn answer(
    offered: &BTreeSet<TlsVersion>,
    key: KeyKind,
    cert_der: &[u8],
    hello: &ClientHello,
) -> Answer {
    let alert_version = hello.client_version.clamp(0x0301, 0x0303);
    let Some(version) = choose_version(offered, hello) else {
        return Answer::Alert(alert_record(alert_version, alert::PROTOCOL_VERSION));
    };
    if version >= TlsVersion::Tls12 {
        return Answer::Modern;
    }
    let ours: &[u16] = match key {
        KeyKind::Rsa => &LEGACY_RSA_SUITES,
        KeyKind::Ecdsa => &LEGACY_ECDSA_SUITES,
    };
    let Some(suite) = hello
        .cipher_suites
        .iter()
        .copied()
        .find(|s| ours.contains(s))
    else {
        return Answer::Alert(alert_record(version.wire(), alert::HANDSHAKE_FAILURE));
    };
    let ecdhe = matches!(suite, 0xc009..=0xc014);
    Answer::Flight(flight(
        version.wire(),
        suite,
        ecdhe && hello.ec_point_formats,
        cert_der,
    ))
}

/// One fatal alert record.
pub fn alert_record(version: u16, description: u8) -> Vec<u8> {
    let mut out = vec![CONTENT_ALERT];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&[0, 2, 2, description]);
    out
}

fn put_u24(out: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("handshake messages here are far below 2^24");
    out.extend_from_slice(&len.to_be_bytes()[1..]);
}

fn handshake(out: &mut Vec<u8>, msg_type: u8, body: &[u8]) {
    out.push(msg_type);
    put_u24(out, body.len());
    out.extend_from_slice(body);
}

/// 32 bytes that differ per call: the server random and session id (not cryptographic; this
/// handshake never completes).
fn random32() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let state = RandomState::new();
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&state.hash_one((count, i)).to_be_bytes());
    }
    out
}

/// ServerHello (+ ec_point_formats when `point_formats`), Certificate, ServerHelloDone, in
/// handshake records of `version`.
fn flight(version: u16, suite: u16, point_formats: bool, cert_der: &[u8]) -> Vec<u8> {
    let mut hello = Vec::with_capacity(80);
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend_from_slice(&random32());
    hello.push(32);
    hello.extend_from_slice(&random32());
    hello.extend_from_slice(&suite.to_be_bytes());
    hello.push(0); // compression: null
    if point_formats {
        // ec_point_formats: uncompressed.
        hello.extend_from_slice(&[0, 6, 0, 0x0b, 0, 2, 1, 0]);
    }
    let mut certificate = Vec::with_capacity(cert_der.len() + 6);
    put_u24(&mut certificate, cert_der.len() + 3);
    put_u24(&mut certificate, cert_der.len());
    certificate.extend_from_slice(cert_der);

    let mut messages = Vec::with_capacity(hello.len() + certificate.len() + 16);
    handshake(&mut messages, 2, &hello);
    handshake(&mut messages, 11, &certificate);
    handshake(&mut messages, 14, &[]);

    let mut out = Vec::with_capacity(messages.len() + 16);
    for chunk in messages.chunks(MAX_RECORD) {
        out.push(CONTENT_HANDSHAKE);
        out.extend_from_slice(&version.to_be_bytes());
        let len = u16::try_from(chunk.len()).expect("chunks are at most 16384 bytes");
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}
