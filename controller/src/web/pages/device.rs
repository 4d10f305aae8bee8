//! A device's page: its facts with their sources, findings, endpoints, the verdict timeline,
//! presence, history and commands, and the command forms operators send from it (the registry
//! fix's in [`fix`]).

mod fix;

use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use roomready_protocol::{
    CommandAction, EndpointReport, FixMode, ProbeOutcome, Timestamp, TlsVersion, Verdict,
};
use serde::Deserialize;

use crate::store::{CommandRecord, DeviceDetail, HistoryEntry, HistoryKind, HistoryQuery};
use crate::web::api::{self, HistoryParams, device_id};
use crate::web::auth::Caller;
use crate::web::html::{
    page, presence_badge, safe_link, severity_badge, time, url_encode, verdict_badge,
};
use crate::web::{App, WebError, blocking};

use super::page_error;

#[derive(Debug, Deserialize)]
pub struct DevicePageParams {
    before: Option<String>,
    sent: Option<String>,
}

/// One device: facts, findings, endpoints, verdict timeline, presence, commands, history.
pub async fn device(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(params): Query<DevicePageParams>,
) -> Result<Html<String>, WebError> {
    let id = device_id(&id).map_err(page_error)?;
    let history_query = HistoryParams {
        before: params.before.clone(),
        limit: Some("100".into()),
        ..HistoryParams::default()
    }
    .query(Some(id.clone()))
    .map_err(|e| WebError::bad_request(e).page())?;
    let store = app.store.clone();
    let wanted = id.clone();
    let loaded = blocking(move || {
        let Some(detail) = store.device(&wanted)? else {
            return Ok(None);
        };
        let verdicts = store.history(&HistoryQuery {
            device: Some(wanted.clone()),
            kinds: vec![HistoryKind::Verdict],
            limit: 500,
            ..HistoryQuery::default()
        })?;
        let presence = store.history(&HistoryQuery {
            device: Some(wanted.clone()),
            kinds: vec![HistoryKind::Presence],
            limit: 20,
            ..HistoryQuery::default()
        })?;
        let commands = store.commands(&wanted, 20)?;
        let history = store.history(&history_query)?;
        Ok(Some((detail, verdicts, presence, commands, history)))
    })
    .await
    .map_err(page_error)?;
    let Some((detail, verdicts, presence, commands, history)) = loaded else {
        return Err(WebError::not_found(format!("there is no device {:?}", id.as_str())).page());
    };
    let now = crate::clock::now();
    let name = id.as_str();
    Ok(page(
        name,
        Some(&caller),
        Some(name),
        html! {
            h1 { "Device " span #device-id { (name) } }
            (device_summary(&detail))
            @if let Some(sent) = &params.sent {
                p.notice #sent { "Command " code { (sent) } " sent; its answer appears below." }
            }
            @if caller.is_operator() {
                (command_forms(name, &caller))
                (fix::panel(name, caller.csrf.as_deref().unwrap_or(""), &commands))
            }
            (facts(&detail))
            (findings_table(&detail))
            (super::observed::section(detail.state.as_ref()))
            (endpoints(&detail))
            section #timeline {
                h2 { "Verdict timeline" }
                (timeline(&verdicts, detail.first_seen, now))
            }
            section #presence-history {
                h2 { "Presence" }
                (history_list(&presence, "presence-list"))
            }
            (commands_table(&commands))
            section #history {
                h2 { "History" }
                (history_list(&history, "history-list"))
                @if history.len() == 100 {
                    @if let Some(last) = history.last() {
                        p { a href={ "/devices/" (name) "?before=" (last.id) "#history" } { "older →" } }
                    }
                }
            }
        },
    ))
}

fn device_summary(d: &DeviceDetail) -> Markup {
    let row = &d.row;
    html! {
        section #summary .cards data-device=(row.id.as_str()) {
            div.card { div.n data-field="verdict" { (verdict_badge(row.verdict)) } div.l { "verdict" } }
            div.card { div.n data-field="presence" { (presence_badge(row.presence)) } div.l { "presence" } }
            div.card { div.n data-field="last_seen" { (time(row.last_seen)) } div.l { "last seen" } }
            div.card { div.n { (d.seq.received) } div.l { "messages received" } }
            div.card {
                div.n { (d.seq.missing) }
                div.l { "missing (" (d.seq.explained) " dropped by the device, " (d.seq.duplicates) " duplicates dropped)" }
            }
        }
    }
}

fn facts(d: &DeviceDetail) -> Markup {
    let state = d.state.as_ref();
    let source = "as read by the agent on the device";
    html! {
        section #facts {
            h2 { "Facts" }
            @if let Some(state) = state {
                table.facts {
                    tr { th { "Kind" } td { (state.facts.kind.as_str()) } td.source { (source) } }
                    tr { th { "Teams Rooms app" } td { (state.facts.app_version.as_deref().unwrap_or("not read")) } td.source { (source) } }
                    tr { th { "OS build" } td { (state.facts.os_build.as_deref().unwrap_or("not read")) } td.source { (source) } }
                    tr { th { "Agent" } td { (state.agent_version) } td.source { "the agent's own version" } }
                    tr { th { "Assessed" } td { (time(state.ts)) } td.source { "state #" (state.seq) } }
                    @let place = &state.placement;
                    @let config = "the agent's config";
                    @if let Some(site) = &place.site {
                        tr #place-site { th { "Site" } td { a href={ "/?site=" (url_encode(site.as_str())) } { (site.as_str()) } } td.source { (config) } }
                    }
                    @if let Some(room) = &place.room {
                        tr #place-room { th { "Room" } td { (room.as_str()) } td.source { (config) } }
                    }
                    @if let Some(ring) = place.ring {
                        tr #place-ring { th { "Ring" } td { a href={ "/?ring=" (ring.get()) } { (ring.get()) } @if ring.get() == 0 { " (pilot)" } } td.source { (config) } }
                    }
                    @if !place.tags.is_empty() {
                        tr #place-tags {
                            th { "Tags" }
                            td { @for tag in place.tags.iter() { a.tag href={ "/?tag=" (url_encode(tag.as_str())) } { (tag.as_str()) } " " } }
                            td.source { (config) }
                        }
                    }
                }
            } @else {
                p { "No state has arrived from this device yet." }
            }
        }
    }
}

fn findings_table(d: &DeviceDetail) -> Markup {
    let findings = d
        .state
        .as_ref()
        .map(|s| s.findings.as_slice())
        .unwrap_or_default();
    html! {
        section #findings {
            h2 { "Findings" }
            @if findings.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr { th { "Severity" } th { "Finding" } th { "Evidence" } th { "Remediation" } th { "Reference" } } }
                    tbody {
                        @for f in findings {
                            tr.finding data-code=(f.code) {
                                td { (severity_badge(f.severity)) }
                                td { a href={ "/findings/" (url_encode(&f.code)) } { code { (f.code) } } br; span.title { (f.title) } }
                                td.evidence { (f.evidence) }
                                td.remediation { (f.remediation) }
                                td { (safe_link(&f.reference)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn outcome_cell(report: &EndpointReport, version: TlsVersion) -> Markup {
    match report.version(version) {
        Some(probe) => {
            let class = match probe.outcome {
                ProbeOutcome::Accepted => "ok",
                ProbeOutcome::Refused => "no",
                _ => "err",
            };
            html! {
                td class=(class) title=(probe.detail.as_deref().unwrap_or("")) {
                    (probe.outcome.as_str())
                    @if let Some(suite) = &probe.suite { br; small { (suite.name.as_deref().unwrap_or(&suite.code)) } }
                }
            }
        }
        None => html! { td { "—" } },
    }
}

fn endpoints(d: &DeviceDetail) -> Markup {
    let reports = d
        .state
        .as_ref()
        .map(|s| s.endpoints.as_slice())
        .unwrap_or_default();
    html! {
        section #endpoints {
            h2 { "Endpoints" }
            @if reports.is_empty() {
                p { "No endpoint was probed." }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Endpoint" } th { "Role" }
                            @for v in TlsVersion::ALL { th { (v.name()) } }
                            th { "TLS 1.2 suite" } th { "Certificate" } th.num { "Days left" }
                        }
                    }
                    tbody {
                        @for e in reports {
                            tr {
                                td { (e.host) ":" (e.port) @if let Some(a) = &e.address { br; small { "at " (a) } } }
                                td { (e.role.as_str()) @if let Some(v) = &e.sfb_version { br; small { (v) } } }
                                @for v in TlsVersion::ALL { (outcome_cell(e, v)) }
                                td {
                                    @if let Some(s) = e.tls12_suites.as_ref().and_then(|s| s.preferred.as_ref()) {
                                        (s.name.as_deref().unwrap_or(&s.code))
                                    }
                                }
                                td {
                                    @if let Some(c) = &e.certificate {
                                        @if c.valid { span.ok { "valid" } } @else { span.no { "invalid" } }
                                        @if let Some(err) = &c.error { br; small { (err) } }
                                    } @else if let Some(why) = &e.certificate_unavailable {
                                        small { (why) }
                                    }
                                    @if e.client_certificate_required { br; small { "asks for a client certificate" } }
                                }
                                td.num { @if let Some(days) = e.certificate.as_ref().and_then(|c| c.days_left) { (days) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The verdict over time as an SVG band: one coloured stretch per verdict, from the first
/// recorded change (or the first sighting) to now.
fn timeline(verdicts: &[HistoryEntry], first_seen: Timestamp, now: Timestamp) -> Markup {
    // Oldest first; the entries are the verdict changes with their new verdict in `to`.
    let mut changes: Vec<(u64, &str)> = verdicts
        .iter()
        .rev()
        .filter_map(|e| Some((e.at.unix_ms(), e.data.get("to")?.as_str()?)))
        .filter(|(_, v)| api::parse_verdict(v).is_ok())
        .collect();
    if changes.is_empty() {
        return html! { p { "No verdict recorded yet." } };
    }
    let start = changes[0].0.min(first_seen.unix_ms());
    let end = now.unix_ms().max(start + 1);
    let span = (end - start) as f64;
    let width = 1000.0;
    changes.push((end, ""));
    html! {
        svg.timeline viewBox="0 0 1000 40" preserveAspectRatio="none" role="img" aria-label="verdict over time" {
            @for pair in changes.windows(2) {
                @let x = (pair[0].0 - start) as f64 / span * width;
                @let w = ((pair[1].0 - pair[0].0) as f64 / span * width).max(1.0);
                rect class={ "v-" (pair[0].1) } x=(format!("{x:.1}")) y="0" width=(format!("{w:.1}")) height="40" {
                    title { (pair[0].1) " from " (Timestamp::from_unix_ms(pair[0].0).to_rfc3339_secs()) }
                }
            }
        }
        p.axis { span { (Timestamp::from_unix_ms(start).to_rfc3339_secs()) } span { "now" } }
        ul.legend { @for v in Verdict::ALL { li { (verdict_badge(Some(v))) } } }
    }
}

/// A history entry in words.
pub fn describe(entry: &HistoryEntry) -> Markup {
    let text = |key: &str| {
        entry
            .data
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    match entry.kind {
        HistoryKind::Verdict => html! {
            "verdict " @if entry.data.get("from").is_some_and(|f| !f.is_null()) { (text("from")) " → " } strong { (text("to")) }
        },
        HistoryKind::FindingAppeared => {
            html! { "finding appeared: " code { (text("code")) } " " (text("title")) }
        }
        HistoryKind::FindingCleared => {
            html! { "finding cleared: " code { (text("code")) } " " (text("title")) }
        }
        HistoryKind::Presence => html! {
            (text("status")) @if !text("reason").is_empty() { " (" (text("reason")) ")" }
        },
        HistoryKind::Event => {
            let name = text("event");
            let rest: Vec<String> = entry
                .data
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(k, _)| k.as_str() != "event")
                        .map(|(k, v)| match v.as_str() {
                            Some(s) => format!("{k}={s}"),
                            None => format!("{k}={v}"),
                        })
                        .collect()
                })
                .unwrap_or_default();
            html! { "event " strong.event { (name) } " " (rest.join(" ")) }
        }
        HistoryKind::Command => {
            let command = entry
                .data
                .get("command")
                .and_then(|c| c.get("command"))
                .and_then(|c| c.as_str())
                .unwrap_or("");
            html! { "command " strong { (command) } " " code { (text("id")) } " sent by " (text("by")) }
        }
        HistoryKind::Response => html! {
            "answer " strong { (text("status")) } " to " code { (text("id")) }
            @if !text("reason").is_empty() { " (" (text("reason")) ")" }
            @if !text("message").is_empty() { ": " (text("message")) }
        },
    }
}

fn history_list(entries: &[HistoryEntry], id: &str) -> Markup {
    html! {
        @if entries.is_empty() {
            ul.history id=(id) { li.empty { "Nothing yet." } }
        } @else {
            ul.history id=(id) {
                @for e in entries {
                    li data-kind=(e.kind.as_str()) data-id=(e.id) {
                        (time(e.at)) " " (describe(e))
                    }
                }
            }
        }
    }
}

fn commands_table(commands: &[CommandRecord]) -> Markup {
    html! {
        section #commands {
            h2 { "Commands" }
            table #commands-table {
                thead { tr { th { "Sent" } th { "Command" } th { "By" } th { "Answer" } } }
                tbody {
                    @for c in commands {
                        @let fix = match &c.command.action { CommandAction::Fix { mode, .. } => Some(mode.as_str()), _ => None };
                        tr data-command=(c.id) data-fix=[fix] {
                            td { (time(c.sent_at)) }
                            td { strong { (c.command.action.name()) } " " code { (c.id) } }
                            td { (c.by) }
                            td data-field="answer" {
                                @match c.status {
                                    Some(status) => {
                                        (format!("{status:?}").to_lowercase())
                                        @if let Some(r) = &c.reason { " (" (r) ")" }
                                        @if let Some(m) = &c.message { ": " (m) }
                                    }
                                    None => { span.pending { "waiting" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn command_forms(device: &str, caller: &Caller) -> Markup {
    let csrf = caller.csrf.as_deref().unwrap_or("");
    let action = format!("/devices/{device}/commands");
    let form = |command: &str, label: &str, fields: Markup| {
        html! {
            form.command method="post" action=(action) data-command=(command)
                data-confirm={ "Send " (command) " to " (device) "?" } {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="command" value=(command);
                (fields)
                label.confirm { input type="checkbox" name="confirm" value="yes" required; " confirm" }
                button type="submit" data-button=(command) { (label) }
            }
        }
    };
    html! {
        section #actions {
            h2 { "Commands" }
            div.forms {
                (form("check_now", "Check now", html! {}))
                (form("set_interval", "Set interval", html! {
                    label { "seconds " input type="number" name="seconds" min="1" max="86400" value="900" required; }
                }))
                (form("update", "Update agent", html! {
                    label { "version " input type="text" name="version" value="latest" size="10" maxlength="64"; }
                    label { "channel "
                        select name="channel" {
                            @for c in CommandAction::UPDATE_CHANNELS { option value=(c) { (c) } }
                        }
                    }
                }))
                (form("update_app", "Update Teams Rooms app", html! {}))
                (fix::plan_form(device, csrf))
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CommandForm {
    command: String,
    confirm: Option<String>,
    seconds: Option<String>,
    version: Option<String>,
    channel: Option<String>,
    /// `fix`: `plan`, `apply` or `undo`, and the plan's digest for `apply`.
    mode: Option<String>,
    plan: Option<String>,
}

impl CommandForm {
    fn action(&self) -> Result<CommandAction, String> {
        Ok(match self.command.as_str() {
            "check_now" => CommandAction::CheckNow,
            "update_app" => CommandAction::UpdateApp,
            "set_interval" => {
                let seconds = self.seconds.as_deref().unwrap_or("").trim();
                CommandAction::SetInterval {
                    seconds: seconds
                        .parse()
                        .map_err(|_| format!("seconds must be a whole number, not {seconds:?}"))?,
                }
            }
            "update" => CommandAction::Update {
                version: self
                    .version
                    .as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
                channel: self.channel.clone().filter(|c| !c.is_empty()),
            },
            "fix" => CommandAction::Fix {
                mode: match self.mode.as_deref() {
                    Some("plan") => FixMode::Plan,
                    Some("apply") => FixMode::Apply,
                    Some("undo") => FixMode::Undo,
                    other => {
                        return Err(format!(
                            "mode must be plan, apply or undo, not {:?}",
                            other.unwrap_or("")
                        ));
                    }
                },
                plan: self.plan.clone().filter(|p| !p.is_empty()),
            },
            other => return Err(format!("there is no command {other:?} to send")),
        })
    }
}

/// A command from a form: confirmed, sent, and back to the device page.
pub async fn send_command(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Form(form): Form<CommandForm>,
) -> Result<Response, WebError> {
    if form.confirm.as_deref() != Some("yes") {
        return Err(WebError::bad_request("tick \"confirm\" to send the command").page());
    }
    let action = form.action().map_err(|e| WebError::bad_request(e).page())?;
    let record = api::send(&app, &caller, &id, action)
        .await
        .map_err(page_error)?;
    Ok(Redirect::to(&format!(
        "/devices/{}?sent={}#commands",
        record.device.as_str(),
        url_encode(&record.id)
    ))
    .into_response())
}
