//! Shared harness for integration tests: throwaway certificates (rcgen), a real
//! `openssl s_server` on a loopback port, `openssl s_client` as the reference client, and a real
//! Mosquitto broker ([`Mosquitto`]) with its own config on a loopback port.
//!
//! Tests that need a peer call [`need_openssl`] / [`need_mosquitto`] and skip (with one line on
//! stderr) when it is missing, unless `ROOMREADY_REQUIRE_PEERS=1`, in which case a missing peer
//! is a failure.

// Each test crate uses its own subset of this module.
#![allow(dead_code)]

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// Whether missing peers (openssl, ...) must fail tests instead of skipping them.
pub fn require_peers() -> bool {
    std::env::var("ROOMREADY_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Whether an `openssl` binary runs.
pub fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` if openssl is there; otherwise prints `skipping <test>: openssl not found` and returns
/// `false`, or panics when [`require_peers`].
pub fn need_openssl(test: &str) -> bool {
    if openssl_available() {
        return true;
    }
    assert!(
        !require_peers(),
        "{test}: openssl not found and ROOMREADY_REQUIRE_PEERS=1"
    );
    eprintln!("skipping {test}: openssl not found");
    false
}

/// A CA and a leaf for "localhost" + 127.0.0.1 signed by it, as PEM files in a temporary
/// directory (removed on drop). Keys are ECDSA P-256.
pub struct TestCert {
    /// The leaf certificate.
    pub cert_pem: PathBuf,
    /// The leaf's private key (PKCS#8).
    pub key_pem: PathBuf,
    /// The CA certificate that signed the leaf.
    pub ca_pem: PathBuf,
    _dir: tempfile::TempDir,
}

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl TestCert {
    /// A leaf valid from yesterday for a year.
    pub fn new() -> TestCert {
        let now = SystemTime::now();
        Self::with_validity(now - DAY, now + 365 * DAY)
    }

    /// A leaf whose validity ended yesterday (the CA is still valid).
    pub fn expired() -> TestCert {
        let now = SystemTime::now();
        Self::with_validity(now - 400 * DAY, now - DAY)
    }

    fn with_validity(not_before: SystemTime, not_after: SystemTime) -> TestCert {
        let now = SystemTime::now();
        let ca_key = KeyPair::generate().expect("generate CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "roomready test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca_params.not_before = (now - 2 * 365 * DAY).into();
        ca_params.not_after = (now + 2 * 365 * DAY).into();
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign CA");

        let leaf_key = KeyPair::generate().expect("generate leaf key");
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .expect("leaf params");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = not_before.into();
        leaf.not_after = not_after.into();
        let leaf_cert = leaf.signed_by(&leaf_key, &*ca).expect("sign leaf");

        let dir = tempfile::tempdir().expect("temp dir");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&cert_pem, leaf_cert.pem()).expect("write cert");
        std::fs::write(&key_pem, leaf_key.serialize_pem()).expect("write key");
        std::fs::write(&ca_pem, ca.pem()).expect("write CA");
        TestCert {
            cert_pem,
            key_pem,
            ca_pem,
            _dir: dir,
        }
    }
}

/// A free loopback port: bind port 0, read it, release it.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A loopback address where connections are refused for as long as the returned socket lives:
/// the port is bound but never listened on, so no other test can take it meanwhile.
pub fn refused_addr() -> (SocketAddr, tokio::net::TcpSocket) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .expect("bind a loopback port");
    let addr = socket.local_addr().expect("bound address");
    (addr, socket)
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (bounded to `limit`).
fn wait_for_port(port: u16, limit: Duration, mut still_running: impl FnMut() -> bool) -> bool {
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

/// A running `openssl s_server` on 127.0.0.1:`port`; killed on drop.
pub struct OpensslServer {
    /// The loopback port it accepts on.
    pub port: u16,
    child: Child,
    // Kept open: s_server forwards its stdin to the client; EOF there is not wanted.
    _stdin: Option<ChildStdin>,
}

impl OpensslServer {
    /// Starts `openssl s_server -accept 127.0.0.1:PORT -cert .. -key .. -quiet` plus `args` and
    /// waits (at most ~5 s) until it accepts connections. Panics if it does not come up.
    pub fn start(cert: &TestCert, args: &[&str]) -> OpensslServer {
        // The port is released before openssl binds it; another process could take it in
        // between, so retry a few times with a fresh port.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(&cert.cert_pem)
                .arg("-key")
                .arg(&cert.key_pem)
                .arg("-quiet")
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn openssl s_server");
            let stdin = child.stdin.take();
            let up = wait_for_port(port, Duration::from_secs(5), || {
                matches!(child.try_wait(), Ok(None))
            });
            let server = OpensslServer {
                port,
                child,
                _stdin: stdin,
            };
            if up {
                return server;
            }
            // Dropping kills it; try another port.
        }
        panic!("openssl s_server {args:?} did not start accepting connections");
    }

    /// 127.0.0.1:port.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}

impl Drop for OpensslServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `openssl s_client -connect 127.0.0.1:PORT <version_flag> -servername localhost` with
/// stdin closed (so it quits right after the handshake) and a 10 s limit; returns whether a
/// handshake completed. For `-tls1`/`-tls1_1` the security level is lowered so OpenSSL 3 offers
/// them at all.
pub fn s_client_accepts(port: u16, version_flag: &str) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .arg(version_flag)
        .arg("-servername")
        .arg("localhost");
    if matches!(version_flag, "-tls1" | "-tls1_1") {
        cmd.arg("-cipher").arg("ALL:@SECLEVEL=0");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn openssl s_client");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let out = reader.join().unwrap_or_default();
    let handshake = out
        .lines()
        .any(|l| l.contains(", Cipher is ") && !l.contains("(NONE)"));
    handshake && status.is_some_and(|s| s.success())
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
    assert!(
        !require_peers(),
        "{test}: {program} not found and ROOMREADY_REQUIRE_PEERS=1"
    );
    eprintln!("skipping {test}: {program} not found");
    false
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
            text.push_str("persistence false\n");
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
        let program = find_program("mosquitto").expect("mosquitto installed (need_mosquitto)");
        let mut child = Command::new(program)
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mosquitto");
        let up = wait_for_port(self.port, Duration::from_secs(10), || {
            matches!(child.try_wait(), Ok(None))
        });
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

/// A small PKI for broker tests, as PEM files in a temporary directory (removed on drop); ECDSA
/// P-256 keys in PKCS#8.
pub struct TestPki {
    /// The CA that issued the server and client certificates below.
    pub ca: PathBuf,
    /// Server certificate for `localhost` and 127.0.0.1, and its key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Server certificate for `localhost` only (no IP address), and its key.
    pub localhost_cert: PathBuf,
    pub localhost_key: PathBuf,
    /// Client certificate (clientAuth, CN `roomready-client`), and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA that issued none of the above.
    pub other_ca: PathBuf,
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        let (ca, ca_pem) = test_ca("roomready broker test CA");
        let (_, other_pem) = test_ca("unrelated test CA");
        let leaf = |names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("generate key");
            let mut params =
                CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                    .expect("leaf params");
            params.distinguished_name.push(DnType::CommonName, cn);
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![usage];
            params.use_authority_key_identifier_extension = true;
            let now = SystemTime::now();
            params.not_before = (now - DAY).into();
            params.not_after = (now + 365 * DAY).into();
            let cert = params.signed_by(&key, &*ca).expect("sign leaf");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (localhost_cert, localhost_key) = leaf(
            &["localhost"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) =
            leaf(&[], "roomready-client", ExtendedKeyUsagePurpose::ClientAuth);
        TestPki {
            ca: write("ca.pem", ca_pem),
            server_cert: write("server.pem", server_cert),
            server_key: write("server.key", server_key),
            localhost_cert: write("localhost.pem", localhost_cert),
            localhost_key: write("localhost.key", localhost_key),
            client_cert: write("client.pem", client_cert),
            client_key: write("client.key", client_key),
            other_ca: write("other-ca.pem", other_pem),
            dir,
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A self-signed CA valid for two years either side of now, and its certificate as PEM.
fn test_ca(name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
    let now = SystemTime::now();
    let key = KeyPair::generate().expect("generate CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (now - 2 * 365 * DAY).into();
    params.not_after = (now + 2 * 365 * DAY).into();
    let ca = CertifiedIssuer::self_signed(params, key).expect("self-sign CA");
    let pem = ca.pem();
    (ca, pem)
}
