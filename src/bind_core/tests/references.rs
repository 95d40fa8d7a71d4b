//! Concatenation references through the core's contract: taken in pull order,
//! remembered before admission, waited for, or taken from the local counter.

use super::*;

/// A message on its way in, as the tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Msg {
    id: &'static str,
    to: &'static str,
    long: bool,
    stored: Option<u16>,
    lookup_failed: bool,
}

impl Incoming for Msg {
    fn reference_need(&self, _bits: crate::encoding::RefBits) -> Option<(bool, Option<u16>)> {
        (!self.lookup_failed).then_some((self.long, self.stored))
    }
    fn message_id(&self) -> &str {
        self.id
    }
    fn destination(&self) -> &str {
        self.to
    }
}

fn msg(id: &'static str, long: bool) -> Msg {
    Msg {
        id,
        to: "4670000000",
        long,
        stored: None,
        lookup_failed: false,
    }
}

type RefCore = BindCore<u32, Msg>;

/// A bound core with a block of references from Redis.
fn with_block(t0: Instant) -> RefCore {
    let mut core: RefCore = bound_as(BindMode::Transceiver, t0, "");
    core.want_references();
    assert_eq!(core.poll_reference(t0), Some(ReferenceWork::Reserve));
    assert!(!core.handle_references_reserved(Some(1_000)));
    core
}

fn pull(core: &mut RefCore, m: Msg) -> u64 {
    let order = core.take_place();
    core.looked_up(order, m);
    order
}

fn work(core: &mut RefCore, now: Instant) -> Vec<ReferenceWork> {
    std::iter::from_fn(|| core.poll_reference(now)).collect()
}

fn admitted(core: &mut RefCore) -> Vec<(&'static str, Option<u16>)> {
    std::iter::from_fn(|| core.poll_admissible())
        .map(|(m, fresh)| (m.id, fresh))
        .collect()
}

#[test]
fn long_messages_take_references_in_pull_order_and_wait_for_them_to_be_remembered() {
    let t0 = Instant::now();
    let mut core = with_block(t0);
    let a = pull(&mut core, msg("a", true));
    let _b = pull(&mut core, msg("b", false));
    let c = pull(&mut core, msg("c", true));
    let work = work(&mut core, t0);
    let remembered: Vec<(u64, &str)> = work
        .iter()
        .map(|w| match w {
            ReferenceWork::Remember {
                order, message_id, ..
            } => (*order, message_id.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(remembered, vec![(a, "a"), (c, "c")], "both asked at once");
    assert!(
        admitted(&mut core).is_empty(),
        "nothing before a's reference is stored"
    );

    core.handle_remembered(c);
    assert!(admitted(&mut core).is_empty(), "c waits behind a");
    core.handle_remembered(a);
    let admitted = admitted(&mut core);
    assert_eq!(
        admitted.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec!["a", "b", "c"]
    );
    let (fresh_a, fresh_c) = (admitted[0].1.unwrap(), admitted[2].1.unwrap());
    assert_ne!(fresh_a, fresh_c, "each long message its own reference");
    assert_eq!(admitted[1].1, None, "a short message takes none");
}

#[test]
fn a_stored_reference_or_a_failed_lookup_takes_nothing() {
    let t0 = Instant::now();
    let mut core = with_block(t0);
    pull(
        &mut core,
        Msg {
            stored: Some(42),
            ..msg("redelivered", true)
        },
    );
    pull(
        &mut core,
        Msg {
            lookup_failed: true,
            ..msg("unknown", true)
        },
    );
    assert!(work(&mut core, t0).is_empty());
    assert_eq!(
        admitted(&mut core),
        vec![("redelivered", None), ("unknown", None)]
    );
}

#[test]
fn without_a_block_long_messages_wait_then_take_the_local_counter() {
    let t0 = Instant::now();
    let mut core: RefCore = bound_as(BindMode::Transceiver, t0, "");
    pull(&mut core, msg("a", true));
    pull(&mut core, msg("b", false));
    assert_eq!(
        work(&mut core, t0),
        vec![
            ReferenceWork::WaitFor(crate::dispatch::concat_refs::WAIT),
            ReferenceWork::Reserve
        ],
        "Redis has not answered yet: wait for the block"
    );
    assert!(admitted(&mut core).is_empty(), "b waits behind a");
    assert!(work(&mut core, t0).is_empty(), "one wait, one reservation");

    // The wait is over and Redis never answered: the local counter, said once.
    let later = t0 + crate::dispatch::concat_refs::WAIT;
    let work = work(&mut core, later);
    assert!(
        matches!(&work[..], [ReferenceWork::FallbackStarted, ReferenceWork::Remember { message_id, .. }] if message_id == "a"),
        "{work:?}"
    );
}

#[test]
fn a_failed_reservation_lets_waiting_messages_go_with_the_local_counter() {
    let t0 = Instant::now();
    let mut core: RefCore = bound_as(BindMode::Transceiver, t0, "");
    pull(&mut core, msg("a", true));
    work(&mut core, t0);
    assert!(!core.handle_references_reserved(None));
    let work = work(&mut core, t0);
    assert!(
        work.contains(&ReferenceWork::FallbackStarted)
            && work
                .iter()
                .any(|w| matches!(w, ReferenceWork::Remember { .. })),
        "{work:?}"
    );
}

#[test]
fn a_submitting_bind_asks_for_references_when_it_binds() {
    let t0 = Instant::now();
    let mut core: RefCore = connected_as(BindMode::Transceiver, t0, "", SequenceNumbers::new());
    while core.poll_transmit().is_some() {}
    core.handle_inbound(
        0,
        Inbound::Frame(Frame::new(
            1,
            Pdu::bind_resp(BindMode::Transceiver, BindResponse::default()),
        )),
        t0,
    );
    let (link, event) = core.poll_session_event().unwrap();
    assert!(matches!(
        core.handle_session_event(link, event, t0),
        FollowUp::BindBound
    ));
    assert_eq!(core.poll_reference(t0), Some(ReferenceWork::Reserve));
    assert_eq!(core.poll_reference(t0), None, "one at a time");
}

#[test]
fn a_restart_forgets_reference_work_not_carried_out() {
    let t0 = Instant::now();
    let mut core = with_block(t0);
    pull(&mut core, msg("a", true));
    let first = core.poll_reference(t0);
    assert!(matches!(first, Some(ReferenceWork::Remember { .. })));
    pull(&mut core, msg("b", true));
    let mut unadmitted = Vec::new();
    core.restarted(&mut unadmitted);
    assert_eq!(
        unadmitted.iter().map(|m| m.id).collect::<Vec<_>>(),
        vec!["a", "b"],
        "given back by the driver"
    );
    assert_eq!(core.poll_reference(t0), None);
}
