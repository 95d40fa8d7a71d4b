//! `Supervisor`: spawns one `BindActor` per (operatorId, direction, bindId), keeps the
//! latest state of each, and is the one place the admin API and `/ready` ask.
//!
//! Each bind runs under its own `actix::Supervisor`, so a bind that stops (every
//! failure does) is restarted alone. A bind whose task ended without stopping (a panic
//! in a handler closes its mailbox) is detected by a periodic check and respawned — no
//! other bind notices either way. State changes are forwarded to
//! `HealthPublisherActor` with the operator's bound/total counts.
//!
//! Failover goes through here too ([`failover`]): a primary bind past its failure
//! threshold gets a backup bind (another `BindActor`, under its own `actix::Supervisor`)
//! for as long as the primary is down; the pure [`smpp_connector::cluster::failover::Failover`]
//! decides, this module carries it out.

mod chores;
mod failover;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use smpp_connector::backoff::Backoff;
use smpp_connector::cluster::chores::Chores;
use smpp_connector::cluster::failover::Failover;
use smpp_connector::config::{BindKey, Config, Direction, OperatorId};
use smpp_connector::protocol::session::BindState;

use crate::bind::{
    AbortBind, BindActor, BindCrashed, BindDeps, BindStatus, GetBindStatus, InjectPanic,
    PauseIntake, RestartBind, ShutdownBind,
};
use crate::cluster::ChoreDeps;
use crate::cluster::ownership::{
    OperatorBinds, Owners, OwnershipActor, Released, StartBind, StopBind,
};
use crate::correlation::CorrelationActor;
use crate::health::{HealthPublisherActor, PublishHealth};
use crate::inbound::InboundDeps;
use crate::nats::{self, EventPublisher};
use crate::oms::CredentialSource;
use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::internal_events::{Backend, BackendFailed, emit};
use crate::telemetry::metric;
use crate::throttle::ThrottleActor;

pub use crate::bind::BindStateChanged;
pub use crate::readiness::Readiness;

/// List every bind with its live status.
#[derive(Debug, Message)]
#[rtype(result = "Vec<BindStatus>")]
pub struct ListBinds;

/// What the on-call engineer does to one bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindControl {
    /// Drain in-flight submits (bounded), unbind, rebind.
    Restart,
    /// Take no new messages, finish what is held, stay bound.
    Drain,
    /// Take messages again after a drain.
    Resume,
    /// Panic the bind's actor (`FAULT_INJECTION=true` only): a supervision drill.
    Panic,
}

impl BindControl {
    pub fn parse(action: &str) -> Option<Self> {
        match action {
            "restart" => Some(BindControl::Restart),
            "drain" => Some(BindControl::Drain),
            "resume" => Some(BindControl::Resume),
            "panic" => Some(BindControl::Panic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BindControl::Restart => "restart",
            BindControl::Drain => "drain",
            BindControl::Resume => "resume",
            BindControl::Panic => "panic",
        }
    }
}

/// Restart, drain or resume one bind (admin). Other binds are not touched.
#[derive(Debug, Message)]
#[rtype(result = "Result<(), UnknownBind>")]
pub struct ControlBind {
    pub key: BindKey,
    pub action: BindControl,
}

/// The bind named does not exist in this process.
#[derive(Debug, Clone, thiserror::Error)]
#[error("no bind {0} in this process")]
pub struct UnknownBind(pub String);

/// Stop every bind gracefully (SIGTERM); answered when they are down or the deadline passed.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub deadline: Duration,
}

/// An operator is ready to get its binds: how many and from which consumers.
#[derive(Message)]
#[rtype(result = "()")]
struct OperatorReady {
    operator_id: OperatorId,
    bind_count: u16,
    /// Lane consumers by priority, shared by every bind of the operator (a consumer
    /// handle holds its whole info, ~1.4 KiB: not copied per bind).
    lanes: Lanes,
}

/// One running bind (a primary, or the backup of one).
struct BindEntry {
    key: BindKey,
    addr: Addr<BindActor>,
    state: BindState,
    reason: Option<String>,
    lanes: Lanes,
}

/// The supervisor of all binds of this process.
pub struct Supervisor {
    config: Arc<Config>,
    credentials: Arc<dyn CredentialSource>,
    correlation: Addr<CorrelationActor>,
    publisher: EventPublisher,
    health: Addr<HealthPublisherActor>,
    throttle: Addr<ThrottleActor>,
    readiness: Arc<Readiness>,
    deps: Option<Arc<BindDeps>>,
    /// Primary binds by key.
    binds: BTreeMap<BindKey, BindEntry>,
    /// Backup binds by the key of the primary whose traffic they carry.
    backups: BTreeMap<BindKey, BindEntry>,
    /// Failover state of each primary bind.
    failover: BTreeMap<BindKey, Failover>,
    /// Operators a gauge was ever set for (so a backup operator's series goes to 0).
    gauge_operators: BTreeSet<OperatorId>,
    shutting_down: bool,
    /// With `BIND_OWNERSHIP=kv`: binds run only when the ownership actor says so.
    ownership: Option<Addr<OwnershipActor>>,
    /// Lane consumers of each ready operator, for binds started later.
    operator_lanes: BTreeMap<OperatorId, (u16, Lanes)>,
    health_metrics: ActorHealth,
    tls: tokio_rustls::TlsConnector,
    /// The cluster chores of each operator and direction whose bind 0 may run here.
    chores: BTreeMap<(OperatorId, Direction), Chores>,
    chore_deps: Option<Arc<ChoreDeps>>,
}

/// How often the lane consumers' pending counts are read.
const LANE_POLL: Duration = Duration::from_secs(10);

/// Lane consumers by priority, shared by the binds of an operator.
use crate::bind::Lanes;

/// The ownership actor (created after the supervisor, which it sends to).
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct SetOwnership(pub Addr<OwnershipActor>);

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("binds", &self.binds.len())
            .field("backups", &self.backups.len())
            .finish_non_exhaustive()
    }
}

/// What the supervisor shares with its binds: configuration, adapters, shared actors.
pub struct Shared {
    pub config: Arc<Config>,
    pub credentials: Arc<dyn CredentialSource>,
    pub correlation: Addr<CorrelationActor>,
    pub publisher: EventPublisher,
    pub health: Addr<HealthPublisherActor>,
    pub throttle: Addr<ThrottleActor>,
    /// TLS to SMSCs of operators with `tls: true`.
    pub tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new(shared: Shared, readiness: Arc<Readiness>) -> Self {
        let Shared {
            config,
            credentials,
            correlation,
            publisher,
            health,
            throttle,
            tls,
        } = shared;
        Supervisor {
            tls,
            gauge_operators: config.operator_ids.iter().cloned().collect(),
            config,
            credentials,
            correlation,
            publisher,
            health,
            throttle,
            readiness,
            deps: None,
            binds: BTreeMap::new(),
            backups: BTreeMap::new(),
            failover: BTreeMap::new(),
            shutting_down: false,
            ownership: None,
            operator_lanes: BTreeMap::new(),
            health_metrics: ActorHealth::new("supervisor", None),
            chores: BTreeMap::new(),
            chore_deps: None,
        }
    }

    /// Learn the operator's bind count from OMS (retrying with backoff while OMS is
    /// down) and create its consumers, then spawn its binds.
    fn start_operator(&self, operator_id: OperatorId, ctx: &mut Context<Self>) {
        let credentials = self.credentials.clone();
        let config = self.config.clone();
        let js = self.publisher.context().clone();
        let me = ctx.address();
        actix::spawn(async move {
            let mut backoff = Backoff::new(
                config.timers.reconnect_backoff_base,
                config.timers.reconnect_backoff_max,
                None,
            );
            let bind_count = loop {
                match credentials.fetch(&operator_id).await {
                    Ok(credentials) => break credentials.bind_count,
                    Err(err) => {
                        backoff.record_failure();
                        let delay = backoff.next_delay(0.0);
                        tracing::info_span!("operator", operatorId = %operator_id, retry_in_ms = delay.as_millis() as u64).in_scope(|| {
                            emit(BackendFailed {
                                backend: Backend::Oms,
                                what: "credentials unavailable; binds of this operator wait",
                                error: &err,
                            });
                        });
                        tokio::time::sleep(delay).await;
                    }
                }
            };
            let mut lanes: Vec<crate::bind::PullSlot> = Vec::new();
            if config.direction.submits() {
                for lane in &config.lanes {
                    loop {
                        match nats::lane_consumer(&js, &config, &operator_id, *lane).await {
                            Ok(consumer) => {
                                lanes.push((crate::bind::lane_priority(*lane), Arc::new(consumer)));
                                break;
                            }
                            Err(err) => {
                                tracing::info_span!("lane", operatorId = %operator_id, lane = lane.as_str()).in_scope(|| {
                                    emit(BackendFailed {
                                        backend: Backend::Nats,
                                        what: "consumer not created; retrying",
                                        error: &format!("{err:#}"),
                                    });
                                });
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                }
            }
            me.do_send(OperatorReady {
                operator_id,
                bind_count,
                lanes: lanes.into(),
            });
        });
    }

    /// Spawn a bind actor for `key` carrying `serves`'s traffic from `lanes`.
    fn spawn_bind(&self, key: &BindKey, serves: &OperatorId, lanes: &Lanes) -> Addr<BindActor> {
        let deps = self.deps.clone().expect("deps are set in started()");
        let (key, serves, lanes) = (key.clone(), serves.clone(), lanes.clone());
        actix::Supervisor::start(move |_| BindActor::new(key, serves, deps, lanes))
    }

    /// Publish one `operator.health` event for `key` (a primary's or a backup's key),
    /// with its operator's bound/total among the binds of this process.
    fn publish_health(
        &self,
        key: &BindKey,
        state: BindState,
        reason: Option<String>,
        failback: bool,
        backup_operator_id: Option<&OperatorId>,
    ) {
        let (bound, total) = self
            .entries()
            .filter(|e| e.key.operator_id == key.operator_id && e.key.direction == key.direction)
            .fold((0u32, 0u32), |(b, t), e| {
                (b + u32::from(e.state.is_bound()), t + 1)
            });
        self.health.do_send(PublishHealth {
            key: key.clone(),
            state,
            failback,
            reason,
            bound_binds: bound,
            total_binds: total,
            backup_operator_id: backup_operator_id.map(ToString::to_string),
        });
    }

    /// Every running bind, primaries and backups.
    fn entries(&self) -> impl Iterator<Item = &BindEntry> {
        self.binds.values().chain(self.backups.values())
    }

    fn update_gauges(&mut self) {
        for entry in self.backups.values() {
            self.gauge_operators.insert(entry.key.operator_id.clone());
        }
        let mut counts: BTreeMap<(String, &'static str, &'static str), usize> = BTreeMap::new();
        for operator in &self.gauge_operators {
            for state in BindState::ALL {
                counts.insert(
                    (
                        operator.to_string(),
                        self.config.direction.as_str(),
                        state.as_str(),
                    ),
                    0,
                );
            }
        }
        for entry in self.entries() {
            *counts
                .entry((
                    entry.key.operator_id.to_string(),
                    entry.key.direction.as_str(),
                    entry.state.as_str(),
                ))
                .or_default() += 1;
        }
        for ((mno, direction, state), n) in counts {
            metrics::gauge!(metric::SESSIONS, "mno" => mno, "direction" => direction, "state" => state)
                .set(n as f64);
        }
        let bound = self.entries().filter(|e| e.state.is_bound()).count();
        self.readiness.set_bound(bound);
    }

    fn check_binds(&mut self, _ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let deps_ready = self.deps.is_some();
        let crashed: Vec<(BindKey, bool)> = self
            .binds
            .iter()
            .map(|(k, e)| (k, e, false))
            .chain(self.backups.iter().map(|(k, e)| (k, e, true)))
            .filter(|(_, e, _)| deps_ready && !e.addr.connected())
            .map(|(k, _, backup)| (k.clone(), backup))
            .collect();
        for (primary, backup) in crashed {
            let map = if backup { &self.backups } else { &self.binds };
            let entry = &map[&primary];
            let key = entry.key.clone();
            emit(crate::telemetry::internal_events::BindCrashed { key: &key, backup });
            let addr = self.spawn_bind(&key, &primary.operator_id, &entry.lanes);
            let map = if backup {
                &mut self.backups
            } else {
                &mut self.binds
            };
            if let Some(entry) = map.get_mut(&primary) {
                entry.addr = addr;
                entry.state = BindState::Disconnected;
                entry.reason = Some("crashed".into());
            }
            let routed = (!backup)
                .then(|| self.failover.get(&primary))
                .flatten()
                .and_then(|f| f.routed_through())
                .or(backup.then_some(&key.operator_id));
            self.publish_health(
                &key,
                BindState::Disconnected,
                Some("crashed".into()),
                false,
                routed,
            );
            self.update_gauges();
        }
    }

    fn start_bind(&mut self, key: BindKey) {
        if self.binds.contains_key(&key) || self.shutting_down {
            return;
        }
        let Some((_, lanes)) = self.operator_lanes.get(&key.operator_id) else {
            return;
        };
        let lanes = lanes.clone();
        let addr = self.spawn_bind(&key, &key.operator_id, &lanes);
        self.binds.insert(
            key.clone(),
            BindEntry {
                key: key.clone(),
                addr,
                state: BindState::Disconnected,
                reason: None,
                lanes,
            },
        );
        self.failover.insert(
            key.clone(),
            Failover::new(key.operator_id.clone(), self.config.failover_after_failures),
        );
        self.set_owner(&key, true);
        self.update_gauges();
    }

    /// `smpp_bind_owner{…,pod}`: 1 while this pod runs the bind (it owns it).
    fn set_owner(&self, key: &BindKey, owned: bool) {
        metrics::gauge!(
            metric::BIND_OWNER,
            "mno" => key.operator_id.to_string(),
            "direction" => key.direction.as_str(),
            "bindId" => key.bind_id.to_string(),
            "pod" => self.config.pod_name.clone()
        )
        .set(if owned { 1.0 } else { 0.0 });
    }

    /// `smpp_connector_lane_pending{mno,direction,lane}`: what waits in each lane consumer
    /// of this pod's operators (every pod of the operator reports the same value).
    fn poll_lanes(&self, _ctx: &mut Context<Self>) {
        let js = self.publisher.context().clone();
        let stream = self.config.dispatch_stream.clone();
        let direction = self.config.direction;
        let lanes: Vec<(OperatorId, smpp_connector::config::Lane)> = self
            .operator_lanes
            .keys()
            .flat_map(|op| {
                self.config
                    .lanes
                    .iter()
                    .map(move |lane| (op.clone(), *lane))
            })
            .collect();
        if lanes.is_empty() || !direction.submits() {
            return;
        }
        actix::spawn(async move {
            let Ok(stream) = js.get_stream(&stream).await else {
                return;
            };
            for (op, lane) in lanes {
                let name = nats::lane_consumer_name(&op, direction, lane);
                if let Ok(info) = stream.consumer_info(&name).await {
                    metrics::gauge!(
                        metric::LANE_PENDING,
                        "mno" => op.to_string(),
                        "direction" => direction.as_str(),
                        "lane" => lane.as_str()
                    )
                    .set(info.num_pending as f64);
                }
            }
        });
    }

    /// The actor of the bind named `key`: a primary, or a backup named by its own key.
    fn addr_of(&self, key: &BindKey) -> Option<&Addr<BindActor>> {
        self.binds
            .get(key)
            .or_else(|| self.backups.values().find(|e| e.key == *key))
            .map(|e| &e.addr)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.health_metrics.started(ctx);
        let inbound = Arc::new(InboundDeps {
            config: self.config.clone(),
            correlation: self.correlation.clone(),
            publisher: self.publisher.clone(),
            throttle: self.throttle.clone(),
        });
        self.chore_deps = Some(Arc::new(ChoreDeps {
            config: self.config.clone(),
            credentials: self.credentials.clone(),
            publisher: self.publisher.clone(),
            inbound: inbound.clone(),
        }));
        self.deps = Some(Arc::new(BindDeps {
            inbound,
            config: self.config.clone(),
            credentials: self.credentials.clone(),
            correlation: self.correlation.clone(),
            supervisor: ctx.address().recipient(),
            crashed: ctx.address().recipient(),
            publisher: self.publisher.clone(),
            throttle: self.throttle.clone(),
            pulls: crate::bind::PullMux::new(self.publisher.context().clone()),
            tls: self.tls.clone(),
            smsc: Arc::new(crate::bind::io::TcpConnector),
        }));
        self.update_gauges();
        for operator_id in self.config.operator_ids.clone() {
            self.start_operator(operator_id, ctx);
        }
        ctx.run_interval(Duration::from_secs(1), |act, ctx| act.check_binds(ctx));
        ctx.run_interval(LANE_POLL, |act, ctx| act.poll_lanes(ctx));
        let chores = smpp_connector::bind_core::mo_scan_interval(self.config.timers.concat_window);
        ctx.run_interval(chores, |act, ctx| act.chores_tick(ctx));
    }
}

impl Handler<OperatorReady> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: OperatorReady, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        self.operator_lanes
            .insert(msg.operator_id.clone(), (msg.bind_count, msg.lanes.clone()));
        self.poll_lanes(ctx);
        if self.config.bind_ownership {
            tracing::info!(operatorId = %msg.operator_id, binds = msg.bind_count, direction = %self.config.direction, "binds claimed through NATS KV");
            if let Some(ownership) = &self.ownership {
                ownership.do_send(OperatorBinds {
                    operator_id: msg.operator_id,
                    bind_count: msg.bind_count,
                });
            }
            return;
        }
        tracing::info!(operatorId = %msg.operator_id, binds = msg.bind_count, direction = %self.config.direction, "starting binds");
        for bind_id in 0..msg.bind_count {
            let key = BindKey::new(msg.operator_id.clone(), self.config.direction, bind_id);
            self.start_bind(key);
        }
    }
}

impl Handler<SetOwnership> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: SetOwnership, _ctx: &mut Context<Self>) {
        for (operator_id, (bind_count, _)) in &self.operator_lanes {
            msg.0.do_send(OperatorBinds {
                operator_id: operator_id.clone(),
                bind_count: *bind_count,
            });
        }
        self.ownership = Some(msg.0);
    }
}

impl Handler<StartBind> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StartBind, _ctx: &mut Context<Self>) {
        self.start_bind(msg.key);
    }
}

impl Handler<StopBind> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: StopBind, ctx: &mut Context<Self>) {
        // A backup goes with its primary (ownership covers both).
        let stops = self
            .failover
            .remove(&msg.key)
            .map(|mut failover| failover.handle_primary_stopped())
            .unwrap_or_default();
        for action in stops {
            if let smpp_connector::cluster::failover::Action::StopBackup { reason, .. } = action {
                self.stop_backup_of(&msg.key, msg.graceful, reason, ctx);
            }
        }
        self.set_owner(&msg.key, false);
        let Some(entry) = self.binds.remove(&msg.key) else {
            if msg.graceful
                && let Some(ownership) = &self.ownership
            {
                ownership.do_send(Released { key: msg.key });
            }
            return;
        };
        self.update_gauges();
        self.publish_health(
            &msg.key,
            BindState::Disconnected,
            Some(msg.reason.into()),
            false,
            None,
        );
        if !msg.graceful {
            // The key already names another pod: no drain, no waiting.
            entry.addr.do_send(AbortBind { reason: msg.reason });
            return;
        }
        let ownership = self.ownership.clone();
        let stop = entry.addr.send(ShutdownBind { reason: msg.reason });
        let deadline = self.config.timers.drain_timeout + self.config.timers.bind_timeout;
        ctx.spawn(
            async move {
                let _ = tokio::time::timeout(deadline, stop).await;
                if let Some(ownership) = ownership {
                    ownership.do_send(Released { key: msg.key });
                }
            }
            .into_actor(self),
        );
    }
}

impl Handler<BindStateChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: BindStateChanged, ctx: &mut Context<Self>) {
        let _timer = self.health_metrics.time();
        if msg.serves != msg.key.operator_id {
            self.backup_state_changed(msg);
        } else {
            self.primary_state_changed(msg, ctx);
        }
    }
}

impl Handler<Probe> for Supervisor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        self.health_metrics.probed(&probe);
    }
}

impl Handler<ListBinds> for Supervisor {
    type Result = ResponseFuture<Vec<BindStatus>>;

    fn handle(&mut self, _: ListBinds, _ctx: &mut Context<Self>) -> Self::Result {
        let asks: Vec<_> = self
            .binds
            .iter()
            .chain(self.backups.iter())
            .map(|(primary, entry)| {
                let key = &entry.key;
                let backup = key.operator_id != primary.operator_id;
                let fallback = BindStatus {
                    operator_id: key.operator_id.to_string(),
                    direction: key.direction.as_str(),
                    bind_id: key.bind_id,
                    role: if backup { "backup" } else { "primary" },
                    backup_for: backup.then(|| primary.operator_id.to_string()),
                    owner_pod: None,
                    state: entry.state.as_str(),
                    intake: "unknown",
                    sessions: Vec::new(),
                    in_flight: 0,
                    window: 0,
                    queued_segments: 0,
                    dispatches: 0,
                    reconnect_attempts: 0,
                    last_error: entry.reason.clone(),
                    bound_since: None,
                    actor: None,
                };
                let ask = entry
                    .addr
                    .send(GetBindStatus)
                    .timeout(Duration::from_secs(2));
                let primary = primary.clone();
                async move { (primary, ask.await.unwrap_or(fallback)) }
            })
            .collect();
        // Owner of each bind: from NATS KV, or this pod when ownership is off. A backup
        // runs under its primary's ownership.
        let owners = self.ownership.as_ref().map(|o| o.send(Owners));
        let me = self.config.pod_name.clone();
        Box::pin(async move {
            let owners = match owners {
                Some(ask) => ask.await.ok(),
                None => None,
            };
            futures::future::join_all(asks)
                .await
                .into_iter()
                .map(|(primary, mut status)| {
                    status.owner_pod = match &owners {
                        Some(owners) => owners.get(&primary).cloned(),
                        None => Some(me.clone()),
                    };
                    status
                })
                .collect()
        })
    }
}

impl Handler<ControlBind> for Supervisor {
    type Result = Result<(), UnknownBind>;

    fn handle(&mut self, msg: ControlBind, _ctx: &mut Context<Self>) -> Self::Result {
        let addr = self
            .addr_of(&msg.key)
            .ok_or_else(|| UnknownBind(msg.key.to_string()))?;
        match msg.action {
            BindControl::Restart => addr.do_send(RestartBind {
                reason: "admin_restart",
            }),
            BindControl::Drain => addr.do_send(PauseIntake { paused: true }),
            BindControl::Resume => addr.do_send(PauseIntake { paused: false }),
            BindControl::Panic if self.config.fault_injection => addr.do_send(InjectPanic),
            BindControl::Panic => {
                return Err(UnknownBind(
                    "panic: fault injection is off (FAULT_INJECTION)".into(),
                ));
            }
        }
        Ok(())
    }
}

impl Handler<BindCrashed> for Supervisor {
    type Result = ();

    /// Respawn at once what the periodic check would find within a second.
    fn handle(&mut self, msg: BindCrashed, ctx: &mut Context<Self>) {
        tracing::debug!(bind = %msg.key, "bind actor panicked");
        // Its task is being torn down: look once it is gone.
        ctx.run_later(Duration::from_millis(20), |act, ctx| act.check_binds(ctx));
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: Shutdown, _ctx: &mut Context<Self>) -> Self::Result {
        self.shutting_down = true;
        self.readiness.begin_shutdown();
        let stops: Vec<_> = self
            .entries()
            .map(|entry| entry.addr.send(ShutdownBind { reason: "shutdown" }))
            .collect();
        Box::pin(async move {
            let all = futures::future::join_all(stops);
            if tokio::time::timeout(msg.deadline, all).await.is_err() {
                tracing::warn!("shutdown deadline passed with binds still unbinding");
            }
        })
    }
}
