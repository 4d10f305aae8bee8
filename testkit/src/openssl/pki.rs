//! Certificates made by the `openssl` command line, the way an admin makes them: a CA and server
//! certificates with RSA or EC keys of any size, SHA-1 signatures, past validity, other names,
//! or no CA at all. rcgen (see [`crate::pki::TestCert`]) cannot make RSA keys or SHA-1 signatures
//! with ring.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How a server certificate is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// RSA-2048, SHA-256, valid for a year, for `localhost`, `sni.example` and 127.0.0.1.
    Good,
    /// The same with a P-256 key.
    Ecdsa,
    /// An RSA-1024 key.
    Rsa1024,
    /// Signed with SHA-1.
    Sha1,
    /// Valid from 2020-01-01 to 2021-01-01.
    Expired,
    /// For `other.example` only.
    OtherName,
    /// Self-signed, no CA (`openssl req -x509` with the server's names).
    SelfSigned,
    /// A client certificate (clientAuth) for mutual TLS.
    Client,
}

/// A CA and the server certificates it issued, in a temporary directory removed on drop.
pub struct OpensslPki {
    pub ca: Issued,
    dir: tempfile::TempDir,
}

/// Runs `openssl` with `args` in `dir`; panics with its output when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SERVER_EXT: &str = "basicConstraints=CA:FALSE\n\
    keyUsage=digitalSignature,keyEncipherment\n\
    extendedKeyUsage=serverAuth\n\
    subjectAltName=DNS:localhost,DNS:sni.example,IP:127.0.0.1\n";

const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\n\
    keyUsage=digitalSignature\n\
    extendedKeyUsage=clientAuth\n";

/// The least `openssl ca` needs.
const CA_CONFIG: &str = "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\n\
    new_certs_dir = .\ncertificate = ca.pem\nprivate_key = ca.key\nserial = serial\n\
    default_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n";

impl Default for OpensslPki {
    fn default() -> Self {
        Self::new()
    }
}

impl OpensslPki {
    /// A new CA (RSA-2048, SHA-256, valid ten years from yesterday).
    pub fn new() -> OpensslPki {
        let dir = tempfile::tempdir().expect("temp dir");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-sha256",
                "-days",
                "3650",
                "-subj",
                "/CN=roomready probe test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        );
        std::fs::write(dir.path().join("server.ext"), SERVER_EXT).expect("write extensions");
        let ca = Issued {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
        };
        OpensslPki { ca, dir }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A server certificate of kind `leaf` (files named after it).
    pub fn issue(&self, leaf: Leaf) -> Issued {
        let name = format!("{leaf:?}").to_lowercase();
        let dir = self.dir.path();
        let (cert, key, csr) = (
            format!("{name}.pem"),
            format!("{name}.key"),
            format!("{name}.csr"),
        );
        let new_key: &[&str] = match leaf {
            Leaf::Ecdsa => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            Leaf::Rsa1024 => &["-newkey", "rsa:1024"],
            _ => &["-newkey", "rsa:2048"],
        };
        if leaf == Leaf::SelfSigned {
            let args = [
                &["req", "-x509", "-nodes", "-sha256", "-days", "365"][..],
                new_key,
                &[
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost,DNS:sni.example,IP:127.0.0.1",
                    "-addext",
                    "basicConstraints=CA:FALSE",
                    "-keyout",
                    &key,
                    "-out",
                    &cert,
                ],
            ]
            .concat();
            openssl(dir, &args);
        } else {
            let subject = if leaf == Leaf::OtherName {
                "/CN=other.example"
            } else {
                "/CN=localhost"
            };
            let args = [
                &["req", "-nodes"][..],
                new_key,
                &["-subj", subject, "-keyout", &key, "-out", &csr],
            ]
            .concat();
            openssl(dir, &args);
            let ext = if leaf == Leaf::Client {
                std::fs::write(dir.join("client.ext"), CLIENT_EXT).expect("write extensions");
                "client.ext"
            } else if leaf == Leaf::OtherName {
                let other = SERVER_EXT.replace(
                    "DNS:localhost,DNS:sni.example,IP:127.0.0.1",
                    "DNS:other.example",
                );
                std::fs::write(dir.join("other.ext"), other).expect("write extensions");
                "other.ext"
            } else {
                "server.ext"
            };
            if leaf == Leaf::Expired {
                // `openssl x509` cannot date a certificate in the past before OpenSSL 3.4;
                // `openssl ca` can.
                std::fs::write(dir.join("index.txt"), "").expect("write CA database");
                std::fs::write(dir.join("serial"), "1000\n").expect("write CA serial");
                std::fs::write(dir.join("ca.cnf"), CA_CONFIG).expect("write CA config");
                openssl(
                    dir,
                    &[
                        "ca",
                        "-batch",
                        "-config",
                        "ca.cnf",
                        "-notext",
                        "-in",
                        &csr,
                        "-out",
                        &cert,
                        "-extfile",
                        ext,
                        "-startdate",
                        "20200101000000Z",
                        "-enddate",
                        "20210101000000Z",
                    ],
                );
            } else {
                let digest = if leaf == Leaf::Sha1 {
                    "-sha1"
                } else {
                    "-sha256"
                };
                openssl(
                    dir,
                    &[
                        "x509",
                        "-req",
                        "-in",
                        &csr,
                        "-CA",
                        "ca.pem",
                        "-CAkey",
                        "ca.key",
                        "-CAcreateserial",
                        "-extfile",
                        ext,
                        digest,
                        "-days",
                        "365",
                        "-out",
                        &cert,
                    ],
                );
            }
        }
        Issued {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }
}
