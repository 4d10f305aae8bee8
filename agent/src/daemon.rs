//! The daemon: assess on a timer, report over the MQTT link, keep presence current.
//!
//! One loop owns all state (the `seq` counter, the latest encoded state, the last verdict) and
//! reacts to three things: the report timer, link events and shutdown. On every (re)connect it
//! publishes the retained `online` status and republishes the latest state, because the broker
//! may have lost it and rumqttc drops unacknowledged publishes on reconnect; events made while
//! disconnected wait in a small in-memory queue for that moment. On shutdown it
//! publishes a retained `offline` and disconnects cleanly; if it dies instead, the broker
//! publishes the last will, also `offline`.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;

use roomready_protocol::{
    DeviceId, Event, EventBody, Message, Presence, Status, StatusReason, TopicPrefix, Topics,
    Verdict,
};
use tokio::time::MissedTickBehavior;

use crate::clock::Clock;
use crate::config::{BrokerUrl, Config, Credentials};
use crate::facts::FactsSource;
use crate::link::{Link, LinkEvent, LinkOptions};
use crate::probe::{ProbeSettings, Probes, probe_all};
use crate::report;

/// How long a clean shutdown waits for the `offline` status and DISCONNECT to be flushed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Events made while disconnected that are kept in memory for the next connect (the oldest
/// are dropped beyond this). Well below the link's request queue, so a flush always fits.
const MAX_PENDING_EVENTS: usize = 32;

/// What the daemon needs besides its facts source and clock.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub device_id: DeviceId,
    pub broker: BrokerUrl,
    pub topic_prefix: TopicPrefix,
    pub report_interval: Duration,
    /// MQTT keep-alive; a silent broker is detected after 1.5 times this.
    pub keep_alive: Duration,
    /// Endpoints probed on every check, if any.
    pub probes: Option<Probes>,
    /// TLS to the broker (`mqtts://`), built by [`crate::link::tls::client_config`].
    pub broker_tls: Option<Arc<rustls::ClientConfig>>,
    /// MQTT user name and password.
    pub credentials: Option<Credentials>,
}

impl AgentSettings {
    pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);

    /// The settings of `config`; `roots` are the trust anchors for probed endpoints, `broker_tls`
    /// the TLS configuration for an `mqtts://` broker.
    pub fn from_config(
        config: &Config,
        roots: Arc<RootCertStore>,
        broker_tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Self {
        let probes = (!config.endpoints.is_empty()).then(|| Probes {
            endpoints: config.endpoints.clone(),
            settings: ProbeSettings {
                roots,
                timeout: config.probe_timeout,
            },
        });
        AgentSettings {
            probes,
            device_id: config.device_id.clone(),
            broker: config.broker.clone(),
            topic_prefix: config.topic_prefix.clone(),
            report_interval: config.report_interval,
            keep_alive: Self::DEFAULT_KEEP_ALIVE,
            broker_tls,
            credentials: config.credentials.clone(),
        }
    }
}

/// Why the daemon stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the MQTT link stopped unexpectedly")]
    LinkStopped,
}

/// One device's agent.
pub struct Agent<F, C> {
    settings: AgentSettings,
    facts: F,
    clock: C,
}

/// The daemon's mutable state while it runs.
struct Running<'a, C> {
    device: &'a DeviceId,
    topics: Topics,
    clock: &'a C,
    link: Link,
    connected: bool,
    /// The last `seq` issued; the next message takes `seq + 1`.
    seq: u64,
    latest_state: Option<Vec<u8>>,
    /// Encoded events not yet handed to the link, oldest first.
    pending_events: VecDeque<Vec<u8>>,
    last_verdict: Option<Verdict>,
}

impl<F: FactsSource, C: Clock> Agent<F, C> {
    pub fn new(settings: AgentSettings, facts: F, clock: C) -> Self {
        Agent {
            settings,
            facts,
            clock,
        }
    }

    /// Runs until `shutdown` completes, then publishes `offline` and disconnects.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
        let settings = &self.settings;
        let topics = Topics::new(&settings.topic_prefix, &settings.device_id);
        let will = status(&settings.device_id, 0, &self.clock, Presence::Offline);
        let options = LinkOptions {
            broker: settings.broker.clone(),
            client_id: format!("roomready-{}", settings.device_id),
            keep_alive: settings.keep_alive,
            will_topic: topics.status().to_owned(),
            tls: settings.broker_tls.clone(),
            credentials: settings.credentials.clone(),
        };
        let link = Link::start(
            options,
            will,
            backoff_seed(&settings.device_id, &self.clock),
        );
        let mut run = Running {
            device: &settings.device_id,
            topics,
            clock: &self.clock,
            link,
            connected: false,
            seq: 0,
            latest_state: None,
            pending_events: VecDeque::new(),
            last_verdict: None,
        };
        let mut ticker = tokio::time::interval(settings.report_interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        tracing::info!(device = %settings.device_id, broker = %settings.broker, "agent started");
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                event = run.link.next_event() => match event {
                    Some(LinkEvent::Connected) => run.on_connected(),
                    Some(LinkEvent::Disconnected { error }) => run.on_disconnected(&error),
                    None => return Err(AgentError::LinkStopped),
                },
                _ = ticker.tick() => {
                    let facts = self.facts.collect().await;
                    let endpoints = match &settings.probes {
                        Some(p) => probe_all(&p.endpoints, &p.settings, self.clock.now()).await,
                        None => Vec::new(),
                    };
                    run.report(facts, endpoints);
                }
            }
        }
        run.shut_down().await;
        Ok(())
    }
}

impl<C: Clock> Running<'_, C> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        if let Err(error) = self.link.publish(topic, payload, retain) {
            tracing::warn!(%error, topic, "publish not queued");
        }
    }

    fn on_connected(&mut self) {
        tracing::info!(device = %self.device, "connected to the broker");
        self.connected = true;
        let online = status(self.device, self.seq, self.clock, Presence::Online);
        self.publish(self.topics.status(), online, true);
        if let Some(state) = &self.latest_state {
            self.publish(self.topics.state(), state.clone(), true);
        }
        while let Some(event) = self.pending_events.pop_front() {
            self.publish(self.topics.events(), event, false);
        }
    }

    fn on_disconnected(&mut self, error: &str) {
        if self.connected {
            tracing::warn!(device = %self.device, error, "lost the broker connection");
        } else {
            tracing::debug!(device = %self.device, error, "broker connection attempt failed");
        }
        self.connected = false;
        // The will of the next connection reports what was issued up to now.
        let will = status(self.device, self.seq, self.clock, Presence::Offline);
        self.link.set_will(will);
    }

    /// Assesses, publishes the retained state and the events of this check.
    fn report(
        &mut self,
        facts: Result<crate::facts::Facts, crate::facts::FactsError>,
        endpoints: Vec<roomready_protocol::EndpointReport>,
    ) {
        if let Err(error) = &facts {
            tracing::warn!(%error, "facts unavailable");
        }
        let (wire_facts, assessment) = report::evaluate(&facts, &endpoints);
        let verdict = assessment.verdict;
        let findings = u32::try_from(assessment.findings.len()).unwrap_or(u32::MAX);
        let seq = self.next_seq();
        let state = report::state(
            self.device.clone(),
            seq,
            self.clock.now(),
            wire_facts,
            assessment,
            endpoints,
        )
        .encode();
        tracing::info!(device = %self.device, %verdict, seq, "check completed");
        self.latest_state = Some(state.clone());

        let mut events = vec![EventBody::CheckCompleted { verdict, findings }];
        if self.last_verdict != Some(verdict) {
            events.push(EventBody::VerdictChanged {
                from: self.last_verdict,
                to: verdict,
            });
            self.last_verdict = Some(verdict);
        }
        for body in events {
            let event = Event {
                device: self.device.clone(),
                seq: self.next_seq(),
                ts: self.clock.now(),
                body,
            }
            .encode();
            if self.pending_events.len() == MAX_PENDING_EVENTS {
                self.pending_events.pop_front();
                tracing::warn!(device = %self.device, "event queue full; dropped the oldest event");
            }
            self.pending_events.push_back(event);
        }
        if self.connected {
            self.publish(self.topics.state(), state, true);
            while let Some(event) = self.pending_events.pop_front() {
                self.publish(self.topics.events(), event, false);
            }
        } else {
            // Held in memory until the next connect: the state as the latest, the events queued.
            // (Nothing survives a restart yet: that is the on-disk journal's job.)
            tracing::debug!(device = %self.device, "not connected; report held for the next connect");
        }
    }

    async fn shut_down(self) {
        if self.connected {
            let offline = Status {
                device: self.device.clone(),
                seq: self.seq,
                ts: self.clock.now(),
                status: Presence::Offline,
                reason: Some(StatusReason::Shutdown),
            }
            .encode();
            self.publish(self.topics.status(), offline, true);
            self.link.close(CLOSE_TIMEOUT).await;
        } else {
            // No connection to close: the broker already published the will, if it had one.
            self.link.abort();
        }
        tracing::info!(device = %self.device, "agent stopped");
    }
}

/// A `status` payload; `offline` ones made here are last wills (`connection_lost`).
fn status(device: &DeviceId, seq: u64, clock: &impl Clock, presence: Presence) -> Vec<u8> {
    Status {
        device: device.clone(),
        seq,
        ts: clock.now(),
        status: presence,
        reason: (presence == Presence::Offline).then_some(StatusReason::ConnectionLost),
    }
    .encode()
}

/// Decorrelates reconnect jitter across devices and restarts.
fn backoff_seed(device: &DeviceId, clock: &impl Clock) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    device.hash(&mut hasher);
    clock.now().unix_ms().hash(&mut hasher);
    hasher.finish()
}
