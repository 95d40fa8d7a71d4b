// Tests take their instants from the clock; the code under test never does.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use super::*;
use crate::protocol::pdu::{BindResponse, DecodeError, SubmitSmResp, decode_inbound};

fn config(mode: BindMode) -> SessionConfig {
    SessionConfig {
        mode,
        bind: BindRequest {
            system_id: "sys".into(),
            password: "secret".into(),
            system_type: String::new(),
            interface_version: crate::protocol::pdu::INTERFACE_VERSION,
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        },
        bind_timeout: Duration::from_secs(10),
        enquire_link_interval: Duration::from_secs(30),
        enquire_link_timeout: Duration::from_secs(10),
        submit_timeout: Duration::from_secs(30),
        unbind_timeout: Duration::from_secs(5),
        window: 3,
        inbound_window: 2,
    }
}

/// Decode what the session wrote.
fn sent(session: &mut Session<u32>) -> Vec<Frame> {
    std::iter::from_fn(|| session.poll_transmit())
        .map(|bytes| match decode_inbound(&bytes) {
            Inbound::Frame(frame) => frame,
            Inbound::Malformed(m) => panic!("session wrote a malformed PDU: {m:?}"),
        })
        .collect()
}

fn events(session: &mut Session<u32>) -> Vec<Event<u32>> {
    std::iter::from_fn(|| session.poll_event()).collect()
}

fn bound(mode: BindMode, t0: Instant) -> Session<u32> {
    let mut session = Session::try_new(config(mode), SequenceNumbers::new(), t0).unwrap();
    let bind = sent(&mut session).remove(0);
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(
            bind.sequence_number,
            Pdu::bind_resp(mode, BindResponse::default()),
        )),
    );
    assert!(matches!(events(&mut session)[..], [Event::Bound { .. }]));
    session
}

fn submit_resp(seq: u32, status: CommandStatus, id: &str) -> Inbound {
    Inbound::Frame(Frame::with_status(
        seq,
        status,
        Pdu::SubmitSmResp(SubmitSmResp {
            message_id: Some(id.into()),
        }),
    ))
}

#[test]
fn binds_as_transceiver_with_interface_version_0x34() {
    let t0 = Instant::now();
    let mut session =
        Session::<u32>::try_new(config(BindMode::Transceiver), SequenceNumbers::new(), t0).unwrap();
    assert_eq!(session.state(), SessionState::Binding);
    let frames = sent(&mut session);
    assert_eq!(frames.len(), 1);
    match &frames[0].pdu {
        Pdu::BindTransceiver(req) => {
            assert_eq!(req.interface_version, 0x34);
            assert_eq!(req.system_id, "sys");
        }
        other => panic!("expected bind_transceiver, got {other:?}"),
    }
    assert_eq!(frames[0].sequence_number, 1);
}

#[test]
fn a_rejected_bind_closes_with_the_status() {
    let t0 = Instant::now();
    let mut session =
        Session::<u32>::try_new(config(BindMode::Transceiver), SequenceNumbers::new(), t0).unwrap();
    sent(&mut session);
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::with_status(
            1,
            CommandStatus::ESME_RINVCMDID,
            Pdu::BindTransceiverResp(BindResponse::default()),
        )),
    );
    assert!(matches!(
        events(&mut session)[..],
        [Event::Closed(CloseReason::BindRejected(
            CommandStatus::ESME_RINVCMDID
        ))]
    ));
    assert_eq!(session.state(), SessionState::Closed);
}

#[test]
fn a_generic_nack_to_the_bind_is_a_rejection() {
    let t0 = Instant::now();
    let mut session =
        Session::<u32>::try_new(config(BindMode::Transceiver), SequenceNumbers::new(), t0).unwrap();
    sent(&mut session);
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::with_status(
            1,
            CommandStatus::ESME_RINVCMDID,
            Pdu::GenericNack,
        )),
    );
    assert!(matches!(
        events(&mut session)[..],
        [Event::Closed(CloseReason::BindRejected(
            CommandStatus::ESME_RINVCMDID
        ))]
    ));
}

#[test]
fn the_bind_times_out() {
    let t0 = Instant::now();
    let mut session =
        Session::<u32>::try_new(config(BindMode::Transmitter), SequenceNumbers::new(), t0).unwrap();
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    session.handle_timeout(t0 + Duration::from_secs(9));
    assert!(events(&mut session).is_empty());
    session.handle_timeout(t0 + Duration::from_secs(10));
    assert!(matches!(
        events(&mut session)[..],
        [Event::Closed(CloseReason::BindTimedOut)]
    ));
}

#[test]
fn submits_are_answered_by_sequence_number() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let a = session.submit(t0, SmBody::default(), 10).unwrap();
    let b = session.submit(t0, SmBody::default(), 11).unwrap();
    assert_ne!(a, b);
    assert_eq!(session.in_flight(), 2);
    let frames = sent(&mut session);
    assert!(frames.iter().all(|f| matches!(f.pdu, Pdu::SubmitSm(_))));
    session.handle_inbound(t0, submit_resp(b, CommandStatus::ESME_ROK, "ff"));
    session.handle_inbound(t0, submit_resp(a, CommandStatus::ESME_RTHROTTLED, ""));
    let evs = events(&mut session);
    assert!(
        matches!(&evs[0], Event::SubmitResponse { token: 11, status, message_id: Some(id), .. } if status.is_ok() && id == "ff")
    );
    assert!(
        matches!(&evs[1], Event::SubmitResponse { token: 10, status, .. } if *status == CommandStatus::ESME_RTHROTTLED)
    );
    assert_eq!(session.in_flight(), 0);
}

#[test]
fn the_window_is_never_exceeded() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    for token in 0..3 {
        session.submit(t0, SmBody::default(), token).unwrap();
    }
    assert_eq!(session.free_slots(), 0);
    assert!(matches!(
        session.submit(t0, SmBody::default(), 9),
        Err(SubmitError::WindowFull(9))
    ));
}

#[test]
fn submits_need_a_bound_transmitter() {
    let t0 = Instant::now();
    let mut binding =
        Session::<u32>::try_new(config(BindMode::Transceiver), SequenceNumbers::new(), t0).unwrap();
    assert!(matches!(
        binding.submit(t0, SmBody::default(), 1),
        Err(SubmitError::NotBound(1))
    ));
    let mut receiver = bound(BindMode::Receiver, t0);
    assert_eq!(receiver.free_slots(), 0);
    assert!(matches!(
        receiver.submit(t0, SmBody::default(), 2),
        Err(SubmitError::NotTransmitter(2))
    ));
}

#[test]
fn an_invalid_body_is_refused_before_it_takes_a_slot() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let body = SmBody {
        short_message: vec![0; 255],
        ..SmBody::default()
    };
    assert!(matches!(
        session.submit(t0, body, 4),
        Err(SubmitError::Encode(_, 4))
    ));
    assert_eq!(session.in_flight(), 0);
    assert!(sent(&mut session).is_empty());
}

#[test]
fn a_submit_without_response_times_out_and_frees_its_slot() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let seq = session.submit(t0, SmBody::default(), 5).unwrap();
    session.handle_timeout(t0 + Duration::from_secs(30));
    let evs = events(&mut session);
    assert!(evs.iter().any(|e| matches!(e, Event::SubmitFailed { token: 5, sequence_number, reason: SubmitFailure::TimedOut } if *sequence_number == seq)));
    assert_eq!(session.in_flight(), 0);
    // A late response is only unexpected.
    session.handle_inbound(t0, submit_resp(seq, CommandStatus::ESME_ROK, "1"));
    assert!(matches!(
        events(&mut session)[..],
        [Event::Unexpected { .. }]
    ));
}

#[test]
fn enquire_link_every_interval_and_a_timeout_closes() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let t1 = t0 + Duration::from_secs(30);
    session.handle_timeout(t1);
    let frames = sent(&mut session);
    assert!(matches!(
        frames[..],
        [Frame {
            pdu: Pdu::EnquireLink,
            ..
        }]
    ));
    // Answered: no close; the next one 30 s later.
    session.handle_inbound(
        t1,
        Inbound::Frame(Frame::new(frames[0].sequence_number, Pdu::EnquireLinkResp)),
    );
    assert!(events(&mut session).is_empty());
    let t2 = t1 + Duration::from_secs(30);
    session.handle_timeout(t2);
    assert_eq!(sent(&mut session).len(), 1);
    // Not answered within 10 s: closed.
    session.handle_timeout(t2 + Duration::from_secs(9));
    assert!(events(&mut session).is_empty());
    session.handle_timeout(t2 + Duration::from_secs(10));
    assert!(matches!(
        events(&mut session)[..],
        [Event::Closed(CloseReason::EnquireLinkTimedOut)]
    ));
}

#[test]
fn closing_fails_every_submit_in_flight_exactly_once() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    session.submit(t0, SmBody::default(), 1).unwrap();
    session.submit(t0, SmBody::default(), 2).unwrap();
    session.handle_inbound(t0, Inbound::Frame(Frame::new(77, Pdu::Unbind)));
    let frames = sent(&mut session);
    assert!(
        frames
            .iter()
            .any(|f| f.pdu == Pdu::UnbindResp && f.sequence_number == 77)
    );
    let evs = events(&mut session);
    let failed: Vec<u32> = evs
        .iter()
        .filter_map(|e| match e {
            Event::SubmitFailed {
                token,
                reason: SubmitFailure::SessionClosed,
                ..
            } => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(matches!(
        evs.last(),
        Some(Event::Closed(CloseReason::PeerUnbound))
    ));
    session.handle_timeout(t0 + Duration::from_secs(3600));
    assert!(events(&mut session).is_empty());
}

#[test]
fn the_smsc_enquire_link_is_answered() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    session.handle_inbound(t0, Inbound::Frame(Frame::new(42, Pdu::EnquireLink)));
    let frames = sent(&mut session);
    assert_eq!(frames, vec![Frame::new(42, Pdu::EnquireLinkResp)]);
}

#[test]
fn a_malformed_pdu_is_nacked_and_the_session_stays_bound() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    session.handle_inbound(
        t0,
        Inbound::Malformed(Malformed {
            command_id: 5,
            command_status: 0,
            sequence_number: 9,
            error: DecodeError::InvalidBody {
                command_id: CommandId::DeliverSm,
            },
        }),
    );
    let frames = sent(&mut session);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].pdu, Pdu::GenericNack);
    assert_eq!(frames[0].sequence_number, 9);
    assert_eq!(frames[0].command_status, CommandStatus::ESME_RINVMSGLEN);
    assert_eq!(session.state(), SessionState::Bound);
}

#[test]
fn a_generic_nack_breaks_the_session() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let seq = session.submit(t0, SmBody::default(), 3).unwrap();
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::with_status(
            seq,
            CommandStatus::ESME_RSYSERR,
            Pdu::GenericNack,
        )),
    );
    let evs = events(&mut session);
    assert!(matches!(
        evs[0],
        Event::SubmitFailed {
            token: 3,
            reason: SubmitFailure::GenericNack(_),
            ..
        }
    ));
    assert!(matches!(evs[1], Event::Closed(CloseReason::GenericNack(_))));
}

#[test]
fn deliver_sm_goes_to_the_owner_who_answers_it() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Receiver, t0);
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(5, Pdu::DeliverSm(Box::default()))),
    );
    assert!(matches!(
        events(&mut session)[..],
        [Event::DeliverSm {
            sequence_number: 5,
            ..
        }]
    ));
    assert!(sent(&mut session).is_empty());
    session.respond_deliver_sm(5, CommandStatus::ESME_ROK);
    assert_eq!(sent(&mut session), vec![Frame::new(5, Pdu::DeliverSmResp)]);
}

/// A flood of deliver_sm is bounded: at `inbound_window` unanswered the owner must stop
/// reading (the SMSC then waits on TCP); each answer frees a slot; a closed session holds
/// none.
#[test]
fn deliver_sm_unanswered_are_bounded_by_the_inbound_window() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    assert!(session.may_read());
    for seq in [5, 6] {
        session.handle_inbound(
            t0,
            Inbound::Frame(Frame::new(seq, Pdu::DeliverSm(Box::default()))),
        );
    }
    assert_eq!(events(&mut session).len(), 2);
    assert_eq!(session.deliver_sm_unanswered(), 2);
    assert!(!session.may_read(), "two unanswered: stop reading");
    // An answer twice, or to a number never seen, frees nothing more.
    session.respond_deliver_sm(5, CommandStatus::ESME_ROK);
    session.respond_deliver_sm(5, CommandStatus::ESME_ROK);
    session.respond_deliver_sm(99, CommandStatus::ESME_ROK);
    assert_eq!(session.deliver_sm_unanswered(), 1);
    assert!(session.may_read());
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(7, Pdu::DeliverSm(Box::default()))),
    );
    assert!(!session.may_read());
    session.handle_inbound(t0, Inbound::Frame(Frame::new(8, Pdu::Unbind)));
    assert_eq!(session.state(), SessionState::Closed);
    assert!(session.may_read(), "a closed session holds nothing");
}

/// While the owner does not read (inbound window full), a missing enquire_link_resp is
/// not the SMSC's fault: it is expected a whole timeout later; once reading goes on, the
/// usual timeout applies.
#[test]
fn no_enquire_link_timeout_while_the_owner_does_not_read() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    for seq in [5, 6] {
        session.handle_inbound(
            t0,
            Inbound::Frame(Frame::new(seq, Pdu::DeliverSm(Box::default()))),
        );
    }
    assert!(!session.may_read());
    let _ = sent(&mut session);
    // The enquire_link goes out at 30 s; its answer is due at 40 s.
    session.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(sent(&mut session).len(), 1);
    session.handle_timeout(t0 + Duration::from_secs(40));
    assert_eq!(
        session.state(),
        SessionState::Bound,
        "not reading: no verdict"
    );
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(50)));
    // Reading again, and still no answer: the session ends.
    session.respond_deliver_sm(5, CommandStatus::ESME_ROK);
    session.handle_timeout(t0 + Duration::from_secs(50));
    assert_eq!(session.state(), SessionState::Closed);
}

#[test]
fn the_oldest_submit_in_flight_is_known() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    assert_eq!(session.oldest_in_flight_since(), None);
    let first = session.submit(t0, SmBody::default(), 1).unwrap();
    session
        .submit(t0 + Duration::from_secs(1), SmBody::default(), 2)
        .unwrap();
    assert_eq!(session.oldest_in_flight_since(), Some(t0));
    session.handle_inbound(t0, submit_resp(first, CommandStatus::ESME_ROK, "a"));
    assert_eq!(
        session.oldest_in_flight_since(),
        Some(t0 + Duration::from_secs(1))
    );
}

#[test]
fn a_transmitter_refuses_deliver_sm() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transmitter, t0);
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(5, Pdu::DeliverSm(Box::default()))),
    );
    let frames = sent(&mut session);
    assert_eq!(frames[0].command_status, CommandStatus::ESME_RINVBNDSTS);
}

#[test]
fn graceful_unbind_keeps_taking_responses_until_unbind_resp() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let seq = session.submit(t0, SmBody::default(), 8).unwrap();
    sent(&mut session);
    session.unbind(t0);
    assert_eq!(session.state(), SessionState::Unbinding);
    assert_eq!(session.free_slots(), 0);
    let unbind = sent(&mut session).remove(0);
    assert_eq!(unbind.pdu, Pdu::Unbind);
    session.handle_inbound(t0, submit_resp(seq, CommandStatus::ESME_ROK, "a"));
    session.handle_inbound(
        t0,
        Inbound::Frame(Frame::new(unbind.sequence_number, Pdu::UnbindResp)),
    );
    let evs = events(&mut session);
    assert!(matches!(evs[0], Event::SubmitResponse { token: 8, .. }));
    assert!(matches!(evs[1], Event::Closed(CloseReason::Unbound)));
}

#[test]
fn rinvbndsts_on_a_submit_breaks_the_session() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let seq = session.submit(t0, SmBody::default(), 1).unwrap();
    session.handle_inbound(t0, submit_resp(seq, CommandStatus::ESME_RINVBNDSTS, ""));
    let evs = events(&mut session);
    assert!(matches!(evs[0], Event::SubmitResponse { token: 1, .. }));
    assert!(matches!(
        evs[1],
        Event::Closed(CloseReason::InvalidBindStatus)
    ));
}

/// A deliver_sm with a field over SMPP's length is answered with a deliver_sm_resp
/// carrying the field's status (not a generic_nack: the PDU itself is well framed), and
/// reported as malformed; the session stays bound (issue 21).
#[test]
fn a_deliver_sm_with_an_over_long_field_is_answered_with_its_status() {
    let t0 = Instant::now();
    let mut session = bound(BindMode::Transceiver, t0);
    let malformed = Inbound::Malformed(Malformed {
        command_id: 0x0000_0005,
        command_status: 0,
        sequence_number: 41,
        error: DecodeError::FieldTooLong {
            command_id: CommandId::DeliverSm,
            field: "source_addr",
            actual: 30,
            max: 21,
        },
    });
    session.handle_inbound(t0, malformed);
    let answers = sent(&mut session);
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].sequence_number, 41);
    assert_eq!(answers[0].pdu, Pdu::DeliverSmResp);
    assert_eq!(answers[0].command_status, CommandStatus::ESME_RINVSRCADR);
    assert!(matches!(events(&mut session)[..], [Event::Malformed(_)]));
    assert_eq!(session.state(), SessionState::Bound);
}
