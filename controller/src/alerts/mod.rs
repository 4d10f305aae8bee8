//! Alerts: the controller tells the admins' own channel (a webhook: generic JSON, or a
//! Microsoft Teams incoming webhook) when a room's verdict worsens, a device stays offline, its
//! messages go missing, an endpoint certificate nears its expiry or a rollout halts.
//!
//! - [`settings`]: the `alert_*` config keys;
//! - [`rules`]: what each rule raises from what the store holds (pure);
//! - [`webhook`]: the bodies and the POST;
//! - [`start`]: the task that runs them: it reads the store (history after its cursor and the
//!   devices' standing), records the alerts raised together with the cursor (so a restart
//!   neither repeats nor loses one), groups the pending ones for [`AlertSettings::group`], sends
//!   them in one message and records the result, retrying with backoff.
//!
//! Deduplicated twice: an alert about the same thing (the same verdict change, offline spell,
//! gap count, certificate) is raised once, and a rule raises nothing for a device within
//! [`AlertSettings::quiet`] of its last alert. Devices under maintenance (`alert_suppress`) are
//! recorded as suppressed, never sent.

pub mod rules;
pub mod settings;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use settings::{AlertSettings, Format, Suppress};

use roomready_protocol::Timestamp;

use crate::clock;
use crate::store::{AlertOutcome, Store, StoreError, on_pool};

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A device's verdict became worse: to at_risk or not_ready.
    VerdictWorse,
    /// A device has been offline longer than `alert_offline_minutes`.
    Offline,
    /// A device's messages are missing: a `seq` gap nothing explains, or `records_dropped`.
    SeqGap,
    /// An endpoint certificate a device probes expires within `alert_cert_days`.
    CertExpiring,
    /// A rollout halted by itself: failures in a ring passed its plan's threshold.
    RolloutHalted,
}

impl Rule {
    pub const ALL: [Rule; 5] = [
        Rule::VerdictWorse,
        Rule::Offline,
        Rule::SeqGap,
        Rule::CertExpiring,
        Rule::RolloutHalted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Rule::VerdictWorse => "verdict_worse",
            Rule::Offline => "offline",
            Rule::SeqGap => "seq_gap",
            Rule::CertExpiring => "cert_expiring",
            Rule::RolloutHalted => "rollout_halted",
        }
    }

    pub fn parse(text: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

/// How often the rules look at the store when nothing was committed.
const TICK: Duration = Duration::from_secs(5);
/// The least time between two looks at the store when commits wake the task.
const MIN_GAP: Duration = Duration::from_millis(250);
/// How often endpoint certificates are looked at (they change by the day).
const CERT_EVERY: Duration = Duration::from_secs(600);
/// Alerts in one message at most; the rest go in the next.
pub const MAX_PER_MESSAGE: u64 = 100;
/// Deliveries tried before an alert is given up as failed.
pub const MAX_ATTEMPTS: u32 = 8;
/// The first retry's delay; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The task's name for [`Store::lead`].
const TASK: &str = "alerts";

/// Runs the alert rules and deliveries until aborted. `commits` wakes it when ingest commits;
/// `changed` counts every change it makes to the store's alerts (raised, or a delivery attempt
/// ended), for whoever waits on them.
pub fn start(
    store: Arc<dyn Store>,
    settings: AlertSettings,
    mut commits: watch::Receiver<u64>,
    changed: watch::Sender<u64>,
) -> JoinHandle<()> {
    tracing::info!(
        webhook = %settings.webhook_host(),
        rules = ?settings.rules.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "alerts on"
    );
    tokio::spawn(async move {
        let settings = Arc::new(settings);
        let mut last_certs: Option<tokio::time::Instant> = None;
        let mut failures: u32 = 0;
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            let round = tokio::time::Instant::now();
            // On a database shared by several controllers, one of them raises and delivers.
            let lead = Arc::clone(&store);
            match on_pool(move || lead.lead(TASK)).await {
                Ok(true) => {}
                Ok(false) => {
                    tokio::time::sleep(TICK).await;
                    continue;
                }
                Err(e) => {
                    tracing::warn!("alerts: {e}");
                    tokio::time::sleep(TICK).await;
                    continue;
                }
            }
            let certs_due = last_certs.is_none_or(|t| t.elapsed() >= CERT_EVERY);
            match evaluate(&store, &settings, certs_due).await {
                Ok(recorded) => {
                    if certs_due {
                        last_certs = Some(tokio::time::Instant::now());
                    }
                    if recorded > 0 {
                        changed.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => tracing::warn!("alert rules: {e}"),
            }
            let now = tokio::time::Instant::now();
            let mut wait = TICK;
            if retry_at.is_none_or(|at| at <= now) {
                let delivered = deliver(&store, &settings).await;
                if matches!(delivered, Ok(Delivery::Sent | Delivery::Failed)) {
                    changed.send_modify(|n| *n += 1);
                }
                match delivered {
                    Ok(Delivery::Idle) => {
                        failures = 0;
                        retry_at = None;
                    }
                    Ok(Delivery::Sent) => {
                        failures = 0;
                        retry_at = None;
                        // More may be pending: go on at once.
                        wait = Duration::ZERO;
                    }
                    Ok(Delivery::Waiting(left)) => wait = wait.min(left),
                    Ok(Delivery::Failed) => {
                        failures = failures.saturating_add(1);
                        let backoff = FIRST_BACKOFF
                            .saturating_mul(1 << failures.saturating_sub(1).min(16))
                            .min(MAX_BACKOFF);
                        retry_at = Some(now + backoff);
                        wait = wait.min(backoff);
                    }
                    Err(e) => tracing::warn!("alert delivery: {e}"),
                }
            } else if let Some(at) = retry_at {
                wait = wait.min(at - now);
            }
            tokio::select! {
                changed = commits.changed() => {
                    if changed.is_err() {
                        // The controller is stopping; deliveries end with the task.
                        tokio::time::sleep(wait).await;
                    }
                    // A busy ingest commits many times a second: look at most every MIN_GAP.
                    tokio::time::sleep(MIN_GAP.saturating_sub(round.elapsed()).min(wait)).await;
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
    })
}

/// Reads the store, raises what the rules find and records it with the history cursor.
async fn evaluate(
    store: &Arc<dyn Store>,
    settings: &Arc<AlertSettings>,
    certs_due: bool,
) -> Result<u64, StoreError> {
    let store = Arc::clone(store);
    let settings = Arc::clone(settings);
    on_pool(move || {
        let now = clock::now();
        let offline_before = earlier(now, settings.offline_after);
        let certs_before = (certs_due && settings.rules.contains(&Rule::CertExpiring))
            .then(|| later(now, Duration::from_secs(settings.cert_days * 86_400)));
        let scan = store.alert_scan(offline_before, certs_before)?;
        let raised = rules::raise(&settings, &scan, now);
        if raised.is_empty() && scan.previous == Some(scan.cursor) {
            // Nothing new: no write to compete with ingest's.
            return Ok(0);
        }
        let recorded = store.record_alerts(&raised, settings.quiet, scan.cursor)?;
        if recorded > 0 {
            tracing::info!("{recorded} alert(s) raised");
        }
        Ok(recorded)
    })
    .await
}

/// What a delivery round did.
enum Delivery {
    /// Nothing pending.
    Idle,
    /// A message went out and was accepted.
    Sent,
    /// Alerts are pending but their group's window is still open for this long.
    Waiting(Duration),
    /// The webhook refused or could not be reached; the alerts stay pending (or are given up).
    Failed,
}

/// Sends the pending alerts in one message once the oldest has waited [`AlertSettings::group`].
async fn deliver(
    store: &Arc<dyn Store>,
    settings: &Arc<AlertSettings>,
) -> Result<Delivery, StoreError> {
    let reader = Arc::clone(store);
    let pending = on_pool(move || reader.pending_alerts(MAX_PER_MESSAGE)).await?;
    let Some(oldest) = pending.first() else {
        return Ok(Delivery::Idle);
    };
    let now = clock::now();
    let opens = later(oldest.raised_at, settings.group);
    if opens > now {
        let left = Duration::from_millis(opens.unix_ms().saturating_sub(now.unix_ms()));
        return Ok(Delivery::Waiting(left));
    }
    let body = webhook::body(settings.format, &pending);
    let url = settings.webhook.clone();
    let sent = tokio::task::spawn_blocking(move || webhook::post(&url, &body))
        .await
        .unwrap_or_else(|e| Err(format!("the delivery task failed: {e}")));
    let ids: Vec<i64> = pending.iter().map(|a| a.id).collect();
    let (outcome, error, result) = match &sent {
        Ok(()) => (AlertOutcome::Delivered, None, Delivery::Sent),
        Err(e) => {
            // The oldest decides: once it has had its attempts, the message is given up.
            let last = oldest.attempts + 1 >= u64::from(MAX_ATTEMPTS);
            let outcome = if last {
                AlertOutcome::Failed
            } else {
                AlertOutcome::Pending
            };
            tracing::warn!(
                webhook = %settings.webhook_host(),
                attempt = oldest.attempts + 1,
                "alert delivery failed: {e}"
            );
            (outcome, Some(e.clone()), Delivery::Failed)
        }
    };
    if outcome == AlertOutcome::Delivered {
        tracing::info!(
            webhook = %settings.webhook_host(),
            "{} alert(s) delivered",
            ids.len()
        );
    }
    let writer = Arc::clone(store);
    on_pool(move || writer.finish_alerts(&ids, outcome, error.as_deref(), clock::now())).await?;
    Ok(result)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// `t` moved `d` earlier (not before 1970).
pub(crate) fn earlier(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_ms(t.unix_ms().saturating_sub(millis(d)))
}

/// `t` moved `d` later.
pub(crate) fn later(t: Timestamp, d: Duration) -> Timestamp {
    Timestamp::from_unix_ms(t.unix_ms().saturating_add(millis(d)))
}
