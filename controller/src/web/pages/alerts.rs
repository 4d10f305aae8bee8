//! The alerts page: the newest alerts with their delivery (pending, delivered, failed,
//! suppressed), attempts and last error, and where they go (the webhook's host only: its path is
//! a secret).

use axum::extract::{Extension, State};
use axum::response::Html;
use maud::html;

use super::super::auth::Caller;
use super::super::html::{page, time};
use super::super::{App, WebError, blocking};
use crate::store::AlertOutcome;

/// How many alerts the page and the API list.
pub const SHOWN: u64 = 500;

pub async fn alerts(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<Html<String>, WebError> {
    let store = app.store.clone();
    let alerts = blocking(move || store.alerts(SHOWN))
        .await
        .map_err(WebError::page)?;
    Ok(page(
        "Alerts",
        Some(&caller),
        None,
        html! {
            h1 { "Alerts" }
            @match &app.alerts_to {
                Some(host) => p.note #alerts-to { "Sent to " code { (host) } " (see Alerts in docs/controller.md for the rules)." },
                None => p.note #alerts-to { "Alerts are off: set alert_webhook_url in the controller's config." },
            }
            @if alerts.is_empty() {
                p { "None yet." }
            } @else {
                table #alerts-table {
                    thead { tr { th { "Raised" } th { "Rule" } th { "Device" } th { "Site" } th { "Alert" } th { "Delivery" } } }
                    tbody {
                        @for a in &alerts {
                            tr data-alert=(a.id) data-outcome=(a.outcome.as_str()) {
                                td { (time(a.raised_at)) }
                                td { code { (a.rule) } }
                                td { @if let Some(d) = &a.device { a href={ "/devices/" (d.as_str()) } { (d.as_str()) } } }
                                td { (a.site.as_deref().unwrap_or("")) }
                                td.summary { (a.summary) }
                                td.delivery {
                                    (a.outcome.as_str())
                                    @if a.attempts > 0 { " after " (a.attempts) " attempt(s)" }
                                    @if let Some(at) = a.finished_at { @if a.outcome != AlertOutcome::Pending { " " (time(at)) } }
                                    @if let Some(e) = &a.last_error { br; small.error { (e) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}
