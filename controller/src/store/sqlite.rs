//! The SQLite backend of [`Store`]: one database file in WAL mode, migrated at start, one writer
//! connection (with every device's [`Snapshot`] cached beside it: the writer is the only one who
//! changes them) and a small pool of reader connections, so pages read while ingest writes.
//!
//! At start the file is checked before anything is written: a file that is not a SQLite
//! database, a database of another application, a damaged one (`PRAGMA quick_check`) or one
//! written by a newer controller (a higher schema version) is an error naming the file and what
//! to do; it is never rewritten.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use roomready_protocol::{
    Command, CommandResponse, DeviceId, DeviceKind, Message, Presence, ResponseStatus, Severity,
    State, Status, Timestamp, Verdict,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, params};

use super::migrations::{APPLICATION_ID, MIGRATIONS, latest};
use super::{
    Batch, CommandRecord, Committed, DecodeFailure, DeviceDetail, DevicePage, DeviceQuery,
    DeviceRow, FindingCount, FindingRef, FleetSummary, HistoryEntry, HistoryKind, HistoryQuery,
    Item, MAX_DECODE_ERRORS, NewHistory, Retention, SeqSummary, SortKey, Store, StoreError,
};
use crate::model::{Applied, Snapshot, Taken, apply};
use crate::seq::SeqLog;

/// How durable a commit is (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// A commit survives the controller being killed; the last commits may be lost if the
    /// machine loses power (WAL with `synchronous = NORMAL`).
    #[default]
    Normal,
    /// A commit survives a power loss too, at an fsync per commit.
    Full,
}

/// How to open the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub path: PathBuf,
    pub synchronous: Synchronous,
}

/// Reader connections kept open for reuse.
const READERS: usize = 4;

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Writer>,
    readers: Mutex<Vec<Connection>>,
}

struct Writer {
    conn: Connection,
    snapshots: HashMap<DeviceId, Snapshot>,
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `options.path`.
    pub fn open(options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path = options.path.clone();
        let conn = open_connection(&path, true)?;
        check_and_migrate(&conn, &path)?;
        let synchronous = match options.synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(db)?;
        let snapshots = load_snapshots(&conn)?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(Writer { conn, snapshots }),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a reader connection.
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, false)?,
        };
        let result = f(&conn).map_err(db);
        if let Ok(mut pool) = self.readers.lock()
            && pool.len() < READERS
        {
            pool.push(conn);
        }
        result
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, Writer>, StoreError> {
        self.writer
            .lock()
            .map_err(|_| StoreError::Database("the writer was poisoned by a panic".into()))
    }
}

/// Opens a connection; `create` for the writer (which may create the file).
fn open_connection(path: &Path, create: bool) -> Result<Connection, StoreError> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Open(format!("cannot open database {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db)?;
    Ok(conn)
}

/// Refuses a file that is not this application's database, is damaged or is newer; then brings
/// an older schema up to date, each migration in its own transaction.
fn check_and_migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let not_ours = |detail: String| {
        StoreError::Open(format!(
            "{} is not a usable roomready controller database: {detail}. It was left as it is: \
             restore a backup, or move it aside to start with an empty database",
            path.display()
        ))
    };
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if tables > 0 && application_id != APPLICATION_ID {
        return Err(not_ours(format!(
            "it is a SQLite database of another application (application_id {application_id:#x})"
        )));
    }
    let check: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if check != "ok" {
        return Err(not_ours(format!("it is damaged ({check})")));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| not_ours(e.to_string()))?;
    if version > latest() {
        return Err(StoreError::Open(format!(
            "{} was written by a newer roomready-controller (schema {version}; this one knows up \
             to {}). It was left as it is: run the newer controller, or restore a backup made \
             with this version",
            path.display(),
            latest()
        )));
    }
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Open(format!(
            "{}: cannot switch to WAL mode (the file system may not support it): {mode}",
            path.display()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let number = index as i64 + 1;
        if number <= version {
            continue;
        }
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {sql}; PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {number}; COMMIT;"
        ))
        .map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            StoreError::Open(format!(
                "{}: migration {number} failed: {e}",
                path.display()
            ))
        })?;
    }
    Ok(())
}

/// Every device's snapshot, rebuilt from the devices table and their findings.
fn load_snapshots(conn: &Connection) -> Result<HashMap<DeviceId, Snapshot>, StoreError> {
    let mut snapshots = HashMap::new();
    let mut stmt = conn
        .prepare(
            "SELECT id, seq_ranges, duplicates, dropped, state_seq, verdict, status, first_seen, \
             last_seen FROM devices",
        )
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        let id: String = row.get(0).map_err(db)?;
        let Ok(id) = DeviceId::new(id) else { continue };
        let ranges: String = row.get(1).map_err(db)?;
        let status: Option<String> = row.get(6).map_err(db)?;
        let status = status.and_then(|s| Status::decode(s.as_bytes()).ok());
        let snapshot = Snapshot {
            seq: SeqLog::parse(&ranges).unwrap_or_default(),
            duplicates: get_u64(row, 2)?,
            dropped: get_u64(row, 3)?,
            state_seq: row.get::<_, Option<i64>>(4).map_err(db)?.map(to_u64),
            verdict: row
                .get::<_, Option<String>>(5)
                .map_err(db)?
                .and_then(|v| parse_verdict(&v)),
            findings: Default::default(),
            status: status.map(|s| (s.seq, s.ts, s.status, s.reason.map(super::reason_name))),
            first_seen: Timestamp::from_unix_ms(get_u64(row, 7)?),
            last_seen: Timestamp::from_unix_ms(get_u64(row, 8)?),
        };
        snapshots.insert(id, snapshot);
    }
    let mut stmt = conn
        .prepare("SELECT device_id, code, severity, title FROM device_findings")
        .map_err(db)?;
    let mut rows = stmt.query([]).map_err(db)?;
    while let Some(row) = rows.next().map_err(db)? {
        let id: String = row.get(0).map_err(db)?;
        let Ok(id) = DeviceId::new(id) else { continue };
        let severity: String = row.get(2).map_err(db)?;
        if let (Some(snapshot), Some(severity)) =
            (snapshots.get_mut(&id), parse_severity(&severity))
        {
            snapshot
                .findings
                .insert(row.get(1).map_err(db)?, (severity, row.get(3).map_err(db)?));
        }
    }
    Ok(snapshots)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn get_u64(row: &Row<'_>, index: usize) -> Result<u64, StoreError> {
    row.get::<_, i64>(index).map(to_u64).map_err(db)
}

fn parse_verdict(text: &str) -> Option<Verdict> {
    Verdict::ALL.into_iter().find(|v| v.as_str() == text)
}

fn parse_severity(text: &str) -> Option<Severity> {
    [Severity::Info, Severity::Warning, Severity::Critical]
        .into_iter()
        .find(|s| s.as_str() == text)
}

fn parse_kind(text: &str) -> Option<DeviceKind> {
    [
        DeviceKind::TeamsRoomsWindows,
        DeviceKind::SurfaceHub,
        DeviceKind::TeamsRoomsAndroid,
        DeviceKind::Unknown,
    ]
    .into_iter()
    .find(|k| k.as_str() == text)
}

fn parse_presence(text: &str) -> Option<Presence> {
    [Presence::Online, Presence::Offline]
        .into_iter()
        .find(|p| p.as_str() == text)
}

fn severity_rank(severity: Severity) -> i64 {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

fn status_name(status: ResponseStatus) -> &'static str {
    match status {
        ResponseStatus::Accepted => "accepted",
        ResponseStatus::Rejected => "rejected",
        ResponseStatus::Succeeded => "succeeded",
        ResponseStatus::Failed => "failed",
    }
}

fn parse_status(text: &str) -> Option<ResponseStatus> {
    [
        ResponseStatus::Accepted,
        ResponseStatus::Rejected,
        ResponseStatus::Succeeded,
        ResponseStatus::Failed,
    ]
    .into_iter()
    .find(|s| status_name(*s) == text)
}

/// The columns of a [`DeviceRow`], in [`device_row`]'s order.
const ROW_COLUMNS: &str = "id, kind, app_version, os_build, agent_version, verdict, top_code, \
                           top_severity, top_title, findings, presence, last_seen, state_ts";

fn device_row(row: &Row<'_>) -> Result<DeviceRow, rusqlite::Error> {
    let id: String = row.get(0)?;
    let id = DeviceId::new(id).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let top_finding = match (
        text(6)?,
        text(7)?.and_then(|s| parse_severity(&s)),
        text(8)?,
    ) {
        (Some(code), Some(severity), Some(title)) => Some(FindingRef {
            code,
            severity,
            title,
        }),
        _ => None,
    };
    Ok(DeviceRow {
        id,
        kind: text(1)?.and_then(|k| parse_kind(&k)),
        app_version: text(2)?,
        os_build: text(3)?,
        agent_version: text(4)?,
        verdict: text(5)?.and_then(|v| parse_verdict(&v)),
        top_finding,
        findings: to_u64(row.get(9)?),
        presence: text(10)?.and_then(|p| parse_presence(&p)),
        last_seen: Timestamp::from_unix_ms(to_u64(row.get(11)?)),
        state_ts: row
            .get::<_, Option<i64>>(12)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
    })
}

fn history_entry(row: &Row<'_>) -> Result<HistoryEntry, rusqlite::Error> {
    let device: String = row.get(1)?;
    let device = DeviceId::new(device).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let kind: String = row.get(5)?;
    let kind = HistoryKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Text,
            format!("unknown history kind {kind:?}").into(),
        )
    })?;
    let data: String = row.get(6)?;
    Ok(HistoryEntry {
        id: row.get(0)?,
        device,
        at: Timestamp::from_unix_ms(to_u64(row.get(2)?)),
        ts: row
            .get::<_, Option<i64>>(3)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
        seq: row.get::<_, Option<i64>>(4)?.map(to_u64),
        kind,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
    })
}

fn command_record(row: &Row<'_>) -> Result<CommandRecord, rusqlite::Error> {
    let conversion = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into())
    };
    let device: String = row.get(1)?;
    let device = DeviceId::new(device).map_err(|e| conversion(1, e.to_string()))?;
    let command: String = row.get(2)?;
    let command = Command::decode(command.as_bytes()).map_err(|e| conversion(2, e.to_string()))?;
    Ok(CommandRecord {
        id: row.get(0)?,
        device,
        command,
        by: row.get(3)?,
        sent_at: Timestamp::from_unix_ms(to_u64(row.get(4)?)),
        status: row
            .get::<_, Option<String>>(5)?
            .and_then(|s| parse_status(&s)),
        reason: row.get(6)?,
        message: row.get(7)?,
        answered_at: row
            .get::<_, Option<i64>>(8)?
            .map(|t| Timestamp::from_unix_ms(to_u64(t))),
    })
}

const COMMAND_COLUMNS: &str =
    "id, device_id, command, by_user, sent_at, status, reason, message, answered_at";

fn insert_history(tx: &Transaction<'_>, entry: &NewHistory) -> Result<HistoryEntry, StoreError> {
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
fn write_device(
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
fn record_response(
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

fn select_row(tx: &Transaction<'_>, id: &DeviceId) -> Result<Option<DeviceRow>, StoreError> {
    tx.prepare_cached(&format!("SELECT {ROW_COLUMNS} FROM devices WHERE id = ?1"))
        .and_then(|mut s| s.query_row(params![id.as_str()], device_row).optional())
        .map_err(db)
}

impl Writer {
    fn commit(&mut self, batch: &Batch) -> Result<Committed, StoreError> {
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

impl Store for SqliteStore {
    fn commit(&self, batch: &Batch) -> Result<Committed, StoreError> {
        let mut writer = self.writer()?;
        let result = writer.commit(batch);
        if result.is_err() {
            // The snapshots may hold what was rolled back: take them from the database again.
            if let Ok(snapshots) = load_snapshots(&writer.conn) {
                writer.snapshots = snapshots;
            }
        }
        result
    }

    fn record_command(&self, command: &CommandRecord) -> Result<HistoryEntry, StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        let encoded = String::from_utf8_lossy(&command.command.encode()).into_owned();
        tx.execute(
            &format!(
                "INSERT INTO commands ({COMMAND_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, NULL, NULL, \
                 NULL, NULL)"
            ),
            params![
                command.id,
                command.device.as_str(),
                encoded,
                command.by,
                to_i64(command.sent_at.unix_ms()),
            ],
        )
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Invalid(format!("a command with id {:?} exists already", command.id))
            }
            other => db(other),
        })?;
        let command_json: serde_json::Value =
            serde_json::from_str(&encoded).unwrap_or(serde_json::Value::Null);
        let entry = insert_history(
            &tx,
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
        )?;
        tx.commit().map_err(db)?;
        Ok(entry)
    }

    fn summary(&self) -> Result<FleetSummary, StoreError> {
        self.read(|conn| {
            let mut summary = FleetSummary {
                by_verdict: Verdict::ALL.iter().map(|v| (*v, 0)).collect(),
                ..FleetSummary::default()
            };
            let mut stmt = conn.prepare_cached(
                "SELECT verdict, presence, kind, count(*), sum(missing), \
                 sum(min(missing, dropped)) FROM devices GROUP BY verdict, presence, kind",
            )?;
            let mut rows = stmt.query([])?;
            let mut kinds: Vec<(DeviceKind, u64)> = Vec::new();
            while let Some(row) = rows.next()? {
                let verdict = row.get::<_, Option<String>>(0)?;
                let presence = row.get::<_, Option<String>>(1)?;
                let kind = row
                    .get::<_, Option<String>>(2)?
                    .and_then(|k| parse_kind(&k));
                let count = to_u64(row.get(3)?);
                summary.devices += count;
                summary.missing += to_u64(row.get::<_, Option<i64>>(4)?.unwrap_or(0));
                summary.missing_explained += to_u64(row.get::<_, Option<i64>>(5)?.unwrap_or(0));
                match verdict.and_then(|v| parse_verdict(&v)) {
                    Some(v) => {
                        if let Some(slot) = summary.by_verdict.iter_mut().find(|(x, _)| *x == v) {
                            slot.1 += count;
                        }
                    }
                    None => summary.no_state += count,
                }
                match presence.and_then(|p| parse_presence(&p)) {
                    Some(Presence::Online) => summary.online += count,
                    Some(Presence::Offline) => summary.offline += count,
                    None => summary.presence_unknown += count,
                }
                if let Some(kind) = kind {
                    match kinds.iter_mut().find(|(k, _)| *k == kind) {
                        Some(slot) => slot.1 += count,
                        None => kinds.push((kind, count)),
                    }
                }
            }
            kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.as_str().cmp(b.0.as_str())));
            summary.by_kind = kinds;
            Ok(summary)
        })
    }

    fn devices(&self, query: &DeviceQuery) -> Result<DevicePage, StoreError> {
        let per_page = query.per_page.clamp(1, DeviceQuery::MAX_PER_PAGE);
        let page = query.page.max(1);
        let mut clauses: Vec<&str> = Vec::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        use rusqlite::types::Value as V;
        if let Some(verdict) = query.verdict {
            clauses.push("verdict = ?");
            args.push(V::Text(verdict.as_str().into()));
        }
        if let Some(kind) = query.kind {
            clauses.push("kind = ?");
            args.push(V::Text(kind.as_str().into()));
        }
        if let Some(code) = &query.finding {
            clauses.push("id IN (SELECT device_id FROM device_findings WHERE code = ?)");
            args.push(V::Text(code.clone()));
        }
        if let Some(online) = query.online {
            if online {
                clauses.push("presence = 'online'");
            } else {
                clauses.push("(presence IS NULL OR presence != 'online')");
            }
        }
        if let Some(text) = query.text.as_deref().filter(|t| !t.is_empty()) {
            let text: String = text.chars().take(DeviceQuery::MAX_TEXT).collect();
            let pattern = format!(
                "%{}%",
                text.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            clauses.push(
                "(id LIKE ? ESCAPE '\\' OR app_version LIKE ? ESCAPE '\\' OR os_build LIKE ? \
                 ESCAPE '\\' OR top_code LIKE ? ESCAPE '\\' OR top_title LIKE ? ESCAPE '\\')",
            );
            for _ in 0..5 {
                args.push(V::Text(pattern.clone()));
            }
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        let direction = if query.descending { "DESC" } else { "ASC" };
        let order = match query.sort {
            SortKey::Id => format!("id {direction}"),
            SortKey::Kind => format!("kind IS NULL, kind {direction}, id"),
            SortKey::AppVersion => format!("app_version IS NULL, app_version {direction}, id"),
            SortKey::OsBuild => format!("os_build IS NULL, os_build {direction}, id"),
            SortKey::Verdict => format!("verdict_rank IS NULL, verdict_rank {direction}, id"),
            SortKey::TopFinding => format!(
                "top_severity_rank IS NULL, top_severity_rank {direction}, top_code {direction}, id"
            ),
            SortKey::LastSeen => format!("last_seen {direction}, id"),
            SortKey::Online => format!("presence IS NULL, presence {direction}, id"),
        };
        self.read(|conn| {
            let total: i64 = conn.query_row(
                &format!("SELECT count(*) FROM devices{filter}"),
                rusqlite::params_from_iter(args.iter()),
                |r| r.get(0),
            )?;
            let mut all = args.clone();
            all.push(V::Integer(to_i64(per_page)));
            all.push(V::Integer(to_i64((page - 1).saturating_mul(per_page))));
            let mut stmt = conn.prepare(&format!(
                "SELECT {ROW_COLUMNS} FROM devices{filter} ORDER BY {order} LIMIT ? OFFSET ?"
            ))?;
            let devices = stmt
                .query_map(rusqlite::params_from_iter(all.iter()), device_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DevicePage {
                total: to_u64(total),
                page,
                per_page,
                devices,
            })
        })
    }

    fn device(&self, id: &DeviceId) -> Result<Option<DeviceDetail>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS}, state, status, seq_ranges, duplicates, dropped, first_seen \
                 FROM devices WHERE id = ?1"
            ))?;
            stmt.query_row(params![id.as_str()], |row| {
                let base = 13;
                let state: Option<String> = row.get(base)?;
                let status: Option<String> = row.get(base + 1)?;
                let ranges: String = row.get(base + 2)?;
                let log = SeqLog::parse(&ranges).unwrap_or_default();
                let dropped = to_u64(row.get(base + 4)?);
                Ok(DeviceDetail {
                    row: device_row(row)?,
                    state: state.and_then(|s| State::decode(s.as_bytes()).ok()),
                    status: status.and_then(|s| Status::decode(s.as_bytes()).ok()),
                    seq: SeqSummary {
                        ranges,
                        highest: log.highest(),
                        received: log.received(),
                        duplicates: to_u64(row.get(base + 3)?),
                        missing: log.missing(),
                        explained: log.missing().min(dropped),
                    },
                    first_seen: Timestamp::from_unix_ms(to_u64(row.get(base + 5)?)),
                })
            })
            .optional()
        })
    }

    fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>, StoreError> {
        use rusqlite::types::Value as V;
        let mut clauses: Vec<String> = Vec::new();
        let mut args: Vec<V> = Vec::new();
        if let Some(device) = &query.device {
            clauses.push("device_id = ?".into());
            args.push(V::Text(device.as_str().into()));
        }
        if !query.kinds.is_empty() {
            let marks = vec!["?"; query.kinds.len()].join(", ");
            clauses.push(format!("kind IN ({marks})"));
            args.extend(query.kinds.iter().map(|k| V::Text(k.as_str().into())));
        }
        if let Some(before) = query.before {
            clauses.push("id < ?".into());
            args.push(V::Integer(before));
        }
        if let Some(since) = query.since {
            clauses.push("at >= ?".into());
            args.push(V::Integer(to_i64(since.unix_ms())));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", clauses.join(" AND "))
        };
        args.push(V::Integer(to_i64(
            query.limit.clamp(1, HistoryQuery::MAX_LIMIT),
        )));
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT id, device_id, at, ts, seq, kind, data FROM history{filter} \
                 ORDER BY id DESC LIMIT ?"
            ))?;
            stmt.query_map(rusqlite::params_from_iter(args.iter()), history_entry)?
                .collect()
        })
    }

    fn findings(&self) -> Result<Vec<FindingCount>, StoreError> {
        self.read(|conn| {
            let mut counts: Vec<FindingCount> = Vec::new();
            let mut stmt = conn.prepare_cached(
                "SELECT f.code, f.severity, f.title, f.remediation, f.reference, d.verdict, \
                 count(*) FROM device_findings f JOIN devices d ON d.id = f.device_id \
                 GROUP BY f.code, d.verdict ORDER BY f.code",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(row) = rows.next()? {
                let code: String = row.get(0)?;
                let severity = parse_severity(&row.get::<_, String>(1)?).unwrap_or(Severity::Info);
                let verdict = row
                    .get::<_, Option<String>>(5)?
                    .and_then(|v| parse_verdict(&v));
                let count = to_u64(row.get(6)?);
                let entry = match counts.last_mut() {
                    Some(last) if last.code == code => last,
                    _ => {
                        counts.push(FindingCount {
                            code,
                            severity,
                            title: row.get(2)?,
                            remediation: row.get(3)?,
                            reference: row.get(4)?,
                            devices: 0,
                            by_verdict: Vec::new(),
                        });
                        counts.last_mut().expect("just pushed")
                    }
                };
                entry.severity = entry.severity.max(severity);
                entry.devices += count;
                if let Some(verdict) = verdict {
                    entry.by_verdict.push((verdict, count));
                }
            }
            for count in &mut counts {
                count
                    .by_verdict
                    .sort_by_key(|(v, _)| std::cmp::Reverse(v.rank()));
            }
            counts.sort_by(|a, b| b.devices.cmp(&a.devices).then(a.code.cmp(&b.code)));
            Ok(counts)
        })
    }

    fn devices_with_finding(&self, code: &str, limit: u64) -> Result<Vec<DeviceRow>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM devices WHERE id IN \
                 (SELECT device_id FROM device_findings WHERE code = ?1) ORDER BY id LIMIT ?2"
            ))?;
            stmt.query_map(params![code, to_i64(limit)], device_row)?
                .collect()
        })
    }

    fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {COMMAND_COLUMNS} FROM commands WHERE id = ?1"
            ))?
            .query_row(params![id], command_record)
            .optional()
        })
    }

    fn commands(&self, device: &DeviceId, limit: u64) -> Result<Vec<CommandRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COMMAND_COLUMNS} FROM commands WHERE device_id = ?1 \
                 ORDER BY sent_at DESC, rowid DESC LIMIT ?2"
            ))?;
            stmt.query_map(params![device.as_str(), to_i64(limit)], command_record)?
                .collect()
        })
    }

    fn decode_failures(&self) -> Result<Vec<DecodeFailure>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT received_at, topic, reason, payload_head, payload_len \
                 FROM decode_failures ORDER BY id DESC LIMIT ?1",
            )?;
            stmt.query_map(params![MAX_DECODE_ERRORS as i64], |row| {
                Ok(DecodeFailure {
                    received_at: Timestamp::from_unix_ms(to_u64(row.get(0)?)),
                    topic: row.get(1)?,
                    reason: row.get(2)?,
                    payload_head: row.get(3)?,
                    payload_len: usize::try_from(to_u64(row.get(4)?)).unwrap_or(usize::MAX),
                })
            })?
            .collect()
        })
    }

    fn prune(&self, retention: Retention, now: Timestamp) -> Result<u64, StoreError> {
        let day = 86_400_000u64;
        let cutoff = |days: u64| to_i64(now.unix_ms().saturating_sub(days.saturating_mul(day)));
        let writer = self.writer()?;
        let events = writer
            .conn
            .execute(
                "DELETE FROM history WHERE kind = 'event' AND at < ?1",
                params![cutoff(retention.events_days)],
            )
            .map_err(db)?;
        let transitions = writer
            .conn
            .execute(
                "DELETE FROM history WHERE kind != 'event' AND at < ?1",
                params![cutoff(retention.transitions_days)],
            )
            .map_err(db)?;
        writer
            .conn
            .execute(
                "DELETE FROM commands WHERE sent_at < ?1",
                params![cutoff(retention.transitions_days)],
            )
            .map_err(db)?;
        Ok((events + transitions) as u64)
    }
}
