//! A test controller: the simulator's dashboard subscriber (the one MQTT observer) with its
//! history on, seen through one device: every state, event, response and status that device
//! published, in arrival order. It sends commands, and lets a test await what it has seen instead
//! of sleeping.

use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_protocol::{CommandResponse, DeviceId, Event, State, Status, TopicPrefix};
use roomready_simulator::dashboard::{Dashboard, DashboardOptions, FleetView};

/// Everything the controller has received from its device, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub states: Vec<State>,
    pub events: Vec<Event>,
    pub responses: Vec<CommandResponse>,
    /// Presence messages (`online`, `offline`, last wills): their `seq` is the highest the agent
    /// had issued when it made them, not a number of their own, so [`Seen::seqs`] leaves them out.
    pub statuses: Vec<Status>,
    /// The `seq` of each state delivered from the broker's retained store (see
    /// `DeviceView::retained`): at most a second copy of one delivered live.
    pub retained: Vec<u64>,
    /// Payloads on the device's topics that did not decode.
    pub undecodable: usize,
    /// Whether the broker has acknowledged the subscriptions of the current connection.
    pub subscribed: bool,
    /// Connections made (one per reconnect after the first).
    pub connections: u64,
    /// PUBACKs received: the broker took a command the controller sent.
    pub pubacks: u64,
}

impl Seen {
    /// What `view` holds of `device`.
    fn of(view: &FleetView, device: &DeviceId) -> Seen {
        let mut seen = Seen {
            subscribed: view.subscribed,
            connections: view.connections,
            pubacks: view.pubacks,
            ..Seen::default()
        };
        if let Some(d) = view.devices.get(device) {
            seen.states.clone_from(&d.states);
            seen.events.clone_from(&d.events);
            seen.responses.clone_from(&d.responses);
            seen.statuses.clone_from(&d.statuses);
            seen.retained.clone_from(&d.retained);
            seen.undecodable = d.undecodable;
        }
        seen
    }

    /// Every `seq` seen in states, events and responses, with repeats.
    pub fn seqs(&self) -> Vec<u64> {
        let mut seqs: Vec<u64> = self
            .states
            .iter()
            .map(|s| s.seq)
            .chain(self.events.iter().map(|e| e.seq))
            .chain(self.responses.iter().map(|r| r.seq))
            .collect();
        seqs.sort_unstable();
        seqs
    }

    /// [`Seen::seqs`] as the agent sent them: one copy of each retained delivery taken out, so
    /// a repeat left in is a message delivered twice live (a resend, or a second run).
    pub fn sent_seqs(&self) -> Vec<u64> {
        let mut seqs = self.seqs();
        for retained in &self.retained {
            if let Some(at) = seqs.iter().position(|s| s == retained) {
                seqs.remove(at);
            }
        }
        seqs
    }

    /// How many different states arrived (by `seq`): a state delivered both live and retained
    /// counts once.
    pub fn checks(&self) -> usize {
        let mut seqs: Vec<u64> = self.states.iter().map(|s| s.seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.len()
    }

    /// The highest `n` such that every seq in 1..=n was seen.
    pub fn contiguous(&self) -> u64 {
        let mut seqs = self.seqs();
        seqs.dedup();
        seqs.iter()
            .enumerate()
            .take_while(|(i, seq)| **seq == *i as u64 + 1)
            .count() as u64
    }

    /// How many `online` statuses arrived (one per connection of the agent).
    pub fn onlines(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| s.status == roomready_protocol::Presence::Online)
            .count()
    }

    /// Seqs that were used for different messages (a repeat must be the same message: same
    /// type and time stamp), e.g. by an agent that forgot its numbering.
    pub fn reused_seqs(&self) -> Vec<u64> {
        let mut tagged: Vec<(u64, &'static str, String)> = self
            .states
            .iter()
            .map(|m| (m.seq, "state", m.ts.to_string()))
            .chain(
                self.events
                    .iter()
                    .map(|m| (m.seq, "event", m.ts.to_string())),
            )
            .chain(
                self.responses
                    .iter()
                    .map(|m| (m.seq, "response", m.ts.to_string())),
            )
            .collect();
        tagged.sort();
        tagged.dedup();
        let mut reused: Vec<u64> = tagged
            .windows(2)
            .filter(|w| w[0].0 == w[1].0)
            .map(|w| w[0].0)
            .collect();
        reused.dedup();
        reused
    }

    /// The responses to request `id`.
    pub fn answers(&self, id: &str) -> Vec<&CommandResponse> {
        self.responses.iter().filter(|r| r.id == id).collect()
    }

    /// Whether request `id` has its final answer (anything but `accepted`).
    pub fn answered(&self, id: &str) -> bool {
        self.responses
            .iter()
            .any(|r| r.id == id && r.status != roomready_protocol::ResponseStatus::Accepted)
    }
}

/// A connected test controller for one device.
pub struct Controller {
    dashboard: Dashboard,
    device: DeviceId,
}

impl Controller {
    /// Connects as `client_id`; with `persistent` the session (and QoS 1 messages queued for it
    /// while it is away) survives disconnects, as far as the broker keeps sessions.
    pub fn connect(
        broker: &BrokerUrl,
        device: &DeviceId,
        client_id: &str,
        persistent: bool,
    ) -> Self {
        let dashboard = Dashboard::connect_with(
            broker,
            &TopicPrefix::default(),
            &DashboardOptions {
                persistent,
                client_id: Some(client_id.to_owned()),
                history: true,
            },
        );
        Controller {
            dashboard,
            device: device.clone(),
        }
    }

    /// Sends a command payload (QoS 1) to the device's `cmd` topic.
    pub async fn command(&self, payload: impl Into<Vec<u8>>) {
        self.dashboard
            .command(&self.device, payload.into())
            .await
            .expect("the controller's request queue is open");
    }

    /// Publishes a command payload (QoS 1) retained on the device's `cmd` topic (an empty payload
    /// clears it) and waits until the broker has it.
    pub async fn retain_command(&mut self, payload: impl Into<Vec<u8>>, timeout: Duration) {
        let before = self.seen().pubacks;
        self.dashboard
            .publish_command(&self.device, payload.into(), true)
            .await
            .expect("the controller's request queue is open");
        self.wait_until(timeout, |s| s.pubacks > before)
            .await
            .unwrap_or_else(|s| panic!("the broker did not take the retained command: {s:?}"));
    }

    /// What has been seen so far.
    pub fn seen(&self) -> Seen {
        Seen::of(&self.dashboard.snapshot(), &self.device)
    }

    /// Waits until `done` holds for what has been seen; `Err` with the last view on timeout.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Seen) -> bool,
    ) -> Result<Seen, Box<Seen>> {
        let device = self.device.clone();
        match self
            .dashboard
            .wait_until(timeout, |view| done(&Seen::of(view, &device)))
            .await
        {
            Ok(view) => Ok(Seen::of(&view, &device)),
            Err(timed_out) => Err(Box::new(Seen::of(&timed_out.0, &device))),
        }
    }
}
