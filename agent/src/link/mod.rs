//! The MQTT link: one broker connection driven by its own task.
//!
//! rumqttc's event loop must be polled continuously and its `poll` future should not be
//! cancelled mid-write, so a dedicated driver task owns it and reports [`LinkEvent`]s; the
//! agent publishes through a cloned client without ever blocking on the network. The driver
//! reconnects with [`Backoff`] (rumqttc itself retries at once), and installs the latest last
//! will before every reconnect.
//!
//! Delivery here is best effort: with a clean session rumqttc drops unacknowledged publishes on
//! reconnect and keeps nothing on disk. The caller republishes what must be current (presence,
//! the retained state) on every [`LinkEvent::Connected`].

mod backoff;
pub mod journal;

use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use backoff::Backoff;

use crate::config::BrokerUrl;

/// How long a connection must last before the backoff starts from 1 s again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Largest MQTT packet sent or accepted (states with many findings stay far below it).
pub const MAX_PACKET: usize = 256 * 1024;
/// How long to wait, after sending DISCONNECT, for the broker to close the connection.
const DISCONNECT_LINGER: Duration = Duration::from_secs(2);
/// Requests that may wait for the driver (publishes, the disconnect).
const REQUEST_CAPACITY: usize = 64;

/// How to connect.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub broker: BrokerUrl,
    pub client_id: String,
    pub keep_alive: Duration,
    /// The topic of the retained last will (the device's `status`).
    pub will_topic: String,
}

/// What happened to the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The broker accepted the connection (again): republish what must be current.
    Connected,
    /// The connection failed or was lost; the driver retries after a backoff.
    Disconnected { error: String },
}

/// Why a publish was not queued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the MQTT request queue is full or closed: {0}")]
    Queue(#[from] rumqttc::ClientError),
}

/// A running connection to the broker.
pub struct Link {
    client: AsyncClient,
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
        let mut mqtt = MqttOptions::new(
            options.client_id.clone(),
            options.broker.host.clone(),
            options.broker.port,
        );
        mqtt.set_keep_alive(options.keep_alive);
        mqtt.set_clean_session(true);
        mqtt.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        mqtt.set_last_will(LastWill::new(
            options.will_topic.clone(),
            will.clone(),
            QoS::AtLeastOnce,
            true,
        ));
        let (client, eventloop) = AsyncClient::new(mqtt, REQUEST_CAPACITY);
        let (events_tx, events) = mpsc::channel(16);
        let (will_tx, will_rx) = watch::channel(will);
        let driver = tokio::spawn(drive(
            eventloop,
            options.will_topic,
            will_rx,
            events_tx,
            Backoff::new(backoff_seed),
        ));
        Link {
            client,
            events,
            will: will_tx,
            driver: Some(driver),
        }
    }

    /// Queues a QoS 1 publish without waiting; fails only when the queue is full or closed.
    pub fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<(), LinkError> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)?;
        Ok(())
    }

    /// The next connection event; `None` once the driver has stopped.
    pub async fn next_event(&mut self) -> Option<LinkEvent> {
        self.events.recv().await
    }

    /// Replaces the last will used from the next (re)connect on.
    pub fn set_will(&self, payload: Vec<u8>) {
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

/// Owns the event loop: polls it, reports connection changes, backs off between attempts.
async fn drive(
    mut eventloop: EventLoop,
    will_topic: String,
    mut will: watch::Receiver<Vec<u8>>,
    events: mpsc::Sender<LinkEvent>,
    mut backoff: Backoff,
) {
    let mut connected_at: Option<Instant> = None;
    loop {
        if eventloop.network.is_none() && will.has_changed().unwrap_or(false) {
            let payload = will.borrow_and_update().clone();
            eventloop.mqtt_options.set_last_will(LastWill::new(
                will_topic.clone(),
                payload,
                QoS::AtLeastOnce,
                true,
            ));
        }
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                connected_at = Some(Instant::now());
                if events.send(LinkEvent::Connected).await.is_err() {
                    return;
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Let the broker close first: closing our end right after DISCONNECT can make a
                // broker see a lost connection (and publish the will) while it still answers.
                let drain = async { while eventloop.poll().await.is_ok() {} };
                let _ = tokio::time::timeout(DISCONNECT_LINGER, drain).await;
                return;
            }
            Ok(_) => {}
            Err(rumqttc::ConnectionError::RequestsDone) => return,
            Err(error) => {
                if connected_at
                    .take()
                    .is_some_and(|at| at.elapsed() >= STABLE_AFTER)
                {
                    backoff.reset();
                }
                let delay = backoff.next_delay();
                tracing::debug!(%error, ?delay, "MQTT connection failed; retrying");
                let event = LinkEvent::Disconnected {
                    error: error.to_string(),
                };
                if events.send(event).await.is_err() {
                    return;
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}
