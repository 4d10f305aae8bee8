//! MQTT 3.1.1 framing that an oversized PUBLISH cannot break: complete packets up to a limit are
//! decoded with rumqttc's packet codec; a PUBLISH larger than the limit is not buffered but
//! streamed past. Its topic, packet id and the first [`HEAD_BYTES`] of its payload are kept and
//! the rest is discarded as it arrives, so memory stays bounded whatever a publisher sends, and
//! the session acknowledges it like any other (the agent answers it `payload_too_large`).
//!
//! Pure: bytes in (a [`BytesMut`] the caller fills from the socket), frames out; never panics on
//! any input.

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::Packet;

/// How much of an oversized payload is kept: enough to read the request `id` of a command that
/// puts it first, as controllers do.
pub(super) const HEAD_BYTES: usize = 16 * 1024;
/// PUBLISH packet type (upper nibble of the first byte).
const PUBLISH: u8 = 3;

/// A PUBLISH too large to take whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Oversized {
    pub topic: String,
    pub qos: QoS,
    pub retain: bool,
    /// 0 for QoS 0.
    pub pkid: u16,
    /// The first bytes of the payload.
    pub head: Vec<u8>,
    /// The payload's whole length.
    pub payload_len: usize,
}

/// What came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    Packet(Packet),
    Oversized(Oversized),
}

/// Why the stream cannot be framed: the connection must end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum FrameError {
    #[error("malformed MQTT packet from the broker: {0}")]
    Malformed(String),
    #[error("the broker sent a {kind} packet of {len} bytes, over the {max}-byte limit")]
    TooLarge { kind: u8, len: usize, max: usize },
}

/// An oversized PUBLISH being streamed past.
#[derive(Debug)]
struct Skipping {
    publish: Oversized,
    /// Payload bytes still to discard.
    left: usize,
}

/// Splits the bytes from the broker into frames.
#[derive(Debug)]
pub(super) struct Framer {
    /// Largest packet (remaining length) decoded whole.
    max: usize,
    skipping: Option<Skipping>,
}

/// The fixed header: type and flags byte, remaining length, and the header's own length.
fn fixed_header(buf: &[u8]) -> Result<Option<(u8, usize, usize)>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((first, len, 2 + i)));
        }
    }
    Err(FrameError::Malformed(
        "remaining length longer than 4 bytes".into(),
    ))
}

impl Framer {
    /// Frames packets of at most `max` bytes (remaining length) whole.
    pub(super) fn new(max: usize) -> Framer {
        Framer {
            max,
            skipping: None,
        }
    }

    /// The next complete frame, taking its bytes out of `buf`; `None` when more bytes are needed.
    pub(super) fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(skipping) = &mut self.skipping {
            let n = skipping.left.min(buf.len());
            buf.advance(n);
            skipping.left -= n;
            if skipping.left > 0 {
                return Ok(None);
            }
            let done = self.skipping.take().expect("checked just above");
            return Ok(Some(Frame::Oversized(done.publish)));
        }
        let Some((first, len, header)) = fixed_header(buf)? else {
            return Ok(None);
        };
        if len <= self.max {
            if buf.len() < header + len {
                return Ok(None);
            }
            return Packet::read(buf, self.max)
                .map(|packet| Some(Frame::Packet(packet)))
                .map_err(|e| FrameError::Malformed(format!("{e:?}")));
        }
        if first >> 4 != PUBLISH {
            return Err(FrameError::TooLarge {
                kind: first >> 4,
                len,
                max: self.max,
            });
        }
        self.start_skipping(buf, first, len, header)
    }

    /// Reads the variable header and the head of an oversized PUBLISH, then skips the rest.
    fn start_skipping(
        &mut self,
        buf: &mut BytesMut,
        first: u8,
        len: usize,
        header: usize,
    ) -> Result<Option<Frame>, FrameError> {
        let qos = match (first >> 1) & 0b11 {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            2 => QoS::ExactlyOnce,
            _ => return Err(FrameError::Malformed("PUBLISH with QoS 3".into())),
        };
        let Some(topic_len) = buf
            .get(header..header + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return Ok(None);
        };
        let id_len = if qos == QoS::AtMostOnce { 0 } else { 2 };
        let variable = 2 + topic_len + id_len;
        if variable > len {
            return Err(FrameError::Malformed(
                "PUBLISH shorter than its topic".into(),
            ));
        }
        let payload_len = len - variable;
        let head_len = payload_len.min(HEAD_BYTES);
        if buf.len() < header + variable + head_len {
            return Ok(None);
        }
        let topic = std::str::from_utf8(&buf[header + 2..header + 2 + topic_len])
            .map_err(|_| FrameError::Malformed("PUBLISH topic is not UTF-8".into()))?
            .to_owned();
        let pkid = if id_len == 0 {
            0
        } else {
            let at = header + 2 + topic_len;
            u16::from_be_bytes([buf[at], buf[at + 1]])
        };
        let head = buf[header + variable..header + variable + head_len].to_vec();
        buf.advance(header + variable + head_len);
        self.skipping = Some(Skipping {
            publish: Oversized {
                topic,
                qos,
                retain: first & 1 == 1,
                pkid,
                head,
                payload_len,
            },
            left: payload_len - head_len,
        });
        self.next(buf)
    }
}

#[cfg(test)]
mod tests;
