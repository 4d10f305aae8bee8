//! The embedded MQTT broker: the `mqtt5` crate's broker, run in-process on a loopback port.
//!
//! Why `mqtt5` (details in simulator/README.md): it binds `127.0.0.1:0` and reports the port it
//! got, stops and restarts in-process on the same port (broker-outage faults), and handles
//! retained messages, last wills and QoS 1 correctly at fleet scale. rumqttd 0.20 can neither
//! bind port 0 nor shut down, and lost retained messages to late wildcard subscribers.
//!
//! The crate's defaults are for a server (0.0.0.0:1883, persistence to `./mqtt_storage`), so
//! every broker here binds loopback, keeps everything in memory and publishes no `$SYS` topics.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use mqtt5::broker::config::{StorageBackend, StorageConfig};
use mqtt5::broker::{BrokerConfig, BrokerShutdownHandle, DynamicStorage, MqttBroker};
use roomready_agent::config::BrokerUrl;
use tokio::task::JoinHandle;

/// Connections the embedded broker accepts (the 10k-device scenario needs headroom).
const MAX_CLIENTS: usize = 100_000;

/// Why the broker could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot start the embedded MQTT broker on {addr}: {source}")]
    Start {
        addr: SocketAddr,
        source: mqtt5::MqttError,
    },
    #[error("the embedded MQTT broker did not report its listening address")]
    NoAddress,
    #[error("the embedded MQTT broker failed: {0}")]
    Run(mqtt5::MqttError),
    #[error("the embedded MQTT broker task panicked or was cancelled: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A running in-process broker.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    shutdown: BrokerShutdownHandle,
    /// The broker's storage, flushed once it has stopped (see [`EmbeddedBroker::stop`]).
    storage: Option<Arc<DynamicStorage>>,
    task: JoinHandle<Result<(), mqtt5::MqttError>>,
}

impl EmbeddedBroker {
    /// Starts on a free loopback port.
    pub async fn start() -> Result<Self, BrokerError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts on `addr` (e.g. the address of a stopped broker, to simulate its restart).
    pub async fn start_on(addr: SocketAddr) -> Result<Self, BrokerError> {
        let storage = StorageConfig::new()
            .with_backend(StorageBackend::Memory)
            .with_persistence(false);
        Self::start_with(addr, storage).await
    }

    /// Starts on `addr` keeping sessions, queued messages and retained messages in files under
    /// `dir`, so that a restart on the same `dir` resumes them (as a production broker with
    /// persistence does).
    pub async fn start_persistent(
        addr: SocketAddr,
        dir: &std::path::Path,
    ) -> Result<Self, BrokerError> {
        let storage = StorageConfig::new()
            .with_backend(StorageBackend::File)
            .with_base_dir(dir.to_owned())
            .with_persistence(true);
        Self::start_with(addr, storage).await
    }

    /// [`EmbeddedBroker::start_persistent`] with `persist`, else [`EmbeddedBroker::start_on`].
    pub async fn start_at(
        addr: SocketAddr,
        persist: Option<&std::path::Path>,
    ) -> Result<Self, BrokerError> {
        match persist {
            Some(dir) => Self::start_persistent(addr, dir).await,
            None => Self::start_on(addr).await,
        }
    }

    async fn start_with(addr: SocketAddr, storage: StorageConfig) -> Result<Self, BrokerError> {
        let config = BrokerConfig::default()
            .with_bind_address(addr)
            .with_max_clients(MAX_CLIENTS)
            .with_storage(storage)
            .with_sys_topics_enabled(false);
        let mut broker = MqttBroker::with_config(config)
            .await
            .map_err(|source| BrokerError::Start { addr, source })?;
        let addr = broker.local_addr().ok_or(BrokerError::NoAddress)?;
        let shutdown = broker.shutdown_handle();
        let storage = broker.storage();
        let task = tokio::spawn(async move { broker.run().await });
        tracing::info!(%addr, "embedded MQTT broker started");
        Ok(EmbeddedBroker {
            addr,
            shutdown,
            storage,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL agents and dashboards connect to.
    pub fn url(&self) -> BrokerUrl {
        BrokerUrl {
            host: self.addr.ip().to_string(),
            port: self.addr.port(),
            tls: false,
        }
    }

    /// Stops the broker and waits until it has closed its connections and its port and, with
    /// persistence, until every session, queued and in-flight message is on disk.
    pub async fn stop(mut self) -> Result<(), BrokerError> {
        // The broker subscribes to its shutdown signal when its task first runs, and a signal
        // sent before that is lost (a broadcast with no receiver yet): repeat it until the task
        // has ended, so that a stop right after the start does not wait forever.
        loop {
            self.shutdown.shutdown();
            tokio::select! {
                ended = &mut self.task => {
                    ended?.map_err(BrokerError::Run)?;
                    break;
                }
                () = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            }
        }
        // The broker flushes its write-behind storage when the stop signal arrives, while its
        // connections are still closing; what they store after that (messages routed during the
        // drain, a closing session's in-flight messages) sits in memory until the next write-out.
        // A broker in a child process exits right after this and would lose it: flush again now
        // that nothing writes any more.
        if let Some(storage) = &self.storage {
            storage.shutdown().await.map_err(BrokerError::Run)?;
        }
        tracing::info!(addr = %self.addr, "embedded MQTT broker stopped");
        Ok(())
    }
}
