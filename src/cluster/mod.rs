//! Cluster: binds across pods, decided without a clock or a KV store.
//!
//! - [`ownership`]: one owner per bind (fair share, claims, orphans and double claims);
//! - [`failover`]: primary/backup failover of one bind (when to bind the backup,
//!   FAILBACK).

pub mod failover;
pub mod ownership;
