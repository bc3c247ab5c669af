//! TLS for https endpoints: rustls (ring provider) trusting Mozilla's roots,
//! compiled in so that no system store is needed, plus the certificates of
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` (a private CA or a self-signed backend).

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
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
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some((source_name, path)) = certificate {
        let invalid = |reason: String| TlsError::InvalidCertificate {
            source_name: source_name.clone(),
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| invalid(e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| invalid(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Provider(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
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
}
