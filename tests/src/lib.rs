//! Shared helpers for roomready's end-to-end tests (the tests themselves are under `tests/`).

use std::time::Duration;

use roomready_agent::facts::{Fact, Facts, FixedFacts, Source};
use roomready_protocol::{DeviceId, DeviceKind};
use roomready_simulator::device::DeviceSpec;

/// Upper bound for any wait on the fleet; waits end as soon as the awaited event happens.
pub const WAIT: Duration = Duration::from_secs(30);

/// A device spec with an id, a kind and the version facts.
pub fn spec(id: &str, kind: DeviceKind, app: Option<&str>, build: Option<&str>) -> DeviceSpec {
    DeviceSpec {
        id: DeviceId::new(id).expect("test device ids are valid"),
        kind,
        app_version: app.into(),
        os_build: build.into(),
        registry: Vec::new(),
        endpoints: Vec::new(),
    }
}

/// Facts of a Teams Rooms on Windows device with app `app_version` and nothing else read: its
/// verdict is decided by the app rule alone (ready from 4.0.64.0, not_ready below).
pub fn rooms_facts(app_version: &str) -> FixedFacts {
    let source = || Source::new("test");
    FixedFacts(Facts {
        device_id: None,
        kind: Fact::Known {
            value: DeviceKind::TeamsRoomsWindows,
            source: source(),
        },
        app_version: Fact::Known {
            value: app_version.into(),
            source: source(),
        },
        os_build: Fact::Absent { source: source() },
        os_name: Fact::Absent { source: source() },
        tls: Fact::Absent { source: source() },
    })
}

pub mod console;
pub mod controller;
pub mod http;
pub mod peers;
pub mod proxy;
pub mod publish;
pub mod webdriver;
