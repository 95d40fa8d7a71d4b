//! What [`ThrottleActor`] asks of Redis, as operations: [`ThrottleStore`]. Each operation
//! is one Redis round trip (one command or one script), so the actor keeps deciding how
//! calls combine (a counter's legacy floor read before its first block, the expiry
//! scan's two steps, the recall of a reference under its legacy name), counts failures,
//! logs outages and fails open, whatever answers below it.
//!
//! [`RedisStore`] is the real one (fred: the scripts of [`super`] and [`super::mo`], the
//! same keys, timeouts and errors as before the trait); [`super::MemoryRedis`] is the
//! same semantics in memory, for in-process tests under a paused clock.
//!
//! [`ThrottleActor`]: super::ThrottleActor

use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;
use fred::types::Value;
use futures::future::BoxFuture;

use super::ThrottleError;
use super::mo::{
    CLAIM_SCRIPT, Claimed, DUE_SCRIPT, FINISH_SCRIPT, MoPartWrite, STORE_SCRIPT, Stored,
    parse_claimed, parse_due, parse_stored,
};
use super::{RESERVE_SCRIPT, TPS_SCRIPT};

/// The Redis operations behind [`super::ThrottleActor`]; [`RedisStore`] is the real one.
/// Every future is `'static` (the actor awaits it outside its own borrow).
pub trait ThrottleStore: Send + Sync + 'static {
    /// False when the client knows it is not connected: during an outage the actor then
    /// fails a call at once instead of waiting a command timeout per call.
    fn is_connected(&self) -> bool;

    /// [`super::TPS_SCRIPT`] on `key` (`tps:{op}`): `(granted, microseconds left in the
    /// window)`.
    fn acquire_tps(
        &self,
        key: String,
        limit: u32,
        want: u32,
    ) -> BoxFuture<'static, Result<(i64, i64), ThrottleError>>;

    /// `GET key` as an integer (a counter under its legacy name, a remembered reference).
    fn get_integer(&self, key: String) -> BoxFuture<'static, Result<Option<i64>, ThrottleError>>;

    /// [`super::RESERVE_SCRIPT`]: `INCRBY count` on `key`, first raised to `floor` if
    /// below it. The counter after the block.
    fn reserve(
        &self,
        key: String,
        count: u32,
        floor: i64,
    ) -> BoxFuture<'static, Result<i64, ThrottleError>>;

    /// `SET key value EX ttl`.
    fn set_expiring(
        &self,
        key: String,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>>;

    /// [`super::mo::STORE_SCRIPT`].
    fn store_mo_part(&self, part: MoPartWrite)
    -> BoxFuture<'static, Result<Stored, ThrottleError>>;

    /// [`super::mo::FINISH_SCRIPT`]: out of `index_key`, the hash kept `keep` as a
    /// tombstone marked complete (`c`) or partial (`p`).
    fn finish_mo(
        &self,
        hash_key: String,
        index_key: String,
        complete: bool,
        keep: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>>;

    /// [`super::mo::DUE_SCRIPT`]: `(messages listed in index_key, up to limit of them
    /// whose window ended)`.
    fn due_mo(
        &self,
        index_key: String,
        limit: u32,
    ) -> BoxFuture<'static, Result<(u64, Vec<String>), ThrottleError>>;

    /// [`super::mo::CLAIM_SCRIPT`]: claim the `due` messages (still listed and still due)
    /// for `lease`.
    fn claim_mo(
        &self,
        index_key: String,
        due: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'static, Result<Claimed, ThrottleError>>;
}

/// A duration as the scripts' millisecond arguments take it (at least 1: `PEXPIRE 0`
/// would delete the key).
pub(super) fn millis(d: Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// The real [`ThrottleStore`]: fred, one command or `EVAL` per operation.
#[derive(Clone)]
pub struct RedisStore {
    client: Client,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("connected", &self.client.is_connected())
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Over a client from [`super::connect`] (or [`super::client`], connected by the
    /// caller).
    pub fn new(client: Client) -> Self {
        RedisStore { client }
    }

    /// As the actor holds it.
    pub fn shared(client: Client) -> Arc<dyn ThrottleStore> {
        Arc::new(RedisStore::new(client))
    }

    /// Run one fred call on a clone of the client, its error typed.
    fn run<T, F, Fut>(&self, call: F) -> BoxFuture<'static, Result<T, ThrottleError>>
    where
        T: Send + 'static,
        F: FnOnce(Client) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, fred::error::Error>> + Send + 'static,
    {
        let client = self.client.clone();
        Box::pin(async move { call(client).await.map_err(ThrottleError::from) })
    }
}

impl ThrottleStore for RedisStore {
    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn acquire_tps(
        &self,
        key: String,
        limit: u32,
        want: u32,
    ) -> BoxFuture<'static, Result<(i64, i64), ThrottleError>> {
        let args = vec![limit.to_string(), want.to_string()];
        self.run(move |redis| async move {
            redis
                .eval::<(i64, i64), _, _, _>(TPS_SCRIPT, vec![key], args)
                .await
        })
    }

    fn get_integer(&self, key: String) -> BoxFuture<'static, Result<Option<i64>, ThrottleError>> {
        self.run(move |redis| async move { redis.get::<Option<i64>, _>(key).await })
    }

    fn reserve(
        &self,
        key: String,
        count: u32,
        floor: i64,
    ) -> BoxFuture<'static, Result<i64, ThrottleError>> {
        self.run(move |redis| async move {
            redis
                .eval::<i64, _, _, _>(RESERVE_SCRIPT, vec![key], vec![i64::from(count), floor])
                .await
        })
    }

    fn set_expiring(
        &self,
        key: String,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>> {
        let seconds = ttl.as_secs().max(1) as i64;
        self.run(move |redis| async move {
            redis
                .set::<(), _, _>(key, value, Some(Expiration::EX(seconds)), None, false)
                .await
        })
    }

    fn store_mo_part(
        &self,
        part: MoPartWrite,
    ) -> BoxFuture<'static, Result<Stored, ThrottleError>> {
        let keys = vec![part.hash_key, part.index_key];
        let args: Vec<Value> = vec![
            part.seq.to_string().into(),
            Value::Bytes(part.value.into()),
            part.meta.into(),
            millis(part.window).to_string().into(),
            part.total.to_string().into(),
            millis(part.keep_open).to_string().into(),
        ];
        self.run(move |redis| async move {
            let reply = redis
                .eval::<Value, _, _, _>(STORE_SCRIPT, keys, args)
                .await?;
            parse_stored(reply)
        })
    }

    fn finish_mo(
        &self,
        hash_key: String,
        index_key: String,
        complete: bool,
        keep: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>> {
        let state = if complete { "c" } else { "p" };
        let args = vec![state.to_owned(), millis(keep).to_string()];
        self.run(move |redis| async move {
            redis
                .eval::<i64, _, _, _>(FINISH_SCRIPT, vec![hash_key, index_key], args)
                .await
                .map(|_| ())
        })
    }

    fn due_mo(
        &self,
        index_key: String,
        limit: u32,
    ) -> BoxFuture<'static, Result<(u64, Vec<String>), ThrottleError>> {
        self.run(move |redis| async move {
            let reply = redis
                .eval::<Value, _, _, _>(DUE_SCRIPT, vec![index_key], vec![limit])
                .await?;
            parse_due(reply)
        })
    }

    fn claim_mo(
        &self,
        index_key: String,
        due: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'static, Result<Claimed, ThrottleError>> {
        let mut keys = Vec::with_capacity(due.len() + 1);
        keys.push(index_key);
        keys.extend(due);
        let args = vec![millis(lease).to_string()];
        self.run(move |redis| async move {
            let reply = redis
                .eval::<Value, _, _, _>(CLAIM_SCRIPT, keys, args)
                .await?;
            parse_claimed(reply)
        })
    }
}
