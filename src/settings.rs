//! What every part of the configuration shares: the names of the environment variables (`env`), `ConfigError` (one line naming the variable, never its value), `Secret` and `TlsFiles`. `config` reads the whole; `backends` and the rest read their parts with these.

use std::fmt;

/// Names of every environment variable, written once (SPEC §3).
pub mod env {
    pub const MNO_ID: &str = "MNO_ID";
    pub const OPERATOR_IDS: &str = "OPERATOR_IDS";
    pub const BIND_DIRECTION: &str = "BIND_DIRECTION";
    pub const LANES: &str = "LANES";
    pub const POD_NAME: &str = "POD_NAME";
    pub const NATS_URL: &str = "NATS_URL";
    pub const NATS_CREDS: &str = "NATS_CREDS";
    pub const NATS_TLS_CA_FILE: &str = "NATS_TLS_CA_FILE";
    pub const NATS_TLS_CERT_FILE: &str = "NATS_TLS_CERT_FILE";
    pub const NATS_TLS_KEY_FILE: &str = "NATS_TLS_KEY_FILE";
    pub const NATS_STREAM_REPLICAS: &str = "NATS_STREAM_REPLICAS";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const REDIS_TLS_CA_FILE: &str = "REDIS_TLS_CA_FILE";
    pub const REDIS_TLS_CERT_FILE: &str = "REDIS_TLS_CERT_FILE";
    pub const REDIS_TLS_KEY_FILE: &str = "REDIS_TLS_KEY_FILE";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const DATABASE_POOL_SIZE: &str = "DATABASE_POOL_SIZE";
    pub const DATABASE_STATEMENT_TIMEOUT_MS: &str = "DATABASE_STATEMENT_TIMEOUT_MS";
    pub const OMS_BASE_URL: &str = "OMS_BASE_URL";
    pub const OMS_CA_FILE: &str = "OMS_CA_FILE";
    pub const OMS_CERT_FILE: &str = "OMS_CERT_FILE";
    pub const OMS_KEY_FILE: &str = "OMS_KEY_FILE";
    pub const OMS_TIMEOUT_MS: &str = "OMS_TIMEOUT_MS";
    pub const SMPP_TLS_CA_FILE: &str = "SMPP_TLS_CA_FILE";
    pub const SMPP_TLS_CERT_FILE: &str = "SMPP_TLS_CERT_FILE";
    pub const SMPP_TLS_KEY_FILE: &str = "SMPP_TLS_KEY_FILE";
    pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
    pub const HTTP_HOST: &str = "HTTP_HOST";
    pub const HTTP_PORT: &str = "HTTP_PORT";
    pub const ADMIN_PORT: &str = "ADMIN_PORT";
    pub const SHADOW_MODE: &str = "SHADOW_MODE";
    pub const NATS_ENSURE_STREAMS: &str = "NATS_ENSURE_STREAMS";
    pub const DISPATCH_STREAM: &str = "DISPATCH_STREAM";
    pub const EVENTS_STREAM: &str = "EVENTS_STREAM";
    pub const MAX_DELIVER: &str = "MAX_DELIVER";
    pub const FETCH_BATCH: &str = "FETCH_BATCH";
    pub const ENQUIRE_LINK_INTERVAL_MS: &str = "ENQUIRE_LINK_INTERVAL_MS";
    pub const ENQUIRE_LINK_TIMEOUT_MS: &str = "ENQUIRE_LINK_TIMEOUT_MS";
    pub const BIND_TIMEOUT_MS: &str = "BIND_TIMEOUT_MS";
    pub const RECONNECT_BACKOFF_BASE_MS: &str = "RECONNECT_BACKOFF_BASE_MS";
    pub const RECONNECT_BACKOFF_MAX_MS: &str = "RECONNECT_BACKOFF_MAX_MS";
    pub const RECONNECT_JITTER: &str = "RECONNECT_JITTER";
    pub const SUBMIT_RESP_TIMEOUT_MS: &str = "SUBMIT_RESP_TIMEOUT_MS";
    pub const RECEIPT_CORRELATION_WAIT_MS: &str = "RECEIPT_CORRELATION_WAIT_MS";
    pub const RECEIPT_UNMATCHED_GRACE_MS: &str = "RECEIPT_UNMATCHED_GRACE_MS";
    pub const WINDOW_RELOAD_MS: &str = "WINDOW_RELOAD_MS";
    pub const DRAIN_TIMEOUT_MS: &str = "DRAIN_TIMEOUT_MS";
    pub const NATS_ACK_WAIT_MS: &str = "NATS_ACK_WAIT_MS";
    pub const WINDOW_GROW_PERIOD_MS: &str = "WINDOW_GROW_PERIOD_MS";
    pub const THROTTLE_PERIOD_MS: &str = "THROTTLE_PERIOD_MS";
    pub const HALF_CLOSED_PROBE_INTERVAL_MS: &str = "HALF_CLOSED_PROBE_INTERVAL_MS";
    pub const DRAIN_MIN_MS: &str = "DRAIN_MIN_MS";
    pub const DRAIN_ALERT_AFTER_MS: &str = "DRAIN_ALERT_AFTER_MS";
    pub const CORRELATION_SWEEP_MS: &str = "CORRELATION_SWEEP_MS";
    pub const CONCAT_WINDOW_SECONDS: &str = "CONCAT_WINDOW_SECONDS";
    pub const CORRELATION_RETENTION_SECONDS: &str = "CORRELATION_RETENTION_SECONDS";
    pub const BIND_OWNERSHIP: &str = "BIND_OWNERSHIP";
    pub const OWNER_TTL_MS: &str = "OWNER_TTL_MS";
    pub const OWNER_REFRESH_MS: &str = "OWNER_REFRESH_MS";
    pub const RECONCILE_MS: &str = "RECONCILE_MS";
    pub const FAILOVER_AFTER_FAILURES: &str = "FAILOVER_AFTER_FAILURES";
    pub const MAX_PDU_BYTES: &str = "MAX_PDU_BYTES";
    pub const CORRELATION_BATCH: &str = "CORRELATION_BATCH";
    pub const INBOUND_WINDOW: &str = "INBOUND_WINDOW";
    pub const FAULT_INJECTION: &str = "FAULT_INJECTION";
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
}

/// A secret string: `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; call only where it is used (a bind PDU, a header compare).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Certificate files of a TLS client (paths; read by the service at startup).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM CA bundle; `None`: the system's trust store.
    pub ca_file: Option<String>,
    /// PEM client certificate chain (with `key_file`).
    pub cert_file: Option<String>,
    /// PEM private key of the client certificate.
    pub key_file: Option<String>,
}

/// A configuration error: the variable and what is wrong with it. Never the value of a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration error: {variable} {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        ConfigError {
            variable,
            problem: problem.into(),
        }
    }
}
