//! One log line per outage, not per message: a failing operation shared by many tasks
//! (publishing receipts, publishing MO) says so once at WARN when it starts failing and once
//! at INFO when it works again; the failures in between are at debug (and counted in the
//! metrics by their callers).

use std::sync::atomic::{AtomicBool, Ordering};

/// The state of one kind of operation.
#[derive(Debug)]
pub struct Outage {
    what: &'static str,
    failing: AtomicBool,
}

impl Outage {
    pub const fn new(what: &'static str) -> Self {
        Outage {
            what,
            failing: AtomicBool::new(false),
        }
    }

    /// It failed: a WARN if it was working until now.
    pub fn failed(&self, error: &dyn std::fmt::Display) {
        if self.failing.swap(true, Ordering::Relaxed) {
            tracing::debug!(what = self.what, error = %error, "still failing");
        } else {
            tracing::warn!(what = self.what, error = %error, "{} failing; the SMSC is answered ESME_RX_T_APPN and redelivers", self.what);
        }
    }

    /// It worked: an INFO if it was failing.
    pub fn worked(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(what = self.what, "{} works again", self.what);
        }
    }
}
