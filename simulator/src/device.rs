//! A simulated device: the real agent library (`roomready_agent::Agent`) with simulated facts,
//! run as a task of this process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use roomready_agent::app_update::{AppUpdate, AppUpdateError, AppUpdater};
use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::registry::{MapRegistry, read_tls_settings};
use roomready_agent::facts::{Fact, Facts, FactsError, FactsSource, Source};
use roomready_agent::probe::{Endpoint, ProbeSettings, Probes};
use roomready_agent::{Agent, AgentError, AgentSettings};
use roomready_protocol::{DeviceId, DeviceKind, TopicPrefix};
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
}

impl DeviceEnv {
    /// Devices on `broker`: one report an hour, a 30 s keep-alive, no probes.
    pub fn new(broker: BrokerUrl, topic_prefix: TopicPrefix) -> Self {
        DeviceEnv {
            broker,
            topic_prefix,
            report_interval: Duration::from_secs(3600),
            keep_alive: Duration::from_secs(30),
            probe_settings: None,
        }
    }
}

/// A running simulated device.
pub struct SimDevice {
    spec: DeviceSpec,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<roomready_agent::daemon::Stopped, AgentError>>,
}

impl SimDevice {
    /// Starts the device's agent.
    pub fn spawn(spec: DeviceSpec, env: &DeviceEnv) -> SimDevice {
        let facts = Arc::new(RwLock::new(spec.facts()));
        let mut settings = AgentSettings::new(spec.id.clone(), env.broker.clone());
        settings.topic_prefix = env.topic_prefix.clone();
        settings.report_interval = env.report_interval;
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
        let agent = Agent::new(settings, SimFacts(facts), SystemClock);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(agent.run(async move {
            // A dropped sender stops the agent as well as an explicit stop.
            let _ = stopped.await;
        }));
        SimDevice { spec, stop, task }
    }

    pub fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    /// Stops cleanly: the agent publishes `offline` and disconnects.
    pub async fn shutdown(self) -> Result<(), SimDeviceError> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }

    /// Kills the agent: its connection drops without DISCONNECT, so the broker publishes the
    /// last will, as when a device loses power.
    pub fn kill(self) {
        self.task.abort();
    }
}

/// Why a simulated device did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SimDeviceError {
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error("device task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
