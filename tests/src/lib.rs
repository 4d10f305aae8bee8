//! Shared helpers for roomready's end-to-end tests (the tests themselves are under `tests/`).

use std::time::Duration;

use roomready_protocol::{DeviceId, DeviceKind};
use roomready_simulator::device::DeviceSpec;

/// Upper bound for any wait on the fleet; waits end as soon as the awaited event happens.
pub const WAIT: Duration = Duration::from_secs(30);

/// A device spec with an id, a kind and the version facts.
pub fn spec(id: &str, kind: DeviceKind, app: Option<&str>, build: Option<&str>) -> DeviceSpec {
    DeviceSpec {
        id: DeviceId::new(id).expect("test device ids are valid"),
        kind,
        app_version: app.map(str::to_owned),
        os_build: build.map(str::to_owned),
        registry: Vec::new(),
    }
}

pub mod controller;
pub mod peers;
pub mod proxy;
