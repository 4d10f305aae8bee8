//! OpenSSL as a peer: `openssl s_server` on a loopback port ([`OpensslServer`]), whether the
//! `openssl` command is there ([`need_openssl`]), and certificates made by its command line
//! ([`pki`]).

pub mod pki;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use crate::peers::{free_port, require_peers, wait_for_port};

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

/// A running `openssl s_server` on 127.0.0.1:`port`; killed on drop.
pub struct OpensslServer {
    /// The loopback port it accepts on.
    pub port: u16,
    child: Child,
    // Kept open: s_server forwards its stdin to the client; EOF there is not wanted.
    _stdin: Option<ChildStdin>,
    /// Where [`OpensslServer::start_pem`] wrote the certificate and key.
    _files: Option<tempfile::TempDir>,
}

impl OpensslServer {
    /// Starts `openssl s_server -accept 127.0.0.1:PORT -cert .. -key .. -quiet` plus `args` and
    /// waits (at most ~5 s) until it accepts connections. Panics if it does not come up.
    pub fn start(cert: &crate::pki::TestCert, args: &[&str]) -> OpensslServer {
        Self::start_with(&cert.cert_pem, &cert.key_pem, args)
    }

    /// [`OpensslServer::start`] with this certificate and key, given as PEM text.
    pub fn start_pem(cert_pem: &str, key_pem: &str, args: &[&str]) -> OpensslServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, cert_pem).expect("write cert");
        std::fs::write(&key, key_pem).expect("write key");
        let mut server = Self::start_with(&cert, &key, args);
        server._files = Some(dir);
        server
    }

    /// [`OpensslServer::start`] with the certificate and key in these PEM files.
    pub fn start_with(cert_pem: &Path, key_pem: &Path, args: &[&str]) -> OpensslServer {
        // The port is released before openssl binds it; another process could take it in
        // between, so retry a few times with a fresh port.
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("openssl")
                .arg("s_server")
                .arg("-accept")
                .arg(format!("127.0.0.1:{port}"))
                .arg("-cert")
                .arg(cert_pem)
                .arg("-key")
                .arg(key_pem)
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
                _files: None,
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
