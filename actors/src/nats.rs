//! NATS adapter: connection, the two streams (created when absent, used as they are
//! otherwise), dispatch consumers, and JetStream publishing with acknowledgements.
//!
//! Every event goes out with `Nats-Msg-Id` when it has a deterministic id (so a
//! redelivered receipt is de-duplicated by the stream) and with the dispatch's
//! `traceparent` when there is one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use serde::Serialize;
use smpp_connector::config::{Config, ConfigError, Direction, Lane, NatsSettings, OperatorId, env};

use crate::events::subject;
use crate::telemetry::internal_events::{Backend, BackendDown, BackendUp, emit};

/// The options every NATS connection of the process uses: the servers of `NATS_URL`
/// (the client also learns the rest of a cluster from the one it reaches, and moves to
/// another server when it loses its own), the credentials file, and TLS, verified, when a
/// `tls://` URL or a `NATS_TLS_*` variable asks for it.
pub async fn connect_options(
    settings: &NatsSettings,
    name: String,
) -> anyhow::Result<(async_nats::ConnectOptions, Vec<async_nats::ServerAddr>)> {
    let mut servers = Vec::with_capacity(settings.servers.len());
    for server in &settings.servers {
        let addr = server
            .expose()
            .parse::<async_nats::ServerAddr>()
            .map_err(|e| ConfigError {
                variable: env::NATS_URL,
                problem: format!("lists a server that is not a NATS URL ({e})"),
            })?;
        servers.push(addr);
    }
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5));
    if let Some(creds) = &settings.creds {
        options = options
            .credentials_file(creds)
            .await
            .with_context(|| format!("NATS_CREDS {creds} could not be read"))?;
    }
    if settings.require_tls {
        options = options
            .require_tls(true)
            .tls_client_config(crate::tls::client_config(&settings.tls, crate::tls::NATS)?);
    }
    Ok((options, servers))
}

/// Connect to NATS, retrying for up to `deadline` before giving up with a clear error.
/// A certificate that does not verify or refused credentials stop at once.
pub async fn connect(
    settings: &NatsSettings,
    pod_name: &str,
    deadline: Duration,
) -> anyhow::Result<async_nats::Client> {
    let started = std::time::Instant::now();
    loop {
        let (options, servers) =
            connect_options(settings, format!("smpp-connector/{pod_name}")).await?;
        let options = options.event_callback(|event| async move { connection_event(event) });
        match options.connect(servers.as_slice()).await {
            Ok(client) => {
                mark_connected();
                return Ok(client);
            }
            Err(err) => {
                let kind = err.kind();
                let err = anyhow::anyhow!(err);
                if let Some(refused) = crate::tls::certificate_refused(&err, crate::tls::NATS) {
                    return Err(refused.into());
                }
                match kind {
                    // Refused credentials do not get better by retrying: say so at once.
                    async_nats::ConnectErrorKind::AuthorizationViolation
                    | async_nats::ConnectErrorKind::Authentication => {
                        return Err(err).context(format!(
                            "NATS_URL {} refused the credentials (NATS_CREDS)",
                            settings.display
                        ));
                    }
                    async_nats::ConnectErrorKind::Tls => {
                        return Err(ConfigError {
                            variable: env::NATS_URL,
                            problem: format!("TLS could not be set up: {err:#}"),
                        }
                        .into());
                    }
                    _ if started.elapsed() < deadline => {
                        tracing::warn!(error = %err, "nats not reachable yet, retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    _ => {
                        return Err(err)
                            .context(format!("NATS_URL {} unreachable", settings.display));
                    }
                }
            }
        }
    }
}

/// One line per change of the NATS connection (not per message): an outage is a WARN and
/// a `backend_errors{backend="nats"}`, the reconnect an INFO. The client reconnects by
/// itself; pulls lost on the server meanwhile end on their own within a second of their
/// expiry.
fn connection_event(event: async_nats::Event) {
    match event {
        async_nats::Event::Disconnected => emit(BackendDown {
            backend: Backend::Nats,
            starts: true,
            what: "nats connection lost; reconnecting",
            error: &"disconnected",
            batch: None,
        }),
        async_nats::Event::Connected => {
            mark_connected();
            emit(BackendUp {
                backend: Backend::Nats,
                ends: true,
                what: "nats connected",
                down_for: None,
            });
        }
        async_nats::Event::LameDuckMode => {
            tracing::warn!("nats server entering lame duck mode")
        }
        async_nats::Event::SlowConsumer(sid) => {
            tracing::warn!(subscription = sid, "nats slow consumer")
        }
        other => tracing::debug!(event = %other, "nats event"),
    }
}

/// When this process last (re)connected to NATS, Unix nanoseconds (0: never).
static CONNECTED_AT: AtomicI64 = AtomicI64::new(0);

fn mark_connected() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    CONNECTED_AT.store(now, Ordering::Relaxed);
}

/// When this process last (re)connected to NATS (Unix nanoseconds, 0: never): commands
/// stored before it may have been delivered to it before, with their state lost by a
/// server that was killed (see `dispatch::lookup_reason`).
pub fn connected_at_unix_nanos() -> i128 {
    i128::from(CONNECTED_AT.load(Ordering::Relaxed))
}

/// Make sure SMS_DISPATCH and SMS_EVENTS exist (SPEC §4).
pub async fn ensure_streams(js: &jetstream::Context, config: &Config) -> anyhow::Result<()> {
    let wanted = [
        (
            config.dispatch_stream.as_str(),
            subject::DISPATCH_STREAM_SUBJECTS.map(String::from).to_vec(),
            stream::RetentionPolicy::WorkQueue,
            Duration::ZERO,
        ),
        (
            config.events_stream.as_str(),
            subject::EVENTS_STREAM_SUBJECTS.map(String::from).to_vec(),
            stream::RetentionPolicy::Limits,
            Duration::from_secs(7 * 24 * 3600),
        ),
    ];
    let replicas = config.nats.stream_replicas;
    for (name, subjects, retention, max_age) in wanted {
        match js.get_stream(name).await {
            Ok(mut existing) => {
                if let Ok(info) = existing.info().await
                    && info.config.num_replicas != replicas
                {
                    tracing::warn!(
                        stream = name,
                        replicas = info.config.num_replicas,
                        wanted = replicas,
                        "stream exists with another number of replicas (NATS_STREAM_REPLICAS): used as it is"
                    );
                }
                continue;
            }
            Err(err) if !config.nats_ensure_streams => {
                return Err(anyhow::anyhow!(err)).context(format!(
                    "stream {name} is not available and NATS_ENSURE_STREAMS=false"
                ));
            }
            Err(_) => {}
        }
        js.get_or_create_stream(stream::Config {
            name: name.to_owned(),
            subjects,
            retention,
            max_age,
            storage: stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating stream {name}"))?;
        tracing::info!(stream = name, replicas, "stream created");
    }
    Ok(())
}

/// Name of the shared consumer of one operator, direction and lane.
pub fn lane_consumer_name(operator_id: &OperatorId, direction: Direction, lane: Lane) -> String {
    format!(
        "smpp-connector-{}-{}-{}",
        operator_id,
        direction,
        lane.subject_token()
    )
}

/// Subjects one lane consumer reads: lane P2 also carries the platform subject
/// `smpp.operator.{operatorId}`.
pub fn lane_subjects(operator_id: &OperatorId, direction: Direction, lane: Lane) -> Vec<String> {
    let mut subjects = vec![subject::lane_dispatch(
        lane.subject_token(),
        operator_id.as_str(),
        direction.as_str(),
    )];
    if lane == Lane::P2 {
        subjects.insert(0, subject::operator_dispatch(operator_id.as_str()));
    }
    subjects
}

/// Name of the durable consumer of one bind's pinned subject (US-SC-019):
/// `qg-{operatorId}-{direction}-{bindId}`.
pub fn pinned_consumer_name(
    operator_id: &OperatorId,
    direction: Direction,
    bind_id: u16,
) -> String {
    format!("qg-{operator_id}-{direction}-{bind_id}")
}

/// Create (or take over) the durable pull consumer of one bind's pinned subject
/// `smpp.{operatorId}.{direction}.{bindId}.dispatch`. Only the bind's owner calls this and
/// pulls from it: the consumer outlives owners (its acknowledgement state is what keeps a
/// message from being processed twice), and a new owner takes it over as it is.
pub async fn pinned_consumer(
    js: &jetstream::Context,
    config: &Config,
    operator_id: &OperatorId,
    direction: Direction,
    bind_id: u16,
) -> anyhow::Result<consumer::PullConsumer> {
    let name = pinned_consumer_name(operator_id, direction, bind_id);
    let subject = subject::pinned_dispatch(operator_id.as_str(), direction.as_str(), bind_id);
    create_dispatch_consumer(js, config, name, vec![subject]).await
}

/// Create (or update) the durable pull consumer of one lane.
pub async fn lane_consumer(
    js: &jetstream::Context,
    config: &Config,
    operator_id: &OperatorId,
    lane: Lane,
) -> anyhow::Result<consumer::PullConsumer> {
    let name = lane_consumer_name(operator_id, config.direction, lane);
    let subjects = lane_subjects(operator_id, config.direction, lane);
    create_dispatch_consumer(js, config, name, subjects).await
}

/// A durable pull consumer on the dispatch stream, as every dispatch consumer is made.
async fn create_dispatch_consumer(
    js: &jetstream::Context,
    config: &Config,
    name: String,
    filter_subjects: Vec<String>,
) -> anyhow::Result<consumer::PullConsumer> {
    let stream = js
        .get_stream(&config.dispatch_stream)
        .await
        .with_context(|| format!("stream {}", config.dispatch_stream))?;
    // Short: held messages get in-progress acks (BindActor), so only the messages of a
    // pod that died wait this long to come back.
    let ack_wait = config.timers.ack_wait;
    stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subjects,
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            // Unlimited: the service dead-letters after MAX_DELIVER failures the SMSC
            // caused; deliveries NAKed for our own reasons (a backend outage, a session
            // that ended) must never make JetStream stop redelivering.
            max_deliver: -1,
            max_ack_pending: 20_000,
            max_waiting: 512,
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating consumer {name}"))
}

/// Why an event was not published, or not known to be.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("encoding the event: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("publishing to {subject}: {source}")]
    Nats {
        subject: &'static str,
        source: async_nats::Error,
    },
    /// Sent, but the stream's acknowledgement did not come: it may well be stored (a
    /// connection lost after the publish). Sent again with the same `Nats-Msg-Id`, the
    /// stream acknowledges it as a duplicate if it was.
    #[error("publishing to {subject}: no acknowledgement from the stream in time")]
    Unconfirmed { subject: &'static str },
}

/// A publish the stream acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// The stream already had this `Nats-Msg-Id`: an earlier, unconfirmed publish of the
    /// same event was stored after all.
    pub duplicate: bool,
}

/// Publishes events with JetStream acknowledgements.
#[derive(Clone, Debug)]
pub struct EventPublisher {
    js: jetstream::Context,
}

impl EventPublisher {
    pub fn new(js: jetstream::Context) -> Self {
        EventPublisher { js }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Send one event; the returned future resolves when the stream acknowledged it.
    /// The message is on the wire (in order with earlier calls) once this first await
    /// returns, so callers that need ordering await it before publishing the next.
    pub async fn send<T: Serialize>(
        &self,
        subject: &'static str,
        payload: &T,
        msg_id: Option<&str>,
        traceparent: Option<&str>,
    ) -> Result<jetstream::context::PublishAckFuture, PublishError> {
        let body = Bytes::from(serde_json::to_vec(payload)?);
        let mut headers = HeaderMap::new();
        if let Some(id) = msg_id {
            headers.insert("Nats-Msg-Id", id);
        }
        if let Some(tp) = traceparent {
            headers.insert("traceparent", tp);
        }
        self.js
            .publish_with_headers(subject, headers, body)
            .await
            .map_err(|e| PublishError::Nats {
                subject,
                source: Box::new(e),
            })
    }

    /// Send and wait for the acknowledgement.
    pub async fn publish<T: Serialize>(
        &self,
        subject: &'static str,
        payload: &T,
        msg_id: Option<&str>,
        traceparent: Option<&str>,
    ) -> Result<Published, PublishError> {
        let ack = self.send(subject, payload, msg_id, traceparent).await?;
        match ack.await {
            Ok(ack) => Ok(Published {
                duplicate: ack.duplicate,
            }),
            Err(err)
                if err.kind() == async_nats::jetstream::context::PublishErrorKind::TimedOut =>
            {
                Err(PublishError::Unconfirmed { subject })
            }
            Err(err) => Err(PublishError::Nats {
                subject,
                source: Box::new(err),
            }),
        }
    }
}
