//! A steady load of dispatch commands for the reliability suites: `rate` commands per
//! second to one operator, every fifth a three-part message, each to a number of its
//! own; paused while the test has NATS down (a platform publisher waits for its server).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::Nats;

/// The text of the short commands (never in a log line).
pub const SHORT: &str = "Reliability test message";

/// The text of every fifth command: three GSM7 segments (never in a log line).
pub fn long_text() -> String {
    "Reliability long message in three parts, one reference for all of them. ".repeat(5)
}

/// One published command.
#[derive(Debug, Clone)]
pub struct Sent {
    pub id: String,
    pub segments: usize,
    pub at: Instant,
}

/// Commands being published in the background.
pub struct Load {
    running: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    /// A publish is under way.
    busy: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<Sent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    /// Start publishing to `smpp.operator.{op}` at `rate` commands per second, each
    /// stored (JetStream acknowledged) before the next.
    pub fn start(nats: &Nats, op: &str, rate: u64) -> Load {
        super::forbid_in_logs(&[SHORT, &long_text()]);
        let running = Arc::new(AtomicBool::new(true));
        let paused = Arc::new(AtomicBool::new(false));
        let busy = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (js, op) = (nats.js.clone(), op.to_owned());
            let (running, paused, busy) = (running.clone(), paused.clone(), busy.clone());
            let sent = sent.clone();
            let period = Duration::from_micros(1_000_000 / rate.max(1));
            tokio::spawn(async move {
                let mut due = Instant::now();
                let mut n: u64 = 0;
                while running.load(Ordering::Relaxed) {
                    // Paced, without a burst to catch up after a pause.
                    due = (due + period).max(Instant::now());
                    tokio::time::sleep_until(due.into()).await;
                    // Busy before looking at `paused`: `pause` waits for a publish that
                    // saw it unset.
                    busy.store(true, Ordering::SeqCst);
                    if paused.load(Ordering::SeqCst) {
                        busy.store(false, Ordering::SeqCst);
                        continue;
                    }
                    let long = n % 5 == 4;
                    let id = uuid::Uuid::new_v4().to_string();
                    let command = json!({
                        "version": "1.0",
                        "messageId": id,
                        "operatorId": op,
                        "to": format!("+93799{n:06}"),
                        "text": if long { long_text() } else { SHORT.to_owned() },
                    });
                    publish_stored(
                        &js,
                        format!("smpp.operator.{op}"),
                        &id,
                        serde_json::to_vec(&command).unwrap(),
                    )
                    .await;
                    let segments = if long { 3 } else { 1 };
                    sent.lock().unwrap().push(Sent {
                        id,
                        segments,
                        at: Instant::now(),
                    });
                    busy.store(false, Ordering::SeqCst);
                    n += 1;
                }
            })
        };
        Load {
            running,
            paused,
            busy,
            sent,
            task,
        }
    }

    /// Stop publishing until `resume`; returns once the command being published (if
    /// one) is stored.
    pub async fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        while self.busy.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    /// The commands stored so far.
    pub fn sent(&self) -> Vec<Sent> {
        self.sent.lock().unwrap().clone()
    }

    /// Stop and return every command stored.
    pub async fn stop(self) -> Vec<Sent> {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.expect("the load task");
        Arc::try_unwrap(self.sent)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|shared| shared.lock().unwrap().clone())
    }
}

/// Publish one command until the stream acknowledges it, as a platform publisher does: a
/// publish that fails or is not acknowledged (a NATS server lost, a stream electing its
/// leader) is sent again under the same `Nats-Msg-Id`, which the stream de-duplicates.
/// Panics after 60 s.
async fn publish_stored(
    js: &async_nats::jetstream::Context,
    subject: String,
    id: &str,
    payload: Vec<u8>,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id);
        let attempt = async {
            js.publish_with_headers(subject.clone(), headers, payload.clone().into())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())
        };
        match attempt.await {
            Ok(_) => return,
            Err(err) => {
                assert!(
                    Instant::now() < deadline,
                    "a command could not be stored for 60 s: {err}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Message ids and the number of segments they make.
pub fn ids_and_segments(sent: &[Sent]) -> (Vec<String>, usize) {
    (
        sent.iter().map(|s| s.id.clone()).collect(),
        sent.iter().map(|s| s.segments).sum(),
    )
}
