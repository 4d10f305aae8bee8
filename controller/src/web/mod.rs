//! The web side: the dashboard pages, the JSON API under `/api/v1/`, exports, `/metrics` and
//! `/healthz`, served over HTTP on loopback or HTTPS (rustls) anywhere.
//!
//! Every request passes, in order: the security headers (a strict Content-Security-Policy: no
//! inline script, nothing from elsewhere), the caller check ([`auth`]: session cookie, HTTP Basic
//! or the local operator), and for a state-changing request made with a cookie the CSRF check.
//! Pages are rendered on the server from the same store queries as the API and read without
//! JavaScript; `assets/app.js` adds live updates over Server-Sent Events, sorting links and
//! confirmations. Every text that comes from a device is escaped by the templates ([`maud`]).

mod api;
pub mod auth;
mod export;
mod html;
mod live;
mod metrics;
mod pages;
mod rollouts;
pub mod server;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tokio::sync::broadcast;

use crate::commands::Commander;
use crate::ingest::Stats;
use crate::store::{Committed, Store, StoreError};
pub use auth::{Auth, Caller};
pub use server::{Server, ServerError, TlsFiles};

/// What every handler works with.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub stats: Arc<Stats>,
    pub commander: Commander,
    pub live: broadcast::Sender<Arc<Committed>>,
    pub auth: Auth,
    /// Served over HTTPS: cookies are `Secure`.
    pub https: bool,
    pub max_body: usize,
    /// Where alerts go (the webhook's scheme and host), when they are on.
    pub alerts_to: Option<String>,
}

pub type App = Arc<AppState>;

/// The address of the client of a request (inserted by the server for every connection).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Why a request failed, as JSON (`{"error": "…"}`) for the API or a page for a browser.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    /// Answer with a page rather than JSON.
    pub page: bool,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> WebError {
        WebError {
            status,
            message: message.into(),
            page: false,
        }
    }

    pub fn not_found(what: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, what)
    }

    pub fn bad_request(what: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, what)
    }

    pub fn forbidden(what: impl Into<String>) -> WebError {
        WebError::new(StatusCode::FORBIDDEN, what)
    }

    /// The same error, answered as a page.
    pub fn page(mut self) -> WebError {
        self.page = true;
        self
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        tracing::error!("store: {e}");
        WebError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("store: {e}"))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.page {
            (self.status, html::error_page(self.status, &self.message)).into_response()
        } else {
            (
                self.status,
                axum::Json(serde_json::json!({ "error": self.message })),
            )
                .into_response()
        }
    }
}

/// Runs `f` on the blocking pool (store queries block).
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, WebError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(WebError::from),
        Err(e) => Err(WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("a worker failed: {e}"),
        )),
    }
}

/// The whole application.
pub fn router(app: App) -> Router {
    let protected = Router::new()
        .route("/", get(pages::fleet))
        .route("/devices/{id}", get(pages::device))
        .route("/devices/{id}/commands", post(pages::send_command))
        .route("/findings", get(pages::findings))
        .route("/findings/{code}", get(pages::finding))
        .route("/ingest", get(pages::ingest))
        .route("/alerts", get(pages::alerts))
        .route("/logout", post(pages::logout))
        .merge(api::routes())
        .merge(export::routes())
        .merge(rollouts::routes())
        .route("/metrics", get(metrics::metrics))
        .layer(middleware::from_fn_with_state(Arc::clone(&app), csrf))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&app),
            authenticate,
        ));
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/healthz", get(healthz))
        .route("/assets/app.js", get(html::script))
        .route("/assets/app.css", get(html::style))
        .merge(protected)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(app.max_body))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn healthz(State(app): State<App>) -> Response {
    let connected = app
        .stats
        .connected
        .load(std::sync::atomic::Ordering::Relaxed);
    let body = serde_json::json!({ "status": "ok", "broker_connected": connected });
    axum::Json(body).into_response()
}

async fn not_found(request: Request) -> WebError {
    let wants_json = request.uri().path().starts_with("/api/");
    let error = WebError::not_found(format!("no page at {}", request.uri().path()));
    if wants_json { error } else { error.page() }
}

/// Headers on every response: no framing, no sniffing, no referrer, scripts and styles only
/// from this origin, no inline script.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(
        headers,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    );
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::CACHE_CONTROL, "no-store");
    response
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Whether the path is answered with JSON or text rather than pages (no login redirect).
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/export/") || path == "/metrics"
}

/// Finds the caller: HTTP Basic, a session cookie, or (no login configured) the local operator
/// with a session made for them. Without one, pages redirect to the login and the API answers
/// 401.
async fn authenticate(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let client = client_ip(&request);
    let path = request.uri().path().to_owned();
    if let Some(basic) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    {
        let check = Arc::clone(&app);
        let outcome = tokio::task::spawn_blocking(move || check.auth.basic(client, &basic)).await;
        return match outcome {
            Ok(auth::LoginOutcome::Session { caller, .. }) => {
                request.extensions_mut().insert(caller);
                next.run(request).await
            }
            Ok(auth::LoginOutcome::Wait(wait)) => too_many(wait),
            _ => unauthorized(),
        };
    }
    let token = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::SESSION_COOKIE))
        .map(str::to_owned);
    if let Some(caller) = token.as_deref().and_then(|t| app.auth.session(t)) {
        request.extensions_mut().insert(caller);
        return next.run(request).await;
    }
    if app.auth.required() {
        if is_api(&path) {
            return unauthorized();
        }
        let target = request
            .uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.to_string());
        let location = format!("/login?next={}", html::url_encode(&target));
        return Redirect::to(&location).into_response();
    }
    match app.auth.local_session() {
        Ok((token, caller)) => {
            request.extensions_mut().insert(caller);
            let mut response = next.run(request).await;
            if let Ok(value) = HeaderValue::from_str(&auth::set_cookie(
                auth::SESSION_COOKIE,
                &token,
                None,
                app.https,
            )) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

fn unauthorized() -> Response {
    let mut response = WebError::new(
        StatusCode::UNAUTHORIZED,
        "log in, or send HTTP Basic credentials",
    )
    .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"roomready\", charset=\"UTF-8\""),
    );
    response
}

fn too_many(wait: std::time::Duration) -> Response {
    let seconds = wait.as_secs().max(1);
    let mut response = WebError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed logins: try again in {seconds} s"),
    )
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// A state-changing request made with a session cookie must carry the session's CSRF token, in
/// the `X-CSRF-Token` header or the `csrf` form field; otherwise it is refused with 403.
async fn csrf(request: Request, next: Next) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let api = is_api(request.uri().path());
    let forged = || {
        let error = WebError::forbidden(
            "the request carries no valid CSRF token (reload the page and try again)",
        );
        if api { error } else { error.page() }.into_response()
    };
    let Some(expected) = request
        .extensions()
        .get::<Caller>()
        .and_then(|c| c.csrf.clone())
    else {
        // HTTP Basic: no cookie was sent, so no other site can have made the request.
        return next.run(request).await;
    };
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(token) = header_token {
        return if auth::same_token(&token, &expected) {
            next.run(request).await
        } else {
            forged()
        };
    }
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return forged();
    }
    let (parts, body) = request.into_parts();
    // The body limit layer bounds this read.
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "the request is too large")
                .into_response();
        }
    };
    let token = form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(token) if auth::same_token(&token, &expected) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        _ => forged(),
    }
}
