//! The agent's on-disk journal: every outgoing message (retained state, events, command
//! responses) is appended here before it is published, and leaves only after the broker's PUBACK.
//!
//! rumqttc drops unacknowledged publishes on reconnect and keeps nothing on disk, so the journal
//! is the source of truth: after every reconnect and after a restart (including a SIGKILL or a
//! power loss) the caller replays [`Journal::pending`] in order, reading each payload back with
//! [`Journal::payload`], and calls [`Journal::ack`] when the PUBACK arrives. Delivery is therefore
//! *at least once*: a message whose ack was lost is published again, with its original `seq`, so a
//! consumer sees a repeat, never a gap it could not explain.
//!
//! # On-disk format
//!
//! One append-only file, `journal.log`, in the journal's directory. It is a sequence of records:
//!
//! ```text
//! [u32 LE body length][u32 LE CRC-32C (Castagnoli) of the body][body]
//! ```
//!
//! and the body starts with a type byte (all integers little-endian):
//!
//! | type | body |
//! |---|---|
//! | `1` header | magic `RRJL`, format version `u8` (1), next id `u64`, seq floor `u64` |
//! | `2` message | id `u64`, kind `u8` (1 state, 2 event, 3 response), seq `u64`, retain `u8`, topic length `u16`, topic (UTF-8), payload (the rest) |
//! | `3` ack | id `u64` |
//!
//! The file always starts with a header record. The header carries what must survive even when
//! every message has been acknowledged and compacted away: the next record id and the highest
//! `seq` ever appended (the "seq floor"). On open, [`Journal::last_seq`] is the maximum of the seq
//! floor and the `seq` of every message record in the file; ids likewise. Record ids increase
//! strictly through the file.
//!
//! # Writing and durability
//!
//! A message is appended as one `write`; with [`Fsync::Always`] (the default) it is on stable
//! storage (`fdatasync`) before [`Journal::append`] returns, so a message that was handed to the
//! broker is always on disk. Acks are appended as small ack records *without* their own sync: a
//! lost ack only means one more publish of an already delivered message, and the next synced
//! append makes every earlier ack durable too. [`Fsync::Never`] leaves appends to the page cache
//! (they still survive a crash of the process, not a power loss).
//!
//! # Recovery
//!
//! [`Journal::open`] reads the records in order and stops at the first one that is incomplete
//! (a `kill -9` in the middle of a write, a full disk), fails its checksum, or has an invalid body.
//! The file is truncated there (and synced), and the loss is returned as a [`Truncation`] so the
//! caller can publish an event about it; every whole record before it is kept (the records after a
//! damaged one are lost with it: once one length is wrong, nothing after it can be trusted to be
//! framed where it seems to be). A length prefix is
//! never trusted for an allocation: bodies are read through a fixed buffer and checked against the
//! size of the file. No file content makes `open` panic; the only content errors it returns are a
//! journal written by a newer format version ([`JournalError::UnsupportedVersion`]), which is left
//! untouched.
//!
//! # Compaction
//!
//! Compaction writes the header and the pending records to `journal.log.tmp`, syncs it, renames it
//! over `journal.log` and syncs the directory; a crash at any point leaves either the old or the
//! new file, and a stale `.tmp` is removed on open. It runs, amortised, when:
//!
//! - every record is acknowledged and the file has reached 64 KiB (so a quiet agent rewrites its
//!   journal about once per 64 KiB of traffic instead of once per message), or
//! - the file has reached 1 MiB and more than half of it is acknowledged records and acks, or
//! - an append (or an ack record) would push the file past the bound, or on [`Journal::compact`].
//!
//! The first two rules make compaction amortised O(1) per byte written: a rewrite that copies
//! `n` live bytes happens only after at least `n` dead bytes were written (or, for a bare header,
//! after 64 KiB). While a compaction runs the directory briefly holds both files.
//!
//! # The bound
//!
//! The file never grows past [`JournalOptions::max_bytes`] (default [`DEFAULT_MAX_BYTES`]). When
//! an append would cross it, the journal compacts; if the pending records still do not leave room,
//! it drops the oldest pending events first, then the oldest responses, then older states — never
//! the newest state (an incoming state makes every pending one older) and never the record being
//! appended. Once it has to drop, it drops until 1/16 of the bound is free, so a journal that stays
//! full (a device offline for very long) is rewritten once per 1/16 of the bound appended (4 MiB
//! at the default), not on every append. Dropped records are counted for
//! [`Journal::take_dropped`]. If even dropping everything it may is not enough (the newest state
//! leaves no room), the append fails with [`JournalError::Full`]; a record that could not fit in
//! an empty journal fails with [`JournalError::RecordTooLarge`]. A bound lowered between runs is
//! applied by [`Journal::open`] the same way.
//!
//! # Memory
//!
//! Payloads stay on disk and are read back one at a time. In memory the journal keeps one
//! [`Entry`] per pending record (56 bytes with its slot, plus the queue's spare capacity; topics
//! are shared between entries), so its footprint
//! follows the number of pending records, not their size: 1 000 pending records take about
//! 55 KiB, a default-size journal entirely full of 300-byte events (about 220 000 records) about
//! 12 MiB. Recovery and compaction stream the file through 64 KiB buffers.
//!
//! One process at a time: the directory is locked (`journal.lock`) while a [`Journal`] is open.

use std::collections::VecDeque;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod records;
pub(crate) mod settings;

use records::{
    Body, Scan, Topics, crc32c, crc32c_append, header_record, parse_body, parse_frame, scan, seal,
};

#[cfg(test)]
mod tests;

/// The default bound of the journal file: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// The smallest accepted bound.
pub(crate) const MIN_MAX_BYTES: u64 = 1024;

/// The journal file inside the journal's directory.
pub(crate) const FILE_NAME: &str = "journal.log";
/// Where compaction writes the next journal file before renaming it over [`FILE_NAME`].
const TMP_NAME: &str = "journal.log.tmp";
/// The lock that keeps a second process out of the directory.
const LOCK_NAME: &str = "journal.lock";

/// Body length and checksum in front of every body.
const FRAME_LEN: u64 = 8;
const MAGIC: [u8; 4] = *b"RRJL";
const VERSION: u8 = 1;
const TYPE_HEADER: u8 = 1;
const TYPE_MESSAGE: u8 = 2;
const TYPE_ACK: u8 = 3;
/// type, magic, version, next id, seq floor.
const HEADER_BODY_LEN: u32 = 1 + 4 + 1 + 8 + 8;
/// A header record, framed: the size of a journal holding nothing.
const HEADER_LEN: u64 = FRAME_LEN + HEADER_BODY_LEN as u64;
/// type, id, kind, seq, retain, topic length: a message body without topic and payload.
const MESSAGE_FIXED_LEN: usize = 1 + 8 + 1 + 8 + 1 + 2;
/// type, id.
const ACK_BODY_LEN: u32 = 1 + 8;
/// An ack record, framed.
const ACK_LEN: u64 = FRAME_LEN + ACK_BODY_LEN as u64;
/// The longest prefix of a body that recovery keeps in memory: everything but the payload.
const HEAD_MAX: usize = MESSAGE_FIXED_LEN + u16::MAX as usize;
/// The buffer through which bodies are read and records copied.
const CHUNK: usize = 64 * 1024;

/// A fully acknowledged journal is rewritten to a bare header once it has reached this size.
const COMPACT_IDLE_BYTES: u64 = 64 * 1024;
/// A journal with pending records is compacted once it has reached this size and more than half
/// of it is dead (acknowledged records and acks).
const COMPACT_DEAD_BYTES: u64 = 1024 * 1024;
/// When the bound forces drops, records are dropped until `1 / DROP_SLACK` of it is free.
const DROP_SLACK: u64 = 16;
/// Interned topics (a device publishes on three).
const MAX_TOPICS: usize = 8;

/// When the journal asks the operating system to put appended records on stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Sync every appended message before [`Journal::append`] returns (the default).
    #[default]
    Always,
    /// Never sync appends: they survive the process being killed, not a power loss, which can
    /// take the latest records (already published) and their `seq`s, issued again after the
    /// restart. Compaction still syncs the new file before it replaces the old one.
    Never,
}

/// Where the journal lives and how it behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// The journal's directory (created if missing); it holds `journal.log`.
    pub dir: PathBuf,
    /// The largest size of `journal.log` in bytes, at least [`MIN_MAX_BYTES`].
    pub max_bytes: u64,
    /// When appends are synced.
    pub fsync: Fsync,
}

impl JournalOptions {
    /// A journal in `dir` with the default bound and [`Fsync::Always`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JournalOptions {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            fsync: Fsync::default(),
        }
    }
}

/// What a journaled message is; decides what the bound drops first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The retained device state: the newest one is never dropped.
    State,
    /// An event: the first to go when the journal is full.
    Event,
    /// A command response: dropped after the events.
    Response,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::State => 1,
            Kind::Event => 2,
            Kind::Response => 3,
        }
    }

    fn from_code(code: u8) -> Option<Kind> {
        match code {
            1 => Some(Kind::State),
            2 => Some(Kind::Event),
            3 => Some(Kind::Response),
            _ => None,
        }
    }
}

/// A pending (unacknowledged) message; its payload stays on disk (see [`Journal::payload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The journal's id of the record: increasing in append order, never reused once
    /// [`Journal::append`] has returned it (also across restarts and compactions).
    pub id: u64,
    /// What the message is.
    pub kind: Kind,
    /// The message's device `seq`.
    pub seq: u64,
    /// The MQTT topic (shared between entries with the same topic).
    pub topic: Arc<str>,
    /// Whether the message is published retained.
    pub retain: bool,
    /// Where the record starts in `journal.log` (changes on compaction).
    offset: u64,
    /// The length of the record's body (the record is [`FRAME_LEN`] longer).
    body_len: u32,
}

impl Entry {
    /// The length of the payload in bytes.
    pub fn payload_len(&self) -> usize {
        (self.body_len as usize).saturating_sub(MESSAGE_FIXED_LEN + self.topic.len())
    }

    /// The record's size on disk, frame included.
    fn record_len(&self) -> u64 {
        FRAME_LEN + u64::from(self.body_len)
    }
}

/// What [`Journal::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Pending records found (after any truncation and any drop by the bound).
    pub records: usize,
    /// The damaged tail that was cut off, if any: report it in an event.
    pub truncated: Option<Truncation>,
}

/// A damaged tail that [`Journal::open`] cut off the journal file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The journal file.
    pub file: PathBuf,
    /// Where the file was cut: the start of the first damaged record; the file is now this long.
    pub offset: u64,
    /// How many bytes were cut off.
    pub discarded_bytes: u64,
    /// What was wrong with the record, e.g. `record at byte 4096 is cut short: 12 of 48 bytes`.
    pub reason: String,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "journal {}: discarded {} bytes from byte {}: {}",
            self.file.display(),
            self.discarded_bytes,
            self.offset,
            self.reason
        )
    }
}

/// Why a journal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// A file system operation failed.
    #[error("journal: cannot {operation} {}: {source}", .path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. `append a record to`.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Another journal (in this or another process) has the directory open.
    #[error("journal: {} is locked by another agent", .path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The journal file was written by a newer agent; it is left untouched.
    #[error(
        "journal: {} has format version {version}; this agent reads version {VERSION}",
        .path.display()
    )]
    UnsupportedVersion {
        /// The journal file.
        path: PathBuf,
        /// The version found.
        version: u8,
    },
    /// [`JournalOptions::max_bytes`] is below [`MIN_MAX_BYTES`].
    #[error("journal: a bound of {max_bytes} bytes is below the minimum of {MIN_MAX_BYTES}")]
    BoundTooSmall {
        /// The bound asked for.
        max_bytes: u64,
    },
    /// The topic does not fit the record's 16-bit topic length.
    #[error("journal: a topic of {len} bytes is longer than {} bytes", u16::MAX)]
    TopicTooLong {
        /// The topic's length.
        len: usize,
    },
    /// The record could not fit even in an empty journal.
    #[error("journal: a record of {len} bytes does not fit the bound of {max_bytes} bytes")]
    RecordTooLarge {
        /// The record's size on disk.
        len: u64,
        /// The bound.
        max_bytes: u64,
    },
    /// No room for the record even after dropping everything the bound may drop (the newest
    /// state is kept).
    #[error(
        "journal: no room for a record of {len} bytes within {max_bytes} bytes: the newest state alone keeps {kept} bytes"
    )]
    Full {
        /// The record's size on disk.
        len: u64,
        /// The bound.
        max_bytes: u64,
        /// What the journal would still hold after dropping all it may (header and newest state).
        kept: u64,
    },
    /// [`Journal::payload`] was asked for a record that is not pending.
    #[error("journal: no pending record with id {id}")]
    NotFound {
        /// The id asked for.
        id: u64,
    },
    /// A pending record no longer reads back as written (the disk changed under the journal).
    /// Acknowledge it to drop it.
    #[error("journal {}: record {id} at byte {offset} is corrupt: {reason}", .path.display())]
    Corrupt {
        /// The journal file.
        path: PathBuf,
        /// The record's id.
        id: u64,
        /// Where the record starts.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Record ids are exhausted (only a forged header can get there).
    #[error("journal: record ids are exhausted")]
    IdsExhausted,
}

/// A closure that turns an [`io::Error`] into a [`JournalError::Io`].
fn io_error(path: &Path, operation: &'static str) -> impl FnOnce(io::Error) -> JournalError {
    let path = path.to_owned();
    move |source| JournalError::Io {
        path,
        operation,
        source,
    }
}

/// A pending record, or an acknowledged one not yet removed from the middle of the queue.
#[derive(Debug)]
struct Slot {
    entry: Entry,
    acked: bool,
}

/// The on-disk journal of outgoing messages. See the module documentation.
#[derive(Debug)]
pub struct Journal {
    dir: PathBuf,
    path: PathBuf,
    tmp_path: PathBuf,
    max_bytes: u64,
    fsync: Fsync,
    file: File,
    /// Held (locked) for the journal's lifetime.
    _lock: File,
    /// The length of `journal.log`: where the next record goes.
    file_len: u64,
    /// Records in id order: every pending one, plus acknowledged ones not at the front.
    slots: VecDeque<Slot>,
    /// How many slots are not acknowledged.
    pending: usize,
    /// The size on disk of the pending records.
    live_bytes: u64,
    next_id: u64,
    last_seq: u64,
    /// Records dropped by the bound since the last [`Journal::take_dropped`].
    dropped: u64,
    /// False when the directory could not be synced after the last rename: retried before the
    /// next synced append.
    dir_synced: bool,
    topics: Topics,
}

impl Journal {
    /// Opens (or creates) the journal in `options.dir`, creating the directory if missing, and
    /// recovers its pending records. A damaged tail is cut off and reported in
    /// [`Recovery::truncated`]; records dropped because the file exceeds a (lowered) bound are
    /// counted for [`Journal::take_dropped`].
    pub fn open(options: JournalOptions) -> Result<(Journal, Recovery), JournalError> {
        let JournalOptions {
            dir,
            max_bytes,
            fsync,
        } = options;
        if max_bytes < MIN_MAX_BYTES {
            return Err(JournalError::BoundTooSmall { max_bytes });
        }
        crate::files::create_dir(&dir).map_err(io_error(&dir, "create the directory"))?;
        let lock = lock(&dir.join(LOCK_NAME))?;
        let path = dir.join(FILE_NAME);
        let tmp_path = dir.join(TMP_NAME);
        match fs::remove_file(&tmp_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&tmp_path, "remove the stale")(e)),
        }

        let existing =
            match crate::files::open_regular(&path, OpenOptions::new().read(true).write(true)) {
                Ok(file) => Some(file),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_error(&path, "open")(e)),
            };
        let mut topics = Topics::default();
        let mut truncated = None;
        let (file, scan) = match existing {
            Some(file) => {
                let file_len = file
                    .metadata()
                    .map_err(io_error(&path, "read the size of"))?
                    .len();
                let scan = scan(&file, file_len, max_bytes, &path, &mut topics)?;
                if let Some(reason) = &scan.damage {
                    file.set_len(scan.valid_len)
                        .and_then(|()| file.sync_all())
                        .map_err(io_error(&path, "truncate the damaged tail of"))?;
                    truncated = Some(Truncation {
                        file: path.clone(),
                        offset: scan.valid_len,
                        discarded_bytes: file_len - scan.valid_len,
                        reason: reason.clone(),
                    });
                }
                (file, scan)
            }
            None => {
                let file = create_empty(&dir, &path, &tmp_path)?;
                (file, Scan::empty())
            }
        };
        // No usable header: start a new file (what could be recovered is reported above).
        let (file, scan) = if scan.valid_len == 0 {
            drop(file);
            (create_empty(&dir, &path, &tmp_path)?, Scan::empty())
        } else {
            (file, scan)
        };

        let pending = scan.slots.len();
        let live_bytes = scan.slots.iter().map(|s| s.entry.record_len()).sum();
        let mut journal = Journal {
            dir,
            path,
            tmp_path,
            max_bytes,
            fsync,
            file,
            _lock: lock,
            file_len: scan.valid_len,
            slots: scan.slots,
            pending,
            live_bytes,
            next_id: scan.next_id,
            last_seq: scan.last_seq,
            dropped: 0,
            dir_synced: true,
            topics,
        };
        if journal.file_len > journal.max_bytes {
            if let Err(error) = journal.make_room(0, None) {
                tracing::warn!(%error, "journal exceeds its bound");
            }
        } else if journal.compaction_due()
            && let Err(error) = journal.rewrite(&[])
        {
            tracing::warn!(%error, "journal compaction failed");
        }
        let recovery = Recovery {
            records: journal.pending,
            truncated,
        };
        Ok((journal, recovery))
    }

    /// Appends a message and returns its id; with [`Fsync::Always`] it is on stable storage when
    /// this returns. Makes room by compacting and, if needed, dropping older records (see the
    /// module documentation). `last_seq` becomes the highest `seq` ever appended. On error nothing
    /// was appended.
    pub fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        topic: &str,
        payload: &[u8],
        retain: bool,
    ) -> Result<u64, JournalError> {
        let topic_len = u16::try_from(topic.len())
            .map_err(|_| JournalError::TopicTooLong { len: topic.len() })?;
        let body_len = (MESSAGE_FIXED_LEN + topic.len()) as u64 + payload.len() as u64;
        let len = FRAME_LEN + body_len;
        let body_len = match u32::try_from(body_len) {
            Ok(body_len) if HEADER_LEN + len <= self.max_bytes => body_len,
            _ => {
                return Err(JournalError::RecordTooLarge {
                    len,
                    max_bytes: self.max_bytes,
                });
            }
        };
        let id = self.next_id;
        let next_id = id.checked_add(1).ok_or(JournalError::IdsExhausted)?;
        if self.file_len + len > self.max_bytes {
            self.make_room(len, Some(kind))?;
        }

        let mut record = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        record.extend_from_slice(&[0; FRAME_LEN as usize]);
        record.push(TYPE_MESSAGE);
        record.extend_from_slice(&id.to_le_bytes());
        record.push(kind.code());
        record.extend_from_slice(&seq.to_le_bytes());
        record.push(u8::from(retain));
        record.extend_from_slice(&topic_len.to_le_bytes());
        record.extend_from_slice(topic.as_bytes());
        record.extend_from_slice(payload);
        seal(&mut record);

        let offset = self.file_len;
        self.write_record(&record, self.fsync == Fsync::Always, "append a record to")?;
        self.slots.push_back(Slot {
            entry: Entry {
                id,
                kind,
                seq,
                topic: self.topics.intern(topic),
                retain,
                offset,
                body_len,
            },
            acked: false,
        });
        self.pending += 1;
        self.live_bytes += len;
        self.next_id = next_id;
        self.last_seq = self.last_seq.max(seq);
        Ok(id)
    }

    /// Records the broker's acknowledgement of `id`: the record leaves the journal. Acking an
    /// unknown, dropped or already acknowledged id does nothing. On error the record stays
    /// pending (and would be published again: at least once).
    pub fn ack(&mut self, id: u64) -> Result<(), JournalError> {
        let Some(index) = self.index_of(id) else {
            return Ok(());
        };
        if self.file_len + ACK_LEN > self.max_bytes {
            // No room for the ack record: compact the record away instead.
            return self.rewrite(&[id]);
        }
        let mut record = Vec::with_capacity(ACK_LEN as usize);
        record.extend_from_slice(&[0; FRAME_LEN as usize]);
        record.push(TYPE_ACK);
        record.extend_from_slice(&id.to_le_bytes());
        seal(&mut record);
        // Not synced: a lost ack only publishes the message once more (see the module docs).
        self.write_record(&record, false, "append an ack to")?;
        self.mark_acked(index);
        if self.compaction_due()
            && let Err(error) = self.rewrite(&[])
        {
            // The ack itself is written; the next compaction will try again.
            tracing::warn!(%error, "journal compaction failed");
        }
        Ok(())
    }

    /// The pending records, oldest first: the order in which to (re)publish them.
    pub fn pending(&self) -> impl Iterator<Item = &Entry> {
        self.slots
            .iter()
            .filter(|slot| !slot.acked)
            .map(|slot| &slot.entry)
    }

    /// Reads the payload of pending record `id` back from disk, checking its checksum.
    pub fn payload(&self, id: u64) -> Result<Vec<u8>, JournalError> {
        let entry = self
            .index_of(id)
            .map(|index| &self.slots[index].entry)
            .ok_or(JournalError::NotFound { id })?;
        let corrupt = |reason: String| JournalError::Corrupt {
            path: self.path.clone(),
            id,
            offset: entry.offset,
            reason,
        };
        let len = usize::try_from(entry.record_len())
            .map_err(|_| corrupt("the record does not fit in memory".into()))?;
        let mut record = vec![0; len];
        let mut file = &self.file;
        file.seek(SeekFrom::Start(entry.offset))
            .and_then(|_| file.read_exact(&mut record))
            .map_err(io_error(&self.path, "read a record from"))?;
        let (frame, body) = record.split_at(FRAME_LEN as usize);
        let (stated_len, crc) = parse_frame(frame);
        if stated_len != entry.body_len {
            return Err(corrupt(format!(
                "its length reads {stated_len}, not {}",
                entry.body_len
            )));
        }
        if crc32c(body) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        match parse_body(body, entry.body_len) {
            Ok(Body::Message { id: found, .. }) if found == id => {}
            Ok(_) => return Err(corrupt("another record is stored there".into())),
            Err(reason) => return Err(corrupt(reason)),
        }
        let start = FRAME_LEN as usize + MESSAGE_FIXED_LEN + entry.topic.len();
        record.drain(..start);
        Ok(record)
    }

    /// How many records the bound dropped since the last call (report it in an event).
    pub fn take_dropped(&mut self) -> u64 {
        std::mem::take(&mut self.dropped)
    }

    /// The highest `seq` ever appended to this journal (0 for a new one), also after its records
    /// were acknowledged and compacted away: the next message takes `last_seq() + 1`.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The size of `journal.log` in bytes: at most the bound, unless a bound lowered between
    /// runs is smaller than the newest state.
    #[cfg(test)]
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.file_len
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rewrites the journal to its header and the pending records now, e.g. before a shutdown.
    pub fn compact(&mut self) -> Result<(), JournalError> {
        self.rewrite(&[])
    }

    /// Pending record `id`, found by binary search.
    pub fn entry(&self, id: u64) -> Option<&Entry> {
        self.index_of(id).map(|index| &self.slots[index].entry)
    }

    /// The slot of pending record `id`.
    fn index_of(&self, id: u64) -> Option<usize> {
        let index = self
            .slots
            .binary_search_by_key(&id, |slot| slot.entry.id)
            .ok()?;
        (!self.slots[index].acked).then_some(index)
    }

    fn mark_acked(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.acked = true;
        self.pending -= 1;
        self.live_bytes -= slot.entry.record_len();
        while self.slots.front().is_some_and(|slot| slot.acked) {
            self.slots.pop_front();
        }
    }

    /// Whether enough of the file is dead to rewrite it (see the module docs).
    fn compaction_due(&self) -> bool {
        if self.pending == 0 {
            return self.file_len >= COMPACT_IDLE_BYTES;
        }
        let dead = self.file_len.saturating_sub(HEADER_LEN + self.live_bytes);
        self.file_len >= COMPACT_DEAD_BYTES && dead > self.file_len / 2
    }

    /// Compacts so that a record of `len` bytes fits within the bound, dropping pending records
    /// if compaction alone is not enough: events, then responses, then states but the newest
    /// (`incoming` is the kind of the record being appended: a state makes every pending one
    /// older). Dropping goes on until 1/[`DROP_SLACK`] of the bound is free, so that a full journal
    /// is rewritten once per that much appended, not on every append.
    fn make_room(&mut self, len: u64, incoming: Option<Kind>) -> Result<(), JournalError> {
        let mut size = HEADER_LEN + self.live_bytes + len;
        let mut victims = Vec::new();
        if size > self.max_bytes {
            let target = self.max_bytes - self.max_bytes / DROP_SLACK;
            let newest_state = if incoming == Some(Kind::State) {
                None
            } else {
                self.pending()
                    .filter(|e| e.kind == Kind::State)
                    .map(|e| e.id)
                    .last()
            };
            'tiers: for tier in [Kind::Event, Kind::Response, Kind::State] {
                for entry in self.pending() {
                    if entry.kind == tier && Some(entry.id) != newest_state {
                        victims.push(entry.id);
                        size -= entry.record_len();
                        if size <= target {
                            break 'tiers;
                        }
                    }
                }
            }
            if size > self.max_bytes {
                return Err(JournalError::Full {
                    len,
                    max_bytes: self.max_bytes,
                    kept: size - len,
                });
            }
            victims.sort_unstable();
        }
        self.rewrite(&victims)?;
        if !victims.is_empty() {
            tracing::warn!(
                dropped = victims.len(),
                max_bytes = self.max_bytes,
                "journal full: dropped the oldest records"
            );
            self.dropped += victims.len() as u64;
        }
        Ok(())
    }

    /// Appends `record` at the end of the file (syncing it if `sync`); on failure cuts off
    /// whatever part of it was written.
    fn write_record(
        &mut self,
        record: &[u8],
        sync: bool,
        operation: &'static str,
    ) -> Result<(), JournalError> {
        if sync && !self.dir_synced {
            sync_dir(&self.dir).map_err(io_error(&self.dir, "sync the directory"))?;
            self.dir_synced = true;
        }
        let mut file = &self.file;
        let written = file
            .seek(SeekFrom::Start(self.file_len))
            .and_then(|_| file.write_all(record))
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) });
        match written {
            Ok(()) => {
                self.file_len += record.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Best effort: a tail left here is also cut off by the next open.
                let _ = self.file.set_len(self.file_len);
                Err(io_error(&self.path, operation)(source))
            }
        }
    }

    /// Rewrites the file to a header and the pending records, except `drop` (sorted ids, counted
    /// as dropped by the caller). A pending record whose checksum no longer matches is dropped
    /// too (and counted). On error the journal is unchanged.
    fn rewrite(&mut self, drop: &[u64]) -> Result<(), JournalError> {
        let tmp = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.tmp_path)
            .map_err(io_error(&self.tmp_path, "create"))?;
        let written = self.write_compacted(&tmp, drop).and_then(|kept| {
            fs::rename(&self.tmp_path, &self.path)
                .map_err(io_error(&self.path, "replace"))
                .map(|()| kept)
        });
        let kept = match written {
            Ok(kept) => kept,
            Err(error) => {
                std::mem::drop(tmp);
                let _ = fs::remove_file(&self.tmp_path);
                return Err(error);
            }
        };
        // The handle follows the renamed file.
        self.file = tmp;
        self.dir_synced = match sync_dir(&self.dir) {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, dir = %self.dir.display(), "cannot sync the journal directory");
                false
            }
        };

        let mut offset = HEADER_LEN;
        let mut corrupt = 0;
        let mut slots = VecDeque::with_capacity(self.pending);
        let mut kept = kept.into_iter().peekable();
        for mut slot in std::mem::take(&mut self.slots) {
            if slot.acked || drop.binary_search(&slot.entry.id).is_ok() {
                continue;
            }
            if kept.next_if_eq(&slot.entry.id).is_none() {
                corrupt += 1;
                continue;
            }
            slot.entry.offset = offset;
            offset += slot.entry.record_len();
            slots.push_back(slot);
        }
        if corrupt > 0 {
            tracing::warn!(
                corrupt,
                "journal: dropped pending records whose checksum no longer matches"
            );
            self.dropped += corrupt;
        }
        self.file_len = offset;
        self.pending = slots.len();
        self.live_bytes = offset - HEADER_LEN;
        self.slots = slots;
        Ok(())
    }

    /// Writes the compacted journal to `tmp` and syncs it; returns the ids it kept, in order.
    fn write_compacted(&self, tmp: &File, drop: &[u64]) -> Result<Vec<u64>, JournalError> {
        let tmp_error = |operation| io_error(&self.tmp_path, operation);
        let mut out = BufWriter::with_capacity(CHUNK, tmp);
        out.write_all(&header_record(self.next_id, self.last_seq))
            .map_err(tmp_error("write"))?;
        let mut written = HEADER_LEN;
        let mut kept = Vec::with_capacity(self.pending);
        let mut buffer = vec![0; CHUNK];
        let mut source = &self.file;
        for entry in self.pending() {
            if drop.binary_search(&entry.id).is_ok() {
                continue;
            }
            source
                .seek(SeekFrom::Start(entry.offset))
                .map_err(io_error(&self.path, "read"))?;
            let mut frame = [0; FRAME_LEN as usize];
            source
                .read_exact(&mut frame)
                .map_err(io_error(&self.path, "read"))?;
            out.write_all(&frame).map_err(tmp_error("write"))?;
            let (stated_len, stated_crc) = parse_frame(&frame);
            let mut crc = 0;
            let mut left = u64::from(entry.body_len);
            while left > 0 {
                let n = left.min(CHUNK as u64) as usize;
                source
                    .read_exact(&mut buffer[..n])
                    .map_err(io_error(&self.path, "read"))?;
                crc = crc32c_append(crc, &buffer[..n]);
                out.write_all(&buffer[..n]).map_err(tmp_error("write"))?;
                left -= n as u64;
            }
            if stated_len == entry.body_len && crc == stated_crc {
                written += entry.record_len();
                kept.push(entry.id);
            } else {
                // Take the damaged copy back out of the new file.
                out.flush().map_err(tmp_error("write"))?;
                let file: &mut &File = out.get_mut();
                file.set_len(written)
                    .and_then(|()| file.seek(SeekFrom::Start(written)).map(|_| ()))
                    .map_err(tmp_error("truncate"))?;
            }
        }
        out.flush().map_err(tmp_error("write"))?;
        tmp.sync_all().map_err(tmp_error("sync"))?;
        Ok(kept)
    }
}

/// Takes the journal directory's lock file.
fn lock(path: &Path) -> Result<File, JournalError> {
    let file = crate::files::open_regular(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false),
    )
    .map_err(io_error(path, "open the lock file"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(JournalError::Locked {
            path: path.to_owned(),
        }),
        Err(TryLockError::Error(e)) => Err(io_error(path, "lock")(e)),
    }
}

/// Creates `path` as a journal holding only a header, through `tmp_path` so that `path` never
/// exists without one.
fn create_empty(dir: &Path, path: &Path, tmp_path: &Path) -> Result<File, JournalError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp_path)
        .map_err(io_error(tmp_path, "create"))?;
    let mut writer = &file;
    writer
        .write_all(&header_record(1, 0))
        .and_then(|()| file.sync_all())
        .map_err(io_error(tmp_path, "write"))?;
    fs::rename(tmp_path, path).map_err(io_error(path, "create"))?;
    sync_dir(dir).map_err(io_error(dir, "sync the directory"))?;
    Ok(file)
}

/// Makes a rename in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
