//! Live updates for open pages: Server-Sent Events at `/api/v1/live`, one per committed batch.
//!
//! Events (each `data:` is JSON):
//! - `device`: a device's row as it is now (after a state, status, event or answer);
//! - `history`: a new history entry (a verdict change, an event, a command, an answer, …);
//! - `summary`: the fleet totals, at most every [`SUMMARY_EVERY`] while anything changes;
//! - `reload`: this stream fell behind and skipped changes: reload the page.
//!
//! `?device=ID` limits `device` and `history` to one device (the device page). A comment line
//! every [`KEEP_ALIVE`] keeps proxies from closing an idle stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::{App, WebError};
use crate::store::Committed;
use roomready_protocol::DeviceId;

pub const SUMMARY_EVERY: Duration = Duration::from_millis(500);
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, Deserialize)]
pub struct LiveParams {
    device: Option<String>,
}

fn json_event(name: &str, value: &impl serde::Serialize) -> Event {
    match serde_json::to_string(value) {
        Ok(data) => Event::default().event(name).data(data),
        Err(_) => Event::default().comment("unserializable"),
    }
}

pub async fn stream(
    State(app): State<App>,
    Query(params): Query<LiveParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, WebError> {
    let device = params
        .device
        .filter(|d| !d.is_empty())
        .map(|d| DeviceId::new(d).map_err(|e| WebError::bad_request(e.to_string())))
        .transpose()?;
    let receiver = app.live.subscribe();
    struct Live {
        app: App,
        receiver: tokio::sync::broadcast::Receiver<Arc<Committed>>,
        device: Option<DeviceId>,
        pending: std::collections::VecDeque<Event>,
        summary_due: bool,
        last_summary: Option<Instant>,
    }
    let state = Live {
        app,
        receiver,
        device,
        pending: std::collections::VecDeque::new(),
        summary_due: false,
        last_summary: None,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.pending.pop_front() {
                return Some((Ok(event), s));
            }
            // A summary is owed: send it once SUMMARY_EVERY has passed since the last one, unless
            // more changes come first (they are sent, and the summary still follows).
            let wait = match (s.summary_due, s.last_summary) {
                (true, Some(last)) => {
                    Some((last + SUMMARY_EVERY).saturating_duration_since(Instant::now()))
                }
                (true, None) => Some(Duration::ZERO),
                (false, _) => None,
            };
            let received = match wait {
                Some(wait) => match tokio::time::timeout(wait, s.receiver.recv()).await {
                    Ok(received) => received,
                    Err(_) => {
                        s.summary_due = false;
                        s.last_summary = Some(Instant::now());
                        let store = s.app.store.clone();
                        match tokio::task::spawn_blocking(move || store.summary()).await {
                            Ok(Ok(summary)) => {
                                return Some((Ok(json_event("summary", &summary)), s));
                            }
                            _ => continue,
                        }
                    }
                },
                None => s.receiver.recv().await,
            };
            match received {
                Ok(committed) => {
                    let wanted = |id: &DeviceId| s.device.as_ref().is_none_or(|d| d == id);
                    for row in committed.devices.iter().filter(|r| wanted(&r.id)) {
                        s.pending.push_back(json_event("device", row));
                    }
                    for entry in committed.history.iter().filter(|h| wanted(&h.device)) {
                        s.pending.push_back(json_event("history", entry));
                    }
                    if !committed.devices.is_empty() {
                        s.summary_due = true;
                    }
                }
                Err(RecvError::Lagged(_)) => {
                    s.pending
                        .push_back(Event::default().event("reload").data("{}"));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
