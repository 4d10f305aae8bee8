//! The reference tools a probe verdict is compared with: `openssl s_client` (does a handshake at
//! one version complete?), `openssl verify` (is this certificate valid for this name, at
//! security level 2: RSA keys of 2048 bits, no SHA-1?) and sslscan (which versions are enabled,
//! which suite the server prefers).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use roomready_protocol::TlsVersion;

use super::pki::Issued;

/// Runs `command` with stdin closed and a 20 s limit; its stdout, and whether it exited 0.
fn run(mut command: Command) -> (String, bool) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a reference tool");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(20);
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
    (out, status.is_some_and(|s| s.success()))
}

/// The `s_client` flag for `version`.
fn flag(version: TlsVersion) -> &'static str {
    match version {
        TlsVersion::Tls10 => "-tls1",
        TlsVersion::Tls11 => "-tls1_1",
        TlsVersion::Tls12 => "-tls1_2",
        TlsVersion::Tls13 => "-tls1_3",
    }
}

/// Whether `openssl s_client` completes a handshake at exactly `version` with 127.0.0.1:`port`,
/// offering every suite OpenSSL has (security level 0), SNI `servername` (none for `None`), and
/// the client certificate `client` if given.
pub fn s_client_negotiates(
    port: u16,
    version: TlsVersion,
    servername: Option<&str>,
    client: Option<&Issued>,
) -> bool {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "s_client",
        "-connect",
        &format!("127.0.0.1:{port}"),
        flag(version),
    ]);
    match servername {
        Some(name) => cmd.args(["-servername", name]),
        None => cmd.arg("-noservername"),
    };
    if version != TlsVersion::Tls13 {
        cmd.args(["-cipher", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"]);
    }
    if let Some(client) = client {
        cmd.arg("-cert")
            .arg(&client.cert)
            .arg("-key")
            .arg(&client.key);
    }
    let (out, ok) = run(cmd);
    let handshake = out
        .lines()
        .any(|l| l.contains(", Cipher is ") && !l.contains("(NONE)"));
    handshake && ok
}

/// Whether `openssl verify` accepts `cert` for `name` (a DNS name or an IP address) as a TLS
/// server certificate chaining to `ca`, at security level 2; with its last error line if not.
pub fn openssl_verify(cert: &Path, ca: &Path, name: &str) -> Result<(), String> {
    let mut cmd = Command::new("openssl");
    cmd.args([
        "verify",
        "-auth_level",
        "2",
        "-purpose",
        "sslserver",
        "-CAfile",
    ])
    .arg(ca);
    if name.parse::<std::net::IpAddr>().is_ok() {
        cmd.args(["-verify_ip", name]);
    } else {
        cmd.args(["-verify_hostname", name]);
    }
    let output = cmd
        .arg(cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl verify");
    if output.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        Err(text.lines().next().unwrap_or("failed").to_owned())
    }
}

/// What sslscan found on one server.
#[derive(Debug, Clone, Default)]
pub struct Sslscan {
    /// Enabled or not, per version.
    pub enabled: BTreeMap<TlsVersion, bool>,
    /// The suite sslscan lists as preferred, per version.
    pub preferred: BTreeMap<TlsVersion, u16>,
}

/// The value of `name="..."` in one XML element's text.
fn attribute<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = element[start..].find('"')?;
    Some(&element[start..start + len])
}

fn version_named(text: &str) -> Option<TlsVersion> {
    match text.trim_start_matches("TLSv") {
        "1.0" => Some(TlsVersion::Tls10),
        "1.1" => Some(TlsVersion::Tls11),
        "1.2" => Some(TlsVersion::Tls12),
        "1.3" => Some(TlsVersion::Tls13),
        _ => None,
    }
}

/// Runs sslscan (versions, suites; no certificate, heartbleed, renegotiation, compression,
/// groups or fallback tests) on 127.0.0.1:`port` with SNI `servername`.
pub fn sslscan(port: u16, servername: &str) -> Sslscan {
    let mut cmd = Command::new("sslscan");
    cmd.args([
        "--no-colour",
        "--no-check-certificate",
        "--no-heartbleed",
        "--no-renegotiation",
        "--no-compression",
        "--no-groups",
        "--no-fallback",
        "--timeout=5",
        &format!("--sni-name={servername}"),
        "--xml=-",
        &format!("127.0.0.1:{port}"),
    ]);
    let (xml, _) = run(cmd);
    let mut found = Sslscan::default();
    for element in xml.split('<') {
        if element.starts_with("protocol ") && attribute(element, "type") == Some("tls") {
            if let (Some(version), Some(enabled)) = (
                attribute(element, "version").and_then(version_named),
                attribute(element, "enabled"),
            ) {
                found.enabled.insert(version, enabled == "1");
            }
        } else if element.starts_with("cipher ")
            && attribute(element, "status") == Some("preferred")
            && let (Some(version), Some(id)) = (
                attribute(element, "sslversion").and_then(version_named),
                attribute(element, "id"),
            )
            && let Ok(id) = u16::from_str_radix(id.trim_start_matches("0x"), 16)
        {
            found.preferred.insert(version, id);
        }
    }
    assert_eq!(
        found.enabled.len(),
        4,
        "sslscan on port {port} reported {:?}; its XML: {xml}",
        found.enabled
    );
    found
}
