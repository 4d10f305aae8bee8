//! Probes: what each configured endpoint accepts on the wire, measured so that the verdict agrees
//! with sslscan and `openssl s_client` on the same server.
//!
//! For one endpoint, the name is resolved once and four connections run concurrently: TLS 1.3
//! with a real rustls handshake ([`modern`]), whose certificate only a real handshake can read,
//! and TLS 1.2, 1.1 and 1.0 the way sslscan and testssl.sh measure them, with hand-built hellos
//! that offer every suite of the registry ([`hello`], [`suites`]) and read the server's first
//! flight ([`flight`]) without completing a handshake. A version is accepted when the server
//! answers with a ServerHello of that version, so acceptance never depends on which suites the
//! prober implements. The certificate chain comes from the best handshake that showed one (TLS
//! 1.3, then 1.2, 1.1, 1.0; up to TLS 1.2 it travels in the clear) and is judged one way
//! ([`verify`]). Whether the server accepts a suite on Microsoft's lists is asked with a hello
//! offering exactly those, unless the TLS 1.2 hello already chose one.
//!
//! Why no rustls handshake at TLS 1.2: the hello's flight already holds everything the verdict
//! uses (version, suite, chain, a client-certificate request), and a completed handshake cost the
//! server four times what the hello does (tests/bench/probe.sh), which on a busy server or a
//! 2-core device is the difference between matching sslscan's speed and not.
//!
//! An endpoint's host is a DNS name (sent as SNI, checked against the certificate) or an IP
//! address (no SNI, as RFC 6066 requires). [`ProbeSettings::resolve`] can name the address to
//! connect to for a host name ([`endpoint::parse_resolve`]; the simulator points
//! `teams.microsoft.com` at a loopback server that way); SNI and the name check stay on the name.

pub mod endpoint;
pub mod flight;
pub mod hello;
pub mod modern;
pub(crate) mod settings;
pub mod suites;
pub mod verify;
pub(crate) mod x509;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use roomready_protocol::suites::{MICROSOFT_TLS12_SUITES, is_microsoft_tls12_suite};
use roomready_protocol::{
    CipherSuite, EndpointReport, ProbeOutcome, SuiteProbe, Timestamp, Tls12Suites, TlsVersion,
    VersionProbe,
};
use rustls::RootCertStore;

pub use endpoint::{Endpoint, ResolveOverrides, dedup, parse_entry};
use flight::{Flight, Reply};
use hello::HelloOutcome;
use modern::ModernOutcome;
use verify::Presented;

/// What every probe of a run shares.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub roots: Arc<RootCertStore>,
    /// Bound on each connection attempt (connect plus answer).
    pub timeout: Duration,
    /// Consulted before DNS: an endpoint whose lower-cased host and port are a key here is probed
    /// at that address, with SNI and the certificate's name check still for its host name. Empty
    /// unless the admin named addresses (`--resolve`, `resolve`); the simulator fills it to point
    /// endpoints at its TLS endpoint farm.
    pub resolve: Arc<ResolveOverrides>,
}

/// Probes `endpoint` at all four versions; `now` is the time the certificate is judged at.
pub async fn probe_endpoint(
    endpoint: &Endpoint,
    settings: &ProbeSettings,
    now: Timestamp,
) -> EndpointReport {
    let mut report = EndpointReport::new(
        endpoint.host.clone(),
        endpoint.port,
        endpoint.role,
        endpoint.sfb_version.clone(),
    );
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
            .map(|version| probe(version, ProbeOutcome::DnsFailure, Some(detail.clone())))
            .collect();
            return report;
        }
    };
    report.address = Some(addr.to_string());
    let host = endpoint.host.as_str();
    let timeout = settings.timeout;
    let hello =
        |version: TlsVersion| hello::probe_version(addr, Some(host), version.wire(), timeout);
    let (tls13, hello12, hello11, hello10) = tokio::join!(
        modern::probe_modern(
            addr,
            host,
            TlsVersion::Tls13,
            settings.roots.clone(),
            timeout
        ),
        hello(TlsVersion::Tls12),
        hello(TlsVersion::Tls11),
        hello(TlsVersion::Tls10),
    );
    report.versions = vec![
        from_modern(TlsVersion::Tls13, &tls13),
        from_hello(TlsVersion::Tls12, &hello12),
        from_hello(TlsVersion::Tls11, &hello11),
        from_hello(TlsVersion::Tls10, &hello10),
    ];
    let seen = [
        (TlsVersion::Tls13, Seen::Modern(&tls13)),
        (TlsVersion::Tls12, Seen::Hello(&hello12)),
        (TlsVersion::Tls11, Seen::Hello(&hello11)),
        (TlsVersion::Tls10, Seen::Hello(&hello10)),
    ];
    report.client_certificate_required =
        seen.iter().any(|(v, s)| s.client_certificate_requested(*v));
    match seen.iter().find_map(|(v, s)| s.presented(*v)) {
        Some(presented) => {
            report.certificate = Some(verify::check(&presented, host, &settings.roots, now));
        }
        None => {
            report.certificate_unavailable = seen.iter().find_map(|(v, s)| s.why_no_chain(*v));
        }
    }
    if let Some(flight) = Seen::accepted_flight(&hello12, TlsVersion::Tls12) {
        report.tls12_suites =
            Some(tls12_suites(addr, host, timeout, flight.hello.cipher_suite).await);
    }
    report
}

/// One handshake's view of the server, for the certificate and client authentication.
enum Seen<'a> {
    Modern(&'a ModernOutcome),
    Hello(&'a HelloOutcome),
}

impl Seen<'_> {
    /// The flight of a hello the server accepted at `version`.
    fn accepted_flight(hello: &HelloOutcome, version: TlsVersion) -> Option<&Flight> {
        hello.flight().filter(|f| f.hello.version == version.wire())
    }

    fn client_certificate_requested(&self, version: TlsVersion) -> bool {
        match self {
            Seen::Modern(ModernOutcome::Accepted(a)) => a.client_certificate_requested,
            Seen::Modern(_) => false,
            Seen::Hello(h) => {
                Self::accepted_flight(h, version).is_some_and(|f| f.certificate_request)
            }
        }
    }

    /// The chain this handshake showed, if the server accepted `version` and sent one.
    fn presented(&self, version: TlsVersion) -> Option<Presented> {
        match self {
            Seen::Modern(ModernOutcome::Accepted(a)) => Some(Presented {
                chain: a.chain.clone().filter(|c| !c.is_empty())?,
                version,
                signature_error: a.signature_error.clone(),
            }),
            Seen::Modern(_) => None,
            Seen::Hello(h) => match &Self::accepted_flight(h, version)?.chain {
                Some(flight::Chain::Certificates(chain)) if !chain.is_empty() => Some(Presented {
                    chain: chain.clone(),
                    version,
                    signature_error: None,
                }),
                _ => None,
            },
        }
    }

    /// Why an accepted handshake at `version` showed no chain (`None` if not accepted).
    fn why_no_chain(&self, version: TlsVersion) -> Option<String> {
        match self {
            Seen::Modern(ModernOutcome::Accepted(a)) => Some(format!(
                "the {version} handshake ended before the server's certificate ({})",
                a.incomplete.as_deref().unwrap_or("no certificate")
            )),
            Seen::Modern(_) => None,
            Seen::Hello(h) => {
                let flight = Self::accepted_flight(h, version)?;
                let suite = CipherSuite::from_code(flight.hello.cipher_suite).to_string();
                flight
                    .missing_chain(&suite)
                    .map(|why| format!("{version}: {why}"))
            }
        }
    }
}

/// Which TLS 1.2 suites the server accepts, asked directly: `preferred`, the suite it chose from
/// every suite, and whether it accepts one on Microsoft's lists: that one if it is, else the
/// answer to a hello offering exactly those.
async fn tls12_suites(
    addr: SocketAddr,
    host: &str,
    timeout: Duration,
    preferred: u16,
) -> Tls12Suites {
    let microsoft = if is_microsoft_tls12_suite(preferred) {
        SuiteProbe {
            outcome: ProbeOutcome::Accepted,
            suite: Some(CipherSuite::from_code(preferred)),
            detail: Some("chosen from every suite".into()),
        }
    } else {
        let outcome =
            hello::hello_probe(addr, Some(host), 0x0303, &MICROSOFT_TLS12_SUITES, timeout).await;
        let answer = from_hello(TlsVersion::Tls12, &outcome);
        match answer.suite.as_ref().and_then(CipherSuite::value) {
            Some(code) if !is_microsoft_tls12_suite(code) => SuiteProbe {
                outcome: ProbeOutcome::Error,
                suite: answer.suite,
                detail: Some("the server chose a suite that was not offered".into()),
            },
            _ => SuiteProbe {
                outcome: answer.outcome,
                suite: answer.suite,
                detail: answer.detail,
            },
        }
    };
    Tls12Suites {
        preferred: Some(CipherSuite::from_code(preferred)),
        microsoft: Some(microsoft),
    }
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
        alert: None,
    }
}

/// Refused with alert `code`.
fn refused(version: TlsVersion, code: u8) -> VersionProbe {
    VersionProbe {
        alert: Some(code),
        ..probe(
            version,
            ProbeOutcome::Refused,
            Some(format!("alert {} ({code})", hello::alert_name(code))),
        )
    }
}

/// `answered TLS 1.0` (or the raw number of a version we do not name).
fn answered(version: u16) -> String {
    TlsVersion::from_wire(version).map_or_else(
        || format!("answered version 0x{version:04X}"),
        |v| format!("answered {}", v.name()),
    )
}

fn from_modern(version: TlsVersion, outcome: &ModernOutcome) -> VersionProbe {
    match outcome {
        ModernOutcome::Accepted(a) => {
            let mut detail = a.incomplete.clone();
            if let Some(error) = &a.signature_error {
                detail.get_or_insert_with(|| {
                    format!("the server's handshake signature was not accepted: {error}")
                });
            }
            VersionProbe {
                version,
                outcome: ProbeOutcome::Accepted,
                suite: Some(CipherSuite::from_code(a.suite)),
                detail,
                handshake_ms: a
                    .handshake
                    .map(|h| u64::try_from(h.as_millis()).unwrap_or(u64::MAX)),
                alert: None,
            }
        }
        ModernOutcome::Downgraded(answer) => {
            probe(version, ProbeOutcome::Downgraded, Some(answered(*answer)))
        }
        ModernOutcome::Alert(code, _) => refused(version, *code),
        ModernOutcome::ConnectionRefused => probe(version, ProbeOutcome::ConnectionRefused, None),
        ModernOutcome::Reset => probe(version, ProbeOutcome::ConnectionReset, None),
        ModernOutcome::Timeout => probe(version, ProbeOutcome::NoAnswer, None),
        ModernOutcome::Closed => probe(version, ProbeOutcome::Closed, None),
        ModernOutcome::NotTls(text) => probe(version, ProbeOutcome::NotTls, Some(text.clone())),
        ModernOutcome::Failed(text) => probe(version, ProbeOutcome::Error, Some(text.clone())),
    }
}

fn from_hello(version: TlsVersion, outcome: &HelloOutcome) -> VersionProbe {
    match outcome {
        HelloOutcome::Reply(Reply::Hello(flight)) => {
            let chosen = flight.hello.version;
            if chosen == version.wire() {
                VersionProbe {
                    version,
                    outcome: ProbeOutcome::Accepted,
                    suite: Some(CipherSuite::from_code(flight.hello.cipher_suite)),
                    detail: flight
                        .certificate_request
                        .then(|| "the server asks for a client certificate".into()),
                    handshake_ms: None,
                    alert: None,
                }
            } else if chosen < version.wire() {
                probe(version, ProbeOutcome::Downgraded, Some(answered(chosen)))
            } else {
                probe(
                    version,
                    ProbeOutcome::Error,
                    Some(format!(
                        "answered a higher version 0x{chosen:04X} than offered"
                    )),
                )
            }
        }
        HelloOutcome::Reply(Reply::Alert { description, .. }) => refused(version, *description),
        HelloOutcome::Reply(Reply::NotTls { .. }) => probe(version, ProbeOutcome::NotTls, None),
        HelloOutcome::ConnectionRefused => probe(version, ProbeOutcome::ConnectionRefused, None),
        HelloOutcome::Reset => probe(version, ProbeOutcome::ConnectionReset, None),
        HelloOutcome::Timeout => probe(version, ProbeOutcome::NoAnswer, None),
        HelloOutcome::Closed => probe(version, ProbeOutcome::Closed, None),
        HelloOutcome::Io(text) => probe(version, ProbeOutcome::Error, Some(text.clone())),
    }
}
