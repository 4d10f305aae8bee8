//! The dashboard's pages: the fleet, a device, the findings, ingest, and the login. Each reads
//! without JavaScript (filters are GET forms, sorting is links, commands are POST forms with a
//! confirmation box); `app.js` adds live updates and confirmation dialogs.

use axum::Form;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use roomready_protocol::{
    CommandAction, EndpointReport, ProbeOutcome, Timestamp, TlsVersion, Verdict,
};
use serde::Deserialize;

use super::api::{self, DeviceParams, HistoryParams, KINDS, check_code, device_id};
use super::auth::{self, Caller, LoginOutcome};
use super::html::{
    page, presence_badge, safe_link, severity_badge, time, url_encode, verdict_badge,
};
use super::{App, ClientAddr, WebError, blocking};
use crate::store::{
    CommandRecord, DeviceDetail, DevicePage, DeviceQuery, DeviceRow, FleetSummary, HistoryEntry,
    HistoryKind, HistoryQuery, SortKey,
};

fn page_error(e: WebError) -> WebError {
    e.page()
}

/// The fleet: totals, what breaks at the cutover, and the device table.
pub async fn fleet(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Query(params): Query<DeviceParams>,
) -> Result<Html<String>, WebError> {
    let query = params
        .query()
        .map_err(|e| WebError::bad_request(e).page())?;
    let store = app.store.clone();
    let shown = query.clone();
    let (summary, devices, findings) =
        blocking(move || Ok((store.summary()?, store.devices(&shown)?, store.findings()?)))
            .await
            .map_err(page_error)?;
    let cutover = api::cutover_groups(findings);
    Ok(page(
        "Fleet",
        Some(&caller),
        Some("fleet"),
        html! {
            h1 { "Fleet" }
            (totals(&summary))
            @if !cutover.is_empty() {
                section #cutover {
                    h2 { "What breaks at the cutover" }
                    p.note { "Devices that are not ready or at risk, by what stands in their way." }
                    table {
                        thead { tr { th { "Finding" } th { "Severity" } th.num { "not ready" } th.num { "at risk" } th { "Remediation" } } }
                        tbody {
                            @for f in &cutover {
                                tr {
                                    td { a href={ "/?finding=" (url_encode(&f.code)) } { code { (f.code) } } br; (f.title) }
                                    td { (severity_badge(f.severity)) }
                                    td.num { (count_of(&f.by_verdict, Verdict::NotReady)) }
                                    td.num { (count_of(&f.by_verdict, Verdict::AtRisk)) }
                                    td { (f.remediation) }
                                }
                            }
                        }
                    }
                }
            }
            section #devices {
                h2 { "Devices" }
                (filters(&params))
                (device_table(&devices, &query, &params))
            }
        },
    ))
}

fn count_of(counts: &[(Verdict, u64)], verdict: Verdict) -> u64 {
    counts
        .iter()
        .find(|(v, _)| *v == verdict)
        .map_or(0, |(_, n)| *n)
}

fn totals(summary: &FleetSummary) -> Markup {
    html! {
        section #totals .cards {
            div.card { div.n #total-devices { (summary.devices) } div.l { "devices" } }
            @for (verdict, n) in &summary.by_verdict {
                a class={ "card v-" (verdict.as_str()) } href={ "/?verdict=" (verdict.as_str()) } {
                    div.n id={ "total-" (verdict.as_str()) } { (n) }
                    div.l { (verdict.as_str()) }
                }
            }
            div.card { div.n #total-no_state { (summary.no_state) } div.l { "no state yet" } }
            a.card.p-online href="/?online=yes" { div.n #total-online { (summary.online) } div.l { "online" } }
            a.card.p-offline href="/?online=no" { div.n #total-offline { (summary.offline) } div.l { "offline" } }
            @if summary.missing > 0 {
                a.card href="/ingest" {
                    div.n #total-missing { (summary.missing) }
                    div.l { "messages missing (" (summary.missing_explained) " dropped by devices)" }
                }
            }
        }
    }
}

fn filters(params: &DeviceParams) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form #filters method="get" action="/" {
            label { "Verdict "
                select name="verdict" {
                    option value="" { "any" }
                    @for v in Verdict::ALL {
                        option value=(v.as_str()) selected[params.verdict.as_deref() == Some(v.as_str())] { (v.as_str()) }
                    }
                }
            }
            label { "Kind "
                select name="kind" {
                    option value="" { "any" }
                    @for k in KINDS {
                        option value=(k.as_str()) selected[params.kind.as_deref() == Some(k.as_str())] { (k.as_str()) }
                    }
                }
            }
            label { "Finding " input type="text" name="finding" value=(value(&params.finding)) placeholder="CODE" size="22"; }
            label { "Online "
                select name="online" {
                    option value="" { "any" }
                    option value="yes" selected[params.online.as_deref() == Some("yes")] { "online" }
                    option value="no" selected[params.online.as_deref() == Some("no")] { "offline" }
                }
            }
            label { "Text " input type="search" name="q" value=(value(&params.q)) placeholder="id, version, finding"; }
            input type="hidden" name="sort" value=(value(&params.sort));
            input type="hidden" name="order" value=(value(&params.order));
            button type="submit" { "Filter" }
            " " a href="/" { "clear" }
        }
    }
}

/// The query string of `params` with `changes` applied (for sort and page links).
fn link(params: &DeviceParams, changes: &[(&str, String)]) -> String {
    let mut pairs: Vec<(&str, String)> = [
        ("verdict", &params.verdict),
        ("kind", &params.kind),
        ("finding", &params.finding),
        ("q", &params.q),
        ("online", &params.online),
        ("sort", &params.sort),
        ("order", &params.order),
        ("per_page", &params.per_page),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().filter(|v| !v.is_empty()).map(|v| (k, v)))
    .collect();
    for (key, value) in changes {
        pairs.retain(|(k, _)| k != key);
        pairs.push((key, value.clone()));
    }
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect();
    format!("/?{}", query.join("&"))
}

fn device_table(devices: &DevicePage, query: &DeviceQuery, params: &DeviceParams) -> Markup {
    let header = |key: SortKey, label: &str| {
        let active = query.sort == key;
        let order = if active && !query.descending {
            "desc"
        } else {
            "asc"
        };
        let arrow = match (active, query.descending) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        };
        html! {
            th { a href=(link(params, &[("sort", key.as_str().into()), ("order", order.into()), ("page", "1".into())])) { (label) (arrow) } }
        }
    };
    let pages = devices.total.div_ceil(devices.per_page).max(1);
    html! {
        p.count { span #shown-total { (devices.total) } " devices" @if pages > 1 { ", page " (devices.page) " of " (pages) } }
        table #device-table {
            thead {
                tr {
                    (header(SortKey::Id, "Device"))
                    (header(SortKey::Kind, "Kind"))
                    (header(SortKey::AppVersion, "App version"))
                    (header(SortKey::OsBuild, "OS build"))
                    (header(SortKey::Verdict, "Verdict"))
                    (header(SortKey::TopFinding, "Top finding"))
                    (header(SortKey::LastSeen, "Last seen"))
                    (header(SortKey::Online, "Online"))
                }
            }
            tbody {
                @for d in &devices.devices { (device_row(d)) }
            }
        }
        @if pages > 1 {
            nav.pages {
                @if devices.page > 1 {
                    a rel="prev" href=(link(params, &[("page", (devices.page - 1).to_string())])) { "← previous" }
                }
                " "
                @if devices.page < pages {
                    a rel="next" href=(link(params, &[("page", (devices.page + 1).to_string())])) { "next →" }
                }
            }
        }
    }
}

fn device_row(d: &DeviceRow) -> Markup {
    html! {
        tr data-device=(d.id.as_str()) {
            td.id { a href={ "/devices/" (d.id.as_str()) } { (d.id.as_str()) } }
            td data-field="kind" { (d.kind.map_or("", |k| k.as_str())) }
            td data-field="app_version" { (d.app_version.as_deref().unwrap_or("")) }
            td data-field="os_build" { (d.os_build.as_deref().unwrap_or("")) }
            td data-field="verdict" { (verdict_badge(d.verdict)) }
            td data-field="top_finding" {
                @if let Some(f) = &d.top_finding {
                    code { (f.code) } " " span.title { (f.title) }
                    @if d.findings > 1 { " " span.more { "+" (d.findings - 1) } }
                }
            }
            td data-field="last_seen" { (time(d.last_seen)) }
            td data-field="presence" { (presence_badge(d.presence)) }
        }
    }
}

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
            @if caller.is_operator() { (command_forms(name, &caller)) }
            (facts(&detail))
            (findings_table(&detail))
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
                        tr data-command=(c.id) {
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

/// Every finding code present now.
pub async fn findings(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<Html<String>, WebError> {
    let store = app.store.clone();
    let findings = blocking(move || store.findings())
        .await
        .map_err(page_error)?;
    Ok(page(
        "Findings",
        Some(&caller),
        None,
        html! {
            h1 { "Findings" }
            @if findings.is_empty() {
                p { "No device has a finding." }
            } @else {
                table #findings-table {
                    thead { tr { th { "Finding" } th { "Severity" } th.num { "Devices" } th { "By verdict" } th { "Remediation" } } }
                    tbody {
                        @for f in &findings {
                            tr data-code=(f.code) {
                                td { a href={ "/findings/" (url_encode(&f.code)) } { code { (f.code) } } br; (f.title) }
                                td { (severity_badge(f.severity)) }
                                td.num { a href={ "/?finding=" (url_encode(&f.code)) } { (f.devices) } }
                                td { @for (v, n) in &f.by_verdict { (verdict_badge(Some(*v))) " " (n) " " } }
                                td { (f.remediation) }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// One finding code and the devices that have it.
pub async fn finding(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(code): Path<String>,
) -> Result<Html<String>, WebError> {
    check_code(&code).map_err(|e| WebError::not_found(e).page())?;
    let store = app.store.clone();
    let wanted = code.clone();
    let (all, devices) = blocking(move || {
        Ok((
            store.findings()?,
            store.devices_with_finding(&wanted, 1000)?,
        ))
    })
    .await
    .map_err(page_error)?;
    let info = all.into_iter().find(|f| f.code == code);
    Ok(page(
        &code,
        Some(&caller),
        None,
        html! {
            h1 { "Finding " code { (code) } }
            @if let Some(f) = &info {
                p { (severity_badge(f.severity)) " " strong { (f.title) } }
                p.remediation { (f.remediation) }
                p { (safe_link(&f.reference)) }
            }
            h2 { (devices.len()) " devices" }
            table {
                thead { tr { th { "Device" } th { "Kind" } th { "App version" } th { "OS build" } th { "Verdict" } th { "Last seen" } th { "Online" } } }
                tbody {
                    @for d in &devices {
                        tr data-device=(d.id.as_str()) {
                            td { a href={ "/devices/" (d.id.as_str()) } { (d.id.as_str()) } }
                            td { (d.kind.map_or("", |k| k.as_str())) }
                            td { (d.app_version.as_deref().unwrap_or("")) }
                            td { (d.os_build.as_deref().unwrap_or("")) }
                            td { (verdict_badge(d.verdict)) }
                            td { (time(d.last_seen)) }
                            td { (presence_badge(d.presence)) }
                        }
                    }
                }
            }
        },
    ))
}

/// Ingest's state: the broker connection, counters and the latest undecodable payloads.
pub async fn ingest(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<Html<String>, WebError> {
    use std::sync::atomic::Ordering;
    let store = app.store.clone();
    let failures = blocking(move || store.decode_failures())
        .await
        .map_err(page_error)?;
    let s = &app.stats;
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    Ok(page(
        "Ingest",
        Some(&caller),
        None,
        html! {
            h1 { "Ingest" }
            table.facts {
                tr { th { "Broker" } td { @if s.connected.load(Ordering::Relaxed) { span.ok { "connected" } } @else { span.no { "not connected" } } } }
                @if let Some(e) = s.last_error() { tr { th { "Last error" } td { (e) } } }
                tr { th { "Received" } td { (n(&s.received)) } }
                tr { th { "Taken" } td { (n(&s.taken)) } }
                tr { th { "Duplicates dropped" } td { (n(&s.duplicates)) } }
                tr { th { "Undecodable" } td { (n(&s.undecodable)) } }
                tr { th { "Sequence numbers skipped" } td { (n(&s.gaps)) } }
                tr { th { "Commits" } td { (n(&s.commits)) " (" (n(&s.commit_failures)) " failed and retried)" } }
                tr { th { "Commands sent" } td { (n(&s.commands)) } }
            }
            h2 { "Undecodable payloads" }
            @if failures.is_empty() {
                p { "None." }
            } @else {
                table {
                    thead { tr { th { "Received" } th { "Topic" } th { "Why" } th { "Payload" } } }
                    tbody {
                        @for f in &failures {
                            tr {
                                td { (time(f.received_at)) }
                                td { code { (f.topic) } }
                                td { (f.reason) }
                                td { code.payload { (f.payload_head) } br; small { (f.payload_len) " bytes" } }
                            }
                        }
                    }
                }
            }
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct LoginParams {
    next: Option<String>,
}

/// Where to go after logging in: a path of this site, nothing else.
fn next_path(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && !n.contains(['\\', '\r', '\n']) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

fn login_page(csrf: &str, next: &str, message: Option<&str>) -> Html<String> {
    page(
        "Log in",
        None,
        None,
        html! {
            h1 { "Log in" }
            @if let Some(m) = message { p.error #login-error { (m) } }
            form #login method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="next" value=(next);
                label { "User " input type="text" name="name" autocomplete="username" required autofocus; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The login form, with a fresh pre-login token in a cookie and the form.
pub async fn login_form(State(app): State<App>, Query(params): Query<LoginParams>) -> Response {
    if !app.auth.required() {
        return Redirect::to("/").into_response();
    }
    let token = match auth::random_token() {
        Ok(t) => t,
        Err(e) => {
            return WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e)
                .page()
                .into_response();
        }
    };
    let next = next_path(params.next.as_deref());
    let mut response = login_page(&token, &next, None).into_response();
    set(
        response.headers_mut(),
        &auth::set_cookie(
            auth::PRELOGIN_COOKIE,
            &token,
            Some(std::time::Duration::from_secs(3600)),
            app.https,
        ),
    );
    response
}

fn set(headers: &mut HeaderMap, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.append(header::SET_COOKIE, value);
    }
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: String,
    name: String,
    password: String,
    next: Option<String>,
}

/// Checks the login form: its token against the pre-login cookie, then the password.
pub async fn login(
    State(app): State<App>,
    Extension(client): Extension<ClientAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !app.auth.required() {
        return Redirect::to("/").into_response();
    }
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::PRELOGIN_COOKIE))
        .unwrap_or("");
    if cookie.is_empty() || !auth::same_token(cookie, &form.csrf) {
        return WebError::forbidden("the login form has expired: reload it and try again")
            .page()
            .into_response();
    }
    let next = next_path(form.next.as_deref());
    let checker = app.clone();
    let (name, password) = (form.name.clone(), form.password);
    let outcome =
        tokio::task::spawn_blocking(move || checker.auth.log_in(client.0.ip(), &name, &password))
            .await
            .unwrap_or(LoginOutcome::Refused);
    match outcome {
        LoginOutcome::Session { token, .. } => {
            tracing::info!(user = form.name, client = %client.0.ip(), "logged in");
            let mut response = Redirect::to(&next).into_response();
            let headers = response.headers_mut();
            set(
                headers,
                &auth::set_cookie(auth::SESSION_COOKIE, &token, None, app.https),
            );
            set(
                headers,
                &auth::set_cookie(
                    auth::PRELOGIN_COOKIE,
                    "",
                    Some(std::time::Duration::ZERO),
                    app.https,
                ),
            );
            response
        }
        LoginOutcome::Refused => {
            tracing::warn!(user = form.name, client = %client.0.ip(), "login refused");
            (
                StatusCode::UNAUTHORIZED,
                login_page(cookie, &next, Some("Wrong user name or password.")),
            )
                .into_response()
        }
        LoginOutcome::Wait(wait) => {
            let seconds = wait.as_secs().max(1);
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                login_page(
                    cookie,
                    &next,
                    Some(&format!(
                        "Too many failed logins: try again in {seconds} s."
                    )),
                ),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

/// Ends the session.
pub async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(token) = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::SESSION_COOKIE))
    {
        app.auth.close_session(token);
    }
    let mut response = Redirect::to("/login").into_response();
    set(
        response.headers_mut(),
        &auth::set_cookie(
            auth::SESSION_COOKIE,
            "",
            Some(std::time::Duration::ZERO),
            app.https,
        ),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(next_path(Some("/devices/mtr-1")), "/devices/mtr-1");
        for bad in ["//evil.example", "https://evil.example", "/\\evil", "x", ""] {
            assert_eq!(next_path(Some(bad)), "/", "{bad}");
        }
        assert_eq!(next_path(None), "/");
    }
}
