//! What the service tells about itself, one type per thing that happens: its log line,
//! its counters and its rate limit are written once, in its `emit`, never paired by hand
//! at the call site (vector's `internal_events` is the model).
//!
//! Process-wide events implement [`InternalEvent`] and count with labels of their own;
//! what happens to one bind implements [`BindInternalEvent`] and counts on that bind's
//! handles ([`BindMetrics`], labels mno, direction, bindId) — its log line is written
//! inside the bind's span, which carries the bind's identity. Events that may come in
//! floods are rate-limited here: once per outage ([`Outage`]) or a budget per minute
//! ([`LogBudget`]).
//!
//! Never a password, a destination number or a message text: ids only.

// Events live for one `emit`, often borrowing an error as `&dyn Display`: no `Debug`.
#![allow(missing_debug_implementations)]

use std::fmt::Display;
use std::time::Instant;

use smpp_connector::events::DispatchDeadLetter;
use smpp_connector::log_budget::{Admit, LogBudget, Outage};
use smpp_connector::protocol::pdu::{CommandId, CommandStatus, FrameError, Malformed};
use smpp_connector::protocol::session::{BindState, SubmitFailure};
use smpp_connector::protocol::taxonomy::SubmitOutcome;

use super::bind_metrics::BindMetrics;
use super::metric;
use super::traces::DispatchTrace;

/// Something that happened in the process: logged, counted and rate-limited by `emit`.
pub trait InternalEvent {
    fn emit(self);
}

/// Something that happened to one bind, counted on its handles.
pub trait BindInternalEvent {
    fn emit(self, bind: &mut BindMetrics);
}

/// Emit a process-wide event.
pub fn emit(event: impl InternalEvent) {
    event.emit();
}

pub use super::backends::Backend;

// ----- backends -------------------------------------------------------------------------

/// A call to a backend failed and what depends on it says so at WARN: `what` is the
/// whole line ("pull failed", "smpp.bind.degraded not published"…).
pub struct BackendFailed<'a> {
    pub backend: Backend,
    pub what: &'static str,
    pub error: &'a dyn Display,
}

impl InternalEvent for BackendFailed<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        tracing::warn!(error = %self.error, "{}", self.what);
    }
}

/// A backend call failed, one of many alike during an outage: counted each time,
/// warned once when the outage starts (`outage` says), the rest at debug.
pub struct BackendFailedInOutage<'a> {
    pub backend: Backend,
    pub outage: &'a Outage,
    /// The WARN line when the outage starts.
    pub what: &'static str,
    pub error: &'a dyn Display,
    /// The messageId the failure concerns, if one.
    pub message_id: Option<&'a str>,
}

impl InternalEvent for BackendFailedInOutage<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        let message_id = self.message_id.unwrap_or("");
        if self.outage.failed() {
            tracing::warn!(messageId = message_id, error = %self.error, "{}", self.what);
        } else {
            // Not the WARN's words: a search for the outage's line finds one per outage.
            tracing::debug!(messageId = message_id, error = %self.error, outage = self.what, "still failing");
        }
    }
}

/// A backend call worked: `what` at INFO if it ends an outage.
pub struct BackendRecovered<'a> {
    pub outage: &'a Outage,
    pub what: &'static str,
}

impl InternalEvent for BackendRecovered<'_> {
    fn emit(self) {
        if self.outage.worked() {
            tracing::info!("{}", self.what);
        }
    }
}

/// A receipt or an MO message not published to NATS: the SMSC is answered
/// ESME_RX_T_APPN and delivers it again. Counted each time; warned once per outage of
/// that kind of publishing, the rest at debug.
pub struct InboundNotPublished<'a> {
    pub publishing: &'a InboundPublishing,
    pub error: &'a dyn Display,
    pub operator_id: &'a str,
}

impl InternalEvent for InboundNotPublished<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => Backend::Nats.name()).increment(1);
        let what = self.publishing.what;
        if self.publishing.outage.failed() {
            tracing::warn!(what, error = %self.error, "{what} failing; the SMSC is answered ESME_RX_T_APPN and redelivers");
        }
        tracing::debug!(error = %self.error, operatorId = self.operator_id, "{what}: not published; SMSC will redeliver");
    }
}

/// A receipt or an MO message published: INFO if its kind of publishing was failing.
pub struct InboundPublished<'a>(pub &'a InboundPublishing);

impl InternalEvent for InboundPublished<'_> {
    fn emit(self) {
        if self.0.outage.worked() {
            tracing::info!(what = self.0.what, "{} works again", self.0.what);
        }
    }
}

/// One kind of inbound publishing (receipts, MO) and its outage, shared by every bind.
#[derive(Debug)]
pub struct InboundPublishing {
    what: &'static str,
    outage: Outage,
}

impl InboundPublishing {
    pub const fn new(what: &'static str) -> Self {
        InboundPublishing {
            what,
            outage: Outage::new(),
        }
    }
}

/// A shared backend operation failed, one of many alike (correlation inserts, receipt
/// lookups, Redis calls, the NATS connection): counted each time, the backend marked
/// down (`smpp_connector_backend_up`, `/ready`), warned once when the outage starts
/// (`starts`), the rest at debug as "still failing" (with the outage named).
pub struct BackendDown<'a> {
    pub backend: Backend,
    /// This failure starts an outage (the caller's outage state said so).
    pub starts: bool,
    /// The WARN line when the outage starts; the debug line otherwise.
    pub what: &'static str,
    pub error: &'a dyn Display,
    /// Rows or requests the failure concerns, when it is a batch.
    pub batch: Option<usize>,
}

impl InternalEvent for BackendDown<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        super::backends::failed(self.backend);
        let batch = self.batch.unwrap_or(0);
        if self.starts {
            tracing::warn!(error = %self.error, batch, "{}", self.what);
        } else {
            // Not the WARN's words: a search for the outage's line finds one per outage.
            tracing::debug!(error = %self.error, batch, outage = self.what, "still failing");
        }
    }
}

/// A shared backend operation worked: the backend is up, and `what` at INFO when this
/// ends an outage (`ends`), with how long it lasted (`down_for`, or else since the
/// backend was marked down).
pub struct BackendUp {
    pub backend: Backend,
    pub ends: bool,
    pub what: &'static str,
    pub down_for: Option<std::time::Duration>,
}

impl InternalEvent for BackendUp {
    fn emit(self) {
        let marked_down_for = super::backends::answered(self.backend);
        if self.ends {
            match self.down_for.or(marked_down_for) {
                Some(down) => tracing::info!(downForMs = down.as_millis() as u64, "{}", self.what),
                None => tracing::info!("{}", self.what),
            }
        }
    }
}

// ----- the cluster and its actors -------------------------------------------------------

/// A shared actor ended while the service runs: the process exits (70) so the pod is
/// restarted.
pub struct SharedActorEnded {
    pub actor: &'static str,
}

impl InternalEvent for SharedActorEnded {
    fn emit(self) {
        metrics::counter!(metric::ACTOR_RESTARTS, "actor" => self.actor, "bind" => "", "reason" => "crashed")
            .increment(1);
        tracing::error!(
            actor = self.actor,
            "a shared actor ended unexpectedly; exiting so the pod is restarted"
        );
    }
}

/// A bind actor's task ended in a panic; its supervisor respawns it.
pub struct BindCrashed<'a> {
    pub key: &'a smpp_connector::config::BindKey,
    pub backup: bool,
}

impl InternalEvent for BindCrashed<'_> {
    fn emit(self) {
        let key = self.key;
        metrics::counter!(metric::BIND_CRASHES, "mno" => key.operator_id.to_string(), "direction" => key.direction.as_str(), "bindId" => key.bind_id.to_string()).increment(1);
        super::actor_health::ActorHealth::bind_crashed(key);
        tracing::error!(operatorId = %key.operator_id, direction = %key.direction, bindId = key.bind_id, backup = self.backup, "bind actor ended unexpectedly; respawning it");
    }
}

/// Primary/backup failover of one bind: the backup operator bound for the primary's
/// traffic, or the primary bound again (FAILBACK: new traffic goes to it, the backup
/// drains).
pub enum Failover<'a> {
    Started {
        primary: &'a smpp_connector::config::BindKey,
        backup: &'a smpp_connector::config::OperatorId,
    },
    Failback {
        primary: &'a smpp_connector::config::BindKey,
    },
}

impl InternalEvent for Failover<'_> {
    fn emit(self) {
        match self {
            Failover::Started { primary, backup } => {
                tracing::warn!(
                    operatorId = %primary.operator_id,
                    direction = %primary.direction,
                    bindId = primary.bind_id,
                    backupOperatorId = %backup,
                    "primary bind down past the failover threshold: binding the backup operator for its traffic"
                );
                metrics::counter!(metric::FAILOVERS, "mno" => primary.operator_id.to_string(), "direction" => primary.direction.as_str(), "event" => "failover").increment(1);
            }
            Failover::Failback { primary } => {
                metrics::counter!(metric::FAILOVERS, "mno" => primary.operator_id.to_string(), "direction" => primary.direction.as_str(), "event" => "failback").increment(1);
                tracing::info!(operatorId = %primary.operator_id, direction = %primary.direction, bindId = primary.bind_id, "primary bound again: FAILBACK, new traffic goes to the primary");
            }
        }
    }
}

/// What the reconciler found and mended: an orphaned owner key removed (its pod no
/// longer heartbeats), or a bind run by a pod its owner key does not name (seen twice).
pub enum Reconciled<'a> {
    Orphan {
        op: &'a smpp_connector::config::OperatorId,
        direction: smpp_connector::config::Direction,
        bind_id: u16,
        pod: &'a str,
    },
    DoubleClaim {
        op: &'a smpp_connector::config::OperatorId,
        direction: smpp_connector::config::Direction,
        bind_id: u16,
        owner: Option<&'a str>,
        runners: &'a [String],
    },
}

impl InternalEvent for Reconciled<'_> {
    fn emit(self) {
        match self {
            Reconciled::Orphan {
                op,
                direction,
                bind_id,
                pod,
            } => {
                metrics::counter!(metric::BIND_ORPHANS, "mno" => op.to_string(), "direction" => direction.as_str()).increment(1);
                tracing::warn!(operatorId = %op, direction = %direction, bindId = bind_id, pod = %pod, "orphaned bind ownership removed (its pod no longer heartbeats); a live pod claims it");
            }
            Reconciled::DoubleClaim {
                op,
                direction,
                bind_id,
                owner,
                runners,
            } => {
                metrics::counter!(metric::BIND_DOUBLE_CLAIMS, "mno" => op.to_string(), "direction" => direction.as_str()).increment(1);
                tracing::warn!(operatorId = %op, direction = %direction, bindId = bind_id, owner = owner.unwrap_or("-"), runners = ?runners, "bind run by a pod its owner key does not name; that pod stops it on its next refresh");
            }
        }
    }
}

// ----- the bind's life ------------------------------------------------------------------

/// The bind changed state.
pub struct StateChanged<'a> {
    pub from: BindState,
    pub to: BindState,
    pub reason: Option<&'a str>,
}

impl BindInternalEvent for StateChanged<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        tracing::info!(
            from = self.from.as_str(),
            to = self.to.as_str(),
            reason = self.reason.unwrap_or(""),
            "bind state changed"
        );
        if self.to == BindState::HalfClosedTx {
            bind.half_closed.increment(1);
        }
        bind.state_changes.increment(1);
        bind.set_state(self.to);
        bind.bind_up.set(if self.to.is_bound() { 1.0 } else { 0.0 });
    }
}

/// A connect or bind attempt failed before a session existed (credentials, TCP, TLS).
pub struct BindAttemptFailed<'a> {
    pub error: &'a dyn Display,
    /// The credentials could not be fetched (OMS counts as a failing backend).
    pub credentials: bool,
}

impl BindInternalEvent for BindAttemptFailed<'_> {
    fn emit(self, _bind: &mut BindMetrics) {
        if self.credentials {
            metrics::counter!(metric::BACKEND_ERRORS, "backend" => Backend::Oms.name())
                .increment(1);
        }
        tracing::warn!(error = %self.error, "bind attempt failed");
    }
}

/// A failed attempt (connect, bind, session) was counted in the backoff.
pub struct AttemptCounted {
    pub attempt: u32,
    pub enquire_link_timed_out: bool,
}

impl BindInternalEvent for AttemptCounted {
    fn emit(self, bind: &mut BindMetrics) {
        bind.reconnects.increment(1);
        if self.enquire_link_timed_out {
            bind.enquire_link_timeouts.increment(1);
        }
        tracing::debug!(attempt = self.attempt, "bind attempt counted");
    }
}

/// The bind went down with submits in flight: they may have reached the SMSC and come
/// back as redeliveries (sent again only without a row).
pub struct WentDown {
    pub in_flight: usize,
}

impl BindInternalEvent for WentDown {
    fn emit(self, bind: &mut BindMetrics) {
        // No session, no drain: DRAINING ends with it.
        bind.drain_seconds.set(0.0);
        bind.possible_duplicates.increment(self.in_flight as u64);
    }
}

/// The flow controller published `smpp.bind.degraded`.
pub struct Degraded<'a> {
    pub mno: &'a str,
    pub cause: &'static str,
    pub window: usize,
    pub count_in_last_minute: usize,
}

impl BindInternalEvent for Degraded<'_> {
    fn emit(self, _bind: &mut BindMetrics) {
        tracing::warn!(
            cause = self.cause,
            window = self.window,
            count_in_last_minute = self.count_in_last_minute,
            "bind degraded"
        );
        metrics::counter!(metric::BIND_DEGRADED, "mno" => self.mno.to_owned(), "cause" => self.cause)
            .increment(1);
    }
}

// ----- what the SMSC sent ---------------------------------------------------------------

/// A submit_sm answered.
pub struct SubmitAnswered<'a> {
    pub status: CommandStatus,
    pub written_at: Instant,
    pub outcome: Option<SubmitOutcome>,
    pub sequence_number: u32,
    pub message_id: &'a str,
    pub trace: Option<&'a DispatchTrace>,
}

impl BindInternalEvent for SubmitAnswered<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        bind.status(self.status).increment(1);
        metrics::histogram!(metric::SUBMIT_LATENCY).record(self.written_at.elapsed().as_secs_f64());
        let Some(outcome) = self.outcome.filter(|o| *o != SubmitOutcome::Accepted) else {
            return;
        };
        tracing::info!(
            messageId = self.message_id,
            traceId = %self.trace.map(DispatchTrace::trace_id).unwrap_or_default(),
            pduSeqNum = self.sequence_number,
            esme_status = %self.status,
            outcome = outcome.as_str(),
            "submit_sm not accepted"
        );
    }
}

/// A submit_sm failed without an answer (timed out, lost with its session, generic_nack).
pub struct SubmitFailed<'a> {
    pub reason: SubmitFailure,
    pub outcome: Option<SubmitOutcome>,
    pub sequence_number: u32,
    pub message_id: &'a str,
    pub trace: Option<&'a DispatchTrace>,
}

impl BindInternalEvent for SubmitFailed<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        match self.reason {
            SubmitFailure::TimedOut => {
                bind.submit_timeouts.increment(1);
                bind.possible_duplicates.increment(1);
            }
            // The ledger gives the message back when the session ends.
            SubmitFailure::SessionClosed => bind.possible_duplicates.increment(1),
            SubmitFailure::GenericNack(_) => {}
        }
        let Some(outcome) = self.outcome else {
            return;
        };
        tracing::info!(
            messageId = self.message_id,
            traceId = %self.trace.map(DispatchTrace::trace_id).unwrap_or_default(),
            pduSeqNum = self.sequence_number,
            outcome = outcome.as_str(),
            "submit_sm failed; message will be retried"
        );
    }
}

/// A PDU that did not decode, answered with generic_nack.
pub struct MalformedPdu<'a>(pub &'a Malformed);

impl BindInternalEvent for MalformedPdu<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        bind.malformed.increment(1);
        tracing::warn!(
            command_id = format!("0x{:08X}", self.0.command_id),
            pduSeqNum = self.0.sequence_number,
            error = %self.0.error,
            "malformed PDU from SMSC answered with generic_nack"
        );
    }
}

/// A framing error: the stream is out of step, the connection closes.
pub struct FramingFailed<'a>(pub &'a FrameError);

impl BindInternalEvent for FramingFailed<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        bind.malformed.increment(1);
        tracing::warn!(
            error = %self.0,
            "unrecoverable framing error from SMSC; reconnecting"
        );
    }
}

/// A legal PDU that has no place here.
pub struct UnexpectedPdu {
    pub command_id: CommandId,
    pub sequence_number: u32,
}

impl BindInternalEvent for UnexpectedPdu {
    fn emit(self, bind: &mut BindMetrics) {
        bind.unexpected.increment(1);
        tracing::debug!(
            command = self.command_id.name(),
            pduSeqNum = self.sequence_number,
            "unexpected PDU"
        );
    }
}

// ----- rows and settlements -------------------------------------------------------------

/// A correlation row was asked for: a retry, or a first write whose operator message id
/// is longer than SMPP allows (stored as its digest, counted as a protocol violation).
pub struct RowRequested<'a> {
    pub attempt: u32,
    pub message_id: &'a str,
    /// The operator message id's length when it is over-long.
    pub over_long: Option<usize>,
}

impl BindInternalEvent for RowRequested<'_> {
    fn emit(self, bind: &mut BindMetrics) {
        if self.attempt > 0 {
            metrics::counter!(metric::ROW_RETRIES).increment(1);
        } else if let Some(length) = self.over_long {
            bind.violation("message_id_too_long").increment(1);
            tracing::debug!(
                messageId = self.message_id,
                length,
                "submit_sm_resp message_id longer than SMPP's 64 octets; stored as its digest"
            );
        }
    }
}

/// A correlation row write failed for a while (an outage: intake pauses, accepted
/// segments are never resent); warned once per outage.
pub struct RowWriteFailed<'a> {
    pub outage: &'a Outage,
    pub error: &'a dyn Display,
}

impl BindInternalEvent for RowWriteFailed<'_> {
    fn emit(self, _bind: &mut BindMetrics) {
        if self.outage.failed() {
            tracing::warn!(
                error = %self.error,
                "correlation row not written; retrying (accepted segments are never resent), intake paused"
            );
        }
    }
}

/// A row the database refused for good (its batch neighbours were written).
pub struct RowRefused<'a> {
    pub message_id: &'a str,
    pub segment: u16,
    pub error: &'a dyn Display,
}

impl BindInternalEvent for RowRefused<'_> {
    fn emit(self, _bind: &mut BindMetrics) {
        tracing::error!(
            messageId = self.message_id,
            segment = self.segment,
            error = %self.error,
            "correlation row refused by the database; the segment was accepted and is not sent again, its receipt cannot be correlated"
        );
    }
}

/// A message settled: ACKed or NAKed.
pub struct Settled {
    pub acked: bool,
    /// Its pull slot.
    pub slot: usize,
    /// ACKed: since it was pulled, and since JetStream stored it (when known).
    pub latency: std::time::Duration,
    pub age: Option<std::time::Duration>,
}

impl Settled {
    /// A NAK of a message from pull slot `slot`.
    pub fn nak(slot: usize) -> Self {
        Settled {
            acked: false,
            slot,
            latency: std::time::Duration::ZERO,
            age: None,
        }
    }
}

impl BindInternalEvent for Settled {
    fn emit(self, bind: &mut BindMetrics) {
        if self.acked {
            metrics::histogram!(metric::DISPATCH_LATENCY).record(self.latency.as_secs_f64());
            if let Some(age) = self.age {
                metrics::histogram!(metric::DISPATCH_AGE).record(age.as_secs_f64());
            }
            bind.acks.increment(1);
            bind.lane(self.slot, "ack").increment(1);
        } else {
            bind.naks.increment(1);
            bind.lane(self.slot, "nak").increment(1);
        }
    }
}

/// A dispatch command goes to `sms.dispatch.dlq`: ten lines a minute per bind, then one
/// ERROR, then only the count (`smpp_connector_dead_letter_total`, when published).
pub struct DeadLettered<'a> {
    pub letter: &'a DispatchDeadLetter,
    pub trace_id: String,
    pub budget: &'a mut LogBudget,
    pub now: Instant,
}

impl BindInternalEvent for DeadLettered<'_> {
    fn emit(self, _bind: &mut BindMetrics) {
        let letter = self.letter;
        match self.budget.admit(self.now) {
            Admit::Log => tracing::warn!(
                messageId = letter.message_id.as_deref().unwrap_or(""),
                reason = letter.reason,
                detail = %letter.detail,
                streamSequence = letter.stream_sequence,
                traceId = %self.trace_id,
                "dispatch command dead-lettered"
            ),
            Admit::Flood => tracing::error!(
                reason = letter.reason,
                "dispatch commands dead-lettered in bulk (over 10 in a minute); each is in sms.dispatch.dlq and counted in smpp_connector_dead_letter_total, further lines this minute are not logged"
            ),
            Admit::Quiet => {}
        }
    }
}

// ----- intake ---------------------------------------------------------------------------

/// A command planned into parts: its encoding, its parts, GSM7_FORCE replacements and
/// a segment fingerprint that differs from ours (billing parity).
pub struct SubmitPlanned<'a> {
    pub plan: &'a smpp_connector::dispatch::SubmitPlan,
    pub message_id: &'a str,
    pub operator_id: &'a str,
}

impl InternalEvent for SubmitPlanned<'_> {
    fn emit(self) {
        let plan = self.plan;
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
                messageId = self.message_id,
                operatorId = self.operator_id,
                replaced = plan.replaced,
                "GSM7_FORCE replaced characters outside GSM 03.38"
            );
        }
        if let Some(check) = plan.fingerprint_check.as_ref().filter(|c| !c.matches) {
            metrics::counter!(metric::FINGERPRINT_MISMATCHES).increment(1);
            tracing::warn!(
                messageId = self.message_id,
                operatorId = self.operator_id,
                ours = %check.ours,
                "segmentFingerprint differs from ours (billing parity)"
            );
        }
    }
}

/// No concatenation reference block from Redis: the local counter until one arrives.
pub struct ConcatRefFallback;

impl InternalEvent for ConcatRefFallback {
    fn emit(self) {
        metrics::counter!(metric::CONCAT_REF_FALLBACKS).increment(1);
        tracing::warn!(
            "no concatenation reference block from Redis; using a local counter until one arrives"
        );
    }
}

/// MO parts expired in Redis before their message was published.
pub struct MoPartsLost<'a> {
    pub mno: &'a str,
    pub bind_id: u16,
    pub messages: u64,
}

impl InternalEvent for MoPartsLost<'_> {
    fn emit(self) {
        metrics::counter!(metric::CONCAT_LOST, "mno" => self.mno.to_owned())
            .increment(self.messages);
        tracing::warn!(
            operatorId = self.mno,
            bindId = self.bind_id,
            messages = self.messages,
            "MO parts expired in Redis before their message was published"
        );
    }
}

#[cfg(test)]
mod tests {
    use smpp_connector::config::{BindKey, Direction, OperatorId};

    use super::*;
    use crate::telemetry::test_metrics::TestMetrics;

    fn bind_metrics() -> BindMetrics {
        BindMetrics::new(&BindKey::new(
            OperatorId::try_new("op-events").unwrap(),
            Direction::Trx,
            0,
        ))
    }

    #[test]
    fn a_failure_in_an_outage_is_counted_every_time_and_starts_the_outage_once() {
        let metrics = TestMetrics::install();
        let outage = Outage::new();
        for _ in 0..3 {
            emit(BackendFailedInOutage {
                backend: Backend::Postgres,
                outage: &outage,
                what: "lookups failing",
                error: &"refused",
                message_id: Some("m-1"),
            });
        }
        assert_eq!(
            metrics.value(metric::BACKEND_ERRORS, &[("backend", "postgres")]),
            3.0
        );
        assert!(!outage.failed(), "the first failure started it");
        emit(BackendRecovered {
            outage: &outage,
            what: "answered again",
        });
        assert!(
            outage.failed(),
            "recovered: the next failure starts a new outage"
        );
    }

    #[test]
    fn a_bind_event_counts_on_its_bind_s_series() {
        let metrics = TestMetrics::install();
        let mut bind = bind_metrics();
        let labels = [("mno", "op-events"), ("direction", "trx"), ("bindId", "0")];
        StateChanged {
            from: BindState::Bound,
            to: BindState::HalfClosedTx,
            reason: Some("throttled"),
        }
        .emit(&mut bind);
        assert_eq!(metrics.value(metric::BIND_HALF_CLOSED, &labels), 1.0);
        assert_eq!(metrics.value(metric::STATE_CHANGES, &labels), 1.0);
        assert_eq!(metrics.value(metric::BIND_UP, &labels), 1.0);

        SubmitAnswered {
            status: CommandStatus::ESME_RTHROTTLED,
            written_at: Instant::now(),
            outcome: Some(smpp_connector::protocol::taxonomy::classify_submit(
                CommandStatus::ESME_RTHROTTLED,
            )),
            sequence_number: 7,
            message_id: "m-1",
            trace: None,
        }
        .emit(&mut bind);
        let mut status = labels.to_vec();
        status.push(("esme_status", "ESME_RTHROTTLED"));
        assert_eq!(metrics.value(metric::RESPONSE_STATUS, &status), 1.0);

        SubmitFailed {
            reason: SubmitFailure::TimedOut,
            outcome: Some(smpp_connector::protocol::taxonomy::classify_timeout()),
            sequence_number: 8,
            message_id: "m-2",
            trace: None,
        }
        .emit(&mut bind);
        assert_eq!(metrics.value(metric::SUBMIT_TIMEOUTS, &labels), 1.0);
        assert_eq!(metrics.value(metric::POSSIBLE_DUPLICATES, &labels), 1.0);

        Settled::nak(4).emit(&mut bind);
        assert_eq!(
            metrics.value(
                metric::LANE_MESSAGES,
                &[("mno", "op-events"), ("lane", "pinned"), ("outcome", "nak")]
            ),
            1.0
        );
        AttemptCounted {
            attempt: 1,
            enquire_link_timed_out: true,
        }
        .emit(&mut bind);
        assert_eq!(metrics.value(metric::ENQUIRE_LINK_TIMEOUTS, &labels), 1.0);
        assert_eq!(metrics.value(metric::RECONNECT_ATTEMPTS, &labels), 1.0);
    }

    #[test]
    fn dead_letter_lines_stop_at_the_budget_and_the_budget_is_the_event_s() {
        let mut budget = LogBudget::new(2, std::time::Duration::from_secs(60));
        let mut bind = bind_metrics();
        let letter = DispatchDeadLetter::new(
            smpp_connector::dispatch::Rejection {
                reason: smpp_connector::dispatch::DeadLetterReason::InvalidJson,
                detail: "not JSON".into(),
                message_id: None,
                operator_id: None,
            },
            "smpp.op.trx.dispatch".into(),
            1,
            1,
            "2026-12-08T00:00:00.000Z".into(),
        );
        let now = Instant::now();
        for _ in 0..4 {
            DeadLettered {
                letter: &letter,
                trace_id: String::new(),
                budget: &mut budget,
                now,
            }
            .emit(&mut bind);
        }
        assert_eq!(
            budget.admit(now),
            Admit::Quiet,
            "two lines, the flood line, then quiet"
        );
    }
}
