//! Built-in TLS termination: rustls with the certificate chain and key read from PEM files.
//! Every way the files can be unusable is a start error naming the variable to fix.

use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{TLS_CERT_VARIABLE, TLS_KEY_VARIABLE, TlsFiles};

/// Why the TLS listener cannot be set up, naming the variable whose file is at fault.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct TlsError {
    pub variable: &'static str,
    pub message: String,
}

impl TlsError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// The rustls configuration for `files`: TLS 1.2 and 1.3 with rustls's safe defaults, no
/// client certificates, the *ring* provider (chosen explicitly, so no process-wide default
/// provider has to be installed).
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let certs = read_chain(files)?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        TlsError::new(
            TLS_KEY_VARIABLE,
            format!("no usable private key in {}: {e}", files.key.display()),
        )
    })?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new(TLS_CERT_VARIABLE, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError::new(
                TLS_KEY_VARIABLE,
                format!(
                    "the key in {} does not fit the certificate in {}: {e}",
                    files.key.display(),
                    files.cert.display()
                ),
            )
        })
}

fn read_chain(files: &TlsFiles) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let unusable = |e: rustls_pki_types::pem::Error| {
        TlsError::new(
            TLS_CERT_VARIABLE,
            format!(
                "cannot read certificates from {}: {e}",
                files.cert.display()
            ),
        )
    };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(unusable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unusable)?;
    if certs.is_empty() {
        return Err(TlsError::new(
            TLS_CERT_VARIABLE,
            format!("no PEM certificate in {}", files.cert.display()),
        ));
    }
    Ok(certs)
}
