//! What the bind holds of a NATS message: [`Held`] settles it (ACK, NAK, in progress)
//! and carries what its dead letter, events and trace need; [`Pending`] is a message on
//! its way to the ledger, [`Looked`] one whose redelivery lookup answered. Also the bind's
//! pull slots ([`Lanes`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind};
use smpp_connector::bind_core::Incoming;
use smpp_connector::config::Lane;
use smpp_connector::dispatch::{self, DispatchCommand};
use smpp_connector::encoding::{Encoded, RefBits};

use crate::correlation::{Correlated, CorrelationError};
use crate::telemetry::traces::DispatchTrace;

/// What settles one NATS message, and what its dead letter or REJECTED event needs.
pub(crate) struct Held {
    pub acker: Arc<jetstream::message::Acker>,
    pub subject: String,
    pub stream_sequence: u64,
    pub fetched_at: Instant,
    /// When JetStream stored the command (Unix nanoseconds, the NATS server's clock).
    pub published_unix_nanos: i128,
    /// The trace of this delivery (`dispatch` span, child of the command's `traceparent`).
    pub trace: DispatchTrace,
    /// Pull slot it came from (0 = P0 … 3 = P3, 4 = the pinned consumer).
    pub priority: usize,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("stream_sequence", &self.stream_sequence)
            .finish_non_exhaustive()
    }
}

impl Held {
    /// How long ago JetStream stored the command; `None` when the clocks disagree
    /// (the pod's clock behind the NATS server's) or the timestamp was missing.
    pub fn age(&self) -> Option<Duration> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos() as i128;
        let nanos = now - self.published_unix_nanos;
        (self.published_unix_nanos > 0 && nanos >= 0).then(|| Duration::from_nanos(nanos as u64))
    }

    pub fn ack(self) {
        self.trace.end("ack");
        actix::spawn(async move {
            let _ = self.acker.ack().await;
        });
    }

    pub fn nak(self, delay: Duration) {
        self.trace.end("nak");
        nak(self.acker, delay);
    }
}

/// NAK (`delay` zero: redeliver at once).
pub(crate) fn nak(acker: Arc<jetstream::message::Acker>, delay: Duration) {
    let delay = (!delay.is_zero()).then_some(delay);
    actix::spawn(async move {
        let _ = acker.ack_with(AckKind::Nak(delay)).await;
    });
}

/// A redelivered message waiting for its lookup.
pub(crate) struct Pending {
    pub held: Held,
    pub command: DispatchCommand,
    pub encoded: Encoded,
    pub deliveries: u64,
    pub priority: usize,
}

/// The redelivery lookup answered.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct LookedUp {
    /// Its place in the intake order.
    pub order: u64,
    pub pending: Pending,
    pub result: Result<Correlated, CorrelationError>,
}

/// A message with what is known of its rows (its lookup's answer, or none needed).
pub(crate) struct Looked {
    pub pending: Pending,
    pub result: Result<Correlated, CorrelationError>,
}

impl Incoming for Looked {
    fn reference_need(&self, bits: RefBits) -> Option<(bool, Option<u16>)> {
        let correlated = self.result.as_ref().ok()?;
        Some((
            dispatch::needs_reference(&self.pending.encoded, bits),
            correlated.concat_ref,
        ))
    }

    fn message_id(&self) -> &str {
        &self.pending.command.message_id
    }

    fn destination(&self) -> &str {
        &self.pending.command.to
    }
}

/// A lane's pull slot (P0 = 0 … P3 = 3), which is also its ledger priority.
pub fn priority(lane: Lane) -> usize {
    match lane {
        Lane::P0 => 0,
        Lane::P1 => 1,
        Lane::P2 => 2,
        Lane::P3 => 3,
    }
}

pub(crate) use smpp_connector::bind_core::{PINNED_SLOT, ledger_priority};

/// A pull slot and its consumer. The consumer is shared: a `PullConsumer` carries its
/// whole `consumer::Info`, and a copy per lane and bind cost about 10 KiB per idle bind.
pub(crate) type PullSlot = (usize, Arc<PullConsumer>);
/// A bind's pull slots, in pull order.
pub(crate) type Lanes = Arc<[PullSlot]>;

/// The bind's pull order: the operator's lanes by priority with the pinned consumer
/// before P2 (only this bind can take its pinned messages; P0 and P1 still come first).
pub(crate) fn with_pinned(lanes: &[PullSlot], pinned: &Arc<PullConsumer>) -> Lanes {
    let mut ordered: Vec<PullSlot> = Vec::with_capacity(lanes.len() + 1);
    let mut placed = false;
    for (slot, consumer) in lanes {
        if !placed && *slot >= 2 {
            ordered.push((PINNED_SLOT, pinned.clone()));
            placed = true;
        }
        ordered.push((*slot, consumer.clone()));
    }
    if !placed {
        ordered.push((PINNED_SLOT, pinned.clone()));
    }
    ordered.into()
}
