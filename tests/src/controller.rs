//! A test controller: one MQTT client (rumqttc, as a real dashboard might use) that subscribes to
//! one device's `state`, `events`, `cmd/res` and `status`, sends commands, and lets a test await what it
//! has seen through a `watch` channel instead of sleeping.

use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_protocol::{
    CommandResponse, DeviceId, Event, Message, State, Status, TopicPrefix, Topics,
};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything the controller has received, in arrival order.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub states: Vec<State>,
    pub events: Vec<Event>,
    pub responses: Vec<CommandResponse>,
    /// Presence messages (`online`, `offline`, last wills): their `seq` is the highest the agent
    /// had issued when it made them, not a number of their own, so [`Seen::seqs`] leaves them out.
    pub statuses: Vec<Status>,
    /// Payloads on the device's topics that did not decode.
    pub undecodable: usize,
    /// SUBACKs received (one per topic, four per connection: the subscriptions are made on every
    /// connect).
    pub subscriptions: usize,
    pub connections: usize,
    /// PUBACKs received: the broker took a command the controller sent.
    pub pubacks: usize,
}

impl Seen {
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
    client: AsyncClient,
    topics: Topics,
    seen: watch::Receiver<Seen>,
    task: JoinHandle<()>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
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
        let topics = Topics::new(&TopicPrefix::default(), device);
        let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
        options.set_keep_alive(Duration::from_secs(5));
        options.set_clean_session(!persistent);
        options.set_max_packet_size(32 * 1024 * 1024, 32 * 1024 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let (tx, seen) = watch::channel(Seen::default());
        let sub_client = client.clone();
        let sub_topics = topics.clone();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        tx.send_modify(|s| s.connections += 1);
                        for topic in [
                            sub_topics.state(),
                            sub_topics.events(),
                            sub_topics.cmd_res(),
                            sub_topics.status(),
                        ] {
                            let _ = sub_client.try_subscribe(topic, QoS::AtLeastOnce);
                        }
                    }
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        tx.send_modify(|s| s.subscriptions += 1);
                    }
                    Ok(MqttEvent::Incoming(Packet::PubAck(_))) => {
                        tx.send_modify(|s| s.pubacks += 1);
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let payload = &p.payload[..];
                        tx.send_modify(|s| {
                            let ok = if p.topic == sub_topics.state() {
                                State::decode(payload).map(|m| s.states.push(m)).is_ok()
                            } else if p.topic == sub_topics.events() {
                                Event::decode(payload).map(|m| s.events.push(m)).is_ok()
                            } else if p.topic == sub_topics.cmd_res() {
                                CommandResponse::decode(payload)
                                    .map(|m| s.responses.push(m))
                                    .is_ok()
                            } else if p.topic == sub_topics.status() {
                                Status::decode(payload).map(|m| s.statuses.push(m)).is_ok()
                            } else {
                                true
                            };
                            if !ok {
                                s.undecodable += 1;
                            }
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Controller {
            client,
            topics,
            seen,
            task,
        }
    }

    /// Sends a command payload (QoS 1) to the device's `cmd` topic.
    pub async fn command(&self, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(self.topics.cmd(), QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("the controller's request queue is open");
    }

    /// Publishes a command payload (QoS 1) retained on the device's `cmd` topic (an empty payload
    /// clears it) and waits until the broker has it.
    pub async fn retain_command(&mut self, payload: impl Into<Vec<u8>>, timeout: Duration) {
        let before = self.seen().pubacks;
        self.client
            .publish(self.topics.cmd(), QoS::AtLeastOnce, true, payload.into())
            .await
            .expect("the controller's request queue is open");
        self.wait_until(timeout, |s| s.pubacks > before)
            .await
            .unwrap_or_else(|s| panic!("the broker did not take the retained command: {s:?}"));
    }

    /// What has been seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.borrow().clone()
    }

    /// Waits until `done` holds for what has been seen; `Err` with the last view on timeout.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Seen) -> bool,
    ) -> Result<Seen, Box<Seen>> {
        let result = {
            let wait = self.seen.wait_for(|s| done(s));
            match tokio::time::timeout(timeout, wait).await {
                Ok(Ok(seen)) => Some(seen.clone()),
                _ => None,
            }
        };
        result.ok_or_else(|| Box::new(self.seen()))
    }
}
