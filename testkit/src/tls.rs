//! TLS for the test tools' servers (the simulator's SMPP listener, the OMS stub): a rustls
//! server configuration from PEM files, optionally requiring a client certificate signed
//! by a given CA (mTLS).

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Files of a TLS server.
#[derive(Debug, Clone, Default)]
pub struct ServerFiles {
    pub cert: Option<std::path::PathBuf>,
    pub key: Option<std::path::PathBuf>,
    /// Require a client certificate signed by this CA.
    pub client_ca: Option<std::path::PathBuf>,
}

/// The server configuration, or `None` when no certificate is given (plain TCP/HTTP).
pub fn server_config(files: &ServerFiles) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&files.cert, &files.key) else {
        anyhow::ensure!(
            files.cert.is_none() && files.key.is_none() && files.client_ca.is_none(),
            "--tls-cert and --tls-key go together (and --tls-client-ca needs them)"
        );
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("{}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not PEM certificates", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("{}: no PEM private key", key.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(ca).with_context(|| format!("{}", ca.display()))?
            {
                roots.add(cert?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Some(Arc::new(builder.with_single_cert(chain, key)?)))
}
