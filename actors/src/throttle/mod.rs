//! `ThrottleActor`: the service's Redis side. It talks to Redis through a
//! [`ThrottleStore`] ([`RedisStore`], fred, in production; [`MemoryRedis`] in in-process
//! tests) and answers three requests, each one Redis round trip:
//!
//! - [`AcquireTps`] → [`TpsGrant`]: the operator's TPS sliding window (US-SC-012, SPEC §8)
//!   in the hash `tps:{operatorId}`, by the Lua script [`TPS_SCRIPT`];
//! - [`ReserveSequences`]: a block of sequence numbers from `smpp:seq:{op}:{dir}:{bindId}`;
//! - [`ReserveConcatRefs`]: a block of concatenation references from
//!   `smpp:concat:ref:{op}:{bindId}` (one script call per block, so long messages cost no
//!   Redis round trip each).
//!
//! Every key carries its operator as Redis Cluster hash tag (`{op}` is literal), so all of
//! an operator's keys share one slot and every script declares the keys it touches: the
//! same code runs on a standalone Redis, behind Sentinel and on Redis Cluster. Counters
//! never hand out a block twice: each reservation passes the highest value this process
//! was given as a floor ([`RESERVE_SCRIPT`]), and the first one reads the counter under its
//! name from before the hash tags, so the renamed counters start above the old ones.
//!
//! The arithmetic and the key names are in the pure crate
//! ([`smpp_connector::dispatch::throttle`]), which also states and proves the TPS bound.
//!
//! Redis down never stops traffic. TPS fails open, but never unlimited: each bind gets a
//! local token bucket at its operator's limit divided by `bindCount` (a bind runs on one
//! pod only, so the binds together stay within the limit, and a pod running several of an
//! operator's binds gets each one's share)
//! (`smpp_connector_tps_fail_open_total`, `smpp_connector_tps_fail_open{mno}` = 1 until
//! Redis answers again); for sequence numbers and references the caller falls back to a
//! local counter on the typed [`ThrottleError`]. Every failed call is counted in
//! `smpp_connector_backend_errors_total{backend="redis"}`; an outage logs one WARN when
//! it starts and one INFO when Redis answers again. The client reconnects in the
//! background; commands time out after [`COMMAND_TIMEOUT`] instead of queueing, and while
//! an outage lasts and the client is not connected calls fail at once without waiting.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use fred::prelude::*;
use fred::types::config::{TlsConfig, TlsConnector, TlsHostMapping};
use smpp_connector::backends::RedisTopology;
use smpp_connector::config::{BindKey, ConfigError, OperatorId, RedisSettings, env};
use smpp_connector::dispatch::throttle::{
    LocalLimiter, WINDOW, concat_message_key, concat_ref_block, counter_floor, legacy, seq_key,
    sequence_block, tps_key,
};

use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::internal_events::{Backend, BackendDown, BackendUp, emit};
use crate::telemetry::metric;

#[cfg(test)]
mod in_process_tests;
mod memory;
pub mod mo;
mod store;

pub use memory::MemoryRedis;
pub use smpp_connector::dispatch::throttle::concat_ref_key;
pub use store::{RedisStore, ThrottleStore};

/// How long one Redis command may take before it counts as failed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);

/// How long startup waits for the first Redis connection: long enough to see a certificate
/// refused, short enough that a Redis down at startup does not hold the service (it fails
/// open and the client keeps reconnecting).
const STARTUP_PROBE: Duration = Duration::from_secs(3);

/// Connect a Redis client (any of fred's URL forms: standalone, cluster, Sentinel; TLS
/// verified with `REDIS_TLS_*` for the `rediss` schemes) that keeps reconnecting in the
/// background. A certificate that does not verify stops startup; a Redis that does not
/// answer does not.
pub async fn connect(settings: &RedisSettings) -> anyhow::Result<Client> {
    let client = client(settings)?;
    let mut errors = client.error_rx();
    client.connect();
    let deadline = Instant::now() + STARTUP_PROBE;
    while !client.is_connected() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            tracing::warn!(url = %settings.display, "redis not reachable at startup; failing open until it answers");
            break;
        };
        if let Ok(Ok((err, _))) =
            tokio::time::timeout(left.min(Duration::from_millis(50)), errors.recv()).await
            && let Some(refused) =
                crate::tls::certificate_refused(&anyhow::Error::new(err), crate::tls::REDIS)
        {
            return Err(refused.into());
        }
    }
    Ok(client)
}

/// The client of `connect`, not connected yet.
pub fn client(settings: &RedisSettings) -> anyhow::Result<Client> {
    let mut config = Config::from_url(settings.url.expose()).map_err(|e| ConfigError {
        variable: env::REDIS_URL,
        problem: format!("is not a valid Redis URL: {}", e.details()),
    })?;
    config.tls = match &settings.tls {
        Some(files) => {
            let rustls = crate::tls::client_config(files, crate::tls::REDIS)?;
            let mut tls = TlsConfig::from(TlsConnector::from(rustls));
            if settings.topology == RedisTopology::Cluster {
                // Nodes announced by IP address are reached under the configured host's
                // name, which the certificate names (unless they announce host names).
                tls.hostnames = TlsHostMapping::DefaultHost;
            }
            Some(tls)
        }
        None => None,
    };
    Builder::from_config(config)
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
        .with_performance_config(|perf| {
            perf.default_command_timeout = COMMAND_TIMEOUT;
        })
        .with_connection_config(|conn| {
            conn.connection_timeout = Duration::from_secs(2);
        })
        .build()
        .map_err(|e| anyhow::anyhow!("REDIS_URL {}: {e}", settings.display))
}

/// The TPS sliding window, atomic in Redis (a script runs alone), so two pods can never
/// both take the last tokens. One `EVAL` per call (the script is short; Redis caches it).
///
/// Time is the server's (`TIME`): every pod then agrees on the window boundaries and the
/// offset into the window, whatever their clocks say. The operator's window is one hash,
/// `tps:{operatorId}` (its hash tag puts it in the operator's slot on Redis Cluster), the
/// one key the script declares: `w` the newest window's start, `c` its count, `p` the
/// count of the window before ([`smpp_connector::dispatch::throttle::tps_counts`] is the same roll
/// in Rust). A stored window ahead of this server's clock (a failover to a replica whose
/// clock is behind) is kept, so its grants still weigh.
///
/// KEYS: `tps:{operatorId}`. ARGV: limit, want. Returns `{granted, microseconds left in
/// the window}`. `granted` is `smpp_connector::dispatch::throttle::grantable` with the same
/// integers: the largest `g ≤ want` with
/// `previous × (10⁶ − µs) + (current + g) × 10⁶ ≤ limit × 10⁶` (exact in Lua's doubles
/// while the counts stay below 10⁹). The hash lives 3 s past its last grant.
pub const TPS_SCRIPT: &str = r#"
local now = redis.call('TIME')
local secs = tonumber(now[1])
local micros = tonumber(now[2])
local stored = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local w = tonumber(stored[1] or '0')
local current = tonumber(stored[2] or '0')
local previous = tonumber(stored[3] or '0')
if w < secs then
  if w + 1 == secs then previous = current else previous = 0 end
  current = 0
  w = secs
end
local limit = tonumber(ARGV[1])
local want = tonumber(ARGV[2])
local used = previous * (1000000 - micros) + current * 1000000
local cap = limit * 1000000
local granted = 0
if used < cap then
  granted = math.min(want, math.floor((cap - used) / 1000000))
end
if granted > 0 then
  redis.call('HSET', KEYS[1], 'w', w, 'c', current + granted, 'p', previous)
  redis.call('PEXPIRE', KEYS[1], 3000)
end
return {granted, 1000000 - micros}
"#;

/// A block from a counter (sequence numbers, concatenation references) that never goes
/// below what was handed out before: when the counter is under `floor` (a Redis that lost
/// writes in a failover or restarted empty, or a counter renamed), it is set to `floor`
/// first. KEYS: the counter. ARGV: count, floor. Returns the counter after the block.
pub const RESERVE_SCRIPT: &str = r#"
local floor = tonumber(ARGV[2])
if floor > 0 then
  local value = tonumber(redis.call('GET', KEYS[1]) or '0')
  if value < floor then redis.call('SET', KEYS[1], floor) end
end
return redis.call('INCRBY', KEYS[1], ARGV[1])
"#;

/// Why a Redis request failed (the caller falls back to its local counter or limiter).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ThrottleError {
    /// An outage is known and the client is not connected: nothing was sent.
    #[error("redis not connected")]
    NotConnected,
    /// The command was sent and no answer came within [`COMMAND_TIMEOUT`].
    #[error("redis command timed out after {after:?}")]
    Timeout { after: Duration },
    /// Redis or the connection answered with an error (refused, reset, script error…).
    #[error("redis unavailable: {source}")]
    Unavailable {
        #[source]
        source: fred::error::Error,
    },
}

impl From<fred::error::Error> for ThrottleError {
    fn from(source: fred::error::Error) -> Self {
        match source.kind() {
            fred::error::ErrorKind::Timeout => ThrottleError::Timeout {
                after: COMMAND_TIMEOUT,
            },
            _ => ThrottleError::Unavailable { source },
        }
    }
}

/// Ask for up to `want` submits of the bind's operator under its `limit` (TPS, shared by
/// every bind on every pod). `live_binds` (the operator's `bindCount`) sizes the bind's
/// local limiter used if Redis is down: `limit ÷ live_binds` per bind.
#[derive(Debug, Clone, Message)]
#[rtype(result = "TpsGrant")]
pub struct AcquireTps {
    pub bind: BindKey,
    pub limit: u32,
    pub want: u32,
    pub live_binds: u32,
}

/// The answer to [`AcquireTps`]. Never an error: Redis down means `fail_open` and a grant
/// from the local limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TpsGrant {
    /// Tokens granted, `0..=want`; `want − granted` were refused (ask again later).
    pub granted: u32,
    /// Spend the tokens within this time from the answer: the rest of the current window
    /// (server time), or one window when failing open. The bound of
    /// [`smpp_connector::dispatch::throttle`] counts them in the window they were granted in.
    pub valid_for: Duration,
    /// True when Redis did not answer and the local limiter decided.
    pub fail_open: bool,
}

/// Reserve `count` sequence numbers for a bind: `(first, len)`, the numbers
/// `first..first + len` in `1..=0x7FFF_FFFF`. `len < count` when the block reached
/// 0x7FFF_FFFF and was cut there (see [`smpp_connector::dispatch::throttle::sequence_block`]); use
/// `SequenceNumbers::from_block(first, len)`.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(u32, u32), ThrottleError>")]
pub struct ReserveSequences {
    pub key: BindKey,
    pub count: u32,
}

/// Reserve `count` concatenation references for a bind. Answered with the first of the
/// block (the counter value before the increment plus one); the caller wraps them to 8
/// or 16 bits.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<u64, ThrottleError>")]
pub struct ReserveConcatRefs {
    pub key: BindKey,
    pub count: u32,
}

/// The Redis actor.
pub struct ThrottleActor {
    redis: Arc<dyn ThrottleStore>,
    /// Legacy MO indexes are not scanned on Redis Cluster (never served under old names).
    topology: RedisTopology,
    /// When the current outage started; `None` while Redis answers. Tokio's clock (the
    /// system's in production), so a test's paused clock measures it too.
    outage: Option<tokio::time::Instant>,
    /// Per-bind limiters for failing open (kept between outages).
    local: HashMap<BindKey, LocalLimiter>,
    /// Operators whose `smpp_connector_tps_fail_open` gauge is 1.
    failing_open: HashSet<OperatorId>,
    /// The last value each counter gave this process (its floor for the next block);
    /// present once the counter's legacy name has been read.
    floors: HashMap<String, i64>,
    health: ActorHealth,
}

impl std::fmt::Debug for ThrottleActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThrottleActor")
            .field("outage", &self.outage)
            .field("failing_open", &self.failing_open)
            .finish_non_exhaustive()
    }
}

impl ThrottleActor {
    /// Over `redis`: `RedisStore::shared(client)` in production.
    pub fn new(redis: Arc<dyn ThrottleStore>, topology: RedisTopology) -> Self {
        ThrottleActor {
            redis,
            topology,
            outage: None,
            local: HashMap::new(),
            failing_open: HashSet::new(),
            floors: HashMap::new(),
            health: ActorHealth::new("throttle", None),
        }
    }

    /// Run one Redis call and note its outcome for the outage log and the error count.
    fn call<T, F, Fut>(
        &self,
        call: F,
    ) -> impl ActorFuture<Self, Output = Result<T, ThrottleError>> + use<T, F, Fut>
    where
        T: 'static,
        F: FnOnce(Arc<dyn ThrottleStore>) -> Fut + 'static,
        Fut: Future<Output = Result<T, ThrottleError>> + 'static,
    {
        // During an outage, do not wait a command timeout per call while fred reconnects.
        let send = self.outage.is_none() || self.redis.is_connected();
        let redis = self.redis.clone();
        async move {
            if !send {
                return Err(ThrottleError::NotConnected);
            }
            call(redis).await
        }
        .into_actor(self)
        .map(|result, act: &mut Self, _ctx| {
            match &result {
                Ok(_) => act.handle_redis_answered(),
                Err(err) => act.handle_redis_failed(err),
            }
            result
        })
    }

    fn handle_redis_answered(&mut self) {
        let since = self.outage.take();
        emit(BackendUp {
            backend: Backend::Redis,
            ends: since.is_some(),
            what: "redis answers again",
            down_for: since.map(|since| since.elapsed()),
        });
        if since.is_some() {
            // The budget is Redis's again for every operator, with traffic or not.
            for operator in self.failing_open.drain() {
                metrics::gauge!(metric::TPS_FAIL_OPEN, "mno" => operator.to_string()).set(0.0);
            }
        }
    }

    fn handle_redis_failed(&mut self, err: &ThrottleError) {
        let starts = self.outage.is_none();
        if starts {
            self.outage = Some(tokio::time::Instant::now());
        }
        emit(BackendDown {
            backend: Backend::Redis,
            starts,
            what: "redis unavailable, failing open",
            error: err,
            batch: None,
        });
    }

    fn grant_from_redis(&mut self, msg: &AcquireTps, granted: i64, left_us: i64) -> TpsGrant {
        if self.failing_open.remove(&msg.bind.operator_id) {
            metrics::gauge!(metric::TPS_FAIL_OPEN, "mno" => msg.bind.operator_id.to_string())
                .set(0.0);
        }
        TpsGrant {
            granted: granted.clamp(0, i64::from(msg.want)) as u32,
            valid_for: Duration::from_micros(left_us.clamp(0, 1_000_000) as u64),
            fail_open: false,
        }
    }

    fn grant_locally(&mut self, msg: &AcquireTps) -> TpsGrant {
        // Tokio's clock is the system's in production; a test's paused clock refills the
        // bucket as it advances.
        let now = tokio::time::Instant::now().into_std();
        let bucket = self
            .local
            .entry(msg.bind.clone())
            .or_insert_with(|| LocalLimiter::new(msg.limit, msg.live_binds, now));
        bucket.set_rate(msg.limit, msg.live_binds);
        let granted = bucket.take(now, msg.want);
        let mno = msg.bind.operator_id.to_string();
        metrics::counter!(metric::TPS_FAIL_OPEN_TOTAL, "mno" => mno.clone()).increment(1);
        if self.failing_open.insert(msg.bind.operator_id.clone()) {
            metrics::gauge!(metric::TPS_FAIL_OPEN, "mno" => mno).set(1.0);
        }
        TpsGrant {
            granted,
            valid_for: WINDOW,
            fail_open: true,
        }
    }
}

impl Actor for ThrottleActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.health.started(ctx);
    }
}

impl Handler<Probe> for ThrottleActor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        self.health.probed(&probe);
    }
}

impl Handler<AcquireTps> for ThrottleActor {
    type Result = ResponseActFuture<Self, TpsGrant>;

    fn handle(&mut self, msg: AcquireTps, _ctx: &mut Context<Self>) -> Self::Result {
        let _timer = self.health.time();
        let key = tps_key(&msg.bind.operator_id);
        let (limit, want) = (msg.limit, msg.want);
        let eval = self.call(move |redis| redis.acquire_tps(key, limit, want));
        Box::pin(eval.map(move |result, act, _ctx| {
            let grant = match result {
                Ok((granted, left_us)) => act.grant_from_redis(&msg, granted, left_us),
                Err(_) => act.grant_locally(&msg),
            };
            let refused = msg.want.saturating_sub(grant.granted);
            if refused > 0 {
                metrics::counter!(metric::TPS_THROTTLED, "mno" => msg.bind.operator_id.to_string())
                    .increment(u64::from(refused));
            }
            grant
        }))
    }
}

impl ThrottleActor {
    /// `INCRBY count` on `key` through [`RESERVE_SCRIPT`], never below what the counter
    /// gave this process, nor (the first time) below the counter under its legacy name.
    fn reserve(
        &mut self,
        key: String,
        legacy: String,
        count: u32,
    ) -> impl ActorFuture<Self, Output = Result<i64, ThrottleError>> + use<> {
        let known = self.floors.get(&key).copied();
        let reserve = self.call(move |redis| async move {
            let legacy_value = match known {
                Some(_) => None,
                None => redis.get_integer(legacy).await?,
            };
            let floor = counter_floor(known, legacy_value);
            let last = redis.reserve(key.clone(), count, floor).await?;
            Ok((key, last))
        });
        reserve.map(|result, act: &mut Self, _ctx| {
            result.map(|(key, last)| {
                let floor = act.floors.entry(key).or_insert(last);
                *floor = (*floor).max(last);
                last
            })
        })
    }
}

impl Handler<ReserveSequences> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<(u32, u32), ThrottleError>>;

    fn handle(&mut self, msg: ReserveSequences, _ctx: &mut Context<Self>) -> Self::Result {
        let count = msg.count;
        let reserve = self.reserve(seq_key(&msg.key), legacy::seq_key(&msg.key), count);
        Box::pin(
            reserve.map(move |result, _act, _ctx| result.map(|last| sequence_block(last, count))),
        )
    }
}

impl Handler<ReserveConcatRefs> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<u64, ThrottleError>>;

    fn handle(&mut self, msg: ReserveConcatRefs, _ctx: &mut Context<Self>) -> Self::Result {
        let count = msg.count;
        let reserve = self.reserve(
            concat_ref_key(&msg.key),
            legacy::concat_ref_key(&msg.key),
            count,
        );
        Box::pin(
            reserve.map(move |result, _act, _ctx| result.map(|last| concat_ref_block(last, count))),
        )
    }
}

/// Remember the concatenation reference of a long message's first delivery, so that a
/// redelivery with no correlation row yet (every part was in flight when the session or
/// the process died) sends its parts under the same reference. The bind sends no part
/// before this answers: 72 h TTL.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<(), ThrottleError>")]
pub struct RememberConcatRef {
    pub operator_id: OperatorId,
    pub message_id: String,
    pub reference: u16,
}

/// The reference [`RememberConcatRef`] stored for a message, if any.
#[derive(Debug, Clone, Message)]
#[rtype(result = "Result<Option<u16>, ThrottleError>")]
pub struct RecallConcatRef {
    pub operator_id: OperatorId,
    pub message_id: String,
}

/// TTL of a remembered reference: the correlation rows' 72 hours.
pub const CONCAT_MESSAGE_TTL: Duration = Duration::from_secs(72 * 3600);

impl Handler<RememberConcatRef> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<(), ThrottleError>>;

    fn handle(&mut self, msg: RememberConcatRef, _ctx: &mut Context<Self>) -> Self::Result {
        let key = concat_message_key(&msg.operator_id, &msg.message_id);
        let reference = i64::from(msg.reference);
        let set = self.call(move |redis| redis.set_expiring(key, reference, CONCAT_MESSAGE_TTL));
        Box::pin(set)
    }
}

impl Handler<RecallConcatRef> for ThrottleActor {
    type Result = ResponseActFuture<Self, Result<Option<u16>, ThrottleError>>;

    fn handle(&mut self, msg: RecallConcatRef, _ctx: &mut Context<Self>) -> Self::Result {
        let key = concat_message_key(&msg.operator_id, &msg.message_id);
        let legacy = legacy::concat_message_key(&msg.operator_id, &msg.message_id);
        // A message first delivered by a version before the hash tags remembered its
        // reference under the old name (for the 72 hours it lives).
        let get = self.call(move |redis| async move {
            match redis.get_integer(key).await? {
                Some(value) => Ok(Some(value)),
                None => redis.get_integer(legacy).await,
            }
        });
        Box::pin(get.map(|result, _act, _ctx| {
            result.map(|value| value.and_then(|v| u16::try_from(v).ok()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use smpp_connector::config::Direction;

    use super::*;

    fn ask(operator: &OperatorId, bind_id: u16) -> AcquireTps {
        AcquireTps {
            bind: BindKey::new(operator.clone(), Direction::Trx, bind_id),
            limit: 100,
            want: 100,
            live_binds: 4,
        }
    }

    /// Redis down: each bind fails open at its own share (limit ÷ bindCount), so a pod
    /// running two of the operator's four binds may send half the limit. Before, the
    /// operator's binds on one pod shared a single share between them.
    #[actix_rt::test]
    async fn failing_open_each_bind_gets_its_share_of_the_limit() {
        // Nothing listens on port 1: every call fails.
        let settings =
            RedisSettings::parse("redis://127.0.0.1:1", Default::default()).expect("settings");
        let redis = client(&settings).expect("client");
        redis.connect();
        let throttle = ThrottleActor::new(RedisStore::shared(redis), settings.topology).start();
        let operator = OperatorId::try_new("opfailopen").expect("operator id");
        let first = throttle.send(ask(&operator, 0)).await.expect("answer");
        let second = throttle.send(ask(&operator, 1)).await.expect("answer");
        assert!(first.fail_open && second.fail_open);
        assert_eq!((first.granted, second.granted), (25, 25));
        // Another operator's bind has a bucket of its own too.
        let other = OperatorId::try_new("opother").expect("operator id");
        assert_eq!(
            throttle.send(ask(&other, 0)).await.expect("answer").granted,
            25
        );
    }
}
