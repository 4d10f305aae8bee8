//! The payloads of MQTT contract v1 and the values inside them.
//!
//! | type | topic | schema |
//! |---|---|---|
//! | [`Status`] | `{prefix}/v1/{device}/status` (retained) | `roomready.status/1` |
//! | [`State`] | `{prefix}/v1/{device}/state` (retained) | `roomready.state/1.3` |
//! | [`Event`] | `{prefix}/v1/{device}/events` | `roomready.event/1` |
//! | [`Command`] | `{prefix}/v1/{device}/cmd` | `roomready.command/1` |
//! | [`CommandResponse`] | `{prefix}/v1/{device}/cmd/res` | `roomready.command_response/1` |
//!
//! `seq` is the device's message counter: every state, event and command response takes the next
//! number, so a consumer can see loss (a gap) and duplicates (a repeat). A [`Status`] does not
//! take a number: its `seq` is the highest number the agent had issued when the presence change
//! was made (for the last will: when the connection was opened), because the broker, not the
//! agent, decides when a will is published. [`Command`]s come from the controller and carry no
//! device `seq`; they are identified by their `id`.

use serde::{Deserialize, Serialize};

use crate::device::{DeviceId, DeviceKind};
use crate::placement::Placement;
use crate::schema::Message;
use crate::time::Timestamp;

/// The overall answer for one device: is it ready for TLS 1.2-only Microsoft 365?
///
/// `Ord` is the declaration order (for sorted tables), not the severity: see [`Verdict::rank`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(
    feature = "json-schema",
    derive(schemars::JsonSchema),
    schemars(
        description = "The overall answer for one device: is it ready for TLS 1.2-only \
                             Microsoft 365? By severity: ready < at_risk < unknown < not_ready."
    )
)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every applicable rule passed.
    Ready,
    /// Works now, but a rule found a risk (e.g. a step that still needs TLS 1.0/1.1).
    AtRisk,
    /// At least one rule says the device cannot use TLS 1.2-only Microsoft 365.
    NotReady,
    /// A fact a rule needs could not be read; the verdict is not guessed.
    Unknown,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::Ready,
        Verdict::AtRisk,
        Verdict::NotReady,
        Verdict::Unknown,
    ];

    /// How bad the verdict is, for combining rule outcomes: ready < at_risk < unknown < not_ready.
    ///
    /// `unknown` outranks `at_risk` because an unread fact may hide a `not_ready`; `not_ready`
    /// outranks `unknown` because one certain failure settles the answer whatever is unknown.
    pub const fn rank(self) -> u8 {
        match self {
            Verdict::Ready => 0,
            Verdict::AtRisk => 1,
            Verdict::Unknown => 2,
            Verdict::NotReady => 3,
        }
    }

    /// The worse of two verdicts by [`Verdict::rank`].
    pub fn worst(self, other: Verdict) -> Verdict {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The wire name (`ready`, `at_risk`, `not_ready`, `unknown`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Ready => "ready",
            Verdict::AtRisk => "at_risk",
            Verdict::NotReady => "not_ready",
            Verdict::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How serious one finding is on its own; ordered info < warning < critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// The wire name (`info`, `warning`, `critical`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One observation of the assessment, with what was seen and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Finding {
    /// A stable code from [`crate::codes`], e.g. `TLS12_APP_TOO_OLD`.
    #[cfg_attr(
        feature = "json-schema",
        schemars(description = "A stable code (docs/findings.md), e.g. `TLS12_APP_TOO_OLD`.")
    )]
    pub code: String,
    pub severity: Severity,
    /// One line for a dashboard.
    pub title: String,
    /// What was observed and where it came from.
    pub evidence: String,
    /// What an administrator should do.
    pub remediation: String,
    /// The Microsoft document the rule is based on.
    pub reference: String,
}

/// The facts an assessment was based on, as seen on the device (raw text where it may not parse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct DeviceFacts {
    pub kind: DeviceKind,
    /// The Teams Rooms app version as read, or absent when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// The OS build (`CurrentBuild.UBR`) as read, or absent when it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_build: Option<String>,
}

/// The latest full assessment of a device (`state` topic, retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct State {
    pub device: DeviceId,
    pub seq: u64,
    /// When the assessment was made.
    pub ts: Timestamp,
    /// The version of the agent that made it.
    pub agent_version: String,
    pub facts: DeviceFacts,
    pub verdict: Verdict,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// What each probed endpoint accepted (absent when no endpoint was probed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<crate::endpoints::EndpointReport>,
    /// Where the device is, as configured on the agent (1.2; absent when nothing is).
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// What the device's own TLS stack negotiated, as Schannel logged it, beside the prediction
    /// (1.3; absent when no evidence was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Box<crate::observed::Observed>>,
}

impl Message for State {
    const NAME: &'static str = "roomready.state";
    const MAJOR: u32 = 1;
    /// 1.1: endpoint reports gained the certificate's version, `certificate_unavailable`,
    /// `client_certificate_required` and `tls12_suites`.
    /// 1.2: `placement` (site, room, ring, tags).
    /// 1.3: `observed` (Schannel's handshakes beside the prediction).
    const MINOR: u32 = 3;
}

/// Presence of the agent on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Online,
    Offline,
}

impl Presence {
    pub const fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Offline => "offline",
        }
    }
}

/// Why a device went offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "json-schema",
    derive(schemars::JsonSchema),
    schemars(transform = crate::json_schema::other_status_reason)
)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// The agent stopped cleanly and said so.
    Shutdown,
    /// The broker lost the connection and published the agent's last will.
    ConnectionLost,
    /// A reason added by a later minor version of the contract.
    #[serde(other)]
    Other,
}

/// Presence of a device (`status` topic, retained; the last will publishes the `offline` one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Status {
    pub device: DeviceId,
    /// The highest `seq` the agent had issued when this status was made (see the module docs).
    #[cfg_attr(
        feature = "json-schema",
        schemars(
            description = "The highest `seq` the agent had issued when this status was \
                                made (for the last will: when its connection was opened); a \
                                status takes no number of its own."
        )
    )]
    pub seq: u64,
    pub ts: Timestamp,
    pub status: Presence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
}

impl Message for Status {
    const NAME: &'static str = "roomready.status";
    const MAJOR: u32 = 1;
}

/// Something that happened on a device (`events` topic, not retained).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Event {
    pub device: DeviceId,
    pub seq: u64,
    pub ts: Timestamp,
    #[serde(flatten)]
    pub body: EventBody,
}

impl Message for Event {
    const NAME: &'static str = "roomready.event";
    const MAJOR: u32 = 1;
}

/// What an [`Event`] reports; the variant name is the `event` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "json-schema",
    derive(schemars::JsonSchema),
    schemars(transform = crate::json_schema::other_event)
)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventBody {
    /// An assessment finished.
    CheckCompleted { verdict: Verdict, findings: u32 },
    /// The verdict differs from the previous assessment's (`from` is absent for the first).
    VerdictChanged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Verdict>,
        to: Verdict,
    },
    /// The agent found its journal's tail torn or corrupt (e.g. killed mid-write) and cut it off
    /// at byte `offset`: what was in the cut part was never acknowledged by the broker.
    JournalRecovered {
        offset: u64,
        discarded_bytes: u64,
        reason: String,
    },
    /// The journal reached its size bound and dropped `count` undelivered records, oldest events
    /// first (never the latest state); their `seq` numbers will be missing downstream. `total`
    /// counts every record dropped since the journal was created, this one's included: older
    /// notices may themselves be dropped, and the newest one delivered still accounts for all.
    RecordsDropped {
        count: u64,
        #[serde(default)]
        total: u64,
    },
    /// The Teams Rooms app update (`update_app`) started or ended; `reason` says why it failed.
    AppUpdate {
        stage: AppUpdateStage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A step of the agent's self-update: `percent` while downloading, `version` the target,
    /// `reason` for `failed` and `rolled_back`.
    UpdateProgress {
        stage: UpdateStage,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        percent: Option<u8>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An event type added by a later minor version; its fields are not interpreted.
    #[serde(other)]
    Unrecognized,
}

/// The steps of a self-update, in order; it ends `healthy`, `rolled_back` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum UpdateStage {
    Checking,
    Downloading,
    Verifying,
    Installing,
    Restarting,
    Healthy,
    RolledBack,
    Failed,
}

/// Where a Teams Rooms app update stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum AppUpdateStage {
    Started,
    Succeeded,
    Failed,
}

/// A command from the controller (`cmd` topic): `{"schema":…,"id":"c-42","command":"ping"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct Command {
    /// The controller's request id; the response carries it back.
    pub id: String,
    #[serde(flatten)]
    pub action: CommandAction,
}

impl Message for Command {
    const NAME: &'static str = "roomready.command";
    const MAJOR: u32 = 1;
}

impl Command {
    /// The longest `id` an agent answers (bytes); a longer one is rejected.
    pub const MAX_ID_BYTES: usize = 256;
}

impl CommandAction {
    /// The seconds `set_interval` takes (the agent rejects others with `invalid_argument`).
    pub const INTERVAL_SECS: std::ops::RangeInclusive<u64> = 1..=86_400;
    /// The `channel`s `update` takes.
    pub const UPDATE_CHANNELS: [&'static str; 2] = ["stable", "beta"];

    /// The wire name of the command (`check_now`, …).
    pub const fn name(&self) -> &'static str {
        match self {
            CommandAction::Ping => "ping",
            CommandAction::CheckNow => "check_now",
            CommandAction::SetInterval { .. } => "set_interval",
            CommandAction::Update { .. } => "update",
            CommandAction::UpdateApp => "update_app",
            CommandAction::Fix { .. } => "fix",
        }
    }
}

/// What a [`Command`] asks for; the variant name is the `command` field, arguments beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CommandAction {
    /// Answer `succeeded` at once: a liveness check through the whole path.
    Ping,
    /// Run an assessment now and publish its state.
    CheckNow,
    /// Change the report interval (seconds, 1..=86400); kept across restarts.
    SetInterval { seconds: u64 },
    /// Update the agent to `version` (a semver, or `latest`, the default) from `channel`
    /// (`stable`, the default, or `beta`); progress follows in `update_progress` events.
    Update {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channel: Option<String>,
    },
    /// Run the Teams Rooms app update the admin configured (`app_update_command`): answered
    /// `accepted`, then `succeeded` or `failed` when it ends; a check follows.
    UpdateApp,
    /// Repair the Windows TLS registry values the device's findings point at (opt-in on the
    /// device: `allow_fix`). `mode` `plan` answers `succeeded` with the plan, its first line
    /// `plan <digest>: …`; `apply` with `plan` = that digest writes it while the plan is
    /// unchanged (`accepted`, then `succeeded` or `failed`; a check follows); `undo` restores
    /// what the last `apply` replaced. The `plan` digest is 16 lowercase hex digits.
    Fix {
        mode: crate::fix::FixMode,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plan: Option<String>,
    },
}

/// Where a command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    Accepted,
    Rejected,
    Succeeded,
    Failed,
}

/// The agent's answer to a command (`cmd/res` topic, or the MQTT v5 response topic).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
pub struct CommandResponse {
    pub device: DeviceId,
    /// The `id` of the command answered.
    pub id: String,
    pub status: ResponseStatus,
    /// Machine-readable reason for `rejected` / `failed` (e.g. `invalid_argument`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub seq: u64,
    pub ts: Timestamp,
}

impl Message for CommandResponse {
    const NAME: &'static str = "roomready.command_response";
    const MAJOR: u32 = 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_ranking() {
        use Verdict::*;
        assert_eq!(Ready.worst(AtRisk), AtRisk);
        assert_eq!(AtRisk.worst(Unknown), Unknown);
        assert_eq!(Unknown.worst(NotReady), NotReady);
        assert_eq!(NotReady.worst(Ready), NotReady);
        assert_eq!(Ready.worst(Ready), Ready);
        for v in Verdict::ALL {
            assert_eq!(serde_json::to_string(&v).expect("ser"), format!("\"{v}\""));
        }
    }
}
