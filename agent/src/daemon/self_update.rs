//! The self-update's lifecycle as a state type: idle, an update running (for a request or the
//! daily check), this start on trial until it confirms itself, or restarting into another
//! binary; with or without an updater (a feed) configured. The daemon's loop routes requests,
//! progress and deadlines to it; the transitions, and what a request is refused for, are here,
//! with the daemon's side of it (an `impl Running` block: starting the update task, its
//! progress events and answer, the trial's confirmation or rollback).

use super::*;
use crate::link::Reply;
use crate::update::trial::Trial;

/// Where the self-update is.
#[derive(Debug)]
enum Phase {
    Idle,
    /// An update runs for `request` (none: the daily check), aimed at `target` (a version or
    /// `latest`); its final answer goes to `reply` (MQTT 5).
    Running {
        request: Option<String>,
        reply: Option<Reply>,
        target: String,
    },
    /// This start is a new version's trial, until it confirms itself or rolls back.
    OnTrial(Trial),
    /// Another binary is in place: the loop ends and the binary is started again.
    Restarting,
}

/// The self-update of a running agent.
#[derive(Debug)]
pub(super) struct SelfUpdate {
    updater: Option<Updater>,
    phase: Phase,
}

impl SelfUpdate {
    /// `trial`: this start is a new version's trial (see [`crate::start::boot`]).
    pub(super) fn new(updater: Option<Updater>, trial: Option<Trial>) -> Self {
        SelfUpdate {
            updater,
            phase: trial.map_or(Phase::Idle, Phase::OnTrial),
        }
    }

    pub(super) fn updater(&self) -> Option<&Updater> {
        self.updater.as_ref()
    }

    /// The trial this start is, while it lasts.
    pub(super) fn trial(&self) -> Option<&Trial> {
        match &self.phase {
            Phase::OnTrial(trial) => Some(trial),
            _ => None,
        }
    }

    pub(super) fn restarting(&self) -> bool {
        matches!(self.phase, Phase::Restarting)
    }

    /// An update for `request` (none: the daily check) aimed at `target` starts: the updater to
    /// run it with, now `Running`; or why not.
    pub(super) fn start(
        &mut self,
        request: Option<String>,
        reply: Option<Reply>,
        target: String,
    ) -> Result<&Updater, Refused> {
        let busy = |message: String| Refused {
            reason: "busy",
            message,
        };
        let Some(updater) = &self.updater else {
            return Err(Refused {
                reason: "not_configured",
                message: "no update feed is configured on this device (update_feed_url or \
                          update_github_repo, and update_keys)"
                    .into(),
            });
        };
        match &self.phase {
            Phase::Running { request, .. } => {
                let by = request.as_deref().unwrap_or("the scheduled check");
                return Err(busy(format!(
                    "the update requested by {by} is still running"
                )));
            }
            Phase::OnTrial(_) => {
                return Err(busy("the last update is still being confirmed".into()));
            }
            Phase::Restarting => {
                return Err(busy("restarting into another version".into()));
            }
            Phase::Idle => {}
        }
        self.phase = Phase::Running {
            request,
            reply,
            target,
        };
        Ok(updater)
    }

    /// The version the running update aims at, for its progress events.
    pub(super) fn target(&self) -> Option<String> {
        match &self.phase {
            Phase::Running { target, .. } => Some(target.clone()),
            _ => None,
        }
    }

    /// The running update ended: its request and reply, now `Idle`; `None` when none ran.
    pub(super) fn finish(&mut self) -> Option<(Option<String>, Option<Reply>)> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::Running { request, reply, .. } => Some((request, reply)),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// The trial ends (confirmed, or about to be rolled back): the trial, now `Idle`.
    pub(super) fn end_trial(&mut self) -> Option<Trial> {
        match std::mem::replace(&mut self.phase, Phase::Idle) {
            Phase::OnTrial(trial) => Some(trial),
            other => {
                self.phase = other;
                None
            }
        }
    }

    /// Another binary is in place (installed, or the previous one restored): restart into it.
    pub(super) fn restart(&mut self) {
        self.phase = Phase::Restarting;
    }
}

/// The self-update as the running daemon drives it: requests and the daily check start it,
/// its task's progress and outcome come back, a trial confirms itself or rolls back.
impl<C: Clock> Running<'_, C> {
    /// The new version is connected and reporting: it stays.
    pub(super) fn confirm_trial(&mut self) {
        let Some(trial) = self.self_update.end_trial() else {
            return;
        };
        tracing::info!(version = trial.to, "new version confirmed healthy");
        if let Some(updater) = self.self_update.updater()
            && let Err(error) = Trial::finish(&updater.state_dir)
        {
            tracing::error!(%error, "cannot end the update trial");
        }
        self.event(EventBody::UpdateProgress {
            stage: UpdateStage::Healthy,
            version: Some(trial.to.clone()),
            percent: None,
            reason: None,
        });
        if let Some(id) = trial.request_id {
            let answer = Answer {
                id,
                status: ResponseStatus::Succeeded,
                reason: None,
                message: Some(format!("updated from {} to {}", trial.from, trial.to)),
            };
            if let Err(error) = self.ledger.record(answer.clone(), self.clock.now()) {
                tracing::error!(%error, "cannot record a command answer");
            }
            self.respond(answer, None);
        }
    }

    /// The new version did not prove itself in time: restore the previous one and restart into
    /// it; it reports the rollback.
    pub(super) fn trial_expired(&mut self, timeout: Duration) {
        let Some(trial) = self.self_update.end_trial() else {
            return;
        };
        let Some(updater) = self.self_update.updater() else {
            return;
        };
        let reason = format!(
            "{} was not connected and reporting within {} s",
            trial.to,
            timeout.as_secs()
        );
        tracing::warn!(reason, "rolling back the update");
        match trial::roll_back(&updater.state_dir, &trial, reason) {
            Ok(_) => self.self_update.restart(),
            Err(error) => tracing::error!(%error, "rollback failed; staying on the new version"),
        }
    }

    /// Answers on `cmd/res` through the outbox (journaled, at least once), and, for an MQTT 5
    /// request with a response topic, also directly on that topic with its correlation data
    /// (once, while connected: that copy is not journaled).
    /// The controller's `update`: `accepted` now, progress events, and the end: `succeeded`
    /// from the new version once it is healthy, or `failed`.
    pub(super) fn start_update(
        &mut self,
        id: &str,
        version: Option<&str>,
        channel: Option<&str>,
        reply: Option<&Reply>,
    ) -> Answer {
        match self.launch_update(Some(id.to_owned()), reply.cloned(), version, channel) {
            Ok(target) => Answer {
                id: id.to_owned(),
                status: ResponseStatus::Accepted,
                reason: None,
                message: Some(format!(
                    "updating to {target}; progress follows in update_progress events"
                )),
            },
            Err(refused) => refused.answer(id),
        }
    }

    /// The daily check inside the maintenance window (`auto_update`): the newest release of the
    /// channel, with progress events and no command to answer.
    pub(super) fn auto_update(&mut self) {
        match self.launch_update(None, None, None, None) {
            Ok(_) => tracing::info!(device = %self.device, "scheduled update check"),
            Err(refused) => {
                let why = refused.message;
                tracing::info!(device = %self.device, why, "scheduled update check skipped")
            }
        }
    }

    /// Starts a self-update in its own (blocking) task; `Err` with why ([`Refused`]) when
    /// it cannot start now. Returns the version aimed at (`latest` or the requested one).
    pub(super) fn launch_update(
        &mut self,
        id: Option<String>,
        reply: Option<Reply>,
        version: Option<&str>,
        channel: Option<&str>,
    ) -> Result<String, Refused> {
        let target = version.unwrap_or("latest").to_owned();
        let updater = self.self_update.start(id, reply, target.clone())?;
        let mut settings = updater.settings.clone();
        settings.requested = version
            .filter(|v| *v != "latest")
            .and_then(|v| semver::Version::parse(v).ok());
        if let Some(channel) = channel.and_then(|c| c.parse().ok()) {
            settings.channel = channel;
        }
        let tx = self.update_msgs.clone();
        tokio::task::spawn_blocking(move || {
            let stage = |stage, percent| {
                let _ = tx.blocking_send(UpdateMsg::Stage(stage, percent));
            };
            stage(UpdateStage::Checking, None);
            let outcome = crate::update::check(&settings).and_then(|release| {
                let Some(release) = release else {
                    return Ok(None);
                };
                stage(UpdateStage::Downloading, Some(0));
                let progress_tx = tx.clone();
                let last = std::sync::atomic::AtomicU8::new(0);
                let installed = crate::update::install(&settings, &release, move |done, total| {
                    let Some(total) = total.filter(|t| *t > 0) else {
                        return;
                    };
                    let percent = u8::try_from((done.min(total) * 100) / total).unwrap_or(100);
                    // Every 10 %, and once at 100 % (then the signature is checked).
                    if percent / 10 > last.load(std::sync::atomic::Ordering::Relaxed) / 10 {
                        last.store(percent, std::sync::atomic::Ordering::Relaxed);
                        let _ = progress_tx.blocking_send(UpdateMsg::Stage(
                            UpdateStage::Downloading,
                            Some(percent),
                        ));
                        if percent == 100 {
                            let _ = progress_tx
                                .blocking_send(UpdateMsg::Stage(UpdateStage::Verifying, None));
                        }
                    }
                })?;
                Ok(Some(installed))
            });
            let _ = tx.blocking_send(UpdateMsg::Done(outcome));
        });
        Ok(target)
    }

    /// A step or the end of a self-update.
    pub(super) fn on_update(&mut self, message: UpdateMsg) {
        let version = self.self_update.target();
        match message {
            UpdateMsg::Stage(stage, percent) => self.event(EventBody::UpdateProgress {
                stage,
                version,
                percent,
                reason: None,
            }),
            UpdateMsg::Done(outcome) => {
                let Some((id, reply)) = self.self_update.finish() else {
                    return;
                };
                let id = id.unwrap_or_default();
                let finish = |status, reason: Option<&str>, message: String| Answer {
                    id: id.clone(),
                    status,
                    reason: reason.map(str::to_owned),
                    message: Some(message),
                };
                let answer = match outcome {
                    Ok(None) => finish(
                        ResponseStatus::Succeeded,
                        None,
                        format!("already up to date ({})", self.version),
                    ),
                    Err(error) => {
                        self.event(EventBody::UpdateProgress {
                            stage: UpdateStage::Failed,
                            version,
                            percent: None,
                            reason: Some(error.to_string()),
                        });
                        finish(
                            ResponseStatus::Failed,
                            Some(error.reason()),
                            error.to_string(),
                        )
                    }
                    Ok(Some(installed)) => {
                        match self.begin_trial(Some(&id).filter(|id| !id.is_empty()), &installed) {
                            // The answer comes from the new version once it is healthy.
                            Ok(()) => return,
                            Err(message) => {
                                finish(ResponseStatus::Failed, Some("install_failed"), message)
                            }
                        }
                    }
                };
                if answer.id.is_empty() {
                    // The scheduled check: no request to answer, the events tell.
                    tracing::info!(status = ?answer.status, message = ?answer.message, "scheduled update ended");
                    return;
                }
                if let Err(error) = self.ledger.record(answer.clone(), self.clock.now()) {
                    tracing::error!(%error, "cannot record a command answer");
                }
                self.respond(answer, reply.as_ref());
            }
        }
    }

    /// The new binary is in place: mark the next start as its trial and restart into it.
    pub(super) fn begin_trial(
        &mut self,
        id: Option<&String>,
        installed: &Installed,
    ) -> Result<(), String> {
        let Some(updater) = self.self_update.updater() else {
            return Err("no updater".into());
        };
        let trial = Trial {
            request_id: id.cloned(),
            from: self.version.clone(),
            to: installed.version.to_string(),
            binary: updater.settings.install_path.clone(),
            prev: installed.prev.clone(),
            attempts: 0,
        };
        if let Err(error) = trial.write(&updater.state_dir) {
            // Without the marker nothing would watch the new binary: put the old one back now.
            let restored = trial::roll_back(&updater.state_dir, &trial, error.to_string());
            return Err(format!(
                "{error}; previous binary restored: {}",
                restored.is_ok()
            ));
        }
        let version = Some(trial.to.clone());
        self.event(EventBody::UpdateProgress {
            stage: UpdateStage::Installing,
            version: version.clone(),
            percent: None,
            reason: None,
        });
        self.event(EventBody::UpdateProgress {
            stage: UpdateStage::Restarting,
            version,
            percent: None,
            reason: None,
        });
        self.self_update.restart();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    fn trial() -> Trial {
        Trial {
            request_id: Some("u-1".into()),
            from: "1.0.0".into(),
            to: "2.0.0".into(),
            binary: PathBuf::from("roomready-agent"),
            prev: PathBuf::from("roomready-agent.prev"),
            attempts: 1,
        }
    }

    fn updater() -> Updater {
        let config = crate::config::UpdateConfig {
            feed: Some(crate::config::UpdateFeed::Manifest {
                url: "https://updates.example".into(),
            }),
            keys: vec![[7; 32]],
            ..crate::config::UpdateConfig::default()
        };
        Updater {
            settings: crate::update::UpdateSettings::from_config(
                &config,
                std::path::Path::new("agent.toml"),
            )
            .expect("settings"),
            state_dir: PathBuf::from("journal"),
            health_timeout: Duration::from_secs(120),
            auto: None,
        }
    }

    #[test]
    fn without_a_feed_every_request_is_refused() {
        let mut update = SelfUpdate::new(None, None);
        let refused = update.start(Some("u-1".into()), None, "latest".into());
        assert_eq!(refused.map(|_| ()).unwrap_err().reason, "not_configured");
        assert!(update.finish().is_none());
    }

    #[test]
    fn one_update_at_a_time_and_none_while_on_trial() {
        let mut update = SelfUpdate::new(Some(updater()), Some(trial()));
        let refused = update.start(Some("u-2".into()), None, "latest".into());
        assert_eq!(
            refused.map(|_| ()).unwrap_err().message,
            "the last update is still being confirmed"
        );
        assert_eq!(update.end_trial(), Some(trial()));
        assert!(update.trial().is_none());
        assert!(update.end_trial().is_none(), "ended once");

        update
            .start(None, None, "2.1.0".into())
            .expect("idle: starts");
        assert_eq!(update.target().as_deref(), Some("2.1.0"));
        let busy = update.start(Some("u-3".into()), None, "latest".into());
        assert_eq!(
            busy.map(|_| ()).unwrap_err().message,
            "the update requested by the scheduled check is still running"
        );
        assert_eq!(update.finish(), Some((None, None)));
        assert!(update.target().is_none());
        assert!(update.finish().is_none(), "answered once");
    }

    #[test]
    fn restarting_ends_the_loop_and_refuses_new_updates() {
        let mut update = SelfUpdate::new(Some(updater()), None);
        assert!(!update.restarting());
        update.restart();
        assert!(update.restarting());
        let refused = update.start(Some("u-1".into()), None, "latest".into());
        assert_eq!(refused.map(|_| ()).unwrap_err().reason, "busy");
    }
}
