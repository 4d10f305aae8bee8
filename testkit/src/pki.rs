//! Throwaway certificates made with rcgen, as PEM files in temporary directories (removed on
//! drop): [`TestCert`], a CA and a `localhost` server leaf; [`TestPki`], a CA with server and
//! client certificates and an unrelated CA, for broker TLS tests. Keys are ECDSA P-256 in PKCS#8.
//! For RSA keys or SHA-1 signatures, which rcgen cannot make with ring, see
//! [`crate::openssl::pki`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

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
        let (ca, ca_pem_text) = test_ca("roomready test CA");

        let (leaf_pem, key_pem_text) = issue_leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            "localhost",
            ExtendedKeyUsagePurpose::ServerAuth,
            (not_before, not_after),
        );

        let dir = tempfile::tempdir().expect("temp dir");
        let cert_pem = dir.path().join("cert.pem");
        let key_pem = dir.path().join("key.pem");
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&cert_pem, leaf_pem).expect("write cert");
        std::fs::write(&key_pem, key_pem_text).expect("write key");
        std::fs::write(&ca_pem, ca_pem_text).expect("write CA");
        TestCert {
            cert_pem,
            key_pem,
            ca_pem,
            _dir: dir,
        }
    }
}

impl Default for TestCert {
    fn default() -> Self {
        Self::new()
    }
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

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    /// Issues every certificate.
    pub fn new() -> TestPki {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        let (ca, ca_pem) = test_ca("roomready broker test CA");
        let (_, other_pem) = test_ca("unrelated test CA");
        let now = SystemTime::now();
        let leaf = |names: &[&str], cn: &str, usage: ExtendedKeyUsagePurpose| {
            issue_leaf(&ca, names, cn, usage, (now - DAY, now + 365 * DAY))
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

/// A leaf for `names` (CN `cn`, extended key usage `usage`, valid `validity`) signed by `ca`:
/// its certificate and its key, as PEM.
fn issue_leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    cn: &str,
    usage: ExtendedKeyUsagePurpose,
    (not_before, not_after): (SystemTime, SystemTime),
) -> (String, String) {
    let key = KeyPair::generate().expect("generate leaf key");
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    params.not_before = not_before.into();
    params.not_after = not_after.into();
    let cert = params.signed_by(&key, &**ca).expect("sign leaf");
    (cert.pem(), key.serialize_pem())
}

/// A self-signed CA named `name`, valid for two years either side of now, and its certificate as PEM.
pub fn test_ca(name: &str) -> (CertifiedIssuer<'static, KeyPair>, String) {
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
