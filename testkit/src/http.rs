//! A small HTTP client for tests of the controller's web side: blocking (ureq), no redirects
//! followed, every status returned (not turned into an error), cookies kept per client, and
//! optional HTTP Basic credentials or trust anchors for HTTPS.
//!
//! From async tests call it through `tokio::task::spawn_blocking` (or [`Http::run`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Header names lower-case; repeated headers (`set-cookie`) joined with `\n`.
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

/// A client with its own cookie jar.
#[derive(Clone)]
pub struct Http {
    base: String,
    agent: ureq::Agent,
    cookies: Arc<Mutex<BTreeMap<String, String>>>,
    basic: Option<String>,
}

impl Http {
    /// A client of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str) -> Http {
        Http::with_roots(base, None)
    }

    /// A client trusting only the PEM certificates `roots` for HTTPS.
    pub fn with_roots(base: &str, roots: Option<&[u8]>) -> Http {
        use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
        let mut builder = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)));
        if let Some(pem) = roots {
            let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(cert)) => Some(cert),
                    _ => None,
                })
                .collect();
            builder = builder.tls_config(
                TlsConfig::builder()
                    .provider(TlsProvider::Rustls)
                    .root_certs(RootCerts::Specific(Arc::new(certs)))
                    .unversioned_rustls_crypto_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .build(),
            );
        }
        Http {
            base: base.trim_end_matches('/').to_owned(),
            agent: builder.build().new_agent(),
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
            basic: None,
        }
    }

    /// The same server, a fresh cookie jar, with HTTP Basic credentials.
    pub fn basic(&self, user: &str, password: &str) -> Http {
        Http {
            basic: Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
            ..self.clone()
        }
    }

    /// The same server with a fresh cookie jar and no credentials.
    pub fn fresh(&self) -> Http {
        Http {
            basic: None,
            cookies: Arc::new(Mutex::new(BTreeMap::new())),
            ..self.clone()
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().ok()?.get(name).cloned()
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.cookies.lock().ok()?;
        (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    fn keep_cookies(&self, headers: &BTreeMap<String, String>) {
        let Some(set) = headers.get("set-cookie") else {
            return;
        };
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for line in set.lines() {
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = line.contains("Max-Age=0");
                if expired || value.is_empty() {
                    jar.remove(name.trim());
                } else {
                    jar.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
    }

    fn finish(
        &self,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Reply {
        let mut response = result.unwrap_or_else(|e| panic!("{what}: {e}"));
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = value.to_str().unwrap_or_default().to_owned();
            headers
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push('\n');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
        self.keep_cookies(&headers);
        Reply {
            status: response.status().as_u16(),
            headers,
            body,
        }
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Reply {
        self.try_get(path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// GET `path`, or why no answer came.
    pub fn try_get(&self, path: &str) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(cookies) = self.cookie_header() {
            request = request.header("cookie", cookies);
        }
        if let Some(basic) = &self.basic {
            request = request.header("authorization", basic);
        }
        let response = request.call()?;
        Ok(self.finish(Ok(response), &format!("GET {path}")))
    }

    /// POST `body` with `content_type` and extra `headers` to `path`.
    pub fn post(
        &self,
        path: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Reply {
        let mut request = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type);
        if let Some(cookies) = self.cookie_header() {
            request = request.header("cookie", cookies);
        }
        if let Some(basic) = &self.basic {
            request = request.header("authorization", basic);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.finish(request.send(body), &format!("POST {path}"))
    }

    /// POST a form of `fields` to `path`.
    pub fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.post(path, "application/x-www-form-urlencoded", &[], &body)
    }

    /// POST `json` to `path` with the `X-CSRF-Token` header when `csrf` is given.
    pub fn post_json(&self, path: &str, json: &serde_json::Value, csrf: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = csrf.map(|t| ("x-csrf-token", t)).into_iter().collect();
        self.post(path, "application/json", &headers, &json.to_string())
    }

    /// Runs `f` with this client on the blocking pool.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce(&Http) -> T + Send + 'static) -> T {
        let http = self.clone();
        tokio::task::spawn_blocking(move || f(&http))
            .await
            .expect("the HTTP task ran")
    }
}

/// The `content` of `<meta name="NAME" content="…">` in a page.
pub fn meta(html: &str, name: &str) -> Option<String> {
    let marker = format!("<meta name=\"{name}\" content=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

/// The `value` of the hidden input `name` in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}
