//! The daemon: assess on a timer or on command, report over the MQTT link, keep presence
//! current, answer commands.
//!
//! One loop owns all state (the `seq` counter, the outbox, the latest state, the last verdict,
//! the command ledger) and reacts to: the report timer, link events (connect, loss, deliveries,
//! commands), finished checks and shutdown. Checks run in their own task, so a slow probe never
//! holds up the link or a command answer. Every state, event and command response goes through
//! the [`Outbox`]: stored first (the journal on a device), sent in order, kept until the broker
//! acknowledged it, and sent again after every reconnect. On every connect the loop subscribes to
//! its `cmd` topic and publishes the retained `online` status; on shutdown it publishes a
//! retained `offline` and disconnects cleanly; if it dies instead, the broker publishes the last
//! will, also `offline`.

mod app_update;
mod fix;
mod self_update;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;

use roomready_protocol::{
    AppUpdateStage, CommandAction, CommandResponse, DeviceId, EndpointReport, Event, EventBody,
    Message, Placement, Presence, ResponseStatus, Status, StatusReason, TopicPrefix, Topics,
    UpdateStage, Verdict,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};

use crate::app_update::{AppUpdate, AppUpdateError};
use crate::clock::Clock;
use crate::command::Delivery;
use crate::command::ledger::{Answer, Ledger};
use crate::command::{self, Decision};
use crate::config::{BrokerUrl, Config, Credentials};
use crate::facts::{Facts, FactsError, FactsSource};
use crate::link::outbox::{Kind, MemorySpool, Outbox, Spool};
use crate::link::{Link, LinkEvent, LinkOptions, MqttVersion, Reconnect, Reply};
use crate::probe::{ProbeSettings, Probes, probe_all};
use crate::report;
use crate::update::trial::{self, Trial};
use crate::update::window::{Window, next_check_in};
use crate::update::{Installed, UpdateError, UpdateSettings};
use app_update::AppUpdateState;
use self_update::SelfUpdate;

/// How long a clean shutdown waits for the `offline` status and DISCONNECT to be flushed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Records a memory spool holds (simulated devices): beyond this the oldest events go first.
pub const MEMORY_SPOOL_RECORDS: usize = 4096;

/// Where undelivered messages and answered command ids are kept.
pub enum Storage {
    /// In memory: lost with the process (simulated devices, tests).
    Memory,
    /// A spool and a ledger opened by the caller (the on-disk journal on a device).
    Opened {
        spool: Box<dyn Spool>,
        ledger: Ledger,
        /// What opening found that the controller should hear about (e.g. a cut journal tail).
        notices: Vec<EventBody>,
        /// Command answers owed from before this start (e.g. an update that was rolled back).
        answers: Vec<Answer>,
    },
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Storage::Memory => f.write_str("Storage::Memory"),
            Storage::Opened { notices, .. } => f
                .debug_struct("Storage::Opened")
                .field("notices", notices)
                .finish_non_exhaustive(),
        }
    }
}

/// What the daemon needs besides its facts source and clock.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    pub device_id: DeviceId,
    pub broker: BrokerUrl,
    pub topic_prefix: TopicPrefix,
    pub report_interval: Duration,
    /// MQTT keep-alive: rumqttc pings every interval and fails the connection when a ping got no
    /// answer by the next one, so a silent broker is noticed after 1 to 2 intervals (about 2 in
    /// practice), then the reconnect backoff applies.
    pub keep_alive: Duration,
    /// Endpoints probed on every check, if any.
    pub probes: Option<Probes>,
    /// Largest command payload accepted (larger ones are answered `payload_too_large`).
    pub command_max_bytes: usize,
    /// Reconnect delays (simulations and tests shorten them).
    pub reconnect: Reconnect,
    /// MQTT 3.1.1 (default) or 5.
    pub mqtt_version: MqttVersion,
    /// What `update_app` runs, when configured.
    pub app_update: Option<AppUpdate>,
    /// The self-update, when a feed is configured.
    pub updater: Option<Updater>,
    /// This start is the trial of a new version (see [`crate::update::trial`]).
    pub trial: Option<Trial>,
    /// TLS to the broker (`mqtts://`), built by [`crate::link::tls::client_config`].
    pub broker_tls: Option<Arc<rustls::ClientConfig>>,
    /// MQTT user name and password.
    pub credentials: Option<Credentials>,
    /// Where the device is (site, room, ring, tags), carried in every state.
    pub placement: Placement,
    /// The registry repair (`fix` command): none where there is no registry to write.
    pub fix: Option<crate::fix::FixEnv>,
}

impl AgentSettings {
    pub(crate) const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);

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
                resolve: Arc::new(config.resolve.clone()),
            },
        });
        AgentSettings {
            probes,
            device_id: config.device_id.clone(),
            broker: config.broker.clone(),
            topic_prefix: config.topic_prefix.clone(),
            report_interval: config.report_interval,
            keep_alive: Self::DEFAULT_KEEP_ALIVE,
            command_max_bytes: config.command_max_bytes,
            reconnect: Reconnect::default(),
            mqtt_version: config.mqtt_version,
            app_update: config
                .app_update
                .clone()
                .map(|updater| AppUpdate(Arc::new(updater))),
            updater: None,
            trial: None,
            broker_tls,
            credentials: config.credentials.clone(),
            placement: config.placement.clone(),
            fix: None,
        }
    }

    /// Settings with the defaults for everything but the identity and the broker.
    pub fn new(device_id: DeviceId, broker: BrokerUrl) -> Self {
        AgentSettings {
            device_id,
            broker,
            topic_prefix: TopicPrefix::default(),
            report_interval: crate::config::DEFAULT_REPORT_INTERVAL,
            keep_alive: Self::DEFAULT_KEEP_ALIVE,
            probes: None,
            command_max_bytes: command::DEFAULT_MAX_BYTES,
            reconnect: Reconnect::default(),
            mqtt_version: MqttVersion::default(),
            app_update: None,
            updater: None,
            trial: None,
            broker_tls: None,
            credentials: None,
            placement: Placement::default(),
            fix: None,
        }
    }
}

/// The self-update as the daemon runs it.
///
/// `settings.current_version` is the version the daemon runs as: it is reported in every state
/// (`agent_version`), an update starts from it, and it is the `from` of a trial. For the real
/// binary it is [`crate::update::CURRENT_VERSION`]; a simulated device that "installed" another
/// version sets that version here when it starts again.
#[derive(Debug, Clone)]
pub struct Updater {
    pub settings: UpdateSettings,
    /// Where the trial and result files go (the journal directory).
    pub state_dir: PathBuf,
    /// How long a new version has after its restart to connect and deliver a state.
    pub health_timeout: Duration,
    /// `auto_update`: the daily window (local time) and the local UTC offset, read at start.
    pub auto: Option<(Window, i32)>,
}

/// Why a command that starts a lifecycle (an update, an app update) was refused: the
/// answer's `reason` code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refused {
    reason: &'static str,
    message: String,
}

impl Refused {
    /// The `rejected` answer to request `id`.
    fn answer(self, id: &str) -> Answer {
        Answer {
            id: id.to_owned(),
            status: ResponseStatus::Rejected,
            reason: Some(self.reason.to_owned()),
            message: Some(self.message),
        }
    }
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Asked to stop (SIGINT/SIGTERM, or the caller's shutdown future).
    Shutdown,
    /// A new version was installed, or an old one restored: start the binary again (the
    /// service manager does; `run` exits with 75 for it).
    Restart,
}

/// A message from the update task to the loop.
enum UpdateMsg {
    Stage(UpdateStage, Option<u8>),
    Done(Result<Option<Installed>, UpdateError>),
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
    clock: Arc<C>,
    storage: Storage,
}

/// What a finished check hands back to the loop.
struct CheckResult {
    facts: Result<Facts, FactsError>,
    endpoints: Vec<EndpointReport>,
}

/// The daemon's mutable state while it runs.
struct Running<'a, C> {
    device: &'a DeviceId,
    placement: &'a Placement,
    topics: Topics,
    clock: &'a C,
    link: Link,
    connected: bool,
    /// The last `seq` issued; the next message takes `seq + 1`.
    seq: u64,
    outbox: Outbox,
    ledger: Ledger,
    command_max_bytes: usize,
    /// The newest state and its outbox record, republished on connect once delivered (a
    /// restarted broker may have lost the retained copy).
    latest_state: Option<(u64, Vec<u8>)>,
    last_verdict: Option<Verdict>,
    /// The report interval now in force (the config's, or the last `set_interval`).
    interval: Duration,
    /// Set when the interval changed: the loop restarts its timer.
    interval_changed: bool,
    /// A check was asked for (by the timer or `check_now`) and not yet started.
    check_wanted: bool,
    /// The `update_app` lifecycle: not configured, idle, or running one request.
    app_update: AppUpdateState,
    /// Where a finished app update reports back to the loop.
    app_update_done: mpsc::Sender<Result<String, AppUpdateError>>,
    /// The self-update's lifecycle: idle, running, on trial or restarting.
    self_update: SelfUpdate,
    /// Where the update task reports back to the loop.
    update_msgs: mpsc::Sender<UpdateMsg>,
    /// The version reported and updated from (see [`Updater`]).
    version: String,
    /// The `fix` command: its environment and the request running.
    fix: fix::FixState,
    /// Where a fix task reports back to the loop.
    fix_msgs: mpsc::Sender<fix::FixMsg>,
    /// Collects the facts, as the checks do (for a fix's plan).
    collect_facts: fix::CollectFacts,
}

impl<F: FactsSource + Clone, C: Clock> Agent<F, C> {
    /// An agent keeping undelivered messages in memory only.
    pub fn new(settings: AgentSettings, facts: F, clock: C) -> Self {
        Agent::with_storage(settings, facts, clock, Storage::Memory)
    }

    /// An agent keeping undelivered messages and command ids in `storage`.
    pub fn with_storage(settings: AgentSettings, facts: F, clock: C, storage: Storage) -> Self {
        Agent {
            settings,
            facts,
            clock: Arc::new(clock),
            storage,
        }
    }

    /// Runs until `shutdown` completes, then publishes `offline` and disconnects.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Stopped, AgentError> {
        let settings = &self.settings;
        let clock = &*self.clock;
        let topics = Topics::new(&settings.topic_prefix, &settings.device_id);
        let (spool, ledger, notices, answers): (
            Box<dyn Spool>,
            Ledger,
            Vec<EventBody>,
            Vec<Answer>,
        ) = match self.storage {
            Storage::Memory => (
                Box::new(MemorySpool::new(MEMORY_SPOOL_RECORDS)),
                Ledger::memory(),
                Vec::new(),
                Vec::new(),
            ),
            Storage::Opened {
                spool,
                ledger,
                notices,
                answers,
            } => (spool, ledger, notices, answers),
        };
        let outbox = Outbox::new(spool);
        let seq = outbox.last_seq();
        let will = status(&settings.device_id, seq, clock, Presence::Offline);
        let options = LinkOptions {
            broker: settings.broker.clone(),
            client_id: format!("roomready-{}", settings.device_id),
            keep_alive: settings.keep_alive,
            will_topic: topics.status().to_owned(),
            reconnect: settings.reconnect,
            version: settings.mqtt_version,
            tls: settings.broker_tls.clone(),
            credentials: settings.credentials.clone(),
            max_incoming_packet: crate::link::max_incoming_packet(settings.command_max_bytes),
        };
        let link = Link::start(options, will, backoff_seed(&settings.device_id, clock));
        let interval = ledger
            .interval_secs()
            .map_or(settings.report_interval, Duration::from_secs);
        let (app_update_done, mut app_updated) = mpsc::channel(1);
        let (update_msgs, mut update_msgs_rx) = mpsc::channel(64);
        let (fix_msgs, mut fix_msgs_rx) = mpsc::channel(4);
        let collect_facts: fix::CollectFacts = {
            let facts = self.facts.clone();
            Arc::new(move || {
                let facts = facts.clone();
                Box::pin(async move { facts.collect().await })
            })
        };
        let health_deadline = settings
            .updater
            .as_ref()
            .map_or(Duration::from_secs(120), |u| u.health_timeout);
        let trial_deadline = tokio::time::sleep(health_deadline);
        tokio::pin!(trial_deadline);
        let auto = settings.updater.as_ref().and_then(|u| u.auto);
        let auto_seed = backoff_seed(&settings.device_id, clock);
        let auto_wait = |checked: bool, salt: u64| {
            auto.map_or(Duration::from_secs(86_400), |(window, offset)| {
                Duration::from_millis(next_check_in(
                    clock.now().unix_ms(),
                    offset,
                    window,
                    checked,
                    auto_seed.rotate_left(17).wrapping_mul(salt | 1),
                ))
            })
        };
        let mut auto_checks = 0u64;
        let auto_timer = tokio::time::sleep(auto_wait(false, 1));
        tokio::pin!(auto_timer);
        if let Some((window, _)) = auto {
            tracing::info!(%window, "daily update check in the maintenance window");
        }
        let mut run = Running {
            device: &settings.device_id,
            topics,
            clock,
            link,
            connected: false,
            seq,
            outbox,
            ledger,
            placement: &settings.placement,
            command_max_bytes: settings.command_max_bytes,
            latest_state: None,
            last_verdict: None,
            interval,
            interval_changed: false,
            check_wanted: false,
            app_update: AppUpdateState::new(settings.app_update.clone()),
            app_update_done,
            self_update: SelfUpdate::new(settings.updater.clone(), settings.trial.clone()),
            update_msgs,
            version: settings.updater.as_ref().map_or_else(
                || report::AGENT_VERSION.to_owned(),
                |u| u.settings.current_version.to_string(),
            ),
            fix: fix::FixState::new(settings.fix.clone()),
            fix_msgs,
            collect_facts,
        };
        if let Some(trial) = run.self_update.trial() {
            tracing::info!(
                from = trial.from,
                to = trial.to,
                attempt = trial.attempts,
                "new version on trial"
            );
        }
        for notice in notices {
            run.event(notice);
        }
        for answer in answers {
            if let Err(error) = run.ledger.record(answer.clone(), run.clock.now()) {
                tracing::error!(%error, "cannot record a command answer");
            }
            run.respond(answer, None);
        }

        // Checks run in their own task; the loop asks for one and hears back when it is done.
        let (ask_check, mut asked) = mpsc::channel::<()>(1);
        let (done_tx, mut done) = mpsc::channel::<CheckResult>(1);
        let checker = {
            let facts = self.facts.clone();
            let probes = settings.probes.clone();
            let clock = Arc::clone(&self.clock);
            tokio::spawn(async move {
                while asked.recv().await.is_some() {
                    let facts_now = facts.collect().await;
                    let endpoints = match &probes {
                        Some(p) => probe_all(&p.endpoints, &p.settings, clock.now()).await,
                        None => Vec::new(),
                    };
                    let result = CheckResult {
                        facts: facts_now,
                        endpoints,
                    };
                    if done_tx.send(result).await.is_err() {
                        return;
                    }
                }
            })
        };
        let mut checking = false;

        let mut ticker = tokio::time::interval(run.interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        tracing::info!(device = %settings.device_id, broker = %settings.broker, seq, "agent started");
        let outcome = loop {
            if run.interval_changed {
                run.interval_changed = false;
                ticker = tokio::time::interval_at(Instant::now() + run.interval, run.interval);
                ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            }
            if run.check_wanted && !checking && ask_check.try_send(()).is_ok() {
                run.check_wanted = false;
                checking = true;
            }
            tokio::select! {
                () = &mut shutdown => break Ok(Stopped::Shutdown),
                event = run.link.next_event() => match event {
                    Some(LinkEvent::Connected) => run.on_connected(),
                    Some(LinkEvent::Disconnected { error }) => run.on_disconnected(&error),
                    Some(LinkEvent::Delivered(id)) => run.on_delivered(id),
                    Some(LinkEvent::Message { topic, payload, length, retained, reply }) => {
                        run.on_message(&topic, &payload, length, retained, reply.as_ref());
                    }
                    None => break Err(AgentError::LinkStopped),
                },
                _ = ticker.tick() => run.check_wanted = true,
                Some(result) = done.recv() => {
                    checking = false;
                    run.report(result.facts, result.endpoints);
                }
                Some(outcome) = app_updated.recv() => run.on_app_updated(outcome),
                Some(message) = update_msgs_rx.recv() => run.on_update(message),
                Some(message) = fix_msgs_rx.recv() => run.on_fix(message),
                () = &mut trial_deadline, if run.self_update.trial().is_some() => {
                    run.trial_expired(health_deadline);
                }
                () = &mut auto_timer, if auto.is_some() => {
                    run.auto_update();
                    auto_checks += 1;
                    auto_timer.as_mut().reset(Instant::now() + auto_wait(true, auto_checks + 1));
                }
            }
            if run.self_update.restarting() {
                break Ok(Stopped::Restart);
            }
        };
        checker.abort();
        run.shut_down().await;
        outcome
    }
}

impl<C: Clock> Running<'_, C> {
    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Stores and sends one message through the outbox; reports what the spool's bound dropped.
    fn send(&mut self, kind: Kind, seq: u64, topic: Topic, payload: &[u8]) -> Option<u64> {
        let (topic, retain) = match topic {
            Topic::State => (self.topics.state(), true),
            Topic::Events => (self.topics.events(), false),
            Topic::Responses => (self.topics.cmd_res(), false),
        };
        let topic = topic.to_owned();
        let id = match self
            .outbox
            .push(&self.link, kind, seq, &topic, payload, retain)
        {
            Ok(id) => Some(id),
            Err(error) => {
                tracing::error!(%error, seq, "cannot store a message; it is lost");
                None
            }
        };
        let dropped = self.outbox.take_dropped();
        if dropped > 0 {
            tracing::warn!(device = %self.device, dropped, "journal full; dropped the oldest undelivered records");
            // The notice itself may push one more record out: report that with the next one.
            let total = match self.ledger.add_dropped(dropped) {
                Ok(total) => total,
                Err(error) => {
                    tracing::error!(%error, "cannot record the dropped count");
                    self.ledger.dropped_total()
                }
            };
            self.event(EventBody::RecordsDropped {
                count: dropped,
                total,
            });
        }
        id
    }

    /// Publishes an event (through the outbox).
    fn event(&mut self, body: EventBody) {
        let seq = self.next_seq();
        let payload = Event {
            device: self.device.clone(),
            seq,
            ts: self.clock.now(),
            body,
        }
        .encode();
        self.send(Kind::Event, seq, Topic::Events, &payload);
    }

    fn on_connected(&mut self) {
        tracing::info!(device = %self.device, "connected to the broker");
        self.connected = true;
        // A clean session forgets subscriptions: subscribe on every connect.
        if let Err(error) = self.link.subscribe(self.topics.cmd()) {
            tracing::warn!(%error, "cannot subscribe to commands");
        }
        let online = status(self.device, self.seq, self.clock, Presence::Online);
        if let Err(error) = self.link.publish(self.topics.status(), online, true) {
            tracing::warn!(%error, "online status not queued");
        }
        // The newest state, if already delivered: a restarted broker may have lost it.
        if let Some((id, state)) = &self.latest_state
            && !self.outbox.is_pending(*id)
            && let Err(error) = self.link.publish(self.topics.state(), state.clone(), true)
        {
            tracing::warn!(%error, "state not queued");
        }
        self.outbox.on_connected(&self.link);
    }

    fn on_disconnected(&mut self, error: &str) {
        if self.connected {
            tracing::warn!(device = %self.device, error, "lost the broker connection");
        } else {
            // Warn every time: a broker that refuses the agent from the start (untrusted
            // certificate, bad password) must be visible at the default level; the backoff keeps
            // this to a few lines a minute at most after the first ones.
            tracing::warn!(device = %self.device, error, "broker connection attempt failed");
        }
        self.connected = false;
        self.outbox.on_disconnected();
        // The will of the next connection reports what was issued up to now.
        let will = status(self.device, self.seq, self.clock, Presence::Offline);
        self.link.set_will(will);
    }

    fn on_delivered(&mut self, id: u64) {
        if let Err(error) = self.outbox.on_delivered(&self.link, id) {
            tracing::error!(%error, id, "cannot mark a record delivered; it will be sent again");
        }
        // A new version on trial proves itself with its first delivered state.
        if self.self_update.trial().is_some()
            && self
                .latest_state
                .as_ref()
                .is_some_and(|(state, _)| *state == id)
        {
            self.confirm_trial();
        }
    }

    /// A message on a subscribed topic: only `cmd` is subscribed. `payload` is its first bytes
    /// when `length` is larger; `retained`: the broker delivered it from its retained store, not
    /// as it was published.
    fn on_message(
        &mut self,
        topic: &str,
        payload: &[u8],
        length: usize,
        retained: bool,
        reply: Option<&Reply>,
    ) {
        if topic != self.topics.cmd() {
            tracing::debug!(topic, "message on an unexpected topic ignored");
            return;
        }
        let now = self.clock.now();
        let delivery = Delivery { length, retained };
        let (id, decision) = match command::decide(payload, delivery, self.command_max_bytes) {
            Decision::Drop { why } => {
                tracing::warn!(device = %self.device, bytes = length, retained, why, "command without a usable id dropped");
                return;
            }
            Decision::Reject {
                id,
                reason,
                message,
            } => {
                let rejection = Answer {
                    id: id.clone(),
                    status: ResponseStatus::Rejected,
                    reason: Some(reason.to_owned()),
                    message: Some(message),
                };
                (id, Err(rejection))
            }
            Decision::Run { id, action } => (id, Ok(action)),
        };
        if let Some(previous) = self.ledger.answered(&id, now) {
            // It ran before (redelivered, retained, retried): answer again, never run again.
            tracing::info!(device = %self.device, id, retained, "command already ran; answering again");
            let previous = previous.clone();
            self.respond(previous, reply);
            return;
        }
        let action = match decision {
            Err(rejection) => {
                // Not run, so not remembered: a repeat is judged again, to the same answer.
                tracing::info!(device = %self.device, id, reason = ?rejection.reason, retained, "command rejected");
                self.respond(rejection, reply);
                return;
            }
            Ok(action) => action,
        };
        if self.ledger.full(now) {
            let message = format!(
                "{} commands ran in the last {} h, each remembered so that none runs twice; try later",
                command::ledger::CAPACITY,
                command::ledger::REMEMBER_FOR.as_secs() / 3600
            );
            tracing::warn!(device = %self.device, id, "command refused: the command ledger is full");
            let busy = Answer {
                id,
                status: ResponseStatus::Rejected,
                reason: Some("busy".into()),
                message: Some(message),
            };
            self.respond(busy, reply);
            return;
        }
        let Some(answer) = self.execute(&id, &action, reply) else {
            // It answers for itself (the fix: refused, or its answers follow from its task).
            return;
        };
        tracing::info!(device = %self.device, id, command = ?action, status = ?answer.status, "command answered");
        // Remembered before it is answered: a crash in between means "not run", never "twice".
        if let Err(error) = self.ledger.record(answer.clone(), now) {
            tracing::error!(%error, "cannot record a command answer");
        }
        self.respond(answer, reply);
    }

    /// Runs one valid, new command and says how it went (`None`: it answers for itself).
    fn execute(
        &mut self,
        id: &str,
        action: &CommandAction,
        reply: Option<&Reply>,
    ) -> Option<Answer> {
        let answer = |status, reason: Option<&str>, message: Option<String>| Answer {
            id: id.to_owned(),
            status,
            reason: reason.map(str::to_owned),
            message,
        };
        Some(match action {
            CommandAction::Ping => answer(ResponseStatus::Succeeded, None, None),
            CommandAction::CheckNow => {
                self.check_wanted = true;
                answer(
                    ResponseStatus::Accepted,
                    None,
                    Some("a check starts now; its state follows".into()),
                )
            }
            CommandAction::SetInterval { seconds } => {
                if let Err(error) = self.ledger.set_interval_secs(*seconds) {
                    return Some(answer(
                        ResponseStatus::Failed,
                        Some("storage_error"),
                        Some(error.to_string()),
                    ));
                }
                self.interval = Duration::from_secs(*seconds);
                self.interval_changed = true;
                answer(
                    ResponseStatus::Succeeded,
                    None,
                    Some(format!("report interval is now {seconds} s")),
                )
            }
            CommandAction::UpdateApp => self.start_app_update(id, reply),
            CommandAction::Update { version, channel } => {
                self.start_update(id, version.as_deref(), channel.as_deref(), reply)
            }
            CommandAction::Fix { mode, plan } => {
                return self.start_fix(id, *mode, plan.as_deref(), reply);
            }
        })
    }

    fn respond(&mut self, answer: Answer, reply: Option<&Reply>) {
        let seq = self.next_seq();
        let payload = CommandResponse {
            device: self.device.clone(),
            id: answer.id,
            status: answer.status,
            reason: answer.reason,
            message: answer.message,
            seq,
            ts: self.clock.now(),
        }
        .encode();
        if let Some(reply) = reply
            && let Err(error) = self.link.publish_reply(reply, payload.clone())
        {
            tracing::warn!(%error, topic = reply.topic, "reply to the response topic not queued");
        }
        self.send(Kind::Response, seq, Topic::Responses, &payload);
    }

    /// Assesses, publishes the retained state and the events of this check.
    fn report(&mut self, facts: Result<Facts, FactsError>, endpoints: Vec<EndpointReport>) {
        if let Err(error) = &facts {
            tracing::warn!(%error, "facts unavailable");
        }
        let (wire_facts, assessment) = report::evaluate(&facts, &endpoints);
        let verdict = assessment.verdict;
        let findings = u32::try_from(assessment.findings.len()).unwrap_or(u32::MAX);
        let seq = self.next_seq();
        let mut state = report::state(
            self.device.clone(),
            seq,
            self.clock.now(),
            wire_facts,
            assessment,
            endpoints,
            self.placement.clone(),
        );
        state.agent_version.clone_from(&self.version);
        let state = state.encode();
        tracing::info!(device = %self.device, %verdict, seq, "check completed");
        if let Some(id) = self.send(Kind::State, seq, Topic::State, &state) {
            self.latest_state = Some((id, state));
        }
        self.event(EventBody::CheckCompleted { verdict, findings });
        if self.last_verdict != Some(verdict) {
            self.event(EventBody::VerdictChanged {
                from: self.last_verdict,
                to: verdict,
            });
            self.last_verdict = Some(verdict);
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
            if let Err(error) = self.link.publish(self.topics.status(), offline, true) {
                tracing::warn!(%error, "offline status not queued");
            }
            self.link.close(CLOSE_TIMEOUT).await;
        } else {
            // No connection to close: the broker already published the will, if it had one.
            self.link.abort();
        }
        tracing::info!(device = %self.device, "agent stopped");
    }
}

/// The topics the outbox sends to.
#[derive(Debug, Clone, Copy)]
enum Topic {
    State,
    Events,
    Responses,
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
