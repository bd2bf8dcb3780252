//! TLS from PEM files, with rustls (ring provider): the gateway's client towards an external
//! broker ([`client_config`]) and the HTTP API ([`server_config`]). The managed Mosquitto reads
//! its own PEM files (`[broker.managed] tls_cert_file`, `tls_key_file`).
//!
//! docs/security.md shows how to make a self-signed CA and certificates for a test setup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the certificates or key.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |what: String| TlsError::Pem {
        path: path.to_owned(),
        what,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// A client configuration trusting the CA certificates of `ca_file` (PEM).
///
/// # Errors
/// [`TlsError`] if the file cannot be read or holds no certificate rustls accepts.
pub fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs(ca_file)? {
        roots.add(cert)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A server configuration from a certificate chain and its private key (PEM).
///
/// # Errors
/// [`TlsError`] if a file cannot be read, or the key does not fit the certificate.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::Pem {
        path: key_file.to_owned(),
        what: format!("no private key: {e}"),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    Ok(Arc::new(config))
}

/// Test support: a self-signed CA and a certificate it signed for `127.0.0.1` and
/// `localhost`, written as PEM files into `dir` (`ca.pem`, `cert.pem`, `key.pem`).
#[cfg(test)]
pub(crate) fn self_signed(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("a key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("CA");
    let key = KeyPair::generate().expect("a key");
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params");
    let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_make_configs_and_bad_ones_say_which_file() {
        let dir = tempfile::tempdir().expect("dir");
        let (ca, cert, key) = self_signed(dir.path());
        client_config(&ca).expect("client config");
        server_config(&cert, &key).expect("server config");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate").expect("write");
        let e = client_config(&empty).expect_err("nothing in it");
        assert!(e.to_string().contains("empty.pem"), "{e}");
        let e = server_config(&cert, &empty).expect_err("no key");
        assert!(e.to_string().contains("no private key"), "{e}");
        let e = client_config(&dir.path().join("missing.pem")).expect_err("missing");
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
