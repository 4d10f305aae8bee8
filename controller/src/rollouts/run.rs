//! The rollout runner: every few seconds (sooner after ingest commits), for each rollout still
//! followed, it reads its devices' progress and what the store observes of them, takes one
//! [`step`], saves the outcome, and only then sends what the step decided. A command's id is
//! saved before it is sent, so a controller killed in between sends the same id again when it
//! comes back, which the agent answers without running it twice: no device is updated twice
//! and no answer is lost (answers are in the store).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::step::{Action, DeviceProgress, Observed, in_play, step};
use crate::clock;
use crate::commands::Commander;
use crate::store::{RolloutLog, RolloutState, Store, StoreError, on_pool};

/// How often rollouts move on when nothing is committed.
const TICK: Duration = Duration::from_secs(2);
/// The least time between two steps when commits wake the runner.
const MIN_GAP: Duration = Duration::from_millis(250);
/// Who the runner's log lines and commands are by.
pub const BY: &str = "rollout";

/// The task's name for [`Store::lead`].
const TASK: &str = "rollouts";

/// Runs every followed rollout until aborted; `changed` counts the steps that changed the
/// store, for whoever waits on them.
pub fn start(
    store: Arc<dyn Store>,
    commander: Commander,
    mut commits: watch::Receiver<u64>,
    changed: watch::Sender<u64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let round = tokio::time::Instant::now();
            match tick(&store, &commander).await {
                Ok(true) => changed.send_modify(|n| *n += 1),
                Ok(false) => {}
                Err(e) => tracing::warn!("rollouts: {e}"),
            }
            tokio::select! {
                changed = commits.changed() => {
                    if changed.is_err() {
                        // The controller is stopping: no more commits to wake on.
                        tokio::time::sleep(TICK).await;
                    }
                    tokio::time::sleep(MIN_GAP.saturating_sub(round.elapsed())).await;
                }
                _ = tokio::time::sleep(TICK) => {}
            }
        }
    })
}

/// One step of every followed rollout; whether it changed anything.
async fn tick(store: &Arc<dyn Store>, commander: &Commander) -> Result<bool, StoreError> {
    // On a database shared by several controllers, one of them runs the rollouts: an update is
    // sent by one controller, never by two.
    let lead = Arc::clone(store);
    if !on_pool(move || lead.lead(TASK)).await? {
        return Ok(false);
    }
    let mut any = false;
    let reader = Arc::clone(store);
    let followed: Vec<i64> = on_pool(move || reader.rollouts())
        .await?
        .into_iter()
        .filter(|r| r.state.followed())
        .map(|r| r.id)
        .collect();
    for id in followed {
        let reader = Arc::clone(store);
        let Some(detail) = on_pool(move || reader.rollout(id)).await? else {
            continue;
        };
        let summary = detail.summary;
        let before = detail.devices;
        // Only the devices in play: a finished device or a later ring's is not read.
        let play = in_play(&summary.plan, &before);
        let keys: Vec<_> = before
            .iter()
            .zip(&play)
            .filter(|(_, in_play)| **in_play)
            .map(|(d, _)| (d.device.clone(), d.command.clone()))
            .collect();
        let names: Vec<_> = keys.iter().map(|(d, _)| d.clone()).collect();
        let reader = Arc::clone(store);
        let observed = on_pool(move || reader.observe(&keys)).await?;
        let seen: HashMap<_, Observed> = names.into_iter().zip(observed).collect();
        let now = clock::now();
        let mut devices = before.clone();
        let mut fallback = 0u32;
        let actions = step(
            &summary.plan,
            &mut devices,
            |d| seen.get(d).cloned().unwrap_or_default(),
            now,
            summary.state == RolloutState::Running,
            || {
                Commander::new_id().unwrap_or_else(|_| {
                    fallback += 1;
                    format!("r-{id}-{}-{fallback}", now.unix_ms())
                })
            },
        );
        let mut state = None;
        let mut log = Vec::new();
        for action in &actions {
            match action {
                Action::Halt { reason, .. } if summary.state != RolloutState::Halted => {
                    tracing::warn!(rollout = id, "rollout halted: {reason}");
                    state = Some((RolloutState::Halted, Some(reason.clone())));
                    log.push(line(now, "halted", reason.clone()));
                }
                Action::Done if summary.state != RolloutState::Done => {
                    tracing::info!(rollout = id, "rollout done");
                    state = Some((RolloutState::Done, None));
                    log.push(line(now, "done", "every device finished".into()));
                }
                _ => {}
            }
        }
        let changed: Vec<DeviceProgress> = devices
            .iter()
            .zip(&before)
            .filter(|(after, before)| after != before)
            .map(|(after, _)| after.clone())
            .collect();
        if !changed.is_empty() || state.is_some() {
            any = true;
            let writer = Arc::clone(store);
            on_pool(move || writer.save_rollout(id, &changed, state, &log, now)).await?;
        }
        let action = summary.plan.target.action();
        for sent in actions {
            if let Action::Send { device, command } = sent {
                let by = format!("{BY} #{id}");
                if let Err(e) = commander
                    .send_as(device.clone(), action.clone(), &by, command)
                    .await
                {
                    // Still `sent` in the store: sent again (same id) after RESEND_AFTER.
                    tracing::warn!(rollout = id, %device, "sending the update failed: {e}");
                }
            }
        }
    }
    Ok(any)
}

fn line(at: roomready_protocol::Timestamp, action: &str, detail: String) -> RolloutLog {
    RolloutLog {
        at,
        by: BY.into(),
        action: action.into(),
        detail,
    }
}
