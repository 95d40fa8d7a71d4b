//! `BindActor`: one bind (operatorId, direction, bindId).
//!
//! It owns the bind's sessions (one for a transceiver, two after the TX + RX fallback),
//! their sockets, the [`Ledger`] of the messages it holds, and the intake from JetStream.
//! It runs under an `actix::Supervisor`: `started` connects after the delay [`Backoff`]
//! gives; any failure (OMS, TCP, bind rejected, enquire_link timeout, connection lost)
//! stops the actor so that the restart *is* the reconnect. The actor value survives the
//! restart, and with it the ledger: what was queued or in flight is NAKed at once (the
//! session that would have answered is gone), what waits for its correlation row keeps
//! waiting — row writes, pulls and lookups answer by address, not through the context
//! the restart drops.
//!
//! What is decided where: the session state machine ([`Session`]) speaks SMPP; the
//! [`Ledger`] decides what each message's segments mean for the message (ACK, NAK,
//! reject, dead letter, write a row); [`taxonomy`] classifies every outcome. This file
//! drives them: connect and link, the session pump, one timer at the earliest deadline,
//! graceful unbind. Intake is in `intake.rs`, settling in `settle.rs`.
//!
//! Invariant: a NATS message is ACKed only after each of its segments has a committed
//! correlation row, or after it was dead-lettered / rejected with a published event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use smpp_connector::backoff::Backoff;
use smpp_connector::config::{BindKey, Config, OperatorId};
use smpp_connector::dispatch::SubmitProfile;
use smpp_connector::flow::FlowController;
use smpp_connector::inbound::BindProgress;
use smpp_connector::ledger::{Ledger, RecordRetry, SegmentRef};
use smpp_connector::session::{BindState, Session};

use super::intake::{Held, IntakeOrder, Lanes, LookedUp, Pinned, SLOTS};
use super::io::{BoxedWrite, ReadItem};
use super::metrics::BindMetrics;
use super::pull::{ListenEnded, PullFinished, Pulled};
use super::pull_mux::PullMux;
use super::settle::RowWritten;
use crate::correlation::CorrelationActor;
use crate::events::now_rfc3339;
use crate::nats::EventPublisher;
use crate::oms::{CredentialSource, Credentials};
use crate::supervisor::BindStateChanged;
use crate::telemetry::actor_health::{ActorHealth, Probe};
use crate::telemetry::metric;
use crate::throttle::ThrottleActor;

/// Dead-letter lines one bind logs per minute before it raises one ERROR and counts the rest.
const DEAD_LETTER_LINES_PER_MINUTE: u32 = 10;

/// How often held messages get an in-progress ack (at most a third of AckWait).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(3);
/// How often gauges are refreshed and the adaptive window grows.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(500);

/// What every bind shares.
pub struct BindDeps {
    pub config: Arc<Config>,
    pub credentials: Arc<dyn CredentialSource>,
    pub correlation: Addr<CorrelationActor>,
    pub supervisor: Recipient<BindStateChanged>,
    pub publisher: EventPublisher,
    pub throttle: Addr<ThrottleActor>,
    /// The process's one subscription for pull answers.
    pub pulls: PullMux,
    /// TLS to SMSCs of operators with `tls: true`.
    pub tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for BindDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindDeps").finish_non_exhaustive()
    }
}

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

/// Admin drain (`paused: true`): take no new messages, finish what is held, stay bound.
/// Resume (`false`): take messages again.
#[derive(Debug, Message)]
#[rtype(result = "()")]
pub struct PauseIntake {
    pub paused: bool,
}

/// Token of one submitted segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentToken {
    pub(super) segment: SegmentRef,
    pub(super) written_at: Instant,
}

/// A session and the write half of its socket.
pub(super) struct Link {
    pub(super) session: Session<SegmentToken>,
    pub(super) writer: actix::io::Writer<BoxedWrite, std::io::Error>,
    pub(super) bound: bool,
    /// Closed while the session's inbound window is full (its reads wait).
    pub(super) gate: Arc<super::io::InboundGate>,
}

/// What to do when the sessions are closed after a graceful unbind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterUnbind {
    Reconnect,
    Stop,
}

#[derive(Debug)]
pub(super) struct Unbinding {
    pub(super) drain_deadline: Instant,
    pub(super) unbind_sent: bool,
    pub(super) reason: &'static str,
}

/// A read-half item, tagged with the link and the connection generation.
pub(super) struct LinkItem {
    pub(super) generation: u64,
    pub(super) link: usize,
    pub(super) item: ReadItem,
}

/// The bind actor.
pub struct BindActor {
    pub(super) metrics: BindMetrics,
    /// Restarts, mailbox wait, handling time, uptime.
    pub(super) health: ActorHealth,
    /// Why the bind last went down (the reason of its next restart).
    pub(super) down_reason: String,
    pub(super) key: BindKey,
    pub(super) deps: Arc<BindDeps>,
    /// The operator whose traffic this bind carries: its own, or for a backup bind the
    /// primary's (whose lanes and pinned subject it pulls).
    pub(super) serves: OperatorId,
    /// The operator's lane consumers by pull slot, shared by its binds.
    pub(super) operator_lanes: Lanes,
    /// What this bind pulls, in pull order: the operator's lanes and, once created, its
    /// pinned consumer (shared with the pull tasks, never cloned per pull).
    pub(super) lanes: Lanes,
    /// The bind's pinned consumer `qg-…`: added to `lanes` once created.
    pub(super) pinned: Pinned,
    /// Admin drain: no new messages; what is held finishes; the bind stays bound.
    pub(super) intake_paused: bool,
    /// Down for good, waiting only for rows of messages it held (see `started`).
    pub(super) linger: Option<SpawnHandle>,
    /// What the bind's receipts wait on: its oldest unsettled submit, and whether a
    /// session stopped reading ([`smpp_connector::inbound`]).
    pub(super) progress: Arc<tokio::sync::watch::Sender<BindProgress>>,
    pub(super) backoff: Backoff,
    /// Bind with bind_transmitter + bind_receiver (after ESME_RINVCMDID or bindMode TX_RX).
    pub(super) split_bind: bool,
    pub(super) reconnect_now: bool,
    pub(super) shutting_down: bool,
    pub(super) shutdown_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    pub(super) state: BindState,
    /// Connection generation: items of an older connection are ignored.
    pub(super) generation: u64,
    pub(super) links: Vec<Link>,
    pub(super) credentials: Option<Arc<Credentials>>,
    pub(super) profile: Option<SubmitProfile>,
    /// Messages held, segment by segment. Survives restarts.
    pub(super) ledger: Ledger<Held>,
    /// Window, TPS tokens and phase while bound.
    pub(super) flow: Option<FlowController>,
    /// An `AcquireTps` is under way (or waits for the next budget window).
    pub(super) granting: bool,
    /// A sequence block is being reserved.
    pub(super) sequence_refill: bool,
    pub(super) fetching: bool,
    /// Per pull slot: a listener (a long poll for one message, still waiting after the
    /// pull ended) is open on that lane, so pulls skip it.
    pub(super) listening: [bool; SLOTS],
    /// Messages on their way to the ledger, kept in pull order.
    pub(super) intake_order: IntakeOrder,
    pub(super) unbinding: Option<Unbinding>,
    pub(super) last_error: Option<String>,
    pub(super) bound_since: Option<String>,
    pub(super) concat: smpp_connector::concat_refs::ConcatRefs,
    /// A correlation write is failing (logged once per outage).
    pub(super) record_outage: bool,
    /// Dead-letter lines: ten a minute, then one ERROR, then a count.
    pub(super) dead_letter_log: smpp_connector::log_budget::LogBudget,
    /// Redelivery lookups are failing (logged once per outage).
    pub(super) lookup_outage: bool,
    pub(super) sequence_skips_reported: u64,
    /// An expiry scan of this bind's open MO index is under way.
    pub(super) mo_scanning: bool,
    /// Expiry scans run (bind 0 scans the orphaned indexes every few).
    pub(super) mo_scans: u32,
    /// A sweep of commands pinned to binds the operator does not have is under way.
    pub(super) unserved_sweeping: bool,
    /// Writers still flushing before the actor stops.
    pub(super) closing_writers: usize,
    /// The armed timer: its deadline and handle.
    pub(super) timer: Option<(Instant, SpawnHandle)>,
}

impl std::fmt::Debug for BindActor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindActor")
            .field("key", &self.key)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl BindActor {
    /// `lanes`: the operator's lane consumers by priority (0 = P0), shared by its binds;
    /// `serves`: the operator whose commands it takes (`key`'s own, or the primary's for
    /// a backup bind, whose key names the backup operator).
    pub fn new(key: BindKey, serves: OperatorId, deps: Arc<BindDeps>, lanes: Lanes) -> Self {
        let timers = &deps.config.timers;
        let jitter = (timers.reconnect_jitter > 0.0).then_some(timers.reconnect_jitter);
        let backoff = Backoff::new(
            timers.reconnect_backoff_base,
            timers.reconnect_backoff_max,
            jitter,
        );
        let max_deliver = deps.config.max_deliver.max(1) as u64;
        BindActor {
            metrics: BindMetrics::new(&key),
            health: ActorHealth::new("bind", Some(&key)),
            down_reason: String::new(),
            key,
            serves,
            operator_lanes: lanes.clone(),
            lanes,
            pinned: Pinned::Missing {
                failures: 0,
                retry_at: None,
            },
            intake_paused: false,
            linger: None,
            progress: Arc::new(tokio::sync::watch::Sender::new(BindProgress::default())),
            dead_letter_log: smpp_connector::log_budget::LogBudget::new(
                DEAD_LETTER_LINES_PER_MINUTE,
                Duration::from_secs(60),
            ),
            backoff,
            split_bind: false,
            reconnect_now: false,
            shutting_down: false,
            shutdown_waiters: Vec::new(),
            state: BindState::Disconnected,
            generation: 0,
            links: Vec::new(),
            credentials: None,
            profile: None,
            ledger: Ledger::new(max_deliver, RecordRetry::default()),
            flow: None,
            granting: false,
            sequence_refill: false,
            fetching: false,
            listening: [false; SLOTS],
            intake_order: IntakeOrder::default(),
            unbinding: None,
            last_error: None,
            bound_since: None,
            concat: Default::default(),
            record_outage: false,
            lookup_outage: false,
            sequence_skips_reported: 0,
            mo_scanning: false,
            mo_scans: 0,
            unserved_sweeping: false,
            closing_writers: 0,
            timer: None,
            deps,
        }
    }

    /// The session that submits (the transceiver, or the transmitter of a split bind).
    pub(super) fn transmitter(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.session.mode().can_submit())
    }

    pub(super) fn transmitter_index(&self) -> Option<usize> {
        self.links
            .iter()
            .position(|l| l.session.mode().can_submit())
    }

    /// The bind takes new messages: bound, half-closed (for its probe) or draining (then
    /// the flow controller allows nothing), not unbinding, not going down.
    pub(super) fn accepting(&self) -> bool {
        self.state.is_bound()
            && self.state != BindState::Draining
            && self.unbinding.is_none()
            && self.closing_writers == 0
    }

    /// Submits the window, the phase and the TPS tokens allow now.
    pub(super) fn submit_allowance(&self, now: Instant) -> usize {
        let Some(link) = self.transmitter() else {
            return 0;
        };
        let hard = link.session.free_slots();
        self.flow.as_ref().map_or(hard, |f| {
            f.submit_allowance(now, link.session.in_flight()).min(hard)
        })
    }

    /// After every input: submit what the window allows, carry out the ledger's
    /// decisions, pull more if there is room, re-arm the timer.
    pub(super) fn drive(&mut self, ctx: &mut Context<Self>) {
        // TPS: tokens for what is queued and what a pull could take (one Redis round trip
        // at a time, a block each; nothing without a limit).
        if self.accepting() {
            let room = if self.ledger.stalled() {
                0
            } else {
                self.window_room()
            };
            self.request_grant(room, ctx);
        }
        self.send_queued(ctx);
        self.drain_flow_events(ctx);
        // Rows are asked for (drain_outputs) before the progress says their submits are
        // settled: a receipt that stops waiting then finds its row at least on its way.
        self.drain_outputs(ctx);
        let oldest_unsettled = BindProgress::oldest(
            self.transmitter()
                .and_then(|l| l.session.oldest_in_flight_since()),
            self.ledger.oldest_record_failure(),
        );
        self.progress.send_if_modified(|p| {
            let changed = p.oldest_unsettled != oldest_unsettled;
            p.oldest_unsettled = oldest_unsettled;
            changed
        });
        self.pull(ctx);
        self.progress_unbind(Instant::now(), ctx);
        self.arm_timer(ctx);
    }

    pub(super) fn set_state(&mut self, state: BindState, reason: Option<String>) {
        if self.state == state {
            return;
        }
        tracing::info!(
            operatorId = %self.key.operator_id,
            direction = %self.key.direction,
            bindId = self.key.bind_id,
            from = self.state.as_str(),
            to = state.as_str(),
            reason = reason.as_deref().unwrap_or(""),
            "bind state changed"
        );
        self.metrics.state_changes.increment(1);
        self.metrics.set_state(state);
        self.metrics
            .bind_up
            .set(if state.is_bound() { 1.0 } else { 0.0 });
        self.state = state;
        self.bound_since = state.is_bound().then(now_rfc3339);
        self.deps.supervisor.do_send(BindStateChanged {
            key: self.key.clone(),
            serves: self.serves.clone(),
            state,
            reason,
            failures: self.backoff.attempts(),
        });
    }

    // ----- graceful unbind -----------------------------------------------------------

    pub(super) fn begin_unbind(
        &mut self,
        then: AfterUnbind,
        reason: &'static str,
        ctx: &mut Context<Self>,
    ) {
        if then == AfterUnbind::Stop {
            // From now on `started` does not reconnect.
            self.shutting_down = true;
        }
        if self.links.is_empty() || !self.state.is_bound() {
            // Nothing to drain: go down now.
            self.reconnect_now = true;
            self.go_down(reason.into(), ctx);
            return;
        }
        if let Some(unbinding) = &mut self.unbinding {
            if then == AfterUnbind::Stop {
                unbinding.reason = reason;
            }
            return;
        }
        self.unbinding = Some(Unbinding {
            drain_deadline: Instant::now() + self.deps.config.timers.drain_timeout,
            unbind_sent: false,
            reason,
        });
        self.set_state(BindState::Unbinding, Some(reason.into()));
        // Segments not yet written go back to the stream now; in-flight ones are
        // answered and recorded first.
        self.ledger.release_queued();
        self.drive(ctx);
    }

    /// Our graceful unbind is complete: go down, and reconnect at once unless this is
    /// the shutdown (`shutting_down` keeps `started` from connecting).
    pub(super) fn unbind_done(&mut self, ctx: &mut Context<Self>) {
        let reason = self.unbinding.as_ref().map_or("unbound", |u| u.reason);
        self.reconnect_now = true;
        self.go_down(reason.into(), ctx);
    }

    pub(super) fn progress_unbind(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(unbinding) = &mut self.unbinding else {
            return;
        };
        if unbinding.unbind_sent {
            return;
        }
        let drained = self.ledger.messages() == 0;
        if drained || now >= unbinding.drain_deadline {
            unbinding.unbind_sent = true;
            for index in 0..self.links.len() {
                self.links[index].session.unbind(now);
                self.pump(index, ctx);
            }
        }
    }
}

impl Actor for BindActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        self.health.started(ctx);
        self.metrics.set_state(self.state);
        let progress = PROGRESS_INTERVAL.min(self.deps.config.timers.ack_wait / 3);
        if self.shutting_down {
            self.metrics.clear_gauges();
            // Down for good (shutdown, released, aborted): no timers, no reconnect. The
            // actor ends when its last address is dropped; while messages still wait for
            // their rows it keeps their AckWait alive, then stops doing even that.
            if self.ledger.messages() > 0 {
                self.linger = Some(ctx.run_interval(progress, |act, ctx| {
                    act.progress_acks();
                    if act.ledger.messages() == 0
                        && let Some(handle) = act.linger.take()
                    {
                        ctx.cancel_future(handle);
                    }
                }));
            }
            return;
        }
        ctx.run_interval(HOUSEKEEPING_INTERVAL, |act, ctx| act.housekeeping(ctx));
        let reload = self.deps.config.timers.window_reload;
        ctx.run_interval(reload, |act, ctx| act.reload_window(ctx));
        ctx.run_interval(progress, |act, _ctx| act.progress_acks());
        let scan = super::mo::scan_interval(self.deps.config.timers.concat_window);
        ctx.run_interval(scan, |act, ctx| act.scan_expired_mo(ctx));
        self.schedule_connect(ctx);
    }
}

impl Supervised for BindActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        let reason = std::mem::take(&mut self.down_reason);
        self.health.restarted(if reason.is_empty() {
            "stopped"
        } else {
            &reason
        });
        // The session is gone: what was queued or in flight goes back to the stream at
        // once; messages waiting for a row keep waiting (the answer comes by address).
        let held = self.ledger.messages() + self.intake_order.len();
        self.ledger.handle_session_ended();
        self.return_unadmitted();
        self.drain_outputs(ctx);
        if held > 0 {
            tracing::info!(
                operatorId = %self.key.operator_id,
                bindId = self.key.bind_id,
                messages = held,
                still_recording = self.ledger.messages(),
                "bind restarting; returning held messages to the stream"
            );
        }
        self.links.clear();
        self.credentials = None;
        self.profile = None;
        self.fetching = false;
        self.listening = [false; SLOTS];
        self.flow = None;
        self.granting = false;
        self.sequence_refill = false;
        // The restart cancelled the scans under way with the actor's other futures.
        self.mo_scanning = false;
        self.unserved_sweeping = false;
        self.unbinding = None;
        self.closing_writers = 0;
        self.timer = None;
        self.linger = None;
        if self.pinned == Pinned::Creating {
            // The restart cancelled the creation: try again.
            self.pinned = Pinned::Missing {
                failures: 0,
                retry_at: None,
            };
        }
        self.generation += 1;
        if self.state != BindState::Disconnected {
            self.set_state(BindState::Disconnected, Some("restart".into()));
        }
        if self.shutting_down {
            for waiter in self.shutdown_waiters.drain(..) {
                let _ = waiter.send(());
            }
        }
    }
}

impl Handler<Pulled> for BindActor {
    type Result = ();

    fn handle(&mut self, pulled: Pulled, ctx: &mut Context<Self>) {
        let _timer = self.health.time();
        if pulled.generation == self.generation {
            self.on_pulled(pulled.message, pulled.priority, ctx);
        } else {
            // Pulled for a session that is gone: back at once.
            let (_, acker) = pulled.message.split();
            super::intake::nak(Arc::new(acker), Duration::ZERO);
            self.metrics.naks.increment(1);
        }
    }
}

impl Handler<PullFinished> for BindActor {
    type Result = ();

    fn handle(&mut self, done: PullFinished, ctx: &mut Context<Self>) {
        if done.generation != self.generation {
            // A pull of a session that is gone: the restart already cleared its state.
            return;
        }
        self.fetching = false;
        for priority in done.listeners {
            if let Some(slot) = self.listening.get_mut(priority) {
                *slot = true;
            }
        }
        match done.error {
            None => self.drive(ctx),
            Some(err) => {
                metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats").increment(1);
                tracing::warn!(operatorId = %self.key.operator_id, bindId = self.key.bind_id, error = %err, "pull failed");
                self.fetching = true;
                ctx.run_later(Duration::from_millis(500), |act, ctx| {
                    act.fetching = false;
                    act.drive(ctx);
                });
            }
        }
    }
}

impl Handler<ListenEnded> for BindActor {
    type Result = ();

    fn handle(&mut self, ended: ListenEnded, ctx: &mut Context<Self>) {
        if ended.generation != self.generation {
            return;
        }
        if let Some(slot) = self.listening.get_mut(ended.priority) {
            *slot = false;
        }
        self.drive(ctx);
    }
}

impl Handler<LookedUp> for BindActor {
    type Result = ();

    fn handle(&mut self, done: LookedUp, ctx: &mut Context<Self>) {
        self.on_looked_up(done, ctx);
    }
}

impl Handler<RowWritten> for BindActor {
    type Result = ();

    fn handle(&mut self, written: RowWritten, ctx: &mut Context<Self>) {
        let _timer = self.health.time();
        self.on_row_written(written, ctx);
    }
}

impl Handler<GetBindStatus> for BindActor {
    type Result = MessageResult<GetBindStatus>;

    fn handle(&mut self, _: GetBindStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let transmitter = self.links.iter().find(|l| l.session.mode().can_submit());
        let backup = self.serves != self.key.operator_id;
        MessageResult(BindStatus {
            operator_id: self.key.operator_id.to_string(),
            direction: self.key.direction.as_str(),
            bind_id: self.key.bind_id,
            role: if backup { "backup" } else { "primary" },
            backup_for: backup.then(|| self.serves.to_string()),
            owner_pod: None,
            state: self.state.as_str(),
            intake: if self.intake_paused {
                "drained"
            } else {
                "open"
            },
            sessions: self.links.iter().map(|l| l.session.mode().name()).collect(),
            in_flight: transmitter.map_or(0, |l| l.session.in_flight()),
            window: self.flow.as_ref().map_or(0, |f| f.window_size()),
            queued_segments: self.ledger.queued(),
            dispatches: self.ledger.messages(),
            reconnect_attempts: self.backoff.attempts(),
            last_error: self.last_error.clone(),
            bound_since: self.bound_since.clone(),
            actor: Some(self.health.snapshot()),
        })
    }
}

impl Handler<RestartBind> for BindActor {
    type Result = ();

    fn handle(&mut self, msg: RestartBind, ctx: &mut Context<Self>) {
        tracing::info!(operatorId = %self.key.operator_id, direction = %self.key.direction, bindId = self.key.bind_id, reason = msg.reason, "bind restart requested");
        self.begin_unbind(AfterUnbind::Reconnect, msg.reason, ctx);
    }
}

impl Handler<ShutdownBind> for BindActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: ShutdownBind, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shutting_down && self.links.is_empty() {
            let _ = tx.send(());
        } else {
            self.shutdown_waiters.push(tx);
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
        tracing::warn!(
            operatorId = %self.key.operator_id,
            direction = %self.key.direction,
            bindId = self.key.bind_id,
            reason = msg.reason,
            held = self.ledger.messages(),
            "bind stopped at once; held messages go back to the stream"
        );
        self.shutting_down = true;
        if self.links.is_empty() {
            self.reconnect_now = true;
            self.go_down(msg.reason.into(), ctx);
            return;
        }
        // What is in flight is counted as possible duplicates by `go_down`; it comes back
        // as a redelivery (the new owner sends only what has no row).
        let now = Instant::now();
        for index in 0..self.links.len() {
            self.links[index].session.unbind(now);
            self.pump(index, ctx);
        }
        self.go_down(msg.reason.into(), ctx);
    }
}

impl Handler<PauseIntake> for BindActor {
    type Result = ();

    fn handle(&mut self, msg: PauseIntake, ctx: &mut Context<Self>) {
        if self.intake_paused == msg.paused {
            return;
        }
        self.intake_paused = msg.paused;
        self.metrics
            .intake_paused
            .set(if msg.paused { 1.0 } else { 0.0 });
        tracing::info!(
            operatorId = %self.key.operator_id,
            direction = %self.key.direction,
            bindId = self.key.bind_id,
            held = self.ledger.messages(),
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
        self.health.probed(&probe);
    }
}
