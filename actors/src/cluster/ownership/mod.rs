//! `OwnershipActor`: exactly one owner per bind across pods (SPEC §9, US-SC-016/017), in
//! NATS KV. Bucket `smpp-bind-owners`: key `{operatorId}.{direction}.{bindId}`, value
//! `{pod, claimedAt}`, max age `OWNER_TTL_MS` (30 s); bucket `smpp-bind-pods`: one
//! heartbeat per pod, operator and direction, same max age.
//!
//! Every `OWNER_REFRESH_MS` (10 s) the actor writes its heartbeats, refreshes each key it
//! holds by revision, reads the owners and live pods, and carries out
//! [`smpp_connector::cluster::ownership::plan`]: a free bind is claimed by create-if-absent, a bind
//! above the pod's fair share is drained, unbound and its key deleted. A key whose
//! revision moved (another pod holds it) stops the bind at once; a key that could not be
//! refreshed for longer than TTL − 2 refreshes stops it too, before the TTL could let
//! another pod in. The supervisor runs a bind only when told to ([`StartBind`]).
//!
//! Each heartbeat lists the bind ids its pod runs; one pod per operator and direction
//! also runs the [`reconciler`] (orphaned keys, double claims).
//!
//! The buckets are [`KvBucket`]s: [`NatsKv`] in production, [`MemoryKv`] for pods run
//! in-process by tests. Time is tokio's (the system's in production), so a paused test
//! clock drives refreshes, the TTL and the reconciler.

mod kv;
mod reconciler;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream;
use bytes::Bytes;
use futures::StreamExt;
use smpp_connector::cluster::ownership::{self, Action, Heartbeat, OwnerRecord};
use smpp_connector::config::{BindKey, Config, OperatorId};
use tokio::time::Instant;

use crate::events::now_rfc3339;
use crate::readiness::Readiness;
use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::metric;

pub use kv::{KeyStream, KvBucket, KvEntry, KvError, MemoryKv, NatsKv};

pub const OWNERS_BUCKET: &str = "smpp-bind-owners";
pub const PODS_BUCKET: &str = "smpp-bind-pods";

/// Run a bind (this pod now owns it).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct StartBind {
    pub key: BindKey,
}

/// Stop a bind: `graceful` drains and unbinds first (a release); otherwise at once (the
/// ownership was lost). Answer a release with [`Released`].
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct StopBind {
    pub key: BindKey,
    pub graceful: bool,
    pub reason: &'static str,
}

/// An operator's bind count is known (from OMS).
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct OperatorBinds {
    pub operator_id: OperatorId,
    pub bind_count: u16,
}

/// A released bind is down: its key can go.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct Released {
    pub key: BindKey,
}

/// Shutdown: the binds are down; delete every key held and the heartbeats.
#[derive(Debug, Clone, Message)]
#[rtype(result = "()")]
pub struct ReleaseAll;

/// Which pod owns a bind, as last read (for `admin binds` and `operator.health`).
#[derive(Debug, Clone, Message)]
#[rtype(result = "BTreeMap<BindKey, String>")]
pub struct Owners;

struct Held {
    revision: u64,
    refreshed: Instant,
    /// The key's value as claimed: refreshes write it again, so `claimedAt` stays the
    /// time of the claim.
    record: Bytes,
}

/// The owners bucket and the pods bucket.
pub type Buckets = (Arc<dyn KvBucket>, Arc<dyn KvBucket>);

/// Open (creating if absent) the two buckets in NATS.
pub async fn buckets(
    js: &jetstream::Context,
    ttl: Duration,
    replicas: usize,
) -> anyhow::Result<Buckets> {
    let open = |bucket: &'static str| {
        let js = js.clone();
        async move {
            match js.get_key_value(bucket).await {
                Ok(store) => {
                    if let Ok(status) = store.status().await
                        && status.max_age().is_zero()
                    {
                        tracing::warn!(
                            bucket,
                            "KV bucket has no max age: a dead pod's keys stay until the reconciler removes them (RECONCILE_MS)"
                        );
                    }
                    Ok(store)
                }
                Err(_) => js
                    .create_key_value(jetstream::kv::Config {
                        bucket: bucket.to_owned(),
                        history: 1,
                        max_age: ttl,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| anyhow::anyhow!("KV bucket {bucket}: {e}")),
            }
        }
    };
    Ok((
        NatsKv::shared(open(OWNERS_BUCKET).await?),
        NatsKv::shared(open(PODS_BUCKET).await?),
    ))
}

pub struct OwnershipActor {
    config: Arc<Config>,
    owners_kv: Arc<dyn KvBucket>,
    pods_kv: Arc<dyn KvBucket>,
    supervisor: Recipient<StartBind>,
    stopper: Recipient<StopBind>,
    operators: BTreeMap<OperatorId, u16>,
    held: BTreeMap<BindKey, Held>,
    /// Released, waiting for the bind to be down before the key is deleted.
    releasing: BTreeSet<BindKey>,
    /// Owner pod of each bind, as last read.
    seen: BTreeMap<BindKey, String>,
    /// Reconciler state per operator (moved into each tick's work and back).
    leaders: BTreeMap<OperatorId, reconciler::Leader>,
    ticking: bool,
    /// An operator arrived while a tick was in flight: tick again when it ends (its
    /// announcement would otherwise wait for the next interval, a refresh later).
    tick_again: bool,
    ticks: u64,
    stopped: bool,
    health: ActorHealth,
    readiness: Arc<Readiness>,
}

impl std::fmt::Debug for OwnershipActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnershipActor")
            .field("held", &self.held.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What one tick read and did (outside the actor).
struct Tick {
    refreshed: Vec<(BindKey, Result<u64, RefreshFailure>)>,
    claimed: Vec<(BindKey, u64, Bytes)>,
    release: Vec<BindKey>,
    seen: BTreeMap<BindKey, String>,
    leaders: BTreeMap<OperatorId, reconciler::Leader>,
}

enum RefreshFailure {
    /// Another pod holds the key (or it is gone): stop at once.
    Lost,
    /// NATS did not answer.
    Unavailable,
}

impl OwnershipActor {
    pub fn new(
        config: Arc<Config>,
        (owners_kv, pods_kv): Buckets,
        supervisor: Recipient<StartBind>,
        stopper: Recipient<StopBind>,
        readiness: Arc<Readiness>,
    ) -> Self {
        OwnershipActor {
            config,
            owners_kv,
            pods_kv,
            supervisor,
            stopper,
            operators: BTreeMap::new(),
            held: BTreeMap::new(),
            releasing: BTreeSet::new(),
            seen: BTreeMap::new(),
            leaders: BTreeMap::new(),
            ticking: false,
            tick_again: false,
            ticks: 0,
            stopped: false,
            health: ActorHealth::new("ownership", None),
            readiness,
        }
    }

    fn record(&self) -> Bytes {
        let record = OwnerRecord {
            pod: self.config.pod_name.clone(),
            claimed_at: now_rfc3339(),
        };
        Bytes::from(serde_json::to_vec(&record).expect("record serializes"))
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.ticking || self.stopped {
            return;
        }
        self.ticking = true;
        if !self.operators.is_empty() {
            self.ticks += 1;
        }
        // The first tick with operators only announces this pod, so pods starting
        // together see each other before anyone claims.
        let plan_now = self.ticks > 1;
        let owners_kv = self.owners_kv.clone();
        let pods_kv = self.pods_kv.clone();
        let me = self.config.pod_name.clone();
        let direction = self.config.direction;
        let operators = self.operators.clone();
        let held: Vec<(BindKey, u64, Bytes)> = self
            .held
            .iter()
            .map(|(k, h)| (k.clone(), h.revision, h.record.clone()))
            .collect();
        let releasing = self.releasing.clone();
        let record = self.record();
        let mut leaders = std::mem::take(&mut self.leaders);
        let ttl = self.config.timers.owner_ttl;
        let reconcile_every = self.config.timers.reconcile;
        let heartbeats: Vec<(OperatorId, Bytes)> = operators
            .keys()
            .map(|op| (op.clone(), self.heartbeat(op)))
            .collect();
        let work = async move {
            for (op, heartbeat) in heartbeats {
                let _ = pods_kv
                    .put(&ownership::pod_key(&op, direction, &me), heartbeat)
                    .await;
            }
            let mut refreshed = Vec::new();
            for (key, revision, value) in &held {
                let name = ownership::owner_key(&key.operator_id, key.direction, key.bind_id);
                let result = match owners_kv.update(&name, value.clone(), *revision).await {
                    Ok(revision) => Ok(revision),
                    Err(KvError::WrongLastRevision) => {
                        // An earlier refresh may have been stored with its answer lost (a
                        // NATS server gone mid-request): the key then holds exactly our
                        // record under a newer revision, and is still ours.
                        match owners_kv.entry(&name).await {
                            Ok(Some(entry)) if entry.value == *value => owners_kv
                                .update(&name, value.clone(), entry.revision)
                                .await
                                .map_err(|_| RefreshFailure::Unavailable),
                            Ok(_) => Err(RefreshFailure::Lost),
                            Err(_) => Err(RefreshFailure::Unavailable),
                        }
                    }
                    Err(_) => Err(RefreshFailure::Unavailable),
                };
                refreshed.push((key.clone(), result));
            }
            let mut claimed = Vec::new();
            let mut release = Vec::new();
            let mut seen = BTreeMap::new();
            for (op, bind_count) in &operators {
                let prefix = smpp_connector::cluster::ownership::owner_prefix(op, direction);
                let mut pods = BTreeSet::new();
                if let Ok(mut keys) = pods_kv.keys().await {
                    while let Some(Ok(k)) = keys.next().await {
                        if let Some(pod) = k.strip_prefix(&prefix) {
                            pods.insert(pod.to_owned());
                        }
                    }
                }
                let mut owners = BTreeMap::new();
                let mut revisions = BTreeMap::new();
                let mut read_all = true;
                let ids = 0..(*bind_count).max(
                    held.iter()
                        .map(|(k, _, _)| k.bind_id + 1)
                        .max()
                        .unwrap_or(0),
                );
                for id in ids {
                    let name = ownership::owner_key(op, direction, id);
                    match owners_kv.entry(&name).await {
                        Ok(Some(entry)) => {
                            if let Ok(record) = serde_json::from_slice::<OwnerRecord>(&entry.value)
                            {
                                seen.insert(
                                    BindKey::new(op.clone(), direction, id),
                                    record.pod.clone(),
                                );
                                owners.insert(id, record.pod);
                                revisions.insert(id, entry.revision);
                            }
                        }
                        Ok(_) => {}
                        Err(_) => read_all = false,
                    }
                }
                if !plan_now || !read_all {
                    continue;
                }
                let running: BTreeSet<u16> = held
                    .iter()
                    .filter(|(k, _, _)| &k.operator_id == op)
                    .map(|(k, _, _)| k.bind_id)
                    .filter(|id| {
                        !releasing
                            .iter()
                            .any(|r| r.bind_id == *id && &r.operator_id == op)
                    })
                    .collect();
                let view = ownership::View {
                    me: &me,
                    bind_count: *bind_count,
                    pods: &pods,
                    owners: &owners,
                };
                for action in ownership::plan(&view, &running) {
                    let key = BindKey::new(
                        op.clone(),
                        direction,
                        match action {
                            Action::Claim(id) | Action::Release(id) => id,
                        },
                    );
                    let name = ownership::owner_key(op, direction, key.bind_id);
                    match action {
                        Action::Claim(id) => {
                            let result = match revisions.get(&id) {
                                // Recorded under this pod's name: adopt by revision.
                                Some(revision) => owners_kv
                                    .update(&name, record.clone(), *revision)
                                    .await
                                    .ok(),
                                None => owners_kv.create(&name, record.clone()).await.ok(),
                            };
                            if let Some(revision) = result {
                                seen.insert(key.clone(), me.clone());
                                claimed.push((key, revision, record.clone()));
                            }
                        }
                        Action::Release(_) => release.push(key),
                    }
                }
            }
            if plan_now {
                for op in operators.keys() {
                    let leader = leaders.entry(op.clone()).or_default();
                    reconciler::step(
                        leader,
                        owners_kv.as_ref(),
                        pods_kv.as_ref(),
                        op,
                        direction,
                        record.clone(),
                        ttl,
                        reconcile_every,
                    )
                    .await;
                }
            }
            Tick {
                refreshed,
                claimed,
                release,
                seen,
                leaders,
            }
        };
        ctx.spawn(work.into_actor(self).map(|tick, act, ctx| {
            act.ticking = false;
            act.apply(tick);
            if std::mem::take(&mut act.tick_again) {
                act.tick(ctx);
            }
        }));
    }

    fn apply(&mut self, tick: Tick) {
        self.leaders = tick.leaders;
        if self.stopped {
            return;
        }
        let now = Instant::now();
        // Past this without a refresh, the key may have expired: stop before another
        // pod can claim it.
        let limit = self
            .config
            .timers
            .owner_ttl
            .saturating_sub(self.config.timers.owner_refresh * 2);
        for (key, result) in tick.refreshed {
            let Some(held) = self.held.get_mut(&key) else {
                continue;
            };
            let (reason, why) = match result {
                Ok(revision) => {
                    held.revision = revision;
                    held.refreshed = now;
                    continue;
                }
                Err(RefreshFailure::Lost) => ("ownership_lost", "its key moved"),
                Err(RefreshFailure::Unavailable) if now.duration_since(held.refreshed) > limit => {
                    ("ownership_unrefreshed", "it could not be refreshed in time")
                }
                Err(RefreshFailure::Unavailable) => continue,
            };
            tracing::warn!(operatorId = %key.operator_id, bindId = key.bind_id, reason, "bind ownership lost ({why}); stopping the bind");
            self.held.remove(&key);
            self.changed(&key);
            self.stopper.do_send(StopBind {
                key,
                graceful: false,
                reason,
            });
        }
        for (key, revision, record) in tick.claimed {
            tracing::info!(operatorId = %key.operator_id, bindId = key.bind_id, pod = %self.config.pod_name, "bind claimed");
            self.held.insert(
                key.clone(),
                Held {
                    revision,
                    refreshed: now,
                    record,
                },
            );
            self.changed(&key);
            self.supervisor.do_send(StartBind { key });
        }
        for key in tick.release {
            if self.releasing.insert(key.clone()) {
                tracing::info!(operatorId = %key.operator_id, bindId = key.bind_id, "bind released to a peer (above this pod's fair share)");
                self.stopper.do_send(StopBind {
                    key,
                    graceful: true,
                    reason: "rebalance",
                });
            }
        }
        self.seen = tick.seen;
        // A standby: planning, holding nothing, and every bind of every operator owned by
        // a pod (another one, then).
        let all_owned = self.operators.iter().all(|(op, count)| {
            (0..*count).all(|id| {
                self.seen
                    .contains_key(&BindKey::new(op.clone(), self.config.direction, id))
            })
        });
        self.readiness.set_standby(
            self.ticks > 1
                && !self.operators.is_empty()
                && self.held.is_empty()
                && self.releasing.is_empty()
                && all_owned,
        );
    }

    /// This pod's heartbeat for `op`: the bind ids it runs, for the reconciler.
    fn heartbeat(&self, op: &OperatorId) -> Bytes {
        let beat = Heartbeat {
            pod: self.config.pod_name.clone(),
            at: now_rfc3339(),
            binds: self
                .held
                .keys()
                .filter(|k| &k.operator_id == op)
                .map(|k| k.bind_id)
                .collect(),
        };
        Bytes::from(serde_json::to_vec(&beat).expect("heartbeat serializes"))
    }

    fn changed(&self, key: &BindKey) {
        metrics::counter!(metric::BIND_OWNER_CHANGES, "mno" => key.operator_id.to_string(), "direction" => key.direction.as_str())
            .increment(1);
    }
}

impl Actor for OwnershipActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.health.started(ctx);
        self.tick(ctx);
        ctx.run_interval(self.config.timers.owner_refresh, |act, ctx| act.tick(ctx));
    }
}

impl Handler<Probe> for OwnershipActor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        self.health.probed(&probe);
    }
}

impl Handler<OperatorBinds> for OwnershipActor {
    type Result = ();

    fn handle(&mut self, msg: OperatorBinds, ctx: &mut Context<Self>) {
        self.operators.insert(msg.operator_id, msg.bind_count);
        if self.ticking {
            // That tick read the operators before this one came.
            self.tick_again = true;
        }
        self.tick(ctx);
    }
}

impl Handler<Released> for OwnershipActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Released, _ctx: &mut Context<Self>) -> Self::Result {
        self.releasing.remove(&msg.key);
        let held = self.held.remove(&msg.key);
        if held.is_some() {
            self.changed(&msg.key);
        }
        let owners_kv = self.owners_kv.clone();
        let name = ownership::owner_key(&msg.key.operator_id, msg.key.direction, msg.key.bind_id);
        Box::pin(
            async move {
                if let Some(held) = held {
                    let _ = owners_kv.delete_expect_revision(&name, held.revision).await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<ReleaseAll> for OwnershipActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: ReleaseAll, _ctx: &mut Context<Self>) -> Self::Result {
        self.stopped = true;
        let held: Vec<(BindKey, u64)> = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(k, h)| (k, h.revision))
            .collect();
        for (key, _) in &held {
            self.changed(key);
        }
        let owners_kv = self.owners_kv.clone();
        let pods_kv = self.pods_kv.clone();
        let me = self.config.pod_name.clone();
        let direction = self.config.direction;
        let operators: Vec<OperatorId> = self.operators.keys().cloned().collect();
        // The reconciler role goes too, so another pod takes it at once.
        let leader_keys: Vec<(String, u64)> = std::mem::take(&mut self.leaders)
            .into_iter()
            .filter_map(|(op, leader)| {
                Some((ownership::leader_key(&op, direction), leader.revision()?))
            })
            .collect();
        Box::pin(
            async move {
                for (name, revision) in leader_keys {
                    let _ = owners_kv.delete_expect_revision(&name, revision).await;
                }
                for (key, revision) in held {
                    let name = ownership::owner_key(&key.operator_id, key.direction, key.bind_id);
                    let _ = owners_kv.delete_expect_revision(&name, revision).await;
                }
                for op in operators {
                    let _ = pods_kv
                        .delete(&ownership::pod_key(&op, direction, &me))
                        .await;
                }
            }
            .into_actor(self),
        )
    }
}

impl Handler<Owners> for OwnershipActor {
    type Result = MessageResult<Owners>;

    fn handle(&mut self, _: Owners, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.seen.clone())
    }
}
