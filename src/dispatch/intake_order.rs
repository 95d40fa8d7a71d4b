//! Messages on their way from a bind's intake to its ledger, in the order they were
//! pulled. A message may wait for its redelivery lookup (which answers out of order) and,
//! if it is long and needs a fresh concatenation reference, for Redis to store that
//! reference as the message's; either holds back the messages behind it, so the ledger
//! (and the SMSC) sees them in stream order.
//!
//! Pure: the bind gives each message its place ([`IntakeOrder::take_place`]), reports what
//! it learns, and admits what [`IntakeOrder::pop_admissible`] hands out.

use std::collections::{BTreeMap, BTreeSet};

/// A looked-up message, and the fresh reference taken for it if it needed one: the
/// reference, and whether Redis has stored it (no part goes out before, so a redelivery
/// after a crash finds it and sends the other parts under it).
#[derive(Debug)]
struct Looked<T> {
    item: T,
    fresh: Option<(u16, bool)>,
}

#[derive(Debug)]
pub struct IntakeOrder<T> {
    next: u64,
    /// Place → the message (`None`: still looked up).
    waiting: BTreeMap<u64, Option<Looked<T>>>,
    /// Looked-up messages not yet prepared (given a fresh reference, or found not to need
    /// one), in order.
    unprepared: BTreeSet<u64>,
}

impl<T> Default for IntakeOrder<T> {
    fn default() -> Self {
        IntakeOrder {
            next: 0,
            waiting: BTreeMap::new(),
            unprepared: BTreeSet::new(),
        }
    }
}

impl<T> IntakeOrder<T> {
    /// The place of a message just pulled.
    pub fn take_place(&mut self) -> u64 {
        let order = self.next;
        self.next += 1;
        order
    }

    /// Messages pulled and not yet admitted (looked up, or waiting for their turn or a
    /// reference).
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Its redelivery lookup is under way.
    pub fn looking_up(&mut self, order: u64) {
        self.waiting.insert(order, None);
    }

    /// What is known of it is in: it is to be prepared.
    pub fn looked_up(&mut self, order: u64, item: T) {
        self.waiting
            .insert(order, Some(Looked { item, fresh: None }));
        self.unprepared.insert(order);
    }

    /// The first looked-up message not yet prepared. (Every unprepared place holds a
    /// looked-up message: only prepared ones are popped, and [`Self::take_looked`]
    /// forgets the places it empties.)
    pub fn next_unprepared(&self) -> Option<(u64, &T)> {
        let order = *self.unprepared.first()?;
        let looked = self.waiting.get(&order)?.as_ref()?;
        Some((order, &looked.item))
    }

    /// It needs no fresh reference.
    pub fn prepared(&mut self, order: u64) {
        self.unprepared.remove(&order);
    }

    /// It took `reference`, which Redis is asked to store: it waits for that.
    pub fn took_reference(&mut self, order: u64, reference: u16) {
        self.unprepared.remove(&order);
        if let Some(Some(looked)) = self.waiting.get_mut(&order) {
            looked.fresh = Some((reference, false));
        }
    }

    /// Redis answered the store of its reference (stored, or failed: it goes anyway).
    pub fn remembered(&mut self, order: u64) {
        if let Some(Some(Looked {
            fresh: Some((_, remembered)),
            ..
        })) = self.waiting.get_mut(&order)
        {
            *remembered = true;
        }
    }

    /// The message at the front with the fresh reference it took, if its turn has come:
    /// looked up, prepared, and its reference (if it took one) stored.
    pub fn pop_admissible(&mut self) -> Option<(T, Option<u16>)> {
        let entry = self.waiting.first_entry()?;
        let order = *entry.key();
        let ready = entry
            .get()
            .as_ref()
            .is_some_and(|looked| match looked.fresh {
                Some((_, remembered)) => remembered,
                None => !self.unprepared.contains(&order),
            });
        if !ready {
            return None;
        }
        let looked = entry.remove()?;
        Some((looked.item, looked.fresh.map(|(reference, _)| reference)))
    }

    /// Take out every message looked up and not admitted; lookups under way keep their
    /// places (their answers still come).
    pub fn take_looked(&mut self) -> Vec<T> {
        let orders: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, place)| place.is_some())
            .map(|(order, _)| *order)
            .collect();
        orders
            .into_iter()
            .filter_map(|order| {
                self.unprepared.remove(&order);
                self.waiting.remove(&order).flatten().map(|l| l.item)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prepare everything ready, as the bind does: `long` items take a reference.
    fn prepare(order: &mut IntakeOrder<&'static str>, long: &[&str]) -> Vec<u64> {
        let mut took = Vec::new();
        while let Some((place, item)) = order.next_unprepared() {
            if long.contains(item) {
                order.took_reference(place, place as u16 + 100);
                took.push(place);
            } else {
                order.prepared(place);
            }
        }
        took
    }

    fn admit(order: &mut IntakeOrder<&'static str>) -> Vec<(&'static str, Option<u16>)> {
        std::iter::from_fn(|| order.pop_admissible()).collect()
    }

    #[test]
    fn messages_leave_in_pull_order_whatever_order_their_lookups_answer_in() {
        let mut order = IntakeOrder::default();
        let (a, b, c) = (order.take_place(), order.take_place(), order.take_place());
        order.looking_up(a);
        order.looking_up(b);
        order.looked_up(c, "c");
        prepare(&mut order, &[]);
        assert!(admit(&mut order).is_empty(), "a and b are still looked up");
        order.looked_up(b, "b");
        prepare(&mut order, &[]);
        assert!(admit(&mut order).is_empty());
        assert_eq!(order.len(), 3);
        order.looked_up(a, "a");
        prepare(&mut order, &[]);
        assert_eq!(
            admit(&mut order),
            vec![("a", None), ("b", None), ("c", None)]
        );
        assert!(order.is_empty());
    }

    #[test]
    fn a_long_message_holds_the_rest_back_until_its_reference_is_stored() {
        let mut order = IntakeOrder::default();
        let places: Vec<u64> = (0..3).map(|_| order.take_place()).collect();
        for (place, item) in places.iter().zip(["short", "long", "also long"]) {
            order.looked_up(*place, item);
        }
        // Unprepared messages are not admitted.
        assert!(admit(&mut order).is_empty());
        let took = prepare(&mut order, &["long", "also long"]);
        assert_eq!(took, vec![1, 2], "both references asked for at once");
        assert_eq!(admit(&mut order), vec![("short", None)]);
        // The later one's store answers first: it still waits its turn.
        order.remembered(2);
        assert!(admit(&mut order).is_empty());
        order.remembered(1);
        assert_eq!(
            admit(&mut order),
            vec![("long", Some(101)), ("also long", Some(102))]
        );
    }

    #[test]
    fn a_restart_takes_out_what_was_looked_up_and_keeps_the_lookups_places() {
        let mut order = IntakeOrder::default();
        let (a, b, c) = (order.take_place(), order.take_place(), order.take_place());
        order.looked_up(a, "a");
        order.looking_up(b);
        order.looked_up(c, "c");
        prepare(&mut order, &["a"]);
        assert_eq!(order.take_looked(), vec!["a", "c"]);
        assert_eq!(order.len(), 1);
        assert!(order.next_unprepared().is_none());
        // A store answering after the restart changes nothing.
        order.remembered(a);
        order.looked_up(b, "b");
        prepare(&mut order, &[]);
        assert_eq!(admit(&mut order), vec![("b", None)]);
    }
}
