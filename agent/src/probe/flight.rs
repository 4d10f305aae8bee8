//! The server's first flight, read the way TLS scanners read it: the records a server sends in
//! answer to a ClientHello, classified without completing the handshake.
//!
//! Up to TLS 1.2 the whole flight is in the clear: ServerHello (the version and suite it chose),
//! Certificate (its chain), ServerKeyExchange, CertificateRequest (it wants a client
//! certificate), ServerHelloDone. A TLS 1.3 server encrypts everything after its ServerHello.
//! [`parse`] takes whatever bytes arrived so far and says what they are and whether more are
//! worth waiting for. It is total and bounded: any bytes give an answer, never a panic, and it
//! looks at no more than [`MAX_FLIGHT_BYTES`].

/// Record content types.
const CONTENT_CHANGE_CIPHER_SPEC: u8 = 0x14;
const CONTENT_ALERT: u8 = 0x15;
const CONTENT_HANDSHAKE: u8 = 0x16;
const CONTENT_APPLICATION: u8 = 0x17;
/// Handshake message types.
const HS_SERVER_HELLO: u8 = 0x02;
const HS_CERTIFICATE: u8 = 0x0b;
const HS_CERTIFICATE_REQUEST: u8 = 0x0d;
const HS_SERVER_HELLO_DONE: u8 = 0x0e;
/// Record header length (type, version, length).
const RECORD_HEADER: usize = 5;
/// Largest record length accepted: 2^14 plaintext plus the 2048 bytes TLS 1.2 allows for expansion.
const MAX_RECORD_LEN: usize = 16384 + 2048;
/// Bound on the bytes of one flight (all records together): a long certificate chain fits.
pub(crate) const MAX_FLIGHT_BYTES: usize = 128 * 1024;
/// Most certificates kept of one chain; webpki would refuse a longer path anyway.
const MAX_CHAIN: usize = 16;
/// How many leading bytes a [`Reply::NotTls`] keeps.
const NOT_TLS_KEEP: usize = 16;
/// Extension: supported_versions (RFC 8446).
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;

/// The server's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHello {
    /// The version chosen: `supported_versions` if present, else the legacy `server_version`.
    pub version: u16,
    pub cipher_suite: u16,
}

/// The Certificate message, when one arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// The certificates (DER), the server's own first; at most 16 kept.
    Certificates(Vec<Vec<u8>>),
    /// A Certificate message that does not parse.
    Malformed,
}

/// A flight that starts with a ServerHello, as far as it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flight {
    pub hello: ServerHello,
    /// The chain, if the Certificate message arrived (never for TLS 1.3, where it is encrypted).
    pub chain: Option<Chain>,
    /// A CertificateRequest was seen: the server wants a client certificate.
    pub certificate_request: bool,
    /// An alert the server sent after its ServerHello (description).
    pub alert: Option<u8>,
    /// Nothing more of interest will come: ServerHelloDone, TLS 1.3, an alert, a record that is
    /// not a handshake, or the byte bound.
    pub complete: bool,
    /// The flight ended at the byte bound ([`MAX_FLIGHT_BYTES`]), not by itself.
    pub truncated: bool,
}

impl Flight {
    /// Why no usable chain came with this flight (`None` when one did).
    pub(crate) fn missing_chain(&self, suite_name: &str) -> Option<String> {
        match &self.chain {
            Some(Chain::Certificates(certs)) if !certs.is_empty() => None,
            Some(Chain::Certificates(_)) => {
                Some("the server sent an empty certificate list".into())
            }
            Some(Chain::Malformed) => Some("the server's Certificate message is malformed".into()),
            None if self.truncated => Some(format!(
                "the server's first flight is larger than {} KiB",
                MAX_FLIGHT_BYTES / 1024
            )),
            None if self.hello.version >= 0x0304 => Some("TLS 1.3 encrypts the certificate".into()),
            None if self.complete => Some(format!(
                "the server sent no certificate with {suite_name}, a suite without one"
            )),
            None => Some("the server's Certificate message did not arrive in time".into()),
        }
    }
}

/// What the bytes received so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A ServerHello and what followed it.
    Hello(Flight),
    /// The first record was an alert (level, description).
    Alert { level: u8, description: u8 },
    /// The first bytes were not a TLS handshake/alert record (e.g. an HTTP server); up to 16 of
    /// them. Also for TLS records that are malformed or oversized, or whose first handshake
    /// message is not a ServerHello.
    NotTls { first_bytes: Vec<u8> },
}

impl Reply {
    /// Whether more bytes could change the answer.
    pub(crate) fn is_complete(&self) -> bool {
        match self {
            Reply::Hello(flight) => flight.complete,
            Reply::Alert { .. } | Reply::NotTls { .. } => true,
        }
    }
}

fn not_tls(buf: &[u8]) -> Option<Reply> {
    Some(Reply::NotTls {
        first_bytes: buf[..buf.len().min(NOT_TLS_KEEP)].to_vec(),
    })
}

/// Reads a big-endian u16 at `at`, if present.
fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Reads a big-endian u24 at `at`, if present.
fn be24(buf: &[u8], at: usize) -> Option<usize> {
    let bytes = buf.get(at..at.checked_add(3)?)?;
    Some(usize::from(bytes[0]) << 16 | usize::from(bytes[1]) << 8 | usize::from(bytes[2]))
}

/// Parses a complete ServerHello body; `None` if it is malformed.
fn server_hello(body: &[u8]) -> Option<ServerHello> {
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
    Some(ServerHello {
        version,
        cipher_suite,
    })
}

/// Parses a Certificate message body (TLS 1.0-1.2): a u24 list of u24-length DER certificates.
fn chain(body: &[u8]) -> Chain {
    let parse = || {
        let total = be24(body, 0)?;
        let mut list = body.get(3..3 + total)?;
        if 3 + total != body.len() {
            return None;
        }
        let mut certs = Vec::new();
        while !list.is_empty() {
            let len = be24(list, 0)?;
            let der = list.get(3..3 + len)?;
            if der.is_empty() {
                return None;
            }
            if certs.len() < MAX_CHAIN {
                certs.push(der.to_vec());
            }
            list = &list[3 + len..];
        }
        Some(certs)
    };
    parse().map_or(Chain::Malformed, Chain::Certificates)
}

/// Whether the record header bytes present so far cannot start a TLS record of interest.
fn bad_header(header: &[u8]) -> bool {
    header.first().is_some_and(|&t| {
        !matches!(
            t,
            CONTENT_HANDSHAKE | CONTENT_ALERT | CONTENT_CHANGE_CIPHER_SPEC | CONTENT_APPLICATION
        )
    }) || header.get(1).is_some_and(|&major| major != 3)
        || header.get(2).is_some_and(|&minor| minor > 4)
}

/// The record header at `at`, as much of it as `buf` holds.
fn header_at(buf: &[u8], at: usize) -> &[u8] {
    &buf[at.min(buf.len())..buf.len().min(at + RECORD_HEADER)]
}

/// Classifies the server's first flight as far as `buf` holds it: `None` while not even the
/// first record is complete, else the reply so far ([`Reply::is_complete`] says whether to read
/// on). A handshake message fragmented across records is reassembled. Looks at no more than
/// [`MAX_FLIGHT_BYTES`]; never panics.
pub fn parse(buf: &[u8]) -> Option<Reply> {
    let mut messages: Vec<u8> = Vec::new();
    let mut at = 0usize;
    loop {
        let header = header_at(buf, at);
        // Each header byte is checked as soon as it arrives, so garbage is reported early.
        if bad_header(header)
            || header
                .first()
                .is_some_and(|&t| t != CONTENT_HANDSHAKE && t != CONTENT_ALERT)
        {
            return not_tls(buf);
        }
        if header.len() < RECORD_HEADER {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return not_tls(buf);
        }
        let start = at + RECORD_HEADER;
        let end = start + len;
        if header[0] == CONTENT_ALERT {
            // An alert record may carry several alerts; the first one is the answer.
            if len < 2 {
                return not_tls(buf);
            }
            return buf.get(start..start + 2).map(|alert| Reply::Alert {
                level: alert[0],
                description: alert[1],
            });
        }
        if end > MAX_FLIGHT_BYTES {
            return not_tls(buf);
        }
        let available = &buf[start.min(buf.len())..buf.len().min(end)];
        messages.extend_from_slice(available);
        if messages.first().is_some_and(|&t| t != HS_SERVER_HELLO) {
            return not_tls(buf);
        }
        if let Some(msg_len) = be24(&messages, 1) {
            // Even perfectly packed, this message would not fit in the read bound.
            if msg_len + 4 > MAX_FLIGHT_BYTES {
                return not_tls(buf);
            }
            if messages.len() >= msg_len + 4 {
                let Some(hello) = server_hello(&messages[4..4 + msg_len]) else {
                    return not_tls(buf);
                };
                let flight = Flight {
                    hello,
                    chain: None,
                    certificate_request: false,
                    alert: None,
                    // A TLS 1.3 server encrypts the rest.
                    complete: hello.version >= 0x0304,
                    truncated: false,
                };
                let rest = Rest {
                    messages,
                    next: 4 + msg_len,
                    flight,
                };
                return Some(Reply::Hello(rest.read(buf, end, available.len() < len)));
            }
        }
        if available.len() < len {
            return None;
        }
        at = end;
    }
}

/// The flight after its ServerHello.
struct Rest {
    /// The handshake bytes of the records read so far.
    messages: Vec<u8>,
    /// Offset in `messages` of the first message not handled yet.
    next: usize,
    flight: Flight,
}

impl Rest {
    /// Reads the records from `at` on (`partial`: the record before `at` is not complete yet).
    fn read(mut self, buf: &[u8], mut at: usize, partial: bool) -> Flight {
        self.handle_messages();
        if self.flight.complete || partial {
            return self.flight;
        }
        loop {
            let header = header_at(buf, at);
            let Some(&content_type) = header.first() else {
                return self.flight;
            };
            // After the ServerHello anything that is not more handshake ends the flight.
            if bad_header(header) || !matches!(content_type, CONTENT_HANDSHAKE | CONTENT_ALERT) {
                self.flight.complete = true;
                return self.flight;
            }
            if header.len() < RECORD_HEADER {
                return self.flight;
            }
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let start = at + RECORD_HEADER;
            let end = start + len;
            if content_type == CONTENT_ALERT {
                self.flight.alert = buf.get(start + 1).copied();
                self.flight.complete = self.flight.alert.is_some();
                return self.flight;
            }
            if len == 0 || len > MAX_RECORD_LEN {
                self.flight.complete = true;
                return self.flight;
            }
            if end > MAX_FLIGHT_BYTES {
                self.flight.complete = true;
                self.flight.truncated = true;
                return self.flight;
            }
            let available = &buf[start.min(buf.len())..buf.len().min(end)];
            self.messages.extend_from_slice(available);
            self.handle_messages();
            if self.flight.complete || available.len() < len {
                return self.flight;
            }
            at = end;
        }
    }

    /// Takes in every complete handshake message after `next`.
    fn handle_messages(&mut self) {
        while !self.flight.complete {
            let Some(msg_len) = be24(&self.messages, self.next + 1) else {
                return;
            };
            if msg_len + 4 > MAX_FLIGHT_BYTES {
                self.flight.complete = true;
                self.flight.truncated = true;
                return;
            }
            let body_at = self.next + 4;
            let Some(body) = self.messages.get(body_at..body_at + msg_len) else {
                return;
            };
            match self.messages[self.next] {
                HS_CERTIFICATE if self.flight.chain.is_none() => {
                    self.flight.chain = Some(chain(body));
                }
                HS_CERTIFICATE_REQUEST => self.flight.certificate_request = true,
                HS_SERVER_HELLO_DONE => self.flight.complete = true,
                // ServerKeyExchange, CertificateStatus, anything else: not needed.
                _ => {}
            }
            self.next = body_at + msg_len;
        }
    }
}

#[cfg(test)]
mod tests;
