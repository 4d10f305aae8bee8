//! TLS servers that behave the way some real ones do, for what `openssl s_server` cannot be made
//! to do: [`Tls10Only`] answers every hello, whatever version it asks for, with a TLS 1.0
//! ServerHello (old-style version negotiation, as pre-TLS 1.3 stacks do); [`Chooses`] has one
//! version and one suite (one this machine's OpenSSL no longer has, such as 3DES); and
//! [`NeedsSni`] refuses a hello without a server name with `unrecognized_name`, as nginx's
//! `ssl_reject_handshake` does, and passes every other connection to a real server. Each runs on
//! a loopback port until dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Longest ClientHello record read.
const MAX_HELLO: usize = 16 * 1024;

/// Reads one TLS record (the ClientHello) from `stream`; `None` if the client sent anything else
/// or went away.
async fn read_hello(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await.ok()?;
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    if header[0] != 0x16 || len > MAX_HELLO {
        return None;
    }
    let mut record = header.to_vec();
    record.resize(5 + len, 0);
    stream.read_exact(&mut record[5..]).await.ok()?;
    Some(record)
}

/// Whether a ClientHello record carries a server_name extension.
fn has_sni(record: &[u8]) -> bool {
    let sni = || -> Option<bool> {
        // Record header, handshake header, version, random.
        let mut at = 5 + 4 + 2 + 32;
        at += 1 + usize::from(*record.get(at)?);
        at += 2 + usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
        at += 1 + usize::from(*record.get(at)?);
        let end =
            at + 2 + usize::from(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
        at += 2;
        while at + 4 <= end.min(record.len()) {
            let ext = u16::from_be_bytes([record[at], record[at + 1]]);
            if ext == 0 {
                return Some(true);
            }
            at += 4 + usize::from(u16::from_be_bytes([record[at + 2], record[at + 3]]));
        }
        Some(false)
    };
    sni().unwrap_or(false)
}

/// A listener on 127.0.0.1 serving each connection with `serve`; stops on drop.
struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    async fn start<F, Fut>(serve: F) -> Server
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        Server { addr, task }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The DER of the certificate in `cert_pem`.
fn der(cert_pem: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(cert_pem)
        .expect("a PEM certificate")
        .as_ref()
        .to_vec()
}

/// Waits (at most 10 s) for the client to close.
async fn until_closed(stream: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let wait = async { while let Ok(1..) = stream.read(&mut sink).await {} };
    let _ = tokio::time::timeout(Duration::from_secs(10), wait).await;
}

/// Answers every hello with a TLS 1.0 ServerHello (TLS_RSA_WITH_AES_128_CBC_SHA), the
/// certificate and ServerHelloDone, then waits for the client to go.
pub struct Tls10Only(Server);

impl Tls10Only {
    /// Serves the certificate in `cert_pem`.
    pub async fn start(cert_pem: &Path) -> Tls10Only {
        let flight = std::sync::Arc::new(flight(0x0301, 0x002f, &der(cert_pem)));
        Tls10Only(
            Server::start(move |mut stream| {
                let flight = flight.clone();
                async move {
                    if read_hello(&mut stream).await.is_some() {
                        let _ = stream.write_all(&flight).await;
                        until_closed(&mut stream).await;
                    }
                }
            })
            .await,
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// Speaks one version and one suite: a hello offering that suite with a `client_version` (or
/// `supported_versions` list) that allows the version gets its ServerHello flight; one that does
/// not offer the suite gets `handshake_failure`, one that does not allow the version
/// `protocol_version`.
pub struct Chooses(Server);

impl Chooses {
    pub async fn start(cert_pem: &Path, version: u16, suite: u16) -> Chooses {
        let flight = std::sync::Arc::new(flight(version, suite, &der(cert_pem)));
        Chooses(
            Server::start(move |mut stream| {
                let flight = flight.clone();
                async move {
                    let Some(hello) = read_hello(&mut stream).await else {
                        return;
                    };
                    let Some((allows, suites)) = version_and_suites(&hello) else {
                        return;
                    };
                    let answer = if !allows(version) {
                        alert(70)
                    } else if !suites.contains(&suite) {
                        alert(40)
                    } else {
                        flight.to_vec()
                    };
                    let _ = stream.write_all(&answer).await;
                    until_closed(&mut stream).await;
                }
            })
            .await,
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}

/// A fatal alert record.
fn alert(description: u8) -> Vec<u8> {
    vec![0x15, 3, 3, 0, 2, 2, description]
}

/// Which versions a ClientHello allows (its `client_version` and below; with
/// `supported_versions`, that list) and the suites it offers.
#[allow(clippy::type_complexity)]
fn version_and_suites(record: &[u8]) -> Option<(Box<dyn Fn(u16) -> bool + Send>, Vec<u16>)> {
    let be16 = |at: usize| Some(u16::from_be_bytes([*record.get(at)?, *record.get(at + 1)?]));
    let client_version = be16(9)?;
    let mut at = 5 + 4 + 2 + 32;
    at += 1 + usize::from(*record.get(at)?);
    let suites_len = usize::from(be16(at)?);
    let suites: Vec<u16> = record
        .get(at + 2..at + 2 + suites_len)?
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
        .collect();
    at += 2 + suites_len;
    at += 1 + usize::from(*record.get(at)?);
    let end = at + 2 + usize::from(be16(at)?);
    at += 2;
    let mut supported: Option<Vec<u16>> = None;
    while at + 4 <= end.min(record.len()) {
        let ext = be16(at)?;
        let len = usize::from(be16(at + 2)?);
        if ext == 0x002b {
            let list = record.get(at + 5..at + 4 + len)?;
            supported = Some(
                list.chunks(2)
                    .filter_map(|c| Some(u16::from_be_bytes([c[0], *c.get(1)?])))
                    .collect(),
            );
        }
        at += 4 + len;
    }
    let allows: Box<dyn Fn(u16) -> bool + Send> = match supported {
        Some(list) => Box::new(move |v| list.contains(&v)),
        None => Box::new(move |v| v <= client_version),
    };
    Some((allows, suites))
}

fn u24(len: usize) -> [u8; 3] {
    let len = u32::try_from(len).expect("small");
    let b = len.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// ServerHello (`version`, `suite`), Certificate, ServerHelloDone, in one record.
fn flight(version: u16, suite: u16, cert_der: &[u8]) -> Vec<u8> {
    let mut hello = version.to_be_bytes().to_vec();
    hello.extend_from_slice(&[0x42; 32]);
    hello.push(0);
    hello.extend_from_slice(&suite.to_be_bytes());
    hello.push(0);
    let mut certificate = u24(cert_der.len() + 3).to_vec();
    certificate.extend_from_slice(&u24(cert_der.len()));
    certificate.extend_from_slice(cert_der);
    let mut messages = Vec::new();
    for (kind, body) in [(2u8, hello), (11, certificate), (14, Vec::new())] {
        messages.push(kind);
        messages.extend_from_slice(&u24(body.len()));
        messages.extend_from_slice(&body);
    }
    let mut record = vec![0x16];
    record.extend_from_slice(&version.to_be_bytes());
    record.extend_from_slice(&u16::try_from(messages.len()).expect("small").to_be_bytes());
    record.extend_from_slice(&messages);
    record
}

/// Refuses a hello without SNI with a fatal `unrecognized_name` alert; forwards every other
/// connection, hello included, to `upstream`.
pub struct NeedsSni(Server);

impl NeedsSni {
    pub async fn start(upstream: SocketAddr) -> NeedsSni {
        NeedsSni(
            Server::start(move |mut stream| async move {
                let Some(hello) = read_hello(&mut stream).await else {
                    return;
                };
                if !has_sni(&hello) {
                    let _ = stream.write_all(&[0x15, 3, 3, 0, 2, 2, 112]).await;
                    return;
                }
                let Ok(mut server) = TcpStream::connect(upstream).await else {
                    return;
                };
                if server.write_all(&hello).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut stream, &mut server).await;
                }
            })
            .await,
        )
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.addr
    }
}
