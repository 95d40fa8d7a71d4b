//! TLS to the SMSC (operators whose credentials say `tls: true`): one rustls client
//! configuration for the process, built at startup from `SMPP_TLS_CA_FILE` (or the
//! system's trust store) and an optional client certificate (`SMPP_TLS_CERT_FILE` +
//! `SMPP_TLS_KEY_FILE`). A file that cannot be read or parsed stops startup with one line
//! naming its variable. The SMSC's certificate is verified against the host name (or IP
//! address) OMS gives for the operator.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use smpp_connector::config::{TlsFiles, env};
use tokio_rustls::TlsConnector;

/// The TLS connector every bind with `tls: true` uses.
pub fn smpp_connector(files: &TlsFiles) -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca_file {
        Some(path) => {
            for cert in certificates(path, env::SMPP_TLS_CA_FILE)? {
                roots.add(cert).with_context(|| {
                    format!("{} {path}: not a CA certificate", env::SMPP_TLS_CA_FILE)
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                tracing::warn!(
                    "no system CA certificates found: binds with tls: true will fail until SMPP_TLS_CA_FILE is set"
                );
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    let config = match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => {
            let chain = certificates(cert, env::SMPP_TLS_CERT_FILE)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{} {key}: no PEM private key", env::SMPP_TLS_KEY_FILE))?;
            builder.with_client_auth_cert(chain, key).with_context(|| {
                format!(
                    "{}/{}: the key does not match the certificate",
                    env::SMPP_TLS_CERT_FILE,
                    env::SMPP_TLS_KEY_FILE
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Every certificate in a PEM file (at least one).
fn certificates(path: &str, variable: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{variable} {path}: cannot be read"))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{variable} {path}: not PEM certificates"))?;
    anyhow::ensure!(!certs.is_empty(), "{variable} {path}: no certificate in it");
    Ok(certs)
}
