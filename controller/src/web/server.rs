//! The listener: HTTP/1.1 on a TCP socket, optionally inside TLS (rustls, the certificate and key
//! from PEM files), one task per connection, each request tagged with its client address.
//!
//! Bounds: at most [`MAX_CONNECTIONS`] at once (more wait in the kernel's backlog), a request's
//! headers must arrive within [`HEADER_TIMEOUT`], a TLS handshake within [`HANDSHAKE_TIMEOUT`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::ClientAddr;

pub const MAX_CONNECTIONS: usize = 1024;
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTPS certificate chain and key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{key}: {reason}")]
    Tls { key: &'static str, reason: String },
}

/// The running server.
pub struct Server {
    pub local_addr: SocketAddr,
    pub https: bool,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The rustls server configuration of `files` (ring, TLS 1.2 and 1.3).
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    use roomready_connect::files::{PEM, read};
    let cert_pem = read(&files.cert_file, PEM).map_err(|e| ServerError::Tls {
        key: "tls_cert_file",
        reason: format!("cannot read {}: {e}", files.cert_file.display()),
    })?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServerError::Tls {
            key: "tls_cert_file",
            reason: format!("{} is not valid PEM: {e}", files.cert_file.display()),
        })?;
    if certs.is_empty() {
        return Err(ServerError::Tls {
            key: "tls_cert_file",
            reason: format!("{} holds no certificate", files.cert_file.display()),
        });
    }
    let key_pem = read(&files.key_file, PEM).map_err(|e| ServerError::Tls {
        key: "tls_key_file",
        reason: format!("cannot read {}: {e}", files.key_file.display()),
    })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| ServerError::Tls {
        key: "tls_key_file",
        reason: format!(
            "{} holds no usable private key: {e}",
            files.key_file.display()
        ),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServerError::Tls {
            key: "tls_key_file",
            reason: format!(
                "{} and {} do not make a usable certificate: {e}",
                files.cert_file.display(),
                files.key_file.display()
            ),
        })?;
    Ok(Arc::new(config))
}

impl Server {
    /// Listens on `addr` and serves `router`, over TLS when `tls` is given.
    pub async fn start(
        addr: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
        router: Router,
    ) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let (stop, stopped) = watch::channel(false);
        let https = tls.is_some();
        let acceptor = tls.map(TlsAcceptor::from);
        let task = tokio::spawn(accept_loop(listener, acceptor, router, stopped));
        Ok(Server {
            local_addr,
            https,
            stop,
            task,
        })
    }

    /// The dashboard's address as a URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.local_addr)
    }

    /// Stops accepting connections; open ones end with the process.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let app = router.layer(axum::Extension(ClientAddr(peer)));
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true);
            let result = match acceptor {
                None => http
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                    .map_err(|e| e.to_string()),
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => http
                            .serve_connection(TokioIo::new(tls), service)
                            .await
                            .map_err(|e| e.to_string()),
                        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
                        Err(_) => Err("TLS handshake timed out".into()),
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}
