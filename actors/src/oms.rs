//! Credentials from operator-management-service (OMS):
//! `GET {OMS_BASE_URL}/internal/operators/{operatorId}/smpp-credentials`.
//!
//! Fetched on every (re)bind so rotation works; held in memory only; the password never
//! appears in a log line or a `Debug` (it is a [`Secret`]). OMS down means no new binds;
//! sessions already bound carry on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use smpp_connector::config::{Config, OperatorId};

use crate::telemetry::backends::{self, Backend};
pub use smpp_connector::credentials::{BindModePreference, Credentials, CredentialsError};

/// Why credentials could not be fetched.
#[derive(Debug, Clone, thiserror::Error)]
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

/// Credentials in memory, for in-process tests: per operator a document or a scripted
/// error (as OMS answers them), changeable while the service runs (a rotation, OMS going
/// down and back), and the fetches counted (each (re)bind fetches once). An operator
/// never set is unknown, as OMS's 404. It reports nothing to the backends' state
/// (`telemetry::backends` is process-wide, tests run side by side).
#[derive(Clone, Default)]
pub struct MemoryCredentials {
    inner: Arc<Mutex<MemoryOms>>,
}

#[derive(Default)]
struct MemoryOms {
    answers: HashMap<OperatorId, Result<Credentials, OmsError>>,
    /// Every fetch fails as an unreachable OMS while set.
    down: bool,
    fetches: HashMap<OperatorId, u64>,
}

impl std::fmt::Debug for MemoryCredentials {
    // Credentials hold passwords: only who is known.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("MemoryCredentials")
            .field("operators", &inner.answers.keys().collect::<Vec<_>>())
            .field("down", &inner.down)
            .finish_non_exhaustive()
    }
}

impl MemoryCredentials {
    pub fn new() -> Self {
        MemoryCredentials::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryOms> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answer `operator_id`'s fetches with `credentials` (from now on).
    pub fn set(&self, operator_id: &OperatorId, credentials: Credentials) {
        self.lock()
            .answers
            .insert(operator_id.clone(), Ok(credentials));
    }

    /// Answer `operator_id`'s fetches with a document as OMS would send it (checked as
    /// [`OmsClient`] checks it: an invalid one is answered [`OmsError::Invalid`]).
    pub fn set_json(&self, operator_id: &OperatorId, document: &str) {
        let answer = Credentials::from_json(document.as_bytes(), operator_id.as_str())
            .map_err(OmsError::from);
        self.lock().answers.insert(operator_id.clone(), answer);
    }

    /// Answer `operator_id`'s fetches with `error` (from now on).
    pub fn fail(&self, operator_id: &OperatorId, error: OmsError) {
        self.lock().answers.insert(operator_id.clone(), Err(error));
    }

    /// OMS becomes unreachable (`true`) for every operator, or reachable again.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Fetches of `operator_id` so far (failed ones included).
    pub fn fetches(&self, operator_id: &OperatorId) -> u64 {
        self.lock().fetches.get(operator_id).copied().unwrap_or(0)
    }
}

impl CredentialSource for MemoryCredentials {
    fn fetch(&self, operator_id: &OperatorId) -> BoxFuture<'static, Result<Credentials, OmsError>> {
        let mut inner = self.lock();
        *inner.fetches.entry(operator_id.clone()).or_default() += 1;
        let answer = if inner.down {
            Err(OmsError::Transport(
                "connection refused (in-memory OMS down)".into(),
            ))
        } else {
            inner
                .answers
                .get(operator_id)
                .cloned()
                .unwrap_or(Err(OmsError::UnknownOperator))
        };
        Box::pin(futures::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(bind_count: u16, password: &str) -> String {
        format!(
            r#"{{"operatorId":"opmem","host":"127.0.0.1","port":2775,"systemId":"esme","password":"{password}","bindCount":{bind_count}}}"#
        )
    }

    /// Fetches answer what was set at the time (a rotation is seen by the next fetch),
    /// scripted errors and an outage come back as OMS's would, and every fetch counts.
    #[actix_rt::test]
    async fn memory_credentials_answer_what_is_set_now_and_count_fetches() {
        let oms = MemoryCredentials::new();
        let op = OperatorId::try_new("opmem").unwrap();
        let source: Arc<dyn CredentialSource> = Arc::new(oms.clone());
        assert!(matches!(
            source.fetch(&op).await,
            Err(OmsError::UnknownOperator)
        ));

        oms.set_json(&op, &document(3, "secret1"));
        let first = source.fetch(&op).await.unwrap();
        assert_eq!(first.bind_count, 3);
        assert_eq!(first.password.expose(), "secret1");
        oms.set_json(&op, &document(2, "rotated"));
        assert_eq!(
            source.fetch(&op).await.unwrap().password.expose(),
            "rotated"
        );

        oms.set_down(true);
        assert!(matches!(
            source.fetch(&op).await,
            Err(OmsError::Transport(_))
        ));
        oms.set_down(false);
        oms.fail(&op, OmsError::Status(503));
        assert!(matches!(
            source.fetch(&op).await,
            Err(OmsError::Status(503))
        ));
        oms.set_json(&op, r#"{"operatorId":"opmem"}"#);
        assert!(matches!(source.fetch(&op).await, Err(OmsError::Invalid(_))));

        assert_eq!(oms.fetches(&op), 6);
        assert!(
            !format!("{oms:?}").contains("secret"),
            "no password in a Debug"
        );
    }
}
