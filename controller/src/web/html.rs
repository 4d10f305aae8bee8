//! The page frame and the small pieces every page uses: the layout, verdict and presence badges,
//! times, safe links, and the embedded script and style sheet. Everything is written with
//! [`maud`], which escapes every value it is given: a device's text can never become markup.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use roomready_protocol::{Presence, Severity, Timestamp, Verdict};

use super::auth::Caller;

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

pub async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

/// The frame of every page; `caller` shows who is logged in (and the CSRF token the script and
/// forms use).
pub fn page(
    title: &str,
    caller: Option<&Caller>,
    live: Option<&str>,
    body: Markup,
) -> Html<String> {
    let csrf = caller.and_then(|c| c.csrf.as_deref()).unwrap_or("");
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="csrf-token" content=(csrf);
                    @if let Some(live) = live {
                        meta name="live" content=(live);
                    }
                    title { (title) " · roomready" }
                    link rel="stylesheet" href="/assets/app.css";
                    script src="/assets/app.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" { "roomready" }
                        nav {
                            a href="/" { "Fleet" }
                            a href="/findings" { "Findings" }
                            a href="/ingest" { "Ingest" }
                            a href="/rollouts" { "Rollouts" }
                            a href="/alerts" { "Alerts" }
                            a href="/export/fleet.csv" { "Export CSV" }
                        }
                        @if let Some(caller) = caller {
                            div.who {
                                span #who { (caller.name) " (" (caller.role) ")" }
                                @if caller.name != super::auth::LOCAL_USER {
                                    form method="post" action="/logout" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" { "Log out" }
                                    }
                                }
                            }
                        }
                        span #live-state title="live updates" {}
                    }
                    main { (body) }
                }
            }
        }
        .into_string(),
    )
}

/// A page for an error.
pub fn error_page(status: StatusCode, message: &str) -> Html<String> {
    page(
        status.canonical_reason().unwrap_or("Error"),
        None,
        None,
        html! {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p.error { (message) }
            p { a href="/" { "Back to the fleet" } }
        },
    )
}

pub fn verdict_badge(verdict: Option<Verdict>) -> Markup {
    match verdict {
        Some(v) => {
            html! { span class={ "badge v-" (v.as_str()) } data-verdict=(v.as_str()) { (v.as_str()) } }
        }
        None => html! { span.badge.v-none data-verdict="" { "no state" } },
    }
}

pub fn presence_badge(presence: Option<Presence>) -> Markup {
    match presence {
        Some(p) => html! { span class={ "badge p-" (p.as_str()) } { (p.as_str()) } },
        None => html! { span.badge.p-none { "unknown" } },
    }
}

pub fn severity_badge(severity: Severity) -> Markup {
    html! { span class={ "badge s-" (severity.as_str()) } { (severity.as_str()) } }
}

/// A time as RFC 3339 in a `<time>` element (the script shows it as "5 min ago").
pub fn time(ts: Timestamp) -> Markup {
    html! { time datetime=(ts.to_string()) { (ts.to_rfc3339_secs()) } }
}

/// A link to `url` only when it is an `https://` or `http://` URL; anything else (a
/// `javascript:` URL from a hostile device) is shown as text.
pub fn safe_link(url: &str) -> Markup {
    let lower = url.trim_start().to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        html! { a href=(url) rel="noreferrer noopener" target="_blank" { (url) } }
    } else {
        html! { span.url { (url) } }
    }
}

/// Percent-encodes `text` for a URL query value or path segment.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_text_is_escaped_and_links_are_checked() {
        let hostile = "<script>alert(1)</script>\"'&";
        let markup = html! { td { (hostile) } }.into_string();
        assert_eq!(
            markup,
            "<td>&lt;script&gt;alert(1)&lt;/script&gt;&quot;'&amp;</td>"
        );
        assert!(
            safe_link("javascript:alert(1)")
                .into_string()
                .starts_with("<span")
        );
        assert!(
            safe_link(" JAVASCRIPT:x")
                .into_string()
                .starts_with("<span")
        );
        let link = safe_link("https://learn.microsoft.com/x?a=1&b=\"2\"").into_string();
        assert!(
            link.contains("href=\"https://learn.microsoft.com/x?a=1&amp;b=&quot;2&quot;\""),
            "{link}"
        );
        assert_eq!(url_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }
}
