//! Scenarios end to end: the example files run and pass; every expectation type also fails
//! when it should (with the observed value in the report); parse errors are located; the same
//! seed gives the same fleet and the same result; and an external broker (Mosquitto) runs a
//! scenario with its broker fault reported as skipped. A broker in a child process stopped
//! mid-delivery keeps every message of a session across its restart.

use std::path::{Path, PathBuf};

use roomready_agent::config::BrokerUrl;
use roomready_simulator::scenario::fleet;
use roomready_simulator::scenario::run::{BrokerProcess, Outcome, RunOptions, Status, run};
use roomready_simulator::scenario::{self, Scenario, report};
use roomready_testkit::peers::{Mosquitto, need_mosquitto};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

fn example(name: &str) -> Scenario {
    let path = examples().join(name);
    let mut s = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    s.file = path;
    s
}

fn inline(text: &str) -> Scenario {
    scenario::parse(Path::new("inline.toml"), text).unwrap_or_else(|e| panic!("{e}"))
}

async fn run_ok(s: &Scenario, options: &RunOptions) -> Outcome {
    run(s, options).await.unwrap_or_else(|e| panic!("{e}"))
}

fn assert_passed(outcome: &Outcome) {
    assert!(outcome.passed(), "{}", report::table(outcome));
}

/// The result of the expectation named `name`.
fn result<'a>(
    outcome: &'a Outcome,
    name: &str,
) -> &'a roomready_simulator::scenario::run::ExpectationResult {
    outcome
        .expectations
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no expectation {name}: {}", report::table(outcome)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mixed_fleet_example_passes() {
    let outcome = run_ok(&example("mixed-fleet.toml"), &RunOptions::default()).await;
    assert_passed(&outcome);
    assert_eq!(outcome.devices, 16);
    let junit = report::junit(&outcome);
    assert_eq!(junit.matches("<testcase").count(), 7, "{junit}");
    assert!(!junit.contains("<failure"), "{junit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_faults_example_passes() {
    let outcome = run_ok(&example("endpoint-faults.toml"), &RunOptions::default()).await;
    assert_passed(&outcome);
    assert!(
        outcome.steps.iter().all(|s| s.status == Status::Pass),
        "{}",
        report::table(&outcome)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_outage_example_delivers_everything() {
    let outcome = run_ok(&example("broker-outage.toml"), &RunOptions::default()).await;
    check_outage(&outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_in_a_child_process_goes_down_and_comes_back_too() {
    // What large fleets get (their connections would not fit in one process's file table).
    let options = RunOptions {
        broker_process: BrokerProcess::Child(PathBuf::from(SIM)),
        ..RunOptions::default()
    };
    let outcome = run_ok(&example("broker-outage.toml"), &options).await;
    check_outage(&outcome);
}

fn check_outage(outcome: &Outcome) {
    assert_passed(outcome);
    let down = &outcome.steps[0];
    assert_eq!((down.action, down.status), ("broker_down", Status::Pass));
    // Twenty devices reporting every second for 12 s: far more than one message each, so the
    // outage really had traffic to lose.
    assert!(outcome.messages > 200, "{}", outcome.messages);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollout_example_updates_and_refuses_the_corrupt_artifact() {
    let outcome = run_ok(&example("rollout.toml"), &RunOptions::default()).await;
    assert_passed(&outcome);
    let corrupt = outcome
        .steps
        .iter()
        .find(|s| s.action == "corrupt_artifact")
        .expect("the fault ran");
    assert_eq!(corrupt.status, Status::Pass);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_update_outcomes_fail() {
    let s = inline(
        r#"
name = "update refused"
timeout = "2s"

[update]
version = "0.2.0"

[[group]]
name = "rooms"
count = 2
kind = "teams_rooms_windows"
app_version = "5.2.115.0"
os_build = "19045.4894"
update = true

[[timeline]]
at = "0s"
action = "corrupt_artifact"

[[timeline]]
at = "0s"
action = "update"

[[expect]]
updates = { succeeded = 2 }
"#,
    );
    let outcome = run_ok(&s, &RunOptions::default()).await;
    let updates = result(&outcome, "updates");
    assert_eq!(updates.status, Status::Fail, "{}", report::table(&outcome));
    assert_eq!(
        updates.observed,
        "succeeded=0 failed=2 rolled_back=0 [checksum_mismatch=2]"
    );
}

/// A fleet whose every expectation is wrong by one, so each type is seen failing.
const WRONG: &str = r#"
name = "wrong"
timeout = "1s"

[[endpoint]]
name = "teams.microsoft.com"
role = "microsoft365"
versions = ["tls1.2", "tls1.3"]

[[group]]
name = "rooms"
count = 3
kind = "teams_rooms_windows"
app_version = { "4.0.51.0" = 1, "5.2.115.0" = 2 }
os_build = "19045.4894"

[[expect]]
verdicts = { ready = 3 }

[[expect]]
findings = { TLS12_APP_TOO_OLD = 2 }

[[expect]]
reported = 2

[[expect]]
name = "reported at once"
reported = "all"
within = "0s"

[[expect]]
name = "right"
verdicts = { ready = 2, not_ready = 1 }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_expectations_fail_with_what_was_observed() {
    let outcome = run_ok(&inline(WRONG), &RunOptions::default()).await;
    assert!(!outcome.passed());
    let verdicts = result(&outcome, "verdicts");
    assert_eq!(verdicts.status, Status::Fail);
    assert_eq!(verdicts.observed, "ready=2 at_risk=0 not_ready=1 unknown=0");
    let findings = result(&outcome, "findings");
    assert_eq!(findings.status, Status::Fail);
    assert_eq!(findings.observed, "TLS12_APP_TOO_OLD=1");
    let reported = result(&outcome, "reported");
    assert_eq!(reported.status, Status::Fail);
    assert_eq!(reported.observed, "3 of 3 devices reported a state");
    // It holds at the end, but not from the start: too late for within 0s.
    let late = result(&outcome, "reported at once");
    assert_eq!(late.status, Status::Fail);
    assert!(
        late.note
            .as_deref()
            .is_some_and(|n| n.starts_with("held only from")),
        "{late:?}"
    );
    assert_eq!(result(&outcome, "right").status, Status::Pass);
    let junit = report::junit(&outcome);
    assert_eq!(junit.matches("<failure").count(), 4, "{junit}");
    // The run waited the timeout for them to hold, not longer.
    assert!(outcome.elapsed_ms < 10_000, "{}", outcome.elapsed_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_that_never_arrive_fail_delivered() {
    // The broker is down from the start until the run ends: nothing can be delivered.
    let s = inline(
        r#"
name = "nothing delivered"
timeout = "0s"

[[group]]
name = "rooms"
count = 3
kind = "teams_rooms_windows"
app_version = "5.2.115.0"
os_build = "19045.4894"

[[timeline]]
at = "0s"
action = "broker_down"
for = "2s"

[[expect]]
delivered = true
"#,
    );
    let outcome = run_ok(&s, &RunOptions::default()).await;
    let delivered = result(&outcome, "delivered");
    assert_eq!(
        delivered.status,
        Status::Fail,
        "{}",
        report::table(&outcome)
    );
    // The run ends as the broker comes back (timeout 0s): a device whose retry falls in that
    // moment may get through, but not the whole fleet.
    assert!(
        delivered.observed.contains(" of 3 devices silent")
            && !delivered.observed.contains(" 0 of 3"),
        "{delivered:?}"
    );
}

#[test]
fn the_same_seed_gives_the_same_fleet() {
    let s = example("mixed-fleet.toml");
    let a = fleet::expand(&s, 7, &[]);
    let b = fleet::expand(&s, 7, &[]);
    assert_eq!(a, b);
    let c = fleet::expand(&s, 8, &[]);
    assert_ne!(a, c, "another seed deals the versions out differently");
    // ... but the same number of each.
    let count = |fleet: &[fleet::FleetDevice], version: &str| {
        fleet
            .iter()
            .filter(|d| {
                d.spec.app_version == roomready_simulator::device::SimValue::Known(version.into())
            })
            .count()
    };
    assert_eq!(count(&a, "4.0.51.0"), 2);
    assert_eq!(count(&c, "4.0.51.0"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_gives_the_same_result() {
    let s = example("mixed-fleet.toml");
    let options = RunOptions {
        seed: Some(42),
        ..RunOptions::default()
    };
    let first = run_ok(&s, &options).await;
    let second = run_ok(&s, &options).await;
    let texts = |o: &Outcome| {
        o.expectations
            .iter()
            .map(|e| {
                (
                    e.name.clone(),
                    e.expected.clone(),
                    e.observed.clone(),
                    e.status,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&first), texts(&second));
    assert_eq!(first.seed, 42);
}

fn parse_error(text: &str) -> String {
    match scenario::parse(Path::new("bad.toml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const GROUP: &str = "[[group]]\nname = \"rooms\"\ncount = 2\nkind = \"teams_rooms_windows\"\n";
const EXPECT: &str = "[[expect]]\nreported = \"all\"\n";

#[test]
fn parse_errors_name_file_line_column_and_shape() {
    let cases: Vec<(String, &str)> = vec![
        // TOML syntax.
        ("name = \"x\"\n[[group]\n".into(), "bad.toml:2:"),
        // An unknown key, with the table's shape.
        (
            format!("name = \"x\"\n{GROUP}cont = 3\n{EXPECT}"),
            "bad.toml:6:1: unknown field `cont`",
        ),
        (
            format!("name = \"x\"\n{GROUP}cont = 3\n{EXPECT}"),
            "expected: [[group]] name = \"rooms\", count = 10",
        ),
        // A wrong type.
        (
            format!(
                "name = \"x\"\n[[group]]\nname = \"rooms\"\ncount = \"two\"\nkind = \"teams_rooms_windows\"\n{EXPECT}"
            ),
            "bad.toml:4:9:",
        ),
        // An unknown device kind.
        (
            format!(
                "name = \"x\"\n[[group]]\nname = \"rooms\"\ncount = 2\nkind = \"toaster\"\n{EXPECT}"
            ),
            "bad.toml:5:8: unknown variant `toaster`",
        ),
        // A group name that cannot start a device id.
        (
            format!(
                "name = \"x\"\n[[group]]\nname = \"my rooms\"\ncount = 2\nkind = \"teams_rooms_windows\"\n{EXPECT}"
            ),
            "bad.toml:3:8: group name \"my rooms\"",
        ),
        // No devices.
        (
            format!("name = \"x\"\n{GROUP}{EXPECT}").replace("count = 2", "count = 0"),
            "bad.toml:4:9: count: expected at least 1 device",
        ),
        // Where a group is, by the protocol's rules.
        (
            format!("name = \"x\"\n{GROUP}site = \"Oslo HQ\"\n{EXPECT}"),
            "bad.toml:6:8: site \"Oslo HQ\": character ' ' at byte 4 is not allowed",
        ),
        (
            format!("name = \"x\"\n{GROUP}ring = 12\n{EXPECT}"),
            "bad.toml:6:8: ring 12 is out of range (0 = pilot ..= 9)",
        ),
        (
            format!("name = \"x\"\n{GROUP}tags = [\"ok\", \"Vip\"]\n{EXPECT}"),
            "bad.toml:6:15: tag \"Vip\": character 'V' at byte 0 is not allowed",
        ),
        // An endpoint that does not exist.
        (
            format!("name = \"x\"\n{GROUP}endpoints = [\"nowhere.example\"]\n{EXPECT}"),
            "endpoint \"nowhere.example\" is not an [[endpoint]] of this scenario",
        ),
        // A group that does not exist.
        (
            format!("name = \"x\"\n{GROUP}[[expect]]\ngroup = \"hubs\"\nreported = \"all\"\n"),
            "bad.toml:7:9: group \"hubs\" is not a [[group]] of this scenario (known: rooms)",
        ),
        // Two checks in one expectation.
        (
            format!("name = \"x\"\n{GROUP}[[expect]]\nreported = \"all\"\ndelivered = true\n"),
            "an [[expect]] has 2 checks",
        ),
        // A bad duration.
        (
            format!("name = \"x\"\n{GROUP}{EXPECT}within = \"soon\"\n"),
            "bad.toml:8:10: \"soon\" is not a duration",
        ),
        // A verdict that does not exist.
        (
            format!("name = \"x\"\n{GROUP}[[expect]]\nverdicts = {{ readyish = 1 }}\n"),
            "bad.toml:7:12: verdicts: \"readyish\" is not a verdict",
        ),
        // A finding code that does not exist.
        (
            format!("name = \"x\"\n{GROUP}[[expect]]\nfindings = {{ NOPE = 1 }}\n"),
            "findings: \"NOPE\" is not a finding code",
        ),
        // broker_down without for.
        (
            format!(
                "name = \"x\"\n{GROUP}[[timeline]]\nat = \"1s\"\naction = \"broker_down\"\n{EXPECT}"
            ),
            "bad.toml:8:10: broker_down needs for",
        ),
        // update without an [update] release.
        (
            format!(
                "name = \"x\"\n{GROUP}[[timeline]]\nat = \"1s\"\naction = \"update\"\n{EXPECT}"
            ),
            "update needs an [update] release",
        ),
        // Nothing expected.
        (format!("name = \"x\"\n{GROUP}"), "no [[expect]]"),
        // An endpoint the farm cannot build.
        (
            format!(
                "name = \"x\"\n[[endpoint]]\nname = \"a.example\"\nrole = \"custom\"\nversions = []\n{GROUP}{EXPECT}"
            ),
            "[[endpoint]] \"a.example\"",
        ),
    ];
    for (text, wanted) in cases {
        let error = parse_error(&text);
        assert!(
            error.contains(wanted),
            "for\n{text}\nwanted {wanted:?} in:\n{error}"
        );
    }
    // The context line and caret point at the place.
    let error = parse_error(&format!(
        "name = \"x\"\n[[group]]\nname = \"rooms\"\ncount = 2\nkind = \"toaster\"\n{EXPECT}"
    ));
    assert!(
        error.contains("\n  kind = \"toaster\"\n         ^"),
        "{error}"
    );
}

#[test]
fn a_missing_file_is_named() {
    let error = scenario::load(Path::new("/nonexistent/s.toml")).expect_err("missing");
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/s.toml: cannot read the scenario file"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_broker_runs_the_scenario_and_skips_broker_faults() {
    if !need_mosquitto("an_external_broker_runs_the_scenario_and_skips_broker_faults") {
        return;
    }
    let mosquitto = Mosquitto::start(&[]);
    let url: BrokerUrl = mosquitto.url().parse().expect("mosquitto url");
    let s = inline(
        r#"
name = "external"
report_interval = "1s"

[[group]]
name = "rooms"
count = 5
kind = "teams_rooms_windows"
app_version = "5.2.115.0"
os_build = "19045.4894"

[[timeline]]
at = "1s"
action = "broker_down"
for = "1s"

[[expect]]
reported = "all"

[[expect]]
delivered = true

[[expect]]
verdicts = { ready = 5 }
"#,
    );
    let outcome = run_ok(
        &s,
        &RunOptions {
            broker: Some(url.clone()),
            ..RunOptions::default()
        },
    )
    .await;
    assert_passed(&outcome);
    assert_eq!(outcome.broker, url.to_string());
    let step = &outcome.steps[0];
    assert_eq!(step.status, Status::Skipped, "{step:?}");
    assert!(
        step.note.as_deref().is_some_and(|n| n.contains("external")),
        "{step:?}"
    );
    let junit = report::junit(&outcome);
    assert!(junit.contains("<skipped message=\"the broker"), "{junit}");
}

const SIM: &str = env!("CARGO_BIN_EXE_roomready-sim");

#[test]
fn the_cli_exits_0_1_65_66_and_writes_junit_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junit = dir.path().join("report.xml");
    let json = dir.path().join("report.json");
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(SIM)
            .arg("run")
            .args(args)
            .output()
            .expect("run roomready-sim")
    };
    let passing = run(&[
        examples().join("mixed-fleet.toml").as_os_str(),
        "--seed".as_ref(),
        "3".as_ref(),
        "--junit".as_ref(),
        junit.as_os_str(),
        "--json".as_ref(),
        json.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&passing.stdout);
    assert_eq!(passing.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("7 of 7 expectations passed"), "{stdout}");
    assert!(
        passing.stderr.is_empty(),
        "quiet: {}",
        String::from_utf8_lossy(&passing.stderr)
    );
    let xml = std::fs::read_to_string(&junit).expect("junit written");
    assert!(
        xml.contains("<testsuite name=\"mixed-fleet\" tests=\"7\" failures=\"0\""),
        "{xml}"
    );
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(value["seed"], 3);

    let wrong = dir.path().join("wrong.toml");
    std::fs::write(&wrong, WRONG).expect("write");
    let failing = run(&[wrong.as_os_str(), "--junit".as_ref(), junit.as_os_str()]);
    assert_eq!(failing.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&failing.stdout);
    assert!(stdout.contains("1 of 5 expectations passed"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit written on failure too");
    assert_eq!(xml.matches("<failure").count(), 4, "{xml}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = 3\n").expect("write");
    let invalid = run(&[bad.as_os_str()]);
    assert_eq!(invalid.status.code(), Some(65));
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(stderr.contains("bad.toml:1:8:"), "{stderr}");

    let missing = run(&[dir.path().join("none.toml").as_os_str()]);
    assert_eq!(missing.status.code(), Some(66));
}

/// `--hold` keeps the fleet up past the moment the run would have ended, until SIGTERM; the
/// run then reports as usual.
#[cfg(unix)]
#[test]
fn hold_keeps_the_fleet_up_until_sigterm_then_reports() {
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("hold.toml");
    std::fs::write(
        &file,
        "name = \"hold\"\ntimeout = \"1s\"\n\n[[group]]\nname = \"rooms\"\ncount = 2\n\
         kind = \"teams_rooms_windows\"\napp_version = \"5.2.115.0\"\n\n[[expect]]\n\
         reported = \"all\"\n",
    )
    .expect("write");
    let json = dir.path().join("hold.json");
    let mut child = std::process::Command::new(SIM)
        .arg("run")
        .arg(&file)
        .arg("--hold")
        .arg("--json")
        .arg(&json)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run roomready-sim");
    // Without --hold this run ends within a second or two (two devices, a timeout of 1 s).
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "still running"
    );
    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "stopped within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert_eq!(value["expectations"][0]["status"], "pass", "{value}");
    // Held well past the moment every expectation held (about 100 ms in).
    assert!(
        value["elapsed_ms"].as_u64().expect("elapsed") >= 3000,
        "{value}"
    );
}

/// A persistent broker in a child process, stopped the moment a burst has been acknowledged,
/// keeps every message of a subscriber's session, in flight or queued: the child exits only once
/// what its connections stored while closing is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_broker_stopped_mid_delivery_keeps_every_message_of_a_session() {
    use roomready_simulator::scenario::broker::{ManagedBroker, Placement};
    use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
    use std::time::Duration;

    const BURST: usize = 200;
    const WAIT: Duration = Duration::from_secs(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = ManagedBroker::start(
        Placement::Child(PathBuf::from(SIM)),
        Some(dir.path().join("broker")),
    )
    .await
    .expect("the child broker starts");
    let addr = broker.addr();
    let options = |id: &str, clean: bool| {
        let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        o.set_clean_session(clean);
        o.set_keep_alive(Duration::from_secs(30));
        o
    };
    async fn until(events: &mut EventLoop, what: &str, mut done: impl FnMut(&Packet) -> bool) {
        tokio::time::timeout(WAIT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(p)) if done(&p) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{what}: {e}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{what} within {WAIT:?}"));
    }

    // The keeper's session: subscribed and connected, but it never acknowledges, so at the
    // stop the broker holds the burst in flight to it and queued behind that.
    let mut keeper_options = options("keeper", false);
    keeper_options.set_manual_acks(true);
    let (keeper, mut keeper_events) = AsyncClient::new(keeper_options, 16);
    keeper
        .subscribe("burst/#", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    until(&mut keeper_events, "the keeper's SUBACK", |p| {
        matches!(p, Packet::SubAck(_))
    })
    .await;
    let keeper_task = tokio::spawn(async move {
        // Reads (and never acknowledges) until the broker goes away.
        while keeper_events.poll().await.is_ok() {}
    });

    let (sender, mut events) = AsyncClient::new(options("sender", true), BURST + 16);
    for i in 0..BURST {
        sender
            .publish(format!("burst/{i}"), QoS::AtLeastOnce, false, i.to_string())
            .await
            .expect("queue a publish");
    }
    let mut acked = 0;
    until(&mut events, "every PUBACK", |p| {
        acked += usize::from(matches!(p, Packet::PubAck(_)));
        acked == BURST
    })
    .await;

    broker.stop().await;
    keeper_task.await.expect("the keeper's reader ends");
    broker
        .start_again()
        .await
        .expect("the child broker starts again");
    assert_eq!(broker.addr(), addr);

    let (_keeper, mut events) = AsyncClient::new(options("keeper", false), 16);
    let mut got = std::collections::BTreeSet::new();
    let waited = tokio::time::timeout(WAIT, async {
        while got.len() < BURST {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    got.insert(String::from_utf8_lossy(&p.payload).into_owned());
                }
                Ok(_) => {}
                Err(e) => panic!("keeper after the restart: {e}"),
            }
        }
    })
    .await;
    broker.stop().await;
    assert!(
        waited.is_ok(),
        "{} of {BURST} messages of the keeper's session came back after the restart",
        got.len()
    );
}
