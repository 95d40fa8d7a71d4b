//! What the in-process tests share: a configuration with every required variable, a port
//! nothing listens on, and a JetStream publisher whose NATS is not there.

use std::collections::BTreeMap;
use std::sync::Arc;

use smpp_connector::config::Config;

use crate::nats::EventPublisher;

/// The configuration of `operator` on pod `pod`, with `extra` variables set over the
/// required ones (addresses nothing in process dials).
pub(crate) fn config(operator: &str, pod: &str, extra: &[(&str, &str)]) -> Arc<Config> {
    let mut vars: BTreeMap<String, String> = [
        ("MNO_ID", operator),
        ("NATS_URL", "nats://127.0.0.1:4222"),
        ("REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("DATABASE_URL", "postgres://u:p@127.0.0.1/smpp"),
        ("OMS_BASE_URL", "http://127.0.0.1:8090/"),
        ("ADMIN_TOKEN", "0123456789abcdef"),
        ("POD_NAME", pod),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    Arc::new(Config::from_env(&vars).expect("config"))
}

/// A port nothing listens on (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A publisher whose client keeps trying to reach NATS on `port` (nothing listens there):
/// publishes fail as with NATS down, and nothing waits on them.
pub(crate) async fn unreachable_publisher(port: u16) -> EventPublisher {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(format!("nats://127.0.0.1:{port}"))
        .await
        .expect("a client connecting in the background");
    EventPublisher::new(async_nats::jetstream::new(client))
}
