//! A simulated device: the real agent library (`roomready_agent::Agent`) with simulated facts, run
//! as a task of this process.
//!
//! With [`DeviceEnv::update`] set, the device really updates itself: it has a directory of its own
//! (`{dir}/{device_id}/`) with an "installed binary" (a shell script that passes the `self-test`
//! the installer runs), the config file that self-test is given, the command ledger and the trial
//! files, and the agent's own update code downloads, verifies and swaps releases into it. The
//! device task is then a small supervisor doing what a service manager and the binary's `run` do:
//! when the agent stops with [`Stopped::Restart`] it starts a new agent, which counts the start
//! against a pending trial ([`trial::begin`]) and confirms itself (`healthy`, `succeeded`) or,
//! after a rollback, reports it (`rolled_back`, `failed`); a bad release can be simulated
//! ([`SimUpdate::crash_on_start`]). Undelivered messages stay in one memory spool across these
//! restarts, as they stay in the journal on a device, so `seq` goes on without a gap. The version
//! the device runs as is kept in the directory (`sim-version`), since a script says nothing about
//! it.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use base64::Engine as _;
use roomready_agent::app_update::{AppUpdate, AppUpdateError, AppUpdater};
use roomready_agent::clock::SystemClock;
use roomready_agent::config::{BrokerUrl, UpdateChannel, UpdateFeed};
use roomready_agent::facts::registry::{MapRegistry, read_tls_settings};
use roomready_agent::facts::schannel::{self, Bounds, Observations, Reading, Record};
use roomready_agent::facts::{Fact, Facts, FactsError, FactsSource, Source};
use roomready_agent::link::outbox::{Kind, MemorySpool, Routing, Spool, SpoolError};
use roomready_agent::probe::{Endpoint, ProbeSettings, Probes};
use roomready_agent::start::{self, StartError};
use roomready_agent::update::{BIN_NAME, UpdateSettings};
use roomready_agent::{Agent, AgentError, AgentSettings};
use roomready_agent::{MEMORY_SPOOL_RECORDS, Stopped, Updater};
use roomready_protocol::observed::Target;
use roomready_protocol::{
    DeviceId, DeviceKind, ObservedProtocol, ObservedSource, Placement, Timestamp, TopicPrefix,
};
use semver::Version;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A simulated fact's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimValue {
    Known(String),
    /// The device could not read it.
    Unreadable,
    /// The device does not have it (e.g. no Teams Rooms app installed).
    Absent,
}

impl From<Option<String>> for SimValue {
    /// `Some` is known, `None` unreadable.
    fn from(value: Option<String>) -> Self {
        value.map_or(SimValue::Unreadable, SimValue::Known)
    }
}

impl From<Option<&str>> for SimValue {
    fn from(value: Option<&str>) -> Self {
        value.map(str::to_owned).into()
    }
}

/// What a simulated device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// Teams Rooms app version.
    pub app_version: SimValue,
    /// OS build (`CurrentBuild.UBR`).
    pub os_build: SimValue,
    /// Registry DWORDs set on the device as (key path, value name, value); every other value
    /// is absent, so the OS default applies.
    pub registry: Vec<(String, String, u32)>,
    /// The endpoints the device probes on every check, with [`DeviceEnv::probe_settings`];
    /// empty: none.
    pub endpoints: Vec<Endpoint>,
    /// Where the device is (its agent's `site`, `room`, `ring`, `tags`).
    pub placement: Placement,
    /// Handshakes the device's Schannel logged (its `observed` evidence, as if read from the
    /// System log over the last hour); empty: it reports no evidence.
    pub handshakes: Vec<SimHandshake>,
}

/// Client handshakes a simulated device made with one protocol to one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHandshake {
    pub protocol: ObservedProtocol,
    pub target: String,
    pub count: u64,
}

impl DeviceSpec {
    /// The evidence of [`DeviceSpec::handshakes`] as of now, summarised by the agent's own
    /// code: each handshake logged over the last hour, success logging on.
    fn observed(&self) -> Fact<Observations> {
        let label = "simulator, System log (Schannel events)";
        if self.handshakes.is_empty() {
            return Fact::Absent {
                source: Source::new(label),
            };
        }
        let now = roomready_agent::clock::Clock::now(&SystemClock);
        let mut reading = Reading::default();
        for h in &self.handshakes {
            for i in 0..h.count {
                let ago = 60_000 + (i * 3_540_000) / h.count.max(1);
                reading.records.push((
                    Timestamp::from_unix_ms(now.unix_ms().saturating_sub(ago)),
                    Record::Handshake {
                        protocol: h.protocol,
                        target: Target::lossy(&h.target),
                        suite: None,
                    },
                ));
            }
        }
        let value = schannel::summarize(
            reading,
            ObservedSource::SystemLog,
            label.into(),
            now,
            Bounds::default(),
        );
        Fact::Known {
            value,
            source: Source::new(label),
        }
    }
}

impl DeviceSpec {
    /// The facts the agent sees, marked as simulated.
    pub fn facts(&self) -> Facts {
        let source = |key: &str| Source::new(format!("simulator, {key}"));
        let text = |value: &SimValue, key: &str| match value {
            SimValue::Known(v) => Fact::Known {
                value: v.clone(),
                source: source(key),
            },
            SimValue::Unreadable => Fact::Unreadable {
                source: source(key),
                reason: "simulated read failure".into(),
            },
            SimValue::Absent => Fact::Absent {
                source: source(key),
            },
        };
        Facts {
            device_id: Some(self.id.clone()),
            kind: Fact::Known {
                value: self.kind,
                source: source("kind"),
            },
            app_version: text(&self.app_version, "app_version"),
            os_build: text(&self.os_build, "os_build"),
            os_name: Fact::Absent {
                source: source("os_name"),
            },
            tls: Fact::Known {
                value: read_tls_settings(
                    &MapRegistry::from_entries(self.registry.iter().map(|(k, n, v)| (k, n, *v)))
                        .with_label("simulator, registry"),
                ),
                source: source("registry"),
            },
            observed: self.observed(),
        }
    }
}

/// The app version a simulated `update_app` installs.
pub const SIM_APP_UPDATE_TO: &str = "5.2.115.0";

/// Facts the simulation can change while the agent runs (an app update raises the version).
#[derive(Clone)]
struct SimFacts(Arc<RwLock<Facts>>);

impl FactsSource for SimFacts {
    async fn collect(&self) -> Result<Facts, FactsError> {
        // A poisoned lock still holds the last facts written, which is what a device would show.
        Ok(self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone())
    }
}

/// A simulated Teams Rooms app update: it succeeds and the app is then at `to`.
struct SimAppUpdater {
    facts: Arc<RwLock<Facts>>,
    to: String,
}

impl AppUpdater for SimAppUpdater {
    fn update(&self) -> Pin<Box<dyn Future<Output = Result<String, AppUpdateError>> + Send + '_>> {
        Box::pin(async move {
            let mut facts = self
                .facts
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            facts.app_version = Fact::Known {
                value: self.to.clone(),
                source: Source::new("simulator, app_version after update_app"),
            };
            Ok(format!("simulated app update to {}", self.to))
        })
    }
}

/// How simulated devices reach the broker, probe, and update.
#[derive(Debug, Clone)]
pub struct DeviceEnv {
    pub broker: BrokerUrl,
    pub topic_prefix: TopicPrefix,
    pub report_interval: Duration,
    pub keep_alive: Duration,
    /// How devices with [`DeviceSpec::endpoints`] probe them (trust anchors, timeout, name
    /// overrides); `None`: no device probes.
    pub probe_settings: Option<ProbeSettings>,
    /// Where and how devices update themselves (the controller's `update`); `None`: they answer
    /// `update` with `rejected` / `not_configured`, as an agent without a feed does.
    pub update: Option<SimUpdate>,
}

impl DeviceEnv {
    /// Devices on `broker`: one report an hour, a 30 s keep-alive, no probes, no self-update.
    pub fn new(broker: BrokerUrl, topic_prefix: TopicPrefix) -> Self {
        DeviceEnv {
            broker,
            topic_prefix,
            report_interval: Duration::from_secs(3600),
            keep_alive: Duration::from_secs(30),
            probe_settings: None,
            update: None,
        }
    }
}

/// The self-update of simulated devices: the feed, the pinned keys, and where each device keeps
/// its installation (`{dir}/{device_id}/`: `roomready-agent`, `roomready-agent.prev`,
/// `agent.toml`, `commands.json`, the trial files, `sim-version`).
///
/// Releases for simulated devices are made with [`roomready_feed::publish`] for this host's target
/// ([`roomready_feed::this_target`]), and their "binary" must pass `self-test --config agent.toml`:
/// a script such as `#!/bin/sh` / `exit 0` does (Unix only), and so does the real agent binary.
#[derive(Debug, Clone)]
pub struct SimUpdate {
    /// Where releases are published: a manifest feed (`roomready-release release` served by
    /// [`crate::update_server::UpdateServer`]) or a GitHub release API.
    pub feed: UpdateFeed,
    pub channel: UpdateChannel,
    /// Pinned ed25519 verifying keys ([`roomready_feed::keys::decode_verifying_key`]).
    pub keys: Vec<[u8; 32]>,
    /// The base directory; each device gets `{dir}/{device_id}/` (created when it spawns).
    pub dir: PathBuf,
    /// How long a new version has after its restart to connect and deliver a state before it
    /// is rolled back.
    pub health_timeout: Duration,
    /// Largest artifact and manifest accepted, in bytes.
    pub max_bytes: u64,
    /// Bad releases: these versions crash as soon as they start. Each start counts against the
    /// version's trial, so after [`trial::MAX_ATTEMPTS`] starts the previous binary is restored
    /// and reports `rolled_back` (and `failed` to the `update` request).
    pub crash_on_start: Vec<Version>,
}

impl SimUpdate {
    /// A health timeout long enough for a loaded CI machine, short next to the agent's 120 s.
    pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(30);
    /// Artifacts up to 256 MiB (a debug build of the real agent fits).
    pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
    /// Bound on each HTTP request of an update.
    pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

    /// The manifest feed at `feed_url` (e.g. [`crate::update_server::UpdateServer::url`]; a
    /// trailing `/` is dropped), its `stable` channel, `keys` pinned, devices under `dir`.
    pub fn manifest(feed_url: &str, keys: Vec<[u8; 32]>, dir: impl Into<PathBuf>) -> SimUpdate {
        SimUpdate {
            feed: UpdateFeed::Manifest {
                url: feed_url.trim_end_matches('/').to_owned(),
            },
            channel: UpdateChannel::Stable,
            keys,
            dir: dir.into(),
            health_timeout: Self::DEFAULT_HEALTH_TIMEOUT,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            crash_on_start: Vec::new(),
        }
    }
}

/// The installed "binary" of a simulated device at `version`: it passes `self-test` and refuses
/// anything else (nothing runs it but a rollback's copy and the installer).
fn sim_binary(version: &Version) -> String {
    format!(
        "#!/bin/sh\n# roomready-agent {version} (simulated by roomready-sim)\n\
         [ \"$1\" = self-test ] && exit 0\n\
         echo \"simulated roomready-agent: only self-test runs\" >&2\nexit 64\n"
    )
}

/// Where a simulated device keeps the version it runs as.
const VERSION_FILE: &str = "sim-version";
/// The config file the installed binary's `self-test` is given.
const CONFIG_FILE: &str = "agent.toml";

/// One simulated device's installation (see [`SimUpdate`]).
#[derive(Debug, Clone)]
struct Install {
    device: DeviceId,
    dir: PathBuf,
    binary: PathBuf,
    config: PathBuf,
    update: SimUpdate,
}

/// What one start of a device with an installation finds.
/// A start of the simulated binary: the agent's own boot, and the version that runs.
struct Booted {
    boot: start::Boot,
    version: Version,
}

impl Install {
    /// Creates `{dir}/{id}/` with the installed binary (kept if already there: spawning again
    /// over the same directory continues that installation) and a config for its self-test.
    fn prepare(
        update: &SimUpdate,
        device: &DeviceId,
        broker: &BrokerUrl,
    ) -> Result<Install, SimDeviceError> {
        let id = device.as_str();
        if id.chars().all(|c| c == '.') {
            return Err(SimDeviceError::Install {
                path: update.dir.clone(),
                reason: format!("device id {id:?} cannot name a directory"),
            });
        }
        let dir = update.dir.join(id);
        let fail = |path: &Path| {
            let path = path.to_owned();
            move |e: std::io::Error| SimDeviceError::Install {
                path,
                reason: e.to_string(),
            }
        };
        std::fs::create_dir_all(&dir).map_err(fail(&dir))?;
        let binary = dir.join(BIN_NAME);
        if !binary.exists() {
            std::fs::write(
                &binary,
                sim_binary(&roomready_agent::update::current_version()),
            )
            .map_err(fail(&binary))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755))
                    .map_err(fail(&binary))?;
            }
        }
        let config = dir.join(CONFIG_FILE);
        std::fs::write(&config, self_test_config(update, device, broker)).map_err(fail(&config))?;
        Ok(Install {
            device: device.clone(),
            dir,
            binary,
            config,
            update: update.clone(),
        })
    }

    /// What `roomready-agent run` does first ([`start::boot`]), and the version that runs: the
    /// restored one after a rollback, the new one on trial, else the one recorded last.
    fn boot(&self) -> Result<Booted, SimDeviceError> {
        let boot = start::boot(&self.dir)?;
        let mut version = self.recorded_version()?;
        if boot.restart.is_some() {
            return Ok(Booted { boot, version });
        }
        if let Some(outcome) = &boot.rolled_back {
            version = self.parse_version(&outcome.from)?;
        }
        if let Some(trial) = &boot.trial {
            version = self.parse_version(&trial.to)?;
        }
        let path = self.dir.join(VERSION_FILE);
        std::fs::write(&path, format!("{version}\n")).map_err(|e| SimDeviceError::Install {
            path,
            reason: e.to_string(),
        })?;
        Ok(Booted { boot, version })
    }

    /// The version recorded by the last start; the library's for a new installation.
    fn recorded_version(&self) -> Result<Version, SimDeviceError> {
        let path = self.dir.join(VERSION_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => self.parse_version(text.trim()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(roomready_agent::update::current_version())
            }
            Err(e) => Err(SimDeviceError::Install {
                path,
                reason: e.to_string(),
            }),
        }
    }

    fn parse_version(&self, text: &str) -> Result<Version, SimDeviceError> {
        Version::parse(text).map_err(|e| SimDeviceError::Install {
            path: self.dir.clone(),
            reason: format!("installed version {text:?}: {e}"),
        })
    }

    /// The agent's updater for this installation, running as `version`.
    fn updater(&self, version: Version) -> Updater {
        Updater {
            settings: UpdateSettings {
                feed: self.update.feed.clone(),
                channel: self.update.channel,
                keys: self.update.keys.clone(),
                allow_downgrade: false,
                max_bytes: self.update.max_bytes,
                current_version: version,
                requested: None,
                target: roomready_feed::this_target().to_owned(),
                install_path: self.binary.clone(),
                config_path: self.config.clone(),
                timeout: SimUpdate::HTTP_TIMEOUT,
                roots: None,
            },
            state_dir: self.dir.clone(),
            health_timeout: self.update.health_timeout,
            auto: None,
        }
    }
}

/// A minimal config the real `roomready-agent self-test` accepts (a released real binary runs
/// it); the simulated binary does not read it. Strings are written as JSON strings, which are
/// valid TOML basic strings.
fn self_test_config(update: &SimUpdate, device: &DeviceId, broker: &BrokerUrl) -> String {
    let quote = |text: &str| serde_json::Value::from(text).to_string();
    let scheme = if broker.tls { "mqtts" } else { "mqtt" };
    let feed = match &update.feed {
        UpdateFeed::Manifest { url } => format!("update_feed_url = {}\n", quote(url)),
        UpdateFeed::GitHub {
            api_url,
            owner,
            repo,
            ..
        } => format!(
            "update_github_repo = {}\nupdate_github_api_url = {}\n",
            quote(&format!("{owner}/{repo}")),
            quote(api_url)
        ),
    };
    let keys: Vec<String> = update
        .keys
        .iter()
        .map(|k| quote(&base64::engine::general_purpose::STANDARD.encode(k)))
        .collect();
    format!(
        "# A simulated device's config, for the self-test of the binaries it installs.\n\
         broker_url = {}\ndevice_id = {}\nfacts_file = \"facts.toml\"\n{feed}update_keys = [{}]\n",
        quote(&format!("{scheme}://{}:{}", broker.host, broker.port)),
        quote(device.as_str()),
        keys.join(", ")
    )
}

/// A device's memory spool, kept by its supervisor across the agent's restarts (the journal on
/// a device), so a restarted agent continues `seq` and sends what was not yet delivered.
#[derive(Clone)]
struct SharedSpool(Arc<Mutex<MemorySpool>>);

impl SharedSpool {
    fn new(records: usize) -> Self {
        SharedSpool(Arc::new(Mutex::new(MemorySpool::new(records))))
    }

    fn lock(&self) -> MutexGuard<'_, MemorySpool> {
        // A panic while holding it leaves a consistent map behind (each call is one operation).
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Spool for SharedSpool {
    fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, SpoolError> {
        self.lock().append(kind, seq, topic, payload, retain)
    }

    fn ack(&mut self, id: u64) -> Result<(), SpoolError> {
        self.lock().ack(id)
    }

    fn pending_ids(&self) -> Vec<u64> {
        self.lock().pending_ids()
    }

    fn routing(&self, id: u64) -> Option<Routing> {
        self.lock().routing(id)
    }

    fn payload(&self, id: u64) -> Result<Vec<u8>, SpoolError> {
        self.lock().payload(id)
    }

    fn take_dropped(&mut self) -> u64 {
        self.lock().take_dropped()
    }

    fn last_seq(&self) -> u64 {
        self.lock().last_seq()
    }
}

/// What the supervisor tells about a running device.
struct Life {
    restarts: AtomicU64,
    version: Mutex<String>,
}

impl Life {
    fn set_version(&self, version: &Version) {
        *self.version.lock().unwrap_or_else(PoisonError::into_inner) = version.to_string();
    }
}

/// A running simulated device.
pub struct SimDevice {
    spec: DeviceSpec,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<Stopped, SimDeviceError>>,
    life: Arc<Life>,
    dir: Option<PathBuf>,
}

impl SimDevice {
    /// Starts the device's agent. A device whose installation cannot be prepared
    /// ([`DeviceEnv::update`]) does not start: the error is logged and [`SimDevice::shutdown`]
    /// returns it ([`SimDevice::try_spawn`] returns it at once).
    pub fn spawn(spec: DeviceSpec, env: &DeviceEnv) -> SimDevice {
        let install = env
            .update
            .as_ref()
            .map(|update| Install::prepare(update, &spec.id, &env.broker))
            .transpose();
        match install {
            Ok(install) => SimDevice::start(spec, env, install),
            Err(error) => {
                tracing::error!(device = %spec.id, %error, "simulated device not started");
                let (stop, _) = oneshot::channel();
                SimDevice {
                    life: Arc::new(Life {
                        restarts: AtomicU64::new(0),
                        version: Mutex::new(String::new()),
                    }),
                    dir: None,
                    spec,
                    stop,
                    task: tokio::spawn(async move { Err(error) }),
                }
            }
        }
    }

    /// [`SimDevice::spawn`], with an installation that cannot be prepared an error now.
    pub fn try_spawn(spec: DeviceSpec, env: &DeviceEnv) -> Result<SimDevice, SimDeviceError> {
        let install = env
            .update
            .as_ref()
            .map(|update| Install::prepare(update, &spec.id, &env.broker))
            .transpose()?;
        Ok(SimDevice::start(spec, env, install))
    }

    fn start(spec: DeviceSpec, env: &DeviceEnv, install: Option<Install>) -> SimDevice {
        let facts = Arc::new(RwLock::new(spec.facts()));
        let mut settings = AgentSettings::new(spec.id.clone(), env.broker.clone());
        settings.topic_prefix = env.topic_prefix.clone();
        settings.report_interval = env.report_interval;
        settings.placement = spec.placement.clone();
        settings.keep_alive = env.keep_alive;
        if let Some(probe_settings) = &env.probe_settings
            && !spec.endpoints.is_empty()
        {
            settings.probes = Some(Probes {
                endpoints: spec.endpoints.clone(),
                settings: probe_settings.clone(),
            });
        }
        // Teams Rooms on Windows can update its app; the other kinds have no app_update_command.
        if spec.kind == DeviceKind::TeamsRoomsWindows {
            settings.app_update = Some(AppUpdate(Arc::new(SimAppUpdater {
                facts: Arc::clone(&facts),
                to: SIM_APP_UPDATE_TO.to_owned(),
            })));
        }
        let life = Arc::new(Life {
            restarts: AtomicU64::new(0),
            version: Mutex::new(roomready_agent::update::CURRENT_VERSION.to_owned()),
        });
        let dir = install.as_ref().map(|i| i.dir.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(supervise(
            settings,
            SimFacts(facts),
            install,
            stopped,
            Arc::clone(&life),
        ));
        SimDevice {
            spec,
            stop,
            task,
            life,
            dir,
        }
    }

    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    /// The version the device runs as: the agent library's, or the one it updated to.
    pub fn version(&self) -> String {
        self.life
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many times the device started again: into a new version, after a crash of a bad one
    /// ([`SimUpdate::crash_on_start`]), or back into the previous one.
    pub fn restarts(&self) -> u64 {
        self.life.restarts.load(Ordering::Relaxed)
    }

    /// The device's installation directory (`{dir}/{device_id}/`), with [`DeviceEnv::update`].
    pub fn install_dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Stops cleanly, whichever agent runs now: it publishes `offline` and disconnects.
    pub async fn shutdown(self) -> Result<(), SimDeviceError> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }

    /// Kills the agent, whichever runs now: its connection drops without DISCONNECT, so the
    /// broker publishes the last will, as when a device loses power. An update being downloaded
    /// runs on to its end in the background (its thread cannot be stopped) and is then dropped:
    /// it may have been installed, and a device spawned again over the same directory then
    /// starts it on trial, as a real device would after the power came back.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// The device task: runs the agent, and with an installation starts it again after every
/// [`Stopped::Restart`], as a service manager restarts the binary.
async fn supervise(
    base: AgentSettings,
    facts: SimFacts,
    install: Option<Install>,
    mut stop: oneshot::Receiver<()>,
    life: Arc<Life>,
) -> Result<Stopped, SimDeviceError> {
    let Some(install) = install else {
        let agent = Agent::new(base, facts, SystemClock);
        // A dropped sender stops the agent as well as an explicit stop.
        return Ok(agent
            .run(async move {
                let _ = stop.await;
            })
            .await?);
    };
    let spool = SharedSpool::new(MEMORY_SPOOL_RECORDS);
    loop {
        let Booted { boot, version } = install.boot()?;
        if let Some(reason) = &boot.restart {
            // The service manager starts the restored binary; its boot reports the rollback.
            tracing::warn!(device = %install.device, reason, "update rolled back at start");
            continue;
        }
        life.set_version(&version);
        if boot.trial.is_some() && install.update.crash_on_start.contains(&version) {
            // A bad release dies before it does anything; the service manager starts it again.
            tracing::warn!(device = %install.device, %version, "simulated crash at start");
            if !matches!(stop.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
                return Ok(Stopped::Shutdown);
            }
            life.restarts.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            continue;
        }
        let storage = start::storage(
            Box::new(spool.clone()),
            Vec::new(),
            &install.dir,
            &boot,
            &SystemClock,
        )?;
        let mut settings = base.clone();
        settings.trial = boot.trial;
        settings.updater = Some(install.updater(version));
        let agent = Agent::with_storage(settings, facts.clone(), SystemClock, storage);
        // Borrowed, so the next start still hears the stop; it completes at most once, after
        // which the loop ends.
        let stopped = agent
            .run(async {
                let _ = (&mut stop).await;
            })
            .await?;
        match stopped {
            Stopped::Shutdown => return Ok(stopped),
            Stopped::Restart => {
                life.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(device = %install.device, "simulated device restarting");
            }
        }
    }
}

/// Why a simulated device did not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SimDeviceError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("device task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The device's installation directory could not be prepared or read.
    #[error("simulated device installation {}: {reason}", path.display())]
    Install { path: PathBuf, reason: String },
    /// The update trial files, the state directory or the command ledger (the agent's start
    /// path) could not be read or written.
    #[error(transparent)]
    Start(#[from] StartError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_agent::update::trial::{self, Trial};

    fn install(dir: &Path) -> Install {
        let update = SimUpdate::manifest("http://127.0.0.1:8080/", vec![[7u8; 32]], dir);
        let broker = BrokerUrl {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
        };
        let id = DeviceId::new("mtr-1").expect("id");
        Install::prepare(&update, &id, &broker).expect("prepared")
    }

    #[test]
    fn an_installation_has_a_binary_that_passes_self_test_and_a_config_the_agent_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let i = install(dir.path());
        assert_eq!(i.dir, dir.path().join("mtr-1"));
        let status = std::process::Command::new(&i.binary)
            .args(["self-test", "--config"])
            .arg(&i.config)
            .status()
            .expect("the simulated binary runs");
        assert!(status.success());
        let status = std::process::Command::new(&i.binary)
            .arg("run")
            .stderr(std::process::Stdio::null())
            .status()
            .expect("runs");
        assert_eq!(status.code(), Some(64));
        let config = roomready_agent::config::Config::load(&i.config).expect("a valid config");
        assert_eq!(config.device_id.as_str(), "mtr-1");
        assert_eq!(config.update.keys, vec![[7u8; 32]]);
        assert_eq!(
            config.update.feed,
            Some(UpdateFeed::Manifest {
                url: "http://127.0.0.1:8080".into()
            })
        );
        let updater = i.updater(Version::new(1, 2, 3));
        assert_eq!(updater.settings.install_path, i.binary);
        assert_eq!(updater.settings.config_path, i.config);
        assert_eq!(updater.settings.current_version, Version::new(1, 2, 3));
        assert_eq!(updater.state_dir, i.dir);
    }

    #[test]
    fn boots_follow_the_trial_files_and_remember_the_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let i = install(dir.path());
        let Booted { boot, version } = i.boot().expect("boot");
        assert_eq!(boot.trial, None);
        assert_eq!(version, roomready_agent::update::current_version());

        // An update installed 2.0.0 over a binary that spawning again keeps.
        std::fs::write(&i.binary, "new").expect("new binary");
        std::fs::write(i.binary.with_file_name("roomready-agent.prev"), "old").expect("prev");
        let trial = Trial {
            request_id: Some("u-1".into()),
            from: version.to_string(),
            to: "2.0.0".into(),
            binary: i.binary.clone(),
            prev: i.binary.with_file_name("roomready-agent.prev"),
            attempts: 0,
        };
        trial.write(&i.dir).expect("trial");
        let i = install(dir.path());
        assert_eq!(std::fs::read(&i.binary).expect("binary"), b"new");
        let Booted { boot, version } = i.boot().expect("boot");
        assert_eq!(boot.trial.map(|t| t.attempts), Some(1));
        assert_eq!(version, Version::new(2, 0, 0));
        trial::Trial::finish(&i.dir).expect("confirmed");
        assert_eq!(i.boot().expect("boot").version, Version::new(2, 0, 0));

        // A rollback: the restored version runs and owes the request an answer.
        trial.write(&i.dir).expect("trial");
        let back = i.boot().expect("boot").boot.trial.expect("on trial");
        trial::roll_back(&i.dir, &back, "not healthy".into()).expect("rolled back");
        let Booted { boot, version } = i.boot().expect("boot");
        assert_eq!(boot.trial, None);
        assert_eq!(version, roomready_agent::update::current_version());
        let (notices, answers) = boot.report();
        assert_eq!(notices.len(), 1);
        assert_eq!(answers.first().map(|a| a.id.as_str()), Some("u-1"));
        assert_eq!(std::fs::read(&i.binary).expect("binary"), b"old");
        assert!(
            i.boot().expect("boot").boot.report().1.is_empty(),
            "reported once"
        );
    }

    #[test]
    fn a_device_id_of_dots_gets_no_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let update = SimUpdate::manifest("http://x", vec![[0u8; 32]], dir.path());
        let broker = BrokerUrl {
            host: "127.0.0.1".into(),
            port: 1883,
            tls: false,
        };
        let id = DeviceId::new("..").expect("a valid id");
        assert!(matches!(
            Install::prepare(&update, &id, &broker),
            Err(SimDeviceError::Install { .. })
        ));
    }
}
