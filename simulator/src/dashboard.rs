//! A dashboard-like subscriber: what a controller or dashboard sees of the fleet.
//!
//! It subscribes to `{prefix}/v1/+/state`, `+/status` and `+/events` (again after every
//! reconnect, since its session is clean), decodes every payload with the protocol crate and
//! keeps the latest state and status per device, and the events in arrival order. Waiters are woken on every change through a
//! `watch` channel, so tests wait for an event instead of sleeping.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_agent::link::MAX_PACKET;
use roomready_protocol::{Channel, DeviceId, Event, Message, State, Status, TopicPrefix};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Decode errors kept in the view (the most recent ones).
const MAX_DECODE_ERRORS: usize = 16;

/// The latest of everything seen per device.
#[derive(Debug, Clone, Default)]
pub struct FleetView {
    pub devices: BTreeMap<DeviceId, DeviceView>,
    /// Payloads on our topics that did not decode, with the reason (the last 16 kept).
    pub decode_errors: Vec<String>,
    /// Whether the dashboard is connected, and the last connection error if any.
    pub connected: bool,
    /// Whether the broker has acknowledged every subscription of the current connection: from
    /// then on nothing published is missed.
    pub subscribed: bool,
    pub last_error: Option<String>,
}

/// What the dashboard knows of one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceView {
    pub state: Option<State>,
    pub status: Option<Status>,
    /// Every event received, in arrival order (duplicates included).
    pub events: Vec<Event>,
}

impl FleetView {
    /// How many devices have a state for which `accept` holds.
    pub fn states_where(&self, accept: impl Fn(&State) -> bool) -> usize {
        self.devices
            .values()
            .filter(|d| d.state.as_ref().is_some_and(&accept))
            .count()
    }
}

/// A connected (or connecting) dashboard subscriber.
pub struct Dashboard {
    view: watch::Receiver<FleetView>,
    task: JoinHandle<()>,
    _client: AsyncClient,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The wait ended before the condition held; the last view is kept for the report.
#[derive(Debug)]
pub struct TimedOut(pub FleetView);

impl Dashboard {
    /// Starts subscribing to the state and status of every device under `prefix`.
    pub fn connect(broker: &BrokerUrl, prefix: &TopicPrefix) -> Dashboard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let client_id = format!(
            "roomready-dashboard-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
        let (client, eventloop) = AsyncClient::new(options, 64);
        let (tx, view) = watch::channel(FleetView::default());
        let task = tokio::spawn(drive(eventloop, client.clone(), prefix.clone(), tx));
        Dashboard {
            view,
            task,
            _client: client,
        }
    }

    /// Waits until the dashboard is connected and subscribed, at most `timeout`.
    pub async fn wait_subscribed(&mut self, timeout: Duration) -> Result<FleetView, TimedOut> {
        self.wait_until(timeout, |v| v.subscribed).await
    }

    /// The current view.
    pub fn snapshot(&self) -> FleetView {
        self.view.borrow().clone()
    }

    /// Waits until `done` holds for the view, at most `timeout`.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        done: impl FnMut(&FleetView) -> bool,
    ) -> Result<FleetView, TimedOut> {
        let waited = tokio::time::timeout(timeout, async {
            self.view.wait_for(done).await.map(|view| view.clone())
        })
        .await;
        match waited {
            Ok(Ok(view)) => Ok(view),
            _ => Err(TimedOut(self.snapshot())),
        }
    }
}

async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    prefix: TopicPrefix,
    view: watch::Sender<FleetView>,
) {
    let filters = [
        prefix.filter(Channel::State),
        prefix.filter(Channel::Status),
        prefix.filter(Channel::Events),
    ];
    loop {
        match eventloop.poll().await {
            Ok(rumqttc::Event::Incoming(Packet::SubAck(_))) => {
                view.send_modify(|v| v.subscribed = true);
            }
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                // One SUBSCRIBE for all filters: no window in which one channel is followed
                // and another not yet.
                let subscriptions = filters
                    .iter()
                    .map(|f| rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(subscriptions) {
                    tracing::warn!(%e, "dashboard cannot subscribe");
                }
                view.send_modify(|v| {
                    v.connected = true;
                    v.last_error = None;
                });
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                let Some((device, channel)) = prefix.parse(&publish.topic) else {
                    continue;
                };
                view.send_modify(|v| apply(v, device, channel, &publish.payload));
            }
            Ok(_) => {}
            Err(e) => {
                view.send_modify(|v| {
                    v.connected = false;
                    v.subscribed = false;
                    v.last_error = Some(e.to_string());
                });
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Records one payload; an empty retained payload clears the device's entry for that channel.
fn apply(view: &mut FleetView, device: DeviceId, channel: Channel, payload: &[u8]) {
    let cleared = payload.is_empty();
    let error = match channel {
        Channel::State if cleared => {
            if let Some(d) = view.devices.get_mut(&device) {
                d.state = None;
            }
            None
        }
        Channel::Status if cleared => {
            if let Some(d) = view.devices.get_mut(&device) {
                d.status = None;
            }
            None
        }
        Channel::State => match State::decode(payload) {
            Ok(state) => {
                view.devices.entry(device).or_default().state = Some(state);
                None
            }
            Err(e) => Some(format!("{device} state: {e}")),
        },
        Channel::Status => match Status::decode(payload) {
            Ok(status) => {
                view.devices.entry(device).or_default().status = Some(status);
                None
            }
            Err(e) => Some(format!("{device} status: {e}")),
        },
        Channel::Events => match Event::decode(payload) {
            Ok(event) => {
                view.devices.entry(device).or_default().events.push(event);
                None
            }
            Err(e) => Some(format!("{device} event: {e}")),
        },
        Channel::Cmd | Channel::CmdRes => None,
    };
    if let Some(error) = error {
        if view.decode_errors.len() == MAX_DECODE_ERRORS {
            view.decode_errors.remove(0);
        }
        view.decode_errors.push(error);
    }
}
