//! One bind: `BindActor` (connect and link, session pump, timer, unbind), its intake from
//! JetStream ([`intake`], pulled by [`pull`]), the settling of what its ledger decides ([`settle`]), its
//! socket ([`io`]), its receipt pipeline ([`receipt`]) and its metric handles.

pub mod actor;
mod failure;
mod flow;
mod intake;
pub mod io;
mod link;
mod metrics;
mod mo;
mod pull;
mod pull_mux;
pub mod receipt;
mod settle;
mod submit;
mod unserved;

pub use actor::{
    AbortBind, BindActor, BindDeps, BindStatus, GetBindStatus, PauseIntake, RestartBind,
    ShutdownBind,
};
pub use intake::priority as lane_priority;
pub(crate) use intake::{Lanes, PullSlot};
pub use pull_mux::PullMux;
