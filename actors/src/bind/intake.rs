//! The bind's intake: pulling dispatch commands from JetStream, validating and planning
//! them, the redelivery lookup, concatenation references, and admission to the ledger.
//! How a pull runs is in [`super::pull`].

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_nats::jetstream::{self, AckKind};
use smpp_connector::bind_core::{RefChoice, ReferenceWork, SLOTS, Screen};
use smpp_connector::dispatch::concat_refs;
use smpp_connector::dispatch::ledger::Admission;
use smpp_connector::dispatch::{self, Rejection};
use smpp_connector::protocol::taxonomy;

use super::actor::{BindActor, Core};
use super::message::{Held, Lanes, Looked, LookedUp, Pending, ledger_priority, with_pinned};
use super::pull::pull_once;
use crate::correlation::{Correlated, CorrelationError, FindCorrelated};
use crate::telemetry::internal_events::{
    Backend, BackendFailedInOutage, BackendRecovered, BindInternalEvent, ConcatRefFallback,
    Settled, SubmitPlanned, emit,
};
use crate::telemetry::metric;
use crate::telemetry::traces::DispatchTrace;
use crate::throttle::{RecallConcatRef, RememberConcatRef, ReserveConcatRefs};

impl BindActor {
    /// Create (or take over) this bind's pinned consumer once the bind runs here: only
    /// the bind's owner pulls it. Retried every few seconds while NATS refuses (warned
    /// once per outage).
    pub(super) fn ensure_pinned(&mut self, ctx: &mut Context<Self>) {
        let Some(failures) = self.core.pinned_due(crate::clock::now()) else {
            return;
        };
        let js = self.deps.pulls.context().clone();
        let config = self.deps.config.clone();
        let serves = self.core.serves().clone();
        let key = self.key.clone();
        let create = async move {
            crate::nats::pinned_consumer(&js, &config, &serves, key.direction, key.bind_id).await
        };
        ctx.spawn(create.into_actor(self).map(move |result, act, ctx| {
            let _span = act.span.clone().entered();
            act.core
                .pinned_created(crate::clock::now(), result.is_ok(), failures);
            match result {
                Ok(consumer) => {
                    let consumer = Arc::new(consumer);
                    act.lanes.pulled = with_pinned(&act.lanes.operator, &consumer);
                    emit(BackendRecovered {
                        outage: &act.core.outages.pinned,
                        what: "pinned consumer created after failures",
                    });
                    tracing::debug!(consumer = %consumer.cached_info().name, "pinned consumer ready");
                    act.drive(ctx);
                }
                Err(err) => {
                    // Warned at the first failure only; every one counted.
                    emit(BackendFailedInOutage {
                        backend: Backend::Nats,
                        outage: &act.core.outages.pinned,
                        what: "pinned consumer not created; retrying every 2 s",
                        error: &format!("{err:#}"),
                        message_id: None,
                    });
                }
            }
        }));
    }

    /// Start a pull if the core says so ([`smpp_connector::bind_core::BindCore::poll_pull`]).
    pub(super) fn pull(&mut self, ctx: &mut Context<Self>) {
        // The slots pulled, without an allocation per pull (at most one per slot).
        let mut slots = [0; SLOTS];
        let n = self.lanes.pulled.len().min(SLOTS);
        for (slot, (pulled, _)) in slots.iter_mut().zip(self.lanes.pulled.iter()) {
            *slot = *pulled;
        }
        let Some(plan) = self.core.poll_pull(crate::clock::now(), &slots[..n]) else {
            return;
        };
        // A lane with an open listener is not asked again: what arrives there comes.
        // A listener may still bring one message beyond the room: it waits in the ledger
        // like any queued message (the window is enforced at submit, not at pull).
        let lanes: Lanes = if !plan.skip.contains(&true) {
            self.lanes.pulled.clone()
        } else {
            self.lanes
                .pulled
                .iter()
                .filter(|(slot, _)| !plan.skip[*slot])
                .cloned()
                .collect()
        };
        actix::spawn(pull_once(
            self.deps.pulls.clone(),
            lanes,
            plan.room,
            self.generation,
            ctx.address(),
        ));
    }

    pub(super) fn on_pulled(
        &mut self,
        message: jetstream::Message,
        priority: usize,
        ctx: &mut Context<Self>,
    ) {
        let (deliveries, stream_sequence, published_unix_nanos) = match message.info() {
            Ok(info) => (
                info.delivered.max(1) as u64,
                info.stream_sequence,
                info.published.unix_timestamp_nanos(),
            ),
            Err(_) => (1, 0, 0),
        };
        let traceparent = message
            .headers
            .as_ref()
            .and_then(|h| h.get("traceparent"))
            .map(|v| v.as_str().to_owned());
        let subject = message.subject.to_string();
        let payload = message.payload.clone();
        let (_, acker) = message.split();
        let trace =
            DispatchTrace::start(traceparent.as_deref(), &self.key, &subject, stream_sequence);
        let held = Held {
            acker: Arc::new(acker),
            subject,
            stream_sequence,
            fetched_at: crate::clock::now(),
            published_unix_nanos,
            trace,
            priority,
        };
        self.metrics.lane(priority, "pulled").increment(1);
        if let Screen::Nak { delay } = self.core.screen_pulled() {
            Settled::nak(priority).emit(&mut self.metrics);
            held.nak(delay);
            return;
        }
        let command =
            dispatch::parse_command(&payload).and_then(|command| self.core.check_operator(command));
        let encoded = command.and_then(|command| {
            let encoded = dispatch::encode_text(&command)?;
            Ok((command, encoded))
        });
        let (command, encoded) = match encoded {
            Ok(parts) => {
                held.trace.set_message_id(&parts.0.message_id);
                parts
            }
            Err(rejection) => {
                self.dead_letter(held, rejection, deliveries);
                return;
            }
        };
        let pending = Pending {
            held,
            command,
            encoded,
            deliveries,
            priority,
        };
        let lookup = dispatch::lookup_reason(
            deliveries,
            published_unix_nanos,
            crate::nats::connected_at_unix_nanos(),
        );
        let order = self.core.take_place();
        if let Some(reason) = lookup {
            // Redelivered, or stored before the latest NATS connection: which segments
            // were sent, and under which reference? (Batched by the correlation actor.)
            metrics::counter!(metric::REDELIVERY_LOOKUPS, "reason" => reason.as_str()).increment(1);
            self.core.looking_up(order);
            let correlation = self.deps.correlation.clone();
            let throttle = self.deps.throttle.clone();
            let addr = ctx.address();
            let message_id = pending.command.message_id.clone();
            let operator_id = self.key.operator_id.clone();
            actix::spawn(async move {
                let mut result = match correlation
                    .send(FindCorrelated {
                        message_id: message_id.clone(),
                    })
                    .await
                {
                    Ok(result) => result,
                    Err(_) => Err(CorrelationError::Stopped),
                };
                // No row carries the reference: the first delivery may still have sent
                // parts under the one it remembered in Redis.
                if let Ok(found) = &mut result
                    && found.concat_ref.is_none()
                    && let Ok(Ok(Some(reference))) = throttle
                        .send(RecallConcatRef {
                            operator_id,
                            message_id,
                        })
                        .await
                {
                    found.concat_ref = Some(reference);
                }
                addr.do_send(LookedUp {
                    order,
                    pending,
                    result,
                });
            });
        } else {
            self.core.looked_up(
                order,
                Looked {
                    pending,
                    result: Ok(Correlated::default()),
                },
            );
            self.admit_in_order(ctx);
        }
    }

    pub(super) fn on_looked_up(&mut self, done: LookedUp, ctx: &mut Context<Self>) {
        self.core.looked_up(
            done.order,
            Looked {
                pending: done.pending,
                result: done.result,
            },
        );
        self.admit_in_order(ctx);
        self.drive(ctx);
    }

    /// The bind restarts, which cancels its futures (reference reservations and remembers
    /// under way): messages pulled and not admitted go back to the stream at once, for a
    /// reason of ours (not counted against them).
    pub(super) fn return_unadmitted(&mut self, unadmitted: Vec<Looked>) {
        for Looked { pending, .. } in unadmitted {
            let Pending {
                held,
                command,
                deliveries,
                ..
            } = pending;
            self.core
                .ledger
                .refuse(held, command.message_id, deliveries, Duration::ZERO);
        }
    }

    /// Admit (or refuse) the messages whose turn has come, in pull order, once every long
    /// message among them has its reference remembered in Redis.
    fn admit_in_order(&mut self, ctx: &mut Context<Self>) {
        self.carry_out_references(ctx);
        while let Some((looked, fresh)) = self.core.poll_admissible() {
            self.admit_looked_up(looked, fresh, ctx);
        }
    }

    /// Carry out the core's reference work ([`ReferenceWork`]): remembers (pipelined: the
    /// `RememberConcatRef`s of a batch share one round trip of latency), block
    /// reservations, waits for a block on its way, the switch to the local counter.
    pub(super) fn carry_out_references(&mut self, ctx: &mut Context<Self>) {
        while let Some(work) = self.core.poll_reference(crate::clock::now()) {
            match work {
                ReferenceWork::Remember {
                    order,
                    message_id,
                    reference,
                } => {
                    let remember = self.deps.throttle.send(RememberConcatRef {
                        operator_id: self.key.operator_id.clone(),
                        message_id,
                        reference,
                    });
                    ctx.spawn(remember.into_actor(self).map(move |stored, act, ctx| {
                        let _span = act.span.clone().entered();
                        if let Ok(Err(err)) = &stored {
                            // Redis failing: the parts go out under the reference anyway
                            // (traffic never stops for Redis); a redelivery then relies
                            // on the rows.
                            tracing::debug!(error = %err, "concatenation reference not remembered");
                        }
                        act.core.handle_remembered(order);
                        act.admit_in_order(ctx);
                        act.drive(ctx);
                    }));
                }
                ReferenceWork::Reserve => {
                    let reserve = self.deps.throttle.send(ReserveConcatRefs {
                        key: self.key.clone(),
                        count: concat_refs::BLOCK,
                    });
                    ctx.spawn(reserve.into_actor(self).map(|result, act, ctx| {
                        let _span = act.span.clone().entered();
                        if let Ok(Err(err)) = &result {
                            tracing::debug!(error = %err, "concatenation references not reserved");
                        }
                        if act
                            .core
                            .handle_references_reserved(result.ok().and_then(Result::ok))
                        {
                            tracing::info!("concatenation references from Redis again");
                        }
                        // Messages waiting for this block go on (with the local counter
                        // if it failed).
                        if act.core.intake_len() > 0 {
                            act.admit_in_order(ctx);
                            act.drive(ctx);
                        }
                    }));
                }
                ReferenceWork::WaitFor(wait) => {
                    ctx.run_later(wait, |act, ctx| {
                        let _span = act.span.clone().entered();
                        act.admit_in_order(ctx);
                        act.drive(ctx);
                    });
                }
                ReferenceWork::FallbackStarted => emit(ConcatRefFallback),
            }
        }
    }

    fn admit_looked_up(
        &mut self,
        Looked { pending, result }: Looked,
        fresh: Option<u16>,
        ctx: &mut Context<Self>,
    ) {
        match result {
            Ok(correlated) if self.core.accepting() => {
                emit(BackendRecovered {
                    outage: &self.core.outages.lookup,
                    what: "redelivery lookups answered again",
                });
                self.admit(pending, correlated, fresh, ctx)
            }
            Ok(_) => {
                self.metrics.naks.increment(1);
                pending.held.nak(Duration::ZERO);
            }
            Err(err) => {
                // Nothing is sent without knowing what was sent: give it back.
                emit(BackendFailedInOutage {
                    backend: Backend::Postgres,
                    outage: &self.core.outages.lookup,
                    what: "redelivery lookup failed; messages go back to the stream unsent until it answers",
                    error: &err,
                    message_id: Some(&pending.command.message_id),
                });
                let delay = taxonomy::classify_timeout()
                    .nak_delay_after(pending.deliveries)
                    .unwrap_or(taxonomy::TEMPORARY_NAK_DELAY);
                self.core.ledger.refuse(
                    pending.held,
                    pending.command.message_id,
                    pending.deliveries,
                    delay,
                );
            }
        }
    }

    /// Plan the message into segments and hand it to the ledger. `fresh`: the reference
    /// taken (and remembered) for it if it needed one.
    fn admit(
        &mut self,
        pending: Pending,
        correlated: Correlated,
        fresh: Option<u16>,
        ctx: &mut Context<Self>,
    ) {
        let Some(profile) = self.core.profile().cloned() else {
            self.metrics.naks.increment(1);
            pending.held.nak(Duration::ZERO);
            return;
        };
        let Pending {
            held,
            command,
            encoded,
            deliveries,
            priority,
        } = pending;
        let long = dispatch::needs_reference(&encoded, profile.ref_bits);
        let reference = match Core::reference_for(long, correlated.concat_ref, fresh) {
            RefChoice::None => None,
            RefChoice::Stored(reference) | RefChoice::Fresh(reference) => Some(reference),
            RefChoice::TakeNow => {
                let fresh = self
                    .core
                    .take_reference_now(crate::clock::now(), &command.to);
                // Remembered without waiting: the rows will say which parts went out.
                self.deps.throttle.do_send(RememberConcatRef {
                    operator_id: self.key.operator_id.clone(),
                    message_id: command.message_id.clone(),
                    reference: fresh,
                });
                self.carry_out_references(ctx);
                Some(fresh)
            }
        };
        // Cut with the size its reference was taken at (16-bit once widened).
        let profile = self.core.planning_profile(reference).unwrap_or(profile);
        let plan =
            match dispatch::plan_submits(&command, &encoded, &profile, reference.unwrap_or(0)) {
                Ok(plan) => plan,
                Err(rejection) => {
                    self.dead_letter(held, rejection, deliveries);
                    return;
                }
            };
        emit(SubmitPlanned {
            plan: &plan,
            message_id: &command.message_id,
            operator_id: command.operator_id.as_str(),
        });
        if deliveries > 1 && !correlated.segments.is_empty() {
            tracing::info!(
                messageId = %command.message_id,
                recorded = correlated.segments.len(),
                segments = plan.bodies.len(),
                "redelivered message: sending only the segments without a row"
            );
        }
        self.core.ledger.admit(Admission {
            handle: held,
            message_id: command.message_id,
            deliveries,
            priority: ledger_priority(priority),
            concat_ref: reference,
            segments: plan.bodies,
            already_recorded: correlated.segments,
        });
        self.drive(ctx);
    }

    /// Dead-letter a command that will never be sent, then ACK.
    pub(super) fn dead_letter(&mut self, held: Held, rejection: Rejection, deliveries: u64) {
        let letter = crate::events::DispatchDeadLetter::new(
            rejection,
            held.subject.clone(),
            held.stream_sequence,
            deliveries,
            crate::events::now_rfc3339(),
        );
        self.publish_then_ack(held, Some(letter), None);
    }

    /// Keep AckWait from expiring for everything held (in-progress acks).
    pub(super) fn progress_acks(&self) {
        let ackers: Vec<Arc<jetstream::message::Acker>> = self
            .core
            .ledger
            .handles()
            .map(|h| h.acker.clone())
            .collect();
        if ackers.is_empty() {
            return;
        }
        actix::spawn(async move {
            for acker in ackers {
                let _ = acker.ack_with(AckKind::Progress).await;
            }
        });
    }
}

impl Handler<LookedUp> for BindActor {
    type Result = ();

    fn handle(&mut self, done: LookedUp, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        self.on_looked_up(done, ctx);
    }
}
