//! Judging expectations against what the dashboard saw. Pure: a [`FleetView`] and the devices
//! concerned in, an [`Judgement`] out, so every expectation type is unit-tested with made-up
//! views and a run is judged the same way however it was observed.
//!
//! The `expected` and `observed` texts hold counts only, never timings, so two runs with the
//! same seed give the same texts.

use std::collections::BTreeMap;

use roomready_protocol::{DeviceId, ResponseStatus, Verdict};

use crate::dashboard::{DeviceView, FleetView};
use crate::scenario::model::{Check, UpdateOutcome};

/// The prefix of the command ids the runner gives `update` commands; a device's update outcome
/// is its last answer to one of them.
pub const UPDATE_ID_PREFIX: &str = "scenario-update-";

/// One expectation judged at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    pub holds: bool,
    pub expected: String,
    pub observed: String,
}

fn pairs<K: std::fmt::Display>(counts: impl IntoIterator<Item = (K, u64)>) -> String {
    let list: Vec<String> = counts
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    list.join(" ")
}

/// The final update outcome of a device, with the answer's reason: its last answer to an update
/// command of the scenario (`None` while there is none but `accepted`).
pub fn update_outcome(device: &DeviceView) -> Option<(UpdateOutcome, Option<&str>)> {
    device
        .responses
        .iter()
        .filter(|r| r.id.starts_with(UPDATE_ID_PREFIX))
        .filter_map(|r| {
            let outcome = match r.status {
                ResponseStatus::Accepted => return None,
                ResponseStatus::Succeeded => UpdateOutcome::Succeeded,
                ResponseStatus::Failed if r.reason.as_deref() == Some("rolled_back") => {
                    UpdateOutcome::RolledBack
                }
                ResponseStatus::Failed | ResponseStatus::Rejected => UpdateOutcome::Failed,
            };
            Some((outcome, r.reason.as_deref()))
        })
        .next_back()
}

/// Judges `check` over `devices` (the expectation's group, or the whole fleet) in `view`.
pub fn judge(check: &Check, devices: &[DeviceId], view: &FleetView) -> Judgement {
    let seen = || devices.iter().map(|id| view.devices.get(id));
    match check {
        Check::Verdicts(wanted) => {
            let mut counts: BTreeMap<Verdict, u64> =
                Verdict::ALL.into_iter().map(|v| (v, 0)).collect();
            let mut none = 0;
            for device in seen() {
                match device.and_then(|d| d.state.as_ref()) {
                    Some(state) => *counts.entry(state.verdict).or_default() += 1,
                    None => none += 1,
                }
            }
            let holds = wanted.iter().all(|(v, n)| counts.get(v) == Some(n));
            let mut observed = pairs(counts.iter().map(|(v, n)| (v, *n)));
            if none > 0 {
                observed.push_str(&format!(" (no state: {none})"));
            }
            Judgement {
                holds,
                expected: pairs(wanted.iter().map(|(v, n)| (v, *n))),
                observed,
            }
        }
        Check::Findings(wanted) => {
            let observed: BTreeMap<&String, u64> = wanted
                .keys()
                .map(|code| {
                    let n = seen()
                        .filter(|d| {
                            d.and_then(|d| d.state.as_ref())
                                .is_some_and(|s| s.findings.iter().any(|f| &f.code == code))
                        })
                        .count();
                    (code, u64::try_from(n).expect("a device count fits in u64"))
                })
                .collect();
            Judgement {
                holds: wanted.iter().all(|(code, n)| observed.get(code) == Some(n)),
                expected: pairs(wanted.iter().map(|(c, n)| (c, *n))),
                observed: pairs(observed.iter().map(|(c, n)| (c, *n))),
            }
        }
        Check::Delivered => {
            let mut silent = 0u64;
            let mut gaps = 0u64;
            let mut first_gap: Option<(DeviceId, u64)> = None;
            for (id, device) in devices.iter().zip(seen()) {
                match device {
                    Some(d) if !d.seqs.is_empty() => {
                        let missing = d.seq_gaps();
                        if let Some(&seq) = missing.first() {
                            gaps += u64::try_from(missing.len()).expect("fits");
                            if first_gap.is_none() {
                                first_gap = Some((id.clone(), seq));
                            }
                        }
                    }
                    _ => silent += 1,
                }
            }
            let total = devices.len();
            let mut observed = format!("{gaps} seq gaps, {silent} of {total} devices silent");
            if let Some((id, seq)) = first_gap {
                observed.push_str(&format!(" (first: {id} seq {seq})"));
            }
            Judgement {
                holds: gaps == 0 && silent == 0,
                expected: format!("no seq gap, all {total} devices heard"),
                observed,
            }
        }
        Check::Updates(wanted) => {
            let mut counts: BTreeMap<UpdateOutcome, u64> =
                UpdateOutcome::ALL.into_iter().map(|o| (o, 0)).collect();
            let mut pending = 0;
            let mut reasons: BTreeMap<&str, u64> = BTreeMap::new();
            for device in seen() {
                match device.and_then(update_outcome) {
                    Some((outcome, reason)) => {
                        *counts.entry(outcome).or_default() += 1;
                        if outcome == UpdateOutcome::Failed {
                            *reasons.entry(reason.unwrap_or("no reason")).or_default() += 1;
                        }
                    }
                    None => pending += 1,
                }
            }
            let mut observed = pairs(counts.iter().map(|(o, n)| (o.as_str(), *n)));
            if !reasons.is_empty() {
                observed.push_str(&format!(
                    " [{}]",
                    pairs(reasons.iter().map(|(r, n)| (r, *n)))
                ));
            }
            if pending > 0 {
                observed.push_str(&format!(" (no outcome: {pending})"));
            }
            Judgement {
                holds: wanted.iter().all(|(o, n)| counts.get(o) == Some(n)),
                expected: pairs(wanted.iter().map(|(o, n)| (o.as_str(), *n))),
                observed,
            }
        }
        Check::Reported(wanted) => {
            let total = u64::try_from(devices.len()).expect("fits");
            let wanted = wanted.unwrap_or(total);
            let reported = u64::try_from(
                seen()
                    .filter(|d| d.is_some_and(|d| d.state.is_some()))
                    .count(),
            )
            .expect("fits");
            Judgement {
                holds: reported == wanted,
                expected: format!("{wanted} of {total} devices reported a state"),
                observed: format!("{reported} of {total} devices reported a state"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_protocol::{
        CommandResponse, DeviceFacts, DeviceKind, Finding, Severity, State, Timestamp,
    };

    fn id(n: u32) -> DeviceId {
        DeviceId::new(format!("d-{n}")).expect("id")
    }

    fn state(n: u32, seq: u64, verdict: Verdict, codes: &[&str]) -> State {
        State {
            device: id(n),
            seq,
            ts: Timestamp::UNIX_EPOCH,
            agent_version: "0.1.0".into(),
            verdict,
            findings: codes
                .iter()
                .map(|c| Finding {
                    code: (*c).into(),
                    severity: Severity::Critical,
                    title: String::new(),
                    evidence: String::new(),
                    remediation: String::new(),
                    reference: String::new(),
                })
                .collect(),
            endpoints: Vec::new(),
            facts: DeviceFacts {
                kind: DeviceKind::TeamsRoomsWindows,
                app_version: None,
                os_build: None,
            },
            placement: Default::default(),
            observed: None,
        }
    }

    fn view(devices: Vec<(u32, DeviceView)>) -> FleetView {
        FleetView {
            devices: devices.into_iter().map(|(n, d)| (id(n), d)).collect(),
            ..FleetView::default()
        }
    }

    fn with_state(s: State) -> DeviceView {
        DeviceView {
            seqs: [s.seq].into_iter().collect(),
            state: Some(s),
            ..DeviceView::default()
        }
    }

    fn answer(n: u32, cmd: &str, status: ResponseStatus, reason: Option<&str>) -> CommandResponse {
        CommandResponse {
            device: id(n),
            id: cmd.into(),
            status,
            reason: reason.map(str::to_owned),
            message: None,
            seq: 1,
            ts: Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn verdicts() {
        let v = view(vec![
            (1, with_state(state(1, 1, Verdict::Ready, &[]))),
            (2, with_state(state(2, 1, Verdict::NotReady, &[]))),
        ]);
        let all = [id(1), id(2), id(3)];
        let check = Check::Verdicts([(Verdict::Ready, 1), (Verdict::NotReady, 1)].into());
        let j = judge(&check, &all, &v);
        assert!(j.holds, "{j:?}");
        assert_eq!(j.expected, "ready=1 not_ready=1");
        assert_eq!(
            j.observed,
            "ready=1 at_risk=0 not_ready=1 unknown=0 (no state: 1)"
        );
        let check = Check::Verdicts([(Verdict::Ready, 2)].into());
        assert!(!judge(&check, &all, &v).holds);
        // A group: only its devices count.
        let check = Check::Verdicts([(Verdict::Ready, 1), (Verdict::NotReady, 0)].into());
        assert!(judge(&check, &[id(1)], &v).holds);
    }

    #[test]
    fn findings() {
        let v = view(vec![
            (
                1,
                with_state(state(1, 1, Verdict::NotReady, &["TLS12_APP_TOO_OLD"])),
            ),
            (2, with_state(state(2, 1, Verdict::Ready, &[]))),
        ]);
        let all = [id(1), id(2)];
        let check = Check::Findings([("TLS12_APP_TOO_OLD".to_owned(), 1)].into());
        let j = judge(&check, &all, &v);
        assert!(j.holds, "{j:?}");
        assert_eq!(j.observed, "TLS12_APP_TOO_OLD=1");
        let check = Check::Findings([("TLS12_APP_TOO_OLD".to_owned(), 2)].into());
        assert!(!judge(&check, &all, &v).holds);
    }

    #[test]
    fn delivered() {
        let complete = DeviceView {
            seqs: [1, 2, 3].into_iter().collect(),
            ..DeviceView::default()
        };
        let gap = DeviceView {
            seqs: [1, 2, 5].into_iter().collect(),
            ..DeviceView::default()
        };
        let v = view(vec![(1, complete.clone()), (2, gap)]);
        let j = judge(&Check::Delivered, &[id(1)], &v);
        assert!(j.holds, "{j:?}");
        assert_eq!(j.observed, "0 seq gaps, 0 of 1 devices silent");
        let j = judge(&Check::Delivered, &[id(1), id(2), id(3)], &v);
        assert!(!j.holds);
        assert_eq!(
            j.observed,
            "2 seq gaps, 1 of 3 devices silent (first: d-2 seq 3)"
        );
    }

    #[test]
    fn updates() {
        let ok = DeviceView {
            responses: vec![
                answer(1, "scenario-update-0", ResponseStatus::Accepted, None),
                answer(1, "scenario-update-0", ResponseStatus::Succeeded, None),
            ],
            ..DeviceView::default()
        };
        let back = DeviceView {
            responses: vec![answer(
                2,
                "scenario-update-0",
                ResponseStatus::Failed,
                Some("rolled_back"),
            )],
            ..DeviceView::default()
        };
        let bad = DeviceView {
            responses: vec![
                answer(3, "other", ResponseStatus::Succeeded, None),
                answer(
                    3,
                    "scenario-update-0",
                    ResponseStatus::Failed,
                    Some("checksum_mismatch"),
                ),
            ],
            ..DeviceView::default()
        };
        let waiting = DeviceView {
            responses: vec![answer(
                4,
                "scenario-update-0",
                ResponseStatus::Accepted,
                None,
            )],
            ..DeviceView::default()
        };
        let v = view(vec![(1, ok), (2, back), (3, bad), (4, waiting)]);
        let all = [id(1), id(2), id(3), id(4)];
        let check = Check::Updates(
            [
                (UpdateOutcome::Succeeded, 1),
                (UpdateOutcome::RolledBack, 1),
                (UpdateOutcome::Failed, 1),
            ]
            .into(),
        );
        let j = judge(&check, &all, &v);
        assert!(j.holds, "{j:?}");
        assert_eq!(
            j.observed,
            "succeeded=1 failed=1 rolled_back=1 [checksum_mismatch=1] (no outcome: 1)"
        );
        let check = Check::Updates([(UpdateOutcome::Succeeded, 4)].into());
        assert!(!judge(&check, &all, &v).holds);
    }

    #[test]
    fn reported() {
        let v = view(vec![(1, with_state(state(1, 1, Verdict::Ready, &[])))]);
        let j = judge(&Check::Reported(None), &[id(1)], &v);
        assert!(j.holds, "{j:?}");
        assert_eq!(j.observed, "1 of 1 devices reported a state");
        assert!(!judge(&Check::Reported(None), &[id(1), id(2)], &v).holds);
        assert!(judge(&Check::Reported(Some(1)), &[id(1), id(2)], &v).holds);
    }
}
