//! What the ledger decides, carried out: correlation rows written (and retried), messages
//! ACKed, NAKed, rejected with a REJECTED DLR event or dead-lettered.
//!
//! Row writes run as detached tasks that answer the actor by address ([`RowWritten`]), so
//! a bind restart never loses the news that a row was committed: the ledger survives the
//! restart and settles the message when the answer arrives.

use std::time::SystemTime;

use actix::prelude::*;
use smpp_connector::dispatch::ledger::{Output, RecordRequest, SegmentRef, Settlement, Verdict};
use smpp_connector::dispatch::{DeadLetterReason, Rejection};
use smpp_connector::inbound::dlr;
use smpp_connector::protocol::pdu::CommandStatus;
use tracing::Instrument;

use super::actor::BindActor;
use super::message::Held;
use crate::correlation::{CorrelationError, CorrelationRow, RecordCorrelation};
use crate::events::{
    DispatchDeadLetter, DlrInboundEvent, dead_letter_msg_id, now_rfc3339, subject,
};
use crate::telemetry::internal_events::{
    Backend, BackendFailed, BackendRecovered, BindInternalEvent, DeadLettered, RowRefused,
    RowRequested, RowWriteFailed, Settled, emit,
};
use crate::telemetry::metric;
use opentelemetry::KeyValue;

/// A correlation row write finished.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct RowWritten {
    pub segment: SegmentRef,
    pub error: Option<CorrelationError>,
    /// When the write was asked for (its span starts there).
    pub asked: SystemTime,
}

impl BindActor {
    /// Carry out everything the ledger decided.
    pub(super) fn drain_outputs(&mut self, ctx: &mut Context<Self>) {
        while let Some(output) = self.core.ledger.poll_output() {
            match output {
                Output::Record(request) => self.record(request, ctx),
                Output::Settle(settlement) => self.settle(settlement),
            }
        }
    }

    fn record(&mut self, request: RecordRequest, ctx: &mut Context<Self>) {
        let format = self
            .core
            .credentials()
            .map(|c| c.msg_id_format)
            .unwrap_or_default();
        // An over-long id is accepted all the same; stored (and matched) as its digest.
        RowRequested {
            attempt: request.attempt,
            message_id: &request.message_id,
            over_long: dlr::is_over_long(&request.operator_message_id)
                .then_some(request.operator_message_id.len()),
        }
        .emit(&mut self.metrics);
        let row = CorrelationRow {
            message_id: request.message_id,
            segment_index: request.segment.segment,
            segment_count: request.segment_count,
            bind: self.key.clone(),
            operator_message_id: dlr::normalize_submit_id(&request.operator_message_id, format),
            submitted_at: chrono::Utc::now(),
            concat_ref: request.concat_ref,
            traceparent: self
                .core
                .ledger
                .handle(request.segment.dispatch)
                .and_then(|held| held.trace.traceparent()),
        };
        let asked = SystemTime::now();
        // Enqueued now, in this turn of the actor, so that the rows of one burst of
        // responses reach the CorrelationActor together and go out as one INSERT.
        let write = self.deps.correlation.send(RecordCorrelation(row));
        let addr = ctx.address();
        let segment = request.segment;
        actix::spawn(
            async move {
                let error = match write.await {
                    Ok(Ok(())) => None,
                    Ok(Err(err)) => Some(err),
                    Err(_) => Some(CorrelationError::Stopped),
                };
                addr.do_send(RowWritten {
                    segment,
                    error,
                    asked,
                });
            }
            .instrument(self.span.clone()),
        );
    }

    pub(super) fn on_row_written(&mut self, written: RowWritten, ctx: &mut Context<Self>) {
        if let Some(held) = self.core.ledger.handle(written.segment.dispatch) {
            let mut attributes = vec![KeyValue::new(
                "smpp.segment",
                i64::from(written.segment.segment),
            )];
            if let Some(error) = &written.error {
                attributes.push(KeyValue::new("error.type", error.to_string()));
            }
            held.trace
                .step("correlation.write", written.asked, attributes);
        }
        match written.error {
            None => {
                self.core.ledger.handle_recorded(written.segment);
                if !self.core.ledger.stalled() {
                    emit(BackendRecovered {
                        outage: &self.core.outages.record,
                        what: "correlation rows written again; intake resumes",
                    });
                }
            }
            Some(error) if error.is_permanent() => {
                // Accepted by the SMSC, refused by the database for good: never sent
                // again, ACKed without its row; its receipt will not correlate.
                RowRefused {
                    message_id: self
                        .core
                        .ledger
                        .message_id(written.segment.dispatch)
                        .unwrap_or(""),
                    segment: written.segment.segment,
                    error: &error,
                }
                .emit(&mut self.metrics);
                self.core.ledger.handle_record_refused(written.segment);
            }
            Some(error) => {
                self.core
                    .ledger
                    .handle_record_failed(crate::clock::now(), written.segment);
                RowWriteFailed {
                    outage: &self.core.outages.record,
                    error: &error,
                }
                .emit(&mut self.metrics);
            }
        }
        self.drive(ctx);
    }

    fn settle(&mut self, settlement: Settlement<Held>) {
        let Settlement {
            handle,
            message_id,
            segment_count,
            verdict,
            ..
        } = settlement;
        match verdict {
            Verdict::Ack => {
                Settled {
                    acked: true,
                    slot: handle.priority,
                    latency: handle.fetched_at.elapsed(),
                    age: handle.age(),
                }
                .emit(&mut self.metrics);
                handle.ack();
            }
            Verdict::Nak { delay } => {
                Settled::nak(handle.priority).emit(&mut self.metrics);
                handle.nak(delay);
            }
            Verdict::Reject { status } => {
                let event = self.rejected_event(&message_id, segment_count, status);
                self.publish_then_ack(handle, None, Some(event));
            }
            Verdict::RetriesExhausted { status, deliveries } => {
                let rejection = Rejection {
                    reason: DeadLetterReason::RetriesExhausted,
                    detail: format!("after {deliveries} deliveries: submit_sm_resp {status}"),
                    message_id: Some(message_id.clone()),
                    operator_id: Some(self.key.operator_id.to_string()),
                };
                let letter = DispatchDeadLetter::new(
                    rejection,
                    handle.subject.clone(),
                    handle.stream_sequence,
                    deliveries,
                    now_rfc3339(),
                );
                let event = self.rejected_event(&message_id, segment_count, status);
                self.publish_then_ack(handle, Some(letter), Some(event));
            }
        }
    }

    fn rejected_event(
        &self,
        message_id: &str,
        segment_count: u16,
        status: CommandStatus,
    ) -> DlrInboundEvent {
        DlrInboundEvent::rejected(&self.key, message_id, segment_count, status, now_rfc3339())
    }

    /// End a message that is not simply ACKed: publish its dead letter and its REJECTED
    /// event (skipped in shadow mode), then ACK. If a publish fails the message is NAKed
    /// instead, so nothing is lost.
    pub(super) fn publish_then_ack(
        &mut self,
        held: Held,
        letter: Option<DispatchDeadLetter>,
        rejected: Option<DlrInboundEvent>,
    ) {
        if let Some(letter) = &letter {
            DeadLettered {
                letter,
                trace_id: held.trace.trace_id(),
                budget: &mut self.core.dead_letter_log,
                now: crate::clock::now(),
            }
            .emit(&mut self.metrics);
        }
        let rejected = rejected.filter(|_| !self.deps.config.shadow_mode);
        let publisher = self.deps.publisher.clone();
        let mno = self.key.operator_id.to_string();
        actix::spawn(async move {
            let traceparent = held.trace.traceparent();
            let traceparent = traceparent.as_deref();
            let result = async {
                if let Some(letter) = &letter {
                    let msg_id = dead_letter_msg_id(letter.stream_sequence);
                    publisher
                        .publish(
                            subject::DISPATCH_DLQ,
                            letter,
                            msg_id.as_deref(),
                            traceparent,
                        )
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
                    let _ = held.acker.ack().await;
                    held.trace.end(if letter.is_some() {
                        "dead_letter"
                    } else {
                        "rejected"
                    });
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
                    emit(BackendFailed {
                        backend: Backend::Nats,
                        what: "dead letter or rejection event not published; message NAKed",
                        error: &err,
                    });
                    held.nak(smpp_connector::bind_core::PUBLISH_FAILED_NAK_DELAY);
                }
            }
        }.instrument(self.span.clone()));
    }
}

impl Handler<RowWritten> for BindActor {
    type Result = ();

    fn handle(&mut self, written: RowWritten, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let _timer = self.health.time();
        self.on_row_written(written, ctx);
    }
}
