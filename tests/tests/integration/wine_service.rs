//! The agent as a Windows service under wine's service manager: installed (automatic start,
//! LocalSystem, the config made absolute, its event source registered), started (it connects to
//! the simulator's embedded broker and reports, as the test controller sees), stopped (it
//! publishes `offline`, reason `shutdown`), its log found under ProgramData, and uninstalled.
//! Uses roomready-testkit's wine harness; skips with a reason when wine, mingw-w64 or the Rust
//! target is missing, unless `ROOMREADY_REQUIRE_PEERS=1`.
#![cfg(unix)]

use std::path::{Path, PathBuf};

use roomready_protocol::{DeviceId, Presence, StatusReason};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::wine::{WindowsBuild, Wine};
use roomready_tests::controller::Controller;

const EVENT_SOURCE: &str =
    r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\roomready-agent";

/// The agent cross-built (into the target directory the agent's own wine test uses, so it is
/// built once) in a fresh prefix with a Teams Rooms facts file, or `None` (skipped).
fn windows_agent(test: &str) -> Option<Wine> {
    let agent_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent");
    let wine = Wine::ready(
        test,
        &WindowsBuild {
            package: "roomready-agent",
            bin: "roomready-agent",
            target_dir: &Path::new(env!("CARGO_TARGET_TMPDIR")).join("wine-target"),
            manifest_dir: &agent_dir,
        },
    )?;
    std::fs::write(
        wine.path("facts.toml"),
        "kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\n",
    )
    .expect("facts file");
    Some(wine)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_runs_under_wine_and_stops_cleanly() {
    const TEST: &str = "the_service_runs_under_wine_and_stops_cleanly";
    let wait = std::time::Duration::from_secs(60);
    let Some(wine) = tokio::task::block_in_place(|| windows_agent(TEST)) else {
        return;
    };
    let broker = EmbeddedBroker::start().await.expect("broker");
    std::fs::write(
        wine.path("agent.toml"),
        format!(
            "broker_url = \"mqtt://127.0.0.1:{}\"\ndevice_id = \"mtr-wine\"\nfacts_file = \"facts.toml\"\nendpoints = []\n",
            broker.url().port
        ),
    )
    .expect("config");
    let device = DeviceId::new("mtr-wine").expect("id");
    let mut controller = Controller::connect(&broker.url(), &device, "ctl-wine", false);
    let run = |args: &[&str]| tokio::task::block_in_place(|| wine.run(args));

    let installed = run(&[
        "roomready-agent.exe",
        "service",
        "install",
        "--config",
        "agent.toml",
    ]);
    assert!(installed.status.success(), "install: {installed:?}");
    // What the service manager recorded (wine's `sc` has no `qc`; the registry has it all).
    let query = run(&[
        "reg",
        "query",
        r"HKLM\System\CurrentControlSet\Services\roomready-agent",
    ]);
    let config = String::from_utf8_lossy(&query.stdout);
    assert!(
        config.contains("Start    REG_DWORD    0x2"),
        "automatic start: {config}"
    );
    assert!(
        config.contains(r"roomready-agent.exe service run --config Z:\"),
        "the command line, with the config made absolute: {config}"
    );
    assert!(
        config.contains("ObjectName    REG_SZ    LocalSystem"),
        "{config}"
    );
    // Its errors go to the Application event log too: the source is registered.
    let source = run(&["reg", "query", EVENT_SOURCE]);
    let source_text = String::from_utf8_lossy(&source.stdout);
    assert!(
        source_text.contains(r"EventCreate.exe") && source_text.contains("TypesSupported"),
        "the event source after install: {source:?}\ninstall: {installed:?}"
    );

    let started = run(&["roomready-agent.exe", "service", "start"]);
    assert!(started.status.success(), "start: {started:?}");
    let seen = controller
        .wait_until(wait, |seen| {
            !seen.states.is_empty() && seen.statuses.iter().any(|s| s.status == Presence::Online)
        })
        .await
        .unwrap_or_else(|seen| panic!("the service did not report: {seen:?}"));
    assert_eq!(
        seen.states[0].facts.app_version.as_deref(),
        Some("5.2.115.0")
    );

    let stopped = run(&["roomready-agent.exe", "service", "stop"]);
    assert!(stopped.status.success(), "stop: {stopped:?}");
    controller
        .wait_until(wait, |seen| {
            seen.statuses
                .iter()
                .any(|s| s.status == Presence::Offline && s.reason == Some(StatusReason::Shutdown))
        })
        .await
        .unwrap_or_else(|seen| panic!("no clean offline: {:?}", seen.statuses));

    // Its log, rotated daily, under %ProgramData%\roomready\logs (C:\users\Public in wine).
    let logs: Vec<PathBuf> = ["ProgramData", "users/Public"]
        .iter()
        .map(|base| {
            wine.path("prefix/drive_c")
                .join(base)
                .join("roomready/logs")
        })
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    let log: String = logs
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    assert!(log.contains("connected to the broker"), "{logs:?}: {log}");

    let removed = run(&["roomready-agent.exe", "service", "uninstall"]);
    assert!(removed.status.success(), "uninstall: {removed:?}");
    let gone = run(&["sc", "query", "roomready-agent"]);
    assert!(!gone.status.success(), "still there: {gone:?}");
    let source = run(&["reg", "query", EVENT_SOURCE]);
    assert!(
        !source.status.success(),
        "the event source is still registered: {source:?}"
    );
}
