//! Hand-built ClientHello probes for TLS 1.0, 1.1 and 1.2.
//!
//! rustls cannot speak TLS 1.0/1.1 nor implements every TLS 1.2 suite, so whether an endpoint
//! *accepts* a version is measured the way TLS scanners do it (testssl.sh `tls_sockets`,
//! sslscan): send a hand-built ClientHello for exactly one version offering every suite a server
//! may choose ([`super::suites`]), and read the server's first flight ([`super::flight`]). A
//! ServerHello that carries the offered version means "accepted", and with it come the server's
//! certificate chain and whether it asks for a client certificate; an alert, a reset, EOF, a
//! timeout or a ServerHello with another (lower) version means "refused" for that version. The
//! handshake is never completed: the connection is dropped once the flight has been read.
//!
//! [`client_hello`] builds the bytes, [`hello_probe`] does one TCP round trip with one hello, and
//! [`probe_version`] offers every suite, over several hellos when the first shares none.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use super::flight::{self, MAX_FLIGHT_BYTES, Reply};
use super::suites;

/// Record content type: handshake.
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Handshake message type: ClientHello.
const HS_CLIENT_HELLO: u8 = 0x01;
/// Record header length (type, version, length).
const RECORD_HEADER: usize = 5;
/// Extension: server_name (RFC 6066).
const EXT_SERVER_NAME: u16 = 0x0000;
/// Extension: supported_groups (RFC 8422, RFC 7919).
const EXT_SUPPORTED_GROUPS: u16 = 0x000a;
/// Extension: ec_point_formats (RFC 8422).
const EXT_EC_POINT_FORMATS: u16 = 0x000b;
/// Extension: signature_algorithms (RFC 5246/8446).
const EXT_SIGNATURE_ALGORITHMS: u16 = 0x000d;
/// Extension: padding (RFC 7685).
const EXT_PADDING: u16 = 0x0015;
/// Extension: supported_versions (RFC 8446); never sent, so no server can choose TLS 1.3.
#[cfg(test)]
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Extension: renegotiation_info (RFC 5746), empty: some servers refuse a hello without it.
const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
/// Most cipher suites put in one ClientHello (keeps every length field far below its limit).
const MAX_SUITES: usize = 1024;
/// Longest DNS name sent as SNI.
const MAX_SNI_LEN: usize = 253;

/// Elliptic curves and finite-field groups, common first: x25519, P-256, P-384, P-521, x448,
/// the brainpool curves, secp256k1, then RFC 7919's ffdhe groups.
const GROUPS: [u16; 14] = [
    0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x001a, 0x001b, 0x001c, 0x0016, 0x0100, 0x0101, 0x0102,
    0x0103, 0x0104,
];
/// Every TLS 1.2 signature scheme a server certificate may need, strongest first, SHA-1 and
/// DSA last (old servers need them).
const SIGNATURE_SCHEMES: [u16; 20] = [
    0x0403, // ecdsa_secp256r1_sha256
    0x0503, // ecdsa_secp384r1_sha384
    0x0603, // ecdsa_secp521r1_sha512
    0x0807, // ed25519
    0x0808, // ed448
    0x0804, // rsa_pss_rsae_sha256
    0x0805, // rsa_pss_rsae_sha384
    0x0806, // rsa_pss_rsae_sha512
    0x0809, // rsa_pss_pss_sha256
    0x080a, // rsa_pss_pss_sha384
    0x080b, // rsa_pss_pss_sha512
    0x0401, // rsa_pkcs1_sha256
    0x0501, // rsa_pkcs1_sha384
    0x0601, // rsa_pkcs1_sha512
    0x0301, // rsa_pkcs1_sha224
    0x0303, // ecdsa_sha224
    0x0402, // dsa_sha256
    0x0201, // rsa_pkcs1_sha1
    0x0203, // ecdsa_sha1
    0x0202, // dsa_sha1
];

/// Alert descriptions that mean "nothing in common with this hello" rather than "not this
/// version": after one of these the next group of suites is offered.
const NO_SHARED_SUITE: [u8; 2] = [40, 71];

/// How one hello probe ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloOutcome {
    /// The server's reply, classified (a ServerHello comes with the rest of its flight, as far
    /// as it arrived before the server stopped sending or the timeout).
    Reply(Reply),
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

impl HelloOutcome {
    /// The ServerHello's flight, if the server answered with one.
    pub fn flight(&self) -> Option<&flight::Flight> {
        match self {
            HelloOutcome::Reply(Reply::Hello(flight)) => Some(flight),
            _ => None,
        }
    }

    /// Whether the server found nothing in common with the suites offered (a handshake_failure
    /// or insufficient_security alert, or it hung up), so other suites may still be accepted.
    fn no_shared_suite(&self) -> bool {
        match self {
            HelloOutcome::Reply(Reply::Alert { description, .. }) => {
                NO_SHARED_SUITE.contains(description)
            }
            HelloOutcome::Closed | HelloOutcome::Reset => true,
            _ => false,
        }
    }
}

/// Name of a TLS alert description (defined once, in the protocol crate).
pub use roomready_protocol::tls::alert_name;

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

/// Appends a u16-length list of u16 values as an extension.
fn put_u16_list_extension(out: &mut Vec<u8>, ext_type: u16, values: &[u16]) {
    let mut body = Vec::with_capacity(2 + 2 * values.len());
    put_len16(&mut body, 2 * values.len());
    for &value in values {
        put_u16(&mut body, value);
    }
    put_extension(out, ext_type, &body);
}

/// Builds a ClientHello record: record version 0x0301, client_version = `version` (0x0301, 0x0302
/// or 0x0303), 32-byte `random`, empty session id, the given `suites` (at most the first 1024),
/// compression `[null]`, extensions: SNI (only if `sni` is a DNS name, not an IP literal),
/// supported_groups, ec_point_formats (uncompressed), an empty renegotiation_info; for 0x0303 and
/// above additionally signature_algorithms, which TLS 1.2 servers require. Never
/// supported_versions, so a TLS 1.3 server cannot choose TLS 1.3. A hello whose handshake
/// message would be 256..=511 bytes long is padded to 512 (RFC 7685: some servers hang on those
/// lengths).
pub fn client_hello(version: u16, sni: Option<&str>, suites: &[u16], random: [u8; 32]) -> Vec<u8> {
    let suites = &suites[..suites.len().min(MAX_SUITES)];

    let mut extensions = Vec::with_capacity(160);
    if let Some(name) = sni_name(sni) {
        let mut list = Vec::with_capacity(name.len() + 5);
        put_len16(&mut list, name.len() + 3);
        list.push(0); // name_type: host_name
        put_len16(&mut list, name.len());
        list.extend_from_slice(name.as_bytes());
        put_extension(&mut extensions, EXT_SERVER_NAME, &list);
    }
    put_u16_list_extension(&mut extensions, EXT_SUPPORTED_GROUPS, &GROUPS);
    put_extension(&mut extensions, EXT_EC_POINT_FORMATS, &[1, 0]);
    put_extension(&mut extensions, EXT_RENEGOTIATION_INFO, &[0]);
    if version >= 0x0303 {
        put_u16_list_extension(
            &mut extensions,
            EXT_SIGNATURE_ALGORITHMS,
            &SIGNATURE_SCHEMES,
        );
    }

    // version + random + session id + suites + compression + extensions length.
    let fixed = 2 + 32 + 1 + (2 + 2 * suites.len()) + 2 + 2;
    let unpadded = 4 + fixed + extensions.len();
    if (256..512).contains(&unpadded) {
        // The padding extension's own 4-byte header counts towards the 512.
        let fill = (512 - unpadded).saturating_sub(4);
        put_extension(&mut extensions, EXT_PADDING, &vec![0; fill]);
    }

    let mut body = Vec::with_capacity(fixed + extensions.len());
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

/// Connects, sends `hello`, reads until the flight is complete, the peer stops, or `deadline`.
/// A ServerHello already read is the answer even if the rest of its flight never comes.
async fn exchange(addr: SocketAddr, hello: &[u8], deadline: Instant) -> HelloOutcome {
    let mut stream = match timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => return HelloOutcome::Timeout,
        Ok(Err(err)) => return io_outcome(&err),
        Ok(Ok(stream)) => stream,
    };
    // Best effort: the hello is one small write either way.
    let _ = stream.set_nodelay(true);
    match timeout_at(deadline, stream.write_all(hello)).await {
        Err(_) => return HelloOutcome::Timeout,
        Ok(Err(err)) => return io_outcome(&err),
        Ok(Ok(())) => {}
    }
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    let mut reply: Option<Reply> = None;
    loop {
        let room = MAX_FLIGHT_BYTES.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            // flight::parse completes before this bound; kept as a guard.
            return HelloOutcome::Reply(reply.unwrap_or_else(|| Reply::NotTls {
                first_bytes: buf[..16].to_vec(),
            }));
        }
        let stopped = match timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Err(_) => HelloOutcome::Timeout,
            Ok(Ok(0)) => HelloOutcome::Closed,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                reply = flight::parse(&buf);
                match reply {
                    // Dropping the stream closes the connection without completing the handshake.
                    Some(complete) if complete.is_complete() => {
                        return HelloOutcome::Reply(complete);
                    }
                    _ => continue,
                }
            }
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(Err(err)) => io_outcome(&err),
        };
        // The peer stopped: a ServerHello read so far still answers the question.
        return match reply {
            Some(Reply::Hello(flight)) => HelloOutcome::Reply(Reply::Hello(flight)),
            _ => stopped,
        };
    }
}

/// Connects to `addr`, sends one ClientHello for `version` offering exactly `suites` (see
/// [`client_hello`]) and reads the server's first flight, with `timeout` covering connect and
/// read; never completes a handshake.
pub async fn hello_probe(
    addr: SocketAddr,
    sni: Option<&str>,
    version: u16,
    suites: &[u16],
    timeout: Duration,
) -> HelloOutcome {
    let hello = client_hello(version, sni, suites, probe_random());
    exchange(addr, &hello, Instant::now() + timeout).await
}

/// Whether `addr` accepts `version` with any suite: offers every suite of [`suites::offer_order`]
/// in hellos of [`suites::SUITES_PER_HELLO`], the next only while the server shares none with the
/// previous ones. The answer is the first acceptance, or else the first hello's refusal.
pub async fn probe_version(
    addr: SocketAddr,
    sni: Option<&str>,
    version: u16,
    timeout: Duration,
) -> HelloOutcome {
    let mut first_refusal = None;
    for chunk in suites::offer_chunks(version) {
        let outcome = hello_probe(addr, sni, version, chunk, timeout).await;
        if !outcome.no_shared_suite() {
            return match (outcome, first_refusal) {
                (accepted @ HelloOutcome::Reply(Reply::Hello(_)), _) => accepted,
                (other, None) => other,
                (_, Some(refusal)) => refusal,
            };
        }
        first_refusal.get_or_insert(outcome);
    }
    first_refusal.expect("the registry has suites, so at least one hello was sent")
}

#[cfg(test)]
mod tests;
