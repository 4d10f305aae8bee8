//! One step of a rollout, pure: from what each device's update has reached and what the store
//! observes of it now (presence, verdict, the answers to its command), the next stage of every
//! device and what the runner must do (send an update, halt, finish). The runner persists the
//! stages before it acts, so a restarted controller goes on from them.

use std::time::Duration;

use roomready_protocol::{DeviceId, ResponseStatus, Ring, Timestamp, Verdict};
use serde::{Deserialize, Serialize};

use super::plan::Plan;

/// Where one device's update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Not sent yet: its ring has not started, or it waits for room, the window or to be online.
    Waiting,
    /// The update was sent; no answer yet.
    Sent,
    /// The device accepted it and is updating.
    Updating,
    /// It answered success; the health gate runs.
    Verifying,
    /// Healthy for the whole gate: done.
    Healthy,
    Failed,
    /// The new version did not confirm itself and the device went back to the old one.
    RolledBack,
}

impl Stage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Sent => "sent",
            Stage::Updating => "updating",
            Stage::Verifying => "verifying",
            Stage::Healthy => "healthy",
            Stage::Failed => "failed",
            Stage::RolledBack => "rolled_back",
        }
    }

    /// Whether the device is done with this rollout (well or not).
    pub const fn finished(self) -> bool {
        matches!(self, Stage::Healthy | Stage::Failed | Stage::RolledBack)
    }

    const fn failed(self) -> bool {
        matches!(self, Stage::Failed | Stage::RolledBack)
    }

    const fn in_flight(self) -> bool {
        matches!(self, Stage::Sent | Stage::Updating | Stage::Verifying)
    }
}

/// One device of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceProgress {
    pub device: DeviceId,
    pub ring: Ring,
    pub stage: Stage,
    /// The id of the update command, chosen (and persisted) before it is sent; a resend uses it
    /// again, so the agent answers it without running it twice.
    pub command: Option<String>,
    /// Its verdict when the update was sent: afterwards it must be no worse.
    pub baseline: Option<Verdict>,
    /// The `seq` of its latest state when the update was sent: the health gate looks at a
    /// state made after it.
    pub baseline_seq: Option<u64>,
    pub sent_at: Option<Timestamp>,
    /// Since when the health gate has held without a break.
    pub healthy_since: Option<Timestamp>,
    /// Why it failed, or what it waits for.
    pub reason: Option<String>,
}

/// What the store observes of a device now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub online: bool,
    pub verdict: Option<Verdict>,
    /// The `seq` of its latest state.
    pub state_seq: Option<u64>,
    /// The latest answer to its update command.
    pub answer: Option<Answer>,
    /// Its local time's offset from UTC in minutes (UTC when it did not say).
    pub utc_offset_minutes: Option<i16>,
}

/// A device's answer to its update command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: ResponseStatus,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// What the runner does after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send the update to `device` with this command id (again, when it is a resend).
    Send { device: DeviceId, command: String },
    /// Stop the rollout: failures in `ring` passed the plan's threshold.
    Halt { ring: Ring, reason: String },
    /// Every device is done.
    Done,
}

/// An update sent and never answered is sent again (same id) after this.
pub const RESEND_AFTER: Duration = Duration::from_secs(600);

/// Which devices a [`step`] looks at (`true` by index): those in flight, and those waiting in
/// the first two rings of the plan with a device not finished, the current ring and the one a
/// step may move on to. What is observed of any other device does not change what a step does
/// (finished devices stay as they are; later rings wait), so the runner reads the store for the
/// devices in play, not for the whole rollout.
pub fn in_play(plan: &Plan, devices: &[DeviceProgress]) -> Vec<bool> {
    let open: Vec<Ring> = plan
        .rings
        .iter()
        .map(|r| r.ring)
        .filter(|&ring| {
            devices
                .iter()
                .any(|d| d.ring == ring && !d.stage.finished())
        })
        .take(2)
        .collect();
    devices
        .iter()
        .map(|d| d.stage.in_flight() || (d.stage == Stage::Waiting && open.contains(&d.ring)))
        .collect()
}

/// Moves every device on by what is `observe`d at `now`, then, when `may_send` (the rollout
/// runs), starts updates in the current ring as the plan allows. `new_id` names new commands.
pub fn step(
    plan: &Plan,
    devices: &mut [DeviceProgress],
    observe: impl Fn(&DeviceId) -> Observed,
    now: Timestamp,
    may_send: bool,
    mut new_id: impl FnMut() -> String,
) -> Vec<Action> {
    let mut actions = Vec::new();
    for d in devices.iter_mut() {
        let seen = observe(&d.device);
        let gate = plan
            .rings
            .iter()
            .find(|r| r.ring == d.ring)
            .map_or(Duration::ZERO, |r| r.gate);
        advance(d, &seen, gate, now);
        if may_send
            && d.stage == Stage::Sent
            && seen.online
            && d.sent_at.is_some_and(|t| elapsed(t, now) >= RESEND_AFTER)
            && let Some(command) = &d.command
        {
            d.sent_at = Some(now);
            actions.push(Action::Send {
                device: d.device.clone(),
                command: command.clone(),
            });
        }
    }
    // The current ring: the first of the plan with a device not finished.
    let Some(current) = plan.rings.iter().find(|r| {
        devices
            .iter()
            .any(|d| d.ring == r.ring && !d.stage.finished())
    }) else {
        // Halting is decided ring by ring below; a last ring may finish over its threshold.
        if let Some(halt) = over_threshold(plan, devices) {
            actions.push(halt);
        } else {
            actions.push(Action::Done);
        }
        return actions;
    };
    if let Some(halt) = over_threshold(plan, devices) {
        actions.push(halt);
        return actions;
    }
    if !may_send {
        return actions;
    }
    let in_flight = devices
        .iter()
        .filter(|d| d.ring == current.ring && d.stage.in_flight())
        .count();
    let mut room = (current.concurrency as usize).saturating_sub(in_flight);
    for d in devices.iter_mut() {
        if room == 0 {
            break;
        }
        if d.ring != current.ring || d.stage != Stage::Waiting {
            continue;
        }
        let seen = observe(&d.device);
        if !seen.online {
            d.reason = Some("offline: sent when it is back".into());
            continue;
        }
        // The window is in the device's local time.
        let offset_ms = i64::from(seen.utc_offset_minutes.unwrap_or(0)) * 60_000;
        let local = Timestamp::from_unix_ms(now.unix_ms().saturating_add_signed(offset_ms));
        if plan.window.is_some_and(|w| !w.contains(local)) {
            d.reason = Some("outside the window (device local time)".into());
            continue;
        }
        let command = new_id();
        d.stage = Stage::Sent;
        d.command = Some(command.clone());
        d.baseline = seen.verdict;
        d.baseline_seq = seen.state_seq;
        d.sent_at = Some(now);
        d.reason = None;
        room -= 1;
        actions.push(Action::Send {
            device: d.device.clone(),
            command,
        });
    }
    actions
}

/// The halt of the first ring whose failures passed the threshold.
fn over_threshold(plan: &Plan, devices: &[DeviceProgress]) -> Option<Action> {
    plan.rings.iter().find_map(|r| {
        let ring: Vec<&DeviceProgress> = devices.iter().filter(|d| d.ring == r.ring).collect();
        let failed = ring.iter().filter(|d| d.stage.failed()).count();
        plan.halt_after
            .exceeded(failed, ring.len())
            .then(|| Action::Halt {
                ring: r.ring,
                reason: format!(
                    "{failed} of the {} devices of ring {} failed or rolled back",
                    ring.len(),
                    r.ring
                ),
            })
    })
}

fn elapsed(since: Timestamp, now: Timestamp) -> Duration {
    Duration::from_millis(now.unix_ms().saturating_sub(since.unix_ms()))
}

/// One device's next stage from what is seen of it.
fn advance(d: &mut DeviceProgress, seen: &Observed, gate: Duration, now: Timestamp) {
    if matches!(d.stage, Stage::Sent | Stage::Updating)
        && let Some(Answer {
            status,
            reason,
            message,
            ..
        }) = &seen.answer
    {
        match status {
            ResponseStatus::Accepted => d.stage = Stage::Updating,
            ResponseStatus::Succeeded => {
                d.stage = Stage::Verifying;
                d.healthy_since = None;
            }
            ResponseStatus::Rejected | ResponseStatus::Failed => {
                let rolled_back = reason.as_deref() == Some("rolled_back");
                d.stage = if rolled_back {
                    Stage::RolledBack
                } else {
                    Stage::Failed
                };
                d.reason = Some(
                    [reason.as_deref(), message.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": "),
                );
            }
        }
    }
    if d.stage == Stage::Verifying {
        // Healthy: online, a state made since the update was sent, and a verdict no worse than
        // before.
        let fresh = match (seen.state_seq, d.baseline_seq) {
            (Some(now), Some(before)) => now > before,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let no_worse = match (d.baseline, seen.verdict) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(before), Some(after)) => after.rank() <= before.rank(),
        };
        if seen.online && fresh && no_worse {
            let since = *d.healthy_since.get_or_insert(now);
            if elapsed(since, now) >= gate {
                d.stage = Stage::Healthy;
                d.reason = None;
            }
        } else {
            d.healthy_since = None;
            d.reason = Some(if !seen.online {
                "offline since the update".into()
            } else if !no_worse {
                format!(
                    "verdict {} after the update (before: {})",
                    seen.verdict.map_or("none", |v| v.as_str()),
                    d.baseline.map_or("none", |v| v.as_str())
                )
            } else {
                "waiting for a state made since the update".into()
            });
        }
    }
}

#[cfg(test)]
mod tests;
