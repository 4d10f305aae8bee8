//! Staged rollouts of the agent's self-update or the Teams Rooms app update across the fleet,
//! ring by ring: [`plan`] says what, in which rings, how many at once, how long a device must
//! stay healthy and when the rollout halts itself; [`step`] decides, from what the store
//! observes, each device's next stage and what to send; [`run`] is the task that steps every
//! rollout, saves the outcome and sends.

pub mod plan;
pub mod run;
pub mod step;
