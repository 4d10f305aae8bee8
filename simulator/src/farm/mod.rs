//! The endpoint farm: loopback TLS servers that stand in for teams.microsoft.com, an on-prem
//! Skype for Business pool, AD FS…, so simulated agents run their real probes
//! (`roomready_agent::probe::probe_endpoint`) against endpoints with chosen TLS versions, suites,
//! certificates and behaviours.
//!
//! Each endpoint ([`EndpointSpec`]) gets one port on 127.0.0.1 that serves all its versions. The
//! server reads the ClientHello first ([`client_hello`]) and answers as OpenSSL's `s_server`
//! would: a TLS 1.2 / 1.3 hello whose version the endpoint offers goes to a tokio-rustls acceptor
//! (ring) restricted to the offered modern versions and suites; a hello that negotiates TLS 1.0 /
//! 1.1 gets a ServerHello of that version; no common version or suite gets the alert OpenSSL
//! sends (see `legacy`). One CA per farm issues every leaf; agents trust it through
//! [`EndpointFarm::probe_settings`] (or [`EndpointFarm::ca_pem`]), and reach the endpoints through
//! [`EndpointFarm::resolve_overrides`], which the probes consult before DNS.
//!
//! Endpoints go down and up at runtime ([`EndpointFarm::set_down`]): a down endpoint keeps its
//! port bound but does not listen, so connections are refused, as for
//! [`Behaviour::Refuses`]; connections in progress are closed.

pub mod client_hello;
mod legacy;
mod pki;
mod spec;

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use roomready_agent::probe::{Endpoint, ProbeSettings, ResolveOverrides, modern};
use roomready_protocol::TlsVersion;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use client_hello::Parsed;
pub use pki::{Leaf, PkiError};
pub use spec::{
    Behaviour, CertificateKind, EndpointSpec, KeyKind, SpecError, ValidSpec, WRONG_NAME,
};

/// A client that sends no complete ClientHello within this is dropped.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on a handshake, and on waiting for the client to go after an answer.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Listen backlog of each endpoint.
const BACKLOG: u32 = 1024;

/// Why the farm could not start or do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum FarmError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("two endpoints are named {name:?}; names must be unique")]
    DuplicateName { name: String },
    #[error("farm certificates: {0}")]
    Pki(#[from] PkiError),
    #[error("endpoint {name:?}: TLS configuration: {source}")]
    Tls {
        name: String,
        #[source]
        source: rustls::Error,
    },
    #[error("endpoint {name:?}: loopback port: {source}")]
    Io {
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("no endpoint named {name:?} in the farm")]
    UnknownEndpoint { name: String },
    #[error("farm CA as probe roots: {0}")]
    Roots(String),
}

/// What a connection handler needs of its endpoint.
struct Serving {
    versions: BTreeSet<TlsVersion>,
    key: KeyKind,
    cert_der: Vec<u8>,
    /// `None` when neither TLS 1.2 nor 1.3 is offered.
    acceptor: Option<TlsAcceptor>,
    behaviour: Behaviour,
}

/// The state of an endpoint's port.
enum Port {
    /// Listening: the accept loop owns the listener and the connections in progress.
    Listening(JoinHandle<()>),
    /// Bound but not listening: connections are refused, and the port stays ours.
    Closed(TcpSocket),
    /// The farm stopped.
    Stopped,
}

/// One running endpoint.
struct Station {
    spec: EndpointSpec,
    addr: SocketAddr,
    leaf: Leaf,
    serving: Arc<Serving>,
    port: tokio::sync::Mutex<Port>,
    down: AtomicBool,
}

/// The running farm. Dropping it stops every endpoint (like [`EndpointFarm::stop`], without
/// waiting).
pub struct EndpointFarm {
    ca_pem: String,
    stations: Vec<Station>,
}

impl std::fmt::Debug for EndpointFarm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut map = f.debug_map();
        for station in &self.stations {
            map.entry(&station.spec.name, &station.addr);
        }
        map.finish()
    }
}

fn io_error(name: &str) -> impl FnOnce(io::Error) -> FarmError {
    let name = name.to_owned();
    move |source| FarmError::Io { name, source }
}

/// A socket bound to `addr` (address reuse on, so a port just closed can be bound again).
fn bound_socket(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// The rustls acceptor of a validated spec, if it offers TLS 1.2 or 1.3.
fn acceptor(valid: &ValidSpec, leaf: &Leaf) -> Result<Option<TlsAcceptor>, FarmError> {
    let name = &valid.spec.name;
    let tls = |source| FarmError::Tls {
        name: name.clone(),
        source,
    };
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = valid
        .spec
        .versions
        .iter()
        .filter_map(|v| match v {
            TlsVersion::Tls13 => Some(&rustls::version::TLS13),
            TlsVersion::Tls12 => Some(&rustls::version::TLS12),
            TlsVersion::Tls10 | TlsVersion::Tls11 => None,
        })
        .collect();
    if versions.is_empty() {
        return Ok(None);
    }
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(suites) = &valid.suites {
        provider.cipher_suites = suites.clone();
    }
    let chain = vec![CertificateDer::from(leaf.cert_der.clone())];
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes())
        .map_err(|e| tls(rustls::Error::General(format!("leaf key: {e}"))))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(tls)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls)?;
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

impl EndpointFarm {
    /// Validates `specs`, makes the CA and the leaves, and starts every endpoint on its own
    /// loopback port. Must run inside a tokio runtime.
    pub async fn start(
        specs: impl IntoIterator<Item = EndpointSpec>,
    ) -> Result<EndpointFarm, FarmError> {
        let mut valid: Vec<ValidSpec> = Vec::new();
        for spec in specs {
            let checked = spec.validate()?;
            if valid
                .iter()
                .any(|v| v.spec.name.eq_ignore_ascii_case(&checked.spec.name))
            {
                return Err(FarmError::DuplicateName {
                    name: checked.spec.name,
                });
            }
            valid.push(checked);
        }
        let ca = pki::Ca::new()?;
        let mut stations = Vec::with_capacity(valid.len());
        for checked in valid {
            let name = checked.spec.name.clone();
            let leaf = ca.leaf(&name, checked.spec.certificate, checked.key)?;
            let serving = Arc::new(Serving {
                versions: checked.spec.versions.clone(),
                key: checked.key,
                cert_der: leaf.cert_der.clone(),
                acceptor: acceptor(&checked, &leaf)?,
                behaviour: checked.spec.behaviour,
            });
            let socket = bound_socket(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .map_err(io_error(&name))?;
            let addr = socket.local_addr().map_err(io_error(&name))?;
            let port = if checked.spec.behaviour == Behaviour::Refuses {
                Port::Closed(socket)
            } else {
                let listener = socket.listen(BACKLOG).map_err(io_error(&name))?;
                Port::Listening(tokio::spawn(accept_loop(listener, Arc::clone(&serving))))
            };
            stations.push(Station {
                spec: checked.spec,
                addr,
                leaf,
                serving,
                port: tokio::sync::Mutex::new(port),
                down: AtomicBool::new(false),
            });
        }
        Ok(EndpointFarm {
            ca_pem: ca.pem().to_owned(),
            stations,
        })
    }

    fn station(&self, name: &str) -> Option<&Station> {
        self.stations
            .iter()
            .find(|s| s.spec.name.eq_ignore_ascii_case(name))
    }

    /// The farm CA's certificate (PEM): the only trust anchor probes of the farm need.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The endpoints' specs, in the order given to [`EndpointFarm::start`].
    pub fn specs(&self) -> impl Iterator<Item = &EndpointSpec> {
        self.stations.iter().map(|s| &s.spec)
    }

    /// The loopback address endpoint `name` is served on (it keeps it while down).
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.station(name).map(|s| s.addr)
    }

    /// The leaf certificate and key endpoint `name` presents.
    pub fn leaf(&self, name: &str) -> Option<&Leaf> {
        self.station(name).map(|s| &s.leaf)
    }

    /// `(lower-case name, port)` → loopback address for every endpoint: the
    /// [`ProbeSettings::resolve`] that makes agents reach the farm instead of the real hosts.
    pub fn resolve_overrides(&self) -> ResolveOverrides {
        self.stations
            .iter()
            .map(|s| ((s.spec.name.to_ascii_lowercase(), s.spec.port), s.addr))
            .collect()
    }

    /// The endpoints as an agent's configuration lists them (name, port, role, sfb_version).
    pub fn agent_endpoints(&self) -> Vec<Endpoint> {
        self.stations
            .iter()
            .map(|s| Endpoint {
                host: s.spec.name.clone(),
                port: s.spec.port,
                role: s.spec.role,
                sfb_version: s.spec.sfb_version.clone(),
            })
            .collect()
    }

    /// Probe settings for agents of this farm: the farm CA as the only root, the
    /// [`EndpointFarm::resolve_overrides`], and `timeout` per connection attempt.
    pub fn probe_settings(&self, timeout: Duration) -> Result<ProbeSettings, FarmError> {
        let roots = modern::roots(Some(self.ca_pem.as_bytes())).map_err(FarmError::Roots)?;
        Ok(ProbeSettings {
            roots: Arc::new(roots),
            timeout,
            resolve: Arc::new(self.resolve_overrides()),
        })
    }

    /// Whether endpoint `name` is down (set by [`EndpointFarm::set_down`]).
    pub fn is_down(&self, name: &str) -> Option<bool> {
        self.station(name).map(|s| s.down.load(Ordering::SeqCst))
    }

    /// Takes endpoint `name` down (`true`: it stops listening, so connections are refused, and
    /// the connections in progress are closed) or brings it up again on the same address. When
    /// this returns the change is in effect. A [`Behaviour::Refuses`] endpoint refuses either way.
    pub async fn set_down(&self, name: &str, down: bool) -> Result<(), FarmError> {
        let station = self
            .station(name)
            .ok_or_else(|| FarmError::UnknownEndpoint {
                name: name.to_owned(),
            })?;
        let mut port = station.port.lock().await;
        station.down.store(down, Ordering::SeqCst);
        let listen = !down && station.spec.behaviour != Behaviour::Refuses;
        let current = std::mem::replace(&mut *port, Port::Stopped);
        *port = match (current, listen) {
            (Port::Listening(task), false) => {
                task.abort();
                // Completes once the task, its listener and its connections are dropped.
                let _ = task.await;
                Port::Closed(bound_socket(station.addr).map_err(io_error(name))?)
            }
            (Port::Closed(socket), true) => {
                let listener = socket.listen(BACKLOG).map_err(io_error(name))?;
                Port::Listening(tokio::spawn(accept_loop(
                    listener,
                    Arc::clone(&station.serving),
                )))
            }
            (unchanged, _) => unchanged,
        };
        Ok(())
    }

    /// Stops every endpoint and waits until their ports are closed.
    pub async fn stop(mut self) {
        for station in &mut self.stations {
            let port = std::mem::replace(station.port.get_mut(), Port::Stopped);
            if let Port::Listening(task) = port {
                task.abort();
                let _ = task.await;
            }
        }
    }
}

impl Drop for EndpointFarm {
    fn drop(&mut self) {
        for station in &mut self.stations {
            if let Port::Listening(task) = station.port.get_mut() {
                task.abort();
            }
        }
    }
}

/// Accepts connections until aborted; dropping it closes the listener and every connection.
async fn accept_loop(listener: TcpListener, serving: Arc<Serving>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, Arc::clone(&serving)));
                }
                Err(e) => {
                    // Out of descriptors and the like: back off instead of spinning.
                    tracing::debug!("endpoint farm: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads until the bytes are a complete ClientHello, not TLS, malformed, or the client stops
/// sending (EOF or [`client_hello::MAX_HELLO_BYTES`]: `NeedMore`).
async fn read_hello(stream: &mut TcpStream) -> (Vec<u8>, Parsed) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let room = client_hello::MAX_HELLO_BYTES
            .saturating_sub(buf.len())
            .min(chunk.len());
        if room == 0 {
            return (buf, Parsed::NeedMore);
        }
        match stream.read(&mut chunk[..room]).await {
            Ok(0) | Err(_) => return (buf, Parsed::NeedMore),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        let parsed = client_hello::parse(&buf);
        if parsed != Parsed::NeedMore {
            return (buf, parsed);
        }
    }
}

/// Reads and discards until the client closes (or fails, or `limit` passes).
async fn drain<S: AsyncRead + Unpin>(stream: &mut S, limit: Option<Duration>) {
    let mut chunk = [0u8; 4096];
    let reading = async {
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                break;
            }
        }
    };
    match limit {
        Some(limit) => {
            let _ = tokio::time::timeout(limit, reading).await;
        }
        None => reading.await,
    }
}

/// Sends `bytes` (an alert), closes the sending side and waits briefly for the client to go, so
/// the close is a FIN after everything was read, never a reset.
async fn send_and_close(stream: &mut TcpStream, bytes: &[u8]) {
    if stream.write_all(bytes).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    drain(stream, Some(IDLE_TIMEOUT)).await;
}

/// One connection, per the endpoint's behaviour.
async fn serve(mut stream: TcpStream, serving: Arc<Serving>) {
    let _ = stream.set_nodelay(true);
    if serving.behaviour == Behaviour::Silent {
        drain(&mut stream, None).await;
        return;
    }
    let Ok((buf, parsed)) = tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut stream)).await
    else {
        return;
    };
    if let Behaviour::Slow { ms } = serving.behaviour {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let hello = match parsed {
        // Not TLS, or the client stopped mid-hello: close without a word, as OpenSSL does.
        Parsed::NotTls | Parsed::NeedMore => return,
        Parsed::Malformed { alert } => {
            send_and_close(&mut stream, &legacy::alert_record(0x0301, alert)).await;
            return;
        }
        Parsed::Hello(hello) => hello,
    };
    match legacy::answer(&serving.versions, serving.key, &serving.cert_der, &hello) {
        legacy::Answer::Modern => {
            // A modern version was negotiated, so one is offered and the acceptor exists.
            let Some(acceptor) = &serving.acceptor else {
                return;
            };
            let replay = Replay {
                prefix: buf,
                at: 0,
                inner: stream,
            };
            let handshake = tokio::time::timeout(IDLE_TIMEOUT, acceptor.accept(replay)).await;
            if let Ok(Ok(mut tls)) = handshake {
                drain(&mut tls, Some(IDLE_TIMEOUT)).await;
            }
        }
        legacy::Answer::Flight(bytes) => {
            // The client's next flight never comes from a probe: wait for it to go.
            if stream.write_all(&bytes).await.is_ok() {
                drain(&mut stream, Some(IDLE_TIMEOUT)).await;
            }
        }
        legacy::Answer::Alert(bytes) => send_and_close(&mut stream, &bytes).await,
    }
}

/// A stream that first replays the bytes already read (the ClientHello), then reads on.
struct Replay {
    prefix: Vec<u8>,
    at: usize,
    inner: TcpStream,
}

impl AsyncRead for Replay {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let rest = &this.prefix[this.at..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Replay {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
