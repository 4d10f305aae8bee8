//! `/metrics` in the Prometheus text format (0.0.4): the fleet by verdict, kind and presence, by
//! site and by ring, rollouts by state and their devices by stage, missing sequence numbers,
//! and ingest's counters. Label values are a fixed
//! set of names (verdicts, kinds, results), ring numbers (0-9), and site names, which the
//! protocol limits to A-Z a-z 0-9 . _ - (nothing to escape) and the store to the 200 largest
//! sites; tags are not labels (too many).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::{App, WebError, blocking};
use crate::store::{GroupTotal, RolloutState};

pub async fn metrics(State(app): State<App>) -> Result<Response, WebError> {
    let store = app.store.clone();
    let (summary, groups, rollouts) =
        blocking(move || Ok((store.summary()?, store.groups()?, store.rollouts()?))).await?;
    let s = &app.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let mut by_verdict: Vec<(String, u64)> = summary
        .by_verdict
        .iter()
        .map(|(v, n)| (format!("{{verdict=\"{}\"}}", v.as_str()), *n))
        .collect();
    by_verdict.push(("{verdict=\"none\"}".into(), summary.no_state));
    family(
        "roomready_devices",
        "gauge",
        "Devices by their current verdict (none: no state received yet).",
        &by_verdict,
    );
    let by_kind: Vec<(String, u64)> = super::api::KINDS
        .iter()
        .map(|k| {
            let n = summary
                .by_kind
                .iter()
                .find(|(x, _)| x == k)
                .map_or(0, |(_, n)| *n);
            (format!("{{kind=\"{}\"}}", k.as_str()), n)
        })
        .collect();
    family(
        "roomready_devices_by_kind",
        "gauge",
        "Devices with a state, by kind.",
        &by_kind,
    );
    family(
        "roomready_devices_presence",
        "gauge",
        "Devices by presence.",
        &[
            ("{presence=\"online\"}".into(), summary.online),
            ("{presence=\"offline\"}".into(), summary.offline),
            ("{presence=\"unknown\"}".into(), summary.presence_unknown),
        ],
    );
    let per = |label: &str, rows: &[GroupTotal], value: fn(&GroupTotal) -> u64| {
        rows.iter()
            .map(|g| (format!("{{{label}=\"{}\"}}", g.name), value(g)))
            .collect::<Vec<_>>()
    };
    for (label, rows, what) in [
        ("site", &groups.sites, "site (the 200 largest)"),
        ("ring", &groups.rings, "rollout ring"),
    ] {
        family(
            &format!("roomready_{label}_devices"),
            "gauge",
            &format!("Devices per {what}."),
            &per(label, rows, |g| g.devices),
        );
        family(
            &format!("roomready_{label}_not_ready"),
            "gauge",
            &format!("Devices whose verdict is not_ready, per {what}."),
            &per(label, rows, |g| g.not_ready),
        );
        family(
            &format!("roomready_{label}_at_risk"),
            "gauge",
            &format!("Devices whose verdict is at_risk, per {what}."),
            &per(label, rows, |g| g.at_risk),
        );
        family(
            &format!("roomready_{label}_online"),
            "gauge",
            &format!("Devices online, per {what}."),
            &per(label, rows, |g| g.online),
        );
    }
    let by_state: Vec<(String, u64)> = RolloutState::ALL
        .iter()
        .map(|state| {
            let n = rollouts.iter().filter(|r| r.state == *state).count() as u64;
            (format!("{{state=\"{}\"}}", state.as_str()), n)
        })
        .collect();
    family(
        "roomready_rollouts",
        "gauge",
        "Rollouts (the newest 100) by state.",
        &by_state,
    );
    let mut by_stage: Vec<(String, u64)> = Vec::new();
    for r in rollouts.iter().filter(|r| r.state.followed()) {
        for (stage, n) in &r.stages {
            let labels = format!("{{stage=\"{}\"}}", stage.as_str());
            match by_stage.iter_mut().find(|(l, _)| *l == labels) {
                Some(slot) => slot.1 += n,
                None => by_stage.push((labels, *n)),
            }
        }
    }
    family(
        "roomready_rollout_devices",
        "gauge",
        "Devices of the rollouts under way (running, paused or halted) by stage.",
        &by_stage,
    );
    family(
        "roomready_seq_missing",
        "gauge",
        "Sequence numbers that never arrived, over all devices.",
        &[(String::new(), summary.missing)],
    );
    family(
        "roomready_seq_missing_explained",
        "gauge",
        "Missing sequence numbers the devices reported dropping (records_dropped).",
        &[(String::new(), summary.missing_explained)],
    );
    family(
        "roomready_ingest_messages_total",
        "counter",
        "Messages taken from the broker since start, by result.",
        &[
            ("{result=\"taken\"}".into(), load(&s.taken)),
            ("{result=\"duplicate\"}".into(), load(&s.duplicates)),
            ("{result=\"undecodable\"}".into(), load(&s.undecodable)),
        ],
    );
    family(
        "roomready_ingest_received_total",
        "counter",
        "Publishes received from the broker since start.",
        &[(String::new(), load(&s.received))],
    );
    family(
        "roomready_ingest_gaps_total",
        "counter",
        "Sequence numbers skipped by arriving messages since start.",
        &[(String::new(), load(&s.gaps))],
    );
    family(
        "roomready_ingest_commits_total",
        "counter",
        "Batches committed to the store since start.",
        &[(String::new(), load(&s.commits))],
    );
    family(
        "roomready_ingest_commit_failures_total",
        "counter",
        "Commits that failed (and were retried) since start.",
        &[(String::new(), load(&s.commit_failures))],
    );
    family(
        "roomready_broker_connected",
        "gauge",
        "1 while the controller is connected to the broker.",
        &[(
            String::new(),
            u64::from(s.connected.load(Ordering::Relaxed)),
        )],
    );
    family(
        "roomready_broker_connections_total",
        "counter",
        "Connections to the broker made since start.",
        &[(String::new(), load(&s.connections))],
    );
    family(
        "roomready_commands_sent_total",
        "counter",
        "Commands published since start.",
        &[(String::new(), load(&s.commands))],
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}
