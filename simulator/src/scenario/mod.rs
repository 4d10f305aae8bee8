//! Scenarios: a fleet, the endpoints it probes, faults on a timeline and what must hold, in one
//! TOML file, run by `roomready-sim run` with a pass/fail answer per expectation.
//!
//! - [`model`]: the file format, parsed and checked, errors located by file, line and column;
//! - [`fleet`]: the groups expanded into devices, the same for the same seed;
//! - [`expect`]: each expectation judged against what a dashboard subscriber saw (pure);
//! - [`run`]: the run itself: broker, endpoint farm, update server, dashboard, devices ramped up
//!   at a paced rate, the timeline's faults and commands, and the watch over expectations;
//! - [`report`]: the summary table, JUnit XML and JSON;
//! - [`broker`]: the embedded broker the run stops and restarts, in process or in a child.
//!
//! The format is documented in simulator/README.md; examples are in simulator/scenarios/.

pub mod broker;
#[cfg(test)]
mod documented;
pub mod expect;
pub mod fleet;
pub mod model;
pub mod report;
pub mod run;

use std::time::Duration;

pub use model::{Scenario, ScenarioError, load, parse};

/// `250ms`, `5s`, `2.5s`, `2m`, `1h`: the shortest exact spelling of `d` at millisecond
/// precision.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_short() {
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_secs(5)), "5s");
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(fmt_duration(Duration::from_secs(120)), "2m");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h");
    }
}
