//! The rollout step against a hand-run fleet: rings in order, concurrency, the health gate,
//! halting, offline devices, resends and the window.

use std::collections::HashMap;
use std::time::Duration;

use roomready_protocol::{DeviceId, ResponseStatus, Ring, Timestamp, Verdict};

use super::*;
use crate::rollouts::plan::{Plan, RingPlan, Target, Threshold, Window};

const MIN: u64 = 60_000;

fn ring(n: u64) -> Ring {
    Ring::new(n).expect("ring")
}

fn plan(rings: &[(u64, u32)], halt_after: Threshold) -> Plan {
    Plan {
        target: Target::Agent {
            version: "1.4.0".into(),
        },
        rings: rings
            .iter()
            .map(|&(n, concurrency)| RingPlan {
                ring: ring(n),
                concurrency,
                gate: Duration::from_secs(5 * 60),
            })
            .collect(),
        halt_after,
        window: None,
    }
}

/// The fleet as the store would show it.
struct World {
    devices: Vec<DeviceProgress>,
    seen: HashMap<DeviceId, Observed>,
    ids: u32,
    sent: Vec<(String, String)>,
}

impl World {
    fn new(devices: &[(&str, u64)]) -> World {
        let mut seen = HashMap::new();
        let devices = devices
            .iter()
            .map(|&(name, r)| {
                let device = DeviceId::new(name).expect("id");
                seen.insert(
                    device.clone(),
                    Observed {
                        online: true,
                        verdict: Some(Verdict::Ready),
                        state_seq: Some(1),
                        answer: None,
                        utc_offset_minutes: None,
                    },
                );
                DeviceProgress {
                    device,
                    ring: ring(r),
                    stage: Stage::Waiting,
                    command: None,
                    baseline: None,
                    baseline_seq: None,
                    sent_at: None,
                    healthy_since: None,
                    reason: None,
                }
            })
            .collect();
        World {
            devices,
            seen,
            ids: 0,
            sent: Vec::new(),
        }
    }

    /// One step, seeing only the devices [`in_play`] as the runner does: every test below
    /// also checks that what is not read does not matter.
    fn step(&mut self, plan: &Plan, minute: u64) -> Vec<Action> {
        let play = in_play(plan, &self.devices);
        let seen: HashMap<DeviceId, Observed> = self
            .devices
            .iter()
            .zip(play)
            .filter(|(_, p)| *p)
            .filter_map(|(d, _)| Some((d.device.clone(), self.seen.get(&d.device)?.clone())))
            .collect();
        let ids = &mut self.ids;
        let actions = step(
            plan,
            &mut self.devices,
            |d| seen.get(d).cloned().unwrap_or_default(),
            Timestamp::from_unix_ms(minute * MIN),
            true,
            || {
                *ids += 1;
                format!("c-{ids}")
            },
        );
        for action in &actions {
            if let Action::Send { device, command } = action {
                self.sent.push((device.to_string(), command.clone()));
            }
        }
        actions
    }

    fn stage(&self, name: &str) -> Stage {
        self.devices
            .iter()
            .find(|d| d.device.as_str() == name)
            .expect("device")
            .stage
    }

    fn seen(&mut self, name: &str) -> &mut Observed {
        self.seen
            .get_mut(&DeviceId::new(name).expect("id"))
            .expect("device")
    }

    /// `name` answers `status` and, on success, reports a state (the new version's first).
    fn answer(&mut self, name: &str, status: ResponseStatus, reason: Option<&str>, _minute: u64) {
        let seen = self.seen(name);
        seen.answer = Some(Answer {
            status,
            reason: reason.map(str::to_owned),
            message: None,
        });
        if status == ResponseStatus::Succeeded {
            seen.state_seq = Some(seen.state_seq.unwrap_or(0) + 2);
        }
    }

    fn sent_to(&self) -> Vec<&str> {
        self.sent.iter().map(|(d, _)| d.as_str()).collect()
    }
}

#[test]
fn a_good_release_goes_through_the_rings_in_order_within_their_concurrency() {
    let plan = plan(&[(0, 1), (1, 2), (2, 5)], Threshold::Count(0));
    let mut w = World::new(&[("a0", 0), ("b0", 0), ("c1", 1), ("d1", 1), ("e2", 2)]);
    assert_eq!(w.step(&plan, 0).len(), 1, "ring 0, one at a time");
    assert_eq!(w.sent_to(), ["a0"]);
    w.answer("a0", ResponseStatus::Accepted, None, 1);
    w.step(&plan, 1);
    assert_eq!(w.stage("a0"), Stage::Updating);
    w.answer("a0", ResponseStatus::Succeeded, None, 2);
    w.step(&plan, 2);
    assert_eq!(w.stage("a0"), Stage::Verifying);
    assert_eq!(w.sent_to(), ["a0"], "b0 waits while a0 is in its gate");
    w.step(&plan, 6);
    assert_eq!(w.stage("a0"), Stage::Verifying, "4 of the gate's 5 minutes");
    w.step(&plan, 7);
    assert_eq!(w.stage("a0"), Stage::Healthy);
    assert_eq!(w.sent_to(), ["a0", "b0"], "then the next of ring 0");
    w.answer("b0", ResponseStatus::Succeeded, None, 8);
    w.step(&plan, 8);
    assert_eq!(w.sent_to(), ["a0", "b0"], "ring 1 waits for ring 0's gate");
    w.step(&plan, 13);
    assert_eq!(w.stage("b0"), Stage::Healthy);
    assert_eq!(
        w.sent_to(),
        ["a0", "b0", "c1", "d1"],
        "ring 1, two at a time"
    );
    for name in ["c1", "d1"] {
        w.answer(name, ResponseStatus::Succeeded, None, 14);
    }
    w.step(&plan, 14);
    w.step(&plan, 19);
    assert_eq!(w.sent_to().last(), Some(&"e2"));
    w.answer("e2", ResponseStatus::Succeeded, None, 20);
    w.step(&plan, 20);
    assert_eq!(w.step(&plan, 25), [Action::Done]);
    let ids: Vec<&str> = w.sent.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(
        ids,
        ["c-1", "c-2", "c-3", "c-4", "c-5"],
        "one command per device"
    );
}

#[test]
fn a_release_rolled_back_in_the_pilot_ring_halts_before_ring_one() {
    let plan = plan(&[(0, 2), (1, 2)], Threshold::Count(0));
    let mut w = World::new(&[("a0", 0), ("b0", 0), ("c1", 1)]);
    w.step(&plan, 0);
    w.answer("a0", ResponseStatus::Failed, Some("rolled_back"), 3);
    w.answer("b0", ResponseStatus::Accepted, None, 1);
    let actions = w.step(&plan, 3);
    assert_eq!(w.stage("a0"), Stage::RolledBack);
    assert_eq!(
        actions,
        [Action::Halt {
            ring: ring(0),
            reason: "1 of the 2 devices of ring 0 failed or rolled back".into()
        }]
    );
    assert!(!w.sent_to().contains(&"c1"), "ring 1 untouched");
}

#[test]
fn a_threshold_in_percent_tolerates_what_it_allows() {
    let plan = plan(&[(0, 10), (1, 10)], Threshold::Percent(50));
    let mut w = World::new(&[("a0", 0), ("b0", 0), ("c1", 1)]);
    w.step(&plan, 0);
    w.answer(
        "a0",
        ResponseStatus::Rejected,
        Some("update_unavailable"),
        1,
    );
    w.answer("b0", ResponseStatus::Succeeded, None, 1);
    assert!(w.step(&plan, 1).is_empty(), "1 of 2 is not more than 50 %");
    assert_eq!(w.stage("a0"), Stage::Failed);
    w.step(&plan, 6);
    assert_eq!(w.sent_to().last(), Some(&"c1"), "ring 1 starts");
}

#[test]
fn the_gate_breaks_when_the_device_goes_offline_or_worse() {
    let plan = plan(&[(0, 1)], Threshold::Count(0));
    let mut w = World::new(&[("a0", 0)]);
    w.step(&plan, 0);
    w.answer("a0", ResponseStatus::Succeeded, None, 1);
    w.step(&plan, 1);
    w.seen("a0").online = false;
    w.step(&plan, 4);
    assert_eq!(w.devices[0].healthy_since, None);
    w.seen("a0").online = true;
    w.seen("a0").verdict = Some(Verdict::NotReady);
    w.step(&plan, 5);
    assert_eq!(
        w.devices[0].reason.as_deref(),
        Some("verdict not_ready after the update (before: ready)")
    );
    w.seen("a0").verdict = Some(Verdict::Ready);
    w.step(&plan, 6);
    w.step(&plan, 10);
    assert_eq!(
        w.stage("a0"),
        Stage::Verifying,
        "the gate counts from minute 6"
    );
    w.step(&plan, 11);
    assert_eq!(w.stage("a0"), Stage::Healthy);
}

#[test]
fn offline_devices_wait_and_an_unanswered_update_is_resent_with_its_id() {
    let plan = plan(&[(0, 2)], Threshold::Count(0));
    let mut w = World::new(&[("a0", 0), ("b0", 0)]);
    w.seen("b0").online = false;
    w.step(&plan, 0);
    assert_eq!(w.sent_to(), ["a0"]);
    assert_eq!(
        w.devices[1].reason.as_deref(),
        Some("offline: sent when it is back")
    );
    w.seen("b0").online = true;
    w.step(&plan, 1);
    assert_eq!(w.sent_to(), ["a0", "b0"]);
    // a0 never answers: after ten minutes the same command goes again.
    w.answer("b0", ResponseStatus::Accepted, None, 2);
    w.step(&plan, 9);
    assert_eq!(w.sent.len(), 2);
    w.step(&plan, 10);
    assert_eq!(w.sent.last(), Some(&("a0".to_owned(), "c-1".to_owned())));
}

#[test]
fn nothing_starts_outside_the_window() {
    let mut plan = plan(&[(0, 2)], Threshold::Count(0));
    plan.window = Some(Window::parse("02:00-04:00").expect("window"));
    let mut w = World::new(&[("a0", 0), ("b0", 0)]);
    // b0 is in UTC+01:00: 01:00 UTC is 02:00 there.
    w.seen("b0").utc_offset_minutes = Some(60);
    w.step(&plan, 60);
    assert_eq!(w.sent_to(), ["b0"], "01:00 UTC: inside b0's window only");
    assert_eq!(
        w.devices[0].reason.as_deref(),
        Some("outside the window (device local time)")
    );
    w.answer("b0", ResponseStatus::Accepted, None, 61);
    w.step(&plan, 120);
    assert_eq!(w.sent_to(), ["b0", "a0"], "02:00 UTC");
}

#[test]
fn only_devices_in_flight_and_the_next_two_rings_waiting_are_in_play() {
    let plan = plan(&[(0, 1), (1, 2), (2, 5), (3, 5)], Threshold::Count(0));
    let mut w = World::new(&[("a0", 0), ("b1", 1), ("c2", 2), ("d3", 3)]);
    let names = |w: &World| -> Vec<String> {
        w.devices
            .iter()
            .zip(in_play(&plan, &w.devices))
            .filter(|(_, p)| *p)
            .map(|(d, _)| d.device.to_string())
            .collect()
    };
    assert_eq!(names(&w), ["a0", "b1"], "rings 0 and 1; 2 and 3 wait");
    w.step(&plan, 0);
    w.answer("a0", ResponseStatus::Succeeded, None, 1);
    w.step(&plan, 1);
    w.step(&plan, 7);
    assert_eq!(w.stage("a0"), Stage::Healthy);
    assert_eq!(
        w.stage("b1"),
        Stage::Sent,
        "ring 1 started in the same step"
    );
    assert_eq!(
        names(&w),
        ["b1", "c2"],
        "a0 is finished; ring 3 still waits"
    );
}
