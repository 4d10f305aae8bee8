//! The `roomready-sim demo` binary, as a newcomer runs it.

use std::process::{Command, Output};

const SIM: &str = env!("CARGO_BIN_EXE_roomready-sim");

fn sim(args: &[&str]) -> Output {
    Command::new(SIM)
        .args(args)
        .output()
        .expect("run roomready-sim")
}

#[test]
fn demo_prints_the_fleet_table_and_exits_0() {
    let out = sim(&["demo", "--devices", "8"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("embedded broker mqtt://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("DEVICE    KIND"), "{stdout}");
    // The deterministic mix of the first 8 devices (see fleet.rs).
    for row in [
        [
            "mtr-0001",
            "teams_rooms_windows",
            "4.0.64.0",
            "19045.4894",
            "ready",
            "online",
        ],
        [
            "mtr-0002",
            "teams_rooms_windows",
            "4.0.51.0",
            "19045.4894",
            "not_ready",
            "online",
        ],
        [
            "hub-0004",
            "surface_hub",
            "-",
            "15063.1745",
            "not_ready",
            "online",
        ],
        [
            "hub-0008",
            "surface_hub",
            "-",
            "15063.1835",
            "at_risk",
            "online",
        ],
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(row[0]))
            .unwrap_or_else(|| panic!("no row for {}: {stdout}", row[0]));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells, row, "{line}");
    }
    assert!(
        stdout.contains("8 devices: 4 ready, 1 at_risk, 3 not_ready, 0 unknown"),
        "{stdout}"
    );
    assert!(stdout.contains("all 8 states arrived"), "{stdout}");
}

#[test]
fn demo_against_an_unreachable_broker_fails_clearly() {
    // Port 1 on loopback: nothing listens there.
    let out = sim(&[
        "demo",
        "--devices",
        "2",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--timeout",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("0 of 2 states arrived; missing: mtr-0001, mtr-0002"),
        "{stdout}"
    );
    assert!(
        stdout.contains("could not connect to mqtt://127.0.0.1:1"),
        "{stdout}"
    );
    assert!(
        stderr.contains("demo incomplete: 0 of 2 device states arrived within 1 s"),
        "{stderr}"
    );
}

#[test]
fn demo_rejects_bad_arguments_with_usage_errors() {
    let out = sim(&["demo", "--broker", "http://x"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported scheme"));
    let out = sim(&["demo", "--devices", "0"]);
    assert_eq!(out.status.code(), Some(64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_uses_an_external_broker_when_given_one() {
    let broker = roomready_simulator::broker::EmbeddedBroker::start()
        .await
        .expect("broker starts");
    let url = broker.url().to_string();
    // Twice against the same broker: the second run finds the first run's retained states
    // there and still completes (that it does not count them is tested in demo.rs).
    for _ in 0..2 {
        let arg = url.clone();
        let out =
            tokio::task::spawn_blocking(move || sim(&["demo", "--devices", "3", "--broker", &arg]))
                .await
                .expect("demo ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.starts_with(&format!("broker {url}\n")), "{stdout}");
        assert!(stdout.contains("all 3 states arrived"), "{stdout}");
    }
    broker.stop().await.expect("broker stops");
}
