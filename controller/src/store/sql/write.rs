//! The write path: one batch in one transaction: each message applied to its device's
//! [`Snapshot`], the device's row, sequence numbers and history written, answers matched to
//! their commands.

use std::collections::{HashMap, HashSet};

use roomready_protocol::{CommandResponse, DeviceId, Message, State, Status, Timestamp};

use super::rows::*;
use super::{Conn, Value, args};
use crate::model::{Applied, Snapshot, Taken, apply};
use crate::seq::SeqLog;
use crate::store::{
    Batch, CommandRecord, Committed, DeviceRow, HistoryEntry, HistoryKind, Item, MAX_DECODE_ERRORS,
    NewHistory, StoreError,
};

pub(crate) fn insert_history(
    conn: &mut dyn Conn,
    entry: &NewHistory,
) -> Result<HistoryEntry, StoreError> {
    let id = conn.insert(
        "INSERT INTO history (device_id, at, ts, seq, kind, data) VALUES (?1, ?2, ?3, ?4, ?5, \
         ?6) RETURNING id",
        args![
            entry.device.as_str(),
            ms(entry.at),
            entry.ts.map(ms),
            entry.seq,
            entry.kind.as_str(),
            entry.data.to_string(),
        ],
    )?;
    Ok(HistoryEntry {
        id,
        device: entry.device.clone(),
        at: entry.at,
        ts: entry.ts,
        seq: entry.seq,
        kind: entry.kind,
        data: entry.data.clone(),
    })
}

/// History rows inserted per statement: the largest of these that fits what is left, so a
/// backend caching prepared statements keeps four shapes.
const HISTORY_CHUNKS: [usize; 4] = [128, 32, 8, 1];

/// Inserts `entries` in order, up to 128 rows per statement; the entries with their ids. The ids of one statement are allocated in the order of its rows (an identity or
/// `AUTOINCREMENT` column, under the store's write lock), so sorted they are the rows' ids.
fn insert_histories(
    conn: &mut dyn Conn,
    entries: &[NewHistory],
) -> Result<Vec<HistoryEntry>, StoreError> {
    let mut out = Vec::with_capacity(entries.len());
    let mut rest = entries;
    while !rest.is_empty() {
        let size = HISTORY_CHUNKS
            .into_iter()
            .find(|n| *n <= rest.len())
            .unwrap_or(1);
        let (chunk, after) = rest.split_at(size);
        rest = after;
        if size == 1 {
            out.push(insert_history(conn, &chunk[0])?);
            continue;
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut args = Vec::with_capacity(chunk.len() * 6);
        for entry in chunk {
            args.extend([
                Value::from(entry.device.as_str()),
                Value::from(ms(entry.at)),
                Value::from(entry.ts.map(ms)),
                Value::from(entry.seq),
                Value::from(entry.kind.as_str()),
                Value::from(entry.data.to_string()),
            ]);
        }
        let mut ids = conn
            .rows(
                &format!(
                    "INSERT INTO history (device_id, at, ts, seq, kind, data) VALUES {rows} \
                     RETURNING id"
                ),
                &args,
            )?
            .iter()
            .map(|r| r.int(0))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.len() != chunk.len() {
            return Err(StoreError::Database(format!(
                "{} history ids returned for {} rows",
                ids.len(),
                chunk.len()
            )));
        }
        ids.sort_unstable();
        for (entry, id) in chunk.iter().zip(ids) {
            out.push(HistoryEntry {
                id,
                device: entry.device.clone(),
                at: entry.at,
                ts: entry.ts,
                seq: entry.seq,
                kind: entry.kind,
                data: entry.data.clone(),
            });
        }
    }
    Ok(out)
}

/// Writes one device's counters (creating its row on first sight) and, when new, its status;
/// with `returning`, the row as it is now.
fn write_counters(
    conn: &mut dyn Conn,
    id: &DeviceId,
    snapshot: &Snapshot,
    status: Option<&Status>,
    returning: bool,
) -> Result<Option<DeviceRow>, StoreError> {
    let (presence, json) = match status {
        Some(status) => (
            Some(status.status.as_str()),
            Some(String::from_utf8_lossy(&status.encode()).into_owned()),
        ),
        None => (None, None),
    };
    let set_status = if status.is_some() {
        ", presence = excluded.presence, status = excluded.status"
    } else {
        ""
    };
    let returning = if returning {
        format!(" RETURNING {ROW_COLUMNS}")
    } else {
        String::new()
    };
    let rows = conn.rows(
        &format!(
            "INSERT INTO devices (id, first_seen, last_seen, seq_ranges, duplicates, dropped, \
             missing, presence, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, \
             seq_ranges = excluded.seq_ranges, duplicates = excluded.duplicates, \
             dropped = excluded.dropped, missing = excluded.missing{set_status}{returning}"
        ),
        args![
            id.as_str(),
            ms(snapshot.first_seen),
            ms(snapshot.last_seen),
            snapshot.seq.to_string(),
            snapshot.duplicates,
            snapshot.dropped,
            snapshot.seq.missing(),
            presence,
            json,
        ],
    )?;
    rows.first().map(device_row).transpose()
}

/// Writes a device's new state: its columns, placement and current findings (the counters
/// first, so that its row exists).
fn write_state(
    conn: &mut dyn Conn,
    id: &DeviceId,
    snapshot: &Snapshot,
    state: &State,
) -> Result<(), StoreError> {
    write_counters(conn, id, snapshot, None, false)?;
    let top = snapshot.top_finding();
    let json = String::from_utf8_lossy(&state.encode()).into_owned();
    conn.exec(
        "UPDATE devices SET kind = ?2, app_version = ?3, os_build = ?4, agent_version = ?5, \
         verdict = ?6, verdict_rank = ?7, top_code = ?8, top_severity = ?9, \
         top_severity_rank = ?10, top_title = ?11, findings = ?12, state_ts = ?13, \
         state_seq = ?14, state = ?15 WHERE id = ?1",
        args![
            id.as_str(),
            state.facts.kind.as_str(),
            state.facts.app_version.as_ref(),
            state.facts.os_build.as_ref(),
            &state.agent_version,
            state.verdict.as_str(),
            i64::from(state.verdict.rank()),
            top.map(|t| t.0),
            top.map(|t| t.1.as_str()),
            top.map(|t| severity_rank(t.1)),
            top.map(|t| t.2),
            snapshot.findings.len() as u64,
            ms(state.ts),
            state.seq,
            json,
        ],
    )?;
    super::placement::write(conn, id.as_str(), &state.placement)?;
    conn.exec(
        "DELETE FROM device_findings WHERE device_id = ?1",
        args![id.as_str()],
    )?;
    let mut written = HashSet::new();
    for finding in &state.findings {
        let Some((severity, _)) = snapshot.findings.get(&finding.code) else {
            continue;
        };
        // The entry kept for a code listed twice is its most severe one.
        if finding.severity != *severity || !written.insert(finding.code.as_str()) {
            continue;
        }
        conn.exec(
            "INSERT INTO device_findings (device_id, code, severity, title, remediation, \
             reference) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            args![
                id.as_str(),
                &finding.code,
                finding.severity.as_str(),
                &finding.title,
                &finding.remediation,
                &finding.reference,
            ],
        )?;
    }
    Ok(())
}

/// Records a device's answer against the command it answers (a final answer is never replaced
/// by a later `accepted`; an answer from another device than the command's is ignored).
fn record_response(
    conn: &mut dyn Conn,
    answer: &CommandResponse,
    at: Timestamp,
) -> Result<(), StoreError> {
    conn.exec(
        "UPDATE commands SET status = ?3, reason = ?4, message = ?5, answered_at = ?6 \
         WHERE id = ?1 AND device_id = ?2 AND (status IS NULL OR status = 'accepted' OR \
         ?3 != 'accepted')",
        args![
            answer.id.as_str(),
            answer.device.as_str(),
            status_name(answer.status),
            answer.reason.as_ref(),
            answer.message.as_ref(),
            ms(at),
        ],
    )?;
    Ok(())
}

/// The snapshots a commit starts from.
pub(crate) enum Snapshots<'a> {
    /// Every device's, kept beside the only writer (SQLite): a device missing is new.
    Cached(&'a mut HashMap<DeviceId, Snapshot>),
    /// None kept: other writers share the database (PostgreSQL), so each device's is read
    /// inside the transaction, which holds the store's write lock.
    Read(HashMap<DeviceId, Snapshot>),
}

impl Snapshots<'_> {
    fn map(&mut self) -> &mut HashMap<DeviceId, Snapshot> {
        match self {
            Snapshots::Cached(map) => map,
            Snapshots::Read(map) => map,
        }
    }
}

/// Applies `batch` inside the caller's transaction (the caller commits).
pub(crate) fn commit(
    conn: &mut dyn Conn,
    batch: &Batch,
    mut snapshots: Snapshots<'_>,
) -> Result<Committed, StoreError> {
    let mut committed = Committed::default();
    // Devices touched, in first-touch order, with their newest state and status.
    let mut touched: Vec<DeviceId> = Vec::new();
    let mut statuses: HashMap<DeviceId, Status> = HashMap::new();
    let mut failures = false;
    // History entries, written together at the end (in order).
    let mut history_due: Vec<NewHistory> = Vec::new();
    if let Snapshots::Read(map) = &mut snapshots {
        let mut ids: Vec<&DeviceId> = batch
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Message { message, .. } => Some(message.device()),
                Item::Undecodable(_) => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        *map = load_snapshots_of(conn, &ids)?;
    }
    for item in &batch.items {
        match item {
            Item::Undecodable(failure) => {
                conn.exec(
                    "INSERT INTO decode_failures (received_at, topic, reason, payload_head, \
                     payload_len) VALUES (?1, ?2, ?3, ?4, ?5)",
                    args![
                        ms(failure.received_at),
                        failure.topic.as_str(),
                        failure.reason.as_str(),
                        failure.payload_head.as_str(),
                        failure.payload_len as u64,
                    ],
                )?;
                committed.undecodable += 1;
                failures = true;
            }
            Item::Message {
                message,
                received_at,
            } => {
                let id = message.device().clone();
                let snapshot = snapshots
                    .map()
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
                            history_due.push(entry.clone());
                        }
                        if let Some(answer) = response {
                            record_response(conn, &answer, *received_at)?;
                        }
                        if let Some(state) = state {
                            // The findings table must match the snapshot as of this state.
                            let snapshot = snapshots.map().get(&id).expect("inserted above");
                            write_state(conn, &id, snapshot, &state)?;
                        }
                        if let Some(status) = status {
                            statuses.insert(id.clone(), status);
                        }
                    }
                }
            }
        }
    }
    committed.history = insert_histories(conn, &history_due)?;
    for id in &touched {
        let Some(snapshot) = snapshots.map().get(id) else {
            continue;
        };
        if let Some(row) = write_counters(conn, id, snapshot, statuses.get(id), true)? {
            committed.devices.push(row);
        }
    }
    if failures {
        conn.exec(
            "DELETE FROM decode_failures WHERE id <= (SELECT max(id) FROM decode_failures) - ?1",
            args![MAX_DECODE_ERRORS as u64],
        )?;
    }
    Ok(committed)
}

/// Records a command about to be sent, with its history entry (inside the caller's
/// transaction).
pub(crate) fn record_command(
    conn: &mut dyn Conn,
    command: &CommandRecord,
) -> Result<HistoryEntry, StoreError> {
    let known = conn.count(
        "SELECT count(*) FROM commands WHERE id = ?1",
        args![command.id.as_str()],
    )?;
    if known > 0 {
        return Err(StoreError::Invalid(format!(
            "a command with id {:?} exists already",
            command.id
        )));
    }
    let encoded = String::from_utf8_lossy(&command.command.encode()).into_owned();
    conn.exec(
        &format!(
            "INSERT INTO commands ({COMMAND_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, \
             NULL, NULL)"
        ),
        args![
            command.id.as_str(),
            command.device.as_str(),
            encoded.as_str(),
            command.by.as_str(),
            ms(command.sent_at),
        ],
    )?;
    let command_json: serde_json::Value =
        serde_json::from_str(&encoded).unwrap_or(serde_json::Value::Null);
    insert_history(
        conn,
        &NewHistory {
            device: command.device.clone(),
            at: command.sent_at,
            ts: None,
            seq: None,
            kind: HistoryKind::Command,
            data: serde_json::json!({
                "id": command.id,
                "command": command_json,
                "by": command.by,
            }),
        },
    )
}

const SNAPSHOT_COLUMNS: &str = "id, seq_ranges, duplicates, dropped, state_seq, verdict, status, \
                                first_seen, last_seen";

fn snapshot_of(row: &super::Row) -> Result<Snapshot, StoreError> {
    let status = row
        .opt_text(6)?
        .and_then(|s| Status::decode(s.as_bytes()).ok());
    Ok(Snapshot {
        seq: SeqLog::parse(&row.text(1)?).unwrap_or_default(),
        duplicates: row.u64(2)?,
        dropped: row.u64(3)?,
        state_seq: row.opt_u64(4)?,
        verdict: row.opt_text(5)?.and_then(|v| parse_verdict(&v)),
        findings: Default::default(),
        status: status.map(|s| {
            (
                s.seq,
                s.ts,
                s.status,
                s.reason.map(crate::store::reason_name),
            )
        }),
        first_seen: time(row.int(7)?),
        last_seen: time(row.int(8)?),
    })
}

/// Devices read per query when a commit reads the snapshots of its batch's devices.
const SNAPSHOT_CHUNK: usize = 512;

/// The snapshots of `ids` (those that have a row), each rebuilt from its row and its findings:
/// two queries per [`SNAPSHOT_CHUNK`] devices.
fn load_snapshots_of(
    conn: &mut dyn Conn,
    ids: &[&DeviceId],
) -> Result<HashMap<DeviceId, Snapshot>, StoreError> {
    let mut snapshots = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(SNAPSHOT_CHUNK) {
        // A power of two of ids (the last repeated), so a backend caching its prepared
        // statements keeps a few of these, not one per batch size.
        let size = chunk.len().next_power_of_two();
        let marks = vec!["?"; size].join(", ");
        let args: Vec<Value> = (0..size)
            .map(|i| Value::from(chunk[i.min(chunk.len() - 1)].as_str()))
            .collect();
        for row in conn.rows(
            &format!("SELECT {SNAPSHOT_COLUMNS} FROM devices WHERE id IN ({marks})"),
            &args,
        )? {
            let Ok(id) = device_id(&row, 0) else { continue };
            snapshots.insert(id, snapshot_of(&row)?);
        }
        for row in conn.rows(
            &format!(
                "SELECT device_id, code, severity, title FROM device_findings WHERE device_id \
                 IN ({marks})"
            ),
            &args,
        )? {
            add_finding(&mut snapshots, &row)?;
        }
    }
    Ok(snapshots)
}

/// A `device_id, code, severity, title` row into its device's snapshot.
fn add_finding(
    snapshots: &mut HashMap<DeviceId, Snapshot>,
    row: &super::Row,
) -> Result<(), StoreError> {
    let Ok(id) = device_id(row, 0) else {
        return Ok(());
    };
    if let (Some(snapshot), Some(severity)) =
        (snapshots.get_mut(&id), parse_severity(&row.text(2)?))
    {
        snapshot
            .findings
            .insert(row.text(1)?, (severity, row.text(3)?));
    }
    Ok(())
}

/// Every device's snapshot, rebuilt from the devices table and their findings.
pub(crate) fn load_snapshots(
    conn: &mut dyn Conn,
) -> Result<HashMap<DeviceId, Snapshot>, StoreError> {
    let mut snapshots = HashMap::new();
    for row in conn.rows(&format!("SELECT {SNAPSHOT_COLUMNS} FROM devices"), &[])? {
        let Ok(id) = device_id(&row, 0) else { continue };
        snapshots.insert(id, snapshot_of(&row)?);
    }
    for row in conn.rows(
        "SELECT device_id, code, severity, title FROM device_findings",
        &[],
    )? {
        add_finding(&mut snapshots, &row)?;
    }
    Ok(snapshots)
}
