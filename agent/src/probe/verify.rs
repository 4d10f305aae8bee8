//! The certificate verdict: one chain, whether rustls's handshake or a hand-built hello's flight
//! delivered it, checked one way: webpki against the same trust anchors and name rules, the
//! keys of every certificate in it, and the server's handshake signature where there was one.
//! Every rejection becomes a reason a person reads ("expired on 2020-01-01", "RSA key of 1024
//! bits is too weak"), never a debug string.

use std::sync::Arc;
use std::time::Duration;

use roomready_protocol::{CertificateCheck, Timestamp, TlsVersion};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

use super::x509::{self, Certificate};

/// A chain as the server presented it, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// DER, the server's own certificate first.
    pub chain: Vec<Vec<u8>>,
    /// The TLS version of the handshake that carried it.
    pub version: TlsVersion,
    /// The server's handshake signature (ServerKeyExchange, CertificateVerify) did not verify
    /// with the certificate's key: the reason (only a completed rustls handshake checks it).
    pub signature_error: Option<String>,
}

/// Checks `presented` for `server_name` against `roots` at `now`.
pub fn check(
    presented: &Presented,
    server_name: &str,
    roots: &Arc<RootCertStore>,
    now: Timestamp,
) -> CertificateCheck {
    let parsed: Vec<Option<Certificate<'_>>> = presented
        .chain
        .iter()
        .map(|der| Certificate::parse(der))
        .collect();
    let leaf = parsed.first().and_then(Option::as_ref);
    let mut problems = Vec::new();
    let mut weak_keys = Vec::new();
    for (i, cert) in parsed.iter().enumerate() {
        let Some(weakness) = cert.as_ref().and_then(|c| c.key.weakness()) else {
            continue;
        };
        if i == 0 {
            weak_keys.push(weakness);
        } else {
            let name = cert
                .as_ref()
                .and_then(|c| c.shown_names().into_iter().next())
                .unwrap_or_else(|| format!("number {}", i + 1));
            weak_keys.push(format!("CA certificate {name:?}: {weakness}"));
        }
    }
    if let Err(error) = webpki_verdict(&presented.chain, server_name, roots, now) {
        // A weak key makes its signatures fail; the key is the reason a person can act on.
        let explained = !weak_keys.is_empty()
            && matches!(
                error,
                rustls::Error::InvalidCertificate(CertificateError::BadSignature)
            );
        if !explained {
            problems.push(reason(&error, leaf, &parsed, server_name));
        }
    }
    if let Some(error) = &presented.signature_error
        && weak_keys.is_empty()
    {
        problems.push(format!(
            "the server's handshake signature was not accepted: {error}"
        ));
    }
    problems.extend(weak_keys);
    let not_after = leaf.and_then(|c| c.not_after);
    CertificateCheck {
        valid: problems.is_empty(),
        error: (!problems.is_empty()).then(|| problems.join("; ")),
        not_after,
        days_left: not_after.map(|end| x509::days_left(end, now)),
        version: Some(presented.version),
    }
}

/// webpki's verdict on the chain, for `server_name` (a DNS name or an IP address).
fn webpki_verdict(
    chain: &[Vec<u8>],
    server_name: &str,
    roots: &Arc<RootCertStore>,
    now: Timestamp,
) -> Result<(), rustls::Error> {
    let Some((end_entity, intermediates)) = chain.split_first() else {
        return Err(rustls::Error::NoCertificatesPresented);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider)
        .build()
        .map_err(|e| rustls::Error::General(format!("certificate verifier: {e}")))?;
    let name = ServerName::try_from(server_name)
        .map_err(|e| rustls::Error::General(format!("server name {server_name:?}: {e}")))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|der| CertificateDer::from(der.as_slice()))
        .collect();
    let now = UnixTime::since_unix_epoch(Duration::from_millis(now.unix_ms()));
    verifier
        .verify_server_cert(
            &CertificateDer::from(end_entity.as_slice()),
            &intermediates,
            &name,
            &[],
            now,
        )
        .map(|_| ())
}

/// `YYYY-MM-DD` of a moment given in seconds since the epoch.
fn date(unix_secs: u64) -> String {
    let text = Timestamp::from_unix_ms(unix_secs.saturating_mul(1000)).to_string();
    text.get(..10).unwrap_or(&text).to_owned()
}

/// The names a certificate is for, for a message.
fn names_of(cert: Option<&Certificate<'_>>) -> String {
    match cert.map(Certificate::shown_names) {
        Some(names) if !names.is_empty() => names.join(", "),
        _ => "no name".into(),
    }
}

/// Why webpki rejected the chain, for a person.
fn reason(
    error: &rustls::Error,
    leaf: Option<&Certificate<'_>>,
    chain: &[Option<Certificate<'_>>],
    server_name: &str,
) -> String {
    let rustls::Error::InvalidCertificate(error) = error else {
        return match error {
            rustls::Error::NoCertificatesPresented => "the server presented no certificate".into(),
            other => format!("cannot be verified: {other}"),
        };
    };
    let leaf_date = |pick: fn(&Certificate<'_>) -> Option<Timestamp>| {
        leaf.and_then(pick)
            .map(|t| date(t.unix_ms() / 1000))
            .unwrap_or_else(|| "?".into())
    };
    match error {
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("expired on {}", date(not_after.as_secs()))
        }
        CertificateError::Expired => format!("expired on {}", leaf_date(|c| c.not_after)),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("not valid before {}", date(not_before.as_secs()))
        }
        CertificateError::NotValidYet => {
            format!("not valid before {}", leaf_date(|c| c.not_before))
        }
        CertificateError::UnknownIssuer => match leaf {
            Some(cert) if cert.self_issued() => "self-signed: not issued by a trusted CA".into(),
            Some(cert) => format!(
                "issued by {}, which is not among the trusted roots",
                cert.issuer_name()
                    .map_or_else(|| "an unknown CA".into(), |n| format!("{n:?}"))
            ),
            None => "not issued by a trusted CA".into(),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!(
                "name does not match: the certificate is for {}, not {server_name}",
                names_of(leaf)
            )
        }
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            "not valid for TLS server authentication (its extended key usage)".into()
        }
        CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id,
            ..
        } => signed_with(x509::signature_algorithm(signature_algorithm_id)),
        #[allow(deprecated)] // rustls still maps webpki's context-free variant onto it
        CertificateError::UnsupportedSignatureAlgorithm => signed_with(
            chain
                .iter()
                .flatten()
                .filter_map(|c| x509::signature_algorithm(c.signature_algorithm))
                .find(|&(_, broken)| broken),
        ),
        CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "signed with an algorithm that does not fit the issuer's key".into()
        }
        CertificateError::BadSignature => "a signature in the chain does not verify".into(),
        CertificateError::BadEncoding => "malformed certificate (not valid DER)".into(),
        CertificateError::Revoked => "revoked".into(),
        CertificateError::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki) => webpki_reason(webpki),
            None => format!("rejected: {other}"),
        },
        other => format!("rejected: {other}"),
    }
}

fn signed_with(algorithm: Option<(&str, bool)>) -> String {
    match algorithm {
        Some((name, true)) => format!("signed with {name}, which TLS clients no longer accept"),
        Some((name, false)) => format!("signed with {name}, which the verifier does not support"),
        None => "signed with an unsupported signature algorithm".into(),
    }
}

/// webpki's errors that rustls passes on unmapped.
fn webpki_reason(error: &webpki::Error) -> String {
    use webpki::Error as E;
    match error {
        E::CaUsedAsEndEntity => "a CA certificate is used as the server certificate".into(),
        E::EndEntityUsedAsCa => "a server certificate is used as a CA in the chain".into(),
        E::UnsupportedCertVersion => "an X.509 version other than 3".into(),
        E::UnsupportedCriticalExtension => {
            "a critical extension the verifier does not understand".into()
        }
        E::PathLenConstraintViolated => "the chain is longer than a CA in it allows".into(),
        E::NameConstraintViolation => "a name outside its CA's name constraints".into(),
        E::MaximumPathDepthExceeded
        | E::MaximumSignatureChecksExceeded
        | E::MaximumPathBuildCallsExceeded
        | E::MaximumNameConstraintComparisonsExceeded => {
            "the chain is too long or too complex to verify".into()
        }
        E::SignatureAlgorithmMismatch => "its two signature algorithm fields do not match".into(),
        E::InvalidCertValidity => "its validity period ends before it begins".into(),
        E::CertDistrusted => "distrusted".into(),
        E::UnsupportedNameType => "a name of a type the verifier does not support".into(),
        #[allow(deprecated)] // older webpki paths still return the context-free variant
        E::EmptyEkuExtension | E::RequiredEkuNotFound | E::RequiredEkuNotFoundContext(_) => {
            "not valid for TLS server authentication (its extended key usage)".into()
        }
        E::BadDer
        | E::BadDerTime
        | E::TrailingData(_)
        | E::MalformedExtensions
        | E::ExtensionValueInvalid
        | E::MalformedDnsIdentifier
        | E::InvalidSerialNumber
        | E::InvalidNetworkMaskConstraint
        | E::MalformedNameConstraint => "malformed certificate".into(),
        _ => "rejected by the verifier".into(),
    }
}

#[cfg(test)]
mod tests;
