//! Smoke test of the WebDriver client (`roomready_testkit::webdriver`) in headless Chromium, against
//! a tiny HTTP server in the test: the title, finding elements, a click whose JavaScript asks the
//! server and changes the page, escaped markup that must stay text, a form post, cookies (one
//! `HttpOnly` from the server) and a screenshot.
//!
//! Skips with a printed reason without chromium / chromedriver; fails then under
//! `ROOMREADY_REQUIRE_PEERS=1`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use roomready_testkit::webdriver::{Browser, Cookie, WebDriverError};
use roomready_tests::WAIT;
use serde_json::json;

/// The page under test. `window.alert` is replaced before the body is parsed, so markup that
/// runs by mistake is counted instead of opening a dialog that would block the session.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>roomready smoke</title>
<style>body { font-family: sans-serif; margin: 2em; }</style>
<script>
  window.alerts = [];
  window.alert = function (message) { window.alerts.push(String(message)); };
</script>
</head>
<body>
<h1>Room readiness</h1>
<p id="status">idle</p>
<button id="go" type="button">Check now</button>
<p id="escaped">&lt;script&gt;alert(1)&lt;/script&gt;</p>
<form method="post" action="/submit">
  <label>Room <input name="room" value=""></label>
  <button id="send" type="submit">Send</button>
</form>
<script>
  document.getElementById("go").addEventListener("click", function () {
    fetch("/clicked", { method: "POST" })
      .then(function (response) { return response.text(); })
      .then(function (text) { document.getElementById("status").textContent = text; });
  });
</script>
</body>
</html>
"#;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// An HTTP/1.1 server on a loopback port with one thread per connection (Chromium opens several
/// at once, and may open one it sends nothing on), answering [`PAGE`], `POST /clicked` and
/// `POST /submit`. Every request is reported on `requests`. Stops on drop.
struct PageServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    requests: mpsc::Receiver<Request>,
}

impl PageServer {
    fn start() -> PageServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let (report, requests) = mpsc::channel();
        let clicks = Arc::new(AtomicUsize::new(0));
        let accept = {
            let stop = stop.clone();
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let report = report.clone();
                    let clicks = clicks.clone();
                    thread::spawn(move || serve(stream, &report, &clicks));
                }
            })
        };
        PageServer {
            addr,
            stop,
            accept: Some(accept),
            requests,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request for `method` `path` (others are passed over), within [`WAIT`].
    fn next_request(&self, method: &str, path: &str) -> Request {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.requests.recv_timeout(left) {
                Ok(r) if r.method == method && r.path == path => return r,
                Ok(_) => {}
                Err(e) => panic!("no {method} {path} within {WAIT:?}: {e}"),
            }
        }
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Answers one request and closes the connection. Socket timeouts bound a connection the
/// browser opened and never used.
fn serve(stream: TcpStream, report: &mpsc::Sender<Request>, clicks: &AtomicUsize) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
        return;
    };
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; content_length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method: method.to_owned(),
        path: path.to_owned(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (status, content_type, extra, text) = match (method, path) {
        ("GET", "/") => (
            "200 OK",
            "text/html; charset=utf-8",
            "Set-Cookie: smoke_session=s3cr3t; Path=/; HttpOnly; SameSite=Strict\r\n",
            PAGE.to_owned(),
        ),
        ("POST", "/clicked") => {
            let n = clicks.fetch_add(1, Ordering::SeqCst) + 1;
            (
                "200 OK",
                "text/plain; charset=utf-8",
                "",
                format!("clicked {n}"),
            )
        }
        ("POST", "/submit") => {
            let room = form_value(&request.body, "room").unwrap_or_default();
            let page = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>submitted</title>\
                 </head><body><p id=\"received\">{}</p></body></html>",
                escape_html(&room)
            );
            ("200 OK", "text/html; charset=utf-8", "", page)
        }
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "",
            "not found".to_owned(),
        ),
    };
    let _ = report.send(request);
    let _ = write!(
        writer,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = writer.flush();
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &str, name: &str) -> Option<String> {
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| url_decode(value))
    })
}

fn url_decode(text: &str) -> String {
    let mut bytes = Vec::with_capacity(text.len());
    let mut input = text.bytes();
    while let Some(b) = input.next() {
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                let hex: Vec<u8> = input.by_ref().take(2).collect();
                match std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(byte) => bytes.push(byte),
                    None => {
                        bytes.push(b'%');
                        bytes.extend(hex);
                    }
                }
            }
            other => bytes.push(other),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn headless_chromium_reads_clicks_posts_and_keeps_escaped_markup_as_text() {
    let Some(browser) = Browser::for_test("browser smoke test") else {
        return;
    };
    eprintln!(
        "Chromium {} with chromedriver {}",
        browser.browser_version(),
        browser.driver_version()
    );
    let server = PageServer::start();

    browser.goto(&server.url("/")).expect("load the page");
    assert_eq!(browser.title().expect("title"), "roomready smoke");
    assert_eq!(browser.current_url().expect("url"), server.url("/"));
    assert_eq!(
        browser.find("h1").unwrap().text().unwrap(),
        "Room readiness"
    );
    assert_eq!(browser.find_all("button").unwrap().len(), 2);
    assert_eq!(
        browser.find("#send").unwrap().attribute("type").unwrap(),
        Some("submit".to_owned())
    );
    assert_eq!(
        browser.find("#go").unwrap().attribute("href").unwrap(),
        None
    );

    // A selector that matches nothing is a typed error naming the command.
    let missing = browser.find("#missing").expect_err("#missing is not there");
    assert!(missing.is_no_such_element(), "{missing}");
    assert!(
        missing
            .to_string()
            .starts_with("find element \"#missing\": no such element"),
        "{missing}"
    );

    // The click's handler fetches from the server, then writes the answer into #status.
    let status = browser.find("#status").unwrap();
    assert_eq!(status.text().unwrap(), "idle");
    browser.find("#go").unwrap().click().expect("click #go");
    server.next_request("POST", "/clicked");
    browser
        .wait_until("#status to read the server's answer", WAIT, |_| {
            Ok(status.text()? == "clicked 1")
        })
        .unwrap_or_else(|e| panic!("{e}; #status reads {:?}", status.text()));

    // Escaped markup is text: read back literally, no element, nothing ran, no dialog.
    let escaped = browser.find("#escaped").unwrap();
    assert_eq!(escaped.text().unwrap(), "<script>alert(1)</script>");
    assert!(escaped.find_all("*").unwrap().is_empty());
    assert_eq!(
        browser
            .execute(
                "return [window.alerts.length, document.scripts.length, arguments[0].childNodes.length];",
                &[escaped.as_arg()],
            )
            .unwrap(),
        json!([0, 2, 1])
    );
    assert_eq!(browser.alert_text().unwrap(), None);
    assert!(
        browser
            .page_source()
            .unwrap()
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );

    // Cookies: the server's HttpOnly one is visible to WebDriver but not to the page's script.
    browser
        .add_cookie(&Cookie::new("smoke_pref", "compact"))
        .expect("add a cookie");
    let cookies = browser.cookies().expect("cookies");
    let session = cookies
        .iter()
        .find(|c| c.name == "smoke_session")
        .unwrap_or_else(|| panic!("the server's cookie is there: {cookies:?}"));
    assert_eq!(session.value, "s3cr3t");
    assert_eq!(session.http_only, Some(true));
    assert_eq!(session.same_site.as_deref(), Some("Strict"));
    assert!(
        cookies
            .iter()
            .any(|c| c.name == "smoke_pref" && c.value == "compact")
    );
    assert_eq!(
        browser.execute("return document.cookie;", &[]).unwrap(),
        json!("smoke_pref=compact")
    );

    // Screenshot of the rendered page.
    let png = browser.screenshot_png().expect("screenshot");
    assert!(
        png.starts_with(PNG_SIGNATURE),
        "not a PNG: {:?}",
        &png[..16.min(png.len())]
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-smoke.png");
    std::fs::write(&shot, &png).expect("write the screenshot");
    eprintln!("screenshot: {} ({} bytes)", shot.display(), png.len());

    // The form posts what was typed, and the answer shows it as text.
    let room = browser.find("input[name=room]").unwrap();
    room.send_keys("Room <1> & co")
        .expect("type into the input");
    assert_eq!(room.property("value").unwrap(), json!("Room <1> & co"));
    browser
        .find("#send")
        .unwrap()
        .click()
        .expect("submit the form");
    let post = server.next_request("POST", "/submit");
    assert_eq!(post.body, "room=Room+%3C1%3E+%26+co");
    let received = browser
        .wait_for("the form's answer page", WAIT, |b| {
            Ok((b.title()? == "submitted").then_some(b.find("#received")?))
        })
        .unwrap();
    assert_eq!(received.text().unwrap(), "Room <1> & co");

    // A wait that never holds ends at its bound with a typed error.
    let started = Instant::now();
    let timeout = browser
        .wait_until(
            "something that never happens",
            Duration::from_millis(200),
            |b| b.find("#never").map(|_| true),
        )
        .expect_err("the wait times out");
    assert!(started.elapsed() < Duration::from_secs(10));
    match &timeout {
        WebDriverError::Timeout {
            description, last, ..
        } => {
            assert_eq!(description, "something that never happens");
            assert!(
                last.as_deref()
                    .is_some_and(|l| l.contains("no such element")),
                "{timeout}"
            );
        }
        other => panic!("expected a timeout, got {other}"),
    }
}
