//! Wiring of the running service: listeners, adapters, actors, and the shutdown sequence.
//!
//! Start order: probes first (`/health` answers 200 from process start, `/ready` 503),
//! then NATS (streams ensured), PostgreSQL (migrations), the actors, the admin listener.
//! Shutdown (SIGTERM): `/ready` 503, every bind stops fetching, drains its in-flight
//! submits (bounded), NAKs the rest and unbinds; then the listeners stop and NATS is
//! flushed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{App, HttpServer, web};
use anyhow::Context as _;
use metrics_exporter_prometheus::PrometheusHandle;
use smpp_connector::config::Config;

use crate::correlation::{CorrelationActor, PgStore};
use crate::health::HealthPublisherActor;
use crate::http::{AdminState, ProbeState};
use crate::nats::{self, EventPublisher};
use crate::oms::OmsClient;
use crate::supervisor::{Readiness, Shared, Shutdown, Supervisor};
use crate::throttle::{RedisStore, ThrottleActor};

/// Batches of one kind in flight at once (see `run`).
const MAX_CORRELATION_BATCHES_IN_FLIGHT: usize = 1;

/// Run the service until `shutdown` resolves, then stop gracefully.
pub async fn run(
    config: Config,
    prometheus: Option<PrometheusHandle>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    // Certificate files first: a wrong path stops startup before anything connects.
    let tls = crate::tls::smpp_connector(&config.smpp_tls)?;
    let readiness = Arc::new(Readiness::default());
    crate::telemetry::metric::register_zeroes(&config.operator_ids, config.direction.as_str());
    crate::telemetry::backends::init();
    tracing::info!(
        operators = ?config.operator_ids.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
        direction = %config.direction,
        pod = %config.pod_name,
        shadow_mode = config.shadow_mode,
        "smpp-connector starting"
    );

    let probe_state = ProbeState {
        readiness: readiness.clone(),
        prometheus,
    };
    let probe_server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(probe_state.clone()))
            .configure(crate::http::probes)
    })
    .workers(1)
    .disable_signals()
    .bind((config.http_host.as_str(), config.http_port))
    .with_context(|| format!("HTTP_PORT {} cannot be bound", config.http_port))?;
    log_listening("http", &probe_server.addrs());
    let probe_server = probe_server.run();
    let probe_handle = probe_server.handle();
    actix::spawn(probe_server);

    log_backends(&config);
    let client = nats::connect(&config.nats, &config.pod_name, Duration::from_secs(30)).await?;
    let js = async_nats::jetstream::new(client.clone());
    nats::ensure_streams(&js, &config).await?;
    let publisher = EventPublisher::new(js);

    let store = PgStore::connect(
        &config.database,
        config.database_pool_size,
        config.database_statement_timeout,
    )?
    .with_retention(config.timers.correlation_retention);
    migrate_with_retry(&store, Duration::from_secs(60)).await?;
    // Batches of each kind (row inserts, receipt updates) in flight at once. More do not
    // go faster: each batch is a transaction PostgreSQL pays for, and while one is in
    // flight the next one grows. Measured (scripts/bench --count 30000, two runs each):
    // 6 in flight 7,177-7,195 msg/s, 2 in flight 9,629-10,378, 1 in flight 9,952-13,503.
    // The rest of the pool serves redelivery lookups and bind settings.
    let max_in_flight = config
        .database_pool_size
        .saturating_sub(2)
        .clamp(1, MAX_CORRELATION_BATCHES_IN_FLIGHT);
    let correlation =
        CorrelationActor::new(Arc::new(store), config.correlation_batch, max_in_flight)
            .with_sweep(config.timers.correlation_sweep)
            .start();

    let health = HealthPublisherActor::new(publisher.clone(), config.pod_name.clone()).start();
    let redis = crate::throttle::connect(&config.redis).await?;
    let throttle = ThrottleActor::new(RedisStore::shared(redis), config.redis.topology).start();
    let oms = OmsClient::try_new(&config)?;
    // The shared actors are not restarted in place: every bind holds their address, and
    // their state (batches in flight with their waiters, the TPS limiter, the health
    // order, this pod's owner keys) cannot be rebuilt behind it. One that died (a panic
    // ends its task) leaves the service unable to record rows, grant TPS, publish health
    // or keep its binds' ownership, so the process exits (70) and Kubernetes restarts the
    // pod: its binds' messages come back from JetStream, other pods take its binds. See
    // ARCHITECTURE.md, "Supervision".
    let watched: Vec<Watched> = vec![
        ("correlation", {
            let addr = correlation.clone();
            Box::new(move || addr.connected())
        }),
        ("health", {
            let addr = health.clone();
            Box::new(move || addr.connected())
        }),
        ("throttle", {
            let addr = throttle.clone();
            Box::new(move || addr.connected())
        }),
    ];
    let supervisor = Supervisor::new(
        Shared {
            config: config.clone(),
            credentials: Arc::new(oms),
            correlation,
            publisher,
            health,
            throttle,
            tls,
        },
        readiness.clone(),
    )
    .start();
    let mut watched = watched;
    watched.push(("supervisor", {
        let addr = supervisor.clone();
        Box::new(move || addr.connected())
    }));
    let ownership = if config.bind_ownership {
        let js = async_nats::jetstream::new(client.clone());
        let stores = crate::cluster::ownership::buckets(
            &js,
            config.timers.owner_ttl,
            config.nats.stream_replicas,
        )
        .await?;
        let actor = crate::cluster::ownership::OwnershipActor::new(
            config.clone(),
            stores,
            supervisor.clone().recipient(),
            supervisor.clone().recipient(),
            readiness.clone(),
        )
        .start();
        supervisor.do_send(crate::supervisor::SetOwnership(actor.clone()));
        Some(actor)
    } else {
        None
    };
    if let Some(ownership) = &ownership {
        // Without it, this pod's owner keys expire and another pod binds the same binds.
        let addr = ownership.clone();
        watched.push(("ownership", Box::new(move || addr.connected())));
    }
    actix::spawn(watch_actors(watched, readiness.clone()));

    let admin_state = AdminState {
        token: config.admin_token.clone(),
        list: supervisor.clone().recipient(),
        control: supervisor.clone().recipient(),
        refusals: Arc::default(),
    };
    let admin_server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(admin_state.clone()))
            .configure(crate::http::admin)
    })
    .workers(1)
    .disable_signals()
    .bind((config.http_host.as_str(), config.admin_port))
    .with_context(|| format!("ADMIN_PORT {} cannot be bound", config.admin_port))?;
    log_listening("admin", &admin_server.addrs());
    let admin_server = admin_server.run();
    let admin_handle = admin_server.handle();
    actix::spawn(admin_server);

    shutdown.await;
    tracing::info!("shutdown requested: draining binds");
    readiness.begin_shutdown();
    let deadline =
        config.timers.drain_timeout + config.timers.bind_timeout + Duration::from_secs(2);
    let _ = supervisor.send(Shutdown { deadline }).await;
    if let Some(ownership) = &ownership {
        // The binds are down: hand their keys back so another pod takes them at once.
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            ownership.send(crate::cluster::ownership::ReleaseAll),
        )
        .await;
    }
    admin_handle.stop(true).await;
    probe_handle.stop(true).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), client.flush()).await;
    tracing::info!("smpp-connector stopped");
    Ok(())
}

/// A shared actor by name, and whether it is still alive.
type Watched = (&'static str, Box<dyn Fn() -> bool>);

/// Exit (status 70) when one of the shared actors ended while the service runs.
async fn watch_actors(actors: Vec<Watched>, readiness: Arc<Readiness>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if readiness.is_shutting_down() {
            return;
        }
        if let Some((name, _)) = actors.iter().find(|(_, alive)| !alive()) {
            use crate::telemetry::internal_events::{SharedActorEnded, emit};
            emit(SharedActorEnded { actor: name });
            std::process::exit(70);
        }
    }
}

/// One line per backend: where it is and how it is secured (never a credential). A
/// PostgreSQL mode that may not encrypt or verify is a WARN.
fn log_backends(config: &Config) {
    use smpp_connector::backends::{RootCerts, SslMode};
    tracing::info!(
        servers = %config.nats.display,
        tls = config.nats.require_tls,
        streamReplicas = config.nats.stream_replicas,
        "nats"
    );
    tracing::info!(
        url = %config.redis.display,
        topology = config.redis.topology.as_str(),
        tls = config.redis.tls.is_some(),
        "redis"
    );
    let pg = &config.database;
    tracing::info!(
        hosts = %pg.display,
        tls = %pg.tls.describe(),
        statementTimeoutMs = config.database_statement_timeout.as_millis() as u64,
        "postgres"
    );
    if pg.tls.mode == SslMode::Prefer {
        tracing::warn!(
            "DATABASE_URL sslmode=prefer: a server that does not offer TLS is talked to in plaintext; use verify-full"
        );
    } else if pg.tls.mode != SslMode::Disable && pg.tls.roots == RootCerts::Unverified {
        tracing::warn!(
            "DATABASE_URL sslmode=require without sslrootcert: encrypted, but the server's certificate is not verified; use verify-full"
        );
    }
}

fn log_listening(listener: &'static str, addrs: &[SocketAddr]) {
    for addr in addrs {
        tracing::info!(listener, addr = %addr, "listening");
    }
}

/// Apply migrations, waiting up to `deadline` for PostgreSQL to come up.
pub async fn migrate_with_retry(store: &PgStore, deadline: Duration) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    loop {
        match store.migrate().await {
            Ok(applied) => {
                if !applied.is_empty() {
                    tracing::info!(versions = ?applied, "migrations applied");
                }
                return Ok(());
            }
            Err(err) => {
                // A certificate that does not verify, or a login the server refuses, does
                // not get better by waiting.
                if let Some(refused) = crate::tls::certificate_refused(&err, crate::tls::POSTGRES)
                    .or_else(|| crate::correlation::login_refused(&err))
                {
                    return Err(refused.into());
                }
                if started.elapsed() >= deadline {
                    return Err(err).context("DATABASE_URL: migrations could not be applied");
                }
                tracing::warn!(error = %format!("{err:#}"), "database not ready for migrations, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
