//! Credentials from operator-management-service (OMS):
//! `GET {OMS_BASE_URL}/internal/operators/{operatorId}/smpp-credentials`.
//!
//! Fetched on every (re)bind so rotation works; held in memory only; the password never
//! appears in a log line or a `Debug` (it is a [`Secret`]). OMS down means no new binds;
//! sessions already bound carry on.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use smpp_connector::config::{Config, OperatorId};

use crate::telemetry::backends::{self, Backend};
pub use smpp_connector::credentials::{BindModePreference, Credentials, CredentialsError};

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
    Invalid(#[from] CredentialsError),
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
            // Binds fetch their credentials at once when the service starts (200 binds:
            // 200 connections); idle, two are enough, each kept costs ~9 KiB.
            .pool_max_idle_per_host(2)
            // Reuse a kept connection only while the server surely still keeps it: one
            // reused as the server closes it fails the fetch ("error sending request") and
            // reports OMS down. Servers keep idle connections 5 s (actix, Node) or longer.
            .pool_idle_timeout(Duration::from_secs(2))
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
            let result = async {
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
                response
                    .bytes()
                    .await
                    .map_err(|e| OmsError::Transport(e.without_url().to_string()))
            }
            .await;
            // Down: unreachable or failing (5xx); an answer about the operator is up.
            match &result {
                Err(OmsError::Transport(_)) => {
                    backends::failed(Backend::Oms);
                }
                Err(OmsError::Status(status)) if *status >= 500 => {
                    backends::failed(Backend::Oms);
                }
                _ => {
                    backends::answered(Backend::Oms);
                }
            }
            Ok(Credentials::from_json(&result?, operator_id.as_str())?)
        })
    }
}
