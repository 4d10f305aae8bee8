//! Rollouts on the web: the JSON API (`/api/v1/rollouts`: list, start, one, pause / resume /
//! abort) and the pages (`/rollouts`: the list and, for operators, the start form;
//! `/rollouts/{id}`: per ring and device, where each update stands, and the log). Starting and
//! changing a rollout is for operators and is logged with their name.

use axum::Form;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;

use super::auth::Caller;
use super::html::{page, time};
use super::{App, WebError, blocking};
use crate::clock;
use crate::rollouts::plan::{Plan, PlanRequest, Target};
use crate::store::{RolloutLog, RolloutState};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/rollouts", get(list_api).post(start_api))
        .route("/api/v1/rollouts/{id}", get(one_api))
        .route("/api/v1/rollouts/{id}/{action}", post(change_api))
        .route("/rollouts", get(list_page).post(start_page))
        .route("/rollouts/{id}", get(one_page))
        .route("/rollouts/{id}/{action}", post(change_page))
}

fn operator(caller: &Caller) -> Result<(), WebError> {
    if caller.is_operator() {
        Ok(())
    } else {
        Err(WebError::forbidden(format!(
            "{} is a {}: only operators start and change rollouts",
            caller.name, caller.role
        )))
    }
}

async fn start(app: &App, caller: &Caller, request: &PlanRequest) -> Result<i64, WebError> {
    operator(caller)?;
    let plan = request.plan().map_err(WebError::bad_request)?;
    let store = app.store.clone();
    let by = caller.name.clone();
    blocking(move || store.create_rollout(&plan, &by, clock::now())).await
}

/// Pauses, resumes or aborts rollout `id` for `caller`.
async fn change(app: &App, caller: &Caller, id: i64, action: &str) -> Result<(), WebError> {
    operator(caller)?;
    let store = app.store.clone();
    let Some(detail) = blocking(move || store.rollout(id)).await? else {
        return Err(WebError::not_found(format!("there is no rollout {id}")));
    };
    let now = detail.summary.state;
    let (to, verb) = crate::rollouts::transition(now, action).map_err(|e| match e {
        crate::rollouts::TransitionError::Unknown(_) => WebError::not_found(e.to_string()),
        crate::rollouts::TransitionError::NotNow { .. } => {
            WebError::new(StatusCode::CONFLICT, format!("rollout {id}: {e}"))
        }
    })?;
    let store = app.store.clone();
    let line = RolloutLog {
        at: clock::now(),
        by: caller.name.clone(),
        action: verb.into(),
        detail: format!("was {}", now.as_str()),
    };
    blocking(move || store.save_rollout(id, &[], Some((to, None)), &[line], clock::now())).await
}

async fn list_api(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    Ok(axum::Json(blocking(move || store.rollouts()).await?).into_response())
}

async fn start_api(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let request: PlanRequest = serde_json::from_slice(&body).map_err(|e| {
        WebError::bad_request(format!(
            "the body must be a plan such as {{\"target\": \"agent\", \"version\": \"1.4.0\", \
             \"rings\": \"0:2:10,1:10:30\", \"halt_after\": \"10%\"}}: {e}"
        ))
    })?;
    let id = start(&app, &caller, &request).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(serde_json::json!({ "id": id })),
    )
        .into_response())
}

async fn one_api(State(app): State<App>, Path(id): Path<i64>) -> Result<Response, WebError> {
    let store = app.store.clone();
    match blocking(move || store.rollout(id)).await? {
        Some(detail) => Ok(axum::Json(detail).into_response()),
        None => Err(WebError::not_found(format!("there is no rollout {id}"))),
    }
}

async fn change_api(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    change(&app, &caller, id, &action).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_page(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
) -> Result<Html<String>, WebError> {
    let store = app.store.clone();
    let rollouts = blocking(move || store.rollouts())
        .await
        .map_err(WebError::page)?;
    let csrf = caller.csrf.clone().unwrap_or_default();
    Ok(page(
        "Rollouts",
        Some(&caller),
        None,
        html! {
            h1 { "Rollouts" }
            @if rollouts.is_empty() {
                p { "None yet." }
            } @else {
                table #rollouts-table {
                    thead { tr { th { "#" } th { "What" } th { "State" } th { "Devices" } th { "Started" } } }
                    tbody {
                        @for r in &rollouts {
                            tr data-rollout=(r.id) data-state=(r.state.as_str()) {
                                td { a href={ "/rollouts/" (r.id) } { (r.id) } }
                                td { (what(&r.plan)) }
                                td.state { (r.state.as_str()) @if let Some(why) = &r.reason { br; small { (why) } } }
                                td { @for (stage, n) in &r.stages { @if *n > 0 { (stage.as_str()) " " (n) " " } } }
                                td { (time(r.created_at)) " by " (r.created_by) }
                            }
                        }
                    }
                }
            }
            @if caller.is_operator() {
                h2 { "Start a rollout" }
                form #start-rollout method="post" action="/rollouts" {
                    input type="hidden" name="csrf" value=(csrf);
                    label { "What " select name="target" { option value="agent" { "agent (self-update)" } option value="app" { "Teams Rooms app" } } }
                    label { "Version " input type="text" name="version" placeholder="latest" size="10"; }
                    label { "Rings " input type="text" name="rings" placeholder="0:2:10,1:10:30,2:50:60" size="28" required; }
                    label { "Halt after " input type="text" name="halt_after" placeholder="0 or 10%" size="6"; }
                    label { "Window (device local time) " input type="text" name="window" placeholder="22:00-05:00" size="12"; }
                    button type="submit" { "Start" }
                    p.note { "Rings: RING:CONCURRENCY:GATE_MINUTES in order. A device's ring is its agent's ring key." }
                }
            }
        },
    ))
}

fn what(plan: &Plan) -> String {
    let target = match &plan.target {
        Target::Agent { version } => format!("agent {version}"),
        Target::App => "Teams Rooms app".into(),
    };
    let rings: Vec<String> = plan.rings.iter().map(|r| r.ring.to_string()).collect();
    format!("{target}, rings {}", rings.join(" → "))
}

async fn start_page(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Form(form): Form<PlanRequest>,
) -> Result<Response, WebError> {
    let id = start(&app, &caller, &form).await.map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/rollouts/{id}")).into_response())
}

async fn one_page(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> Result<Html<String>, WebError> {
    let store = app.store.clone();
    let Some(detail) = blocking(move || store.rollout(id))
        .await
        .map_err(WebError::page)?
    else {
        return Err(WebError::not_found(format!("there is no rollout {id}")).page());
    };
    let s = &detail.summary;
    let csrf = caller.csrf.clone().unwrap_or_default();
    let button = |action: &str, label: &str| {
        html! {
            form.inline method="post" action={ "/rollouts/" (id) "/" (action) } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" id={ "rollout-" (action) } { (label) }
            }
        }
    };
    Ok(page(
        &format!("Rollout {id}"),
        Some(&caller),
        None,
        html! {
            h1 { "Rollout " (id) ": " (what(&s.plan)) }
            p #rollout-state data-state=(s.state.as_str()) {
                strong { (s.state.as_str()) }
                @if let Some(why) = &s.reason { " — " (why) }
            }
            @if caller.is_operator() {
                @match s.state {
                    RolloutState::Running => { (button("pause", "Pause")) (button("abort", "Abort")) }
                    RolloutState::Paused => { (button("resume", "Resume")) (button("abort", "Abort")) }
                    RolloutState::Halted => { (button("abort", "Abort")) }
                    _ => {}
                }
            }
            @for ring in &s.plan.rings {
                h2 { "Ring " (ring.ring) @if ring.ring.get() == 0 { " (pilot)" } }
                p.note { (ring.concurrency) " at a time; healthy for " (ring.gate.as_secs() / 60) " min" }
                table.ring data-ring=(ring.ring) {
                    thead { tr { th { "Device" } th { "Stage" } th { "Why" } } }
                    tbody {
                        @for d in detail.devices.iter().filter(|d| d.ring == ring.ring) {
                            tr data-device=(d.device.as_str()) data-stage=(d.stage.as_str()) {
                                td { a href={ "/devices/" (d.device.as_str()) } { (d.device.as_str()) } }
                                td.stage { (d.stage.as_str()) }
                                td.reason { (d.reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
            h2 { "Log" }
            ul #rollout-log {
                @for line in &detail.log {
                    li { (time(line.at)) " " strong { (line.action) } " by " (line.by) ": " (line.detail) }
                }
            }
        },
    ))
}

async fn change_page(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path((id, action)): Path<(i64, String)>,
) -> Result<Response, WebError> {
    change(&app, &caller, id, &action)
        .await
        .map_err(WebError::page)?;
    Ok(Redirect::to(&format!("/rollouts/{id}")).into_response())
}
