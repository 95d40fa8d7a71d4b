//! Backends: one-off failures, outages (counted, marked, warned once) and recoveries;
//! the inbound publishing outages.

// Events live for one `emit`, often borrowing an error as `&dyn Display`: no `Debug`.
#![allow(missing_debug_implementations)]

use std::fmt::Display;

use smpp_connector::log_budget::Outage;

use super::{Backend, InternalEvent};
use crate::telemetry::metric;

/// A call to a backend failed and what depends on it says so at WARN: `what` is the
/// whole line ("pull failed", "smpp.bind.degraded not published"…).
pub struct BackendFailed<'a> {
    pub backend: Backend,
    pub what: &'static str,
    pub error: &'a dyn Display,
}

impl InternalEvent for BackendFailed<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        tracing::warn!(error = %self.error, "{}", self.what);
    }
}

/// A backend call failed, one of many alike during an outage: counted each time,
/// warned once when the outage starts (`outage` says), the rest at debug.
pub struct BackendFailedInOutage<'a> {
    pub backend: Backend,
    pub outage: &'a Outage,
    /// The WARN line when the outage starts.
    pub what: &'static str,
    pub error: &'a dyn Display,
    /// The messageId the failure concerns, if one.
    pub message_id: Option<&'a str>,
}

impl InternalEvent for BackendFailedInOutage<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        let message_id = self.message_id.unwrap_or("");
        if self.outage.failed() {
            tracing::warn!(messageId = message_id, error = %self.error, "{}", self.what);
        } else {
            // Not the WARN's words: a search for the outage's line finds one per outage.
            tracing::debug!(messageId = message_id, error = %self.error, outage = self.what, "still failing");
        }
    }
}

/// A backend call worked: `what` at INFO if it ends an outage.
pub struct BackendRecovered<'a> {
    pub outage: &'a Outage,
    pub what: &'static str,
}

impl InternalEvent for BackendRecovered<'_> {
    fn emit(self) {
        if self.outage.worked() {
            tracing::info!("{}", self.what);
        }
    }
}

/// A receipt or an MO message not published to NATS: the SMSC is answered
/// ESME_RX_T_APPN and delivers it again. Counted each time; warned once per outage of
/// that kind of publishing, the rest at debug.
pub struct InboundNotPublished<'a> {
    pub publishing: &'a InboundPublishing,
    pub error: &'a dyn Display,
    pub operator_id: &'a str,
}

impl InternalEvent for InboundNotPublished<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => Backend::Nats.name()).increment(1);
        let what = self.publishing.what;
        if self.publishing.outage.failed() {
            tracing::warn!(what, error = %self.error, "{what} failing; the SMSC is answered ESME_RX_T_APPN and redelivers");
        }
        tracing::debug!(error = %self.error, operatorId = self.operator_id, "{what}: not published; SMSC will redeliver");
    }
}

/// A receipt or an MO message published: INFO if its kind of publishing was failing.
pub struct InboundPublished<'a>(pub &'a InboundPublishing);

impl InternalEvent for InboundPublished<'_> {
    fn emit(self) {
        if self.0.outage.worked() {
            tracing::info!(what = self.0.what, "{} works again", self.0.what);
        }
    }
}

/// One kind of inbound publishing (receipts, MO) and its outage, shared by every bind.
#[derive(Debug)]
pub struct InboundPublishing {
    what: &'static str,
    outage: Outage,
}

impl InboundPublishing {
    pub const fn new(what: &'static str) -> Self {
        InboundPublishing {
            what,
            outage: Outage::new(),
        }
    }
}

/// A shared backend operation failed, one of many alike (correlation inserts, receipt
/// lookups, Redis calls, the NATS connection): counted each time, the backend marked
/// down (`smpp_connector_backend_up`, `/ready`), warned once when the outage starts
/// (`starts`), the rest at debug as "still failing" (with the outage named).
pub struct BackendDown<'a> {
    pub backend: Backend,
    /// This failure starts an outage (the caller's outage state said so).
    pub starts: bool,
    /// The WARN line when the outage starts; the debug line otherwise.
    pub what: &'static str,
    pub error: &'a dyn Display,
    /// Rows or requests the failure concerns, when it is a batch.
    pub batch: Option<usize>,
}

impl InternalEvent for BackendDown<'_> {
    fn emit(self) {
        metrics::counter!(metric::BACKEND_ERRORS, "backend" => self.backend.name()).increment(1);
        crate::telemetry::backends::failed(self.backend);
        let batch = self.batch.unwrap_or(0);
        if self.starts {
            tracing::warn!(error = %self.error, batch, "{}", self.what);
        } else {
            // Not the WARN's words: a search for the outage's line finds one per outage.
            tracing::debug!(error = %self.error, batch, outage = self.what, "still failing");
        }
    }
}

/// A shared backend operation worked: the backend is up, and `what` at INFO when this
/// ends an outage (`ends`), with how long it lasted (`down_for`, or else since the
/// backend was marked down).
pub struct BackendUp {
    pub backend: Backend,
    pub ends: bool,
    pub what: &'static str,
    pub down_for: Option<std::time::Duration>,
}

impl InternalEvent for BackendUp {
    fn emit(self) {
        let marked_down_for = crate::telemetry::backends::answered(self.backend);
        if self.ends {
            match self.down_for.or(marked_down_for) {
                Some(down) => tracing::info!(downForMs = down.as_millis() as u64, "{}", self.what),
                None => tracing::info!("{}", self.what),
            }
        }
    }
}
