//! The dashboard's pages: the fleet, a device, the findings, ingest, and the login. Each reads
//! without JavaScript (filters are GET forms, sorting is links, commands are POST forms with a
//! confirmation box); `app.js` adds live updates and confirmation dialogs.
//!
//! [`device`]: a device's page and its command forms; [`login`]: logging in and out.

mod alerts;
mod device;
mod login;
mod observed;

pub use alerts::{SHOWN as ALERTS_SHOWN, alerts};
pub use device::{device, send_command};
pub use login::{login, login_form, logout};

use axum::extract::{Extension, Path, Query, State};
use axum::response::Html;
use maud::{Markup, html};
use roomready_protocol::{Ring, Verdict};

use super::api::{self, DeviceParams, KINDS, check_code};
use super::auth::Caller;
use super::html::{
    page, presence_badge, safe_link, severity_badge, time, url_encode, verdict_badge,
};
use super::{App, WebError, blocking};
use crate::store::{
    DevicePage, DeviceQuery, DeviceRow, FleetSummary, GroupTotal, Groups, ObservedFilter, SortKey,
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
    let (summary, devices, findings, groups) = blocking(move || {
        Ok((
            store.summary()?,
            store.devices(&shown)?,
            store.findings()?,
            store.groups()?,
        ))
    })
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
            (where_totals(&groups))
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
            label { "Site " input type="text" name="site" value=(value(&params.site)) placeholder="site" size="12"; }
            label { "Ring "
                select name="ring" {
                    option value="" { "any" }
                    @for r in 0..=Ring::MAX {
                        option value=(r) selected[params.ring.as_deref() == Some(r.to_string().as_str())] { (r) @if r == 0 { " (pilot)" } }
                    }
                }
            }
            label { "Tag " input type="text" name="tag" value=(value(&params.tag)) placeholder="tag" size="12"; }
            label { "Evidence "
                select name="observed" {
                    option value="" { "any" }
                    @for f in ObservedFilter::ALL {
                        option value=(f.as_str()) selected[params.observed.as_deref() == Some(f.as_str())] { (f.label()) }
                    }
                }
            }
            label { "Text " input type="search" name="q" value=(value(&params.q)) placeholder="id, version, finding, site, room"; }
            input type="hidden" name="sort" value=(value(&params.sort));
            input type="hidden" name="order" value=(value(&params.order));
            button type="submit" { "Filter" }
            " " a href="/" { "clear" }
        }
    }
}

/// The fleet by site, ring and tag, each group a link to its devices; nothing when no device
/// says where it is.
fn where_totals(groups: &Groups) -> Markup {
    let table = |id: &str, title: &str, key: &str, rows: &[GroupTotal]| {
        html! {
            table id=(id) {
                thead { tr { th { (title) } th.num { "devices" } th.num { "not ready" } th.num { "at risk" } th.num { "online" } } }
                tbody {
                    @for g in rows {
                        tr data-group=(g.name) {
                            td { a href={ "/?" (key) "=" (url_encode(&g.name)) } { @if key == "ring" { "ring " } (g.name) @if key == "ring" && g.name == "0" { " (pilot)" } } }
                            td.num { (g.devices) }
                            td.num { (g.not_ready) }
                            td.num { (g.at_risk) }
                            td.num { (g.online) }
                        }
                    }
                }
            }
        }
    };
    html! {
        @if !(groups.sites.is_empty() && groups.rings.is_empty() && groups.tags.is_empty()) {
            section #where .groups {
                h2 { "Where" }
                p.note {
                    "As the devices' configs place them (site, ring, tags). "
                    (groups.without_site) " without a site, " (groups.without_ring) " without a ring."
                }
                @if !groups.sites.is_empty() { (table("by-site", "Site", "site", &groups.sites)) }
                @if !groups.rings.is_empty() { (table("by-ring", "Ring", "ring", &groups.rings)) }
                @if !groups.tags.is_empty() { (table("by-tag", "Tag", "tag", &groups.tags)) }
            }
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
        ("site", &params.site),
        ("ring", &params.ring),
        ("tag", &params.tag),
        ("observed", &params.observed),
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
                    th { "Where" }
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
            td data-field="where" title=(d.room.as_deref().unwrap_or("")) { (where_text(d)) }
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

/// A device's site and ring in one cell: `oslo-hq · ring 1` (app.js writes the same on live
/// updates).
pub(super) fn where_text(d: &DeviceRow) -> String {
    let ring = d.ring.map(|r| format!("ring {r}"));
    [d.site.clone(), ring]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" · ")
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
