//! Several service processes for one operator: each bind has exactly one owner (NATS KV
//! `smpp-bind-owners`), a dead owner's bind moves within the scaled TTL, a SIGTERM or a
//! rolling restart under load hands binds over with nothing lost, pinned subjects follow
//! their bind, the reconciler cleans up what the buckets keep, a primary fails over to
//! its backup operator and back, and one bind is drained and resumed by the on-call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::sim::credentials;
use crate::support::{
    Nats, Oms, Service, Sim, Stage, correlation_rows, eventually, forbid_in_logs, schema, unique,
};

const T: Duration = Duration::from_secs(30);

async fn bound_sessions(sim: &Sim) -> usize {
    sim.connections()
        .await
        .iter()
        .filter(|c| !c["mode"].is_null())
        .count()
}

/// Owner pod of each bind key, read from the bucket.
async fn owners(nats: &Nats, op: &str, binds: u16) -> Vec<Option<String>> {
    let Ok(kv) = nats.js.get_key_value("smpp-bind-owners").await else {
        return vec![None; binds as usize];
    };
    let mut out = Vec::new();
    for id in 0..binds {
        let value = kv.get(format!("{op}.trx.{id}")).await.ok().flatten();
        out.push(value.and_then(|v| {
            serde_json::from_slice::<serde_json::Value>(&v).ok()?["pod"]
                .as_str()
                .map(str::to_owned)
        }));
    }
    out
}

#[tokio::test]
async fn three_pods_share_two_binds_and_a_killed_owner_is_replaced() {
    let test = "cluster_owners";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({}));
    let oms = Oms::start(
        test,
        credentials(&op, sim.smpp_port, json!({"bindCount": 2})),
    );
    let mut pods = Vec::new();
    for name in ["cluster_owners_a", "cluster_owners_b", "cluster_owners_c"] {
        pods.push(Some(Service::start(name, &nats, &oms, &op, &[]).await));
    }
    let owned = eventually(T, "two binds owned by two pods", || async {
        let owners = owners(&nats, &op, 2).await;
        let pods: BTreeSet<String> = owners.iter().flatten().cloned().collect();
        (pods.len() == 2 && bound_sessions(&sim).await == 2).then_some(owners)
    })
    .await;
    // Every pod is ready: two own a bound bind, the third is a standby (a rolling update
    // waits for readiness; a standby that could never be ready would stall it).
    for pod in pods.iter().flatten() {
        eventually(T, "ready", || async {
            (pod.ready().await == 200).then_some(())
        })
        .await;
    }
    // Exactly two sessions for a while (no pod binds what it does not own).
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(
            bound_sessions(&sim).await <= 2,
            "more sessions than bindCount"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // kill -9 the owner of bind 0: another pod takes it within the TTL (2 s) and some
    // refreshes; never more than two sessions.
    let victim = owned[0].clone().expect("owner");
    let index = ["cluster_owners_a", "cluster_owners_b", "cluster_owners_c"]
        .iter()
        .position(|n| victim == format!("{n}-0"))
        .expect("owner is one of the pods");
    let killed = Instant::now();
    pods[index] = None;
    let mut max_sessions = 0;
    let new_owner = loop {
        let sessions = bound_sessions(&sim).await;
        max_sessions = max_sessions.max(sessions);
        let owners = owners(&nats, &op, 2).await;
        if let Some(owner) = owners[0].clone()
            && owner != victim
            && sessions == 2
        {
            break owner;
        }
        assert!(killed.elapsed() < T, "bind 0 not re-owned: {owners:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let reclaim = killed.elapsed();
    assert!(
        max_sessions <= 2,
        "at most bindCount sessions, saw {max_sessions}"
    );
    assert!(
        reclaim < Duration::from_secs(10),
        "re-owned after {reclaim:?}"
    );
    assert_ne!(new_owner, victim);
    println!("bind 0 re-owned by {new_owner} {reclaim:?} after kill -9 of {victim}");
}

// ----- shared by the tests below ---------------------------------------------------------

/// Pod names of a test.
fn pod(test: &str, name: &str) -> String {
    format!("{test}_{name}")
}

/// Start a pod named `name` (its `POD_NAME`).
async fn start_pod(
    test: &str,
    name: &str,
    nats: &Nats,
    oms: &Oms,
    op: &str,
    extra: &[(&str, &str)],
) -> Service {
    let pod_name = pod(test, name);
    let mut env = vec![("POD_NAME", pod_name.as_str())];
    env.extend_from_slice(extra);
    Service::start(&pod_name, nats, oms, op, &env).await
}

/// Two pods (`a`, `b`) of one operator with two binds, each owning one, both bound: the
/// pods by name and the owner of each bind.
async fn two_pods_two_binds(
    test: &str,
    nats: &Nats,
    sim: &Sim,
    op: &str,
) -> (Oms, BTreeMap<String, Service>, Vec<Option<String>>) {
    let oms = Oms::start(
        test,
        credentials(op, sim.smpp_port, json!({"bindCount": 2})),
    );
    let mut pods = BTreeMap::new();
    for name in ["a", "b"] {
        pods.insert(
            pod(test, name),
            start_pod(test, name, nats, &oms, op, &[]).await,
        );
    }
    let owned = eventually(T, "two binds on two pods", || async {
        let owners = owners(nats, op, 2).await;
        let distinct: BTreeSet<String> = owners.iter().flatten().cloned().collect();
        (distinct.len() == 2 && bound_sessions(sim).await == 2).then_some(owners)
    })
    .await;
    (oms, pods, owned)
}

/// Samples the bound sessions at a simulator every 25 ms until dropped: the most seen.
struct SessionWatch {
    max: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SessionWatch {
    fn start(sim: &Sim) -> SessionWatch {
        let max = Arc::new(AtomicUsize::new(0));
        let url = format!("{}/connections", sim.control);
        let seen = max.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                if let Ok(response) = http.get(&url).send().await
                    && let Ok(list) = response.json::<Vec<Value>>().await
                {
                    let bound = list.iter().filter(|c| !c["mode"].is_null()).count();
                    seen.fetch_max(bound, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        });
        SessionWatch { max, task }
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for SessionWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const LOAD_TEXT: &str = "Cluster load test message";

/// Numbers of load messages: each command goes to a number of its own in the test run.
static NUMBERS: AtomicUsize = AtomicUsize::new(0);

/// Publish `n` commands on `subject`, at most `per_second`, from a task; answers the
/// message ids (each to its own number, `9371` + a counter).
fn load(
    nats: &Nats,
    op: &str,
    subject: String,
    n: usize,
    per_second: u64,
) -> tokio::task::JoinHandle<Vec<String>> {
    forbid_in_logs(&[LOAD_TEXT]);
    let js = nats.js.clone();
    let op = op.to_owned();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let due = started + Duration::from_micros(1_000_000 * i as u64 / per_second);
            tokio::time::sleep_until(due.into()).await;
            let id = uuid::Uuid::new_v4().to_string();
            let command = json!({
                "version": "1.0",
                "messageId": id,
                "operatorId": op,
                "to": format!("+9371{:07}", NUMBERS.fetch_add(1, Ordering::Relaxed)),
                "text": LOAD_TEXT,
            });
            js.publish(
                subject.clone(),
                serde_json::to_vec(&command).unwrap().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stream acknowledged");
            ids.push(id);
        }
        ids
    })
}

/// Wait until every id has its correlation row (single-part messages: one each); the
/// number of ids without one (0 = nothing lost).
async fn wait_all_rows(ids: &[String], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = correlation_rows(ids).await.len();
        if rows == ids.len() || Instant::now() >= deadline {
            return ids.len() - rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// submit_sm the simulators received beyond one per destination number.
fn duplicates(sims: &[&Sim]) -> usize {
    let submits: Vec<Value> = sims
        .iter()
        .flat_map(|s| s.received_now("submit_sm"))
        .collect();
    let distinct: BTreeSet<&str> = submits
        .iter()
        .filter_map(|s| s["destination_addr"].as_str())
        .collect();
    submits.len() - distinct.len()
}

/// Operator id of each correlation row of these messages.
async fn row_operators(ids: &[String]) -> Vec<String> {
    let client = crate::support::pg().await;
    client
        .query(
            "SELECT operator_id FROM smpp.message_correlations WHERE message_id = ANY($1)",
            &[&ids],
        )
        .await
        .map(|rows| rows.iter().map(|r| r.get(0)).collect())
        .unwrap_or_default()
}

/// Wait until bind `id` is owned by a pod other than `not` and `sessions` are bound.
async fn wait_owner(
    nats: &Nats,
    sim: &Sim,
    op: &str,
    binds: u16,
    id: u16,
    not: &str,
    sessions: usize,
) -> String {
    eventually(T, "bind re-owned and bound", || async {
        let owner = owners(nats, op, binds).await[id as usize].clone()?;
        (owner != not && bound_sessions(sim).await == sessions).then_some(owner)
    })
    .await
}

#[tokio::test]
async fn sigterm_of_an_owner_under_load_hands_its_bind_over_and_loses_nothing() {
    let test = "cluster_sigterm";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({"receipts": false, "resp_delay_ms": 5}));
    let mut health = nats.subscribe("operator.health").await;
    let (_oms, mut pods, owned) = two_pods_two_binds(test, &nats, &sim, &op).await;
    let watch = SessionWatch::start(&sim);
    let sent = load(&nats, &op, format!("smpp.operator.{op}"), 1500, 300);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // SIGTERM the owner of bind 0 while commands keep coming.
    let victim = owned[0].clone().unwrap();
    let stopped_at = Instant::now();
    let status = pods.get_mut(&victim).unwrap().terminate().await;
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM: clean exit, got {status:?}"
    );
    let new_owner = wait_owner(&nats, &sim, &op, 2, 0, &victim, 2).await;
    let takeover = stopped_at.elapsed();
    // The owner pod is in the health events and counted as an ownership change.
    let bound = health
        .wait_for(T, "bind 0 BOUND on its new owner", |e| {
            e["bindId"] == 0 && e["state"] == "BOUND" && e["pod"] == new_owner.as_str()
        })
        .await;
    schema::assert_valid("operator-health-event.v1.schema.json", &bound);
    assert_eq!(
        pods[&new_owner]
            .metric_sum("smpp_bind_owner_changes_total", "")
            .await,
        2.0,
        "the survivor claimed its own bind, then the stopped pod's"
    );

    let ids = sent.await.unwrap();
    let lost = wait_all_rows(&ids, T).await;
    nats.wait_drained(&op, T).await;
    let dups = duplicates(&[&sim]);
    let unbinds = sim.received("unbind").await.len();
    println!(
        "SIGTERM of {victim}: bind 0 owned and bound by {new_owner} {takeover:?} after the signal; \
         {} commands, lost {lost}, duplicates {dups}, sessions at most {}, unbinds {unbinds}",
        ids.len(),
        watch.max()
    );
    assert_eq!(lost, 0, "every command has its row");
    assert_eq!(dups, 0, "a graceful handover sends nothing twice");
    assert!(watch.max() <= 2, "never more sessions than bindCount");
    assert!(unbinds >= 1, "the stopped pod unbound");
    assert!(
        takeover < Duration::from_secs(10),
        "taken over in {takeover:?}"
    );
    sim.assert_golden_clean().await;
}

#[tokio::test]
async fn a_rolling_restart_under_load_loses_nothing_and_never_binds_more_than_bind_count() {
    let test = "cluster_rolling";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({"receipts": false, "resp_delay_ms": 5}));
    let oms = Oms::start(
        test,
        credentials(&op, sim.smpp_port, json!({"bindCount": 2})),
    );
    let mut old = Vec::new();
    for name in ["a", "b", "c"] {
        old.push(start_pod(test, name, &nats, &oms, &op, &[]).await);
    }
    eventually(T, "two binds bound", || async {
        (bound_sessions(&sim).await == 2).then_some(())
    })
    .await;
    let watch = SessionWatch::start(&sim);
    let sent = load(&nats, &op, format!("smpp.operator.{op}"), 3000, 250);
    // A rolling update with maxSurge 1: a new pod comes up, then an old one goes.
    let mut new = Vec::new();
    for (n, mut pod) in old.into_iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let name = format!("new{n}");
        new.push(start_pod(test, &name, &nats, &oms, &op, &[]).await);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = pod.terminate().await;
        assert!(
            status.is_some_and(|s| s.success()),
            "pod {n} exited {status:?}"
        );
        eventually(T, "two binds bound again", || async {
            (bound_sessions(&sim).await == 2).then_some(())
        })
        .await;
    }
    let ids = sent.await.unwrap();
    let lost = wait_all_rows(&ids, T).await;
    nats.wait_drained(&op, T).await;
    let dups = duplicates(&[&sim]);
    let owners_now = owners(&nats, &op, 2).await;
    println!(
        "rolling restart of 3 pods: {} commands, lost {lost}, duplicates {dups}, sessions at most {}, owners now {owners_now:?}",
        ids.len(),
        watch.max()
    );
    assert_eq!(lost, 0, "every command has its row");
    assert_eq!(dups, 0, "graceful stops send nothing twice");
    assert!(watch.max() <= 2, "never more sessions than bindCount");
    assert!(
        owners_now
            .iter()
            .flatten()
            .all(|o| o.starts_with(&pod(test, "new"))),
        "the new pods own the binds: {owners_now:?}"
    );
    drop(new);
}

#[tokio::test]
async fn the_backup_operator_carries_the_traffic_while_the_primary_is_down() {
    let test = "cluster_failover";
    let primary = format!("opa{}", unique());
    let backup = format!("opb{}", unique());
    let nats = Nats::start(test).await;
    let sim_a = Sim::start(test, json!({}));
    let sim_b = Sim::start(test, json!({}));
    let mut creds = credentials(
        &primary,
        sim_a.smpp_port,
        json!({"backupOperatorId": backup}),
    );
    let backup_creds = credentials(&backup, sim_b.smpp_port, json!({"msgIdFormat": "HEX"}));
    creds[&backup] = backup_creds[&backup].clone();
    let oms = Oms::start(test, creds);
    let mut health = nats.subscribe("operator.health").await;
    let mut dlrs = nats.subscribe("sms.dlr.inbound").await;
    let service = Service::start(
        test,
        &nats,
        &oms,
        &primary,
        &[("FAILOVER_AFTER_FAILURES", "2")],
    )
    .await;
    service.wait_bound(1).await;
    let subject = format!("smpp.operator.{primary}");
    let before = load(&nats, &primary, subject.clone(), 20, 200)
        .await
        .unwrap();
    assert_eq!(wait_all_rows(&before, T).await, 0);

    // The primary SMSC dies: after two failed attempts the backup is bound.
    let port_a = sim_a.smpp_port;
    let killed = Instant::now();
    drop(sim_a);
    let unbound = health
        .wait_for(T, "primary UNBOUND routed through the backup", |e| {
            e["operatorId"] == primary.as_str()
                && e["state"] == "UNBOUND"
                && e["reason"] == "failover"
                && e["backupOperatorId"] == backup.as_str()
        })
        .await;
    let bound = health
        .wait_for(T, "backup BOUND", |e| {
            e["operatorId"] == backup.as_str()
                && e["state"] == "BOUND"
                && e["backupOperatorId"] == backup.as_str()
        })
        .await;
    let failover_after = killed.elapsed();
    for event in [&unbound, &bound] {
        schema::assert_valid("operator-health-event.v1.schema.json", event);
    }
    let (_, binds) = service
        .admin_get("/admin/binds", Some(&service.token.clone()))
        .await;
    let backup_row = binds["binds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["role"] == "backup")
        .cloned()
        .expect("admin binds lists the backup");
    assert_eq!(backup_row["operatorId"], backup.as_str());
    assert_eq!(backup_row["backupFor"], primary.as_str());
    assert_eq!(backup_row["state"], "BOUND");
    assert!(backup_row["ownerPod"].is_string());

    // Traffic for the primary flows through the backup, rows and receipts under it.
    let during = load(&nats, &primary, subject.clone(), 50, 200)
        .await
        .unwrap();
    assert_eq!(
        wait_all_rows(&during, T).await,
        0,
        "nothing lost on the backup"
    );
    assert!(
        row_operators(&during).await.iter().all(|o| *o == backup),
        "rows of the backup's submits are under the backup operator"
    );
    assert_eq!(sim_b.received_at_least("submit_sm", 50).await.len(), 50);
    let receipt = dlrs
        .wait_for(T, "a receipt from the backup, correlated", |e| {
            e["operatorId"] == backup.as_str()
                && e["correlated"] == true
                && during.iter().any(|id| e["messageId"] == id.as_str())
        })
        .await;
    schema::assert_valid("dlr-inbound-event.v1.schema.json", &receipt);

    // The primary comes back: FAILBACK, the backup drained and unbound.
    let sim_a = Sim::start_on(test, json!({}), port_a, 100_000);
    let came_back = Instant::now();
    let failback = health
        .wait_for(T, "FAILBACK of the primary", |e| {
            e["operatorId"] == primary.as_str() && e["state"] == "FAILBACK"
        })
        .await;
    schema::assert_valid("operator-health-event.v1.schema.json", &failback);
    assert!(failback["backupOperatorId"].is_null());
    let backup_down = health
        .wait_for(T, "backup unbound after the failback", |e| {
            e["operatorId"] == backup.as_str()
                && e["state"] == "UNBOUND"
                && e["reason"] == "failback"
        })
        .await;
    schema::assert_valid("operator-health-event.v1.schema.json", &backup_down);
    let failback_after = came_back.elapsed();
    assert!(!sim_b.received_at_least("unbind", 1).await.is_empty());
    let after = load(&nats, &primary, subject, 20, 200).await.unwrap();
    assert_eq!(wait_all_rows(&after, T).await, 0);
    assert!(row_operators(&after).await.iter().all(|o| *o == primary));
    assert_eq!(sim_a.received_at_least("submit_sm", 20).await.len(), 20);
    nats.wait_drained(&primary, T).await;
    println!(
        "failover: backup bound {failover_after:?} after the primary SMSC died; \
         failback + backup drained {failback_after:?} after it came back; 90 commands, 0 lost"
    );
    service.assert_no_secrets(&[crate::support::sim::PASSWORD]);
}

/// Connection ids (at the simulator) that received a submit_sm after `skip` submits.
async fn submit_connections(sim: &Sim, skip: usize) -> BTreeSet<u64> {
    sim.received("submit_sm")
        .await
        .iter()
        .skip(skip)
        .filter_map(|r| r["conn"].as_u64())
        .collect()
}

/// Run the CLI: `smpp-connector admin …` against a service.
fn admin_cli(service: &Service, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_smpp-connector"))
        .arg("admin")
        .args(args)
        .env("ADMIN_URL", &service.admin)
        .env("ADMIN_TOKEN", &service.token)
        .output()
        .expect("smpp-connector admin");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn drain_and_resume_one_bind_while_the_other_sends() {
    let test = "cluster_drain";
    let s = Stage::builder(test)
        .sim(json!({"receipts": false, "resp_delay_ms": 50}))
        .credentials(json!({"bindCount": 2, "window": 20}))
        .bound(2)
        .start()
        .await;
    let subject = format!("smpp.operator.{}", s.op);

    // Drain bind 0 while both send: what it holds finishes, it takes nothing new.
    let first = load(&s.nats, &s.op, subject.clone(), 400, 400);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (ok, _) = admin_cli(&s.service, &["drain", &s.op, "trx", "0"]);
    assert!(ok, "admin drain");
    let drained_at = s.sim.received_now("submit_sm").len();
    let first = first.await.unwrap();
    assert_eq!(wait_all_rows(&first, T).await, 0, "held messages finished");
    let bind0 = eventually(T, "bind 0 drained, nothing held", || async {
        let (_, body) = s
            .service
            .admin_get("/admin/binds", Some(&s.service.token.clone()))
            .await;
        body["binds"]
            .as_array()?
            .iter()
            .find(|b| b["bindId"] == 0 && b["intake"] == "drained" && b["dispatches"] == 0)
            .cloned()
    })
    .await;
    assert_eq!(bind0["state"], "BOUND", "a drained bind stays bound");
    let (_, table) = admin_cli(&s.service, &["binds"]);
    assert!(
        table.contains("drained"),
        "the CLI shows the drain:\n{table}"
    );

    // While drained, new traffic goes only through the other bind; both stay bound.
    let skip = s.sim.received_now("submit_sm").len().max(drained_at);
    let second = load(&s.nats, &s.op, subject.clone(), 200, 1000)
        .await
        .unwrap();
    assert_eq!(wait_all_rows(&second, T).await, 0);
    let used = submit_connections(&s.sim, skip).await;
    assert_eq!(used.len(), 1, "only the open bind submits: {used:?}");
    assert_eq!(bound_sessions(&s.sim).await, 2, "both sessions stay bound");
    assert_eq!(
        s.service
            .metric_sum("smpp_connector_bind_intake_paused", "bindId=\"0\"")
            .await,
        1.0
    );

    // Resumed: both binds take traffic again.
    let (ok, _) = admin_cli(&s.service, &["resume", &s.op, "trx", "0"]);
    assert!(ok, "admin resume");
    let skip = s.sim.received_now("submit_sm").len();
    let third = load(&s.nats, &s.op, subject, 300, 3000).await.unwrap();
    assert_eq!(wait_all_rows(&third, T).await, 0);
    s.nats.wait_drained(&s.op, T).await;
    let used = submit_connections(&s.sim, skip).await;
    assert_eq!(
        used.len(),
        2,
        "both binds submit after the resume: {used:?}"
    );
    assert_eq!(duplicates(&[&s.sim]), 0);

    // Every admin action was logged with its action and target, never the token.
    let audited: Vec<(String, String)> = s
        .service
        .logs_with("admin action")
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap_or("").to_owned(),
                l["bind"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for action in ["drain", "resume"] {
        assert!(
            audited.contains(&(action.to_owned(), format!("{}/trx/0", s.op))),
            "{action} audited: {audited:?}"
        );
    }
    assert!(audited.iter().any(|(a, _)| a == "list"));
    assert!(
        !s.service.log_text().contains(&s.service.token),
        "the token is never logged"
    );
    let (status, _) = s
        .service
        .admin_post(
            &format!("/admin/binds/{}/trx/0/drain", s.op),
            Some("not-the-token-x"),
        )
        .await;
    assert_eq!(status, 401);
    assert!(!s.service.logs_with("admin action refused").is_empty());
}

/// Messages a pod pulled from its pinned consumer.
async fn pinned_pulled(service: &Service) -> f64 {
    service
        .metric_sum(
            "smpp_connector_lane_messages_total",
            "lane=\"pinned\",outcome=\"pulled\"",
        )
        .await
}

/// Commands pinned to a bind the operator does not have (bind 3 with `bindCount` 1) are
/// dead-lettered by bind 0's owner with the bind named, not left in the stream unseen;
/// the pinned subject of a bind it has still works.
#[tokio::test]
async fn commands_pinned_to_a_bind_the_operator_does_not_have_are_dead_lettered() {
    let test = "cluster_unserved";
    let nats = Nats::start(test).await;
    let mut dlq = nats.subscribe("sms.dispatch.dlq").await;
    // A short window: bind 0 looks after removed binds every 12 scans (3 s here).
    let s = Stage::builder(test)
        .nats(nats)
        .sim(json!({"receipts": false}))
        .env(&[("CONCAT_WINDOW_SECONDS", "1")])
        .start()
        .await;
    let unserved = format!("smpp.{}.trx.3.dispatch", s.op);
    let served = format!("smpp.{}.trx.0.dispatch", s.op);
    let mut ids = Vec::new();
    let subjects = std::iter::repeat_n(&unserved, 6).chain([&served]);
    for subject in subjects {
        let id = uuid::Uuid::new_v4().to_string();
        let command =
            json!({"messageId": id, "operatorId": s.op, "to": "93700000301", "text": "pinned"});
        crate::support::forbid_in_logs(&["93700000301"]);
        s.nats
            .publish_raw(subject, command.to_string().into_bytes())
            .await;
        ids.push(id);
    }
    for id in &ids[..6] {
        let letter = dlq
            .wait_for(T, "the dead letter", |e| e["messageId"] == id.as_str())
            .await;
        schema::assert_valid("dispatch-dead-letter.v1.schema.json", &letter);
        assert_eq!(letter["reason"], "INVALID_FIELD");
        assert_eq!(letter["subject"], unserved.as_str());
        let detail = letter["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("bind 3") && detail.contains("bindCount 1"),
            "{detail}"
        );
    }
    crate::support::wait_rows(&ids[6..], 1).await;
    assert_eq!(
        s.sim.received("submit_sm").await.len(),
        1,
        "only the served one is sent"
    );
    eventually(T, "the unserved subject emptied", || async {
        let (pending, ack_pending, _) = s
            .nats
            .consumer_counts("SMS_DISPATCH", &format!("qg-{}-trx-3", s.op))
            .await?;
        (pending == 0 && ack_pending == 0).then_some(())
    })
    .await;
    let lines = s
        .service
        .logs_with(
            "dispatch commands pinned to a bind the operator does not have were dead-lettered",
        )
        .len();
    assert!(
        (1..=2).contains(&lines),
        "a line per sweep, not per command: {lines}"
    );
}

#[tokio::test]
async fn a_pinned_subject_is_consumed_by_its_owner_only_and_follows_the_bind() {
    let test = "cluster_pinned";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({"receipts": false}));
    let (_oms, mut pods, owned) = two_pods_two_binds(test, &nats, &sim, &op).await;
    let owner = owned[1].clone().unwrap();
    let other = owned[0].clone().unwrap();
    // The owner of bind 1 creates its pinned consumer.
    eventually(T, "consumer qg-…-1", || async {
        nats.consumer_counts("SMS_DISPATCH", &format!("qg-{op}-trx-1"))
            .await
            .map(|_| ())
    })
    .await;

    let pinned = format!("smpp.{op}.trx.1.dispatch");
    let ids = load(&nats, &op, pinned.clone(), 60, 300).await.unwrap();
    assert_eq!(wait_all_rows(&ids, T).await, 0);
    let connections = submit_connections(&sim, 0).await;
    assert_eq!(connections.len(), 1, "one bind sent them: {connections:?}");
    assert_eq!(
        pinned_pulled(&pods[&owner]).await,
        60.0,
        "the owner took every pinned message"
    );
    assert_eq!(
        pinned_pulled(&pods[&other]).await,
        0.0,
        "the other pod took none"
    );

    // The owner is killed: the bind and its pinned subject move to the other pod.
    pods.remove(&owner);
    let new_owner = wait_owner(&nats, &sim, &op, 2, 1, &owner, 2).await;
    assert_eq!(new_owner, other);
    let more = load(&nats, &op, pinned, 40, 300).await.unwrap();
    assert_eq!(wait_all_rows(&more, T).await, 0);
    eventually(T, "pinned consumer drained", || async {
        let (pending, ack_pending, _) = nats
            .consumer_counts("SMS_DISPATCH", &format!("qg-{op}-trx-1"))
            .await?;
        (pending == 0 && ack_pending == 0).then_some(())
    })
    .await;
    assert_eq!(
        pinned_pulled(&pods[&other]).await,
        40.0,
        "the new owner took the rest"
    );
    assert_eq!(duplicates(&[&sim]), 0);
}

#[tokio::test]
async fn the_reconciler_removes_orphans_when_the_buckets_keep_keys_for_ever() {
    let test = "cluster_reconcile";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    // Buckets provisioned without a max age: nothing expires by itself.
    for bucket in ["smpp-bind-owners", "smpp-bind-pods"] {
        nats.js
            .create_key_value(async_nats::jetstream::kv::Config {
                bucket: bucket.into(),
                history: 1,
                ..Default::default()
            })
            .await
            .expect("bucket");
    }
    let owners_kv = nats.js.get_key_value("smpp-bind-owners").await.unwrap();
    // A key left by a pod that is long gone.
    owners_kv
        .put(
            format!("{op}.trx.1"),
            json!({"pod": "ghost", "claimedAt": "2026-01-01T00:00:00Z"})
                .to_string()
                .into(),
        )
        .await
        .unwrap();
    let sim = Sim::start(test, json!({"receipts": false}));
    let oms = Oms::start(
        test,
        credentials(&op, sim.smpp_port, json!({"bindCount": 2})),
    );
    let fast = [("RECONCILE_MS", "500")];
    let a = start_pod(test, "a", &nats, &oms, &op, &fast).await;
    let a_name = pod(test, "a");
    eventually(T, "the ghost's bind reclaimed", || async {
        let owners = owners(&nats, &op, 2).await;
        (owners.iter().all(|o| o.as_deref() == Some(a_name.as_str()))
            && bound_sessions(&sim).await == 2)
            .then_some(())
    })
    .await;
    assert_eq!(a.metric_sum("smpp_bind_orphan_total", "").await, 1.0);
    assert!(
        !a.logs_with(
            "orphaned bind ownership removed (its pod no longer heartbeats); a live pod claims it"
        )
        .is_empty()
    );

    // A second pod takes its share; then the first is killed. Its keys and heartbeat
    // never expire here: the survivor reconciles them away and takes both binds.
    let watch = SessionWatch::start(&sim);
    let b = start_pod(test, "b", &nats, &oms, &op, &fast).await;
    let b_name = pod(test, "b");
    eventually(T, "one bind each", || async {
        let owners = owners(&nats, &op, 2).await;
        (owners.contains(&Some(b_name.clone())) && bound_sessions(&sim).await == 2).then_some(())
    })
    .await;
    let leads = "this pod reconciles bind ownership";
    assert_eq!(a.logs_with(leads).len(), 1, "a reconciles");
    assert!(b.logs_with(leads).is_empty(), "one reconciler at a time");
    let killed = Instant::now();
    drop(a);
    eventually(T, "the killed pod's bind reclaimed", || async {
        let owners = owners(&nats, &op, 2).await;
        (owners.iter().all(|o| o.as_deref() == Some(b_name.as_str()))
            && bound_sessions(&sim).await == 2)
            .then_some(())
    })
    .await;
    let reclaimed = killed.elapsed();
    assert!(b.metric_sum("smpp_bind_orphan_total", "").await >= 1.0);
    assert_eq!(
        b.logs_with(leads).len(),
        1,
        "b took the reconciler role over"
    );
    assert!(watch.max() <= 2, "never more sessions than bindCount");

    // A double claim (a heartbeat of another pod listing bind 0, which b owns) is found
    // and counted once it is seen twice.
    let pods_kv = nats.js.get_key_value("smpp-bind-pods").await.unwrap();
    let fake = format!("{op}.trx.impostor");
    let beats = tokio::spawn(async move {
        loop {
            let _ = pods_kv
                .put(
                    &fake,
                    json!({"pod": "impostor", "at": "x", "binds": [0]})
                        .to_string()
                        .into(),
                )
                .await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    eventually(T, "a double claim counted", || async {
        (b.metric_sum("smpp_bind_double_claim_total", "").await >= 1.0).then_some(())
    })
    .await;
    beats.abort();
    println!(
        "no-TTL buckets: a kill -9'd pod's bind reclaimed by the reconciler {reclaimed:?} after the kill (TTL 2 s)"
    );
}

#[tokio::test]
async fn a_pod_whose_key_moved_stops_the_bind_at_once() {
    let test = "cluster_moved";
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let sim = Sim::start(test, json!({"receipts": false}));
    let oms = Oms::start(test, credentials(&op, sim.smpp_port, json!({})));
    // A long TTL: only the moved revision can stop the bind this fast, and only the
    // reconciler can give the bind back before the thief's key would expire.
    let service = start_pod(
        test,
        "a",
        &nats,
        &oms,
        &op,
        &[
            ("OWNER_TTL_MS", "60000"),
            ("OWNER_REFRESH_MS", "300"),
            ("RECONCILE_MS", "500"),
            ("DRAIN_TIMEOUT_MS", "20000"),
            ("SUBMIT_RESP_TIMEOUT_MS", "60000"),
        ],
    )
    .await;
    service.wait_bound(1).await;
    let me = pod(test, "a");
    // Submits in flight that the SMSC answers only after 30 s: a graceful stop would wait
    // DRAIN_TIMEOUT_MS (20 s here) for them; a moved key must not.
    sim.behaviour(json!({"resp_delay_ms": 30000})).await;
    let ids = load(&nats, &op, format!("smpp.operator.{op}"), 10, 1000)
        .await
        .unwrap();
    sim.received_at_least("submit_sm", 10).await;
    let kv = nats.js.get_key_value("smpp-bind-owners").await.unwrap();
    // Someone else writes the key (a pod that believes it owns the bind).
    let moved = Instant::now();
    kv.put(
        format!("{op}.trx.0"),
        json!({"pod": "thief", "claimedAt": "2026-01-01T00:00:00Z"})
            .to_string()
            .into(),
    )
    .await
    .unwrap();
    eventually(T, "the session unbound at the SMSC", || async {
        (bound_sessions(&sim).await == 0).then_some(())
    })
    .await;
    let stopped = moved.elapsed();
    sim.behaviour(json!({"resp_delay_ms": 0})).await;
    assert_eq!(
        service
            .metric_sum("smpp_connector_possible_duplicate_submits_total", "")
            .await,
        10.0,
        "the abandoned in-flight submits are counted"
    );
    assert!(
        !service
            .logs_with("bind ownership lost (its key moved); stopping the bind")
            .is_empty()
    );
    assert!(
        !service
            .logs_with("bind stopped at once; held messages go back to the stream")
            .is_empty()
    );
    // The thief never heartbeats: the reconciler removes its key, the pod claims it again.
    eventually(T, "bind 0 reclaimed", || async {
        let owners = owners(&nats, &op, 1).await;
        (owners[0].as_deref() == Some(me.as_str()) && bound_sessions(&sim).await == 1).then_some(())
    })
    .await;
    let back = moved.elapsed();
    assert!(service.metric_sum("smpp_bind_orphan_total", "").await >= 1.0);
    // Nothing lost: the returned messages are sent again once the bind is back.
    assert_eq!(wait_all_rows(&ids, T).await, 0);
    assert!(
        stopped < Duration::from_secs(5),
        "stopped {stopped:?} after its key moved (refresh 300 ms, TTL 60 s)"
    );
    // What was abandoned in flight went out again: duplicates, each one counted.
    let dups = duplicates(&[&sim]);
    assert!(
        dups <= 10,
        "at most the abandoned in-flight submits: {dups}"
    );
    println!(
        "key moved: bind stopped {stopped:?} later, reclaimed {back:?} later (TTL 60 s); \
         10 commands, 0 lost, {dups} duplicates at the SMSC, 10 counted as possible"
    );
}
