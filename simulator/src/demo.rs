//! `roomready-sim demo`: a broker, a fleet of simulated devices, a dashboard and the controller,
//! end to end.
//!
//! Starts the embedded broker (or uses `--broker`), the controller (its database in a temporary
//! directory unless `--database` names one), then the devices; subscribes like a dashboard and
//! waits until every device's state of *this* run has arrived (states retained on an external
//! broker from an earlier run are older than the start and do not count), and prints the fleet
//! table. [`serve`] then keeps the fleet and the controller's dashboard running until it is
//! told to stop; [`run`] (`--once`) stops the devices cleanly right away, without a controller.

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::config::BrokerUrl;
use roomready_connect::broker::{BrokerSettings, BrokerTls, MqttVersion};
use roomready_protocol::{DeviceId, Presence, Timestamp, TopicPrefix, Verdict};
use tokio::task::JoinSet;

use crate::broker::{BrokerError, EmbeddedBroker};
use crate::dashboard::{Dashboard, FleetView};
use crate::device::{DeviceEnv, DeviceSpec, SimDevice};
use crate::fleet::demo_fleet;

/// How long the demo waits for presence after every state arrived.
const STATUS_GRACE: Duration = Duration::from_secs(2);
/// Where the demo's dashboard listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8080);
/// How long the controller may take to subscribe before the devices start anyway.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(10);

/// What the demo runs against.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub devices: usize,
    /// An external broker; `None` starts the embedded one.
    pub broker: Option<BrokerUrl>,
    /// How long to wait for all states.
    pub timeout: Duration,
    pub topic_prefix: TopicPrefix,
}

/// The controller of a [`serve`]d demo.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where the dashboard listens; `None`: [`DEFAULT_LISTEN`], or a free port if that is taken.
    pub listen: Option<SocketAddr>,
    /// The controller's database; `None`: a file in a temporary directory, deleted at the end.
    pub database: Option<PathBuf>,
    /// How often each device reports on its own (commands make it report at once).
    pub report_interval: Duration,
}

/// What the demo saw.
#[derive(Debug)]
pub struct DemoReport {
    pub broker: BrokerUrl,
    pub embedded: bool,
    pub fleet: Vec<DeviceSpec>,
    pub view: FleetView,
    /// Devices whose state of this run arrived.
    pub arrived: usize,
    pub elapsed: Duration,
    pub timeout: Duration,
}

impl DemoReport {
    pub fn complete(&self) -> bool {
        self.arrived == self.fleet.len()
    }
}

/// Why the demo could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("the controller could not start: {0}")]
    Controller(#[from] roomready_controller::StartError),
    #[error("the controller's database directory: {0}")]
    Database(std::io::Error),
}

/// The broker, the devices and the dashboard of one demo run.
struct World {
    embedded: Option<EmbeddedBroker>,
    broker: BrokerUrl,
    dashboard: Dashboard,
    fleet: Vec<DeviceSpec>,
    devices: Vec<SimDevice>,
    /// The wall-clock start: states older than this are leftovers of an earlier run.
    started: Timestamp,
    clock_start: Instant,
}

impl World {
    /// Starts the embedded broker unless `options` names one.
    async fn broker(
        options: &DemoOptions,
    ) -> Result<(Option<EmbeddedBroker>, BrokerUrl), DemoError> {
        Ok(match &options.broker {
            Some(url) => (None, url.clone()),
            None => {
                let broker = EmbeddedBroker::start().await?;
                let url = broker.url();
                (Some(broker), url)
            }
        })
    }

    /// Subscribes like a dashboard, then starts the devices.
    fn start(
        options: &DemoOptions,
        embedded: Option<EmbeddedBroker>,
        broker: BrokerUrl,
        report_interval: Option<Duration>,
    ) -> World {
        let started = SystemClock.now();
        let clock_start = Instant::now();
        let dashboard = Dashboard::connect(&broker, &options.topic_prefix);
        let mut env = DeviceEnv::new(broker.clone(), options.topic_prefix.clone());
        if let Some(interval) = report_interval {
            env.report_interval = interval;
        }
        let fleet = demo_fleet(options.devices);
        let devices = fleet
            .iter()
            .map(|spec| SimDevice::spawn(spec.clone(), &env))
            .collect();
        World {
            embedded,
            broker,
            dashboard,
            fleet,
            devices,
            started,
            clock_start,
        }
    }

    /// Waits up to `timeout` for every device's state (and then briefly for its presence).
    async fn wait(&mut self, timeout: Duration) -> (FleetView, usize, Duration) {
        let expected: Vec<_> = self.fleet.iter().map(|d| d.id.clone()).collect();
        let started = self.started;
        let view = match self
            .dashboard
            .wait_until(timeout, |v| {
                arrived_since(v, &expected, started) == expected.len()
            })
            .await
        {
            Ok(view) => view,
            Err(timed_out) => timed_out.0,
        };
        let elapsed = self.clock_start.elapsed();
        // Presence is published before the state, but a retained status and a live state can
        // cross in the broker: give the statuses of the devices that reported a moment to show.
        let view = if arrived_since(&view, &expected, started) == expected.len() {
            let reported = |v: &FleetView| {
                expected
                    .iter()
                    .all(|id| v.devices.get(id).is_some_and(|d| d.status.is_some()))
            };
            match self.dashboard.wait_until(STATUS_GRACE, reported).await {
                Ok(view) => view,
                Err(timed_out) => timed_out.0,
            }
        } else {
            view
        };
        let arrived = arrived_since(&view, &expected, started);
        (view, arrived, elapsed)
    }

    /// Waits for the fleet as [`World::wait`] does and says what arrived.
    async fn report(&mut self, options: &DemoOptions) -> DemoReport {
        let (view, arrived, elapsed) = self.wait(options.timeout).await;
        DemoReport {
            broker: self.broker.clone(),
            embedded: self.embedded.is_some(),
            fleet: self.fleet.clone(),
            view,
            arrived,
            elapsed,
            timeout: options.timeout,
        }
    }

    /// Stops the devices cleanly: each publishes its offline status.
    async fn stop_devices(&mut self) {
        let mut stopping = JoinSet::new();
        for device in self.devices.drain(..) {
            stopping.spawn(async move {
                let id = device.spec().id.clone();
                (id, device.shutdown().await)
            });
        }
        while let Some(joined) = stopping.join_next().await {
            match joined {
                Ok((_, Ok(()))) => {}
                Ok((id, Err(e))) => tracing::warn!(%id, %e, "device did not stop cleanly"),
                Err(e) => tracing::warn!(%e, "device stop task failed"),
            }
        }
    }

    /// Stops the devices that still run, then the broker.
    async fn stop(mut self) -> Result<(), DemoError> {
        self.stop_devices().await;
        drop(self.dashboard);
        if let Some(broker) = self.embedded {
            broker.stop().await?;
        }
        Ok(())
    }
}

/// Runs the demo once (no controller): waits for the states, stops, reports; an incomplete
/// fleet is reported, not an error.
pub async fn run(options: DemoOptions) -> Result<DemoReport, DemoError> {
    let (embedded, broker) = World::broker(&options).await?;
    // One report per device is all this run needs; later ones would only add traffic.
    let mut world = World::start(&options, embedded, broker, None);
    let report = world.report(&options).await;
    world.stop().await?;
    Ok(report)
}

/// What [`serve`] says as it goes.
pub trait Narrator {
    /// The controller's dashboard is up at `url`.
    fn dashboard(&mut self, url: &str, database: &std::path::Path, kept: bool);
    /// The fleet's first states arrived (or the wait timed out).
    fn fleet(&mut self, report: &DemoReport);
}

/// Runs the demo with the controller and keeps everything running until `shutdown` completes:
/// the broker, the devices (reporting every `report_interval` and answering commands) and the
/// dashboard. Then it stops the devices, the controller and the broker cleanly.
pub async fn serve(
    options: DemoOptions,
    serve: ServeOptions,
    narrator: &mut dyn Narrator,
    shutdown: impl Future<Output = ()>,
) -> Result<DemoReport, DemoError> {
    let (embedded, broker) = World::broker(&options).await?;
    // The database: the given file, or one in a directory removed when the demo ends.
    let (database, _temporary) = match &serve.database {
        Some(path) => (path.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("roomready-demo-")
                .tempdir()
                .map_err(DemoError::Database)?;
            (dir.path().join("controller.db"), Some(dir))
        }
    };
    let mut config = roomready_controller::config::Config::with_defaults(
        BrokerSettings {
            url: broker.clone(),
            tls: BrokerTls::default(),
            credentials: None,
            version: MqttVersion::V5,
        },
        database.clone(),
    );
    config.topic_prefix = options.topic_prefix.clone();
    config.listen = serve.listen.unwrap_or(DEFAULT_LISTEN);
    let controller = match roomready_controller::start(&config).await {
        Err(roomready_controller::StartError::Web(
            roomready_controller::web::ServerError::Bind { source, .. },
        )) if serve.listen.is_none() && source.kind() == std::io::ErrorKind::AddrInUse => {
            tracing::info!("{DEFAULT_LISTEN} is taken: the dashboard takes a free port");
            config.listen = SocketAddr::new(DEFAULT_LISTEN.ip(), 0);
            roomready_controller::start(&config).await
        }
        started => started,
    };
    let controller = match controller {
        Ok(controller) => controller,
        Err(e) => {
            if let Some(broker) = embedded {
                let _ = broker.stop().await;
            }
            return Err(e.into());
        }
    };
    narrator.dashboard(&controller.url(), &database, serve.database.is_some());
    // The controller's history starts with the devices' first reports: let it subscribe first
    // (a broker that does not answer in time only costs the first events, states are retained).
    let mut subscribed = controller.ingest_stats.subscribed.subscribe();
    let _ = tokio::time::timeout(SUBSCRIBE_WAIT, subscribed.wait_for(|s| *s)).await;

    let mut world = World::start(&options, embedded, broker, Some(serve.report_interval));
    let report = world.report(&options).await;
    narrator.fleet(&report);
    shutdown.await;
    // Devices first, so the controller records them going offline; the broker last.
    world.stop_devices().await;
    controller.stop().await;
    world.stop().await?;
    Ok(report)
}

/// How many of `expected` have a state made at or after `since` (older ones are retained
/// leftovers of an earlier run on the same broker).
pub fn arrived_since(view: &FleetView, expected: &[DeviceId], since: Timestamp) -> usize {
    expected
        .iter()
        .filter(|id| {
            view.devices
                .get(*id)
                .and_then(|d| d.state.as_ref())
                .is_some_and(|s| s.ts >= since)
        })
        .count()
}

/// The fleet table with totals per verdict, and what is missing if the fleet is incomplete.
pub fn render(report: &DemoReport) -> String {
    let mut rows = vec![[
        "DEVICE".to_owned(),
        "KIND".to_owned(),
        "APP VERSION".to_owned(),
        "OS BUILD".to_owned(),
        "VERDICT".to_owned(),
        "ONLINE".to_owned(),
    ]];
    let mut totals = [0usize; Verdict::ALL.len()];
    let mut missing = Vec::new();
    for spec in &report.fleet {
        let seen = report.view.devices.get(&spec.id);
        let state = seen.and_then(|d| d.state.as_ref());
        let online = match seen.and_then(|d| d.status.as_ref()).map(|s| s.status) {
            Some(Presence::Online) => "online",
            Some(Presence::Offline) => "offline",
            None => "-",
        };
        let verdict = match state {
            Some(state) => {
                let index = Verdict::ALL.iter().position(|v| *v == state.verdict);
                totals[index.expect("Verdict::ALL lists every verdict")] += 1;
                state.verdict.as_str()
            }
            None => {
                missing.push(spec.id.to_string());
                "(no state)"
            }
        };
        let shown = |v: Option<&String>| v.cloned().unwrap_or_else(|| "-".to_owned());
        rows.push([
            spec.id.to_string(),
            spec.kind.to_string(),
            shown(state.and_then(|s| s.facts.app_version.as_ref())),
            shown(state.and_then(|s| s.facts.os_build.as_ref())),
            verdict.to_owned(),
            online.to_owned(),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let where_ = if report.embedded {
        "embedded broker"
    } else {
        "broker"
    };
    let _ = writeln!(out, "{where_} {}\n", report.broker);
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    let totals: Vec<String> = Verdict::ALL
        .iter()
        .zip(totals)
        .map(|(v, n)| format!("{n} {v}"))
        .collect();
    let _ = writeln!(
        out,
        "\n{} devices: {}",
        report.fleet.len(),
        totals.join(", ")
    );
    if report.complete() {
        let _ = writeln!(
            out,
            "all {} states arrived in {} ms",
            report.fleet.len(),
            report.elapsed.as_millis()
        );
    } else {
        let _ = writeln!(
            out,
            "timed out after {} s: {} of {} states arrived; missing: {}",
            report.timeout.as_secs(),
            report.arrived,
            report.fleet.len(),
            missing.join(", ")
        );
        if !report.view.connected {
            let reason = report.view.last_error.as_deref().unwrap_or("no answer");
            let _ = writeln!(
                out,
                "the dashboard could not connect to {}: {reason}",
                report.broker
            );
        }
        for error in &report.view.decode_errors {
            let _ = writeln!(out, "undecodable payload: {error}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use roomready_protocol::{DeviceFacts, DeviceKind, State};

    use super::*;
    use crate::dashboard::DeviceView;

    fn state(id: &DeviceId, ms: u64) -> State {
        State {
            device: id.clone(),
            seq: 1,
            ts: Timestamp::from_unix_ms(ms),
            agent_version: "0".into(),
            facts: DeviceFacts {
                kind: DeviceKind::SurfaceHub,
                app_version: None,
                os_build: None,
            },
            verdict: Verdict::Ready,
            findings: vec![],
            endpoints: vec![],
            placement: Default::default(),
            observed: None,
        }
    }

    #[test]
    fn states_of_an_earlier_run_do_not_count() {
        let ids: Vec<DeviceId> = ["a", "b", "c"]
            .into_iter()
            .map(|s| DeviceId::new(s).expect("valid"))
            .collect();
        let mut view = FleetView::default();
        let since = Timestamp::from_unix_ms(1_000);
        view.devices.insert(
            ids[0].clone(),
            DeviceView {
                state: Some(state(&ids[0], 999)),
                status: None,
                ..DeviceView::default()
            },
        );
        view.devices.insert(
            ids[1].clone(),
            DeviceView {
                state: Some(state(&ids[1], 1_000)),
                status: None,
                ..DeviceView::default()
            },
        );
        view.devices.insert(ids[2].clone(), DeviceView::default());
        let other = DeviceId::new("not-in-fleet").expect("valid");
        view.devices.insert(
            other.clone(),
            DeviceView {
                state: Some(state(&other, 5_000)),
                status: None,
                ..DeviceView::default()
            },
        );
        assert_eq!(arrived_since(&view, &ids, since), 1);
    }
}
