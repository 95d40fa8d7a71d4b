//! Typed configuration and its validation, plus the identity types every layer shares.
//!
//! The `actors` crate reads the process environment into a map and hands it to
//! [`Config::from_env`]; everything here is pure so every rule is unit-tested. A missing
//! or invalid variable is a [`ConfigError`] naming the variable: startup stops with that
//! one line, it never carries on with a default after a load error.
//!
//! Secrets ([`Secret`]) have a redacting `Debug`; nothing here logs.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

pub use crate::backends::{NatsSettings, PostgresSettings, RedisSettings};
pub use crate::identity::{BindKey, Direction, InvalidOperatorId, Lane, OperatorId};
pub use crate::settings::{ConfigError, Secret, TlsFiles, env};

/// `DATABASE_STATEMENT_TIMEOUT_MS` by default.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A database call's client-side deadline is its statement timeout plus this.
pub const DATABASE_CALL_MARGIN: Duration = Duration::from_secs(2);

/// Output format of the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// SMPP and intake timers; every one is overridable so tests can scale them down.
#[derive(Debug, Clone, PartialEq)]
pub struct Timers {
    /// Overrides the operator's `enquireLinkSeconds` when set.
    pub enquire_link_interval: Option<Duration>,
    pub enquire_link_timeout: Duration,
    pub bind_timeout: Duration,
    pub reconnect_backoff_base: Duration,
    pub reconnect_backoff_max: Duration,
    /// Jitter fraction (0 = off), against reconnect storms.
    pub reconnect_jitter: f64,
    pub submit_resp_timeout: Duration,
    /// A receipt waits for its row up to `receipt_correlation_wait` while its bind has
    /// submits in flight (it may have overtaken one's submit_sm_resp); otherwise this long
    /// (a row another pod or bind is writing).
    pub receipt_correlation_wait: Duration,
    pub receipt_unmatched_grace: Duration,
    pub window_reload: Duration,
    pub drain_timeout: Duration,
    pub oms_timeout: Duration,
    /// AckWait of the dispatch consumers; held messages get in-progress acks well within
    /// it, so a killed pod's messages return after about this long.
    pub ack_wait: Duration,
    /// The adaptive window regains 5 slots per period after ESME_RTHROTTLED.
    pub window_grow_period: Duration,
    /// Throttles are counted over this sliding period (≥ 3 → degraded).
    pub throttle_period: Duration,
    /// One probe submit per interval while HALF_CLOSED_TX.
    pub probe_interval: Duration,
    /// DRAINING lasts at least this long after the last ESME_RMSGQFUL.
    pub drain_min: Duration,
    /// DRAINING longer than this is logged as an error (alert).
    pub drain_alert_after: Duration,
    /// How often expired correlation rows (`expires_at` passed) are deleted.
    pub correlation_sweep: Duration,
    /// How long a correlation row lives: `expires_at = submitted_at + retention` (SPEC:
    /// 72 h, the longest an SMSC is expected to hold a receipt).
    pub correlation_retention: Duration,
    /// How long the parts of a concatenated MO are waited for, from its first part; then
    /// what came is published with `incomplete: true`.
    pub concat_window: Duration,
    /// TTL of a bind's owner key in NATS KV (the bucket's max age).
    pub owner_ttl: Duration,
    /// How often an owner refreshes its keys and heartbeat, and re-plans.
    pub owner_refresh: Duration,
    /// How often the reconciler (one pod per operator and direction) looks for orphaned
    /// and doubly-claimed binds.
    pub reconcile: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            enquire_link_interval: None,
            enquire_link_timeout: Duration::from_secs(10),
            bind_timeout: Duration::from_secs(10),
            reconnect_backoff_base: Duration::from_secs(5),
            reconnect_backoff_max: Duration::from_secs(60),
            reconnect_jitter: 0.0,
            submit_resp_timeout: Duration::from_secs(30),
            receipt_correlation_wait: Duration::from_secs(30),
            receipt_unmatched_grace: Duration::from_secs(2),
            window_reload: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
            oms_timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(10),
            window_grow_period: Duration::from_secs(60),
            throttle_period: Duration::from_secs(60),
            probe_interval: Duration::from_secs(60),
            drain_min: Duration::from_secs(30),
            drain_alert_after: Duration::from_secs(300),
            correlation_sweep: Duration::from_secs(60),
            correlation_retention: Duration::from_secs(72 * 3600),
            concat_window: Duration::from_secs(60),
            owner_ttl: Duration::from_secs(30),
            owner_refresh: Duration::from_secs(10),
            reconcile: Duration::from_secs(30),
        }
    }
}

/// The whole service configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub operator_ids: Vec<OperatorId>,
    pub direction: Direction,
    pub lanes: Vec<Lane>,
    pub pod_name: String,
    pub nats: NatsSettings,
    pub redis: RedisSettings,
    pub database: PostgresSettings,
    pub database_pool_size: usize,
    /// `statement_timeout` of the service's PostgreSQL sessions; every database call also
    /// has a deadline of this plus [`DATABASE_CALL_MARGIN`] on the client side (a server
    /// that stopped answering does not enforce its own timeout).
    pub database_statement_timeout: Duration,
    pub oms_base_url: String,
    pub oms_ca_file: Option<String>,
    pub oms_cert_file: Option<String>,
    pub oms_key_file: Option<String>,
    /// SMPP over TLS (operators with `tls: true`): the CA bundle that verifies the SMSC
    /// (`None`: the system's trust store) and an optional client certificate and key.
    pub smpp_tls: TlsFiles,
    pub admin_token: Secret,
    pub http_host: String,
    pub http_port: u16,
    pub admin_port: u16,
    pub shadow_mode: bool,
    /// `FAULT_INJECTION=true`: the admin API may panic one bind on purpose
    /// (`POST …/panic`), for supervision drills and tests. Off by default.
    pub fault_injection: bool,
    /// Binds are claimed in NATS KV (`smpp-bind-owners`), one owner per bind across
    /// pods (`BIND_OWNERSHIP=kv`, the default), or every pod runs every bind id (`off`:
    /// one pod only).
    pub bind_ownership: bool,
    pub nats_ensure_streams: bool,
    pub dispatch_stream: String,
    pub events_stream: String,
    pub max_deliver: i64,
    pub fetch_batch: usize,
    /// deliver_sm one session holds unanswered at most; beyond it the SMSC waits on TCP
    /// ([`crate::protocol::session::SessionConfig::inbound_window`]).
    pub inbound_window: usize,
    pub max_pdu_bytes: usize,
    pub correlation_batch: usize,
    /// Failed bind attempts in a row before a primary bind fails over to its operator's
    /// `backupOperatorId`.
    pub failover_after_failures: u32,
    pub timers: Timers,
    pub log_format: LogFormat,
}

struct Vars<'a>(&'a BTreeMap<String, String>);

impl Vars<'_> {
    fn get(&self, name: &'static str) -> Option<&str> {
        self.0.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<&str, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError::new(name, "is required but not set"))
    }

    fn parse<T: FromStr>(
        &self,
        name: &'static str,
        default: T,
        what: &str,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| ConfigError::new(name, format!("must be {what} (got {raw:?})"))),
        }
    }

    fn flag(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::new(
                name,
                format!("must be true or false (got {v:?})"),
            )),
        }
    }

    fn millis(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(ConfigError::new(
                    name,
                    format!("must be a positive number of milliseconds (got {raw:?})"),
                )),
            },
        }
    }

    /// Seconds, fractions allowed (`0.5`), so tests can scale a window down.
    fn seconds(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(raw) => match raw.parse::<f64>() {
                Ok(s) if (0.001..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
                _ => Err(ConfigError::new(
                    name,
                    format!("must be a number of seconds from 0.001 to 86400 (got {raw:?})"),
                )),
            },
        }
    }

    fn tls_files(&self, [ca, cert, key]: [&'static str; 3]) -> TlsFiles {
        TlsFiles {
            ca_file: self.get(ca).map(str::to_owned),
            cert_file: self.get(cert).map(str::to_owned),
            key_file: self.get(key).map(str::to_owned),
        }
    }

    fn url(&self, name: &'static str, schemes: &[&str]) -> Result<String, ConfigError> {
        let raw = self.required(name)?;
        let ok = schemes.iter().any(|s| {
            raw.strip_prefix(s)
                .and_then(|rest| rest.strip_prefix("://"))
                .is_some_and(|rest| !rest.is_empty())
        });
        if ok {
            Ok(raw.to_owned())
        } else {
            Err(ConfigError::new(
                name,
                format!("must be a URL with scheme {}", schemes.join(" or ")),
            ))
        }
    }
}

/// `DATABASE_URL` and `DATABASE_STATEMENT_TIMEOUT_MS` alone: what the one-shot
/// subcommands (`migrate`, `maintain`) need, read by the same rules as the service's.
pub fn database_from_env(
    vars: &BTreeMap<String, String>,
) -> Result<(PostgresSettings, Duration), ConfigError> {
    database(&Vars(vars))
}

fn database(v: &Vars<'_>) -> Result<(PostgresSettings, Duration), ConfigError> {
    Ok((
        PostgresSettings::parse(v.required(env::DATABASE_URL)?)?,
        v.millis(
            env::DATABASE_STATEMENT_TIMEOUT_MS,
            DEFAULT_STATEMENT_TIMEOUT,
        )?,
    ))
}

impl Config {
    /// Build and validate the configuration from environment variables.
    pub fn from_env(vars: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let v = Vars(vars);

        let operator_ids = match (v.get(env::MNO_ID), v.get(env::OPERATOR_IDS)) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    env::OPERATOR_IDS,
                    "must not be set together with MNO_ID",
                ));
            }
            (Some(one), None) => vec![
                OperatorId::try_new(one)
                    .map_err(|e| ConfigError::new(env::MNO_ID, e.to_string()))?,
            ],
            (None, Some(list)) => {
                let mut ids = Vec::new();
                for raw in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let id = OperatorId::try_new(raw)
                        .map_err(|e| ConfigError::new(env::OPERATOR_IDS, e.to_string()))?;
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
                if ids.is_empty() {
                    return Err(ConfigError::new(env::OPERATOR_IDS, "lists no operator"));
                }
                ids
            }
            (None, None) => {
                return Err(ConfigError::new(
                    env::MNO_ID,
                    "is required (or OPERATOR_IDS, a comma list)",
                ));
            }
        };

        let direction = match v.get(env::BIND_DIRECTION) {
            None => Direction::Trx,
            Some(raw) => raw.parse().map_err(|_| {
                ConfigError::new(
                    env::BIND_DIRECTION,
                    format!("must be trx, tx or rx (got {raw:?})"),
                )
            })?,
        };

        let lanes = match v.get(env::LANES) {
            None => Lane::ALL.to_vec(),
            Some(raw) if raw.eq_ignore_ascii_case("all") => Lane::ALL.to_vec(),
            Some(raw) => {
                let mut lanes = Vec::new();
                for token in raw.split(',').filter(|s| !s.trim().is_empty()) {
                    let lane: Lane = token.parse().map_err(|_| {
                        ConfigError::new(
                            env::LANES,
                            format!("must be a comma list of P0..P3 (got {token:?})"),
                        )
                    })?;
                    if !lanes.contains(&lane) {
                        lanes.push(lane);
                    }
                }
                if lanes.is_empty() {
                    return Err(ConfigError::new(env::LANES, "lists no lane"));
                }
                lanes.sort();
                lanes
            }
        };

        let admin_token = v.required(env::ADMIN_TOKEN)?;
        if admin_token.len() < 16 {
            return Err(ConfigError::new(
                env::ADMIN_TOKEN,
                "must be at least 16 characters",
            ));
        }

        let http_port: u16 = v.parse(env::HTTP_PORT, 8080, "a TCP port")?;
        let admin_port: u16 = v.parse(env::ADMIN_PORT, 8081, "a TCP port")?;
        if http_port == admin_port && http_port != 0 {
            return Err(ConfigError::new(
                env::ADMIN_PORT,
                "must differ from HTTP_PORT",
            ));
        }

        let oms_base_url = v
            .url(env::OMS_BASE_URL, &["http", "https"])?
            .trim_end_matches('/')
            .to_owned();
        let oms_cert_file = v.get(env::OMS_CERT_FILE).map(str::to_owned);
        let oms_key_file = v.get(env::OMS_KEY_FILE).map(str::to_owned);
        if oms_cert_file.is_some() != oms_key_file.is_some() {
            return Err(ConfigError::new(
                env::OMS_KEY_FILE,
                "and OMS_CERT_FILE must be set together (mTLS client identity)",
            ));
        }

        let smpp_tls = TlsFiles {
            ca_file: v.get(env::SMPP_TLS_CA_FILE).map(str::to_owned),
            cert_file: v.get(env::SMPP_TLS_CERT_FILE).map(str::to_owned),
            key_file: v.get(env::SMPP_TLS_KEY_FILE).map(str::to_owned),
        };
        if smpp_tls.cert_file.is_some() != smpp_tls.key_file.is_some() {
            return Err(ConfigError::new(
                env::SMPP_TLS_KEY_FILE,
                "and SMPP_TLS_CERT_FILE must be set together (TLS client identity)",
            ));
        }

        let max_deliver: i64 = v.parse(env::MAX_DELIVER, 10, "a number of deliveries")?;
        if max_deliver < 1 {
            return Err(ConfigError::new(env::MAX_DELIVER, "must be at least 1"));
        }
        let fetch_batch: usize = v.parse(env::FETCH_BATCH, 500, "a batch size")?;
        if !(1..=10_000).contains(&fetch_batch) {
            return Err(ConfigError::new(env::FETCH_BATCH, "must be 1..=10000"));
        }
        let inbound_window: usize = v.parse(
            env::INBOUND_WINDOW,
            crate::protocol::session::DEFAULT_INBOUND_WINDOW,
            "a number of deliver_sm",
        )?;
        if !(1..=10_000).contains(&inbound_window) {
            return Err(ConfigError::new(env::INBOUND_WINDOW, "must be 1..=10000"));
        }
        let correlation_batch: usize = v.parse(env::CORRELATION_BATCH, 500, "a batch size")?;
        if !(1..=10_000).contains(&correlation_batch) {
            return Err(ConfigError::new(
                env::CORRELATION_BATCH,
                "must be 1..=10000",
            ));
        }
        let max_pdu_bytes: usize = v.parse(
            env::MAX_PDU_BYTES,
            crate::protocol::pdu::DEFAULT_MAX_PDU_LEN,
            "a number of octets",
        )?;
        if !(1024..=1024 * 1024).contains(&max_pdu_bytes) {
            return Err(ConfigError::new(
                env::MAX_PDU_BYTES,
                "must be between 1024 and 1048576",
            ));
        }
        let database_pool_size: usize = v.parse(env::DATABASE_POOL_SIZE, 8, "a pool size")?;
        if database_pool_size == 0 {
            return Err(ConfigError::new(
                env::DATABASE_POOL_SIZE,
                "must be at least 1",
            ));
        }

        let defaults = Timers::default();
        let jitter: f64 = v.parse(env::RECONNECT_JITTER, 0.0, "a fraction between 0 and 1")?;
        if !(0.0..=1.0).contains(&jitter) {
            return Err(ConfigError::new(
                env::RECONNECT_JITTER,
                "must be a fraction between 0 and 1",
            ));
        }
        let retention: u64 = v.parse(
            env::CORRELATION_RETENTION_SECONDS,
            72 * 3600,
            "a whole number of seconds",
        )?;
        if !(60..=30 * 86_400).contains(&retention) {
            return Err(ConfigError::new(
                env::CORRELATION_RETENTION_SECONDS,
                "must be from 60 (a minute) to 2592000 (30 days)",
            ));
        }
        let timers = Timers {
            enquire_link_interval: match v.get(env::ENQUIRE_LINK_INTERVAL_MS) {
                None => None,
                Some(_) => Some(v.millis(env::ENQUIRE_LINK_INTERVAL_MS, Duration::ZERO)?),
            },
            enquire_link_timeout: v
                .millis(env::ENQUIRE_LINK_TIMEOUT_MS, defaults.enquire_link_timeout)?,
            bind_timeout: v.millis(env::BIND_TIMEOUT_MS, defaults.bind_timeout)?,
            reconnect_backoff_base: v.millis(
                env::RECONNECT_BACKOFF_BASE_MS,
                defaults.reconnect_backoff_base,
            )?,
            reconnect_backoff_max: v.millis(
                env::RECONNECT_BACKOFF_MAX_MS,
                defaults.reconnect_backoff_max,
            )?,
            reconnect_jitter: jitter,
            submit_resp_timeout: v
                .millis(env::SUBMIT_RESP_TIMEOUT_MS, defaults.submit_resp_timeout)?,
            receipt_correlation_wait: v.millis(
                env::RECEIPT_CORRELATION_WAIT_MS,
                defaults.receipt_correlation_wait,
            )?,
            receipt_unmatched_grace: v.millis(
                env::RECEIPT_UNMATCHED_GRACE_MS,
                defaults.receipt_unmatched_grace,
            )?,
            window_reload: v.millis(env::WINDOW_RELOAD_MS, defaults.window_reload)?,
            drain_timeout: v.millis(env::DRAIN_TIMEOUT_MS, defaults.drain_timeout)?,
            ack_wait: v.millis(env::NATS_ACK_WAIT_MS, defaults.ack_wait)?,
            window_grow_period: v
                .millis(env::WINDOW_GROW_PERIOD_MS, defaults.window_grow_period)?,
            throttle_period: v.millis(env::THROTTLE_PERIOD_MS, defaults.throttle_period)?,
            probe_interval: v
                .millis(env::HALF_CLOSED_PROBE_INTERVAL_MS, defaults.probe_interval)?,
            drain_min: v.millis(env::DRAIN_MIN_MS, defaults.drain_min)?,
            drain_alert_after: v.millis(env::DRAIN_ALERT_AFTER_MS, defaults.drain_alert_after)?,
            correlation_sweep: v.millis(env::CORRELATION_SWEEP_MS, defaults.correlation_sweep)?,
            correlation_retention: Duration::from_secs(retention),
            concat_window: v.seconds(env::CONCAT_WINDOW_SECONDS, defaults.concat_window)?,
            owner_ttl: v.millis(env::OWNER_TTL_MS, defaults.owner_ttl)?,
            owner_refresh: v.millis(env::OWNER_REFRESH_MS, defaults.owner_refresh)?,
            reconcile: v.millis(env::RECONCILE_MS, defaults.reconcile)?,
            oms_timeout: v.millis(env::OMS_TIMEOUT_MS, defaults.oms_timeout)?,
        };
        if timers.owner_refresh * 2 >= timers.owner_ttl {
            return Err(ConfigError::new(
                env::OWNER_REFRESH_MS,
                "must be below half of OWNER_TTL_MS (an owner refreshes at least twice per TTL)",
            ));
        }
        if timers.reconnect_backoff_max < timers.reconnect_backoff_base {
            return Err(ConfigError::new(
                env::RECONNECT_BACKOFF_MAX_MS,
                "must not be below RECONNECT_BACKOFF_BASE_MS",
            ));
        }

        let failover_after_failures: u32 = v.parse(
            env::FAILOVER_AFTER_FAILURES,
            crate::cluster::failover::DEFAULT_THRESHOLD,
            "a whole number of failed bind attempts",
        )?;
        if failover_after_failures == 0 {
            return Err(ConfigError::new(
                env::FAILOVER_AFTER_FAILURES,
                "must be at least 1",
            ));
        }

        let log_format = match v.get(env::LOG_FORMAT) {
            None | Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => {
                return Err(ConfigError::new(
                    env::LOG_FORMAT,
                    format!("must be json or text (got {other:?})"),
                ));
            }
        };

        let (database, database_statement_timeout) = database(&v)?;

        let stream_name = |name: &'static str, default: &str| -> Result<String, ConfigError> {
            let value = v.get(name).unwrap_or(default);
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                Ok(value.to_owned())
            } else {
                Err(ConfigError::new(
                    name,
                    "must be a JetStream stream name ([A-Za-z0-9_-])",
                ))
            }
        };

        Ok(Config {
            operator_ids,
            direction,
            lanes,
            pod_name: v.get(env::POD_NAME).unwrap_or("smpp-connector").to_owned(),
            nats: NatsSettings::parse(
                v.required(env::NATS_URL)?,
                v.get(env::NATS_CREDS).map(str::to_owned),
                v.tls_files([
                    env::NATS_TLS_CA_FILE,
                    env::NATS_TLS_CERT_FILE,
                    env::NATS_TLS_KEY_FILE,
                ]),
                v.get(env::NATS_STREAM_REPLICAS),
            )?,
            redis: RedisSettings::parse(
                v.required(env::REDIS_URL)?,
                v.tls_files([
                    env::REDIS_TLS_CA_FILE,
                    env::REDIS_TLS_CERT_FILE,
                    env::REDIS_TLS_KEY_FILE,
                ]),
            )?,
            database,
            database_pool_size,
            database_statement_timeout,
            oms_base_url,
            oms_ca_file: v.get(env::OMS_CA_FILE).map(str::to_owned),
            oms_cert_file,
            oms_key_file,
            smpp_tls,
            admin_token: Secret::new(admin_token),
            http_host: v.get(env::HTTP_HOST).unwrap_or("0.0.0.0").to_owned(),
            http_port,
            admin_port,
            shadow_mode: v.flag(env::SHADOW_MODE, false)?,
            fault_injection: v.flag(env::FAULT_INJECTION, false)?,
            bind_ownership: match v.get(env::BIND_OWNERSHIP) {
                None | Some("kv") => true,
                Some("off") => false,
                Some(other) => {
                    return Err(ConfigError::new(
                        env::BIND_OWNERSHIP,
                        format!("must be kv or off (got {other:?})"),
                    ));
                }
            },
            nats_ensure_streams: v.flag(env::NATS_ENSURE_STREAMS, true)?,
            dispatch_stream: stream_name(env::DISPATCH_STREAM, "SMS_DISPATCH")?,
            events_stream: stream_name(env::EVENTS_STREAM, "SMS_EVENTS")?,
            max_deliver,
            fetch_batch,
            inbound_window,
            max_pdu_bytes,
            correlation_batch,
            failover_after_failures,
            timers,
            log_format,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> BTreeMap<String, String> {
        [
            ("MNO_ID", "awcc"),
            ("NATS_URL", "nats://127.0.0.1:4222"),
            ("REDIS_URL", "redis://127.0.0.1:6379/0"),
            ("DATABASE_URL", "postgres://u:p@127.0.0.1/smpp"),
            ("OMS_BASE_URL", "http://127.0.0.1:8090/"),
            ("ADMIN_TOKEN", "0123456789abcdef"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn with(key: &str, value: &str) -> BTreeMap<String, String> {
        let mut vars = base();
        vars.insert(key.to_owned(), value.to_owned());
        vars
    }

    fn without(key: &str) -> BTreeMap<String, String> {
        let mut vars = base();
        vars.remove(key);
        vars
    }

    #[test]
    fn defaults_follow_the_spec() {
        let config = Config::from_env(&base()).unwrap();
        assert_eq!(
            config.operator_ids,
            vec![OperatorId::try_new("awcc").unwrap()]
        );
        assert_eq!(config.direction, Direction::Trx);
        assert_eq!(config.lanes, Lane::ALL.to_vec());
        assert_eq!((config.http_port, config.admin_port), (8080, 8081));
        assert_eq!(config.oms_base_url, "http://127.0.0.1:8090");
        assert_eq!(config.dispatch_stream, "SMS_DISPATCH");
        assert_eq!(config.events_stream, "SMS_EVENTS");
        assert_eq!(config.timers, Timers::default());
        assert_eq!(config.timers.reconnect_backoff_base, Duration::from_secs(5));
        assert!(!config.shadow_mode);
        assert!(config.nats_ensure_streams);
        assert_eq!(config.timers.reconcile, Duration::from_secs(30));
        assert_eq!(config.failover_after_failures, 3);
        assert_eq!(config.nats.stream_replicas, 1);
        assert_eq!(config.database_statement_timeout, Duration::from_secs(10));
        assert_eq!(
            config.database.tls.mode,
            crate::backends::SslMode::VerifyFull
        );
        assert_eq!(
            config.timers.correlation_retention,
            Duration::from_secs(72 * 3600)
        );
        let short = Config::from_env(&with("CORRELATION_RETENTION_SECONDS", "600")).unwrap();
        assert_eq!(short.timers.correlation_retention, Duration::from_secs(600));
    }

    #[test]
    fn each_bad_variable_is_named() {
        let cases: Vec<(BTreeMap<String, String>, &str)> = vec![
            (without("MNO_ID"), "MNO_ID"),
            (with("MNO_ID", "bad id!"), "MNO_ID"),
            (with("OPERATOR_IDS", "a,b"), "OPERATOR_IDS"),
            (without("NATS_URL"), "NATS_URL"),
            (with("REDIS_URL", "localhost:6379"), "REDIS_URL"),
            (with("DATABASE_URL", "mysql://x"), "DATABASE_URL"),
            (without("OMS_BASE_URL"), "OMS_BASE_URL"),
            (without("ADMIN_TOKEN"), "ADMIN_TOKEN"),
            (with("ADMIN_TOKEN", "short"), "ADMIN_TOKEN"),
            (with("BIND_DIRECTION", "both"), "BIND_DIRECTION"),
            (with("LANES", "P0,P9"), "LANES"),
            (with("HTTP_PORT", "http"), "HTTP_PORT"),
            (with("HTTP_PORT", "70000"), "HTTP_PORT"),
            (with("ADMIN_PORT", "8080"), "ADMIN_PORT"),
            (with("SHADOW_MODE", "maybe"), "SHADOW_MODE"),
            (
                with("ENQUIRE_LINK_TIMEOUT_MS", "0"),
                "ENQUIRE_LINK_TIMEOUT_MS",
            ),
            (
                with("RECONNECT_BACKOFF_MAX_MS", "10"),
                "RECONNECT_BACKOFF_MAX_MS",
            ),
            (with("RECONNECT_JITTER", "2"), "RECONNECT_JITTER"),
            (with("MAX_PDU_BYTES", "10"), "MAX_PDU_BYTES"),
            (with("INBOUND_WINDOW", "0"), "INBOUND_WINDOW"),
            (with("INBOUND_WINDOW", "many"), "INBOUND_WINDOW"),
            (with("LOG_FORMAT", "xml"), "LOG_FORMAT"),
            (with("DISPATCH_STREAM", "a.b"), "DISPATCH_STREAM"),
            (with("OMS_CERT_FILE", "/x.pem"), "OMS_KEY_FILE"),
            (with("SMPP_TLS_CERT_FILE", "/x.pem"), "SMPP_TLS_KEY_FILE"),
            (with("SMPP_TLS_KEY_FILE", "/x.key"), "SMPP_TLS_KEY_FILE"),
            (
                with("FAILOVER_AFTER_FAILURES", "0"),
                "FAILOVER_AFTER_FAILURES",
            ),
            (
                with("FAILOVER_AFTER_FAILURES", "three"),
                "FAILOVER_AFTER_FAILURES",
            ),
            (with("RECONCILE_MS", "0"), "RECONCILE_MS"),
            (with("NATS_STREAM_REPLICAS", "7"), "NATS_STREAM_REPLICAS"),
            (with("NATS_URL", "http://x:1"), "NATS_URL"),
            (with("REDIS_TLS_CA_FILE", "/ca.pem"), "REDIS_TLS_CA_FILE"),
            (
                with("DATABASE_URL", "postgres://h/db?sslmode=allow"),
                "DATABASE_URL",
            ),
            (
                with("DATABASE_STATEMENT_TIMEOUT_MS", "0"),
                "DATABASE_STATEMENT_TIMEOUT_MS",
            ),
            (
                with("CORRELATION_RETENTION_SECONDS", "59"),
                "CORRELATION_RETENTION_SECONDS",
            ),
            (
                with("CORRELATION_RETENTION_SECONDS", "72h"),
                "CORRELATION_RETENTION_SECONDS",
            ),
        ];
        for (vars, variable) in cases {
            let err = Config::from_env(&vars).unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
            assert!(err.to_string().contains(variable));
        }
    }

    #[test]
    fn secrets_never_appear_in_errors_or_debug() {
        let config = Config::from_env(&base()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("0123456789abcdef"));
        assert!(!debug.contains("u:p@"));
    }

    #[test]
    fn operator_list_and_lanes_parse() {
        let mut vars = without("MNO_ID");
        vars.insert("OPERATOR_IDS".into(), "awcc, roshan,awcc".into());
        vars.insert("LANES".into(), "p1,P0".into());
        vars.insert("BIND_DIRECTION".into(), "tx".into());
        let config = Config::from_env(&vars).unwrap();
        assert_eq!(config.operator_ids.len(), 2);
        assert_eq!(config.lanes, vec![Lane::P0, Lane::P1]);
        assert_eq!(config.direction, Direction::Tx);
    }

    #[test]
    fn operator_ids_accept_uuids_and_codes_only() {
        assert!(OperatorId::try_new("3f2b8c1e-0d4a-4b7e-9f00-123456789abc").is_ok());
        assert!(OperatorId::try_new("awcc_2").is_ok());
        assert!(OperatorId::try_new("").is_err());
        assert!(OperatorId::try_new(&"a".repeat(65)).is_err());
        assert!(OperatorId::try_new("a.b").is_err());
        assert!(OperatorId::try_new("a*").is_err());
    }
}
