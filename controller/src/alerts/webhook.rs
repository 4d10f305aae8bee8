//! The webhook: alerts as a body (generic JSON, or a Microsoft Teams incoming webhook's message
//! card) and the POST that sends it (TLS verified against Mozilla's roots, 15 s at most).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::Format;
use crate::store::AlertRecord;

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The body for `alerts` in `format`.
pub fn body(format: Format, alerts: &[AlertRecord]) -> Vec<u8> {
    let value = match format {
        Format::Json => json!({
            "source": "roomready-controller",
            "count": alerts.len(),
            "alerts": alerts.iter().map(|a| json!({
                "id": a.id,
                "rule": a.rule,
                "device": a.device,
                "site": a.site,
                "raised_at": a.raised_at,
                "summary": a.summary,
            })).collect::<Vec<_>>(),
        }),
        Format::Teams => {
            let title = format!("roomready: {} alert(s)", alerts.len());
            json!({
                "@type": "MessageCard",
                "@context": "https://schema.org/extensions",
                "summary": title,
                "themeColor": "D13438",
                "title": title,
                "sections": alerts.iter().map(|a| {
                    let mut facts = vec![json!({"name": "rule", "value": teams_text(&a.rule)})];
                    if let Some(device) = &a.device {
                        facts.push(json!({"name": "device", "value": teams_text(device.as_str())}));
                    }
                    if let Some(site) = &a.site {
                        facts.push(json!({"name": "site", "value": teams_text(site)}));
                    }
                    facts.push(json!({"name": "raised", "value": a.raised_at.to_rfc3339_secs()}));
                    json!({
                        "activityTitle": teams_text(&a.summary),
                        "facts": facts,
                    })
                }).collect::<Vec<_>>(),
            })
        }
    };
    serde_json::to_vec(&value).unwrap_or_default()
}

/// `text` as plain text in a Teams card, whose texts are Markdown with some HTML: every
/// character either could read as markup is escaped.
pub fn teams_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '!'
            | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// POSTs `body` (JSON) to `url`; `Err` says why it was not accepted (no answer, or a status
/// other than 2xx), never with the URL's path, which holds the webhook's secret.
pub fn post(url: &str, body: &[u8]) -> Result<(), String> {
    use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(RootCerts::WebPki)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(body)
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("no answer within {} s", TIMEOUT.as_secs()),
            ureq::Error::Io(io) => format!("cannot reach the webhook: {}", io.kind()),
            other => format!(
                "cannot reach the webhook: {}",
                redact(&other.to_string(), url)
            ),
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the webhook answered HTTP {}", status.as_u16()))
    }
}

/// `text` with `url`, and its path, taken out.
fn redact(text: &str, url: &str) -> String {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let mut out = text.replace(url, "<webhook>");
    if path.len() > 1 {
        out = out.replace(path, "/<secret>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AlertOutcome;
    use roomready_protocol::{DeviceId, Timestamp};

    fn alert(summary: &str) -> AlertRecord {
        AlertRecord {
            id: 7,
            rule: "offline".into(),
            device: Some(DeviceId::new("mtr-1").expect("id")),
            site: Some("oslo".into()),
            raised_at: Timestamp::from_unix_ms(0),
            summary: summary.into(),
            outcome: AlertOutcome::Pending,
            attempts: 0,
            finished_at: None,
            last_error: None,
        }
    }

    #[test]
    fn json_lists_every_alert() {
        let body: serde_json::Value =
            serde_json::from_slice(&body(Format::Json, &[alert("a"), alert("b")])).expect("JSON");
        assert_eq!(body["count"], 2);
        assert_eq!(body["alerts"][1]["summary"], "b");
        assert_eq!(body["alerts"][0]["device"], "mtr-1");
        assert_eq!(body["alerts"][0]["raised_at"], "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_teams_card_shows_device_text_as_text() {
        let body: serde_json::Value = serde_json::from_slice(&body(
            Format::Teams,
            &[alert("<b>x</b> [click](javascript:alert(1)) *bold*")],
        ))
        .expect("JSON");
        assert_eq!(body["@type"], "MessageCard");
        let title = body["sections"][0]["activityTitle"]
            .as_str()
            .expect("title");
        assert_eq!(
            title,
            "&lt;b&gt;x&lt;/b&gt; \\[click\\]\\(javascript:alert\\(1\\)\\) \\*bold\\*"
        );
        assert_eq!(body["sections"][0]["facts"][1]["value"], "mtr\\-1");
    }

    #[test]
    fn errors_never_carry_the_secret_path() {
        let url = "https://hooks.example/webhookb2/SECRET/IncomingWebhook/abc";
        let text = format!("error connecting to {url}");
        assert_eq!(redact(&text, url), "error connecting to <webhook>");
        assert_eq!(
            redact("GET /webhookb2/SECRET/IncomingWebhook/abc failed", url),
            "GET /<secret> failed"
        );
    }
}
