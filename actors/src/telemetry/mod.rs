//! Logs and metrics: `tracing` JSON logs (the `log` records of smpp34 are bridged and
//! filtered), metric names written once ([`metric`]) and described at startup, and the
//! Prometheus recorder whose handle `/metrics` renders.
//!
//! Never log a password, a destination number (`to`) or a message text: spans and
//! events carry ids only (messageId, operatorId, bindId, pduSeqNum, esme_status).

pub mod actor_health;
pub mod backends;
pub mod bind_metrics;
pub mod flat_json;
pub mod internal_events;
pub mod metric;
#[cfg(test)]
pub(crate) mod test_metrics;
pub mod traces;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use smpp_connector::config::LogFormat;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Default filter: info for us, warnings only from dependencies that talk a lot.
pub const DEFAULT_LOG_FILTER: &str = "info,smpp34=warn,async_nats=warn,tokio_postgres=warn,fred=warn,actix_server=warn,actix_web=warn,h2=warn,hyper=warn,reqwest=warn,rustls=warn";

/// Dependencies that log once per connection or per request during an outage (the pool
/// logs every broken connection): quiet whatever `RUST_LOG` says in general; the service
/// logs the outage itself, once. A `RUST_LOG` directive naming one of them wins.
const DEPENDENCY_LOG_FILTER: &str =
    "deadpool.postgres=error,opentelemetry=warn,opentelemetry_sdk=warn";

/// Install the global tracing subscriber (and the `log` bridge). `RUST_LOG` overrides
/// the default filter (the per-dependency one stays under it). Logs go to stdout.
pub fn init_tracing(format: LogFormat) {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
    let filter = EnvFilter::try_new(format!("{DEPENDENCY_LOG_FILTER},{directives}"))
        .unwrap_or_else(|_| {
            EnvFilter::new(format!("{DEPENDENCY_LOG_FILTER},{DEFAULT_LOG_FILTER}"))
        });
    let registry = tracing_subscriber::registry().with(filter);
    // `log` records (smpp34) become tracing events and pass the same filter.
    let _ = tracing_log::LogTracer::init();
    let result = match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(flat_json::FlatJson),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_target(true))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Install the Prometheus recorder and describe every metric. Returns the handle
/// `/metrics` renders. Calling it twice returns an error from the builder; the app calls
/// it once.
pub fn init_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Suffix("_seconds".into()),
            &[
                0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0, 30.0,
            ],
        )?
        .install_recorder()?;
    metric::describe_all();
    Ok(handle)
}
