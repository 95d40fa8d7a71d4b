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
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::identity::{Direction, OperatorId};

/// The owner bucket's key of a bind: `{operatorId}.{direction}.{bindId}`.
pub fn owner_key(operator_id: &OperatorId, direction: Direction, bind_id: u16) -> String {
    format!("{operator_id}.{}.{bind_id}", direction.as_str())
}

/// What every owner key of an operator's binds in one direction starts with:
/// `{operatorId}.{direction}.` (a KV key filter or prefix).
pub fn owner_prefix(operator_id: &OperatorId, direction: Direction) -> String {
    format!("{operator_id}.{}.", direction.as_str())
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

/// The value of a heartbeat key: the pod, when it wrote it, and the bind ids it runs —
/// what the reconciler compares with the owner keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub pod: String,
    /// RFC 3339.
    #[serde(default)]
    pub at: String,
    #[serde(default)]
    pub binds: Vec<u16>,
}

/// The key in the owner bucket that names the reconciler of an operator and direction:
/// `{operatorId}.{direction}.reconciler` (not a bind id, so never read as one).
pub fn leader_key(operator_id: &OperatorId, direction: Direction) -> String {
    format!("{operator_id}.{}.reconciler", direction.as_str())
}

/// Which heartbeats still beat, judged by the reconciler's own clock: a heartbeat whose
/// revision has not moved for longer than the TTL is dead, whatever the bucket keeps (a
/// bucket provisioned without a max age keeps a dead pod's heartbeat for ever). A
/// heartbeat first seen counts as beating until a whole TTL passed without a change, so a
/// reconciler that just took over declares nothing dead before it could know.
#[derive(Debug, Clone, Default)]
pub struct Liveness {
    /// Key → (last revision, when it was first seen at that revision).
    seen: BTreeMap<String, (u64, Instant)>,
}

impl Liveness {
    /// Record the revisions read now; keys no longer present are forgotten.
    pub fn observe(&mut self, now: Instant, revisions: &BTreeMap<String, u64>) {
        self.seen.retain(|key, _| revisions.contains_key(key));
        for (key, revision) in revisions {
            match self.seen.get_mut(key) {
                Some((seen, _)) if seen == revision => {}
                Some(entry) => *entry = (*revision, now),
                None => {
                    self.seen.insert(key.clone(), (*revision, now));
                }
            }
        }
    }

    /// The key has not changed for longer than `ttl`.
    pub fn is_stale(&self, key: &str, now: Instant, ttl: Duration) -> bool {
        self.seen
            .get(key)
            .is_some_and(|(_, since)| now.saturating_duration_since(*since) > ttl)
    }
}

/// What the reconciler found wrong with one bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The owner key names a pod that no longer heartbeats: delete it (by its revision)
    /// so a live pod claims the bind.
    Orphan {
        bind_id: u16,
        pod: String,
        revision: u64,
    },
    /// More than one pod runs the bind, or a pod runs it that the key does not name. The
    /// pods not named stop it on their next refresh (their revision no longer matches);
    /// the reconciler counts it and looks again next round.
    DoubleClaim {
        bind_id: u16,
        owner: Option<String>,
        runners: Vec<String>,
    },
}

/// Compare the owner keys (bind id → (pod, revision)) with what the live pods say they
/// run (pod → bind ids).
pub fn reconcile(
    owners: &BTreeMap<u16, (String, u64)>,
    live: &BTreeMap<String, Vec<u16>>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (bind_id, (pod, revision)) in owners {
        if !live.contains_key(pod) {
            findings.push(Finding::Orphan {
                bind_id: *bind_id,
                pod: pod.clone(),
                revision: *revision,
            });
        }
    }
    let mut runners: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (pod, binds) in live {
        for id in binds {
            runners.entry(*id).or_default().push(pod.clone());
        }
    }
    for (bind_id, pods) in runners {
        let owner = owners.get(&bind_id).map(|(pod, _)| pod.clone());
        let foreign = pods.iter().any(|p| Some(p) != owner.as_ref());
        if pods.len() > 1 || foreign {
            findings.push(Finding::DoubleClaim {
                bind_id,
                owner,
                runners: pods,
            });
        }
    }
    findings
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
    #[allow(clippy::disallowed_methods)] // a starting instant; the test moves time itself
    fn a_heartbeat_is_stale_only_after_a_whole_ttl_without_a_change() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(30);
        let mut live = Liveness::default();
        let revs = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, r)| (k.to_string(), *r)).collect()
        };
        live.observe(t0, &revs(&[("a", 1), ("b", 7)]));
        // First seen: not stale before a TTL passed.
        assert!(!live.is_stale("b", t0 + Duration::from_secs(29), ttl));
        live.observe(t0 + Duration::from_secs(10), &revs(&[("a", 2), ("b", 7)]));
        let later = t0 + Duration::from_secs(31);
        assert!(!live.is_stale("a", later, ttl), "a moved at 10 s");
        assert!(live.is_stale("b", later, ttl), "b never moved");
        // A key that went away is forgotten (never stale).
        live.observe(later, &revs(&[("a", 2)]));
        assert!(!live.is_stale("b", later + ttl * 2, ttl));
        assert!(!live.is_stale("unknown", later, ttl));
    }

    #[test]
    fn reconcile_finds_orphans_and_double_claims() {
        let owners: BTreeMap<u16, (String, u64)> = [
            (0, ("a".to_string(), 5)),
            (1, ("ghost".to_string(), 9)),
            (2, ("b".to_string(), 3)),
        ]
        .into_iter()
        .collect();
        let live: BTreeMap<String, Vec<u16>> = [
            ("a".to_string(), vec![0]),
            ("b".to_string(), vec![2, 3]),
            ("c".to_string(), vec![2]),
        ]
        .into_iter()
        .collect();
        let findings = reconcile(&owners, &live);
        assert_eq!(
            findings,
            vec![
                Finding::Orphan {
                    bind_id: 1,
                    pod: "ghost".into(),
                    revision: 9
                },
                Finding::DoubleClaim {
                    bind_id: 2,
                    owner: Some("b".into()),
                    runners: vec!["b".into(), "c".into()]
                },
                // Run by b without a key at all.
                Finding::DoubleClaim {
                    bind_id: 3,
                    owner: None,
                    runners: vec!["b".into()]
                },
            ]
        );
        // All consistent: nothing.
        let owners: BTreeMap<u16, (String, u64)> =
            [(0, ("a".to_string(), 5))].into_iter().collect();
        let live: BTreeMap<String, Vec<u16>> =
            [("a".to_string(), vec![0]), ("b".to_string(), vec![])]
                .into_iter()
                .collect();
        assert!(reconcile(&owners, &live).is_empty());
    }

    #[test]
    fn heartbeats_without_binds_still_parse() {
        // Written by an earlier version (an owner record): still a heartbeat.
        let old: Heartbeat = serde_json::from_str(r#"{"pod":"p","claimedAt":"x"}"#).unwrap();
        assert!(old.binds.is_empty());
        assert_eq!(
            leader_key(&OperatorId::try_new("op").unwrap(), Direction::Tx),
            "op.tx.reconciler"
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
