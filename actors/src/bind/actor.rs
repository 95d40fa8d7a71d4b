//! `BindActor`: the driver of one bind (operatorId, direction, bindId).
//!
//! The bind's state and every decision about it live in its
//! [`smpp_connector::bind_core::BindCore`]: sessions, ledger, flow controller, intake,
//! references, backoff, life cycle. This actor is plumbing around it: it connects (OMS,
//! TCP/TLS, a sequence block), writes what the sessions queued, reads through each
//! session's inbound gate, arms one timer at the core's deadline, and carries out what the
//! core and its ledger decide — pulls, row writes, ACK/NAK, dead letters, TPS requests,
//! references, health events — against NATS, Redis and PostgreSQL. What exists only
//! while a connection does (writers, gates, timer) is one `Connection` value, dropped
//! on restart.
//!
//! It runs under an `actix::Supervisor`: any failure (OMS, TCP, bind rejected,
//! enquire_link timeout, connection lost) stops the actor so that the restart *is* the
//! reconnect, after the delay the core's backoff gives. The actor value survives the
//! restart, and with it the core and its ledger: what was queued or in flight is NAKed at
//! once, what waits for its correlation row keeps waiting — row writes, pulls and lookups
//! answer by address, not through the context the restart drops.
//!
//! Invariant: a NATS message is ACKed only after each of its segments has a committed
//! correlation row (or was refused one for good by the database), or after it was
//! dead-lettered / rejected with a published event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use smpp_connector::bind_core::{BindCore, CoreSettings, StateChange, UnbindStart};
use smpp_connector::config::{BindKey, OperatorId};
use smpp_connector::dispatch::flow::FlowConfig;
use smpp_connector::inbound::BindProgress;
use smpp_connector::protocol::session::BindState;
use smpp_connector::protocol::window::AdaptiveConfig;

pub use super::deps::{BindCrashed, BindDeps, BindStateChanged};
use super::io::{BoxedWrite, ReadItem};
use super::message::{Held, Lanes, Looked};
use crate::events::now_rfc3339;
use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::bind_metrics::BindMetrics;
use crate::telemetry::internal_events::{BindInternalEvent, StateChanged};

/// How often held messages get an in-progress ack (at most a third of AckWait).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);
/// How often gauges are refreshed and the adaptive window grows.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

/// A snapshot for the admin API.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BindStatus {
    pub operator_id: String,
    pub direction: &'static str,
    pub bind_id: u16,
    /// `primary`, or `backup` for a bind carrying another operator's traffic.
    pub role: &'static str,
    /// The operator whose traffic a backup bind carries.
    pub backup_for: Option<String>,
    /// The pod owning the bind (NATS KV), as last read.
    pub owner_pod: Option<String>,
    pub state: &'static str,
    /// `open`, or `drained` after an admin drain (no new messages; stays bound).
    pub intake: &'static str,
    pub sessions: Vec<&'static str>,
    pub in_flight: usize,
    pub window: usize,
    pub queued_segments: usize,
    pub dispatches: usize,
    pub reconnect_attempts: u32,
    pub last_error: Option<String>,
    pub bound_since: Option<String>,
    /// The BindActor's own health: restarts (each reconnect), mailbox wait, uptime.
    pub actor: Option<crate::telemetry::actor_health::ActorSnapshot>,
}

/// Ask for a [`BindStatus`].
#[derive(Debug, Message)]
#[rtype(result = "BindStatus")]
pub struct GetBindStatus;

/// Restart this bind: drain in-flight submits (bounded), unbind, reconnect at once.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct RestartBind {
    pub reason: &'static str,
}

/// Shut this bind down for good (SIGTERM): drain, unbind, do not reconnect. Answered
/// when the bind is down.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct ShutdownBind {
    /// Why (`shutdown`, `rebalance`, `failback`…): the reason of its health events.
    pub reason: &'static str,
}

/// Stop this bind now, for good: its ownership moved to another pod, which may bind it
/// any moment. What it holds goes back to the stream at once (in-flight submits counted as
/// possible duplicates), an unbind is written without waiting for its answer, and the
/// connection closes. Messages waiting for their correlation row still get it.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct AbortBind {
    pub reason: &'static str,
}

/// Panic this bind's actor on purpose (`FAULT_INJECTION=true` only, checked by the
/// supervisor): a drill of its supervision.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct InjectPanic;

/// Admin drain (`paused: true`): take no new messages, finish what is held, stay bound.
/// Resume (`false`): take messages again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PauseIntake {
    pub paused: bool,
}

pub(super) use smpp_connector::bind_core::{AfterUnbind, SegmentToken};

/// The write side of one session of the current connection (its protocol state is the
/// core's [`smpp_connector::bind_core::Link`] at the same index).
pub(super) struct Wire {
    pub(super) writer: actix::io::Writer<BoxedWrite, std::io::Error>,
    /// Closed while the session's inbound window is full (its reads wait).
    pub(super) gate: Arc<super::io::InboundGate>,
}

/// What exists only while a connection does: dropped by a restart.
#[derive(Default)]
pub(super) struct Connection {
    pub(super) wires: Vec<Wire>,
    /// Writers still flushing before the actor stops.
    pub(super) closing_writers: usize,
    /// The armed timer: its deadline and handle.
    pub(super) timer: Option<(Instant, SpawnHandle)>,
}

/// A read-half item, tagged with the link and the connection generation.
pub(super) struct LinkItem {
    pub(super) generation: u64,
    pub(super) link: usize,
    pub(super) item: ReadItem,
}

/// The bind's lanes: the operator's lane consumers by pull slot (shared by its binds) and
/// what this bind pulls, in pull order (once created, its pinned consumer too).
pub(super) struct BindLanes {
    pub(super) operator: Lanes,
    pub(super) pulled: Lanes,
}

/// The core of a bind as the service runs it: messages settle through [`Held`], and
/// wait in the intake as [`Looked`].
pub(super) type Core = BindCore<Held, Looked>;

/// The bind actor: plumbing around its [`BindCore`], which decides.
pub struct BindActor {
    pub(super) core: Core,
    /// The bind's identity (also the core's).
    pub(super) key: BindKey,
    /// The bind's span: every line logged while it handles something carries its
    /// `operatorId`, `direction` and `bindId`.
    pub(super) span: tracing::Span,
    pub(super) deps: Arc<BindDeps>,
    pub(super) metrics: BindMetrics,
    /// Restarts, mailbox wait, handling time, uptime.
    pub(super) health: ActorHealth,
    pub(super) lanes: BindLanes,
    /// What the bind's receipts wait on: its oldest unsettled submit, and whether a
    /// session stopped reading ([`smpp_connector::inbound`]).
    pub(super) progress: Arc<crate::inbound::ProgressCell>,
    /// Connection generation: items of an older connection are ignored.
    pub(super) generation: u64,
    pub(super) io: Connection,
    /// Why it went down last, since when it is bound.
    pub(super) notes: Notes,
    /// Shutdown requests answered when the bind is down; down for good, the interval that
    /// keeps the AckWait of messages still waiting for their rows.
    pub(super) ending: Ending,
}

/// What the admin API and the next restart read of the bind's recent past.
#[derive(Default)]
pub(super) struct Notes {
    /// Why the bind last went down (the reason of its next restart).
    pub(super) down_reason: String,
    /// Since when it is bound (RFC 3339).
    pub(super) bound_since: Option<String>,
}

/// How a bind that is down for good ends.
#[derive(Default)]
pub(super) struct Ending {
    pub(super) waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    pub(super) linger: Option<SpawnHandle>,
}

impl std::fmt::Debug for BindActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindActor")
            .field("key", &self.key)
            .field("state", &self.core.state())
            .finish_non_exhaustive()
    }
}

impl BindActor {
    /// `lanes`: the operator's lane consumers by priority (0 = P0), shared by its binds;
    /// `serves`: the operator whose commands it takes (`key`'s own, or the primary's for
    /// a backup bind, whose key names the backup operator).
    pub fn new(key: BindKey, serves: OperatorId, deps: Arc<BindDeps>, lanes: Lanes) -> Self {
        let config = &deps.config;
        let timers = &config.timers;
        let settings = CoreSettings {
            fetch_batch: config.fetch_batch,
            drain_timeout: timers.drain_timeout,
            max_deliver: config.max_deliver.max(1) as u64,
            flow: FlowConfig {
                adaptive: AdaptiveConfig {
                    grow_period: timers.window_grow_period,
                    throttle_period: timers.throttle_period,
                    ..AdaptiveConfig::default()
                },
                probe_interval: timers.probe_interval,
                drain_min: timers.drain_min,
                drain_alert_after: timers.drain_alert_after,
            },
            backoff_base: timers.reconnect_backoff_base,
            backoff_max: timers.reconnect_backoff_max,
            jitter: timers.reconnect_jitter,
        };
        BindActor {
            core: BindCore::new(key.clone(), serves, settings),
            metrics: BindMetrics::new(&key),
            health: ActorHealth::new("bind", Some(&key)),
            span: tracing::error_span!(
                "bind",
                operatorId = %key.operator_id,
                direction = %key.direction,
                bindId = key.bind_id
            ),
            key,
            lanes: BindLanes {
                operator: lanes.clone(),
                pulled: lanes,
            },
            progress: Arc::default(),
            generation: 0,
            io: Connection::default(),
            notes: Notes::default(),
            ending: Ending::default(),
            deps,
        }
    }

    /// After every input: carry out what the core decided — TPS requests, submits the
    /// window allows, bytes to write, session events, state changes and flow notices,
    /// the ledger's rows and settlements, a pull, the unbind when due — and re-arm the
    /// timer.
    pub(super) fn drive(&mut self, ctx: &mut Context<Self>) {
        // TPS: tokens for what is queued and what a pull could take (one Redis round trip
        // at a time, a block each; nothing without a limit).
        self.request_grant(ctx);
        let written = self.core.submit_queued(crate::clock::now());
        self.metrics.submits.increment(written as u64);
        self.pump(ctx);
        self.drain_events(ctx);
        // Rows are asked for (drain_outputs) before the progress says their submits are
        // settled: a receipt that stops waiting then finds its row at least on its way.
        self.drain_outputs(ctx);
        let oldest_unsettled = BindProgress::oldest(
            self.core
                .transmitter()
                .and_then(|l| l.session.oldest_in_flight_since()),
            self.core.ledger.oldest_unrecorded(),
        );
        self.progress.set_oldest_unsettled(oldest_unsettled);
        self.pull(ctx);
        if self.core.unbind_if_due(crate::clock::now()) {
            self.pump(ctx);
        }
        self.arm_timer(ctx);
    }

    /// Set the bind state from here (connecting, down, restarted) and report the change.
    pub(super) fn set_state(&mut self, state: BindState, reason: Option<String>) {
        if let Some(change) = self.core.set_state(state, reason) {
            self.report_state(change);
        }
    }

    /// A state change, reported: logged, counted, and told to the supervisor.
    pub(super) fn report_state(&mut self, change: StateChange) {
        let StateChange { from, to, reason } = change;
        StateChanged {
            from,
            to,
            reason: reason.as_deref(),
        }
        .emit(&mut self.metrics);
        self.notes.bound_since = to.is_bound().then(now_rfc3339);
        self.deps.supervisor.do_send(BindStateChanged {
            key: self.key.clone(),
            serves: self.core.serves().clone(),
            state: to,
            reason,
            failures: self.core.backoff().attempts(),
        });
    }

    // ----- graceful unbind -----------------------------------------------------------

    pub(super) fn begin_unbind(
        &mut self,
        then: AfterUnbind,
        reason: &'static str,
        ctx: &mut Context<Self>,
    ) {
        match self.core.begin_unbind(then, reason, crate::clock::now()) {
            UnbindStart::GoDownNow => self.go_down(reason.into(), ctx),
            UnbindStart::AlreadyUnbinding => {}
            UnbindStart::Draining => {
                self.set_state(BindState::Unbinding, Some(reason.into()));
                self.drive(ctx);
            }
        }
    }

    /// Our graceful unbind is complete: go down, and reconnect at once unless this is
    /// the shutdown.
    pub(super) fn unbind_done(&mut self, ctx: &mut Context<Self>) {
        let reason = self.core.unbind_done();
        self.go_down(reason.into(), ctx);
    }
}

impl Actor for BindActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        ctx.set_mailbox_capacity(1024);
        self.health.started(ctx);
        self.metrics.set_state(self.core.state());
        let progress = PROGRESS_INTERVAL.min(self.deps.config.timers.ack_wait / 3);
        if self.core.shutting_down() {
            self.metrics.clear_gauges();
            // Down for good (shutdown, released, aborted): no timers, no reconnect. The
            // actor ends when its last address is dropped; while messages still wait for
            // their rows it keeps their AckWait alive, then stops doing even that.
            if self.core.ledger.messages() > 0 {
                self.ending.linger = Some(ctx.run_interval(progress, |act, ctx| {
                    let _span = act.span.clone().entered();
                    act.progress_acks();
                    if act.core.ledger.messages() == 0
                        && let Some(handle) = act.ending.linger.take()
                    {
                        ctx.cancel_future(handle);
                    }
                }));
            }
            return;
        }
        ctx.run_interval(HOUSEKEEPING_INTERVAL, |act, ctx| {
            let _span = act.span.clone().entered();
            act.housekeeping(ctx);
        });
        let reload = self.deps.config.timers.window_reload;
        ctx.run_interval(reload, |act, ctx| {
            let _span = act.span.clone().entered();
            act.reload_window(ctx);
        });
        ctx.run_interval(progress, |act, _ctx| {
            let _span = act.span.clone().entered();
            act.progress_acks();
        });
        let scan =
            smpp_connector::bind_core::mo_scan_interval(self.deps.config.timers.concat_window);
        ctx.run_interval(scan, |act, ctx| {
            let _span = act.span.clone().entered();
            act.scan_expired_mo(ctx);
        });
        self.schedule_connect(ctx);
    }
}

impl Supervised for BindActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let reason = std::mem::take(&mut self.notes.down_reason);
        self.health.restarted(if reason.is_empty() {
            "stopped"
        } else {
            &reason
        });
        // The session is gone: what was queued or in flight goes back to the stream at
        // once; messages waiting for a row keep waiting (the answer comes by address).
        let mut unadmitted = Vec::new();
        let restarted = self.core.restarted(&mut unadmitted);
        self.return_unadmitted(unadmitted);
        self.drain_outputs(ctx);
        if restarted.held > 0 {
            tracing::info!(
                messages = restarted.held,
                still_recording = restarted.still_recording,
                "bind restarting; returning held messages to the stream"
            );
        }
        // The restart cancelled the connection's futures: its writers, timer and linger.
        self.io = Connection::default();
        self.ending.linger = None;
        self.generation += 1;
        if self.core.state() != BindState::Disconnected {
            self.set_state(BindState::Disconnected, Some("restart".into()));
        }
        if self.core.shutting_down() {
            for waiter in self.ending.waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Handler<GetBindStatus> for BindActor {
    type Result = MessageResult<GetBindStatus>;

    fn handle(&mut self, _: GetBindStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let transmitter = self.core.transmitter();
        let backup = self.core.is_backup();
        MessageResult(BindStatus {
            operator_id: self.key.operator_id.to_string(),
            direction: self.key.direction.as_str(),
            bind_id: self.key.bind_id,
            role: if backup { "backup" } else { "primary" },
            backup_for: backup.then(|| self.core.serves().to_string()),
            owner_pod: None,
            state: self.core.state().as_str(),
            intake: if self.core.intake_paused() {
                "drained"
            } else {
                "open"
            },
            sessions: self
                .core
                .links()
                .iter()
                .map(|l| l.session.mode().name())
                .collect(),
            in_flight: transmitter.map_or(0, |l| l.session.in_flight()),

            window: self.core.flow().map_or(0, |f| f.window_size()),
            queued_segments: self.core.ledger.queued(),
            dispatches: self.core.ledger.messages(),
            reconnect_attempts: self.core.backoff().attempts(),
            last_error: self.core.last_error().map(str::to_owned),
            bound_since: self.notes.bound_since.clone(),
            actor: Some(self.health.snapshot()),
        })
    }
}

impl Handler<RestartBind> for BindActor {
    type Result = ();

    fn handle(&mut self, msg: RestartBind, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        tracing::info!(reason = msg.reason, "bind restart requested");
        self.begin_unbind(AfterUnbind::Reconnect, msg.reason, ctx);
    }
}

impl Handler<ShutdownBind> for BindActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ShutdownBind, ctx: &mut Context<Self>) -> Self::Result {
        let _span = self.span.clone().entered();
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.core.shutting_down() && self.core.links().is_empty() {
            let _ = tx.send(());
        } else {
            self.ending.waiters.push(tx);
            self.begin_unbind(AfterUnbind::Stop, msg.reason, ctx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

impl Handler<AbortBind> for BindActor {
    type Result = ();

    fn handle(&mut self, msg: AbortBind, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        tracing::warn!(
            reason = msg.reason,
            held = self.core.ledger.messages(),
            "bind stopped at once; held messages go back to the stream"
        );
        self.core.shut_down();
        if self.core.links().is_empty() {
            self.core.reconnect_now();
            self.go_down(msg.reason.into(), ctx);
            return;
        }
        // What is in flight is counted as possible duplicates by `go_down`; it comes back
        // as a redelivery (the new owner sends only what has no row).
        self.core.unbind_all(crate::clock::now());
        self.pump(ctx);
        self.go_down(msg.reason.into(), ctx);
    }
}

impl Handler<PauseIntake> for BindActor {
    type Result = ();

    fn handle(&mut self, msg: PauseIntake, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if !self.core.pause_intake(msg.paused) {
            return;
        }
        self.metrics
            .intake_paused
            .set(if msg.paused { 1.0 } else { 0.0 });
        tracing::info!(
            held = self.core.ledger.messages(),
            "{}",
            if msg.paused {
                "bind intake drained: no new messages, held ones finish, the session stays bound"
            } else {
                "bind intake resumed"
            }
        );
        self.drive(ctx);
    }
}

impl Handler<Probe> for BindActor {
    type Result = ();

    fn handle(&mut self, probe: Probe, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.health.probed(&probe);
    }
}

impl Handler<InjectPanic> for BindActor {
    type Result = ();

    fn handle(&mut self, _: InjectPanic, _ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        tracing::warn!(
            held = self.core.ledger.messages(),
            "injected fault: this bind actor panics now (FAULT_INJECTION)"
        );
        panic!("injected fault (FAULT_INJECTION)");
    }
}

impl Drop for BindActor {
    /// A panic ends the actor's task and drops it while unwinding: tell the supervisor at
    /// once. What the bind held is not acknowledged and comes back from JetStream after
    /// AckWait (in-flight submits then as possible duplicates, sent again only without a
    /// row).
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.deps.crashed.do_send(BindCrashed {
                key: self.key.clone(),
            });
        }
    }
}
