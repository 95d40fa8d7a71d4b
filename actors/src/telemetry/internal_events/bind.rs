//! What happens to one bind: its life, what the SMSC sent, rows and settlements.

// Events live for one `emit`, often borrowing an error as `&dyn Display`: no `Debug`.
#![allow(missing_debug_implementations)]

use std::fmt::Display;
use std::time::Instant;

use smpp_connector::events::DispatchDeadLetter;
use smpp_connector::log_budget::{Admit, LogBudget, Outage};
use smpp_connector::protocol::pdu::{CommandId, CommandStatus, FrameError, Malformed};
use smpp_connector::protocol::session::{BindState, SubmitFailure};
use smpp_connector::protocol::taxonomy::SubmitOutcome;

use super::{Backend, BindInternalEvent};
use crate::telemetry::bind_metrics::BindMetrics;
use crate::telemetry::metric;
use crate::telemetry::traces::DispatchTrace;

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
