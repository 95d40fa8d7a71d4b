//! Credentials from operator-management-service (OMS):
//! `GET {OMS_BASE_URL}/internal/operators/{operatorId}/smpp-credentials`.
//!
//! Fetched on every (re)bind so rotation works; held in memory only; the password never
//! appears in a log line or a `Debug` (it is a [`Secret`]). OMS down means no new binds;
//! sessions already bound carry on.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Deserialize;
use smpp_connector::config::{Config, OperatorId, Secret};
use smpp_connector::dlr::IdFormat;
use smpp_connector::encoding::Strategy;

/// How to bind when the direction is `trx` (schema `bindMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum BindModePreference {
    /// bind_transceiver, falling back to TX + RX on ESME_RINVCMDID.
    #[default]
    #[serde(rename = "TRX")]
    Trx,
    /// bind_transmitter + bind_receiver straight away.
    #[serde(rename = "TX_RX")]
    TxRx,
}

/// The credentials document (contracts/smpp-credentials.schema.json).
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Credentials {
    pub operator_id: String,
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: bool,
    pub system_id: String,
    pub password: Secret,
    #[serde(default)]
    pub system_type: String,
    #[serde(default)]
    pub bind_mode: BindModePreference,
    #[serde(default = "default_bind_count")]
    pub bind_count: u16,
    #[serde(default = "default_window")]
    pub window: u32,
    #[serde(default)]
    pub tps_limit: Option<u32>,
    #[serde(default)]
    pub backup_operator_id: Option<String>,
    #[serde(default = "default_strategy")]
    pub long_message_strategy: Strategy,
    #[serde(default = "default_concat_ref_bits")]
    pub concat_ref_bits: u8,
    #[serde(default)]
    pub msg_id_format: IdFormat,
    #[serde(default)]
    pub dlr_id_format: IdFormat,
    #[serde(default)]
    pub source_addr: Option<String>,
    #[serde(default = "default_source_ton")]
    pub source_ton: u8,
    #[serde(default)]
    pub source_npi: u8,
    #[serde(default = "default_one")]
    pub dest_ton: u8,
    #[serde(default = "default_one")]
    pub dest_npi: u8,
    #[serde(default = "default_enquire_link_seconds")]
    pub enquire_link_seconds: u64,
}

fn default_strategy() -> Strategy {
    Strategy::Csms
}
fn default_bind_count() -> u16 {
    1
}
fn default_window() -> u32 {
    100
}
fn default_concat_ref_bits() -> u8 {
    8
}
fn default_source_ton() -> u8 {
    5
}
fn default_one() -> u8 {
    1
}
fn default_enquire_link_seconds() -> u64 {
    30
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("operator_id", &self.operator_id)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("system_id", &self.system_id)
            .field("password", &self.password)
            .field("bind_count", &self.bind_count)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Check the limits of the schema that the wire format depends on.
    pub fn validate(&self) -> Result<(), OmsError> {
        let invalid = |field: &'static str, problem: &str| {
            Err(OmsError::InvalidBody(format!("{field} {problem}")))
        };
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return invalid("systemId", "must be 1..15 characters");
        }
        if self.password.expose().len() > 8 {
            return invalid("password", "must be at most 8 octets");
        }
        if self.system_type.len() > 12 {
            return invalid("systemType", "must be at most 12 characters");
        }
        if self.host.is_empty() || self.port == 0 {
            return invalid("host/port", "must name a reachable SMSC");
        }
        if !(1..=64).contains(&self.bind_count) {
            return invalid("bindCount", "must be 1..64");
        }
        if !(1..=10_000).contains(&self.window) {
            return invalid("window", "must be 1..10000");
        }
        if !matches!(self.concat_ref_bits, 8 | 16) {
            return invalid("concatRefBits", "must be 8 or 16");
        }
        if self.enquire_link_seconds < 5 {
            return invalid("enquireLinkSeconds", "must be at least 5");
        }
        if self.source_addr.as_ref().is_some_and(|s| s.len() > 20) {
            return invalid("sourceAddr", "must be at most 20 characters");
        }
        Ok(())
    }
}

/// Why credentials could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum OmsError {
    #[error("operator unknown to OMS (404)")]
    UnknownOperator,
    #[error("OMS answered HTTP {0}")]
    Status(u16),
    #[error("OMS unreachable: {0}")]
    Transport(String),
    #[error("OMS credentials invalid: {0}")]
    InvalidBody(String),
}

/// Where credentials come from; the real one is [`OmsClient`].
pub trait CredentialSource: Send + Sync {
    fn fetch(&self, operator_id: &OperatorId) -> BoxFuture<'static, Result<Credentials, OmsError>>;
}

/// HTTP client for OMS (mTLS when configured).
#[derive(Debug, Clone)]
pub struct OmsClient {
    http: reqwest::Client,
    base_url: Arc<str>,
}

impl OmsClient {
    pub fn try_new(config: &Config) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timers.oms_timeout)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("smpp-connector/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &config.oms_ca_file {
            let pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("OMS_CA_FILE {ca}: {e}"))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("OMS_CA_FILE {ca}: {e}"))?;
            builder = builder.add_root_certificate(cert);
        }
        if let (Some(cert), Some(key)) = (&config.oms_cert_file, &config.oms_key_file) {
            let mut pem =
                std::fs::read(cert).map_err(|e| anyhow::anyhow!("OMS_CERT_FILE {cert}: {e}"))?;
            pem.extend(std::fs::read(key).map_err(|e| anyhow::anyhow!("OMS_KEY_FILE {key}: {e}"))?);
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("OMS_CERT_FILE/OMS_KEY_FILE: {e}"))?;
            builder = builder.identity(identity);
        }
        Ok(OmsClient {
            http: builder.build()?,
            base_url: Arc::from(config.oms_base_url.as_str()),
        })
    }
}

impl CredentialSource for OmsClient {
    fn fetch(&self, operator_id: &OperatorId) -> BoxFuture<'static, Result<Credentials, OmsError>> {
        let url = format!(
            "{}/internal/operators/{}/smpp-credentials",
            self.base_url, operator_id
        );
        let http = self.http.clone();
        let operator_id = operator_id.clone();
        Box::pin(async move {
            let response = http
                .get(url)
                .send()
                .await
                .map_err(|e| OmsError::Transport(e.without_url().to_string()))?;
            match response.status().as_u16() {
                200 => {}
                404 => return Err(OmsError::UnknownOperator),
                other => return Err(OmsError::Status(other)),
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| OmsError::Transport(e.without_url().to_string()))?;
            // serde_json's messages can quote the offending value (a password): keep
            // only the kind of error and its position.
            let credentials: Credentials = serde_json::from_slice(&body).map_err(|e| {
                OmsError::InvalidBody(format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                ))
            })?;
            if credentials.operator_id != operator_id.as_str() {
                return Err(OmsError::InvalidBody(
                    "operatorId does not match the requested operator".into(),
                ));
            }
            credentials.validate()?;
            Ok(credentials)
        })
    }
}
