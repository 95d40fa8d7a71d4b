//! Submits reported (the core writes them and applies their outcomes), one timer at the
//! core's earliest deadline, housekeeping (gauges, window growth, sequence blocks) and the
//! window reload from `ops.smpp_binds`.

use actix::prelude::*;
use smpp_connector::bind_core::submit_outcome;
use smpp_connector::protocol::pdu::CommandStatus;
use smpp_connector::protocol::session::{Event, SubmitFailure};

use super::actor::{BindActor, SegmentToken};
use super::message::Held;
use crate::correlation::GetBindSettings;
use crate::telemetry::internal_events::{BindInternalEvent, SubmitAnswered, SubmitFailed};
use opentelemetry::KeyValue;

impl BindActor {
    /// Housekeeping: the flow controller's tick (window growth), gauges, sequence blocks,
    /// the pinned consumer, the dead-letter summary.
    pub(super) fn housekeeping(&mut self, ctx: &mut Context<Self>) {
        let now = crate::clock::now();
        if let Some(gauges) = self.core.housekeeping(now) {
            self.metrics.window_inflight.set(gauges.in_flight as f64);
            if let Some(window) = gauges.window {
                self.metrics.window_dynamic.set(window as f64);
                self.metrics.drain_seconds.set(gauges.drain_seconds);
            }
            self.metrics
                .sequence_skips
                .increment(gauges.new_sequence_skips);
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

    /// Read `ops.smpp_binds.window` (an operator changes it in SQL) and hand it to the
    /// core ([`smpp_connector::bind_core::BindCore::apply_window_setting`]).
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
                Ok(Ok(settings)) => settings.map(|s| s.window as usize),
                Ok(Err(err)) => {
                    tracing::debug!(error = %err, "ops.smpp_binds not read; window unchanged");
                    return;
                }
                Err(_) => return,
            };
            if let Some((from, to)) = act.core.apply_window_setting(configured) {
                tracing::info!(from, to, "window maximum changed");
                act.drive(ctx);
            }
        }));
    }

    /// Arm one timer at the core's earliest deadline.
    pub(super) fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let now = crate::clock::now();
        let Some(deadline) = self.core.poll_timeout(now) else {
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
            act.core.handle_timeout(crate::clock::now());
            act.pump(ctx);
            act.drive(ctx);
        });
        self.io.timer = Some((deadline, handle));
    }

    // ----- reporting submits ----------------------------------------------------------

    /// A submit_sm answered, reported (counted, timed, traced, logged unless accepted).
    pub(super) fn report_submit_response(
        &mut self,
        token: &SegmentToken,
        sequence_number: u32,
        status: CommandStatus,
        event: &Event<SegmentToken>,
    ) {
        let held = self.core.ledger.message(token.segment.dispatch);
        trace_submit(held, token, sequence_number, status.name());
        SubmitAnswered {
            status,
            written_at: token.written_at,
            outcome: submit_outcome(event),
            sequence_number,
            message_id: held.map_or("", |(_, id)| id),
            trace: held.map(|(h, _)| &h.trace),
        }
        .emit(&mut self.metrics);
    }

    /// A submit_sm that failed (timed out, lost with its session, generic_nack),
    /// reported.
    pub(super) fn report_submit_failed(
        &mut self,
        token: &SegmentToken,
        sequence_number: u32,
        reason: SubmitFailure,
        event: &Event<SegmentToken>,
    ) {
        let held = self.core.ledger.message(token.segment.dispatch);
        trace_submit(
            held,
            token,
            sequence_number,
            match reason {
                SubmitFailure::TimedOut => "timeout",
                SubmitFailure::SessionClosed => "session_closed",
                SubmitFailure::GenericNack(_) => "generic_nack",
            }
            .into(),
        );
        SubmitFailed {
            reason,
            outcome: submit_outcome(event),
            sequence_number,
            message_id: held.map_or("", |(_, id)| id),
            trace: held.map(|(h, _)| &h.trace),
        }
        .emit(&mut self.metrics);
    }
}

/// The `submit_sm` span of a segment of `held`: written → answered (or failed).
fn trace_submit(
    held: Option<(&Held, &str)>,
    token: &SegmentToken,
    sequence_number: u32,
    result: String,
) {
    let Some((held, _)) = held else {
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
