//! A simulated device: the real agent library (`roomready_agent::Agent`) with simulated facts,
//! run as a task of this process.

use std::time::Duration;

use roomready_agent::clock::SystemClock;
use roomready_agent::config::BrokerUrl;
use roomready_agent::facts::registry::{MapRegistry, read_tls_settings};
use roomready_agent::facts::{Fact, Facts, FixedFacts, Source};
use roomready_agent::{Agent, AgentError, AgentSettings};
use roomready_protocol::{DeviceId, DeviceKind, TopicPrefix};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a simulated device is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    pub id: DeviceId,
    pub kind: DeviceKind,
    /// Teams Rooms app version; `None` simulates a version that could not be read.
    pub app_version: Option<String>,
    /// OS build (`CurrentBuild.UBR`); `None` simulates a build that could not be read.
    pub os_build: Option<String>,
    /// Registry DWORDs set on the device as (key path, value name, value); every other value
    /// is absent, so the OS default applies.
    pub registry: Vec<(String, String, u32)>,
}

impl DeviceSpec {
    /// The facts the agent sees, marked as simulated.
    pub fn facts(&self) -> Facts {
        let source = |key: &str| Source::new(format!("simulator, {key}"));
        let text = |value: &Option<String>, key: &str| match value {
            Some(v) => Fact::Known {
                value: v.clone(),
                source: source(key),
            },
            None => Fact::Unreadable {
                source: source(key),
                reason: "simulated read failure".into(),
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

/// How simulated devices reach the broker.
#[derive(Debug, Clone)]
pub struct DeviceEnv {
    pub broker: BrokerUrl,
    pub topic_prefix: TopicPrefix,
    pub report_interval: Duration,
    pub keep_alive: Duration,
}

/// A running simulated device.
pub struct SimDevice {
    spec: DeviceSpec,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), AgentError>>,
}

impl SimDevice {
    /// Starts the device's agent.
    pub fn spawn(spec: DeviceSpec, env: &DeviceEnv) -> SimDevice {
        let settings = AgentSettings {
            device_id: spec.id.clone(),
            broker: env.broker.clone(),
            topic_prefix: env.topic_prefix.clone(),
            report_interval: env.report_interval,
            keep_alive: env.keep_alive,
            probes: None,
            command_max_bytes: roomready_agent::command::DEFAULT_MAX_BYTES,
            reconnect: roomready_agent::link::Reconnect::default(),
            mqtt_version: roomready_agent::link::MqttVersion::default(),
            broker_tls: None,
            credentials: None,
        };
        let agent = Agent::new(settings, FixedFacts(spec.facts()), SystemClock);
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
