//! Shared harness for integration tests: throwaway certificates (rcgen, and OpenSSL's own in
//! [`pki`]), a real `openssl s_server` on a loopback port, `openssl s_client` and sslscan as the
//! reference clients ([`reference`]), misbehaving TLS servers ([`fakes`]), and a real Mosquitto
//! broker ([`Mosquitto`]) with its own config on a loopback port.
//!
//! Tests that need a peer call [`need_openssl`] / [`need_mosquitto`] and skip (with one line on
//! stderr) when it is missing, unless `ROOMREADY_REQUIRE_PEERS=1`, in which case a missing peer
//! is a failure.

// Each test crate uses its own subset of this module.
#![allow(dead_code, unused_imports)]

pub mod fakes;
pub mod pki;
pub mod reference;

pub use roomready_tests::peers::{
    Mosquitto, find_program, free_port, mosquitto_password_file, need_mosquitto, need_program,
    require_peers, wait_for_port,
};

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
        Self::start_with(&cert.cert_pem, &cert.key_pem, args)
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

/// Whether `openssl s_client` completes a handshake with 127.0.0.1:`port` at the version of
/// `version_flag` (`-tls1`, `-tls1_1`, `-tls1_2`, `-tls1_3`), SNI `localhost`: see
/// [`reference::s_client_negotiates`].
pub fn s_client_accepts(port: u16, version_flag: &str) -> bool {
    let version = match version_flag {
        "-tls1" => roomready_protocol::TlsVersion::Tls10,
        "-tls1_1" => roomready_protocol::TlsVersion::Tls11,
        "-tls1_2" => roomready_protocol::TlsVersion::Tls12,
        "-tls1_3" => roomready_protocol::TlsVersion::Tls13,
        other => panic!("not an s_client version flag: {other}"),
    };
    reference::s_client_negotiates(port, version, Some("localhost"), None)
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
