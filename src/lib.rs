//! smpp-connector's pure logic: everything that can be decided without a socket, a clock
//! or a database.
//!
//! Module map:
//! - [`pdu`]: SMPP 3.4 framing and PDUs over `smpp34`.
//!
//! Invariants:
//! - This crate never depends on actix, tokio runtimes, fred, tokio-postgres or async-nats;
//!   it reads no environment variable, no file and no clock. Time comes in as arguments.
//! - Nothing here logs. Errors are values that carry fields, not formatted strings.
#![forbid(unsafe_code)]

pub mod pdu;
