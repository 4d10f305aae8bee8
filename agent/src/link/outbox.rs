//! The outbox: every message that must reach the broker (states, events, command responses)
//! goes into a [`Spool`] first — the on-disk journal on a device, memory for simulated ones —
//! and leaves it only when the broker acknowledged it. While connected, the outbox keeps up to
//! [`WINDOW`] tracked publishes in flight, in spool order; after every reconnect it sends again,
//! in order, everything not yet acknowledged (the broker may see duplicates, never a gap).

use std::collections::{BTreeMap, HashSet, VecDeque};

use super::Link;
use super::journal::Journal;
pub use super::journal::Kind;

/// Tracked publishes in flight at once: below the link's request queue, so a burst always fits.
pub(crate) const WINDOW: usize = 32;

/// A record's routing, without its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub topic: String,
    pub retain: bool,
}

/// Why a spool operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpoolError(pub String);

/// Where undelivered messages wait: append, look up, acknowledge.
pub trait Spool: Send {
    /// Stores a message; returns its id (ids increase).
    fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, SpoolError>;
    /// The record is delivered: forget it. Unknown ids are ignored.
    fn ack(&mut self, id: u64) -> Result<(), SpoolError>;
    /// Ids of every undelivered record, oldest first.
    fn pending_ids(&self) -> Vec<u64>;
    /// The routing of undelivered record `id`.
    fn routing(&self, id: u64) -> Option<Routing>;
    /// The payload of undelivered record `id`.
    fn payload(&self, id: u64) -> Result<Vec<u8>, SpoolError>;
    /// Records dropped to respect the size bound since the last call.
    fn take_dropped(&mut self) -> u64;
    /// The highest `seq` ever appended (kept across restarts by a persistent spool).
    fn last_seq(&self) -> u64;
}

/// Sends a spool's records over the link, in order, at most [`WINDOW`] in flight.
pub(crate) struct Outbox {
    spool: Box<dyn Spool>,
    /// Records to send on this connection, oldest first.
    to_send: VecDeque<u64>,
    in_flight: HashSet<u64>,
    connected: bool,
}

impl Outbox {
    pub(crate) fn new(spool: Box<dyn Spool>) -> Self {
        Outbox {
            spool,
            to_send: VecDeque::new(),
            in_flight: HashSet::new(),
            connected: false,
        }
    }

    pub(crate) fn last_seq(&self) -> u64 {
        self.spool.last_seq()
    }

    /// Records dropped by the spool's bound since the last call.
    pub(crate) fn take_dropped(&mut self) -> u64 {
        self.spool.take_dropped()
    }

    /// Whether record `id` still waits for delivery.
    pub(crate) fn is_pending(&self, id: u64) -> bool {
        self.spool.routing(id).is_some()
    }

    /// Stores a message and sends it when the window allows. Returns its record id.
    pub(crate) fn push(
        &mut self,
        link: &Link,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, SpoolError> {
        let id = self.spool.append(kind, seq, topic, payload, retain)?;
        if self.connected {
            self.to_send.push_back(id);
            self.pump(link);
        }
        Ok(id)
    }

    /// A new connection: send every undelivered record again, oldest first.
    pub(crate) fn on_connected(&mut self, link: &Link) {
        self.connected = true;
        self.in_flight.clear();
        self.to_send = self.spool.pending_ids().into();
        self.pump(link);
    }

    /// The connection is gone, and with it whatever was in flight.
    pub(crate) fn on_disconnected(&mut self) {
        self.connected = false;
        self.in_flight.clear();
        self.to_send.clear();
    }

    /// The broker acknowledged record `id`.
    pub(crate) fn on_delivered(&mut self, link: &Link, id: u64) -> Result<(), SpoolError> {
        self.in_flight.remove(&id);
        let acked = self.spool.ack(id);
        self.pump(link);
        acked
    }

    fn pump(&mut self, link: &Link) {
        while self.connected && self.in_flight.len() < WINDOW {
            let Some(id) = self.to_send.pop_front() else {
                return;
            };
            // Dropped by the bound since it was queued: nothing to send.
            let Some(routing) = self.spool.routing(id) else {
                continue;
            };
            let payload = match self.spool.payload(id) {
                Ok(payload) => payload,
                Err(error) => {
                    // A record that went bad on disk can never be sent: skip it for good rather
                    // than stall everything behind it. Its seq will be missing downstream.
                    tracing::error!(%error, id, "cannot read a journal record; skipping it");
                    if let Err(error) = self.spool.ack(id) {
                        tracing::error!(%error, id, "cannot skip the unreadable record");
                    }
                    continue;
                }
            };
            if let Err(error) = link.publish_tracked(id, &routing.topic, payload, routing.retain) {
                // The request queue is full: retry this record on the next delivery.
                tracing::debug!(%error, id, "publish not queued; retrying later");
                self.to_send.push_front(id);
                return;
            }
            self.in_flight.insert(id);
        }
    }
}

/// The on-disk journal as the outbox's spool.
impl Spool for Journal {
    fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, SpoolError> {
        Journal::append(self, kind, seq, topic, payload, retain)
            .map_err(|e| SpoolError(e.to_string()))
    }

    fn ack(&mut self, id: u64) -> Result<(), SpoolError> {
        Journal::ack(self, id).map_err(|e| SpoolError(e.to_string()))
    }

    fn pending_ids(&self) -> Vec<u64> {
        self.pending().map(|entry| entry.id).collect()
    }

    fn routing(&self, id: u64) -> Option<Routing> {
        self.entry(id).map(|entry| Routing {
            topic: entry.topic.to_string(),
            retain: entry.retain,
        })
    }

    fn payload(&self, id: u64) -> Result<Vec<u8>, SpoolError> {
        Journal::payload(self, id).map_err(|e| SpoolError(e.to_string()))
    }

    fn take_dropped(&mut self) -> u64 {
        Journal::take_dropped(self)
    }

    fn last_seq(&self) -> u64 {
        Journal::last_seq(self)
    }
}

/// A spool in memory, bounded by a record count: for simulated devices and tests. Nothing
/// survives the process.
pub struct MemorySpool {
    records: BTreeMap<u64, (Kind, Routing, Vec<u8>)>,
    next_id: u64,
    last_seq: u64,
    max_records: usize,
    dropped: u64,
}

impl MemorySpool {
    pub fn new(max_records: usize) -> Self {
        MemorySpool {
            records: BTreeMap::new(),
            next_id: 1,
            last_seq: 0,
            max_records: max_records.max(1),
            dropped: 0,
        }
    }

    /// Makes room for one record: the oldest event first, then the oldest response, then the
    /// oldest state that is not the newest one.
    fn make_room(&mut self) {
        while self.records.len() >= self.max_records {
            let newest_state = self
                .records
                .iter()
                .rev()
                .find(|(_, (kind, _, _))| *kind == Kind::State)
                .map(|(id, _)| *id);
            let victim = [Kind::Event, Kind::Response, Kind::State]
                .iter()
                .find_map(|wanted| {
                    self.records
                        .iter()
                        .find(|(id, (kind, _, _))| kind == wanted && Some(**id) != newest_state)
                        .map(|(id, _)| *id)
                });
            match victim {
                Some(id) => {
                    self.records.remove(&id);
                    self.dropped += 1;
                }
                None => return,
            }
        }
    }
}

impl Spool for MemorySpool {
    fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, SpoolError> {
        self.make_room();
        let id = self.next_id;
        self.next_id += 1;
        self.last_seq = self.last_seq.max(seq);
        let routing = Routing {
            topic: topic.to_owned(),
            retain,
        };
        self.records.insert(id, (kind, routing, payload.to_vec()));
        Ok(id)
    }

    fn ack(&mut self, id: u64) -> Result<(), SpoolError> {
        self.records.remove(&id);
        Ok(())
    }

    fn pending_ids(&self) -> Vec<u64> {
        self.records.keys().copied().collect()
    }

    fn routing(&self, id: u64) -> Option<Routing> {
        self.records.get(&id).map(|(_, routing, _)| routing.clone())
    }

    fn payload(&self, id: u64) -> Result<Vec<u8>, SpoolError> {
        self.records
            .get(&id)
            .map(|(_, _, payload)| payload.clone())
            .ok_or_else(|| SpoolError(format!("record {id} is not pending")))
    }

    fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_spool_drops_events_first_and_keeps_the_newest_state() {
        let mut spool = MemorySpool::new(3);
        let state1 = spool
            .append(Kind::State, 1, "s", b"1", true)
            .expect("append");
        let event = spool
            .append(Kind::Event, 2, "e", b"2", false)
            .expect("append");
        let state2 = spool
            .append(Kind::State, 3, "s", b"3", true)
            .expect("append");
        let event2 = spool
            .append(Kind::Event, 4, "e", b"4", false)
            .expect("append");
        assert_eq!(spool.pending_ids(), vec![state1, state2, event2]);
        assert!(spool.routing(event).is_none());
        assert_eq!(spool.take_dropped(), 1);
        // No events left to drop but the new one: the older state goes, never the newest.
        spool.ack(event2).expect("ack");
        let state3 = spool
            .append(Kind::State, 5, "s", b"5", true)
            .expect("append");
        let state4 = spool
            .append(Kind::State, 6, "s", b"6", true)
            .expect("append");
        assert_eq!(spool.pending_ids(), vec![state2, state3, state4]);
        assert_eq!(spool.take_dropped(), 1);
        assert_eq!(spool.take_dropped(), 0);
        assert_eq!(spool.last_seq(), 6);
        assert_eq!(spool.payload(state4).expect("pending"), b"6");
    }
}
