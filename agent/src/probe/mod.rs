//! Probes: what each configured endpoint accepts on the wire.
//!
//! For one endpoint, the name is resolved once and the four versions are probed concurrently:
//! TLS 1.3 and 1.2 with a real rustls handshake ([`modern`]), TLS 1.1 and 1.0 with a hand-built
//! ClientHello that never completes a handshake ([`hello`]). A TLS 1.2 handshake that fails on
//! suites rustls does not implement (CBC, RSA or DHE key exchange) is retried with a hand-built
//! TLS 1.2 hello offering them, so such a server is not mistaken for one without TLS 1.2.
//!
//! [`ProbeSettings::resolve`] can stand in for DNS (the simulator points `teams.microsoft.com`
//! at a loopback server that way); SNI and the certificate's name check still use the host name.

pub mod cert;
pub mod hello;
pub mod modern;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roomready_protocol::{
    CertificateCheck, CipherSuite, EndpointReport, EndpointRole, ProbeOutcome, Timestamp,
    TlsVersion, VersionProbe,
};
use rustls::RootCertStore;

use hello::{HelloOutcome, HelloReply};
use modern::ModernOutcome;

/// TLS alert `handshake_failure`: no shared suite, among other causes.
const HANDSHAKE_FAILURE: u8 = 40;

/// An endpoint to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub role: EndpointRole,
    /// For `onprem_sfb`: the server version, when known (`6.0.9319.548`).
    pub sfb_version: Option<String>,
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    /// `[ROLE=]HOST[:PORT][@SFB_VERSION]`: `HOST[:PORT]` or `[V6]:PORT`, port 443 by default,
    /// role `custom` by default (`microsoft365`, `onprem_sfb`, `adfs`, `custom`), and for
    /// `onprem_sfb` optionally the server version, e.g. `onprem_sfb=pool.contoso.com@6.0.9319.548`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let full = text;
        let (role, text) = match text.split_once('=') {
            Some((role, rest)) => {
                let found = EndpointRole::ALL.into_iter().find(|r| r.as_str() == role);
                let Some(role) = found else {
                    return Err(format!(
                        "unknown endpoint role {role:?} in {full:?}; expected microsoft365, onprem_sfb, adfs or custom"
                    ));
                };
                (role, rest)
            }
            None => (EndpointRole::Custom, text),
        };
        let (text, sfb_version) = match text.rsplit_once('@') {
            Some((rest, version)) if role == EndpointRole::OnpremSfb => {
                version
                    .parse::<roomready_protocol::AppVersion>()
                    .map_err(|e| format!("Skype for Business Server version in {full:?}: {e}"))?;
                (rest, Some(version.to_owned()))
            }
            Some(_) => {
                return Err(format!(
                    "a server version (@…) is only for onprem_sfb: {full:?}"
                ));
            }
            None => (text, None),
        };
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or("unclosed '[' in IPv6 address")?;
            (host, after.strip_prefix(':'))
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) if !h.contains(':') => (h, Some(p)),
                _ => (text, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(format!("invalid host in {text:?}; expected HOST[:PORT]"));
        }
        let port = match port {
            None => 443,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port in {text:?}; expected 1..=65535"))?,
        };
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            role,
            sfb_version,
        })
    }
}

/// The Microsoft 365 endpoints probed by default (role `microsoft365`, port 443): Teams,
/// Exchange Online and Entra ID sign-in, the services a Teams Rooms device talks to.
pub const MICROSOFT365_HOSTS: [&str; 3] = [
    "teams.microsoft.com",
    "outlook.office365.com",
    "login.microsoftonline.com",
];

/// The entry that stands for [`MICROSOFT365_HOSTS`] in an endpoint list.
pub const MICROSOFT365: &str = "microsoft365";

/// [`MICROSOFT365_HOSTS`] as endpoints.
pub fn microsoft365_endpoints() -> Vec<Endpoint> {
    MICROSOFT365_HOSTS
        .iter()
        .map(|host| Endpoint {
            host: (*host).to_owned(),
            port: 443,
            role: EndpointRole::Microsoft365,
            sfb_version: None,
        })
        .collect()
}

/// One entry of an endpoint list (config or `--endpoint`): `microsoft365` alone stands for
/// [`MICROSOFT365_HOSTS`]; anything else is one [`Endpoint`].
pub fn parse_entry(text: &str) -> Result<Vec<Endpoint>, String> {
    if text.trim().eq_ignore_ascii_case(MICROSOFT365) {
        Ok(microsoft365_endpoints())
    } else {
        text.parse().map(|endpoint| vec![endpoint])
    }
}

/// `endpoints` without repeats of the same host, port and role, in their first order.
pub fn dedup(endpoints: Vec<Endpoint>) -> Vec<Endpoint> {
    let mut kept: Vec<Endpoint> = Vec::with_capacity(endpoints.len());
    for endpoint in endpoints {
        let seen = kept.iter().any(|k| {
            k.host.eq_ignore_ascii_case(&endpoint.host)
                && k.port == endpoint.port
                && k.role == endpoint.role
        });
        if !seen {
            kept.push(endpoint);
        }
    }
    kept
}

/// Addresses that stand in for DNS: `(lower-case host, port)` → the address to connect to.
pub type ResolveOverrides = HashMap<(String, u16), SocketAddr>;

/// What every probe of a run shares.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub roots: Arc<RootCertStore>,
    /// Bound on each connection attempt (connect plus answer).
    pub timeout: Duration,
    /// Consulted before DNS: an endpoint whose lower-cased host and port are a key here is probed
    /// at that address, with SNI and the certificate's name check still for its host name. Empty
    /// for a real device; the simulator fills it to point endpoints at its TLS endpoint farm.
    pub resolve: Arc<ResolveOverrides>,
}

/// Probes `endpoint` at all four versions; `now` dates the certificate's days to expiry.
pub async fn probe_endpoint(
    endpoint: &Endpoint,
    settings: &ProbeSettings,
    now: Timestamp,
) -> EndpointReport {
    let mut report = EndpointReport {
        host: endpoint.host.clone(),
        port: endpoint.port,
        role: endpoint.role,
        sfb_version: endpoint.sfb_version.clone(),
        address: None,
        versions: Vec::new(),
        certificate: None,
    };
    let overridden = settings
        .resolve
        .get(&(endpoint.host.to_ascii_lowercase(), endpoint.port))
        .copied();
    let resolved = match overridden {
        Some(addr) => Ok(addr),
        None => resolve(&endpoint.host, endpoint.port, settings.timeout).await,
    };
    let addr = match resolved {
        Ok(addr) => addr,
        Err(detail) => {
            report.versions = [
                TlsVersion::Tls13,
                TlsVersion::Tls12,
                TlsVersion::Tls11,
                TlsVersion::Tls10,
            ]
            .into_iter()
            .map(|version| VersionProbe {
                version,
                outcome: ProbeOutcome::DnsFailure,
                suite: None,
                detail: Some(detail.clone()),
                handshake_ms: None,
            })
            .collect();
            return report;
        }
    };
    report.address = Some(addr.to_string());
    let host = endpoint.host.as_str();
    let legacy = |version: TlsVersion| async move {
        let wire = version.wire();
        let outcome = hello::hello_probe(
            addr,
            Some(host),
            wire,
            hello::default_suites(wire),
            settings.timeout,
        )
        .await;
        from_hello(version, outcome)
    };
    let modern = |version: TlsVersion| {
        modern::probe_modern(
            addr,
            host,
            version,
            settings.roots.clone(),
            settings.timeout,
        )
    };
    let (tls13, tls12, tls11, tls10) = tokio::join!(
        modern(TlsVersion::Tls13),
        modern(TlsVersion::Tls12),
        legacy(TlsVersion::Tls11),
        legacy(TlsVersion::Tls10),
    );
    report.certificate = [&tls13, &tls12]
        .into_iter()
        .find_map(|o| certificate(o, now));
    let tls12 = match tls12 {
        ModernOutcome::Alert(HANDSHAKE_FAILURE, _) => {
            let fallback = legacy(TlsVersion::Tls12).await;
            if fallback.outcome == ProbeOutcome::Accepted {
                VersionProbe {
                    detail: Some(
                        "accepted only with suites rustls does not implement; certificate not \
                         checked on this version"
                            .into(),
                    ),
                    ..fallback
                }
            } else {
                from_modern(TlsVersion::Tls12, tls12)
            }
        }
        other => from_modern(TlsVersion::Tls12, other),
    };
    report.versions = vec![from_modern(TlsVersion::Tls13, tls13), tls12, tls11, tls10];
    report
}

/// The endpoints a daemon probes on every check, and how.
#[derive(Debug, Clone)]
pub struct Probes {
    pub endpoints: Vec<Endpoint>,
    pub settings: ProbeSettings,
}

/// Probes `endpoints` concurrently; the reports come back in the same order.
pub async fn probe_all(
    endpoints: &[Endpoint],
    settings: &ProbeSettings,
    now: Timestamp,
) -> Vec<EndpointReport> {
    let probes = endpoints.iter().map(|e| probe_endpoint(e, settings, now));
    let mut reports = Vec::with_capacity(endpoints.len());
    // Each endpoint's own probes already run concurrently; endpoints run in parallel too, but
    // at most this many at a time so a long list does not open hundreds of sockets at once.
    const PARALLEL: usize = 8;
    let probes: Vec<_> = probes.collect();
    let mut pending = probes.into_iter();
    loop {
        let batch: Vec<_> = pending.by_ref().take(PARALLEL).collect();
        if batch.is_empty() {
            break;
        }
        reports.extend(join_all(batch).await);
    }
    reports
}

/// Awaits every future, keeping their order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<SocketAddr, String> {
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host, port))).await {
        Err(_) => Err(format!("resolving {host} timed out")),
        Ok(Err(e)) => Err(format!("cannot resolve {host}: {e}")),
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| format!("{host} has no address")),
    }
}

fn probe(version: TlsVersion, outcome: ProbeOutcome, detail: Option<String>) -> VersionProbe {
    VersionProbe {
        version,
        outcome,
        suite: None,
        detail,
        handshake_ms: None,
    }
}

fn from_modern(version: TlsVersion, outcome: ModernOutcome) -> VersionProbe {
    match outcome {
        ModernOutcome::Accepted {
            suite, handshake, ..
        } => VersionProbe {
            version,
            outcome: ProbeOutcome::Accepted,
            suite: Some(CipherSuite::from_code(suite)),
            detail: None,
            handshake_ms: Some(u64::try_from(handshake.as_millis()).unwrap_or(u64::MAX)),
        },
        ModernOutcome::Alert(code, name) => probe(
            version,
            ProbeOutcome::Refused,
            Some(format!("alert {name} ({code})")),
        ),
        ModernOutcome::ConnectionRefused => probe(version, ProbeOutcome::ConnectionRefused, None),
        ModernOutcome::Reset => probe(version, ProbeOutcome::ConnectionReset, None),
        ModernOutcome::Timeout => probe(version, ProbeOutcome::NoAnswer, None),
        ModernOutcome::Closed => probe(version, ProbeOutcome::Closed, None),
        ModernOutcome::NotTls(text) => probe(version, ProbeOutcome::NotTls, Some(text)),
        ModernOutcome::Failed(text) => probe(version, ProbeOutcome::Error, Some(text)),
    }
}

fn from_hello(version: TlsVersion, outcome: HelloOutcome) -> VersionProbe {
    match outcome {
        HelloOutcome::Reply(HelloReply::ServerHello {
            version: answered,
            cipher_suite,
        }) if answered == version.wire() => VersionProbe {
            version,
            outcome: ProbeOutcome::Accepted,
            suite: Some(CipherSuite::from_code(cipher_suite)),
            detail: None,
            handshake_ms: None,
        },
        HelloOutcome::Reply(HelloReply::ServerHello {
            version: answered, ..
        }) if answered < version.wire() => {
            let name = TlsVersion::from_wire(answered).map_or_else(
                || format!("version 0x{answered:04X}"),
                |v| v.name().to_owned(),
            );
            probe(
                version,
                ProbeOutcome::Downgraded,
                Some(format!("answered {name}")),
            )
        }
        HelloOutcome::Reply(HelloReply::ServerHello {
            version: answered, ..
        }) => probe(
            version,
            ProbeOutcome::Error,
            Some(format!(
                "answered a higher version 0x{answered:04X} than offered"
            )),
        ),
        HelloOutcome::Reply(HelloReply::Alert { description, .. }) => probe(
            version,
            ProbeOutcome::Refused,
            Some(format!(
                "alert {} ({description})",
                hello::alert_name(description)
            )),
        ),
        HelloOutcome::Reply(HelloReply::NotTls { .. }) => {
            probe(version, ProbeOutcome::NotTls, None)
        }
        HelloOutcome::ConnectionRefused => probe(version, ProbeOutcome::ConnectionRefused, None),
        HelloOutcome::Reset => probe(version, ProbeOutcome::ConnectionReset, None),
        HelloOutcome::Timeout => probe(version, ProbeOutcome::NoAnswer, None),
        HelloOutcome::Closed => probe(version, ProbeOutcome::Closed, None),
        HelloOutcome::Io(text) => probe(version, ProbeOutcome::Error, Some(text)),
    }
}

fn certificate(outcome: &ModernOutcome, now: Timestamp) -> Option<CertificateCheck> {
    let ModernOutcome::Accepted {
        certificate,
        end_entity,
        ..
    } = outcome
    else {
        return None;
    };
    let not_after = end_entity.as_deref().and_then(cert::not_after);
    Some(CertificateCheck {
        valid: certificate.is_ok(),
        error: certificate.clone().err(),
        not_after,
        days_left: not_after.map(|end| cert::days_left(end, now)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = |s: &str| s.parse::<Endpoint>();
        assert_eq!(
            e("teams.microsoft.com").map(|e| (e.host, e.port)),
            Ok(("teams.microsoft.com".into(), 443))
        );
        assert_eq!(e("pool:5061").map(|e| e.port), Ok(5061));
        assert_eq!(
            e("[::1]:8443").map(|e| (e.host, e.port)),
            Ok(("::1".into(), 8443))
        );
        let sfb = e("onprem_sfb=pool.contoso.com:5061@6.0.9319.548").expect("sfb");
        assert_eq!(
            (sfb.role, sfb.port, sfb.sfb_version.as_deref()),
            (EndpointRole::OnpremSfb, 5061, Some("6.0.9319.548"))
        );
        assert_eq!(
            e("adfs=sts.contoso.com").map(|e| e.role),
            Ok(EndpointRole::Adfs)
        );
        for bad in [
            "",
            ":443",
            "host:0",
            "host:x",
            "a b:1",
            "[::1",
            "h/x",
            "pool@6.0.1.1",
            "onprem_sfb=pool@6.x",
            "lync=pool",
        ] {
            assert!(e(bad).is_err(), "{bad:?}");
        }
    }
}
