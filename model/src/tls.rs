//! TLS for https endpoints: rustls (ring provider) trusting Mozilla's roots,
//! compiled in so that no system store is needed, plus the certificates of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` (a private CA or a self-signed backend).
//!
//! A self-signed server certificate is trusted when that file holds it, also
//! the usual `openssl req -x509` one, which says `CA:TRUE` and which webpki
//! alone refuses as a server's own certificate (`CaUsedAsEndEntity`); curl
//! and OpenSSL-based SDKs accept it. See [`NamedSelfSigned`].

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::path::PathBuf;
use std::sync::Arc;

/// Why a client TLS configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The trusted-certificate file cannot be read or holds no certificate.
    #[error("{source_name}: cannot use the certificate file {path:?}: {reason}")]
    InvalidCertificate {
        /// The setting that named the file (a flag or a variable).
        source_name: String,
        path: String,
        reason: String,
    },
    /// The crypto provider refused the default protocol versions.
    #[error("TLS: {0}")]
    Provider(String),
}

/// The client configuration for `certificate` = (where the setting came
/// from, the PEM file).
pub fn client_config(
    certificate: Option<&(String, PathBuf)>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = server_verifier(certificate, provider.clone())?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Mozilla's roots plus `certificate`'s, with its self-signed server
/// certificates accepted as they are (see [`NamedSelfSigned`]).
fn server_verifier(
    certificate: Option<&(String, PathBuf)>,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<NamedSelfSigned>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut named = Vec::new();
    if let Some((source_name, path)) = certificate {
        let invalid = |reason: String| TlsError::InvalidCertificate {
            source_name: source_name.clone(),
            path: path.display().to_string(),
            reason,
        };
        named = read_certificates(path).map_err(invalid)?;
        for cert in &named {
            roots
                .add(cert.clone())
                .map_err(|e| invalid(e.to_string()))?;
        }
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| TlsError::Provider(e.to_string()))?;
    Ok(Arc::new(NamedSelfSigned { webpki, named }))
}

/// A client configuration that trusts exactly one server certificate, the
/// first in `path`, whatever names it holds: for a process checking its
/// own server over loopback (`otelite health` beside `otelite serve
/// --tls-cert`), where the certificate's names are those clients use
/// elsewhere, not `127.0.0.1`. Holding the key of that very certificate is
/// the proof asked for; the handshake's signatures are still checked.
pub fn pinned_config(
    source_name: &str,
    path: &std::path::Path,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let certificate = read_certificates(path)
        .map_err(|reason| TlsError::InvalidCertificate {
            source_name: source_name.to_owned(),
            path: path.display().to_string(),
            reason,
        })?
        .swap_remove(0);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned {
        certificate,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[derive(Debug)]
struct Pinned {
    certificate: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The PEM certificates in `path`; an error if there are none.
pub fn read_certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate in it".into());
    }
    Ok(certs)
}

/// webpki's verdict, except for one case: a server certificate that is
/// byte for byte one of the certificates the user named and that webpki
/// refuses only as a CA certificate used as a server's own. That one is
/// accepted once its names cover the server's. Its validity period has
/// been checked by then: webpki checks it before the basic constraints
/// (a test below holds it to that).
#[derive(Debug)]
struct NamedSelfSigned {
    webpki: Arc<WebPkiServerVerifier>,
    named: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for NamedSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(other)))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) && self
                    .named
                    .iter()
                    .any(|cert| cert.as_ref() == end_entity.as_ref()) =>
            {
                let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&parsed, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            verdict => verdict,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_empty_certificate_file_is_an_error() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("otelite-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n")?;
        for path in [dir.join("missing.pem"), empty] {
            let setting = ("OTEL_EXPORTER_OTLP_CERTIFICATE".to_owned(), path);
            let result = client_config(Some(&setting));
            assert!(
                matches!(&result, Err(TlsError::InvalidCertificate { source_name, .. })
                    if source_name == "OTEL_EXPORTER_OTLP_CERTIFICATE"),
                "{result:?}"
            );
        }
        std::fs::remove_dir_all(dir)
    }

    #[test]
    fn without_a_file_the_public_roots_are_trusted() {
        assert!(client_config(None).is_ok());
    }

    /// A self-signed certificate for `localhost` as `openssl req -x509`
    /// makes it (`CA:TRUE`), valid from `not_before` to `not_after` (years).
    fn self_signed_ca(not_before: i32, not_after: i32) -> rcgen::CertifiedKey<rcgen::KeyPair> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("certificate parameters");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(not_before, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        let signing_key = rcgen::KeyPair::generate().expect("key pair");
        let cert = params.self_signed(&signing_key).expect("self-signed");
        rcgen::CertifiedKey { cert, signing_key }
    }

    /// The verifier of a configuration trusting `trusted` (PEM), asked
    /// about `presented` for `name`.
    fn verify(
        trusted: &str,
        presented: &CertificateDer<'_>,
        name: &str,
    ) -> Result<(), rustls::Error> {
        let dir = tempfile_dir();
        let file = dir.join(format!("{}.pem", presented.len()));
        std::fs::write(&file, trusted).expect("write the PEM file");
        let setting = ("--server-ca".to_owned(), file);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = server_verifier(Some(&setting), provider).expect("a verifier");
        let name = ServerName::try_from(name.to_owned()).expect("a server name");
        verifier
            .verify_server_cert(presented, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("otelite-tls-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_named_self_signed_ca_certificate_is_trusted_as_the_server_certificate() {
        let made = self_signed_ca(2020, 2090);
        assert_eq!(
            verify(&made.cert.pem(), made.cert.der(), "localhost"),
            Ok(())
        );
    }

    #[test]
    fn a_named_self_signed_ca_certificate_still_needs_the_right_name() {
        let made = self_signed_ca(2020, 2090);
        let refused = verify(&made.cert.pem(), made.cert.der(), "otelite.example");
        assert!(
            matches!(
                refused,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForNameContext { .. }
                ))
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_named_self_signed_ca_certificate_that_expired_is_refused() {
        let made = self_signed_ca(2000, 2001);
        let refused = verify(&made.cert.pem(), made.cert.der(), "localhost");
        assert!(
            matches!(
                refused,
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::ExpiredContext { .. }
                ))
            ),
            "{refused:?}"
        );
    }

    #[test]
    fn a_self_signed_ca_certificate_not_named_is_refused() {
        let named = self_signed_ca(2020, 2090);
        let presented = self_signed_ca(2020, 2090);
        let refused = verify(&named.cert.pem(), presented.cert.der(), "localhost");
        assert!(refused.is_err(), "{refused:?}");
    }
}
