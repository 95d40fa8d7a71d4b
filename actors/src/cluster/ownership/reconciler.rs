//! The reconciler (SPEC §9, US-SC-020): one pod per operator and direction — the holder
//! of the leader key `{operatorId}.{direction}.reconciler` in `smpp-bind-owners`, claimed
//! by create-if-absent and refreshed by revision like an owner key — compares, every
//! `RECONCILE_MS` (30 s), the owner keys with the heartbeats:
//!
//! - an owner key whose pod no longer heartbeats is an orphan: deleted by its revision (a
//!   live pod then claims the bind), `smpp_bind_orphan_total`; a heartbeat that stopped
//!   changing for a TTL is deleted too, so the fair share no longer counts a dead pod;
//! - a bind run by a pod the key does not name (each heartbeat lists the binds its pod
//!   runs) is a double claim: those pods stop it on their next refresh, whose revision no
//!   longer matches; seen again in the next round it is counted
//!   (`smpp_bind_double_claim_total`) and logged.
//!
//! With the buckets' max age (`OWNER_TTL_MS`) NATS expires a dead pod's keys by itself;
//! the reconciler is what cleans up when it does not — a bucket provisioned without a
//! max age, a key written by hand — and what notices a double claim. Liveness is judged
//! by whether a heartbeat's revision moves on the reconciler's own clock, not by time
//! stamps from other machines.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use smpp_connector::cluster::ownership::{self, Finding, Heartbeat, Liveness, OwnerRecord};
use smpp_connector::config::{Direction, OperatorId};

use super::{KvBucket, KvError};
use crate::telemetry::internal_events::{Reconciled, emit};

/// The reconciler's state for one operator and direction in this pod.
#[derive(Debug, Default)]
pub(super) struct Leader {
    /// Revision of the leader key while this pod holds it.
    revision: Option<u64>,
    /// The leader key's revisions as seen by a pod that does not hold it (a leader key
    /// nobody refreshes is removed after a TTL, whatever the bucket keeps).
    leader_seen: Liveness,
    /// Heartbeat revisions, while this pod leads.
    heartbeats: Liveness,
    last_round: Option<Instant>,
    /// Double claims of the previous round (reported when seen twice).
    suspects: BTreeSet<u16>,
}

impl Leader {
    pub(super) fn is_leader(&self) -> bool {
        self.revision.is_some()
    }

    /// The leader key's revision while this pod holds it.
    pub(super) fn revision(&self) -> Option<u64> {
        self.revision
    }
}

/// What a round found (for logs and tests).
#[derive(Debug, Default)]
pub(super) struct Round {
    pub orphans: usize,
    pub double_claims: usize,
}

/// Hold (claim or refresh) the leader key of `op`; when this pod leads and a round is
/// due, run it.
#[allow(clippy::too_many_arguments)]
pub(super) async fn step(
    leader: &mut Leader,
    owners_kv: &dyn KvBucket,
    pods_kv: &dyn KvBucket,
    op: &OperatorId,
    direction: Direction,
    record: Bytes,
    ttl: Duration,
    every: Duration,
) -> Option<Round> {
    let name = ownership::leader_key(op, direction);
    // Tokio's clock (the system's in production), so a paused test clock ages heartbeats.
    let now = tokio::time::Instant::now().into_std();
    match leader.revision {
        Some(revision) => match owners_kv.update(&name, record, revision).await {
            Ok(revision) => leader.revision = Some(revision),
            Err(err) => {
                if err == KvError::WrongLastRevision {
                    tracing::info!(operatorId = %op, "reconciler role moved to another pod");
                }
                leader.revision = None;
                leader.heartbeats = Liveness::default();
                leader.last_round = None;
                leader.suspects.clear();
            }
        },
        None => match owners_kv.entry(&name).await {
            Ok(Some(entry)) => {
                let seen: BTreeMap<String, u64> =
                    [(name.clone(), entry.revision)].into_iter().collect();
                leader.leader_seen.observe(now, &seen);
                if leader.leader_seen.is_stale(&name, now, ttl) {
                    // Its holder stopped refreshing and the bucket did not expire it.
                    let _ = owners_kv
                        .delete_expect_revision(&name, entry.revision)
                        .await;
                }
            }
            Ok(None) => {
                if let Ok(revision) = owners_kv.create(&name, record).await {
                    tracing::info!(operatorId = %op, direction = %direction, "this pod reconciles bind ownership");
                    leader.revision = Some(revision);
                }
            }
            Err(_) => {}
        },
    }
    if !leader.is_leader() {
        return None;
    }
    let due = leader
        .last_round
        .is_none_or(|at| now.saturating_duration_since(at) >= every);
    // Owner keys first, heartbeats after: a pod heartbeats before it claims, so a key
    // read here has its pod's heartbeat in the read that follows.
    let owners = if due {
        Some(read_owners(owners_kv, op, direction).await?)
    } else {
        None
    };
    // Heartbeats every tick, so a dead one is known a TTL after it stopped.
    let heartbeats = read_heartbeats(pods_kv, op, direction).await?;
    let revisions: BTreeMap<String, u64> = heartbeats
        .iter()
        .map(|(key, (revision, _))| (key.clone(), *revision))
        .collect();
    leader.heartbeats.observe(now, &revisions);
    let owners = owners?;
    leader.last_round = Some(now);
    let prefix = smpp_connector::cluster::ownership::owner_prefix(op, direction);
    let mut live = BTreeMap::new();
    let mut dead = Vec::new();
    for (key, (revision, beat)) in &heartbeats {
        if leader.heartbeats.is_stale(key, now, ttl) {
            dead.push((key.clone(), *revision));
        } else if let Some(pod) = key.strip_prefix(&prefix) {
            live.insert(pod.to_owned(), beat.binds.clone());
        }
    }
    let mut round = Round::default();
    let mut suspects = BTreeSet::new();
    for finding in ownership::reconcile(&owners, &live) {
        match finding {
            Finding::Orphan {
                bind_id,
                pod,
                revision,
            } => {
                let key = ownership::owner_key(op, direction, bind_id);
                if owners_kv
                    .delete_expect_revision(&key, revision)
                    .await
                    .is_ok()
                {
                    round.orphans += 1;
                    emit(Reconciled::Orphan {
                        op,
                        direction,
                        bind_id,
                        pod: &pod,
                    });
                }
            }
            Finding::DoubleClaim {
                bind_id,
                owner,
                runners,
            } => {
                if leader.suspects.contains(&bind_id) {
                    round.double_claims += 1;
                    emit(Reconciled::DoubleClaim {
                        op,
                        direction,
                        bind_id,
                        owner: owner.as_deref(),
                        runners: &runners,
                    });
                }
                suspects.insert(bind_id);
            }
        }
    }
    leader.suspects = suspects;
    for (key, revision) in dead {
        if pods_kv.delete_expect_revision(&key, revision).await.is_ok() {
            tracing::warn!(operatorId = %op, direction = %direction, heartbeat = %key, "stale heartbeat removed (unchanged for a TTL)");
        }
    }
    Some(round)
}

/// Owner keys of `op` and `direction`: bind id → (pod, revision).
async fn read_owners(
    owners_kv: &dyn KvBucket,
    op: &OperatorId,
    direction: Direction,
) -> Option<BTreeMap<u16, (String, u64)>> {
    let mut keys = owners_kv.keys().await.ok()?;
    let mut ids = Vec::new();
    while let Some(key) = keys.next().await {
        if let Some(id) = ownership::bind_id_of(&key.ok()?, op, direction) {
            ids.push(id);
        }
    }
    let mut owners = BTreeMap::new();
    for id in ids {
        let entry = owners_kv
            .entry(&ownership::owner_key(op, direction, id))
            .await
            .ok()?;
        if let Some(entry) = entry
            && let Ok(record) = serde_json::from_slice::<OwnerRecord>(&entry.value)
        {
            owners.insert(id, (record.pod, entry.revision));
        }
    }
    Some(owners)
}

/// Heartbeats of `op` and `direction`: key → (revision, value).
async fn read_heartbeats(
    pods_kv: &dyn KvBucket,
    op: &OperatorId,
    direction: Direction,
) -> Option<BTreeMap<String, (u64, Heartbeat)>> {
    let prefix = smpp_connector::cluster::ownership::owner_prefix(op, direction);
    let mut keys = pods_kv.keys().await.ok()?;
    let mut names = Vec::new();
    while let Some(key) = keys.next().await {
        let key = key.ok()?;
        if key.starts_with(&prefix) {
            names.push(key);
        }
    }
    let mut beats = BTreeMap::new();
    for name in names {
        let entry = pods_kv.entry(&name).await.ok()?;
        if let Some(entry) = entry
            && let Ok(beat) = serde_json::from_slice::<Heartbeat>(&entry.value)
        {
            beats.insert(name, (entry.revision, beat));
        }
    }
    Some(beats)
}
