//! The `update_app` command's lifecycle as a state type: not configured, idle, or running one
//! request. The daemon's loop routes commands and outcomes to it; the transitions, and what a
//! request is refused for, are decided here, with the daemon's side of it (an `impl Running`
//! block: the task that runs the update, the events and the final answer).

use super::*;
use crate::app_update::AppUpdate;
use crate::link::Reply;

/// Where the app update is.
#[derive(Debug)]
pub(super) enum AppUpdateState {
    /// No `app_update_command` is configured.
    NotConfigured,
    /// Configured; nothing runs.
    Idle(AppUpdate),
    /// Running for request `id`, whose final answer goes to `reply` (MQTT 5) when it ends.
    Running {
        updater: AppUpdate,
        id: String,
        reply: Option<Reply>,
    },
}

impl AppUpdateState {
    pub(super) fn new(updater: Option<AppUpdate>) -> Self {
        updater.map_or(AppUpdateState::NotConfigured, AppUpdateState::Idle)
    }

    /// Request `id` starts the update: the updater to run, now `Running`; or why not.
    pub(super) fn start(&mut self, id: &str, reply: Option<&Reply>) -> Result<AppUpdate, Refused> {
        match self {
            AppUpdateState::NotConfigured => Err(Refused {
                reason: "not_configured",
                message: "no app_update_command is configured on this device".into(),
            }),
            AppUpdateState::Running { id: running, .. } => Err(Refused {
                reason: "busy",
                message: format!("the app update requested by {running} is still running"),
            }),
            AppUpdateState::Idle(updater) => {
                let updater = updater.clone();
                *self = AppUpdateState::Running {
                    updater: updater.clone(),
                    id: id.to_owned(),
                    reply: reply.cloned(),
                };
                Ok(updater)
            }
        }
    }

    /// The running update ended: the request it answers and where, now `Idle`; `None` when
    /// nothing was running.
    pub(super) fn finish(&mut self) -> Option<(String, Option<Reply>)> {
        match std::mem::replace(self, AppUpdateState::NotConfigured) {
            AppUpdateState::Running { updater, id, reply } => {
                *self = AppUpdateState::Idle(updater);
                Some((id, reply))
            }
            other => {
                *self = other;
                None
            }
        }
    }
}

/// The app update as the running daemon drives it: a request starts it in its own task, its
/// outcome comes back as the final answer.
impl<C: Clock> Running<'_, C> {
    /// Starts the configured app update in its own task: `accepted` now, the outcome later
    /// ([`Running::on_app_updated`]).
    pub(super) fn start_app_update(&mut self, id: &str, reply: Option<&Reply>) -> Answer {
        let updater = match self.app_update.start(id, reply) {
            Ok(updater) => updater,
            Err(refused) => return refused.answer(id),
        };
        let done = self.app_update_done.clone();
        tokio::spawn(async move {
            let outcome = updater.0.update().await;
            let _ = done.send(outcome).await;
        });
        self.event(EventBody::AppUpdate {
            stage: AppUpdateStage::Started,
            reason: None,
        });
        Answer {
            id: id.to_owned(),
            status: ResponseStatus::Accepted,
            reason: None,
            message: Some("the app update runs now; its outcome follows".into()),
        }
    }

    /// The app update ended: the final answer to its request, an event, and a check so the new
    /// app version shows in the state.
    pub(super) fn on_app_updated(&mut self, outcome: Result<String, AppUpdateError>) {
        let Some((id, reply)) = self.app_update.finish() else {
            return;
        };
        let (answer, event) = match outcome {
            Ok(message) => (
                Answer {
                    id,
                    status: ResponseStatus::Succeeded,
                    reason: None,
                    message: Some(message),
                },
                EventBody::AppUpdate {
                    stage: AppUpdateStage::Succeeded,
                    reason: None,
                },
            ),
            Err(error) => (
                Answer {
                    id,
                    status: ResponseStatus::Failed,
                    reason: Some(error.reason().to_owned()),
                    message: Some(error.to_string()),
                },
                EventBody::AppUpdate {
                    stage: AppUpdateStage::Failed,
                    reason: Some(error.to_string()),
                },
            ),
        };
        tracing::info!(device = %self.device, id = answer.id, status = ?answer.status, "app update ended");
        if let Err(error) = self.ledger.record(answer.clone(), self.clock.now()) {
            tracing::error!(%error, "cannot record a command answer");
        }
        self.respond(answer, reply.as_ref());
        self.event(event);
        self.check_wanted = true;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::app_update::{AppUpdateError, AppUpdater};

    struct Noop;

    impl AppUpdater for Noop {
        fn update(
            &self,
        ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, AppUpdateError>> + Send + '_>>
        {
            Box::pin(async { Ok("done".into()) })
        }
    }

    fn reply() -> Reply {
        Reply {
            topic: "answers".into(),
            correlation: Some(vec![1]),
        }
    }

    #[test]
    fn not_configured_refuses_every_request() {
        let mut state = AppUpdateState::new(None);
        let refused = state.start("a-1", None).expect_err("refused");
        assert_eq!(refused.reason, "not_configured");
        assert!(state.finish().is_none());
        assert!(matches!(state, AppUpdateState::NotConfigured));
    }

    #[test]
    fn one_request_runs_at_a_time_and_ends_idle() {
        let mut state = AppUpdateState::new(Some(AppUpdate(Arc::new(Noop))));
        assert!(state.finish().is_none(), "nothing runs yet");
        state.start("a-1", Some(&reply())).expect("starts");
        let busy = state.start("a-2", None).expect_err("busy");
        assert_eq!(busy.reason, "busy");
        assert!(busy.message.contains("a-1"), "{}", busy.message);
        assert_eq!(state.finish(), Some(("a-1".to_owned(), Some(reply()))));
        assert!(matches!(state, AppUpdateState::Idle(_)));
        assert!(state.finish().is_none(), "answered once");
        state.start("a-3", None).expect("idle again");
    }
}
