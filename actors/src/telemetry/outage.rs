//! One log line per outage, not per message: a failing operation shared by many tasks
//! (publishing receipts, publishing MO) says so once at WARN when it starts failing and once
//! at INFO when it works again; the failures in between are at debug (and counted in the
//! metrics by their callers).

/// The state of one kind of operation: [`smpp_connector::log_budget::Outage`] (the one
/// "once per outage" mechanism) with its name and its two log lines.
#[derive(Debug)]
pub struct Outage {
    what: &'static str,
    state: smpp_connector::log_budget::Outage,
}

impl Outage {
    pub const fn new(what: &'static str) -> Self {
        Outage {
            what,
            state: smpp_connector::log_budget::Outage::new(),
        }
    }

    /// It failed: a WARN if it was working until now.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        if self.state.failed() {
            tracing::warn!(what = self.what, error = %error, "{} failing; the SMSC is answered ESME_RX_T_APPN and redelivers", self.what);
        } else {
            tracing::debug!(what = self.what, error = %error, "still failing");
        }
    }

    /// It worked: an INFO if it was failing.
    pub fn worked(&self) {
        if self.state.worked() {
            tracing::info!(what = self.what, "{} works again", self.what);
        }
    }
}
