//! The fleet, taken from the broker and into the store, losing nothing: a persistent MQTT session
//! (a fixed client id; MQTT 3.1.1 `clean_session = false`, MQTT 5 a session expiry) with QoS 1
//! subscriptions to every device's `state`, `status`, `events` and `cmd/res`, made again on every
//! connect, reconnecting with backoff.
//!
//! **Acknowledge after commit.** Acknowledgements are manual: the event loop task hands every
//! publish to the committer task, which decodes a batch of them ([`decode`]), commits the batch to
//! the store in one transaction and only then sends the PUBACKs. A controller killed at any
//! moment has acknowledged only what is committed; the broker delivers the rest again to the
//! same session, and the store drops what it has already seen (a duplicate `seq`). A commit that
//! fails is retried, with backoff, without acknowledging anything meanwhile.
//!
//! The same client publishes commands ([`Client::publish_command`]).

pub mod decode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use roomready_connect::backoff::Backoff;
use roomready_connect::broker::{BrokerSettings, MqttVersion};
use roomready_protocol::{Channel, TopicPrefix};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::clock;
use crate::store::{Batch, Committed, Store};

/// Publishes taken into one commit at most.
pub const MAX_BATCH: usize = 2000;
/// Publishes waiting for the committer before the event loop waits (and so stops reading).
const QUEUE: usize = 10_000;
/// Publishes the broker may have in flight to the controller unacknowledged (MQTT 5 Receive
/// Maximum; MQTT 3.1.1 brokers use their own setting, Mosquitto's `max_inflight_messages`).
pub const RECEIVE_MAXIMUM: u16 = 1000;
/// Room in a packet beside the payload: topic, packet id, properties.
const PACKET_HEADROOM: usize = 64 * 1024;
/// MQTT 3.1.1 cannot tell the broker a limit: a larger packet costs the connection, so the limit
/// is set high and the broker's own (`message_size_limit`) should be lower (docs/controller.md).
const MQTT311_MAX_PACKET: usize = 16 * 1024 * 1024 + PACKET_HEADROOM;
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How to connect and what to subscribe to.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub broker: BrokerSettings,
    /// Built from `broker.tls` for `mqtts://` (`roomready_connect::tls::client_config`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub prefix: TopicPrefix,
    pub client_id: String,
    pub shared_group: Option<String>,
    pub session_expiry: Duration,
    pub max_payload: usize,
}

impl IngestOptions {
    /// The four subscription filters, shared (`$share/GROUP/…`) when a group is set.
    pub fn filters(&self) -> Vec<String> {
        [
            Channel::State,
            Channel::Status,
            Channel::Events,
            Channel::CmdRes,
        ]
        .into_iter()
        .map(|channel| {
            let filter = self.prefix.filter(channel);
            match &self.shared_group {
                Some(group) => format!("$share/{group}/{filter}"),
                None => filter,
            }
        })
        .collect()
    }
}

/// Counters of ingest, for `/metrics` and the pages.
#[derive(Debug)]
pub struct Stats {
    pub connected: AtomicBool,
    /// `true` once the broker has acknowledged every subscription of the current connection:
    /// from then on nothing published to the fleet's topics is missed.
    pub subscribed: tokio::sync::watch::Sender<bool>,
    /// Connections made (the first included).
    pub connections: AtomicU64,
    pub received: AtomicU64,
    pub taken: AtomicU64,
    pub duplicates: AtomicU64,
    pub undecodable: AtomicU64,
    /// Sequence numbers skipped (gaps opened).
    pub gaps: AtomicU64,
    pub commits: AtomicU64,
    pub commit_failures: AtomicU64,
    /// Commands published.
    pub commands: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            connected: AtomicBool::new(false),
            subscribed: tokio::sync::watch::Sender::new(false),
            connections: AtomicU64::new(0),
            received: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            undecodable: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_failures: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            last_error: std::sync::Mutex::new(None),
        }
    }
}

impl Stats {
    fn error(&self, error: String) {
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(error);
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The MQTT client of either version.
#[derive(Clone)]
pub enum Client {
    V311(rumqttc::AsyncClient),
    V5(rumqttc::v5::AsyncClient),
}

/// A publish taken from the broker, to acknowledge after its commit.
enum Received {
    V311(rumqttc::Publish),
    V5(rumqttc::v5::mqttbytes::v5::Publish),
}

impl Received {
    fn topic(&self) -> String {
        match self {
            Received::V311(p) => p.topic.clone(),
            Received::V5(p) => String::from_utf8_lossy(&p.topic).into_owned(),
        }
    }

    fn payload(&self) -> &[u8] {
        match self {
            Received::V311(p) => &p.payload,
            Received::V5(p) => &p.payload,
        }
    }

    /// What acknowledging it needs (its packet id and QoS), without the payload and topic: a
    /// committed message waiting for room in the client's queue costs a few bytes, not its size.
    fn ack_only(self) -> Received {
        match self {
            Received::V311(mut p) => {
                p.topic = String::new();
                p.payload = Default::default();
                Received::V311(p)
            }
            Received::V5(mut p) => {
                p.topic = Default::default();
                p.payload = Default::default();
                p.properties = None;
                Received::V5(p)
            }
        }
    }
}

impl Client {
    /// Publishes `payload` to `topic` (QoS 1, not retained).
    pub async fn publish_command(&self, topic: String, payload: Vec<u8>) -> Result<(), String> {
        match self {
            Client::V311(c) => c
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .publish(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await
                .map_err(|e| e.to_string()),
        }
    }

    /// Queues the PUBACK of `received`, waiting for room in the client's request queue.
    async fn ack(&self, received: &Received) -> Result<(), String> {
        match (self, received) {
            (Client::V311(c), Received::V311(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            (Client::V5(c), Received::V5(p)) => c.ack(p).await.map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }

    fn subscribe(&self, filter: &str) -> Result<(), String> {
        match self {
            Client::V311(c) => c
                .try_subscribe(filter, rumqttc::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
                .map_err(|e| e.to_string()),
        }
    }

    async fn disconnect(&self) {
        let _ = match self {
            Client::V311(c) => c.disconnect().await.map_err(|e| e.to_string()),
            Client::V5(c) => c.disconnect().await.map_err(|e| e.to_string()),
        };
    }
}

/// The running ingest.
pub struct Ingest {
    pub client: Client,
    pub stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Connects (in the background, retrying) and starts taking the fleet into `store`; every
    /// committed batch is sent on `live`.
    pub fn start(
        options: IngestOptions,
        store: Arc<dyn Store>,
        live: broadcast::Sender<Arc<Committed>>,
    ) -> Ingest {
        let stats = Arc::new(Stats::default());
        let (client, eventloop) = connect(&options);
        let (tx, rx) = mpsc::channel(QUEUE);
        let poller = tokio::spawn(poll(
            eventloop,
            client.clone(),
            options.filters(),
            tx,
            Arc::clone(&stats),
            seed(&options.client_id),
        ));
        let committer = tokio::spawn(commit_loop(
            rx,
            client.clone(),
            options.prefix.clone(),
            options.max_payload,
            store,
            live,
            Arc::clone(&stats),
        ));
        Ingest {
            client,
            stats,
            tasks: vec![poller, committer],
        }
    }

    /// Disconnects cleanly (the session stays on the broker) and stops.
    pub async fn stop(self) {
        // DISCONNECT waits for room in the client's queue, which the event loop drains: bounded
        // too, should the connection be stuck.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.disconnect()).await;
        for task in self.tasks {
            // The event loop ends once DISCONNECT is written; bound the wait all the same.
            let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
        }
    }
}

fn seed(client_id: &str) -> u64 {
    client_id.bytes().fold(clock::now().unix_ms(), |h, b| {
        h.rotate_left(5) ^ u64::from(b)
    })
}

/// Built once and moved into its task: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum EventLoop {
    V311(rumqttc::EventLoop),
    V5(rumqttc::v5::EventLoop),
}

fn connect(options: &IngestOptions) -> (Client, EventLoop) {
    let password = options.broker.credentials.as_ref().map(|c| {
        (
            c.username.clone(),
            c.password
                .as_ref()
                .map_or(String::new(), |p| p.expose().to_owned()),
        )
    });
    let url = &options.broker.url;
    let transport = options.tls.as_ref().map(|config| {
        rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(Arc::clone(config)))
    });
    match options.broker.version {
        MqttVersion::V311 => {
            let mut mqtt =
                rumqttc::MqttOptions::new(options.client_id.clone(), url.host.clone(), url.port);
            mqtt.set_keep_alive(KEEP_ALIVE)
                .set_clean_session(false)
                .set_manual_acks(true)
                .set_max_packet_size(MQTT311_MAX_PACKET, MQTT311_MAX_PACKET);
            if let Some(transport) = transport {
                mqtt.set_transport(transport);
            }
            if let Some((user, password)) = password {
                mqtt.set_credentials(user, password);
            }
            let (client, eventloop) = rumqttc::AsyncClient::new(mqtt, QUEUE);
            (Client::V311(client), EventLoop::V311(eventloop))
        }
        MqttVersion::V5 => {
            let mut mqtt = rumqttc::v5::MqttOptions::new(
                options.client_id.clone(),
                url.host.clone(),
                url.port,
            );
            let max_packet = options.max_payload.saturating_add(PACKET_HEADROOM);
            mqtt.set_keep_alive(KEEP_ALIVE)
                .set_clean_start(false)
                .set_session_expiry_interval(Some(
                    u32::try_from(options.session_expiry.as_secs()).unwrap_or(u32::MAX),
                ))
                .set_manual_acks(true)
                .set_receive_maximum(Some(RECEIVE_MAXIMUM))
                // rumqttc allocates a slot per allowed outgoing publish up front.
                .set_outgoing_inflight_upper_limit(100)
                // Announced in CONNECT: the broker drops what the controller would not take.
                .set_max_packet_size(Some(u32::try_from(max_packet).unwrap_or(u32::MAX)));
            if let Some(transport) = transport {
                mqtt.set_transport(transport);
            }
            if let Some((user, password)) = password {
                mqtt.set_credentials(user, password);
            }
            let (client, eventloop) = rumqttc::v5::AsyncClient::new(mqtt, QUEUE);
            (Client::V5(client), EventLoop::V5(eventloop))
        }
    }
}

/// Why a poll of the event loop ended.
enum Polled {
    ConnAck,
    SubAck,
    Publish(Received),
    Other,
    /// The client asked to disconnect: stop.
    Done,
    Failed(String),
}

async fn poll_once(eventloop: &mut EventLoop) -> Polled {
    match eventloop {
        EventLoop::V311(el) => match el.poll().await {
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => Polled::ConnAck,
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => Polled::SubAck,
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                Polled::Publish(Received::V311(p))
            }
            Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Polled::Done,
            Ok(_) => Polled::Other,
            Err(rumqttc::ConnectionError::RequestsDone) => Polled::Done,
            Err(e) => Polled::Failed(roomready_connect::tls::explain(&e)),
        },
        EventLoop::V5(el) => {
            use rumqttc::v5::mqttbytes::v5::Packet;
            match el.poll().await {
                Ok(rumqttc::v5::Event::Incoming(Packet::ConnAck(_))) => Polled::ConnAck,
                Ok(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) => Polled::SubAck,
                Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => {
                    Polled::Publish(Received::V5(p))
                }
                Ok(rumqttc::v5::Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Polled::Done,
                Ok(_) => Polled::Other,
                Err(rumqttc::v5::ConnectionError::RequestsDone) => Polled::Done,
                Err(e) => Polled::Failed(roomready_connect::tls::explain_v5(&e)),
            }
        }
    }
}

/// Drives the connection: subscribes on every CONNACK, hands every publish to the committer,
/// waits a backoff after a failure.
async fn poll(
    mut eventloop: EventLoop,
    client: Client,
    filters: Vec<String>,
    tx: mpsc::Sender<Received>,
    stats: Arc<Stats>,
    seed: u64,
) {
    let mut backoff =
        Backoff::with_bounds(Duration::from_millis(500), Duration::from_secs(60), seed);
    let mut subacks = 0;
    loop {
        match poll_once(&mut eventloop).await {
            Polled::SubAck => {
                subacks += 1;
                if subacks == filters.len() {
                    stats.subscribed.send_replace(true);
                }
            }
            Polled::ConnAck => {
                subacks = 0;
                backoff.reset();
                stats.connected.store(true, Ordering::Relaxed);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!("connected to the broker; subscribing to the fleet");
                for filter in &filters {
                    if let Err(e) = client.subscribe(filter) {
                        tracing::error!(filter, "cannot subscribe: {e}");
                    }
                }
            }
            Polled::Publish(publish) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                if tx.send(publish).await.is_err() {
                    return;
                }
            }
            Polled::Other => {}
            Polled::Done => return,
            Polled::Failed(error) => {
                stats.subscribed.send_replace(false);
                let was_connected = stats.connected.swap(false, Ordering::Relaxed);
                let delay = backoff.next_delay();
                if was_connected {
                    tracing::warn!("lost the broker: {error}; reconnecting in {delay:?}");
                } else {
                    tracing::warn!("cannot connect to the broker: {error}; retrying in {delay:?}");
                }
                stats.error(error);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Sends the PUBACKs of committed messages, in order, until the committer ends.
///
/// A task of its own because an acknowledgement waits for room in the client's request queue,
/// which only the event loop drains, and the event loop is only polled while the poller has
/// room to hand publishes to the committer. A committer that waited there itself deadlocked
/// once both queues were full (seen at 10,000 devices with Mosquitto, `tests/bench/controller.sh`;
/// `controller_kill.rs` holds it). Each waiting acknowledgement keeps only its packet id.
async fn ack_loop(mut committed: mpsc::UnboundedReceiver<Received>, client: Client) {
    while let Some(received) = committed.recv().await {
        if let Err(e) = client.ack(&received).await {
            // The connection is gone: the broker sends it again, the store drops it then.
            tracing::debug!("cannot acknowledge: {e}");
        }
    }
}

/// Takes publishes in batches: decode, commit, then hand them to [`ack_loop`].
async fn commit_loop(
    mut rx: mpsc::Receiver<Received>,
    client: Client,
    prefix: TopicPrefix,
    max_payload: usize,
    store: Arc<dyn Store>,
    live: broadcast::Sender<Arc<Committed>>,
    stats: Arc<Stats>,
) {
    let mut backoff = Backoff::with_bounds(Duration::from_millis(100), Duration::from_secs(10), 7);
    let (acks, committed_rx) = mpsc::unbounded_channel();
    tokio::spawn(ack_loop(committed_rx, client));
    // Until the poller ends (disconnect): what is not acknowledged is delivered again.
    while let Some(first) = rx.recv().await {
        let mut received = vec![first];
        while received.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(more) => received.push(more),
                Err(_) => break,
            }
        }
        let now = clock::now();
        let batch = Arc::new(Batch {
            items: received
                .iter()
                .map(|r| decode::decode(&prefix, &r.topic(), r.payload(), max_payload, now))
                .collect(),
        });
        let committed = loop {
            let store = Arc::clone(&store);
            let shared = Arc::clone(&batch);
            match tokio::task::spawn_blocking(move || store.commit(&shared)).await {
                Ok(Ok(committed)) => break committed,
                Ok(Err(e)) => {
                    stats.commit_failures.fetch_add(1, Ordering::Relaxed);
                    let delay = backoff.next_delay();
                    tracing::error!(
                        "cannot commit {} messages: {e}; nothing is acknowledged, retrying in {delay:?}",
                        batch.items.len()
                    );
                    stats.error(format!("store: {e}"));
                    tokio::time::sleep(delay).await;
                }
                Err(e) => {
                    tracing::error!("the commit task failed: {e}; stopping ingest");
                    return;
                }
            }
        };
        backoff.reset();
        for r in received {
            // The ack task ends only after this sender is dropped.
            let _ = acks.send(r.ack_only());
        }
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.taken.fetch_add(committed.taken, Ordering::Relaxed);
        stats
            .duplicates
            .fetch_add(committed.duplicates, Ordering::Relaxed);
        stats
            .undecodable
            .fetch_add(committed.undecodable, Ordering::Relaxed);
        stats.gaps.fetch_add(committed.gaps, Ordering::Relaxed);
        // No page listening is fine.
        let _ = live.send(Arc::new(committed));
    }
}
