//! Rollouts: a rollout's plan and state, its devices' progress and its log, and what the runner
//! observes of each device (presence, verdict, latest state's seq, its command's answer).

use std::collections::HashMap;

use roomready_protocol::{DeviceId, Ring, Timestamp};

use super::rows::{device_id, ms, parse_presence, parse_status, parse_verdict, time};
use super::{Conn, Row, Value, args};
use crate::rollouts::plan::Plan;
use crate::rollouts::step::{Answer, DeviceProgress, Observed, Stage};
use crate::store::{RolloutDetail, RolloutLog, RolloutState, RolloutSummary, StoreError};

const STAGES: [Stage; 7] = [
    Stage::Waiting,
    Stage::Sent,
    Stage::Updating,
    Stage::Verifying,
    Stage::Healthy,
    Stage::Failed,
    Stage::RolledBack,
];

fn parse_stage(text: &str) -> Stage {
    STAGES
        .into_iter()
        .find(|s| s.as_str() == text)
        .unwrap_or(Stage::Failed)
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(e.to_string())
}

pub(crate) fn create(
    conn: &mut dyn Conn,
    plan: &Plan,
    by: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    let busy = conn.row(
        "SELECT id FROM rollouts WHERE state IN ('running', 'paused') LIMIT 1",
        &[],
    )?;
    if let Some(busy) = busy {
        return Err(StoreError::Invalid(format!(
            "rollout {} is running or paused: finish or abort it first",
            busy.int(0)?
        )));
    }
    let json = serde_json::to_string(plan).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let id = conn.insert(
        "INSERT INTO rollouts (plan, state, created_by, created_at, updated_at) \
         VALUES (?1, 'running', ?2, ?3, ?3) RETURNING id",
        args![json, by, ms(at)],
    )?;
    let mut added = 0;
    for ring in &plan.rings {
        added += conn.exec(
            "INSERT INTO rollout_devices (rollout_id, device_id, ring, stage) \
             SELECT CAST(?1 AS BIGINT), id, ring, 'waiting' FROM devices WHERE ring = ?2",
            args![id, i64::from(ring.ring.get())],
        )?;
    }
    if added == 0 {
        return Err(StoreError::Invalid(
            "no device is in the plan's rings (a device's ring is its agent's `ring` key)".into(),
        ));
    }
    log(
        conn,
        id,
        &RolloutLog {
            at,
            by: by.to_owned(),
            action: "started".into(),
            detail: format!("{added} devices"),
        },
    )?;
    Ok(id)
}

fn log(conn: &mut dyn Conn, id: i64, line: &RolloutLog) -> Result<(), StoreError> {
    conn.exec(
        "INSERT INTO rollout_log (rollout_id, at, by_user, action, detail) VALUES (?1, ?2, ?3, \
         ?4, ?5)",
        args![
            id,
            ms(line.at),
            line.by.as_str(),
            line.action.as_str(),
            line.detail.as_str()
        ],
    )?;
    Ok(())
}

fn summary(conn: &mut dyn Conn, row: &Row) -> Result<RolloutSummary, StoreError> {
    let id = row.int(0)?;
    let plan: Plan = serde_json::from_str(&row.text(1)?).map_err(invalid)?;
    let state = row.text(2)?;
    let counted = conn
        .rows(
            "SELECT stage, count(*) FROM rollout_devices WHERE rollout_id = ?1 GROUP BY stage",
            args![id],
        )?
        .iter()
        .map(|r| Ok((parse_stage(&r.text(0)?), r.u64(1)?)))
        .collect::<Result<Vec<(Stage, u64)>, StoreError>>()?;
    let stages = STAGES
        .into_iter()
        .map(|s| {
            let n = counted
                .iter()
                .filter(|(x, _)| *x == s)
                .map(|(_, n)| n)
                .sum();
            (s, n)
        })
        .collect();
    Ok(RolloutSummary {
        id,
        plan,
        state: RolloutState::parse(&state).unwrap_or(RolloutState::Aborted),
        reason: row.opt_text(3)?,
        created_by: row.text(4)?,
        created_at: time(row.int(5)?),
        updated_at: time(row.int(6)?),
        stages,
    })
}

const COLUMNS: &str = "id, plan, state, reason, created_by, created_at, updated_at";

pub(crate) fn list(conn: &mut dyn Conn) -> Result<Vec<RolloutSummary>, StoreError> {
    let rows = conn.rows(
        &format!("SELECT {COLUMNS} FROM rollouts ORDER BY id DESC LIMIT 100"),
        &[],
    )?;
    rows.iter().map(|row| summary(conn, row)).collect()
}

pub(crate) fn detail(conn: &mut dyn Conn, id: i64) -> Result<Option<RolloutDetail>, StoreError> {
    let Some(row) = conn.row(
        &format!("SELECT {COLUMNS} FROM rollouts WHERE id = ?1"),
        args![id],
    )?
    else {
        return Ok(None);
    };
    let summary = summary(conn, &row)?;
    let devices = conn
        .rows(
            "SELECT device_id, ring, stage, command_id, baseline, sent_at, healthy_since, \
             reason, baseline_seq FROM rollout_devices WHERE rollout_id = ?1 \
             ORDER BY ring, device_id",
            args![id],
        )?
        .iter()
        .map(|r| {
            Ok(DeviceProgress {
                device: device_id(r, 0)?,
                ring: Ring::new(r.u64(1)?).map_err(invalid)?,
                stage: parse_stage(&r.text(2)?),
                command: r.opt_text(3)?,
                baseline: r.opt_text(4)?.and_then(|v| parse_verdict(&v)),
                sent_at: r.opt_int(5)?.map(time),
                healthy_since: r.opt_int(6)?.map(time),
                reason: r.opt_text(7)?,
                baseline_seq: r.opt_u64(8)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let log = conn
        .rows(
            "SELECT at, by_user, action, detail FROM rollout_log WHERE rollout_id = ?1 \
             ORDER BY id",
            args![id],
        )?
        .iter()
        .map(|r| {
            Ok(RolloutLog {
                at: time(r.int(0)?),
                by: r.text(1)?,
                action: r.text(2)?,
                detail: r.text(3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Some(RolloutDetail {
        summary,
        devices,
        log,
    }))
}

pub(crate) fn save(
    conn: &mut dyn Conn,
    id: i64,
    devices: &[DeviceProgress],
    state: Option<(RolloutState, Option<String>)>,
    lines: &[RolloutLog],
    at: Timestamp,
) -> Result<(), StoreError> {
    for d in devices {
        conn.exec(
            "UPDATE rollout_devices SET stage = ?3, command_id = ?4, baseline = ?5, \
             sent_at = ?6, healthy_since = ?7, reason = ?8, baseline_seq = ?9 WHERE \
             rollout_id = ?1 AND device_id = ?2",
            args![
                id,
                d.device.as_str(),
                d.stage.as_str(),
                d.command.as_ref(),
                d.baseline.map(|v| v.as_str()),
                d.sent_at.map(ms),
                d.healthy_since.map(ms),
                d.reason.as_ref(),
                d.baseline_seq,
            ],
        )?;
    }
    if let Some((state, reason)) = state {
        // An operator's abort is final: the runner's halt or done never replaces it.
        conn.exec(
            "UPDATE rollouts SET state = ?2, reason = ?3 WHERE id = ?1 AND state != 'aborted'",
            args![id, state.as_str(), reason],
        )?;
    }
    for line in lines {
        log(conn, id, line)?;
    }
    conn.exec(
        "UPDATE rollouts SET updated_at = ?2 WHERE id = ?1",
        args![id, ms(at)],
    )?;
    Ok(())
}

/// Devices (and their commands) read per query by [`observe`].
const OBSERVE_CHUNK: usize = 512;

/// `?` marks and arguments for `ids` in an `IN (…)` list of a power-of-two length (the last id
/// repeated), so that a backend caching prepared statements keeps a few shapes of the query.
fn in_list(ids: &[&str]) -> (String, Vec<Value>) {
    let size = ids.len().next_power_of_two();
    let args = (0..size)
        .map(|i| Value::from(ids[i.min(ids.len() - 1)]))
        .collect();
    (vec!["?"; size].join(", "), args)
}

/// What the store holds now of each device, with the answer to its command (when it has one),
/// in the order asked: two queries per [`OBSERVE_CHUNK`] devices, whatever the rollout's size.
pub(crate) fn observe(
    conn: &mut dyn Conn,
    devices: &[(DeviceId, Option<String>)],
) -> Result<Vec<Observed>, StoreError> {
    let mut out = Vec::with_capacity(devices.len());
    for chunk in devices.chunks(OBSERVE_CHUNK) {
        let ids: Vec<&str> = chunk.iter().map(|(d, _)| d.as_str()).collect();
        let (marks, args) = in_list(&ids);
        let mut seen: HashMap<String, Observed> = HashMap::with_capacity(chunk.len());
        for r in conn.rows(
            &format!(
                "SELECT id, presence, verdict, state_seq, utc_offset FROM devices WHERE id IN \
                 ({marks})"
            ),
            &args,
        )? {
            seen.insert(
                r.text(0)?,
                Observed {
                    online: r.opt_text(1)?.and_then(|p| parse_presence(&p))
                        == Some(roomready_protocol::Presence::Online),
                    verdict: r.opt_text(2)?.and_then(|v| parse_verdict(&v)),
                    state_seq: r.opt_u64(3)?,
                    answer: None,
                    utc_offset_minutes: r.opt_int(4)?.and_then(|o| i16::try_from(o).ok()),
                },
            );
        }
        let commands: Vec<&str> = chunk.iter().filter_map(|(_, c)| c.as_deref()).collect();
        let mut answers: HashMap<(String, String), Answer> = HashMap::new();
        if !commands.is_empty() {
            let (marks, args) = in_list(&commands);
            for r in conn.rows(
                &format!(
                    "SELECT id, device_id, status, reason, message FROM commands WHERE id IN \
                     ({marks}) AND status IS NOT NULL"
                ),
                &args,
            )? {
                if let Some(status) = parse_status(&r.text(2)?) {
                    answers.insert(
                        (r.text(0)?, r.text(1)?),
                        Answer {
                            status,
                            reason: r.opt_text(3)?,
                            message: r.opt_text(4)?,
                        },
                    );
                }
            }
        }
        for (device, command) in chunk {
            let mut observed = seen.remove(device.as_str()).unwrap_or_default();
            // An answer counts only from the device the command went to.
            observed.answer = command
                .as_ref()
                .and_then(|c| answers.remove(&(c.clone(), device.as_str().to_owned())));
            out.push(observed);
        }
    }
    Ok(out)
}
