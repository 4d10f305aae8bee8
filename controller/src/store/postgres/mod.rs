//! The PostgreSQL backend of [`Store`], for a fleet that outgrows one machine: several
//! controllers share one database (and the fleet's messages, through an MQTT 5 shared
//! subscription). What makes that safe:
//! - every write transaction first takes one transaction-level advisory lock, so writes from
//!   all controllers are serialized: a device's sequence numbers, duplicates and history are
//!   decided by one writer at a time, and history ids grow in commit order (the alert cursor
//!   relies on it);
//! - no device snapshot is cached: a commit reads each device's from the database under that
//!   lock ([`Snapshots::Read`]);
//! - the background tasks that act on the fleet (rollouts, alerts) run in one controller at a
//!   time: [`Store::lead`] holds a session-level advisory lock per task on a connection of its
//!   own, so when that controller dies its connection closes and another takes the task over;
//! - the schema is checked and migrated under an advisory lock at start, and a database of
//!   another application or of a newer controller is refused, never rewritten.
//!
//! [`Store`]: crate::store::Store
//! [`Store::lead`]: crate::store::Store::lead
//! [`Snapshots::Read`]: crate::store::sql::write::Snapshots::Read

mod conn;
mod schema;
#[cfg(all(test, unix))]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::store::sql::write::{Snapshots, commit};
use crate::store::sql::{Backend, Conn};
use crate::store::{Batch, Committed, StoreError};

use conn::{Connection, Target};

/// How to reach the database.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// A `postgres://` URL or a `key=value` connection string (libpq's forms). It may hold a
    /// password: it is never logged or shown (errors name the database without it).
    pub url: String,
    /// Connections open at most (readers and the writer together).
    pub max_connections: usize,
    /// The password, when not in the URL (`database_password_file`).
    pub password: Option<String>,
    /// A PEM file of CAs to verify the server's certificate with (`sslmode=require` or
    /// `verify-full` in the URL); the system's roots (webpki-roots) when `None`.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &"(hidden: it may hold a password)")
            .field("max_connections", &self.max_connections)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl PostgresOptions {
    pub const DEFAULT_MAX_CONNECTIONS: usize = 16;

    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            max_connections: PostgresOptions::DEFAULT_MAX_CONNECTIONS,
            password: None,
            ca_file: None,
        }
    }

    /// Checks the connection string without connecting (nor reading the CA file); the
    /// database's name, without the password.
    pub fn check(&self) -> Result<String, StoreError> {
        Target::parse_config(self).map(|(_, name, _)| name)
    }
}

/// The lock every write transaction takes ("RRCT" and 1).
const WRITE_LOCK: i64 = 0x5252_4354_0000_0001;
/// How long a caller waits for a connection when all are busy.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Idle connections kept for reuse.
const IDLE: usize = 8;

/// The PostgreSQL store.
pub struct PostgresStore {
    target: Target,
    max: usize,
    pool: Mutex<Pool>,
    freed: Condvar,
    leader: Mutex<Leader>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    open: usize,
}

#[derive(Default)]
struct Leader {
    conn: Option<Connection>,
    held: HashSet<String>,
}

impl PostgresStore {
    /// Connects, checks the database is this application's (or empty) and not newer, and
    /// migrates it.
    pub fn open(options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let target = Target::parse(options)?;
        let mut conn = target.connect()?;
        schema::check_and_migrate(&mut conn, &target)?;
        Ok(PostgresStore {
            target,
            max: options.max_connections.max(2),
            pool: Mutex::new(Pool {
                idle: vec![conn],
                open: 1,
            }),
            freed: Condvar::new(),
            leader: Mutex::new(Leader::default()),
        })
    }

    /// The database, named without its password.
    pub fn name(&self) -> &str {
        self.target.name()
    }

    fn take(&self) -> Result<Connection, StoreError> {
        let busy = || StoreError::Database("the connection pool was poisoned by a panic".into());
        let mut pool = self.pool.lock().map_err(|_| busy())?;
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return self.target.connect().inspect_err(|_| self.release(None));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Database(format!(
                    "all {} connections to {} stayed busy for {} s",
                    self.max,
                    self.target.name(),
                    POOL_WAIT.as_secs()
                )));
            }
            pool = self.freed.wait_timeout(pool, left).map_err(|_| busy())?.0;
        }
    }

    /// Gives a connection back (`None`, or a broken one: it is closed and counted out).
    fn release(&self, conn: Option<Connection>) {
        if let Ok(mut pool) = self.pool.lock() {
            match conn {
                Some(conn) if !conn.is_closed() && pool.idle.len() < IDLE => pool.idle.push(conn),
                _ => pool.open = pool.open.saturating_sub(1),
            }
        }
        self.freed.notify_one();
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.take()?;
        let result = f(&mut conn);
        self.release(Some(conn));
        result
    }
}

impl Backend for PostgresStore {
    fn read<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|conn| f(&mut conn.plain()))
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(|conn| conn.transaction(WRITE_LOCK, f))
    }

    fn commit_batch(&self, batch: &Batch) -> Result<Committed, StoreError> {
        self.write(|conn| commit(conn, batch, Snapshots::Read(HashMap::new())))
    }

    fn lead(&self, task: &str) -> Result<bool, StoreError> {
        let mut leader = self
            .leader
            .lock()
            .map_err(|_| StoreError::Database("the leader lock was poisoned by a panic".into()))?;
        let alive = leader.conn.as_mut().is_some_and(Connection::is_valid);
        if !alive {
            // A new session holds no lock of the old one's.
            leader.held.clear();
            leader.conn = Some(self.target.connect()?);
        }
        if leader.held.contains(task) {
            return Ok(true);
        }
        let conn = leader.conn.as_mut().expect("connected above");
        let got = conn.plain().count(
            "SELECT CASE WHEN pg_try_advisory_lock(CAST(?1 AS BIGINT)) THEN 1 ELSE 0 END",
            crate::store::sql::args![task_lock(task)],
        )? == 1;
        if got {
            leader.held.insert(task.to_owned());
        }
        Ok(got)
    }
}

/// The advisory lock of a background task: "RRCT" and the task name's FNV-1a hash.
fn task_lock(task: &str) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in task.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    0x5252_4354_0000_0000 | i64::from(hash)
}
