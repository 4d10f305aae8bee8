//! The controller (`roomready-controller`'s library) started in the test's process against a
//! broker, on a loopback port of its own and a database in a temporary directory, with an HTTP
//! client of its web side, and waits that end when a committed batch makes a condition true
//! (never a sleep).

use std::collections::BTreeMap;
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_connect::broker::{BrokerSettings, BrokerTls, MqttVersion};
use roomready_controller::Running;
use roomready_controller::config::Config;
use roomready_controller::store::Store;
use roomready_protocol::{TopicPrefix, Verdict};
use roomready_simulator::dashboard::Dashboard;
use roomready_simulator::device::{DeviceEnv, DeviceSpec, SimDevice};
use roomready_simulator::fleet::demo_fleet;
use std::path::PathBuf;

use crate::WAIT;
use roomready_testkit::http::Http;

/// A running controller and its files.
pub struct Console {
    pub running: Running,
    pub http: Http,
    pub config: Config,
    /// Holds the database (and users file) while the console lives.
    pub dir: tempfile::TempDir,
}

/// A configuration for `broker`: MQTT 5, an ephemeral loopback port, the database in `dir`.
pub fn config(broker: &BrokerUrl, dir: &std::path::Path) -> Config {
    let mut config = Config::with_defaults(
        BrokerSettings {
            url: broker.clone(),
            tls: BrokerTls::default(),
            credentials: None,
            version: MqttVersion::V5,
        },
        dir.join("controller.db"),
    );
    config.listen = "127.0.0.1:0".parse().expect("loopback address");
    config
}

impl Console {
    /// Starts a controller on `broker` with the defaults, changed by `tweak`.
    pub async fn start(
        broker: &BrokerUrl,
        tweak: impl FnOnce(&mut Config, &std::path::Path),
    ) -> Console {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = config(broker, dir.path());
        tweak(&mut config, dir.path());
        Console::start_with(config, dir).await
    }

    /// Starts a controller with `config` (its files in `dir`).
    pub async fn start_with(config: Config, dir: tempfile::TempDir) -> Console {
        let running = roomready_controller::start(&config)
            .await
            .unwrap_or_else(|e| panic!("the controller starts: {e}"));
        let http = Http::new(&running.url());
        Console {
            running,
            http,
            config,
            dir,
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.running.store
    }

    pub fn database(&self) -> PathBuf {
        self.config.database.clone()
    }

    /// Waits until `check` answers `Some`, checking now and after every committed batch, at
    /// most [`WAIT`].
    pub async fn until<T>(&self, what: &str, mut check: impl FnMut(&dyn Store) -> Option<T>) -> T {
        let mut commits = self.running.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = check(self.store()) {
                return found;
            }
            match tokio::time::timeout_at(deadline, commits.recv()).await {
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    panic!("the controller stopped while waiting for {what}")
                }
                Err(_) => panic!("no {what} within {WAIT:?}"),
            }
        }
    }

    /// Waits until `check` answers `Some`, checking now and after every change the alert task
    /// makes (an alert raised, a delivery attempt ended), at most [`WAIT`].
    pub async fn until_alerts<T>(
        &self,
        what: &str,
        check: impl FnMut(&dyn Store) -> Option<T>,
    ) -> T {
        self.until_changed(self.running.alert_changes(), what, check)
            .await
    }

    /// Waits until `check` answers `Some`, checking now and after every step of the rollout
    /// runner that changed the store, and after every commit, at most [`WAIT`].
    pub async fn until_rollouts<T>(
        &self,
        what: &str,
        mut check: impl FnMut(&dyn Store) -> Option<T>,
    ) -> T {
        let mut commits = self.running.subscribe();
        let mut changes = self.running.rollout_changes();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            changes.borrow_and_update();
            if let Some(found) = check(self.store()) {
                return found;
            }
            tokio::select! {
                changed = changes.changed() => {
                    assert!(changed.is_ok(), "the rollout runner stopped while waiting for {what}");
                }
                _ = commits.recv() => {}
                _ = tokio::time::sleep_until(deadline) => panic!("no {what} within {WAIT:?}"),
            }
        }
    }

    async fn until_changed<T>(
        &self,
        mut changes: tokio::sync::watch::Receiver<u64>,
        what: &str,
        mut check: impl FnMut(&dyn Store) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            changes.borrow_and_update();
            if let Some(found) = check(self.store()) {
                return found;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("the alert task stopped while waiting for {what}"),
                Err(_) => panic!("no {what} within {WAIT:?}"),
            }
        }
    }

    /// Waits until the broker has acknowledged every subscription: from then on nothing the
    /// fleet publishes is missed.
    pub async fn subscribed(&self) {
        let mut subscribed = self.running.ingest_stats.subscribed.subscribe();
        tokio::time::timeout(WAIT, subscribed.wait_for(|s| *s))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the controller did not subscribe within {WAIT:?}: {:?}",
                    self.running.ingest_stats.last_error()
                )
            })
            .expect("the controller runs");
    }

    /// Starts `count` demo devices on `broker` (keep-alive 5 s) and waits until the controller
    /// has every one's state and presence; returns the devices and the verdicts an independent
    /// dashboard saw.
    pub async fn fleet(
        &self,
        broker: &BrokerUrl,
        count: usize,
    ) -> (Vec<SimDevice>, BTreeMap<String, Verdict>) {
        self.fleet_of(broker, demo_fleet(count)).await
    }

    /// [`Console::fleet`] of these devices.
    pub async fn fleet_of(
        &self,
        broker: &BrokerUrl,
        specs: Vec<DeviceSpec>,
    ) -> (Vec<SimDevice>, BTreeMap<String, Verdict>) {
        let count = specs.len();
        let mut dashboard = Dashboard::connect(broker, &TopicPrefix::default());
        dashboard
            .wait_subscribed(WAIT)
            .await
            .expect("the dashboard subscribes");
        let env = DeviceEnv {
            keep_alive: Duration::from_secs(5),
            ..DeviceEnv::new(broker.clone(), TopicPrefix::default())
        };
        let devices: Vec<SimDevice> = specs
            .into_iter()
            .map(|spec| SimDevice::spawn(spec, &env))
            .collect();
        let view = dashboard
            .wait_until(WAIT, |v| {
                v.devices.values().filter(|d| d.state.is_some()).count() == count
            })
            .await
            .expect("every state reaches the dashboard");
        let verdicts = view
            .devices
            .iter()
            .filter_map(|(id, d)| d.state.as_ref().map(|s| (id.to_string(), s.verdict)))
            .collect();
        self.until("every device's state and presence in the store", |store| {
            let summary = store.summary().ok()?;
            (summary.devices == count as u64
                && summary.no_state == 0
                && summary.online == count as u64)
                .then_some(())
        })
        .await;
        (devices, verdicts)
    }

    pub async fn stop(self) -> tempfile::TempDir {
        self.running.stop().await;
        self.dir
    }
}
