//! A tiny local HTTP/1.1 server for the agent's update feed: serves the files of a directory (the
//! feed `roomready-release release` writes) to `GET` requests on loopback, counts requests per path,
//! and injects faults for tests (a response cut short, an error status, a corrupt artifact: one
//! request's with [`Fault::Corrupt`], or every artifact's while
//! [`UpdateServer::corrupt_artifacts`] is on). It also answers the
//! GitHub release API for the same feed ([`crate::github_api`]), optionally only to requests
//! carrying a token, as a private repository does.
//!
//! One request per connection (`Connection: close`), `Content-Length` always set, no directory
//! listings, no range requests. Paths with a `..` segment, a backslash or a NUL are refused with
//! 400; anything but `GET` and `HEAD` gets 405. Request paths are not percent-decoded: a feed's
//! file names are plain.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
#[cfg(test)]
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// A client that sends no complete request head within this is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A fault for the next request to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Send the headers with the full `Content-Length`, then only this many body bytes, then
    /// close the connection. On a missing file it has no effect (404), but is used up.
    CutAfter(usize),
    /// Answer with this status and a short text body instead of the file.
    Status(u16),
    /// Serve the file whole but with every bit of its last byte flipped: same length, so the
    /// download completes and only the digest (or signature) check notices. On a missing file it
    /// has no effect (404), but is used up.
    Corrupt,
}

/// Whether a request path names a release artifact (`.tar.gz` or `.zip`).
fn is_artifact(path: &str) -> bool {
    path.ends_with(".tar.gz") || path.ends_with(".zip")
}

/// Flips every bit of the last byte of `body` (nothing to flip in an empty one). The last byte of
/// a `.tar.gz` is in the gzip trailer (the uncompressed size), inside what the signature and the
/// digest cover; the length stays the same.
fn corrupt(body: &mut [u8]) {
    if let Some(last) = body.last_mut() {
        *last ^= 0xFF;
    }
}

#[derive(Default)]
struct State {
    counts: HashMap<String, u64>,
    faults: HashMap<String, VecDeque<Fault>>,
    /// `Some`: GitHub API requests need `Authorization: token T` (or `Bearer T`).
    github_token: Option<String>,
    /// The `Authorization` header of the last request per path (`None`: it had none).
    authorizations: HashMap<String, Option<String>>,
    /// Every artifact served is corrupted ([`UpdateServer::corrupt_artifacts`]).
    corrupt_artifacts: bool,
    /// Responses served corrupted so far (either way).
    corrupted: u64,
}

struct Shared {
    root: PathBuf,
    /// `http://127.0.0.1:PORT`, for the URLs the GitHub API hands out.
    base: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain counters behind; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running server. Dropping it stops accepting (like [`UpdateServer::stop`], without waiting).
pub struct UpdateServer {
    /// `http` or `https`.
    scheme: &'static str,
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for UpdateServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateServer")
            .field("addr", &self.addr)
            .field("root", &self.shared.root)
            .finish_non_exhaustive()
    }
}

/// `/a/b` form of a path given to [`UpdateServer::fail_next`] or [`UpdateServer::requests`].
fn normalize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

impl UpdateServer {
    /// Serves `dir` on `127.0.0.1` and a free port.
    pub async fn start(dir: impl Into<PathBuf>) -> io::Result<UpdateServer> {
        Self::start_on(dir, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Serves `dir` on `addr`.
    pub async fn start_on(dir: impl Into<PathBuf>, addr: SocketAddr) -> io::Result<UpdateServer> {
        Self::start_with(dir.into(), addr, None).await
    }

    /// Serves `dir` over HTTPS on `127.0.0.1` and a free port, with the certificate chain and
    /// key (PEM) given: a feed as it runs in production.
    pub async fn start_tls(
        dir: impl Into<PathBuf>,
        cert_chain_pem: &str,
        key_pem: &str,
    ) -> io::Result<UpdateServer> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        let chain = CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("certificate chain", &e))?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| invalid("private key", &e))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("certificate", &e))?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::start_with(
            dir.into(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            Some(acceptor),
        )
        .await
    }

    async fn start_with(
        root: PathBuf,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> io::Result<UpdateServer> {
        if !root.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: not a directory", root.display()),
            ));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            root,
            base: format!("{scheme}://{addr}"),
            state: Mutex::new(State::default()),
        });
        let (shutdown, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), tls, stopped));
        Ok(UpdateServer {
            scheme,
            addr,
            shared,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("{}://{}/", self.scheme, self.addr)
    }

    /// The GitHub API base for `update_github_api_url`: `http://127.0.0.1:PORT/api/v3`.
    pub fn github_api_url(&self) -> String {
        format!("{}{}", self.shared.base, crate::github_api::API_PREFIX)
    }

    /// From now on, GitHub API requests without `Authorization: token TOKEN` (or `Bearer`) get
    /// 404, as a private repository answers a stranger; `None` opens the API again.
    pub fn require_github_token(&self, token: Option<&str>) {
        self.shared.lock().github_token = token.map(str::to_owned);
    }

    /// The `Authorization` header of the last request for `path` (`None`: it had none, or
    /// there was no request).
    pub fn authorization(&self, path: &str) -> Option<String> {
        self.shared
            .lock()
            .authorizations
            .get(&normalize(path))
            .cloned()
            .flatten()
    }

    /// The directory served.
    pub fn root(&self) -> &Path {
        &self.shared.root
    }

    /// Requests so far for `path` (`/stable/manifest.json` or `stable/manifest.json`), whatever
    /// their outcome.
    pub fn requests(&self, path: &str) -> u64 {
        self.shared
            .lock()
            .counts
            .get(&normalize(path))
            .copied()
            .unwrap_or(0)
    }

    /// Requests so far, per path.
    pub fn request_counts(&self) -> HashMap<String, u64> {
        self.shared.lock().counts.clone()
    }

    /// Makes the next request for `path` fail with `fault`. Faults for one path queue up: each
    /// request uses the oldest one.
    pub fn fail_next(&self, path: &str, fault: Fault) {
        self.shared
            .lock()
            .faults
            .entry(normalize(path))
            .or_default()
            .push_back(fault);
    }

    /// While `on`, every artifact served (a `GET` for a path ending in `.tar.gz` or `.zip`,
    /// directly or through the GitHub API's redirect) has its last byte flipped, as a broken
    /// mirror or a tampering proxy would serve it: the agent refuses it (`checksum_mismatch`, the
    /// digest being checked before the signature) and installs nothing. Manifests and the API's
    /// listings are served intact. A queued [`Fault`] for the path takes precedence.
    pub fn corrupt_artifacts(&self, on: bool) {
        self.shared.lock().corrupt_artifacts = on;
    }

    /// Responses served corrupted so far ([`UpdateServer::corrupt_artifacts`] and
    /// [`Fault::Corrupt`]).
    pub fn corrupted(&self) -> u64 {
        self.shared.lock().corrupted
    }

    /// Stops accepting, ends the connections in progress and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for UpdateServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = Arc::clone(&shared);
                    let tls = tls.clone();
                    connections.spawn(async move {
                        let served = match tls {
                            None => serve(stream, &shared).await,
                            Some(acceptor) => match acceptor.accept(stream).await {
                                Ok(stream) => serve(stream, &shared).await,
                                Err(e) => Err(e),
                            },
                        };
                        if let Err(e) = served {
                            tracing::debug!("update server: connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("update server: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// What the request asked for, or the error status to answer with.
enum Request {
    Get {
        path: String,
        head_only: bool,
        /// The `Accept` header.
        accept: Option<String>,
        /// The `Authorization` header.
        authorization: Option<String>,
    },
    Bad(u16, String),
}

async fn read_request<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Option<Request>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Ok(Some(Request::Bad(431, String::new())));
        }
        let n = match tokio::time::timeout(READ_TIMEOUT, stream.read(&mut chunk)).await {
            Ok(read) => read?,
            Err(_) => return Ok(None),
        };
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let line = head.lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Ok(Some(Request::Bad(400, String::new())));
    };
    if !version.starts_with("HTTP/1.") {
        return Ok(Some(Request::Bad(505, String::new())));
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_string();
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Ok(Some(Request::Bad(405, path))),
    };
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    Ok(Some(Request::Get {
        path,
        head_only,
        accept: header("accept"),
        authorization: header("authorization"),
    }))
}

/// The file under `root` for a request path, or `Err(status)`.
fn resolve(root: &Path, path: &str) -> Result<PathBuf, u16> {
    if !path.starts_with('/') || path.contains(['\\', '\0']) {
        return Err(400);
    }
    let mut file = root.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == ".." || segment == "." {
            return Err(400);
        }
        file.push(segment);
    }
    Ok(file)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => "application/json",
        Some("gz") => "application/gzip",
        Some("zip") => "application/zip",
        Some("txt" | "b64") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn respond(
    stream: &mut (impl AsyncWrite + Unpin),
    status: u16,
    content_type: &str,
    content_length: usize,
    body: &[u8],
) -> io::Result<()> {
    respond_with(stream, status, "", content_type, content_length, body).await
}

/// [`respond`] with `extra` header lines (each ending in `\r\n`).
async fn respond_with(
    stream: &mut (impl AsyncWrite + Unpin),
    status: u16,
    extra: &str,
    content_type: &str,
    content_length: usize,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\n{extra}Content-Type: {content_type}\r\nContent-Length: \
         {content_length}\r\nConnection: close\r\n\r\n",
        reason(status)
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

async fn respond_text(
    stream: &mut (impl AsyncWrite + Unpin),
    status: u16,
    head_only: bool,
) -> io::Result<()> {
    let body = format!("{status} {}\n", reason(status));
    let sent: &[u8] = if head_only { b"" } else { body.as_bytes() };
    respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        body.len(),
        sent,
    )
    .await
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    shared: &Shared,
) -> io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let (path, head_only, accept, authorization) = match request {
        Request::Get {
            path,
            head_only,
            accept,
            authorization,
        } => (path, head_only, accept, authorization),
        Request::Bad(status, path) => {
            if !path.is_empty() {
                *shared.lock().counts.entry(path).or_default() += 1;
            }
            return respond_text(&mut stream, status, false).await;
        }
    };
    let fault = {
        let mut state = shared.lock();
        *state.counts.entry(path.clone()).or_default() += 1;
        state
            .authorizations
            .insert(path.clone(), authorization.clone());
        let fault = state.faults.get_mut(&path).and_then(VecDeque::pop_front);
        if state.faults.get(&path).is_some_and(VecDeque::is_empty) {
            state.faults.remove(&path);
        }
        fault.or((state.corrupt_artifacts && is_artifact(&path)).then_some(Fault::Corrupt))
    };
    if let Some(Fault::Status(status)) = fault {
        return respond_text(&mut stream, status, head_only).await;
    }
    if let Some(api) = crate::github_api::route(&path) {
        return serve_github(&mut stream, shared, api, head_only, accept, authorization).await;
    }
    let file = match resolve(&shared.root, &path) {
        Ok(file) => file,
        Err(status) => return respond_text(&mut stream, status, head_only).await,
    };
    let read = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            if std::fs::metadata(&file)?.is_file() {
                std::fs::read(&file).map(Some)
            } else {
                Ok(None)
            }
        })
        .await
        .map_err(io::Error::other)?
    };
    let mut body = match read {
        Ok(Some(body)) => body,
        Ok(None) => return respond_text(&mut stream, 404, head_only).await,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return respond_text(&mut stream, 404, head_only).await;
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return respond_text(&mut stream, 403, head_only).await;
        }
        Err(e) => {
            tracing::warn!("update server: {}: {e}", file.display());
            return respond_text(&mut stream, 500, head_only).await;
        }
    };
    if fault == Some(Fault::Corrupt) && !head_only {
        corrupt(&mut body);
        shared.lock().corrupted += 1;
    }
    let sent: &[u8] = match fault {
        _ if head_only => b"",
        Some(Fault::CutAfter(n)) => &body[..n.min(body.len())],
        _ => &body,
    };
    respond(&mut stream, 200, content_type(&file), body.len(), sent).await
}

/// A GitHub API request ([`crate::github_api`]).
async fn serve_github(
    stream: &mut (impl AsyncWrite + Unpin),
    shared: &Shared,
    api: crate::github_api::ApiRequest,
    head_only: bool,
    accept: Option<String>,
    authorization: Option<String>,
) -> io::Result<()> {
    use crate::github_api::ApiRequest;
    let allowed = {
        match &shared.lock().github_token {
            None => true,
            Some(token) => authorization.as_deref().is_some_and(|given| {
                given == format!("token {token}") || given == format!("Bearer {token}")
            }),
        }
    };
    if !allowed {
        return respond_text(stream, 404, head_only).await;
    }
    match api {
        ApiRequest::Unknown => respond_text(stream, 404, head_only).await,
        ApiRequest::Releases { owner, repo } => {
            let root = shared.root.clone();
            let base = shared.base.clone();
            let listed = tokio::task::spawn_blocking(move || {
                crate::github_api::releases(&root, &base, &owner, &repo)
            })
            .await
            .map_err(io::Error::other)?;
            match listed {
                Ok(list) => {
                    let body = list.to_string();
                    let sent: &[u8] = if head_only { b"" } else { body.as_bytes() };
                    respond(stream, 200, "application/json", body.len(), sent).await
                }
                Err(e) => {
                    tracing::warn!("update server: GitHub release list: {e}");
                    respond_text(stream, 500, head_only).await
                }
            }
        }
        ApiRequest::Asset { path, .. } => {
            if accept.is_some_and(|a| a.contains("application/octet-stream")) {
                // GitHub answers with a redirect to its storage host.
                let location = format!("Location: {}{path}\r\n", shared.base);
                respond_with(stream, 302, &location, "text/plain; charset=utf-8", 0, b"").await
            } else {
                let body =
                    serde_json::json!({ "browser_download_url": format!("{}{path}", shared.base) })
                        .to_string();
                let sent: &[u8] = if head_only { b"" } else { body.as_bytes() };
                respond(stream, 200, "application/json", body.len(), sent).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One raw request; returns (status, headers lower-cased, body as received until close).
    async fn raw(server: &UpdateServer, request: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8(response[..end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(':').unwrap();
                (k.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        (status, headers, response[end + 4..].to_vec())
    }

    async fn get(server: &UpdateServer, path: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        raw(server, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn feed() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stable")).unwrap();
        std::fs::write(dir.path().join("stable/manifest.json"), b"{\"schema\":1}").unwrap();
        std::fs::write(dir.path().join("stable/a.tar.gz"), vec![7u8; 10_000]).unwrap();
        std::fs::write(dir.path().join("secret"), b"outside").unwrap();
        dir
    }

    #[tokio::test]
    async fn serves_files_with_length_and_404s_the_rest() {
        let dir = feed();
        let server = UpdateServer::start(dir.path()).await.unwrap();
        assert!(server.url().starts_with("http://127.0.0.1:"));
        assert!(server.url().ends_with('/'));

        let (status, headers, body) = get(&server, "/stable/manifest.json").await;
        assert_eq!(status, 200);
        assert_eq!(body, b"{\"schema\":1}");
        assert_eq!(header(&headers, "content-length"), Some("12"));
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_eq!(header(&headers, "connection"), Some("close"));

        let (status, headers, body) = get(&server, "/stable/a.tar.gz?x=1").await;
        assert_eq!(status, 200);
        assert_eq!(body.len(), 10_000);
        assert_eq!(header(&headers, "content-length"), Some("10000"));

        for missing in ["/stable/nope.json", "/stable/", "/stable", "/"] {
            assert_eq!(get(&server, missing).await.0, 404, "{missing}");
        }
        let (status, headers, body) = raw(&server, "HEAD /stable/a.tar.gz HTTP/1.1\r\n\r\n").await;
        assert_eq!((status, body.len()), (200, 0));
        assert_eq!(header(&headers, "content-length"), Some("10000"));
        assert_eq!(
            raw(&server, "POST /stable/a.tar.gz HTTP/1.1\r\n\r\n")
                .await
                .0,
            405
        );
        assert_eq!(raw(&server, "nonsense\r\n\r\n").await.0, 400);

        assert_eq!(server.requests("/stable/manifest.json"), 1);
        assert_eq!(server.requests("stable/a.tar.gz"), 3);
        assert_eq!(server.requests("/stable/nope.json"), 1);
        server.stop().await;
    }

    #[tokio::test]
    async fn refuses_paths_that_climb_out() {
        let dir = feed();
        let server = UpdateServer::start(dir.path().join("stable"))
            .await
            .unwrap();
        for path in [
            "/../secret",
            "/stable/../../secret",
            "/..",
            "/./manifest.json",
            "/..\\secret",
            "secret",
        ] {
            let (status, _, body) = get(&server, path).await;
            assert_eq!(status, 400, "{path}");
            assert!(!body.starts_with(b"outside"), "{path}");
        }
        assert_eq!(get(&server, "/manifest.json").await.0, 200);
        server.stop().await;
    }

    #[tokio::test]
    async fn faults_cut_a_body_short_and_answer_a_status_once_each() {
        let dir = feed();
        let server = UpdateServer::start(dir.path()).await.unwrap();
        server.fail_next("/stable/a.tar.gz", Fault::CutAfter(100));
        server.fail_next("stable/a.tar.gz", Fault::Status(500));

        let (status, headers, body) = get(&server, "/stable/a.tar.gz").await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-length"), Some("10000"));
        assert_eq!(body.len(), 100);

        let (status, _, _) = get(&server, "/stable/a.tar.gz").await;
        assert_eq!(status, 500);

        let (status, _, body) = get(&server, "/stable/a.tar.gz").await;
        assert_eq!((status, body.len()), (200, 10_000));

        // A status fault also applies to a file that does not exist.
        server.fail_next("/stable/new.json", Fault::Status(503));
        assert_eq!(get(&server, "/stable/new.json").await.0, 503);
        assert_eq!(get(&server, "/stable/new.json").await.0, 404);

        // Cut at zero bytes: headers only.
        server.fail_next("/stable/manifest.json", Fault::CutAfter(0));
        let (status, headers, body) = get(&server, "/stable/manifest.json").await;
        assert_eq!((status, body.len()), (200, 0));
        assert_eq!(header(&headers, "content-length"), Some("12"));

        assert_eq!(server.requests("/stable/a.tar.gz"), 3);
        assert_eq!(server.request_counts().len(), 3);
        server.stop().await;
    }

    #[tokio::test]
    async fn corrupt_artifacts_flips_the_last_byte_of_artifacts_only_while_on() {
        let dir = feed();
        std::fs::write(dir.path().join("stable/b.zip"), b"PK-zip").unwrap();
        let server = UpdateServer::start(dir.path()).await.unwrap();
        let intact = vec![7u8; 10_000];
        let mut flipped = intact.clone();
        flipped[9_999] = 7 ^ 0xFF;

        server.corrupt_artifacts(true);
        let (status, headers, body) = get(&server, "/stable/a.tar.gz").await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-length"), Some("10000"));
        assert_eq!(body, flipped, "same length, last byte flipped");
        assert_eq!(
            get(&server, "/stable/a.tar.gz").await.2,
            flipped,
            "every request"
        );
        assert_eq!(get(&server, "/stable/b.zip").await.2, b"PK-zi\x8f");
        assert_eq!(
            get(&server, "/stable/manifest.json").await.2,
            b"{\"schema\":1}",
            "not an artifact"
        );
        let (status, _, body) = raw(&server, "HEAD /stable/a.tar.gz HTTP/1.1\r\n\r\n").await;
        assert_eq!((status, body.len()), (200, 0));
        assert_eq!(get(&server, "/stable/missing.tar.gz").await.0, 404);
        // A queued fault for the path comes first.
        server.fail_next("/stable/a.tar.gz", Fault::Status(503));
        assert_eq!(get(&server, "/stable/a.tar.gz").await.0, 503);
        assert_eq!(server.corrupted(), 3);

        server.corrupt_artifacts(false);
        assert_eq!(get(&server, "/stable/a.tar.gz").await.2, intact);

        // One request's worth, for any path.
        server.fail_next("/stable/manifest.json", Fault::Corrupt);
        assert_eq!(
            get(&server, "/stable/manifest.json").await.2,
            b"{\"schema\":1\x82"
        );
        assert_eq!(
            get(&server, "/stable/manifest.json").await.2,
            b"{\"schema\":1}"
        );
        assert_eq!(server.corrupted(), 4);
        server.stop().await;
    }

    #[tokio::test]
    async fn stop_closes_the_port_and_start_refuses_a_missing_dir() {
        let dir = feed();
        let server = UpdateServer::start(dir.path()).await.unwrap();
        let addr = server.addr();
        // A client that connects and says nothing does not keep stop() waiting.
        let idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.stop())
            .await
            .expect("stop returns promptly");
        drop(idle);
        assert!(TcpStream::connect(addr).await.is_err());
        assert!(
            UpdateServer::start(dir.path().join("missing"))
                .await
                .is_err()
        );
    }
}
