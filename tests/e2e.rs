//! Whole-service tests: the `smpp-connector` binary against real NATS (JetStream),
//! PostgreSQL and Redis started by the project's scripts, the project's SMSC simulator
//! and the OMS stub. Timers are scaled down; tests assert sequences, not wall clock.
//! Every wait is bounded.

mod support;

mod admin;
mod backends;
mod bind;
mod chaos;
mod cluster;
mod correlation_store;
mod dispatch;
mod faults;
mod flow_control;
mod long_messages;
mod mo;
mod observability;
mod outages;
mod receipts;
mod recovery;
mod robustness;
mod tls;
mod traces;
