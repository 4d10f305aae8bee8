//! One received payload to one store [`Item`]: its topic mapped to a device and channel, its size
//! bounded, its JSON decoded by `roomready-protocol`, its `device` field checked against the
//! topic. Anything that fails is an [`Item::Undecodable`] that says why, never a crash.

use roomready_protocol::{
    Channel, CommandResponse, DecodeError, Event, Message, State, Status, Timestamp, TopicPrefix,
};

use crate::model::check_device;
use crate::store::{DecodeFailure, Decoded, Item};

/// How many bytes of an undecodable payload are kept to show.
pub const HEAD_BYTES: usize = 200;

/// Decodes the payload received on `topic` at `received_at`.
pub fn decode(
    prefix: &TopicPrefix,
    topic: &str,
    payload: &[u8],
    max_payload: usize,
    received_at: Timestamp,
) -> Item {
    let failure = |reason: String| {
        Item::Undecodable(DecodeFailure {
            received_at,
            topic: printable(topic.as_bytes(), 512),
            reason,
            payload_head: printable(payload, HEAD_BYTES),
            payload_len: payload.len(),
        })
    };
    let Some((device, channel)) = prefix.parse(topic) else {
        return failure(format!(
            "the topic is not {}/v1/DEVICE/(state|status|events|cmd/res)",
            prefix.as_str()
        ));
    };
    if payload.len() > max_payload {
        return failure(format!(
            "the payload is {} bytes, over the {max_payload}-byte limit (max_payload_bytes)",
            payload.len()
        ));
    }
    let decoded: Result<Decoded, DecodeError> = match channel {
        Channel::State => State::decode(payload).map(Decoded::State),
        Channel::Status => Status::decode(payload).map(Decoded::Status),
        Channel::Events => Event::decode(payload).map(Decoded::Event),
        Channel::CmdRes => CommandResponse::decode(payload).map(Decoded::Response),
        Channel::Cmd => {
            return failure("a command topic: the controller does not read commands".into());
        }
    };
    let message = match decoded {
        Ok(message) => message,
        Err(e) => return failure(e.to_string()),
    };
    if let Err(reason) = check_device(&device, &message) {
        return failure(reason);
    }
    Item::Message {
        message,
        received_at,
    }
}

/// At most `limit` bytes of `bytes` as text: UTF-8 kept, anything else and every control
/// character escaped (`\x1b`, `\n`), an ellipsis when cut.
fn printable(bytes: &[u8], limit: usize) -> String {
    let head = &bytes[..bytes.len().min(limit)];
    let mut out = String::with_capacity(head.len());
    for chunk in head.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if bytes.len() > limit {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomready_protocol::DeviceId;

    fn prefix() -> TopicPrefix {
        TopicPrefix::default()
    }

    fn reason(item: &Item) -> &str {
        match item {
            Item::Undecodable(f) => &f.reason,
            Item::Message { .. } => panic!("decoded: {item:?}"),
        }
    }

    const NOW: Timestamp = Timestamp::UNIX_EPOCH;

    #[test]
    fn a_status_decodes() {
        let status = Status {
            device: DeviceId::new("mtr-1").expect("valid"),
            seq: 3,
            ts: Timestamp::from_unix_ms(5),
            status: roomready_protocol::Presence::Online,
            reason: None,
        };
        let item = decode(
            &prefix(),
            "roomready/v1/mtr-1/status",
            &status.encode(),
            1024,
            NOW,
        );
        assert_eq!(
            item,
            Item::Message {
                message: Decoded::Status(status),
                received_at: NOW
            }
        );
    }

    #[test]
    fn every_failure_says_why() {
        let p = prefix();
        let spoofed = Status {
            device: DeviceId::new("mtr-2").expect("valid"),
            seq: 3,
            ts: NOW,
            status: roomready_protocol::Presence::Online,
            reason: None,
        }
        .encode();
        for (topic, payload, expected) in [
            (
                "other/topic",
                b"{}".to_vec(),
                "the topic is not roomready/v1/",
            ),
            (
                "roomready/v1/mtr-1/state",
                b"not json".to_vec(),
                "roomready.state",
            ),
            (
                "roomready/v1/mtr-1/state",
                vec![b' '; 2000],
                "over the 1024-byte limit",
            ),
            (
                "roomready/v1/mtr-1/status",
                br#"{"schema":"roomready.status/2"}"#.to_vec(),
                "2",
            ),
            (
                "roomready/v1/mtr-1/status",
                spoofed,
                "is not the topic's device",
            ),
            ("roomready/v1/mtr-1/cmd", b"{}".to_vec(), "a command topic"),
        ] {
            let item = decode(&p, topic, &payload, 1024, NOW);
            assert!(reason(&item).contains(expected), "{topic}: {item:?}");
        }
    }

    #[test]
    fn the_payload_head_is_printable_and_bounded() {
        let mut payload = b"\x1b[31m<script>\xff".to_vec();
        payload.extend(std::iter::repeat_n(b'x', 500));
        let item = decode(&prefix(), "roomready/v1/mtr-1/state", &payload, 4096, NOW);
        let Item::Undecodable(failure) = item else {
            panic!("decoded");
        };
        assert!(failure.payload_head.starts_with("\\u{1b}[31m<script>\\xff"));
        assert!(failure.payload_head.ends_with('…'));
        assert_eq!(failure.payload_len, payload.len());
    }
}
