//! The service on the backends platforms run (issue 19), each brought up by `scripts/stack`
//! on 127.0.0.1 ([`Topology`]) and lost under load with the harness of the fault suite
//! ([`under_load`]: 100 commands/s, every fifth in three parts; nothing lost, nothing
//! dead-lettered, every segment accepted twice at most when counted as a possible
//! duplicate, `/ready` truthful, a bounded number of WARN lines). Each prints one
//! `outage: NAME: …` line with its figures.
//!
//! - TLS to every backend at once (PostgreSQL `hostssl` only, Redis on its TLS port only,
//!   NATS with a `tls` block; client certificates required by all three), and a
//!   certificate that does not verify refused at startup for each;
//! - a three-server NATS JetStream cluster with R3 streams and buckets: kill -9 of the
//!   server the service is connected to, then of the dispatch stream's leader;
//! - Redis Cluster of three primaries: two pods share the TPS budget, references,
//!   sequence numbers and MO reassembly work; Redis Sentinel with the primary killed;
//! - PostgreSQL with a synchronous standby: the primary stopped (immediate) and the standby
//!   promoted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::outages::{Ready, Stage, under_load};
use crate::support::load::Load;
use crate::support::topology::Topology;
use crate::support::{Service, eventually, pg_connect};

/// How long a fault lasts before the server comes back.
const FAULT: Duration = Duration::from_secs(3);

/// The service's last log line with this message, or panic.
fn logged(service: &Service, message: &str) -> Value {
    service
        .logs_with(message)
        .pop()
        .unwrap_or_else(|| panic!("no {message:?} line in {}", service.log.display()))
}

/// The servers refuse plaintext: PostgreSQL (`hostssl` only), Redis (TLS port only) and
/// NATS (a `tls` block with client verification).
async fn plaintext_is_refused(topology: &Topology) {
    let url = topology.var("DATABASE_URL");
    let (base, _) = url.split_once('?').expect("a query");
    let plain = format!("{base}?sslmode=disable");
    assert!(
        pg_connect(&plain).await.is_err(),
        "PostgreSQL accepted a plaintext session"
    );
    let port = topology.port("redis");
    let answer = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        socket.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf[..n].to_vec())
    };
    assert_ne!(
        answer.await.as_deref(),
        Some(&b"+PONG\r\n"[..]),
        "Redis answered a plaintext PING"
    );
    let nats_port = topology.port("nats");
    assert!(
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(format!("nats://127.0.0.1:{nats_port}"))
            .await
            .is_err(),
        "NATS accepted a client without TLS"
    );
}

/// Every backend over TLS at once, verified, with client certificates: the whole path
/// (dispatch, TPS and references in Redis, rows in PostgreSQL, receipts and events on
/// NATS) under load.
#[tokio::test]
async fn tls_to_every_backend_under_load() {
    let topology = Topology::start("backends_tls", &["--tls"]);
    plaintext_is_refused(&topology).await;
    let mut stage = Stage::on_topology("backends_tls", topology, json!({}), &[]).await;
    for (line, tls) in [("nats", "true"), ("redis", "true")] {
        assert_eq!(
            logged(&stage.service, line)["tls"].to_string(),
            tls,
            "{line} over TLS"
        );
    }
    assert!(
        logged(&stage.service, "postgres")["tls"]
            .as_str()
            .unwrap_or("")
            .starts_with("sslmode=verify-full (sslrootcert="),
        "PostgreSQL verified against the test's CA"
    );
    under_load(
        &mut stage,
        "tls_everywhere",
        Ready::Ready,
        None,
        async |_: &mut Stage, _: &Load| tokio::time::sleep(FAULT).await,
    )
    .await;
}

/// Start the service with `env` over the TLS topology's own and wait for it to exit.
async fn startup_refused(
    topology: &Topology,
    test: &str,
    env: &[(&str, &str)],
) -> (Option<i32>, Vec<String>) {
    let nats = crate::support::Nats::attach(test, &topology.env).await;
    let oms = crate::support::Oms::start(
        test,
        crate::support::sim::credentials("opcert", 1, json!({})),
    );
    let mut all: Vec<(&str, &str)> = [
        "NATS_TLS_CA_FILE",
        "NATS_TLS_CERT_FILE",
        "NATS_TLS_KEY_FILE",
        "REDIS_URL",
        "REDIS_TLS_CA_FILE",
        "REDIS_TLS_CERT_FILE",
        "REDIS_TLS_KEY_FILE",
        "DATABASE_URL",
    ]
    .iter()
    .map(|name| (*name, topology.var(name)))
    .collect();
    all.extend_from_slice(env);
    let mut service = Service::start_unready(test, &nats, &oms, "opcert", &all);
    let status = service
        .wait_exit(Duration::from_secs(40))
        .await
        .expect("the service stopped by itself");
    let errors = service
        .log_text()
        .lines()
        .filter(|l| l.starts_with("smpp-connector: "))
        .map(str::to_owned)
        .collect();
    (status.code(), errors)
}

/// A server certificate that does not verify (the CA given is not the one that signed
/// it) stops startup with exit 2 and one line naming the variable, for each backend; and
/// a `DATABASE_URL` without `sslmode` (verify-full) is refused by a plaintext server.
#[tokio::test]
async fn a_certificate_that_does_not_verify_stops_startup_naming_the_variable() {
    let topology = Topology::start("backends_bad_ca", &["--tls"]);
    let other = topology.var("STACK_TLS_OTHER_CA").to_owned();
    let ca = topology.var("NATS_TLS_CA_FILE").to_owned();
    let wrong_pg = topology.var("DATABASE_URL").replace(&ca, &other);
    assert_ne!(
        wrong_pg,
        topology.var("DATABASE_URL"),
        "sslrootcert in the URL"
    );
    let plaintext_server = crate::support::database_url().replace("?sslmode=disable", "");
    let no_client_pg = topology
        .var("DATABASE_URL")
        .split('&')
        .filter(|p| !p.starts_with("sslcert=") && !p.starts_with("sslkey="))
        .collect::<Vec<_>>()
        .join("&");
    // (backend, the settings that differ, the variable the error names)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 7] = [
        ("NATS", &[("NATS_TLS_CA_FILE", &other)], "NATS_TLS_CA_FILE"),
        (
            "Redis",
            &[("REDIS_TLS_CA_FILE", &other)],
            "REDIS_TLS_CA_FILE",
        ),
        ("PostgreSQL", &[("DATABASE_URL", &wrong_pg)], "DATABASE_URL"),
        (
            "PostgreSQL without TLS",
            &[("DATABASE_URL", &plaintext_server)],
            "DATABASE_URL",
        ),
        (
            "NATS without a client certificate",
            &[("NATS_TLS_CERT_FILE", ""), ("NATS_TLS_KEY_FILE", "")],
            "NATS_TLS_CERT_FILE",
        ),
        (
            "Redis without a client certificate",
            &[("REDIS_TLS_CERT_FILE", ""), ("REDIS_TLS_KEY_FILE", "")],
            "REDIS_TLS_CERT_FILE",
        ),
        (
            "PostgreSQL without a client certificate",
            &[("DATABASE_URL", &no_client_pg)],
            "DATABASE_URL",
        ),
    ];
    for (backend, setting, variable) in cases {
        let started = Instant::now();
        let (code, errors) = startup_refused(&topology, "backends_bad_ca", setting).await;
        assert_eq!(code, Some(2), "{backend}: exit 2 ({errors:?})");
        assert_eq!(errors.len(), 1, "{backend}: one line: {errors:?}");
        assert!(
            errors[0].starts_with(&format!("smpp-connector: configuration error: {variable} ")),
            "{backend}: the line names {variable}: {}",
            errors[0]
        );
        println!(
            "backends: {backend}: refused in {} ms: {}",
            started.elapsed().as_millis(),
            errors[0]
        );
    }
}

/// `sslmode` against a TLS-only PostgreSQL whose certificate names `localhost` and
/// 127.0.0.1, reached under another name (`host=db.example`, `hostaddr=127.0.0.1`):
/// `verify-full` refuses the name, `verify-ca` checks only the chain, `require` with
/// `sslrootcert` checks the chain (as libpq), without it nothing; another CA is refused by
/// every mode that checks, and the system roots do not know the test's CA.
#[tokio::test]
async fn sslmode_checks_what_libpq_checks() {
    let topology = Topology::start("backends_sslmode", &["--tls"]);
    let port = topology.port("pg");
    let ca = topology.var("NATS_TLS_CA_FILE").to_owned();
    let other = topology.var("STACK_TLS_OTHER_CA").to_owned();
    let cert = topology.var("NATS_TLS_CERT_FILE").to_owned();
    let key = topology.var("NATS_TLS_KEY_FILE").to_owned();
    let url = |host: &str, mode: &str, root: Option<&str>| {
        let mut url = format!(
            "postgres://postgres@{host}:{port}/smpp?sslmode={mode}&sslcert={cert}&sslkey={key}"
        );
        if host != "127.0.0.1" {
            url.push_str("&hostaddr=127.0.0.1");
        }
        if let Some(root) = root {
            url.push_str(&format!("&sslrootcert={root}"));
        }
        url
    };
    let cases = [
        ("127.0.0.1", "verify-full", Some(ca.as_str()), true),
        ("db.example", "verify-full", Some(ca.as_str()), false),
        ("db.example", "verify-ca", Some(ca.as_str()), true),
        ("127.0.0.1", "verify-ca", Some(other.as_str()), false),
        ("127.0.0.1", "verify-full", Some("system"), false),
        ("db.example", "require", None, true),
        ("db.example", "require", Some(ca.as_str()), true),
        ("127.0.0.1", "require", Some(other.as_str()), false),
        ("db.example", "prefer", None, true),
    ];
    for (host, mode, root, accepted) in cases {
        let result = pg_connect(&url(host, mode, root)).await;
        assert_eq!(
            result.is_ok(),
            accepted,
            "host {host}, sslmode={mode}, sslrootcert={root:?}: {:?}",
            result.err()
        );
    }
}

// ---------------------------------------------------------------------------------------
// NATS cluster

/// The monitoring URL of each NATS node of the topology, by node name.
fn nats_monitors(topology: &Topology) -> BTreeMap<String, String> {
    topology.json["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["kind"] == "nats")
        .map(|n| {
            (
                n["name"].as_str().expect("name").to_owned(),
                format!(
                    "http://127.0.0.1:{}",
                    n["ports"]["monitor"].as_u64().expect("monitor port")
                ),
            )
        })
        .collect()
}

async fn get_json(url: &str) -> Option<Value> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// The node the service (client name `smpp-connector/{pod}`) is connected to.
async fn node_serving(topology: &Topology, pod: &str) -> String {
    let name = format!("smpp-connector/{pod}");
    let monitors = nats_monitors(topology);
    eventually(Duration::from_secs(20), "the service's NATS server", || {
        let (monitors, name) = (monitors.clone(), name.clone());
        async move {
            for (node, url) in &monitors {
                let Some(connz) = get_json(&format!("{url}/connz?limit=1024")).await else {
                    continue;
                };
                let serving = connz["connections"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["name"] == name.as_str()));
                if serving {
                    return Some(node.clone());
                }
            }
            None
        }
    })
    .await
}

/// The node leading stream `stream` (its server name is the node name).
async fn stream_leader(topology: &Topology, stream: &str) -> String {
    let monitors = nats_monitors(topology);
    eventually(Duration::from_secs(20), "the stream's leader", || {
        let monitors = monitors.clone();
        async move {
            for url in monitors.values() {
                let Some(jsz) = get_json(&format!("{url}/jsz?streams=true")).await else {
                    continue;
                };
                for account in jsz["account_details"].as_array().into_iter().flatten() {
                    for info in account["stream_detail"].as_array().into_iter().flatten() {
                        if info["name"] == stream
                            && let Some(leader) = info["cluster"]["leader"].as_str()
                        {
                            return Some(leader.to_owned());
                        }
                    }
                }
            }
            None
        }
    })
    .await
}

/// Wait until every node of the cluster answers `/healthz` (JetStream current).
async fn nats_healthy(topology: &Topology) {
    let monitors = nats_monitors(topology);
    eventually(Duration::from_secs(30), "every NATS node healthy", || {
        let monitors = monitors.clone();
        async move {
            for url in monitors.values() {
                get_json(&format!("{url}/healthz")).await?;
            }
            Some(())
        }
    })
    .await;
}

/// A JetStream cluster of three with R3 streams and buckets: kill -9 of the server the
/// service is connected to (it moves to another, pulls, acks, publishes and its owner keys
/// go on), that server back, then kill -9 of the dispatch stream's leader.
#[tokio::test]
async fn nats_cluster_loses_the_connected_server_then_the_stream_leader() {
    let topology = Topology::start("backends_nats", &["--nats-cluster"]);
    // Owner keys with production's TTL (30 s), refreshed every 3 s (10 s in production).
    // A server lost and a stream leader elected hold KV requests up to their 5 s timeout
    // each, and an ownership round makes several in a row: keys of the scaled-down timers
    // (2 s) or of 10 s expire under that and the bind stops, as its fencing requires (a
    // deadline per ownership round is issue 21's).
    let env = [("OWNER_TTL_MS", "30000"), ("OWNER_REFRESH_MS", "3000")];
    let mut stage = Stage::on_topology("backends_nats", topology, json!({}), &env).await;
    // Streams and buckets replicated on three servers.
    for stream in [
        "SMS_DISPATCH",
        "SMS_EVENTS",
        "KV_smpp-bind-owners",
        "KV_smpp-bind-pods",
    ] {
        let mut info = stage.nats.js.get_stream(stream).await.expect(stream);
        let info = info.info().await.expect("stream info");
        assert_eq!(info.config.num_replicas, 3, "{stream} has three replicas");
    }
    let pod = logged(&stage.service, "smpp-connector starting")["pod"]
        .as_str()
        .expect("pod")
        .to_owned();
    under_load(
        &mut stage,
        "nats_cluster",
        Ready::Ready,
        None,
        async |stage: &mut Stage, _: &Load| {
            let topology = stage.topology.as_ref().expect("topology");
            let connected = node_serving(topology, &pod).await;
            topology.kill_async(&connected, "KILL").await;
            tokio::time::sleep(FAULT).await;
            let moved = node_serving(topology, &pod).await;
            assert_ne!(moved, connected, "the service moved to another server");
            topology.start_node_async(&connected).await;
            nats_healthy(topology).await;
            let leader = stream_leader(topology, "SMS_DISPATCH").await;
            topology.kill_async(&leader, "KILL").await;
            tokio::time::sleep(FAULT).await;
            topology.start_node_async(&leader).await;
            nats_healthy(topology).await;
            println!("backends: nats_cluster: killed {connected} (connected), then {leader} (leader of SMS_DISPATCH)");
        },
    )
    .await;
    // The bind kept its owner key through both kills.
    let lost: Vec<Value> = stage
        .service
        .logs()
        .into_iter()
        .filter(|l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("bind ownership lost"))
        })
        .collect();
    assert!(lost.is_empty(), "the bind kept its owner key: {lost:?}");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL with a synchronous standby

/// The primary stopped with `-m immediate` under load and the standby promoted: the pool
/// drops the dead connections and carries on against the new primary
/// (`target_session_attrs=read-write` in `DATABASE_URL`); rows whose commit was not
/// confirmed are written again, no receipt is lost.
#[tokio::test]
async fn postgres_primary_lost_and_standby_promoted_under_load() {
    let topology = Topology::start("backends_pg", &["--pg-standby"]);
    // Receipts of the failover wait for their rows on the new primary.
    let env = [("RECEIPT_CORRELATION_WAIT_MS", "15000")];
    let mut stage = Stage::on_topology("backends_pg", topology, json!({}), &env).await;
    let mut receipts = stage.nats.subscribe("sms.dlr.inbound").await;
    under_load(
        &mut stage,
        "postgres_failover",
        Ready::Ready,
        Some("postgres"),
        async |stage: &mut Stage, _: &Load| {
            let topology = stage.topology.as_ref().expect("topology");
            topology.kill_async("pg-primary", "QUIT").await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            topology.promote_async().await;
        },
    )
    .await;
    // Every receipt the SMSC sent was published, correlated.
    let sent = stage
        .sim
        .records()
        .iter()
        .filter(|r| r["dir"] == "out" && r["command"] == "deliver_sm")
        .count();
    receipts.drain(Duration::from_secs(2)).await;
    let events = receipts.seen.len();
    let uncorrelated = receipts
        .seen
        .iter()
        .filter(|e| e["messageId"].is_null())
        .count();
    assert!(sent > 0, "the SMSC sent receipts");
    assert!(
        events >= sent,
        "{sent} receipts sent, {events} events published"
    );
    assert_eq!(uncorrelated, 0, "every receipt correlated");
    println!("backends: postgres_failover: {sent} receipts, {events} events, 0 uncorrelated");
}

// ---------------------------------------------------------------------------------------
// Redis Cluster and Sentinel

/// A submit_sm the SMSC accepted: (connection, sequence number, destination, the
/// concatenation reference and part number of a long message's part).
type Accepted = (u64, u64, String, Option<(u8, u8)>);

/// Every submit_sm the SMSC accepted.
fn accepted(stage_sim: &crate::support::Sim) -> Vec<Accepted> {
    let records = stage_sim.records();
    let mut submits: HashMap<(u64, u64), &Value> = HashMap::new();
    let mut out = Vec::new();
    for record in &records {
        let conn = record["conn"].as_u64().unwrap_or(0);
        let seq = record["seq"].as_u64().unwrap_or(0);
        match (record["dir"].as_str(), record["command"].as_str()) {
            (Some("in"), Some("submit_sm")) => {
                submits.insert((conn, seq), record);
            }
            (Some("out"), Some("submit_sm_resp")) if record["status"] == 0 => {
                if let Some(submit) = submits.remove(&(conn, seq)) {
                    let udh = hex::decode(submit["short_message_hex"].as_str().unwrap_or(""))
                        .ok()
                        .filter(|b| {
                            submit["esm_class"].as_u64().unwrap_or(0) & 0x40 != 0 && b.len() > 5
                        })
                        .map(|b| (b[3], b[5]));
                    let to = submit["destination_addr"].as_str().unwrap_or("").to_owned();
                    out.push((conn, seq, to, udh));
                }
            }
            _ => {}
        }
    }
    out
}

/// No sequence number used twice on one session (SPEC §5). Returns (accepted submits,
/// long messages).
fn sequences_unique(sim: &crate::support::Sim) -> (usize, usize) {
    let mut sequences: HashSet<(u64, u64)> = HashSet::new();
    for record in sim.records() {
        if record["dir"] == "in" && record["command"] == "submit_sm" {
            let key = (
                record["conn"].as_u64().unwrap_or(0),
                record["seq"].as_u64().unwrap_or(0),
            );
            assert!(
                sequences.insert(key),
                "sequence number {} used twice on connection {}",
                key.1,
                key.0
            );
        }
    }
    let submits = accepted(sim);
    let long: HashSet<&String> = submits
        .iter()
        .filter(|(_, _, _, udh)| udh.is_some())
        .map(|(_, _, to, _)| to)
        .collect();
    (submits.len(), long.len())
}

/// The sequence-number and reference counters of bind 0 of `op` in the Redis of `url`
/// (any of its URL forms).
pub(crate) async fn counters(url: &str, op: &str) -> (i64, i64) {
    use fred::prelude::*;
    let redis = Builder::from_config(Config::from_url(url).expect("REDIS_URL"))
        .build()
        .expect("client");
    redis.init().await.expect("redis");
    let seq: Option<i64> = redis
        .get(format!("smpp:seq:{{{op}}}:trx:0"))
        .await
        .expect("GET");
    let reference: Option<i64> = redis
        .get(format!("smpp:concat:ref:{{{op}}}:0"))
        .await
        .expect("GET");
    let _ = redis.quit().await;
    (seq.unwrap_or(0), reference.unwrap_or(0))
}

/// Redis Cluster of three primaries (no replicas): two pods share one operator's TPS
/// budget, take references and sequence numbers, and reassemble one MO from parts that
/// came in on both — every script on the operator's slot, none failing over to the local
/// fallbacks.
#[tokio::test]
async fn redis_cluster_serves_two_pods() {
    let topology = Topology::start("backends_redis_cluster", &["--redis-cluster"]);
    let operator = json!({"bindCount": 2, "tpsLimit": 40});
    let window = [("CONCAT_WINDOW_SECONDS", "3")];
    let stage = Stage::on_topology_with(
        "backends_redis_cluster",
        topology,
        json!({"resp_delay_ms": 2}),
        operator,
        &window,
    )
    .await;
    let topology = stage.topology.as_ref().expect("topology");
    let mut env = crate::outages::topology_env(topology);
    env.extend_from_slice(&window);
    let second = Service::start(
        "backends_redis_cluster_b",
        &stage.nats,
        &stage.oms,
        &stage.op,
        &env,
    )
    .await;
    second.wait_bound(1).await;

    // A burst five times the budget, every fifth in three parts.
    let mut mo = stage.nats.subscribe("sms.mo.inbound").await;
    let load = Load::start(&stage.nats, &stage.op, 1_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = load.stop().await;
    let (ids, segments) = crate::support::load::ids_and_segments(&sent);
    let started = Instant::now();
    eventually(Duration::from_secs(60), "every segment correlated", || {
        let ids = ids.clone();
        let url = stage.database_url.clone();
        async move {
            (crate::support::correlation_rows_at(&url, &ids).await.len() == segments).then_some(())
        }
    })
    .await;
    let drained = started.elapsed();

    // One MO, a part on each pod's session (each pod runs one of the two binds).
    let conns = crate::mo::bound_sessions(&stage.sim, 2).await;
    let from = crate::mo::number();
    let texts = ["one part per ", "pod"];
    for (i, conn) in conns.iter().enumerate() {
        crate::mo::inject_to(
            &stage.sim,
            *conn,
            crate::mo::udh_part(&from, 0, 0x21, 2, i as u8 + 1, &crate::mo::gsm7(texts[i])),
        )
        .await;
    }
    let event = mo
        .wait_for(Duration::from_secs(30), "the MO", |e| e["from"] == from)
        .await;
    assert_eq!(event["text"], "one part per pod");
    assert_eq!(event["incomplete"], false);

    // The budget held across both pods: any one-second span under twice the limit, the
    // whole burst no faster than the limit allows.
    let sliding = stage.sim.max_submits_within(1000);
    assert!(
        sliding < 80,
        "a sliding second held {sliding} submits (limit 40)"
    );
    // The simulator's record file may lag its answers by a moment.
    eventually(Duration::from_secs(10), "every answer recorded", || async {
        (accepted(&stage.sim).len() >= segments).then_some(())
    })
    .await;
    let (submits, long) = sequences_unique(&stage.sim);
    let statuses: BTreeMap<String, usize> = stage
        .sim
        .records()
        .iter()
        .filter(|r| r["dir"] == "out" && r["command"] == "submit_sm_resp")
        .fold(BTreeMap::new(), |mut all, r| {
            *all.entry(r["status"].to_string()).or_default() += 1;
            all
        });
    assert_eq!(
        submits, segments,
        "every segment accepted once ({statuses:?})"
    );
    let span = Duration::from_millis(
        (stage.sim.submit_times_ms().last().copied().unwrap_or(0)
            - stage.sim.submit_times_ms().first().copied().unwrap_or(0))
        .max(0) as u64,
    );
    assert!(
        span.as_secs_f64() >= segments as f64 / 40.0 - 2.0,
        "{segments} segments at 40/s took {span:?}"
    );
    for service in [&stage.service, &second] {
        for (metric, what) in [
            ("smpp_connector_tps_fail_open_total", "TPS failed open"),
            (
                "smpp_connector_backend_errors_total{backend=\"redis\"",
                "Redis calls failed",
            ),
            (
                "smpp_connector_concat_ref_fallback_total",
                "local references",
            ),
        ] {
            let name = metric.split('{').next().unwrap_or(metric);
            let labels = metric.split_once('{').map_or("", |(_, l)| l);
            assert_eq!(service.metric_sum(name, labels).await, 0.0, "{what}");
        }
    }
    println!(
        "backends: redis_cluster: {} commands, {segments} segments ({long} long messages) on two pods in {} ms at tpsLimit 40 (sliding second max {sliding}); one MO from two pods; 0 fail-open, 0 Redis errors",
        sent.len(),
        drained.as_millis()
    );
}

/// Send a command to a Redis server over plaintext RESP and read the reply (the
/// sentinels of the topology answer on loopback without TLS).
async fn sentinel_primary(port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    socket
        .write_all(b"*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n$4\r\nsmpp\r\n")
        .await
        .ok()?;
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    // *2 $9 127.0.0.1 $5 port
    text.lines().nth(4).map(str::to_owned)
}

/// Redis behind Sentinel, the primary killed (kill -9) under load: the sentinels promote
/// the replica, TPS fails open for the gap (the local cap), and no reference or sequence
/// number is handed out twice although the promoted replica may have missed the last
/// writes (each block starts above the last one this process was given).
#[tokio::test]
async fn redis_sentinel_primary_killed_under_load() {
    let topology = Topology::start("backends_sentinel", &["--redis-sentinel"]);
    let url = topology.var("REDIS_URL").to_owned();
    let mut stage = Stage::on_topology("backends_sentinel", topology, json!({}), &[]).await;
    let before = std::sync::Arc::new(std::sync::Mutex::new((0, 0)));
    let counted = before.clone();
    let op = stage.op.clone();
    under_load(
        &mut stage,
        "redis_sentinel_failover",
        Ready::Ready,
        Some("redis"),
        async |stage: &mut Stage, _: &Load| {
            let topology = stage.topology.as_ref().expect("topology");
            let sentinel = topology.port("sentinel-0");
            *counted.lock().unwrap() = counters(&url, &op).await;
            let before = sentinel_primary(sentinel).await.expect("the primary's port");
            let killed = Instant::now();
            topology.kill_async("redis-primary", "KILL").await;
            let after = eventually(Duration::from_secs(30), "a new primary", || async {
                sentinel_primary(sentinel).await.filter(|p| *p != before)
            })
            .await;
            println!(
                "backends: redis_sentinel_failover: primary :{before} killed, :{after} promoted after {} ms",
                killed.elapsed().as_millis()
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            topology.start_node_async("redis-primary").await;
        },
    )
    .await;
    let fail_open = stage
        .service
        .metric_sum("smpp_connector_tps_fail_open_total", "")
        .await;
    assert!(fail_open > 0.0, "TPS failed open during the gap");
    let (submits, long) = sequences_unique(&stage.sim);
    let before = *before.lock().unwrap();
    let after = counters(&url, &stage.op).await;
    assert!(
        after.0 >= before.0 && after.1 >= before.1,
        "the counters went back in the failover: (sequence, reference) {before:?} before, {after:?} after"
    );
    println!(
        "backends: redis_sentinel_failover: {submits} submits, {long} long messages, no sequence number reused on a session; counters (sequence, reference) {before:?} before the kill, {after:?} after; TPS failed open {fail_open} times"
    );
}

// ---------------------------------------------------------------------------------------
// Counters across renamed keys and lost writes

/// The sequence-number and reference counters never hand out a block twice: the first
/// block after an upgrade starts above the counter under its name from before the hash
/// tags, and a counter Redis lost (a restart without persistence, a failover to a replica
/// that missed the last writes) starts again above the last block this process was given.
#[actix_rt::test]
async fn counters_never_hand_out_a_block_twice() {
    use fred::prelude::*;
    use smpp_connector::config::{BindKey, Direction, OperatorId, RedisSettings, TlsFiles};
    use smpp_connector_actors::throttle::{
        RedisStore, ReserveConcatRefs, ReserveSequences, ThrottleActor,
    };

    let op = format!("op{}", crate::support::unique());
    let key = BindKey::new(OperatorId::try_new(&op).expect("op"), Direction::Trx, 0);
    let redis = crate::support::redis_client().await;
    // Counters of the version before the hash tags.
    let _: () = redis
        .set(format!("smpp:seq:{op}:trx:0"), 5_000, None, None, false)
        .await
        .expect("SET");
    let _: () = redis
        .set(format!("smpp:concat:ref:{op}:0"), 700, None, None, false)
        .await
        .expect("SET");

    let settings = RedisSettings::parse(&crate::support::shared().redis_url, TlsFiles::default())
        .expect("REDIS_URL");
    let client = smpp_connector_actors::throttle::connect(&settings)
        .await
        .expect("redis");
    let throttle = actix::Actor::start(ThrottleActor::new(
        RedisStore::shared(client),
        settings.topology,
    ));
    let sequences = |count| ReserveSequences {
        key: key.clone(),
        count,
    };
    let references = |count| ReserveConcatRefs {
        key: key.clone(),
        count,
    };
    let first = throttle
        .send(sequences(100))
        .await
        .expect("answer")
        .expect("block");
    assert_eq!(
        first,
        (5_001, 100),
        "above the counter from before the hash tags"
    );
    let first_ref = throttle
        .send(references(256))
        .await
        .expect("answer")
        .expect("block");
    assert_eq!(first_ref, 701);

    // Redis loses both counters.
    let _: i64 = redis
        .del(vec![
            format!("smpp:seq:{{{op}}}:trx:0"),
            format!("smpp:concat:ref:{{{op}}}:0"),
        ])
        .await
        .expect("DEL");
    let second = throttle
        .send(sequences(100))
        .await
        .expect("answer")
        .expect("block");
    assert_eq!(second, (5_101, 100), "the next block, not the first again");
    let second_ref = throttle
        .send(references(256))
        .await
        .expect("answer")
        .expect("block");
    assert_eq!(second_ref, 957);
}
