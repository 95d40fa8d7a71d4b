//! smpp-connector service: actors, adapters and HTTP around the pure logic of the
//! `smpp-connector` crate.
//!
//! Module map:
//! - [`app`]: wiring and the shutdown sequence.
//! - [`supervisor`]: `Supervisor`, one `BindActor` per bind, readiness.
//! - [`bind`]: `BindActor` (sessions, intake, in-flight dispatches) and receipts.
//! - [`correlation`]: `CorrelationActor` (PostgreSQL, batched) and migrations.
//! - [`health`]: `HealthPublisherActor` (`operator.health`).
//! - [`nats`]: streams, consumers, JetStream publishing.
//! - [`oms`]: credentials from operator-management-service.
//! - [`http`]: probes, metrics, admin API.
//! - [`events`]: the NATS payloads we write.
//! - [`throttle`]: `ThrottleActor` (Redis: TPS sliding window, sequence numbers,
//!   concatenation references; fail-open local limiter).
//! - [`telemetry`]: logs and metric names.
//! - [`cli`]: `send`, `admin` subcommands.
#![forbid(unsafe_code)]

pub mod app;
pub mod bind;
pub mod cli;
pub mod correlation;
pub mod events;
pub mod health;
pub mod http;
pub mod nats;
pub mod oms;
pub mod ownership;
pub mod supervisor;
pub mod telemetry;
pub mod throttle;
pub mod tls;
