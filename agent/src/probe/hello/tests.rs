//! The ClientHello builder: well-formed for every version, SNI only for names, bounded, padded
//! out of the lengths some servers hang on.

use super::*;

/// A parsed ClientHello, from our own bytes.
#[derive(Debug)]
struct ParsedHello {
    client_version: u16,
    random: Vec<u8>,
    suites: Vec<u16>,
    extensions: Vec<(u16, Vec<u8>)>,
}

impl ParsedHello {
    fn extension(&self, ext_type: u16) -> Option<&[u8]> {
        self.extensions
            .iter()
            .find(|(t, _)| *t == ext_type)
            .map(|(_, d)| d.as_slice())
    }
}

/// Strictly parses a ClientHello record, checking every length.
fn parse_client_hello(rec: &[u8]) -> ParsedHello {
    assert_eq!(rec[0], 0x16, "record type");
    assert_eq!(&rec[1..3], &[3, 1], "record version");
    let rec_len = usize::from(u16::from_be_bytes([rec[3], rec[4]]));
    assert_eq!(rec.len(), 5 + rec_len, "record length");
    let hs = &rec[5..];
    assert_eq!(hs[0], 1, "handshake type");
    let hs_len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
    assert_eq!(hs.len(), 4 + hs_len, "handshake length");
    let b = &hs[4..];
    let client_version = u16::from_be_bytes([b[0], b[1]]);
    let random = b[2..34].to_vec();
    assert_eq!(b[34], 0, "empty session id");
    let suites_len = usize::from(u16::from_be_bytes([b[35], b[36]]));
    assert_eq!(suites_len % 2, 0);
    let suites = b[37..37 + suites_len]
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let mut at = 37 + suites_len;
    assert_eq!(&b[at..at + 2], &[1, 0], "compression");
    at += 2;
    let ext_len = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    at += 2;
    assert_eq!(b.len(), at + ext_len, "extensions length");
    let mut exts = &b[at..];
    let mut extensions = Vec::new();
    while !exts.is_empty() {
        let t = u16::from_be_bytes([exts[0], exts[1]]);
        let l = usize::from(u16::from_be_bytes([exts[2], exts[3]]));
        extensions.push((t, exts[4..4 + l].to_vec()));
        exts = &exts[4 + l..];
    }
    ParsedHello {
        client_version,
        random,
        suites,
        extensions,
    }
}

#[test]
fn client_hello_is_well_formed_for_every_version() {
    let random = [7u8; 32];
    for version in [0x0301u16, 0x0302, 0x0303] {
        let suites = suites::offer_chunks(version).next().expect("a first hello");
        let bytes = client_hello(version, Some("teams.microsoft.com"), suites, random);
        let hello = parse_client_hello(&bytes);
        assert_eq!(hello.client_version, version);
        assert_eq!(hello.random, random.to_vec());
        assert_eq!(hello.suites, suites.to_vec());
        let sni = hello
            .extension(EXT_SERVER_NAME)
            .expect("SNI for a DNS name");
        let name = b"teams.microsoft.com";
        let mut want = vec![0, 22, 0, 0, 19];
        want.extend_from_slice(name);
        assert_eq!(sni, want.as_slice());
        let groups = hello.extension(EXT_SUPPORTED_GROUPS).expect("groups");
        assert_eq!(&groups[..8], &[0, 28, 0, 0x1d, 0, 0x17, 0, 0x18][..]);
        assert_eq!(hello.extension(EXT_EC_POINT_FORMATS), Some(&[1, 0][..]));
        assert_eq!(hello.extension(EXT_RENEGOTIATION_INFO), Some(&[0][..]));
        assert_eq!(
            hello.extension(EXT_SIGNATURE_ALGORITHMS).is_some(),
            version == 0x0303
        );
        assert!(hello.extension(EXT_SUPPORTED_VERSIONS).is_none());
    }
}

#[test]
fn every_hello_of_a_version_probe_stays_within_one_record() {
    for suites in suites::offer_chunks(0x0303) {
        let bytes = client_hello(0x0303, Some("a.example"), suites, [0; 32]);
        let hello = parse_client_hello(&bytes);
        assert_eq!(hello.suites, suites.to_vec());
        assert!(bytes.len() < 16384);
    }
}

#[test]
fn hellos_of_256_to_511_bytes_are_padded_to_512() {
    for count in 1..200 {
        let suites: Vec<u16> = suites::offer_order(0x0303)[..count].to_vec();
        for sni in [None, Some("login.microsoftonline.com")] {
            let bytes = client_hello(0x0303, sni, &suites, [0; 32]);
            let handshake_len = bytes.len() - 5;
            assert!(
                !(256..512).contains(&handshake_len),
                "{count} suites, {sni:?}: {handshake_len} bytes"
            );
            let hello = parse_client_hello(&bytes);
            assert_eq!(hello.suites, suites);
            if let Some(padding) = hello.extension(EXT_PADDING) {
                assert!((512..=515).contains(&handshake_len), "{count} suites");
                assert!(padding.iter().all(|&b| b == 0));
            }
        }
    }
}

#[test]
fn sni_only_for_dns_names() {
    for sni in [
        None,
        Some("127.0.0.1"),
        Some("::1"),
        Some("[::1]"),
        Some(""),
        Some("bad name"),
        Some("a..b"),
    ] {
        let hello = parse_client_hello(&client_hello(0x0303, sni, &[0x002f], [0; 32]));
        assert!(hello.extension(EXT_SERVER_NAME).is_none(), "{sni:?}");
    }
    for sni in ["localhost", "login.microsoftonline.com.", "a-b.example"] {
        let hello = parse_client_hello(&client_hello(0x0301, Some(sni), &[0x002f], [0; 32]));
        let ext = hello.extension(EXT_SERVER_NAME).expect("SNI");
        assert_eq!(&ext[5..], sni.trim_end_matches('.').as_bytes());
    }
}

#[test]
fn client_hello_bounds_suite_count() {
    let suites = vec![0x002fu16; 5000];
    let hello = parse_client_hello(&client_hello(0x0303, None, &suites, [0; 32]));
    assert_eq!(hello.suites.len(), MAX_SUITES);
}

#[test]
fn alert_names() {
    assert_eq!(alert_name(70), "protocol_version");
    assert_eq!(alert_name(40), "handshake_failure");
    assert_eq!(alert_name(112), "unrecognized_name");
    assert_eq!(alert_name(255), "unknown");
}

#[test]
fn probe_randoms_differ() {
    assert_ne!(probe_random(), probe_random());
}

#[test]
fn only_no_shared_suite_answers_try_the_next_hello() {
    let alert = |description| {
        HelloOutcome::Reply(Reply::Alert {
            level: 2,
            description,
        })
    };
    assert!(alert(40).no_shared_suite());
    assert!(alert(71).no_shared_suite());
    assert!(HelloOutcome::Closed.no_shared_suite());
    assert!(HelloOutcome::Reset.no_shared_suite());
    for definite in [
        alert(70),
        alert(112),
        HelloOutcome::Timeout,
        HelloOutcome::ConnectionRefused,
        HelloOutcome::Io("x".into()),
    ] {
        assert!(!definite.no_shared_suite(), "{definite:?}");
    }
}
