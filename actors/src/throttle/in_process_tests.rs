//! `ThrottleActor` over [`MemoryRedis`], in-process under a paused tokio clock: the TPS
//! window's bound and its slide, failing open through an outage and back, sequence and
//! reference blocks, remembered references' TTL, and the MO parts' life (stored, due
//! after the window, claimed once under a lease, reclaimed when the lease ends).
//!
//! `tokio::time::pause()` stops the clock the actor, the limiter and `MemoryRedis` read;
//! only `tokio::time::advance` moves it, so every offset into a window is exact.

use std::time::Duration;

use actix::prelude::*;
use smpp_connector::backends::RedisTopology;
use smpp_connector::config::{BindKey, Direction, OperatorId};
use smpp_connector::dispatch::throttle::{legacy, seq_key};
use smpp_connector::inbound::reassembly::{MoKey, index_of, open_index_key};

use super::mo::{CLAIM_LEASE, ClaimExpiredMo, FinishMo, StoreMoPart, Stored};
use super::*;
use crate::telemetry::metric;
use crate::telemetry::test_metrics::TestMetrics;

fn operator(name: &str) -> OperatorId {
    OperatorId::try_new(name).expect("operator id")
}

fn bind(op: &OperatorId, id: u16) -> BindKey {
    BindKey::new(op.clone(), Direction::Trx, id)
}

fn start(redis: &MemoryRedis) -> Addr<ThrottleActor> {
    ThrottleActor::new(redis.shared(), RedisTopology::Standalone).start()
}

async fn ask(throttle: &Addr<ThrottleActor>, key: &BindKey, limit: u32, want: u32) -> TpsGrant {
    throttle
        .send(AcquireTps {
            bind: key.clone(),
            limit,
            want,
            live_binds: 4,
        })
        .await
        .expect("throttle answers")
}

/// Move the paused clock and let what became due run.
async fn advance(by: Duration) {
    tokio::time::advance(by).await;
}

/// Three binds of one operator share its limit within a window; the previous window
/// weighs on the next one linearly (100 granted in second 0 leave 25 at 1.25 s), and a
/// window two seconds back weighs nothing.
#[actix_rt::test]
async fn tps_grants_share_the_operator_limit_and_the_window_slides() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let op = operator("opslide");
    let binds: Vec<BindKey> = (0..3).map(|id| bind(&op, id)).collect();

    let mut granted = Vec::new();
    for key in &binds {
        granted.push(ask(&throttle, key, 100, 40).await);
    }
    assert_eq!(
        granted.iter().map(|g| g.granted).collect::<Vec<_>>(),
        [40, 40, 20]
    );
    assert!(granted.iter().all(|g| !g.fail_open));
    assert_eq!(
        granted[0].valid_for,
        Duration::from_secs(1),
        "at the window's start"
    );
    assert_eq!(ask(&throttle, &binds[0], 100, 1).await.granted, 0);

    advance(Duration::from_millis(500)).await;
    let refused = ask(&throttle, &binds[1], 100, 10).await;
    assert_eq!(refused.granted, 0, "still the same window");
    assert_eq!(refused.valid_for, Duration::from_millis(500));

    // 1.25 s: previous 100 × 0.75 weighs 75.
    advance(Duration::from_millis(750)).await;
    let slid = ask(&throttle, &binds[2], 100, 40).await;
    assert_eq!(slid.granted, 25);
    assert_eq!(slid.valid_for, Duration::from_millis(750));

    // 1.75 s: 100 × 0.25 + 25 = 50 used.
    advance(Duration::from_millis(500)).await;
    assert_eq!(ask(&throttle, &binds[0], 100, 40).await.granted, 40);
    assert_eq!(ask(&throttle, &binds[1], 100, 40).await.granted, 10);

    // 3.5 s: the window before (second 2) granted nothing, second 1 no longer counts.
    advance(Duration::from_millis(1750)).await;
    assert_eq!(ask(&throttle, &binds[2], 100, 100).await.granted, 100);
}

/// Over 20 seconds of three binds asking every 7 ms — except, every 4 s, a pause from
/// 2.0 s to 2.9 s, so a burst lands just before a window's edge — no aligned second holds
/// more than the limit, no one-second span reaches twice the limit (the bound of
/// `smpp_connector::dispatch::throttle`; fixed windows would give the burst a second full limit
/// right after the edge), and the binds together still get at least 80 % of it.
#[actix_rt::test]
async fn tps_grants_never_exceed_the_limit_in_any_second() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let op = operator("opbound");
    let binds: Vec<BindKey> = (0..3).map(|id| bind(&op, id)).collect();
    let limit = 120;
    let step = Duration::from_millis(7);
    let run = Duration::from_secs(20);

    let mut grants: Vec<(Duration, u32)> = Vec::new();
    let mut at = Duration::ZERO;
    let mut turn = 0;
    while at < run {
        let phase = at.as_millis() % 4000;
        if (2000..2900).contains(&phase) {
            advance(step).await;
            at += step;
            continue;
        }
        let want = [17, 30, 45][turn % 3];
        let grant = ask(&throttle, &binds[turn % 3], limit, want).await;
        assert!(!grant.fail_open);
        if grant.granted > 0 {
            grants.push((at, grant.granted));
        }
        turn += 1;
        advance(step).await;
        at += step;
    }
    let total: u32 = grants.iter().map(|(_, g)| g).sum();
    for second in 0..run.as_secs() {
        let window = Duration::from_secs(second)..Duration::from_secs(second + 1);
        let in_window: u32 = grants
            .iter()
            .filter(|(t, _)| window.contains(t))
            .map(|(_, g)| g)
            .sum();
        assert!(in_window <= limit, "second {second}: {in_window} > {limit}");
    }
    for (end, _) in &grants {
        let from = end.saturating_sub(Duration::from_secs(1));
        let span: u32 = grants
            .iter()
            .filter(|(t, _)| *t > from && t <= end)
            .map(|(_, g)| g)
            .sum();
        assert!(span < 2 * limit, "one second up to {end:?}: {span}");
    }
    assert!(
        total >= limit * 20 * 8 / 10,
        "the limit is used, not starved: {total} in 20 s"
    );
}

/// Redis down: the first call fails (one error counted), later ones are not even sent
/// while the client is not connected; each bind is granted from its own local bucket
/// (limit ÷ bindCount, refilled by the clock), counted in the fail-open metrics. Redis
/// back: grants come from the shared window again and the gauge returns to 0.
#[actix_rt::test]
async fn a_redis_outage_fails_open_per_bind_and_recovers() {
    tokio::time::pause();
    let metrics = TestMetrics::install();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let op = operator("opoutage");
    let (first, second) = (bind(&op, 0), bind(&op, 1));
    let mno = [("mno", "opoutage")];

    assert!(!ask(&throttle, &first, 100, 10).await.fail_open);
    redis.set_down(true);
    let calls = redis.calls();

    let grant = ask(&throttle, &first, 100, 100).await;
    assert!(grant.fail_open);
    assert_eq!(grant.granted, 25, "a full bucket: 100 ÷ 4 binds");
    assert_eq!(grant.valid_for, WINDOW);
    assert_eq!(redis.calls(), calls + 1, "the failing call reached Redis");
    assert_eq!(
        metrics.value(metric::BACKEND_ERRORS, &[("backend", "redis")]),
        1.0
    );

    assert_eq!(ask(&throttle, &first, 100, 100).await.granted, 0, "spent");
    assert_eq!(
        ask(&throttle, &second, 100, 100).await.granted,
        25,
        "the other bind has a bucket of its own"
    );
    assert_eq!(
        redis.calls(),
        calls + 1,
        "not connected: nothing sent while the outage lasts"
    );
    advance(Duration::from_millis(400)).await;
    assert_eq!(
        ask(&throttle, &first, 100, 100).await.granted,
        10,
        "refilled at 25/s for 0.4 s"
    );
    assert_eq!(metrics.value(metric::TPS_FAIL_OPEN_TOTAL, &mno), 4.0);
    assert_eq!(metrics.value(metric::TPS_FAIL_OPEN, &mno), 1.0);
    assert_eq!(
        metrics.value(metric::BACKEND_ERRORS, &[("backend", "redis")]),
        4.0
    );

    redis.set_down(false);
    let back = ask(&throttle, &first, 100, 100).await;
    assert!(!back.fail_open);
    assert_eq!(
        back.granted, 90,
        "the shared window again: 10 granted before the outage, 0.4 s in"
    );
    assert_eq!(metrics.value(metric::TPS_FAIL_OPEN, &mno), 0.0);
    assert_eq!(metrics.value(metric::TPS_FAIL_OPEN_TOTAL, &mno), 4.0);
}

/// Sequence blocks of a bind never overlap: not between two processes the bind moves
/// between, not after Redis restarted empty (the process's floor), and the first block
/// starts above the counter under its legacy name.
#[actix_rt::test]
async fn sequence_blocks_are_disjoint() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let key = bind(&operator("opseq"), 3);
    redis.set_integer(&legacy::seq_key(&key), 5_000);
    let (pod_a, pod_b) = (start(&redis), start(&redis));
    let reserve = |pod: &Addr<ThrottleActor>, count| {
        pod.send(ReserveSequences {
            key: key.clone(),
            count,
        })
    };

    let mut blocks = Vec::new();
    for (n, pod) in [&pod_a, &pod_b, &pod_a, &pod_b].into_iter().enumerate() {
        blocks.push(reserve(pod, 100 + n as u32).await.unwrap().unwrap());
    }
    assert_eq!(blocks[0], (5_001, 100), "above the legacy counter");
    redis.flush_all();
    blocks.push(reserve(&pod_b, 50).await.unwrap().unwrap());

    let mut numbers: Vec<u32> = blocks
        .iter()
        .flat_map(|(first, len)| *first..first + len)
        .collect();
    let all = numbers.len();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), all, "a number handed out twice: {blocks:?}");
    assert_eq!(all, 100 + 101 + 102 + 103 + 50);
    assert!(redis.exists(&seq_key(&key)));
}

/// A long message's remembered reference is found for its 72 hours (and under its legacy
/// name), then it is gone; reference blocks follow one another.
#[actix_rt::test]
async fn concat_references_are_blocks_and_remembered_for_72_hours() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let op = operator("opref");
    let key = bind(&op, 0);
    let first = throttle
        .send(ReserveConcatRefs {
            key: key.clone(),
            count: 16,
        })
        .await
        .unwrap()
        .unwrap();
    let next = throttle
        .send(ReserveConcatRefs {
            key: key.clone(),
            count: 16,
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first, next), (1, 17));

    throttle
        .send(RememberConcatRef {
            operator_id: op.clone(),
            message_id: "m-1".into(),
            reference: 200,
        })
        .await
        .unwrap()
        .unwrap();
    redis.set_integer(&legacy::concat_message_key(&op, "m-old"), 7);
    let recall = |id: &str| {
        throttle.send(RecallConcatRef {
            operator_id: op.clone(),
            message_id: id.into(),
        })
    };
    assert_eq!(recall("m-1").await.unwrap().unwrap(), Some(200));
    assert_eq!(recall("m-old").await.unwrap().unwrap(), Some(7));
    assert_eq!(recall("m-2").await.unwrap().unwrap(), None);

    advance(CONCAT_MESSAGE_TTL - Duration::from_secs(1)).await;
    assert_eq!(recall("m-1").await.unwrap().unwrap(), Some(200));
    advance(Duration::from_secs(1)).await;
    assert_eq!(recall("m-1").await.unwrap().unwrap(), None, "expired");
}

fn mo_key(reference: u16) -> MoKey {
    MoKey {
        operator_id: "opmo".into(),
        source: "15550001".into(),
        destination: "4242".into(),
        reference,
        total: 3,
    }
}

fn part(key: &MoKey, seq: u8, text: &[u8]) -> StoreMoPart {
    StoreMoPart {
        key: key.clone(),
        bind_id: 0,
        seq,
        value: smpp_connector::inbound::reassembly::stored_value(0, text),
        window: Duration::from_secs(60),
    }
}

fn claim() -> ClaimExpiredMo {
    ClaimExpiredMo {
        operator_id: "opmo".into(),
        bind_id: 0,
        legacy: false,
    }
}

/// Two of three parts, then the window ends: the message is due, one pod claims it (the
/// other, scanning at once, gets nothing), a late part is answered busy; the claiming pod
/// dies before publishing, so the lease ends and the other pod claims it. Finished
/// partial, it is no longer listed and a repeat of its part is recognised until the
/// tombstone goes.
#[actix_rt::test]
async fn mo_parts_are_due_after_the_window_claimed_once_and_reclaimed_after_the_lease() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let (pod_a, pod_b) = (start(&redis), start(&redis));
    let key = mo_key(9);

    let stored = pod_a.send(part(&key, 1, b"hello ")).await.unwrap().unwrap();
    assert!(
        matches!(stored, Stored::Waiting { received: 1 }),
        "{stored:?}"
    );
    advance(Duration::from_secs(10)).await;
    let stored = pod_b.send(part(&key, 3, b"!")).await.unwrap().unwrap();
    assert!(
        matches!(stored, Stored::Waiting { received: 2 }),
        "{stored:?}"
    );
    let repeat = pod_b.send(part(&key, 3, b"!")).await.unwrap().unwrap();
    assert!(matches!(repeat, Stored::Repeat), "{repeat:?}");

    // The window runs from the first part: 60 s.
    advance(Duration::from_secs(49)).await;
    let early = pod_a.send(claim()).await.unwrap().unwrap();
    assert_eq!((early.open, early.messages.len()), (1, 0), "not due yet");

    advance(Duration::from_secs(1)).await;
    let claimed = pod_a.send(claim()).await.unwrap().unwrap();
    assert_eq!((claimed.open, claimed.gone), (1, 0));
    let [(hash, message)] = claimed.messages.as_slice() else {
        panic!("one message claimed: {claimed:?}")
    };
    assert_eq!(hash, &key.redis_key());
    let mut parts: Vec<u8> = message.parts.iter().map(|(seq, _)| *seq).collect();
    parts.sort_unstable();
    assert_eq!(parts, [1, 3]);
    assert_eq!(message.meta.as_ref().map(|m| m.total), Some(3));

    let again = pod_b.send(claim()).await.unwrap().unwrap();
    assert!(again.messages.is_empty(), "claimed once: {again:?}");
    let late = pod_b.send(part(&key, 2, b"world")).await.unwrap().unwrap();
    assert!(matches!(late, Stored::Busy), "{late:?}");

    // Pod A never finishes it: after the lease, pod B claims it again.
    advance(CLAIM_LEASE - Duration::from_millis(1)).await;
    assert!(
        pod_b
            .send(claim())
            .await
            .unwrap()
            .unwrap()
            .messages
            .is_empty()
    );
    advance(Duration::from_millis(1)).await;
    let reclaimed = pod_b.send(claim()).await.unwrap().unwrap();
    assert_eq!(reclaimed.messages.len(), 1, "reclaimed after the lease");

    let keep = Duration::from_secs(300);
    pod_b
        .send(FinishMo {
            redis_key: hash.clone(),
            index_key: index_of(hash, "opmo", 0),
            complete: false,
            keep,
        })
        .await
        .unwrap()
        .unwrap();
    let after = pod_a.send(claim()).await.unwrap().unwrap();
    assert_eq!((after.open, after.messages.len()), (0, 0));
    assert!(
        !redis.exists(&open_index_key("opmo", 0)),
        "an empty index is removed"
    );
    // The tombstone keeps neither the numbers (meta) nor the text (issue 21).
    let tombstone = redis.hash_fields(hash);
    assert!(!tombstone.is_empty(), "still there, as a tombstone");
    assert!(
        tombstone
            .iter()
            .all(|(name, value)| name != b"m" && !value.windows(5).any(|w| w == b"hello")),
        "no meta, no text: {tombstone:?}"
    );
    let repeat = pod_a.send(part(&key, 1, b"hello ")).await.unwrap().unwrap();
    assert!(matches!(repeat, Stored::Repeat), "tombstone: {repeat:?}");

    advance(keep).await;
    let fresh = pod_a.send(part(&key, 1, b"hello ")).await.unwrap().unwrap();
    assert!(
        matches!(fresh, Stored::Waiting { received: 1 }),
        "the tombstone is gone: a new message: {fresh:?}"
    );
}

/// The part that completes a message gets every part back; a different message reusing
/// the key while one is open is a conflict carrying the open one.
#[actix_rt::test]
async fn mo_completion_and_conflict() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let key = mo_key(11);
    for seq in [2, 1] {
        throttle.send(part(&key, seq, b"x")).await.unwrap().unwrap();
    }
    let conflict = throttle
        .send(part(&key, 1, b"other"))
        .await
        .unwrap()
        .unwrap();
    let Stored::Conflict(open) = conflict else {
        panic!("conflict expected: {conflict:?}")
    };
    assert_eq!(open.parts.len(), 2);
    let complete = throttle.send(part(&key, 3, b"x")).await.unwrap().unwrap();
    let Stored::Complete(message) = complete else {
        panic!("complete expected: {complete:?}")
    };
    assert_eq!(
        message
            .parts
            .iter()
            .map(|(seq, _)| *seq)
            .collect::<Vec<_>>(),
        [2, 1, 3],
        "in the order stored, as HGETALL answers"
    );
    throttle
        .send(FinishMo {
            redis_key: key.redis_key(),
            index_key: open_index_key("opmo", 0),
            complete: true,
            keep: Duration::from_secs(60),
        })
        .await
        .unwrap()
        .unwrap();
    advance(Duration::from_secs(61)).await;
    let scan = throttle.send(claim()).await.unwrap().unwrap();
    assert_eq!((scan.open, scan.messages.len()), (0, 0));
}

/// A message whose hash expired before any scan (no pod owned its bind for the whole
/// grace) is counted gone and unlisted.
#[actix_rt::test]
async fn an_expired_mo_hash_is_counted_gone() {
    tokio::time::pause();
    let redis = MemoryRedis::new();
    let throttle = start(&redis);
    let key = mo_key(12);
    throttle.send(part(&key, 1, b"x")).await.unwrap().unwrap();
    advance(Duration::from_secs(60) + Duration::from_secs(3600)).await;
    let scan = throttle.send(claim()).await.unwrap().unwrap();
    assert_eq!((scan.open, scan.gone, scan.messages.len()), (0, 1, 0));
}
