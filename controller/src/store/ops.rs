//! What the store keeps for the controller's own operations, beside what devices send: alerts
//! (raised, deduplicated, delivered) with what their rules read, and rollouts with their
//! devices' progress and log.

use roomready_protocol::{DeviceId, Timestamp};
use serde::Serialize;

use super::HistoryEntry;

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertOutcome {
    /// Raised, not yet accepted by the webhook (being retried when `attempts` > 0).
    Pending,
    Delivered,
    /// Given up after its attempts; `last_error` says why.
    Failed,
    /// Raised for a device under maintenance (`alert_suppress`): recorded, never sent.
    Suppressed,
}

impl AlertOutcome {
    pub const ALL: [AlertOutcome; 4] = [
        AlertOutcome::Pending,
        AlertOutcome::Delivered,
        AlertOutcome::Failed,
        AlertOutcome::Suppressed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            AlertOutcome::Pending => "pending",
            AlertOutcome::Delivered => "delivered",
            AlertOutcome::Failed => "failed",
            AlertOutcome::Suppressed => "suppressed",
        }
    }

    pub fn parse(text: &str) -> Option<AlertOutcome> {
        AlertOutcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// An alert a rule raised, before it is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The rule's name (`verdict_worse`, `offline`, ...).
    pub rule: &'static str,
    /// What it is about, once: an alert whose key was recorded before is not raised again.
    pub key: String,
    /// Its rule and device: another alert of the same within the quiet period is dropped.
    pub quiet_key: String,
    pub device: Option<DeviceId>,
    pub site: Option<String>,
    pub raised_at: Timestamp,
    /// One line for people.
    pub summary: String,
    /// For a device under maintenance: recorded as [`AlertOutcome::Suppressed`].
    pub suppressed: bool,
}

/// A recorded alert and its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub rule: String,
    pub device: Option<DeviceId>,
    pub site: Option<String>,
    pub raised_at: Timestamp,
    pub summary: String,
    pub outcome: AlertOutcome,
    /// Deliveries tried.
    pub attempts: u64,
    pub finished_at: Option<Timestamp>,
    pub last_error: Option<String>,
}

/// What the alert rules look at: history since they last looked, and the devices' standing now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertScan {
    /// Verdict changes and events written since the last recorded cursor, oldest first, each
    /// with its device's site.
    pub history: Vec<(HistoryEntry, Option<String>)>,
    /// The history id read up to (recorded with the alerts raised from it).
    pub cursor: i64,
    /// The cursor recorded before this scan (`None` at the very first).
    pub previous: Option<i64>,
    /// Devices offline since before the cut-off: (device, site, since when: the presence change
    /// that made them offline).
    pub offline: Vec<(DeviceId, Option<String>, Timestamp)>,
    /// Devices with sequence numbers missing that no `records_dropped` explains: (device, site,
    /// how many).
    pub gaps: Vec<(DeviceId, Option<String>, u64)>,
    /// Endpoint certificates expiring before the cut-off (when asked for): (device, site,
    /// `host:port`, not after).
    pub certs: Vec<(DeviceId, Option<String>, String, Timestamp)>,
    /// Rollouts that halted by themselves in the last hour: (rollout, its log line's id, why).
    pub halted: Vec<(i64, i64, String)>,
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    /// Sending updates ring by ring.
    Running,
    /// Paused by an operator: nothing new is sent; updates under way are followed.
    Paused,
    /// Stopped by itself: failures in a ring passed the plan's threshold. Updates under way
    /// are followed; it ends by an abort.
    Halted,
    /// Stopped by an operator for good.
    Aborted,
    /// Every device healthy or failed within the threshold.
    Done,
}

impl RolloutState {
    pub const ALL: [RolloutState; 5] = [
        RolloutState::Running,
        RolloutState::Paused,
        RolloutState::Halted,
        RolloutState::Aborted,
        RolloutState::Done,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RolloutState::Running => "running",
            RolloutState::Paused => "paused",
            RolloutState::Halted => "halted",
            RolloutState::Aborted => "aborted",
            RolloutState::Done => "done",
        }
    }

    pub fn parse(text: &str) -> Option<RolloutState> {
        RolloutState::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the runner still follows it (its devices' updates may still be under way).
    pub const fn followed(self) -> bool {
        matches!(
            self,
            RolloutState::Running | RolloutState::Paused | RolloutState::Halted
        )
    }
}

/// A rollout as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutSummary {
    pub id: i64,
    pub plan: crate::rollouts::plan::Plan,
    pub state: RolloutState,
    /// Why it halted or was aborted.
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Devices per stage.
    pub stages: Vec<(crate::rollouts::step::Stage, u64)>,
}

/// One line of a rollout's log: who did what, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutLog {
    pub at: Timestamp,
    pub by: String,
    /// `started`, `paused`, `resumed`, `aborted`, `halted`, `done`.
    pub action: String,
    pub detail: String,
}

/// A rollout with every device and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutDetail {
    pub summary: RolloutSummary,
    pub devices: Vec<crate::rollouts::step::DeviceProgress>,
    pub log: Vec<RolloutLog>,
}
