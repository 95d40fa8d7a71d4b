//! Submitting and timing: segments from the ledger written while the flow controller
//! allows, submit outcomes classified by `taxonomy` and handed to the flow controller and
//! the ledger, one timer at the core's earliest deadline,
//! housekeeping (gauges, window growth, sequence blocks) and the window reload from
//! `ops.smpp_binds`.

use std::time::Instant;

use actix::prelude::*;
use smpp_connector::pdu::CommandStatus;
use smpp_connector::session::{SubmitError, SubmitFailure};
use smpp_connector::taxonomy::{self, SubmitOutcome};

use super::actor::{BindActor, SegmentToken};
use crate::correlation::GetBindSettings;
use crate::telemetry::metric;
use opentelemetry::KeyValue;

impl BindActor {
    /// Housekeeping: gauges and the adaptive window's growth.
    pub(super) fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if let Some(index) = self.core.transmitter_index() {
            let link = &mut self.core.links[index];
            let in_flight = link.session.in_flight();
            self.metrics.window_inflight.set(in_flight as f64);
            if let Some(flow) = &mut self.core.flow {
                flow.handle_timeout(now, in_flight);
                self.metrics.window_dynamic.set(flow.window_size() as f64);
                self.metrics.drain_seconds.set(flow.drain_seconds(now));
            }
            let skips = link.session.sequence_skips();
            if skips > self.core.sequence_skips_reported {
                self.metrics
                    .sequence_skips
                    .increment(skips - self.core.sequence_skips_reported);
                self.core.sequence_skips_reported = skips;
            }
        }
        self.refill_sequences(ctx);
        self.ensure_pinned(ctx);
        if let Some(beyond) = self.core.dead_letter_log.poll_summary(now) {
            tracing::warn!(
                unlogged = beyond,
                "more dispatch commands were dead-lettered in the last minute than were logged"
            );
        }
        self.drive(ctx);
    }

    /// Apply `ops.smpp_binds.window` (an operator changes it in SQL; no row: the
    /// credentials' window). A throttled window keeps its reduced size and grows towards
    /// the new maximum.
    pub(super) fn reload_window(&mut self, ctx: &mut Context<Self>) {
        if self.core.transmitter_index().is_none() {
            return;
        }
        let lookup = self
            .deps
            .correlation
            .send(GetBindSettings(self.key.clone()));
        ctx.spawn(lookup.into_actor(self).map(|result, act, ctx| {
            let _span = act.span.clone().entered();
            let configured = match result {
                Ok(Ok(Some(settings))) => settings.window as usize,
                Ok(Ok(None)) => act
                    .core
                    .credentials()
                    .as_ref()
                    .map_or(0, |c| c.window as usize),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "ops.smpp_binds not read; window unchanged");
                    return;
                }
                Err(_) => return,
            };
            let Some(index) = act.core.transmitter_index() else {
                return;
            };
            let Some(flow) = &mut act.core.flow else {
                return;
            };
            if configured > 0 && configured != flow.configured_window() {
                tracing::info!(
                    from = flow.configured_window(),
                    to = configured,
                    "window maximum changed"
                );
                flow.set_configured_window(configured);
                // The session's window is the hard cap the flow controller works under.
                act.core.links[index]
                    .session
                    .window_mut()
                    .set_max(configured);
                act.drive(ctx);
            }
        }));
    }

    /// Arm one timer at the core's earliest deadline.
    pub(super) fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let Some(deadline) = self.core.next_deadline(now) else {
            return;
        };
        if let Some((armed, handle)) = self.io.timer {
            if armed <= deadline {
                return;
            }
            ctx.cancel_future(handle);
        }
        let delay = deadline.saturating_duration_since(now);
        let handle = ctx.run_later(delay, |act, ctx| {
            let _span = act.span.clone().entered();
            act.io.timer = None;
            act.on_timer(ctx);
        });
        self.io.timer = Some((deadline, handle));
    }

    pub(super) fn on_timer(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        for index in 0..self.core.links.len() {
            self.core.links[index].session.handle_timeout(now);
            self.pump(index, ctx);
        }
        self.core.ledger.handle_timeout(now);
        let in_flight = self.core.transmitter().map_or(0, |l| l.session.in_flight());
        if let Some(flow) = &mut self.core.flow {
            flow.handle_timeout(now, in_flight);
        }
        self.drive(ctx);
    }

    // ----- submitting -----------------------------------------------------------------

    /// Submit queued segments while the window has room.
    pub(super) fn send_queued(&mut self, ctx: &mut Context<Self>) {
        if self.io.closing_writers > 0 || !self.core.state().is_bound() {
            return;
        }
        let Some(index) = self.core.transmitter_index() else {
            return;
        };
        let now = Instant::now();
        let mut wrote = false;
        let mut allowance = self.core.submit_allowance(now);
        while allowance > 0 {
            let Some((segment, body)) = self.core.ledger.next_submit_at(now) else {
                break;
            };
            allowance -= 1;
            let token = SegmentToken {
                segment,
                written_at: now,
            };
            match self.core.links[index].session.submit(now, body, token) {
                Ok(_) => {
                    wrote = true;
                    self.metrics.submits.increment(1);
                    if let Some(flow) = &mut self.core.flow {
                        flow.on_submitted(now);
                    }
                }
                Err(
                    SubmitError::WindowFull(token)
                    | SubmitError::NotBound(token)
                    | SubmitError::NotTransmitter(token),
                ) => {
                    // free_slots() said there was room: the session changed under us.
                    self.core.ledger.handle_not_sent(token.segment);
                    break;
                }
                Err(SubmitError::Encode(err, token)) => {
                    tracing::warn!(
                        messageId = self.core.ledger.message_id(token.segment.dispatch).unwrap_or(""),
                        error = %err,
                        "submit_sm could not be encoded; message rejected"
                    );
                    self.core.ledger.handle_unencodable(token.segment);
                }
            }
        }
        if wrote {
            self.pump(index, ctx);
        }
    }

    pub(super) fn on_submit_response(
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
        self.trace_submit(&token, sequence_number, status.name());
        if outcome != SubmitOutcome::Accepted {
            tracing::info!(
                messageId = self.core.ledger.message_id(token.segment.dispatch).unwrap_or(""),
                traceId = %self.trace_id(token.segment.dispatch),
                pduSeqNum = sequence_number,
                esme_status = %status,
                outcome = outcome.as_str(),
                "submit_sm not accepted"
            );
        }
        if let Some(flow) = &mut self.core.flow {
            flow.handle_outcome(Instant::now(), &outcome);
        }
        self.core
            .ledger
            .handle_outcome(token.segment, &outcome, operator_message_id);
    }

    pub(super) fn on_submit_failed(
        &mut self,
        token: SegmentToken,
        sequence_number: u32,
        reason: SubmitFailure,
    ) {
        self.trace_submit(
            &token,
            sequence_number,
            match reason {
                SubmitFailure::TimedOut => "timeout",
                SubmitFailure::SessionClosed => "session_closed",
                SubmitFailure::GenericNack(_) => "generic_nack",
            }
            .into(),
        );
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
            messageId = self.core.ledger.message_id(token.segment.dispatch).unwrap_or(""),
            traceId = %self.trace_id(token.segment.dispatch),
            pduSeqNum = sequence_number,
            outcome = outcome.as_str(),
            "submit_sm failed; message will be retried"
        );
        if let Some(flow) = &mut self.core.flow {
            flow.handle_outcome(Instant::now(), &outcome);
        }
        self.core
            .ledger
            .handle_outcome(token.segment, &outcome, None);
    }

    /// The `submit_sm` span of a segment: written → answered (or failed).
    fn trace_submit(&self, token: &SegmentToken, sequence_number: u32, result: String) {
        let Some(held) = self.core.ledger.handle(token.segment.dispatch) else {
            return;
        };
        let started = std::time::SystemTime::now() - token.written_at.elapsed();
        held.trace.step(
            "submit_sm",
            started,
            vec![
                KeyValue::new("smpp.sequence_number", i64::from(sequence_number)),
                KeyValue::new("smpp.segment", i64::from(token.segment.segment)),
                KeyValue::new("smpp.command_status", result),
            ],
        );
    }

    /// The trace id of a held message, for its log lines (empty when it has none).
    pub(super) fn trace_id(&self, dispatch: smpp_connector::ledger::DispatchId) -> String {
        self.core
            .ledger
            .handle(dispatch)
            .map(|held| held.trace.trace_id())
            .unwrap_or_default()
    }
}
