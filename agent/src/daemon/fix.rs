//! The `fix` command in the daemon: one request at a time, run in its own task (the facts are
//! collected, the registry read and written off the loop), answered as docs/protocol.md says:
//!
//! - `plan`: `succeeded` with the plan ([`crate::fix::Plan::message`]) when it is ready;
//! - `apply`, `undo`: `rejected` when it would change nothing or may not (`not_allowed`,
//!   `plan_changed`, `backup_exists`, `no_backup`, `backup_invalid`), else `accepted`
//!   (remembered in the ledger before anything is written), then `succeeded` (what was written,
//!   restart needed) or `failed`; a check follows so the state shows the new values.
//!
//! A refusal is not remembered (sent again, it is judged again); `busy` while another fix
//! request runs; `not_supported` on an agent without a registry to write (not Windows, or a
//! simulation without one).

use std::pin::Pin;

use roomready_protocol::{FixMode, Timestamp};
use tokio::sync::oneshot;

use super::*;
use crate::fix::{self, FixEnv, FixError};

/// Collects the device's facts, as the checks do.
pub(super) type CollectFacts =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Facts, FactsError>> + Send>> + Send + Sync>;

/// From a fix task to the loop.
pub(super) enum FixMsg {
    /// The checks passed and writing starts once `go` fires: answer `accepted` (remembered
    /// first), then fire it.
    Accepted { go: oneshot::Sender<()> },
    /// The final answer; `wrote`: the registry may have changed (a check follows).
    Done { answer: Answer, wrote: bool },
}

/// The fix of a running agent: its environment, and the request running, if any.
#[derive(Debug)]
pub(super) struct FixState {
    env: Option<FixEnv>,
    running: Option<Request>,
}

/// The fix request running.
#[derive(Debug, Clone)]
struct Request {
    id: String,
    /// Where its answers go (MQTT 5).
    reply: Option<Reply>,
    /// It was answered `accepted` (and remembered so): its final answer is remembered too.
    accepted: bool,
}

impl FixState {
    pub(super) fn new(env: Option<FixEnv>) -> Self {
        FixState { env, running: None }
    }
}

/// `accepted`, `succeeded`, … to request `id`.
fn answer(id: &str, status: ResponseStatus, reason: Option<&str>, message: String) -> Answer {
    Answer {
        id: id.to_owned(),
        status,
        reason: reason.map(str::to_owned),
        message: Some(message),
    }
}

/// The answer to a fix that ended in `error`: `rejected` when nothing was written, else
/// `failed`.
fn refusal(id: &str, error: &FixError) -> Answer {
    let status = if error.refused() {
        ResponseStatus::Rejected
    } else {
        ResponseStatus::Failed
    };
    answer(id, status, Some(error.reason()), error.to_string())
}

/// Runs blocking `work` (registry reads and writes) off the async threads; a panic in it is a
/// `failed` answer, not a dead task.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the fix task failed: {e}"))
}

/// What an `apply` or `undo` writes.
enum Work {
    Apply { facts: Box<Facts>, digest: String },
    Undo,
}

/// The request's work, in its own task: every outcome goes back to the loop through `done`.
async fn run_fix(
    id: String,
    mode: FixMode,
    digest: Option<String>,
    env: FixEnv,
    collect: CollectFacts,
    now: Timestamp,
    done: mpsc::Sender<FixMsg>,
) {
    let finish = |answer: Answer, wrote: bool| {
        let done = done.clone();
        async move {
            let _ = done.send(FixMsg::Done { answer, wrote }).await;
        }
    };
    let internal =
        |message: String| answer(&id, ResponseStatus::Failed, Some("internal_error"), message);
    let facts = if mode == FixMode::Undo {
        None
    } else {
        match collect().await {
            Ok(facts) => Some(facts),
            Err(e) => {
                let message = format!("the device's facts could not be read: {e}");
                let failed = answer(
                    &id,
                    ResponseStatus::Failed,
                    Some("facts_unavailable"),
                    message,
                );
                return finish(failed, false).await;
            }
        }
    };
    let work = match (mode, facts, digest) {
        (FixMode::Plan, Some(facts), _) => {
            let answer = match blocking(move || env.plan(&facts).message(env.allowed)).await {
                Ok(message) => answer(&id, ResponseStatus::Succeeded, None, message),
                Err(e) => internal(e),
            };
            return finish(answer, false).await;
        }
        (FixMode::Apply, Some(facts), Some(digest)) => Work::Apply {
            facts: Box::new(facts),
            digest,
        },
        (FixMode::Undo, _, _) => Work::Undo,
        // Command::decode and check_fix let no other combination through.
        _ => return finish(internal("fix arguments out of order".into()), false).await,
    };
    // Refuse what would write nothing, before `accepted`.
    let checked = {
        let env = env.clone();
        let work = match &work {
            Work::Apply { facts, digest } => Some((facts.clone(), digest.clone())),
            Work::Undo => None,
        };
        blocking(move || match work {
            Some((facts, digest)) => env.check_apply(&facts, &digest).map(|_| ()),
            None => env.check_undo(),
        })
        .await
    };
    match checked {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return finish(refusal(&id, &error), false).await,
        Err(e) => return finish(internal(e), false).await,
    }
    let (go, went) = oneshot::channel();
    if done.send(FixMsg::Accepted { go }).await.is_err() || went.await.is_err() {
        // The loop stopped: write nothing.
        return;
    }
    let outcome = blocking(move || match work {
        Work::Apply { facts, digest } => {
            fix::apply(&env, &facts, Some(&digest), now).map(|applied| applied.message())
        }
        Work::Undo => fix::undo(&env).map(|undone| undone.message()),
    })
    .await;
    let (answer, wrote) = match outcome {
        Ok(Ok(message)) => (answer(&id, ResponseStatus::Succeeded, None, message), true),
        Ok(Err(error)) => (refusal(&id, &error), !error.refused()),
        Err(e) => (internal(e), true),
    };
    finish(answer, wrote).await;
}

/// The fix as the running daemon drives it.
impl<C: Clock> Running<'_, C> {
    /// Request `id` starts a fix in its own task. Refusals are answered here (and not
    /// remembered); everything else is answered from [`Running::on_fix`]. Always `None`: the
    /// caller answers nothing itself.
    pub(super) fn start_fix(
        &mut self,
        id: &str,
        mode: FixMode,
        digest: Option<&str>,
        reply: Option<&Reply>,
    ) -> Option<Answer> {
        let refused = match (&self.fix.env, &self.fix.running) {
            (_, Some(running)) if running.id == id => {
                // A redelivery of the request running: its answer follows.
                return None;
            }
            (_, Some(running)) => Some((
                "busy",
                format!("the fix requested by {} is still running", running.id),
            )),
            (None, None) => Some((
                "not_supported",
                "this agent has no registry to repair: fix works on Windows devices".to_owned(),
            )),
            (Some(env), None) if mode != FixMode::Plan && !env.allowed => Some((
                "not_allowed",
                FixError::NotAllowed {
                    config: env.config.clone(),
                }
                .to_string(),
            )),
            (Some(_), None) => None,
        };
        if let Some((reason, message)) = refused {
            tracing::info!(device = %self.device, id, reason, "fix refused");
            self.respond(
                answer(id, ResponseStatus::Rejected, Some(reason), message),
                reply,
            );
            return None;
        }
        let env = self.fix.env.clone()?;
        self.fix.running = Some(Request {
            id: id.to_owned(),
            reply: reply.cloned(),
            accepted: false,
        });
        tokio::spawn(run_fix(
            id.to_owned(),
            mode,
            digest.map(str::to_owned),
            env,
            Arc::clone(&self.collect_facts),
            self.clock.now(),
            self.fix_msgs.clone(),
        ));
        None
    }

    /// A message from the fix task: `accepted` (remembered before writing starts) or the final
    /// answer, after which a check runs when the registry may have changed.
    pub(super) fn on_fix(&mut self, msg: FixMsg) {
        let Some(request) = self.fix.running.clone() else {
            return;
        };
        match msg {
            FixMsg::Accepted { go } => {
                let accepted = answer(
                    &request.id,
                    ResponseStatus::Accepted,
                    None,
                    "the checks passed: the old values are saved, then written".into(),
                );
                if let Err(error) = self.ledger.record(accepted.clone(), self.clock.now()) {
                    tracing::error!(%error, "cannot record a command answer");
                }
                self.respond(accepted, request.reply.as_ref());
                if let Some(running) = &mut self.fix.running {
                    running.accepted = true;
                }
                let _ = go.send(());
            }
            FixMsg::Done { answer, wrote } => {
                self.fix.running = None;
                tracing::info!(device = %self.device, id = request.id, status = ?answer.status, "fix ended");
                // A refusal before `accepted` ran nothing: not remembered, as for any command.
                if (request.accepted || answer.status != ResponseStatus::Rejected)
                    && let Err(error) = self.ledger.record(answer.clone(), self.clock.now())
                {
                    tracing::error!(%error, "cannot record a command answer");
                }
                self.respond(answer, request.reply.as_ref());
                if wrote {
                    self.check_wanted = true;
                }
            }
        }
    }
}
