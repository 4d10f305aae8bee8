//! Shared helpers for roomready's end-to-end tests (the tests themselves are under `tests/`):
//! device specs and facts, a controller on a test config ([`console`]), a per-device MQTT
//! observer ([`controller`]) and raw publishing ([`publish`]). Peers, PKIs, proxies and the
//! browser come from `roomready-testkit`.

#![forbid(unsafe_code)]

#[cfg(unix)]
pub mod child;

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
        placement: Default::default(),
        handshakes: Vec::new(),
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
        observed: Fact::Absent { source: source() },
    })
}

pub mod console;
pub mod controller;
#[cfg(unix)]
pub mod feed;
pub mod publish;

/// The `roomready-agent` binary for tests that run it as a process (signals, SIGKILL, restarts
/// into an update): the one `cargo test --workspace` builds next to this test binary.
///
/// A test crate cannot name another package's binary (`CARGO_BIN_EXE_*` is only set for the
/// package's own), so it is looked up in the target directory; a missing binary, or one older
/// than a source file of the agent or the crates it is built from, is a failure that says what
/// to build, never a silently stale run.
pub fn agent_exe() -> &'static std::path::Path {
    static AGENT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    AGENT.get_or_init(|| {
        let test = std::env::current_exe().expect("the test binary's path");
        // target/<profile>/deps/<test>-<hash> → target/<profile>
        let profile = test
            .parent()
            .and_then(std::path::Path::parent)
            .expect("the test binary is in <profile>/deps/");
        let exe = profile.join(format!("roomready-agent{}", std::env::consts::EXE_SUFFIX));
        let build = "run `cargo test --workspace`, or `cargo build -p roomready-agent` first";
        let built = std::fs::metadata(&exe)
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| {
                panic!(
                    "the agent binary {} is missing ({e}): {build}",
                    exe.display()
                )
            });
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for crate_dir in ["agent", "protocol", "connect", "feed"] {
            if let Some((path, modified)) = newest_file(&root.join(crate_dir).join("src")) {
                assert!(
                    modified <= built,
                    "the agent binary {} is older than {}: {build}",
                    exe.display(),
                    path.display()
                );
            }
        }
        exe
    })
}

/// The most recently modified file under `dir`, and when.
fn newest_file(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::time::SystemTime)> {
    let mut newest: Option<(std::path::PathBuf, std::time::SystemTime)> = None;
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                pending.push(entry.path());
            } else if let Ok(modified) = meta.modified()
                && newest.as_ref().is_none_or(|(_, m)| modified > *m)
            {
                newest = Some((entry.path(), modified));
            }
        }
    }
    newest
}
