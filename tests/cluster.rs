//! Several service processes for one operator: each bind has exactly one owner (NATS KV
//! `smpp-bind-owners`), and a dead owner's bind moves within the scaled TTL.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::sim::credentials;
use crate::support::{Nats, Oms, Service, Sim, eventually, unique};

const T: Duration = Duration::from_secs(30);

async fn bound_sessions(sim: &Sim) -> usize {
    sim.connections()
        .await
        .iter()
        .filter(|c| !c["mode"].is_null())
        .count()
}

/// Owner pod of each bind key, read from the bucket.
async fn owners(nats: &Nats, op: &str, binds: u16) -> Vec<Option<String>> {
    let Ok(kv) = nats.js.get_key_value("smpp-bind-owners").await else {
        return vec![None; binds as usize];
    };
    let mut out = Vec::new();
    for id in 0..binds {
        let value = kv.get(format!("{op}.trx.{id}")).await.ok().flatten();
        out.push(value.and_then(|v| {
            serde_json::from_slice::<serde_json::Value>(&v).ok()?["pod"]
                .as_str()
                .map(str::to_owned)
        }));
    }
    out
}

#[tokio::test]
async fn three_pods_share_two_binds_and_a_killed_owner_is_replaced() {
    let test = "cluster_owners";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({}));
    let oms = Oms::start(
        test,
        credentials(&op, sim.smpp_port, json!({"bindCount": 2})),
    );
    let mut pods = Vec::new();
    for name in ["cluster_owners_a", "cluster_owners_b", "cluster_owners_c"] {
        pods.push(Some(Service::start(name, &nats, &oms, &op, &[]).await));
    }
    let owned = eventually(T, "two binds owned by two pods", || async {
        let owners = owners(&nats, &op, 2).await;
        let pods: BTreeSet<String> = owners.iter().flatten().cloned().collect();
        (pods.len() == 2 && bound_sessions(&sim).await == 2).then_some(owners)
    })
    .await;
    // Exactly two sessions for a while (no pod binds what it does not own).
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(
            bound_sessions(&sim).await <= 2,
            "more sessions than bindCount"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // kill -9 the owner of bind 0: another pod takes it within the TTL (2 s) and some
    // refreshes; never more than two sessions.
    let victim = owned[0].clone().expect("owner");
    let index = ["cluster_owners_a", "cluster_owners_b", "cluster_owners_c"]
        .iter()
        .position(|n| victim == format!("{n}-0"))
        .expect("owner is one of the pods");
    let killed = Instant::now();
    pods[index] = None;
    let mut max_sessions = 0;
    let new_owner = loop {
        let sessions = bound_sessions(&sim).await;
        max_sessions = max_sessions.max(sessions);
        let owners = owners(&nats, &op, 2).await;
        if let Some(owner) = owners[0].clone()
            && owner != victim
            && sessions == 2
        {
            break owner;
        }
        assert!(killed.elapsed() < T, "bind 0 not re-owned: {owners:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reclaim = killed.elapsed();
    assert!(
        max_sessions <= 2,
        "at most bindCount sessions, saw {max_sessions}"
    );
    assert!(
        reclaim < Duration::from_secs(10),
        "re-owned after {reclaim:?}"
    );
    assert_ne!(new_owner, victim);
    println!("bind 0 re-owned by {new_owner} {reclaim:?} after kill -9 of {victim}");
}
