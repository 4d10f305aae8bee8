//! Rollouts in SQLite: a rollout's plan and state, its devices' progress and its log, and what
//! the runner observes of each device (presence, verdict, latest state's seq, its command's
//! answer).

use roomready_protocol::{DeviceId, Ring, Timestamp};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::rollouts::plan::Plan;
use crate::rollouts::step::{Answer, DeviceProgress, Observed, Stage};
use crate::store::{RolloutDetail, RolloutLog, RolloutState, RolloutSummary, StoreError};

use super::rows::{parse_presence, parse_status, parse_verdict, to_i64, to_u64};

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

fn invalid(e: impl std::fmt::Display) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.to_string().into())
}

pub(super) fn create(
    tx: &Transaction<'_>,
    plan: &Plan,
    by: &str,
    at: Timestamp,
) -> Result<i64, StoreError> {
    let busy: Option<i64> = tx
        .query_row(
            "SELECT id FROM rollouts WHERE state IN ('running', 'paused') LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(super::db)?;
    if let Some(id) = busy {
        return Err(StoreError::Invalid(format!(
            "rollout {id} is running or paused: finish or abort it first"
        )));
    }
    let json = serde_json::to_string(plan).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let now = to_i64(at.unix_ms());
    tx.execute(
        "INSERT INTO rollouts (plan, state, created_by, created_at, updated_at) \
         VALUES (?1, 'running', ?2, ?3, ?3)",
        params![json, by, now],
    )
    .map_err(super::db)?;
    let id = tx.last_insert_rowid();
    let mut added = 0;
    for ring in &plan.rings {
        added += tx
            .execute(
                "INSERT INTO rollout_devices (rollout_id, device_id, ring, stage) \
                 SELECT ?1, id, ring, 'waiting' FROM devices WHERE ring = ?2",
                params![id, i64::from(ring.ring.get())],
            )
            .map_err(super::db)?;
    }
    if added == 0 {
        return Err(StoreError::Invalid(
            "no device is in the plan's rings (a device's ring is its agent's `ring` key)".into(),
        ));
    }
    log(
        tx,
        id,
        &RolloutLog {
            at,
            by: by.to_owned(),
            action: "started".into(),
            detail: format!("{added} devices"),
        },
    )
    .map_err(super::db)?;
    Ok(id)
}

fn log(tx: &Transaction<'_>, id: i64, line: &RolloutLog) -> Result<(), rusqlite::Error> {
    tx.prepare_cached(
        "INSERT INTO rollout_log (rollout_id, at, by_user, action, detail) VALUES (?1, ?2, ?3, \
         ?4, ?5)",
    )?
    .execute(params![
        id,
        to_i64(line.at.unix_ms()),
        line.by,
        line.action,
        line.detail
    ])?;
    Ok(())
}

fn summary(conn: &Connection, row: &Row<'_>) -> Result<RolloutSummary, rusqlite::Error> {
    let id: i64 = row.get(0)?;
    let plan: String = row.get(1)?;
    let plan: Plan = serde_json::from_str(&plan).map_err(invalid)?;
    let state: String = row.get(2)?;
    let mut stmt = conn.prepare_cached(
        "SELECT stage, count(*) FROM rollout_devices WHERE rollout_id = ?1 GROUP BY stage",
    )?;
    let counted: Vec<(Stage, u64)> = stmt
        .query_map(params![id], |r| {
            Ok((parse_stage(&r.get::<_, String>(0)?), to_u64(r.get(1)?)))
        })?
        .collect::<Result<_, _>>()?;
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
        reason: row.get(3)?,
        created_by: row.get(4)?,
        created_at: Timestamp::from_unix_ms(to_u64(row.get(5)?)),
        updated_at: Timestamp::from_unix_ms(to_u64(row.get(6)?)),
        stages,
    })
}

const COLUMNS: &str = "id, plan, state, reason, created_by, created_at, updated_at";

pub(super) fn list(conn: &Connection) -> Result<Vec<RolloutSummary>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM rollouts ORDER BY id DESC LIMIT 100"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(summary(conn, row)?);
    }
    Ok(out)
}

pub(super) fn detail(conn: &Connection, id: i64) -> Result<Option<RolloutDetail>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM rollouts WHERE id = ?1"))?;
    let mut rows = stmt.query(params![id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let summary = summary(conn, row)?;
    let mut stmt = conn.prepare_cached(
        "SELECT device_id, ring, stage, command_id, baseline, sent_at, healthy_since, reason, \
         baseline_seq FROM rollout_devices WHERE rollout_id = ?1 ORDER BY ring, device_id",
    )?;
    let devices = stmt
        .query_map(params![id], |r| {
            let device = DeviceId::new(r.get::<_, String>(0)?).map_err(invalid)?;
            let ring = Ring::new(to_u64(r.get(1)?)).map_err(invalid)?;
            let time = |i: usize| -> Result<Option<Timestamp>, rusqlite::Error> {
                Ok(r.get::<_, Option<i64>>(i)?
                    .map(|t| Timestamp::from_unix_ms(to_u64(t))))
            };
            Ok(DeviceProgress {
                device,
                ring,
                stage: parse_stage(&r.get::<_, String>(2)?),
                command: r.get(3)?,
                baseline: r
                    .get::<_, Option<String>>(4)?
                    .and_then(|v| parse_verdict(&v)),
                sent_at: time(5)?,
                healthy_since: time(6)?,
                reason: r.get(7)?,
                baseline_seq: r.get::<_, Option<i64>>(8)?.map(to_u64),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT at, by_user, action, detail FROM rollout_log WHERE rollout_id = ?1 ORDER BY id",
    )?;
    let log = stmt
        .query_map(params![id], |r| {
            Ok(RolloutLog {
                at: Timestamp::from_unix_ms(to_u64(r.get(0)?)),
                by: r.get(1)?,
                action: r.get(2)?,
                detail: r.get(3)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(RolloutDetail {
        summary,
        devices,
        log,
    }))
}

pub(super) fn save(
    tx: &Transaction<'_>,
    id: i64,
    devices: &[DeviceProgress],
    state: Option<(RolloutState, Option<String>)>,
    lines: &[RolloutLog],
    at: Timestamp,
) -> Result<(), rusqlite::Error> {
    let ms = |t: Option<Timestamp>| t.map(|t| to_i64(t.unix_ms()));
    for d in devices {
        tx.prepare_cached(
            "UPDATE rollout_devices SET stage = ?3, command_id = ?4, baseline = ?5, sent_at = ?6, \
             healthy_since = ?7, reason = ?8, baseline_seq = ?9 WHERE rollout_id = ?1 AND \
             device_id = ?2",
        )?
        .execute(params![
            id,
            d.device.as_str(),
            d.stage.as_str(),
            d.command,
            d.baseline.map(|v| v.as_str()),
            ms(d.sent_at),
            ms(d.healthy_since),
            d.reason,
            d.baseline_seq.map(to_i64),
        ])?;
    }
    if let Some((state, reason)) = state {
        // An operator's abort is final: the runner's halt or done never replaces it.
        tx.prepare_cached(
            "UPDATE rollouts SET state = ?2, reason = ?3 WHERE id = ?1 AND state != 'aborted'",
        )?
        .execute(params![id, state.as_str(), reason])?;
    }
    for line in lines {
        log(tx, id, line)?;
    }
    tx.prepare_cached("UPDATE rollouts SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, to_i64(at.unix_ms())])?;
    Ok(())
}

pub(super) fn observe(
    conn: &Connection,
    devices: &[(DeviceId, Option<String>)],
) -> Result<Vec<Observed>, rusqlite::Error> {
    let mut out = Vec::with_capacity(devices.len());
    for (device, command) in devices {
        let mut seen: Observed = conn
            .prepare_cached(
                "SELECT presence, verdict, state_seq, utc_offset FROM devices WHERE id = ?1",
            )?
            .query_row(params![device.as_str()], |r| {
                Ok(Observed {
                    online: r
                        .get::<_, Option<String>>(0)?
                        .and_then(|p| parse_presence(&p))
                        == Some(roomready_protocol::Presence::Online),
                    verdict: r
                        .get::<_, Option<String>>(1)?
                        .and_then(|v| parse_verdict(&v)),
                    state_seq: r.get::<_, Option<i64>>(2)?.map(to_u64),
                    answer: None,
                    utc_offset_minutes: r
                        .get::<_, Option<i64>>(3)?
                        .and_then(|o| i16::try_from(o).ok()),
                })
            })
            .optional()?
            .unwrap_or_default();
        if let Some(command) = command {
            seen.answer = conn
                .prepare_cached(
                    "SELECT status, reason, message FROM commands WHERE id = ?1 AND \
                     device_id = ?2 AND status IS NOT NULL",
                )?
                .query_row(params![command, device.as_str()], |r| {
                    Ok(r.get::<_, String>(0)?).map(|status| {
                        parse_status(&status).map(|status| Answer {
                            status,
                            reason: r.get(1).ok().flatten(),
                            message: r.get(2).ok().flatten(),
                        })
                    })
                })
                .optional()?
                .flatten();
        }
        out.push(seen);
    }
    Ok(out)
}
