//! The `smpp-connector` binary under test.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{ChildGuard, Nats, Oms, eventually, log_dir, shared, unique};

/// Timers scaled down ~100×: assert sequences, never wall-clock figures.
pub const FAST_TIMERS: &[(&str, &str)] = &[
    ("ENQUIRE_LINK_INTERVAL_MS", "300"),
    ("ENQUIRE_LINK_TIMEOUT_MS", "300"),
    ("BIND_TIMEOUT_MS", "2000"),
    ("RECONNECT_BACKOFF_BASE_MS", "100"),
    ("RECONNECT_BACKOFF_MAX_MS", "1200"),
    ("SUBMIT_RESP_TIMEOUT_MS", "3000"),
    ("RECEIPT_CORRELATION_WAIT_MS", "3000"),
    ("DRAIN_TIMEOUT_MS", "3000"),
    ("WINDOW_RELOAD_MS", "1000"),
    ("OWNER_TTL_MS", "2000"),
    ("OWNER_REFRESH_MS", "300"),
];

/// A running service, killed on drop.
pub struct Service {
    child: ChildGuard,
    pub log: PathBuf,
    pub http: String,
    pub admin: String,
    pub token: String,
    client: reqwest::Client,
}

impl Service {
    /// Start for one operator with the fast timers and `extra` env (which wins), and wait
    /// for its listeners.
    pub async fn start(
        test: &str,
        nats: &Nats,
        oms: &Oms,
        operator: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let mut service = Self::start_unready(test, nats, oms, operator, extra);
        let (http, admin) = eventually(Duration::from_secs(60), "the service's listeners", || {
            let lines = service.logs();
            async move {
                let addr = |listener: &str| {
                    lines
                        .iter()
                        .find(|l| l["message"] == "listening" && l["listener"] == listener)
                        .and_then(|l| l["addr"].as_str().map(str::to_owned))
                };
                Some((addr("http")?, addr("admin")?))
            }
        })
        .await;
        service.http = format!("http://{http}");
        service.admin = format!("http://{admin}");
        service
    }

    /// Start the process without waiting for anything (a test of a failing startup).
    pub fn start_unready(
        test: &str,
        nats: &Nats,
        oms: &Oms,
        operator: &str,
        extra: &[(&str, &str)],
    ) -> Service {
        let log = log_dir().join(format!("{test}-{}.log", unique()));
        let token = format!("test-token-{}", uuid::Uuid::new_v4().simple());
        let file = std::fs::File::create(&log).expect("service log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_smpp-connector"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MNO_ID", operator)
            .env("POD_NAME", format!("{test}-0"))
            .env("NATS_URL", &nats.url)
            .env("REDIS_URL", &shared().redis_url)
            .env("DATABASE_URL", &shared().database_url)
            .env("OMS_BASE_URL", &oms.url)
            .env("ADMIN_TOKEN", &token)
            .env("HTTP_HOST", "127.0.0.1")
            .env("HTTP_PORT", "0")
            .env("ADMIN_PORT", "0")
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "info,smpp_connector_actors=debug,smpp34=warn");
        for (k, v) in FAST_TIMERS.iter().chain(extra.iter()) {
            command.env(k, v);
        }
        let child = command
            .stdout(Stdio::from(file.try_clone().expect("log")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start smpp-connector");
        Service {
            child: ChildGuard(child),
            log,
            http: String::new(),
            admin: String::new(),
            token,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                // A fresh connection per request: a kept-alive one the server closes as
                // it is reused fails the request (IncompleteMessage on a loaded machine).
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
        }
    }

    /// Wait up to `timeout` for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Every JSON log line so far.
    pub fn logs(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The WARN and ERROR lines after the first `skip` lines.
    pub fn loud_lines(&self, skip: usize) -> Vec<Value> {
        self.logs()
            .into_iter()
            .skip(skip)
            .filter(|l| l["level"] == "WARN" || l["level"] == "ERROR")
            .collect()
    }

    /// Log lines with this message.
    pub fn logs_with(&self, message: &str) -> Vec<Value> {
        self.logs()
            .into_iter()
            .filter(|l| l["message"] == message)
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        let response = self.client.get(url).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn ready(&self) -> u16 {
        self.get(&format!("{}/ready", self.http)).await.0
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.http))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// GET an admin path with the right token, another token, or none.
    pub async fn admin_get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.admin));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("admin GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.post(format!("{}{path}", self.admin));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("admin POST");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// State of each bind from the admin API, by bind id.
    pub async fn bind_states(&self) -> Vec<(u64, String)> {
        let (status, body) = self
            .admin_get("/admin/binds", Some(&self.token.clone()))
            .await;
        assert_eq!(status, 200, "admin binds: {body}");
        body["binds"]
            .as_array()
            .map(|binds| {
                binds
                    .iter()
                    .map(|b| {
                        (
                            b["bindId"].as_u64().unwrap_or(0),
                            b["state"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Wait until every bind is BOUND (and at least `count` binds exist).
    pub async fn wait_bound(&self, count: usize) {
        eventually(Duration::from_secs(30), "all binds BOUND", || async {
            let states = self.bind_states().await;
            (states.len() >= count && states.iter().all(|(_, s)| s == "BOUND")).then_some(())
        })
        .await;
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        self.child.terminate(Duration::from_secs(20))
    }

    /// SIGTERM and wait (without blocking the test's runtime) up to 20 s for the exit.
    pub async fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.pid().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.0.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// The sum of every series of `name` whose labels contain `labels` (e.g.
    /// `lane="pinned"`), from `/metrics`.
    pub async fn metric_sum(&self, name: &str, labels: &str) -> f64 {
        self.metrics()
            .await
            .lines()
            .filter(|l| l.starts_with(name) && l.contains(labels))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Resident set size of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Fail if any of `secrets` (passwords, numbers, texts) appears in this service's log.
    pub fn assert_no_secrets(&self, secrets: &[&str]) {
        let text = self.log_text();
        for (n, line) in text.lines().enumerate() {
            for secret in secrets {
                assert!(
                    !line.contains(secret),
                    "log line {} of {} contains a forbidden value (#{})",
                    n + 1,
                    self.log.display(),
                    secrets.iter().position(|s| s == secret).unwrap_or(0)
                );
            }
        }
    }
}
