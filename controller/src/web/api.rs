//! The JSON API under `/api/v1/` (documented in docs/controller.md): the same queries the pages
//! make, and commands. Reads need any logged-in user; sending a command needs an operator.
//!
//! | method | path | answer |
//! |---|---|---|
//! | GET | `/api/v1/summary` | totals per verdict, presence and kind, missing `seq` |
//! | GET | `/api/v1/devices?verdict=&kind=&finding=&q=&online=&site=&ring=&tag=&observed=&sort=&order=&page=&per_page=` | a page of the device table (`observed=legacy` or `legacy_predicted_ready`) |
//! | GET | `/api/v1/devices/{id}` | the device's latest state, presence and sequence numbers |
//! | GET | `/api/v1/devices/{id}/history?kind=&before=&limit=` | its history, newest first |
//! | GET | `/api/v1/devices/{id}/commands` | the commands sent to it, newest first |
//! | POST | `/api/v1/devices/{id}/commands` | send `{"command": "check_now"}` (and arguments) |
//! | GET | `/api/v1/commands/{id}` | one command and its answer |
//! | GET | `/api/v1/findings` | every finding code with its device counts |
//! | GET | `/api/v1/findings/{code}` | the devices with that finding |
//! | GET | `/api/v1/cutover` | not_ready and at_risk devices grouped by finding |
//! | GET | `/api/v1/history?kind=&since=&before=&limit=` | the fleet's history, newest first |
//! | GET | `/api/v1/ingest` | ingest counters and the latest undecodable payloads |
//! | GET | `/api/v1/live?device=` | Server-Sent Events: `device`, `history`, `summary` |

use std::sync::atomic::Ordering;

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use roomready_protocol::{
    CommandAction, DeviceId, DeviceKind, Ring, Site, Tag, Timestamp, Verdict,
};
use serde::Deserialize;

use super::{App, Caller, WebError, blocking, live};
use crate::commands::CommandError;
use crate::store::{DeviceQuery, FindingCount, HistoryKind, HistoryQuery, ObservedFilter, SortKey};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/groups", get(groups))
        .route("/api/v1/alerts", get(alerts))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/{id}", get(device))
        .route("/api/v1/devices/{id}/history", get(device_history))
        .route(
            "/api/v1/devices/{id}/commands",
            get(device_commands).post(send_command),
        )
        .route("/api/v1/commands/{id}", get(command))
        .route("/api/v1/findings", get(findings))
        .route("/api/v1/findings/{code}", get(finding))
        .route("/api/v1/cutover", get(cutover))
        .route("/api/v1/history", get(history))
        .route("/api/v1/ingest", get(ingest))
        .route("/api/v1/live", get(live::stream))
}

/// The device table's query string, as given.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeviceParams {
    pub verdict: Option<String>,
    pub kind: Option<String>,
    pub finding: Option<String>,
    pub q: Option<String>,
    pub online: Option<String>,
    pub site: Option<String>,
    pub ring: Option<String>,
    pub tag: Option<String>,
    pub observed: Option<String>,
    pub sort: Option<String>,
    pub order: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

pub fn parse_verdict(text: &str) -> Result<Verdict, String> {
    Verdict::ALL
        .into_iter()
        .find(|v| v.as_str() == text)
        .ok_or_else(|| {
            format!("verdict must be ready, at_risk, not_ready or unknown, not {text:?}")
        })
}

pub const KINDS: [DeviceKind; 4] = [
    DeviceKind::TeamsRoomsWindows,
    DeviceKind::SurfaceHub,
    DeviceKind::TeamsRoomsAndroid,
    DeviceKind::Unknown,
];

fn number(name: &str, value: &Option<String>, default: u64, max: u64) -> Result<u64, String> {
    match non_empty(value) {
        None => Ok(default),
        Some(text) => match text.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "{name} must be a whole number in 1..={max}, not {text:?}"
            )),
        },
    }
}

/// A finding code as the agent writes them: 1..=64 of `A-Z 0-9 _`.
pub fn check_code(code: &str) -> Result<(), String> {
    if !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        Ok(())
    } else {
        Err(format!("{code:?} is not a finding code (A-Z 0-9 _)"))
    }
}

impl DeviceParams {
    /// The store query these parameters ask for, or what is wrong with them.
    pub fn query(&self) -> Result<DeviceQuery, String> {
        let verdict = non_empty(&self.verdict).map(parse_verdict).transpose()?;
        let kind = non_empty(&self.kind)
            .map(|k| {
                KINDS
                    .into_iter()
                    .find(|x| x.as_str() == k)
                    .ok_or_else(|| format!("kind {k:?} is not one of teams_rooms_windows, surface_hub, teams_rooms_android, unknown"))
            })
            .transpose()?;
        let finding = non_empty(&self.finding)
            .map(|c| check_code(c).map(|()| c.to_owned()))
            .transpose()?;
        let text = non_empty(&self.q).map(|q| {
            if q.chars().count() > DeviceQuery::MAX_TEXT {
                Err(format!(
                    "q is longer than {} characters",
                    DeviceQuery::MAX_TEXT
                ))
            } else {
                Ok(q.to_owned())
            }
        });
        let text = text.transpose()?;
        let online = match non_empty(&self.online) {
            None => None,
            Some("yes" | "true" | "online") => Some(true),
            Some("no" | "false" | "offline") => Some(false),
            Some(other) => return Err(format!("online must be yes or no, not {other:?}")),
        };
        // Checked by the protocol's own rules: a value no device can have is a mistake to name.
        let site = non_empty(&self.site)
            .map(|s| {
                Site::new(s)
                    .map(|s| s.to_string())
                    .map_err(|e| e.to_string())
            })
            .transpose()?;
        let ring = non_empty(&self.ring)
            .map(|r| {
                r.parse::<u64>()
                    .map_err(|_| format!("ring must be a whole number, not {r:?}"))
                    .and_then(|n| Ring::new(n).map_err(|e| e.to_string()))
                    .map(Ring::get)
            })
            .transpose()?;
        let tag = non_empty(&self.tag)
            .map(|t| {
                Tag::new(t)
                    .map(|t| t.to_string())
                    .map_err(|e| e.to_string())
            })
            .transpose()?;
        let observed = non_empty(&self.observed)
            .map(|o| {
                ObservedFilter::parse(o).ok_or_else(|| {
                    format!("observed must be legacy or legacy_predicted_ready, not {o:?}")
                })
            })
            .transpose()?;
        let sort = match non_empty(&self.sort) {
            None => SortKey::Id,
            Some(s) => SortKey::parse(s).ok_or_else(|| {
                let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
                format!("sort must be one of {}, not {s:?}", names.join(", "))
            })?,
        };
        let descending = match non_empty(&self.order) {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("order must be asc or desc, not {other:?}")),
        };
        Ok(DeviceQuery {
            verdict,
            kind,
            finding,
            text,
            online,
            site,
            ring,
            tag,
            observed,
            sort,
            descending,
            page: number("page", &self.page, 1, 1_000_000)?,
            per_page: number(
                "per_page",
                &self.per_page,
                DeviceQuery::DEFAULT_PER_PAGE,
                DeviceQuery::MAX_PER_PAGE,
            )?,
        })
    }
}

pub fn device_id(text: &str) -> Result<DeviceId, WebError> {
    DeviceId::new(text).map_err(|e| WebError::not_found(e.to_string()))
}

async fn summary(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    Ok(Json(blocking(move || store.summary()).await?).into_response())
}

/// The newest alerts with their delivery.
async fn alerts(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let shown = super::pages::ALERTS_SHOWN;
    Ok(Json(blocking(move || store.alerts(shown)).await?).into_response())
}

/// The fleet by site, ring and tag.
async fn groups(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    Ok(Json(blocking(move || store.groups()).await?).into_response())
}

async fn devices(
    State(app): State<App>,
    Query(params): Query<DeviceParams>,
) -> Result<Response, WebError> {
    let query = params.query().map_err(WebError::bad_request)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.devices(&query)).await?).into_response())
}

async fn device(State(app): State<App>, Path(id): Path<String>) -> Result<Response, WebError> {
    let id = device_id(&id)?;
    let store = app.store.clone();
    let wanted = id.clone();
    match blocking(move || store.device(&wanted)).await? {
        Some(detail) => Ok(Json(detail).into_response()),
        None => Err(WebError::not_found(format!(
            "there is no device {:?}",
            id.as_str()
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct HistoryParams {
    pub kind: Option<String>,
    pub before: Option<String>,
    pub since: Option<String>,
    pub limit: Option<String>,
}

impl HistoryParams {
    pub fn query(&self, device: Option<DeviceId>) -> Result<HistoryQuery, String> {
        let kinds = match non_empty(&self.kind) {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|k| {
                    HistoryKind::parse(k.trim()).ok_or_else(|| {
                        let names: Vec<&str> =
                            HistoryKind::ALL.iter().map(|k| k.as_str()).collect();
                        format!("kind must be among {}, not {k:?}", names.join(", "))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let before = non_empty(&self.before)
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| format!("before must be an entry id, not {b:?}"))
            })
            .transpose()?;
        let since = non_empty(&self.since)
            .map(|s| {
                s.parse::<Timestamp>()
                    .map_err(|e| format!("since must be an RFC 3339 time: {e}"))
            })
            .transpose()?;
        Ok(HistoryQuery {
            device,
            kinds,
            before,
            since,
            limit: number("limit", &self.limit, 100, HistoryQuery::MAX_LIMIT)?,
        })
    }
}

async fn device_history(
    State(app): State<App>,
    Path(id): Path<String>,
    Query(params): Query<HistoryParams>,
) -> Result<Response, WebError> {
    let query = params
        .query(Some(device_id(&id)?))
        .map_err(WebError::bad_request)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.history(&query)).await?).into_response())
}

async fn history(
    State(app): State<App>,
    Query(params): Query<HistoryParams>,
) -> Result<Response, WebError> {
    let query = params.query(None).map_err(WebError::bad_request)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.history(&query)).await?).into_response())
}

async fn device_commands(
    State(app): State<App>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let id = device_id(&id)?;
    let store = app.store.clone();
    Ok(Json(blocking(move || store.commands(&id, 100)).await?).into_response())
}

/// Sends a command for `caller`, as the pages and the API both do.
pub async fn send(
    app: &App,
    caller: &Caller,
    id: &str,
    action: CommandAction,
) -> Result<crate::store::CommandRecord, WebError> {
    if !caller.is_operator() {
        return Err(WebError::forbidden(format!(
            "{} is a {}: only operators send commands",
            caller.name, caller.role
        )));
    }
    let device = device_id(id)?;
    app.commander
        .send(device, action, &caller.name)
        .await
        .map_err(|e| match e {
            CommandError::Invalid(reason) => WebError::bad_request(reason),
            CommandError::UnknownDevice(_) => WebError::not_found(e.to_string()),
            CommandError::Store(e) => WebError::from(e),
            CommandError::Publish(reason) => WebError::new(StatusCode::SERVICE_UNAVAILABLE, reason),
        })
}

async fn send_command(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    // The body is a command without `schema` and `id`: the controller adds both.
    let action: CommandAction = serde_json::from_slice(&body).map_err(|e| {
        WebError::bad_request(format!(
            "the body must be a command such as {{\"command\": \"check_now\"}}: {e}"
        ))
    })?;
    let record = send(&app, &caller, &id, action).await?;
    Ok((StatusCode::ACCEPTED, Json(record)).into_response())
}

async fn command(State(app): State<App>, Path(id): Path<String>) -> Result<Response, WebError> {
    if id.len() > roomready_protocol::Command::MAX_ID_BYTES {
        return Err(WebError::not_found("there is no such command"));
    }
    let store = app.store.clone();
    let wanted = id.clone();
    match blocking(move || store.command(&wanted)).await? {
        Some(record) => Ok(Json(record).into_response()),
        None => Err(WebError::not_found(format!("there is no command {id:?}"))),
    }
}

async fn findings(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    Ok(Json(blocking(move || store.findings()).await?).into_response())
}

async fn finding(State(app): State<App>, Path(code): Path<String>) -> Result<Response, WebError> {
    check_code(&code).map_err(WebError::not_found)?;
    let store = app.store.clone();
    let devices = blocking(move || store.devices_with_finding(&code, 10_000)).await?;
    Ok(Json(devices).into_response())
}

/// The finding codes that decide the cutover: those of not_ready and at_risk devices.
pub fn cutover_groups(findings: Vec<FindingCount>) -> Vec<FindingCount> {
    let mut groups: Vec<FindingCount> = findings
        .into_iter()
        .filter_map(|mut f| {
            f.by_verdict
                .retain(|(v, _)| matches!(v, Verdict::NotReady | Verdict::AtRisk));
            let devices: u64 = f.by_verdict.iter().map(|(_, n)| n).sum();
            (devices > 0).then(|| {
                f.devices = devices;
                f
            })
        })
        .collect();
    groups.sort_by(|a, b| {
        let weight = |f: &FindingCount| {
            f.by_verdict
                .iter()
                .find(|(v, _)| *v == Verdict::NotReady)
                .map_or(0, |(_, n)| *n)
        };
        weight(b)
            .cmp(&weight(a))
            .then(b.devices.cmp(&a.devices))
            .then(a.code.cmp(&b.code))
    });
    groups
}

async fn cutover(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let findings = blocking(move || store.findings()).await?;
    Ok(Json(cutover_groups(findings)).into_response())
}

async fn ingest(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let failures = blocking(move || store.decode_failures()).await?;
    let s = &app.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    Ok(Json(serde_json::json!({
        "connected": s.connected.load(Ordering::Relaxed),
        "connections": load(&s.connections),
        "received": load(&s.received),
        "taken": load(&s.taken),
        "duplicates": load(&s.duplicates),
        "undecodable": load(&s.undecodable),
        "gaps": load(&s.gaps),
        "commits": load(&s.commits),
        "commit_failures": load(&s.commit_failures),
        "commands": load(&s.commands),
        "last_error": s.last_error(),
        "decode_failures": failures,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_params_are_checked() {
        let ok = DeviceParams {
            verdict: Some("not_ready".into()),
            kind: Some("surface_hub".into()),
            finding: Some("TLS12_APP_TOO_OLD".into()),
            q: Some(" mtr ".into()),
            online: Some("no".into()),
            site: Some("oslo-hq".into()),
            ring: Some("0".into()),
            tag: Some("board".into()),
            observed: Some("legacy_predicted_ready".into()),
            sort: Some("verdict".into()),
            order: Some("desc".into()),
            page: Some("3".into()),
            per_page: Some("50".into()),
        }
        .query()
        .expect("valid");
        assert_eq!(
            (ok.site.as_deref(), ok.ring, ok.tag.as_deref()),
            (Some("oslo-hq"), Some(0), Some("board"))
        );
        assert_eq!(ok.verdict, Some(Verdict::NotReady));
        assert_eq!(ok.observed, Some(ObservedFilter::LegacyPredictedReady));
        assert_eq!(ok.text.as_deref(), Some("mtr"));
        assert_eq!((ok.page, ok.per_page, ok.descending), (3, 50, true));
        for (params, expected) in [
            (
                DeviceParams {
                    verdict: Some("green".into()),
                    ..DeviceParams::default()
                },
                "verdict must be",
            ),
            (
                DeviceParams {
                    site: Some("<b>".into()),
                    ..DeviceParams::default()
                },
                "site \"<b>\": character '<'",
            ),
            (
                DeviceParams {
                    ring: Some("10".into()),
                    ..DeviceParams::default()
                },
                "ring 10 is out of range",
            ),
            (
                DeviceParams {
                    ring: Some("one".into()),
                    ..DeviceParams::default()
                },
                "ring must be a whole number",
            ),
            (
                DeviceParams {
                    observed: Some("tls1.0".into()),
                    ..DeviceParams::default()
                },
                "observed must be legacy or legacy_predicted_ready, not \"tls1.0\"",
            ),
            (
                DeviceParams {
                    tag: Some("VIP".into()),
                    ..DeviceParams::default()
                },
                "tag \"VIP\"",
            ),
            (
                DeviceParams {
                    per_page: Some("5000".into()),
                    ..DeviceParams::default()
                },
                "per_page must be a whole number in 1..=1000",
            ),
            (
                DeviceParams {
                    finding: Some("<x>".into()),
                    ..DeviceParams::default()
                },
                "is not a finding code",
            ),
            (
                DeviceParams {
                    sort: Some("password".into()),
                    ..DeviceParams::default()
                },
                "sort must be one of id",
            ),
        ] {
            let e = params.query().expect_err(expected);
            assert!(e.contains(expected), "{e}");
        }
        let empty = DeviceParams {
            verdict: Some(String::new()),
            ..DeviceParams::default()
        };
        assert_eq!(empty.query().expect("blank is absent").verdict, None);
    }
}
