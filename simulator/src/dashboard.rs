//! A dashboard-like subscriber: what a controller or dashboard sees of the fleet.
//!
//! It subscribes to `{prefix}/v1/+/state`, `+/status`, `+/events` and `+/cmd/res` (again after
//! every reconnect), decodes every payload with the protocol crate and keeps the latest state and
//! status per device, the events and command responses in arrival order, and every `seq` seen.
//! Waiters are woken on every change through a `watch` channel, so tests wait for an event
//! instead of sleeping. It can also send commands ([`Dashboard::command`]).
//!
//! Its session is clean by default; [`DashboardOptions::persistent`] keeps it on the broker (a
//! fixed client id, `clean_session = false`), so what devices publish while the dashboard is
//! reconnecting (after a broker restart) is queued for it instead of lost. With
//! [`DashboardOptions::history`] it also keeps every state and status, not only the latest: the
//! tests' per-device observer (`roomready_tests::controller`) is this dashboard with history, so
//! there is one MQTT observer.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_agent::link::MAX_PACKET;
use roomready_protocol::{
    Channel, CommandResponse, DeviceId, Event, Message, State, Status, TopicPrefix, Topics,
};
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Decode errors kept in the view (the most recent ones).
const MAX_DECODE_ERRORS: usize = 16;

/// The largest packet the dashboard sends.
const MAX_OUTGOING: usize = 32 * 1024 * 1024;

/// How long the dashboard waits before connecting again after an error.
const RETRY: Duration = Duration::from_millis(100);

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
    /// Messages received on the devices' topics (duplicates and undecodable ones included).
    pub messages: u64,
    /// CONNACKs received: connections made (the first, then one per reconnect).
    pub connections: u64,
    /// PUBACKs received: commands the broker took from the dashboard.
    pub pubacks: u64,
}

/// What the dashboard knows of one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceView {
    pub state: Option<State>,
    pub status: Option<Status>,
    /// Every event received, in arrival order (duplicates included).
    pub events: Vec<Event>,
    /// Every command response received, in arrival order (duplicates included).
    pub responses: Vec<CommandResponse>,
    /// Every `seq` of a state, event or response received.
    pub seqs: std::collections::BTreeSet<u64>,
    /// When the first state arrived.
    pub first_state_at: Option<std::time::Instant>,
    /// With [`DashboardOptions::history`]: every state and every status, in arrival order.
    pub states: Vec<State>,
    pub statuses: Vec<Status>,
    /// With [`DashboardOptions::history`]: the `seq` of every state the broker delivered from its
    /// retained store (at subscription). When the agent's publish crosses the subscription, the
    /// same state arrives twice, live and retained; MQTT allows that, it is not a duplicate send.
    pub retained: Vec<u64>,
    /// Payloads on this device's topics that did not decode.
    pub undecodable: usize,
}

impl DeviceView {
    /// The `seq`s missing between 1 and the highest seen: messages not (yet) delivered.
    pub fn seq_gaps(&self) -> Vec<u64> {
        let Some(&last) = self.seqs.last() else {
            return Vec::new();
        };
        let mut missing = Vec::new();
        let mut expected = 1;
        for &seq in &self.seqs {
            missing.extend(expected..seq);
            expected = seq + 1;
        }
        debug_assert!(expected == last + 1);
        missing
    }
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

/// How a [`Dashboard`] connects and what it keeps.
#[derive(Debug, Clone, Default)]
pub struct DashboardOptions {
    /// Keep the session on the broker (`clean_session = false`, a fixed client id).
    pub persistent: bool,
    /// The MQTT client id; default: `roomready-dashboard-{pid}-{n}`, unique in this process.
    pub client_id: Option<String>,
    /// Keep every state and status per device, not only the latest (memory grows with every
    /// report: for tests, not for fleets).
    pub history: bool,
}

/// A connected (or connecting) dashboard subscriber.
pub struct Dashboard {
    view: watch::Receiver<FleetView>,
    task: JoinHandle<()>,
    client: AsyncClient,
    prefix: TopicPrefix,
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
    /// Starts subscribing to everything every device under `prefix` publishes.
    pub fn connect(broker: &BrokerUrl, prefix: &TopicPrefix) -> Dashboard {
        Self::connect_with(broker, prefix, &DashboardOptions::default())
    }

    /// [`Dashboard::connect`] with `options`.
    pub fn connect_with(
        broker: &BrokerUrl,
        prefix: &TopicPrefix,
        options: &DashboardOptions,
    ) -> Dashboard {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let client_id = options.client_id.clone().unwrap_or_else(|| {
            format!(
                "roomready-dashboard-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            )
        });
        let mut mqtt = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        mqtt.set_keep_alive(Duration::from_secs(30));
        mqtt.set_clean_session(!options.persistent);
        // What devices send is bounded as the agent bounds it; what the dashboard sends (commands,
        // also oversized ones a test sends on purpose) is the broker's to refuse.
        mqtt.set_max_packet_size(MAX_PACKET, MAX_OUTGOING);
        // Room for a burst of commands to a whole fleet.
        let (client, eventloop) = AsyncClient::new(mqtt, 1024);
        let (tx, view) = watch::channel(FleetView::default());
        let task = tokio::spawn(drive(
            eventloop,
            client.clone(),
            prefix.clone(),
            options.history,
            tx,
        ));
        Dashboard {
            view,
            task,
            client,
            prefix: prefix.clone(),
        }
    }

    /// Sends `payload` (a command's JSON) to `device`'s `cmd` topic, QoS 1. Fails only when
    /// the dashboard's task has ended.
    pub async fn command(&self, device: &DeviceId, payload: Vec<u8>) -> Result<(), String> {
        self.publish_command(device, payload, false).await
    }

    /// [`Dashboard::command`], retained on the broker when `retain` (an empty payload clears a
    /// retained command); [`FleetView::pubacks`] counts the broker's acknowledgements.
    pub async fn publish_command(
        &self,
        device: &DeviceId,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<(), String> {
        let topics = Topics::new(&self.prefix, device);
        self.client
            .publish(topics.cmd(), QoS::AtLeastOnce, retain, payload)
            .await
            .map_err(|e| format!("cannot send a command to {device}: {e}"))
    }

    /// Waits until the dashboard is connected and subscribed, at most `timeout`.
    pub async fn wait_subscribed(&mut self, timeout: Duration) -> Result<FleetView, TimedOut> {
        self.wait_until(timeout, |v| v.subscribed).await
    }

    /// A receiver of the view, woken on every change (for a caller that watches while it
    /// also sends commands).
    pub fn watch(&self) -> watch::Receiver<FleetView> {
        self.view.clone()
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
    history: bool,
    view: watch::Sender<FleetView>,
) {
    let filters = [
        prefix.filter(Channel::State),
        prefix.filter(Channel::Status),
        prefix.filter(Channel::Events),
        prefix.filter(Channel::CmdRes),
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
                    v.connections += 1;
                    v.last_error = None;
                });
            }
            Ok(rumqttc::Event::Incoming(Packet::PubAck(_))) => {
                view.send_modify(|v| v.pubacks += 1);
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => {
                let Some((device, channel)) = prefix.parse(&publish.topic) else {
                    continue;
                };
                view.send_modify(|v| {
                    apply(
                        v,
                        device,
                        channel,
                        &publish.payload,
                        publish.retain,
                        history,
                    )
                });
            }
            Ok(_) => {}
            Err(e) => {
                view.send_modify(|v| {
                    v.connected = false;
                    v.subscribed = false;
                    v.last_error = Some(e.to_string());
                });
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// Records one payload; an empty retained payload clears the device's entry for that channel.
fn apply(
    view: &mut FleetView,
    device: DeviceId,
    channel: Channel,
    payload: &[u8],
    retained: bool,
    history: bool,
) {
    view.messages += 1;
    let id = device.clone();
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
                let d = view.devices.entry(device).or_default();
                d.seqs.insert(state.seq);
                d.first_state_at.get_or_insert_with(std::time::Instant::now);
                if history {
                    if retained {
                        d.retained.push(state.seq);
                    }
                    d.states.push(state.clone());
                }
                d.state = Some(state);
                None
            }
            Err(e) => Some(format!("{device} state: {e}")),
        },
        Channel::Status => match Status::decode(payload) {
            Ok(status) => {
                let d = view.devices.entry(device).or_default();
                if history {
                    d.statuses.push(status.clone());
                }
                d.status = Some(status);
                None
            }
            Err(e) => Some(format!("{device} status: {e}")),
        },
        Channel::Events => match Event::decode(payload) {
            Ok(event) => {
                let d = view.devices.entry(device).or_default();
                d.seqs.insert(event.seq);
                d.events.push(event);
                None
            }
            Err(e) => Some(format!("{device} event: {e}")),
        },
        Channel::CmdRes if cleared => None,
        Channel::CmdRes => match CommandResponse::decode(payload) {
            Ok(response) => {
                let d = view.devices.entry(device).or_default();
                d.seqs.insert(response.seq);
                d.responses.push(response);
                None
            }
            Err(e) => Some(format!("{device} command response: {e}")),
        },
        Channel::Cmd => None,
    };
    if let Some(error) = error {
        view.devices.entry(id).or_default().undecodable += 1;
        if view.decode_errors.len() == MAX_DECODE_ERRORS {
            view.decode_errors.remove(0);
        }
        view.decode_errors.push(error);
    }
}
