//! The `roomready-sim demo` binary, as a newcomer runs it: serving the controller's dashboard
//! until stopped, and `--once` for scripts.

use std::io::BufRead as _;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use roomready_testkit::http::Http;

const SIM: &str = env!("CARGO_BIN_EXE_roomready-sim");

fn sim(args: &[&str]) -> Output {
    Command::new(SIM)
        .args(args)
        .output()
        .expect("run roomready-sim")
}

#[test]
fn demo_prints_the_fleet_table_and_exits_0() {
    let out = sim(&["demo", "--once", "--devices", "8"]);
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
        "--once",
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
    // The demo's dashboard has no logins: it never listens beyond loopback.
    let out = sim(&["demo", "--listen", "0.0.0.0:8080"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a loopback address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sim(&["demo", "--once", "--database", "x.db"]);
    assert_eq!(out.status.code(), Some(64));
}

/// The lines a serving demo prints, as they come.
struct Serving {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Serving {
    fn start(args: &[&str]) -> Serving {
        let mut child = Command::new(SIM)
            .arg("demo")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start roomready-sim demo");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Serving {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for the line that starts with `prefix` and returns it.
    fn line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?}; so far: {:#?}", self.seen),
            }
        }
    }

    /// Stops the demo with SIGTERM, as a service manager would, and returns its exit code.
    fn terminate(mut self) -> Option<i32> {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits");
        // SAFETY: kill(2) on our own child's pid, which has not been waited for yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        self.child.wait().expect("the demo exits").code()
    }
}

#[test]
#[cfg(unix)]
fn demo_serves_the_controller_dashboard_until_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let database = dir.path().join("demo.db");
    let mut demo = Serving::start(&[
        "--devices",
        "6",
        "--listen",
        "127.0.0.1:0",
        "--database",
        database.to_str().expect("UTF-8 temp path"),
    ]);
    let url = demo.line("dashboard: ");
    let url = url.trim_start_matches("dashboard: ").to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    demo.line("6 devices: ");
    demo.line("serving the dashboard");
    // Every state reached the demo's own subscriber; the controller commits in its own time.
    let http = Http::new(&url);
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let summary = http.get("/api/v1/summary").json();
        if summary["devices"] == 6 || Instant::now() > deadline {
            break summary;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(summary["devices"], 6, "{summary}");
    let page = http.get("/").body;
    assert!(
        page.contains("mtr-0001") && page.contains("hub-0004"),
        "{page}"
    );
    assert_eq!(demo.terminate(), Some(0));
    assert!(database.is_file(), "--database keeps the file");
}

#[test]
#[cfg(unix)]
fn demo_without_a_database_deletes_its_temporary_one() {
    let mut demo = Serving::start(&["--devices", "2", "--listen", "127.0.0.1:0"]);
    demo.line("dashboard: ");
    let database = demo.line("database:  ");
    let database = database
        .trim_start_matches("database:  ")
        .trim_end_matches(" (deleted at the end)")
        .to_owned();
    assert!(std::path::Path::new(&database).is_file(), "{database}");
    demo.line("serving the dashboard");
    assert_eq!(demo.terminate(), Some(0));
    assert!(
        !std::path::Path::new(&database).exists(),
        "{database} is gone"
    );
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
        let out = tokio::task::spawn_blocking(move || {
            sim(&["demo", "--once", "--devices", "3", "--broker", &arg])
        })
        .await
        .expect("demo ran");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        assert!(stdout.starts_with(&format!("broker {url}\n")), "{stdout}");
        assert!(stdout.contains("all 3 states arrived"), "{stdout}");
    }
    broker.stop().await.expect("broker stops");
}
