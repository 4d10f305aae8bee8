//! Turning facts and an assessment into the `State` that is published, and the assessment step
//! that the daemon and the one-shot `check` share; [`placement`] is where the device is, from
//! the config, carried in every state.

pub mod human;
pub(crate) mod placement;

use roomready_protocol::{
    DeviceFacts, DeviceId, DeviceKind, EndpointReport, Placement, State, Timestamp,
};

use crate::assess::{self, Assessment};
use crate::facts::{Facts, FactsError};

/// This agent's version, reported in every state.
pub(crate) const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Assesses collected facts; when collecting failed, the verdict is `unknown` with the reason.
/// Returns the facts summary for the wire with the assessment.
pub(crate) fn evaluate(
    facts: &Result<Facts, FactsError>,
    endpoints: &[EndpointReport],
) -> (DeviceFacts, Assessment) {
    match facts {
        Ok(facts) => (facts.to_wire(), assess::assess_device(facts, endpoints)),
        Err(e) => (
            DeviceFacts {
                kind: DeviceKind::Unknown,
                app_version: None,
                os_build: None,
            },
            assess::facts_unavailable(&e.to_string()),
        ),
    }
}

/// The `State` message for one assessment.
pub fn state(
    device: DeviceId,
    seq: u64,
    ts: Timestamp,
    facts: DeviceFacts,
    assessment: Assessment,
    endpoints: Vec<EndpointReport>,
    placement: Placement,
) -> State {
    State {
        device,
        seq,
        ts,
        agent_version: AGENT_VERSION.to_owned(),
        facts,
        verdict: assessment.verdict,
        findings: assessment.findings,
        endpoints,
        placement,
        observed: assessment.observed,
    }
}
