//! The farm's certificates (rcgen): one throwaway CA per farm and one leaf per endpoint, valid,
//! expired or for the wrong name, with an RSA or ECDSA key. Agents trust the farm by adding the
//! CA's PEM to their probe roots.

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::spec::{CertificateKind, KeyKind, WRONG_NAME};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// A fixed RSA-2048 key (PKCS#8) for the farm's RSA leaves: rcgen on ring cannot generate RSA
/// keys. It is public and test-only: it only ever signs loopback handshakes of the farm, under a
/// CA that exists for one farm's lifetime.
const RSA_LEAF_KEY: &str = include_str!("rsa_leaf_key.pem");

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct PkiError {
    what: String,
    #[source]
    source: rcgen::Error,
}

fn pki_error(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let what = what.into();
    move |source| PkiError { what, source }
}

/// The farm's CA.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// A leaf certificate and its private key, as PEM (and the certificate as DER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert_der: Vec<u8>,
}

impl Ca {
    /// A new self-signed CA (ECDSA P-256), valid two years either side of now.
    pub fn new() -> Result<Ca, PkiError> {
        let now = SystemTime::now();
        let key = KeyPair::generate().map_err(pki_error("CA key"))?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(pki_error("CA"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "roomready endpoint farm CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = (now - 2 * 365 * DAY).into();
        params.not_after = (now + 2 * 365 * DAY).into();
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(pki_error("CA"))?;
        let pem = issuer.pem();
        Ok(Ca { issuer, pem })
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A leaf for `name` of the given kind and key type.
    pub fn leaf(&self, name: &str, kind: CertificateKind, key: KeyKind) -> Result<Leaf, PkiError> {
        let now = SystemTime::now();
        let what = format!("certificate for {name}");
        let key = match key {
            KeyKind::Rsa => KeyPair::from_pem(RSA_LEAF_KEY),
            KeyKind::Ecdsa => KeyPair::generate(),
        }
        .map_err(pki_error(format!("key for {name}")))?;
        let san = match kind {
            CertificateKind::WrongName => WRONG_NAME,
            CertificateKind::Valid | CertificateKind::Expired => name,
        };
        let mut params =
            CertificateParams::new(vec![san.to_owned()]).map_err(pki_error(what.clone()))?;
        params.distinguished_name.push(DnType::CommonName, san);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let (not_before, not_after) = match kind {
            CertificateKind::Expired => (now - 400 * DAY, now - DAY),
            CertificateKind::Valid | CertificateKind::WrongName => (now - DAY, now + 365 * DAY),
        };
        params.not_before = not_before.into();
        params.not_after = not_after.into();
        let cert = params
            .signed_by(&key, &*self.issuer)
            .map_err(pki_error(what))?;
        Ok(Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        })
    }
}
