//! The server certificate for SIP over TLS and HTTPS, read from PEM files and swapped in place
//! on SIGHUP: connections being accepted pick up the current one; open ones keep theirs.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {path}: {msg}")]
    Cert { path: PathBuf, msg: String },
    #[error("cannot read the private key {path}: {msg}")]
    Key { path: PathBuf, msg: String },
    #[error("the certificate and key in {cert} / {key} do not make a TLS server: {msg}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        msg: String,
    },
}

/// The current server configuration, one per protocol (ALPN differs), and where it came from.
#[derive(Clone)]
pub struct CertStore {
    cert: PathBuf,
    key: PathBuf,
    alpn: Vec<Vec<u8>>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl CertStore {
    /// Loads `cert` (a PEM chain, leaf first) and `key` (PEM, PKCS#8, PKCS#1 or SEC1). `alpn`
    /// lists the protocols offered (`http/1.1` for the desk; none for SIP).
    pub fn load(cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<CertStore, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let config = build(cert, key, &alpn)?;
        Ok(CertStore {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            alpn,
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Reads the files again; on any error the running certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.cert, &self.key, &self.alpn)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    /// An acceptor with the current certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Where the certificate is read from.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }
}

fn build(cert: &Path, key: &Path, alpn: &[Vec<u8>]) -> Result<ServerConfig, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| TlsError::Cert {
            path: cert.to_path_buf(),
            msg: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Cert {
            path: cert.to_path_buf(),
            msg: "no CERTIFICATE block in the file".into(),
        });
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: key.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Config {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            msg: e.to_string(),
        })?;
    config.alpn_protocols = alpn.to_vec();
    Ok(config)
}
