//! A NATS server with JetStream per test, and helpers to publish commands and watch events.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::Value;

use super::{ChildGuard, free_port, scratch};

/// One nats-server, killed on drop.
pub struct Nats {
    child: Option<ChildGuard>,
    port: u16,
    /// Extra nats-server arguments (a config file), kept for a restart.
    args: Vec<String>,
    pub url: String,
    pub dir: PathBuf,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl Nats {
    fn spawn(port: u16, dir: &std::path::Path, args: &[String]) -> ChildGuard {
        super::run_stack_server("nats", port, &dir.join("js"), dir, args)
    }

    /// Kill the server (its JetStream store stays on disk).
    pub fn kill(&mut self) {
        assert!(self.port != 0, "an attached client has no server to kill");
        self.child = None;
    }

    /// Start it again on the same port and store; returns when JetStream answers.
    pub async fn restart(&mut self) {
        self.child = Some(Self::spawn(self.port, &self.dir, &self.args));
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.js.query_account().await.is_err() {
            assert!(Instant::now() < deadline, "JetStream did not come back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn start(test: &str) -> Nats {
        let dir = scratch(&format!("{test}-nats"));
        Self::start_in(dir, Vec::new(), None).await
    }

    /// A client of servers this test did not start (a cluster, TLS: a
    /// [`super::topology::Topology`]), connected as the service connects: the servers of
    /// `NATS_URL` and the `NATS_TLS_*` files in `vars`. [`Nats::kill`] and
    /// [`Nats::restart`] do not apply (the topology stops and starts its nodes).
    pub async fn attach(test: &str, vars: &std::collections::BTreeMap<String, String>) -> Nats {
        let var = |name: &str| vars.get(name).cloned();
        let settings = smpp_connector::config::NatsSettings::parse(
            &var("NATS_URL").expect("NATS_URL"),
            var("NATS_CREDS"),
            smpp_connector::config::TlsFiles {
                ca_file: var("NATS_TLS_CA_FILE"),
                cert_file: var("NATS_TLS_CERT_FILE"),
                key_file: var("NATS_TLS_KEY_FILE"),
            },
            None,
        )
        .expect("NATS settings");
        let (options, servers) =
            smpp_connector_actors::nats::connect_options(&settings, format!("test-{test}"))
                .await
                .expect("NATS options");
        let client = options
            .retry_on_initial_connect()
            .connect(servers.as_slice())
            .await
            .expect("connect to the NATS servers");
        let js = jetstream::new(client.clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        while js.query_account().await.is_err() {
            assert!(Instant::now() < deadline, "JetStream did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Nats {
            child: None,
            port: 0,
            args: Vec::new(),
            url: var("NATS_URL").expect("NATS_URL"),
            dir: scratch(&format!("{test}-nats-client")),
            client,
            js,
        }
    }

    /// A server with extra configuration (e.g. `max_payload`).
    pub async fn start_with_config(test: &str, config: &str) -> Nats {
        let dir = scratch(&format!("{test}-nats"));
        let file = dir.join("extra.conf");
        std::fs::write(&file, config).expect("nats config");
        Self::start_in(dir, vec!["-c".to_owned(), file.display().to_string()], None).await
    }

    /// A server in operator mode (JWT accounts): the test connects with the user's
    /// credentials file, as the service does with `NATS_CREDS`.
    pub async fn start_secured(test: &str) -> (Nats, super::nats_auth::NatsAuth) {
        let dir = scratch(&format!("{test}-nats"));
        let auth = super::nats_auth::NatsAuth::new(&dir);
        let args = vec!["-c".to_owned(), auth.config.display().to_string()];
        let nats = Self::start_in(dir, args, Some(auth.creds.clone())).await;
        (nats, auth)
    }

    /// A server in operator mode (as [`Nats::start_secured`]) that also talks TLS only,
    /// with the certificate of `pki`: the test connects as the service does with
    /// `NATS_CREDS` beside `NATS_TLS_CA_FILE`.
    pub async fn start_secured_tls(
        test: &str,
        pki: &super::pki::Pki,
    ) -> (Nats, super::nats_auth::NatsAuth) {
        let dir = scratch(&format!("{test}-nats"));
        let auth = super::nats_auth::NatsAuth::new(&dir);
        let config = dir.join("tls.conf");
        let included = auth
            .config
            .file_name()
            .and_then(|n| n.to_str())
            .expect("config file name");
        std::fs::write(
            &config,
            format!(
                "include \"{included}\"\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n}}\n",
                pki.server_cert.display(),
                pki.server_key.display(),
                pki.ca.display()
            ),
        )
        .expect("nats config");
        let port = free_port();
        let args = vec!["-c".to_owned(), config.display().to_string()];
        let child = Self::spawn(port, &dir, &args);
        let vars = [
            ("NATS_URL", format!("tls://127.0.0.1:{port}")),
            ("NATS_CREDS", auth.creds.display().to_string()),
            ("NATS_TLS_CA_FILE", pki.ca.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut nats = Self::attach(test, &vars).await;
        nats.child = Some(child);
        nats.port = port;
        nats.args = args;
        nats.dir = dir;
        (nats, auth)
    }

    async fn start_in(
        dir: std::path::PathBuf,
        args: Vec<String>,
        creds: Option<std::path::PathBuf>,
    ) -> Nats {
        let port = free_port();
        let child = Self::spawn(port, &dir, &args);
        let url = format!("nats://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            let mut options = async_nats::ConnectOptions::new();
            if let Some(creds) = &creds {
                options = options.credentials_file(creds).await.expect("creds file");
            }
            match options.connect(&url).await {
                Ok(client) => break client,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => panic!("nats-server on {url} did not start: {err}"),
            }
        };
        let js = jetstream::new(client.clone());
        // JetStream may need a moment after the port opens.
        let deadline = Instant::now() + Duration::from_secs(10);
        while js.query_account().await.is_err() {
            assert!(Instant::now() < deadline, "JetStream did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Nats {
            child: Some(child),
            port,
            args,
            url,
            dir,
            client,
            js,
        }
    }

    /// Publish a dispatch command (as JSON text or raw bytes) on `smpp.operator.{op}`.
    pub async fn publish_raw(&self, subject: &str, payload: Vec<u8>) -> u64 {
        let ack = self
            .js
            .publish(subject.to_owned(), payload.into())
            .await
            .expect("publish")
            .await
            .expect("stream acknowledged the command");
        ack.sequence
    }

    /// Publish a valid command; returns its messageId. Its number and text are added to
    /// the strings no log may contain.
    pub async fn send_command(&self, operator: &str, to: &str, text: &str) -> String {
        super::forbid_in_logs(&[to.trim_start_matches('+'), text]);
        let message_id = uuid::Uuid::new_v4().to_string();
        let command = serde_json::json!({
            "version": "1.0",
            "messageId": message_id,
            "operatorId": operator,
            "to": to,
            "text": text,
        });
        self.publish_raw(
            &format!("smpp.operator.{operator}"),
            serde_json::to_vec(&command).expect("json"),
        )
        .await;
        message_id
    }

    /// Subscribe to a subject (core NATS; JetStream publishes are seen too).
    pub async fn subscribe(&self, subject: &str) -> Events {
        let subscriber = self
            .client
            .subscribe(subject.to_owned())
            .await
            .expect("subscribe");
        self.client.flush().await.expect("flush");
        Events {
            subscriber,
            seen: Vec::new(),
            msg_ids: Vec::new(),
        }
    }

    /// (pending, ack pending, redelivered) of a consumer.
    /// Wait until the operator's P2 dispatch consumer has nothing pending or unacked and
    /// the dispatch stream is empty: every message settled.
    pub async fn wait_drained(&self, operator: &str, timeout: Duration) {
        let consumer = format!("smpp-connector-{operator}-trx-p2");
        super::eventually(timeout, "consumer drained and stream empty", || async {
            let (pending, ack_pending, _) = self.consumer_counts("SMS_DISPATCH", &consumer).await?;
            let messages = self.stream_messages("SMS_DISPATCH").await?;
            (pending == 0 && ack_pending == 0 && messages == 0).then_some(())
        })
        .await;
    }

    pub async fn consumer_counts(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Option<(u64, usize, usize)> {
        let stream = self.js.get_stream(stream).await.ok()?;
        let info = stream.consumer_info(consumer).await.ok()?;
        Some((info.num_pending, info.num_ack_pending, info.num_redelivered))
    }

    /// Messages stored under one subject of a stream. Asked again for up to 20 s while
    /// JetStream does not answer (a cluster electing a leader).
    pub async fn subject_messages(&self, stream: &str, subject: &str) -> u64 {
        super::eventually(Duration::from_secs(20), "the stream's subjects", || async {
            let stream = self.js.get_stream(stream).await.ok()?;
            let subjects = stream.info_with_subjects(subject).await.ok()?;
            futures::pin_mut!(subjects);
            let mut total = 0;
            while let Some(found) = subjects.next().await {
                total += found.ok()?.1 as u64;
            }
            Some(total)
        })
        .await
    }

    /// Messages currently in a stream.
    pub async fn stream_messages(&self, stream: &str) -> Option<u64> {
        let mut stream = self.js.get_stream(stream).await.ok()?;
        Some(stream.info().await.ok()?.state.messages)
    }
}

/// Events received on one subscription, kept for later assertions.
pub struct Events {
    subscriber: async_nats::Subscriber,
    pub seen: Vec<Value>,
    /// The `Nats-Msg-Id` header of each event in `seen`, in the same order.
    msg_ids: Vec<Option<String>>,
}

fn msg_id(message: &async_nats::Message) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Msg-Id"))
        .map(|v| v.as_str().to_owned())
}

impl Events {
    /// The `Nats-Msg-Id` the event equal to `event` was published with.
    pub fn msg_id_of(&self, event: &Value) -> Option<String> {
        let index = self.seen.iter().position(|v| v == event)?;
        self.msg_ids[index].clone()
    }

    /// Wait for an event matching `predicate` (earlier ones are kept in `seen`).
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        predicate: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(found) = self.seen.iter().find(|v| predicate(v)) {
            return found.clone();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.subscriber.next()).await;
            match next {
                Ok(Some(message)) => {
                    let value: Value = serde_json::from_slice(&message.payload)
                        .unwrap_or_else(|_| panic!("event is not JSON on {}", message.subject));
                    self.seen.push(value.clone());
                    self.msg_ids.push(msg_id(&message));
                    if predicate(&value) {
                        return value;
                    }
                }
                Ok(None) => panic!("subscription closed while waiting for {what}"),
                Err(_) => panic!(
                    "timed out after {timeout:?} waiting for {what}; saw {} events: {:?}",
                    self.seen.len(),
                    self.seen.iter().rev().take(5).collect::<Vec<_>>()
                ),
            }
        }
    }

    /// Take whatever arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> &[Value] {
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(message)) =
            tokio::time::timeout_at(deadline, self.subscriber.next()).await
        {
            if let Ok(value) = serde_json::from_slice(&message.payload) {
                self.seen.push(value);
                self.msg_ids.push(msg_id(&message));
            }
        }
        &self.seen
    }
}
