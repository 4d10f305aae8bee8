//! The MQTT link: one broker connection driven by its own task.
//!
//! rumqttc's event loop must be polled continuously and its `poll` future should not be
//! cancelled mid-write, so a dedicated driver task owns it and reports [`LinkEvent`]s; the
//! agent publishes through a cloned client without ever blocking on the network. The driver
//! reconnects with [`Backoff`] (rumqttc itself retries at once), and installs the latest last
//! will before every reconnect.
//!
//! Delivery: with a clean session rumqttc drops unacknowledged publishes on reconnect (and the
//! requests still queued when the connection failed) and keeps nothing on disk. So the link
//! reports, for every publish made with [`Link::publish_tracked`], the broker's PUBACK as
//! [`LinkEvent::Delivered`] with the caller's tag (a journal id); everything not reported
//! delivered before a [`LinkEvent::Disconnected`] is the caller's to send again after the next
//! [`LinkEvent::Connected`].
//!
//! How a PUBACK is matched to its tag: rumqttc emits `Outgoing::Publish(pkid)` for each publish
//! request in the order the requests were made, and the driver is the only reader of those
//! events. Every publish pushes its tag (or `None` for untracked ones) onto a FIFO under the same
//! lock as the request; each `Outgoing::Publish` pops the next tag and maps its packet id to it;
//! a `PubAck` resolves the packet id. When the connection fails, rumqttc has already moved the
//! queued requests into its pending list, which a new clean session discards: the driver then
//! drains whatever was queued since (under the lock), discards it too and clears the FIFO and the
//! map, so the FIFO never drifts from rumqttc's queue.

mod frame;
pub mod journal;
pub mod outbox;
pub(crate) mod session;
/// TLS to the broker and the reasons a connection failed (crate `roomready-connect`).
pub use roomready_connect::tls;
mod v311;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use roomready_connect::backoff::Backoff;
pub(crate) use session::SESSION_EXPIRY;
pub use session::{MqttVersion, Reply};

use session::{Client, Polled, Session, SessionKind};

use roomready_connect::broker::{BrokerUrl, Credentials};

/// When to try again after a failed or lost connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reconnect {
    /// The first delay; it doubles with each failure (with jitter).
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
    /// A connection that lasted this long starts the delays from `initial` again.
    pub stable_after: Duration,
}

impl Default for Reconnect {
    /// 1 s doubling to 5 min; reset after 30 s connected.
    fn default() -> Self {
        Reconnect {
            initial: Backoff::INITIAL,
            max: Backoff::MAX,
            stable_after: Duration::from_secs(30),
        }
    }
}
/// Largest MQTT packet sent (states with many findings stay far below it).
pub const MAX_PACKET: usize = 256 * 1024;
/// What an incoming packet may hold beside a command's payload: the topic, the packet id and
/// (MQTT 5) properties such as a response topic and correlation data.
pub(crate) const INCOMING_HEADROOM: usize = 16 * 1024;

/// The largest packet the agent takes from the broker when commands may be `command_max_bytes`
/// long: one more byte of payload is answered `payload_too_large` (MQTT 3.1.1, its head kept)
/// or dropped by the broker (MQTT 5, which announces this limit).
pub fn max_incoming_packet(command_max_bytes: usize) -> usize {
    command_max_bytes.saturating_add(INCOMING_HEADROOM)
}

/// Whether `topic` can be published to: 1..=65535 bytes, no wildcard, no NUL.
pub(crate) fn valid_topic_name(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= usize::from(u16::MAX) && !topic.contains(['+', '#', '\0'])
}
/// Publishes awaiting their PUBACK before no more are sent, under either MQTT version
/// (rumqttc's v3.1.1 default). The outbox keeps at most [`outbox::WINDOW`] of them; status and
/// command answers take the rest. rumqttc's MQTT 5 client would otherwise allow 65,535 and
/// allocate a slot for each up front (13 MiB).
const MAX_IN_FLIGHT: u16 = 100;
/// How long to wait, after sending DISCONNECT, for the broker to close the connection.
const DISCONNECT_LINGER: Duration = Duration::from_secs(2);
/// Requests that may wait for the driver (publishes, subscriptions, the disconnect).
pub(crate) const REQUEST_CAPACITY: usize = 64;
/// Link events waiting for the caller; the driver waits (and stops reading the network) when
/// the caller falls this far behind.
const EVENT_CAPACITY: usize = 256;

/// How to connect.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub broker: BrokerUrl,
    pub client_id: String,
    pub keep_alive: Duration,
    /// The topic of the retained last will (the device's `status`).
    pub will_topic: String,
    pub reconnect: Reconnect,
    /// `Some`: MQTT over TLS with this configuration (see [`tls::client_config`]); `None`: plain
    /// TCP.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// User name and password sent in CONNECT.
    pub credentials: Option<Credentials>,
    pub version: MqttVersion,
    /// Largest packet taken from the broker ([`max_incoming_packet`]).
    pub max_incoming_packet: usize,
}

/// What happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The broker accepted the connection (again): subscribe, republish what must be current and
    /// resend everything not yet delivered.
    Connected,
    /// The connection failed or was lost; the driver retries after a backoff. Tracked publishes
    /// not reported [`LinkEvent::Delivered`] by now are lost.
    Disconnected { error: String },
    /// The broker acknowledged (PUBACK) the tracked publish with this tag.
    Delivered(u64),
    /// A message arrived on a subscribed topic; `retained` when the broker sent it from its
    /// retained store (on subscribing) rather than as it was published; `reply` is where an MQTT 5
    /// request wants its answer. `payload` is whole unless the message was larger than the
    /// incoming limit: then it is the first bytes, and `length` the whole length.
    Message {
        topic: String,
        payload: Vec<u8>,
        length: usize,
        retained: bool,
        reply: Option<Reply>,
    },
}

/// Matches PUBACKs to the tags of tracked publishes (see the module documentation).
#[derive(Debug, Default)]
struct Tracker {
    /// One entry per publish request not yet written, oldest first: its tag, if tracked.
    queued: VecDeque<Option<u64>>,
    /// Packet id → tag, for tracked publishes written and not yet acknowledged.
    in_flight: HashMap<u16, u64>,
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A panic while holding this lock leaves plain collections behind, still consistent
    // enough to carry on: at worst a tag is resent.
    tracker
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why a publish was not queued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the MQTT request queue is full or closed: {0}")]
    Queue(String),
    #[error("not possible with this MQTT version: {0}")]
    NotSupported(String),
    #[error("{0:?} is not a topic one can publish to (empty, a wildcard + or #, or NUL)")]
    InvalidTopic(String),
}

/// A running connection to the broker.
pub struct Link {
    client: Client,
    tracker: Arc<Mutex<Tracker>>,
    events: mpsc::Receiver<LinkEvent>,
    will: watch::Sender<Vec<u8>>,
    /// `None` only after [`Link::close`] took it.
    driver: Option<JoinHandle<()>>,
}

impl Drop for Link {
    /// A dropped link drops its connection too: the driver task would otherwise keep it alive.
    fn drop(&mut self) {
        if let Some(driver) = &self.driver {
            driver.abort();
        }
    }
}

impl Link {
    /// Starts connecting; `will` is the payload of the retained last will on `will_topic`.
    pub fn start(options: LinkOptions, will: Vec<u8>, backoff_seed: u64) -> Link {
        let (client, session) = session::connect(&options, will.clone());
        let (events_tx, events) = mpsc::channel(EVENT_CAPACITY);
        let (will_tx, will_rx) = watch::channel(will);
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let backoff = Backoff::with_bounds(
            options.reconnect.initial,
            options.reconnect.max,
            backoff_seed,
        );
        let driver = match session {
            SessionKind::V311(session) => tokio::spawn(drive(
                session,
                Arc::clone(&tracker),
                options.will_topic,
                will_rx,
                events_tx,
                backoff,
                options.reconnect.stable_after,
            )),
            SessionKind::V5(session) => tokio::spawn(drive(
                session,
                Arc::clone(&tracker),
                options.will_topic,
                will_rx,
                events_tx,
                backoff,
                options.reconnect.stable_after,
            )),
        };
        Link {
            client,
            tracker,
            events,
            will: will_tx,
            driver: Some(driver),
        }
    }

    /// Queues a QoS 1 publish without waiting; its delivery is not reported. Fails only when
    /// the queue is full or closed.
    pub fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<(), LinkError> {
        self.queue(None, topic, payload, retain)
    }

    /// Queues a QoS 1 publish whose PUBACK is reported as [`LinkEvent::Delivered`]`(tag)`.
    pub(crate) fn publish_tracked(
        &self,
        tag: u64,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), LinkError> {
        self.queue(Some(tag), topic, payload, retain)
    }

    fn queue(
        &self,
        tag: Option<u64>,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), LinkError> {
        // The tag and the request enter their queues together, or neither does.
        let mut tracker = lock(&self.tracker);
        self.client.try_publish(topic, payload, retain)?;
        tracker.queued.push_back(tag);
        Ok(())
    }

    /// Queues an untracked QoS 1 publish of `payload` to an MQTT 5 request's response topic,
    /// with its correlation data. Fails on MQTT 3.1.1, which has no response topics.
    pub(crate) fn publish_reply(&self, reply: &Reply, payload: Vec<u8>) -> Result<(), LinkError> {
        let mut tracker = lock(&self.tracker);
        self.client.try_publish_reply(reply, payload)?;
        tracker.queued.push_back(None);
        Ok(())
    }

    /// Subscribes to `filter` with QoS 1 (for the current connection: a clean session forgets
    /// subscriptions, so subscribe again after every [`LinkEvent::Connected`]).
    pub fn subscribe(&self, filter: &str) -> Result<(), LinkError> {
        self.client.try_subscribe(filter)
    }

    /// The next connection event; `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<LinkEvent> {
        self.events.recv().await
    }

    /// Replaces the last will used from the next (re)connect on.
    pub(crate) fn set_will(&self, payload: Vec<u8>) {
        self.will.send_replace(payload);
    }

    /// Sends DISCONNECT after everything queued before it, and waits up to `timeout` for the
    /// driver to flush it. A clean disconnect suppresses the last will.
    pub async fn close(mut self, timeout: Duration) {
        let Some(driver) = self.driver.take() else {
            return;
        };
        if self.client.try_disconnect().is_err() {
            driver.abort();
            return;
        }
        let abort = driver.abort_handle();
        if tokio::time::timeout(timeout, driver).await.is_err() {
            tracing::warn!(
                "MQTT disconnect not flushed within {timeout:?}; dropping the connection"
            );
            abort.abort();
        }
    }

    /// Drops the connection without DISCONNECT, as a crash would: the broker publishes the will.
    pub fn abort(self) {
        drop(self);
    }
}

/// Owns the event loop: polls it, reports connection changes and deliveries, backs off between
/// attempts.
async fn drive<S: Session>(
    mut session: S,
    tracker: Arc<Mutex<Tracker>>,
    will_topic: String,
    mut will: watch::Receiver<Vec<u8>>,
    events: mpsc::Sender<LinkEvent>,
    mut backoff: Backoff,
    stable_after: Duration,
) {
    let mut connected_at: Option<Instant> = None;
    loop {
        if will.has_changed().unwrap_or(false) {
            let payload = will.borrow_and_update().clone();
            session.set_will(&will_topic, payload);
        }
        let event = match session.poll().await {
            Polled::ConnAck => {
                connected_at = Some(Instant::now());
                LinkEvent::Connected
            }
            Polled::OutgoingPublish(pkid) => {
                let mut tracker = lock(&tracker);
                if let Some(Some(tag)) = tracker.queued.pop_front() {
                    tracker.in_flight.insert(pkid, tag);
                }
                continue;
            }
            Polled::PubAck(pkid) => match lock(&tracker).in_flight.remove(&pkid) {
                Some(tag) => LinkEvent::Delivered(tag),
                None => continue,
            },
            Polled::Message {
                topic,
                payload,
                length,
                retained,
                reply,
            } => LinkEvent::Message {
                topic,
                payload,
                length,
                retained,
                reply,
            },
            Polled::OutgoingDisconnect => {
                // Let the broker close first: closing our end right after DISCONNECT can make a
                // broker see a lost connection (and publish the will) while it still answers.
                let drain = async {
                    while !matches!(session.poll().await, Polled::Failed(_) | Polled::Done) {}
                };
                let _ = tokio::time::timeout(DISCONNECT_LINGER, drain).await;
                return;
            }
            Polled::Other => continue,
            Polled::Done => return,
            Polled::Failed(error) => {
                forget_queued(&mut session, &tracker);
                if connected_at
                    .take()
                    .is_some_and(|at| at.elapsed() >= stable_after)
                {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::debug!(%error, ?delay, "MQTT connection failed; retrying");
                if events
                    .send(LinkEvent::Disconnected { error })
                    .await
                    .is_err()
                {
                    return;
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// After a failed connection: what rumqttc would resend in a new session it discards (or, with
/// an MQTT 5 session, would resend untracked), and requests queued since the failure would reach
/// the broker untracked; drop both and start the tracking afresh. The caller resends from its
/// journal after the next connect.
fn forget_queued<S: Session>(session: &mut S, tracker: &Mutex<Tracker>) {
    let mut tracker = lock(tracker);
    // Under the lock no publish can slip in between the drain and the clearing.
    session.forget_queued();
    tracker.queued.clear();
    tracker.in_flight.clear();
}
