//! `CorrelationActor`: the PostgreSQL side of a dispatch and of a receipt.
//!
//! It owns the connection pool and batches every hot path: rows recorded after
//! `submit_sm_resp` ESME_ROK go in one multi-row `INSERT … SELECT FROM UNNEST` per batch,
//! receipts are matched (and their status written) in one `UPDATE … FROM UNNEST …
//! RETURNING` per batch. A batch is flushed as soon as a connection is free, so at low
//! load a row is written at once and under load rows accumulate while the previous
//! batches are in flight. A request is answered only after its batch committed: the
//! dispatch path ACKs the NATS message on that answer, never before.
//!
//! Migrations are versioned SQL files in `actors/migrations/`, applied under an
//! advisory lock (several pods may start at once), followed by ANALYZE so receipt
//! lookups use the index from the first minute.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use smpp_connector::config::BindKey;
use smpp_connector::log_budget::Outage;
use tokio::sync::oneshot;

use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::internal_events::{Backend, BackendDown, BackendFailed, BackendUp, emit};
use crate::telemetry::metric;

mod memory;
mod store;
pub use memory::{MemoryStore, StoredRow};
pub use store::{MIGRATIONS, PgStore, login_refused};

/// Why a correlation request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CorrelationError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("query failed: {0}")]
    Query(String),
    /// The database refused the data for good (a data exception, an integrity violation,
    /// a value past one of its limits): asking again gives the same answer. For a batch,
    /// one of its rows; [`insert_isolating`] finds which.
    #[error("refused by the database: {0}")]
    Refused(String),
    #[error("correlation actor stopped")]
    Stopped,
}

impl CorrelationError {
    /// True when asking again cannot help (see [`CorrelationError::Refused`]).
    pub fn is_permanent(&self) -> bool {
        matches!(self, CorrelationError::Refused(_))
    }
}

/// SQLSTATE classes that refuse the data itself, not the connection or the server's
/// state: 22 data exception (a value too long, out of range, a bad encoding), 23
/// integrity constraint violation, 54 program limit exceeded (an index row too large).
/// Everything else (connection, resources, a failover's read-only standby, a timeout,
/// permissions) is an outage: the row waits and is written again.
pub fn refuses_data(sqlstate: &str) -> bool {
    matches!(sqlstate.get(..2), Some("22" | "23" | "54"))
}

impl From<deadpool_postgres::PoolError> for CorrelationError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        CorrelationError::Unavailable(err.to_string())
    }
}

impl From<tokio_postgres::Error> for CorrelationError {
    fn from(err: tokio_postgres::Error) -> Self {
        if err
            .as_db_error()
            .is_some_and(|db| refuses_data(db.code().code()))
        {
            CorrelationError::Refused(describe(&err))
        } else if err.is_closed() {
            CorrelationError::Unavailable(describe(&err))
        } else {
            CorrelationError::Query(describe(&err))
        }
    }
}

/// What went wrong, in words: a server error with its severity, message and SQLSTATE
/// (`tokio_postgres` alone says only "db error"), otherwise the error and its causes.
pub fn describe(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// One submitted segment, as stored.
#[derive(Debug, Clone)]
pub struct CorrelationRow {
    pub message_id: String,
    pub segment_index: u16,
    pub segment_count: u16,
    pub bind: BindKey,
    pub operator_message_id: String,
    pub submitted_at: DateTime<Utc>,
    /// The concatenation reference of a long message's segments (reused on redelivery).
    pub concat_ref: Option<u16>,
    /// The dispatch's trace context (the receipt's trace links to it).
    pub traceparent: Option<String>,
}

/// What an earlier delivery of a message left: segments with rows, and their reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correlated {
    pub segments: Vec<u16>,
    pub concat_ref: Option<u16>,
}

/// A receipt to match: the operator, its normalised message id and the status to store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReceiptKey {
    pub operator_id: String,
    pub operator_message_id: String,
}

/// The segment a receipt belongs to.
pub use smpp_connector::events::ReceiptMatch;

/// Storage behind the actor; [`PgStore`] is the real one.
pub trait CorrelationStore: Send + Sync + 'static {
    /// Insert rows (idempotent on (message_id, segment_index)). The rows are read before
    /// the future is returned.
    fn insert(&self, rows: &[CorrelationRow]) -> BoxFuture<'static, Result<(), CorrelationError>>;
    /// Match receipts, store their status, return what matched.
    fn apply_receipts(
        &self,
        receipts: Vec<(ReceiptKey, &'static str)>,
    ) -> BoxFuture<'static, Result<HashMap<ReceiptKey, ReceiptMatch>, CorrelationError>>;
    /// Segment indexes already correlated for each message, and their reference (one
    /// query for them all; messages without rows are absent).
    fn correlated_segments(
        &self,
        message_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<HashMap<String, Correlated>, CorrelationError>>;
    /// Delete up to `batch` rows whose `expires_at` has passed, oldest first; how many.
    fn sweep_expired(&self, batch: i64) -> BoxFuture<'static, Result<u64, CorrelationError>>;
    /// The bind's row in `ops.smpp_binds`, if an operator wrote one.
    fn bind_settings(
        &self,
        key: BindKey,
    ) -> BoxFuture<'static, Result<Option<BindSettings>, CorrelationError>>;
}

/// A bind's runtime settings from `ops.smpp_binds` (changed in SQL, reloaded every 60 s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindSettings {
    pub window: u32,
    pub enabled: bool,
}

/// Record a segment; answered after the row is committed.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), CorrelationError>")]
pub struct RecordCorrelation(pub CorrelationRow);

/// Match a receipt and store its status; answered with the segment or `None`.
///
/// With `wait`, a receipt that finds no row is not answered `None`: it waits for a row of
/// its key written by this process (the submit_sm_resp it overtook), and is matched when
/// that row is committed — without a query per attempt. The asker ends the wait by
/// dropping the reply ([`smpp_connector::inbound`] says when), which the actor sees.
/// Answered at once with the channel the answer comes on ([`ApplyReceipt::ask`] awaits
/// both).
#[derive(Debug, Message)]
#[rtype(result = "ReceiptReply")]
pub struct ApplyReceipt {
    pub key: ReceiptKey,
    pub status: &'static str,
    pub wait: bool,
}

/// Where [`ApplyReceipt`]'s answer comes.
pub type ReceiptReply = oneshot::Receiver<Result<ReceiptLookup, CorrelationError>>;

impl ApplyReceipt {
    /// Send it and wait for the answer; dropping the future ends a wait.
    pub async fn ask(
        self,
        actor: &Addr<CorrelationActor>,
    ) -> Result<ReceiptLookup, CorrelationError> {
        match actor.send(self).await {
            Ok(reply) => reply.await.unwrap_or(Err(CorrelationError::Stopped)),
            Err(_) => Err(CorrelationError::Stopped),
        }
    }
}

/// What [`ApplyReceipt`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptLookup {
    pub found: Option<ReceiptMatch>,
    /// It found its row only after waiting for it to be written.
    pub waited: bool,
}

/// Segment indexes of a message already correlated (redelivery after a crash).
#[derive(Debug, Message)]
#[rtype(result = "Result<Correlated, CorrelationError>")]
pub struct FindCorrelated {
    pub message_id: String,
}

/// Read a bind's `ops.smpp_binds` row.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<BindSettings>, CorrelationError>")]
pub struct GetBindSettings(pub BindKey);

/// Requests waiting for a batch, and how many batches are in flight.
struct Batches<T, R> {
    waiting: Vec<(T, oneshot::Sender<R>)>,
    in_flight: usize,
}

impl<T, R> Default for Batches<T, R> {
    fn default() -> Self {
        Batches {
            waiting: Vec::new(),
            in_flight: 0,
        }
    }
}

impl<T, R> Batches<T, R> {
    /// The next batch to flush, if a flush slot is free and anything waits.
    fn take(
        &mut self,
        max_in_flight: usize,
        max_batch: usize,
    ) -> Option<Vec<(T, oneshot::Sender<R>)>> {
        if self.in_flight >= max_in_flight || self.waiting.is_empty() {
            return None;
        }
        self.in_flight += 1;
        let n = self.waiting.len().min(max_batch);
        Some(self.waiting.drain(..n).collect())
    }

    fn done(&mut self) {
        self.in_flight -= 1;
    }
}

type ReceiptWaiter = oneshot::Sender<Result<ReceiptLookup, CorrelationError>>;

/// One receipt to match in a batch.
#[derive(Debug, Clone)]
struct ReceiptAsk {
    key: ReceiptKey,
    status: &'static str,
    /// It waits for its row (`ApplyReceipt::wait`): the row writes of its key seen when it
    /// was asked ([`Awaiting::writes`]).
    wait: Option<u64>,
    /// It was woken by a row written after it first missed.
    woken: bool,
}

/// Receipts of one key waiting for a row (see [`ApplyReceipt`]).
#[derive(Debug, Default)]
struct Awaiting {
    /// Missed, waiting for a row of the key to be written.
    parked: Vec<(ReceiptAsk, ReceiptWaiter)>,
    /// Being matched now.
    asking: usize,
    /// Rows of the key written so far: an ask that started before the latest write and
    /// missed asks again at once (the row committed while its query ran).
    writes: u64,
}

/// The PostgreSQL actor.
pub struct CorrelationActor {
    store: Arc<dyn CorrelationStore>,
    max_batch: usize,
    max_in_flight: usize,
    inserts: Batches<CorrelationRow, Result<(), CorrelationError>>,
    receipts: Batches<ReceiptAsk, Result<ReceiptLookup, CorrelationError>>,
    /// Receipts waiting for their row, by key.
    awaiting: HashMap<ReceiptKey, Awaiting>,
    /// Redelivery lookups, batched like the rest: one query for what arrived together.
    lookups: Batches<String, Result<Correlated, CorrelationError>>,
    /// Rows waiting for or in an INSERT batch, by receipt key: a receipt for one of them
    /// (the SMSC answers fast) waits for that commit instead of missing and retrying.
    unwritten: HashMap<ReceiptKey, usize>,
    parked: HashMap<ReceiptKey, Vec<(ReceiptAsk, ReceiptWaiter)>>,
    /// Expired rows are swept this often (`None`: not by this actor).
    sweep_every: Option<Duration>,
    sweeping: bool,
    health: ActorHealth,
    /// Inserts are failing (logged once per outage).
    insert_outage: Outage,
    /// Receipt lookups are failing (logged once per outage).
    lookup_outage: Outage,
}

/// Rows one sweep statement deletes at most (a short transaction each).
pub const SWEEP_BATCH: i64 = 10_000;
/// One periodic sweep stops after this long and continues at the next.
const SWEEP_BUDGET: Duration = Duration::from_secs(5);

/// Insert a batch, and when the database refuses it for good, find the rows it refuses
/// by halving the batch: the others are written and answered `Ok`, each refused row gets
/// [`CorrelationError::Refused`] (one bad row costs about 2·log2(n) more statements,
/// never the batch). An outage answers every row with its error, to be retried.
pub async fn insert_isolating(
    store: Arc<dyn CorrelationStore>,
    rows: Vec<CorrelationRow>,
) -> Vec<Result<(), CorrelationError>> {
    isolate(store.as_ref(), &rows).await
}

/// [`insert_isolating`] of a part of the batch (the halves are slices of it, not copies).
async fn isolate(
    store: &dyn CorrelationStore,
    rows: &[CorrelationRow],
) -> Vec<Result<(), CorrelationError>> {
    let n = rows.len();
    match store.insert(rows).await {
        Ok(()) => vec![Ok(()); n],
        Err(err) if err.is_permanent() && n > 1 => {
            let (first, second) = rows.split_at(n / 2);
            let mut answers = Box::pin(isolate(store, first)).await;
            answers.extend(Box::pin(isolate(store, second)).await);
            answers
        }
        Err(err) => vec![Err(err); n],
    }
}

/// Delete expired rows in batches until none is left or `budget` is spent; how many.
pub async fn sweep(
    store: &dyn CorrelationStore,
    budget: Duration,
) -> Result<u64, CorrelationError> {
    let started = std::time::Instant::now();
    let mut total = 0;
    loop {
        let deleted = store.sweep_expired(SWEEP_BATCH).await?;
        total += deleted;
        metrics::counter!(metric::CORRELATION_SWEPT).increment(deleted);
        if deleted < SWEEP_BATCH as u64 || started.elapsed() >= budget {
            metrics::histogram!(metric::CORRELATION_SWEEP_LATENCY)
                .record(started.elapsed().as_secs_f64());
            return Ok(total);
        }
    }
}

fn receipt_key(row: &CorrelationRow) -> ReceiptKey {
    ReceiptKey {
        operator_id: row.bind.operator_id.as_str().to_owned(),
        operator_message_id: row.operator_message_id.clone(),
    }
}

impl std::fmt::Debug for CorrelationActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorrelationActor")
            .field("waiting_inserts", &self.inserts.waiting.len())
            .field("waiting_receipts", &self.receipts.waiting.len())
            .finish_non_exhaustive()
    }
}

impl CorrelationActor {
    /// Sweep expired rows every `every` (several pods may: their batches skip each
    /// other's rows).
    pub fn with_sweep(mut self, every: Duration) -> Self {
        self.sweep_every = Some(every);
        self
    }

    fn start_sweep(&mut self, ctx: &mut Context<Self>) {
        if self.sweeping {
            return;
        }
        self.sweeping = true;
        let store = self.store.clone();
        let run = async move { sweep(store.as_ref(), SWEEP_BUDGET).await };
        ctx.spawn(run.into_actor(self).map(|result, act, _ctx| {
            act.sweeping = false;
            match result {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "expired correlation rows swept"),
                Err(error) => emit(BackendFailed {
                    backend: Backend::Postgres,
                    what: "correlation sweep failed; next one retries",
                    error: &error,
                }),
            }
        }));
    }

    /// `max_in_flight` batches of each kind run at once (keep it below the pool size).
    pub fn new(store: Arc<dyn CorrelationStore>, max_batch: usize, max_in_flight: usize) -> Self {
        CorrelationActor {
            store,
            max_batch,
            max_in_flight: max_in_flight.max(1),
            inserts: Batches::default(),
            receipts: Batches::default(),
            lookups: Batches::default(),
            unwritten: HashMap::new(),
            awaiting: HashMap::new(),
            sweep_every: None,
            sweeping: false,
            health: ActorHealth::new("correlation", None),
            insert_outage: Outage::new(),
            lookup_outage: Outage::new(),
            parked: HashMap::new(),
        }
    }

    fn flush_inserts(&mut self, ctx: &mut Context<Self>) {
        while let Some(batch) = self.inserts.take(self.max_in_flight, self.max_batch) {
            let (rows, waiters): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            metrics::histogram!(metric::CORRELATION_BATCH).record(rows.len() as f64);
            let keys: Vec<ReceiptKey> = rows.iter().map(receipt_key).collect();
            let write = insert_isolating(self.store.clone(), rows);
            ctx.spawn(write.into_actor(self).map(move |answers, act, ctx| {
                let refused = answers
                    .iter()
                    .filter(|a| matches!(a, Err(e) if e.is_permanent()))
                    .count();
                let failed = answers
                    .iter()
                    .find(|a| matches!(a, Err(e) if !e.is_permanent()));
                if refused > 0 {
                    metrics::counter!(metric::CORRELATION_ROWS_REFUSED).increment(refused as u64);
                }
                let result = match failed {
                    Some(failed) => failed.clone(),
                    None => Ok(()),
                };
                match &result {
                    // One line per outage; the binds retry their rows.
                    Err(err) => emit(BackendDown {
                        backend: Backend::Postgres,
                        starts: act.insert_outage.failed(),
                        what: "correlation inserts failing; rows are retried",
                        error: err,
                        batch: Some(waiters.len()),
                    }),
                    Ok(()) => emit(BackendUp {
                        backend: Backend::Postgres,
                        ends: act.insert_outage.worked(),
                        what: "correlation inserts succeed again",
                        down_for: None,
                    }),
                }
                for (waiter, answer) in waiters.into_iter().zip(answers) {
                    let _ = waiter.send(answer);
                }
                act.inserts.done();
                act.written(keys, ctx);
                act.flush_inserts(ctx);
            }));
        }
    }

    fn flush_lookups(&mut self, ctx: &mut Context<Self>) {
        while let Some(batch) = self.lookups.take(self.max_in_flight, self.max_batch) {
            let (ids, waiters): (Vec<String>, Vec<_>) = batch.into_iter().unzip();
            let lookup = self.store.correlated_segments(ids.clone());
            ctx.spawn(lookup.into_actor(self).map(move |result, act, ctx| {
                if result.is_ok() {
                    crate::telemetry::backends::answered(Backend::Postgres);
                } else {
                    crate::telemetry::backends::failed(Backend::Postgres);
                }
                for (id, waiter) in ids.iter().zip(waiters) {
                    let answer = match &result {
                        Ok(found) => Ok(found.get(id).cloned().unwrap_or_default()),
                        Err(err) => Err(err.clone()),
                    };
                    let _ = waiter.send(answer);
                }
                act.lookups.done();
                act.flush_lookups(ctx);
            }));
        }
    }

    /// Rows of a finished INSERT batch: release the receipts that waited for them.
    fn written(&mut self, keys: Vec<ReceiptKey>, ctx: &mut Context<Self>) {
        for key in keys {
            if let Some(count) = self.unwritten.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    self.unwritten.remove(&key);
                    for parked in self.parked.remove(&key).unwrap_or_default() {
                        self.receipts.waiting.push(parked);
                    }
                }
            }
            // Receipts that missed this row wake up and are matched again.
            if let Some(awaiting) = self.awaiting.get_mut(&key) {
                awaiting.writes += 1;
                for (mut ask, waiter) in awaiting.parked.drain(..) {
                    if waiter.is_closed() {
                        continue;
                    }
                    ask.wait = Some(awaiting.writes);
                    ask.woken = true;
                    awaiting.asking += 1;
                    self.receipts.waiting.push((ask, waiter));
                }
            }
        }
        self.flush_receipts(ctx);
    }

    /// A receipt that asked with `wait` missed its row: it asks again at once if a row of
    /// its key was written while it asked, otherwise it waits for one.
    fn await_row(&mut self, mut ask: ReceiptAsk, waiter: ReceiptWaiter) {
        let key = ask.key.clone();
        let awaiting = self.awaiting.entry(key).or_default();
        awaiting.asking = awaiting.asking.saturating_sub(1);
        if waiter.is_closed() {
            // Its asker stopped waiting.
        } else if ask.wait.is_some_and(|seen| awaiting.writes > seen) {
            ask.wait = Some(awaiting.writes);
            ask.woken = true;
            awaiting.asking += 1;
            self.receipts.waiting.push((ask, waiter));
        } else {
            awaiting.parked.push((ask, waiter));
        }
    }

    /// An ask with `wait` was answered: it no longer counts as asking.
    fn ask_done(&mut self, ask: &ReceiptAsk) {
        if ask.wait.is_none() {
            return;
        }
        if let Some(awaiting) = self.awaiting.get_mut(&ask.key) {
            awaiting.asking = awaiting.asking.saturating_sub(1);
            if awaiting.asking == 0 && awaiting.parked.is_empty() {
                self.awaiting.remove(&ask.key);
            }
        }
    }

    /// Forget the receipts whose askers stopped waiting (every second).
    fn forget_abandoned(&mut self) {
        self.awaiting.retain(|_, awaiting| {
            awaiting.parked.retain(|(_, waiter)| !waiter.is_closed());
            awaiting.asking > 0 || !awaiting.parked.is_empty()
        });
    }

    fn flush_receipts(&mut self, ctx: &mut Context<Self>) {
        while let Some(batch) = self.receipts.take(self.max_in_flight, self.max_batch) {
            let (asks, waiters): (Vec<ReceiptAsk>, Vec<_>) = batch.into_iter().unzip();
            let keys = asks.iter().map(|a| (a.key.clone(), a.status)).collect();
            metrics::counter!(metric::RECEIPT_LOOKUPS).increment(asks.len() as u64);
            let lookup = self.store.apply_receipts(keys);
            ctx.spawn(lookup.into_actor(self).map(move |result, act, ctx| {
                match result {
                    Ok(found) => {
                        emit(BackendUp {
                            backend: Backend::Postgres,
                            ends: act.lookup_outage.worked(),
                            what: "receipt lookups succeed again",
                            down_for: None,
                        });
                        for (ask, waiter) in asks.into_iter().zip(waiters) {
                            match found.get(&ask.key) {
                                Some(matched) => {
                                    act.ask_done(&ask);
                                    let _ = waiter.send(Ok(ReceiptLookup {
                                        found: Some(matched.clone()),
                                        waited: ask.woken,
                                    }));
                                }
                                None if ask.wait.is_some() => act.await_row(ask, waiter),
                                None => {
                                    let _ = waiter.send(Ok(ReceiptLookup::default()));
                                }
                            }
                        }
                    }
                    Err(err) => {
                        // One line per outage; the receipts go out uncorrelated meanwhile.
                        emit(BackendDown {
                            backend: Backend::Postgres,
                            starts: act.lookup_outage.failed(),
                            what: "receipt lookups failing; receipts are published uncorrelated until they answer",
                            error: &err,
                            batch: Some(asks.len()),
                        });
                        for (ask, waiter) in asks.into_iter().zip(waiters) {
                            act.ask_done(&ask);
                            let _ = waiter.send(Err(err.clone()));
                        }
                    }
                }
                act.receipts.done();
                act.flush_receipts(ctx);
            }));
        }
    }
}

impl Actor for CorrelationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Many binds talk to this actor; a deep mailbox keeps send() from stalling them.
        ctx.set_mailbox_capacity(100_000);
        self.health.started(ctx);
        if let Some(every) = self.sweep_every {
            ctx.run_interval(every, |act, ctx| act.start_sweep(ctx));
        }
        ctx.run_interval(Duration::from_secs(1), |act, _ctx| act.forget_abandoned());
        // Exported from the start, at 0 until a row is refused.
        metrics::counter!(metric::CORRELATION_ROWS_REFUSED).increment(0);
        metrics::counter!(metric::RECEIPT_LOOKUPS).increment(0);
    }
}

impl Handler<RecordCorrelation> for CorrelationActor {
    type Result = ResponseFuture<Result<(), CorrelationError>>;

    fn handle(&mut self, msg: RecordCorrelation, ctx: &mut Context<Self>) -> Self::Result {
        let _timer = self.health.time();
        let (tx, rx) = oneshot::channel();
        *self.unwritten.entry(receipt_key(&msg.0)).or_default() += 1;
        self.inserts.waiting.push((msg.0, tx));
        self.flush_inserts(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(CorrelationError::Stopped)) })
    }
}

impl Handler<ApplyReceipt> for CorrelationActor {
    type Result = MessageResult<ApplyReceipt>;

    fn handle(&mut self, msg: ApplyReceipt, ctx: &mut Context<Self>) -> Self::Result {
        let _timer = self.health.time();
        let (tx, rx) = oneshot::channel();
        let wait = msg.wait.then(|| {
            // Counted as asking from now, so a row written while it asks wakes it.
            let awaiting = self.awaiting.entry(msg.key.clone()).or_default();
            awaiting.asking += 1;
            awaiting.writes
        });
        let ask = ReceiptAsk {
            key: msg.key,
            status: msg.status,
            wait,
            woken: false,
        };
        if self.unwritten.contains_key(&ask.key) {
            // Its row is on the way to the database: match it once committed.
            self.parked
                .entry(ask.key.clone())
                .or_default()
                .push((ask, tx));
        } else {
            self.receipts.waiting.push((ask, tx));
            self.flush_receipts(ctx);
        }
        MessageResult(rx)
    }
}

impl Handler<Probe> for CorrelationActor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        self.health.probed(&probe);
    }
}

impl Handler<FindCorrelated> for CorrelationActor {
    type Result = ResponseFuture<Result<Correlated, CorrelationError>>;

    fn handle(&mut self, msg: FindCorrelated, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.lookups.waiting.push((msg.message_id, tx));
        self.flush_lookups(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(CorrelationError::Stopped)) })
    }
}

impl Handler<GetBindSettings> for CorrelationActor {
    type Result = ResponseFuture<Result<Option<BindSettings>, CorrelationError>>;

    fn handle(&mut self, msg: GetBindSettings, _ctx: &mut Context<Self>) -> Self::Result {
        self.store.bind_settings(msg.0)
    }
}
