//! The farm's reading of a client's first flight: enough of the ClientHello (reassembled across
//! handshake records) to route it: its legacy `client_version`, its cipher suites and its
//! `supported_versions` extension. Bounded and total: any bytes give an answer, never a panic.

/// Record content type: handshake.
const CONTENT_HANDSHAKE: u8 = 0x16;
/// Handshake message type: ClientHello.
const HS_CLIENT_HELLO: u8 = 0x01;
/// Record header length.
const RECORD_HEADER: usize = 5;
/// Longest record a client may send (2^14 plaintext bytes).
const MAX_RECORD_LEN: usize = 16384;
/// Longest ClientHello accepted (all records together).
pub const MAX_HELLO_BYTES: usize = 64 * 1024;
/// Extension: supported_versions (RFC 8446).
const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
/// Extension: ec_point_formats (RFC 8422).
const EXT_EC_POINT_FORMATS: u16 = 0x000b;

/// TLS alert descriptions the farm sends.
pub mod alert {
    pub const UNEXPECTED_MESSAGE: u8 = 10;
    pub const RECORD_OVERFLOW: u8 = 22;
    pub const HANDSHAKE_FAILURE: u8 = 40;
    pub const ILLEGAL_PARAMETER: u8 = 47;
    pub const DECODE_ERROR: u8 = 50;
    pub const PROTOCOL_VERSION: u8 = 70;
}

/// What the farm needs of a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// The version of the first record's header.
    pub record_version: u16,
    /// `legacy_version` / `client_version`.
    pub client_version: u16,
    pub cipher_suites: Vec<u16>,
    /// The `supported_versions` extension's list, if the client sent one.
    pub supported_versions: Option<Vec<u16>>,
    /// Whether the client sent `ec_point_formats`.
    pub ec_point_formats: bool,
}

/// What the bytes received so far are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A prefix of a possibly valid ClientHello: read more.
    NeedMore,
    /// Not a TLS handshake at all (HTTP, SSLv2, noise): a server closes without an alert.
    NotTls,
    /// TLS records, but not a usable ClientHello: a server answers with this fatal alert.
    Malformed { alert: u8 },
    /// A complete ClientHello.
    Hello(ClientHello),
}

fn be16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Splits `len`-prefixed bytes (1 or 2 length bytes) off the front of `buf`.
fn vector(buf: &[u8], len_bytes: usize) -> Option<(&[u8], &[u8])> {
    let len = match len_bytes {
        1 => usize::from(*buf.first()?),
        _ => usize::from(be16(buf, 0)?),
    };
    let body = buf.get(len_bytes..len_bytes.checked_add(len)?)?;
    Some((body, &buf[len_bytes + len..]))
}

/// Parses a complete ClientHello body; `None` if it is malformed.
fn client_hello_body(body: &[u8], record_version: u16) -> Option<ClientHello> {
    let client_version = be16(body, 0)?;
    let rest = body.get(34..)?; // version + random
    let (session_id, rest) = vector(rest, 1)?;
    if session_id.len() > 32 {
        return None;
    }
    let (suites, rest) = vector(rest, 2)?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return None;
    }
    let cipher_suites = suites
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let (compression, rest) = vector(rest, 1)?;
    if compression.is_empty() {
        return None;
    }
    let mut hello = ClientHello {
        record_version,
        client_version,
        cipher_suites,
        supported_versions: None,
        ec_point_formats: false,
    };
    if rest.is_empty() {
        return Some(hello);
    }
    let (mut exts, trailing) = vector(rest, 2)?;
    if !trailing.is_empty() {
        return None;
    }
    while !exts.is_empty() {
        let ext_type = be16(exts, 0)?;
        let (data, next) = vector(exts.get(2..)?, 2)?;
        match ext_type {
            EXT_SUPPORTED_VERSIONS => {
                let (list, end) = vector(data, 1)?;
                if !end.is_empty() || list.is_empty() || list.len() % 2 != 0 {
                    return None;
                }
                hello.supported_versions = Some(
                    list.chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                );
            }
            EXT_EC_POINT_FORMATS => hello.ec_point_formats = true,
            _ => {}
        }
        exts = next;
    }
    Some(hello)
}

/// Classifies the bytes a client has sent so far. Looks at no more than [`MAX_HELLO_BYTES`];
/// never panics.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut message: Vec<u8> = Vec::new();
    let mut record_version = None;
    let mut at = 0usize;
    loop {
        let header = buf.get(at..).unwrap_or_default();
        let header = &header[..header.len().min(RECORD_HEADER)];
        // Judge each header byte as soon as it is there.
        if let Some(&content_type) = header.first()
            && content_type != CONTENT_HANDSHAKE
        {
            // An SSLv2 hello, an HTTP request, an alert, anything else: not a TLS 1.x hello.
            return if at == 0 {
                Parsed::NotTls
            } else {
                Parsed::Malformed {
                    alert: alert::UNEXPECTED_MESSAGE,
                }
            };
        }
        if let Some(&major) = header.get(1)
            && major != 3
        {
            return Parsed::NotTls;
        }
        if header.len() < RECORD_HEADER {
            return Parsed::NeedMore;
        }
        let version = u16::from_be_bytes([header[1], header[2]]);
        let record_version = *record_version.get_or_insert(version);
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 {
            return Parsed::Malformed {
                alert: alert::DECODE_ERROR,
            };
        }
        if len > MAX_RECORD_LEN {
            return Parsed::Malformed {
                alert: alert::RECORD_OVERFLOW,
            };
        }
        let start = at + RECORD_HEADER;
        let end = start + len;
        if end > MAX_HELLO_BYTES {
            return Parsed::Malformed {
                alert: alert::ILLEGAL_PARAMETER,
            };
        }
        let available = &buf[start..buf.len().min(end)];
        message.extend_from_slice(available);
        if let Some(&msg_type) = message.first()
            && msg_type != HS_CLIENT_HELLO
        {
            return Parsed::Malformed {
                alert: alert::UNEXPECTED_MESSAGE,
            };
        }
        if message.len() >= 4 {
            let msg_len = usize::from(message[1]) << 16
                | usize::from(message[2]) << 8
                | usize::from(message[3]);
            if msg_len + 4 > MAX_HELLO_BYTES {
                return Parsed::Malformed {
                    alert: alert::ILLEGAL_PARAMETER,
                };
            }
            if message.len() >= msg_len + 4 {
                return match client_hello_body(&message[4..4 + msg_len], record_version) {
                    Some(hello) => Parsed::Hello(hello),
                    None => Parsed::Malformed {
                        alert: alert::DECODE_ERROR,
                    },
                };
            }
        }
        if available.len() < len {
            return Parsed::NeedMore;
        }
        at = end;
    }
}
