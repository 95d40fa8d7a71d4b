//! `BindActor`: one bind (operatorId, direction, bindId).
//!
//! It owns the bind's sessions (one for a transceiver, two after the TX + RX fallback),
//! their sockets, the dispatches in flight and the intake from JetStream. It runs under
//! an `actix::Supervisor`: `started` connects after the delay [`Backoff`] gives; any
//! failure (OMS, TCP, bind rejected, enquire_link timeout, connection lost) stops the
//! actor so that the restart *is* the reconnect; `restarting` NAKs every dispatch still
//! held (they are redelivered, and the correlation rows keep what was already sent from
//! being sent twice) and drops the sockets.
//!
//! Flow of a dispatch: the intake pulls at most as many messages as the window has free
//! slots, each is validated ([`smpp_connector::dispatch`]), dead-lettered if invalid,
//! planned into one submit per segment and queued; segments go out while the window has
//! room. A `submit_sm_resp` ESME_ROK is recorded by `CorrelationActor`; when every segment
//! of a message is recorded, the message is ACKed. Anything else ends in a NAK (retry), a
//! dead letter, or an ACK with a REJECTED DLR event, as [`taxonomy`] decides.
//!
//! Invariant: a NATS message is ACKed only after each of its segments has a committed
//! correlation row, or after it was dead-lettered / rejected with a published event.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use smpp_connector::backoff::Backoff;
use smpp_connector::config::{BindKey, Config, Lane};
use smpp_connector::dispatch::{self, DeadLetterReason, DispatchCommand, Rejection, SubmitProfile};
use smpp_connector::dlr;
use smpp_connector::encoding::RefBits;
use smpp_connector::pdu::{BindMode, BindRequest, CommandStatus, INTERFACE_VERSION, SmBody};
use smpp_connector::session::{
    BindState, CloseReason, Event, Session, SessionConfig, SubmitError, SubmitFailure,
};
use smpp_connector::taxonomy::{self, SubmitOutcome};
use smpp_connector::window::SequenceNumbers;

use super::io::{self as bind_io, BoxedWrite, Connection, ReadItem};
use super::receipt;
use crate::correlation::{CorrelationActor, CorrelationRow, FindCorrelated, RecordCorrelation};
use crate::events::{DispatchDeadLetter, DlrInboundEvent, now_rfc3339, subject};
use crate::nats::EventPublisher;
use crate::oms::{BindModePreference, CredentialSource, Credentials};
use crate::supervisor::BindStateChanged;
use crate::telemetry::metric;
use crate::throttle::{ReserveConcatRefs, ThrottleActor};

/// Concatenation references reserved from Redis at a time.
const CONCAT_REF_BLOCK: u32 = 64;

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
struct SegmentToken {
    dispatch: u64,
    segment: u16,
    written_at: Instant,
}

/// A segment waiting for a window slot.
#[derive(Debug)]
struct QueuedSegment {
    dispatch: u64,
    segment: u16,
    body: SmBody,
}

/// How a dispatch ends when its last segment is done.
#[derive(Debug, Clone)]
enum Failure {
    /// Retry later (NAK); dead letter once deliveries reach MAX_DELIVER.
    Temporary {
        delay: Duration,
        status: Option<CommandStatus>,
        detail: String,
    },
    /// The SMSC refused the message for good: ACK + REJECTED DLR event.
    Rejected { status: CommandStatus },
}

/// A NATS message being sent.
struct Dispatch {
    acker: jetstream::message::Acker,
    message_id: String,
    subject: String,
    stream_sequence: u64,
    deliveries: u64,
    segment_count: u16,
    /// Segments not finished yet (queued, in flight, or being recorded).
    outstanding: u16,
    failure: Option<Failure>,
    fetched_at: Instant,
    traceparent: Option<String>,
}

/// A session and the write half of its socket.
struct Link {
    session: Session<SegmentToken>,
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

/// A message pulled by the intake.
struct Pulled {
    generation: u64,
    message: Result<jetstream::Message, String>,
}

/// Metric handles of one bind, registered once (labels mno, direction, bindId).
struct BindMetrics {
    labels: Vec<metrics::Label>,
    submits: metrics::Counter,
    reconnects: metrics::Counter,
    enquire_link_timeouts: metrics::Counter,
    state_changes: metrics::Counter,
    bind_up: metrics::Gauge,
    window_inflight: metrics::Gauge,
    window_dynamic: metrics::Gauge,
    sequence_skips: metrics::Counter,
    malformed: metrics::Counter,
    unexpected: metrics::Counter,
    submit_timeouts: metrics::Counter,
    possible_duplicates: metrics::Counter,
    acks: metrics::Counter,
    naks: metrics::Counter,
    statuses: HashMap<u32, metrics::Counter>,
}

impl BindMetrics {
    fn new(key: &BindKey) -> Self {
        let labels = vec![
            metrics::Label::new("mno", key.operator_id.to_string()),
            metrics::Label::new("direction", key.direction.as_str()),
            metrics::Label::new("bindId", key.bind_id.to_string()),
        ];
        let mno = vec![metrics::Label::new("mno", key.operator_id.to_string())];
        let outcome = |name: &'static str| {
            let mut l = mno.clone();
            l.push(metrics::Label::new("outcome", name));
            metrics::counter!(metric::DISPATCH_OUTCOMES, l)
        };
        BindMetrics {
            submits: metrics::counter!(metric::SUBMITS, labels.clone()),
            reconnects: metrics::counter!(metric::RECONNECT_ATTEMPTS, labels.clone()),
            enquire_link_timeouts: metrics::counter!(metric::ENQUIRE_LINK_TIMEOUTS, labels.clone()),
            state_changes: metrics::counter!(metric::STATE_CHANGES, labels.clone()),
            bind_up: metrics::gauge!(metric::BIND_UP, labels.clone()),
            window_inflight: metrics::gauge!(metric::WINDOW_INFLIGHT, labels.clone()),
            window_dynamic: metrics::gauge!(metric::WINDOW_DYNAMIC, labels.clone()),
            sequence_skips: metrics::counter!(metric::SEQ_SKIPS, labels.clone()),
            malformed: metrics::counter!(metric::MALFORMED_PDUS, labels.clone()),
            unexpected: metrics::counter!(metric::UNEXPECTED_PDUS, labels.clone()),
            submit_timeouts: metrics::counter!(metric::SUBMIT_TIMEOUTS, labels.clone()),
            possible_duplicates: metrics::counter!(metric::POSSIBLE_DUPLICATES, labels.clone()),
            acks: outcome("ack"),
            naks: outcome("nak"),
            statuses: HashMap::new(),
            labels,
        }
    }

    fn status(&mut self, status: CommandStatus) -> &metrics::Counter {
        let labels = &self.labels;
        self.statuses.entry(status.0).or_insert_with(|| {
            let mut l = labels.clone();
            l.push(metrics::Label::new("esme_status", status.name()));
            metrics::counter!(metric::RESPONSE_STATUS, l)
        })
    }
}

/// The bind actor.
pub struct BindActor {
    metrics: BindMetrics,
    key: BindKey,
    deps: Arc<BindDeps>,
    lanes: Vec<(Lane, PullConsumer)>,
    backoff: Backoff,
    /// Bind with bind_transmitter + bind_receiver (after ESME_RINVCMDID or bindMode TX_RX).
    split_bind: bool,
    reconnect_now: bool,
    shutting_down: bool,
    shutdown_waiters: Vec<tokio::sync::oneshot::Sender<()>>,
    state: BindState,
    generation: u64,
    links: Vec<Link>,
    credentials: Option<Arc<Credentials>>,
    profile: Option<SubmitProfile>,
    dispatches: HashMap<u64, Dispatch>,
    backlog: VecDeque<QueuedSegment>,
    next_dispatch: u64,
    fetching: bool,
    unbinding: Option<Unbinding>,
    last_error: Option<String>,
    bound_since: Option<String>,
    /// Concatenation references reserved in Redis and not used yet.
    concat_refs: std::ops::Range<u64>,
    concat_refill: bool,
    /// Local references used while Redis could not hand out a block.
    concat_fallback: u64,
    sequence_skips_reported: u64,
    /// Writers still flushing before the actor stops.
    closing_writers: usize,
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
            dispatches: HashMap::new(),
            backlog: VecDeque::new(),
            next_dispatch: 0,
            fetching: false,
            unbinding: None,
            last_error: None,
            bound_since: None,
            concat_refs: 0..0,
            concat_refill: false,
            concat_fallback: 0,
            sequence_skips_reported: 0,
            closing_writers: 0,
            deps,
        }
    }

    fn set_state(&mut self, state: BindState, reason: Option<String>) {
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
                connections.push((mode, connection));
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
        connections: Vec<(BindMode, Connection)>,
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
        for (index, (mode, connection)) in connections.into_iter().enumerate() {
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
            let session = match Session::try_new(session_config, SequenceNumbers::new(), now) {
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
        let tick = (enquire_link_interval / 10)
            .min(Duration::from_millis(100))
            .max(Duration::from_millis(5));
        ctx.run_interval(tick, |act, ctx| act.on_tick(ctx));
        for index in 0..self.links.len() {
            self.pump(index, ctx);
        }
    }

    /// A failed attempt: count it, go DISCONNECTED and let the supervisor restart us
    /// after the backoff.
    fn fail(&mut self, reason: String, detail: String, ctx: &mut Context<Self>) {
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

    fn on_tick(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for index in 0..self.links.len() {
            self.links[index].session.handle_timeout(now);
            self.links[index].session.window_mut().tick(now);
            self.pump(index, ctx);
        }
        if let Some(link) = self.links.iter().find(|l| l.session.mode().can_submit()) {
            self.metrics
                .window_inflight
                .set(link.session.in_flight() as f64);
            self.metrics
                .window_dynamic
                .set(link.session.window_size() as f64);
            let skips = link.session.sequence_skips();
            if skips > self.sequence_skips_reported {
                self.metrics
                    .sequence_skips
                    .increment(skips - self.sequence_skips_reported);
                self.sequence_skips_reported = skips;
            }
        }
        self.progress_unbind(now, ctx);
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
                    self.backoff.reset();
                    self.last_error = None;
                    self.set_state(BindState::Bound, None);
                    if self.key.direction.submits() {
                        self.refill_concat_refs(ctx);
                    }
                    self.pull(ctx);
                }
            }
            Event::SubmitResponse {
                token,
                sequence_number,
                status,
                message_id,
            } => self.on_submit_response(token, sequence_number, status, message_id, ctx),
            Event::SubmitFailed {
                token,
                sequence_number,
                reason,
            } => self.on_submit_failed(token, sequence_number, reason, ctx),
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
                    .all(|l| l.session.state() == smpp_connector::session::SessionState::Closed)
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

    // ----- intake --------------------------------------------------------------------

    /// Free window slots of the transmitting session, minus what is queued.
    fn free_slots(&self) -> usize {
        let free = self
            .links
            .iter()
            .find(|l| l.session.mode().can_submit())
            .map_or(0, |l| l.session.free_slots());
        free.saturating_sub(self.backlog.len())
    }

    /// Pull more dispatch commands if the window has room and no pull is running.
    fn pull(&mut self, ctx: &mut Context<Self>) {
        if self.fetching
            || self.state != BindState::Bound
            || self.unbinding.is_some()
            || self.lanes.is_empty()
        {
            return;
        }
        let free = self.free_slots();
        if free == 0 {
            return;
        }
        let batch = free.min(self.deps.config.fetch_batch);
        self.fetching = true;
        let lanes: Vec<PullConsumer> = self.lanes.iter().map(|(_, c)| c.clone()).collect();
        let generation = self.generation;
        // Strict priority: take what the highest lane has (no wait); when every lane is
        // empty, wait on the lowest-numbered lane that carries the platform subject.
        let long_poll = self
            .lanes
            .iter()
            .position(|(lane, _)| *lane == Lane::P2)
            .unwrap_or(0);
        let fut = async move {
            for consumer in &lanes {
                let batch_stream = consumer
                    .fetch()
                    .max_messages(batch)
                    .messages()
                    .await
                    .map_err(|e| e.to_string())?;
                let messages: Vec<Result<jetstream::Message, String>> = batch_stream
                    .map(|m| m.map_err(|e| e.to_string()))
                    .collect()
                    .await;
                if !messages.is_empty() {
                    return Ok(futures::stream::iter(messages).boxed_local());
                }
            }
            let waiting = lanes[long_poll]
                .batch()
                .max_messages(batch)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(waiting.map(|m| m.map_err(|e| e.to_string())).boxed_local())
        };
        ctx.spawn(fut.into_actor(self).map(move |result, act, ctx| match result {
            Ok(stream) => {
                ctx.add_stream(stream.map(move |message| Pulled { generation, message }));
            }
            Err(err) => {
                metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats").increment(1);
                tracing::warn!(operatorId = %act.key.operator_id, bindId = act.key.bind_id, error = %err, "pull failed");
                ctx.run_later(Duration::from_millis(500), |act, ctx| {
                    act.fetching = false;
                    act.pull(ctx);
                });
            }
        }));
    }

    fn on_pulled(&mut self, message: jetstream::Message, ctx: &mut Context<Self>) {
        let (deliveries, stream_sequence) = match message.info() {
            Ok(info) => (info.delivered.max(1) as u64, info.stream_sequence),
            Err(_) => (1, 0),
        };
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_owned());
        let subject = message.subject.to_string();
        let payload = message.payload.clone();
        let (_, acker) = message.split();
        let fetched_at = Instant::now();

        // Not in a state to send (unbinding, or the session went away while the batch
        // was arriving): give it back at once.
        if self.state != BindState::Bound || self.unbinding.is_some() {
            nak(acker, None);
            self.metrics.naks.increment(1);
            return;
        }

        let command = match dispatch::parse_command(&payload) {
            Ok(command) if command.operator_id != self.key.operator_id => Err(Rejection {
                reason: DeadLetterReason::InvalidField,
                detail: "operatorId: does not match the subject's operator".into(),
                message_id: Some(command.message_id),
                operator_id: Some(command.operator_id.to_string()),
            }),
            other => other,
        };
        let command = match command {
            Ok(command) => command,
            Err(rejection) => {
                self.dead_letter(acker, rejection, subject, stream_sequence, deliveries, ctx);
                return;
            }
        };
        let id = self.next_dispatch;
        self.next_dispatch += 1;
        let profile = self
            .profile
            .clone()
            .expect("profile is set once the bind is up");
        let encoded = match dispatch::encode_text(&command) {
            Ok(encoded) => encoded,
            Err(rejection) => {
                self.dead_letter(acker, rejection, subject, stream_sequence, deliveries, ctx);
                return;
            }
        };
        let reference = if dispatch::needs_reference(&encoded, profile.ref_bits) {
            self.next_concat_reference(profile.ref_bits, ctx)
        } else {
            0
        };
        let plan = match dispatch::plan_submits(&command, &encoded, &profile, reference) {
            Ok(plan) => plan,
            Err(rejection) => {
                self.dead_letter(acker, rejection, subject, stream_sequence, deliveries, ctx);
                return;
            }
        };
        self.count_plan(&command, &plan);
        let segment_count = plan.bodies.len() as u16;
        self.dispatches.insert(
            id,
            Dispatch {
                acker,
                message_id: command.message_id.clone(),
                subject,
                stream_sequence,
                deliveries,
                segment_count,
                outstanding: segment_count,
                failure: None,
                fetched_at,
                traceparent,
            },
        );
        let bodies = plan.bodies;
        if deliveries > 1 {
            // Redelivered: segments already correlated were sent; send only the rest.
            let lookup = self.deps.correlation.send(FindCorrelated {
                message_id: command.message_id,
            });
            ctx.spawn(lookup.into_actor(self).map(move |result, act, ctx| {
                let done: Vec<u16> = match result {
                    Ok(Ok(done)) => done,
                    _ => Vec::new(),
                };
                act.enqueue(id, bodies, &done, ctx);
            }));
        } else {
            self.enqueue(id, bodies, &[], ctx);
        }
    }

    fn count_plan(&self, command: &DispatchCommand, plan: &dispatch::SubmitPlan) {
        let detection = match plan.detection {
            smpp_connector::encoding::Detection::Auto => "auto",
            smpp_connector::encoding::Detection::Forced => "forced",
        };
        metrics::counter!(metric::ENCODING, "encoding" => plan.encoded_as.as_str(), "detection" => detection).increment(1);
        let long = plan.bodies.len() > 1
            || plan
                .bodies
                .first()
                .is_some_and(|b| b.short_message.is_empty() && !b.tlvs.is_empty());
        if long {
            metrics::counter!(metric::LONG_MESSAGE_SEGMENTS, "strategy" => plan.strategy.as_str().to_ascii_lowercase())
                .increment(plan.bodies.len() as u64);
        }
        if plan.replaced > 0 {
            metrics::counter!(metric::GSM7_FORCE_REPLACEMENTS).increment(plan.replaced as u64);
            tracing::info!(
                messageId = %command.message_id,
                operatorId = %command.operator_id,
                replaced = plan.replaced,
                "GSM7_FORCE replaced characters outside GSM 03.38"
            );
        }
        if let Some(check) = plan.fingerprint_check.as_ref().filter(|c| !c.matches) {
            metrics::counter!(metric::FINGERPRINT_MISMATCHES).increment(1);
            tracing::warn!(
                messageId = %command.message_id,
                operatorId = %command.operator_id,
                ours = %check.ours,
                "segmentFingerprint differs from ours (billing parity)"
            );
        }
    }

    /// The reference every segment of one long message shares: from the block reserved
    /// in Redis, or a local counter while Redis is unavailable.
    fn next_concat_reference(&mut self, ref_bits: RefBits, ctx: &mut Context<Self>) -> u16 {
        if self.concat_refs.end - self.concat_refs.start < u64::from(CONCAT_REF_BLOCK / 4) {
            self.refill_concat_refs(ctx);
        }
        let value = match self.concat_refs.next() {
            Some(value) => value,
            None => {
                self.concat_fallback += 1;
                tracing::warn!(
                    operatorId = %self.key.operator_id,
                    bindId = self.key.bind_id,
                    "no concatenation reference block from Redis; using a local counter"
                );
                self.concat_fallback
            }
        };
        match ref_bits {
            RefBits::Eight => (value % 256) as u16,
            RefBits::Sixteen => (value % 65_536) as u16,
        }
    }

    fn refill_concat_refs(&mut self, ctx: &mut Context<Self>) {
        if self.concat_refill {
            return;
        }
        self.concat_refill = true;
        let reserve = self.deps.throttle.send(ReserveConcatRefs {
            key: self.key.clone(),
            count: CONCAT_REF_BLOCK,
        });
        ctx.spawn(reserve.into_actor(self).map(|result, act, _ctx| {
            act.concat_refill = false;
            match result {
                Ok(Ok(first)) => {
                    // Whatever is left of the old block is dropped: references only need
                    // to differ between messages sent close together.
                    act.concat_refs = first..first + u64::from(CONCAT_REF_BLOCK);
                }
                Ok(Err(err)) => {
                    tracing::warn!(operatorId = %act.key.operator_id, bindId = act.key.bind_id, error = %err, "concatenation references not reserved");
                }
                Err(_) => {}
            }
        }));
    }

    fn enqueue(
        &mut self,
        id: u64,
        bodies: Vec<SmBody>,
        already_done: &[u16],
        ctx: &mut Context<Self>,
    ) {
        let Some(dispatch) = self.dispatches.get_mut(&id) else {
            return;
        };
        for (index, body) in bodies.into_iter().enumerate() {
            let segment = index as u16 + 1;
            if already_done.contains(&segment) {
                dispatch.outstanding -= 1;
                continue;
            }
            self.backlog.push_back(QueuedSegment {
                dispatch: id,
                segment,
                body,
            });
        }
        if dispatch.outstanding == 0 {
            tracing::info!(messageId = %dispatch.message_id, "redelivered message was already sent; acknowledging");
            self.finish(id, ctx);
        }
        self.send_queued(ctx);
    }

    /// Submit queued segments while the window has room.
    fn send_queued(&mut self, ctx: &mut Context<Self>) {
        let Some(index) = self
            .links
            .iter()
            .position(|l| l.session.mode().can_submit())
        else {
            return;
        };
        let now = Instant::now();
        while self.links[index].session.free_slots() > 0 {
            let Some(queued) = self.backlog.pop_front() else {
                break;
            };
            if !self.dispatches.contains_key(&queued.dispatch) {
                continue;
            }
            let token = SegmentToken {
                dispatch: queued.dispatch,
                segment: queued.segment,
                written_at: now,
            };
            match self.links[index].session.submit(now, queued.body, token) {
                Ok(_) => {
                    self.metrics.submits.increment(1);
                }
                Err(
                    SubmitError::WindowFull(token)
                    | SubmitError::NotBound(token)
                    | SubmitError::NotTransmitter(token),
                ) => {
                    // free_slots() said there was room: the session changed under us.
                    // Retry the message shortly rather than lose the body.
                    self.fail_segment(
                        token.dispatch,
                        Failure::Temporary {
                            delay: Duration::from_millis(100),
                            status: None,
                            detail: "window full".into(),
                        },
                        ctx,
                    );
                    break;
                }
                Err(SubmitError::Encode(err, token)) => {
                    tracing::warn!(error = %err, "submit_sm could not be encoded");
                    self.fail_segment(
                        token.dispatch,
                        Failure::Rejected {
                            status: CommandStatus::ESME_RINVMSGLEN,
                        },
                        ctx,
                    );
                }
            }
        }
        self.pump(index, ctx);
    }

    fn on_submit_response(
        &mut self,
        token: SegmentToken,
        sequence_number: u32,
        status: CommandStatus,
        operator_message_id: Option<String>,
        ctx: &mut Context<Self>,
    ) {
        self.metrics.status(status).increment(1);
        metrics::histogram!(metric::SUBMIT_LATENCY)
            .record(token.written_at.elapsed().as_secs_f64());
        let outcome = taxonomy::classify_submit(status);
        if outcome != SubmitOutcome::Accepted {
            tracing::info!(
                operatorId = %self.key.operator_id,
                bindId = self.key.bind_id,
                messageId = self.dispatches.get(&token.dispatch).map_or("", |d| d.message_id.as_str()),
                pduSeqNum = sequence_number,
                esme_status = %status,
                outcome = outcome.as_str(),
                "submit_sm not accepted"
            );
        }
        match outcome {
            SubmitOutcome::Accepted => {
                self.record(token, operator_message_id.unwrap_or_default(), ctx)
            }
            SubmitOutcome::Permanent { status } => {
                self.fail_segment(token.dispatch, Failure::Rejected { status }, ctx)
            }
            SubmitOutcome::Throttled { .. }
            | SubmitOutcome::Temporary { .. }
            | SubmitOutcome::TimedOut { .. }
            | SubmitOutcome::QueueFull { .. }
            | SubmitOutcome::SubmitFailed { .. }
            | SubmitOutcome::SessionFault { .. } => {
                if matches!(outcome, SubmitOutcome::Throttled { .. })
                    && let Some(link) = self
                        .links
                        .iter_mut()
                        .find(|l| l.session.mode().can_submit())
                {
                    link.session.window_mut().on_throttled(Instant::now());
                }
                let deliveries = self
                    .dispatches
                    .get(&token.dispatch)
                    .map_or(1, |d| d.deliveries);
                let delay = outcome
                    .nak_delay_after(deliveries)
                    .unwrap_or(Duration::from_secs(1));
                self.fail_segment(
                    token.dispatch,
                    Failure::Temporary {
                        delay,
                        status: Some(status),
                        detail: format!("submit_sm_resp {status}"),
                    },
                    ctx,
                );
            }
        }
        self.send_queued(ctx);
        self.pull(ctx);
    }

    fn on_submit_failed(
        &mut self,
        token: SegmentToken,
        sequence_number: u32,
        reason: SubmitFailure,
        ctx: &mut Context<Self>,
    ) {
        let (detail, possible_duplicate) = match reason {
            SubmitFailure::TimedOut => {
                self.metrics.submit_timeouts.increment(1);
                ("no submit_sm_resp in time".to_owned(), true)
            }
            SubmitFailure::SessionClosed => {
                ("session closed before submit_sm_resp".to_owned(), true)
            }
            SubmitFailure::GenericNack(status) => (format!("generic_nack {status}"), false),
        };
        if possible_duplicate {
            self.metrics.possible_duplicates.increment(1);
        }
        tracing::info!(
            operatorId = %self.key.operator_id,
            bindId = self.key.bind_id,
            pduSeqNum = sequence_number,
            reason = %detail,
            "submit_sm failed; message will be retried"
        );
        self.fail_segment(
            token.dispatch,
            Failure::Temporary {
                delay: Duration::from_secs(1),
                status: None,
                detail,
            },
            ctx,
        );
        self.send_queued(ctx);
        self.pull(ctx);
    }

    /// Record a correlation row; the segment is done when the row is committed.
    fn record(&mut self, token: SegmentToken, raw_message_id: String, ctx: &mut Context<Self>) {
        let Some(dispatch) = self.dispatches.get(&token.dispatch) else {
            return;
        };
        let format = self
            .credentials
            .as_ref()
            .map(|c| c.msg_id_format)
            .unwrap_or_default();
        let row = CorrelationRow {
            message_id: dispatch.message_id.clone(),
            segment_index: token.segment,
            segment_count: dispatch.segment_count,
            bind: self.key.clone(),
            operator_message_id: dlr::normalize_submit_id(&raw_message_id, format),
            submitted_at: chrono::Utc::now(),
        };
        let write = self.deps.correlation.send(RecordCorrelation(row));
        ctx.spawn(
            write
                .into_actor(self)
                .map(move |result, act, ctx| match result {
                    Ok(Ok(())) => act.finish_segment(token.dispatch, ctx),
                    Ok(Err(err)) => act.fail_segment(
                        token.dispatch,
                        Failure::Temporary {
                            delay: Duration::from_secs(1),
                            status: None,
                            detail: format!("correlation write failed: {err}"),
                        },
                        ctx,
                    ),
                    Err(_) => act.fail_segment(
                        token.dispatch,
                        Failure::Temporary {
                            delay: Duration::from_secs(1),
                            status: None,
                            detail: "correlation actor unavailable".into(),
                        },
                        ctx,
                    ),
                }),
        );
    }

    fn finish_segment(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(dispatch) = self.dispatches.get_mut(&id) else {
            return;
        };
        dispatch.outstanding = dispatch.outstanding.saturating_sub(1);
        if dispatch.outstanding == 0 {
            self.finish(id, ctx);
        }
    }

    fn fail_segment(&mut self, id: u64, failure: Failure, ctx: &mut Context<Self>) {
        let Some(dispatch) = self.dispatches.get_mut(&id) else {
            return;
        };
        // A rejection is final and wins over a temporary failure.
        match (&dispatch.failure, &failure) {
            (Some(Failure::Rejected { .. }), _) => {}
            (_, Failure::Rejected { .. }) | (None, _) => dispatch.failure = Some(failure),
            (Some(Failure::Temporary { .. }), Failure::Temporary { .. }) => {}
        }
        // Segments of this message still queued will not be sent now.
        let before = self.backlog.len();
        self.backlog.retain(|q| q.dispatch != id);
        let dropped = (before - self.backlog.len()) as u16;
        dispatch.outstanding = dispatch.outstanding.saturating_sub(1 + dropped);
        if dispatch.outstanding == 0 {
            self.finish(id, ctx);
        }
    }

    /// Every segment is done: ACK, NAK, reject or dead-letter the message.
    fn finish(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(dispatch) = self.dispatches.remove(&id) else {
            return;
        };
        let mno = self.key.operator_id.to_string();
        match dispatch.failure.clone() {
            None => {
                actix::spawn(async move {
                    let _ = dispatch.acker.ack().await;
                });
                metrics::histogram!(metric::DISPATCH_LATENCY)
                    .record(dispatch.fetched_at.elapsed().as_secs_f64());
                self.metrics.acks.increment(1);
            }
            Some(Failure::Temporary {
                delay,
                status,
                detail,
            }) => {
                if dispatch.deliveries >= self.deps.config.max_deliver as u64 {
                    let rejection = Rejection {
                        reason: DeadLetterReason::RetriesExhausted,
                        detail: format!("after {} deliveries: {detail}", dispatch.deliveries),
                        message_id: Some(dispatch.message_id.clone()),
                        operator_id: Some(mno),
                    };
                    let status = status.unwrap_or(CommandStatus::ESME_RSYSERR);
                    self.reject_and_ack(dispatch, status, Some(rejection), ctx);
                } else {
                    nak(dispatch.acker, Some(delay));
                    self.metrics.naks.increment(1);
                }
            }
            Some(Failure::Rejected { status }) => self.reject_and_ack(dispatch, status, None, ctx),
        }
    }

    /// Publish a REJECTED DLR event (and a dead letter when given), then ACK.
    fn reject_and_ack(
        &mut self,
        dispatch: Dispatch,
        status: CommandStatus,
        dead_letter: Option<Rejection>,
        _ctx: &mut Context<Self>,
    ) {
        let event_id = receipt::event_id(&[
            self.key.operator_id.as_str(),
            &dispatch.message_id,
            "SUBMIT_RESP",
            &status.hex(),
        ]);
        let event = DlrInboundEvent {
            version: "1.0",
            event_id,
            message_id: Some(dispatch.message_id.clone()),
            operator_id: self.key.operator_id.to_string(),
            operator_message_id: None,
            segment_index: None,
            segment_count: Some(u32::from(dispatch.segment_count)),
            status: "REJECTED",
            smpp_message_state: None,
            raw_stat: None,
            error_code: Some(status.hex()),
            source: "SUBMIT_RESP",
            correlated: true,
            submit_date: None,
            done_date: None,
            direction: self.key.direction.as_str(),
            bind_id: self.key.bind_id,
            received_at: now_rfc3339(),
        };
        let letter = dead_letter.map(|rejection| {
            DispatchDeadLetter::new(
                rejection,
                dispatch.subject.clone(),
                dispatch.stream_sequence,
                dispatch.deliveries,
            )
        });
        self.settle(dispatch.acker, letter, Some(event), dispatch.traceparent);
    }

    /// Dead-letter a command that will never be sent, then ACK.
    fn dead_letter(
        &mut self,
        acker: jetstream::message::Acker,
        rejection: Rejection,
        subject: String,
        stream_sequence: u64,
        deliveries: u64,
        _ctx: &mut Context<Self>,
    ) {
        let letter = DispatchDeadLetter::new(rejection, subject, stream_sequence, deliveries);
        self.settle(acker, Some(letter), None, None);
    }

    /// End a message that is not simply ACKed: publish its dead letter and its REJECTED
    /// event (skipped in shadow mode), then ACK. If a publish fails the message is NAKed
    /// instead, so nothing is lost.
    fn settle(
        &self,
        acker: jetstream::message::Acker,
        letter: Option<DispatchDeadLetter>,
        rejected: Option<DlrInboundEvent>,
        traceparent: Option<String>,
    ) {
        if let Some(letter) = &letter {
            tracing::warn!(
                operatorId = %self.key.operator_id,
                messageId = letter.message_id.as_deref().unwrap_or(""),
                reason = letter.reason,
                detail = %letter.detail,
                streamSequence = letter.stream_sequence,
                "dispatch command dead-lettered"
            );
        }
        let rejected = rejected.filter(|_| !self.deps.config.shadow_mode);
        let publisher = self.deps.publisher.clone();
        let mno = self.key.operator_id.to_string();
        actix::spawn(async move {
            let traceparent = traceparent.as_deref();
            let result = async {
                if let Some(letter) = &letter {
                    publisher
                        .publish(subject::DISPATCH_DLQ, letter, None, traceparent)
                        .await?;
                }
                if let Some(event) = &rejected {
                    let msg_id = format!("dlr-{}", event.event_id);
                    publisher
                        .publish(subject::DLR_INBOUND, event, Some(&msg_id), traceparent)
                        .await?;
                }
                Ok::<_, crate::nats::PublishError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    let _ = acker.ack().await;
                    let outcome = match &letter {
                        Some(letter) => {
                            metrics::counter!(metric::DEAD_LETTERS, "reason" => letter.reason)
                                .increment(1);
                            "dead_letter"
                        }
                        None => "rejected",
                    };
                    metrics::counter!(metric::DISPATCH_OUTCOMES, "mno" => mno, "outcome" => outcome).increment(1);
                }
                Err(err) => {
                    metrics::counter!(metric::BACKEND_ERRORS, "backend" => "nats").increment(1);
                    tracing::warn!(error = %err, "dead letter or rejection event not published; message NAKed");
                    nak(acker, Some(Duration::from_secs(1)));
                }
            }
        });
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
        // Segments not yet written go back to the stream now.
        let queued: Vec<u64> = self.backlog.iter().map(|q| q.dispatch).collect();
        for id in queued {
            self.fail_segment(
                id,
                Failure::Temporary {
                    delay: Duration::ZERO,
                    status: None,
                    detail: reason.into(),
                },
                ctx,
            );
        }
        self.progress_unbind(Instant::now(), ctx);
    }

    /// Our graceful unbind is complete: go down, and reconnect at once unless this is
    /// the shutdown (`shutting_down` keeps `started` from connecting).
    fn unbind_done(&mut self, ctx: &mut Context<Self>) {
        let reason = self.unbinding.as_ref().map_or("unbound", |u| u.reason);
        self.reconnect_now = true;
        self.go_down(reason.into(), ctx);
    }

    fn progress_unbind(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let Some(unbinding) = &mut self.unbinding else {
            return;
        };
        if unbinding.unbind_sent {
            return;
        }
        let drained = self.dispatches.is_empty();
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

fn nak(acker: jetstream::message::Acker, delay: Option<Duration>) {
    actix::spawn(async move {
        let _ = acker.ack_with(AckKind::Nak(delay)).await;
    });
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
        self.schedule_connect(ctx);
    }
}

impl Supervised for BindActor {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        // Everything held goes back to the stream: NAK without delay. Correlated
        // segments are not sent again on redelivery.
        let held: Vec<_> = self.dispatches.drain().map(|(_, d)| d).collect();
        if !held.is_empty() {
            tracing::info!(
                operatorId = %self.key.operator_id,
                bindId = self.key.bind_id,
                messages = held.len(),
                "bind restarting; returning held messages to the stream"
            );
        }
        for dispatch in held {
            nak(dispatch.acker, None);
            self.metrics.naks.increment(1);
        }
        self.backlog.clear();
        self.links.clear();
        self.credentials = None;
        self.profile = None;
        self.fetching = false;
        self.unbinding = None;
        self.closing_writers = 0;
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

impl StreamHandler<Pulled> for BindActor {
    fn handle(&mut self, pulled: Pulled, ctx: &mut Context<Self>) {
        match pulled.message {
            Ok(message) if pulled.generation == self.generation => self.on_pulled(message, ctx),
            Ok(message) => {
                // Pulled for a session that is gone.
                let (_, acker) = message.split();
                nak(acker, None);
            }
            Err(err) => {
                // Timeouts and heartbeats end a batch; nothing is lost.
                tracing::debug!(error = %err, "pull batch item error");
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        self.fetching = false;
        self.pull(ctx);
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
            window: transmitter.map_or(0, |l| l.session.window_size()),
            queued_segments: self.backlog.len(),
            dispatches: self.dispatches.len(),
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
