//! Framing: packets whole and in pieces, an oversized PUBLISH streamed past with its head kept,
//! and noise that must neither panic nor grow the buffer.

use bytes::Bytes;
use rumqttc::mqttbytes::v4::{PubAck, Publish, SubAck, SubscribeReasonCode};

use super::*;

const MAX: usize = 1024;

fn bytes_of(packet: &Packet) -> Vec<u8> {
    let mut out = BytesMut::new();
    packet.write(&mut out, usize::MAX).expect("encodes");
    out.to_vec()
}

fn publish(topic: &str, qos: QoS, pkid: u16, payload: Vec<u8>, retain: bool) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: topic.into(),
        pkid,
        payload: Bytes::from(payload),
    })
}

/// Feeds `bytes` in pieces of `step` and collects every frame.
fn frames(bytes: &[u8], step: usize) -> Vec<Frame> {
    let mut framer = Framer::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in bytes.chunks(step) {
        buf.extend_from_slice(piece);
        while let Some(frame) = framer.next(&mut buf).expect("frames") {
            out.push(frame);
        }
        assert!(
            buf.len() <= MAX + 8 + HEAD_BYTES + 64,
            "bounded: {}",
            buf.len()
        );
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

#[test]
fn packets_come_out_whole_however_they_arrive() {
    let packets = [
        Packet::PubAck(PubAck::new(7)),
        publish(
            "roomready/v1/d/cmd",
            QoS::AtLeastOnce,
            9,
            b"{\"id\":\"c\"}".to_vec(),
            false,
        ),
        Packet::SubAck(SubAck::new(
            1,
            vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        )),
        Packet::PingResp,
        publish("t", QoS::AtMostOnce, 0, vec![b'x'; MAX - 3], true),
    ];
    let bytes: Vec<u8> = packets.iter().flat_map(bytes_of).collect();
    for step in [1, 2, 3, 7, 64, bytes.len()] {
        let got = frames(&bytes, step);
        let want: Vec<Frame> = packets.iter().cloned().map(Frame::Packet).collect();
        assert_eq!(got, want, "in pieces of {step}");
    }
}

#[test]
fn an_oversized_publish_is_streamed_past_with_its_head() {
    let mut payload = br#"{"id":"big","schema":"roomready.command/1","pad":""#.to_vec();
    payload.resize(5 * HEAD_BYTES + 123, b'x');
    let big = publish(
        "roomready/v1/d/cmd",
        QoS::AtLeastOnce,
        42,
        payload.clone(),
        true,
    );
    let after = Packet::PubAck(PubAck::new(3));
    let bytes: Vec<u8> = [bytes_of(&big), bytes_of(&after)].concat();
    for step in [1000, 4096, 70_000, bytes.len()] {
        let got = frames(&bytes, step);
        assert_eq!(
            got,
            [
                Frame::Oversized(Oversized {
                    topic: "roomready/v1/d/cmd".into(),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    pkid: 42,
                    head: payload[..HEAD_BYTES].to_vec(),
                    payload_len: payload.len(),
                }),
                Frame::Packet(after.clone()),
            ],
            "in pieces of {step}"
        );
    }
    // QoS 0 has no packet id; a payload shorter than the head is kept whole.
    let small_head = publish("t", QoS::AtMostOnce, 0, vec![b'y'; MAX], false);
    let mut framer = Framer::new(MAX - 10);
    let mut buf = BytesMut::from(&bytes_of(&small_head)[..]);
    let Some(Frame::Oversized(o)) = framer.next(&mut buf).expect("frames") else {
        panic!("oversized");
    };
    assert_eq!((o.pkid, o.head.len(), o.payload_len), (0, MAX, MAX));
}

#[test]
fn what_cannot_be_framed_is_an_error() {
    let mut framer = Framer::new(MAX);
    let mut varint = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
    assert!(matches!(
        framer.next(&mut varint),
        Err(FrameError::Malformed(_))
    ));
    let mut big_ack = BytesMut::from(&[0x90, 0x80, 0x80, 0x01][..]);
    assert_eq!(
        Framer::new(MAX).next(&mut big_ack),
        Err(FrameError::TooLarge {
            kind: 9,
            len: 16384,
            max: MAX
        })
    );
    // A topic longer than the packet.
    let mut short = BytesMut::from(&[0x32, 0x90, 0x08, 0xff, 0xff][..]);
    assert!(matches!(
        Framer::new(MAX).next(&mut short),
        Err(FrameError::Malformed(_))
    ));
}

#[test]
fn noise_never_panics() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let len = usize::try_from(next() % 300).expect("small");
        let bytes: Vec<u8> = (0..len).map(|_| next().to_be_bytes()[0]).collect();
        let mut framer = Framer::new(64);
        let mut buf = BytesMut::from(&bytes[..]);
        for _ in 0..8 {
            match framer.next(&mut buf) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
    }
}
