//! Hand-built ClientHello probes for TLS 1.0, 1.1 and 1.2.
//!
//! rustls cannot speak TLS 1.0/1.1, so whether an endpoint still *accepts* a legacy version is
//! measured the way TLS scanners do it (testssl.sh `tls_sockets`, hello_tls): send one hand-built
//! ClientHello for exactly one version and read the server's first record. A ServerHello that
//! carries the offered version means "accepted"; an alert, a reset, EOF, a timeout or a ServerHello
//! with another (lower) version means "refused" for that version. The handshake is never
//! completed: the connection is dropped as soon as the first reply has been read.
//!
//! [`client_hello`] builds the bytes, [`parse_reply`] classifies whatever has been received so far
//! (bounded, never panics on network input), and [`hello_probe`] does one TCP round trip.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Record content type: alert.
const CONTENT_ALERT: u8 = 0x15;
/// Record content type: handshake.
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Handshake message type: ClientHello.
const HS_CLIENT_HELLO: u8 = 0x01;
/// Handshake message type: ServerHello.
const HS_SERVER_HELLO: u8 = 0x02;
/// Record header length (type, version, length).
const RECORD_HEADER: usize = 5;
/// Largest record length accepted: 2^14 plaintext plus the 2048 bytes TLS 1.2 allows for expansion.
const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Bound on the bytes read while waiting for a complete ServerHello (all records together).
pub const MAX_REPLY_BYTES: usize = 64 * 1024;
/// How many leading bytes a [`HelloReply::NotTls`] keeps.
const NOT_TLS_KEEP: usize = 16;
/// Extension: server_name (RFC 6066).
const EXT_SERVER_NAME: u16 = 0x0000;
/// Extension: supported_groups (RFC 8422).
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
/// Extension: ec_point_formats (RFC 8422).
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
/// Extension: signature_algorithms (RFC 5246/8446).
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
/// Extension: supported_versions (RFC 8446).
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Most cipher suites put in one ClientHello (keeps every length field far below its limit).
const MAX_SUITES: usize = 1024;
/// Longest DNS name sent as SNI.
const MAX_SNI_LEN: usize = 253;

/// x25519, secp256r1, secp384r1.
const GROUPS: [u16; 3] = [0x001d, 0x0017, 0x0018];
/// Common RSA / ECDSA / RSA-PSS schemes, strongest first, plus the SHA-1 pair old servers need.
const SIGNATURE_SCHEMES: [u16; 11] = [
    0x0403, // ecdsa_secp256r1_sha256
    0x0503, // ecdsa_secp384r1_sha384
    0x0603, // ecdsa_secp521r1_sha512
    0x0804, // rsa_pss_rsae_sha256
    0x0805, // rsa_pss_rsae_sha384
    0x0806, // rsa_pss_rsae_sha512
    0x0401, // rsa_pkcs1_sha256
    0x0501, // rsa_pkcs1_sha384
    0x0601, // rsa_pkcs1_sha512
    0x0201, // rsa_pkcs1_sha1
    0x0203, // ecdsa_sha1
];

/// Suites offered for TLS 1.0/1.1 probes.
const LEGACY_SUITES: [u16; 9] = [
    0xc014, 0xc013, 0x0035, 0x002f, 0xc00a, 0xc009, 0x0039, 0x0033, 0x000a,
];
/// Suites offered for TLS 1.2 probes: Office 365 + Azure Front Door, then common fallbacks.
const TLS12_SUITES: [u16; 18] = [
    0xc030, 0xc02f, 0xc028, 0xc027, 0xc014, 0xc013, 0x009d, 0x009c, 0x009f, 0x009e, 0xc02c, 0xc02b,
    0xcca8, 0xcca9, 0x003d, 0x003c, 0x0035, 0x002f,
];

/// What a server answered to one ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloReply {
    /// A ServerHello: the version it chose (legacy server_version, or the supported_versions
    /// extension value if present) and the cipher suite it chose.
    ServerHello { version: u16, cipher_suite: u16 },
    /// A TLS alert record (level, description).
    Alert { level: u8, description: u8 },
    /// The first bytes were not a TLS handshake/alert record (e.g. an HTTP server); up to 16 of
    /// them. Also used for TLS records that are malformed, oversized, or whose first handshake
    /// message is not a ServerHello.
    NotTls { first_bytes: Vec<u8> },
}

/// Result of parsing what has been received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The reply is classified; later bytes do not matter.
    Complete(HelloReply),
    /// A prefix of a possibly valid reply: read more.
    NeedMore,
}

/// How one hello probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOutcome {
    /// The server's reply, classified.
    Reply(HelloReply),
    /// TCP connect refused.
    ConnectionRefused,
    /// Connection reset by the peer.
    Reset,
    /// No (complete) answer within the timeout (connect or read).
    Timeout,
    /// The peer closed the connection (EOF) before a complete reply.
    Closed,
    /// Any other I/O error, with its text.
    Io(String),
}

/// The suites offered by default for a version probe: the legacy list for TLS 1.0/1.1 (and
/// anything older), the Office 365 + Azure Front Door list for TLS 1.2 (and anything newer).
pub fn default_suites(version: u16) -> &'static [u16] {
    if version >= 0x0303 {
        &TLS12_SUITES
    } else {
        &LEGACY_SUITES
    }
}

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

/// The SNI host name to send for `sni`, if it is a DNS name (not an IP literal, not empty, only
/// LDH characters and dots, at most 253 bytes). A trailing dot is dropped (RFC 6066).
fn sni_name(sni: Option<&str>) -> Option<&str> {
    let name = sni?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let unbracketed = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    if unbracketed.parse::<IpAddr>().is_ok() {
        return None;
    }
    let valid = !name.is_empty()
        && name.len() <= MAX_SNI_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        && !name.split('.').any(str::is_empty);
    valid.then_some(name)
}

/// Appends a big-endian u16.
fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a big-endian u16 length. Callers bound every length far below 65536.
fn put_len16(out: &mut Vec<u8>, len: usize) {
    let len = u16::try_from(len).expect("ClientHello field lengths are bounded below 65536");
    put_u16(out, len);
}

/// Appends one extension (type, length, body).
fn put_extension(out: &mut Vec<u8>, ext_type: u16, body: &[u8]) {
    put_u16(out, ext_type);
    put_len16(out, body.len());
    out.extend_from_slice(body);
}

/// Builds a ClientHello record: record version 0x0301, client_version = `version` (0x0301, 0x0302
/// or 0x0303), 32-byte `random`, empty session id, the given `suites` (at most the first 1024),
/// compression [null], extensions: SNI (only if `sni` is a DNS name, not an IP literal),
/// supported_groups (x25519, secp256r1, secp384r1), ec_point_formats (uncompressed); for 0x0303
/// and above additionally signature_algorithms, because TLS 1.2 servers require it. Never
/// supported_versions, so a TLS 1.3 server cannot choose TLS 1.3.
pub fn client_hello(version: u16, sni: Option<&str>, suites: &[u16], random: [u8; 32]) -> Vec<u8> {
    let suites = &suites[..suites.len().min(MAX_SUITES)];

    let mut extensions = Vec::with_capacity(128);
    if let Some(name) = sni_name(sni) {
        let mut list = Vec::with_capacity(name.len() + 5);
        put_len16(&mut list, name.len() + 3);
        list.push(0); // name_type: host_name
        put_len16(&mut list, name.len());
        list.extend_from_slice(name.as_bytes());
        put_extension(&mut extensions, EXT_SERVER_NAME, &list);
    }
    let mut groups = Vec::with_capacity(2 + 2 * GROUPS.len());
    put_len16(&mut groups, 2 * GROUPS.len());
    for group in GROUPS {
        put_u16(&mut groups, group);
    }
    put_extension(&mut extensions, EXT_SUPPORTED_GROUPS, &groups);
    put_extension(&mut extensions, EXT_EC_POINT_FORMATS, &[1, 0]);
    if version >= 0x0303 {
        let mut schemes = Vec::with_capacity(2 + 2 * SIGNATURE_SCHEMES.len());
        put_len16(&mut schemes, 2 * SIGNATURE_SCHEMES.len());
        for scheme in SIGNATURE_SCHEMES {
            put_u16(&mut schemes, scheme);
        }
        put_extension(&mut extensions, EXT_SIGNATURE_ALGORITHMS, &schemes);
    }

    let mut body = Vec::with_capacity(64 + 2 * suites.len() + extensions.len());
    put_u16(&mut body, version);
    body.extend_from_slice(&random);
    body.push(0); // empty session id
    put_len16(&mut body, 2 * suites.len());
    for &suite in suites {
        put_u16(&mut body, suite);
    }
    body.extend_from_slice(&[1, 0]); // one compression method: null
    put_len16(&mut body, extensions.len());
    body.extend_from_slice(&extensions);

    let mut handshake = Vec::with_capacity(4 + body.len());
    handshake.push(HS_CLIENT_HELLO);
    let body_len = u32::try_from(body.len()).expect("ClientHello body is bounded");
    handshake.extend_from_slice(&body_len.to_be_bytes()[1..]);
    handshake.extend_from_slice(&body);

    let mut record = Vec::with_capacity(RECORD_HEADER + handshake.len());
    record.push(CONTENT_HANDSHAKE);
    put_u16(&mut record, 0x0301);
    put_len16(&mut record, handshake.len());
    record.extend_from_slice(&handshake);
    record
}

/// `Parsed::Complete(NotTls)` with the first bytes of `buf`.
fn not_tls(buf: &[u8]) -> Parsed {
    Parsed::Complete(HelloReply::NotTls {
        first_bytes: buf[..buf.len().min(NOT_TLS_KEEP)].to_vec(),
    })
}

/// Reads a big-endian u16 at `at`, if present.
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Parses a complete ServerHello body; `None` if it is malformed.
fn server_hello_body(body: &[u8]) -> Option<HelloReply> {
    let legacy_version = be16(body, 0)?;
    // version (2) + random (32), then the session id.
    let session_len = usize::from(*body.get(34)?);
    if session_len > 32 {
        return None;
    }
    let mut at = 35 + session_len;
    let cipher_suite = be16(body, at)?;
    at += 2;
    body.get(at)?; // compression method
    at += 1;
    let mut version = legacy_version;
    if at < body.len() {
        let ext_len = usize::from(be16(body, at)?);
        at += 2;
        let mut exts = body.get(at..at + ext_len)?;
        while !exts.is_empty() {
            let ext_type = be16(exts, 0)?;
            let len = usize::from(be16(exts, 2)?);
            let data = exts.get(4..4 + len)?;
            if ext_type == EXT_SUPPORTED_VERSIONS {
                if data.len() != 2 {
                    return None;
                }
                version = u16::from_be_bytes([data[0], data[1]]);
            }
            exts = &exts[4 + len..];
        }
    }
    Some(HelloReply::ServerHello {
        version,
        cipher_suite,
    })
}

/// Parses the server's first record(s).
///
/// Never panics and looks at no more than [`MAX_REPLY_BYTES`]: a record longer than 16384+2048,
/// a ServerHello that would need more than 64 KiB of records, an SSLv2-style or garbage reply,
/// a malformed ServerHello, or a first handshake message other than ServerHello all give
/// `NotTls`. A ServerHello fragmented across several handshake records is reassembled; until it
/// is complete the answer is `NeedMore`.
pub fn parse_reply(buf: &[u8]) -> Parsed {
    let mut message: Vec<u8> = Vec::new();
    let mut at = 0usize;
    loop {
        let header = &buf[at.min(buf.len())..buf.len().min(at + RECORD_HEADER)];
        // Check each header byte as soon as it arrives, so garbage is reported early.
        if let Some(&content_type) = header.first()
            && content_type != CONTENT_HANDSHAKE
            && content_type != CONTENT_ALERT
        {
            return not_tls(buf);
        }
        if let Some(&major) = header.get(1)
            && major != 3
        {
            return not_tls(buf);
        }
        if let Some(&minor) = header.get(2)
            && minor > 4
        {
            return not_tls(buf);
        }
        if header.len() < RECORD_HEADER {
            return Parsed::NeedMore;
        }
        let content_type = header[0];
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return not_tls(buf);
        }
        let start = at + RECORD_HEADER;
        let end = start + len;
        if content_type == CONTENT_ALERT {
            // An alert record may carry several alerts; the first one is the answer.
            if len < 2 {
                return not_tls(buf);
            }
            return match buf.get(start..start + 2) {
                Some(alert) => Parsed::Complete(HelloReply::Alert {
                    level: alert[0],
                    description: alert[1],
                }),
                None => Parsed::NeedMore,
            };
        }
        if end > MAX_REPLY_BYTES {
            return not_tls(buf);
        }
        let available = &buf[start..buf.len().min(end)];
        message.extend_from_slice(available);
        if let Some(&msg_type) = message.first()
            && msg_type != HS_SERVER_HELLO
        {
            return not_tls(buf);
        }
        if message.len() >= 4 {
            let msg_len = usize::from(message[1]) << 16
                | usize::from(message[2]) << 8
                | usize::from(message[3]);
            // Even perfectly packed, this message would not fit in the read bound.
            if msg_len + 4 > MAX_REPLY_BYTES {
                return not_tls(buf);
            }
            if message.len() >= msg_len + 4 {
                return match server_hello_body(&message[4..4 + msg_len]) {
                    Some(reply) => Parsed::Complete(reply),
                    None => not_tls(buf),
                };
            }
        }
        if available.len() < len {
            return Parsed::NeedMore;
        }
        at = end;
    }
}

/// A 32-byte ClientHello random: unique per call, not cryptographic (it is only a probe).
fn probe_random() -> [u8; 32] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state = RandomState::new();
    let mut random = [0u8; 32];
    for (i, chunk) in random.chunks_exact_mut(8).enumerate() {
        let word = state.hash_one((nanos, count, i, std::process::id()));
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    random
}

/// Maps an I/O error to an outcome.
fn io_outcome(err: &std::io::Error) -> HelloOutcome {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::ConnectionRefused => HelloOutcome::ConnectionRefused,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => HelloOutcome::Reset,
        ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => HelloOutcome::Closed,
        ErrorKind::TimedOut => HelloOutcome::Timeout,
        _ => HelloOutcome::Io(err.to_string()),
    }
}

/// Connects, sends `hello`, reads until [`parse_reply`] completes.
async fn exchange(addr: SocketAddr, hello: &[u8]) -> HelloOutcome {
    let mut stream = match TcpStream::connect(addr).await {
        Ok(stream) => stream,
        Err(err) => return io_outcome(&err),
    };
    // Best effort: the hello is one small write either way.
    let _ = stream.set_nodelay(true);
    if let Err(err) = stream.write_all(hello).await {
        return io_outcome(&err);
    }
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let room = MAX_REPLY_BYTES.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            // parse_reply completes before this bound; kept as a guard.
            return HelloOutcome::Reply(HelloReply::NotTls {
                first_bytes: buf[..NOT_TLS_KEEP].to_vec(),
            });
        }
        match stream.read(&mut chunk[..room]).await {
            Ok(0) => return HelloOutcome::Closed,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return io_outcome(&err),
        }
        if let Parsed::Complete(reply) = parse_reply(&buf) {
            return HelloOutcome::Reply(reply);
        }
    }
    // Dropping the stream closes the connection without completing the handshake.
}

/// Connects to `addr`, sends one ClientHello for `version` (see [`client_hello`]), reads
/// (bounded, with `timeout` covering connect and read) until [`parse_reply`] completes; never
/// completes a handshake; then drops the connection.
pub async fn hello_probe(
    addr: SocketAddr,
    sni: Option<&str>,
    version: u16,
    suites: &[u16],
    timeout: Duration,
) -> HelloOutcome {
    let hello = client_hello(version, sni, suites, probe_random());
    tokio::time::timeout(timeout, exchange(addr, &hello))
        .await
        .unwrap_or(HelloOutcome::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parsed ClientHello, from our own bytes.
    #[derive(Debug)]
    struct ParsedHello {
        client_version: u16,
        random: Vec<u8>,
        suites: Vec<u16>,
        extensions: Vec<(u16, Vec<u8>)>,
    }

    impl ParsedHello {
        fn extension(&self, ext_type: u16) -> Option<&[u8]> {
            self.extensions
                .iter()
                .find(|(t, _)| *t == ext_type)
                .map(|(_, d)| d.as_slice())
        }
    }

    /// Strictly parses a ClientHello record, checking every length.
    fn parse_client_hello(rec: &[u8]) -> ParsedHello {
        assert_eq!(rec[0], 0x16, "record type");
        assert_eq!(&rec[1..3], &[3, 1], "record version");
        let rec_len = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
        assert_eq!(rec.len(), 5 + rec_len, "record length");
        let hs = &rec[5..];
        assert_eq!(hs[0], 1, "handshake type");
        let hs_len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
        assert_eq!(hs.len(), 4 + hs_len, "handshake length");
        let b = &hs[4..];
        let client_version = u16::from_be_bytes([b[0], b[1]]);
        let random = b[2..34].to_vec();
        assert_eq!(b[34], 0, "empty session id");
        let suites_len = usize::from(u16::from_be_bytes([b[35], b[36]]));
        assert_eq!(suites_len % 2, 0);
        let suites = b[37..37 + suites_len]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        let mut at = 37 + suites_len;
        assert_eq!(&b[at..at + 2], &[1, 0], "compression");
        at += 2;
        let ext_len = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
        at += 2;
        assert_eq!(b.len(), at + ext_len, "extensions length");
        let mut exts = &b[at..];
        let mut extensions = Vec::new();
        while !exts.is_empty() {
            let t = u16::from_be_bytes([exts[0], exts[1]]);
            let l = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
            extensions.push((t, exts[4..4 + l].to_vec()));
            exts = &exts[4 + l..];
        }
        ParsedHello {
            client_version,
            random,
            suites,
            extensions,
        }
    }

    /// A record of `content_type` around `payload`.
    fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![content_type];
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&u16::try_from(payload.len()).expect("small").to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// A ServerHello handshake message (type + length + body).
    fn server_hello_msg(version: u16, suite: u16, extensions: Option<&[u8]>) -> Vec<u8> {
        let mut body = version.to_be_bytes().to_vec();
        body.extend_from_slice(&[0x5a; 32]);
        body.push(32);
        body.extend_from_slice(&[0xa5; 32]);
        body.extend_from_slice(&suite.to_be_bytes());
        body.push(0);
        if let Some(ext) = extensions {
            body.extend_from_slice(&u16::try_from(ext.len()).expect("small").to_be_bytes());
            body.extend_from_slice(ext);
        }
        let mut msg = vec![2];
        msg.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes()[1..]);
        msg.extend_from_slice(&body);
        msg
    }

    /// A TLS 1.3-style ServerHello record (legacy 0x0303 + supported_versions 0x0304).
    fn tls13_server_hello() -> Vec<u8> {
        let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x00];
        record(0x16, 0x0303, &server_hello_msg(0x0303, 0x1302, Some(&ext)))
    }

    fn valid_replies() -> Vec<(Vec<u8>, HelloReply)> {
        let mut out = Vec::new();
        for v in [0x0301u16, 0x0302, 0x0303] {
            let mut rec = record(
                0x16,
                v,
                &server_hello_msg(v, 0xc013, Some(&[0xff, 1, 0, 1, 0])),
            );
            // A Certificate message follows in the same flight; it must be ignored.
            rec.extend_from_slice(&record(0x16, v, &[11, 0, 0, 3, 0, 0, 0]));
            out.push((
                rec,
                HelloReply::ServerHello {
                    version: v,
                    cipher_suite: 0xc013,
                },
            ));
        }
        out.push((
            record(0x16, 0x0301, &server_hello_msg(0x0301, 0x002f, None)),
            HelloReply::ServerHello {
                version: 0x0301,
                cipher_suite: 0x002f,
            },
        ));
        out.push((
            tls13_server_hello(),
            HelloReply::ServerHello {
                version: 0x0304,
                cipher_suite: 0x1302,
            },
        ));
        out.push((
            record(0x15, 0x0301, &[2, 70]),
            HelloReply::Alert {
                level: 2,
                description: 70,
            },
        ));
        out.push((
            record(0x15, 0x0303, &[2, 40]),
            HelloReply::Alert {
                level: 2,
                description: 40,
            },
        ));
        out.push((
            fragmented(&server_hello_msg(0x0303, 0xc02f, None), &[1, 10, 30]),
            HelloReply::ServerHello {
                version: 0x0303,
                cipher_suite: 0xc02f,
            },
        ));
        out
    }

    /// `msg` split into handshake records at the given offsets.
    fn fragmented(msg: &[u8], cuts: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&msg.len())) {
            out.extend_from_slice(&record(0x16, 0x0303, &msg[start..cut]));
            start = cut;
        }
        out
    }

    #[test]
    fn client_hello_is_well_formed_for_every_version() {
        let random = [7u8; 32];
        for version in [0x0301u16, 0x0302, 0x0303] {
            let suites = default_suites(version);
            let bytes = client_hello(version, Some("teams.microsoft.com"), suites, random);
            let hello = parse_client_hello(&bytes);
            assert_eq!(hello.client_version, version);
            assert_eq!(hello.random, random.to_vec());
            assert_eq!(hello.suites, suites.to_vec());
            let sni = hello
                .extension(EXT_SERVER_NAME)
                .expect("SNI for a DNS name");
            let name = b"teams.microsoft.com";
            let mut want = vec![0, 22, 0, 0, 19];
            want.extend_from_slice(name);
            assert_eq!(sni, want.as_slice());
            assert_eq!(
                hello.extension(EXT_SUPPORTED_GROUPS),
                Some(&[0, 6, 0, 0x1d, 0, 0x17, 0, 0x18][..])
            );
            assert_eq!(hello.extension(EXT_EC_POINT_FORMATS), Some(&[1, 0][..]));
            assert_eq!(
                hello.extension(EXT_SIGNATURE_ALGORITHMS).is_some(),
                version == 0x0303
            );
            assert!(hello.extension(EXT_SUPPORTED_VERSIONS).is_none());
        }
    }

    #[test]
    fn sni_only_for_dns_names() {
        for sni in [
            None,
            Some("127.0.0.1"),
            Some("::1"),
            Some("[::1]"),
            Some(""),
            Some("bad name"),
            Some("a..b"),
        ] {
            let hello = parse_client_hello(&client_hello(0x0303, sni, &[0x002f], [0; 32]));
            assert!(hello.extension(EXT_SERVER_NAME).is_none(), "{sni:?}");
        }
        for sni in ["localhost", "login.microsoftonline.com.", "a-b.example"] {
            let hello = parse_client_hello(&client_hello(0x0301, Some(sni), &[0x002f], [0; 32]));
            let ext = hello.extension(EXT_SERVER_NAME).expect("SNI");
            assert_eq!(&ext[5..], sni.trim_end_matches('.').as_bytes());
        }
    }

    #[test]
    fn client_hello_bounds_suite_count() {
        let suites = vec![0x002fu16; 5000];
        let hello = parse_client_hello(&client_hello(0x0303, None, &suites, [0; 32]));
        assert_eq!(hello.suites.len(), MAX_SUITES);
    }

    #[test]
    fn default_suites_match_the_reference_lists() {
        assert_eq!(default_suites(0x0301), default_suites(0x0302));
        assert_eq!(
            default_suites(0x0301)[..4],
            [0xc014, 0xc013, 0x0035, 0x002f]
        );
        assert_eq!(default_suites(0x0303)[..2], [0xc030, 0xc02f]);
        assert_eq!(default_suites(0x0303).len(), 18);
    }

    #[test]
    fn alert_names() {
        assert_eq!(alert_name(70), "protocol_version");
        assert_eq!(alert_name(40), "handshake_failure");
        assert_eq!(alert_name(112), "unrecognized_name");
        assert_eq!(alert_name(255), "unknown");
    }

    #[test]
    fn parses_valid_replies() {
        for (bytes, want) in valid_replies() {
            assert_eq!(parse_reply(&bytes), Parsed::Complete(want));
        }
    }

    #[test]
    fn tls13_server_hello_reports_supported_versions() {
        assert_eq!(
            parse_reply(&tls13_server_hello()),
            Parsed::Complete(HelloReply::ServerHello {
                version: 0x0304,
                cipher_suite: 0x1302
            })
        );
    }

    #[test]
    fn fragmented_server_hello_is_reassembled() {
        let msg = server_hello_msg(0x0302, 0x0035, None);
        for cut in 1..msg.len() {
            let bytes = fragmented(&msg, &[cut]);
            assert_eq!(
                parse_reply(&bytes),
                Parsed::Complete(HelloReply::ServerHello {
                    version: 0x0302,
                    cipher_suite: 0x0035
                }),
                "cut at {cut}"
            );
        }
        let every_byte: Vec<usize> = (1..msg.len()).collect();
        let bytes = fragmented(&msg, &every_byte);
        assert!(matches!(
            parse_reply(&bytes),
            Parsed::Complete(HelloReply::ServerHello { .. })
        ));
    }

    #[test]
    fn every_truncation_needs_more() {
        for (bytes, want) in valid_replies() {
            // The shortest complete prefix; everything before it must be NeedMore.
            let complete_at = (0..=bytes.len())
                .find(|&n| parse_reply(&bytes[..n]) != Parsed::NeedMore)
                .expect("complete eventually");
            assert_eq!(parse_reply(&bytes[..complete_at]), Parsed::Complete(want));
            for n in 0..complete_at {
                assert_eq!(parse_reply(&bytes[..n]), Parsed::NeedMore, "prefix {n}");
            }
        }
        // For a reply of exactly one record, only the whole record completes.
        let alert = record(0x15, 0x0303, &[2, 40]);
        assert_eq!(parse_reply(&alert[..6]), Parsed::NeedMore);
        let hello = tls13_server_hello();
        for n in 0..hello.len() {
            assert_eq!(parse_reply(&hello[..n]), Parsed::NeedMore, "prefix {n}");
        }
    }

    #[test]
    fn http_and_garbage_are_not_tls() {
        let http = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        assert_eq!(
            parse_reply(http),
            Parsed::Complete(HelloReply::NotTls {
                first_bytes: http[..16].to_vec()
            })
        );
        // SSLv2-style ServerHello header.
        assert!(matches!(
            parse_reply(&[0x80, 0x2e, 0x04, 0x00, 0x01]),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        // Oversized record.
        assert!(matches!(
            parse_reply(&[0x16, 3, 3, 0x48, 0x01]),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        // Handshake message that is not a ServerHello.
        assert!(matches!(
            parse_reply(&record(0x16, 0x0303, &[11, 0, 0, 0])),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        // Application data record.
        assert!(matches!(
            parse_reply(&record(0x17, 0x0303, &[1, 2, 3])),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        // ServerHello claiming a huge length never waits for 16 MiB.
        assert!(matches!(
            parse_reply(&record(0x16, 0x0303, &[2, 0xff, 0xff, 0xff])),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
    }

    #[test]
    fn malformed_server_hello_is_not_tls() {
        // Session id length 33.
        let mut msg = server_hello_msg(0x0303, 0xc02f, None);
        msg[4 + 34] = 33;
        assert!(matches!(
            parse_reply(&record(0x16, 0x0303, &msg)),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        // Extension block longer than the message.
        let msg = server_hello_msg(0x0303, 0xc02f, Some(&[0, 0x2b, 0, 9, 3]));
        assert!(matches!(
            parse_reply(&record(0x16, 0x0303, &msg)),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
    }

    /// xorshift64*: a tiny deterministic PRNG for the fuzz-style tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
        }
        fn byte(&mut self) -> u8 {
            self.next().to_be_bytes()[0]
        }
    }

    #[test]
    fn parse_reply_never_panics_on_random_or_mutated_input() {
        let start = std::time::Instant::now();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        // Pure noise, and noise behind a plausible record header.
        for _ in 0..20_000 {
            let len = rng.below(300);
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
            if len >= 3 && rng.below(2) == 0 {
                bytes[0] = [0x15, 0x16][rng.below(2)];
                bytes[1] = 3;
                bytes[2] = u8::try_from(rng.below(5)).expect("small");
                if len >= 6 && rng.below(2) == 0 {
                    bytes[5] = 2;
                }
            }
            let _ = parse_reply(&bytes);
        }
        // Every single-byte mutation and every truncation of each valid reply.
        for (bytes, _) in valid_replies() {
            for n in 0..=bytes.len() {
                let _ = parse_reply(&bytes[..n]);
            }
            for i in 0..bytes.len() {
                for value in [0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff, rng.byte()] {
                    let mut mutated = bytes.clone();
                    mutated[i] = value;
                    let _ = parse_reply(&mutated);
                    let _ = parse_reply(&mutated[..rng.below(mutated.len() + 1)]);
                }
            }
        }
        // Long chains of tiny records stop at the 64 KiB bound.
        let mut chain = record(0x16, 0x0303, &[2, 0, 0xf0, 0x00]);
        while chain.len() < 2 * MAX_REPLY_BYTES {
            chain.extend_from_slice(&record(0x16, 0x0303, &[0]));
        }
        assert!(matches!(
            parse_reply(&chain),
            Parsed::Complete(HelloReply::NotTls { .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5), "too slow");
    }

    #[test]
    fn probe_randoms_differ() {
        assert_ne!(probe_random(), probe_random());
    }
}
