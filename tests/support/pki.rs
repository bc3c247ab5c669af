//! A self-signed certificate for `localhost` and 127.0.0.1, in PEM files,
//! for the tests that speak TLS to a backend.

use std::path::PathBuf;
use tempfile::TempDir;

pub struct Pki {
    _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn pki() -> Pki {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("rcgen makes a certificate");
    written(made)
}

/// A self-signed certificate as `openssl req -x509 -newkey …` makes it:
/// marked `CA:TRUE`, for `localhost` only.
pub fn openssl_style() -> Pki {
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("certificate parameters");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let signing_key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&signing_key).expect("self-signed");
    written(rcgen::CertifiedKey { cert, signing_key })
}

fn written(made: rcgen::CertifiedKey<rcgen::KeyPair>) -> Pki {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).expect("write cert");
    std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
    Pki {
        _dir: dir,
        cert,
        key,
    }
}
