//! The roomready wire contract, shared by the agent, the simulator and any dashboard.
//!
//! Everything here is pure data and validation: topic names ([`topics`]), the message types and
//! their schema versions ([`messages`], [`schema`]), the values that appear in them
//! ([`AppVersion`], [`OsBuild`], [`DeviceId`], [`Timestamp`], [`Verdict`]) and the stable finding
//! codes ([`codes`]). There is no I/O and no async runtime in this crate, so a dashboard written in
//! Rust can depend on it without pulling in the agent.
//!
//! The optional feature `json-schema` adds `schemars::JsonSchema` to the message types and the
//! module `json_schema`, from which the published JSON Schemas (`docs/schemas/`) are generated.
//!
//! Compatibility rules (see `DESIGN.md`): consumers ignore unknown fields; a payload whose schema
//! has another major version is rejected with [`DecodeError::UnsupportedMajor`]; a new major version
//! of the contract is published under a new topic version (`{prefix}/v2/...`).

#![forbid(unsafe_code)]

pub mod codes;
pub mod device;
pub mod endpoints;
pub mod fix;
#[cfg(feature = "json-schema")]
pub mod json_schema;
pub mod messages;
pub mod observed;
pub mod placement;
pub mod schema;
pub mod suites;
pub mod time;
pub mod tls;
pub mod topics;
pub mod version;

pub use device::{DeviceId, DeviceIdError, DeviceKind};
pub use endpoints::{
    CertificateCheck, EndpointReport, EndpointRole, ProbeOutcome, SuiteProbe, Tls12Suites,
    VersionProbe,
};
pub use fix::FixMode;
pub use messages::{
    AppUpdateStage, Command, CommandAction, CommandResponse, DeviceFacts, Event, EventBody,
    Finding, Presence, ResponseStatus, Severity, State, Status, StatusReason, UpdateStage, Verdict,
};
pub use observed::{Observed, ObservedProtocol, ObservedSource};
pub use placement::{Placement, PlacementError, Ring, Room, Site, Tag, Tags, UtcOffset};
pub use schema::{DecodeError, Message};
pub use suites::suite_name;
pub use time::{Timestamp, TimestampError};
pub use tls::{CipherSuite, TlsVersion};
pub use topics::{Channel, TopicPrefix, TopicPrefixError, Topics};
pub use version::{
    AndroidAppVersion, AndroidAppVersionError, AppVersion, AppVersionError, OsBuild, OsBuildError,
};
