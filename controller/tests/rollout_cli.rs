//! `roomready-controller rollout …` against a real database: a rollout started, refused while
//! another runs, paused, resumed and aborted (each logged as `cli:$USER`), listed and shown; a
//! bad plan is a usage error, a refused change its own exit code.

use std::path::Path;
use std::process::{Command, Output};

use roomready_controller::store::{
    Batch, Decoded, Item, SqliteOptions, SqliteStore, Store, Synchronous,
};
use roomready_protocol::{
    DeviceFacts, DeviceId, DeviceKind, Placement, Ring, State, Timestamp, Verdict,
};

fn cli(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_roomready-controller"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("USER", "olga")
        .output()
        .expect("the controller binary runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A database holding one device placed in ring 0.
fn seeded(dir: &Path) -> std::path::PathBuf {
    let store = SqliteStore::open(&SqliteOptions {
        path: dir.join("controller.db"),
        synchronous: Synchronous::Normal,
    })
    .expect("a new database");
    let state = State {
        device: DeviceId::new("mtr-1").expect("id"),
        seq: 1,
        ts: Timestamp::from_unix_ms(1000),
        agent_version: "0.1.0".into(),
        facts: DeviceFacts {
            kind: DeviceKind::TeamsRoomsWindows,
            app_version: Some("5.2.115.0".into()),
            os_build: None,
        },
        verdict: Verdict::Ready,
        findings: Vec::new(),
        endpoints: Vec::new(),
        placement: Placement {
            ring: Some(Ring::new(0).expect("ring")),
            ..Placement::default()
        },
        observed: None,
    };
    store
        .commit(&Batch {
            items: vec![Item::Message {
                message: Decoded::State(state),
                received_at: Timestamp::from_unix_ms(1000),
            }],
        })
        .expect("commit");
    drop(store);
    let config = dir.join("controller.toml");
    std::fs::write(
        &config,
        "broker_url = \"mqtt://127.0.0.1:1883\"\ndatabase = \"controller.db\"\n",
    )
    .expect("config");
    config
}

#[test]
fn rollouts_are_started_changed_listed_and_shown_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = seeded(dir.path());

    let bad = cli(&config, &["rollout", "start", "--rings", "0:two:10"]);
    assert_eq!(bad.status.code(), Some(64), "{}", text(&bad));
    assert!(
        text(&bad).contains("expected RING:CONCURRENCY:GATE_MINUTES"),
        "{}",
        text(&bad)
    );
    let empty = cli(&config, &["rollout", "start", "--rings", "5:1:10"]);
    assert_eq!(empty.status.code(), Some(65), "{}", text(&empty));
    assert!(
        text(&empty).contains("no device is in the plan's rings"),
        "{}",
        text(&empty)
    );

    let started = cli(
        &config,
        &[
            "rollout",
            "start",
            "--version",
            "1.4.0",
            "--rings",
            "0:1:10",
            "--halt-after",
            "10%",
        ],
    );
    assert_eq!(started.status.code(), Some(0), "{}", text(&started));
    assert_eq!(text(&started).trim(), "rollout 1 started");
    let second = cli(&config, &["rollout", "start", "--rings", "0:1:10"]);
    assert_eq!(second.status.code(), Some(65), "{}", text(&second));
    assert!(
        text(&second).contains("rollout 1 is running or paused"),
        "{}",
        text(&second)
    );

    for (action, code) in [
        ("pause", 0),
        ("pause", 65),
        ("resume", 0),
        ("abort", 0),
        ("resume", 65),
    ] {
        let out = cli(&config, &["rollout", action, "1"]);
        assert_eq!(out.status.code(), Some(code), "{action}: {}", text(&out));
    }
    let listed = text(&cli(&config, &["rollout", "list"]));
    assert!(listed.starts_with("1\taborted\t"), "{listed}");
    assert!(listed.contains("waiting 1"), "{listed}");

    let shown = cli(&config, &["rollout", "show", "1"]);
    let detail: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    let log: Vec<(String, String)> = detail["log"]
        .as_array()
        .expect("log")
        .iter()
        .map(|l| {
            (
                l["action"].as_str().expect("action").to_owned(),
                l["by"].as_str().expect("by").to_owned(),
            )
        })
        .collect();
    let by = "cli:olga".to_owned();
    assert_eq!(
        log,
        [
            ("started".to_owned(), by.clone()),
            ("paused".to_owned(), by.clone()),
            ("resumed".to_owned(), by.clone()),
            ("aborted".to_owned(), by),
        ]
    );
    assert_eq!(detail["summary"]["plan"]["version"], "1.4.0");
    assert_eq!(
        cli(&config, &["rollout", "show", "9"]).status.code(),
        Some(65)
    );
}
