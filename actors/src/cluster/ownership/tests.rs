//! Several pods' `OwnershipActor`s in one process over shared [`MemoryKv`] buckets,
//! under a paused tokio clock: what each pod tells its supervisor ([`StartBind`],
//! [`StopBind`]) is recorded with the time it was said, and the tests assert that
//! sequence — fair share, a pod cut off losing its binds to the others only after it
//! stopped them itself, a moved revision stopping a bind at once, graceful releases.
//!
//! Timers are the defaults: owner keys and heartbeats live 30 s, each pod ticks every
//! 10 s from its start, the first tick with an operator only announces the pod. Tokio's
//! timer wheel counts whole milliseconds, so a sleep may end a millisecond late: times
//! are asserted within [`SLACK`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use smpp_connector::cluster::ownership::OwnerRecord;
use smpp_connector::config::{Config, Direction, OperatorId};

use super::*;

const TTL: Duration = Duration::from_secs(30);
const REFRESH: Duration = Duration::from_secs(10);
const OPERATOR: &str = "opown";
/// How late a timer may fire on the paused clock (the wheel's millisecond rounding, a
/// few times over).
const SLACK: Duration = Duration::from_millis(20);

/// `at` is `expected`, give or take the timer wheel's rounding.
fn near(at: Duration, expected: Duration) -> bool {
    at + SLACK >= expected && at <= expected + SLACK
}

/// What a pod told its supervisor, and when (since the test's start).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Said {
    pod: &'static str,
    at: Duration,
    what: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Start(u16),
    Stop {
        id: u16,
        graceful: bool,
        reason: &'static str,
    },
}

type Log = Arc<Mutex<Vec<Said>>>;

/// Stands in for a pod's Supervisor: records the orders; a graceful stop is answered
/// [`Released`] at once (the bind drained instantly).
struct FakeSupervisor {
    pod: &'static str,
    log: Log,
    t0: tokio::time::Instant,
    ownership: Option<Addr<OwnershipActor>>,
}

impl Actor for FakeSupervisor {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "()")]
struct Owner(Addr<OwnershipActor>);

impl Handler<Owner> for FakeSupervisor {
    type Result = ();

    fn handle(&mut self, msg: Owner, _ctx: &mut Context<Self>) {
        self.ownership = Some(msg.0);
    }
}

impl FakeSupervisor {
    fn note(&self, what: Order) {
        self.log.lock().unwrap().push(Said {
            pod: self.pod,
            at: self.t0.elapsed(),
            what,
        });
    }
}

impl Handler<StartBind> for FakeSupervisor {
    type Result = ();

    fn handle(&mut self, msg: StartBind, _ctx: &mut Context<Self>) {
        self.note(Order::Start(msg.key.bind_id));
    }
}

impl Handler<StopBind> for FakeSupervisor {
    type Result = ();

    fn handle(&mut self, msg: StopBind, _ctx: &mut Context<Self>) {
        self.note(Order::Stop {
            id: msg.key.bind_id,
            graceful: msg.graceful,
            reason: msg.reason,
        });
        if msg.graceful
            && let Some(ownership) = &self.ownership
        {
            ownership.do_send(Released { key: msg.key });
        }
    }
}

/// The shared buckets of one "cluster" and the log of every pod's orders.
struct Cluster {
    owners: MemoryKv,
    pods: MemoryKv,
    log: Log,
    t0: tokio::time::Instant,
}

/// One pod: its ownership actor and its own connections to the buckets.
struct Pod {
    ownership: Addr<OwnershipActor>,
    owners: MemoryKv,
    pods: MemoryKv,
}

impl Cluster {
    fn new() -> Self {
        tokio::time::pause();
        Cluster {
            owners: MemoryKv::new(TTL),
            pods: MemoryKv::new(TTL),
            log: Log::default(),
            t0: tokio::time::Instant::now(),
        }
    }

    /// Start pod `name` and give it the operator's `bind_count` (as its supervisor does
    /// once OMS answered: after the actor's first tick, which had no operator yet).
    async fn pod(&self, name: &'static str, bind_count: u16) -> Pod {
        let config = pod_config(name);
        let supervisor = FakeSupervisor {
            pod: name,
            log: self.log.clone(),
            t0: self.t0,
            ownership: None,
        }
        .start();
        let (owners, pods) = (self.owners.client(), self.pods.client());
        let ownership = OwnershipActor::new(
            config,
            (owners.shared(), pods.shared()),
            supervisor.clone().recipient(),
            supervisor.clone().recipient(),
            Arc::new(Readiness::default()),
        )
        .start();
        supervisor.send(Owner(ownership.clone())).await.unwrap();
        ownership
            .send(OperatorBinds {
                operator_id: operator(),
                bind_count,
            })
            .await
            .unwrap();
        Pod {
            ownership,
            owners,
            pods,
        }
    }

    fn said(&self) -> Vec<Said> {
        self.log.lock().unwrap().clone()
    }

    /// Orders said after `since`.
    fn said_after(&self, since: Duration) -> Vec<Said> {
        self.said().into_iter().filter(|s| s.at > since).collect()
    }

    /// Which pod runs which bind, from the orders said so far (a start runs it, a stop
    /// ends it); panics if two pods run one bind at once.
    fn running(&self) -> BTreeMap<u16, &'static str> {
        let mut running = BTreeMap::new();
        for said in self.said() {
            match said.what {
                Order::Start(id) => {
                    if let Some(other) = running.insert(id, said.pod) {
                        panic!("bind {id} started on {} while {other} runs it", said.pod);
                    }
                }
                Order::Stop { id, .. } => {
                    assert_eq!(running.remove(&id), Some(said.pod), "{said:?}");
                }
            }
        }
        running
    }

    /// Owner pod of each bind id, as the owners bucket says now.
    fn owners_now(&self) -> BTreeMap<u16, String> {
        self.owners
            .snapshot()
            .into_iter()
            .filter_map(|(key, value)| {
                let id = smpp_connector::cluster::ownership::bind_id_of(
                    &key,
                    &operator(),
                    Direction::Trx,
                )?;
                let record: OwnerRecord = serde_json::from_slice(&value).ok()?;
                Some((id, record.pod))
            })
            .collect()
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }
}

/// A pod's configuration: the default ownership timers, written out.
fn pod_config(name: &str) -> Arc<Config> {
    crate::test_support::config(
        OPERATOR,
        name,
        &[
            ("OWNER_TTL_MS", "30000"),
            ("OWNER_REFRESH_MS", "10000"),
            ("RECONCILE_MS", "30000"),
        ],
    )
}

fn operator() -> OperatorId {
    OperatorId::try_new(OPERATOR).expect("operator id")
}

/// Let the clock run `by` (timers fire in order, and what they started finishes).
async fn run_for(by: Duration) {
    tokio::time::sleep(by).await;
}

fn per_pod(running: &BTreeMap<u16, &'static str>) -> BTreeMap<&'static str, BTreeSet<u16>> {
    let mut pods: BTreeMap<&'static str, BTreeSet<u16>> = BTreeMap::new();
    for (id, pod) in running {
        pods.entry(pod).or_default().insert(*id);
    }
    pods
}

/// Three pods starting together: the first tick announces them, the second gives each
/// its fair share of six binds (two), each bind to one pod, and nothing moves after.
#[actix_rt::test]
async fn three_pods_reach_their_fair_share() {
    let cluster = Cluster::new();
    let _pods = [
        cluster.pod("pod-a", 6).await,
        cluster.pod("pod-b", 6).await,
        cluster.pod("pod-c", 6).await,
    ];
    run_for(REFRESH - SLACK).await;
    assert!(cluster.said().is_empty(), "nobody claims on the first tick");

    run_for(SLACK).await;
    let running = cluster.running();
    assert_eq!(running.len(), 6, "{running:?}");
    let share = per_pod(&running);
    assert_eq!(
        share.values().map(BTreeSet::len).collect::<Vec<_>>(),
        [2, 2, 2],
        "{share:?}"
    );
    assert!(cluster.said().iter().all(|s| near(s.at, REFRESH)));
    let owners = cluster.owners_now();
    for (id, pod) in &running {
        assert_eq!(owners.get(id).map(String::as_str), Some(*pod));
    }

    run_for(TTL * 3).await;
    assert_eq!(
        cluster.said().len(),
        6,
        "stable: {:?}",
        cluster.said_after(REFRESH)
    );
}

/// A pod cut off from NATS stops heartbeating and refreshing. It stops its own binds
/// once they could not be refreshed for TTL − 2 refreshes (20 s), before its keys expire
/// (30 s after its last write); only then do the two other pods take them, within a
/// refresh of the expiry. No bind ever runs on two pods (`running` checks every order).
#[actix_rt::test]
async fn a_pod_cut_off_loses_its_binds_to_the_others_within_the_ttl() {
    let cluster = Cluster::new();
    let pods = [
        cluster.pod("pod-a", 6).await,
        cluster.pod("pod-b", 6).await,
        cluster.pod("pod-c", 6).await,
    ];
    run_for(REFRESH + SLACK).await;
    let before = per_pod(&cluster.running());
    let lost: BTreeSet<u16> = before["pod-c"].clone();
    assert_eq!(lost.len(), 2);

    // Cut at 15 s: pod-c's last writes were at 10 s.
    run_for(Duration::from_secs(5)).await;
    pods[2].owners.disconnect(true);
    pods[2].pods.disconnect(true);

    run_for(Duration::from_secs(40)).await;
    let after = cluster.said_after(REFRESH + SLACK);
    let stops: Vec<&Said> = after.iter().filter(|s| s.pod == "pod-c").collect();
    assert_eq!(stops.len(), 2, "{after:?}");
    for stop in &stops {
        let Order::Stop {
            id,
            graceful,
            reason,
        } = stop.what
        else {
            panic!("pod-c only stops: {stop:?}")
        };
        assert!(lost.contains(&id));
        assert!(!graceful);
        assert_eq!(reason, "ownership_unrefreshed");
        assert!(
            near(stop.at, Duration::from_secs(30)),
            "TTL − 2 refreshes after its last refresh at 10 s: {stop:?}"
        );
    }
    let taken: Vec<&Said> = after.iter().filter(|s| s.pod != "pod-c").collect();
    let taken_ids: BTreeSet<u16> = taken
        .iter()
        .map(|s| match s.what {
            Order::Start(id) => id,
            other => panic!("the others only start: {other:?}"),
        })
        .collect();
    assert_eq!(taken_ids, lost, "{after:?}");
    for start in &taken {
        assert!(
            start.at + SLACK >= REFRESH + TTL && start.at <= REFRESH + TTL + REFRESH + SLACK,
            "taken once the keys expired, within a refresh: {start:?}"
        );
    }
    let running = per_pod(&cluster.running());
    assert_eq!(
        running.values().map(BTreeSet::len).collect::<Vec<_>>(),
        [3, 3],
        "{running:?}"
    );
    assert!(!cluster.owners_now().values().any(|p| p == "pod-c"));
}

/// Another writer moves a held key's revision: the holder stops that bind at its next
/// refresh, at once (not gracefully), and keeps the others. A key rewritten with exactly
/// its own record (a refresh whose answer was lost) is still its own.
#[actix_rt::test]
async fn a_moved_revision_stops_the_bind_at_once() {
    let cluster = Cluster::new();
    let pods = [cluster.pod("pod-a", 2).await, cluster.pod("pod-b", 2).await];
    run_for(REFRESH + SLACK).await;
    let running = cluster.running();
    let a_id = *running.iter().find(|(_, p)| **p == "pod-a").unwrap().0;
    let b_id = *running.iter().find(|(_, p)| **p == "pod-b").unwrap().0;

    let intruder = cluster.owners.client();
    let foreign = serde_json::to_vec(&OwnerRecord {
        pod: "pod-x".into(),
        claimed_at: "2024-01-01T00:00:00Z".into(),
    })
    .unwrap();
    let a_key = ownership::owner_key(&operator(), Direction::Trx, a_id);
    intruder.put(&a_key, foreign.into()).await.unwrap();
    let b_key = ownership::owner_key(&operator(), Direction::Trx, b_id);
    let b_record = pods[1].owners.entry(&b_key).await.unwrap().unwrap().value;
    intruder.put(&b_key, b_record).await.unwrap();

    run_for(REFRESH).await;
    let after = cluster.said_after(REFRESH + SLACK);
    let [stop] = after.as_slice() else {
        panic!("one order: {after:?}")
    };
    assert_eq!(
        (stop.pod, stop.what),
        (
            "pod-a",
            Order::Stop {
                id: a_id,
                graceful: false,
                reason: "ownership_lost",
            }
        )
    );
    assert!(near(stop.at, REFRESH * 2), "at the next refresh: {stop:?}");
    assert_eq!(per_pod(&cluster.running())["pod-b"], BTreeSet::from([b_id]));
}

/// A third pod joins two that hold three binds each: each releases one gracefully
/// ("rebalance"), its key is deleted once the bind is down ([`Released`]), and the new
/// pod claims them at its next tick. Then a pod shutting down ([`ReleaseAll`]) deletes
/// its keys and heartbeat at once: the others take its binds at their next tick, not a
/// TTL later.
#[actix_rt::test]
async fn binds_are_released_gracefully_to_a_new_pod_and_on_shutdown() {
    let cluster = Cluster::new();
    let _a = cluster.pod("pod-a", 6).await;
    let b = cluster.pod("pod-b", 6).await;
    run_for(REFRESH + SLACK).await;
    assert_eq!(
        per_pod(&cluster.running())
            .values()
            .map(BTreeSet::len)
            .collect::<Vec<_>>(),
        [3, 3]
    );

    // pod-c starts at ~10 s: it announces itself at once, plans from ~20 s.
    let joined = cluster.now();
    let _c = cluster.pod("pod-c", 6).await;
    run_for(REFRESH * 2).await;
    let moves = cluster.said_after(joined);
    let released: Vec<u16> = moves
        .iter()
        .filter_map(|s| match s.what {
            Order::Stop {
                id,
                graceful: true,
                reason: "rebalance",
            } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(released.len(), 2, "one from each: {moves:?}");
    let claimed: Vec<&Said> = moves.iter().filter(|s| s.pod == "pod-c").collect();
    assert_eq!(claimed.len(), 2, "{moves:?}");
    for said in &claimed {
        let Order::Start(id) = said.what else {
            panic!("{said:?}")
        };
        assert!(released.contains(&id));
        let stop = moves
            .iter()
            .find(|s| matches!(s.what, Order::Stop { id: i, .. } if i == id))
            .unwrap();
        assert!(stop.at < said.at, "released before claimed: {moves:?}");
    }
    let share = per_pod(&cluster.running());
    assert_eq!(
        share.values().map(BTreeSet::len).collect::<Vec<_>>(),
        [2, 2, 2],
        "{share:?}"
    );

    let shutdown_at = cluster.now();
    let b_ids = share["pod-b"].clone();
    b.ownership.send(ReleaseAll).await.unwrap();
    let owners = cluster.owners_now();
    assert!(!owners.values().any(|p| p == "pod-b"), "{owners:?}");
    assert!(
        !cluster.pods.snapshot().keys().any(|k| k.ends_with("pod-b")),
        "heartbeat deleted"
    );
    // pod-b's supervisor stopped its binds before ReleaseAll (as at SIGTERM).
    cluster
        .log
        .lock()
        .unwrap()
        .extend(b_ids.iter().map(|id| Said {
            pod: "pod-b",
            at: shutdown_at,
            what: Order::Stop {
                id: *id,
                graceful: true,
                reason: "shutdown",
            },
        }));

    run_for(REFRESH).await;
    let taken: BTreeSet<u16> = cluster
        .said_after(shutdown_at)
        .iter()
        .filter_map(|s| match s.what {
            Order::Start(id) => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(taken, b_ids, "taken within a refresh, not a TTL");
    let share = per_pod(&cluster.running());
    assert_eq!(
        share.values().map(BTreeSet::len).collect::<Vec<_>>(),
        [3, 3],
        "{share:?}"
    );
}

/// An operator's bind count arriving while a tick is in flight (here: the actor's very
/// first tick, which had no operator) is not lost until the next interval: the pod
/// announces itself as soon as that tick ends and claims at its first interval tick,
/// not a refresh later.
#[actix_rt::test]
async fn a_bind_count_arriving_during_a_tick_is_announced_when_it_ends() {
    let cluster = Cluster::new();
    let _a = cluster.pod("pod-a", 2).await;
    let supervisor = FakeSupervisor {
        pod: "pod-b",
        log: cluster.log.clone(),
        t0: cluster.t0,
        ownership: None,
    }
    .start();
    let late = OwnershipActor::new(
        pod_config("pod-b"),
        (
            cluster.owners.client().shared(),
            cluster.pods.client().shared(),
        ),
        supervisor.clone().recipient(),
        supervisor.clone().recipient(),
        Arc::new(Readiness::default()),
    )
    .start();
    // Queued before the actor ran its first tick: handled while that tick is in flight.
    late.do_send(OperatorBinds {
        operator_id: operator(),
        bind_count: 2,
    });
    run_for(REFRESH + SLACK).await;
    let running = per_pod(&cluster.running());
    assert_eq!(
        running.get("pod-b").map(BTreeSet::len),
        Some(1),
        "pod-b announced at 0 s, claimed its share at 10 s: {:?}",
        cluster.said()
    );
}
