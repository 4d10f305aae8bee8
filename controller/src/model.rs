//! What one message changes, decided the same way for every store backend: the per-device
//! [`Snapshot`] (what is current) and [`apply`], which takes a decoded message and says whether
//! it is a duplicate, and otherwise which history entries it makes and what becomes current.
//!
//! Duplicates: states, events and command responses carry the device's `seq`; a number seen
//! before ([`crate::seq::SeqLog`]) is dropped. A status has no number of its own (its `seq` is the
//! highest the agent had issued): one equal to the current status is the broker's retained copy
//! coming again and is dropped. A state older than the current one (a lower `seq`, arriving
//! late) is recorded as received but does not replace the current state.

use std::collections::BTreeMap;

use roomready_protocol::{
    CommandResponse, DeviceId, Event, EventBody, Finding, Presence, Severity, State, Status,
    Timestamp, Verdict,
};
use serde_json::json;

use crate::seq::{SeqLog, SeqOutcome};
use crate::store::{Decoded, HistoryKind, NewHistory, reason_name};

/// What is current for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub seq: SeqLog,
    pub duplicates: u64,
    /// The highest `total` (or running sum of `count`s) of the device's `records_dropped`.
    pub dropped: u64,
    /// `seq` of the current state.
    pub state_seq: Option<u64>,
    pub verdict: Option<Verdict>,
    /// Current findings by code.
    pub findings: BTreeMap<String, (Severity, String)>,
    /// The current status as (seq, ts, presence, reason name) for duplicate detection.
    pub status: Option<(u64, Timestamp, Presence, Option<&'static str>)>,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
}

impl Snapshot {
    pub fn new(at: Timestamp) -> Snapshot {
        Snapshot {
            seq: SeqLog::default(),
            duplicates: 0,
            dropped: 0,
            state_seq: None,
            verdict: None,
            findings: BTreeMap::new(),
            status: None,
            first_seen: at,
            last_seen: at,
        }
    }

    /// Missing numbers the device said it dropped.
    pub fn explained(&self) -> u64 {
        self.seq.missing().min(self.dropped)
    }

    /// The most severe current finding: critical first, then warning, then info; by code within.
    pub fn top_finding(&self) -> Option<(&str, Severity, &str)> {
        self.findings
            .iter()
            .max_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| b.0.cmp(a.0)))
            .map(|(code, (severity, title))| (code.as_str(), *severity, title.as_str()))
    }
}

/// What a message did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Seen before: nothing changes but the duplicate count.
    Duplicate,
    Taken(Box<Taken>),
}

/// What a message that was not a duplicate changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    pub history: Vec<NewHistory>,
    /// A new current state to store.
    pub state: Option<State>,
    /// A new current status to store.
    pub status: Option<Status>,
    /// An answer to record against its command.
    pub response: Option<CommandResponse>,
    /// Numbers skipped before this one (a new gap).
    pub gap: u64,
}

/// Applies `message`, received at `at`, to `snapshot`.
pub fn apply(snapshot: &mut Snapshot, message: &Decoded, at: Timestamp) -> Applied {
    let seq = match message {
        Decoded::Status(_) => None,
        Decoded::State(m) => Some(m.seq),
        Decoded::Event(m) => Some(m.seq),
        Decoded::Response(m) => Some(m.seq),
    };
    let gap = match seq.map(|s| snapshot.seq.insert(s)) {
        Some(SeqOutcome::Duplicate) => {
            snapshot.duplicates += 1;
            return Applied::Duplicate;
        }
        Some(SeqOutcome::Gap { missing }) => missing,
        Some(SeqOutcome::First | SeqOutcome::New) | None => 0,
    };
    if let Decoded::Status(status) = message {
        let key = (
            status.seq,
            status.ts,
            status.status,
            status.reason.map(reason_name),
        );
        if snapshot.status == Some(key) {
            snapshot.duplicates += 1;
            return Applied::Duplicate;
        }
    }
    snapshot.last_seen = snapshot.last_seen.max(at);
    let device = message.device().clone();
    let entry = |kind, ts, seq, data| NewHistory {
        device: device.clone(),
        at,
        ts: Some(ts),
        seq,
        kind,
        data,
    };
    let mut history = Vec::new();
    let mut taken_state = None;
    let mut taken_status = None;
    let mut response = None;
    match message {
        Decoded::State(state) => {
            let newer = snapshot.state_seq.is_none_or(|current| state.seq > current);
            if newer {
                if snapshot.verdict != Some(state.verdict) {
                    history.push(entry(
                        HistoryKind::Verdict,
                        state.ts,
                        Some(state.seq),
                        json!({ "from": snapshot.verdict, "to": state.verdict }),
                    ));
                }
                let findings = current_findings(&state.findings);
                for (code, (severity, title)) in &snapshot.findings {
                    if !findings.contains_key(code) {
                        history.push(entry(
                            HistoryKind::FindingCleared,
                            state.ts,
                            Some(state.seq),
                            json!({ "code": code, "severity": severity, "title": title }),
                        ));
                    }
                }
                for (code, (severity, title)) in &findings {
                    if !snapshot.findings.contains_key(code) {
                        history.push(entry(
                            HistoryKind::FindingAppeared,
                            state.ts,
                            Some(state.seq),
                            json!({ "code": code, "severity": severity, "title": title }),
                        ));
                    }
                }
                snapshot.findings = findings;
                snapshot.verdict = Some(state.verdict);
                snapshot.state_seq = Some(state.seq);
                taken_state = Some(state.clone());
            }
        }
        Decoded::Status(status) => {
            let previous = snapshot.status.map(|s| s.2);
            if previous != Some(status.status) {
                history.push(entry(
                    HistoryKind::Presence,
                    status.ts,
                    None,
                    json!({ "status": status.status, "reason": status.reason.map(reason_name) }),
                ));
            }
            snapshot.status = Some((
                status.seq,
                status.ts,
                status.status,
                status.reason.map(reason_name),
            ));
            taken_status = Some(status.clone());
        }
        Decoded::Event(event) => {
            if let EventBody::RecordsDropped { count, total } = event.body {
                snapshot.dropped = snapshot.dropped.saturating_add(count).max(total);
            }
            history.push(entry(
                HistoryKind::Event,
                event.ts,
                Some(event.seq),
                event_data(event),
            ));
        }
        Decoded::Response(answer) => {
            history.push(entry(
                HistoryKind::Response,
                answer.ts,
                Some(answer.seq),
                json!({
                    "id": answer.id,
                    "status": answer.status,
                    "reason": answer.reason,
                    "message": answer.message,
                }),
            ));
            response = Some(answer.clone());
        }
    }
    Applied::Taken(Box::new(Taken {
        history,
        state: taken_state,
        status: taken_status,
        response,
        gap,
    }))
}

/// The findings of a state by code (a code listed twice keeps its most severe entry).
fn current_findings(findings: &[Finding]) -> BTreeMap<String, (Severity, String)> {
    let mut current: BTreeMap<String, (Severity, String)> = BTreeMap::new();
    for finding in findings {
        let keep = current
            .get(&finding.code)
            .is_none_or(|(severity, _)| finding.severity > *severity);
        if keep {
            current.insert(
                finding.code.clone(),
                (finding.severity, finding.title.clone()),
            );
        }
    }
    current
}

/// An event's body as JSON (`{"event": "check_completed", …}`), without the envelope fields.
fn event_data(event: &Event) -> serde_json::Value {
    match serde_json::to_value(&event.body) {
        Ok(value) => value,
        // Serializing a plain enum of strings and numbers cannot fail.
        Err(e) => json!({ "event": "unserializable", "error": e.to_string() }),
    }
}

/// The device a message names, checked against the device of its topic.
pub fn check_device(topic_device: &DeviceId, message: &Decoded) -> Result<(), String> {
    if message.device() == topic_device {
        Ok(())
    } else {
        Err(format!(
            "the payload's device {:?} is not the topic's device {:?}",
            message.device().as_str(),
            topic_device.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_protocol::{DeviceFacts, DeviceKind, ResponseStatus, StatusReason};

    fn id() -> DeviceId {
        DeviceId::new("mtr-1").expect("valid")
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::from_unix_ms(ms)
    }

    fn finding(code: &str, severity: Severity) -> Finding {
        Finding {
            code: code.into(),
            severity,
            title: format!("{code} title"),
            evidence: String::new(),
            remediation: String::new(),
            reference: String::new(),
        }
    }

    fn state(seq: u64, verdict: Verdict, findings: Vec<Finding>) -> Decoded {
        Decoded::State(State {
            device: id(),
            seq,
            ts: at(seq * 1000),
            agent_version: "0.1.0".into(),
            facts: DeviceFacts {
                kind: DeviceKind::TeamsRoomsWindows,
                app_version: Some("4.0.64.0".into()),
                os_build: None,
            },
            verdict,
            findings,
            endpoints: Vec::new(),
            placement: Default::default(),
            observed: None,
        })
    }

    fn kinds(applied: &Applied) -> Vec<HistoryKind> {
        match applied {
            Applied::Taken(taken) => taken.history.iter().map(|h| h.kind).collect(),
            Applied::Duplicate => panic!("a duplicate"),
        }
    }

    #[test]
    fn verdict_and_finding_transitions() {
        let mut s = Snapshot::new(at(0));
        let first = apply(
            &mut s,
            &state(1, Verdict::NotReady, vec![finding("A", Severity::Critical)]),
            at(1),
        );
        assert_eq!(
            kinds(&first),
            [HistoryKind::Verdict, HistoryKind::FindingAppeared]
        );
        // Same verdict, same findings: nothing to record, but the state is current.
        let same = apply(
            &mut s,
            &state(2, Verdict::NotReady, vec![finding("A", Severity::Critical)]),
            at(2),
        );
        assert_eq!(kinds(&same), []);
        let fixed = apply(
            &mut s,
            &state(3, Verdict::AtRisk, vec![finding("B", Severity::Warning)]),
            at(3),
        );
        assert_eq!(
            kinds(&fixed),
            [
                HistoryKind::Verdict,
                HistoryKind::FindingCleared,
                HistoryKind::FindingAppeared
            ]
        );
        assert_eq!(s.top_finding(), Some(("B", Severity::Warning, "B title")));
        // A late, older state is received but does not replace the current one.
        let late = apply(&mut s, &state(0, Verdict::Ready, vec![]), at(4));
        match late {
            Applied::Taken(taken) => {
                assert!(taken.history.is_empty());
                assert!(taken.state.is_none());
            }
            Applied::Duplicate => panic!("not a duplicate"),
        }
        assert_eq!(s.verdict, Some(Verdict::AtRisk));
        assert_eq!(
            apply(&mut s, &state(3, Verdict::Ready, vec![]), at(5)),
            Applied::Duplicate
        );
        assert_eq!(s.duplicates, 1);
    }

    #[test]
    fn gaps_and_dropped_records() {
        let mut s = Snapshot::new(at(0));
        let event = |seq, body| {
            Decoded::Event(Event {
                device: id(),
                seq,
                ts: at(seq),
                body,
            })
        };
        apply(
            &mut s,
            &event(
                1,
                EventBody::CheckCompleted {
                    verdict: Verdict::Ready,
                    findings: 0,
                },
            ),
            at(1),
        );
        let after_gap = apply(
            &mut s,
            &event(5, EventBody::RecordsDropped { count: 2, total: 2 }),
            at(2),
        );
        assert!(matches!(after_gap, Applied::Taken(taken) if taken.gap == 3));
        assert_eq!(s.seq.missing(), 3);
        assert_eq!(s.explained(), 2);
    }

    #[test]
    fn presence_changes_and_repeated_statuses() {
        let mut s = Snapshot::new(at(0));
        let status = |seq, presence, reason| {
            Decoded::Status(Status {
                device: id(),
                seq,
                ts: at(seq),
                status: presence,
                reason,
            })
        };
        let online = status(1, Presence::Online, None);
        assert_eq!(
            kinds(&apply(&mut s, &online, at(1))),
            [HistoryKind::Presence]
        );
        assert_eq!(apply(&mut s, &online, at(2)), Applied::Duplicate);
        let will = status(1, Presence::Offline, Some(StatusReason::ConnectionLost));
        assert_eq!(kinds(&apply(&mut s, &will, at(3))), [HistoryKind::Presence]);
        // Online again after a reconnect with the same numbers: a change, not a duplicate.
        assert_eq!(
            kinds(&apply(&mut s, &online, at(4))),
            [HistoryKind::Presence]
        );
    }

    #[test]
    fn responses_are_recorded() {
        let mut s = Snapshot::new(at(0));
        let answer = Decoded::Response(CommandResponse {
            device: id(),
            id: "c-1".into(),
            status: ResponseStatus::Succeeded,
            reason: None,
            message: None,
            seq: 7,
            ts: at(7),
        });
        match apply(&mut s, &answer, at(1)) {
            Applied::Taken(taken) => {
                assert_eq!(taken.history[0].kind, HistoryKind::Response);
                assert_eq!(taken.response.map(|r| r.id), Some("c-1".into()));
            }
            Applied::Duplicate => panic!("not a duplicate"),
        }
        assert_eq!(apply(&mut s, &answer, at(2)), Applied::Duplicate);
    }

    #[test]
    fn a_payload_for_another_device_is_refused() {
        let other = DeviceId::new("mtr-2").expect("valid");
        let message = state(1, Verdict::Ready, vec![]);
        assert!(check_device(&id(), &message).is_ok());
        assert_eq!(
            check_device(&other, &message).expect_err("spoofed"),
            "the payload's device \"mtr-1\" is not the topic's device \"mtr-2\""
        );
    }
}
