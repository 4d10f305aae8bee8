//! Delivery through broker outages: the broker is stopped and restarted (on the same port and
//! storage) five times while the agent reports, and an independent subscriber with a persistent
//! session still receives every `seq` from 1 on — duplicates allowed and counted, none missing.
//! Against the embedded broker and against Mosquitto (both with persistence, as a production
//! broker runs: without it the broker itself forgets what it acknowledged).

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::FixedFacts;
use roomready_agent::link::Reconnect;
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::DeviceId;
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::WAIT;
use roomready_tests::controller::Controller;

/// A broker the test can stop and start again with its sessions kept.
enum Broker {
    Embedded {
        broker: Option<EmbeddedBroker>,
        addr: std::net::SocketAddr,
        storage: tempfile::TempDir,
    },
    Mosquitto(Mosquitto),
}

impl Broker {
    async fn embedded() -> Broker {
        let storage = tempfile::tempdir().expect("tempdir");
        let broker =
            EmbeddedBroker::start_persistent("127.0.0.1:0".parse().expect("addr"), storage.path())
                .await
                .expect("broker starts");
        Broker::Embedded {
            addr: broker.addr(),
            broker: Some(broker),
            storage,
        }
    }

    fn url(&self) -> BrokerUrl {
        match self {
            Broker::Embedded { addr, .. } => BrokerUrl {
                host: addr.ip().to_string(),
                port: addr.port(),
                tls: false,
            },
            Broker::Mosquitto(m) => m.url().parse().expect("mosquitto URL"),
        }
    }

    async fn restart(&mut self) {
        match self {
            Broker::Embedded {
                broker,
                addr,
                storage,
            } => {
                if let Some(running) = broker.take() {
                    running.stop().await.expect("broker stops");
                }
                *broker = Some(
                    EmbeddedBroker::start_persistent(*addr, storage.path())
                        .await
                        .expect("broker restarts on the same port"),
                );
            }
            Broker::Mosquitto(m) => {
                m.terminate();
                m.start_again();
            }
        }
    }
}

fn facts() -> FixedFacts {
    roomready_tests::rooms_facts("4.0.51.0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_restarts_lose_nothing() {
    restarts_lose_nothing(Broker::embedded().await, "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restarts_lose_nothing() {
    if !need_mosquitto("mosquitto_restarts_lose_nothing") {
        return;
    }
    restarts_lose_nothing(
        Broker::Mosquitto(Mosquitto::start_persistent(&[])),
        "mosquitto",
    )
    .await;
}

async fn restarts_lose_nothing(mut broker: Broker, name: &str) {
    const TARGET: u64 = 200;
    let device = DeviceId::new("mtr-outage").expect("valid id");
    let mut controller = Controller::connect(&broker.url(), &device, "controller-outage", true);
    controller
        .wait_until(WAIT, |s| s.subscribed)
        .await
        .unwrap_or_else(|s| panic!("controller not subscribed: {s:?}"));

    let mut settings = AgentSettings::new(device.clone(), broker.url());
    settings.report_interval = Duration::from_millis(40);
    settings.keep_alive = Duration::from_secs(5);
    settings.reconnect = Reconnect {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(400),
        stable_after: Duration::from_secs(1),
    };
    let agent = Agent::new(settings, facts(), SystemClock);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    for restart in 1..=5u64 {
        // Let some traffic through, then take the broker away mid-stream.
        let mark = restart * TARGET / 6;
        controller
            .wait_until(WAIT, |s| s.seqs().last().is_some_and(|&top| top >= mark))
            .await
            .unwrap_or_else(|s| panic!("before restart {restart}: {:?}", s.seqs().last()));
        broker.restart().await;
    }
    let seen = controller
        .wait_until(Duration::from_secs(60), |s| s.contiguous() >= TARGET)
        .await
        .unwrap_or_else(|s| {
            let mut seqs = s.seqs();
            seqs.dedup();
            let missing: Vec<u64> = (1..=TARGET)
                .filter(|n| seqs.binary_search(n).is_err())
                .collect();
            panic!("missing seqs after 5 restarts: {missing:?}")
        });
    let all = seen.seqs();
    let mut unique = all.clone();
    unique.dedup();
    println!(
        "{name}: 5 broker restarts: {} messages received, {} unique, {} duplicates, {} reconnects of the controller",
        all.len(),
        unique.len(),
        all.len() - unique.len(),
        seen.connections.saturating_sub(1)
    );
    assert_eq!(seen.undecodable, 0);
    assert_eq!(
        seen.reused_seqs(),
        Vec::<u64>::new(),
        "no seq names two messages"
    );
    let _ = stop.send(());
    running
        .await
        .expect("agent task")
        .expect("agent stops cleanly");
}
