//! The flight parser on well-formed flights (every version, fragmented, with chains and
//! certificate requests), on every truncation, and on noise.

use super::*;

/// A record of `content_type` around `payload`.
fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![content_type];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&u16::try_from(payload.len()).expect("small").to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A handshake message (type + u24 length + body).
fn message(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut msg = vec![msg_type];
    msg.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes()[1..]);
    msg.extend_from_slice(body);
    msg
}

/// A ServerHello handshake message.
fn server_hello_msg(version: u16, suite: u16, extensions: Option<&[u8]>) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x5a; 32]);
    body.push(32);
    body.extend_from_slice(&[0xa5; 32]);
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0);
    if let Some(ext) = extensions {
        body.extend_from_slice(&u16::try_from(ext.len()).expect("small").to_be_bytes());
        body.extend_from_slice(ext);
    }
    message(HS_SERVER_HELLO, &body)
}

/// A Certificate message holding `certs`.
fn certificate_msg(certs: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for cert in certs {
        list.extend_from_slice(&u32::try_from(cert.len()).expect("small").to_be_bytes()[1..]);
        list.extend_from_slice(cert);
    }
    let mut body = u32::try_from(list.len()).expect("small").to_be_bytes()[1..].to_vec();
    body.extend_from_slice(&list);
    message(HS_CERTIFICATE, &body)
}

/// A TLS 1.3-style ServerHello record (legacy 0x0303 + supported_versions 0x0304).
fn tls13_server_hello() -> Vec<u8> {
    let ext = [0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x33, 0x00, 0x00];
    record(0x16, 0x0303, &server_hello_msg(0x0303, 0x1302, Some(&ext)))
}

/// A whole TLS 1.0-1.2 flight: ServerHello, Certificate, ServerKeyExchange, optionally a
/// CertificateRequest, ServerHelloDone, in one record.
fn full_flight(version: u16, suite: u16, certs: &[&[u8]], request: bool) -> Vec<u8> {
    let mut msgs = server_hello_msg(version, suite, Some(&[0xff, 1, 0, 1, 0]));
    msgs.extend_from_slice(&certificate_msg(certs));
    msgs.extend_from_slice(&message(12, &[3, 0, 0x17, 1, 4]));
    if request {
        msgs.extend_from_slice(&message(HS_CERTIFICATE_REQUEST, &[1, 1, 0, 0]));
    }
    msgs.extend_from_slice(&message(HS_SERVER_HELLO_DONE, &[]));
    record(0x16, version, &msgs)
}

fn hello(version: u16, cipher_suite: u16) -> ServerHello {
    ServerHello {
        version,
        cipher_suite,
    }
}

/// Flights that are complete, with what they must parse to.
fn complete_replies() -> Vec<(Vec<u8>, Reply)> {
    let mut out = Vec::new();
    for v in [0x0301u16, 0x0302, 0x0303] {
        out.push((
            full_flight(v, 0xc013, &[b"leaf", b"intermediate"], v == 0x0303),
            Reply::Hello(Flight {
                hello: hello(v, 0xc013),
                chain: Some(Chain::Certificates(vec![
                    b"leaf".to_vec(),
                    b"intermediate".to_vec(),
                ])),
                certificate_request: v == 0x0303,
                alert: None,
                complete: true,
                truncated: false,
            }),
        ));
    }
    // Anonymous suite: no Certificate message.
    let mut anon = server_hello_msg(0x0303, 0x0034, None);
    anon.extend_from_slice(&message(12, &[1, 2, 3]));
    anon.extend_from_slice(&message(HS_SERVER_HELLO_DONE, &[]));
    out.push((
        record(0x16, 0x0303, &anon),
        Reply::Hello(Flight {
            hello: hello(0x0303, 0x0034),
            chain: None,
            certificate_request: false,
            alert: None,
            complete: true,
            truncated: false,
        }),
    ));
    out.push((
        tls13_server_hello(),
        Reply::Hello(Flight {
            hello: hello(0x0304, 0x1302),
            chain: None,
            certificate_request: false,
            alert: None,
            complete: true,
            truncated: false,
        }),
    ));
    out.push((
        record(0x15, 0x0301, &[2, 70]),
        Reply::Alert {
            level: 2,
            description: 70,
        },
    ));
    out.push((
        record(0x15, 0x0303, &[2, 40]),
        Reply::Alert {
            level: 2,
            description: 40,
        },
    ));
    // A flight split over many records, messages cut at odd places.
    let whole = full_flight(0x0303, 0xc02f, &[&[0x30; 300]], false);
    let msgs = &whole[5..];
    out.push((
        fragmented(msgs, &[1, 10, 30, 90, 91, 200]),
        Reply::Hello(Flight {
            hello: hello(0x0303, 0xc02f),
            chain: Some(Chain::Certificates(vec![vec![0x30; 300]])),
            certificate_request: false,
            alert: None,
            complete: true,
            truncated: false,
        }),
    ));
    out
}

/// `msgs` split into handshake records at the given offsets.
fn fragmented(msgs: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&msgs.len())) {
        out.extend_from_slice(&record(0x16, 0x0303, &msgs[start..cut]));
        start = cut;
    }
    out
}

#[test]
fn parses_complete_flights() {
    for (bytes, want) in complete_replies() {
        let got = parse(&bytes);
        assert_eq!(got.as_ref(), Some(&want));
        assert!(want.is_complete());
    }
}

#[test]
fn every_truncation_is_pending_or_an_incomplete_flight() {
    for (bytes, want) in complete_replies() {
        for n in 0..bytes.len() {
            match parse(&bytes[..n]) {
                None => {}
                Some(Reply::Hello(flight)) => {
                    assert!(!flight.complete, "prefix {n} of {want:?}");
                    let Reply::Hello(whole) = &want else {
                        panic!("a hello from a prefix of {want:?}");
                    };
                    assert_eq!(flight.hello, whole.hello);
                }
                other => panic!("prefix {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn the_server_hello_alone_already_answers() {
    let bytes = full_flight(0x0302, 0x0035, &[b"leaf"], false);
    let hello_len = 5 + 4 + 2 + 32 + 1 + 32 + 2 + 1 + 2 + 5;
    let Some(Reply::Hello(flight)) = parse(&bytes[..hello_len]) else {
        panic!("the ServerHello");
    };
    assert_eq!(flight.hello, hello(0x0302, 0x0035));
    assert!(!flight.complete);
    assert_eq!(
        flight.missing_chain("X"),
        Some("the server's Certificate message did not arrive in time".into())
    );
}

#[test]
fn an_alert_after_the_hello_ends_the_flight() {
    let mut bytes = record(0x16, 0x0303, &server_hello_msg(0x0303, 0xc030, None));
    bytes.extend_from_slice(&record(0x15, 0x0303, &[2, 40]));
    let Some(Reply::Hello(flight)) = parse(&bytes) else {
        panic!("a hello");
    };
    assert_eq!((flight.alert, flight.complete), (Some(40), true));
}

#[test]
fn a_malformed_or_empty_chain_is_said_so() {
    let mut msgs = server_hello_msg(0x0303, 0xc030, None);
    msgs.extend_from_slice(&message(HS_CERTIFICATE, &[0, 0, 9, 0, 0, 1]));
    msgs.extend_from_slice(&message(HS_SERVER_HELLO_DONE, &[]));
    let Some(Reply::Hello(flight)) = parse(&record(0x16, 0x0303, &msgs)) else {
        panic!("a hello");
    };
    assert_eq!(flight.chain, Some(Chain::Malformed));
    assert!(
        flight
            .missing_chain("X")
            .is_some_and(|m| m.contains("malformed"))
    );
    let empty = full_flight(0x0303, 0xc030, &[], false);
    let Some(Reply::Hello(flight)) = parse(&empty) else {
        panic!("a hello");
    };
    assert_eq!(flight.chain, Some(Chain::Certificates(vec![])));
    assert!(
        flight
            .missing_chain("X")
            .is_some_and(|m| m.contains("empty"))
    );
}

#[test]
fn http_and_garbage_are_not_tls() {
    let http = b"HTTP/1.1 400 Bad Request\r\n\r\n";
    assert_eq!(
        parse(http),
        Some(Reply::NotTls {
            first_bytes: http[..16].to_vec()
        })
    );
    let not_tls = |bytes: &[u8]| matches!(parse(bytes), Some(Reply::NotTls { .. }));
    // SSLv2-style ServerHello header.
    assert!(not_tls(&[0x80, 0x2e, 0x04, 0x00, 0x01]));
    // Oversized record.
    assert!(not_tls(&[0x16, 3, 3, 0x48, 0x01]));
    // Handshake message that is not a ServerHello.
    assert!(not_tls(&record(0x16, 0x0303, &[11, 0, 0, 0])));
    // Application data or ChangeCipherSpec first.
    assert!(not_tls(&record(0x17, 0x0303, &[1, 2, 3])));
    assert!(not_tls(&record(0x14, 0x0303, &[1])));
    // ServerHello claiming a huge length never waits for 16 MiB.
    assert!(not_tls(&record(0x16, 0x0303, &[2, 0xff, 0xff, 0xff])));
    // Session id length 33.
    let mut msg = server_hello_msg(0x0303, 0xc02f, None);
    msg[4 + 34] = 33;
    assert!(not_tls(&record(0x16, 0x0303, &msg)));
    // Extension block longer than the message.
    let msg = server_hello_msg(0x0303, 0xc02f, Some(&[0, 0x2b, 0, 9, 3]));
    assert!(not_tls(&record(0x16, 0x0303, &msg)));
}

#[test]
fn garbage_after_the_hello_ends_the_flight_without_losing_it() {
    let mut bytes = record(0x16, 0x0303, &server_hello_msg(0x0303, 0xc030, None));
    bytes.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
    let Some(Reply::Hello(flight)) = parse(&bytes) else {
        panic!("a hello");
    };
    assert_eq!(flight.hello, hello(0x0303, 0xc030));
    assert!(flight.complete);
}

#[test]
fn chains_are_bounded() {
    let certs: Vec<&[u8]> = vec![b"c"; 40];
    let Some(Reply::Hello(flight)) = parse(&full_flight(0x0303, 0xc030, &certs, false)) else {
        panic!("a hello");
    };
    assert!(matches!(flight.chain, Some(Chain::Certificates(c)) if c.len() == MAX_CHAIN));
    // A flight larger than the bound ends at the bound, complete, with its hello.
    let big = vec![0x30u8; 16000];
    let mut bytes = record(0x16, 0x0303, &server_hello_msg(0x0303, 0xc030, None));
    let cert = certificate_msg(&[big.as_slice(); 12]);
    for piece in cert.chunks(16000) {
        bytes.extend_from_slice(&record(0x16, 0x0303, piece));
    }
    let Some(Reply::Hello(flight)) = parse(&bytes) else {
        panic!("a hello");
    };
    assert!(flight.complete && flight.truncated && flight.chain.is_none());
    assert!(
        flight
            .missing_chain("X")
            .is_some_and(|m| m.contains("larger than 128 KiB"))
    );
}

/// xorshift64*: a tiny deterministic PRNG for the fuzz-style tests.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("fits")).expect("fits")
    }
    fn byte(&mut self) -> u8 {
        self.next().to_be_bytes()[0]
    }
}

#[test]
fn parse_never_panics_on_random_or_mutated_input() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    // Pure noise, and noise behind a plausible record header.
    for _ in 0..20_000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if len >= 3 && rng.below(2) == 0 {
            bytes[0] = [0x15, 0x16][rng.below(2)];
            bytes[1] = 3;
            bytes[2] = u8::try_from(rng.below(5)).expect("small");
            if len >= 6 && rng.below(2) == 0 {
                bytes[5] = 2;
            }
        }
        let _ = parse(&bytes);
    }
    // Every single-byte mutation and every truncation of each valid flight.
    for (bytes, _) in complete_replies() {
        for n in 0..=bytes.len() {
            let _ = parse(&bytes[..n]);
        }
        for i in 0..bytes.len() {
            for value in [0u8, 1, 2, 0x7f, 0x80, 0xfe, 0xff, rng.byte()] {
                let mut mutated = bytes.clone();
                mutated[i] = value;
                let _ = parse(&mutated);
                let _ = parse(&mutated[..rng.below(mutated.len() + 1)]);
            }
        }
    }
    // Long chains of tiny records stop at the bound.
    let mut chain = record(0x16, 0x0303, &[2, 0, 0xf0, 0x00]);
    while chain.len() < 2 * MAX_FLIGHT_BYTES {
        chain.extend_from_slice(&record(0x16, 0x0303, &[0]));
    }
    assert!(matches!(parse(&chain), Some(Reply::NotTls { .. })));
}
