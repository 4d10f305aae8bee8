//! `roomready-sim demo`: a broker, a fleet of simulated devices and a dashboard, end to end.
//!
//! Starts the embedded broker (or uses `--broker`), starts the devices, subscribes like a
//! dashboard, and waits until every device's state of *this* run has arrived (states retained
//! on an external broker from an earlier run are older than the start and do not count). Then
//! it stops the devices cleanly and renders the fleet table.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use roomready_agent::clock::{Clock, SystemClock};
use roomready_agent::config::BrokerUrl;
use roomready_protocol::{DeviceId, Presence, Timestamp, TopicPrefix, Verdict};
use tokio::task::JoinSet;

use crate::broker::{BrokerError, EmbeddedBroker};
use crate::dashboard::{Dashboard, FleetView};
use crate::device::{DeviceEnv, DeviceSpec, SimDevice};
use crate::fleet::demo_fleet;

/// How long the demo waits for presence after every state arrived.
const STATUS_GRACE: Duration = Duration::from_secs(2);

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
}

/// Runs the demo; an incomplete fleet is reported, not an error.
pub async fn run(options: DemoOptions) -> Result<DemoReport, DemoError> {
    let started = SystemClock.now();
    let clock_start = Instant::now();
    let embedded = match &options.broker {
        Some(_) => None,
        None => Some(EmbeddedBroker::start().await?),
    };
    let broker = match (&options.broker, &embedded) {
        (Some(url), _) => url.clone(),
        (None, Some(b)) => b.url(),
        (None, None) => unreachable!("an embedded broker was started when none was given"),
    };
    let mut dashboard = Dashboard::connect(&broker, &options.topic_prefix);
    // One report per device is all the demo needs; later ones would only add traffic.
    let env = DeviceEnv::new(broker.clone(), options.topic_prefix.clone());
    let fleet = demo_fleet(options.devices);
    let devices: Vec<SimDevice> = fleet
        .iter()
        .map(|spec| SimDevice::spawn(spec.clone(), &env))
        .collect();

    let expected: Vec<_> = fleet.iter().map(|d| d.id.clone()).collect();
    let view = match dashboard
        .wait_until(options.timeout, |v| {
            arrived_since(v, &expected, started) == expected.len()
        })
        .await
    {
        Ok(view) => view,
        Err(timed_out) => timed_out.0,
    };
    let elapsed = clock_start.elapsed();
    // Presence is published before the state, but a retained status and a live state can cross
    // in the broker: give the statuses of the devices that reported a moment to show up.
    let view = if arrived_since(&view, &expected, started) == expected.len() {
        let reported = |v: &FleetView| {
            expected
                .iter()
                .all(|id| v.devices.get(id).is_some_and(|d| d.status.is_some()))
        };
        match dashboard.wait_until(STATUS_GRACE, reported).await {
            Ok(view) => view,
            Err(timed_out) => timed_out.0,
        }
    } else {
        view
    };
    let arrived = arrived_since(&view, &expected, started);

    let mut stopping = JoinSet::new();
    for device in devices {
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
    drop(dashboard);
    if let Some(broker) = embedded {
        broker.stop().await?;
    }
    Ok(DemoReport {
        broker,
        embedded: options.broker.is_none(),
        fleet,
        view,
        arrived,
        elapsed,
        timeout: options.timeout,
    })
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
