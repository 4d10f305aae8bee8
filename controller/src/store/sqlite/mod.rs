//! The SQLite backend of [`Store`]: one database file in WAL mode, migrated at start, one writer
//! connection (with every device's [`Snapshot`] cached beside it: the writer is the only one who
//! changes them) and a small pool of reader connections, so pages read while ingest writes.
//!
//! At start the file is checked before anything is written: a file that is not a SQLite
//! database, a database of another application, a damaged one (`PRAGMA quick_check`) or one
//! written by a newer controller (a higher schema version) is an error naming the file and what
//! to do; it is never rewritten.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use roomready_protocol::{
    DeviceId, DeviceKind, Message, Presence, Severity, State, Status, Timestamp, Verdict,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::model::Snapshot;
use crate::seq::SeqLog;
use crate::store::migrations::{APPLICATION_ID, MIGRATIONS, latest};
use crate::store::{
    AlertOutcome, AlertRecord, AlertScan, Batch, CommandRecord, Committed, DecodeFailure,
    DeviceDetail, DevicePage, DeviceQuery, DeviceRow, FindingCount, FleetSummary, Groups,
    HistoryEntry, HistoryKind, HistoryQuery, MAX_DECODE_ERRORS, NewAlert, NewHistory, Retention,
    SeqSummary, SortKey, Store, StoreError,
};
use crate::store::{RolloutDetail, RolloutLog, RolloutState, RolloutSummary};

mod alerts;
mod placement;
mod rollouts;
mod rows;
mod write;

use rows::*;
use write::*;

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

    fn groups(&self) -> Result<Groups, StoreError> {
        self.read(placement::groups)
    }

    fn alert_scan(
        &self,
        offline_before: Timestamp,
        certs_before: Option<Timestamp>,
    ) -> Result<AlertScan, StoreError> {
        self.read(|conn| alerts::scan(conn, offline_before, certs_before))
    }

    fn record_alerts(
        &self,
        new: &[NewAlert],
        quiet: std::time::Duration,
        cursor: i64,
    ) -> Result<u64, StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        let recorded = alerts::record(&tx, new, quiet, cursor).map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(recorded)
    }

    fn pending_alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(|conn| alerts::pending(conn, limit))
    }

    fn finish_alerts(
        &self,
        ids: &[i64],
        outcome: AlertOutcome,
        error: Option<&str>,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        alerts::finish(&tx, ids, outcome, error, at).map_err(db)?;
        tx.commit().map_err(db)
    }

    fn alerts(&self, limit: u64) -> Result<Vec<AlertRecord>, StoreError> {
        self.read(|conn| alerts::newest(conn, limit))
    }

    fn create_rollout(
        &self,
        plan: &crate::rollouts::plan::Plan,
        by: &str,
        at: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        let id = rollouts::create(&tx, plan, by, at)?;
        tx.commit().map_err(db)?;
        Ok(id)
    }

    fn rollouts(&self) -> Result<Vec<RolloutSummary>, StoreError> {
        self.read(rollouts::list)
    }

    fn rollout(&self, id: i64) -> Result<Option<RolloutDetail>, StoreError> {
        self.read(|conn| rollouts::detail(conn, id))
    }

    fn save_rollout(
        &self,
        id: i64,
        devices: &[crate::rollouts::step::DeviceProgress],
        state: Option<(RolloutState, Option<String>)>,
        log: &[RolloutLog],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        rollouts::save(&tx, id, devices, state, log, at).map_err(db)?;
        tx.commit().map_err(db)
    }

    fn observe(
        &self,
        devices: &[(DeviceId, Option<String>)],
    ) -> Result<Vec<crate::rollouts::step::Observed>, StoreError> {
        self.read(|conn| rollouts::observe(conn, devices))
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
        if let Some(site) = &query.site {
            clauses.push("site = ?");
            args.push(V::Text(site.clone()));
        }
        if let Some(ring) = query.ring {
            clauses.push("ring = ?");
            args.push(V::Integer(i64::from(ring)));
        }
        if let Some(tag) = &query.tag {
            clauses.push("id IN (SELECT device_id FROM device_tags WHERE tag = ?)");
            args.push(V::Text(tag.clone()));
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
                 ESCAPE '\\' OR top_code LIKE ? ESCAPE '\\' OR top_title LIKE ? ESCAPE '\\' \
                 OR site LIKE ? ESCAPE '\\' OR room LIKE ? ESCAPE '\\')",
            );
            for _ in 0..7 {
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
                let base = ROW_COLUMN_COUNT;
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
