//! Commands end to end, through the embedded broker and through Mosquitto: each valid command is answered and run once
//! (a redelivered id is answered again, not run again), and hostile payloads neither stop the
//! agent nor go unanswered when they carry an id.

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::FixedFacts;
use roomready_agent::link::MqttVersion;
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::{DeviceId, ResponseStatus};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::WAIT;
use roomready_tests::controller::{Controller, Seen};
use tokio::sync::oneshot;

fn facts() -> FixedFacts {
    roomready_tests::rooms_facts("4.0.64.0")
}

/// Starts an agent whose timer never fires during the test: checks come from commands.
fn start(broker: &BrokerUrl, id: &str) -> (DeviceId, oneshot::Sender<()>) {
    start_with(broker, id, MqttVersion::V311)
}

/// [`start`] speaking MQTT `version`.
fn start_with(
    broker: &BrokerUrl,
    id: &str,
    version: MqttVersion,
) -> (DeviceId, oneshot::Sender<()>) {
    let device = DeviceId::new(id).expect("valid id");
    let mut settings = AgentSettings::new(device.clone(), broker.clone());
    settings.mqtt_version = version;
    settings.report_interval = Duration::from_secs(3600);
    settings.keep_alive = Duration::from_secs(5);
    let agent = Agent::new(settings, facts(), SystemClock);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    (device, stop)
}

fn cmd(id: &str, rest: &str) -> String {
    format!(r#"{{"schema":"roomready.command/1","id":"{id}",{rest}}}"#)
}

async fn answered(controller: &mut Controller, id: &str, times: usize) -> Seen {
    controller
        .wait_until(WAIT, |s| s.answers(id).len() >= times)
        .await
        .unwrap_or_else(|seen| panic!("{id} not answered {times}x: {:?}", seen.responses))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_and_run_once_embedded() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    commands_are_answered_and_run_once(broker.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_and_run_once_mosquitto() {
    if !need_mosquitto("commands_are_answered_and_run_once_mosquitto") {
        return;
    }
    let broker = Mosquitto::start(&[]);
    commands_are_answered_and_run_once(broker.url().parse().expect("mosquitto URL")).await;
}

async fn commands_are_answered_and_run_once(broker: BrokerUrl) {
    let (device, _stop) = start(&broker, "mtr-cmd");
    let mut controller = Controller::connect(&broker, &device, "controller-cmd", false);
    // The agent checks once at start; its state is retained.
    controller
        .wait_until(WAIT, |s| !s.states.is_empty())
        .await
        .unwrap_or_else(|s| panic!("no first state: {s:?}"));

    controller.command(cmd("p-1", r#""command":"ping""#)).await;
    let seen = answered(&mut controller, "p-1", 1).await;
    assert_eq!(seen.answers("p-1")[0].status, ResponseStatus::Succeeded);

    controller
        .command(cmd("c-1", r#""command":"check_now""#))
        .await;
    let seen = controller
        .wait_until(WAIT, |s| s.checks() >= 2 && !s.answers("c-1").is_empty())
        .await
        .unwrap_or_else(|s| panic!("check_now: {s:?}"));
    assert_eq!(seen.answers("c-1")[0].status, ResponseStatus::Accepted);

    // The same request again: answered again, not run again.
    controller
        .command(cmd("c-1", r#""command":"check_now""#))
        .await;
    answered(&mut controller, "c-1", 2).await;
    // A new request runs; then the count of states says whether the repeat ran too.
    controller
        .command(cmd("c-2", r#""command":"check_now""#))
        .await;
    controller
        .wait_until(WAIT, |s| s.checks() >= 3 && !s.answers("c-2").is_empty())
        .await
        .unwrap_or_else(|s| panic!("second check_now: {s:?}"));
    controller.command(cmd("p-2", r#""command":"ping""#)).await;
    let seen = answered(&mut controller, "p-2", 1).await;
    // Counted by seq: the retained first state may arrive twice (live and retained, when the
    // subscription and the agent's first publish cross), a run is a new seq.
    assert_eq!(
        seen.checks(),
        3,
        "first check + c-1 + c-2, and no second run of c-1: {:?}",
        seen.seqs()
    );
    let repeat = seen.answers("c-1");
    assert_eq!(repeat[0].status, repeat[1].status);
    assert!(repeat[1].seq > repeat[0].seq, "a repeat is a new message");

    controller
        .command(cmd("i-1", r#""command":"set_interval","seconds":0"#))
        .await;
    let seen = answered(&mut controller, "i-1", 1).await;
    let rejected = seen.answers("i-1")[0];
    assert_eq!(rejected.status, ResponseStatus::Rejected);
    assert_eq!(rejected.reason.as_deref(), Some("invalid_argument"));

    // set_interval takes effect: with 1 s, states keep coming without commands.
    controller
        .command(cmd("i-2", r#""command":"set_interval","seconds":1"#))
        .await;
    answered(&mut controller, "i-2", 1).await;
    controller
        .wait_until(WAIT, |s| s.checks() >= 5)
        .await
        .unwrap_or_else(|s| panic!("interval not applied: {} checks", s.checks()));

    // A retained copy of a state seen live is MQTT's doing, not the agent's: only live repeats
    // would be duplicate sends.
    let seen = controller.seen();
    let sent = seen.sent_seqs();
    let mut seqs = sent.clone();
    seqs.dedup();
    assert_eq!(
        seqs, sent,
        "no duplicate seq (retained: {:?})",
        seen.retained
    );
    assert_eq!(seen.undecodable, 0);
}

/// The observer tells a retained delivery from a live one, which is what lets
/// [`commands_are_answered_and_run_once`] count duplicate sends without counting MQTT's
/// retained copy of a state it also saw live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_sees_the_state_as_retained() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let (device, _stop) = start(&broker.url(), "mtr-late");
    let mut first = Controller::connect(&broker.url(), &device, "controller-early", false);
    let early = first
        .wait_until(WAIT, |s| s.checks() == 1)
        .await
        .unwrap_or_else(|s| panic!("no first state: {s:?}"));
    let mut late = Controller::connect(&broker.url(), &device, "controller-late", false);
    let seen = late
        .wait_until(WAIT, |s| s.checks() == 1)
        .await
        .unwrap_or_else(|s| panic!("no retained state: {s:?}"));
    assert_eq!(seen.retained, [seen.states[0].seq], "{seen:?}");
    assert!(
        !seen.sent_seqs().contains(&seen.states[0].seq),
        "a retained copy is not a send"
    );
    // The early subscriber may have had it live, retained, or both; counted once either way.
    assert_eq!(early.checks(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_commands_never_run_embedded() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    for version in [MqttVersion::V311, MqttVersion::V5] {
        retained_commands_never_run(broker.url(), version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_commands_never_run_mosquitto() {
    if !need_mosquitto("retained_commands_never_run_mosquitto") {
        return;
    }
    let broker = Mosquitto::start(&[]);
    let url: BrokerUrl = broker.url().parse().expect("mosquitto URL");
    for version in [MqttVersion::V311, MqttVersion::V5] {
        retained_commands_never_run(url.clone(), version).await;
    }
}

/// A `check_now` left retained on the device's `cmd` topic is never run, however often the agent
/// (re)starts: under MQTT 3.1.1 it arrives flagged retained and is answered `rejected`
/// `retained_command`; under MQTT 5 the subscription asks the broker not to send it at all.
async fn retained_commands_never_run(broker: BrokerUrl, version: MqttVersion) {
    let name = match version {
        MqttVersion::V311 => "mtr-retained-4",
        MqttVersion::V5 => "mtr-retained-5",
    };
    let device = DeviceId::new(name).expect("valid id");
    let mut controller =
        Controller::connect(&broker, &device, &format!("{name}-controller"), false);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));
    controller
        .retain_command(cmd("r-1", r#""command":"check_now""#), WAIT)
        .await;
    for start_number in 1..=2 {
        let (_, stop) = start_with(&broker, name, version);
        let ping = format!("p-{start_number}");
        // The ping follows the retained delivery on the same connection.
        controller
            .wait_until(WAIT, |s| s.states.len() >= start_number)
            .await
            .unwrap_or_else(|s| panic!("start {start_number}: no state: {s:?}"));
        controller.command(cmd(&ping, r#""command":"ping""#)).await;
        let seen = answered(&mut controller, &ping, 1).await;
        let retained = seen.answers("r-1");
        match version {
            MqttVersion::V311 => {
                assert_eq!(retained.len(), start_number, "{:#?}", seen);
                assert!(retained.iter().all(|a| a.status == ResponseStatus::Rejected
                    && a.reason.as_deref() == Some("retained_command")));
            }
            MqttVersion::V5 => assert!(retained.is_empty(), "{retained:?}"),
        }
        assert_eq!(
            seen.states.len(),
            start_number,
            "one check per start, none for the retained check_now"
        );
        let _ = stop.send(());
        controller
            .wait_until(WAIT, |s| {
                s.statuses
                    .last()
                    .is_some_and(|st| st.status == roomready_protocol::Presence::Offline)
            })
            .await
            .unwrap_or_else(|s| panic!("start {start_number}: not stopped: {s:?}"));
    }
    controller.retain_command(Vec::new(), WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_commands_never_cost_the_connection_embedded() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    for version in [MqttVersion::V311, MqttVersion::V5] {
        oversized_commands_never_cost_the_connection(broker.url(), version).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_commands_never_cost_the_connection_mosquitto() {
    if !need_mosquitto("oversized_commands_never_cost_the_connection_mosquitto") {
        return;
    }
    let broker = Mosquitto::start(&[]);
    let url: BrokerUrl = broker.url().parse().expect("mosquitto URL");
    for version in [MqttVersion::V311, MqttVersion::V5] {
        oversized_commands_never_cost_the_connection(url.clone(), version).await;
    }
}

/// A command of `len` bytes with its id first, as controllers write them.
fn oversized(id: &str, len: usize) -> Vec<u8> {
    let mut payload = cmd(id, r#""command":"ping","pad":""#).into_bytes();
    payload.truncate(payload.len() - 1);
    payload.resize(len - 2, b'x');
    payload.extend_from_slice(b"\"}");
    payload
}

/// Commands far over `command_max_bytes` (64 KiB by default), live and retained: the agent
/// stays connected (one `online` per start), keeps answering, and answers the oversized one
/// `payload_too_large` under MQTT 3.1.1, where it streams it past, while under MQTT 5 the broker
/// drops it (the agent announced its limit in CONNECT).
async fn oversized_commands_never_cost_the_connection(broker: BrokerUrl, version: MqttVersion) {
    let name = match version {
        MqttVersion::V311 => "mtr-oversized-4",
        MqttVersion::V5 => "mtr-oversized-5",
    };
    let device = DeviceId::new(name).expect("valid id");
    let mut controller =
        Controller::connect(&broker, &device, &format!("{name}-controller"), false);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));
    let (_, stop) = start_with(&broker, name, version);
    controller
        .wait_until(WAIT, |s| !s.states.is_empty())
        .await
        .unwrap_or_else(|s| panic!("no first state: {s:?}"));
    // Over the 16 MiB that used to be the agent's packet limit.
    let big = 17 * 1024 * 1024;
    controller.command(oversized("big-1", big)).await;
    controller.command(cmd("p-1", r#""command":"ping""#)).await;
    let seen = answered(&mut controller, "p-1", 1).await;
    let answers = seen.answers("big-1");
    match version {
        MqttVersion::V311 => {
            let answer = answers
                .first()
                .unwrap_or_else(|| panic!("big-1 unanswered: {seen:?}"));
            assert_eq!(answer.status, ResponseStatus::Rejected);
            assert_eq!(answer.reason.as_deref(), Some("payload_too_large"));
            assert_eq!(
                answer.message.as_deref(),
                Some(format!("the command is {big} bytes; the limit is 65536").as_str())
            );
        }
        MqttVersion::V5 => assert!(answers.is_empty(), "the broker dropped it: {answers:?}"),
    }
    // Left retained, it comes back on every connect; it must not keep the agent off the broker.
    controller
        .retain_command(oversized("big-2", big), WAIT)
        .await;
    let _ = stop.send(());
    let (_, stop) = start_with(&broker, name, version);
    controller
        .wait_until(WAIT, |s| s.states.len() >= 2)
        .await
        .unwrap_or_else(|s| panic!("no state after the restart: {s:?}"));
    controller.command(cmd("p-2", r#""command":"ping""#)).await;
    let seen = answered(&mut controller, "p-2", 1).await;
    let onlines = seen
        .statuses
        .iter()
        .filter(|st| st.status == roomready_protocol::Presence::Online)
        .count();
    assert_eq!(onlines, 2, "one connection per start: {:?}", seen.statuses);
    if version == MqttVersion::V311 {
        let retained = seen.answers("big-2");
        assert_eq!(retained.len(), 1, "{:?}", seen.responses);
        assert_eq!(retained[0].reason.as_deref(), Some("retained_command"));
    }
    controller.retain_command(Vec::new(), WAIT).await;
    let _ = stop.send(());
}

/// xorshift64*: a tiny deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_are_survived_and_answered_embedded() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    hostile_payloads_are_survived_and_answered(broker.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_payloads_are_survived_and_answered_mosquitto() {
    if !need_mosquitto("hostile_payloads_are_survived_and_answered_mosquitto") {
        return;
    }
    let broker = Mosquitto::start(&[]);
    hostile_payloads_are_survived_and_answered(broker.url().parse().expect("mosquitto URL")).await;
}

async fn hostile_payloads_are_survived_and_answered(broker: BrokerUrl) {
    let (device, _stop) = start(&broker, "mtr-hostile");
    let mut controller = Controller::connect(&broker, &device, "controller-hostile", false);
    controller
        .wait_until(WAIT, |s| !s.states.is_empty())
        .await
        .unwrap_or_else(|s| panic!("no first state: {s:?}"));

    let mut rng = Rng(0x5DEE_CE66_D1CE_4E5B);
    let mut with_id = Vec::new();
    let deep = 10_000;
    for n in 0..1_000 {
        let id = format!("h-{n}");
        let payload: Vec<u8> = match n % 10 {
            // Random bytes: no id to answer.
            0 => (0..(rng.next() % 512)).map(|_| rng.next() as u8).collect(),
            1 if n == 1 => {
                // 10 MiB, with an id.
                let mut big = cmd(&id, r#""command":"ping","pad":""#).into_bytes();
                big.truncate(big.len() - 1);
                big.resize(10 * 1024 * 1024, b'x');
                big.extend_from_slice(b"\"}");
                big
            }
            1 | 2 => format!(
                r#"{{"id":"{id}","schema":"roomready.command/1","command":"ping","x":{}{}}}"#,
                "[".repeat(deep),
                "]".repeat(deep)
            )
            .into_bytes(),
            3 => cmd(&id, r#""command":["ping"]"#).into_bytes(),
            4 => cmd(&id, r#""command":"set_interval","seconds":{"a":1}"#).into_bytes(),
            5 => {
                let mut bytes = cmd(&id, r#""command":"ping","note":"x""#).into_bytes();
                let at = bytes.len() - 3;
                bytes[at] = 0xff;
                bytes
            }
            6 => cmd(&id, r#""command":"format_disk""#).into_bytes(),
            7 => format!(r#"{{"schema":"roomready.command/9","id":"{id}","command":"ping"}}"#)
                .into_bytes(),
            8 => br#"{"schema":"roomready.command/1","command":"ping"}"#.to_vec(),
            _ => cmd(&id, r#""command":"update""#).into_bytes(),
        };
        if roomready_agent::command::top_level_id(&payload).is_ok() {
            with_id.push(id);
        }
        controller.command(payload).await;
    }
    assert!(
        with_id.len() >= 700,
        "most payloads carry an id: {}",
        with_id.len()
    );
    controller
        .command(cmd("alive", r#""command":"ping""#))
        .await;
    let seen = controller
        .wait_until(WAIT, |s| {
            !s.answers("alive").is_empty() && with_id.iter().all(|id| !s.answers(id).is_empty())
        })
        .await
        .unwrap_or_else(|s| {
            let missing: Vec<_> = with_id
                .iter()
                .filter(|id| s.answers(id).is_empty())
                .collect();
            panic!(
                "{} unanswered, e.g. {:?}",
                missing.len(),
                &missing[..missing.len().min(5)]
            )
        });
    assert_eq!(
        seen.answers("alive")[0].status,
        ResponseStatus::Succeeded,
        "still running"
    );
    let big = seen.answers("h-1");
    assert_eq!(big[0].reason.as_deref(), Some("payload_too_large"));
    assert_eq!(
        seen.answers("h-2")[0].reason.as_deref(),
        Some("invalid_json")
    );
    assert_eq!(
        seen.answers("h-6")[0].reason.as_deref(),
        Some("unknown_command")
    );
    assert_eq!(
        seen.answers("h-7")[0].reason.as_deref(),
        Some("unsupported_schema")
    );
    assert_eq!(
        seen.answers("h-5")[0].reason.as_deref(),
        Some("invalid_utf8")
    );
    assert_eq!(
        seen.answers("h-9")[0].reason.as_deref(),
        Some("not_configured"),
        "no update feed on this agent"
    );
    assert!(
        seen.responses
            .iter()
            .filter(|r| r.id != "alive")
            .all(|r| r.status == ResponseStatus::Rejected),
        "every hostile payload is rejected"
    );
}
