//! The one certificate field the rules need beyond webpki's verdict: `notAfter`, for the days
//! left before expiry. A minimal, bounded DER walk over
//! `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serialNumber,
//! signature, issuer, validity SEQUENCE { notBefore, notAfter }, ... }, ... }`.

use roomready_protocol::Timestamp;

/// One DER element: tag, contents, and the rest of the input after it.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7F);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// `notAfter` of a DER certificate, or `None` if it is not a well-formed X.509 certificate.
pub fn not_after(der: &[u8]) -> Option<Timestamp> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // Optional explicit [0] version.
    if rest.first() == Some(&0xA0) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, validity, _) = element(rest)? else {
        return None;
    };
    let (_, _, after_not_before) = element(validity)?;
    let (tag, time, _) = element(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match (tag, text.len()) {
        // UTCTime YYMMDDHHMMSSZ: years 50..99 are 19xx (RFC 5280).
        (0x17, 13) => {
            let yy: u32 = text.get(..2)?.parse().ok()?;
            format!("{}{text}", if yy >= 50 { "19" } else { "20" })
        }
        // GeneralizedTime YYYYMMDDHHMMSSZ.
        (0x18, 15) => text.to_owned(),
        _ => return None,
    };
    let b = full.as_bytes();
    if b.get(14) != Some(&b'Z') {
        return None;
    }
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        full.get(0..4)?,
        full.get(4..6)?,
        full.get(6..8)?,
        full.get(8..10)?,
        full.get(10..12)?,
        full.get(12..14)?
    );
    rfc3339.parse().ok()
}

/// Whole days from `now` until `not_after` (negative once expired).
pub fn days_left(not_after: Timestamp, now: Timestamp) -> i64 {
    let diff = i128::from(not_after.unix_ms()) - i128::from(now.unix_ms());
    i64::try_from(diff.div_euclid(86_400_000)).unwrap_or(i64::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert_until(year: i32, month: u8, day: u8) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(year, month, day);
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        let ts = |s: &str| s.parse::<Timestamp>().expect("ts");
        assert_eq!(
            not_after(&cert_until(2030, 6, 15)),
            Some(ts("2030-06-15T00:00:00Z"))
        );
        // After 2049, RFC 5280 requires GeneralizedTime.
        assert_eq!(
            not_after(&cert_until(2051, 1, 2)),
            Some(ts("2051-01-02T00:00:00Z"))
        );
    }

    #[test]
    fn days_left_counts_whole_days() {
        let at = |s: &str| s.parse::<Timestamp>().expect("ts");
        let end = at("2030-01-15T00:00:00Z");
        assert_eq!(days_left(end, at("2030-01-01T00:00:00Z")), 14);
        assert_eq!(days_left(end, at("2030-01-01T00:00:01Z")), 13);
        assert_eq!(days_left(end, at("2030-01-15T00:00:01Z")), -1);
    }

    #[test]
    fn garbage_and_every_truncation_give_none_without_panic() {
        let der = cert_until(2030, 6, 15);
        for cut in 0..der.len() {
            let _ = not_after(&der[..cut]);
        }
        assert_eq!(not_after(b""), None);
        assert_eq!(not_after(&[0x30, 0x84, 0xFF, 0xFF, 0xFF, 0xFF]), None);
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..2_000 {
            let mut bytes = der.clone();
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = usize::try_from(rng % bytes.len() as u64).expect("fits");
            bytes[at] ^= (rng >> 40) as u8 | 1;
            let _ = not_after(&bytes);
        }
    }
}
