//! The fault suite with its figures (issue 11): each fault under a steady load of 100
//! commands/s (every fifth a three-part message), and for each one
//! - messages lost = 0: every command ends ACKed with every segment correlated, nothing
//!   dead-lettered, no message accepted twice by the SMSC unless the service counted it
//!   as a possible duplicate;
//! - the time to recover, measured: from the end of the fault until every command
//!   published before it is correlated, and the longest pause in sending;
//! - the service never exits, logs a bounded number of WARN/ERROR lines (per outage, not
//!   per message) and its `/ready` tells the truth, sampled every 100 ms: 503 only while
//!   no bind is BOUND, the backend named in `backendsDown` while it is down, none left
//!   down afterwards.
//!
//! Each test prints one line, `outage: NAME: …`, which `scripts/chaos faults` collects.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::load::{Load, Sent, ids_and_segments};
use crate::support::postgres::Postgres;
use crate::support::proxy::Proxy;
use crate::support::redis::Redis;
use crate::support::topology::Topology;
use crate::support::{Nats, Oms, Service, Sim, correlation_rows_at, eventually};

/// Commands per second during every fault.
const RATE: u64 = 100;
/// How long each fault lasts.
const FAULT: Duration = Duration::from_secs(3);
/// WARN and ERROR lines one fault may cause, whatever the traffic (a few per outage and
/// concern, and one per reconnect attempt).
const LOUD_LINES: usize = 12;

/// What `/ready` must show during the fault.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ready {
    /// 503 at some point: the bind is down.
    Unready,
    /// 200 throughout: the binds stay up, the messages wait.
    Ready,
}

/// A running stack for one fault.
pub(crate) struct Stage {
    pub op: String,
    pub nats: Nats,
    pub sim: Sim,
    pub oms: Oms,
    pub service: Service,
    /// A Redis of this test's own, which it can kill (everything in it is lost); `None`
    /// on a topology.
    pub redis: Option<Redis>,
    pub database: Database,
    /// Where the correlation rows are (not through the proxy).
    pub database_url: String,
    /// The servers, when they are a topology of `scripts/stack` (clusters, TLS).
    pub topology: Option<Topology>,
}

/// The service's PostgreSQL.
pub(crate) enum Database {
    /// The shared cluster, through a proxy the test can cut.
    Proxied(Proxy),
    /// A cluster of the test's own, which it can crash.
    Own(Postgres),
    /// The topology's.
    Topology,
}

/// The variables of a topology's env that point the service at its servers.
const TOPOLOGY_VARIABLES: &[&str] = &[
    "NATS_URL",
    "NATS_TLS_CA_FILE",
    "NATS_TLS_CERT_FILE",
    "NATS_TLS_KEY_FILE",
    "NATS_STREAM_REPLICAS",
    "REDIS_URL",
    "REDIS_TLS_CA_FILE",
    "REDIS_TLS_CERT_FILE",
    "REDIS_TLS_KEY_FILE",
    "DATABASE_URL",
];

impl Stage {
    /// NATS, the simulator (answering in 5 ms, receipts on), the OMS stub, a Redis of its
    /// own and the service, which reaches the shared PostgreSQL through a proxy the test
    /// can cut.
    async fn start(test: &'static str, behaviour: Value, env: &[(&str, &str)]) -> Stage {
        Self::start_with(test, behaviour, env, false).await
    }

    /// With `own_postgres`, the service uses a PostgreSQL cluster of the test's own.
    async fn start_with(
        test: &'static str,
        behaviour: Value,
        env: &[(&str, &str)],
        own_postgres: bool,
    ) -> Stage {
        let mut initial = json!({"receipts": true, "resp_delay_ms": 5, "store_and_forward": true});
        for (k, v) in behaviour.as_object().expect("behaviour object") {
            initial[k] = v.clone();
        }
        let redis = Redis::start(test).await;
        let (database, service_url, database_url) = if own_postgres {
            let pg = Postgres::start(test).await;
            let url = pg.url.clone();
            (Database::Own(pg), url.clone(), url)
        } else {
            let (proxy, proxied) = crate::faults::database_proxy().await;
            (
                Database::Proxied(proxy),
                proxied,
                crate::support::database_url(),
            )
        };
        let mut env = env.to_vec();
        env.extend([
            ("REDIS_URL", redis.url.as_str()),
            ("DATABASE_URL", &service_url),
        ]);
        let s = crate::support::Stage::builder(test)
            .sim(initial)
            .credentials(json!({"window": 30}))
            .env(&env)
            .start()
            .await;
        Stage {
            op: s.op,
            nats: s.nats,
            sim: s.sim,
            oms: s.oms,
            service: s.service,
            redis: Some(redis),
            database,
            database_url,
            topology: None,
        }
    }

    /// The proxy in front of the shared PostgreSQL (stages made by [`Stage::start`]).
    fn database_proxy(&self) -> &Proxy {
        let Database::Proxied(proxy) = &self.database else {
            unreachable!("the shared cluster behind a proxy")
        };
        proxy
    }

    /// The service on the servers of a `scripts/stack` topology (its NATS, Redis and
    /// PostgreSQL, clustered or over TLS), with the simulator and the OMS stub as
    /// [`Stage::start`] makes them.
    pub(crate) async fn on_topology(
        test: &'static str,
        topology: Topology,
        behaviour: Value,
        env: &[(&str, &str)],
    ) -> Stage {
        Self::on_topology_with(test, topology, behaviour, json!({}), env).await
    }

    /// [`Stage::on_topology`] with more of the operator's credentials (`bindCount`,
    /// `tpsLimit`…).
    pub(crate) async fn on_topology_with(
        test: &'static str,
        topology: Topology,
        behaviour: Value,
        operator: Value,
        env: &[(&str, &str)],
    ) -> Stage {
        let mut initial = json!({"receipts": true, "resp_delay_ms": 5, "store_and_forward": true});
        for (k, v) in behaviour.as_object().expect("behaviour object") {
            initial[k] = v.clone();
        }
        let mut extra = json!({"window": 30});
        for (k, v) in operator.as_object().expect("operator object") {
            extra[k] = v.clone();
        }
        let mut all = topology_env(&topology);
        all.extend_from_slice(env);
        let s = crate::support::Stage::builder(test)
            .nats(Nats::attach(test, &topology.env).await)
            .sim(initial)
            .credentials(extra)
            .env(&all)
            .start()
            .await;
        let database_url = topology.var("DATABASE_URL").to_owned();
        Stage {
            op: s.op,
            nats: s.nats,
            sim: s.sim,
            oms: s.oms,
            service: s.service,
            redis: None,
            database: Database::Topology,
            database_url,
            topology: Some(topology),
        }
    }
}

/// The variables that point a service at a topology's servers.
pub(crate) fn topology_env(topology: &Topology) -> Vec<(&'static str, &str)> {
    TOPOLOGY_VARIABLES
        .iter()
        .filter_map(|name| topology.env.get(*name).map(|v| (*name, v.as_str())))
        .collect()
}

/// `/ready` samples: (time, status, body).
type Samples = Arc<Mutex<Vec<(Instant, u16, Value)>>>;

fn sample_ready(url: String) -> (Samples, tokio::task::JoinHandle<()>) {
    let samples: Samples = Arc::default();
    let task = {
        let samples = samples.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .expect("client");
            loop {
                let at = Instant::now();
                if let Ok(response) = client.get(&url).send().await {
                    let status = response.status().as_u16();
                    let body = response.json().await.unwrap_or(Value::Null);
                    samples.lock().unwrap().push((at, status, body));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    (samples, task)
}

/// Submits the SMSC accepted (answered 0), per (destination, part number).
fn accepted_submits(sim: &Sim) -> BTreeMap<(String, u8), usize> {
    let records = sim.records();
    let mut submits: HashMap<(u64, u64), &Value> = HashMap::new();
    let mut accepted = BTreeMap::new();
    for record in &records {
        let key = (
            record["conn"].as_u64().unwrap_or(0),
            record["seq"].as_u64().unwrap_or(0),
        );
        match (record["dir"].as_str(), record["command"].as_str()) {
            (Some("in"), Some("submit_sm")) => {
                submits.insert(key, record);
            }
            (Some("out"), Some("submit_sm_resp")) if record["status"] == 0 => {
                if let Some(submit) = submits.remove(&key) {
                    let to = submit["destination_addr"].as_str().unwrap_or("").to_owned();
                    let part = hex::decode(submit["short_message_hex"].as_str().unwrap_or(""))
                        .ok()
                        .filter(|b| {
                            submit["esm_class"].as_u64().unwrap_or(0) & 0x40 != 0 && b.len() > 5
                        })
                        .map_or(1, |b| b[5]);
                    *accepted.entry((to, part)).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    accepted
}

/// The longest time without a submit_sm reaching the SMSC, from the first to the last.
fn longest_pause_ms(sim: &Sim) -> i64 {
    sim.submit_times_ms()
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(0)
}

/// Until every segment of these commands is correlated; how long that took.
async fn correlated(database_url: &str, sent: &[Sent], timeout: Duration) -> Duration {
    let started = Instant::now();
    let (ids, segments) = ids_and_segments(sent);
    eventually(timeout, "every segment correlated", || {
        let ids = ids.clone();
        async move {
            (correlation_rows_at(database_url, &ids).await.len() == segments).then_some(())
        }
    })
    .await;
    started.elapsed()
}

/// Run `fault` (which starts the fault and returns once it is over) under the load, then
/// check and print everything. `backend`: the one `/ready` must name while it is down.
pub(crate) async fn under_load(
    stage: &mut Stage,
    name: &str,
    ready: Ready,
    backend: Option<&str>,
    fault: impl AsyncFnOnce(&mut Stage, &Load),
) {
    let (samples, sampler) = sample_ready(format!("{}/ready", stage.service.http));
    let load = Load::start(&stage.nats, &stage.op, RATE);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let logs_before = stage.service.logs().len();
    let fault_started = Instant::now();
    fault(stage, &load).await;
    let cleared = Instant::now();
    let before_clear: Vec<Sent> = load
        .sent()
        .into_iter()
        .filter(|s| s.at <= cleared)
        .collect();
    let recovered = correlated(&stage.database_url, &before_clear, Duration::from_secs(90)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = load.stop().await;
    correlated(&stage.database_url, &sent, Duration::from_secs(90)).await;
    stage
        .nats
        .wait_drained(&stage.op, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    sampler.abort();
    let samples = samples.lock().unwrap().clone();

    // Nothing lost, nothing let in twice without being counted.
    assert!(stage.service.is_running(), "{name}: the service exited");
    assert_eq!(
        stage
            .nats
            .subject_messages("SMS_EVENTS", "sms.dispatch.dlq")
            .await,
        0,
        "{name}: nothing dead-lettered"
    );
    let (_, segments) = ids_and_segments(&sent);
    let accepted = accepted_submits(&stage.sim);
    assert_eq!(
        accepted.len(),
        segments,
        "{name}: every segment accepted by the SMSC"
    );
    let duplicates: usize = accepted.values().map(|n| n - 1).sum();
    let counted = stage
        .service
        .metric_sum("smpp_connector_possible_duplicate_submits_total", "")
        .await;
    assert!(
        duplicates as f64 <= counted,
        "{name}: {duplicates} segments accepted twice, {counted} counted as possible duplicates"
    );
    stage.sim.assert_golden_clean().await;

    // One line per outage, not per message.
    let loud = stage.service.loud_lines(logs_before);
    assert!(
        loud.len() <= LOUD_LINES,
        "{name}: {} WARN/ERROR lines for one fault: {:#?}",
        loud.len(),
        loud.iter().map(|l| &l["message"]).collect::<Vec<_>>()
    );

    // /ready tells the truth.
    let during: Vec<&(Instant, u16, Value)> = samples
        .iter()
        .filter(|(at, _, _)| *at >= fault_started && *at <= cleared)
        .collect();
    assert!(
        !during.is_empty(),
        "{name}: /ready sampled during the fault"
    );
    for (_, status, body) in &samples {
        let bound = body["bound"].as_u64().unwrap_or(0);
        assert_eq!(
            *status == 200,
            bound > 0,
            "{name}: /ready {status} with {bound} binds bound: {body}"
        );
    }
    let unready_ms = samples
        .windows(2)
        .filter(|w| w[0].1 != 200)
        .map(|w| w[1].0 - w[0].0)
        .sum::<Duration>()
        .as_millis();
    match ready {
        Ready::Unready => assert!(
            during.iter().any(|(_, status, _)| *status == 503),
            "{name}: /ready stayed 200 while the bind was down"
        ),
        Ready::Ready => assert!(
            during.iter().all(|(_, status, _)| *status == 200),
            "{name}: /ready went 503 although the binds stayed up"
        ),
    }
    if let Some(backend) = backend {
        assert!(
            during.iter().any(|(_, _, body)| {
                body["backendsDown"]
                    .as_array()
                    .is_some_and(|down| down.iter().any(|d| d["backend"] == backend))
            }),
            "{name}: /ready never named {backend} down during the outage"
        );
    }
    let last = samples.last().expect("a sample");
    assert_eq!(
        last.2["backendsDown"],
        json!([]),
        "{name}: a backend still reported down after recovery"
    );
    assert_eq!(last.1, 200, "{name}: ready again");
    assert_eq!(
        stage
            .service
            .metric_sum("smpp_connector_backend_up", "")
            .await,
        4.0,
        "{name}: smpp_connector_backend_up back to 1 for nats, postgres, redis and oms"
    );

    let publish_pause_ms = sent
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .max()
        .unwrap_or(0);
    println!(
        "outage: {name}: fault {:.1} s, recovered {} ms after it, longest pause in sending {} ms \
         (in publishing {publish_pause_ms} ms); {} commands, {segments} segments, lost 0, \
         {duplicates} accepted twice ({counted} counted); /ready 503 for {unready_ms} ms; {} \
         WARN/ERROR lines",
        (cleared - fault_started).as_secs_f64(),
        recovered.as_millis(),
        longest_pause_ms(&stage.sim),
        sent.len(),
        loud.len(),
    );
}

#[tokio::test]
async fn smsc_resets_the_connection_and_refuses_binds_for_a_while() {
    let mut stage = Stage::start("outage_reset", json!({"reset_on_close": true}), &[]).await;
    under_load(
        &mut stage,
        "smsc_reset",
        Ready::Unready,
        None,
        async |stage: &mut Stage, _: &Load| {
            stage
                .sim
                .behaviour(json!({"bind_status": "ESME_RBINDFAIL"}))
                .await;
            stage.sim.disconnect().await;
            tokio::time::sleep(FAULT).await;
            stage.sim.behaviour(json!({"bind_status": null})).await;
        },
    )
    .await;
}

#[tokio::test]
async fn smsc_stalls_answering_nothing() {
    let mut stage = Stage::start("outage_stall", json!({}), &[]).await;
    under_load(
        &mut stage,
        "smsc_stall",
        Ready::Unready,
        None,
        async |stage: &mut Stage, _: &Load| {
            stage
                .sim
                .behaviour(json!({"drop_submit_resp": true, "answer_enquire_link": false}))
                .await;
            tokio::time::sleep(FAULT).await;
            stage
                .sim
                .behaviour(json!({"drop_submit_resp": false, "answer_enquire_link": true}))
                .await;
        },
    )
    .await;
}

#[tokio::test]
async fn smsc_stops_answering_enquire_link() {
    let mut stage = Stage::start("outage_enquire_link", json!({}), &[]).await;
    // A session whose heartbeat goes unanswered is dead, however many submits it answers:
    // the bind reconnects (and is not BOUND meanwhile).
    under_load(
        &mut stage,
        "smsc_enquire_link",
        Ready::Unready,
        None,
        async |stage: &mut Stage, _: &Load| {
            stage
                .sim
                .behaviour(json!({"answer_enquire_link": false}))
                .await;
            tokio::time::sleep(FAULT).await;
            stage
                .sim
                .behaviour(json!({"answer_enquire_link": true}))
                .await;
        },
    )
    .await;
}

/// A burst of one error status for every submit.
///
/// The periods that follow are the SPEC's, scaled down 10× and 20× here: DRAINING after
/// ESME_RMSGQFUL lasts at least 30 s (3 s here) and a HALF_CLOSED_TX bind probes once a
/// minute (every 3 s here), so in production recovery takes that much longer.
async fn status_burst(test: &'static str, name: &str, status: &'static str) {
    let env = [
        ("DRAIN_MIN_MS", "3000"),
        ("HALF_CLOSED_PROBE_INTERVAL_MS", "3000"),
    ];
    let mut stage = Stage::start(test, json!({}), &env).await;
    under_load(
        &mut stage,
        name,
        Ready::Ready,
        None,
        async |stage: &mut Stage, _: &Load| {
            stage.sim.behaviour(json!({"submit_status": status})).await;
            tokio::time::sleep(FAULT).await;
            stage.sim.behaviour(json!({"submit_status": 0})).await;
        },
    )
    .await;
}

#[tokio::test]
async fn smsc_answers_a_burst_of_throttled() {
    status_burst("outage_throttled", "smsc_rthrottled", "ESME_RTHROTTLED").await;
}

#[tokio::test]
async fn smsc_answers_a_burst_of_queue_full() {
    status_burst("outage_queue_full", "smsc_rmsgqful", "ESME_RMSGQFUL").await;
}

#[tokio::test]
async fn smsc_answers_a_burst_of_submit_failed() {
    status_burst("outage_submit_fail", "smsc_rsubmitfail", "ESME_RSUBMITFAIL").await;
}

/// Redis killed (kill -9) and started again empty, as a cache without persistence:
/// TPS budgets start over, and the sequence-number and reference counters start again
/// where this process left them, never below (a block handed out again would reuse
/// numbers of the bind's session and references of its recent messages).
#[tokio::test]
async fn redis_is_killed_and_restarted_empty() {
    let mut stage = Stage::start("outage_redis", json!({}), &[]).await;
    let url = stage.redis.as_ref().expect("own Redis").url.clone();
    let before = Arc::new(Mutex::new((0, 0)));
    let counted = before.clone();
    let op = stage.op.clone();
    under_load(
        &mut stage,
        "redis",
        Ready::Ready,
        Some("redis"),
        async |stage: &mut Stage, _: &Load| {
            let redis = stage.redis.as_mut().expect("a Redis of the test's own");
            *counted.lock().unwrap() = crate::backends::counters(&redis.url, &op).await;
            redis.kill();
            tokio::time::sleep(FAULT).await;
            redis.restart().await;
        },
    )
    .await;
    let before = *before.lock().unwrap();
    let after = crate::backends::counters(&url, &stage.op).await;
    assert!(
        before.0 > 0 && before.1 > 0,
        "blocks were reserved before the kill: {before:?}"
    );
    // 0: no block taken since the restart.
    let held = |after: i64, before: i64| after == 0 || after >= before;
    assert!(
        held(after.0, before.0) && held(after.1, before.1),
        "the counters started over: (sequence, reference) {before:?} before, {after:?} after"
    );
}

/// PostgreSQL unreachable: the proxy in front of it refuses and cuts connections, as a
/// network partition does.
#[tokio::test]
async fn postgres_goes_away_and_comes_back() {
    let mut stage = Stage::start("outage_postgres", json!({}), &[]).await;
    under_load(
        &mut stage,
        "postgres_unreachable",
        Ready::Ready,
        Some("postgres"),
        async |stage: &mut Stage, _: &Load| {
            let proxy = stage.database_proxy();
            proxy.cut();
            tokio::time::sleep(FAULT).await;
            proxy.restore();
        },
    )
    .await;
}

/// PostgreSQL crashes (immediate shutdown: commits in flight lost or not, nothing
/// flushed) and starts again, recovering from its WAL: no command is ACKed without its
/// row, none is sent twice.
#[tokio::test]
async fn postgres_crashes_and_restarts() {
    let mut stage = Stage::start_with("outage_pg_crash", json!({}), &[], true).await;
    under_load(
        &mut stage,
        "postgres_crash",
        Ready::Ready,
        Some("postgres"),
        async |stage: &mut Stage, _: &Load| {
            let Database::Own(pg) = &mut stage.database else {
                unreachable!("a cluster of the test's own")
            };
            pg.crash();
            tokio::time::sleep(FAULT).await;
            pg.restart().await;
        },
    )
    .await;
}

/// PostgreSQL stops answering (the proxy in front of it swallows every reply: a frozen
/// server, a partition that drops packets). Every call gives up at its deadline
/// (`DATABASE_STATEMENT_TIMEOUT_MS` + 2 s), the wedged connections are dropped from the
/// pool, and the service carries on once the database answers again. Before the
/// deadlines, the first call waited for ever and with it every ACK and receipt of the pod.
#[tokio::test]
async fn postgres_stops_answering() {
    let env = [("DATABASE_STATEMENT_TIMEOUT_MS", "1000")];
    let mut stage = Stage::start("outage_pg_hung", json!({}), &env).await;
    under_load(
        &mut stage,
        "postgres_hung",
        Ready::Ready,
        Some("postgres"),
        async |stage: &mut Stage, _: &Load| {
            let proxy = stage.database_proxy();
            proxy.mute_replies();
            // Longer than a call's deadline (3 s), so calls do give up.
            tokio::time::sleep(FAULT + Duration::from_secs(2)).await;
            proxy.unmute_replies();
        },
    )
    .await;
}

/// A statement waits on a lock another session holds (an `ALTER TABLE`, a manual
/// `LOCK`): `statement_timeout` cancels it (SQLSTATE 57014) instead of the batch, and every
/// ACK behind it, waiting as long as the lock; the rows are written again once it is gone.
#[tokio::test]
async fn a_locked_table_is_an_outage_not_a_freeze() {
    let env = [("DATABASE_STATEMENT_TIMEOUT_MS", "500")];
    let mut stage = Stage::start_with("outage_pg_lock", json!({}), &env, true).await;
    under_load(
        &mut stage,
        "postgres_locked",
        Ready::Ready,
        Some("postgres"),
        async |stage: &mut Stage, _: &Load| {
            let client = crate::support::pg_connect(&stage.database_url)
                .await
                .expect("a session of the test's own");
            client
                .batch_execute(
                    "BEGIN; LOCK TABLE smpp.message_correlations IN ACCESS EXCLUSIVE MODE",
                )
                .await
                .expect("lock");
            tokio::time::sleep(FAULT).await;
            client.batch_execute("COMMIT").await.expect("unlock");
        },
    )
    .await;
    assert!(
        stage.service.log_text().contains("statement timeout"),
        "the service's statements were cancelled by statement_timeout"
    );
}

#[tokio::test]
async fn nats_is_killed_and_restarted() {
    let mut stage = Stage::start("outage_nats", json!({}), &[]).await;
    under_load(
        &mut stage,
        "nats",
        Ready::Ready,
        Some("nats"),
        async |stage: &mut Stage, load: &Load| {
            // The platform's publishers wait for their server too.
            load.pause().await;
            stage.nats.kill();
            tokio::time::sleep(FAULT).await;
            stage.nats.restart().await;
            load.resume();
        },
    )
    .await;
}

#[tokio::test]
async fn oms_is_unreachable_during_a_rebind() {
    let mut stage = Stage::start("outage_oms", json!({}), &[]).await;
    under_load(
        &mut stage,
        "oms_rebind",
        Ready::Unready,
        Some("oms"),
        async |stage: &mut Stage, _: &Load| {
            stage.oms.stop();
            let path = format!("/admin/binds/{}/trx/0/restart", stage.op);
            let (status, body) = stage
                .service
                .admin_post(&path, Some(&stage.service.token))
                .await;
            assert_eq!(status, 202, "restart accepted: {body}");
            tokio::time::sleep(FAULT).await;
            stage.oms.restart();
        },
    )
    .await;
}
