//! A half-open connection is detected by the MQTT keep-alive: a proxy between the agent and the
//! broker stops forwarding in both directions without closing either socket (the broker still
//! sees the agent connected until its own keep-alive gives up; the agent hears nothing and gets no
//! error from its writes). With a keep-alive of 1 s the agent notices within the wait bound and
//! reconnects on its own (a new connection reaches the proxy), is subscribed to its commands again
//! (a `check_now` sent after the reconnect is answered, and a new state follows), and has lost
//! nothing: every `seq` up to the answer arrives. Both for an idle agent (nothing but pings on the wire) and for
//! a busy one, whose publishes into the dead connection must not keep it looking alive.

use std::time::{Duration, Instant};

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::FixedFacts;
use roomready_agent::link::Reconnect;
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::{DeviceId, ResponseStatus};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::proxy::FreezableProxy;
use roomready_tests::WAIT;
use roomready_tests::controller::Controller;
use tokio::sync::oneshot;

fn facts() -> FixedFacts {
    roomready_tests::rooms_facts("4.0.105.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_agent_detects_a_half_open_connection() {
    // No checks but the first and the commanded one: only pings cross the frozen connection.
    half_open("mtr-halfopen-idle", Duration::from_secs(3600)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_agent_detects_a_half_open_connection() {
    // A state and an event every 100 ms go into the frozen connection and are never acknowledged.
    half_open("mtr-halfopen-busy", Duration::from_millis(100)).await;
}

async fn half_open(id: &str, report_interval: Duration) {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let proxy = FreezableProxy::start(broker.addr()).await;
    let device = DeviceId::new(id).expect("valid id");
    let mut controller =
        Controller::connect(&broker.url(), &device, &format!("controller-{id}"), false);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));

    let through_proxy = BrokerUrl {
        host: proxy.addr().ip().to_string(),
        port: proxy.addr().port(),
        tls: false,
    };
    let mut settings = AgentSettings::new(device, through_proxy);
    settings.report_interval = report_interval;
    settings.keep_alive = Duration::from_secs(1);
    settings.reconnect = Reconnect {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        stable_after: Duration::from_secs(1),
    };
    let agent = Agent::new(settings, facts(), SystemClock);
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    controller
        .wait_until(WAIT, |s| !s.states.is_empty() && s.onlines() >= 1)
        .await
        .unwrap_or_else(|s| panic!("agent not online: {s:?}"));
    assert_eq!(proxy.accepted(), 1, "one connection so far");

    proxy.freeze();
    let frozen_at = Instant::now();
    assert!(
        proxy.wait_accepted(2, WAIT).await,
        "the agent did not reconnect within {WAIT:?} of the freeze"
    );
    let detected = frozen_at.elapsed();
    println!(
        "{id}: half-open connection detected and replaced {detected:?} after the freeze \
         (keep-alive 1 s)"
    );

    // The new connection's `online` is published after its `cmd` subscription: from then on a
    // command reaches the agent.
    controller
        .wait_until(WAIT, |s| s.onlines() >= 2)
        .await
        .unwrap_or_else(|s| panic!("agent not online again: {:?}", s.statuses));
    let before = controller.seen();
    let states_before = before.states.iter().map(|s| s.seq).max().unwrap_or(0);
    controller
        .command(r#"{"schema":"roomready.command/1","id":"c-after","command":"check_now"}"#)
        .await;
    let seen = controller
        .wait_until(WAIT, |s| {
            !s.answers("c-after").is_empty() && s.states.iter().any(|st| st.seq > states_before)
        })
        .await
        .unwrap_or_else(|s| {
            panic!(
                "check_now after the reconnect: answers {:?}, states {:?}",
                s.answers("c-after"),
                s.states.iter().map(|st| st.seq).collect::<Vec<_>>()
            )
        });
    let answer = seen.answers("c-after")[0];
    assert_eq!(answer.status, ResponseStatus::Accepted);

    // What went into the dead connection was never acknowledged, so it was sent again.
    let seen = controller
        .wait_until(WAIT, |s| s.contiguous() >= answer.seq)
        .await
        .unwrap_or_else(|s| {
            let mut seqs = s.seqs();
            seqs.dedup();
            let missing: Vec<u64> = (1..=answer.seq)
                .filter(|n| seqs.binary_search(n).is_err())
                .collect();
            panic!("seqs missing after the reconnect: {missing:?}")
        });
    println!(
        "{id}: {} connections accepted; {} messages, every seq up to {} received",
        proxy.accepted(),
        seen.seqs().len(),
        answer.seq
    );
    assert_eq!(
        seen.reused_seqs(),
        Vec::<u64>::new(),
        "no seq names two messages"
    );
    assert_eq!(seen.undecodable, 0);

    let _ = stop.send(());
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the agent stops")
        .expect("agent task")
        .expect("agent stops cleanly");
}
