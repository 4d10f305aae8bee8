//! The write path: one batch in one transaction: each message applied to its device's cached
//! [`Snapshot`], the device's row, sequence numbers and history written, answers matched to
//! their commands.

use std::collections::{HashMap, HashSet};

use roomready_protocol::{CommandResponse, DeviceId, Message, State, Status, Timestamp};
use rusqlite::{OptionalExtension, Transaction, params};

use super::rows::*;
use super::{Writer, db};
use crate::model::{Applied, Snapshot, Taken, apply};
use crate::store::{
    Batch, Committed, DeviceRow, HistoryEntry, Item, MAX_DECODE_ERRORS, NewHistory, StoreError,
};

pub(super) fn insert_history(
    tx: &Transaction<'_>,
    entry: &NewHistory,
) -> Result<HistoryEntry, StoreError> {
    let data = entry.data.to_string();
    tx.prepare_cached(
        "INSERT INTO history (device_id, at, ts, seq, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            entry.device.as_str(),
            to_i64(entry.at.unix_ms()),
            entry.ts.map(|t| to_i64(t.unix_ms())),
            entry.seq.map(to_i64),
            entry.kind.as_str(),
            data,
        ])
    })
    .map_err(db)?;
    Ok(HistoryEntry {
        id: tx.last_insert_rowid(),
        device: entry.device.clone(),
        at: entry.at,
        ts: entry.ts,
        seq: entry.seq,
        kind: entry.kind,
        data: entry.data.clone(),
    })
}

/// Writes what is current for one device: its counters always, its state and status when new.
pub(super) fn write_device(
    tx: &Transaction<'_>,
    id: &DeviceId,
    snapshot: &Snapshot,
    state: Option<&State>,
    status: Option<&Status>,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO devices (id, first_seen, last_seen) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.as_str(),
            to_i64(snapshot.first_seen.unix_ms()),
            to_i64(snapshot.last_seen.unix_ms())
        ])
    })
    .map_err(db)?;
    tx.prepare_cached(
        "UPDATE devices SET last_seen = ?2, seq_ranges = ?3, duplicates = ?4, dropped = ?5, \
         missing = ?6 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            id.as_str(),
            to_i64(snapshot.last_seen.unix_ms()),
            snapshot.seq.to_string(),
            to_i64(snapshot.duplicates),
            to_i64(snapshot.dropped),
            to_i64(snapshot.seq.missing()),
        ])
    })
    .map_err(db)?;
    if let Some(state) = state {
        let top = snapshot.top_finding();
        let json = String::from_utf8_lossy(&state.encode()).into_owned();
        tx.prepare_cached(
            "UPDATE devices SET kind = ?2, app_version = ?3, os_build = ?4, agent_version = ?5, \
             verdict = ?6, verdict_rank = ?7, top_code = ?8, top_severity = ?9, \
             top_severity_rank = ?10, top_title = ?11, findings = ?12, state_ts = ?13, \
             state_seq = ?14, state = ?15 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id.as_str(),
                state.facts.kind.as_str(),
                state.facts.app_version,
                state.facts.os_build,
                state.agent_version,
                state.verdict.as_str(),
                i64::from(state.verdict.rank()),
                top.map(|t| t.0),
                top.map(|t| t.1.as_str()),
                top.map(|t| severity_rank(t.1)),
                top.map(|t| t.2),
                to_i64(snapshot.findings.len() as u64),
                to_i64(state.ts.unix_ms()),
                to_i64(state.seq),
                json,
            ])
        })
        .map_err(db)?;
        super::placement::write(tx, id.as_str(), &state.placement).map_err(db)?;
        tx.prepare_cached("DELETE FROM device_findings WHERE device_id = ?1")
            .and_then(|mut s| s.execute(params![id.as_str()]))
            .map_err(db)?;
        let mut written = HashSet::new();
        for finding in &state.findings {
            let Some((severity, _)) = snapshot.findings.get(&finding.code) else {
                continue;
            };
            // The entry kept for a code listed twice is its most severe one.
            if finding.severity != *severity || !written.insert(finding.code.as_str()) {
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO device_findings (device_id, code, severity, title, remediation, \
                 reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id.as_str(),
                    finding.code,
                    finding.severity.as_str(),
                    finding.title,
                    finding.remediation,
                    finding.reference,
                ])
            })
            .map_err(db)?;
        }
    }
    if let Some(status) = status {
        let json = String::from_utf8_lossy(&status.encode()).into_owned();
        tx.prepare_cached("UPDATE devices SET presence = ?2, status = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id.as_str(), status.status.as_str(), json]))
            .map_err(db)?;
    }
    Ok(())
}

/// Records a device's answer against the command it answers (a final answer is never replaced
/// by a later `accepted`; an answer from another device than the command's is ignored).
pub(super) fn record_response(
    tx: &Transaction<'_>,
    answer: &CommandResponse,
    at: Timestamp,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "UPDATE commands SET status = ?3, reason = ?4, message = ?5, answered_at = ?6 \
         WHERE id = ?1 AND device_id = ?2 AND (status IS NULL OR status = 'accepted' OR ?3 != 'accepted')",
    )
    .and_then(|mut s| {
        s.execute(params![
            answer.id,
            answer.device.as_str(),
            status_name(answer.status),
            answer.reason,
            answer.message,
            to_i64(at.unix_ms()),
        ])
    })
    .map_err(db)?;
    Ok(())
}

pub(super) fn select_row(
    tx: &Transaction<'_>,
    id: &DeviceId,
) -> Result<Option<DeviceRow>, StoreError> {
    tx.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM devices WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id.as_str()], device_row).optional())
        .map_err(db)
}

impl Writer {
    pub(super) fn commit(&mut self, batch: &Batch) -> Result<Committed, StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        let mut committed = Committed::default();
        // Devices touched, in first-touch order, with their newest state and status.
        let mut touched: Vec<DeviceId> = Vec::new();
        let mut statuses: HashMap<DeviceId, Status> = HashMap::new();
        let mut failures = false;
        for item in &batch.items {
            match item {
                Item::Undecodable(failure) => {
                    tx.prepare_cached(
                        "INSERT INTO decode_failures (received_at, topic, reason, payload_head, \
                         payload_len) VALUES (?1, ?2, ?3, ?4, ?5)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            to_i64(failure.received_at.unix_ms()),
                            failure.topic,
                            failure.reason,
                            failure.payload_head,
                            to_i64(failure.payload_len as u64),
                        ])
                    })
                    .map_err(db)?;
                    committed.undecodable += 1;
                    failures = true;
                }
                Item::Message {
                    message,
                    received_at,
                } => {
                    let id = message.device().clone();
                    let snapshot = self
                        .snapshots
                        .entry(id.clone())
                        .or_insert_with(|| Snapshot::new(*received_at));
                    if !touched.contains(&id) {
                        touched.push(id.clone());
                    }
                    match apply(snapshot, message, *received_at) {
                        Applied::Duplicate => committed.duplicates += 1,
                        Applied::Taken(taken) => {
                            let Taken {
                                history,
                                state,
                                status,
                                response,
                                gap,
                            } = *taken;
                            committed.taken += 1;
                            committed.gaps += gap;
                            for entry in &history {
                                committed.history.push(insert_history(&tx, entry)?);
                            }
                            if let Some(answer) = response {
                                record_response(&tx, &answer, *received_at)?;
                            }
                            if let Some(state) = state {
                                // The findings table must match the snapshot as of this state.
                                write_device(&tx, &id, snapshot, Some(&state), None)?;
                            }
                            if let Some(status) = status {
                                statuses.insert(id.clone(), status);
                            }
                        }
                    }
                }
            }
        }
        for id in &touched {
            let Some(snapshot) = self.snapshots.get(id) else {
                continue;
            };
            write_device(&tx, id, snapshot, None, statuses.get(id))?;
            if let Some(row) = select_row(&tx, id)? {
                committed.devices.push(row);
            }
        }
        if failures {
            tx.execute(
                "DELETE FROM decode_failures WHERE id <= (SELECT max(id) FROM decode_failures) - ?1",
                params![MAX_DECODE_ERRORS as i64],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Ok(committed)
    }
}
