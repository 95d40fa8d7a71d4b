//! [`PgStore`]: the correlation store in PostgreSQL — the pool, the versioned migrations
//! (applied under an advisory lock, then ANALYZE), and one statement per batch of each
//! kind (`INSERT … SELECT FROM UNNEST`, receipts by `UPDATE … FROM UNNEST … RETURNING`,
//! the lookups, the sweep of expired rows).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::future::BoxFuture;
use smpp_connector::backends::DEFAULT_PG_CONNECT_TIMEOUT;
use smpp_connector::config::{BindKey, ConfigError, DATABASE_CALL_MARGIN, PostgresSettings, env};

use crate::tls::PgTlsConnector;

use crate::telemetry::metric;

use super::{
    BindSettings, Correlated, CorrelationError, CorrelationRow, CorrelationStore, ReceiptKey,
    ReceiptMatch,
};

/// The migrations, in order. Each is applied once, in its own transaction.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "correlations_and_binds",
        include_str!("../../migrations/0001_correlations_and_binds.sql"),
    ),
    (
        2,
        "concat_ref",
        include_str!("../../migrations/0002_concat_ref.sql"),
    ),
    (
        3,
        "receipt_lookup_newest",
        include_str!("../../migrations/0003_receipt_lookup_newest.sql"),
    ),
    (
        4,
        "traceparent",
        include_str!("../../migrations/0004_traceparent.sql"),
    ),
];

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x534d_5050_4d49_4752; // "SMPPMIGR"

/// PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// `expires_at - submitted_at` of the rows written, in seconds.
    retention_seconds: i64,
    /// How long one call may take, connection included, before it counts as failed.
    deadline: Duration,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

const INSERT_ROWS: &str = "\
INSERT INTO smpp.message_correlations \
  (message_id, segment_index, segment_count, operator_id, direction, bind_id, \
   operator_message_id, submitted_at, expires_at, concat_ref, traceparent) \
SELECT m, s, c, o, d, b, om, t, t + $11::int8 * interval '1 second', cr, tp \
FROM UNNEST($1::text[], $2::int4[], $3::int4[], $4::text[], $5::text[], $6::int4[], \
            $7::text[], $8::timestamptz[], $9::int4[], $10::text[]) \
     AS r(m, s, c, o, d, b, om, t, cr, tp) \
ON CONFLICT (message_id, segment_index) DO NOTHING";

/// Each receipt marks the newest row with its (operator, operator message id): an SMSC
/// may reuse an id within the 72 hours a row lives (`CORRELATION_RETENTION_SECONDS`), and the older message keeps its own
/// status. A receipt sent twice in one batch is applied once.
const APPLY_RECEIPTS: &str = "\
WITH r AS ( \
  SELECT DISTINCT ON (o, om) o, om, st \
  FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(o, om, st)), \
t AS ( \
  SELECT n.message_id, n.segment_index, r.st FROM r CROSS JOIN LATERAL ( \
    SELECT x.message_id, x.segment_index FROM smpp.message_correlations x \
    WHERE x.operator_id = r.o AND x.operator_message_id = r.om \
    ORDER BY x.submitted_at DESC, x.message_id DESC, x.segment_index DESC LIMIT 1) n) \
UPDATE smpp.message_correlations c \
SET dlr_status = t.st, dlr_received_at = now() \
FROM t \
WHERE c.message_id = t.message_id AND c.segment_index = t.segment_index \
RETURNING c.operator_id, c.operator_message_id, c.message_id, c.segment_index, \
          c.segment_count, c.submitted_at, c.traceparent";

/// One sweep batch: expired rows by the expiry index, oldest first, skipping rows another
/// transaction holds (a receipt being written, another pod's sweep), so a sweep never
/// waits on a row lock and two sweepers take disjoint rows.
const SWEEP_EXPIRED: &str = "\
DELETE FROM smpp.message_correlations WHERE ctid IN ( \
  SELECT ctid FROM smpp.message_correlations WHERE expires_at < now() \
  ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)";

const BIND_SETTINGS: &str = "SELECT \"window\", enabled FROM ops.smpp_binds \
WHERE operator_id = $1 AND direction = $2 AND bind_id = $3";

const CORRELATED_SEGMENTS: &str = "SELECT message_id, segment_index, concat_ref \
FROM smpp.message_correlations WHERE message_id = ANY($1)";

impl PgStore {
    /// A pool for `DATABASE_URL` (TLS as its `sslmode` says, several hosts tried in order
    /// with `target_session_attrs`); connections are opened lazily. Every session gets
    /// `statement_timeout`, and every call a client-side deadline of that plus
    /// [`DATABASE_CALL_MARGIN`]: a server that stopped answering (a partition, a primary
    /// that froze) is an outage the callers handle, never a wait without end.
    pub fn connect(
        settings: &PostgresSettings,
        pool_size: usize,
        statement_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut pg_config =
            tokio_postgres::Config::from_str(settings.url.expose()).map_err(|e| ConfigError {
                variable: env::DATABASE_URL,
                problem: format!("is not a valid PostgreSQL URL: {e}"),
            })?;
        // Every statement is planned for its own arguments. A generic plan made while the
        // table (or, later, a new partition) was empty is a hash join over a sequential
        // scan, and PostgreSQL keeps it: every receipt batch then reads the whole table.
        // Planning our few statements each time costs microseconds.
        let ours = format!(
            "-c plan_cache_mode=force_custom_plan -c statement_timeout={}",
            statement_timeout.as_millis()
        );
        let options = match pg_config.get_options() {
            Some(given) => format!("{given} {ours}"),
            None => ours,
        };
        pg_config.options(&options);
        let per_host = *pg_config
            .get_connect_timeout()
            .unwrap_or(&DEFAULT_PG_CONNECT_TIMEOUT);
        pg_config.connect_timeout(per_host);
        // tokio-postgres probes an idle connection after two hours by default; a standby
        // promoted behind a dead primary should not wait that long to be noticed.
        if pg_config.get_keepalives_idle() >= Duration::from_secs(3600) {
            pg_config.keepalives_idle(Duration::from_secs(30));
        }
        let tls = PgTlsConnector::new(&settings.tls)?;
        let manager = Manager::from_config(
            pg_config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .wait_timeout(Some(Duration::from_secs(5)))
            // Each host in turn, then give up: the callers retry.
            .create_timeout(Some(
                per_host * settings.hosts.max(1) as u32 + Duration::from_secs(1),
            ))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()?;
        Ok(PgStore {
            pool,
            retention_seconds: 72 * 3600,
            deadline: statement_timeout + DATABASE_CALL_MARGIN,
        })
    }

    /// Rows written live this long (`CORRELATION_RETENTION_SECONDS`; 72 h by default).
    pub fn with_retention(mut self, retention: std::time::Duration) -> Self {
        self.retention_seconds = retention.as_secs() as i64;
        self
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Apply pending migrations under an advisory lock, then ANALYZE.
    pub async fn migrate(&self) -> anyhow::Result<Vec<i32>> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // A migration may build an index on a large table: no statement timeout here.
        tx.batch_execute("SET LOCAL statement_timeout = 0").await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS smpp; \
             CREATE TABLE IF NOT EXISTS smpp.schema_migrations ( \
               version integer PRIMARY KEY, name text NOT NULL, \
               applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
        let applied: Vec<i32> = tx
            .query("SELECT version FROM smpp.schema_migrations", &[])
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let mut newly = Vec::new();
        for (version, name, sql) in MIGRATIONS {
            if applied.contains(version) {
                continue;
            }
            tx.batch_execute(sql)
                .await
                .map_err(|e| anyhow::anyhow!("migration {version} {name} failed: {e}"))?;
            tx.execute(
                "INSERT INTO smpp.schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
            newly.push(*version);
        }
        tx.commit().await?;
        // Statistics first, so receipt lookups use the index on a fresh table.
        client
            .batch_execute("ANALYZE smpp.message_correlations; ANALYZE ops.smpp_binds")
            .await?;
        Ok(newly)
    }
}

/// When `err` says the server refused our login (SQLSTATE class 28: a password, a
/// `pg_hba.conf` rule, a client certificate it requires): the configuration error to stop
/// startup with. Waiting does not change credentials.
pub fn login_refused(err: &anyhow::Error) -> Option<ConfigError> {
    // The pool's error and tokio-postgres's both name the server's error as their source,
    // so it is in the chain itself.
    let db_error = err
        .chain()
        .find_map(|cause| cause.downcast_ref::<tokio_postgres::error::DbError>())?;
    let code = db_error.code().code();
    if !code.starts_with("28") {
        return None;
    }
    let hint = if db_error.message().contains("certificate") {
        "; check sslcert and sslkey"
    } else {
        ""
    };
    Some(ConfigError {
        variable: env::DATABASE_URL,
        problem: format!(
            "was refused by the server: {} (SQLSTATE {code}){hint}",
            db_error.message()
        ),
    })
}

/// Run one call on a pooled connection within `deadline`. A connection that did not
/// answer in time may be wedged (a server or a network that stopped answering): it is
/// taken out of the pool and closed, never handed to the next call.
async fn within<T>(
    pool: &Pool,
    deadline: Duration,
    call: impl for<'c> FnOnce(&'c ClientWrapper) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
) -> Result<T, CorrelationError> {
    let client = pool.get().await?;
    match tokio::time::timeout(deadline, call(&client)).await {
        Ok(result) => Ok(result?),
        Err(_) => {
            drop(Object::take(client));
            Err(CorrelationError::Unavailable(format!(
                "no answer within {} ms",
                deadline.as_millis()
            )))
        }
    }
}

impl CorrelationStore for PgStore {
    fn insert(&self, rows: &[CorrelationRow]) -> BoxFuture<'static, Result<(), CorrelationError>> {
        let (pool, deadline) = (self.pool.clone(), self.deadline);
        let retention = self.retention_seconds;
        let n = rows.len();
        let mut message_ids = Vec::with_capacity(n);
        let mut segment_indexes = Vec::with_capacity(n);
        let mut segment_counts = Vec::with_capacity(n);
        let mut operator_ids = Vec::with_capacity(n);
        let mut directions = Vec::with_capacity(n);
        let mut bind_ids = Vec::with_capacity(n);
        let mut operator_message_ids = Vec::with_capacity(n);
        let mut submitted_ats = Vec::with_capacity(n);
        let mut concat_refs: Vec<Option<i32>> = Vec::with_capacity(n);
        let mut traceparents: Vec<Option<String>> = Vec::with_capacity(n);
        for row in rows {
            message_ids.push(row.message_id.clone());
            segment_indexes.push(i32::from(row.segment_index));
            segment_counts.push(i32::from(row.segment_count));
            operator_ids.push(row.bind.operator_id.as_str().to_owned());
            directions.push(row.bind.direction.as_str());
            bind_ids.push(i32::from(row.bind.bind_id));
            operator_message_ids.push(row.operator_message_id.clone());
            submitted_ats.push(row.submitted_at);
            concat_refs.push(row.concat_ref.map(i32::from));
            traceparents.push(row.traceparent.clone());
        }
        Box::pin(async move {
            // Idempotent (ON CONFLICT DO NOTHING): a batch whose commit was not confirmed
            // (a connection lost, a failover) is simply written again by its binds.
            within(&pool, deadline, move |client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(INSERT_ROWS).await?;
                    client
                        .execute(
                            &statement,
                            &[
                                &message_ids,
                                &segment_indexes,
                                &segment_counts,
                                &operator_ids,
                                &directions,
                                &bind_ids,
                                &operator_message_ids,
                                &submitted_ats,
                                &concat_refs,
                                &traceparents,
                                &retention,
                            ],
                        )
                        .await
                })
            })
            .await?;
            Ok(())
        })
    }

    fn apply_receipts(
        &self,
        receipts: Vec<(ReceiptKey, &'static str)>,
    ) -> BoxFuture<'static, Result<HashMap<ReceiptKey, ReceiptMatch>, CorrelationError>> {
        let (pool, deadline) = (self.pool.clone(), self.deadline);
        Box::pin(async move {
            let mut operators = Vec::with_capacity(receipts.len());
            let mut ids = Vec::with_capacity(receipts.len());
            let mut statuses = Vec::with_capacity(receipts.len());
            for (key, status) in receipts {
                operators.push(key.operator_id);
                ids.push(key.operator_message_id);
                statuses.push(status);
            }
            // Idempotent too: applied again, a receipt sets the same status on the same row
            // and returns it again.
            let rows = within(&pool, deadline, move |client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(APPLY_RECEIPTS).await?;
                    client
                        .query(&statement, &[&operators, &ids, &statuses])
                        .await
                })
            })
            .await?;
            // One row per receipt key: the statement picks the newest row itself.
            let now = Utc::now();
            Ok(rows
                .into_iter()
                .map(|row| {
                    let key = ReceiptKey {
                        operator_id: row.get(0),
                        operator_message_id: row.get(1),
                    };
                    // Submit (the row's time: submit_sm_resp ESME_ROK) → receipt matched.
                    let submitted_at: DateTime<Utc> = row.get(5);
                    if let Ok(age) = (now - submitted_at).to_std() {
                        metrics::histogram!(metric::SUBMIT_TO_RECEIPT, "mno" => key.operator_id.clone())
                            .record(age.as_secs_f64());
                    }
                    let matched = ReceiptMatch {
                        message_id: row.get(2),
                        segment_index: u16::try_from(row.get::<_, i32>(3)).unwrap_or(0),
                        segment_count: u16::try_from(row.get::<_, i32>(4)).unwrap_or(0),
                        traceparent: row.get(6),
                    };
                    (key, matched)
                })
                .collect())
        })
    }

    fn correlated_segments(
        &self,
        message_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<HashMap<String, Correlated>, CorrelationError>> {
        let (pool, deadline) = (self.pool.clone(), self.deadline);
        Box::pin(async move {
            let rows = within(&pool, deadline, move |client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(CORRELATED_SEGMENTS).await?;
                    client.query(&statement, &[&message_ids]).await
                })
            })
            .await?;
            let mut all: HashMap<String, Correlated> = HashMap::new();
            for row in &rows {
                let found = all.entry(row.get(0)).or_default();
                if let Ok(segment) = u16::try_from(row.get::<_, i32>(1)) {
                    found.segments.push(segment);
                }
                let concat_ref: Option<i32> = row.get(2);
                if let Some(value) = concat_ref.and_then(|v| u16::try_from(v).ok()) {
                    found.concat_ref = Some(value);
                }
            }
            for found in all.values_mut() {
                found.segments.sort_unstable();
            }
            Ok(all)
        })
    }

    fn sweep_expired(&self, batch: i64) -> BoxFuture<'static, Result<u64, CorrelationError>> {
        let (pool, deadline) = (self.pool.clone(), self.deadline);
        Box::pin(async move {
            within(&pool, deadline, move |client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(SWEEP_EXPIRED).await?;
                    client.execute(&statement, &[&batch]).await
                })
            })
            .await
        })
    }

    fn bind_settings(
        &self,
        key: BindKey,
    ) -> BoxFuture<'static, Result<Option<BindSettings>, CorrelationError>> {
        let (pool, deadline) = (self.pool.clone(), self.deadline);
        Box::pin(async move {
            let row = within(&pool, deadline, move |client| {
                Box::pin(async move {
                    let statement = client.prepare_cached(BIND_SETTINGS).await?;
                    client
                        .query_opt(
                            &statement,
                            &[
                                &key.operator_id.as_str(),
                                &key.direction.as_str(),
                                &i32::from(key.bind_id),
                            ],
                        )
                        .await
                })
            })
            .await?;
            Ok(row.map(|row| BindSettings {
                window: u32::try_from(row.get::<_, i32>(0)).unwrap_or(1).max(1),
                enabled: row.get(1),
            }))
        })
    }
}
