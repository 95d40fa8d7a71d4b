//! Supervisors of two pods in one process with their `OwnershipActor`s, over the
//! in-memory adapters ([`MemoryCredentials`], [`MemoryStore`], [`MemoryRedis`],
//! [`MemoryKv`]) under a paused clock: OMS's bind count reaches ownership, the binds are
//! shared between the pods and each pod runs exactly the binds it owns.
//!
//! What is not in memory: NATS events (the publisher's client points at a port nothing
//! listens on, so health events are never acknowledged, as with NATS down) and the SMSC
//! (the binds' TCP connects are refused and they back off). Receive-only binds
//! (`BIND_DIRECTION=rx`) have no lane consumers to create, which would need JetStream.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::{Actor, Addr};
use smpp_connector::config::{Config, OperatorId};

use super::{
    CorrelationActor, HealthPublisherActor, ListBinds, Readiness, SetOwnership, Shared, Shutdown,
    Supervisor,
};
use crate::cluster::ownership::{MemoryKv, OwnershipActor, ReleaseAll};
use crate::correlation::MemoryStore;
use crate::oms::MemoryCredentials;
use crate::test_support;
use crate::throttle::{MemoryRedis, ThrottleActor};

const OPERATOR: &str = "opsup";

fn config(pod: &str) -> Arc<Config> {
    test_support::config(OPERATOR, pod, &[("BIND_DIRECTION", "rx")])
}

/// One pod's supervisor and ownership over the shared in-memory backends.
async fn pod(
    name: &str,
    oms: &MemoryCredentials,
    owners: &MemoryKv,
    pods: &MemoryKv,
    nats_port: u16,
) -> (Addr<Supervisor>, Addr<OwnershipActor>) {
    let config = config(name);
    let publisher = test_support::unreachable_publisher(nats_port).await;
    let readiness = Arc::new(Readiness::default());
    let supervisor = Supervisor::new(
        Shared {
            config: config.clone(),
            credentials: Arc::new(oms.clone()),
            correlation: CorrelationActor::new(Arc::new(MemoryStore::new()), 100, 1).start(),
            publisher: publisher.clone(),
            health: HealthPublisherActor::new(publisher, name.to_owned()).start(),
            throttle: ThrottleActor::new(
                MemoryRedis::new().shared(),
                smpp_connector::backends::RedisTopology::Standalone,
            )
            .start(),
            tls: crate::tls::smpp_connector(&config.smpp_tls).expect("tls"),
        },
        readiness.clone(),
    )
    .start();
    let ownership = OwnershipActor::new(
        config,
        (owners.client().shared(), pods.client().shared()),
        supervisor.clone().recipient(),
        supervisor.clone().recipient(),
        readiness,
    )
    .start();
    supervisor
        .send(SetOwnership(ownership.clone()))
        .await
        .expect("supervisor");
    (supervisor, ownership)
}

async fn binds_of(supervisor: &Addr<Supervisor>) -> BTreeMap<u16, Option<String>> {
    supervisor
        .send(ListBinds)
        .await
        .expect("supervisor")
        .into_iter()
        .map(|status| (status.bind_id, status.owner_pod))
        .collect()
}

/// OMS is down when the pods start: each supervisor retries with backoff and starts no
/// bind; once OMS answers (bindCount 4), the count reaches ownership, the pods share the
/// binds two and two, and each supervisor runs exactly the binds its pod owns. Then
/// pod-b shuts down as at SIGTERM (its binds stop, its keys are handed back): pod-a runs
/// all four within a refresh.
#[actix_rt::test]
async fn supervisors_run_the_binds_their_pods_own_once_oms_answers() {
    tokio::time::pause();
    let oms = MemoryCredentials::new();
    let op = OperatorId::try_new(OPERATOR).expect("operator");
    let smsc = test_support::closed_port();
    oms.set_json(
        &op,
        &format!(
            r#"{{"operatorId":"{OPERATOR}","host":"127.0.0.1","port":{smsc},"systemId":"esme","password":"pw","bindCount":4}}"#
        ),
    );
    oms.set_down(true);
    let ttl = config("x").timers.owner_ttl;
    let (owners, pods) = (MemoryKv::new(ttl), MemoryKv::new(ttl));
    let nats = test_support::closed_port();
    let (a, _) = pod("pod-a", &oms, &owners, &pods, nats).await;
    let (b, b_ownership) = pod("pod-b", &oms, &owners, &pods, nats).await;

    tokio::time::sleep(Duration::from_secs(30)).await;
    let retries = oms.fetches(&op);
    assert!(retries > 2, "each supervisor retried: {retries}");
    assert!(binds_of(&a).await.is_empty() && binds_of(&b).await.is_empty());

    oms.set_down(false);
    // The next retry (backoff at most RECONNECT_BACKOFF_MAX), then two ownership ticks.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let (on_a, on_b) = (binds_of(&a).await, binds_of(&b).await);
    assert_eq!((on_a.len(), on_b.len()), (2, 2), "{on_a:?} {on_b:?}");
    let ids: BTreeSet<u16> = on_a.keys().chain(on_b.keys()).copied().collect();
    assert_eq!(ids, BTreeSet::from([0, 1, 2, 3]), "each bind on one pod");
    assert!(on_a.values().all(|owner| owner.as_deref() == Some("pod-a")));
    assert!(on_b.values().all(|owner| owner.as_deref() == Some("pod-b")));

    b.send(Shutdown {
        deadline: Duration::from_secs(5),
    })
    .await
    .expect("supervisor");
    b_ownership.send(ReleaseAll).await.expect("ownership");
    let refresh = config("x").timers.owner_refresh;
    tokio::time::sleep(refresh).await;
    let on_a = binds_of(&a).await;
    assert_eq!(
        on_a.keys().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([0, 1, 2, 3]),
        "pod-a took pod-b's binds within a refresh: {on_a:?}"
    );
    assert!(on_a.values().all(|owner| owner.as_deref() == Some("pod-a")));
}
