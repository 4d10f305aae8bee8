//! The update feed's HTTP transport: one ureq agent (rustls on ring, Mozilla's roots, explicit
//! timeouts) wrapped so no response body may exceed the configured size, refused before the body
//! when `Content-Length` already says so and while reading otherwise. The artifact's bytes are
//! also copied aside as they arrive, so a signature that fails can be told apart afterwards
//! (altered archive or foreign key); self_update deletes its own copy on failure.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use self_update::http::HeaderValue;
use self_update::http_client::{HeaderMap, HttpClient, HttpResponse, UreqClient, header};

/// A download that went over the size limit: what was allowed and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversize {
    pub url: String,
    pub limit: u64,
    /// The announced `Content-Length`, or the count read when the limit was passed.
    pub seen: u64,
}

/// A ureq agent that speaks TLS with rustls on the ring provider: set explicitly, so neither
/// rustls's process-wide default nor the set of compiled-in providers matters.
pub(crate) fn agent(timeout: Duration, roots: Option<&Roots>) -> ureq::Agent {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let roots = match roots {
        Some(roots) => RootCerts::Specific(Arc::clone(&roots.0)),
        None => RootCerts::WebPki,
    };
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_connect(Some(Duration::from_secs(15).min(timeout)))
        .timeout_global(Some(timeout))
        // self_update maps statuses itself (NotFound, HttpStatus, ...).
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .build();
    ureq::Agent::new_with_config(config)
}

/// Trust anchors for an https feed (`update_ca_file`), instead of Mozilla's roots.
#[derive(Clone)]
pub struct Roots(Arc<Vec<ureq::tls::Certificate<'static>>>);

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Roots({} certificates)", self.0.len())
    }
}

impl Roots {
    /// Every certificate of the PEM file at `path`; an error says what was wrong.
    pub fn load(path: &std::path::Path) -> Result<Roots, String> {
        let pem = crate::files::read(path, crate::files::PEM)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(ureq::tls::PemItem::Certificate(cert)) => Some(Ok(cert)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ));
        }
        Ok(Roots(Arc::new(certs)))
    }
}

/// The [`HttpClient`] handed to self_update: ureq with a body size limit and an artifact copy.
pub(crate) struct LimitedClient {
    inner: UreqClient,
    max_bytes: u64,
    /// The artifact's URL and where its bytes are copied.
    artifact: Option<(String, PathBuf)>,
    oversize: Arc<Mutex<Option<Oversize>>>,
}

impl LimitedClient {
    pub(crate) fn new(
        agent: ureq::Agent,
        max_bytes: u64,
        artifact: Option<(String, PathBuf)>,
    ) -> Self {
        LimitedClient {
            inner: UreqClient::from(agent),
            max_bytes,
            artifact,
            oversize: Arc::new(Mutex::new(None)),
        }
    }

    /// The oversize download that failed this update, if that is what happened.
    pub(crate) fn oversize(&self) -> Option<Oversize> {
        self.oversize.lock().ok().and_then(|o| o.clone())
    }
}

fn too_large(url: &str, limit: u64) -> std::io::Error {
    std::io::Error::other(format!("{url}: larger than the {limit}-byte limit"))
}

impl HttpClient for LimitedClient {
    fn get(
        &self,
        url: &str,
        headers: &HeaderMap,
        timeout: Option<Duration>,
    ) -> self_update::Result<Box<dyn HttpResponse>> {
        let response = self.inner.get(url, headers, timeout)?;
        let announced = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(length) = announced
            && length > self.max_bytes
        {
            if let Ok(mut slot) = self.oversize.lock() {
                *slot = Some(Oversize {
                    url: url.to_owned(),
                    limit: self.max_bytes,
                    seen: length,
                });
            }
            return Err(self_update::Error::Io(too_large(url, self.max_bytes)));
        }
        let copy = match &self.artifact {
            Some((artifact_url, path)) if artifact_url == url => Some(File::create(path)?),
            _ => None,
        };
        Ok(Box::new(LimitedResponse {
            inner: response,
            url: url.to_owned(),
            max_bytes: self.max_bytes,
            oversize: Arc::clone(&self.oversize),
            copy,
        }))
    }
}

struct LimitedResponse {
    inner: Box<dyn HttpResponse>,
    url: String,
    max_bytes: u64,
    oversize: Arc<Mutex<Option<Oversize>>>,
    copy: Option<File>,
}

impl HttpResponse for LimitedResponse {
    fn headers(&self) -> &HeaderMap<HeaderValue> {
        self.inner.headers()
    }

    fn body(self: Box<Self>) -> Box<dyn Read> {
        let this = *self;
        Box::new(LimitedReader {
            inner: this.inner.body(),
            url: this.url,
            max_bytes: this.max_bytes,
            read: 0,
            oversize: this.oversize,
            copy: this.copy,
        })
    }
}

struct LimitedReader {
    inner: Box<dyn Read>,
    url: String,
    max_bytes: u64,
    read: u64,
    oversize: Arc<Mutex<Option<Oversize>>>,
    copy: Option<File>,
}

impl Read for LimitedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.max_bytes {
            if let Ok(mut slot) = self.oversize.lock() {
                *slot = Some(Oversize {
                    url: self.url.clone(),
                    limit: self.max_bytes,
                    seen: self.read,
                });
            }
            return Err(too_large(&self.url, self.max_bytes));
        }
        if let Some(copy) = &mut self.copy {
            copy.write_all(&buf[..n])?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Vec<u8>, HeaderMap<HeaderValue>);

    impl HttpResponse for Fixed {
        fn headers(&self) -> &HeaderMap<HeaderValue> {
            &self.1
        }
        fn body(self: Box<Self>) -> Box<dyn Read> {
            Box::new(std::io::Cursor::new(self.0))
        }
    }

    fn reader(body: Vec<u8>, max_bytes: u64) -> (Box<dyn Read>, Arc<Mutex<Option<Oversize>>>) {
        let oversize = Arc::new(Mutex::new(None));
        let response = Box::new(LimitedResponse {
            inner: Box::new(Fixed(body, HeaderMap::new())),
            url: "http://127.0.0.1/a".into(),
            max_bytes,
            oversize: Arc::clone(&oversize),
            copy: None,
        });
        (response.body(), oversize)
    }

    #[test]
    fn a_body_at_the_limit_passes_and_one_byte_more_fails() {
        let (mut body, oversize) = reader(vec![7; 100], 100);
        let mut out = Vec::new();
        body.read_to_end(&mut out).expect("at the limit");
        assert_eq!(out.len(), 100);
        assert_eq!(*oversize.lock().expect("lock"), None);

        let (mut body, oversize) = reader(vec![7; 101], 100);
        let err = body.read_to_end(&mut Vec::new()).expect_err("over");
        assert!(err.to_string().contains("100-byte limit"), "{err}");
        assert_eq!(
            oversize.lock().expect("lock").as_ref().map(|o| o.limit),
            Some(100)
        );
    }

    /// rustls is built with ring only; the agent names ring itself, so building a TLS connection
    /// never depends on (or panics over) the process-wide default provider.
    #[test]
    fn https_through_the_agent_fails_cleanly_without_a_process_default_provider() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = std::thread::spawn(move || {
            // Accept and close: the handshake fails on the client side.
            let _ = listener.accept();
        });
        let result = agent(Duration::from_secs(5), None)
            .get(&format!("https://127.0.0.1:{port}/x"))
            .call();
        assert!(result.is_err());
        let _ = server.join();
    }
}
