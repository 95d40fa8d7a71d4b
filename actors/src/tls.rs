//! TLS clients of the service, all on rustls with the ring provider, built once at startup:
//!
//! - to the SMSC (operators whose credentials say `tls: true`): `SMPP_TLS_CA_FILE` (or the
//!   system's trust store) and an optional client certificate (`SMPP_TLS_CERT_FILE` +
//!   `SMPP_TLS_KEY_FILE`); the SMSC's certificate is verified against the host name (or IP
//!   address) OMS gives for the operator;
//! - to NATS (`NATS_TLS_*`) and Redis (`REDIS_TLS_*`), the same way;
//! - to PostgreSQL, as `DATABASE_URL`'s `sslmode`, `sslrootcert`, `sslcert`, `sslkey` say
//!   ([`PgTlsConnector`]; the modes are in `smpp_connector::backends`).
//!
//! A file that cannot be read or parsed stops startup with one line naming its variable.
//! A server whose certificate does not verify is refused, never retried in plaintext; at
//! startup that too is one line naming the variable ([`certificate_refused`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::Context as _;
use futures::future::BoxFuture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientConfig, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use smpp_connector::backends::{PgTls, RootCerts};
use smpp_connector::config::{ConfigError, TlsFiles, env};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_rustls::TlsConnector;

/// The names of one TLS client's CA, certificate and key settings (for errors), and the
/// variable a refused certificate is reported under.
#[derive(Debug, Clone, Copy)]
pub struct TlsVariables {
    pub variable: &'static str,
    pub ca: &'static str,
    pub cert: &'static str,
    pub key: &'static str,
}

pub const SMPP: TlsVariables = TlsVariables {
    variable: env::SMPP_TLS_CA_FILE,
    ca: env::SMPP_TLS_CA_FILE,
    cert: env::SMPP_TLS_CERT_FILE,
    key: env::SMPP_TLS_KEY_FILE,
};
pub const NATS: TlsVariables = TlsVariables {
    variable: env::NATS_TLS_CA_FILE,
    ca: env::NATS_TLS_CA_FILE,
    cert: env::NATS_TLS_CERT_FILE,
    key: env::NATS_TLS_KEY_FILE,
};
pub const REDIS: TlsVariables = TlsVariables {
    variable: env::REDIS_TLS_CA_FILE,
    ca: env::REDIS_TLS_CA_FILE,
    cert: env::REDIS_TLS_CERT_FILE,
    key: env::REDIS_TLS_KEY_FILE,
};
/// PostgreSQL's settings are parameters of `DATABASE_URL`.
pub const POSTGRES: TlsVariables = TlsVariables {
    variable: env::DATABASE_URL,
    ca: "DATABASE_URL sslrootcert",
    cert: "DATABASE_URL sslcert",
    key: "DATABASE_URL sslkey",
};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The TLS connector every bind with `tls: true` uses.
pub fn smpp_connector(files: &TlsFiles) -> anyhow::Result<TlsConnector> {
    Ok(TlsConnector::from(Arc::new(client_config(files, SMPP)?)))
}

/// A verifying client configuration from a CA file (or the system's roots) and an
/// optional client certificate.
pub fn client_config(files: &TlsFiles, vars: TlsVariables) -> anyhow::Result<ClientConfig> {
    let roots = match &files.ca_file {
        Some(path) => roots_from_file(path, vars.ca)?,
        None => system_roots(vars.ca),
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_root_certificates(roots);
    with_identity(
        builder,
        files.cert_file.as_deref().zip(files.key_file.as_deref()),
        vars,
    )
}

fn with_identity(
    builder: rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert>,
    identity: Option<(&str, &str)>,
    vars: TlsVariables,
) -> anyhow::Result<ClientConfig> {
    Ok(match identity {
        Some((cert, key)) => {
            let chain = certificates(cert, vars.cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .with_context(|| format!("{} {key}: no PEM private key", vars.key))?;
            builder.with_client_auth_cert(chain, key).with_context(|| {
                format!(
                    "{}/{}: the key does not match the certificate",
                    vars.cert, vars.key
                )
            })?
        }
        None => builder.with_no_client_auth(),
    })
}

fn roots_from_file(path: &str, variable: &str) -> anyhow::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, variable)? {
        roots
            .add(cert)
            .with_context(|| format!("{variable} {path}: not a CA certificate"))?;
    }
    Ok(roots)
}

fn system_roots(variable: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!(
            variable,
            "no system CA certificates found: TLS servers will be refused until the CA file is set"
        );
    }
    roots
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

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// tokio-postgres's TLS hook on rustls, configured as `DATABASE_URL`'s `sslmode` says.
/// tokio-postgres negotiates (`disable`, `prefer`, `require`); this decides what a
/// certificate must prove.
#[derive(Clone)]
pub struct PgTlsConnector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for PgTlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTlsConnector").finish_non_exhaustive()
    }
}

impl PgTlsConnector {
    pub fn new(tls: &PgTls) -> anyhow::Result<Self> {
        let provider = provider();
        let webpki = match &tls.roots {
            RootCerts::Unverified => None,
            roots => {
                let store = match roots {
                    RootCerts::File(path) => roots_from_file(path, POSTGRES.ca)?,
                    _ => system_roots(POSTGRES.ca),
                };
                Some(
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .context("DATABASE_URL sslrootcert: no usable CA certificate")?,
                )
            }
        };
        let verifier: Arc<dyn ServerCertVerifier> = match webpki {
            Some(full) if tls.check_host => full,
            chain => Arc::new(PgVerifier {
                chain,
                provider: provider.clone(),
            }),
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let identity = tls
            .client
            .as_ref()
            .map(|(cert, key)| (cert.as_str(), key.as_str()));
        Ok(PgTlsConnector {
            config: Arc::new(with_identity(builder, identity, POSTGRES)?),
        })
    }
}

impl MakeTlsConnect<tokio_postgres::Socket> for PgTlsConnector {
    type Stream = PgTlsStream;
    type TlsConnect = PgTlsConnect;
    type Error = PgTlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<PgTlsConnect, PgTlsError> {
        let name = ServerName::try_from(domain.to_owned()).map_err(|_| PgTlsError {
            refused: Some(Refused::ServerCertificate),
            message: format!("{domain:?} is not a host name TLS can verify"),
        })?;
        Ok(PgTlsConnect {
            connector: TlsConnector::from(self.config.clone()),
            name,
        })
    }
}

/// One TLS handshake with one PostgreSQL host.
pub struct PgTlsConnect {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for PgTlsConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTlsConnect")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TlsConnect<tokio_postgres::Socket> for PgTlsConnect {
    type Stream = PgTlsStream;
    type Error = PgTlsError;
    type Future = BoxFuture<'static, Result<PgTlsStream, PgTlsError>>;

    fn connect(self, stream: tokio_postgres::Socket) -> Self::Future {
        Box::pin(async move {
            self.connector
                .connect(self.name, stream)
                .await
                .map(PgTlsStream)
                .map_err(PgTlsError::from_io)
        })
    }
}

/// A failed TLS handshake with PostgreSQL, and whether a certificate was refused (ours
/// or the server's), which retrying does not cure.
#[derive(Debug, Clone)]
pub struct PgTlsError {
    refused: Option<Refused>,
    pub message: String,
}

impl PgTlsError {
    fn from_io(err: io::Error) -> Self {
        let refused = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(refusal);
        PgTlsError {
            refused,
            message: err.to_string(),
        }
    }
}

impl std::fmt::Display for PgTlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PgTlsError {}

/// A TLS stream to PostgreSQL.
pub struct PgTlsStream(tokio_rustls::client::TlsStream<tokio_postgres::Socket>);

impl std::fmt::Debug for PgTlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTlsStream").finish_non_exhaustive()
    }
}

impl AsyncRead for PgTlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for PgTlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for PgTlsStream {
    /// No channel binding: SCRAM without `-PLUS` (the certificate is what binds the
    /// session to the server; `channel_binding=require` is not supported).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// What a PostgreSQL certificate must prove short of `verify-full` (which is webpki's own
/// verifier): with `chain`, that it leads to a trusted root, whatever name it carries
/// (`verify-ca`, or `require`/`prefer` with `sslrootcert`, as libpq); without, nothing
/// (`require`/`prefer` without `sslrootcert`: encrypted, not verified). The handshake's
/// signatures are checked in every case.
#[derive(Debug)]
struct PgVerifier {
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PgVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------
// Refused certificates

/// Who refused a certificate: we the server's, or the server ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    ServerCertificate,
    ClientCertificate,
}

/// The rustls error that says a certificate was refused, and whose.
fn refusal(err: &rustls::Error) -> Option<Refused> {
    use rustls::AlertDescription as Alert;
    match err {
        rustls::Error::InvalidCertificate(_) => Some(Refused::ServerCertificate),
        rustls::Error::NoCertificatesPresented => Some(Refused::ServerCertificate),
        rustls::Error::AlertReceived(
            Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::CertificateRequired
            | Alert::AccessDenied,
        ) => Some(Refused::ClientCertificate),
        _ => None,
    }
}

/// The same from the text of an error, for clients that keep only the text (fred writes
/// rustls's error with `{:?}`, async-nats and io errors with `{}`).
fn refusal_in_text(text: &str) -> Option<Refused> {
    const SERVER: [&str; 3] = [
        "InvalidCertificate",
        "invalid peer certificate",
        "NoCertificatesPresented",
    ];
    const CLIENT: [&str; 5] = [
        "BadCertificate",
        "UnknownCA",
        "CertificateRequired",
        "CertificateUnknown",
        "AccessDenied",
    ];
    if SERVER.iter().any(|w| text.contains(w)) {
        Some(Refused::ServerCertificate)
    } else if CLIENT.iter().any(|w| text.contains(w)) {
        Some(Refused::ClientCertificate)
    } else {
        None
    }
}

/// When `err` (or one of its causes) is a refused certificate or a server that will not
/// talk TLS at all: the configuration error to stop startup with (one line naming the
/// variable), since waiting does not change a certificate.
pub fn certificate_refused(err: &anyhow::Error, vars: TlsVariables) -> Option<ConfigError> {
    for cause in err.chain() {
        let text = cause.to_string();
        let found = if let Some(tls) = cause.downcast_ref::<PgTlsError>() {
            tls.refused
        } else if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            refusal(tls)
        } else {
            refusal_in_text(&text)
        };
        if let Some(refused) = found {
            return Some(refused_error(vars, refused, &text));
        }
        if text.contains("server does not support TLS") {
            return Some(ConfigError {
                variable: vars.variable,
                problem: "asks for TLS but the server does not offer it (sslmode=disable for a plaintext server)".to_owned(),
            });
        }
    }
    None
}

/// `NAME` or `NAME setting` (a parameter of a URL variable): the variable, and the words
/// that start the problem.
fn split_setting(setting: &'static str) -> (&'static str, String) {
    match setting.split_once(' ') {
        Some((variable, rest)) => (variable, format!("{rest} ")),
        None => (setting, String::new()),
    }
}

fn refused_error(vars: TlsVariables, refused: Refused, reason: &str) -> ConfigError {
    match refused {
        Refused::ServerCertificate => {
            let (variable, setting) = split_setting(vars.ca);
            ConfigError {
                variable,
                problem: format!("{setting}does not verify the server's certificate ({reason})"),
            }
        }
        Refused::ClientCertificate => {
            let (variable, setting) = split_setting(vars.cert);
            ConfigError {
                variable,
                problem: format!(
                    "{setting}is refused by the server, or is needed and not set ({reason}); it goes with {}",
                    vars.key
                ),
            }
        }
    }
}
