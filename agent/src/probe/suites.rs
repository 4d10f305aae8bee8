//! What the hand-built hellos offer: every TLS 1.0-1.2 suite of the registry
//! ([`roomready_protocol::suites`]), strongest first, split over hellos of at most
//! [`SUITES_PER_HELLO`] suites, as testssl.sh does, because some servers fail on longer lists.
//!
//! The order decides three things. A server that follows the client's order (OpenSSL's default)
//! picks the first suite it shares, so the strongest authenticated suites come first and the
//! anonymous and NULL-cipher ones last: a server that also allows those still shows a
//! certificate. The first hello holds the suites a server is most likely to have, so the others
//! are sent only when it found nothing in common with the first. And a TLS 1.0/1.1 hello only
//! asks whether the version is accepted (and for the certificate), so there the suites with RSA
//! key exchange come first: a server that picks one answers without a ServerKeyExchange, sparing
//! it a signature per probe.

use std::sync::OnceLock;

use roomready_protocol::suites::{MICROSOFT_TLS12_SUITES, suite_name, tls12_and_older_suites};

/// Most suites in one hello (testssl.sh splits at 128: some servers cannot take more).
pub(crate) const SUITES_PER_HELLO: usize = 128;

/// The tiers of AES / ChaCha20 suites with RSA key exchange.
const RSA_AEAD: u8 = 25;
const RSA_CBC: u8 = 27;

/// How likely a server is to choose a suite, by what its IANA name says; lower is offered first.
fn tier(code: u16) -> u8 {
    if let Some(position) = MICROSOFT_TLS12_SUITES.iter().position(|&c| c == code) {
        // Microsoft's lists, in their order, before anything else.
        return u8::try_from(position).unwrap_or(0);
    }
    let name = suite_name(code).unwrap_or("");
    let has = |part: &str| name.contains(part);
    let aead = has("_GCM_") || has("CHACHA20") || has("_CCM");
    let classic_cipher = has("_AES_") || has("CHACHA20");
    if has("_anon_") {
        90
    } else if has("_NULL_") || name.ends_with("_NULL") {
        95
    } else if has("EXPORT") {
        80
    } else if has("PSK") || has("SRP") || has("KRB5") || has("ECCPWD") || has("GOST") {
        70
    } else if has("_RC4_") || has("_DES_") || has("_DES40_") || has("_RC2_") || has("_IDEA_") {
        60
    } else if has("3DES") {
        35
    } else if has("CAMELLIA") {
        40
    } else if has("SEED") {
        42
    } else if !classic_cipher {
        // ARIA.
        50
    } else if name.starts_with("TLS_ECDHE_") {
        if aead { 10 } else { 20 }
    } else if name.starts_with("TLS_DHE_") {
        if aead { 12 } else { 22 }
    } else if name.starts_with("TLS_RSA_") {
        if aead { RSA_AEAD } else { RSA_CBC }
    } else {
        // Static ECDH / DH: certificates with DH keys, long gone from real servers.
        45
    }
}

/// 0 for 256-bit ciphers, 1 for 128-bit ones, 2 for the rest.
fn strength(code: u16) -> u8 {
    let name = suite_name(code).unwrap_or("");
    if name.contains("_256_") {
        0
    } else if name.contains("_128_") {
        1
    } else {
        2
    }
}

/// Every TLS 1.0-1.2 suite, in the order offered to `version` (wire number): strongest first
/// for TLS 1.2, RSA key exchange first below it.
pub(crate) fn offer_order(version: u16) -> &'static [u16] {
    static MODERN: OnceLock<Vec<u16>> = OnceLock::new();
    static LEGACY: OnceLock<Vec<u16>> = OnceLock::new();
    let legacy = version < 0x0303;
    let order = if legacy { &LEGACY } else { &MODERN };
    order.get_or_init(|| {
        let mut suites: Vec<u16> = tls12_and_older_suites().collect();
        // Within a tier the larger key first (as Microsoft's lists do), then the registry's order.
        suites.sort_by_cached_key(|&code| {
            let tier = match tier(code) {
                RSA_AEAD | RSA_CBC if legacy => 0,
                tier => tier + 1,
            };
            (tier, strength(code))
        });
        suites
    })
}

/// [`offer_order`] split into the suites of successive hellos.
pub fn offer_chunks(version: u16) -> std::slice::Chunks<'static, u16> {
    offer_order(version).chunks(SUITES_PER_HELLO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suite_is_offered_once_in_few_hellos() {
        for version in [0x0301, 0x0302, 0x0303] {
            let order = offer_order(version);
            let mut sorted = order.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), order.len(), "no suite twice");
            assert_eq!(
                sorted,
                tls12_and_older_suites().collect::<Vec<_>>(),
                "every suite"
            );
            assert!(offer_chunks(version).all(|c| c.len() <= SUITES_PER_HELLO));
            assert_eq!(
                offer_chunks(version).count(),
                order.len().div_ceil(SUITES_PER_HELLO)
            );
        }
    }

    #[test]
    fn legacy_hellos_offer_rsa_key_exchange_first() {
        let legacy = offer_order(0x0301);
        assert_eq!(legacy, offer_order(0x0302));
        assert_eq!(legacy[..2], [0x0035, 0x003D]);
        let rsa = legacy
            .iter()
            .take_while(|&&c| suite_name(c).is_some_and(|n| n.starts_with("TLS_RSA_WITH_")))
            .count();
        assert!(rsa >= 8, "{rsa}");
        // Then the same order as for TLS 1.2.
        let rest: Vec<u16> = offer_order(0x0303)
            .iter()
            .copied()
            .filter(|c| !legacy[..rsa].contains(c))
            .collect();
        assert_eq!(legacy[rsa..], rest);
    }

    #[test]
    fn strongest_first_anonymous_and_null_last() {
        let order = offer_order(0x0303);
        assert_eq!(
            order[..MICROSOFT_TLS12_SUITES.len()],
            MICROSOFT_TLS12_SUITES
        );
        let at = |code: u16| order.iter().position(|&c| c == code).expect("offered");
        // ECDHE AEAD before DHE AEAD before CBC before RSA key exchange before 3DES and RC4;
        // 256-bit before 128-bit.
        assert!(at(0xC00A) < at(0xC009));
        assert!(at(0x0039) < at(0x0033));
        assert!(at(0xCCA8) < at(0xCCAA));
        assert!(at(0xCCAA) < at(0xC00A));
        assert!(at(0x0033) < at(0x002F));
        assert!(at(0x002F) < at(0x000A), "AES before 3DES");
        assert!(at(0x000A) < at(0x0041), "3DES before CAMELLIA");
        assert!(at(0x0041) < at(0xC03C), "CAMELLIA before ARIA");
        assert!(at(0xC03C) < at(0x0005), "ARIA before RC4");
        assert!(at(0x0005) < at(0x0003), "RC4 before export");
        assert!(at(0x0003) < at(0x0034), "export before anonymous");
        assert!(at(0x0034) < at(0x0002), "anonymous before NULL");
        // What a real server picks is in the first hello.
        let first: Vec<u16> = offer_chunks(0x0303).next().expect("a first hello").to_vec();
        for common in [
            0xC02B, 0xC02C, 0xCCA9, 0xC009, 0xC00A, 0xC023, 0xC024, 0x0033, 0x0039, 0x0067, 0x006B,
            0x009C, 0x003C, 0x002F, 0x0035, 0x000A, 0xC012, 0x0016, 0x0041, 0x0084,
        ] {
            assert!(first.contains(&common), "{common:04X} in the first hello");
        }
    }
}
