//! The self-update's lifecycle as a state type: idle, an update running (for a request or the
//! daily check), this start on trial until it confirms itself, or restarting into another
//! binary; with or without an updater (a feed) configured. The daemon's loop routes requests,
//! progress and deadlines to it; the transitions, and what a request is refused for, are here.

use super::{Refused, Updater};
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
