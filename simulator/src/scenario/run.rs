//! Running a scenario: everything it needs is started in this process (the embedded broker
//! unless `--broker` names another, the endpoint farm, the update server with a signed release,
//! a dashboard subscriber), then the devices are started at `ramp_per_sec`, the timeline's steps
//! run at their times, and the expectations are judged every 100 ms against what the dashboard
//! saw. The run ends when the timeline is over and every expectation holds, or `timeout` after
//! the timeline (or the ramp-up) ended, whichever comes first (with `hold`: at SIGINT or
//! SIGTERM, however long that is); then each expectation passes if it holds, and held early
//! enough for its `within`.
//!
//! A command (`check_now`, `update`) goes to each device once the dashboard has seen it
//! `online` (which it publishes after subscribing to its commands): a device still starting or
//! reconnecting gets it when it is back, instead of losing it to a clean session.
//!
//! Faults that need control over the broker (`broker_down`) cannot be applied to an external
//! broker: they are reported as skipped, never silently passed.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roomready_agent::config::BrokerUrl;
use roomready_protocol::{DeviceId, Presence, TopicPrefix};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::dashboard::{Dashboard, DashboardOptions, FleetView};
use crate::device::{DeviceEnv, SimDevice, SimUpdate};
use crate::farm::{EndpointFarm, FarmError};
use crate::scenario::broker::{ManagedBroker, ManagedBrokerError, Placement, fits_in_process};
use crate::scenario::expect::{self, UPDATE_ID_PREFIX};
use crate::scenario::fleet;
use crate::scenario::model::{Action, Scenario, Step};
use crate::update_server::UpdateServer;
use roomready_feed::Channel;
use roomready_feed::keys::{decode_verifying_key, keygen};
use roomready_feed::publish::{ReleaseOptions, release};

/// How often the expectations are judged.
const JUDGE_EVERY: Duration = Duration::from_millis(100);
/// The ramp-up's tick: each starts `ramp_per_sec / 100` devices.
const RAMP_TICK: Duration = Duration::from_millis(10);

/// How a run is made.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Overrides the scenario's seed.
    pub seed: Option<u64>,
    /// An external broker instead of the embedded one.
    pub broker: Option<BrokerUrl>,
    /// Draw a progress bar on stderr while devices ramp up (only when stderr is a terminal).
    pub progress: bool,
    /// Where the embedded broker runs.
    pub broker_process: BrokerProcess,
    /// Keep the fleet up after the run would have ended (every expectation holding, or the
    /// timeout), until SIGINT or SIGTERM; then judge and report as usual. For a controller run
    /// against the fleet from outside (tests/bench/rollout.sh).
    pub hold: bool,
}

/// Where the embedded broker runs: in this process, or in a child process of the
/// `roomready-sim` executable given (see [`crate::scenario::broker`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BrokerProcess {
    #[default]
    InProcess,
    /// In a child when the fleet's connections would not fit in this process's open-file limit.
    ChildWhenNeeded(std::path::PathBuf),
    Child(std::path::PathBuf),
}

/// Why a run could not be made (as opposed to made and failed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Broker(#[from] ManagedBrokerError),
    #[error("endpoint farm: {0}")]
    Farm(#[from] FarmError),
    #[error("update server: {0}")]
    Update(String),
    #[error("the dashboard could not subscribe to {broker} within 30 s: {reason}")]
    Dashboard { broker: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Pass, fail, or not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skipped => "skipped",
        }
    }
}

/// One expectation's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpectationResult {
    pub name: String,
    pub expected: String,
    pub observed: String,
    pub status: Status,
    /// Since when (ms after the start) it held without a break until the end, if it did.
    pub held_from_ms: Option<u64>,
    /// More on a failure than the counts say (it held too late, or not at the end).
    pub note: Option<String>,
}

/// One timeline step's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepResult {
    pub at_ms: u64,
    pub action: &'static str,
    /// What it applied to.
    pub target: String,
    pub status: Status,
    pub note: Option<String>,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub file: String,
    pub seed: u64,
    /// `embedded` or the external broker's URL.
    pub broker: String,
    pub devices: u64,
    /// When the last device was started (ms after the start).
    pub ramp_ms: u64,
    /// When every expectation first held at once (ms after the start), if they did.
    pub converged_ms: Option<u64>,
    pub elapsed_ms: u64,
    /// Messages the dashboard received.
    pub messages: u64,
    pub expectations: Vec<ExpectationResult>,
    pub steps: Vec<StepResult>,
}

impl Outcome {
    /// Whether every expectation passed.
    pub fn passed(&self) -> bool {
        self.expectations.iter().all(|e| e.status == Status::Pass)
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Raises the soft limit on open files to the hard limit when `devices` need more than the
/// soft one allows (each device holds a broker connection, and probes open more); returns the
/// soft limit then in force (`u64::MAX` where there is none).
pub fn raise_fd_limit(devices: u64) -> u64 {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we own and reads nothing else.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return u64::MAX;
        }
        let wanted = devices.saturating_mul(2).saturating_add(512);
        if limit.rlim_cur >= wanted || limit.rlim_cur >= limit.rlim_max {
            return limit.rlim_cur;
        }
        let old = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } == 0 {
            tracing::info!(
                from = old,
                to = limit.rlim_cur,
                "raised the open-file limit"
            );
        }
        let mut now = limit;
        // SAFETY: as above.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut now) } != 0 {
            return limit.rlim_cur;
        }
        now.rlim_cur
    }
    #[cfg(not(unix))]
    {
        let _ = devices;
        u64::MAX
    }
}

/// The broker the run uses: embedded (restartable, in process or a child) or external.
enum Broker {
    Embedded {
        managed: Arc<Mutex<ManagedBroker>>,
        addr: SocketAddr,
    },
    External(BrokerUrl),
}

/// Runs `scenario`.
pub async fn run(scenario: &Scenario, options: &RunOptions) -> Result<Outcome, RunError> {
    // Listening from the start: a signal during the set-up ends the run, not the process.
    let held = options.hold.then(roomready_controller::shutdown_signal);
    let fd_limit = raise_fd_limit(scenario.devices());
    let seed = options.seed.unwrap_or(scenario.seed);
    let scratch = tempfile::tempdir()?;
    let outages = scenario
        .timeline
        .iter()
        .any(|s| s.action == Action::BrokerDown);
    let broker = match &options.broker {
        Some(url) => Broker::External(url.clone()),
        None => {
            // With outages, sessions and queued messages must survive the restart, as on a
            // production broker with persistence; otherwise memory is faster.
            let storage = outages.then(|| scratch.path().join("broker"));
            let placement = match &options.broker_process {
                BrokerProcess::Child(exe) => Placement::Child(exe.clone()),
                BrokerProcess::ChildWhenNeeded(exe)
                    if !fits_in_process(scenario.devices(), fd_limit) =>
                {
                    tracing::info!(
                        devices = scenario.devices(),
                        fd_limit,
                        "the embedded broker runs in a child process: both ends of every \
                         connection would not fit in this one"
                    );
                    Placement::Child(exe.clone())
                }
                _ => Placement::InProcess,
            };
            let managed = ManagedBroker::start(placement, storage).await?;
            Broker::Embedded {
                addr: managed.addr(),
                managed: Arc::new(Mutex::new(managed)),
            }
        }
    };
    let url = match &broker {
        Broker::Embedded { addr, .. } => BrokerUrl {
            host: addr.ip().to_string(),
            port: addr.port(),
            tls: false,
        },
        Broker::External(url) => url.clone(),
    };
    let farm = if scenario.endpoints.is_empty() {
        None
    } else {
        Some(Arc::new(
            EndpointFarm::start(scenario.endpoints.clone()).await?,
        ))
    };
    // A prefix of its own, so that retained messages of other runs on an external broker
    // are not mistaken for this run's.
    let prefix = TopicPrefix::new(format!("sim{}s{seed}", std::process::id()))
        .expect("letters and digits make a valid prefix");
    let mut dashboard = Dashboard::connect_with(
        &url,
        &prefix,
        &DashboardOptions {
            persistent: outages,
            ..DashboardOptions::default()
        },
    );
    dashboard
        .wait_subscribed(Duration::from_secs(30))
        .await
        .map_err(|timed_out| RunError::Dashboard {
            broker: format!("{}:{}", url.host, url.port),
            reason: timed_out.0.last_error.unwrap_or_else(|| "no answer".into()),
        })?;

    let mut env = DeviceEnv::new(url.clone(), prefix.clone());
    env.report_interval = scenario.report_interval;
    if let Some(farm) = &farm {
        env.probe_settings = Some(farm.probe_settings(scenario.probe_timeout)?);
    }
    // Groups with `update = true` get the update server's signed release.
    let updates = match &scenario.update_version {
        None => None,
        Some(version) => Some(start_updates(scratch.path(), version).await?),
    };
    let update_env = updates.as_ref().map(|(server, key)| DeviceEnv {
        update: Some(SimUpdate::manifest(
            &server.url(),
            vec![*key],
            scratch.path().join("devices"),
        )),
        ..env.clone()
    });
    let server = updates.map(|(server, _)| Arc::new(server));
    let endpoints = farm
        .as_ref()
        .map(|f| f.agent_endpoints())
        .unwrap_or_default();
    let devices = fleet::expand(scenario, seed, &endpoints);
    let mut members: Vec<Vec<DeviceId>> = vec![Vec::new(); scenario.groups.len()];
    for d in &devices {
        members[d.group].push(d.spec.id.clone());
    }
    let everyone: Vec<DeviceId> = devices.iter().map(|d| d.spec.id.clone()).collect();
    let scope = |group: &Option<String>| -> Vec<DeviceId> {
        match group {
            None => everyone.clone(),
            Some(name) => scenario
                .groups
                .iter()
                .position(|g| &g.name == name)
                .map(|i| members[i].clone())
                .unwrap_or_default(),
        }
    };
    let judged: Vec<(usize, Vec<DeviceId>)> = scenario
        .expectations
        .iter()
        .enumerate()
        .map(|(i, e)| (i, scope(&e.group)))
        .collect();

    let view = dashboard.watch();
    let progress = Progress::new(options.progress, everyone.len());
    let start = Instant::now();
    let per_tick = (usize::try_from(scenario.ramp_per_sec).unwrap_or(usize::MAX) / 100).max(1);
    let mut pending = devices.into_iter();
    let mut running: Vec<SimDevice> = Vec::with_capacity(everyone.len());
    let mut ramp_done: Option<Duration> = None;
    let mut steps = scenario.timeline.iter().enumerate().peekable();
    let mut step_results: Vec<StepResult> = Vec::new();
    let mut faults: JoinSet<()> = JoinSet::new();
    // Commands waiting for their device to be online: (step result index, device, payload).
    let mut deferred: Vec<(usize, DeviceId, Arc<Vec<u8>>)> = Vec::new();
    let mut held_from: Vec<Option<Duration>> = vec![None; scenario.expectations.len()];
    let mut converged: Option<Duration> = None;
    let mut next_judgement = start;
    let mut tick = tokio::time::interval(RAMP_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut stop = std::pin::pin!(async move {
        match held {
            Some(signal) => signal.await,
            None => std::future::pending().await,
        }
    });
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => break,
        }
        let now = start.elapsed();
        // Timeline first: a step at 0s (a broker down from the start) comes before any device.
        while let Some((index, step)) = steps.next_if(|(_, s)| s.at <= now) {
            if let Some(payload) = command_payload(index, step) {
                let payload = Arc::new(payload);
                for device in scope(&step.group) {
                    deferred.push((step_results.len(), device, Arc::clone(&payload)));
                }
            }
            let result = apply(
                step,
                Targets {
                    broker: &broker,
                    farm: farm.as_ref(),
                    updates: server.as_ref(),
                },
                &mut faults,
            )
            .await;
            step_results.push(result);
        }
        // Ramp-up.
        if ramp_done.is_none() {
            for device in pending.by_ref().take(per_tick) {
                let env = match &update_env {
                    Some(update_env) if scenario.groups[device.group].update => update_env,
                    _ => &env,
                };
                running.push(SimDevice::spawn(device.spec, env));
            }
            if running.len() == everyone.len() {
                ramp_done = Some(now);
            }
        }
        while faults.try_join_next().is_some() {}
        // Commands to devices now online.
        if !deferred.is_empty() {
            let ready: Vec<(usize, DeviceId, Arc<Vec<u8>>)> = {
                let seen = view.borrow();
                let online = |id: &DeviceId| {
                    seen.devices
                        .get(id)
                        .and_then(|d| d.status.as_ref())
                        .is_some_and(|s| s.status == Presence::Online)
                };
                let (ready, waiting) = deferred.drain(..).partition(|(_, id, _)| online(id));
                deferred = waiting;
                ready
            };
            for (step, device, payload) in ready {
                if dashboard.command(&device, payload.to_vec()).await.is_err() {
                    let result = &mut step_results[step];
                    result.status = Status::Fail;
                    result.note = Some(format!("cannot send the command to {device}"));
                }
            }
        }
        // Judgement.
        if Instant::now() < next_judgement {
            continue;
        }
        next_judgement = Instant::now() + JUDGE_EVERY;
        let all_hold = {
            let seen = view.borrow();
            progress.draw(running.len(), reported(&seen, &everyone));
            let mut all = true;
            for (i, ids) in &judged {
                let holds = expect::judge(&scenario.expectations[*i].check, ids, &seen).holds;
                match (holds, held_from[*i]) {
                    (true, None) => held_from[*i] = Some(now),
                    (false, Some(_)) => held_from[*i] = None,
                    _ => {}
                }
                all &= holds;
            }
            all
        };
        if all_hold && ramp_done.is_some() {
            converged.get_or_insert(now);
        } else if !all_hold {
            converged = None;
        }
        let timeline_over = steps.peek().is_none()
            && faults.is_empty()
            && deferred.is_empty()
            && now >= scenario.timeline_end();
        let Some(ramped) = ramp_done else {
            continue;
        };
        if timeline_over && all_hold && !options.hold {
            break;
        }
        let timeline_done = steps.peek().is_none() && faults.is_empty();
        if timeline_done
            && now >= ramped.max(scenario.timeline_end()) + scenario.timeout
            && !options.hold
        {
            break;
        }
    }
    progress.clear();
    for (step, device, _) in &deferred {
        let result = &mut step_results[*step];
        result.status = Status::Fail;
        let unsent = deferred.iter().filter(|(s, _, _)| s == step).count();
        result.note = Some(format!(
            "{unsent} devices (first: {device}) never came online to receive it"
        ));
    }
    let elapsed = start.elapsed();
    let seen = view.borrow().clone();
    let expectations = scenario
        .expectations
        .iter()
        .zip(&judged)
        .zip(&held_from)
        .map(|((e, (_, ids)), held)| {
            let judgement = expect::judge(&e.check, ids, &seen);
            let (status, note) = match (judgement.holds, held, e.within) {
                (false, _, _) | (true, None, _) => (
                    Status::Fail,
                    Some(format!(
                        "did not hold at the end ({} after the start)",
                        super::fmt_duration(elapsed)
                    )),
                ),
                (true, Some(from), Some(within)) if *from > within => (
                    Status::Fail,
                    Some(format!(
                        "held only from {}, expected within {}",
                        super::fmt_duration(*from),
                        super::fmt_duration(within)
                    )),
                ),
                (true, Some(_), _) => (Status::Pass, None),
            };
            let mut expected = judgement.expected;
            if let Some(within) = e.within {
                expected.push_str(&format!(" within {}", super::fmt_duration(within)));
            }
            ExpectationResult {
                name: e.name.clone(),
                expected,
                observed: judgement.observed,
                status,
                held_from_ms: held.map(ms),
                note,
            }
        })
        .collect();
    // Tear down: devices first (killed: a clean shutdown of thousands only adds time), then
    // what they used.
    for device in running {
        device.kill();
    }
    faults.shutdown().await;
    drop(dashboard);
    if let Some(farm) = farm
        && let Ok(farm) = Arc::try_unwrap(farm)
    {
        farm.stop().await;
    }
    if let Some(server) = server
        && let Ok(server) = Arc::try_unwrap(server)
    {
        server.stop().await;
    }
    if let Broker::Embedded { managed, .. } = &broker {
        managed.lock().await.stop().await;
    }
    Ok(Outcome {
        scenario: scenario.name.clone(),
        file: scenario.file.display().to_string(),
        seed,
        broker: match &options.broker {
            None => "embedded".into(),
            Some(url) => url.to_string(),
        },
        devices: scenario.devices(),
        ramp_ms: ramp_done.map_or(0, ms),
        converged_ms: converged.map(ms),
        elapsed_ms: ms(elapsed),
        messages: seen.messages,
        expectations,
        steps: step_results,
    })
}

/// The update server for `version`: a fresh signing key, and a release of a script "binary"
/// that passes the installer's self-test (see [`SimUpdate`]), published to a feed under `dir`.
async fn start_updates(
    dir: &std::path::Path,
    version: &semver::Version,
) -> Result<(UpdateServer, [u8; 32]), RunError> {
    let failed = |e: &dyn std::fmt::Display| RunError::Update(e.to_string());
    let keys = keygen(&dir.join("keys")).map_err(|e| failed(&e))?;
    let key = decode_verifying_key(&keys.verifying_key_b64).map_err(|e| failed(&e))?;
    let feed = dir.join("feed");
    std::fs::create_dir_all(&feed)?;
    let bin = dir.join("release-binary");
    std::fs::write(
        &bin,
        format!("#!/bin/sh\n# roomready-agent {version} (simulated)\nexit 0\n"),
    )?;
    release(&ReleaseOptions {
        key: keys.signing_key,
        bin,
        version: version.to_string(),
        target: roomready_feed::this_target().into(),
        channel: Channel::Stable,
        feed: feed.clone(),
    })
    .map_err(|e| failed(&e))?;
    let server = UpdateServer::start(feed).await?;
    Ok((server, key))
}

fn reported(view: &FleetView, devices: &[DeviceId]) -> usize {
    devices
        .iter()
        .filter(|id| view.devices.get(*id).is_some_and(|d| d.state.is_some()))
        .count()
}

/// The command a `check_now` or `update` step sends (the same id to every device).
fn command_payload(index: usize, step: &Step) -> Option<Vec<u8>> {
    let payload = match step.action {
        Action::Update => serde_json::json!({
            "schema": "roomready.command/1",
            "id": format!("{UPDATE_ID_PREFIX}{index}"),
            "command": "update",
            "version": step.version,
        }),
        Action::CheckNow => serde_json::json!({
            "schema": "roomready.command/1",
            "id": format!("scenario-check-{index}"),
            "command": "check_now",
        }),
        _ => return None,
    };
    Some(payload.to_string().into_bytes())
}

/// What timeline steps act on.
struct Targets<'a> {
    broker: &'a Broker,
    farm: Option<&'a Arc<EndpointFarm>>,
    updates: Option<&'a Arc<UpdateServer>>,
}

/// Carries out one timeline step; faults that last run on in `faults`.
async fn apply(step: &Step, targets: Targets<'_>, faults: &mut JoinSet<()>) -> StepResult {
    let Targets {
        broker,
        farm,
        updates,
    } = targets;
    let mut result = StepResult {
        at_ms: ms(step.at),
        action: step.action.as_str(),
        target: String::new(),
        status: Status::Pass,
        note: None,
    };
    let lasting = step.duration.unwrap_or_default();
    match step.action {
        Action::BrokerDown => {
            result.target = "broker".into();
            match broker {
                Broker::External(url) => {
                    result.status = Status::Skipped;
                    result.note = Some(format!(
                        "the broker {url} is external: it cannot be stopped from here"
                    ));
                }
                Broker::Embedded { managed, addr } => {
                    // Stopped before anything else happens at this moment; back after `for`.
                    managed.lock().await.stop().await;
                    tracing::info!(%addr, "broker_down");
                    let managed = Arc::clone(managed);
                    faults.spawn(async move {
                        tokio::time::sleep(lasting).await;
                        if let Err(e) = managed.lock().await.start_again().await {
                            tracing::error!(%e, "broker_down: restarting");
                        }
                    });
                }
            }
        }
        Action::EndpointDown => {
            let name = step.endpoint.clone().unwrap_or_default();
            result.target = name.clone();
            match farm {
                None => {
                    result.status = Status::Skipped;
                    result.note = Some("the scenario has no endpoints".into());
                }
                Some(farm) => {
                    let farm = Arc::clone(farm);
                    let lasting = step.duration;
                    faults.spawn(async move {
                        if let Err(e) = farm.set_down(&name, true).await {
                            tracing::error!(%e, "endpoint_down");
                            return;
                        }
                        let Some(lasting) = lasting else {
                            return;
                        };
                        tokio::time::sleep(lasting).await;
                        if let Err(e) = farm.set_down(&name, false).await {
                            tracing::error!(%e, "endpoint_down: back up");
                        }
                    });
                }
            }
        }
        Action::CorruptArtifact => {
            result.target = "update server".into();
            match updates {
                // The scenario's checks make this impossible; say so rather than pass.
                None => {
                    result.status = Status::Skipped;
                    result.note = Some("the scenario has no [update] release".into());
                }
                Some(server) => {
                    server.corrupt_artifacts(true);
                    if let Some(lasting) = step.duration {
                        let server = Arc::clone(server);
                        faults.spawn(async move {
                            tokio::time::sleep(lasting).await;
                            server.corrupt_artifacts(false);
                        });
                    }
                }
            }
        }
        Action::CheckNow | Action::Update => {
            // Sent by the run loop as each device comes online.
            result.target = step.group.clone().unwrap_or_else(|| "all devices".into());
        }
    }
    result
}

/// The ramp-up progress bar, drawn on stderr when it is a terminal.
struct Progress {
    on: bool,
    total: usize,
}

impl Progress {
    fn new(wanted: bool, total: usize) -> Self {
        Progress {
            on: wanted && std::io::stderr().is_terminal(),
            total,
        }
    }

    fn draw(&self, started: usize, reported: usize) {
        if !self.on || self.total == 0 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = WIDTH * reported / self.total;
        let bar: String = "#".repeat(filled) + &".".repeat(WIDTH - filled);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{bar}] {started}/{} started, {reported} reported",
            self.total
        );
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
