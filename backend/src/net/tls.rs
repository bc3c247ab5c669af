//! TLS for the listeners: a rustls server configuration (ring provider,
//! HTTP/1.1 by ALPN) from a PEM certificate chain and a PEM private key.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::PathBuf;
use std::sync::Arc;

/// The two files `--tls-cert` and `--tls-key` name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate chain {}: {source}", path.display())]
    Cert {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error("the TLS certificate file {} holds no certificate", .0.display())]
    NoCert(PathBuf),
    #[error("cannot read the TLS private key {}: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls_pki_types::pem::Error,
    },
    #[error(
        "the TLS private key {} is encrypted: otelite cannot ask for its passphrase; \
         decrypt it (openssl pkey -in KEY -out PLAIN) and keep the plain key private",
        .0.display()
    )]
    EncryptedKey(PathBuf),
    #[error("TLS certificate and key are not usable together: {0}")]
    Config(#[from] rustls::Error),
}

/// Reads both files and checks that the key matches the certificate.
pub fn server_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    refuse_encrypted_key(&files.key)?;
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Cert {
            path: files.cert.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|source| TlsError::Key {
        path: files.key.clone(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// An encrypted PEM key (PKCS#8 `ENCRYPTED PRIVATE KEY`, or OpenSSL's
/// `Proc-Type: 4,ENCRYPTED`) would otherwise fail as "no items found".
fn refuse_encrypted_key(path: &std::path::Path) -> Result<(), TlsError> {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || text.contains("Proc-Type: 4,ENCRYPTED")
    {
        return Err(TlsError::EncryptedKey(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encrypted_key_is_refused_naming_its_path() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let key = dir.path().join("key.pem");
        std::fs::write(
            &key,
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )?;
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: key.clone(),
        };
        let error = server_config(&files)
            .err()
            .ok_or("an encrypted key must be refused")?;
        let message = error.to_string();
        assert!(
            message.contains("encrypted") && message.contains(&key.display().to_string()),
            "{message}"
        );
        Ok(())
    }
}
