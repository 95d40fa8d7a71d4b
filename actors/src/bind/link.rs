//! The bind's connection and link: connect (credentials from OMS, TCP, a sequence block
//! from Redis), the sessions and their sockets, the pump that writes what a session
//! queued and handles what it reports, session close and failure (which stops the actor:
//! the supervisor's restart is the reconnect).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use smpp_connector::protocol::pdu::{BindMode, FrameError};
use smpp_connector::protocol::session::{BindState, CloseReason, Event, Session};
use smpp_connector::protocol::window::SequenceNumbers;

use super::actor::{BindActor, LinkItem, SegmentToken, Wire};
use super::failure::BindFailure;
use super::io::{self as bind_io, Connection};
use crate::oms::Credentials;
use crate::telemetry::internal_events::{
    AttemptCounted, BindAttemptFailed, BindInternalEvent, FramingFailed, MalformedPdu,
    UnexpectedPdu, WentDown,
};
use crate::telemetry::metric;
use crate::throttle::ReserveSequences;
use smpp_connector::bind_core::{CloseVerdict, FollowUp, Link, SEQUENCE_BLOCK};

impl BindActor {
    // ----- connection lifecycle ------------------------------------------------------

    pub(super) fn schedule_connect(&mut self, ctx: &mut Context<Self>) {
        let Some(delay) = self.core.connect_delay(random_unit()) else {
            return;
        };
        if !delay.is_zero() {
            tracing::info!(
                attempt = self.core.backoff().attempts(),
                delay_ms = delay.as_millis() as u64,
                "reconnect scheduled"
            );
        }
        ctx.run_later(delay, |act, ctx| {
            let _span = act.span.clone().entered();
            act.connect(ctx);
        });
    }

    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        self.set_state(BindState::Connecting, None);
        let source = self.deps.credentials.clone();
        let operator_id = self.key.operator_id.clone();
        let timeout = self.deps.config.timers.bind_timeout;
        let direction = self.key.direction;
        let split_bind = self.core.split_bind();
        let throttle = self.deps.throttle.clone();
        let key = self.key.clone();
        let ingress = self.metrics.ingress_bytes.clone();
        let egress = self.metrics.egress_bytes.clone();
        let tls = self.deps.tls.clone();
        let smsc = self.deps.smsc.clone();
        let fut = async move {
            let credentials = source
                .fetch(&operator_id)
                .await
                .map_err(BindFailure::Credentials)?;
            let modes = credentials.bind_modes(direction, split_bind);
            let mut connections = Vec::with_capacity(modes.len());
            for mode in modes {
                let connection = bind_io::counted(
                    smsc.connect(
                        &credentials.host,
                        credentials.port,
                        credentials.tls.then_some(&tls),
                        timeout,
                    )
                    .await?,
                    ingress.clone(),
                    egress.clone(),
                );
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
            Ok::<_, BindFailure>((credentials, connections))
        };
        ctx.spawn(fut.into_actor(self).map(|result, act, ctx| {
            let _span = act.span.clone().entered();
            match result {
                Ok((credentials, connections)) => act.start_sessions(credentials, connections, ctx),
                Err(failure) => {
                    BindAttemptFailed {
                        error: &failure,
                        credentials: matches!(failure, BindFailure::Credentials(_)),
                    }
                    .emit(&mut act.metrics);
                    act.fail(failure, ctx);
                }
            }
        }));
    }

    pub(super) fn start_sessions(
        &mut self,
        credentials: Credentials,
        connections: Vec<(BindMode, Connection, SequenceNumbers)>,
        ctx: &mut Context<Self>,
    ) {
        let config = &self.deps.config;
        let now = crate::clock::now();
        self.generation += 1;
        let generation = self.generation;
        let mut links = Vec::with_capacity(connections.len());
        for (index, (mode, connection, sequences)) in connections.into_iter().enumerate() {
            let mut session_config = credentials.session_config(mode, &config.timers);
            session_config.inbound_window = config.inbound_window;
            let session = match Session::try_new(session_config, sequences, now) {
                Ok(session) => session,
                Err(err) => {
                    self.fail(BindFailure::BindRequest(err), ctx);
                    return;
                }
            };
            let gate = Arc::new(bind_io::InboundGate::new(self.progress.clone()));
            let reads = bind_io::gated(
                bind_io::framed(connection.read, config.max_pdu_bytes),
                gate.clone(),
            )
            .map(move |item| LinkItem {
                generation,
                link: index,
                item,
            });
            ctx.add_stream(reads);
            let writer = actix::io::Writer::new(connection.write, ctx);
            self.io.wires.push(Wire { writer, gate });
            links.push(Link {
                session,
                bound: false,
            });
        }
        self.core.connected(Arc::new(credentials), links);
        self.pump(ctx);
        self.arm_timer(ctx);
    }

    /// A failed attempt: count it, go DISCONNECTED and let the supervisor restart us
    /// after the backoff.
    pub(super) fn fail(&mut self, failure: BindFailure, ctx: &mut Context<Self>) {
        let reason = failure.reason();
        let attempt = self.core.attempt_failed(format!("{reason}: {failure}"));
        AttemptCounted {
            attempt,
            enquire_link_timed_out: matches!(failure, BindFailure::EnquireLinkTimedOut),
        }
        .emit(&mut self.metrics);
        self.go_down(reason, ctx);
    }

    /// Close everything and stop; the supervisor restarts the actor.
    ///
    /// What the sessions still queued (an unbind_resp, a generic_nack) is flushed first:
    /// the actor stops when every writer reported it closed, or after 500 ms at most.
    pub(super) fn go_down(&mut self, reason: String, ctx: &mut Context<Self>) {
        self.notes.down_reason.clone_from(&reason);
        // What is still in flight may have reached the SMSC: it goes back to the stream
        // with the rest (the redelivery sends only what has no row), counted.
        let in_flight = if self.io.closing_writers == 0 {
            self.core.in_flight()
        } else {
            0
        };
        WentDown { in_flight }.emit(&mut self.metrics);
        self.set_state(BindState::Disconnected, Some(reason));
        if self.io.closing_writers > 0 {
            return;
        }
        // Nothing queued or in flight will be answered now: back to the stream at once.
        self.core.ledger.handle_session_ended();
        self.drain_outputs(ctx);
        if self.io.wires.is_empty() {
            ctx.stop();
            return;
        }
        self.io.closing_writers = self.io.wires.len();
        self.core.set_closing(true);
        for wire in &mut self.io.wires {
            // An empty write wakes the writer task so it sees the close.
            wire.writer.write(&[]);
            wire.writer.close();
        }
        ctx.run_later(Duration::from_millis(500), |_, ctx| ctx.stop());
    }

    // ----- session driving -----------------------------------------------------------

    /// Let the session's reads go on only while its inbound window has room.
    pub(super) fn update_gate(&self, index: usize) {
        if let Some(wire) = self.io.wires.get(index) {
            wire.gate.set_open(self.core.may_read(index));
        }
        self.metrics
            .inbound_held
            .set(self.core.inbound_held() as f64);
    }

    /// Write what the sessions queued, and report each session event before handing it
    /// back to the core, then carry out what the core made of it; until the sessions are
    /// quiet, or the bind went down (what is left dies with the connection).
    pub(super) fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            while let Some((link, bytes)) = self.core.poll_transmit() {
                if let Some(wire) = self.io.wires.get_mut(link) {
                    wire.writer.write(&bytes);
                }
            }
            let Some((link, event)) = self.core.poll_session_event() else {
                return;
            };
            self.report_session_event(link, &event);
            let follow_up = self
                .core
                .handle_session_event(link, event, crate::clock::now());
            self.follow_up(follow_up, ctx);
            if self.core.state() == BindState::Disconnected {
                return;
            }
        }
    }

    /// A session event reported (counted, logged, traced), before the core applies it.
    fn report_session_event(&mut self, link: usize, event: &Event<SegmentToken>) {
        match event {
            Event::Bound { system_id, .. } => tracing::info!(
                mode = self.core.link_mode(link).name(),
                smsc = system_id.as_deref().unwrap_or(""),
                "session bound"
            ),
            Event::SubmitResponse {
                token,
                sequence_number,
                status,
                ..
            } => self.report_submit_response(token, *sequence_number, *status, event),
            Event::SubmitFailed {
                token,
                sequence_number,
                reason,
            } => self.report_submit_failed(token, *sequence_number, *reason, event),
            Event::DeliverSm { .. } => {}
            Event::Malformed(malformed) => MalformedPdu(malformed).emit(&mut self.metrics),
            Event::Unexpected {
                command_id,
                sequence_number,
            } => UnexpectedPdu {
                command_id: *command_id,
                sequence_number: *sequence_number,
            }
            .emit(&mut self.metrics),
            Event::Closed(reason) => tracing::info!(
                mode = self.core.link_mode(link).name(),
                reason = %reason.as_str(),
                "session closed"
            ),
        }
    }

    /// Carry out what the core made of a session event.
    fn follow_up(&mut self, follow_up: FollowUp, ctx: &mut Context<Self>) {
        match follow_up {
            FollowUp::Nothing => {}
            FollowUp::BindBound => {
                if let Some(limit) = self.core.credentials().and_then(|c| c.tps_limit) {
                    metrics::gauge!(metric::TPS_LIMIT, "mno" => self.key.operator_id.to_string())
                        .set(f64::from(limit));
                }
                if self.key.direction.submits() {
                    self.carry_out_references(ctx);
                    self.reload_window(ctx);
                }
            }
            FollowUp::DeliverSm {
                link,
                sequence_number,
                body,
            } => self.on_deliver_sm(link, sequence_number, *body, ctx),
            FollowUp::Closed {
                mode,
                reason,
                verdict,
            } => self.on_session_closed(mode, reason, verdict, ctx),
        }
    }

    fn on_session_closed(
        &mut self,
        mode: BindMode,
        reason: CloseReason,
        verdict: CloseVerdict,
        ctx: &mut Context<Self>,
    ) {
        match verdict {
            // Flush the unbind_resp and wait for the other link, if any.
            CloseVerdict::UnbindClosing => {}
            CloseVerdict::UnbindDone => self.unbind_done(ctx),
            CloseVerdict::SplitBindFallback => {
                tracing::warn!(
                    esme_status = %reason.as_str(),
                    "bind_transceiver refused, falling back to bind_transmitter + bind_receiver"
                );
                self.go_down(reason.as_str(), ctx);
            }
            CloseVerdict::BindRejected => {
                let CloseReason::BindRejected(status) = reason else {
                    return;
                };
                tracing::error!(
                    esme_status = %status,
                    "bind rejected by SMSC (check the credentials in OMS)"
                );
                self.fail(
                    BindFailure::BindRejected {
                        request: mode.request_id(),
                        status,
                    },
                    ctx,
                );
            }
            CloseVerdict::EnquireLinkTimedOut => self.fail(BindFailure::EnquireLinkTimedOut, ctx),
            CloseVerdict::Failed => self.fail(BindFailure::Session(reason), ctx),
        }
    }
}

/// A number in [0, 1) for jitter, without a dependency on a random crate.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

impl StreamHandler<LinkItem> for BindActor {
    fn handle(&mut self, item: LinkItem, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let _timer = self.health.time();
        if item.generation != self.generation
            || item.link >= self.core.links().len()
            || self.io.closing_writers > 0
        {
            return;
        }
        match item.item {
            Ok(inbound) => {
                self.core
                    .handle_inbound(item.link, inbound, crate::clock::now());
                self.pump(ctx);
                self.update_gate(item.link);
                self.drive(ctx);
            }
            // The socket failed (a reset, a broken pipe): the connection is lost, nothing
            // malformed came from the SMSC.
            Err(FrameError::Io(err)) => {
                tracing::warn!(
                    error = %err,
                    "connection to SMSC lost; reconnecting"
                );
                self.fail(BindFailure::Read(err), ctx);
            }
            Err(err) => {
                FramingFailed(&err).emit(&mut self.metrics);
                self.fail(BindFailure::Framing(err), ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if self.core.state() == BindState::Disconnected {
            return;
        }
        if self
            .core
            .unbinding()
            .as_ref()
            .is_some_and(|u| u.unbind_sent)
        {
            // The SMSC closed after our unbind: that is the end we wanted.
            self.unbind_done(ctx);
            return;
        }
        tracing::warn!("connection closed by SMSC");
        self.fail(BindFailure::PeerClosed, ctx);
    }
}

impl actix::io::WriteHandler<std::io::Error> for BindActor {
    fn error(&mut self, err: std::io::Error, ctx: &mut Context<Self>) -> Running {
        let _span = self.span.clone().entered();
        if self.io.closing_writers > 0 {
            // Already going down; the peer may have closed first.
            return Running::Stop;
        }
        tracing::warn!(error = %err, "write to SMSC failed");
        self.fail(BindFailure::Write(err), ctx);
        Running::Stop
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if self.io.closing_writers > 0 {
            self.io.closing_writers -= 1;
            if self.io.closing_writers == 0 {
                ctx.stop();
            }
        }
    }
}
