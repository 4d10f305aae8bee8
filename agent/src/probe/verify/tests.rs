//! Certificate verdicts and their reasons, on chains made by rcgen and by OpenSSL (fixtures).

use std::time::{Duration as StdDuration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, PublicKeyData,
};

use super::*;

const DAY: StdDuration = StdDuration::from_secs(24 * 60 * 60);
const RSA1024_PUBLIC: &[u8] = include_bytes!("../../../tests/fixtures/x509/rsa1024-public.der");
const RSA1024_SELF_SIGNED: &[u8] = include_bytes!("../../../tests/fixtures/x509/rsa1024.der");
const SHA1_CA: &[u8] = include_bytes!("../../../tests/fixtures/x509/sha1-ca.der");
const SHA1_LEAF: &[u8] = include_bytes!("../../../tests/fixtures/x509/sha1.der");

fn now() -> Timestamp {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    Timestamp::from_unix_ms(u64::try_from(ms).expect("fits"))
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = SystemTime::now();
    params.not_before = (now - 800 * DAY).into();
    params.not_after = (now + 800 * DAY).into();
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// Leaf parameters for `names`, valid from `from` to `until` days from now.
fn leaf_params(names: &[&str], from: i64, until: i64) -> CertificateParams {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, "leaf");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let at = |days: i64| {
        let offset = DAY * u32::try_from(days.unsigned_abs()).expect("small");
        if days < 0 {
            SystemTime::now() - offset
        } else {
            SystemTime::now() + offset
        }
    };
    params.not_before = at(from).into();
    params.not_after = at(until).into();
    params
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, params: &CertificateParams) -> Vec<u8> {
    let key = KeyPair::generate().expect("leaf key");
    params.signed_by(&key, issuer).expect("sign").der().to_vec()
}

fn roots_of(certs: &[&[u8]]) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for der in certs {
        store.add(CertificateDer::from(der.to_vec())).expect("root");
    }
    Arc::new(store)
}

fn verdict(chain: Vec<Vec<u8>>, name: &str, roots: &Arc<RootCertStore>) -> CertificateCheck {
    let presented = Presented {
        chain,
        version: TlsVersion::Tls12,
        signature_error: None,
    };
    check(&presented, name, roots, now())
}

fn error(check: &CertificateCheck) -> &str {
    assert!(!check.valid, "{check:?}");
    check.error.as_deref().expect("a reason")
}

#[test]
fn a_valid_chain_has_no_reason_and_its_days_left() {
    let ca = ca("Test CA");
    let roots = roots_of(&[ca.der()]);
    let check = verdict(
        vec![leaf(&ca, &leaf_params(&["localhost", "127.0.0.1"], -1, 30))],
        "localhost",
        &roots,
    );
    assert!(check.valid, "{check:?}");
    assert_eq!(check.error, None);
    assert!(matches!(check.days_left, Some(29 | 30)), "{check:?}");
    assert_eq!(check.version, Some(TlsVersion::Tls12));
    // An IP address endpoint is checked against the certificate's IP addresses.
    let by_ip = verdict(
        vec![leaf(&ca, &leaf_params(&["localhost", "127.0.0.1"], -1, 30))],
        "127.0.0.1",
        &roots,
    );
    assert!(by_ip.valid, "{by_ip:?}");
}

#[test]
fn rejections_read_like_a_person_wrote_them() {
    let ca = ca("Test CA");
    let roots = roots_of(&[ca.der()]);
    let expired = verdict(
        vec![leaf(&ca, &leaf_params(&["localhost"], -400, -2))],
        "localhost",
        &roots,
    );
    let reason = error(&expired);
    assert!(reason.starts_with("expired on 20"), "{reason}");
    assert_eq!(reason.len(), "expired on 2026-01-01".len(), "{reason}");

    let future = verdict(
        vec![leaf(&ca, &leaf_params(&["localhost"], 3, 30))],
        "localhost",
        &roots,
    );
    assert!(
        error(&future).starts_with("not valid before 20"),
        "{future:?}"
    );

    let wrong_name = verdict(
        vec![leaf(&ca, &leaf_params(&["localhost", "127.0.0.1"], -1, 30))],
        "teams.microsoft.com",
        &roots,
    );
    assert_eq!(
        error(&wrong_name),
        "name does not match: the certificate is for localhost, 127.0.0.1, not teams.microsoft.com"
    );

    let other = self::ca("Other CA");
    let unknown = verdict(
        vec![leaf(&other, &leaf_params(&["localhost"], -1, 30))],
        "localhost",
        &roots,
    );
    assert_eq!(
        error(&unknown),
        "issued by \"Other CA\", which is not among the trusted roots"
    );

    let key = KeyPair::generate().expect("key");
    let self_signed = leaf_params(&["localhost"], -1, 30)
        .self_signed(&key)
        .expect("self-signed")
        .der()
        .to_vec();
    assert_eq!(
        error(&verdict(vec![self_signed], "localhost", &roots)),
        "self-signed: not issued by a trusted CA"
    );

    let ca_as_leaf = verdict(vec![ca.der().to_vec()], "localhost", &roots);
    assert_eq!(
        error(&ca_as_leaf),
        "a CA certificate is used as the server certificate"
    );

    let mut client_only = leaf_params(&["localhost"], -1, 30);
    client_only.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    assert_eq!(
        error(&verdict(vec![leaf(&ca, &client_only)], "localhost", &roots)),
        "not valid for TLS server authentication (its extended key usage)"
    );

    assert_eq!(
        error(&verdict(vec![], "localhost", &roots)),
        "the server presented no certificate"
    );
    assert_eq!(
        error(&verdict(
            vec![vec![0x30, 0x03, 1, 2, 3]],
            "localhost",
            &roots
        )),
        "malformed certificate (not valid DER)"
    );
}

/// The RSA-1024 public key of the fixture, for rcgen to certify.
struct WeakKey;

impl PublicKeyData for WeakKey {
    fn der_bytes(&self) -> &[u8] {
        RSA1024_PUBLIC
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

#[test]
fn weak_keys_and_broken_hashes_are_named() {
    let ca = ca("Test CA");
    let roots = roots_of(&[ca.der()]);
    let weak = leaf_params(&["localhost"], -1, 30)
        .signed_by(&WeakKey, &ca)
        .expect("sign the weak key")
        .der()
        .to_vec();
    assert_eq!(
        error(&verdict(vec![weak], "localhost", &roots)),
        "RSA key of 1024 bits is too weak (at least 2048 bits are needed)"
    );
    // Both problems of a self-signed CA certificate (OpenSSL marks them CA:TRUE) with a weak key
    // are listed.
    let both = verdict(vec![RSA1024_SELF_SIGNED.to_vec()], "weak.example", &roots);
    assert_eq!(
        error(&both),
        "a CA certificate is used as the server certificate; RSA key of 1024 bits is too weak (at least 2048 bits are needed)"
    );

    let sha1_roots = roots_of(&[SHA1_CA]);
    assert_eq!(
        error(&verdict(
            vec![SHA1_LEAF.to_vec()],
            "sha1.example",
            &sha1_roots
        )),
        "signed with SHA-1 with RSA, which TLS clients no longer accept"
    );
}

#[test]
fn a_handshake_signature_that_fails_is_a_certificate_problem() {
    let ca = ca("Test CA");
    let roots = roots_of(&[ca.der()]);
    let presented = Presented {
        chain: vec![leaf(&ca, &leaf_params(&["localhost"], -1, 30))],
        version: TlsVersion::Tls13,
        signature_error: Some("it does not verify with the certificate's key".into()),
    };
    let check = check(&presented, "localhost", &roots, now());
    assert_eq!(
        error(&check),
        "the server's handshake signature was not accepted: it does not verify with the certificate's key"
    );
    assert_eq!(check.version, Some(TlsVersion::Tls13));
}
