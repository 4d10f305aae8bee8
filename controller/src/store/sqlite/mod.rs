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

use roomready_protocol::DeviceId;
use rusqlite::{Connection, OpenFlags};

use crate::model::Snapshot;
use crate::store::migrations::{APPLICATION_ID, MIGRATIONS, latest};
use crate::store::sql::write::{Snapshots, commit, load_snapshots};
use crate::store::sql::{Backend, Conn, Dialect, Row, Value};
use crate::store::{Batch, Committed, StoreError};

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
        let snapshots = load_snapshots(&mut SqliteConn(&conn))?;
        Ok(SqliteStore {
            path,
            writer: Mutex::new(Writer { conn, snapshots }),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with a reader connection.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = self.readers.lock().ok().and_then(|mut pool| pool.pop());
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.path, false)?,
        };
        let result = f(&mut SqliteConn(&conn));
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
    // The write path alone runs about twenty statements.
    conn.set_prepared_statement_cache_capacity(64);
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

impl Backend for SqliteStore {
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with_reader(f)
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut writer = self.writer()?;
        let tx = writer.conn.transaction().map_err(db)?;
        let value = f(&mut SqliteConn(&tx))?;
        tx.commit().map_err(db)?;
        Ok(value)
    }

    fn commit_batch(&self, batch: &Batch) -> Result<Committed, StoreError> {
        let mut writer = self.writer()?;
        let Writer { conn, snapshots } = &mut *writer;
        let result = (|| {
            let tx = conn.transaction().map_err(db)?;
            let committed = commit(&mut SqliteConn(&tx), batch, Snapshots::Cached(snapshots))?;
            tx.commit().map_err(db)?;
            Ok(committed)
        })();
        if result.is_err() {
            // The snapshots may hold what was rolled back: take them from the database again.
            if let Ok(fresh) = load_snapshots(&mut SqliteConn(conn)) {
                *snapshots = fresh;
            }
        }
        result
    }

    fn lead(&self, _task: &str) -> Result<bool, StoreError> {
        // One controller per database file.
        Ok(true)
    }
}

/// A SQLite connection (or a transaction, through its connection) running the shared
/// statements, each prepared once and cached.
struct SqliteConn<'a>(&'a Connection);

fn bind(args: &[Value]) -> impl Iterator<Item = rusqlite::types::Value> + '_ {
    args.iter().map(|a| match a {
        Value::Null => rusqlite::types::Value::Null,
        Value::Int(n) => rusqlite::types::Value::Integer(*n),
        Value::Text(t) => rusqlite::types::Value::Text(t.clone()),
    })
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, args: &[Value]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let changed = stmt
            .execute(rusqlite::params_from_iter(bind(args)))
            .map_err(db)?;
        Ok(changed as u64)
    }

    fn rows(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>, StoreError> {
        use rusqlite::types::ValueRef;
        let mut stmt = self.0.prepare_cached(sql).map_err(db)?;
        let columns = stmt.column_count();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(bind(args)))
            .map_err(db)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(db)? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).map_err(db)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(f) => Value::Text(f.to_string()),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}
