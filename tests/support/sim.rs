//! The SMSC simulator and the OMS stub, as child processes.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use super::{ChildGuard, read_announcement, scratch};

/// Credentials every test binds with unless it says otherwise.
pub const SYSTEM_ID: &str = "smppclient1";
pub const PASSWORD: &str = "pw4Tst!x";

/// One smsc-sim process.
pub struct Sim {
    child: ChildGuard,
    pub smpp_port: u16,
    pub control: String,
    pub record: PathBuf,
    http: reqwest::Client,
}

impl Sim {
    /// Start with an initial behaviour (a partial JSON object, `{}` for defaults).
    pub fn start(test: &str, behaviour: Value) -> Sim {
        Self::start_on(test, behaviour, 0, 1)
    }

    /// Start on a given SMPP port (0: any; e.g. the port of a simulator killed before,
    /// to play an SMSC coming back) with message ids counted from `message_id_start`.
    pub fn start_on(test: &str, behaviour: Value, port: u16, message_id_start: u64) -> Sim {
        Self::start_with(test, behaviour, port, message_id_start, &[])
    }

    /// Serve SMPP over TLS with the PKI's server certificate; with `mutual`, a client
    /// certificate signed by its CA is required.
    pub fn start_tls(test: &str, behaviour: Value, pki: &super::pki::Pki, mutual: bool) -> Sim {
        let mut args = vec![
            "--tls-cert".to_owned(),
            pki.server_cert.display().to_string(),
            "--tls-key".to_owned(),
            pki.server_key.display().to_string(),
        ];
        if mutual {
            args.push("--tls-client-ca".to_owned());
            args.push(pki.ca.display().to_string());
        }
        Self::start_with(test, behaviour, 0, 1, &args)
    }

    fn start_with(
        test: &str,
        behaviour: Value,
        port: u16,
        message_id_start: u64,
        extra: &[String],
    ) -> Sim {
        let dir = scratch(&format!("{test}-sim"));
        let record = dir.join("pdus.jsonl");
        let log = std::fs::File::create(dir.join("sim.log")).expect("sim log");
        let mut child = Command::new(super::tool("smsc-sim"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--control", "127.0.0.1:0"])
            .args(["--message-id-start", &message_id_start.to_string()])
            .args(["--system-id", SYSTEM_ID, "--password", PASSWORD])
            .arg("--record")
            .arg(&record)
            .arg("--behaviour")
            .arg(behaviour.to_string())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start smsc-sim");
        let announced = read_announcement(&mut child, Duration::from_secs(10));
        let smpp = announced["smpp"].as_str().expect("smpp address");
        let smpp_port = smpp
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        Sim {
            child: ChildGuard(child),
            smpp_port,
            control: format!(
                "http://{}",
                announced["control"].as_str().expect("control address")
            ),
            record,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                // A fresh connection per request: a kept-alive one the server closes as
                // it is reused fails the request (IncompleteMessage on a loaded machine).
                .pool_max_idle_per_host(0)
                .build()
                .expect("http client"),
        }
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/stats", self.control))
            .send()
            .await
            .expect("sim stats")
            .json()
            .await
            .expect("stats JSON")
    }

    pub async fn behaviour(&self, change: Value) -> Value {
        let response = self
            .http
            .post(format!("{}/behaviour", self.control))
            .json(&change)
            .send()
            .await
            .expect("sim behaviour");
        assert!(
            response.status().is_success(),
            "sim refused behaviour {change}"
        );
        response.json().await.expect("behaviour JSON")
    }

    pub async fn inject(&self, what: Value) -> u64 {
        let response: Value = self
            .http
            .post(format!("{}/inject", self.control))
            .json(&what)
            .send()
            .await
            .expect("sim inject")
            .json()
            .await
            .expect("inject JSON");
        response["sent"].as_u64().unwrap_or(0)
    }

    /// The open connections: id, peer, mode, system_id.
    pub async fn connections(&self) -> Vec<Value> {
        let response: Value = self
            .http
            .get(format!("{}/connections", self.control))
            .send()
            .await
            .expect("sim connections")
            .json()
            .await
            .expect("connections JSON");
        response.as_array().cloned().unwrap_or_default()
    }

    pub async fn disconnect(&self) {
        self.http
            .post(format!("{}/disconnect", self.control))
            .send()
            .await
            .expect("sim disconnect");
    }

    /// Every PDU recorded so far (the record is flushed at least every 100 ms).
    pub fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Recorded PDUs the ESME sent with this command name, after waiting for the
    /// record to be flushed (it is, at least every 100 ms).
    pub async fn received(&self, command: &str) -> Vec<Value> {
        tokio::time::sleep(Duration::from_millis(250)).await;
        self.received_now(command)
    }

    /// Wait until at least `n` PDUs of this command were recorded.
    pub async fn received_at_least(&self, command: &str, n: usize) -> Vec<Value> {
        super::eventually(Duration::from_secs(30), command, || {
            let found = self.received_now(command);
            async move { (found.len() >= n).then_some(found) }
        })
        .await
    }

    /// Recorded PDUs the ESME sent with this command name, as flushed so far.
    pub fn received_now(&self, command: &str) -> Vec<Value> {
        self.records()
            .into_iter()
            .filter(|r| r["dir"] == "in" && r["command"] == command)
            .collect()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    /// Every PDU the service sent passed the simulator's independent (golden) decoder and
    /// read the same as with the project's codec.
    pub async fn assert_golden_clean(&self) {
        let stats = self.stats().await;
        assert_eq!(
            stats["golden_errors"],
            0,
            "golden decoder disagreed: {:?}",
            self.records()
                .iter()
                .filter(|r| r["command"] == "golden_error")
                .map(|r| r["error"].clone())
                .collect::<Vec<_>>()
        );
    }

    /// The most submit_sm received and not yet answered at any moment, over every
    /// connection, from the record (in the order the simulator wrote it).
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight_after(0)
    }

    /// As [`Sim::max_in_flight`], counting only from the `skip + 1`-th submit_sm on (what
    /// was in flight before still counts as in flight).
    pub fn max_in_flight_after(&self, skip: usize) -> usize {
        let mut open = std::collections::HashSet::new();
        let mut submits = 0;
        let mut max = 0;
        for r in self.records() {
            let key = (r["conn"].as_u64(), r["seq"].as_u64());
            match (r["dir"].as_str(), r["command"].as_str()) {
                (Some("in"), Some("submit_sm")) => {
                    submits += 1;
                    open.insert(key);
                    if submits > skip {
                        max = max.max(open.len());
                    }
                }
                (Some("out"), Some("submit_sm_resp")) => {
                    open.remove(&key);
                }
                _ => {}
            }
        }
        max
    }

    /// Receive times (ms since the epoch) of every submit_sm, in order.
    pub fn submit_times_ms(&self) -> Vec<i64> {
        let mut times: Vec<i64> = self
            .received_now("submit_sm")
            .iter()
            .filter_map(|r| r["ts"].as_str())
            .filter_map(|ts| chrono::DateTime::parse_from_rfc3339(ts).ok())
            .map(|t| t.timestamp_millis())
            .collect();
        times.sort_unstable();
        times
    }

    /// The most submit_sm received within any `span_ms` milliseconds.
    pub fn max_submits_within(&self, span_ms: i64) -> usize {
        let times = self.submit_times_ms();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end] - times[start] >= span_ms {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}

/// One oms-stub process serving a credentials file the test can rewrite.
pub struct Oms {
    child: Option<ChildGuard>,
    pub url: String,
    pub file: PathBuf,
    /// The address it listens on, kept across `stop` and `restart`.
    listen: String,
    args: Vec<String>,
    http: reqwest::Client,
}

impl Oms {
    pub fn start(test: &str, credentials: Value) -> Oms {
        Self::start_with(test, credentials, &[])
    }

    /// Serve HTTPS with the PKI's server certificate and require a client certificate
    /// signed by its CA (mTLS, as the real OMS does).
    pub fn start_mtls(test: &str, credentials: Value, pki: &super::pki::Pki) -> Oms {
        let args: Vec<String> = [
            ("--tls-cert", &pki.server_cert),
            ("--tls-key", &pki.server_key),
            ("--tls-client-ca", &pki.ca),
        ]
        .iter()
        .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
        .collect();
        Self::start_with(test, credentials, &args)
    }

    fn start_with(test: &str, credentials: Value, extra: &[String]) -> Oms {
        let dir = scratch(&format!("{test}-oms"));
        let file = dir.join("credentials.json");
        std::fs::write(&file, credentials.to_string()).expect("write credentials");
        let (child, announced) = Self::spawn(&file, "127.0.0.1:0", extra);
        let listen = announced["http"].as_str().expect("http address").to_owned();
        Oms {
            child: Some(child),
            url: format!(
                "{}://{listen}",
                announced["scheme"].as_str().unwrap_or("http"),
            ),
            file,
            listen,
            args: extra.to_vec(),
            http: reqwest::Client::new(),
        }
    }

    fn spawn(file: &std::path::Path, listen: &str, extra: &[String]) -> (ChildGuard, Value) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file.with_file_name("oms.log"))
            .expect("oms log");
        let mut child = Command::new(super::tool("oms-stub"))
            .args(["--listen", listen, "--file"])
            .arg(file)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start oms-stub");
        let announced = read_announcement(&mut child, Duration::from_secs(10));
        (ChildGuard(child), announced)
    }

    /// Kill the stub: OMS unreachable (connection refused).
    pub fn stop(&mut self) {
        self.child = None;
    }

    /// Start it again on the same address.
    pub fn restart(&mut self) {
        self.child = Some(Self::spawn(&self.file, &self.listen, &self.args).0);
    }

    /// Replace the credentials the stub serves (rotation, wrong password…).
    pub fn set(&self, credentials: Value) {
        std::fs::write(&self.file, credentials.to_string()).expect("rewrite credentials");
    }

    /// Credential requests served per operator.
    pub async fn requests(&self) -> Value {
        self.http
            .get(format!("{}/requests", self.url))
            .send()
            .await
            .expect("oms requests")
            .json()
            .await
            .expect("requests JSON")
    }
}

/// Credentials for one operator pointing at a simulator. The password is added to the
/// strings no log may contain.
pub fn credentials(operator: &str, sim_port: u16, extra: Value) -> Value {
    super::forbid_in_logs(&[PASSWORD]);
    if let Some(password) = extra.get("password").and_then(Value::as_str) {
        super::forbid_in_logs(&[password]);
    }
    let mut doc = json!({
        "operatorId": operator,
        "host": "127.0.0.1",
        "port": sim_port,
        "systemId": SYSTEM_ID,
        "password": PASSWORD,
        "systemType": "",
        "bindMode": "TRX",
        "bindCount": 1,
        "window": 50,
        "tpsLimit": 1000,
        "longMessageStrategy": "CSMS",
        "concatRefBits": 8,
        "msgIdFormat": "HEX",
        "dlrIdFormat": "HEX",
        "sourceAddr": "Ghasi",
        "sourceTon": 5,
        "sourceNpi": 0,
        "destTon": 1,
        "destNpi": 1,
        "enquireLinkSeconds": 30
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            doc.insert(k.clone(), v.clone());
        }
    }
    json!({ operator: doc })
}
