//! smpp-connector's pure logic: everything that can be decided without a socket, a clock
//! or a database.
//!
//! Module map:
//! - [`pdu`]: SMPP 3.4 framing and PDUs over `smpp34`.
//! - [`session`]: the bind state machine (sans-IO: `handle_*` in, `poll_*` out).
//! - [`window`]: in-flight window by sequence number, deadlines, adaptive size.
//! - [`backoff`]: reconnect schedule.
//! - [`bind_core`]: one bind's state and decisions (sessions, ledger, flow, intake, references, life cycle), sans-IO.
//! - [`flow`]: how much one bound bind may submit and when (window, TPS tokens, HALF_CLOSED_TX, DRAINING).
//! - [`ledger`]: messages → segments → outcome of one bind (sans-IO), what to ACK or NAK.
//! - [`log_budget`]: how many lines a per-message event may log before it is only counted.
//! - [`taxonomy`]: ESME status / failure → what to do with the message and the bind.
//! - [`encoding`]: GSM7 / UCS2, segmentation, UDH / SAR / payload, fingerprint.
//! - [`dlr`]: delivery receipt parsing, message-id normalisation.
//! - [`inbound`]: deliver_sm handling rules: how long a receipt waits for its row.
//! - [`mo`]: mobile-originated messages: text by data_coding, UDH stripped.
//! - [`events`]: the NATS payloads this service publishes (one struct per schema), how a receipt or a refusal becomes a `DlrInboundEvent`.
//! - [`throttle`]: TPS sliding-window math, the fail-open local limiter, Redis key names.
//! - [`config`]: typed configuration and its validation.
//! - [`settings`]: what every configuration part shares: variable names, `ConfigError`, `Secret`, `TlsFiles`.
//! - [`identity`]: `OperatorId`, `Direction`, `Lane`, `BindKey`.
//! - [`backends`]: how NATS, Redis and PostgreSQL are reached: server lists, topology, TLS modes (from their URLs and TLS variables).
//! - [`credentials`]: the OMS credentials contract and the sessions and submit profile it makes.
//! - [`ownership`]: one owner per bind across pods (fair share, claims, orphans and double claims).
//! - [`failover`]: primary/backup failover of one bind (when to bind the backup, FAILBACK).
//!
//! Invariants:
//! - This crate never depends on actix, tokio runtimes, fred, tokio-postgres or async-nats;
//!   it reads no environment variable, no file and no clock. Time comes in as arguments.
//! - Nothing here logs. Errors are values that carry fields, not formatted strings.
#![forbid(unsafe_code)]

pub mod backends;
pub mod backoff;
pub mod bind_core;
pub mod concat_refs;
pub mod config;
pub mod credentials;
pub mod dispatch;
pub mod dlr;
pub mod encoding;
pub mod events;
pub mod failover;
pub mod flow;
pub mod identity;
pub mod inbound;
pub mod intake_order;
pub mod ledger;
pub mod log_budget;
pub mod mo;
pub mod ownership;
pub mod pdu;
pub mod reassembly;
pub mod session;
pub mod settings;
pub mod taxonomy;
pub mod throttle;
pub mod window;
