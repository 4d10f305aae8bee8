//! The DER walk on certificates made by rcgen and by OpenSSL (fixtures), and on garbage.

use super::*;

/// A self-signed P-256 certificate for `names`, valid from 2020-01-01 until the given day.
fn cert_until(names: &[&str], year: i32, month: u8, day: u8) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example \u{7} CN");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(year, month, day);
    let key = rcgen::KeyPair::generate().expect("key");
    params.self_signed(&key).expect("cert").der().to_vec()
}

/// Certificates OpenSSL made (see the file names): an RSA-1024 key with a SAN, and an RSA-2048
/// key signed with SHA-1 without a SAN.
const RSA1024: &[u8] = include_bytes!("../../../tests/fixtures/x509/rsa1024.der");
const SHA1: &[u8] = include_bytes!("../../../tests/fixtures/x509/sha1.der");

fn ts(s: &str) -> Timestamp {
    s.parse().expect("ts")
}

#[test]
fn reads_utc_and_generalized_times() {
    let der = cert_until(&["localhost"], 2030, 6, 15);
    let cert = Certificate::parse(&der).expect("parses");
    assert_eq!(cert.not_before, Some(ts("2020-01-01T00:00:00Z")));
    assert_eq!(cert.not_after, Some(ts("2030-06-15T00:00:00Z")));
    // After 2049, RFC 5280 requires GeneralizedTime.
    assert_eq!(
        not_after(&cert_until(&["localhost"], 2051, 1, 2)),
        Some(ts("2051-01-02T00:00:00Z"))
    );
}

#[test]
fn reads_keys_names_and_algorithms() {
    let der = cert_until(&["localhost", "127.0.0.1", "::1"], 2030, 1, 1);
    let cert = Certificate::parse(&der).expect("parses");
    assert_eq!(
        cert.key,
        PublicKey::Ec {
            curve: Some("P-256")
        }
    );
    assert_eq!(cert.key.weakness(), None);
    assert_eq!(cert.names, ["localhost", "127.0.0.1", "::1"]);
    assert!(cert.self_issued());
    // Control characters of the wire never reach a report.
    assert_eq!(cert.issuer_name().as_deref(), Some("Example ? CN"));
    assert_eq!(
        signature_algorithm(cert.signature_algorithm),
        Some(("ECDSA with SHA-256", false))
    );

    let weak = Certificate::parse(RSA1024).expect("RSA-1024 parses");
    assert_eq!(weak.key, PublicKey::Rsa { bits: 1024 });
    assert_eq!(
        weak.key.weakness().as_deref(),
        Some("RSA key of 1024 bits is too weak (at least 2048 bits are needed)")
    );
    assert_eq!(weak.names, ["weak.example", "*.weak.example", "192.0.2.1"]);

    let sha1 = Certificate::parse(SHA1).expect("SHA-1 parses");
    assert_eq!(sha1.key, PublicKey::Rsa { bits: 2048 });
    assert_eq!(sha1.key.weakness(), None);
    assert!(sha1.names.is_empty());
    assert_eq!(sha1.shown_names(), ["sha1.example"]);
    assert_eq!(
        signature_algorithm(sha1.signature_algorithm),
        Some(("SHA-1 with RSA", true))
    );
}

#[test]
fn signature_algorithms_are_named_from_oid_or_algorithm_identifier() {
    let sha1_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
    let mut as_element = vec![OID, 9];
    as_element.extend_from_slice(&sha1_oid);
    let mut identifier = vec![SEQUENCE, 13];
    identifier.extend_from_slice(&as_element);
    identifier.extend_from_slice(&[0x05, 0x00]);
    for id in [&sha1_oid[..], &as_element, &identifier] {
        assert_eq!(
            signature_algorithm(id),
            Some(("SHA-1 with RSA", true)),
            "{id:?}"
        );
    }
    assert_eq!(signature_algorithm(&[1, 2, 3]), None);
}

#[test]
fn key_sizes_count_significant_bits() {
    assert_eq!(integer_bits(&[0x00, 0x80, 0x00]), 16);
    assert_eq!(integer_bits(&[0x01, 0x00]), 9);
    assert_eq!(integer_bits(&[0x00]), 0);
    assert_eq!(integer_bits(&[]), 0);
}

#[test]
fn days_left_counts_whole_days() {
    let end = ts("2030-01-15T00:00:00Z");
    assert_eq!(days_left(end, ts("2030-01-01T00:00:00Z")), 14);
    assert_eq!(days_left(end, ts("2030-01-01T00:00:01Z")), 13);
    assert_eq!(days_left(end, ts("2030-01-15T00:00:01Z")), -1);
}

#[test]
fn garbage_and_every_truncation_give_none_without_panic() {
    for der in [
        cert_until(&["a.example"], 2030, 6, 15),
        RSA1024.to_vec(),
        SHA1.to_vec(),
    ] {
        for cut in 0..der.len() {
            let _ = Certificate::parse(&der[..cut]);
        }
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2_000 {
            let mut bytes = der.clone();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = usize::try_from(rng % bytes.len() as u64).expect("fits");
            bytes[at] ^= (rng >> 40) as u8 | 1;
            if let Some(cert) = Certificate::parse(&bytes) {
                let _ = (cert.shown_names(), cert.issuer_name(), cert.key.weakness());
            }
        }
    }
    assert_eq!(not_after(b""), None);
    assert_eq!(not_after(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
}
