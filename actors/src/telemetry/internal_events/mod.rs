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

mod backend;
mod bind;
mod cluster;
mod intake;
#[cfg(test)]
mod tests;

pub use super::backends::Backend;
pub use backend::{
    BackendDown, BackendFailed, BackendFailedInOutage, BackendRecovered, BackendUp,
    InboundNotPublished, InboundPublished, InboundPublishing,
};
pub use bind::{
    AttemptCounted, BindAttemptFailed, DeadLettered, Degraded, FramingFailed, MalformedPdu,
    RowRefused, RowRequested, RowWriteFailed, Settled, StateChanged, SubmitAnswered, SubmitFailed,
    UnexpectedPdu, WentDown,
};
pub use cluster::{BindCrashed, Failover, Reconciled, SharedActorEnded};
pub use intake::{ConcatRefFallback, MoPartsLost, SubmitPlanned};

use super::bind_metrics::BindMetrics;

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
