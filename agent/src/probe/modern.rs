//! The modern probe: a real rustls 0.23 handshake with one endpoint at exactly TLS 1.3 or TLS 1.2.
//!
//! Protocol support and certificate validity are two separate answers. The verifier wraps
//! webpki's: it records the chain's verdict and then lets the handshake finish, so a server with
//! an expired certificate still shows which versions and suites it accepts. The signatures of
//! the handshake itself are still checked by webpki.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use roomready_protocol::TlsVersion;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How one modern handshake ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModernOutcome {
    /// The handshake completed at the requested version.
    Accepted {
        /// The negotiated cipher suite's IANA code.
        suite: u16,
        /// The chain's verdict: `Ok` or the verification error's text.
        certificate: Result<(), String>,
        /// The end-entity certificate (DER), for its expiry.
        end_entity: Option<Vec<u8>>,
        handshake: Duration,
    },
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

/// Records the chain verdict of webpki's verifier and accepts the chain either way.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<WebPkiServerVerifier>,
    seen: Mutex<Option<Seen>>,
}

/// The chain verdict and the end-entity certificate (DER) of one handshake.
type Seen = (Result<(), String>, Vec<u8>);

impl ServerCertVerifier for RecordingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            .map(|_| ())
            .map_err(|e| e.to_string());
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some((verdict, end_entity.as_ref().to_vec()));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why the trust anchors could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootsError {
    /// The CA file could not be read.
    #[error("cannot read CA file {path}: {reason}")]
    Read { path: String, reason: String },
    /// The CA file holds no usable certificate.
    #[error("{0}")]
    Invalid(String),
}

/// The trust anchors of the CA file at `ca_file`, or Mozilla's when there is none.
pub fn load_roots(ca_file: Option<&std::path::Path>) -> Result<Arc<RootCertStore>, RootsError> {
    let pem = match ca_file {
        None => None,
        Some(path) => Some(std::fs::read(path).map_err(|e| RootsError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?),
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

/// One handshake with `addr` at exactly `version` (TLS 1.2 or 1.3), SNI and name check against
/// `server_name`, `timeout` covering connect and handshake.
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
    let verifier = Arc::new(RecordingVerifier {
        inner,
        seen: Mutex::new(None),
    });
    let config = match config(provider, versions, verifier.clone()) {
        Ok(c) => c,
        Err(e) => return ModernOutcome::Failed(e),
    };
    let name = match ServerName::try_from(server_name.to_owned()) {
        Ok(n) => n,
        Err(e) => return ModernOutcome::Failed(format!("server name {server_name:?}: {e}")),
    };
    let started = Instant::now();
    let attempt = async {
        let tcp = TcpStream::connect(addr).await?;
        TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
    };
    match tokio::time::timeout(timeout, attempt).await {
        Err(_) => ModernOutcome::Timeout,
        Ok(Ok(stream)) => {
            let handshake = started.elapsed();
            let (_, conn) = stream.get_ref();
            let suite = conn
                .negotiated_cipher_suite()
                .map(|s| u16::from(s.suite()))
                .unwrap_or_default();
            let (certificate, end_entity) = match verifier.seen.lock().ok().and_then(|s| s.clone())
            {
                Some((verdict, der)) => (verdict, Some(der)),
                None => (Err("no certificate was presented".into()), None),
            };
            ModernOutcome::Accepted {
                suite,
                certificate,
                end_entity,
                handshake,
            }
        }
        Ok(Err(e)) => classify(&e),
    }
}

fn config(
    provider: Arc<CryptoProvider>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    verifier: Arc<RecordingVerifier>,
) -> Result<ClientConfig, String> {
    Ok(ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| format!("TLS configuration: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// Maps a connect or handshake error to an outcome.
fn classify(error: &std::io::Error) -> ModernOutcome {
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
