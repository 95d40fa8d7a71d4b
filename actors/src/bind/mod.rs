//! One bind: `BindActor` (session state machine driver, in-flight dispatches, intake),
//! its socket ([`io`]) and its receipt pipeline ([`receipt`]).

pub mod actor;
pub mod io;
pub mod receipt;

pub use actor::{BindActor, BindDeps, BindStatus, GetBindStatus, RestartBind, ShutdownBind};
