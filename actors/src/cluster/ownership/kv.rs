//! The key-value operations ownership uses, behind [`KvBucket`]: read an entry,
//! create-if-absent, update-by-revision, put, delete (with or without an expected
//! revision), list the keys. [`NatsKv`] is the real one (a NATS KV bucket, calls and
//! answers as before the trait); [`MemoryKv`] is the same in memory, for in-process tests
//! of several pods under a paused clock.
//!
//! A value's revision is its bucket's sequence number at the write (one counter per
//! bucket, as a KV bucket's stream has), every write gets a new one, and a write expecting
//! a revision succeeds only if the key's last write has it. A delete leaves a marker (a
//! write of its own): the key is absent for reads and listings, and creatable again.
//! With a max age, a write expires that long after it was made (the buckets' `OWNER_TTL_MS`);
//! `MemoryKv` reads tokio's clock for it, so `tokio::time::advance` expires keys.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::time::Instant;

/// A live value (a put, not a delete marker) and its revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub value: Bytes,
    pub revision: u64,
}

/// Why a KV call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The key's last write is not the revision expected (another pod wrote it, it was
    /// deleted, or it expired).
    #[error("wrong last revision")]
    WrongLastRevision,
    /// Create-if-absent found a value.
    #[error("key exists")]
    AlreadyExists,
    /// No answer, or another error (the bucket is unreachable, a timeout…).
    #[error("kv unavailable: {0}")]
    Unavailable(String),
}

/// The keys of a bucket, as a stream (a listing may fail part way).
pub type KeyStream = BoxStream<'static, Result<String, KvError>>;

/// A KV bucket as ownership uses it; [`NatsKv`] is the real one.
pub trait KvBucket: Send + Sync + 'static {
    /// The key's live value, `None` when absent, deleted or expired.
    fn entry(&self, key: &str) -> BoxFuture<'static, Result<Option<KvEntry>, KvError>>;
    /// Write `value` only if the key has no live value; its revision.
    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>>;
    /// Write `value` only if the key's last write has `revision`; the new revision.
    fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> BoxFuture<'static, Result<u64, KvError>>;
    /// Write `value` whatever is there; its revision.
    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>>;
    /// Delete the key whatever is there.
    fn delete(&self, key: &str) -> BoxFuture<'static, Result<(), KvError>>;
    /// Delete the key only if its last write has `revision`.
    fn delete_expect_revision(
        &self,
        key: &str,
        revision: u64,
    ) -> BoxFuture<'static, Result<(), KvError>>;
    /// The keys with a live value.
    fn keys(&self) -> BoxFuture<'static, Result<KeyStream, KvError>>;
}

/// The real [`KvBucket`]: a NATS KV bucket.
#[derive(Clone)]
pub struct NatsKv {
    store: kv::Store,
}

impl std::fmt::Debug for NatsKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsKv").finish_non_exhaustive()
    }
}

impl NatsKv {
    pub fn new(store: kv::Store) -> Self {
        NatsKv { store }
    }

    /// As [`super::OwnershipActor`] holds it.
    pub fn shared(store: kv::Store) -> Arc<dyn KvBucket> {
        Arc::new(NatsKv::new(store))
    }
}

fn unavailable(err: impl std::fmt::Display) -> KvError {
    KvError::Unavailable(err.to_string())
}

impl KvBucket for NatsKv {
    fn entry(&self, key: &str) -> BoxFuture<'static, Result<Option<KvEntry>, KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move {
            let entry = store.entry(key).await.map_err(unavailable)?;
            Ok(entry
                .filter(|e| e.operation == kv::Operation::Put)
                .map(|e| KvEntry {
                    value: e.value,
                    revision: e.revision,
                }))
        })
    }

    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move {
            store.create(key, value).await.map_err(|err| {
                if err.kind() == kv::CreateErrorKind::AlreadyExists {
                    KvError::AlreadyExists
                } else {
                    unavailable(err)
                }
            })
        })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> BoxFuture<'static, Result<u64, KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move {
            store.update(key, value, revision).await.map_err(|err| {
                if err.kind() == kv::UpdateErrorKind::WrongLastRevision {
                    KvError::WrongLastRevision
                } else {
                    unavailable(err)
                }
            })
        })
    }

    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move { store.put(key, value).await.map_err(unavailable) })
    }

    fn delete(&self, key: &str) -> BoxFuture<'static, Result<(), KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move { store.delete(key).await.map_err(unavailable) })
    }

    fn delete_expect_revision(
        &self,
        key: &str,
        revision: u64,
    ) -> BoxFuture<'static, Result<(), KvError>> {
        let (store, key) = (self.store.clone(), key.to_owned());
        Box::pin(async move {
            store
                .delete_expect_revision(key, Some(revision))
                .await
                .map_err(unavailable)
        })
    }

    fn keys(&self) -> BoxFuture<'static, Result<KeyStream, KvError>> {
        let store = self.store.clone();
        Box::pin(async move {
            let keys = store.keys().await.map_err(unavailable)?;
            Ok(keys.map(|key| key.map_err(unavailable)).boxed())
        })
    }
}

/// A key's last write.
#[derive(Debug, Clone)]
struct Write {
    /// `None`: a delete marker.
    value: Option<Bytes>,
    revision: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct Bucket {
    keys: BTreeMap<String, Write>,
    /// The bucket's last sequence number.
    sequence: u64,
    /// Every call fails as an unreachable NATS while set.
    down: bool,
    /// Writes expire this long after they were made (`Duration::ZERO`: never).
    max_age: Duration,
}

impl Bucket {
    /// The key's last write, unless it expired (then it is gone, as NATS removes it).
    fn last(&mut self, key: &str, now: Instant) -> Option<&Write> {
        let max_age = self.max_age;
        if !max_age.is_zero()
            && self
                .keys
                .get(key)
                .is_some_and(|w| now.saturating_duration_since(w.at) >= max_age)
        {
            self.keys.remove(key);
        }
        self.keys.get(key)
    }

    fn write(&mut self, key: &str, value: Option<Bytes>, now: Instant) -> u64 {
        self.sequence += 1;
        self.keys.insert(
            key.to_owned(),
            Write {
                value,
                revision: self.sequence,
                at: now,
            },
        );
        self.sequence
    }

    /// The last write's revision, 0 when there is none (an expected revision of 0 means
    /// "no write yet", as JetStream's expected last subject sequence does).
    fn last_revision(&mut self, key: &str, now: Instant) -> u64 {
        self.last(key, now).map_or(0, |w| w.revision)
    }
}

/// A KV bucket in memory (see the module doc), seen through one connection. Clones share
/// the bucket and the connection; [`MemoryKv::client`] is another connection to the same
/// bucket (another pod's), which [`MemoryKv::disconnect`] can cut alone: a pod partitioned
/// from NATS while the others carry on.
#[derive(Clone)]
pub struct MemoryKv {
    bucket: Arc<Mutex<Bucket>>,
    /// This connection is cut while set.
    cut: Arc<AtomicBool>,
}

impl std::fmt::Debug for MemoryKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryKv").finish_non_exhaustive()
    }
}

impl MemoryKv {
    /// An empty bucket whose writes expire after `max_age` (`Duration::ZERO`: never).
    pub fn new(max_age: Duration) -> Self {
        MemoryKv {
            bucket: Arc::new(Mutex::new(Bucket {
                max_age,
                ..Bucket::default()
            })),
            cut: Arc::default(),
        }
    }

    /// Another connection to this bucket (another pod's).
    pub fn client(&self) -> MemoryKv {
        MemoryKv {
            bucket: self.bucket.clone(),
            cut: Arc::default(),
        }
    }

    /// Cut this connection (`true`: its calls fail, other connections work) or restore it.
    pub fn disconnect(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }

    /// As [`super::OwnershipActor`] holds it.
    pub fn shared(&self) -> Arc<dyn KvBucket> {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Bucket> {
        self.bucket.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// NATS goes away for every connection (`true`: every call fails) or comes back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Live keys and values now (for assertions).
    pub fn snapshot(&self) -> BTreeMap<String, Bytes> {
        let now = Instant::now();
        let mut bucket = self.lock();
        let names: Vec<String> = bucket.keys.keys().cloned().collect();
        names
            .into_iter()
            .filter_map(|name| {
                let value = bucket.last(&name, now)?.value.clone()?;
                Some((name, value))
            })
            .collect()
    }

    /// One call: refused while down, otherwise run on the bucket now.
    fn call<T: Send + 'static>(
        &self,
        run: impl FnOnce(&mut Bucket, Instant) -> Result<T, KvError>,
    ) -> BoxFuture<'static, Result<T, KvError>> {
        let now = Instant::now();
        let result = {
            let mut bucket = self.lock();
            if bucket.down || self.cut.load(Ordering::Relaxed) {
                Err(KvError::Unavailable(
                    "no responders (in-memory KV down)".into(),
                ))
            } else {
                run(&mut bucket, now)
            }
        };
        Box::pin(futures::future::ready(result))
    }
}

impl KvBucket for MemoryKv {
    fn entry(&self, key: &str) -> BoxFuture<'static, Result<Option<KvEntry>, KvError>> {
        self.call(|bucket, now| {
            Ok(bucket.last(key, now).and_then(|w| {
                Some(KvEntry {
                    value: w.value.clone()?,
                    revision: w.revision,
                })
            }))
        })
    }

    fn create(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>> {
        self.call(|bucket, now| {
            if bucket.last(key, now).is_some_and(|w| w.value.is_some()) {
                return Err(KvError::AlreadyExists);
            }
            Ok(bucket.write(key, Some(value), now))
        })
    }

    fn update(
        &self,
        key: &str,
        value: Bytes,
        revision: u64,
    ) -> BoxFuture<'static, Result<u64, KvError>> {
        self.call(|bucket, now| {
            if bucket.last_revision(key, now) != revision {
                return Err(KvError::WrongLastRevision);
            }
            Ok(bucket.write(key, Some(value), now))
        })
    }

    fn put(&self, key: &str, value: Bytes) -> BoxFuture<'static, Result<u64, KvError>> {
        self.call(|bucket, now| Ok(bucket.write(key, Some(value), now)))
    }

    fn delete(&self, key: &str) -> BoxFuture<'static, Result<(), KvError>> {
        self.call(|bucket, now| {
            bucket.write(key, None, now);
            Ok(())
        })
    }

    fn delete_expect_revision(
        &self,
        key: &str,
        revision: u64,
    ) -> BoxFuture<'static, Result<(), KvError>> {
        self.call(|bucket, now| {
            if bucket.last_revision(key, now) != revision {
                return Err(KvError::WrongLastRevision);
            }
            bucket.write(key, None, now);
            Ok(())
        })
    }

    fn keys(&self) -> BoxFuture<'static, Result<KeyStream, KvError>> {
        self.call(|bucket, now| {
            let names: Vec<String> = bucket.keys.keys().cloned().collect();
            let live: Vec<Result<String, KvError>> = names
                .into_iter()
                .filter(|name| bucket.last(name, now).is_some_and(|w| w.value.is_some()))
                .map(Ok)
                .collect();
            Ok(futures::stream::iter(live).boxed())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Revisions, create conflicts, deletes and the max age, as a KV bucket has them.
    #[actix_rt::test]
    async fn memory_kv_keeps_revisions_conflicts_deletes_and_max_age() {
        tokio::time::pause();
        let kv = MemoryKv::new(Duration::from_secs(30));
        let v = |s: &'static str| Bytes::from_static(s.as_bytes());
        let first = kv.create("a", v("1")).await.unwrap();
        assert_eq!(kv.create("a", v("2")).await, Err(KvError::AlreadyExists));
        let second = kv.update("a", v("2"), first).await.unwrap();
        assert!(second > first);
        assert_eq!(
            kv.update("a", v("3"), first).await,
            Err(KvError::WrongLastRevision),
            "a stale revision"
        );
        kv.put("b", v("x")).await.unwrap();
        assert_eq!(
            kv.delete_expect_revision("a", first).await,
            Err(KvError::WrongLastRevision)
        );
        kv.delete_expect_revision("a", second).await.unwrap();
        assert_eq!(kv.entry("a").await.unwrap(), None, "deleted");
        let keys: Vec<String> = kv.keys().await.unwrap().map(Result::unwrap).collect().await;
        assert_eq!(keys, ["b"], "a deleted key is not listed");
        let again = kv
            .create("a", v("4"))
            .await
            .expect("creatable after a delete");

        tokio::time::advance(Duration::from_secs(29)).await;
        kv.put("b", v("y")).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(kv.entry("a").await.unwrap(), None, "expired after 30 s");
        assert_eq!(
            kv.update("a", v("5"), again).await,
            Err(KvError::WrongLastRevision),
            "an expired key cannot be refreshed"
        );
        assert_eq!(kv.entry("b").await.unwrap().unwrap().value, v("y"));
        let other = kv.client();
        kv.disconnect(true);
        assert!(matches!(kv.entry("b").await, Err(KvError::Unavailable(_))));
        assert!(
            other.entry("b").await.unwrap().is_some(),
            "only one connection cut"
        );
        kv.disconnect(false);
        kv.set_down(true);
        assert!(matches!(
            other.entry("b").await,
            Err(KvError::Unavailable(_))
        ));
    }
}
