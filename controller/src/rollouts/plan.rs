//! A rollout's plan: what is installed (the agent's self-update to a version, or the Teams Rooms
//! app update), the rings in order with their concurrency and health gate, when the rollout
//! halts by itself, and the daily window (each device's local time) in which updates may start.

use std::time::Duration;

use roomready_protocol::{CommandAction, Ring, Timestamp};
use serde::{Deserialize, Serialize};

/// What a rollout installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum Target {
    /// The agent's signed self-update to `version` (a version, or `latest`).
    Agent { version: String },
    /// The Teams Rooms app update the agents' `app_update_command` runs.
    App,
}

impl Target {
    /// The command each device is sent.
    pub fn action(&self) -> CommandAction {
        match self {
            Target::Agent { version } => CommandAction::Update {
                version: Some(version.clone()),
                channel: None,
            },
            Target::App => CommandAction::UpdateApp,
        }
    }
}

/// One ring of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingPlan {
    pub ring: Ring,
    /// Devices of the ring updating at once.
    pub concurrency: u32,
    /// How long an updated device must stay healthy (online, its verdict no worse than before).
    #[serde(with = "secs")]
    pub gate: Duration,
}

/// When failures in a ring halt the rollout: more than a count, or more than a percentage of
/// the ring's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Threshold {
    Count(u32),
    Percent(u8),
}

impl Threshold {
    /// `"2"` (devices) or `"10%"`.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let text = text.trim();
        match text.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(Threshold::Percent(p)),
                _ => Err(format!("{text:?}: a percentage is 0% to 100%")),
            },
            None => text.parse::<u32>().map(Threshold::Count).map_err(|_| {
                format!("{text:?}: expected a count of devices or a percentage (10%)")
            }),
        }
    }

    /// Whether `failed` of a ring of `size` devices passes the threshold.
    pub fn exceeded(self, failed: usize, size: usize) -> bool {
        match self {
            Threshold::Count(n) => failed > n as usize,
            Threshold::Percent(p) => failed * 100 > usize::from(p) * size,
        }
    }
}

/// A daily window, `start..end` in minutes of the day (device local time: the caller shifts
/// the instant by the device's UTC offset); it may wrap midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: u16,
    pub end: u16,
}

impl Window {
    /// `"22:00-05:00"`.
    pub fn parse(text: &str) -> Result<Window, String> {
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60 && m.to_string().len() <= 2).then_some(h * 60 + m)
        };
        let bad =
            || format!("{text:?}: expected HH:MM-HH:MM (device local time), e.g. 22:00-05:00");
        let (a, b) = text.split_once('-').ok_or_else(bad)?;
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start == end {
            return Err(format!("{text:?}: an empty window"));
        }
        Ok(Window { start, end })
    }

    /// Whether `now` is inside.
    pub fn contains(self, now: Timestamp) -> bool {
        let minute = ((now.unix_ms() / 60_000) % 1440) as u16;
        if self.start < self.end {
            (self.start..self.end).contains(&minute)
        } else {
            minute >= self.start || minute < self.end
        }
    }
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    #[serde(flatten)]
    pub target: Target,
    /// In the order they go, each ring once.
    pub rings: Vec<RingPlan>,
    pub halt_after: Threshold,
    pub window: Option<Window>,
}

impl Plan {
    /// The most devices of one ring updating at once.
    pub const MAX_CONCURRENCY: u32 = 10_000;
    /// The longest health gate.
    pub const MAX_GATE: Duration = Duration::from_secs(24 * 3600);

    /// Checks what serde cannot: rings given, each once, sane numbers, a valid version.
    pub fn check(&self) -> Result<(), String> {
        if self.rings.is_empty() {
            return Err("a plan needs at least one ring".into());
        }
        for (i, ring) in self.rings.iter().enumerate() {
            if self.rings[..i].iter().any(|r| r.ring == ring.ring) {
                return Err(format!("ring {} is listed twice", ring.ring));
            }
            if !(1..=Self::MAX_CONCURRENCY).contains(&ring.concurrency) {
                return Err(format!(
                    "ring {}: concurrency must be 1..={}",
                    ring.ring,
                    Self::MAX_CONCURRENCY
                ));
            }
            if ring.gate > Self::MAX_GATE {
                return Err(format!(
                    "ring {}: the health gate is at most 24 h",
                    ring.ring
                ));
            }
        }
        crate::commands::validate(&self.target.action())
    }
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// A plan as the API and the form write it.
#[derive(Debug, Deserialize)]
pub struct PlanRequest {
    /// `agent` (the self-update) or `app` (the Teams Rooms app update).
    pub target: String,
    /// For `agent`: a version or `latest` (the default).
    #[serde(default)]
    pub version: Option<String>,
    /// `RING:CONCURRENCY:GATE_MINUTES`, comma-separated, in order: `0:2:10,1:10:30`.
    pub rings: String,
    /// Failures in a ring that halt the rollout when passed: a count or a percentage; 0 by
    /// default (the first failure halts).
    #[serde(default)]
    pub halt_after: Option<String>,
    /// `HH:MM-HH:MM` in each device's local time, when updates may start; always when absent.
    #[serde(default)]
    pub window: Option<String>,
}

impl PlanRequest {
    pub fn plan(&self) -> Result<Plan, String> {
        let target = match self.target.trim() {
            "agent" => Target::Agent {
                version: self
                    .version
                    .as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .unwrap_or("latest")
                    .to_owned(),
            },
            "app" => Target::App,
            other => return Err(format!("target must be agent or app, not {other:?}")),
        };
        if self.rings.len() > 200 {
            return Err("rings is too long".into());
        }
        let mut rings = Vec::new();
        for part in self
            .rings
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let fields: Vec<&str> = part.split(':').map(str::trim).collect();
            let bad =
                || format!("ring {part:?}: expected RING:CONCURRENCY:GATE_MINUTES, e.g. 0:2:10");
            let [ring, concurrency, gate] = fields[..] else {
                return Err(bad());
            };
            let ring = ring
                .parse::<u64>()
                .map_err(|_| bad())
                .and_then(|r| Ring::new(r).map_err(|e| e.to_string()))?;
            let concurrency = concurrency.parse().map_err(|_| bad())?;
            let minutes: u64 = gate.parse().map_err(|_| bad())?;
            rings.push(RingPlan {
                ring,
                concurrency,
                gate: std::time::Duration::from_secs(minutes.saturating_mul(60)),
            });
        }
        let halt_after = match self.halt_after.as_deref().map(str::trim) {
            None | Some("") => Threshold::Count(0),
            Some(t) => Threshold::parse(t)?,
        };
        let window = match self.window.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(w) => Some(Window::parse(w)?),
        };
        let plan = Plan {
            target,
            rings,
            halt_after,
            window,
        };
        plan.check()?;
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_and_windows_read_and_decide() {
        assert_eq!(Threshold::parse("2"), Ok(Threshold::Count(2)));
        assert_eq!(Threshold::parse(" 10% "), Ok(Threshold::Percent(10)));
        assert!(Threshold::parse("120%").is_err());
        assert!(Threshold::parse("many").is_err());
        assert!(!Threshold::Count(1).exceeded(1, 10));
        assert!(Threshold::Count(1).exceeded(2, 10));
        assert!(!Threshold::Percent(20).exceeded(2, 10));
        assert!(Threshold::Percent(20).exceeded(3, 10));
        assert!(Threshold::Percent(0).exceeded(1, 10));

        let night = Window::parse("22:00-05:00").expect("window");
        let at = |h: u64, m: u64| Timestamp::from_unix_ms(((19_000 * 24 + h) * 60 + m) * 60_000);
        assert!(night.contains(at(23, 30)) && night.contains(at(4, 59)));
        assert!(!night.contains(at(5, 0)) && !night.contains(at(12, 0)));
        let day = Window::parse("09:00-17:30").expect("window");
        assert!(day.contains(at(9, 0)) && day.contains(at(17, 29)) && !day.contains(at(17, 30)));
        for bad in ["9-17", "25:00-01:00", "10:00-10:00", "10:00"] {
            assert!(Window::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plan_is_checked_and_survives_json() {
        let ring = |n: u64, c: u32| RingPlan {
            ring: Ring::new(n).expect("ring"),
            concurrency: c,
            gate: Duration::from_secs(300),
        };
        let plan = Plan {
            target: Target::Agent {
                version: "1.4.0".into(),
            },
            rings: vec![ring(0, 2), ring(1, 10)],
            halt_after: Threshold::Percent(10),
            window: Some(Window::parse("22:00-05:00").expect("window")),
        };
        plan.check().expect("valid");
        let json = serde_json::to_string(&plan).expect("json");
        assert_eq!(serde_json::from_str::<Plan>(&json).expect("back"), plan);
        let twice = Plan {
            rings: vec![ring(0, 1), ring(0, 1)],
            ..plan.clone()
        };
        assert_eq!(twice.check(), Err("ring 0 is listed twice".into()));
        let idle = Plan {
            rings: vec![ring(1, 0)],
            ..plan.clone()
        };
        assert!(idle.check().is_err());
        let bad_version = Plan {
            target: Target::Agent {
                version: "1.4.0; rm".into(),
            },
            ..plan
        };
        assert!(bad_version.check().is_err());
    }
}
