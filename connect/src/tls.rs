//! TLS to the broker (`mqtts://`): the rustls client configuration built from the config's
//! `broker_*` / `client_*` keys, and plain-language reasons for failed connections.
//!
//! The configuration always uses the *ring* provider, passed explicitly: the workspace has no
//! aws-lc-rs, so rustls's process-wide default provider is never relied on. The broker is
//! verified by webpki against `broker_ca_file` (Mozilla's roots by default); with
//! `broker_server_name` it is verified against that name instead of the host rumqttc connects
//! to (the SNI still carries the URL's host, none for an IP address).
//!
//! rumqttc reports a failed handshake as a nested I/O error ("TLS: I/O: invalid peer
//! certificate: UnknownIssuer"); [`explain`] finds the rustls error inside and says what it
//! means for the operator, keeping the original text after it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    AlertDescription, CertificateError, ClientConfig, DigitallySignedStruct, InconsistentKeys,
    RootCertStore, SignatureScheme,
};

use crate::broker::BrokerTls;

/// Why the broker's TLS configuration could not be built. [`TlsConfigError::key`] names the
/// config key at fault; `Display` says what is wrong with which file.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        key: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not valid PEM: {reason}", path.display())]
    BadPem {
        key: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificates { key: &'static str, path: PathBuf },
    #[error("{}: a CA certificate was rejected: {reason}", path.display())]
    BadCaCertificate { path: PathBuf, reason: String },
    #[error(
        "{} holds no private key (PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\")",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("{}: the private key cannot be used: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the key in {} does not belong to the certificate in {}", key_path.display(), cert_path.display())]
    KeyMismatch {
        cert_path: PathBuf,
        key_path: PathBuf,
    },
    #[error("{name:?} is not a valid DNS name or IP address")]
    ServerName { name: String },
    #[error("TLS setup failed: {0}")]
    Setup(rustls::Error),
}

impl TlsConfigError {
    /// The config key whose value is at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsConfigError::Unreadable { key, .. }
            | TlsConfigError::BadPem { key, .. }
            | TlsConfigError::NoCertificates { key, .. } => key,
            TlsConfigError::BadCaCertificate { .. } => "broker_ca_file",
            TlsConfigError::NoKey { .. }
            | TlsConfigError::BadKey { .. }
            | TlsConfigError::KeyMismatch { .. } => "client_key_file",
            TlsConfigError::ServerName { .. } => "broker_server_name",
            TlsConfigError::Setup(_) => "broker_url",
        }
    }
}

/// The ring provider, the only one this workspace builds.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration for an `mqtts://` broker: trust anchors, optional server-name
/// override and optional client certificate from `settings`. Reads the files it names.
pub fn client_config(settings: &BrokerTls) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let roots = Arc::new(match &settings.ca_file {
        None => webpki_roots_store(),
        Some(path) => ca_store(path)?,
    });
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(TlsConfigError::Setup)?;
    let builder = match &settings.server_name {
        None => builder.with_root_certificates(roots),
        Some(name) => {
            let name = ServerName::try_from(name.clone())
                .map_err(|_| TlsConfigError::ServerName { name: name.clone() })?;
            let inner = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| TlsConfigError::Setup(rustls::Error::General(e.to_string())))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NamedServerVerifier { inner, name }))
        }
    };
    let config = match &settings.client_cert {
        None => builder.with_no_client_auth(),
        Some(files) => {
            let chain = certificates(&files.cert_file, "client_cert_file")?;
            let key = private_key(&files.key_file)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                        TlsConfigError::KeyMismatch {
                            cert_path: files.cert_file.clone(),
                            key_path: files.key_file.clone(),
                        }
                    }
                    other => TlsConfigError::BadKey {
                        path: files.key_file.clone(),
                        reason: other.to_string(),
                    },
                })?
        }
    };
    Ok(Arc::new(config))
}

/// Mozilla's trust anchors.
fn webpki_roots_store() -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    store
}

/// The trust anchors in the PEM file at `path` (`broker_ca_file`).
fn ca_store(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut store = RootCertStore::empty();
    for cert in certificates(path, "broker_ca_file")? {
        store
            .add(cert)
            .map_err(|e| TlsConfigError::BadCaCertificate {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
    }
    Ok(store)
}

fn read(path: &Path, key: &'static str) -> Result<Vec<u8>, TlsConfigError> {
    crate::files::read(path, crate::files::PEM).map_err(|source| TlsConfigError::Unreadable {
        key,
        path: path.to_owned(),
        source,
    })
}

/// Every certificate in the PEM file at `path`, read for `key`; at least one.
fn certificates(
    path: &Path,
    key: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let pem = read(path, key)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            key,
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificates {
            key,
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key (PKCS#8, SEC1 or PKCS#1) in the PEM file at `path`.
fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    let pem = read(path, "client_key_file")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsConfigError::NoKey {
            path: path.to_owned(),
        },
        other => TlsConfigError::BadPem {
            key: "client_key_file",
            path: path.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Webpki verification against a configured name rather than the one the connection uses.
#[derive(Debug)]
struct NamedServerVerifier {
    inner: Arc<WebPkiServerVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NamedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why a connection attempt failed, in words an operator can act on, followed by rumqttc's own
/// text in brackets when it adds detail.
pub fn explain(error: &rumqttc::ConnectionError) -> String {
    let raw = error.to_string();
    if let rumqttc::ConnectionError::ConnectionRefused(code) = error {
        return format!("{} [{raw}]", refused(*code));
    }
    match find_rustls(error) {
        Some(tls) => format!("TLS: {} [{raw}]", tls_reason(tls)),
        None => raw,
    }
}

/// [`explain`] for an MQTT 5 connection.
pub fn explain_v5(error: &rumqttc::v5::ConnectionError) -> String {
    use rumqttc::v5::mqttbytes::v5::ConnectReturnCode as Code;
    let raw = error.to_string();
    if let rumqttc::v5::ConnectionError::ConnectionRefused(code) = error {
        let reason = match code {
            Code::BadUserNamePassword => "the broker refused the login: bad user name or password",
            Code::NotAuthorized => {
                "the broker refused the connection: not authorized (check username and the password)"
            }
            Code::ClientIdentifierNotValid | Code::BadClientId => {
                "the broker rejected the client id"
            }
            Code::UnsupportedProtocolVersion | Code::RefusedProtocolVersion => {
                "the broker does not accept MQTT 5 (set mqtt_version = 4 for MQTT 3.1.1)"
            }
            Code::Banned => "the broker has banned this client",
            Code::ServerUnavailable | Code::ServiceUnavailable | Code::ServerBusy => {
                "the broker is unavailable or busy"
            }
            _ => "the broker refused the connection",
        };
        return format!("{reason} [{raw}]");
    }
    match find_rustls(error) {
        Some(tls) => format!("TLS: {} [{raw}]", tls_reason(tls)),
        None => raw,
    }
}

/// [`explain`] for an I/O error of a connection the agent drives itself (MQTT 3.1.1).
pub fn explain_io(error: &io::Error) -> String {
    let raw = error.to_string();
    match find_rustls(error) {
        Some(tls) => format!("TLS: {} [{raw}]", tls_reason(tls)),
        None => raw,
    }
}

/// What a TLS connection that ended between the handshake and CONNACK means, `error` being how
/// it ended (already explained). A broker that requires a client certificate verifies it after
/// the TLS 1.3 handshake has finished on the client's side, then sends `certificate_required`
/// and closes; when the client's CONNECT is still unread there, the close is a reset and the
/// alert may never be read. Without a client certificate that is the likely reason, so it is
/// named; with one, or after a TLS alert, `error` is left as it is.
pub fn ended_before_connack(error: String, presented_client_cert: bool) -> String {
    if presented_client_cert || error.starts_with("TLS: ") {
        return error;
    }
    format!(
        "TLS: the broker ended the connection right after the handshake, before CONNACK: it \
         may require a client certificate (set client_cert_file and client_key_file) [{error}]"
    )
}

/// What a CONNACK refusal means.
pub fn refused(code: rumqttc::ConnectReturnCode) -> &'static str {
    use rumqttc::ConnectReturnCode as Code;
    match code {
        Code::BadUserNamePassword => "the broker refused the login: bad user name or password",
        Code::NotAuthorized => {
            "the broker refused the connection: not authorized (check username and the password)"
        }
        Code::BadClientId => "the broker rejected the client id",
        Code::RefusedProtocolVersion => "the broker does not accept MQTT 3.1.1",
        Code::ServiceUnavailable => "the broker is unavailable",
        Code::Success => "the broker answered success but the connection failed",
    }
}

/// What a rustls error during the connection means for the operator.
fn tls_reason(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                "the broker's certificate is not trusted: it was not \
                 issued by a CA in broker_ca_file (Mozilla's roots when that is not set)"
                    .into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the broker's certificate does not match the name it was checked against (the \
                 URL's host, or broker_server_name)"
                    .into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet (check this device's clock)".into()
            }
            CertificateError::Revoked => "the broker's certificate is revoked".into(),
            other => format!("the broker's certificate was rejected: {other}"),
        },
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired => "the broker requires a client certificate \
                 (set client_cert_file and client_key_file)"
                .into(),
            AlertDescription::UnknownCA
            | AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::AccessDenied => format!(
                "the broker rejected this device's client certificate ({alert:?}): check \
                 client_cert_file and that the broker trusts its CA"
            ),
            AlertDescription::HandshakeFailure => "the broker aborted the handshake \
                 (HandshakeFailure): it may require a client certificate, or share no cipher \
                 suite or protocol version with this agent (TLS 1.2/1.3)"
                .into(),
            AlertDescription::ProtocolVersion => {
                "the broker supports neither TLS 1.2 nor TLS 1.3".into()
            }
            other => format!("the broker ended the handshake with the alert {other:?}"),
        },
        other => format!("the TLS connection failed: {other}"),
    }
}

/// The rustls error at the bottom of `error`, if any. rustls errors travel inside
/// `io::Error`s, whose `source()` skips the wrapped error itself, so those are opened by hand.
fn find_rustls<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            let inner: &(dyn std::error::Error + 'static) = inner;
            if let Some(tls) = find_rustls(inner) {
                return Some(tls);
            }
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustls_errors_are_found_inside_io_errors() {
        let wrapped = rumqttc::ConnectionError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
        ));
        let text = explain(&wrapped);
        assert!(
            text.starts_with("TLS: the broker requires a client certificate"),
            "{text}"
        );
        assert!(
            text.ends_with("[I/O: received fatal alert: CertificateRequired]"),
            "{text}"
        );

        let plain = rumqttc::ConnectionError::Io(io::Error::from(io::ErrorKind::ConnectionRefused));
        assert_eq!(explain(&plain), plain.to_string(), "no TLS: unchanged");
    }

    #[test]
    fn refusals_say_what_to_check() {
        let refused =
            rumqttc::ConnectionError::ConnectionRefused(rumqttc::ConnectReturnCode::NotAuthorized);
        let text = explain(&refused);
        assert!(text.contains("not authorized (check username"), "{text}");
        assert!(text.contains("NotAuthorized"), "{text}");
    }

    #[test]
    fn missing_files_name_their_key() {
        let settings = BrokerTls {
            ca_file: Some(PathBuf::from("/nonexistent/ca.pem")),
            ..BrokerTls::default()
        };
        let err = client_config(&settings).expect_err("missing CA file");
        assert_eq!(err.key(), "broker_ca_file");
        assert!(
            err.to_string()
                .starts_with("cannot read /nonexistent/ca.pem: "),
            "{err}"
        );
    }

    /// A self-signed certificate and its key as PEM.
    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("self-sign");
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn unusable_files_are_typed_errors_naming_file_and_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let (cert, key) = self_signed("client.example");
        let (_, other_key) = self_signed("other.example");
        let cert_file = file("client.pem", &cert);
        let key_file = file("client.key", &key);
        let with = |ca: Option<PathBuf>, cert_file: &Path, key_file: &Path| BrokerTls {
            ca_file: ca,
            server_name: None,
            client_cert: Some(crate::broker::ClientCertFiles {
                cert_file: cert_file.to_owned(),
                key_file: key_file.to_owned(),
            }),
        };
        let fail = |settings: BrokerTls| match client_config(&settings) {
            Ok(_) => panic!("accepted {settings:?}"),
            Err(e) => (e.key(), e.to_string()),
        };

        let only_key = file("only-key.pem", &key);
        assert_eq!(
            fail(with(Some(only_key.clone()), &cert_file, &key_file)),
            (
                "broker_ca_file",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    only_key.display()
                )
            )
        );
        let garbled = file("garbled.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
        let (key_name, text) = fail(with(Some(garbled.clone()), &cert_file, &key_file));
        assert_eq!(key_name, "broker_ca_file");
        assert!(
            text.starts_with(&format!("{} is not valid PEM: ", garbled.display())),
            "{text}"
        );
        assert_eq!(
            fail(with(None, &only_key, &key_file)),
            (
                "client_cert_file",
                format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    only_key.display()
                )
            )
        );
        assert_eq!(
            fail(with(None, &cert_file, &cert_file)),
            (
                "client_key_file",
                format!(
                    "{} holds no private key (PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA \
                     PRIVATE KEY\")",
                    cert_file.display()
                )
            )
        );
        let wrong_key = file("wrong.key", &other_key);
        assert_eq!(
            fail(with(None, &cert_file, &wrong_key)),
            (
                "client_key_file",
                format!(
                    "the key in {} does not belong to the certificate in {}",
                    wrong_key.display(),
                    cert_file.display()
                )
            )
        );
        let bad_key = file(
            "bad.key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        );
        let (key_name, text) = fail(with(None, &cert_file, &bad_key));
        assert_eq!(key_name, "client_key_file");
        assert!(
            text.starts_with(&format!(
                "{}: the private key cannot be used: ",
                bad_key.display()
            )),
            "{text}"
        );

        let config = client_config(&with(Some(cert_file.clone()), &cert_file, &key_file))
            .expect("matching certificate and key");
        assert!(config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn server_name_override_must_be_a_name() {
        let settings = BrokerTls {
            server_name: Some("not a name".into()),
            ..BrokerTls::default()
        };
        let err = client_config(&settings).expect_err("bad name");
        assert_eq!(err.key(), "broker_server_name");
        assert_eq!(
            err.to_string(),
            "\"not a name\" is not a valid DNS name or IP address"
        );
    }

    #[test]
    fn default_roots_need_no_file() {
        let config = client_config(&BrokerTls::default()).expect("Mozilla's roots");
        assert!(!config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn password_debug_is_masked() {
        let credentials = crate::broker::Credentials {
            username: "room".into(),
            password: Some(crate::broker::Password::new("s3cret-Pa55")),
        };
        let shown = format!("{credentials:?} {credentials:#?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }

    #[test]
    fn an_anonymous_connection_ended_before_connack_names_the_client_certificate() {
        let reset = "Connection reset by peer (os error 104)".to_owned();
        let named = ended_before_connack(reset.clone(), false);
        assert!(
            named.starts_with("TLS: the broker ended the connection right after the handshake")
        );
        assert!(
            named.contains("set client_cert_file and client_key_file"),
            "{named}"
        );
        assert!(named.ends_with(&format!("[{reset}]")), "{named}");
        // With a certificate presented, or an alert already explained: as it was.
        assert_eq!(ended_before_connack(reset.clone(), true), reset);
        let alert = "TLS: the broker requires a client certificate".to_owned();
        assert_eq!(ended_before_connack(alert.clone(), false), alert);
    }
}
