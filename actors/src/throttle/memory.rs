//! `MemoryRedis`: the [`ThrottleStore`] in memory, with the semantics of the scripts
//! [`RedisStore`] runs: the TPS sliding window per operator (the same grant arithmetic,
//! `smpp_connector::dispatch::throttle::{tps_counts, grantable}`), counters raised to their floor
//! before a block, remembered references with their TTL, and the MO parts store (hashes,
//! open indexes scored by the end of their window, claims with a lease, tombstones).
//!
//! The data is held as Redis holds it (strings, hashes in insertion order, sorted sets,
//! a TTL per key), and each operation is a line-by-line reading of its script, so what a
//! test sees is what Redis would answer. Redis's server time is tokio's clock: a paused
//! test clock drives windows, TTLs, concatenation windows and leases with
//! `tokio::time::advance`. It starts at a whole second of server time, so a test knows
//! where in the TPS window it is.
//!
//! An outage ([`MemoryRedis::set_down`]) fails every call as a refused connection does,
//! and the client then says it is not connected, as fred's does while it reconnects.
//!
//! [`RedisStore`]: super::RedisStore

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use smpp_connector::dispatch::throttle::{grantable, tps_counts};
use smpp_connector::inbound::reassembly::{StoredMessage, field};
use tokio::time::Instant;

use super::ThrottleError;
use super::mo::{Claimed, MoPartWrite, Stored};
use super::store::{ThrottleStore, millis};

/// Where server time starts (seconds since the Unix epoch): a whole second.
const EPOCH_SECONDS: u64 = 1_700_000_000;

/// How long the TPS hash lives past its last grant (`PEXPIRE … 3000` in the script).
const TPS_HASH_TTL: Duration = Duration::from_millis(3000);

/// A hash's fields in insertion order (a small Redis hash is a listpack: `HGETALL`
/// answers in that order).
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// One key's value.
#[derive(Debug, Clone)]
enum Data {
    Text(Vec<u8>),
    Hash(Fields),
    /// Member → score (scores are milliseconds of server time, integers).
    Sorted(HashMap<String, i64>),
}

#[derive(Debug, Clone)]
struct Entry {
    data: Data,
    expires: Option<Instant>,
}

#[derive(Debug, Default)]
struct Inner {
    keys: HashMap<String, Entry>,
    down: bool,
    /// Operations asked (failed ones included), for tests counting round trips.
    calls: u64,
}

/// Redis, in memory (see the module doc). Clones share the data.
#[derive(Clone)]
pub struct MemoryRedis {
    inner: Arc<Mutex<Inner>>,
    /// Tokio's instant at which server time was [`EPOCH_SECONDS`].
    epoch: Instant,
}

impl std::fmt::Debug for MemoryRedis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryRedis").finish_non_exhaustive()
    }
}

impl Default for MemoryRedis {
    fn default() -> Self {
        MemoryRedis::new()
    }
}

impl MemoryRedis {
    /// An empty Redis whose server time is now a whole second.
    pub fn new() -> Self {
        MemoryRedis {
            inner: Arc::default(),
            epoch: Instant::now(),
        }
    }

    /// As [`super::ThrottleActor::new`] takes it.
    pub fn shared(&self) -> Arc<dyn ThrottleStore> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Redis goes away (`true`: every call fails as a refused connection) or comes back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Operations asked so far, failed ones included.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Redis restarted empty (or a failover lost its writes): every key is gone.
    pub fn flush_all(&self) {
        self.lock().keys.clear();
    }

    /// `SET key value` (a counter under its legacy name, written by an earlier version).
    pub fn set_integer(&self, key: &str, value: i64) {
        self.lock().keys.insert(
            key.to_owned(),
            Entry {
                data: Data::Text(value.to_string().into_bytes()),
                expires: None,
            },
        );
    }

    /// Whether `key` exists now (not expired).
    pub fn exists(&self, key: &str) -> bool {
        let now = Instant::now();
        self.lock().live(key, now).is_some()
    }

    /// The fields of a hash as they are now (empty when there is none).
    pub fn hash_fields(&self, key: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
        let now = Instant::now();
        self.lock().hgetall(key, now).unwrap_or_default()
    }

    /// Server time now, as `TIME` answers it.
    fn time(&self) -> Duration {
        Duration::from_secs(EPOCH_SECONDS) + Instant::now().saturating_duration_since(self.epoch)
    }

    /// Server time in milliseconds, as the MO scripts compute it from `TIME`.
    fn time_ms(&self) -> i64 {
        let t = self.time();
        (t.as_secs() * 1000 + u64::from(t.subsec_millis())) as i64
    }

    /// One operation: counted, refused while down, otherwise run on the data.
    fn op<T: Send + 'static>(
        &self,
        run: impl FnOnce(&mut Inner, Instant) -> Result<T, ThrottleError>,
    ) -> BoxFuture<'static, Result<T, ThrottleError>> {
        let now = Instant::now();
        let result = {
            let mut inner = self.lock();
            inner.calls += 1;
            if inner.down {
                Err(refused())
            } else {
                run(&mut inner, now)
            }
        };
        Box::pin(futures::future::ready(result))
    }
}

/// What fred answers while nothing listens.
fn refused() -> ThrottleError {
    ThrottleError::Unavailable {
        source: fred::error::Error::new(
            fred::error::ErrorKind::IO,
            "Connection refused (os error 111) (in-memory Redis down)",
        ),
    }
}

/// What Redis answers a command on a key of another type.
fn wrong_type() -> ThrottleError {
    ThrottleError::Unavailable {
        source: fred::error::Error::new(
            fred::error::ErrorKind::InvalidArgument,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
        ),
    }
}

fn not_an_integer() -> ThrottleError {
    ThrottleError::Unavailable {
        source: fred::error::Error::new(
            fred::error::ErrorKind::Parse,
            "ERR value is not an integer or out of range",
        ),
    }
}

impl Inner {
    /// The key's entry unless it expired (an expired key is removed, as Redis does when
    /// it is touched).
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self
            .keys
            .get(key)
            .is_some_and(|e| e.expires.is_some_and(|at| at <= now))
        {
            self.keys.remove(key);
        }
        self.keys.get_mut(key)
    }

    fn exists(&mut self, key: &str, now: Instant) -> bool {
        self.live(key, now).is_some()
    }

    fn get_integer(&mut self, key: &str, now: Instant) -> Result<Option<i64>, ThrottleError> {
        match self.live(key, now).map(|e| &e.data) {
            None => Ok(None),
            Some(Data::Text(bytes)) => std::str::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(not_an_integer),
            Some(_) => Err(wrong_type()),
        }
    }

    /// `SET key value` (drops any TTL, as `SET` does).
    fn set_integer(&mut self, key: &str, value: i64, expires: Option<Instant>) {
        self.keys.insert(
            key.to_owned(),
            Entry {
                data: Data::Text(value.to_string().into_bytes()),
                expires,
            },
        );
    }

    /// `INCRBY key by` (keeps the TTL).
    fn incr_by(&mut self, key: &str, by: i64, now: Instant) -> Result<i64, ThrottleError> {
        let value = self.get_integer(key, now)?.unwrap_or(0) + by;
        let expires = self.live(key, now).and_then(|e| e.expires);
        self.set_integer(key, value, expires);
        Ok(value)
    }

    fn hash(&mut self, key: &str, now: Instant) -> Result<Option<&mut Fields>, ThrottleError> {
        match self.live(key, now).map(|e| &mut e.data) {
            None => Ok(None),
            Some(Data::Hash(fields)) => Ok(Some(fields)),
            Some(_) => Err(wrong_type()),
        }
    }

    fn hget(
        &mut self,
        key: &str,
        name: &[u8],
        now: Instant,
    ) -> Result<Option<Vec<u8>>, ThrottleError> {
        Ok(self.hash(key, now)?.and_then(|fields| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        }))
    }

    /// `HSET key name value …` (creates the hash).
    fn hset(
        &mut self,
        key: &str,
        pairs: &[(&[u8], &[u8])],
        now: Instant,
    ) -> Result<(), ThrottleError> {
        if self.hash(key, now)?.is_none() {
            self.keys.insert(
                key.to_owned(),
                Entry {
                    data: Data::Hash(Vec::new()),
                    expires: None,
                },
            );
        }
        let fields = self.hash(key, now)?.expect("just created");
        for (name, value) in pairs {
            match fields.iter_mut().find(|(n, _)| n == name) {
                Some((_, v)) => *v = value.to_vec(),
                None => fields.push((name.to_vec(), value.to_vec())),
            }
        }
        Ok(())
    }

    fn hgetall(&mut self, key: &str, now: Instant) -> Result<Fields, ThrottleError> {
        Ok(self.hash(key, now)?.cloned().unwrap_or_default())
    }

    fn pexpire(&mut self, key: &str, ttl: Duration, now: Instant) {
        if let Some(entry) = self.live(key, now) {
            entry.expires = Some(now + ttl);
        }
    }

    fn sorted(
        &mut self,
        key: &str,
        now: Instant,
    ) -> Result<Option<&mut HashMap<String, i64>>, ThrottleError> {
        match self.live(key, now).map(|e| &mut e.data) {
            None => Ok(None),
            Some(Data::Sorted(members)) => Ok(Some(members)),
            Some(_) => Err(wrong_type()),
        }
    }

    fn zadd(
        &mut self,
        key: &str,
        score: i64,
        member: &str,
        now: Instant,
    ) -> Result<(), ThrottleError> {
        if self.sorted(key, now)?.is_none() {
            self.keys.insert(
                key.to_owned(),
                Entry {
                    data: Data::Sorted(HashMap::new()),
                    expires: None,
                },
            );
        }
        self.sorted(key, now)?
            .expect("just created")
            .insert(member.to_owned(), score);
        Ok(())
    }

    /// `ZREM key member`; an emptied set is removed, as Redis does.
    fn zrem(&mut self, key: &str, member: &str, now: Instant) -> Result<(), ThrottleError> {
        if let Some(members) = self.sorted(key, now)? {
            members.remove(member);
            if members.is_empty() {
                self.keys.remove(key);
            }
        }
        Ok(())
    }

    fn zcard(&mut self, key: &str, now: Instant) -> Result<u64, ThrottleError> {
        Ok(self.sorted(key, now)?.map_or(0, |m| m.len() as u64))
    }

    fn zscore(
        &mut self,
        key: &str,
        member: &str,
        now: Instant,
    ) -> Result<Option<i64>, ThrottleError> {
        Ok(self.sorted(key, now)?.and_then(|m| m.get(member).copied()))
    }
}

impl ThrottleStore for MemoryRedis {
    fn is_connected(&self) -> bool {
        !self.lock().down
    }

    fn acquire_tps(
        &self,
        key: String,
        limit: u32,
        want: u32,
    ) -> BoxFuture<'static, Result<(i64, i64), ThrottleError>> {
        let time = self.time();
        self.op(move |inner, now| {
            let (secs, micros) = (time.as_secs(), time.subsec_micros());
            let number = |inner: &mut Inner, name: &[u8]| -> Result<u64, ThrottleError> {
                Ok(inner
                    .hget(&key, name, now)?
                    .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                    .unwrap_or(0))
            };
            let (w, c, p) = (
                number(inner, b"w")?,
                number(inner, b"c")?,
                number(inner, b"p")?,
            );
            let counts = tps_counts(w, c, p, secs);
            let granted = grantable(
                limit,
                counts.previous,
                counts.current,
                Duration::from_micros(u64::from(micros)),
                want,
            );
            if granted > 0 {
                let (w, c, p) = (
                    counts.window.to_string(),
                    (counts.current + u64::from(granted)).to_string(),
                    counts.previous.to_string(),
                );
                inner.hset(
                    &key,
                    &[
                        (b"w", w.as_bytes()),
                        (b"c", c.as_bytes()),
                        (b"p", p.as_bytes()),
                    ],
                    now,
                )?;
                inner.pexpire(&key, TPS_HASH_TTL, now);
            }
            Ok((i64::from(granted), 1_000_000 - i64::from(micros)))
        })
    }

    fn get_integer(&self, key: String) -> BoxFuture<'static, Result<Option<i64>, ThrottleError>> {
        self.op(move |inner, now| inner.get_integer(&key, now))
    }

    fn reserve(
        &self,
        key: String,
        count: u32,
        floor: i64,
    ) -> BoxFuture<'static, Result<i64, ThrottleError>> {
        self.op(move |inner, now| {
            if floor > 0 {
                let value = inner.get_integer(&key, now)?.unwrap_or(0);
                if value < floor {
                    inner.set_integer(&key, floor, None);
                }
            }
            inner.incr_by(&key, i64::from(count), now)
        })
    }

    fn set_expiring(
        &self,
        key: String,
        value: i64,
        ttl: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>> {
        // `EX` takes whole seconds, as RedisStore sends it.
        let ttl = Duration::from_secs(ttl.as_secs().max(1));
        self.op(move |inner, now| {
            inner.set_integer(&key, value, Some(now + ttl));
            Ok(())
        })
    }

    fn store_mo_part(
        &self,
        part: MoPartWrite,
    ) -> BoxFuture<'static, Result<Stored, ThrottleError>> {
        let now_ms = self.time_ms();
        self.op(move |inner, now| {
            let key = part.hash_key.as_str();
            let seq = part.seq.to_string();
            let seq = seq.as_bytes();
            let state = inner.hget(key, field::STATE.as_bytes(), now)?;
            let mut existing = inner.hget(key, seq, now)?;
            if state.as_deref() == Some(b"x") {
                return Ok(Stored::Busy);
            }
            if state.is_some() {
                // A finished message's tombstone keeps a digest of each part, not the part.
                if existing.as_deref() == Some(tombstone_digest(&part.value).as_slice()) {
                    return Ok(Stored::Repeat);
                }
                inner.keys.remove(key);
                existing = None;
            } else if existing
                .as_deref()
                .is_some_and(|e| e != part.value.as_slice())
            {
                return Ok(Stored::Conflict(message(inner.hgetall(key, now)?)));
            }
            if !inner.exists(key, now) {
                inner.hset(
                    key,
                    &[
                        (field::META.as_bytes(), part.meta.as_bytes()),
                        (field::INDEX.as_bytes(), part.index_key.as_bytes()),
                        (field::COUNT.as_bytes(), b"0"),
                    ],
                    now,
                )?;
                inner.pexpire(key, Duration::from_millis(millis(part.keep_open)), now);
                let due = now_ms + millis(part.window) as i64;
                inner.zadd(&part.index_key, due, key, now)?;
            }
            if existing.is_none() {
                inner.hset(key, &[(seq, part.value.as_slice())], now)?;
                let n = count(inner, key, now)? + 1;
                inner.hset(
                    key,
                    &[(field::COUNT.as_bytes(), n.to_string().as_bytes())],
                    now,
                )?;
            }
            let n = count(inner, key, now)?;
            if n >= i64::from(part.total) {
                return Ok(Stored::Complete(message(inner.hgetall(key, now)?)));
            }
            if existing.is_some() {
                return Ok(Stored::Repeat);
            }
            Ok(Stored::Waiting {
                received: n.clamp(0, 255) as u32,
            })
        })
    }

    fn finish_mo(
        &self,
        hash_key: String,
        index_key: String,
        complete: bool,
        keep: Duration,
    ) -> BoxFuture<'static, Result<(), ThrottleError>> {
        self.op(move |inner, now| {
            inner.zrem(&index_key, &hash_key, now)?;
            if inner.exists(&hash_key, now) {
                // The tombstone: no numbers (the meta goes), no text (a digest per part).
                if let Some(fields) = inner.hash(&hash_key, now)? {
                    fields.retain(|(name, _)| name != field::META.as_bytes());
                    for (name, value) in fields.iter_mut() {
                        let kept = [field::STATE, field::INDEX, field::COUNT]
                            .iter()
                            .any(|f| name == f.as_bytes());
                        if !kept {
                            *value = tombstone_digest(value);
                        }
                    }
                }
                let state: &[u8] = if complete { b"c" } else { b"p" };
                inner.hset(&hash_key, &[(field::STATE.as_bytes(), state)], now)?;
                inner.pexpire(&hash_key, Duration::from_millis(millis(keep)), now);
            }
            Ok(())
        })
    }

    fn due_mo(
        &self,
        index_key: String,
        limit: u32,
    ) -> BoxFuture<'static, Result<(u64, Vec<String>), ThrottleError>> {
        let now_ms = self.time_ms();
        self.op(move |inner, now| {
            let open = inner.zcard(&index_key, now)?;
            let mut due: Vec<(i64, String)> = inner
                .sorted(&index_key, now)?
                .map(|members| {
                    members
                        .iter()
                        .filter(|(_, score)| **score <= now_ms)
                        .map(|(member, score)| (*score, member.clone()))
                        .collect()
                })
                .unwrap_or_default();
            // ZRANGEBYSCORE: by score, then by member.
            due.sort();
            due.truncate(limit as usize);
            Ok((open, due.into_iter().map(|(_, member)| member).collect()))
        })
    }

    fn claim_mo(
        &self,
        index_key: String,
        due: Vec<String>,
        lease: Duration,
    ) -> BoxFuture<'static, Result<Claimed, ThrottleError>> {
        let now_ms = self.time_ms();
        self.op(move |inner, now| {
            let mut messages = Vec::new();
            let mut gone = 0;
            for key in due {
                let Some(score) = inner.zscore(&index_key, &key, now)? else {
                    continue;
                };
                if score > now_ms {
                    continue;
                }
                let state = inner.hget(&key, field::STATE.as_bytes(), now)?;
                let exists = inner.exists(&key, now);
                if !exists || state.as_deref().is_some_and(|s| s != b"x") {
                    if !exists {
                        gone += 1;
                    }
                    inner.zrem(&index_key, &key, now)?;
                } else {
                    inner.hset(&key, &[(field::STATE.as_bytes(), b"x")], now)?;
                    inner.zadd(&index_key, now_ms + millis(lease) as i64, &key, now)?;
                    let fields = inner.hgetall(&key, now)?;
                    messages.push((key, message(fields)));
                }
            }
            Ok(Claimed {
                open: inner.zcard(&index_key, now)?,
                messages,
                gone,
            })
        })
    }
}

/// The `n` field of a message hash.
fn count(inner: &mut Inner, key: &str, now: Instant) -> Result<i64, ThrottleError> {
    Ok(inner
        .hget(key, field::COUNT.as_bytes(), now)?
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
        .unwrap_or(0))
}

/// A hash as `HGETALL` answers it, read as fred's replies are.
fn message(fields: Fields) -> StoredMessage {
    StoredMessage::from_fields(fields)
}

/// What a finished message's tombstone keeps of a part: its digest, as the script's
/// `redis.sha1hex` (SHA-256 here: the store only ever compares its own digests).
fn tombstone_digest(value: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(value)).into_bytes()
}
