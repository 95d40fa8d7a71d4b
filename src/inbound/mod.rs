//! Inbound: what comes from the SMSC unasked (`deliver_sm`).
//!
//! - [`dlr`]: delivery receipt parsing, message-id normalisation and the digest of
//!   over-long ids;
//! - [`mo`]: mobile-originated messages: text by data_coding, UDH stripped;
//! - [`reassembly`]: concatenated MO parts (keys, stored parts, completion).
//!
//! This module itself: the rules the bind driver carries out — how long a receipt waits
//! for the row it may have overtaken, and which `deliver_sm_resp` status a handling
//! result earns.
//!
//! A receipt that finds no row waits for one, without asking the database again: the
//! correlation actor wakes it when a row with its id is written in this process. It stops
//! waiting at the first of:
//! - its row written (matched);
//! - the end of the grace (`RECEIPT_UNMATCHED_GRACE_MS`: a row another bind or pod may be
//!   writing) once nothing its own bind had unsettled when it arrived is still unsettled
//!   (it cannot be a submit of this bind still unanswered);
//! - the same grace while the SMSC waits for our answers (the bind stopped reading because
//!   its inbound window is full: holding receipts then would stall the whole session,
//!   submit_sm_resp and enquire_link_resp included);
//! - `RECEIPT_CORRELATION_WAIT_MS` after it arrived.
//!
//! It then asks once more (a row another pod wrote meanwhile) and is published, matched
//! or not. Two queries for a receipt that has no row, where it was one query per 50 ms –
//! 1 s step for up to 30 s.
//!
//! An MO part is answered ESME_ROK only once it is stored (and, if it completed its
//! message, the message published): [`PartStored`].

pub mod dlr;
pub mod mo;
pub mod reassembly;

use std::time::{Duration, Instant};

use crate::protocol::pdu::CommandStatus;

/// What a waiting receipt needs to know of the bind it came in on (published by the bind
/// after every input, read by its receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindProgress {
    /// When the oldest of the bind's unsettled submits was written: one in flight, or one
    /// accepted whose row is being written again after a database error. `None`: nothing
    /// unsettled.
    pub oldest_unsettled: Option<Instant>,
    /// Sessions of the bind that stopped reading because their inbound window is full.
    pub inbound_blocked: u32,
}

impl BindProgress {
    /// True when a receipt that arrived at `arrival` no longer waits for a submit of its
    /// bind: everything unsettled when it arrived is settled since, or the SMSC is waiting
    /// for our answers.
    pub fn releases(&self, arrival: Instant) -> bool {
        self.inbound_blocked > 0 || self.oldest_unsettled.is_none_or(|since| since > arrival)
    }

    /// The oldest of two unsettled times.
    pub fn oldest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The deadlines of one receipt's wait for its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptWait {
    /// It waits at least until here (rows of other binds and pods).
    pub grace_until: Instant,
    /// It waits at most until here.
    pub until: Instant,
}

impl ReceiptWait {
    /// The wait of a receipt read at `arrival`.
    pub fn new(arrival: Instant, grace: Duration, max: Duration) -> Self {
        ReceiptWait {
            grace_until: arrival + grace.min(max),
            until: arrival + max,
        }
    }

    /// True when a receipt that arrived at `arrival` stops waiting at `now`, given its
    /// bind's progress.
    pub fn is_over(&self, arrival: Instant, now: Instant, progress: &BindProgress) -> bool {
        now >= self.until || (now >= self.grace_until && progress.releases(arrival))
    }
}

/// What became of one MO part as Redis stored it (a concatenated message's part), and
/// so what the SMSC is answered and how the part is counted
/// (`smpp_concat_parts_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartStored {
    /// Stored; its message waits for more parts.
    Waiting,
    /// A part already stored (the SMSC sent it again).
    Repeat,
    /// Its message is being published by another task: the SMSC sends the part again.
    Busy,
    /// Stored, and it completed its message, which was published (`true`) or not.
    Completed { published: bool },
    /// Redis could not store it (an outage): the SMSC sends it again.
    NotStored,
}

impl PartStored {
    /// The deliver_sm_resp status: ESME_ROK only once the part is stored (or known) and,
    /// when it completed its message, the message is published; otherwise
    /// ESME_RX_T_APPN, and the SMSC delivers the part again.
    pub fn status(self) -> CommandStatus {
        match self {
            PartStored::Waiting
            | PartStored::Repeat
            | PartStored::Completed { published: true } => CommandStatus::ESME_ROK,
            PartStored::Busy
            | PartStored::Completed { published: false }
            | PartStored::NotStored => CommandStatus::ESME_RX_T_APPN,
        }
    }

    /// Its `result` label.
    pub fn label(self) -> &'static str {
        match self {
            PartStored::Waiting | PartStored::Completed { .. } => "stored",
            PartStored::Repeat => "repeat",
            PartStored::Busy => "busy",
            PartStored::NotStored => "not_stored",
        }
    }
}

/// The deliver_sm_resp status of a single-part MO: ESME_ROK once its event is published
/// (acknowledged by JetStream), ESME_RX_T_APPN otherwise.
pub fn published_status(published: bool) -> CommandStatus {
    if published {
        CommandStatus::ESME_ROK
    } else {
        CommandStatus::ESME_RX_T_APPN
    }
}

#[cfg(test)]
mod tests {
    // A test picks its instants anywhere; the code under test never reads the clock.
    #![allow(clippy::disallowed_methods)]
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_receipt_waits_the_grace_then_for_what_its_bind_had_unsettled() {
        let t0 = Instant::now();
        let wait = ReceiptWait::new(t0, 2 * S, 30 * S);
        let idle = BindProgress::default();
        assert!(!wait.is_over(t0, t0 + S, &idle), "the grace first");
        assert!(wait.is_over(t0, t0 + 2 * S, &idle));
        // A submit written before it arrived is still unanswered: it may be its own.
        let busy = BindProgress {
            oldest_unsettled: Some(t0 - S),
            inbound_blocked: 0,
        };
        assert!(!wait.is_over(t0, t0 + 5 * S, &busy));
        assert!(
            wait.is_over(t0, t0 + 30 * S, &busy),
            "never past the maximum"
        );
        // Everything unsettled now was written after it arrived: not its own.
        let later = BindProgress {
            oldest_unsettled: Some(t0 + S),
            inbound_blocked: 0,
        };
        assert!(wait.is_over(t0, t0 + 2 * S, &later));
    }

    #[test]
    fn a_full_inbound_window_ends_the_wait_after_the_grace() {
        let t0 = Instant::now();
        let wait = ReceiptWait::new(t0, 2 * S, 30 * S);
        let blocked = BindProgress {
            oldest_unsettled: Some(t0 - S),
            inbound_blocked: 1,
        };
        assert!(!wait.is_over(t0, t0 + S, &blocked));
        assert!(wait.is_over(t0, t0 + 2 * S, &blocked));
    }

    #[test]
    fn an_mo_part_is_acknowledged_only_once_it_is_safe() {
        for (stored, status, label) in [
            (PartStored::Waiting, CommandStatus::ESME_ROK, "stored"),
            (PartStored::Repeat, CommandStatus::ESME_ROK, "repeat"),
            (PartStored::Busy, CommandStatus::ESME_RX_T_APPN, "busy"),
            (
                PartStored::Completed { published: true },
                CommandStatus::ESME_ROK,
                "stored",
            ),
            (
                PartStored::Completed { published: false },
                CommandStatus::ESME_RX_T_APPN,
                "stored",
            ),
            (
                PartStored::NotStored,
                CommandStatus::ESME_RX_T_APPN,
                "not_stored",
            ),
        ] {
            assert_eq!(stored.status(), status, "{stored:?}");
            assert_eq!(stored.label(), label, "{stored:?}");
        }
        assert_eq!(published_status(true), CommandStatus::ESME_ROK);
        assert_eq!(published_status(false), CommandStatus::ESME_RX_T_APPN);
    }

    #[test]
    fn a_grace_longer_than_the_maximum_is_cut_to_it() {
        let t0 = Instant::now();
        let wait = ReceiptWait::new(t0, 10 * S, 3 * S);
        assert_eq!(wait.grace_until, t0 + 3 * S);
        assert_eq!(
            BindProgress::oldest(Some(t0 + S), Some(t0)),
            Some(t0),
            "the oldest"
        );
        assert_eq!(BindProgress::oldest(None, Some(t0)), Some(t0));
    }
}
