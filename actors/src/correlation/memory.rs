//! `MemoryStore`: the correlation store in memory, with the semantics of [`PgStore`]
//! (idempotent inserts, a receipt marks the newest row of its id, redelivery lookups,
//! expiry) and the faults a test needs: an outage (every call fails as PostgreSQL being
//! away does) and rows the database refuses for good (as SQLSTATE 22/23/54 do).
//!
//! It lets the correlation actor, and whatever sits on it, run in-process under a paused
//! clock; the whole-service tests still run against a real PostgreSQL.
//!
//! [`PgStore`]: super::PgStore

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use smpp_connector::config::BindKey;

use super::{
    BindSettings, Correlated, CorrelationError, CorrelationRow, CorrelationStore, ReceiptKey,
    ReceiptMatch,
};

/// Which rows the database refuses for good.
pub type RefuseRow = dyn Fn(&CorrelationRow) -> bool + Send + Sync;

/// A stored row and the status its receipt set.
#[derive(Debug, Clone)]
pub struct StoredRow {
    pub row: CorrelationRow,
    pub dlr_status: Option<&'static str>,
}

#[derive(Default)]
struct Inner {
    /// By (message_id, segment_index), in insertion order per key.
    rows: HashMap<(String, u16), StoredRow>,
    settings: HashMap<BindKey, BindSettings>,
    /// Calls fail as an unreachable database while set.
    down: bool,
    /// Statements run (each `insert` batch is one), for tests counting round trips.
    statements: u64,
}

/// The correlation store in memory (see the module doc).
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
    refuse: Option<Arc<RefuseRow>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    /// A store whose database refuses, for good, every batch holding a row `refuse`
    /// picks (PostgreSQL fails the whole statement).
    pub fn refusing(refuse: impl Fn(&CorrelationRow) -> bool + Send + Sync + 'static) -> Self {
        MemoryStore {
            inner: Arc::default(),
            refuse: Some(Arc::new(refuse)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The database goes away (`true`) or comes back.
    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Rows stored.
    pub fn rows(&self) -> Vec<StoredRow> {
        self.lock().rows.values().cloned().collect()
    }

    /// Statements run so far.
    pub fn statements(&self) -> u64 {
        self.lock().statements
    }

    /// Set a bind's row in `ops.smpp_binds`.
    pub fn set_bind_settings(&self, key: BindKey, settings: BindSettings) {
        self.lock().settings.insert(key, settings);
    }

    /// Count a statement; fail it if the database is down.
    fn statement(&self) -> Result<std::sync::MutexGuard<'_, Inner>, CorrelationError> {
        let mut inner = self.lock();
        inner.statements += 1;
        if inner.down {
            return Err(CorrelationError::Unavailable(
                "connection refused (in-memory store down)".into(),
            ));
        }
        Ok(inner)
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(futures::future::ready(value))
}

impl CorrelationStore for MemoryStore {
    fn insert(&self, rows: &[CorrelationRow]) -> BoxFuture<'static, Result<(), CorrelationError>> {
        let result = self.statement().and_then(|mut inner| {
            if let Some(refuse) = &self.refuse
                && rows.iter().any(|row| refuse(row))
            {
                return Err(CorrelationError::Refused(
                    "ERROR: refused (in-memory store) (SQLSTATE 54000)".into(),
                ));
            }
            for row in rows {
                inner
                    .rows
                    .entry((row.message_id.clone(), row.segment_index))
                    .or_insert_with(|| StoredRow {
                        row: row.clone(),
                        dlr_status: None,
                    });
            }
            Ok(())
        });
        ready(result)
    }

    fn apply_receipts(
        &self,
        receipts: Vec<(ReceiptKey, &'static str)>,
    ) -> BoxFuture<'static, Result<HashMap<ReceiptKey, ReceiptMatch>, CorrelationError>> {
        let result = self.statement().map(|mut inner| {
            let mut found = HashMap::new();
            for (key, status) in receipts {
                let newest = inner
                    .rows
                    .values_mut()
                    .filter(|r| {
                        r.row.bind.operator_id.as_str() == key.operator_id
                            && r.row.operator_message_id == key.operator_message_id
                    })
                    .max_by(|a, b| {
                        (a.row.submitted_at, &a.row.message_id, a.row.segment_index).cmp(&(
                            b.row.submitted_at,
                            &b.row.message_id,
                            b.row.segment_index,
                        ))
                    });
                if let Some(stored) = newest {
                    stored.dlr_status = Some(status);
                    found.insert(
                        key,
                        ReceiptMatch {
                            message_id: stored.row.message_id.clone(),
                            segment_index: stored.row.segment_index,
                            segment_count: stored.row.segment_count,
                            traceparent: stored.row.traceparent.clone(),
                        },
                    );
                }
            }
            found
        });
        ready(result)
    }

    fn correlated_segments(
        &self,
        message_ids: Vec<String>,
    ) -> BoxFuture<'static, Result<HashMap<String, Correlated>, CorrelationError>> {
        let result = self.statement().map(|inner| {
            let mut all: HashMap<String, Correlated> = HashMap::new();
            for stored in inner.rows.values() {
                if message_ids.contains(&stored.row.message_id) {
                    let found = all.entry(stored.row.message_id.clone()).or_default();
                    found.segments.push(stored.row.segment_index);
                    if stored.row.concat_ref.is_some() {
                        found.concat_ref = stored.row.concat_ref;
                    }
                }
            }
            for found in all.values_mut() {
                found.segments.sort_unstable();
            }
            all
        });
        ready(result)
    }

    fn sweep_expired(&self, _batch: i64) -> BoxFuture<'static, Result<u64, CorrelationError>> {
        // Rows never expire within a test.
        ready(self.statement().map(|_| 0))
    }

    fn bind_settings(
        &self,
        key: BindKey,
    ) -> BoxFuture<'static, Result<Option<BindSettings>, CorrelationError>> {
        ready(
            self.statement()
                .map(|inner| inner.settings.get(&key).copied()),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix::prelude::*;
    use smpp_connector::config::{Direction, OperatorId};

    use super::*;
    use crate::correlation::{ApplyReceipt, CorrelationActor, RecordCorrelation, insert_isolating};

    fn row(message_id: &str, operator_message_id: &str) -> CorrelationRow {
        CorrelationRow {
            message_id: message_id.into(),
            segment_index: 1,
            segment_count: 1,
            bind: BindKey::new(OperatorId::try_new("op").unwrap(), Direction::Trx, 0),
            operator_message_id: operator_message_id.into(),
            submitted_at: chrono::Utc::now(),
            concat_ref: None,
            traceparent: None,
        }
    }

    #[actix_rt::test]
    async fn a_refused_row_is_found_and_the_rest_of_its_batch_is_written() {
        let store = MemoryStore::refusing(|r| r.message_id == "bad");
        let rows: Vec<_> = (0..16)
            .map(|n| {
                let id = if n == 11 {
                    "bad".into()
                } else {
                    format!("m{n}")
                };
                row(&id, &format!("o{n}"))
            })
            .collect();
        let answers = insert_isolating(Arc::new(store.clone()), rows).await;
        for (n, answer) in answers.iter().enumerate() {
            if n == 11 {
                assert!(matches!(answer, Err(e) if e.is_permanent()), "{answer:?}");
            } else {
                assert!(answer.is_ok(), "row {n}: {answer:?}");
            }
        }
        assert_eq!(store.rows().len(), 15);
        // One statement for the batch, then two per halving (16 → 8 → 4 → 2 → 1).
        assert_eq!(store.statements(), 1 + 2 * 4);
    }

    #[actix_rt::test]
    async fn an_outage_fails_every_row_of_the_batch_to_be_retried() {
        let store = MemoryStore::new();
        store.set_down(true);
        let answers =
            insert_isolating(Arc::new(store.clone()), vec![row("a", "1"), row("b", "2")]).await;
        assert!(
            answers
                .iter()
                .all(|a| matches!(a, Err(e) if !e.is_permanent()))
        );
        assert_eq!(store.statements(), 1, "an outage is not split");
    }

    #[actix_rt::test]
    async fn the_actor_answers_each_row_of_a_refused_batch_on_its_own() {
        let store = MemoryStore::refusing(|r| r.operator_message_id.len() > 64);
        let actor = CorrelationActor::new(Arc::new(store.clone()), 100, 1).start();
        let long = "x".repeat(65);
        let writes: Vec<_> = [("a", "1"), ("b", long.as_str()), ("c", "3")]
            .into_iter()
            .map(|(m, o)| actor.send(RecordCorrelation(row(m, o))))
            .collect();
        let answers: Vec<_> = futures::future::join_all(writes)
            .await
            .into_iter()
            .map(|a| a.unwrap())
            .collect();
        assert!(answers[0].is_ok() && answers[2].is_ok(), "{answers:?}");
        assert!(matches!(&answers[1], Err(e) if e.is_permanent()));
        // A receipt of a written row matches; the refused one's does not.
        let receipt = |o: &str| ApplyReceipt {
            key: ReceiptKey {
                operator_id: "op".into(),
                operator_message_id: o.into(),
            },
            status: "DELIVERED",
            wait: false,
        };
        let found = |o: &str| {
            let ask = receipt(o).ask(&actor);
            async move { ask.await.unwrap().found }
        };
        assert!(found("3").await.is_some());
        assert!(found(&long).await.is_none());
    }

    /// A receipt that overtook its submit_sm_resp waits for its row without asking the
    /// database again: the row's write wakes it (one more statement, not one per step).
    #[actix_rt::test]
    async fn a_waiting_receipt_is_woken_by_its_row_without_polling() {
        let store = MemoryStore::new();
        let actor = CorrelationActor::new(Arc::new(store.clone()), 100, 1).start();
        let key = ReceiptKey {
            operator_id: "op".into(),
            operator_message_id: "o1".into(),
        };
        let waiting = {
            let actor = actor.clone();
            actix_rt::spawn(async move {
                ApplyReceipt {
                    key,
                    status: "DELIVERED",
                    wait: true,
                }
                .ask(&actor)
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "no row: it waits");
        assert_eq!(store.statements(), 1, "asked once");
        actor
            .send(RecordCorrelation(row("m1", "o1")))
            .await
            .unwrap()
            .unwrap();
        let lookup = waiting.await.unwrap().unwrap();
        assert_eq!(lookup.found.unwrap().message_id, "m1");
        assert!(lookup.waited);
        assert_eq!(
            store.statements(),
            3,
            "the insert, then the receipt once more"
        );
    }

    /// A receipt whose asker stopped waiting is forgotten, and a row written later does
    /// not ask on its behalf.
    #[actix_rt::test]
    async fn an_abandoned_wait_costs_nothing_more() {
        let store = MemoryStore::new();
        let actor = CorrelationActor::new(Arc::new(store.clone()), 100, 1).start();
        let key = ReceiptKey {
            operator_id: "op".into(),
            operator_message_id: "o2".into(),
        };
        let ask = ApplyReceipt {
            key,
            status: "DELIVERED",
            wait: true,
        }
        .ask(&actor);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(100), ask)
                .await
                .is_err()
        );
        actor
            .send(RecordCorrelation(row("m2", "o2")))
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(store.statements(), 2, "the receipt, the insert; no re-ask");
    }
}
