//! The agent over MQTT 5, against the embedded broker and Mosquitto: a request's response topic
//! and correlation data are honoured (the answer also goes to `cmd/res`), and the session the
//! agent keeps with the broker holds its subscription while it is away, so a command sent then
//! is answered when it comes back.

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::FixedFacts;
use roomready_agent::link::{MqttVersion, Reconnect};
use roomready_agent::{Agent, AgentSettings};
use roomready_protocol::{CommandResponse, DeviceId, Message, ResponseStatus, TopicPrefix, Topics};
use roomready_simulator::broker::EmbeddedBroker;
use roomready_testkit::peers::{Mosquitto, need_mosquitto};
use roomready_tests::WAIT;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

fn facts() -> FixedFacts {
    roomready_tests::rooms_facts("4.0.64.0")
}

struct RunningAgent {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<roomready_agent::Stopped, roomready_agent::AgentError>>,
}

impl RunningAgent {
    fn start(broker: &BrokerUrl, device: &DeviceId) -> RunningAgent {
        let mut settings = AgentSettings::new(device.clone(), broker.clone());
        settings.mqtt_version = MqttVersion::V5;
        settings.report_interval = Duration::from_secs(3600);
        settings.keep_alive = Duration::from_secs(5);
        settings.reconnect = Reconnect {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(500),
            stable_after: Duration::from_secs(1),
        };
        let agent = Agent::new(settings, facts(), SystemClock);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            let _ = stopped.await;
        }));
        RunningAgent { stop, task }
    }

    async fn shut_down(self) {
        let _ = self.stop.send(());
        self.task
            .await
            .expect("agent task")
            .expect("agent stops cleanly");
    }
}

/// What an MQTT 5 controller received: (topic, payload, correlation data).
type Received = (String, Vec<u8>, Option<Vec<u8>>);

/// An MQTT 5 controller subscribed to its reply topic and the device's `cmd/res`.
struct Controller5 {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<Received>,
    task: JoinHandle<()>,
}

impl Drop for Controller5 {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Controller5 {
    async fn connect(broker: &BrokerUrl, topics: &Topics, reply_topic: &str) -> Controller5 {
        let mut options = MqttOptions::new("controller-v5", broker.host.clone(), broker.port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, received) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        let sub = client.clone();
        let filters = [reply_topic.to_owned(), topics.cmd_res().to_owned()];
        let task = tokio::spawn(async move {
            let mut subacks = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            let _ = sub.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks += 1;
                        if subacks == 2
                            && let Some(tx) = subscribed_tx.take()
                        {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let correlation = p
                            .properties
                            .and_then(|props| props.correlation_data.map(|c| c.to_vec()));
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        let _ = tx.send((topic, p.payload.to_vec(), correlation));
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(WAIT, subscribed)
            .await
            .expect("controller subscribed in time")
            .expect("controller task runs");
        Controller5 {
            client,
            received,
            task,
        }
    }

    async fn command(&self, topics: &Topics, payload: String, reply: Option<(&str, &[u8])>) {
        let properties = PublishProperties {
            response_topic: reply.map(|(topic, _)| topic.to_owned()),
            correlation_data: reply.map(|(_, data)| data.to_vec().into()),
            ..PublishProperties::default()
        };
        self.client
            .publish_with_properties(topics.cmd(), QoS::AtLeastOnce, false, payload, properties)
            .await
            .expect("controller queue open");
    }

    /// The next message, within the wait bound.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(WAIT, self.received.recv())
            .await
            .expect("a message in time")
            .expect("controller task runs")
    }

    /// Messages until both the reply-topic copy and the `cmd/res` copy of `id` arrived.
    async fn both_answers(&mut self, reply_topic: &str, id: &str) -> (Received, Received) {
        let mut reply = None;
        let mut res = None;
        while reply.is_none() || res.is_none() {
            let message = self.next().await;
            let Ok(response) = CommandResponse::decode(&message.1) else {
                continue;
            };
            if response.id != id {
                continue;
            }
            if message.0 == reply_topic {
                reply = Some(message);
            } else {
                res = Some(message);
            }
        }
        (
            reply.expect("loop ends with both"),
            res.expect("loop ends with both"),
        )
    }
}

fn cmd(id: &str, command: &str) -> String {
    format!(r#"{{"schema":"roomready.command/1","id":"{id}","command":"{command}"}}"#)
}

async fn response_topic_and_session(broker: BrokerUrl, name: &str) {
    let device = DeviceId::new(format!("mtr-v5-{name}")).expect("valid id");
    let topics = Topics::new(&TopicPrefix::default(), &device);
    let reply_topic = format!("controllers/{name}/replies");
    let mut controller = Controller5::connect(&broker, &topics, &reply_topic).await;
    let agent = RunningAgent::start(&broker, &device);

    // The agent subscribes after its CONNACK; a command published before that would be missed
    // (its session does not exist yet), so repeat a ping until one is answered.
    let mut answered = false;
    for attempt in 0..100 {
        controller
            .command(&topics, cmd(&format!("warm-{attempt}"), "ping"), None)
            .await;
        if let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), controller.received.recv()).await
            && CommandResponse::decode(&message.1).is_ok()
        {
            answered = true;
            break;
        }
    }
    assert!(answered, "{name}: the agent answers pings");

    controller
        .command(
            &topics,
            cmd("v5-1", "ping"),
            Some((&reply_topic, b"corr-\x00\xff")),
        )
        .await;
    let (reply, res) = controller.both_answers(&reply_topic, "v5-1").await;
    assert_eq!(
        reply.2.as_deref(),
        Some(&b"corr-\x00\xff"[..]),
        "{name}: correlation echoed"
    );
    let on_reply = CommandResponse::decode(&reply.1).expect("reply decodes");
    let on_res = CommandResponse::decode(&res.1).expect("cmd/res decodes");
    assert_eq!(on_reply.status, ResponseStatus::Succeeded);
    assert_eq!(on_reply, on_res, "{name}: the same answer on both topics");

    // The session outlives the agent: a command sent while it is away is answered on return.
    agent.shut_down().await;
    controller
        .command(
            &topics,
            cmd("while-away", "ping"),
            Some((&reply_topic, b"away")),
        )
        .await;
    // Make sure the broker has routed the command before the agent returns: a marker published
    // after it, on the same connection, comes back through the broker only after it.
    controller
        .client
        .publish(
            reply_topic.clone(),
            QoS::AtLeastOnce,
            false,
            b"marker".to_vec(),
        )
        .await
        .expect("controller queue open");
    loop {
        let message = controller.next().await;
        if message.0 == reply_topic && message.1 == b"marker" {
            break;
        }
    }
    let agent = RunningAgent::start(&broker, &device);
    let (reply, _) = controller.both_answers(&reply_topic, "while-away").await;
    assert_eq!(reply.2.as_deref(), Some(&b"away"[..]));
    agent.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_with_the_embedded_broker() {
    // Sessions of clients that are away are kept by a broker with storage (the embedded
    // broker's in-memory mode keeps none).
    let storage = tempfile::tempdir().expect("tempdir");
    let broker =
        EmbeddedBroker::start_persistent("127.0.0.1:0".parse().expect("addr"), storage.path())
            .await
            .expect("broker starts");
    response_topic_and_session(broker.url(), "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_with_mosquitto() {
    if !need_mosquitto("mqtt5_with_mosquitto") {
        return;
    }
    let broker = Mosquitto::start(&[]);
    let url: BrokerUrl = broker.url().parse().expect("mosquitto URL");
    response_topic_and_session(url, "mosquitto").await;
}
