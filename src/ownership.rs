//! Bind ownership across pods, the pure half (SPEC §9, US-SC-016/017/020): given what the
//! NATS KV buckets say — which pods are alive, who owns which bind id — what this pod
//! does next. The service reads the buckets, calls [`plan`], and carries the actions out
//! with atomic KV operations (create if absent, update by revision), so two pods acting
//! on the same view still cannot both own a bind.
//!
//! Fair share: with `p` live pods and `n` bind ids, a pod owns at most `⌈n / p⌉`. A pod
//! above that gives binds up (drain, unbind, delete its key) only while another live pod
//! owns at least two fewer — so the binds spread without moving needlessly. Free bind
//! ids are taken in an order that starts at a different id on each pod (by the pod's rank
//! among the live pods), so pods starting together do not all race for bind 0.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{Direction, OperatorId};

/// The owner bucket's key of a bind: `{operatorId}.{direction}.{bindId}`.
pub fn owner_key(operator_id: &OperatorId, direction: Direction, bind_id: u16) -> String {
    format!("{operator_id}.{}.{bind_id}", direction.as_str())
}

/// The pod bucket's key of a pod serving an operator and direction:
/// `{operatorId}.{direction}.{pod}`.
pub fn pod_key(operator_id: &OperatorId, direction: Direction, pod: &str) -> String {
    format!("{operator_id}.{}.{pod}", direction.as_str())
}

/// The bind id of an owner key of this operator and direction.
pub fn bind_id_of(key: &str, operator_id: &OperatorId, direction: Direction) -> Option<u16> {
    let prefix = format!("{operator_id}.{}.", direction.as_str());
    key.strip_prefix(&prefix)?.parse().ok()
}

/// The value of an owner key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecord {
    pub pod: String,
    /// RFC 3339, when this pod claimed it.
    pub claimed_at: String,
}

/// What a pod sees of one operator and direction.
#[derive(Debug, Clone)]
pub struct View<'a> {
    pub me: &'a str,
    pub bind_count: u16,
    /// Pods with a live heartbeat (this one included).
    pub pods: &'a BTreeSet<String>,
    /// Bind id → owner pod, for the keys present.
    pub owners: &'a BTreeMap<u16, String>,
}

/// One step for this pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Take a free bind id (create its key), or one still recorded under this pod's
    /// name by a previous process of the same pod (update it by revision).
    Claim(u16),
    /// Give a bind up: drain, unbind, then delete its key.
    Release(u16),
}

/// At most how many binds one pod owns.
pub fn fair_share(bind_count: u16, pods: usize) -> u16 {
    let pods = pods.max(1) as u32;
    (u32::from(bind_count).div_ceil(pods)) as u16
}

/// What this pod does next. `running` are the bind ids this process runs (the others
/// recorded under its name are adopted, not counted as held).
pub fn plan(view: &View<'_>, running: &BTreeSet<u16>) -> Vec<Action> {
    let mut actions = Vec::new();
    let pods: BTreeSet<&str> = view
        .pods
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(view.me))
        .collect();
    let share = fair_share(view.bind_count, pods.len()) as usize;

    // Bind ids beyond the count (it was lowered): give them up.
    for id in running.iter().filter(|id| **id >= view.bind_count) {
        actions.push(Action::Release(*id));
    }
    let mine: Vec<u16> = running
        .iter()
        .copied()
        .filter(|id| *id < view.bind_count)
        .collect();

    let mut held: BTreeMap<&str, usize> = pods.iter().map(|p| (*p, 0)).collect();
    for (id, pod) in view.owners {
        if *id < view.bind_count {
            *held.entry(pod.as_str()).or_default() += 1;
        }
    }
    held.insert(view.me, mine.len());
    // Moving one bind to a pod that holds two fewer evens things out; anything less
    // would only move the imbalance around.
    let someone_short = held
        .iter()
        .any(|(pod, n)| *pod != view.me && n + 2 <= mine.len());
    if mine.len() > share && someone_short {
        for id in mine.iter().rev().take(mine.len() - share) {
            actions.push(Action::Release(*id));
        }
        return actions;
    }

    let rank = pods.iter().position(|p| *p == view.me).unwrap_or(0);
    let n = usize::from(view.bind_count);
    let mut room = share.saturating_sub(mine.len());
    for step in 0..n {
        if room == 0 {
            break;
        }
        let id = ((rank * share + step) % n.max(1)) as u16;
        if running.contains(&id) {
            continue;
        }
        let free = match view.owners.get(&id) {
            None => true,
            // Recorded under this pod's name but not run by this process: a previous
            // process of this pod (same name) died; adopt it.
            Some(pod) => pod == view.me,
        };
        if free {
            actions.push(Action::Claim(id));
            room -= 1;
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pods(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn owners(pairs: &[(u16, &str)]) -> BTreeMap<u16, String> {
        pairs.iter().map(|(id, p)| (*id, p.to_string())).collect()
    }

    fn run(
        me: &str,
        count: u16,
        live: &BTreeSet<String>,
        own: &BTreeMap<u16, String>,
        running: &[u16],
    ) -> Vec<Action> {
        let running: BTreeSet<u16> = running.iter().copied().collect();
        plan(
            &View {
                me,
                bind_count: count,
                pods: live,
                owners: own,
            },
            &running,
        )
    }

    #[test]
    fn shares_are_ceilings() {
        assert_eq!(fair_share(2, 3), 1);
        assert_eq!(fair_share(4, 2), 2);
        assert_eq!(fair_share(5, 2), 3);
        assert_eq!(fair_share(3, 0), 3);
    }

    #[test]
    fn pods_starting_together_take_different_binds() {
        let live = pods(&["a", "b", "c"]);
        let none = owners(&[]);
        let a = run("a", 2, &live, &none, &[]);
        let b = run("b", 2, &live, &none, &[]);
        assert_eq!(a, vec![Action::Claim(0)]);
        assert_eq!(b, vec![Action::Claim(1)]);
        // The third finds nothing free once the others own theirs.
        let owned = owners(&[(0, "a"), (1, "b")]);
        assert!(run("c", 2, &live, &owned, &[]).is_empty());
    }

    #[test]
    fn a_lone_pod_takes_everything_and_gives_up_its_excess_when_a_peer_comes() {
        let alone = pods(&["a"]);
        let claims = run("a", 2, &alone, &owners(&[]), &[]);
        assert_eq!(claims, vec![Action::Claim(0), Action::Claim(1)]);
        let both = pods(&["a", "b"]);
        let owned = owners(&[(0, "a"), (1, "a")]);
        assert_eq!(
            run("a", 2, &both, &owned, &[0, 1]),
            vec![Action::Release(1)]
        );
        assert_eq!(run("b", 2, &both, &owned, &[]), Vec::<Action>::new());
        // With 3 pods and 2 binds, a pod with one bind is not asked to move it.
        let three = pods(&["a", "b", "c"]);
        let spread = owners(&[(0, "a"), (1, "b")]);
        assert!(run("a", 2, &three, &spread, &[0]).is_empty());
    }

    #[test]
    fn a_dead_pods_expired_keys_are_reclaimed_and_own_name_keys_adopted() {
        let live = pods(&["a", "b"]);
        // b died: its key expired; a takes the bind (its share is 1, but b has 0 < floor 1?
        // b is not live any more: only a).
        let alone = pods(&["a"]);
        assert_eq!(
            run("a", 2, &alone, &owners(&[(0, "a")]), &[0]),
            vec![Action::Claim(1)]
        );
        // A restarted process of pod a finds its old keys: adopts them.
        assert_eq!(
            run("a", 2, &live, &owners(&[(0, "a"), (1, "b")]), &[]),
            vec![Action::Claim(0)]
        );
        // Lowered bind count: the id beyond it is given up.
        assert_eq!(
            run("a", 1, &alone, &owners(&[(0, "a"), (1, "a")]), &[0, 1]),
            vec![Action::Release(1)]
        );
    }

    #[test]
    fn keys_round_trip() {
        let op = OperatorId::try_new("awcc").unwrap();
        let key = owner_key(&op, Direction::Trx, 3);
        assert_eq!(key, "awcc.trx.3");
        assert_eq!(bind_id_of(&key, &op, Direction::Trx), Some(3));
        assert_eq!(bind_id_of("awcc.tx.3", &op, Direction::Trx), None);
        assert_eq!(pod_key(&op, Direction::Trx, "pod-1"), "awcc.trx.pod-1");
    }
}
