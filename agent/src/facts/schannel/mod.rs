//! Observed handshakes: what this device's own TLS stack negotiated, as Schannel recorded it in
//! the System log, summarised per protocol version and target — the evidence beside the
//! prediction (issue 17).
//!
//! Schannel logs a successful client handshake as event 36880 (protocol, cipher suite and, on
//! Windows 10 and later, the target name) when `EventLogging` has bit 0x4, and failures as
//! 36874 (no common cipher suite), 36887 (a fatal alert received) and 36888 (a fatal alert
//! sent). The events are read from the live System log through the Windows Event Log API
//! (`native`, Windows only) or from a saved export ([`export`], any OS); both give the same
//! [`xml::RawEvent`]s, interpreted here ([`interpret`]) and summarised within [`Bounds`]
//! ([`summarize`]): how far back (days) and how many events, the newest kept.
//!
//! Only Schannel's clients show up: the Windows components and apps that use Schannel (WinHTTP,
//! WinINet, .NET, Skype for Business). Programs with their own TLS library (Chromium-based
//! WebView2 uses BoringSSL) never appear, so "no legacy handshake observed" is evidence about
//! Schannel's users, not about every byte the room sends.

pub mod export;
// The crate denies unsafe code; the Event Log API is FFI, kept to this one module.
#[cfg(windows)]
#[allow(unsafe_code)]
pub(crate) mod native;
pub(crate) mod settings;
pub(crate) mod xml;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use roomready_protocol::observed::{FailureCount, HandshakeCount, ObservedProtocol, Target};
use roomready_protocol::{Observed, ObservedSource, Timestamp, Verdict};

use xml::RawEvent;

/// A successful client handshake (protocol, suite, target).
pub(crate) const EVENT_HANDSHAKE: u32 = 36880;
/// A connection request whose cipher suites the other side supports none of.
pub(crate) const EVENT_NO_COMMON_SUITE: u32 = 36874;
/// A fatal alert received from the other side.
pub(crate) const EVENT_ALERT_RECEIVED: u32 = 36887;
/// A fatal alert generated and sent to the other side.
pub(crate) const EVENT_ALERT_SENT: u32 = 36888;
/// The events read, in the order the native query names them.
pub(crate) const EVENTS: [u32; 4] = [
    EVENT_HANDSHAKE,
    EVENT_NO_COMMON_SUITE,
    EVENT_ALERT_RECEIVED,
    EVENT_ALERT_SENT,
];

/// How far back and how many events are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Days back from now (1..=[`Bounds::MAX_WINDOW_DAYS`]).
    pub window_days: u32,
    /// The most events summarised, the newest kept (1..=[`Bounds::MAX_EVENTS`]).
    pub max_events: usize,
}

impl Bounds {
    pub const DEFAULT_WINDOW_DAYS: u32 = 7;
    pub const MAX_WINDOW_DAYS: u32 = 365;
    pub const DEFAULT_MAX_EVENTS: usize = 20_000;
    pub const MAX_EVENTS: usize = 1_000_000;
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            window_days: Self::DEFAULT_WINDOW_DAYS,
            max_events: Self::DEFAULT_MAX_EVENTS,
        }
    }
}

/// One Schannel event, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Handshake {
        protocol: ObservedProtocol,
        target: Option<Target>,
        suite: Option<u16>,
    },
    Failure {
        event: u32,
        alert: Option<u8>,
        protocol: Option<ObservedProtocol>,
        target: Option<Target>,
    },
}

/// What an event says, or why it is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interpreted {
    /// A record at its time.
    Record(Timestamp, Record),
    /// Not one of ours: another provider, another Schannel event, a server-side handshake.
    Ignored,
    /// Ours but unreadable (no time, an id that is not a number): the reason.
    Malformed(String),
}

/// What one event says (see the module documentation for the event ids).
pub(crate) fn interpret(event: &RawEvent) -> Interpreted {
    let provider = event.provider.as_deref().unwrap_or("");
    if !provider.eq_ignore_ascii_case("Schannel") {
        return Interpreted::Ignored;
    }
    let Some(id_text) = event.id.as_deref() else {
        return Interpreted::Malformed("a Schannel event without <EventID>".into());
    };
    let Ok(id) = id_text.trim().parse::<u32>() else {
        return Interpreted::Malformed(format!("EventID {id_text:?} is not a number"));
    };
    if !EVENTS.contains(&id) {
        return Interpreted::Ignored;
    }
    let at = match event.time.as_deref().map(str::parse::<Timestamp>) {
        Some(Ok(at)) => at,
        Some(Err(e)) => {
            return Interpreted::Malformed(format!("event {id}: TimeCreated {e}"));
        }
        None => return Interpreted::Malformed(format!("event {id} without TimeCreated")),
    };
    let target = event.field("TargetName", 5).and_then(Target::lossy);
    let record = match id {
        EVENT_HANDSHAKE => {
            // The device's own handshakes as a client; a server handshake is someone else's.
            if event
                .field("Type", 0)
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("server"))
            {
                return Interpreted::Ignored;
            }
            let Some(protocol_text) = event.field("Protocol", 1) else {
                return Interpreted::Malformed(format!("event {id} without its Protocol"));
            };
            Record::Handshake {
                protocol: ObservedProtocol::from_schannel(protocol_text)
                    .unwrap_or(ObservedProtocol::Other),
                target,
                suite: event.field("CipherSuite", 2).and_then(parse_suite),
            }
        }
        EVENT_NO_COMMON_SUITE => Record::Failure {
            event: id,
            alert: None,
            protocol: event
                .field("Protocol", 0)
                .and_then(ObservedProtocol::from_schannel),
            target,
        },
        _ => Record::Failure {
            event: id,
            alert: event
                .field("AlertDesc", 0)
                .and_then(|a| a.trim().parse().ok()),
            protocol: None,
            target,
        },
    };
    Interpreted::Record(at, record)
}

/// `0xC030`, `0xc030`, `C030` or decimal `49200` → 0xC030.
fn parse_suite(text: &str) -> Option<u16> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u16::from_str_radix(hex, 16).ok(),
        None if text.chars().any(|c| c.is_ascii_alphabetic()) => u16::from_str_radix(text, 16).ok(),
        None => text.parse().ok(),
    }
}

/// What was read from one source, before the bounds (a simulator hands in its own).
#[derive(Debug, Default)]
pub struct Reading {
    pub records: Vec<(Timestamp, Record)>,
    /// Events that could not be read.
    pub malformed: u64,
    /// The first problem met, with its place.
    pub problem: Option<String>,
}

impl Reading {
    /// Interprets `events` (already parsed) into records.
    pub(crate) fn from_events(events: Vec<RawEvent>) -> Reading {
        let mut reading = Reading::default();
        for event in &events {
            match interpret(event) {
                Interpreted::Record(at, record) => reading.records.push((at, record)),
                Interpreted::Ignored => {}
                Interpreted::Malformed(reason) => {
                    reading.malformed += 1;
                    reading.problem.get_or_insert(reason);
                }
            }
        }
        reading
    }
}

/// The summary of what Schannel negotiated, as the rules and the report see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observations {
    pub source: ObservedSource,
    /// Where, for evidence texts (`System log`, `export C:\x.xml`).
    pub label: String,
    pub window_days: u32,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    pub events: u64,
    pub truncated: bool,
    pub handshakes: Vec<HandshakeCount>,
    pub failures: Vec<FailureCount>,
    pub rows_omitted: u64,
    /// Events that could not be read, and the first problem (with its place).
    pub malformed: u64,
    pub problem: Option<String>,
}

impl Observations {
    /// The wire form, with what the registry says about success logging and the verdict of the
    /// prediction alone.
    pub fn to_wire(&self, success_logging: Option<bool>, predicted: Verdict) -> Observed {
        Observed {
            source: self.source,
            window_days: self.window_days,
            since: self.since,
            until: self.until,
            events: self.events,
            truncated: self.truncated,
            success_logging,
            handshakes: self.handshakes.clone(),
            failures: self.failures.clone(),
            rows_omitted: self.rows_omitted,
            predicted,
        }
    }

    /// Handshakes with a legacy protocol (SSL, TLS 1.0/1.1, DTLS 1.0).
    pub fn legacy(&self) -> impl Iterator<Item = &HandshakeCount> {
        self.handshakes.iter().filter(|h| h.protocol.is_legacy())
    }
}

/// Summarises `reading` within `bounds` as of `now`: the events of the last `window_days`, the
/// newest `max_events` of them, per protocol and target (handshakes) and per event, alert,
/// protocol and target (failures); legacy protocols first, then the most recent first, at most
/// [`Observed::MAX_ROWS`] rows each.
pub fn summarize(
    mut reading: Reading,
    source: ObservedSource,
    label: String,
    now: Timestamp,
    bounds: Bounds,
) -> Observations {
    let window_ms = u64::from(bounds.window_days) * 86_400_000;
    let start = now.unix_ms().saturating_sub(window_ms);
    reading.records.retain(|(at, _)| at.unix_ms() >= start);
    reading
        .records
        .sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    let truncated = reading.records.len() > bounds.max_events;
    reading.records.truncate(bounds.max_events);
    let since = reading.records.last().map(|(at, _)| *at);
    let until = reading.records.first().map(|(at, _)| *at);
    let events = reading.records.len() as u64;

    type HandshakeKey = (ObservedProtocol, Option<Target>);
    type FailureKey = (u32, Option<u8>, Option<ObservedProtocol>, Option<Target>);
    let mut handshakes: HashMap<HandshakeKey, HandshakeCount> = HashMap::new();
    let mut failures: HashMap<FailureKey, FailureCount> = HashMap::new();
    // Newest first, so the first record of a key sets `last` and `suite`.
    for (at, record) in reading.records {
        match record {
            Record::Handshake {
                protocol,
                target,
                suite,
            } => {
                handshakes
                    .entry((protocol, target.clone()))
                    .or_insert_with(|| HandshakeCount {
                        protocol,
                        target,
                        suite,
                        count: 0,
                        last: at,
                    })
                    .count += 1;
            }
            Record::Failure {
                event,
                alert,
                protocol,
                target,
            } => {
                failures
                    .entry((event, alert, protocol, target.clone()))
                    .or_insert_with(|| FailureCount {
                        event,
                        alert,
                        protocol,
                        target,
                        count: 0,
                        last: at,
                    })
                    .count += 1;
            }
        }
    }
    let mut handshakes: Vec<HandshakeCount> = handshakes.into_values().collect();
    handshakes.sort_by(|a, b| {
        (
            !a.protocol.is_legacy(),
            std::cmp::Reverse(a.last),
            &a.target,
        )
            .cmp(&(
                !b.protocol.is_legacy(),
                std::cmp::Reverse(b.last),
                &b.target,
            ))
            .then(a.protocol.cmp(&b.protocol))
    });
    let mut failures: Vec<FailureCount> = failures.into_values().collect();
    failures.sort_by(|a, b| {
        (std::cmp::Reverse(a.last), a.event, a.alert, &a.target)
            .cmp(&(std::cmp::Reverse(b.last), b.event, b.alert, &b.target))
            .then(a.protocol.cmp(&b.protocol))
    });
    let omitted = handshakes.len().saturating_sub(Observed::MAX_ROWS)
        + failures.len().saturating_sub(Observed::MAX_ROWS);
    handshakes.truncate(Observed::MAX_ROWS);
    failures.truncate(Observed::MAX_ROWS);
    Observations {
        source,
        label,
        window_days: bounds.window_days,
        since,
        until,
        events,
        truncated,
        handshakes,
        failures,
        rows_omitted: omitted as u64,
        malformed: reading.malformed,
        problem: reading.problem,
    }
}

/// Reads and summarises the export at `path`.
pub fn from_export(
    path: &std::path::Path,
    now: Timestamp,
    bounds: Bounds,
) -> Result<Observations, export::ExportError> {
    let parsed = export::load(path)?;
    let mut reading = Reading::from_events(parsed.events);
    reading.malformed += parsed.malformed;
    if parsed.problem.is_some() {
        reading.problem = parsed.problem;
    }
    Ok(summarize(
        reading,
        ObservedSource::Export,
        format!("Schannel events export {}", path.display()),
        now,
        bounds,
    ))
}

/// Reads and summarises the live System log (Windows); `Err` with the reason elsewhere or when
/// the Event Log API fails.
pub fn from_system_log(now: Timestamp, bounds: Bounds) -> Result<Observations, String> {
    #[cfg(windows)]
    {
        let reading = native::read(bounds)?;
        Ok(summarize(
            reading,
            ObservedSource::SystemLog,
            "the System log (Schannel events)".into(),
            now,
            bounds,
        ))
    }
    #[cfg(not(windows))]
    {
        let _ = (now, bounds);
        Err("the System log is read only on Windows; give a saved export instead".into())
    }
}
