//! A throwaway PostgreSQL cluster for tests: Debian's server binaries (`initdb`, `pg_ctl`,
//! `postgres`, from `/usr/lib/postgresql/N/bin`, or `ROOMREADY_PG_BIN`, or `PATH`), a cluster in
//! a temporary directory, listening on a free loopback port (and its own socket directory),
//! trust authentication for the `postgres` user, stopped (immediately) and removed on drop.
//!
//! `initdb` refuses to run as root: as root (CI), the cluster's directory is given to `nobody`
//! and every server command runs as that user through `setpriv`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::peers::{free_port, missing_peer};

/// The unprivileged user a root test runs the cluster as (`nobody` on Debian).
const NOBODY: u32 = 65_534;

/// A running cluster.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as_nobody: bool,
}

/// The directory with `initdb` and `pg_ctl`: `ROOMREADY_PG_BIN`, the newest
/// `/usr/lib/postgresql/N/bin`, or the one holding `initdb` on `PATH`.
pub fn find_bin() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("ROOMREADY_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(format!("ROOMREADY_PG_BIN={} has no initdb", dir.display()))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    crate::peers::find_program("initdb")
        .and_then(|initdb| initdb.parent().map(Path::to_owned))
        .ok_or_else(|| "PostgreSQL's initdb not found (Debian: apt-get install postgresql)".into())
}

/// A started cluster, or `None` after skipping `test` (failing under
/// `ROOMREADY_REQUIRE_PEERS=1`) when the binaries are missing.
pub fn need_postgres(test: &str) -> Option<Postgres> {
    match find_bin() {
        Ok(bin) => Some(Postgres::start_with(bin)),
        Err(reason) => {
            missing_peer(test, &reason);
            None
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt as _;
        m.uid() == 0
    })
}

impl Postgres {
    /// Creates and starts a cluster with the binaries in `bin`; panics saying why when it
    /// cannot (with the server's log).
    pub fn start_with(bin: PathBuf) -> Postgres {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let run_as_nobody = is_root();
        if run_as_nobody {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))
                .expect("give the cluster's directory to nobody");
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
                .expect("the cluster's directory is private");
        }
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            run_as_nobody,
        };
        let data = pg.data();
        let init = pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb failed: {}", text(&init));
        // A busy machine may hand the port to someone else before the server binds it: try a
        // few.
        for attempt in 0..5 {
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                pg.port,
                pg.dir.path().display()
            );
            let log = pg.dir.path().join("server.log");
            let started = pg.run(
                "pg_ctl",
                &[
                    "-D",
                    &data,
                    "-l",
                    &log.display().to_string(),
                    "-o",
                    &options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            );
            if started.status.success() {
                return pg;
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                attempt < 4 && server_log.contains("could not bind"),
                "pg_ctl start failed: {}\n{server_log}",
                text(&started)
            );
            pg.port = free_port();
        }
        unreachable!("the loop returns or panics")
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs the server program `program` of this cluster's binaries, as `nobody` when root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut command = if self.run_as_nobody {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
                "--".into(),
            ])
            .arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        command
            .args(args)
            .env("LC_ALL", "C")
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()))
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq connection URL for the `postgres` user and database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Creates the database `name` (letters, digits and `_`) and returns its URL.
    pub fn database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "a plain database name: {name:?}"
        );
        self.psql(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` with `psql` (unaligned, tuples only) in the `postgres` database and returns
    /// its output, or why it failed.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.psql_in("postgres", sql)
    }

    /// Runs `sql` with `psql` in `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> Result<String, String> {
        let psql = self.bin.join("psql");
        let psql = if psql.is_file() {
            psql
        } else {
            crate::peers::find_program("psql").ok_or("psql not found")?
        };
        let output = Command::new(psql)
            .args([
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &format!("postgres://postgres@127.0.0.1:{}/{database}", self.port),
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| format!("running psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout)
                .trim_end()
                .to_owned())
        } else {
            Err(text(&output))
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
