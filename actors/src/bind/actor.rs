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
use async_nats::jetstream::consumer::PullConsumer;
use futures::StreamExt;
use smpp_connector::backoff::Backoff;
use smpp_connector::config::{BindKey, Config, Lane};
use smpp_connector::dispatch::SubmitProfile;
use smpp_connector::encoding::RefBits;
use smpp_connector::flow::FlowController;
use smpp_connector::ledger::{Ledger, RecordRetry, SegmentRef};
use smpp_connector::pdu::{BindMode, BindRequest, CommandStatus, INTERFACE_VERSION, SmBody};
use smpp_connector::session::{
    BindState, CloseReason, Event, Session, SessionConfig, SessionState, SubmitError,
    SubmitFailure,
};
use smpp_connector::taxonomy::{self, SubmitOutcome};
use smpp_connector::window::SequenceNumbers;

use super::flow::SEQUENCE_BLOCK;
use super::intake::{ConcatRefs, Held, LookedUp, PullFinished, Pulled};
use super::io::{self as bind_io, BoxedWrite, Connection, ReadItem};
use super::metrics::BindMetrics;
use super::receipt;
use super::settle::RowWritten;
use crate::correlation::{CorrelationActor, GetBindSettings};
use crate::events::now_rfc3339;
use crate::nats::EventPublisher;
use crate::oms::{BindModePreference, CredentialSource, Credentials};
use crate::supervisor::BindStateChanged;
use crate::telemetry::metric;
use crate::throttle::{ReserveSequences, ThrottleActor};

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
    pub state: &'static str,
    pub sessions: Vec<&'static str>,
    pub in_flight: usize,
    pub window: usize,
    pub queued_segments: usize,
    pub dispatches: usize,
    pub reconnect_attempts: u32,
    pub last_error: Option<String>,
    pub bound_since: Option<String>,
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
pub struct ShutdownBind;

/// Token of one submitted segment.
#[derive(Debug, Clone, Copy)]
pub(super) struct SegmentToken {
    segment: SegmentRef,
    written_at: Instant,
}

/// A session and the write half of its socket.
pub(super) struct Link {
    pub(super) session: Session<SegmentToken>,
    writer: actix::io::Writer<BoxedWrite, std::io::Error>,
    bound: bool,
}

/// What to do when the sessions are closed after a graceful unbind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterUnbind {
    Reconnect,
    Stop,
}

#[derive(Debug)]
struct Unbinding {
    drain_deadline: Instant,
    unbind_sent: bool,
    reason: &'static str,
}

/// A read-half item, tagged with the link and the connection generation.
struct LinkItem {
    generation: u64,
    link: usize,
    item: ReadItem,
}

/// The bind actor.
pub struct BindActor {
    pub(super) metrics: BindMetrics,
    pub(super) key: BindKey,
    pub(super) deps: Arc<BindDeps>,
    pub(super) lanes: Vec<(Lane, PullConsumer)>,
    backoff: Backoff,
    /// Bind with bind_transmitter + bind_receiver (after ESME_RINVCMDID or bindMode TX_RX).
    split_bind: bool,
    reconnect_now: bool,
    shutting_down: bool,
    shutdown_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
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
    pub(super) pending_lookups: usize,
    unbinding: Option<Unbinding>,
    last_error: Option<String>,
    bound_since: Option<String>,
    pub(super) concat: ConcatRefs,
    /// A correlation write is failing (logged once per outage).
    pub(super) record_outage: bool,
    /// Redelivery lookups are failing (logged once per outage).
    pub(super) lookup_outage: bool,
    sequence_skips_reported: u64,
    /// Writers still flushing before the actor stops.
    closing_writers: usize,
    /// The armed timer: its deadline and handle.
    timer: Option<(Instant, SpawnHandle)>,
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
    pub fn new(key: BindKey, deps: Arc<BindDeps>, lanes: Vec<(Lane, PullConsumer)>) -> Self {
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
            key,
            lanes,
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
            pending_lookups: 0,
            unbinding: None,
            last_error: None,
            bound_since: None,
            concat: ConcatRefs::default(),
            record_outage: false,
            lookup_outage: false,
            sequence_skips_reported: 0,
            closing_writers: 0,
            timer: None,
            deps,
        }
    }

    /// The session that submits (the transceiver, or the transmitter of a split bind).
    pub(super) fn transmitter(&self) -> Option<&Link> {
        self.links.iter().find(|l| l.session.mode().can_submit())
    }

    fn transmitter_index(&self) -> Option<usize> {
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
        self.flow
            .as_ref()
            .map_or(hard, |f| f.submit_allowance(now, link.session.in_flight()).min(hard))
    }

    /// After every input: submit what the window allows, carry out the ledger's
    /// decisions, pull more if there is room, re-arm the timer.
    pub(super) fn drive(&mut self, ctx: &mut Context<Self>) {
        // TPS: tokens for what is queued and what a pull could take (one Redis round trip
        // at a time, a block each; nothing without a limit).
        if self.accepting() {
            let room = if self.ledger.stalled() { 0 } else { self.window_room() };
            self.request_grant(room, ctx);
        }
        self.send_queued(ctx);
        self.drain_flow_events(ctx);
        self.drain_outputs(ctx);
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
        self.metrics
            .bind_up
            .set(if state.is_bound() { 1.0 } else { 0.0 });
        self.state = state;
        self.bound_since = state.is_bound().then(now_rfc3339);
        self.deps.supervisor.do_send(BindStateChanged {
            key: self.key.clone(),
            state,
            reason,
        });
    }

    // ----- connection lifecycle ------------------------------------------------------

    fn schedule_connect(&mut self, ctx: &mut Context<Self>) {
        if self.shutting_down {
            return;
        }
        let delay = if std::mem::take(&mut self.reconnect_now) {
            Duration::ZERO
        } else {
            self.backoff.next_delay(random_unit())
        };
        if !delay.is_zero() {
            tracing::info!(
                operatorId = %self.key.operator_id,
                direction = %self.key.direction,
                bindId = self.key.bind_id,
                attempt = self.backoff.attempts(),
                delay_ms = delay.as_millis() as u64,
                "reconnect scheduled"
            );
        }
        ctx.run_later(delay, |act, ctx| act.connect(ctx));
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        self.set_state(BindState::Connecting, None);
        let source = self.deps.credentials.clone();
        let operator_id = self.key.operator_id.clone();
        let timeout = self.deps.config.timers.bind_timeout;
        let direction = self.key.direction;
        let split_bind = self.split_bind;
        let throttle = self.deps.throttle.clone();
        let key = self.key.clone();
        let fut = async move {
            let credentials = source
                .fetch(&operator_id)
                .await
                .map_err(|e| ("credentials_unavailable", e.to_string()))?;
            let modes = plan_modes(direction, credentials.bind_mode, split_bind);
            let mut connections = Vec::with_capacity(modes.len());
            for mode in modes {
                let connection = bind_io::connect(
                    &credentials.host,
                    credentials.port,
                    credentials.tls,
                    timeout,
                )
                .await
                .map_err(|e| ("connect_failed", e.to_string()))?;
                // Sequence numbers from the bind's Redis counter (US-SC-022); Redis down:
                // local numbering from 1 (never reused while in flight either way).
                let sequences = match throttle
                    .send(ReserveSequences {
                        key: key.clone(),
                        count: SEQUENCE_BLOCK,
                    })
                    .await
                {
                    Ok(Ok((first, len))) => SequenceNumbers::from_block(first, len),
                    _ => SequenceNumbers::new(),
                };
                connections.push((mode, connection, sequences));
            }
            Ok::<_, (&'static str, String)>((credentials, connections))
        };
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| match result {
            Ok((credentials, connections)) => act.start_sessions(credentials, connections, ctx),
            Err((reason, detail)) => {
                if reason == "credentials_unavailable" {
                    metrics::counter!(metric::BACKEND_ERRORS, "backend" => "oms").increment(1);
                }
                tracing::warn!(
                    operatorId = %act.key.operator_id,
                    direction = %act.key.direction,
                    bindId = act.key.bind_id,
                    error = %detail,
                    "bind attempt failed"
                );
                act.fail(reason.to_owned(), detail, ctx);
            }
        }));
    }

    fn start_sessions(
        &mut self,
        credentials: Credentials,
        connections: Vec<(BindMode, Connection, SequenceNumbers)>,
        ctx: &mut Context<Self>,
    ) {
        let config = &self.deps.config;
        let enquire_link_interval = config
            .timers
            .enquire_link_interval
            .unwrap_or(Duration::from_secs(credentials.enquire_link_seconds));
        let now = Instant::now();
        self.generation += 1;
        let generation = self.generation;
        for (index, (mode, connection, sequences)) in connections.into_iter().enumerate() {
            let session_config = SessionConfig {
                mode,
                bind: BindRequest {
                    system_id: credentials.system_id.clone(),
                    password: credentials.password.expose().to_owned(),
                    system_type: credentials.system_type.clone(),
                    interface_version: INTERFACE_VERSION,
                    addr_ton: 0,
                    addr_npi: 0,
                    address_range: String::new(),
                },
                bind_timeout: config.timers.bind_timeout,
                enquire_link_interval,
                enquire_link_timeout: config.timers.enquire_link_timeout,
                submit_timeout: config.timers.submit_resp_timeout,
                unbind_timeout: config.timers.bind_timeout,
                window: credentials.window as usize,
            };
            let session = match Session::try_new(session_config, sequences, now) {
                Ok(session) => session,
                Err(err) => {
                    self.fail("bind_failed".into(), format!("bind request: {err}"), ctx);
                    return;
                }
            };
            let reads =
                bind_io::framed(connection.read, config.max_pdu_bytes).map(move |item| LinkItem {
                    generation,
                    link: index,
                    item,
                });
            ctx.add_stream(reads);
            let writer = actix::io::Writer::new(connection.write, ctx);
            self.links.push(Link {
                session,
                writer,
                bound: false,
            });
        }
        self.profile = Some(SubmitProfile {
            default_source_addr: credentials.source_addr.clone(),
            source_ton: credentials.source_ton,
            source_npi: credentials.source_npi,
            dest_ton: credentials.dest_ton,
            dest_npi: credentials.dest_npi,
            strategy: credentials.long_message_strategy,
            ref_bits: if credentials.concat_ref_bits == 16 {
                RefBits::Sixteen
            } else {
                RefBits::Eight
            },
        });
        self.credentials = Some(Arc::new(credentials));
        for index in 0..self.links.len() {
            self.pump(index, ctx);
        }
        self.arm_timer(ctx);
    }

    /// A failed attempt: count it, go DISCONNECTED and let the supervisor restart us
    /// after the backoff.
    pub(super) fn fail(&mut self, reason: String, detail: String, ctx: &mut Context<Self>) {
        let attempt = self.backoff.record_failure();
        self.metrics.reconnects.increment(1);
        self.last_error = Some(format!("{reason}: {detail}"));
        tracing::debug!(attempt, "bind attempt counted");
        self.go_down(reason, ctx);
    }

    /// Close everything and stop; the supervisor restarts the actor.
    ///
    /// What the sessions still queued (an unbind_resp, a generic_nack) is flushed first:
    /// the actor stops when every writer reported it closed, or after 500 ms at most.
    fn go_down(&mut self, reason: String, ctx: &mut Context<Self>) {
        self.set_state(BindState::Disconnected, Some(reason));
        if self.closing_writers > 0 {
            return;
        }
        // Nothing queued or in flight will be answered now: back to the stream at once.
        self.ledger.handle_session_ended();
        self.drain_outputs(ctx);
        if self.links.is_empty() {
            ctx.stop();
            return;
        }
        self.closing_writers = self.links.len();
        for link in &mut self.links {
            // An empty write wakes the writer task so it sees the close.
            link.writer.write(&[]);
            link.writer.close();
        }
        ctx.run_later(Duration::from_millis(500), |_, ctx| ctx.stop());
    }

    /// Housekeeping: gauges and the adaptive window's growth.
    fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if let Some(index) = self.transmitter_index() {
            let link = &mut self.links[index];
            let in_flight = link.session.in_flight();
            self.metrics.window_inflight.set(in_flight as f64);
            if let Some(flow) = &mut self.flow {
                flow.handle_timeout(now, in_flight);
                self.metrics.window_dynamic.set(flow.window_size() as f64);
                self.metrics.drain_seconds.set(flow.drain_seconds(now));
            }
            let skips = link.session.sequence_skips();
            if skips > self.sequence_skips_reported {
                self.metrics
                    .sequence_skips
                    .increment(skips - self.sequence_skips_reported);
                self.sequence_skips_reported = skips;
            }
        }
        self.refill_sequences(ctx);
        self.drive(ctx);
    }

    /// Apply `ops.smpp_binds.window` (an operator changes it in SQL; no row: the
    /// credentials' window). A throttled window keeps its reduced size and grows towards
    /// the new maximum.
    fn reload_window(&mut self, ctx: &mut Context<Self>) {
        if self.transmitter_index().is_none() {
            return;
        }
        let lookup = self.deps.correlation.send(GetBindSettings(self.key.clone()));
        ctx.spawn(lookup.into_actor(self).map(|result, act, ctx| {
            let configured = match result {
                Ok(Ok(Some(settings))) => settings.window as usize,
                Ok(Ok(None)) => act.credentials.as_ref().map_or(0, |c| c.window as usize),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "ops.smpp_binds not read; window unchanged");
                    return;
                }
                Err(_) => return,
            };
            let Some(index) = act.transmitter_index() else {
                return;
            };
            let Some(flow) = &mut act.flow else {
                return;
            };
            if configured > 0 && configured != flow.configured_window() {
                tracing::info!(
                    operatorId = %act.key.operator_id,
                    direction = %act.key.direction,
                    bindId = act.key.bind_id,
                    from = flow.configured_window(),
                    to = configured,
                    "window maximum changed"
                );
                flow.set_configured_window(configured);
                // The session's window is the hard cap the flow controller works under.
                act.links[index].session.window_mut().set_max(configured);
                act.drive(ctx);
            }
        }));
    }

    /// Arm one timer at the earliest deadline of the sessions, the ledger and the drain.
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let session_deadlines = self.links.iter().filter_map(|l| l.session.poll_timeout());
        let drain = self
            .unbinding
            .as_ref()
            .filter(|u| !u.unbind_sent)
            .map(|u| u.drain_deadline);
        let Some(deadline) = session_deadlines
            .chain(self.ledger.poll_timeout())
            .chain(self.flow.as_ref().and_then(|f| f.poll_timeout()))
            .chain(drain)
            .min()
        else {
            return;
        };
        if let Some((armed, handle)) = self.timer {
            if armed <= deadline {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = deadline.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.on_timer(ctx);
        });
        self.timer = Some((deadline, handle));
    }

    fn on_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for index in 0..self.links.len() {
            self.links[index].session.handle_timeout(now);
            self.pump(index, ctx);
        }
        self.ledger.handle_timeout(now);
        let in_flight = self.transmitter().map_or(0, |l| l.session.in_flight());
        if let Some(flow) = &mut self.flow {
            flow.handle_timeout(now, in_flight);
        }
        self.drive(ctx);
    }

    // ----- session driving -----------------------------------------------------------

    /// Write what the session queued and handle what happened, until it is quiet.
    fn pump(&mut self, index: usize, ctx: &mut Context<Self>) {
        loop {
            let Some(link) = self.links.get_mut(index) else {
                return;
            };
            let mut wrote = false;
            while let Some(bytes) = link.session.poll_transmit() {
                link.writer.write(&bytes);
                wrote = true;
            }
            let mut events = Vec::new();
            while let Some(event) = link.session.poll_event() {
                events.push(event);
            }
            if events.is_empty() && !wrote {
                return;
            }
            for event in events {
                self.on_session_event(index, event, ctx);
            }
            // Going down: what is left dies with the connection.
            if self.state == BindState::Disconnected {
                return;
            }
        }
    }

    fn on_session_event(
        &mut self,
        index: usize,
        event: Event<SegmentToken>,
        ctx: &mut Context<Self>,
    ) {
        match event {
            Event::Bound { system_id, .. } => {
                tracing::info!(
                    operatorId = %self.key.operator_id,
                    direction = %self.key.direction,
                    bindId = self.key.bind_id,
                    mode = self.links[index].session.mode().name(),
                    smsc = system_id.as_deref().unwrap_or(""),
                    "session bound"
                );
                self.links[index].bound = true;
                if self.links.iter().all(|l| l.bound) {
                    let window = self.credentials.as_ref().map_or(100, |c| c.window as usize);
                    let limited = self.credentials.as_ref().is_some_and(|c| c.tps_limit.is_some());
                    self.flow = Some(self.new_flow(window, limited));
                    self.backoff.reset();
                    self.last_error = None;
                    self.set_state(BindState::Bound, None);
                    if self.key.direction.submits() {
                        self.refill_concat_refs(ctx);
                        self.reload_window(ctx);
                    }
                }
            }
            Event::SubmitResponse {
                token,
                sequence_number,
                status,
                message_id,
            } => self.on_submit_response(token, sequence_number, status, message_id),
            Event::SubmitFailed {
                token,
                sequence_number,
                reason,
            } => self.on_submit_failed(token, sequence_number, reason),
            Event::DeliverSm {
                sequence_number,
                body,
            } => self.on_deliver_sm(index, sequence_number, *body, ctx),
            Event::Malformed(malformed) => {
                self.metrics.malformed.increment(1);
                tracing::warn!(
                    operatorId = %self.key.operator_id,
                    bindId = self.key.bind_id,
                    command_id = format!("0x{:08X}", malformed.command_id),
                    pduSeqNum = malformed.sequence_number,
                    error = %malformed.error,
                    "malformed PDU from SMSC answered with generic_nack"
                );
            }
            Event::Unexpected {
                command_id,
                sequence_number,
            } => {
                self.metrics.unexpected.increment(1);
                tracing::debug!(
                    command = command_id.name(),
                    pduSeqNum = sequence_number,
                    "unexpected PDU"
                );
            }
            Event::Closed(reason) => self.on_session_closed(index, reason, ctx),
        }
    }

    fn on_session_closed(&mut self, index: usize, reason: CloseReason, ctx: &mut Context<Self>) {
        let mode = self.links[index].session.mode();
        tracing::info!(
            operatorId = %self.key.operator_id,
            direction = %self.key.direction,
            bindId = self.key.bind_id,
            mode = mode.name(),
            reason = %reason.as_str(),
            "session closed"
        );
        match &reason {
            CloseReason::Unbound | CloseReason::UnbindTimedOut if self.unbinding.is_some() => {
                // Flush the unbind_resp and wait for the other link, if any.
                self.links[index].bound = false;
                if self
                    .links
                    .iter()
                    .all(|l| l.session.state() == SessionState::Closed)
                {
                    self.unbind_done(ctx);
                }
            }
            CloseReason::BindRejected(status) => match taxonomy::classify_bind(*status) {
                Err(failure)
                    if failure.falls_back_to_split_bind() && mode == BindMode::Transceiver =>
                {
                    tracing::warn!(
                        operatorId = %self.key.operator_id,
                        bindId = self.key.bind_id,
                        esme_status = %status,
                        "bind_transceiver refused, falling back to bind_transmitter + bind_receiver"
                    );
                    self.split_bind = true;
                    self.reconnect_now = true;
                    self.go_down(reason.as_str(), ctx);
                }
                _ => {
                    tracing::error!(
                        operatorId = %self.key.operator_id,
                        direction = %self.key.direction,
                        bindId = self.key.bind_id,
                        esme_status = %status,
                        "bind rejected by SMSC (check the credentials in OMS)"
                    );
                    self.fail(
                        reason.as_str(),
                        format!("{} answered {}", mode.request_id().name(), status),
                        ctx,
                    );
                }
            },
            CloseReason::EnquireLinkTimedOut => {
                self.metrics.enquire_link_timeouts.increment(1);
                self.fail(reason.as_str(), "no enquire_link_resp in time".into(), ctx);
            }
            CloseReason::BindTimedOut
            | CloseReason::PeerUnbound
            | CloseReason::Unbound
            | CloseReason::UnbindTimedOut
            | CloseReason::GenericNack(_)
            | CloseReason::InvalidBindStatus => {
                let detail = reason.as_str();
                self.fail(detail.clone(), detail, ctx);
            }
        }
    }

    // ----- submitting -----------------------------------------------------------------

    /// Submit queued segments while the window has room.
    fn send_queued(&mut self, ctx: &mut Context<Self>) {
        if self.closing_writers > 0 || !self.state.is_bound() {
            return;
        }
        let Some(index) = self.transmitter_index() else {
            return;
        };
        let now = Instant::now();
        let mut wrote = false;
        let mut allowance = self.submit_allowance(now);
        while allowance > 0 {
            let Some((segment, body)) = self.ledger.next_submit() else {
                break;
            };
            allowance -= 1;
            let token = SegmentToken {
                segment,
                written_at: now,
            };
            match self.links[index].session.submit(now, body, token) {
                Ok(_) => {
                    wrote = true;
                    self.metrics.submits.increment(1);
                    if let Some(flow) = &mut self.flow {
                        flow.on_submitted(now);
                    }
                }
                Err(
                    SubmitError::WindowFull(token)
                    | SubmitError::NotBound(token)
                    | SubmitError::NotTransmitter(token),
                ) => {
                    // free_slots() said there was room: the session changed under us.
                    self.ledger.handle_not_sent(token.segment);
                    break;
                }
                Err(SubmitError::Encode(err, token)) => {
                    tracing::warn!(
                        operatorId = %self.key.operator_id,
                        bindId = self.key.bind_id,
                        messageId = self.ledger.message_id(token.segment.dispatch).unwrap_or(""),
                        error = %err,
                        "submit_sm could not be encoded; message rejected"
                    );
                    self.ledger.handle_unencodable(token.segment);
                }
            }
        }
        if wrote {
            self.pump(index, ctx);
        }
    }

    fn on_submit_response(
        &mut self,
        token: SegmentToken,
        sequence_number: u32,
        status: CommandStatus,
        operator_message_id: Option<String>,
    ) {
        self.metrics.status(status).increment(1);
        metrics::histogram!(metric::SUBMIT_LATENCY)
            .record(token.written_at.elapsed().as_secs_f64());
        let outcome = taxonomy::classify_submit(status);
        if outcome != SubmitOutcome::Accepted {
            tracing::info!(
                operatorId = %self.key.operator_id,
                bindId = self.key.bind_id,
                messageId = self.ledger.message_id(token.segment.dispatch).unwrap_or(""),
                pduSeqNum = sequence_number,
                esme_status = %status,
                outcome = outcome.as_str(),
                "submit_sm not accepted"
            );
        }
        if let Some(flow) = &mut self.flow {
            flow.handle_outcome(Instant::now(), &outcome);
        }
        self.ledger
            .handle_outcome(token.segment, &outcome, operator_message_id);
    }

    fn on_submit_failed(
        &mut self,
        token: SegmentToken,
        sequence_number: u32,
        reason: SubmitFailure,
    ) {
        let outcome = match reason {
            SubmitFailure::TimedOut => {
                self.metrics.submit_timeouts.increment(1);
                self.metrics.possible_duplicates.increment(1);
                taxonomy::classify_timeout()
            }
            SubmitFailure::SessionClosed => {
                // The ledger gives the message back when the session ends.
                self.metrics.possible_duplicates.increment(1);
                return;
            }
            SubmitFailure::GenericNack(status) => taxonomy::classify_generic_nack(status),
        };
        tracing::info!(
            operatorId = %self.key.operator_id,
            bindId = self.key.bind_id,
            messageId = self.ledger.message_id(token.segment.dispatch).unwrap_or(""),
            pduSeqNum = sequence_number,
            outcome = outcome.as_str(),
            "submit_sm failed; message will be retried"
        );
        if let Some(flow) = &mut self.flow {
            flow.handle_outcome(Instant::now(), &outcome);
        }
        self.ledger.handle_outcome(token.segment, &outcome, None);
    }


    // ----- receipts ------------------------------------------------------------------

    fn on_deliver_sm(
        &mut self,
        index: usize,
        sequence_number: u32,
        body: SmBody,
        ctx: &mut Context<Self>,
    ) {
        let Some(credentials) = self.credentials.clone() else {
            return;
        };
        let generation = self.generation;
        let fut = receipt::handle(
            self.deps.clone(),
            self.key.clone(),
            credentials,
            body,
            Instant::now(),
        );
        ctx.spawn(fut.into_actor(self).map(move |status, act, ctx| {
            if act.generation != generation {
                return;
            }
            if let Some(link) = act.links.get_mut(index) {
                link.session.respond_deliver_sm(sequence_number, status);
                act.pump(index, ctx);
            }
        }));
    }

    // ----- graceful unbind -----------------------------------------------------------

    fn begin_unbind(&mut self, then: AfterUnbind, reason: &'static str, ctx: &mut Context<Self>) {
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
        self.ledger.handle_unbinding();
        self.drive(ctx);
    }

    /// Our graceful unbind is complete: go down, and reconnect at once unless this is
    /// the shutdown (`shutting_down` keeps `started` from connecting).
    fn unbind_done(&mut self, ctx: &mut Context<Self>) {
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

/// The sessions a bind opens.
fn plan_modes(
    direction: smpp_connector::config::Direction,
    preference: BindModePreference,
    split: bool,
) -> Vec<BindMode> {
    use smpp_connector::config::Direction;
    match direction {
        Direction::Tx => vec![BindMode::Transmitter],
        Direction::Rx => vec![BindMode::Receiver],
        Direction::Trx if split || preference == BindModePreference::TxRx => {
            vec![BindMode::Transmitter, BindMode::Receiver]
        }
        Direction::Trx => vec![BindMode::Transceiver],
    }
}

/// A number in [0, 1) for jitter, without a dependency on a random crate.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl Actor for BindActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(1024);
        ctx.run_interval(HOUSEKEEPING_INTERVAL, |act, ctx| act.housekeeping(ctx));
        let reload = self.deps.config.timers.window_reload;
        ctx.run_interval(reload, |act, ctx| act.reload_window(ctx));
        let progress = PROGRESS_INTERVAL.min(self.deps.config.timers.ack_wait / 3);
        ctx.run_interval(progress, |act, _ctx| act.progress_acks());
        self.schedule_connect(ctx);
    }
}

impl Supervised for BindActor {
    fn restarting(&mut self, ctx: &mut Context<Self>) {
        // The session is gone: what was queued or in flight goes back to the stream at
        // once; messages waiting for a row keep waiting (the answer comes by address).
        let held = self.ledger.messages();
        self.ledger.handle_session_ended();
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
        self.flow = None;
        self.granting = false;
        self.sequence_refill = false;
        self.unbinding = None;
        self.closing_writers = 0;
        self.timer = None;
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

impl StreamHandler<LinkItem> for BindActor {
    fn handle(&mut self, item: LinkItem, ctx: &mut Context<Self>) {
        if item.generation != self.generation
            || item.link >= self.links.len()
            || self.closing_writers > 0
        {
            return;
        }
        match item.item {
            Ok(inbound) => {
                self.links[item.link]
                    .session
                    .handle_inbound(Instant::now(), inbound);
                self.pump(item.link, ctx);
                self.drive(ctx);
            }
            Err(err) => {
                self.metrics.malformed.increment(1);
                tracing::warn!(
                    operatorId = %self.key.operator_id,
                    bindId = self.key.bind_id,
                    error = %err,
                    "unrecoverable framing error from SMSC; reconnecting"
                );
                self.fail("framing_error".into(), err.to_string(), ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.state == BindState::Disconnected {
            return;
        }
        if self.unbinding.as_ref().is_some_and(|u| u.unbind_sent) {
            // The SMSC closed after our unbind: that is the end we wanted.
            self.unbind_done(ctx);
            return;
        }
        tracing::warn!(
            operatorId = %self.key.operator_id,
            direction = %self.key.direction,
            bindId = self.key.bind_id,
            "connection closed by SMSC"
        );
        self.fail(
            "connection_reset".into(),
            "connection closed by SMSC".into(),
            ctx,
        );
    }
}

impl Handler<Pulled> for BindActor {
    type Result = ();

    fn handle(&mut self, pulled: Pulled, ctx: &mut Context<Self>) {
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
        self.fetching = false;
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

impl Handler<LookedUp> for BindActor {
    type Result = ();

    fn handle(&mut self, done: LookedUp, ctx: &mut Context<Self>) {
        self.on_looked_up(done, ctx);
    }
}

impl Handler<RowWritten> for BindActor {
    type Result = ();

    fn handle(&mut self, written: RowWritten, ctx: &mut Context<Self>) {
        self.on_row_written(written, ctx);
    }
}

impl actix::io::WriteHandler<std::io::Error> for BindActor {
    fn error(&mut self, err: std::io::Error, ctx: &mut Context<Self>) -> Running {
        if self.closing_writers > 0 {
            // Already going down; the peer may have closed first.
            return Running::Stop;
        }
        tracing::warn!(operatorId = %self.key.operator_id, bindId = self.key.bind_id, error = %err, "write to SMSC failed");
        self.fail("connection_reset".into(), err.to_string(), ctx);
        Running::Stop
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        if self.closing_writers > 0 {
            self.closing_writers -= 1;
            if self.closing_writers == 0 {
                ctx.stop();
            }
        }
    }
}

impl Handler<GetBindStatus> for BindActor {
    type Result = MessageResult<GetBindStatus>;

    fn handle(&mut self, _: GetBindStatus, _ctx: &mut Context<Self>) -> Self::Result {
        let transmitter = self.links.iter().find(|l| l.session.mode().can_submit());
        MessageResult(BindStatus {
            operator_id: self.key.operator_id.to_string(),
            direction: self.key.direction.as_str(),
            bind_id: self.key.bind_id,
            state: self.state.as_str(),
            sessions: self.links.iter().map(|l| l.session.mode().name()).collect(),
            in_flight: transmitter.map_or(0, |l| l.session.in_flight()),
            window: self.flow.as_ref().map_or(0, |f| f.window_size()),
            queued_segments: self.ledger.queued(),
            dispatches: self.ledger.messages(),
            reconnect_attempts: self.backoff.attempts(),
            last_error: self.last_error.clone(),
            bound_since: self.bound_since.clone(),
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

    fn handle(&mut self, _: ShutdownBind, ctx: &mut Context<Self>) -> Self::Result {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.shutting_down && self.links.is_empty() {
            let _ = tx.send(());
        } else {
            self.shutdown_waiters.push(tx);
            self.begin_unbind(AfterUnbind::Stop, "shutdown", ctx);
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
