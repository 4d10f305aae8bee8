//! Real peers for tests, shared by every test crate: the `ROOMREADY_REQUIRE_PEERS` switch,
//! program lookup with skip-or-fail, free loopback ports, and a real Mosquitto broker
//! ([`Mosquitto`]) with its own config on a loopback port.
//!
//! A test that needs a peer calls [`need_program`] / [`need_mosquitto`] (or [`missing_peer`] with
//! its own reason) and skips (with one line on stderr) when it is missing, unless
//! `ROOMREADY_REQUIRE_PEERS=1`, in which case a missing peer is a failure.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Whether missing peers (openssl, ...) must fail tests instead of skipping them.
pub fn require_peers() -> bool {
    std::env::var("ROOMREADY_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// A free loopback port: bind port 0, read it, release it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (bounded to `limit`).
pub fn wait_for_port(port: u16, limit: Duration, mut still_running: impl FnMut() -> bool) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        if !still_running() {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Where an executable is: on `PATH`, or in the sbin directories a non-root `PATH` may lack
/// (Debian installs `mosquitto` in /usr/sbin).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// `true` if `mosquitto` is installed; otherwise prints `skipping <test>: mosquitto not found`
/// and returns `false`, or panics when [`require_peers`].
pub fn need_mosquitto(test: &str) -> bool {
    need_program(test, "mosquitto")
}

/// `true` if `program` is installed; otherwise skips (or fails under [`require_peers`]).
pub fn need_program(test: &str, program: &str) -> bool {
    if find_program(program).is_some() {
        return true;
    }
    missing_peer(test, &format!("{program} not found"));
    false
}

/// The skip-or-fail rule for a peer that is missing for `reason` (`"chromedriver not found"`):
/// prints `skipping <test>: <reason>` on stderr, or panics when [`require_peers`].
pub fn missing_peer(test: &str, reason: &str) {
    assert!(
        !require_peers(),
        "{test}: {reason} and ROOMREADY_REQUIRE_PEERS=1"
    );
    eprintln!("skipping {test}: {reason}");
}

/// Where a peer's executable is: the path in the environment variable `env_var` when it is set
/// (a test run can point at another build, or hide the peer with a path that does not exist),
/// otherwise the first of `names` that [`find_program`] finds. `Err` says why there is none.
pub fn find_peer(env_var: &str, names: &[&str]) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{env_var}={} is not a file", path.display()))
        };
    }
    names
        .iter()
        .find_map(|name| find_program(name))
        .ok_or_else(|| format!("{} not found", names.join(" or ")))
}

/// A Mosquitto broker on 127.0.0.1 with its own config file and log in a temporary directory;
/// killed on drop. It never touches the system broker's port (1883) or files.
pub struct Mosquitto {
    port: u16,
    tls: bool,
    config: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts `mosquitto -c FILE` with `listener PORT 127.0.0.1`, then `config_lines` (listener
    /// options such as [`Mosquitto::tls_lines`] apply to that listener), `allow_anonymous true`
    /// unless a line sets `allow_anonymous`, and no persistence. Waits until the port accepts
    /// connections. Panics if it does not come up.
    pub fn start(config_lines: &[String]) -> Mosquitto {
        Self::start_with(config_lines, false)
    }

    /// [`Mosquitto::start`] with persistence: sessions, subscriptions and queued QoS 1 messages
    /// are saved in its directory when it stops ([`Mosquitto::terminate`]) and restored when it
    /// starts again, as a production broker keeps them.
    pub fn start_persistent(config_lines: &[String]) -> Mosquitto {
        Self::start_with(config_lines, true)
    }

    fn start_with(config_lines: &[String], persistent: bool) -> Mosquitto {
        let mut dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("mosquitto.conf");
        let tls = config_lines.iter().any(|l| l.starts_with("certfile "));
        let mut last_log = String::new();
        // The port is released before mosquitto binds it; another process could take it in
        // between, so retry a few times with a fresh port.
        for _ in 0..3 {
            let port = free_port();
            let mut text = format!("listener {port} 127.0.0.1\n");
            for line in config_lines {
                text.push_str(line);
                text.push('\n');
            }
            if !config_lines
                .iter()
                .any(|l| l.starts_with("allow_anonymous"))
            {
                text.push_str("allow_anonymous true\n");
            }
            if persistent {
                text.push_str(&format!(
                    "persistence true\npersistence_location {}/\nautosave_interval 3600\n",
                    dir.path().display()
                ));
            } else {
                text.push_str("persistence false\n");
            }
            // Run as root, mosquitto would switch to the `mosquitto` user, who cannot read the
            // test's temporary files; `root` keeps it as it is (and means nothing otherwise).
            text.push_str("user root\n");
            text.push_str(&format!(
                "log_dest file {}\nlog_type all\nconnection_messages true\n",
                dir.path().join("mosquitto.log").display()
            ));
            std::fs::write(&config, text).expect("write mosquitto.conf");
            let mut broker = Mosquitto {
                port,
                tls,
                config: config.clone(),
                child: None,
                dir,
            };
            if broker.spawn() {
                return broker;
            }
            last_log = broker.log();
            dir = broker.into_dir();
        }
        panic!("mosquitto did not start accepting connections; its log:\n{last_log}");
    }

    /// Listener lines for TLS with `cert`/`key` as the broker's certificate; with
    /// `client_ca`, clients must present a certificate issued by it.
    pub fn tls_lines(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Vec<String> {
        let mut lines = vec![
            format!("certfile {}", cert.display()),
            format!("keyfile {}", key.display()),
        ];
        if let Some(ca) = client_ca {
            lines.push(format!("cafile {}", ca.display()));
            lines.push("require_certificate true".into());
        }
        lines
    }

    /// Lines that require a user name and password from `password_file` (see
    /// [`mosquitto_password_file`]).
    pub fn password_lines(password_file: &Path) -> Vec<String> {
        vec![
            format!("password_file {}", password_file.display()),
            "allow_anonymous false".into(),
        ]
    }

    fn into_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let placeholder = tempfile::tempdir().expect("temp dir");
        std::mem::replace(&mut self.dir, placeholder)
    }

    /// Starts the process and waits for the port; `false` if it exited or never listened.
    fn spawn(&mut self) -> bool {
        let log = self.dir.path().join("mosquitto.log");
        // A restart appends to the same log: count the "running" lines of earlier starts.
        let runs = |log: &Path| {
            std::fs::read_to_string(log)
                .map(|text| text.lines().filter(|l| l.ends_with(" running")).count())
                .unwrap_or(0)
        };
        let earlier = runs(&log);
        let program = find_program("mosquitto").expect("mosquitto installed (need_mosquitto)");
        let mut child = Command::new(program)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        // The port alone is not proof: between free_port() and mosquitto's bind, another test's
        // listener can take the port, answer the probe and leave mosquitto failing to bind. Its
        // own log line "running", written after every listener is open, is.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut up = false;
        while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
            if runs(&log) > earlier {
                up = wait_for_port(self.port, Duration::from_secs(2), || {
                    matches!(child.try_wait(), Ok(None))
                });
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
        self.child = Some(child);
        if !up {
            self.kill();
        }
        up
    }

    /// `mqtt://127.0.0.1:PORT`, or `mqtts://` when it was started with TLS lines.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What it has logged so far (connections, refusals, TLS errors), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// Kills the broker (SIGKILL: clients see their connection drop) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the broker as an operator would (SIGTERM: it closes its connections and saves its
    /// state when persistent), waits for it to exit, and kills it if it has not within 10 s.
    pub fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        #[cfg(unix)]
        {
            let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
            // SAFETY: kill(2) with a pid of our own child process and a valid signal number.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts it again on the same port with the same config, after [`Mosquitto::terminate`]
    /// or [`Mosquitto::kill`]. Panics if it does not come up.
    pub fn start_again(&mut self) {
        assert!(
            self.spawn(),
            "mosquitto did not start again on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    /// Starts it again on the same port with the same config (after [`Mosquitto::kill`], or
    /// kills it first). Panics if it does not come up.
    pub fn restart(&mut self) {
        self.kill();
        assert!(
            self.spawn(),
            "mosquitto did not restart on port {}; its log:\n{}",
            self.port,
            self.log()
        );
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Mosquitto password file in `dir` with one `user`, made by `mosquitto_passwd -b -c`;
/// `None` (after printing why the test skips) when `mosquitto_passwd` is missing, and a panic
/// instead under [`require_peers`].
pub fn mosquitto_password_file(
    test: &str,
    dir: &Path,
    user: &str,
    password: &str,
) -> Option<PathBuf> {
    if !need_program(test, "mosquitto_passwd") {
        return None;
    }
    let program = find_program("mosquitto_passwd").expect("found above");
    let file = dir.join("passwords");
    let status = Command::new(program)
        .arg("-b")
        .arg("-c")
        .arg(&file)
        .arg(user)
        .arg(password)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd failed: {status}");
    Some(file)
}
