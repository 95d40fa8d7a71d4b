//! smpp-connector service: actors, adapters and HTTP around the pure logic of the
//! `smpp-connector` crate.
//!
//! Module map (mirroring the pure crate's concerns):
//! - [`app`]: wiring and the shutdown sequence.
//! - [`supervisor`]: `Supervisor`: each operator's `bindCount` from OMS, the lane
//!   consumers, one `BindActor` per bind under its own `actix::Supervisor`, bind states
//!   for `/ready`, `/admin` and health events, admin control, primary/backup failover,
//!   the cluster chores of the binds 0 it runs.
//! - [`bind`]: `BindActor`, the thin driver of one bind around the pure
//!   `smpp_connector::bind_core::BindCore` (which decides).
//! - [`inbound`]: `deliver_sm` handled (receipts correlated and published, MO parts
//!   stored, reassembled and published), on `InboundDeps`.
//! - [`cluster`]: one owner per bind across pods (`ownership`, NATS KV or in memory), the
//!   sweep of commands pinned to missing binds (`unserved`).
//! - [`readiness`]: what `/ready` reads.
//! - [`correlation`]: `CorrelationActor` (PostgreSQL, batched: rows, receipts, redelivery
//!   lookups, the window reload) and migrations; `MemoryStore`, the same in memory.
//! - [`throttle`]: `ThrottleActor`, the Redis actor (TPS sliding window, sequence numbers,
//!   concatenation references, the MO parts store; fail-open local limiter) over a
//!   `ThrottleStore` (`RedisStore`, or `MemoryRedis` in tests).
//! - [`health`]: `HealthPublisherActor` (`operator.health`).
//! - [`nats`]: streams, consumers, JetStream publishing.
//! - [`oms`]: credentials from operator-management-service (`OmsClient`;
//!   `MemoryCredentials` in tests).
//! - [`tls`]: TLS to SMSCs, NATS, Redis and PostgreSQL (rustls), certificate errors.
//! - [`http`]: probes, metrics, admin API.
//! - [`events`]: the NATS payloads we write.
//! - [`telemetry`]: logs, metric names, internal events (log + count + rate limit in one
//!   place), actor health, traces, backend state.
//! - [`cli`]: `send`, `admin` subcommands.
//! - [`clock`]: the monotonic clock a bind decides with (tokio's: paused in tests).
//!
//! No module imports one that imports it back (`scripts/check-layering`).
#![forbid(unsafe_code)]

pub mod app;
pub mod bind;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod correlation;
pub mod events;
pub mod health;
pub mod http;
pub mod inbound;
pub mod nats;
pub mod oms;
pub mod readiness;
pub mod supervisor;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod throttle;
pub mod tls;
