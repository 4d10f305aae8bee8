//! A minimal W3C WebDriver client for browser tests: [`Browser::start`] runs `chromedriver` on a
//! loopback port, which runs headless Chromium, and speaks the WebDriver protocol to it (JSON over
//! HTTP, <https://www.w3.org/TR/webdriver2/>) with `ureq`. One [`Browser`] is one session.
//!
//! The API is blocking: every call is one HTTP request to chromedriver, bounded by
//! [`HTTP_TIMEOUT`]. Call it from a plain `#[test]`, from a thread, or from
//! `tokio::task::spawn_blocking` in an async test, not directly on a runtime's thread: it would
//! hold that thread while the browser works, and a server under test on the same runtime could
//! starve. [`Browser`] is `Send`, so it can be moved into the blocking task and back.
//!
//! [`Browser::for_test`] applies the peers rule of [`crate::peers`]: without Chromium or
//! chromedriver the test skips with a printed reason, and fails under
//! `ROOMREADY_REQUIRE_PEERS=1`. Both are found on `PATH`, or at the paths in
//! `ROOMREADY_CHROMEDRIVER` / `ROOMREADY_CHROMIUM` when set (a path that does not exist hides
//! them, to see the skip).
//!
//! WebDriver has no push notifications: a test that waits for the page to change polls it with
//! [`Browser::wait_until`] / [`Browser::wait_for`], at a short interval under a deadline.
//!
//! Dropping the [`Browser`] deletes the session (Chromium quits), kills chromedriver and anything
//! left in its process group, and removes the temporary profile and logs.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::peers::{find_peer, missing_peer};

/// The environment variable that names the chromedriver to use instead of the one on `PATH`.
pub const CHROMEDRIVER_ENV: &str = "ROOMREADY_CHROMEDRIVER";
/// The environment variable that names the Chromium to use instead of the one on `PATH`.
pub const CHROMIUM_ENV: &str = "ROOMREADY_CHROMIUM";

/// Bound on chromedriver printing that it listens.
pub const DRIVER_START: Duration = Duration::from_secs(30);
/// Bound on one HTTP request to chromedriver. Above [`PAGE_LOAD`], so a slow page ends in
/// WebDriver's own `timeout` error, which names the command, rather than in a socket timeout.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(60);
/// The session's page load timeout ([`Browser::goto`], [`Browser::refresh`], clicks that
/// navigate).
pub const PAGE_LOAD: Duration = Duration::from_secs(30);
/// The session's timeout for [`Browser::execute`].
pub const SCRIPT: Duration = Duration::from_secs(10);
/// How often [`Browser::wait_for`] looks at the page again.
pub const POLL: Duration = Duration::from_millis(50);
/// The browser window, so screenshots and layouts are the same on every machine.
pub const WINDOW_SIZE: (u32, u32) = (1280, 800);

/// Bound on a response body read from chromedriver (screenshots are the large ones).
const BODY_LIMIT: u64 = 64 * 1024 * 1024;
/// The key of a web element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What went wrong, naming the WebDriver command where there was one.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    /// Chromium or chromedriver is not installed (or its override names no file): the reason.
    #[error("{0}")]
    Missing(String),
    #[error("creating the browser's temporary directory: {0}")]
    TempDir(#[source] std::io::Error),
    #[error("starting {program}: {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// chromedriver exited, or did not say it listens within [`DRIVER_START`] (`why` says
    /// which).
    #[error("chromedriver {why}; its output:\n{output}")]
    DriverNotReady { why: String, output: String },
    /// The request did not get an answer (connection refused, [`HTTP_TIMEOUT`], ...).
    #[error("{command}: no answer from chromedriver: {source}")]
    Http {
        command: String,
        #[source]
        source: ureq::Error,
    },
    /// WebDriver answered with an error: `error` is its code (`no such element`, `timeout`,
    /// `stale element reference`, `javascript error`, ...).
    #[error("{command}: {error}: {message}")]
    Command {
        command: String,
        error: String,
        message: String,
    },
    /// An answer that is not what the protocol says.
    #[error("{command}: unexpected answer: {detail}")]
    Protocol { command: String, detail: String },
    /// [`Browser::wait_for`] gave up; `last` is the last transient error seen, if the last look
    /// ended in one.
    #[error(
        "timed out after {waited:?} waiting for {description}{}",
        .last.as_ref().map(|l| format!(" (last: {l})")).unwrap_or_default()
    )]
    Timeout {
        description: String,
        waited: Duration,
        last: Option<String>,
    },
}

impl WebDriverError {
    /// The WebDriver error code, when WebDriver answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            WebDriverError::Command { error, .. } => Some(error),
            _ => None,
        }
    }

    /// `true` for `no such element`.
    pub fn is_no_such_element(&self) -> bool {
        self.code() == Some("no such element")
    }

    /// Errors that mean "not there yet" while the page changes: a wait looks again.
    fn is_transient(&self) -> bool {
        matches!(
            self.code(),
            Some("no such element" | "stale element reference")
        )
    }
}

/// A cookie as WebDriver reads and writes it. [`Cookie::new`] leaves the rest to the browser
/// (the current page's domain, path `/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    pub name: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_only: Option<bool>,
    /// Seconds since the Unix epoch; `None` for a session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<u64>,
    /// `Strict`, `Lax` or `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_site: Option<String>,
}

impl Cookie {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Cookie {
        Cookie {
            name: name.into(),
            value: value.into(),
            path: None,
            domain: None,
            secure: None,
            http_only: None,
            expiry: None,
            same_site: None,
        }
    }
}

/// JSON over HTTP to chromedriver.
struct Wire {
    agent: ureq::Agent,
}

enum Method {
    Get,
    Post(Value),
    Delete,
}

impl Wire {
    fn new() -> Wire {
        let agent = ureq::Agent::config_builder()
            // WebDriver errors come as 4xx/5xx with a JSON body that says what failed.
            .http_status_as_error(false)
            // chromedriver is on loopback: never through an HTTP(S)_PROXY of the environment.
            .proxy(None)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .new_agent();
        Wire { agent }
    }

    /// Sends one command and returns the `value` of its answer, or the error it names.
    fn send(&self, command: &str, method: Method, url: &str) -> Result<Value, WebDriverError> {
        let http = |source| WebDriverError::Http {
            command: command.to_owned(),
            source,
        };
        let protocol = |detail: String| WebDriverError::Protocol {
            command: command.to_owned(),
            detail,
        };
        let mut response = match method {
            Method::Get => self.agent.get(url).call(),
            Method::Delete => self.agent.delete(url).call(),
            Method::Post(body) => self
                .agent
                .post(url)
                .header("content-type", "application/json; charset=utf-8")
                .send(body.to_string()),
        }
        .map_err(http)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(http)?;
        let answer: Value = serde_json::from_str(&text).map_err(|e| {
            protocol(format!(
                "HTTP {status} with a body that is not JSON ({e}): {}",
                excerpt(&text)
            ))
        })?;
        let Value::Object(mut answer) = answer else {
            return Err(protocol(format!("HTTP {status}: {}", excerpt(&text))));
        };
        let Some(value) = answer.remove("value") else {
            return Err(protocol(format!(
                "HTTP {status} without a value: {}",
                excerpt(&text)
            )));
        };
        if status == 200 {
            return Ok(value);
        }
        match (value.get("error"), value.get("message")) {
            (Some(Value::String(error)), message) => Err(WebDriverError::Command {
                command: command.to_owned(),
                error: error.clone(),
                message: clean_message(error, message.and_then(Value::as_str).unwrap_or("")),
            }),
            _ => Err(protocol(format!(
                "HTTP {status} without an error code: {}",
                excerpt(&text)
            ))),
        }
    }
}

/// chromedriver's message without the repeated error code and the `(Session info: ...)` line.
fn clean_message(error: &str, message: &str) -> String {
    let message = message
        .strip_prefix(error)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message);
    message
        .lines()
        .filter(|line| !line.trim_start().starts_with("(Session info:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The child's exit status if it exits within `bound`. std has no wait with a timeout: this
/// polls `try_wait`, briefly.
fn exit_status(child: &mut Child, bound: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// chromedriver with its own process group, temporary directory (Chromium's profile and the
/// logs) and loopback port; killed, with whatever it started, on drop.
struct Driver {
    /// `None` once killed and reaped: its pid (and group id) may then belong to someone else.
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Driver {
    fn spawn(program: &Path) -> Result<Driver, WebDriverError> {
        let dir = tempfile::Builder::new()
            .prefix("roomready-webdriver-")
            .tempdir()
            .map_err(WebDriverError::TempDir)?;
        let stderr = File::create(dir.path().join("chromedriver.stderr"))
            .map_err(WebDriverError::TempDir)?;
        let mut command = Command::new(program);
        // Port 0: chromedriver binds a free port itself and prints it, so no other process can
        // take the port between a free_port() and its bind.
        command
            .arg("--port=0")
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            // Chromium keeps its crash database and caches under these, outside --user-data-dir:
            // in the temporary directory, nothing is left in the home directory.
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .env("XDG_CACHE_HOME", dir.path().join("cache"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // Its own process group, so drop can kill Chromium too if the session was not deleted.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|source| WebDriverError::Spawn {
            program: program.to_owned(),
            source,
        })?;
        let stdout = child.stdout.take();
        let (lines, read) = mpsc::channel();
        if let Some(stdout) = stdout {
            // Reads to the end, whether or not anyone still listens, so chromedriver never
            // blocks on a full pipe.
            thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let _ = lines.send(line);
                }
            });
        }
        let mut driver = Driver {
            child: Some(child),
            port: 0,
            dir,
        };
        let deadline = Instant::now() + DRIVER_START;
        let mut output = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match read.recv_timeout(left) {
                Ok(line) => {
                    // "ChromeDriver was started successfully on port 35963."
                    if let Some(port) = line
                        .split_once("started successfully on port ")
                        .and_then(|(_, rest)| rest.trim_end_matches('.').trim().parse().ok())
                    {
                        driver.port = port;
                        return Ok(driver);
                    }
                    output.push_str(&line);
                    output.push('\n');
                }
                Err(timeout_or_closed) => {
                    let why = match timeout_or_closed {
                        mpsc::RecvTimeoutError::Timeout => {
                            format!("did not say it listens within {DRIVER_START:?}")
                        }
                        // Its stdout closed: it exited (or is exiting).
                        mpsc::RecvTimeoutError::Disconnected => {
                            match driver
                                .child
                                .as_mut()
                                .and_then(|c| exit_status(c, Duration::from_secs(2)))
                            {
                                Some(status) => format!("exited ({status}) before it listened"),
                                None => "closed its output before it listened".to_owned(),
                            }
                        }
                    };
                    driver.kill();
                    output.push_str(&driver.log());
                    return Err(WebDriverError::DriverNotReady { why, output });
                }
            }
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its stderr and its log file.
    fn log(&self) -> String {
        ["chromedriver.stderr", "chromedriver.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on the process group of our own child (process_group(0) made its
            // pid the group id; it is not reaped yet, so the id cannot have been reused).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Before the temporary directory goes (fields drop after this).
        self.kill();
    }
}

/// One WebDriver session in headless Chromium, with its own chromedriver. See the module doc.
pub struct Browser {
    wire: Wire,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    browser_version: String,
    driver_version: String,
    driver: Driver,
}

impl Browser {
    /// Finds chromedriver and Chromium, starts chromedriver on a loopback port and opens a
    /// session in headless Chromium with a fresh profile. [`WebDriverError::Missing`] when
    /// either is not installed.
    pub fn start() -> Result<Browser, WebDriverError> {
        let chromedriver =
            find_peer(CHROMEDRIVER_ENV, &["chromedriver"]).map_err(WebDriverError::Missing)?;
        let chromium = find_peer(CHROMIUM_ENV, &["chromium"]).map_err(WebDriverError::Missing)?;
        let driver = Driver::spawn(&chromedriver)?;
        let (width, height) = WINDOW_SIZE;
        let args = [
            "--headless".to_owned(),
            // Chromium's sandbox needs user namespaces (often missing in containers) and
            // refuses to run as root without this.
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            // chromedriver talks to Chromium over a pipe, not a DevTools port on loopback that
            // any local process could connect to (chromedriver's log recommends it).
            "--remote-debugging-pipe".to_owned(),
            // /dev/shm is small in containers; Chromium then crashes on shared memory.
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!(
                "--user-data-dir={}",
                driver.dir.path().join("profile").display()
            ),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    // An unexpected alert makes every command fail with "unexpected alert
                    // open" and stays open for alert_text() to read, instead of being dismissed.
                    "unhandledPromptBehavior": "ignore",
                    "timeouts": {
                        "implicit": 0,
                        "pageLoad": PAGE_LOAD.as_millis() as u64,
                        "script": SCRIPT.as_millis() as u64,
                    },
                    "goog:chromeOptions": {
                        "binary": chromium,
                        "args": args,
                    },
                }
            }
        });
        let wire = Wire::new();
        let answer = wire
            .send(
                "new session",
                Method::Post(capabilities),
                &format!("{}/session", driver.url()),
            )
            .map_err(|e| match e {
                // "Chrome instance exited. Examine ChromeDriver verbose log": here it is.
                WebDriverError::Command {
                    command,
                    error,
                    message,
                } => WebDriverError::Command {
                    command,
                    error,
                    message: format!(
                        "{message}\nchromedriver's log (end):\n{}",
                        tail(&driver.log(), 40)
                    ),
                },
                other => other,
            })?;
        let Some(id) = answer.get("sessionId").and_then(Value::as_str) else {
            return Err(WebDriverError::Protocol {
                command: "new session".into(),
                detail: format!("no sessionId in {answer}"),
            });
        };
        let caps = &answer["capabilities"];
        let text = |v: &Value| v.as_str().unwrap_or("unknown").to_owned();
        Ok(Browser {
            wire,
            session: format!("{}/session/{id}", driver.url()),
            browser_version: text(&caps["browserVersion"]),
            driver_version: text(&caps["chrome"]["chromedriverVersion"]),
            driver,
        })
    }

    /// [`Browser::start`] for a test named `test`: `None` after printing why the test skips
    /// when Chromium or chromedriver is missing (a panic instead under `ROOMREADY_REQUIRE_PEERS=1`);
    /// a panic when they are there but do not start.
    pub fn for_test(test: &str) -> Option<Browser> {
        match Browser::start() {
            Ok(browser) => Some(browser),
            Err(WebDriverError::Missing(reason)) => {
                missing_peer(test, &reason);
                None
            }
            Err(e) => panic!("{test}: the browser did not start: {e}"),
        }
    }

    /// Chromium's version, as the session reports it.
    pub fn browser_version(&self) -> &str {
        &self.browser_version
    }

    /// chromedriver's version, as the session reports it.
    pub fn driver_version(&self) -> &str {
        &self.driver_version
    }

    /// chromedriver's stderr and log so far (every command and answer), for failure messages.
    pub fn driver_log(&self) -> String {
        self.driver.log()
    }

    fn get(&self, command: &str, path: &str) -> Result<Value, WebDriverError> {
        self.wire
            .send(command, Method::Get, &format!("{}{path}", self.session))
    }

    fn post(&self, command: &str, path: &str, body: Value) -> Result<Value, WebDriverError> {
        self.wire.send(
            command,
            Method::Post(body),
            &format!("{}{path}", self.session),
        )
    }

    fn string(command: &str, value: Value) -> Result<String, WebDriverError> {
        match value {
            Value::String(s) => Ok(s),
            other => Err(WebDriverError::Protocol {
                command: command.to_owned(),
                detail: format!("expected a string, got {other}"),
            }),
        }
    }

    /// Navigates to `url` and waits for the page to load (bounded by [`PAGE_LOAD`]).
    pub fn goto(&self, url: &str) -> Result<(), WebDriverError> {
        self.post(&format!("navigate to {url}"), "/url", json!({ "url": url }))
            .map(drop)
    }

    /// Reloads the page and waits for it to load.
    pub fn refresh(&self) -> Result<(), WebDriverError> {
        self.post("refresh", "/refresh", json!({})).map(drop)
    }

    /// Goes back in the history and waits for the page to load.
    pub fn back(&self) -> Result<(), WebDriverError> {
        self.post("back", "/back", json!({})).map(drop)
    }

    pub fn current_url(&self) -> Result<String, WebDriverError> {
        Self::string("get current url", self.get("get current url", "/url")?)
    }

    pub fn title(&self) -> Result<String, WebDriverError> {
        Self::string("get title", self.get("get title", "/title")?)
    }

    /// The current DOM serialised as HTML (not the bytes the server sent).
    pub fn page_source(&self) -> Result<String, WebDriverError> {
        Self::string("get page source", self.get("get page source", "/source")?)
    }

    /// The first element matching the CSS selector `css`, or the error `no such element`.
    pub fn find(&self, css: &str) -> Result<Element<'_>, WebDriverError> {
        let label = format!("{css:?}");
        let command = format!("find element {label}");
        let value = self.post(&command, "/element", by_css(css))?;
        Element::from_value(self, label, &command, &value)
    }

    /// Every element matching `css`, in document order (none is not an error).
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, WebDriverError> {
        let label = format!("{css:?}");
        let command = format!("find elements {label}");
        let value = self.post(&command, "/elements", by_css(css))?;
        Element::list_from_value(self, &label, &command, value)
    }

    /// Runs `script` as the body of a function with `args` (`arguments[0]`, ...; an element is
    /// passed as [`Element::as_arg`]) and returns what it returns, as JSON.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, WebDriverError> {
        self.post(
            "execute script",
            "/execute/sync",
            json!({ "script": script, "args": args }),
        )
    }

    /// Waits until `condition` holds, looking at the page every [`POLL`], for at most `timeout`.
    /// See [`Browser::wait_for`].
    pub fn wait_until(
        &self,
        description: &str,
        timeout: Duration,
        mut condition: impl FnMut(&Browser) -> Result<bool, WebDriverError>,
    ) -> Result<(), WebDriverError> {
        self.wait_for(description, timeout, |browser| {
            condition(browser).map(|holds| holds.then_some(()))
        })
    }

    /// Waits until `condition` returns `Some`, and returns that. `no such element` and `stale
    /// element reference` from the condition mean "not yet" (the page is still changing); any
    /// other error ends the wait. After `timeout`, [`WebDriverError::Timeout`] names
    /// `description`.
    pub fn wait_for<'b, T>(
        &'b self,
        description: &str,
        timeout: Duration,
        mut condition: impl FnMut(&'b Browser) -> Result<Option<T>, WebDriverError>,
    ) -> Result<T, WebDriverError> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            let last = match condition(self) {
                Ok(Some(value)) => return Ok(value),
                Ok(None) => None,
                Err(e) if e.is_transient() => Some(e.to_string()),
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(WebDriverError::Timeout {
                    description: description.to_owned(),
                    waited: now - start,
                    last,
                });
            }
            // WebDriver cannot tell us when the DOM changes: poll, briefly, until the deadline.
            thread::sleep(POLL.min(deadline - now));
        }
    }

    /// A PNG of the viewport (the window, [`WINDOW_SIZE`], less Chromium's own frame).
    pub fn screenshot_png(&self) -> Result<Vec<u8>, WebDriverError> {
        let command = "take screenshot";
        let data = Self::string(command, self.get(command, "/screenshot")?)?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| WebDriverError::Protocol {
                command: command.into(),
                detail: format!("the screenshot is not base64: {e}"),
            })
    }

    /// Sets a cookie for the current page's domain (navigate there first).
    pub fn add_cookie(&self, cookie: &Cookie) -> Result<(), WebDriverError> {
        self.post(
            &format!("add cookie {:?}", cookie.name),
            "/cookie",
            json!({ "cookie": cookie }),
        )
        .map(drop)
    }

    /// The cookies visible to the current page, `HttpOnly` ones included.
    pub fn cookies(&self) -> Result<Vec<Cookie>, WebDriverError> {
        let command = "get all cookies";
        serde_json::from_value(self.get(command, "/cookie")?).map_err(|e| {
            WebDriverError::Protocol {
                command: command.into(),
                detail: e.to_string(),
            }
        })
    }

    /// Deletes the cookies visible to the current page.
    pub fn delete_cookies(&self) -> Result<(), WebDriverError> {
        self.wire
            .send(
                "delete all cookies",
                Method::Delete,
                &format!("{}/cookie", self.session),
            )
            .map(drop)
    }

    /// Resizes the window so that the page's viewport (what [`Browser::screenshot_png`] takes)
    /// is `width` x `height` CSS pixels: sets the window's size, measures what Chromium's frame
    /// takes from it, and sets it again that much larger. Returns the viewport's size after.
    pub fn set_viewport_size(&self, width: u32, height: u32) -> Result<(u32, u32), WebDriverError> {
        let viewport = |browser: &Browser| -> Result<(i64, i64), WebDriverError> {
            let command = "execute script (viewport size)";
            let value = browser.execute("return [window.innerWidth, window.innerHeight];", &[])?;
            match (value[0].as_i64(), value[1].as_i64()) {
                (Some(w), Some(h)) => Ok((w, h)),
                _ => Err(WebDriverError::Protocol {
                    command: command.into(),
                    detail: format!("expected two integers, got {value}"),
                }),
            }
        };
        self.set_window_size(width, height)?;
        let (inner_width, inner_height) = viewport(self)?;
        let grow = |outer: u32, inner: i64| {
            let frame = i64::from(outer) - inner;
            u32::try_from(i64::from(outer) + frame.max(0)).unwrap_or(outer)
        };
        if (inner_width, inner_height) != (i64::from(width), i64::from(height)) {
            self.set_window_size(grow(width, inner_width), grow(height, inner_height))?;
        }
        let (w, h) = viewport(self)?;
        Ok((
            u32::try_from(w).unwrap_or_default(),
            u32::try_from(h).unwrap_or_default(),
        ))
    }

    /// Accepts the open alert, confirm or prompt (its OK button), as a user would; the error
    /// `no such alert` when none is open.
    pub fn accept_alert(&self) -> Result<(), WebDriverError> {
        self.post("accept alert", "/alert/accept", json!({}))
            .map(drop)
    }

    /// Dismisses the open alert, confirm or prompt (its Cancel button); the error `no such
    /// alert` when none is open.
    pub fn dismiss_alert(&self) -> Result<(), WebDriverError> {
        self.post("dismiss alert", "/alert/dismiss", json!({}))
            .map(drop)
    }

    /// Resizes the window to `width` x `height` CSS pixels. That is its outer size: the viewport
    /// is smaller by Chromium's own frame, which headless Chromium keeps too (for a viewport of
    /// a given size, [`Browser::set_viewport_size`]).
    pub fn set_window_size(&self, width: u32, height: u32) -> Result<(), WebDriverError> {
        self.post(
            &format!("set window rect {width}x{height}"),
            "/window/rect",
            json!({ "width": width, "height": height }),
        )
        .map(drop)
    }

    /// The text of the open alert, confirm or prompt; `None` when there is none.
    pub fn alert_text(&self) -> Result<Option<String>, WebDriverError> {
        let command = "get alert text";
        match self.get(command, "/alert/text") {
            Ok(value) => Self::string(command, value).map(Some),
            Err(e) if e.code() == Some("no such alert") => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Chromium quits with its session; the driver's drop then kills what is left.
        let _ = self
            .wire
            .agent
            .delete(&self.session)
            .config()
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .call();
    }
}

fn by_css(css: &str) -> Value {
    json!({ "using": "css selector", "value": css })
}

/// An element of the current page, found by [`Browser::find`] or [`Element::find`]. After the
/// page changes it may be stale (`stale element reference`): find it again.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
    /// The selector(s) it was found with, quoted, for error messages.
    css: String,
}

impl<'b> Element<'b> {
    fn from_value(
        browser: &'b Browser,
        css: String,
        command: &str,
        value: &Value,
    ) -> Result<Element<'b>, WebDriverError> {
        match value.get(ELEMENT_KEY).and_then(Value::as_str) {
            Some(id) => Ok(Element {
                browser,
                id: id.to_owned(),
                css,
            }),
            None => Err(WebDriverError::Protocol {
                command: command.to_owned(),
                detail: format!("not an element reference: {value}"),
            }),
        }
    }

    fn list_from_value(
        browser: &'b Browser,
        css: &str,
        command: &str,
        value: Value,
    ) -> Result<Vec<Element<'b>>, WebDriverError> {
        let Value::Array(items) = value else {
            return Err(WebDriverError::Protocol {
                command: command.to_owned(),
                detail: format!("expected a list of elements, got {value}"),
            });
        };
        items
            .iter()
            .map(|item| Element::from_value(browser, css.to_owned(), command, item))
            .collect()
    }

    /// The selector it was found with, quoted (`"#list"`; `"#list" >> "li"` when found inside
    /// another element).
    pub fn selector(&self) -> &str {
        &self.css
    }

    /// This element as an argument of [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    /// The first element inside this one matching `css`.
    pub fn find(&self, css: &str) -> Result<Element<'b>, WebDriverError> {
        let label = format!("{} >> {css:?}", self.css);
        let command = format!("find element {label}");
        let value = self
            .browser
            .post(&command, &self.path("/element"), by_css(css))?;
        Element::from_value(self.browser, label, &command, &value)
    }

    /// Every element inside this one matching `css`.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'b>>, WebDriverError> {
        let label = format!("{} >> {css:?}", self.css);
        let command = format!("find elements {label}");
        let value = self
            .browser
            .post(&command, &self.path("/elements"), by_css(css))?;
        Element::list_from_value(self.browser, &label, &command, value)
    }

    /// Its rendered text (`innerText`-like: what a user reads, entities decoded).
    pub fn text(&self) -> Result<String, WebDriverError> {
        let command = format!("get element text {}", self.css);
        Browser::string(&command, self.browser.get(&command, &self.path("/text"))?)
    }

    /// Clicks its centre, as a user would (it must be visible and not covered).
    pub fn click(&self) -> Result<(), WebDriverError> {
        self.browser
            .post(
                &format!("element click {}", self.css),
                &self.path("/click"),
                json!({}),
            )
            .map(drop)
    }

    /// The HTML attribute `name` as written in the document (`None` if absent). For the
    /// current value of an input, use [`Element::property`] `"value"`.
    pub fn attribute(&self, name: &str) -> Result<Option<String>, WebDriverError> {
        let command = format!("get element attribute {name:?} of {}", self.css);
        match self
            .browser
            .get(&command, &self.path(&format!("/attribute/{name}")))?
        {
            Value::Null => Ok(None),
            other => Browser::string(&command, other).map(Some),
        }
    }

    /// The DOM property `name` (`value`, `checked`, ...), as JSON (`null` if absent).
    pub fn property(&self, name: &str) -> Result<Value, WebDriverError> {
        self.browser.get(
            &format!("get element property {name:?} of {}", self.css),
            &self.path(&format!("/property/{name}")),
        )
    }

    /// Whether it is rendered visibly.
    pub fn is_displayed(&self) -> Result<bool, WebDriverError> {
        let command = format!("is element displayed {}", self.css);
        match self.browser.get(&command, &self.path("/displayed"))? {
            Value::Bool(shown) => Ok(shown),
            other => Err(WebDriverError::Protocol {
                command,
                detail: format!("expected a boolean, got {other}"),
            }),
        }
    }

    /// Types `text` into it (focusing it first), as key presses.
    pub fn send_keys(&self, text: &str) -> Result<(), WebDriverError> {
        self.browser
            .post(
                &format!("element send keys {}", self.css),
                &self.path("/value"),
                json!({ "text": text }),
            )
            .map(drop)
    }

    /// Empties an input or textarea.
    pub fn clear(&self) -> Result<(), WebDriverError> {
        self.browser
            .post(
                &format!("element clear {}", self.css),
                &self.path("/clear"),
                json!({}),
            )
            .map(drop)
    }
}

impl std::fmt::Debug for Element<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("css", &self.css)
            .field("id", &self.id)
            .finish()
    }
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("session", &self.session)
            .field("browser_version", &self.browser_version)
            .finish()
    }
}
