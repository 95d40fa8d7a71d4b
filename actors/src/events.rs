//! The NATS contracts this service writes live in the pure crate
//! (`smpp_connector::events`); this adds the clock.

pub use smpp_connector::events::*;

/// RFC 3339 UTC with milliseconds, as every `at` / `receivedAt` field.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
