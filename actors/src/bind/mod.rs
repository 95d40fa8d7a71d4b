//! One bind: [`actor::BindActor`], the thin driver around the pure
//! `smpp_connector::bind_core::BindCore`, which decides (`handle_*` in, `poll_*` out).
//! Files in the order a dispatch and a receipt cross them, each importing only those
//! before it (`scripts/check-layering`):
//!
//! - [`io`], `message`, `pull_mux`, `deps`, `failure`: leaves — the socket and its
//!   inbound gate, what the bind holds of a NATS message (`Looked` is the core's
//!   `Incoming`), the process's pull inbox, what every bind shares, why a session ended;
//! - `actor`: the actor's state (the core, the connection's writers and timer), `drive`,
//!   state changes reported, life cycle, admin messages;
//! - `link`: connect, sessions, the pump (session events reported, handed back, their
//!   `FollowUp` carried out), going down;
//! - `pull` → `intake`: pulls, then screening, lookup, the core's reference work and
//!   admission;
//! - `submit` → `settle`: submits reported, the timer, housekeeping; rows written,
//!   messages settled, dead letters;
//! - `flow`: the core's `BindEvent`s carried out, the TPS budget, sequence blocks;
//! - `deliver`: a deliver_sm handed to [`crate::inbound`] and answered; the bind's own
//!   MO index scans.
//!
//! `in_process_tests` runs the actor in-process under a paused clock (its SMSC over a
//! duplex pipe, [`io::SmscConnector`]).
//!
//! What the bind tells about itself (log lines with their counters) is
//! [`crate::telemetry::internal_events`].

pub mod actor;
mod deliver;
mod deps;
mod failure;
mod flow;
#[cfg(test)]
mod in_process_tests;
mod intake;
pub mod io;
mod link;
mod message;
mod pull;
mod pull_mux;
mod settle;
mod submit;

pub use actor::{
    AbortBind, BindActor, BindCrashed, BindDeps, BindStateChanged, BindStatus, GetBindStatus,
    InjectPanic, PauseIntake, RestartBind, ShutdownBind,
};
pub use message::priority as lane_priority;
pub(crate) use message::{Lanes, PullSlot};
pub use pull_mux::PullMux;
