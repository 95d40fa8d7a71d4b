//! Fixtures of the whole-service tests: real servers and the project's binaries, on
//! 127.0.0.1 only, every wait bounded.
//!
//! - PostgreSQL and Redis are shared by a test run: `scripts/test` starts them and passes
//!   `TEST_DATABASE_URL` / `TEST_REDIS_URL`; without them (plain `cargo test`) the first
//!   test starts a stack with `scripts/stack up --free-ports` in `target/test-stack-auto`.
//! - NATS is per test ([`Nats`]): `scripts/stack run-nats` on a free port, so stream and
//!   consumer assertions see only the test's own traffic.
//! - The SMSC simulator ([`Sim`]), the OMS stub ([`Oms`]) and the service ([`Service`]) are
//!   the workspace's binaries, started as child processes and killed on drop.
//! - Logs of every service go to `SMPP_TEST_LOG_DIR` (default `target/test-logs`); every
//!   password, number and text a test uses is appended to `secrets.txt` there, and
//!   `scripts/test` fails if any log contains one. [`Service::assert_no_secrets`] checks
//!   the same per test.

#![allow(dead_code)]

pub mod load;
pub mod nats;
pub mod nats_auth;
pub mod pki;
pub mod postgres;
pub mod proxy;
pub mod redis;
pub mod schema;
pub mod service;
pub mod sim;
pub mod stage;
pub mod topology;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub use nats::Nats;
pub use service::Service;
pub use sim::{Oms, Sim};
pub use stage::Stage;

/// A binary of the testkit package (`smsc-sim`, `oms-stub`), built beside this test
/// binary. Cargo only hands a package's own binaries to its tests, so `scripts/test`
/// builds them first (`cargo build --workspace --bins`).
pub fn tool(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: run `cargo build -p smpp-connector-testkit --bins` first (scripts/test does)",
        path.display()
    );
    path
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("actors/ has a parent")
        .to_path_buf()
}

/// Where logs and the secrets list go.
pub fn log_dir() -> PathBuf {
    let dir = std::env::var_os("SMPP_TEST_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/test-logs"));
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

/// A fresh scratch directory for one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = root()
        .join("target/test-scratch")
        .join(format!("{test}-{}", unique()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A short unique suffix.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// Record strings that must never appear in a log.
pub fn forbid_in_logs(values: &[&str]) {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir().join("secrets.txt"))
        .expect("secrets.txt");
    for value in values {
        if value.len() >= 4 {
            writeln!(file, "{value}").expect("write secrets.txt");
        }
    }
}

/// The shared backing servers.
#[derive(Debug, Clone)]
pub struct Shared {
    pub database_url: String,
    pub redis_url: String,
}

/// The shared PostgreSQL / Redis (started once per test process when not given).
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        if let (Ok(database_url), Ok(redis_url)) = (
            std::env::var("TEST_DATABASE_URL"),
            std::env::var("TEST_REDIS_URL"),
        ) {
            return Shared {
                database_url,
                redis_url,
            };
        }
        let dir = root().join("target/test-stack-auto");
        let output = Command::new(root().join("scripts/stack"))
            .args(["up", "--free-ports", "--dir"])
            .arg(&dir)
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/stack up");
        assert!(output.status.success(), "scripts/stack up failed");
        let env = String::from_utf8_lossy(&output.stdout);
        let find = |name: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("scripts/stack up printed no {name}"))
                .to_owned()
        };
        Shared {
            database_url: find("DATABASE_URL"),
            redis_url: find("REDIS_URL"),
        }
    })
}

/// A client of the shared Redis, connected.
pub async fn redis_client() -> fred::prelude::Client {
    use fred::prelude::*;
    let redis = Builder::from_config(Config::from_url(&shared().redis_url).expect("REDIS_URL"))
        .build()
        .expect("redis client");
    redis.init().await.expect("redis");
    redis
}

/// `scripts/stack run-{server} PORT DATA ARGS…` (nats, redis, postgres), its output
/// appended to `{server}.log` in `log_dir`.
pub fn run_stack_server(
    server: &str,
    port: u16,
    data: &Path,
    log_dir: &Path,
    args: &[String],
) -> ChildGuard {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join(format!("{server}.log")))
        .expect("server log");
    let child = Command::new(root().join("scripts/stack"))
        .arg(format!("run-{server}"))
        .arg(port.to_string())
        .arg(data)
        .args(args)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("scripts/stack run-{server}: {e}"));
    ChildGuard(child)
}

/// A free TCP port on 127.0.0.1 (the kernel's choice).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A child process killed on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal("TERM", timeout)
    }

    /// Send `signal` (a name: TERM, QUIT…), then wait up to `timeout` for the exit status.
    pub fn signal(&mut self, signal: &str, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait until `check` returns `Some`, polling every 20 ms; panic with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Read the first JSON line a child prints on stdout (its listening addresses).
pub fn read_announcement(child: &mut Child, timeout: Duration) -> serde_json::Value {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let mut sink = String::new();
        while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            sink.clear();
        }
    });
    let line = rx.recv_timeout(timeout).expect("child announced its ports");
    serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("announcement is JSON: {line:?}"))
}

/// A database URL for the shared PostgreSQL.
pub fn database_url() -> String {
    shared().database_url.clone()
}

/// Connect to the shared PostgreSQL.
pub async fn pg() -> tokio_postgres::Client {
    pg_connect(&database_url())
        .await
        .expect("connect to the test PostgreSQL")
}

/// Connect to the PostgreSQL of a `DATABASE_URL` as the service does: its `sslmode`,
/// certificates and hosts (the first that takes writes with
/// `target_session_attrs=read-write`).
pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client, String> {
    use std::str::FromStr;
    let settings =
        smpp_connector::config::PostgresSettings::parse(url).map_err(|e| e.to_string())?;
    let mut config =
        tokio_postgres::Config::from_str(settings.url.expose()).map_err(|e| e.to_string())?;
    config.connect_timeout(Duration::from_secs(3));
    let tls = smpp_connector_actors::tls::PgTlsConnector::new(&settings.tls)
        .map_err(|e| format!("{e:#}"))?;
    let (client, connection) = config.connect(tls).await.map_err(|e| format!("{e:#}"))?;
    tokio::spawn(connection);
    Ok(client)
}

/// Correlation rows of some message ids.
pub async fn correlation_rows(message_ids: &[String]) -> Vec<(String, i32, String)> {
    correlation_rows_at(&database_url(), message_ids).await
}

/// Correlation rows of some message ids in the database at `url` (none while it does not
/// answer).
pub async fn correlation_rows_at(url: &str, message_ids: &[String]) -> Vec<(String, i32, String)> {
    let Ok(client) = pg_connect(url).await else {
        return Vec::new();
    };
    // The service may not have migrated yet; treat a missing table as no rows.
    match client
        .query(
            "SELECT message_id, segment_index, operator_message_id FROM smpp.message_correlations WHERE message_id = ANY($1) ORDER BY message_id, segment_index",
            &[&message_ids],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect(),
        Err(_) => Vec::new(),
    }
}

/// Publish one command per index of `range` to the number `{prefix}{index:04}` (with
/// `text`); their message ids, in order.
pub async fn send_commands(
    nats: &Nats,
    op: &str,
    prefix: &str,
    range: std::ops::Range<usize>,
    text: &str,
) -> Vec<String> {
    let mut ids = Vec::with_capacity(range.len());
    for n in range {
        ids.push(
            nats.send_command(op, &format!("{prefix}{n:04}"), text)
                .await,
        );
    }
    ids
}

/// Wait until these messages have `rows` correlation rows in all.
pub async fn wait_rows(ids: &[String], rows: usize) {
    eventually(Duration::from_secs(60), "every segment correlated", || {
        let ids = ids.to_vec();
        async move { (correlation_rows(&ids).await.len() == rows).then_some(()) }
    })
    .await;
}

/// The values of every series of metric `name` (with any labels) in a `/metrics` text.
pub fn metric(text: &str, name: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}
