//! The agent subscribes to its `cmd` topic again after its broker restarts: the embedded broker
//! (without persistence, so it forgets every session and subscription) is stopped and started
//! again on the same address, and a `ping` sent after the restart is answered. A ping before the
//! restart shows the path worked to begin with.

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::facts::FixedFacts;
use roomready_agent::link::Reconnect;
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::{DeviceId, ResponseStatus};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_tests::WAIT;
use roomready_tests::controller::Controller;
use tokio::sync::oneshot;

fn facts() -> FixedFacts {
    roomready_tests::rooms_facts("4.0.105.0")
}

fn ping(id: &str) -> String {
    format!(r#"{{"schema":"roomready.command/1","id":"{id}","command":"ping"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_agent_after_a_broker_restart() {
    let broker = EmbeddedBroker::start().await.expect("broker starts");
    let addr = broker.addr();
    let device = DeviceId::new("mtr-resubscribe").expect("valid id");
    let mut controller =
        Controller::connect(&broker.url(), &device, "controller-resubscribe", false);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));

    let mut settings = AgentSettings::new(device, broker.url());
    settings.report_interval = Duration::from_secs(3600);
    settings.keep_alive = Duration::from_secs(5);
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

    // The agent's `online` is published after its `cmd` subscription.
    controller
        .wait_until(WAIT, |s| s.onlines() >= 1)
        .await
        .unwrap_or_else(|s| panic!("agent not online: {s:?}"));
    controller.command(ping("p-before")).await;
    controller
        .wait_until(WAIT, |s| !s.answers("p-before").is_empty())
        .await
        .unwrap_or_else(|s| panic!("ping before the restart: {:?}", s.responses));

    broker.stop().await.expect("broker stops");
    let _broker = EmbeddedBroker::start_on(addr)
        .await
        .expect("broker restarts on the same port");

    // The restarted broker holds nothing: an `online` now is the agent's, on a new connection,
    // published after it subscribed there (the controller sees it live, or retained when it
    // subscribes again itself).
    controller
        .wait_until(WAIT, |s| s.onlines() >= 2)
        .await
        .unwrap_or_else(|s| panic!("agent not online after the restart: {:?}", s.statuses));
    controller.command(ping("p-after")).await;
    let seen = controller
        .wait_until(WAIT, |s| !s.answers("p-after").is_empty())
        .await
        .unwrap_or_else(|s| {
            panic!(
                "ping after the restart not answered (connections of the controller: {}): {:?}",
                s.connections, s.responses
            )
        });
    assert_eq!(seen.answers("p-after")[0].status, ResponseStatus::Succeeded);
    assert_eq!(seen.undecodable, 0);

    let _ = stop.send(());
    tokio::time::timeout(WAIT, running)
        .await
        .expect("the agent stops")
        .expect("agent task")
        .expect("agent stops cleanly");
}
