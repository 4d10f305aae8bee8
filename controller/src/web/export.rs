//! Exports for a change board or a spreadsheet: the fleet and its history, as CSV or JSON.
//!
//! - `/export/fleet.csv`, `/export/fleet.json`: every device with its current verdict, facts,
//!   presence and all its finding codes.
//! - `/export/history.csv`, `/export/history.json` (`?device=&kind=&since=&before=&limit=`):
//!   history entries, newest first, streamed page by page; every entry the filters match (no
//!   size limit beyond the retention), or the newest `limit` of them.
//!
//! CSV cells that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, tab or
//! carriage return) are prefixed with `'`: a device's text never runs in the admin's
//! spreadsheet.

use std::collections::HashMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roomready_protocol::DeviceId;

use super::api::HistoryParams;
use super::{App, WebError, blocking};
use crate::store::{DeviceQuery, DeviceRow, HistoryEntry, HistoryQuery, SortKey};

/// History entries read per page of the stream.
const HISTORY_PAGE: u64 = 5000;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/export/fleet.csv", get(fleet_csv))
        .route("/export/fleet.json", get(fleet_json))
        .route("/export/history.csv", get(history_csv))
        .route("/export/history.json", get(history_json))
}

/// One CSV cell: quoted when needed, defused when a spreadsheet would take it for a formula.
pub fn cell(text: &str) -> String {
    let defused = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if defused.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

fn row(cells: &[String]) -> String {
    let mut line = cells.iter().map(|c| cell(c)).collect::<Vec<_>>().join(",");
    line.push_str("\r\n");
    line
}

/// Every device, by id, with its finding codes.
fn fleet(
    store: &dyn crate::store::Store,
) -> Result<Vec<(DeviceRow, Vec<String>)>, crate::store::StoreError> {
    let mut codes: HashMap<DeviceId, Vec<String>> = HashMap::new();
    for finding in store.findings()? {
        for device in store.devices_with_finding(&finding.code, u64::MAX >> 1)? {
            codes
                .entry(device.id)
                .or_default()
                .push(finding.code.clone());
        }
    }
    let mut rows = Vec::new();
    let mut page = 1;
    loop {
        let result = store.devices(&DeviceQuery {
            sort: SortKey::Id,
            page,
            per_page: DeviceQuery::MAX_PER_PAGE,
            ..DeviceQuery::default()
        })?;
        let done = result.devices.len() < DeviceQuery::MAX_PER_PAGE as usize;
        for device in result.devices {
            let mut device_codes = codes.remove(&device.id).unwrap_or_default();
            device_codes.sort();
            rows.push((device, device_codes));
        }
        if done {
            return Ok(rows);
        }
        page += 1;
    }
}

fn download(content_type: &'static str, name: &'static str, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CONTENT_DISPOSITION,
                match name {
                    "fleet.csv" => "attachment; filename=\"roomready-fleet.csv\"",
                    "fleet.json" => "attachment; filename=\"roomready-fleet.json\"",
                    "history.csv" => "attachment; filename=\"roomready-history.csv\"",
                    _ => "attachment; filename=\"roomready-history.json\"",
                },
            ),
        ],
        body,
    )
        .into_response()
}

/// Columns are only ever added at the end, so a sheet built on the old ones keeps working.
const FLEET_COLUMNS: [&str; 17] = [
    "id",
    "kind",
    "app_version",
    "os_build",
    "agent_version",
    "verdict",
    "findings",
    "finding_codes",
    "top_finding",
    "top_finding_title",
    "presence",
    "last_seen",
    "state_ts",
    "site",
    "room",
    "ring",
    "tags",
];

async fn fleet_csv(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let devices = blocking(move || fleet(store.as_ref())).await?;
    let mut out = row(&FLEET_COLUMNS.map(str::to_owned));
    for (d, codes) in devices {
        let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
        out.push_str(&row(&[
            d.id.as_str().to_owned(),
            text(d.kind.map(|k| k.as_str())),
            text(d.app_version.as_deref()),
            text(d.os_build.as_deref()),
            text(d.agent_version.as_deref()),
            text(d.verdict.map(|v| v.as_str())),
            d.findings.to_string(),
            codes.join(" "),
            text(d.top_finding.as_ref().map(|f| f.code.as_str())),
            text(d.top_finding.as_ref().map(|f| f.title.as_str())),
            text(d.presence.map(|p| p.as_str())),
            d.last_seen.to_string(),
            d.state_ts.map(|t| t.to_string()).unwrap_or_default(),
            text(d.site.as_deref()),
            text(d.room.as_deref()),
            d.ring.map(|r| r.to_string()).unwrap_or_default(),
            d.tags.join(" "),
        ]));
    }
    Ok(download(
        "text/csv; charset=utf-8",
        "fleet.csv",
        Body::from(out),
    ))
}

async fn fleet_json(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let devices = blocking(move || fleet(store.as_ref())).await?;
    let json: Vec<serde_json::Value> = devices
        .into_iter()
        .map(|(d, codes)| {
            let mut value = serde_json::to_value(&d).unwrap_or_default();
            if let Some(object) = value.as_object_mut() {
                object.insert("finding_codes".into(), codes.into());
            }
            value
        })
        .collect();
    let body = serde_json::to_vec(&json).map_err(|e| WebError::bad_request(e.to_string()))?;
    Ok(download("application/json", "fleet.json", Body::from(body)))
}

/// The history of `query`, newest first, as a stream of `render`ed pages: at most `limit`
/// entries, or all of them.
fn history_stream(
    app: App,
    query: HistoryQuery,
    limit: Option<u64>,
    render: fn(&[HistoryEntry], bool) -> String,
    tail: &'static str,
) -> Body {
    let stream = futures_util::stream::unfold(
        (app, query, limit, true, false),
        move |(app, query, remaining, first, done)| async move {
            if done {
                return None;
            }
            let store = app.store.clone();
            let page_limit = remaining.map_or(HISTORY_PAGE, |r| r.min(HISTORY_PAGE));
            let page_query = HistoryQuery {
                limit: page_limit,
                ..query.clone()
            };
            let page = match tokio::task::spawn_blocking(move || store.history(&page_query)).await {
                Ok(Ok(page)) => page,
                Ok(Err(e)) => {
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (app, query, remaining, first, true),
                    ));
                }
                Err(e) => {
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (app, query, remaining, first, true),
                    ));
                }
            };
            let remaining = remaining.map(|r| r.saturating_sub(page.len() as u64));
            let last = page.len() < page_limit as usize || remaining == Some(0);
            let mut chunk = render(&page, first);
            if last {
                chunk.push_str(tail);
            }
            let next = HistoryQuery {
                before: page.last().map(|e| e.id).or(query.before),
                ..query
            };
            Some((Ok(chunk), (app, next, remaining, false, last)))
        },
    );
    Body::from_stream(stream)
}

fn history_csv_page(entries: &[HistoryEntry], first: bool) -> String {
    let mut out = String::new();
    if first {
        out.push_str(&row(
            &["id", "device", "at", "ts", "seq", "kind", "data"].map(str::to_owned)
        ));
    }
    for e in entries {
        out.push_str(&row(&[
            e.id.to_string(),
            e.device.as_str().to_owned(),
            e.at.to_string(),
            e.ts.map(|t| t.to_string()).unwrap_or_default(),
            e.seq.map(|s| s.to_string()).unwrap_or_default(),
            e.kind.as_str().to_owned(),
            e.data.to_string(),
        ]));
    }
    out
}

fn history_json_page(entries: &[HistoryEntry], first: bool) -> String {
    let mut out = String::new();
    for (i, e) in entries.iter().enumerate() {
        out.push_str(if first && i == 0 { "[" } else { "," });
        out.push_str(&serde_json::to_string(e).unwrap_or_else(|_| "null".into()));
    }
    if first && entries.is_empty() {
        out.push('[');
    }
    out
}

/// The entries `params` ask for, and how many of them at most (`limit`; `None`: all).
fn history_query(
    params: &HistoryParams,
    device: Option<&String>,
) -> Result<(HistoryQuery, Option<u64>), WebError> {
    let device = device
        .filter(|d| !d.is_empty())
        .map(|d| DeviceId::new(d.as_str()).map_err(|e| WebError::bad_request(e.to_string())))
        .transpose()?;
    let query = params.query(device).map_err(WebError::bad_request)?;
    // `query` has the API's default limit when none is given; an export then takes everything.
    let limit_given = params
        .limit
        .as_deref()
        .is_some_and(|l| !l.trim().is_empty());
    let limit = limit_given.then_some(query.limit);
    Ok((query, limit))
}

#[derive(Debug, serde::Deserialize)]
struct ExportParams {
    device: Option<String>,
    #[serde(flatten)]
    history: HistoryParams,
}

async fn history_csv(
    State(app): State<App>,
    Query(params): Query<ExportParams>,
) -> Result<Response, WebError> {
    let (query, limit) = history_query(&params.history, params.device.as_ref())?;
    Ok(download(
        "text/csv; charset=utf-8",
        "history.csv",
        history_stream(app, query, limit, history_csv_page, ""),
    ))
}

async fn history_json(
    State(app): State<App>,
    Query(params): Query<ExportParams>,
) -> Result<Response, WebError> {
    let (query, limit) = history_query(&params.history, params.device.as_ref())?;
    Ok(download(
        "application/json",
        "history.json",
        history_stream(app, query, limit, history_json_page, "]"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_defused() {
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("a,b"), "\"a,b\"");
        assert_eq!(cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("+1"), "'+1");
        assert_eq!(cell("-2"), "'-2");
        assert_eq!(cell("@sum"), "'@sum");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
    }

    #[test]
    fn json_pages_make_one_array() {
        assert_eq!(history_json_page(&[], true) + "]", "[]");
    }
}
