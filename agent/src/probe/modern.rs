//! The modern probe: a real rustls 0.23 handshake with one endpoint at exactly TLS 1.3 or TLS 1.2.
//!
//! Protocol support and certificate validity are separate answers, so this probe records and
//! lets the handshake go on where a client would stop: the verifier keeps the chain for
//! [`super::verify`] instead of judging it, a handshake signature that does not verify (a key
//! too weak for the verifier) is noted rather than fatal, and a request for a client
//! certificate is noted and answered with none. The bytes the server sent are recorded too, so a
//! handshake that fails is still explained by what the server chose: a ServerHello of a lower
//! version is a downgrade, one of the requested version means the server accepts it even though
//! the handshake did not finish (e.g. it requires a client certificate).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use roomready_protocol::TlsVersion;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::flight::{self, Chain, MAX_FLIGHT_BYTES, Reply};

/// How one modern handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModernOutcome {
    /// The server chose the requested version.
    Accepted(Accepted),
    /// The server answered with a ServerHello of this lower version.
    Downgraded(u16),
    /// The server sent a TLS alert (description code and name).
    Alert(u8, String),
    ConnectionRefused,
    Reset,
    Timeout,
    /// The peer closed before the handshake completed.
    Closed,
    /// The reply was not a TLS record (e.g. an HTTP server); the rustls error text.
    NotTls(String),
    /// Another TLS or I/O error (text).
    Failed(String),
}

/// What a server that chose the requested version showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The chosen cipher suite's IANA code.
    pub suite: u16,
    /// The server's chain (DER, its own certificate first), when it was seen.
    pub chain: Option<Vec<Vec<u8>>>,
    /// Why the server's handshake signature did not verify with its certificate's key.
    pub signature_error: Option<String>,
    /// The server asked for a client certificate (the probe sends none).
    pub client_certificate_requested: bool,
    /// How long the completed handshake took; `None` when it did not complete.
    pub handshake: Option<Duration>,
    /// Why the handshake did not complete, when it did not.
    pub incomplete: Option<String>,
}

/// What the verifier and the client-certificate resolver saw during one handshake.
#[derive(Debug, Default)]
struct Seen {
    chain: Option<Vec<Vec<u8>>>,
    signature_error: Option<String>,
    client_certificate_requested: bool,
}

/// Records what the handshake shows instead of judging it.
#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Seen>,
}

impl Recording {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        // A panic while holding this lock cannot leave Seen half-written: take it as it is.
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a signature check's failure; the handshake goes on.
    fn signature(
        &self,
        verdict: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if let Err(error) = verdict {
            self.seen().signature_error = Some(signature_problem(&error));
        }
        Ok(HandshakeSignatureValid::assertion())
    }
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|der| der.as_ref().to_vec())
            .collect();
        self.seen().chain = Some(chain);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(self.inner.verify_tls12_signature(message, cert, dss))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.signature(self.inner.verify_tls13_signature(message, cert, dss))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ResolvesClientCert for Recording {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen().client_certificate_requested = true;
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

/// Why a handshake signature was not accepted, for a person.
fn signature_problem(error: &rustls::Error) -> String {
    use rustls::CertificateError as E;
    match error {
        rustls::Error::InvalidCertificate(E::BadSignature) => {
            "it does not verify with the certificate's key, or the key is too weak".into()
        }
        rustls::Error::InvalidCertificate(
            E::UnsupportedSignatureAlgorithmContext { .. }
            | E::UnsupportedSignatureAlgorithmForPublicKeyContext { .. },
        ) => "its algorithm is not supported for the certificate's key".into(),
        other => other.to_string(),
    }
}

/// A TCP stream that keeps the first [`MAX_FLIGHT_BYTES`] it reads.
struct Recorder {
    inner: TcpStream,
    read: Vec<u8>,
}

impl AsyncRead for Recorder {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let new = &buf.filled()[before..];
            let room = MAX_FLIGHT_BYTES.saturating_sub(this.read.len());
            this.read.extend_from_slice(&new[..new.len().min(room)]);
        }
        poll
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    // rustls writes a flight as several records in one vectored write: without these, each
    // record would be a write of its own, and Nagle's algorithm would hold the last one back
    // until the peer's delayed ACK (40 ms on Linux).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Why the trust anchors could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RootsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {reason}")]
    Read { path: String, reason: String },
    /// The CA file holds no usable certificate.
    #[error("{0}")]
    Invalid(String),
}

/// The trust anchors of the CA file at `ca_file`, or Mozilla's when there is none.
pub(crate) fn load_roots(
    ca_file: Option<&std::path::Path>,
) -> Result<Arc<RootCertStore>, RootsError> {
    let pem = match ca_file {
        None => None,
        Some(path) => {
            Some(
                crate::files::read(path, crate::files::PEM).map_err(|e| RootsError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?,
            )
        }
    };
    roots(pem.as_deref())
        .map(Arc::new)
        .map_err(RootsError::Invalid)
}

/// The trust anchors: Mozilla's (webpki-roots), or those of a CA file.
pub fn roots(ca_pem: Option<&[u8]>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca_pem {
        None => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Some(pem) => {
            use rustls::pki_types::pem::PemObject;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("CA file: {e}"))?;
                store
                    .add(cert)
                    .map_err(|e| format!("CA file: certificate rejected: {e}"))?;
            }
            if store.is_empty() {
                return Err("CA file holds no certificate".into());
            }
        }
    }
    Ok(store)
}

/// One handshake with `addr` at exactly `version` (TLS 1.2 or 1.3), with SNI for `server_name`
/// when it is a DNS name, `timeout` covering connect and handshake. `roots` only serve the
/// handshake signature checks; the chain is judged by [`super::verify`].
pub async fn probe_modern(
    addr: SocketAddr,
    server_name: &str,
    version: TlsVersion,
    roots: Arc<RootCertStore>,
    timeout: Duration,
) -> ModernOutcome {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&'static rustls::SupportedProtocolVersion] = match version {
        TlsVersion::Tls13 => &[&rustls::version::TLS13],
        TlsVersion::Tls12 => &[&rustls::version::TLS12],
        other => {
            return ModernOutcome::Failed(format!("{other} is probed with a hand-built hello"));
        }
    };
    let inner = match WebPkiServerVerifier::builder_with_provider(roots, provider.clone()).build() {
        Ok(v) => v,
        Err(e) => return ModernOutcome::Failed(format!("certificate verifier: {e}")),
    };
    let recording = Arc::new(Recording {
        inner,
        seen: Mutex::new(Seen::default()),
    });
    let config = match config(provider, versions, recording.clone()) {
        Ok(c) => c,
        Err(e) => return ModernOutcome::Failed(e),
    };
    let name = match ServerName::try_from(server_name.to_owned()) {
        Ok(n) => n,
        Err(e) => return ModernOutcome::Failed(format!("server name {server_name:?}: {e}")),
    };
    let started = Instant::now();
    let attempt = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| (e, None))?;
        // Best effort, as for the hellos: a probe's writes are few and small.
        let _ = tcp.set_nodelay(true);
        let recorder = Recorder {
            inner: tcp,
            read: Vec::with_capacity(8192),
        };
        TlsConnector::from(Arc::new(config))
            .connect(name, recorder)
            .into_fallible()
            .await
            .map_err(|(e, recorder)| (e, Some(recorder)))
    };
    let result = tokio::time::timeout(timeout, attempt).await;
    let seen = std::mem::take(&mut *recording.seen());
    match result {
        Err(_) => ModernOutcome::Timeout,
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            ModernOutcome::Accepted(Accepted {
                suite: conn
                    .negotiated_cipher_suite()
                    .map(|s| u16::from(s.suite()))
                    .unwrap_or_default(),
                chain: seen.chain,
                signature_error: seen.signature_error,
                client_certificate_requested: seen.client_certificate_requested,
                handshake: Some(started.elapsed()),
                incomplete: None,
            })
        }
        Ok(Err((error, recorder))) => {
            let read = recorder.map(|r| r.read).unwrap_or_default();
            explain(&error, &read, version, seen)
        }
    }
}

fn config(
    provider: Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    recording: Arc<Recording>,
) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(recording.clone())
        .with_client_cert_resolver(recording))
}

/// A failed handshake, explained by what the server sent (`read`) where it chose a version.
fn explain(error: &io::Error, read: &[u8], version: TlsVersion, seen: Seen) -> ModernOutcome {
    let Some(Reply::Hello(flight)) = flight::parse(read) else {
        return classify(error);
    };
    let chosen = flight.hello.version;
    if chosen < version.wire() {
        return ModernOutcome::Downgraded(chosen);
    }
    if chosen > version.wire() {
        return ModernOutcome::Failed(format!(
            "the server answered version 0x{chosen:04X}, above the one offered"
        ));
    }
    let client_certificate_requested =
        seen.client_certificate_requested || flight.certificate_request;
    let why = match classify(error) {
        ModernOutcome::Alert(code, name) => format!("alert {name} ({code})"),
        ModernOutcome::Closed => "the server closed the connection".into(),
        ModernOutcome::Reset => "the server reset the connection".into(),
        ModernOutcome::NotTls(text) | ModernOutcome::Failed(text) => text,
        other => format!("{other:?}"),
    };
    let incomplete = if client_certificate_requested {
        format!(
            "the server requires a client certificate and ended the handshake without one: {why}"
        )
    } else {
        format!("the handshake did not complete: {why}")
    };
    let chain = seen.chain.or(match flight.chain {
        Some(Chain::Certificates(certs)) if !certs.is_empty() => Some(certs),
        _ => None,
    });
    ModernOutcome::Accepted(Accepted {
        suite: flight.hello.cipher_suite,
        chain,
        signature_error: seen.signature_error,
        client_certificate_requested,
        handshake: None,
        incomplete: Some(incomplete),
    })
}

/// Maps a connect or handshake error to an outcome.
fn classify(error: &io::Error) -> ModernOutcome {
    use std::io::ErrorKind;
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::AlertReceived(alert) => {
                let code = u8::from(*alert);
                ModernOutcome::Alert(code, super::hello::alert_name(code).to_owned())
            }
            rustls::Error::InvalidMessage(_) => ModernOutcome::NotTls(tls.to_string()),
            other => ModernOutcome::Failed(other.to_string()),
        };
    }
    match error.kind() {
        ErrorKind::ConnectionRefused => ModernOutcome::ConnectionRefused,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => ModernOutcome::Reset,
        ErrorKind::UnexpectedEof | ErrorKind::BrokenPipe => ModernOutcome::Closed,
        ErrorKind::TimedOut => ModernOutcome::Timeout,
        _ => ModernOutcome::Failed(error.to_string()),
    }
}
