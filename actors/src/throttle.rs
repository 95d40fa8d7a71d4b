//! `ThrottleActor`: the service's Redis side (fred). Today it hands out blocks of outbound
//! concatenation references (`smpp:concat:ref:{operatorId}:{bindId}`, one `INCRBY` per
//! block, so long messages cost no Redis round trip each); the TPS sliding window and the
//! sequence-number blocks live here too as they arrive.
//!
//! Redis down never stops a submit: the caller falls back to a local counter and the
//! failure is counted (`smpp_connector_backend_errors_total{backend="redis"}`). The client
//! reconnects in the background; commands time out after a second instead of queueing.

use std::time::Duration;

use actix::prelude::*;
use fred::prelude::*;
use smpp_connector::config::BindKey;

use crate::telemetry::metric;

/// Connect a Redis client that keeps reconnecting in the background (never blocks startup).
pub fn connect(url: &str) -> anyhow::Result<Client> {
    let config = Config::from_url(url)
        .map_err(|e| anyhow::anyhow!("REDIS_URL is not a valid Redis URL: {e}"))?;
    let client = Builder::from_config(config)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .with_performance_config(|perf| {
            perf.default_command_timeout = Duration::from_secs(1);
        })
        .with_connection_config(|conn| {
            conn.connection_timeout = Duration::from_secs(2);
        })
        .build()
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    client.connect();
    Ok(client)
}

/// Key of a bind's concatenation reference counter.
pub fn concat_ref_key(key: &BindKey) -> String {
    format!("smpp:concat:ref:{}:{}", key.operator_id, key.bind_id)
}

/// Reserve `count` concatenation references for a bind. Answered with the first of the
/// block (the counter value before the increment plus one); the caller wraps them to 8
/// or 16 bits.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, String>")]
pub struct ReserveConcatRefs {
    pub key: BindKey,
    pub count: u32,
}

/// The Redis actor.
pub struct ThrottleActor {
    redis: Client,
}

impl std::fmt::Debug for ThrottleActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottleActor").finish_non_exhaustive()
    }
}

impl ThrottleActor {
    pub fn new(redis: Client) -> Self {
        ThrottleActor { redis }
    }
}

impl Actor for ThrottleActor {
    type Context = Context<Self>;
}

impl Handler<ReserveConcatRefs> for ThrottleActor {
    type Result = ResponseFuture<Result<u64, String>>;

    fn handle(&mut self, msg: ReserveConcatRefs, _ctx: &mut Context<Self>) -> Self::Result {
        let redis = self.redis.clone();
        Box::pin(async move {
            let last: i64 = redis
                .incr_by(concat_ref_key(&msg.key), i64::from(msg.count))
                .await
                .map_err(|e| {
                    metrics::counter!(metric::BACKEND_ERRORS, "backend" => "redis").increment(1);
                    e.to_string()
                })?;
            Ok((last as u64).saturating_sub(u64::from(msg.count)) + 1)
        })
    }
}
