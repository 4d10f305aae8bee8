//! Staged rollouts of the agent's self-update or the Teams Rooms app update across the fleet,
//! ring by ring: [`plan`] says what, in which rings, how many at once, how long a device must
//! stay healthy and when the rollout halts itself; [`step`] decides, from what the store
//! observes, each device's next stage and what to send; [`run`] is the task that steps every
//! rollout, saves the outcome and sends.

pub mod plan;
pub mod run;
pub mod step;

use crate::store::RolloutState;

/// Why an operator's action does not apply to a rollout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("no action {0:?} (pause, resume, abort)")]
    Unknown(String),
    #[error("it is {state}: it cannot be {action}d")]
    NotNow { state: &'static str, action: String },
}

/// What an operator's `action` (`pause`, `resume`, `abort`) makes of a rollout in `state`, with
/// the word its log line says; the same rule for the pages, the API and the command line.
pub fn transition(
    state: RolloutState,
    action: &str,
) -> Result<(RolloutState, &'static str), TransitionError> {
    use RolloutState::*;
    match (action, state) {
        ("pause", Running) => Ok((Paused, "paused")),
        // A halted rollout stays halted (resuming it would halt it again at once on the same
        // failures): abort it, mend the release, start another.
        ("resume", Paused) => Ok((Running, "resumed")),
        ("abort", Running | Paused | Halted) => Ok((Aborted, "aborted")),
        ("pause" | "resume" | "abort", _) => Err(TransitionError::NotNow {
            state: state.as_str(),
            action: action.to_owned(),
        }),
        _ => Err(TransitionError::Unknown(action.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_move_a_rollout_only_where_its_state_allows() {
        use RolloutState::*;
        assert_eq!(transition(Running, "pause"), Ok((Paused, "paused")));
        assert_eq!(transition(Paused, "resume"), Ok((Running, "resumed")));
        assert_eq!(transition(Halted, "abort"), Ok((Aborted, "aborted")));
        assert_eq!(
            transition(Halted, "resume").map_err(|e| e.to_string()),
            Err("it is halted: it cannot be resumed".into())
        );
        assert!(transition(Done, "abort").is_err());
        assert_eq!(
            transition(Running, "restart"),
            Err(TransitionError::Unknown("restart".into()))
        );
    }
}
