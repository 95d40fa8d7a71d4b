//! Cluster: binds across pods, decided without a clock or a KV store.
//!
//! - [`ownership`]: one owner per bind (fair share, claims, orphans and double claims);
//! - [`failover`]: primary/backup failover of one bind (when to bind the backup,
//!   FAILBACK);
//! - [`chores`]: what the pod running an operator's bind 0 does for the operator as a
//!   whole (orphaned MO indexes, commands pinned to binds it does not have).

pub mod chores;
pub mod failover;
pub mod ownership;
