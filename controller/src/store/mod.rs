//! The controller's memory: the latest state and presence of every device and their history,
//! behind the [`Store`] trait so that a second backend (PostgreSQL) can stand beside SQLite.
//!
//! The trait speaks the controller's language, not SQL: a [`Batch`] of decoded messages is
//! committed whole or not at all ([`Store::commit`], after which, and only after which, ingest
//! acknowledges the messages to the broker), and the pages and the API read [`FleetSummary`],
//! [`DevicePage`], [`DeviceDetail`], [`HistoryEntry`] and the finding views. What a message
//! changes (a verdict change, a finding appearing or clearing, a presence change, a duplicate to
//! drop, a gap to count) is decided by [`crate::model`], the same for every backend.

mod migrations;
mod ops;
mod postgres;
mod sql;
mod sqlite;
#[cfg(test)]
mod tests;

use std::fmt;

use roomready_protocol::{
    Command, CommandResponse, DeviceId, DeviceKind, Event, Presence, ResponseStatus, Severity,
    State, Status, StatusReason, Timestamp, Verdict,
};
use serde::Serialize;

pub use ops::{
    AlertOutcome, AlertRecord, AlertScan, NewAlert, RolloutDetail, RolloutLog, RolloutState,
    RolloutSummary,
};
pub use postgres::{PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// A message taken from the broker, decoded and checked against its topic.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    State(State),
    Status(Status),
    Event(Event),
    Response(CommandResponse),
}

impl Decoded {
    /// The device the message is from.
    pub fn device(&self) -> &DeviceId {
        match self {
            Decoded::State(m) => &m.device,
            Decoded::Status(m) => &m.device,
            Decoded::Event(m) => &m.device,
            Decoded::Response(m) => &m.device,
        }
    }
}

/// One item of a [`Batch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Message {
        message: Decoded,
        /// When the controller received it.
        received_at: Timestamp,
    },
    /// A payload on a fleet topic that did not decode: kept (the last [`MAX_DECODE_ERRORS`]),
    /// never a crash.
    Undecodable(DecodeFailure),
}

/// A payload that did not decode, with where it came from and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecodeFailure {
    pub received_at: Timestamp,
    pub topic: String,
    pub reason: String,
    /// The payload's first bytes, as text with anything not printable escaped.
    pub payload_head: String,
    pub payload_len: usize,
}

/// How many undecodable payloads the store keeps (the newest).
pub const MAX_DECODE_ERRORS: usize = 100;

/// Messages to commit together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub items: Vec<Item>,
}

/// What a committed batch changed, for the live pages and the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Committed {
    /// The devices whose row changed, as they are now.
    pub devices: Vec<DeviceRow>,
    /// The history entries written, in order.
    pub history: Vec<HistoryEntry>,
    /// Messages taken (not duplicates).
    pub taken: u64,
    /// Messages dropped as duplicates (a `seq` seen before, a status repeated).
    pub duplicates: u64,
    /// Numbers skipped by this batch's messages (new gaps).
    pub gaps: u64,
    pub undecodable: u64,
}

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file cannot be used; the message says why and what to do.
    #[error("{0}")]
    Open(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("{0}")]
    Invalid(String),
}

/// Sort order of the device table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Id,
    Kind,
    AppVersion,
    OsBuild,
    /// Worst first when descending: ranked as [`Verdict::rank`].
    Verdict,
    TopFinding,
    LastSeen,
    Online,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        SortKey::Id,
        SortKey::Kind,
        SortKey::AppVersion,
        SortKey::OsBuild,
        SortKey::Verdict,
        SortKey::TopFinding,
        SortKey::LastSeen,
        SortKey::Online,
    ];

    /// The name in URLs (`?sort=verdict`).
    pub const fn as_str(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Kind => "kind",
            SortKey::AppVersion => "app_version",
            SortKey::OsBuild => "os_build",
            SortKey::Verdict => "verdict",
            SortKey::TopFinding => "top_finding",
            SortKey::LastSeen => "last_seen",
            SortKey::Online => "online",
        }
    }

    pub fn parse(text: &str) -> Option<SortKey> {
        SortKey::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// Devices by the evidence of what they negotiated (`observed=` in the device table's query).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservedFilter {
    /// Schannel logged legacy TLS (finding `OBSERVED_LEGACY_TLS`).
    Legacy,
    /// The same, on a device whose prediction alone says ready: the rooms that should be ready
    /// and still talk legacy TLS.
    LegacyPredictedReady,
}

impl ObservedFilter {
    pub const ALL: [ObservedFilter; 2] =
        [ObservedFilter::Legacy, ObservedFilter::LegacyPredictedReady];

    /// The query value (`legacy`, `legacy_predicted_ready`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ObservedFilter::Legacy => "legacy",
            ObservedFilter::LegacyPredictedReady => "legacy_predicted_ready",
        }
    }

    /// What a page says of it.
    pub const fn label(self) -> &'static str {
        match self {
            ObservedFilter::Legacy => "observed legacy TLS",
            ObservedFilter::LegacyPredictedReady => "predicted ready, observed legacy",
        }
    }

    pub fn parse(text: &str) -> Option<ObservedFilter> {
        Self::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// Which devices, in which order, which page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceQuery {
    pub verdict: Option<Verdict>,
    pub kind: Option<DeviceKind>,
    /// Devices with this finding code now.
    pub finding: Option<String>,
    /// Text in the id, app version, OS build or top finding (case-insensitive).
    pub text: Option<String>,
    pub online: Option<bool>,
    /// Devices at this site.
    pub site: Option<String>,
    /// Devices in this rollout ring.
    pub ring: Option<u8>,
    /// Devices with this tag.
    pub tag: Option<String>,
    /// Devices by what Schannel observed of them (state 1.3).
    pub observed: Option<ObservedFilter>,
    pub sort: SortKey,
    pub descending: bool,
    /// 1-based.
    pub page: u64,
    pub per_page: u64,
}

impl Default for DeviceQuery {
    fn default() -> Self {
        DeviceQuery {
            verdict: None,
            kind: None,
            finding: None,
            text: None,
            online: None,
            site: None,
            ring: None,
            tag: None,
            observed: None,
            sort: SortKey::Id,
            descending: false,
            page: 1,
            per_page: DeviceQuery::DEFAULT_PER_PAGE,
        }
    }
}

impl DeviceQuery {
    pub const DEFAULT_PER_PAGE: u64 = 100;
    pub const MAX_PER_PAGE: u64 = 1000;
    /// The longest text filter taken.
    pub const MAX_TEXT: usize = 200;
}

/// One line of the device table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRow {
    pub id: DeviceId,
    /// `None` until the first state arrives.
    pub kind: Option<DeviceKind>,
    pub app_version: Option<String>,
    pub os_build: Option<String>,
    pub agent_version: Option<String>,
    pub verdict: Option<Verdict>,
    /// The most severe current finding (critical first, then by code).
    pub top_finding: Option<FindingRef>,
    pub findings: u64,
    /// `None` until the first status arrives.
    pub presence: Option<Presence>,
    /// When the controller last received anything from the device.
    pub last_seen: Timestamp,
    /// When the latest state was made on the device.
    pub state_ts: Option<Timestamp>,
    /// Where the device is, from its latest state (state 1.2).
    pub site: Option<String>,
    pub room: Option<String>,
    pub ring: Option<u8>,
    pub tags: Vec<String>,
}

/// A finding named by code, with its severity and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRef {
    pub code: String,
    pub severity: Severity,
    pub title: String,
}

/// A page of the device table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevicePage {
    /// Devices matching the filters, on all pages.
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
    pub devices: Vec<DeviceRow>,
}

/// The fleet in numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetSummary {
    pub devices: u64,
    /// Every verdict, zeros included, in [`Verdict::ALL`] order.
    pub by_verdict: Vec<(Verdict, u64)>,
    /// Devices whose first state has not arrived.
    pub no_state: u64,
    pub online: u64,
    pub offline: u64,
    /// Devices whose presence is not known (no status yet).
    pub presence_unknown: u64,
    /// Devices per kind (those with a state), by kind name.
    pub by_kind: Vec<(DeviceKind, u64)>,
    /// Sequence numbers that never arrived, over all devices.
    pub missing: u64,
    /// Of those, how many the devices reported dropping (`records_dropped`).
    pub missing_explained: u64,
}

/// The devices of one site, ring or tag, and how they stand.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GroupTotal {
    /// The site, the ring's number, or the tag.
    pub name: String,
    pub devices: u64,
    pub not_ready: u64,
    pub at_risk: u64,
    pub online: u64,
}

/// The fleet by where its devices are: the largest [`Groups::MAX`] sites and tags (by devices,
/// then name) and every ring in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Groups {
    pub sites: Vec<GroupTotal>,
    pub rings: Vec<GroupTotal>,
    pub tags: Vec<GroupTotal>,
    /// Devices whose state names no site.
    pub without_site: u64,
    /// Devices whose state names no ring.
    pub without_ring: u64,
}

impl Groups {
    /// The most sites (and tags) listed.
    pub const MAX: u64 = 200;
}

/// What is known of one device's sequence numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SeqSummary {
    /// The ranges received, `"1-40,42-97"`.
    pub ranges: String,
    pub highest: Option<u64>,
    pub received: u64,
    pub duplicates: u64,
    pub missing: u64,
    /// Missing numbers the device said it dropped (`records_dropped`, counted by its `total`).
    pub explained: u64,
}

/// Everything the device page shows of the device itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceDetail {
    pub row: DeviceRow,
    pub state: Option<State>,
    pub status: Option<Status>,
    pub seq: SeqSummary,
    pub first_seen: Timestamp,
}

/// What a history entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// `{"from": verdict|null, "to": verdict}`
    Verdict,
    /// `{"code", "severity", "title"}`
    FindingAppeared,
    /// `{"code", "severity", "title"}`
    FindingCleared,
    /// `{"status": "online"|"offline", "reason": …}`
    Presence,
    /// The event's body as the device sent it (`{"event": "check_completed", …}`).
    Event,
    /// `{"id", "command": {…}, "by"}`: a command the controller sent.
    Command,
    /// `{"id", "status", "reason", "message"}`: the device's answer.
    Response,
}

impl HistoryKind {
    pub const ALL: [HistoryKind; 7] = [
        HistoryKind::Verdict,
        HistoryKind::FindingAppeared,
        HistoryKind::FindingCleared,
        HistoryKind::Presence,
        HistoryKind::Event,
        HistoryKind::Command,
        HistoryKind::Response,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            HistoryKind::Verdict => "verdict",
            HistoryKind::FindingAppeared => "finding_appeared",
            HistoryKind::FindingCleared => "finding_cleared",
            HistoryKind::Presence => "presence",
            HistoryKind::Event => "event",
            HistoryKind::Command => "command",
            HistoryKind::Response => "response",
        }
    }

    pub fn parse(text: &str) -> Option<HistoryKind> {
        HistoryKind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Kept for `retention_events_days` (events) or `retention_transitions_days` (the rest).
    pub const fn is_event(self) -> bool {
        matches!(self, HistoryKind::Event)
    }
}

impl fmt::Display for HistoryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a device's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// Increasing with the order of writing.
    pub id: i64,
    pub device: DeviceId,
    /// When the controller received (or, for commands, sent) it.
    pub at: Timestamp,
    /// When it happened on the device, where the device said.
    pub ts: Option<Timestamp>,
    pub seq: Option<u64>,
    pub kind: HistoryKind,
    pub data: serde_json::Value,
}

/// A history entry before it has its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHistory {
    pub device: DeviceId,
    pub at: Timestamp,
    pub ts: Option<Timestamp>,
    pub seq: Option<u64>,
    pub kind: HistoryKind,
    pub data: serde_json::Value,
}

/// Which history entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    pub device: Option<DeviceId>,
    /// Empty: every kind.
    pub kinds: Vec<HistoryKind>,
    /// Entries with a smaller id (paging backwards from the newest).
    pub before: Option<i64>,
    /// Entries received at or after.
    pub since: Option<Timestamp>,
    pub limit: u64,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            device: None,
            kinds: Vec::new(),
            before: None,
            since: None,
            limit: 100,
        }
    }
}

impl HistoryQuery {
    pub const MAX_LIMIT: u64 = 10_000;
}

/// A finding code across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingCount {
    pub code: String,
    pub severity: Severity,
    pub title: String,
    pub remediation: String,
    pub reference: String,
    /// Devices with this finding now.
    pub devices: u64,
    /// Of those, per verdict (zeros left out).
    pub by_verdict: Vec<(Verdict, u64)>,
}

/// A command sent to a device, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandRecord {
    pub id: String,
    pub device: DeviceId,
    pub command: Command,
    /// The user who sent it.
    pub by: String,
    pub sent_at: Timestamp,
    /// The device's latest answer.
    pub status: Option<ResponseStatus>,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub answered_at: Option<Timestamp>,
}

/// How long history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Verdict, finding, presence, command and response entries.
    pub transitions_days: u64,
    pub events_days: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            transitions_days: 400,
            events_days: 90,
        }
    }
}

/// The controller's store. Methods block (call them off the async runtime's workers); every
/// method is safe to call from many threads at once.
pub trait Store: Send + Sync + 'static {
    /// Commits `batch` in one transaction. When this returns `Ok`, every message of the batch
    /// is durable (see [`Synchronous`]) and may be acknowledged to the broker.
    fn commit(&self, batch: &Batch) -> Result<Committed, StoreError>;

    /// Records a command the controller is about to send (before it is published).
    fn record_command(&self, command: &CommandRecord) -> Result<HistoryEntry, StoreError>;

    fn summary(&self) -> Result<FleetSummary, StoreError>;
    /// The fleet by site, ring and tag.
    fn groups(&self) -> Result<Groups, StoreError>;
    /// Whether this controller runs the background task named `task` (`"rollouts"`,
    /// `"alerts"`) now: always on a database of its own; on a database shared by several
    /// controllers, only the one holding the task's lock, so no update or alert goes out twice.
    fn lead(&self, task: &str) -> Result<bool, StoreError>;
    /// What the alert rules look at: history after the recorded cursor (none at the very first
    /// call, which starts the cursor at the newest entry), devices offline since before
    /// `offline_before`, unexplained sequence gaps, and, with `certs_before`, endpoint
    /// certificates expiring before it.
    fn alert_scan(
        &self,
        offline_before: Timestamp,
        certs_before: Option<Timestamp>,
    ) -> Result<AlertScan, StoreError>;
    /// Records `alerts` (skipping a key recorded before, and one whose quiet key has an alert
    /// raised within `quiet` of it) and the history `cursor`, in one transaction; how many were
    /// recorded.
    fn record_alerts(
        &self,
        alerts: &[NewAlert],
        quiet: std::time::Duration,
        cursor: i64,
    ) -> Result<u64, StoreError>;
    /// The oldest `limit` pending alerts.
    fn pending_alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError>;
    /// Ends a delivery attempt of `ids`: `Delivered` or `Failed` finish them at `at`; `Pending`
    /// counts a failed attempt (with `error`) and leaves them to be retried.
    fn finish_alerts(
        &self,
        ids: &[i64],
        outcome: AlertOutcome,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The newest `limit` alerts, newest first.
    fn alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError>;
    /// Starts a rollout of `plan` by `by`: every device whose latest state places it in one of
    /// the plan's rings, waiting. `Invalid` when another rollout is running or paused, or no
    /// device is in the plan's rings.
    fn create_rollout(
        &self,
        plan: &crate::rollouts::plan::Plan,
        by: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError>;
    /// The newest 100 rollouts, newest first.
    fn rollouts(&self) -> Result<Vec<RolloutSummary>, StoreError>;
    fn rollout(&self, id: i64) -> Result<Option<RolloutDetail>, StoreError>;
    /// Saves a step's outcome in one transaction: the devices' progress, the new state (with its
    /// reason) and log lines.
    fn save_rollout(
        &self,
        id: i64,
        devices: &[crate::rollouts::step::DeviceProgress],
        state: Option<(RolloutState, Option<String>)>,
        log: &[RolloutLog],
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// What the store observes now of each device, with the answer to its command (when it has
    /// one).
    fn observe(
        &self,
        devices: &[(DeviceId, Option<String>)],
    ) -> Result<Vec<crate::rollouts::step::Observed>, StoreError>;
    fn devices(&self, query: &DeviceQuery) -> Result<DevicePage, StoreError>;
    fn device(&self, id: &DeviceId) -> Result<Option<DeviceDetail>, StoreError>;
    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError>;
    /// Every finding code present now, most devices first.
    fn findings(&self) -> Result<Vec<FindingCount>, StoreError>;
    /// Devices that have `code` now (ids, sorted), at most `limit`.
    fn devices_with_finding(&self, code: &str, limit: u64) -> Result<Vec<DeviceRow>, StoreError>;
    fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError>;
    /// The commands sent to `device`, newest first.
    fn commands(&self, device: &DeviceId, limit: u64) -> Result<Vec<CommandRecord>, StoreError>;
    /// The newest undecodable payloads, newest first.
    fn decode_failures(&self) -> Result<Vec<DecodeFailure>, StoreError>;
    /// Deletes history older than `retention` allows at `now`; returns how many entries went.
    fn prune(&self, retention: Retention, now: Timestamp) -> Result<u64, StoreError>;
}

/// Runs a store call on tokio's blocking pool (the store blocks), for the controller's
/// background tasks (alerts, rollouts).
pub async fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        StoreError::Database(format!("a store call on the blocking pool failed: {e}"))
    })?
}

/// The status reason as its wire name.
pub fn reason_name(reason: StatusReason) -> &'static str {
    match reason {
        StatusReason::Shutdown => "shutdown",
        StatusReason::ConnectionLost => "connection_lost",
        StatusReason::Other => "other",
    }
}
