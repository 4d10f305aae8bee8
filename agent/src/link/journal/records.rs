//! The journal file's record format: building and sealing records (framing and CRC-32C),
//! parsing them back, and the scan that recovers the journal's contents and its last whole record
//! from a file that may end in a torn or corrupt tail. The format is described in the parent
//! module's doc.

use super::*;

pub(super) fn header_record(next_id: u64, seq_floor: u64) -> Vec<u8> {
    let mut record = Vec::with_capacity(HEADER_LEN as usize);
    record.extend_from_slice(&[0; FRAME_LEN as usize]);
    record.push(TYPE_HEADER);
    record.extend_from_slice(&MAGIC);
    record.push(VERSION);
    record.extend_from_slice(&next_id.to_le_bytes());
    record.extend_from_slice(&seq_floor.to_le_bytes());
    seal(&mut record);
    record
}

/// Fills in the frame (length and checksum) of a record whose body follows [`FRAME_LEN`] zeros.
/// The caller has checked that the body's length fits a `u32`.
pub(super) fn seal(record: &mut [u8]) {
    let (frame, body) = record.split_at_mut(FRAME_LEN as usize);
    let len = u32::try_from(body.len()).expect("record bodies are checked to fit a u32");
    frame[..4].copy_from_slice(&len.to_le_bytes());
    frame[4..].copy_from_slice(&crc32c(body).to_le_bytes());
}

/// The body length and checksum of a frame.
pub(super) fn parse_frame(frame: &[u8]) -> (u32, u32) {
    let mut fields = Fields(frame);
    (
        fields.u32().unwrap_or_default(),
        fields.u32().unwrap_or_default(),
    )
}

/// A decoded record body (a message's payload is not part of it).
#[derive(Debug)]
pub(super) enum Body<'a> {
    Header {
        version: u8,
        next_id: u64,
        seq_floor: u64,
    },
    Message {
        id: u64,
        kind: Kind,
        seq: u64,
        retain: bool,
        topic: &'a str,
    },
    Ack {
        id: u64,
    },
}

/// Decodes a body of `body_len` bytes from its first bytes `head` (at least everything but a
/// message's payload); the error says what is invalid.
pub(super) fn parse_body(head: &[u8], body_len: u32) -> Result<Body<'_>, String> {
    let mut fields = Fields(head);
    let kind = fields.u8().ok_or("empty body")?;
    let body_len = body_len as usize;
    match kind {
        TYPE_HEADER => {
            if fields.take(4) != Some(&MAGIC[..]) {
                return Err("a header without the journal's magic".into());
            }
            let version = fields.u8().ok_or("a header cut short")?;
            if version != VERSION {
                return Ok(Body::Header {
                    version,
                    next_id: 0,
                    seq_floor: 0,
                });
            }
            if body_len != HEADER_BODY_LEN as usize {
                return Err(format!("a header of {body_len} bytes"));
            }
            let (Some(next_id), Some(seq_floor)) = (fields.u64(), fields.u64()) else {
                return Err("a header cut short".into());
            };
            Ok(Body::Header {
                version,
                next_id,
                seq_floor,
            })
        }
        TYPE_MESSAGE => {
            let (Some(id), Some(kind), Some(seq), Some(retain), Some(topic_len)) = (
                fields.u64(),
                fields.u8(),
                fields.u64(),
                fields.u8(),
                fields.u16(),
            ) else {
                return Err(format!("a message of {body_len} bytes"));
            };
            let kind = Kind::from_code(kind).ok_or(format!("unknown message kind {kind}"))?;
            let retain = match retain {
                0 => false,
                1 => true,
                other => return Err(format!("retain flag {other}")),
            };
            if MESSAGE_FIXED_LEN + usize::from(topic_len) > body_len {
                return Err(format!(
                    "a topic of {topic_len} bytes in a message of {body_len} bytes"
                ));
            }
            let topic = fields
                .take(usize::from(topic_len))
                .ok_or("a topic cut short")?;
            let topic = std::str::from_utf8(topic).map_err(|_| "a topic that is not UTF-8")?;
            Ok(Body::Message {
                id,
                kind,
                seq,
                retain,
                topic,
            })
        }
        TYPE_ACK => match fields.u64() {
            Some(id) if body_len == ACK_BODY_LEN as usize => Ok(Body::Ack { id }),
            _ => Err(format!("an ack of {body_len} bytes")),
        },
        other => Err(format!("unknown record type {other}")),
    }
}

/// Little-endian fields read off the front of a byte slice.
pub(super) struct Fields<'a>(pub(super) &'a [u8]);

impl<'a> Fields<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// What recovery read from an existing journal file.
pub(super) struct Scan {
    /// The pending records.
    pub(super) slots: VecDeque<Slot>,
    pub(super) next_id: u64,
    pub(super) last_seq: u64,
    /// The length of the undamaged prefix: 0 when not even the header is usable.
    pub(super) valid_len: u64,
    /// Why the rest of the file was unusable.
    pub(super) damage: Option<String>,
}

impl Scan {
    /// A journal holding only its header.
    pub(super) fn empty() -> Scan {
        Scan {
            slots: VecDeque::new(),
            next_id: 1,
            last_seq: 0,
            valid_len: HEADER_LEN,
            damage: None,
        }
    }
}

/// Reads the records of `file` (`file_len` bytes) up to the first damaged one.
pub(super) fn scan(
    file: &File,
    file_len: u64,
    max_bytes: u64,
    path: &Path,
    topics: &mut Topics,
) -> Result<Scan, JournalError> {
    let read_error = || io_error(path, "read");
    let mut reader = BufReader::with_capacity(CHUNK, file);
    reader.rewind().map_err(read_error())?;
    let mut result = Scan {
        slots: VecDeque::new(),
        next_id: 1,
        last_seq: 0,
        valid_len: 0,
        damage: None,
    };
    let mut previous_id = 0;
    let mut head = Vec::new();
    let mut chunk = vec![0; CHUNK];
    while result.valid_len < file_len {
        let at = result.valid_len;
        let remaining = file_len - at;
        if remaining < FRAME_LEN {
            result.damage = Some(format!(
                "record at byte {at} is cut short: {remaining} of at least {FRAME_LEN} bytes"
            ));
            break;
        }
        let mut frame = [0; FRAME_LEN as usize];
        reader.read_exact(&mut frame).map_err(read_error())?;
        let (body_len, stated_crc) = parse_frame(&frame);
        let record_len = FRAME_LEN + u64::from(body_len);
        if body_len == 0 {
            result.damage = Some(format!("record at byte {at} has an empty body"));
            break;
        }
        if record_len > remaining {
            result.damage = Some(if u64::from(body_len) > max_bytes {
                format!(
                    "record at byte {at} has an impossible length of {body_len} bytes \
                     (the bound is {max_bytes})"
                )
            } else {
                format!("record at byte {at} is cut short: {remaining} of {record_len} bytes")
            });
            break;
        }

        // The head of the body is kept for decoding; the payload only runs through the CRC.
        let head_len = (body_len as usize).min(HEAD_MAX);
        head.resize(head_len, 0);
        reader.read_exact(&mut head).map_err(read_error())?;
        let mut crc = crc32c(&head);
        let mut left = u64::from(body_len) - head_len as u64;
        while left > 0 {
            let n = left.min(CHUNK as u64) as usize;
            reader.read_exact(&mut chunk[..n]).map_err(read_error())?;
            crc = crc32c_append(crc, &chunk[..n]);
            left -= n as u64;
        }
        if crc != stated_crc {
            result.damage = Some(format!(
                "checksum mismatch in record at byte {at} ({record_len} bytes)"
            ));
            break;
        }

        let problem = match parse_body(&head, body_len) {
            Err(reason) => Some(reason),
            Ok(Body::Header {
                version,
                next_id,
                seq_floor,
            }) => {
                if at != 0 {
                    Some("a header after the start of the file".to_owned())
                } else if version != VERSION {
                    return Err(JournalError::UnsupportedVersion {
                        path: path.to_owned(),
                        version,
                    });
                } else if next_id == 0 {
                    Some("a header with next id 0".to_owned())
                } else {
                    result.next_id = next_id;
                    result.last_seq = seq_floor;
                    None
                }
            }
            Ok(_) if at == 0 => Some("no journal header at the start of the file".to_owned()),
            Ok(Body::Message {
                id,
                kind,
                seq,
                retain,
                topic,
            }) => match id.checked_add(1) {
                // Ids increase through the file; the header's next id only bounds new ones
                // (records kept by a compaction are older than it).
                Some(next_id) if id > previous_id => {
                    previous_id = id;
                    result.slots.push_back(Slot {
                        entry: Entry {
                            id,
                            kind,
                            seq,
                            topic: topics.intern(topic),
                            retain,
                            offset: at,
                            body_len,
                        },
                        acked: false,
                    });
                    result.next_id = result.next_id.max(next_id);
                    result.last_seq = result.last_seq.max(seq);
                    None
                }
                _ => Some(format!("message id {id} after message id {previous_id}")),
            },
            Ok(Body::Ack { id }) => {
                if let Ok(index) = result.slots.binary_search_by_key(&id, |s| s.entry.id) {
                    result.slots[index].acked = true;
                }
                None
            }
        };
        if let Some(problem) = problem {
            result.damage = Some(format!(
                "record at byte {at} has an invalid body: {problem}"
            ));
            break;
        }
        result.valid_len += record_len;
    }
    result.slots.retain(|slot| !slot.acked);
    Ok(result)
}

/// A few distinct topics, shared between entries instead of one allocation each.
#[derive(Debug, Default)]
pub(super) struct Topics(pub(super) Vec<Arc<str>>);

impl Topics {
    pub(super) fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|known| ***known == *topic) {
            return Arc::clone(known);
        }
        let topic: Arc<str> = Arc::from(topic);
        if self.0.len() < MAX_TOPICS {
            self.0.push(Arc::clone(&topic));
        }
        topic
    }
}

/// The CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) lookup table.
pub(super) const CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC-32C of `bytes`.
pub(super) fn crc32c(bytes: &[u8]) -> u32 {
    crc32c_append(0, bytes)
}

/// The CRC-32C of the concatenation of the bytes that gave `crc` and `bytes`.
pub(super) fn crc32c_append(crc: u32, bytes: &[u8]) -> u32 {
    let mut crc = !crc;
    for &byte in bytes {
        crc = CRC32C_TABLE[((crc ^ u32::from(byte)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}
