//! smpp-connector's pure logic: everything that can be decided without a socket, a clock
//! or a database.
//!
//! Module map, by concern:
//! - [`protocol`]: SMPP 3.4 — [`protocol::pdu`] (framing and PDUs over `smpp34`),
//!   [`protocol::session`] (the session state machine: `handle_*` in, `poll_*` out),
//!   [`protocol::window`] (in flight by sequence number, adaptive size),
//!   [`protocol::taxonomy`] (ESME status / failure → what to do).
//! - [`dispatch`]: commands on their way out — validation and planning, then
//!   [`dispatch::intake_order`], [`dispatch::concat_refs`], [`dispatch::ledger`],
//!   [`dispatch::flow`], [`dispatch::throttle`].
//! - [`inbound`]: `deliver_sm` — how long a receipt waits, [`inbound::dlr`],
//!   [`inbound::mo`], [`inbound::reassembly`].
//! - [`cluster`]: [`cluster::ownership`] (one owner per bind across pods),
//!   [`cluster::failover`] (primary/backup).
//! - [`bind_core`]: one bind's state and decisions, composing the above (sessions, ledger,
//!   flow, intake, references, life cycle), sans-IO: `handle_*(…, now)` in, `poll_*()` out.
//! - [`encoding`]: GSM7 / UCS2, segmentation, UDH / SAR / payload, fingerprint (dispatch
//!   and MO share it).
//! - [`backoff`]: the reconnect schedule.
//! - [`events`]: the NATS payloads this service publishes (one struct per schema).
//! - [`log_budget`]: how many lines a per-message event may log; one "once per outage".
//! - [`config`], [`settings`], [`identity`], [`backends`], [`credentials`]: typed
//!   configuration, what its parts share, `OperatorId` / `Direction` / `Lane` / `BindKey`,
//!   how NATS, Redis and PostgreSQL are reached, the OMS credentials contract.
//!
//! Invariants:
//! - This crate never depends on actix, tokio runtimes, fred, tokio-postgres or async-nats;
//!   it reads no environment variable, no file and no clock. Time comes in as arguments.
//! - Nothing here logs. Errors are values that carry fields, not formatted strings.
#![forbid(unsafe_code)]

pub mod backends;
pub mod backoff;
pub mod bind_core;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod dispatch;
pub mod encoding;
pub mod events;
pub mod identity;
pub mod inbound;
pub mod log_budget;
pub mod protocol;
pub mod settings;
