//! The error taxonomy (SPEC §5, EP-SC-07): what an ESME status means for the message and
//! for the bind, decided once, here.
//!
//! [`classify_submit`] maps a `submit_sm_resp` status to a [`SubmitOutcome`];
//! [`classify_generic_nack`] and [`classify_timeout`] cover a `generic_nack` answer and a
//! missing response; [`classify_bind`] maps a bind response status to a [`BindFailure`].
//! Each outcome carries its action ([`SubmitOutcome::message_action`],
//! [`SubmitOutcome::bind_action`]) so callers never re-derive it from the raw status.
//!
//! This module must not act: it does not NAK, publish, count metrics or touch a window.
//! It only decides. Every status is still counted by the caller under its own name
//! (`smpp_response_status_total{esme_status}`).

use std::time::Duration;

use crate::protocol::pdu::CommandStatus;

/// NAK delay after ESME_RTHROTTLED.
pub const THROTTLED_NAK_DELAY: Duration = Duration::from_millis(500);
/// First NAK delay after a temporary failure; doubles with every redelivery.
pub const TEMPORARY_NAK_DELAY: Duration = Duration::from_secs(1);
/// Largest NAK delay of the temporary-failure backoff.
pub const MAX_NAK_DELAY: Duration = Duration::from_secs(30);
/// Consecutive ESME_RSUBMITFAIL responses that put a bind into HALF_CLOSED_TX.
pub const SUBMIT_FAILURES_FOR_HALF_CLOSE: u32 = 3;
/// Shortest DRAINING period after ESME_RMSGQFUL (also waits for in-flight = 0).
pub const DRAIN_MIN: Duration = Duration::from_secs(30);
/// DRAINING longer than this raises an alert.
pub const DRAIN_ALERT_AFTER: Duration = Duration::from_secs(300);

/// What a `submit_sm` outcome means. Each variant documents what happens to the message
/// and to the bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// ESME_ROK. Message: write the correlation row, ACK once it is committed.
    /// Bind: nothing; ends a streak of ESME_RSUBMITFAIL.
    Accepted,
    /// ESME_RTHROTTLED. Message: NAK after `nak_delay` (500 ms), never counted towards
    /// `maxDeliver` (the SMSC asks for less traffic; the message did not fail). Bind: halve the window
    /// ([`crate::protocol::window::Window::on_throttled`]); ≥ 3 within 60 s → `smpp.bind.degraded`.
    Throttled { nak_delay: Duration },
    /// A temporary failure: ESME_RSYSERR, ESME_RX_T_APPN, ESME_RUNKNOWNERR, statuses that
    /// make no sense for a submit, and every unknown or vendor status. Message: NAK with
    /// backoff; after `maxDeliver` → dead letter + REJECTED DLR event with `status`.
    /// Bind: nothing.
    Temporary {
        status: CommandStatus,
        nak_delay: Duration,
    },
    /// No `submit_sm_resp` within the submit timeout (the window slot is already free).
    /// Message: as [`SubmitOutcome::Temporary`]. Bind: nothing (enquire_link decides
    /// whether the session is dead).
    TimedOut { nak_delay: Duration },
    /// ESME_RMSGQFUL. Message: NAK after `nak_delay`. Bind: DRAINING — no new submits
    /// until in-flight = 0 and [`DRAIN_MIN`] passed; alert after [`DRAIN_ALERT_AFTER`].
    QueueFull { nak_delay: Duration },
    /// ESME_RSUBMITFAIL. Message: NAK after `nak_delay`. Bind: count it;
    /// [`SUBMIT_FAILURES_FOR_HALF_CLOSE`] in a row → HALF_CLOSED_TX (keeps receiving,
    /// probes one submit per minute, BOUND again on success). See [`SubmitFailureStreak`].
    SubmitFailed { nak_delay: Duration },
    /// The message itself is wrong (address, TON/NPI, length, esm_class, data coding,
    /// optional parameters, validity, application error …). Message: ACK + REJECTED DLR
    /// event with `status`; never retried. Bind: nothing.
    Permanent { status: CommandStatus },
    /// ESME_RINVBNDSTS or a `generic_nack`: the session is broken. Message: NAK after
    /// `nak_delay`. Bind: close and reconnect (with backoff).
    SessionFault {
        status: CommandStatus,
        nak_delay: Duration,
    },
}

/// What to do with the NATS message of a submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageAction {
    /// ACK once the correlation row is committed.
    Ack,
    /// ACK and publish a REJECTED DLR event with this status.
    AckAndReject { status: CommandStatus },
    /// NAK with this delay; dead letter + REJECTED DLR event after `maxDeliver`.
    Nak { delay: Duration },
}

/// What to do with the bind after a submit outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindAction {
    /// Nothing.
    Continue,
    /// Halve the window and count the throttle towards "degraded".
    HalveWindow,
    /// Count towards HALF_CLOSED_TX.
    CountSubmitFailure,
    /// Enter DRAINING.
    Drain,
    /// Close the session and reconnect.
    Reconnect,
}

impl SubmitOutcome {
    /// A short snake_case name, bounded, for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            SubmitOutcome::Accepted => "accepted",
            SubmitOutcome::Throttled { .. } => "throttled",
            SubmitOutcome::Temporary { .. } => "temporary",
            SubmitOutcome::TimedOut { .. } => "timed_out",
            SubmitOutcome::QueueFull { .. } => "queue_full",
            SubmitOutcome::SubmitFailed { .. } => "submit_failed",
            SubmitOutcome::Permanent { .. } => "permanent",
            SubmitOutcome::SessionFault { .. } => "session_fault",
        }
    }

    /// What happens to the message.
    pub fn message_action(&self) -> MessageAction {
        match *self {
            SubmitOutcome::Accepted => MessageAction::Ack,
            SubmitOutcome::Permanent { status } => MessageAction::AckAndReject { status },
            SubmitOutcome::Throttled { nak_delay }
            | SubmitOutcome::Temporary { nak_delay, .. }
            | SubmitOutcome::TimedOut { nak_delay }
            | SubmitOutcome::QueueFull { nak_delay }
            | SubmitOutcome::SubmitFailed { nak_delay }
            | SubmitOutcome::SessionFault { nak_delay, .. } => {
                MessageAction::Nak { delay: nak_delay }
            }
        }
    }

    /// What happens to the bind.
    pub fn bind_action(&self) -> BindAction {
        match self {
            SubmitOutcome::Accepted
            | SubmitOutcome::Temporary { .. }
            | SubmitOutcome::TimedOut { .. }
            | SubmitOutcome::Permanent { .. } => BindAction::Continue,
            SubmitOutcome::Throttled { .. } => BindAction::HalveWindow,
            SubmitOutcome::QueueFull { .. } => BindAction::Drain,
            SubmitOutcome::SubmitFailed { .. } => BindAction::CountSubmitFailure,
            SubmitOutcome::SessionFault { .. } => BindAction::Reconnect,
        }
    }

    /// True when the message is NAKed (retried later), false when it is ACKed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.message_action(), MessageAction::Nak { .. })
    }

    /// The NAK delay for a message already delivered `num_delivered` times (JetStream's
    /// count, 1 on the first delivery). Throttling keeps its fixed 500 ms; the other
    /// retryable outcomes double their delay per earlier delivery up to
    /// [`MAX_NAK_DELAY`]. `None` when the message is ACKed.
    pub fn nak_delay_after(&self, num_delivered: u64) -> Option<Duration> {
        match self.message_action() {
            MessageAction::Nak { delay } => Some(match self {
                SubmitOutcome::Throttled { .. } => delay,
                _ => {
                    let doublings = num_delivered.saturating_sub(1).min(31) as u32;
                    delay
                        .checked_mul(1u32 << doublings)
                        .unwrap_or(MAX_NAK_DELAY)
                        .min(MAX_NAK_DELAY.max(delay))
                }
            }),
            MessageAction::Ack | MessageAction::AckAndReject { .. } => None,
        }
    }
}

/// Classify the status of a `submit_sm_resp`.
pub fn classify_submit(status: CommandStatus) -> SubmitOutcome {
    let temporary = SubmitOutcome::Temporary {
        status,
        nak_delay: TEMPORARY_NAK_DELAY,
    };
    match status {
        CommandStatus::ESME_ROK => SubmitOutcome::Accepted,
        CommandStatus::ESME_RTHROTTLED => SubmitOutcome::Throttled {
            nak_delay: THROTTLED_NAK_DELAY,
        },
        CommandStatus::ESME_RMSGQFUL => SubmitOutcome::QueueFull {
            nak_delay: TEMPORARY_NAK_DELAY,
        },
        CommandStatus::ESME_RSUBMITFAIL => SubmitOutcome::SubmitFailed {
            nak_delay: TEMPORARY_NAK_DELAY,
        },
        CommandStatus::ESME_RINVBNDSTS => SubmitOutcome::SessionFault {
            status,
            nak_delay: TEMPORARY_NAK_DELAY,
        },
        // The SMSC's own trouble: try again later.
        CommandStatus::ESME_RSYSERR
        | CommandStatus::ESME_RX_T_APPN
        | CommandStatus::ESME_RUNKNOWNERR => temporary,
        // Statuses of other commands (bind, query, cancel, replace): nonsense for a
        // submit, so nothing says the message is at fault. Retry; maxDeliver bounds it.
        CommandStatus::ESME_RINVCMDID
        | CommandStatus::ESME_RALYBND
        | CommandStatus::ESME_RINVMSGID
        | CommandStatus::ESME_RBINDFAIL
        | CommandStatus::ESME_RINVPASWD
        | CommandStatus::ESME_RINVSYSID
        | CommandStatus::ESME_RCANCELFAIL
        | CommandStatus::ESME_RREPLACEFAIL
        | CommandStatus::ESME_RINVSYSTYP
        | CommandStatus::ESME_RQUERYFAIL => temporary,
        // The message (or a field of our PDU for it) is wrong: resending cannot help.
        CommandStatus::ESME_RINVMSGLEN
        | CommandStatus::ESME_RINVCMDLEN
        | CommandStatus::ESME_RINVPRTFLG
        | CommandStatus::ESME_RINVREGDLVFLG
        | CommandStatus::ESME_RINVSRCADR
        | CommandStatus::ESME_RINVDSTADR
        | CommandStatus::ESME_RINVSERTYP
        | CommandStatus::ESME_RINVNUMDESTS
        | CommandStatus::ESME_RINVDLNAME
        | CommandStatus::ESME_RINVDESTFLAG
        | CommandStatus::ESME_RINVSUBREP
        | CommandStatus::ESME_RINVESMCLASS
        | CommandStatus::ESME_RCNTSUBDL
        | CommandStatus::ESME_RINVSRCTON
        | CommandStatus::ESME_RINVSRCNPI
        | CommandStatus::ESME_RINVDSTTON
        | CommandStatus::ESME_RINVDSTNPI
        | CommandStatus::ESME_RINVREPFLAG
        | CommandStatus::ESME_RINVNUMMSGS
        | CommandStatus::ESME_RINVSCHED
        | CommandStatus::ESME_RINVEXPIRY
        | CommandStatus::ESME_RINVDFTMSGID
        | CommandStatus::ESME_RX_P_APPN
        | CommandStatus::ESME_RX_R_APPN
        | CommandStatus::ESME_RINVOPTPARSTREAM
        | CommandStatus::ESME_ROPTPARNOTALLWD
        | CommandStatus::ESME_RINVPARLEN
        | CommandStatus::ESME_RMISSINGOPTPARAM
        | CommandStatus::ESME_RINVOPTPARAMVAL
        | CommandStatus::ESME_RDELIVERYFAILURE => SubmitOutcome::Permanent { status },
        // Reserved and vendor-specific (0x00000400..) statuses: unknown means temporary.
        _ => temporary,
    }
}

/// A `generic_nack` received for a submit: the SMSC did not understand our PDU or the
/// session; treated as a broken session (SPEC §5).
pub fn classify_generic_nack(status: CommandStatus) -> SubmitOutcome {
    SubmitOutcome::SessionFault {
        status,
        nak_delay: TEMPORARY_NAK_DELAY,
    }
}

/// No `submit_sm_resp` before the submit timeout.
pub fn classify_timeout() -> SubmitOutcome {
    SubmitOutcome::TimedOut {
        nak_delay: TEMPORARY_NAK_DELAY,
    }
}

/// Counts consecutive ESME_RSUBMITFAIL outcomes for the HALF_CLOSED_TX rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubmitFailureStreak {
    count: u32,
}

impl SubmitFailureStreak {
    /// Record one response outcome. Any other response (and a timeout) ends the streak.
    /// Returns true on the outcome that reaches [`SUBMIT_FAILURES_FOR_HALF_CLOSE`].
    pub fn record(&mut self, outcome: &SubmitOutcome) -> bool {
        if matches!(outcome, SubmitOutcome::SubmitFailed { .. }) {
            self.count = self.count.saturating_add(1);
            self.count == SUBMIT_FAILURES_FOR_HALF_CLOSE
        } else {
            self.count = 0;
            false
        }
    }

    /// Consecutive failures so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Start over (after a rebind).
    pub fn reset(&mut self) {
        self.count = 0;
    }
}

/// Why a bind was refused, and what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindFailure {
    /// ESME_RINVPASWD, ESME_RINVSYSID, ESME_RINVSYSTYP: the credentials from OMS are wrong.
    /// Reconnect with backoff (credentials are fetched again) and alert.
    #[error("bind refused: credentials ({status})")]
    Credentials { status: CommandStatus },
    /// ESME_RBINDFAIL, ESME_RALYBND and every other status: reconnect with backoff and
    /// alert.
    #[error("bind refused ({status})")]
    Rejected { status: CommandStatus },
    /// ESME_RINVCMDID: the SMSC does not know bind_transceiver. Fall back to
    /// bind_transmitter + bind_receiver at once, no backoff.
    #[error("bind command not supported ({status})")]
    Unsupported { status: CommandStatus },
}

impl BindFailure {
    /// The status of the bind response.
    pub fn status(&self) -> CommandStatus {
        match *self {
            BindFailure::Credentials { status }
            | BindFailure::Rejected { status }
            | BindFailure::Unsupported { status } => status,
        }
    }

    /// True when the next attempt waits for [`crate::backoff::Backoff`].
    pub fn backs_off(&self) -> bool {
        !matches!(self, BindFailure::Unsupported { .. })
    }

    /// True when operators must be alerted.
    pub fn alerts(&self) -> bool {
        !matches!(self, BindFailure::Unsupported { .. })
    }

    /// True when the bind falls back to separate transmitter and receiver sessions.
    pub fn falls_back_to_split_bind(&self) -> bool {
        matches!(self, BindFailure::Unsupported { .. })
    }
}

/// Classify the status of a bind response (or of a `generic_nack` answering a bind).
pub fn classify_bind(status: CommandStatus) -> Result<(), BindFailure> {
    match status {
        CommandStatus::ESME_ROK => Ok(()),
        CommandStatus::ESME_RINVPASWD
        | CommandStatus::ESME_RINVSYSID
        | CommandStatus::ESME_RINVSYSTYP => Err(BindFailure::Credentials { status }),
        CommandStatus::ESME_RINVCMDID => Err(BindFailure::Unsupported { status }),
        _ => Err(BindFailure::Rejected { status }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Class {
        Accepted,
        Throttled,
        Temporary,
        QueueFull,
        SubmitFailed,
        Permanent,
        SessionFault,
    }

    fn class_of(outcome: SubmitOutcome) -> Class {
        match outcome {
            SubmitOutcome::Accepted => Class::Accepted,
            SubmitOutcome::Throttled { .. } => Class::Throttled,
            SubmitOutcome::Temporary { .. } | SubmitOutcome::TimedOut { .. } => Class::Temporary,
            SubmitOutcome::QueueFull { .. } => Class::QueueFull,
            SubmitOutcome::SubmitFailed { .. } => Class::SubmitFailed,
            SubmitOutcome::Permanent { .. } => Class::Permanent,
            SubmitOutcome::SessionFault { .. } => Class::SessionFault,
        }
    }

    /// Every status SMPP 3.4 names, with its submit class and bind class.
    const TABLE: &[(&str, Class, &str)] = {
        use Class::*;
        &[
            ("ESME_ROK", Accepted, "ok"),
            ("ESME_RINVMSGLEN", Permanent, "rejected"),
            ("ESME_RINVCMDLEN", Permanent, "rejected"),
            ("ESME_RINVCMDID", Temporary, "unsupported"),
            ("ESME_RINVBNDSTS", SessionFault, "rejected"),
            ("ESME_RALYBND", Temporary, "rejected"),
            ("ESME_RINVPRTFLG", Permanent, "rejected"),
            ("ESME_RINVREGDLVFLG", Permanent, "rejected"),
            ("ESME_RSYSERR", Temporary, "rejected"),
            ("ESME_RINVSRCADR", Permanent, "rejected"),
            ("ESME_RINVDSTADR", Permanent, "rejected"),
            ("ESME_RINVMSGID", Temporary, "rejected"),
            ("ESME_RBINDFAIL", Temporary, "rejected"),
            ("ESME_RINVPASWD", Temporary, "credentials"),
            ("ESME_RINVSYSID", Temporary, "credentials"),
            ("ESME_RCANCELFAIL", Temporary, "rejected"),
            ("ESME_RREPLACEFAIL", Temporary, "rejected"),
            ("ESME_RMSGQFUL", QueueFull, "rejected"),
            ("ESME_RINVSERTYP", Permanent, "rejected"),
            ("ESME_RINVNUMDESTS", Permanent, "rejected"),
            ("ESME_RINVDLNAME", Permanent, "rejected"),
            ("ESME_RINVDESTFLAG", Permanent, "rejected"),
            ("ESME_RINVSUBREP", Permanent, "rejected"),
            ("ESME_RINVESMCLASS", Permanent, "rejected"),
            ("ESME_RCNTSUBDL", Permanent, "rejected"),
            ("ESME_RSUBMITFAIL", SubmitFailed, "rejected"),
            ("ESME_RINVSRCTON", Permanent, "rejected"),
            ("ESME_RINVSRCNPI", Permanent, "rejected"),
            ("ESME_RINVDSTTON", Permanent, "rejected"),
            ("ESME_RINVDSTNPI", Permanent, "rejected"),
            ("ESME_RINVSYSTYP", Temporary, "credentials"),
            ("ESME_RINVREPFLAG", Permanent, "rejected"),
            ("ESME_RINVNUMMSGS", Permanent, "rejected"),
            ("ESME_RTHROTTLED", Throttled, "rejected"),
            ("ESME_RINVSCHED", Permanent, "rejected"),
            ("ESME_RINVEXPIRY", Permanent, "rejected"),
            ("ESME_RINVDFTMSGID", Permanent, "rejected"),
            ("ESME_RX_T_APPN", Temporary, "rejected"),
            ("ESME_RX_P_APPN", Permanent, "rejected"),
            ("ESME_RX_R_APPN", Permanent, "rejected"),
            ("ESME_RQUERYFAIL", Temporary, "rejected"),
            ("ESME_RINVOPTPARSTREAM", Permanent, "rejected"),
            ("ESME_ROPTPARNOTALLWD", Permanent, "rejected"),
            ("ESME_RINVPARLEN", Permanent, "rejected"),
            ("ESME_RMISSINGOPTPARAM", Permanent, "rejected"),
            ("ESME_RINVOPTPARAMVAL", Permanent, "rejected"),
            ("ESME_RDELIVERYFAILURE", Permanent, "rejected"),
            ("ESME_RUNKNOWNERR", Temporary, "rejected"),
        ]
    };

    fn bind_class(status: CommandStatus) -> &'static str {
        match classify_bind(status) {
            Ok(()) => "ok",
            Err(BindFailure::Credentials { .. }) => "credentials",
            Err(BindFailure::Rejected { .. }) => "rejected",
            Err(BindFailure::Unsupported { .. }) => "unsupported",
        }
    }

    fn named_statuses() -> Vec<CommandStatus> {
        (0..=0x0000_03FF)
            .map(CommandStatus)
            .filter(|s| s.known_name().is_some())
            .collect()
    }

    #[test]
    fn every_named_status_is_classified_as_the_table_says() {
        let named = named_statuses();
        assert_eq!(
            named.len(),
            TABLE.len(),
            "a named status is missing from TABLE"
        );
        for status in named {
            let name = status.known_name().unwrap();
            let (_, submit, bind) = TABLE
                .iter()
                .find(|(n, _, _)| *n == name)
                .unwrap_or_else(|| panic!("{name} is not in TABLE"));
            assert_eq!(class_of(classify_submit(status)), *submit, "{name}");
            assert_eq!(bind_class(status), *bind, "{name}");
        }
    }

    #[test]
    fn outcomes_carry_their_actions() {
        let rok = classify_submit(CommandStatus::ESME_ROK);
        assert_eq!(rok.message_action(), MessageAction::Ack);
        assert_eq!(rok.bind_action(), BindAction::Continue);

        let throttled = classify_submit(CommandStatus::ESME_RTHROTTLED);
        assert_eq!(
            throttled.message_action(),
            MessageAction::Nak {
                delay: Duration::from_millis(500)
            }
        );
        assert_eq!(throttled.bind_action(), BindAction::HalveWindow);

        let invalid_dest = classify_submit(CommandStatus::ESME_RINVDSTADR);
        assert_eq!(
            invalid_dest.message_action(),
            MessageAction::AckAndReject {
                status: CommandStatus::ESME_RINVDSTADR
            }
        );
        assert!(!invalid_dest.is_retryable());

        let queue_full = classify_submit(CommandStatus::ESME_RMSGQFUL);
        assert_eq!(queue_full.bind_action(), BindAction::Drain);
        assert!(queue_full.is_retryable());

        let submit_fail = classify_submit(CommandStatus::ESME_RSUBMITFAIL);
        assert_eq!(submit_fail.bind_action(), BindAction::CountSubmitFailure);

        let bad_state = classify_submit(CommandStatus::ESME_RINVBNDSTS);
        assert_eq!(bad_state.bind_action(), BindAction::Reconnect);
        assert!(bad_state.is_retryable());

        let nack = classify_generic_nack(CommandStatus::ESME_RINVCMDLEN);
        assert_eq!(nack.bind_action(), BindAction::Reconnect);
        assert_eq!(
            nack.message_action(),
            MessageAction::Nak {
                delay: TEMPORARY_NAK_DELAY
            }
        );

        let timeout = classify_timeout();
        assert_eq!(timeout.bind_action(), BindAction::Continue);
        assert_eq!(timeout.as_str(), "timed_out");
        assert!(timeout.is_retryable());
    }

    #[test]
    fn temporary_keeps_the_status_for_the_dead_letter() {
        assert_eq!(
            classify_submit(CommandStatus::ESME_RSYSERR),
            SubmitOutcome::Temporary {
                status: CommandStatus::ESME_RSYSERR,
                nak_delay: TEMPORARY_NAK_DELAY
            }
        );
    }

    #[test]
    fn vendor_statuses_are_temporary() {
        for raw in [
            0x0000_0009,
            0x0000_0100,
            0x0000_0400,
            0x0000_0401,
            0x0000_04FF,
            0xFFFF_FFFF,
        ] {
            let status = CommandStatus(raw);
            assert_eq!(status.known_name(), None);
            assert_eq!(
                classify_submit(status),
                SubmitOutcome::Temporary {
                    status,
                    nak_delay: TEMPORARY_NAK_DELAY
                },
                "{status}"
            );
            assert_eq!(classify_bind(status), Err(BindFailure::Rejected { status }));
        }
    }

    #[test]
    fn nak_backoff_doubles_up_to_the_cap() {
        let temporary = classify_submit(CommandStatus::ESME_RSYSERR);
        let delays: Vec<u64> = (1..=7)
            .map(|n| temporary.nak_delay_after(n).unwrap().as_secs())
            .collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(temporary.nak_delay_after(0), Some(TEMPORARY_NAK_DELAY));
        assert_eq!(temporary.nak_delay_after(u64::MAX), Some(MAX_NAK_DELAY));
        let throttled = classify_submit(CommandStatus::ESME_RTHROTTLED);
        assert_eq!(throttled.nak_delay_after(9), Some(THROTTLED_NAK_DELAY));
        assert_eq!(
            classify_submit(CommandStatus::ESME_ROK).nak_delay_after(1),
            None
        );
        assert_eq!(
            classify_submit(CommandStatus::ESME_RINVMSGLEN).nak_delay_after(1),
            None
        );
    }

    #[test]
    fn three_consecutive_submit_failures_half_close() {
        let fail = classify_submit(CommandStatus::ESME_RSUBMITFAIL);
        let ok = classify_submit(CommandStatus::ESME_ROK);
        let mut streak = SubmitFailureStreak::default();
        assert!(!streak.record(&fail));
        assert!(!streak.record(&fail));
        assert!(!streak.record(&ok));
        assert_eq!(streak.count(), 0);
        assert!(!streak.record(&fail));
        assert!(!streak.record(&fail));
        assert!(streak.record(&fail));
        assert!(!streak.record(&fail));
        assert_eq!(streak.count(), 4);
        streak.reset();
        assert_eq!(streak.count(), 0);
    }

    #[test]
    fn bind_failures_say_what_follows() {
        let credentials = classify_bind(CommandStatus::ESME_RINVPASWD).unwrap_err();
        assert!(credentials.backs_off() && credentials.alerts());
        assert!(!credentials.falls_back_to_split_bind());
        assert_eq!(credentials.status(), CommandStatus::ESME_RINVPASWD);
        assert_eq!(
            credentials.to_string(),
            "bind refused: credentials (ESME_RINVPASWD)"
        );
        let rejected = classify_bind(CommandStatus::ESME_RBINDFAIL).unwrap_err();
        assert!(rejected.backs_off() && rejected.alerts());
        let unsupported = classify_bind(CommandStatus::ESME_RINVCMDID).unwrap_err();
        assert!(unsupported.falls_back_to_split_bind());
        assert!(!unsupported.backs_off());
        assert_eq!(classify_bind(CommandStatus::ESME_ROK), Ok(()));
    }

    proptest! {
        #[test]
        fn unnamed_statuses_are_temporary(raw in any::<u32>()) {
            let status = CommandStatus(raw);
            prop_assume!(status.known_name().is_none());
            prop_assert_eq!(class_of(classify_submit(status)), Class::Temporary);
        }
    }
}
