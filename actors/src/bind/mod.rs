//! One bind: [`actor::BindActor`], the thin driver around the pure
//! `smpp_connector::bind_core::BindCore`, which decides. Files in the order a dispatch and
//! a receipt cross them, each importing only those before it:
//!
//! - [`io`], `message`, `metrics`, `pull_mux`, `deps`: leaves — the socket and its
//!   inbound gate, what the bind holds of a NATS message, metric handles, the process's
//!   pull inbox, what every bind shares;
//! - `actor`: the actor's state (the core, the connection's writers and timer), `drive`,
//!   life cycle, admin messages;
//! - `link`: connect, sessions, the pump, session close and failure;
//! - `pull` → `intake`: pulls, then screening, lookup, references and admission;
//! - `submit` → `settle`: writing segments, outcomes, timer; rows written, messages
//!   settled, dead letters;
//! - `flow`: the flow controller's decisions and the TPS budget carried out;
//! - [`receipt`] → `mo`: deliver_sm handled (receipts correlated, MO reassembled);
//! - `unserved`: the sweep of commands pinned to binds the operator does not have.

pub mod actor;
mod deliver;
mod deps;
mod failure;
mod flow;
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
