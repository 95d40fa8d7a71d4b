//! smpp-connector service: actors, adapters and HTTP around the pure logic of the
//! `smpp-connector` crate.
//!
//! Module map:
//! - [`app`]: wiring and the shutdown sequence.
//! - [`supervisor`]: `Supervisor`: each operator's `bindCount` from OMS, the lane
//!   consumers, one `BindActor` per bind under its own `actix::Supervisor`, bind states
//!   for `/ready`, `/admin` and health events, admin control, primary/backup failover.
//! - [`bind`]: `BindActor`, the thin driver of one bind around the pure
//!   `smpp_connector::bind_core::BindCore` (which decides): connect and link, the session
//!   pump, intake from JetStream, settling, receipts and MO (`deliver_sm`), its socket
//!   with the inbound gate, its metric handles.
//! - [`ownership`]: one owner per bind across pods (NATS KV, `MemoryKv` in tests), the
//!   reconciler.
//! - [`readiness`]: what `/ready` reads.
//! - [`correlation`]: `CorrelationActor` (PostgreSQL, batched: rows, receipts, redelivery
//!   lookups, the window reload) and migrations; `MemoryStore`, the same in memory.
//! - [`throttle`]: `ThrottleActor` (Redis: TPS sliding window, sequence numbers,
//!   concatenation references, the MO parts store; fail-open local limiter), through a
//!   `ThrottleStore`: `RedisStore`, or `MemoryRedis` in in-process tests.
//! - [`health`]: `HealthPublisherActor` (`operator.health`).
//! - [`nats`]: streams, consumers, JetStream publishing.
//! - [`oms`]: credentials from operator-management-service; `MemoryCredentials`.
//! - [`tls`]: TLS to SMSCs, NATS, Redis and PostgreSQL (rustls), certificate errors.
//! - [`http`]: probes, metrics, admin API.
//! - [`events`]: the NATS payloads we write.
//! - [`telemetry`]: logs, metric names, actor health, traces, backend state.
//! - [`cli`]: `send`, `admin` subcommands.
//!
//! No module imports one that imports it back (checked in the review of issue 20).
#![forbid(unsafe_code)]

pub mod app;
pub mod bind;
pub mod cli;
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
pub mod throttle;
pub mod tls;
