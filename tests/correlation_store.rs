//! The PostgreSQL store behind `CorrelationActor`, on a database of its own in the shared
//! cluster: what the statements cost as the table grows, not only what they return.

use chrono::Utc;
use smpp_connector::config::{
    BindKey, DEFAULT_STATEMENT_TIMEOUT, Direction, OperatorId, PostgresSettings,
};
use smpp_connector_actors::correlation::{CorrelationRow, CorrelationStore, PgStore, ReceiptKey};

use crate::support::{database_url, pg, unique};

/// A fresh database in the shared cluster, migrated; its URL and a store with one
/// connection (so every statement below runs on the connection whose plans we read).
async fn fresh_store() -> (PgStore, String) {
    let name = format!("corr_{}", unique());
    pg().await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    let shared = database_url();
    let (shared, query) = shared.split_once('?').unwrap_or((&shared, ""));
    let (base, _) = shared
        .rsplit_once('/')
        .map(|(b, d)| (b.to_owned(), d.to_owned()))
        .expect("DATABASE_URL has a path");
    let url = format!("{base}/{name}?{query}");
    let settings = PostgresSettings::parse(&url).expect("DATABASE_URL");
    let store = PgStore::connect(&settings, 1, DEFAULT_STATEMENT_TIMEOUT).expect("pool");
    store.migrate().await.expect("migrate");
    (store, url)
}

/// A client of its own on the store's database.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Rows of operator `op` in the store's database.
async fn rows_of(url: &str, op: &OperatorId) -> i64 {
    connect(url)
        .await
        .query_one(
            "SELECT count(*) FROM smpp.message_correlations WHERE operator_id = $1",
            &[&op.as_str()],
        )
        .await
        .unwrap()
        .get(0)
}

fn row(op: &OperatorId, i: usize) -> CorrelationRow {
    CorrelationRow {
        message_id: format!("m{i}"),
        segment_index: 1,
        segment_count: 1,
        bind: BindKey::new(op.clone(), Direction::Trx, 0),
        operator_message_id: format!("{i:x}"),
        submitted_at: Utc::now(),
        concat_ref: None,
        traceparent: None,
    }
}

/// Measured: the receipt UPDATE was planned while the table was empty, PostgreSQL kept
/// that generic plan (a hash join over a sequential scan of the whole table) and every
/// receipt batch then read every row: 1,755 scans and 20.9 M rows read in a 30,000-message
/// benchmark, PostgreSQL at 65 % of the machine's CPU. A receipt must cost an index probe
/// however small the table was when the statement was first prepared.
#[tokio::test]
async fn receipt_matching_probes_the_index_after_the_table_grew() {
    let (store, _url) = fresh_store().await;
    let op = OperatorId::try_new("planop").unwrap();
    let miss = || {
        vec![(
            ReceiptKey {
                operator_id: op.as_str().to_owned(),
                operator_message_id: "nothing".to_owned(),
            },
            "DELIVRD",
        )]
    };
    // Receipts against an empty table: more than the five custom plans after which
    // PostgreSQL may settle on a generic plan.
    for _ in 0..10 {
        assert!(store.apply_receipts(miss()).await.unwrap().is_empty());
    }
    for chunk in (0..20_000).collect::<Vec<_>>().chunks(2_000) {
        store
            .insert(&chunk.iter().map(|&i| row(&op, i)).collect::<Vec<_>>())
            .await
            .unwrap();
    }
    let matched = store
        .apply_receipts(vec![(
            ReceiptKey {
                operator_id: op.as_str().to_owned(),
                operator_message_id: format!("{:x}", 12_345),
            },
            "DELIVRD",
        )])
        .await
        .unwrap();
    assert_eq!(matched.len(), 1, "the receipt matched its row");

    // The plan the store's own connection would run for the next receipt batch.
    let client = store.pool().get().await.unwrap();
    let name: String = client
        .query_one(
            "SELECT name FROM pg_prepared_statements \
             WHERE statement LIKE 'WITH r AS%UPDATE smpp.message_correlations c%'",
            &[],
        )
        .await
        .expect("the receipt statement is prepared on this connection")
        .get(0);
    let plan: Vec<String> = client
        .query(
            &format!("EXPLAIN EXECUTE {name}('{{planop}}', '{{abc}}', '{{DELIVRD}}')"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(
        !plan.contains("Seq Scan on message_correlations"),
        "a receipt batch scans the whole table:\n{plan}"
    );
    assert!(plan.contains("Index Scan"), "no index probe:\n{plan}");
}

/// An SMSC that restarts (or a small DEC counter that wraps) hands out a message id again
/// within the 72 hours a row lives. Measured: after one simulator restart the receipt
/// UPDATE wrote 8,106 older rows with another message's status. A receipt marks the newest
/// row with its id only; the older message keeps what it had.
#[tokio::test]
async fn a_reused_operator_message_id_marks_only_the_newest_row() {
    let (store, url) = fresh_store().await;
    let op = OperatorId::try_new("reuseop").unwrap();
    let older_at = Utc::now() - chrono::Duration::hours(5);
    let mut older = row(&op, 7);
    older.message_id = "older-message".into();
    older.submitted_at = older_at;
    let mut newer = row(&op, 7);
    newer.message_id = "newer-message".into();
    store.insert(&[older.clone(), newer.clone()]).await.unwrap();
    // A receipt for the id both rows carry.
    let key = ReceiptKey {
        operator_id: op.as_str().to_owned(),
        operator_message_id: older.operator_message_id.clone(),
    };
    let matched = store
        .apply_receipts(vec![(key.clone(), "DELIVRD")])
        .await
        .unwrap();
    let hit = matched.get(&key).expect("the receipt matched");
    assert_eq!(hit.message_id, "newer-message", "matched the newest row");

    let client = connect(&url).await;
    let rows = client
        .query(
            "SELECT message_id, dlr_status FROM smpp.message_correlations \
             WHERE operator_id = $1 ORDER BY submitted_at",
            &[&op.as_str()],
        )
        .await
        .unwrap();
    let statuses: Vec<(String, Option<String>)> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        statuses,
        vec![
            ("older-message".to_owned(), None),
            ("newer-message".to_owned(), Some("DELIVRD".to_owned()))
        ],
        "only the newest row got the receipt"
    );
}

/// Rows live 72 hours: the sweep deletes those whose `expires_at` passed, in short batches
/// oldest first, and leaves the others; inserts and receipt matches go on meanwhile.
#[tokio::test]
async fn the_sweep_deletes_expired_rows_in_batches_and_keeps_the_rest() {
    let (store, url) = fresh_store().await;
    let op = OperatorId::try_new("sweepop").unwrap();
    let expired: Vec<CorrelationRow> = (0..25)
        .map(|i| {
            let mut r = row(&op, i);
            r.submitted_at = Utc::now() - chrono::Duration::hours(73);
            r
        })
        .collect();
    let live: Vec<CorrelationRow> = (100..110).map(|i| row(&op, i)).collect();
    store.insert(&expired).await.unwrap();
    store.insert(&live).await.unwrap();

    assert_eq!(
        store.sweep_expired(10).await.unwrap(),
        10,
        "one batch at most"
    );
    // The rest in batches, while a receipt for a live row and new inserts come in.
    let receipt = store.apply_receipts(vec![(
        ReceiptKey {
            operator_id: op.as_str().to_owned(),
            operator_message_id: live[0].operator_message_id.clone(),
        },
        "DELIVRD",
    )]);
    let more = store.insert(&(200..205).map(|i| row(&op, i)).collect::<Vec<_>>());
    let swept = smpp_connector_actors::correlation::sweep(&store, std::time::Duration::MAX);
    let (matched, inserted, swept) = tokio::join!(receipt, more, swept);
    assert_eq!(
        matched.unwrap().len(),
        1,
        "a live row still matches its receipt"
    );
    inserted.unwrap();
    assert_eq!(swept.unwrap(), 15, "every expired row, nothing else");
    assert_eq!(store.sweep_expired(10).await.unwrap(), 0);

    let left = rows_of(&url, &op).await;
    assert_eq!(left, 15, "the 10 live rows and the 5 new ones stay");
}

/// Rows live `CORRELATION_RETENTION_SECONDS` (72 h unless set): the sweep deletes them
/// that long after they were submitted, not before.
#[tokio::test]
async fn rows_expire_after_the_configured_retention() {
    let (store, url) = fresh_store().await;
    let store = store.with_retention(std::time::Duration::from_secs(600));
    let op = OperatorId::try_new("retentionop").unwrap();
    let mut old = row(&op, 1);
    old.submitted_at = Utc::now() - chrono::Duration::seconds(601);
    let mut young = row(&op, 2);
    young.submitted_at = Utc::now() - chrono::Duration::seconds(590);
    store.insert(&[old, young]).await.unwrap();
    let client = connect(&url).await;
    let lives: f64 = client
        .query_one(
            "SELECT max(extract(epoch FROM expires_at - submitted_at))::float8 \
             FROM smpp.message_correlations",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(lives, 600.0);
    assert_eq!(
        store.sweep_expired(10).await.unwrap(),
        1,
        "only the older row"
    );
}

/// A database error says what went wrong (tokio_postgres alone prints "db error").
#[tokio::test]
async fn database_errors_are_described_with_their_message_and_sqlstate() {
    let client = pg().await;
    let err = client
        .query("SELECT 1 / 0", &[])
        .await
        .expect_err("division by zero");
    assert_eq!(err.to_string(), "db error", "what the driver says alone");
    let described = smpp_connector_actors::correlation::describe(&err);
    assert!(described.contains("division by zero"), "{described}");
    assert!(described.contains("SQLSTATE 22012"), "{described}");
    // A connection error keeps its cause.
    let refused =
        tokio_postgres::connect("postgres://nobody@127.0.0.1:1/none", tokio_postgres::NoTls)
            .await
            .err()
            .expect("nothing listens on port 1");
    let described = smpp_connector_actors::correlation::describe(&refused);
    assert!(described.to_lowercase().contains("refused"), "{described}");
}

/// PostgreSQL refuses a row for good (here: an operator message id too large for the
/// receipt index, SQLSTATE 54000): the error says so (`Refused`, not an outage), and the
/// batch it was in is split until only that row fails; its neighbours are written.
#[tokio::test]
async fn a_row_postgresql_refuses_for_good_is_isolated_from_its_batch() {
    use smpp_connector_actors::correlation::insert_isolating;
    use std::sync::Arc;

    let (store, url) = fresh_store().await;
    let op = OperatorId::try_new(&format!("op{}", unique())).unwrap();
    let mut rows: Vec<CorrelationRow> = (0..10).map(|i| row(&op, i)).collect();
    // 4,000 characters that do not compress: past the btree's 2,704-byte row limit.
    rows[6].operator_message_id = (0..500)
        .map(|n: u32| format!("{:08x}", n.wrapping_mul(2_654_435_761)))
        .collect();
    let answers = insert_isolating(Arc::new(store), rows).await;
    for (i, answer) in answers.iter().enumerate() {
        if i == 6 {
            let err = answer.as_ref().unwrap_err();
            assert!(err.is_permanent(), "{err}");
            assert!(err.to_string().contains("54000"), "{err}");
        } else {
            assert!(answer.is_ok(), "row {i}: {answer:?}");
        }
    }
    assert_eq!(rows_of(&url, &op).await, 9);
}
