//! One subscription for every pull request of the process.
//!
//! Each open pull request needs somewhere for its answer to arrive. A subscription per
//! request costs, in async-nats, a channel of 32 message slots (≈ 6 KiB) for as long as it
//! is open, and an idle bind keeps a long poll open on each of its lanes: three per bind,
//! the largest part of an idle bind's memory. Here every request gets the inbox
//! `{prefix}.{token}` under one wildcard subscription and a dispatcher routes what arrives:
//!
//! - status messages (404 no messages, 408 expired, 409 terminated) come to the request's
//!   own inbox and are routed by its token;
//! - JetStream delivers a pull's messages under their stream subject, so a message is
//!   routed by the consumer named in its ACK subject, to the oldest open request on that
//!   consumer that still has room. Every bind pulling from a consumer serves the same
//!   operator and lane, so whichever request takes the message, the message is the same
//!   work; each request still gets no more than it asked for.
//!
//! A message no open request can take (its request ended or was dropped: a restart, a
//! shutdown) is NAKed at once so it is delivered again now, not after AckWait.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::{self, AckKind};
use async_nats::{StatusCode, Subject, SubscribeError};
use futures::StreamExt;
use tokio::sync::mpsc;

/// The process's pull-request inboxes (cheap to clone).
#[derive(Clone)]
pub struct PullMux {
    js: jetstream::Context,
    shared: Arc<tokio::sync::OnceCell<Arc<Shared>>>,
}

impl std::fmt::Debug for PullMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullMux").finish_non_exhaustive()
    }
}

struct Shared {
    prefix: String,
    next: AtomicU64,
    routes: Mutex<Routes>,
}

#[derive(Default)]
struct Routes {
    by_token: HashMap<u64, Route>,
    /// Per consumer name: the tokens of its open requests that still have room, oldest first.
    waiting: HashMap<Arc<str>, VecDeque<u64>>,
}

struct Route {
    tx: mpsc::UnboundedSender<Box<async_nats::Message>>,
    consumer: Arc<str>,
    left: usize,
}

impl Routes {
    /// Hand a message to a route; the message back when the route is gone.
    fn deliver(
        &mut self,
        token: u64,
        message: Box<async_nats::Message>,
        data: bool,
    ) -> Option<Box<async_nats::Message>> {
        let Some(route) = self.by_token.get_mut(&token) else {
            return Some(message);
        };
        if data {
            route.left = route.left.saturating_sub(1);
            if route.left == 0
                && let Some(queue) = self.waiting.get_mut(&route.consumer)
            {
                queue.retain(|t| *t != token);
            }
        }
        route.tx.send(message).err().map(|e| e.0)
    }

    /// The oldest request on `consumer` that still has room.
    fn taker(&self, consumer: &str) -> Option<u64> {
        self.waiting.get(consumer)?.front().copied()
    }

    fn remove(&mut self, token: u64) {
        if let Some(route) = self.by_token.remove(&token)
            && let Some(queue) = self.waiting.get_mut(&route.consumer)
        {
            queue.retain(|t| *t != token);
            if queue.is_empty() {
                self.waiting.remove(&route.consumer);
            }
        }
    }
}

/// Where one pull request's messages arrive; the route goes when this is dropped.
pub struct Inbox {
    pub subject: Subject,
    pub messages: mpsc::UnboundedReceiver<Box<async_nats::Message>>,
    token: u64,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        if let Ok(mut routes) = self.shared.routes.lock() {
            routes.remove(self.token);
        }
    }
}

impl PullMux {
    pub fn new(js: jetstream::Context) -> Self {
        PullMux {
            js,
            shared: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// An inbox for one request of up to `batch` messages on `consumer` (subscribes the
    /// wildcard on first use).
    pub async fn inbox(&self, consumer: &str, batch: usize) -> Result<Inbox, SubscribeError> {
        let shared = self
            .shared
            .get_or_try_init(|| async {
                let client = self.js.client();
                let prefix = format!("{}.pull", client.new_inbox());
                let subscriber = client.subscribe(format!("{prefix}.*")).await?;
                let shared = Arc::new(Shared {
                    prefix,
                    next: AtomicU64::new(1),
                    routes: Mutex::new(Routes::default()),
                });
                actix::spawn(dispatch(subscriber, shared.clone(), self.js.clone()));
                Ok::<_, SubscribeError>(shared)
            })
            .await?
            .clone();
        let token = shared.next.fetch_add(1, Ordering::Relaxed);
        let (tx, messages) = mpsc::unbounded_channel();
        if let Ok(mut routes) = shared.routes.lock() {
            let consumer: Arc<str> = routes
                .waiting
                .get_key_value(consumer)
                .map_or_else(|| Arc::from(consumer), |(name, _)| name.clone());
            routes
                .waiting
                .entry(consumer.clone())
                .or_default()
                .push_back(token);
            routes.by_token.insert(
                token,
                Route {
                    tx,
                    consumer,
                    left: batch,
                },
            );
        }
        Ok(Inbox {
            subject: Subject::from(format!("{}.{token}", shared.prefix)),
            messages,
            token,
            shared,
        })
    }
}

/// The consumer named in a JetStream ACK subject:
/// `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or with a
/// domain and account hash before the stream (12 tokens and more).
fn consumer_of(reply: &str) -> Option<&str> {
    let tokens: Vec<&str> = reply.split('.').collect();
    match tokens.as_slice() {
        ["$JS", "ACK", _, consumer, _, _, _, _, _] => Some(consumer),
        ["$JS", "ACK", _, _, _, consumer, ..] if tokens.len() >= 12 => Some(consumer),
        _ => None,
    }
}

/// Route every answer; NAK a message nobody waits for any more.
async fn dispatch(
    mut subscriber: async_nats::Subscriber,
    shared: Arc<Shared>,
    js: jetstream::Context,
) {
    let own = format!("{}.", shared.prefix);
    while let Some(message) = subscriber.next().await {
        let message = Box::new(message);
        let data = message.status.unwrap_or(StatusCode::OK) == StatusCode::OK;
        let token = message
            .subject
            .strip_prefix(own.as_str())
            .and_then(|t| t.parse::<u64>().ok());
        let orphan = {
            let Ok(mut routes) = shared.routes.lock() else {
                return;
            };
            let target = match token {
                Some(token) => Some(token),
                None if data => message
                    .reply
                    .as_deref()
                    .and_then(consumer_of)
                    .and_then(|consumer| routes.taker(consumer)),
                None => None,
            };
            match target {
                Some(token) => routes.deliver(token, message, data),
                None => Some(message),
            }
        };
        if let Some(message) = orphan
            && data
            && message.reply.is_some()
        {
            let (_, acker) = jetstream::Message {
                message: *message,
                context: js.clone(),
            }
            .split();
            actix::spawn(async move {
                let _ = acker.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
    // The client is gone: every open request ends.
    if let Ok(mut routes) = shared.routes.lock() {
        *routes = Routes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Box<async_nats::Message> {
        Box::new(async_nats::Message {
            subject: Subject::from(subject),
            reply: None,
            payload: bytes::Bytes::new(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        })
    }

    fn route(
        routes: &mut Routes,
        token: u64,
        consumer: &str,
        left: usize,
    ) -> mpsc::UnboundedReceiver<Box<async_nats::Message>> {
        let (tx, rx) = mpsc::unbounded_channel();
        let consumer: Arc<str> = Arc::from(consumer);
        routes
            .waiting
            .entry(consumer.clone())
            .or_default()
            .push_back(token);
        routes.by_token.insert(token, Route { tx, consumer, left });
        rx
    }

    #[test]
    fn messages_go_to_the_oldest_request_with_room_and_orphans_come_back() {
        let mut routes = Routes::default();
        let mut first = route(&mut routes, 1, "p2", 1);
        let mut second = route(&mut routes, 2, "p2", 5);
        let _other = route(&mut routes, 3, "p0", 1);

        // The oldest request on the consumer takes the first message and, full, leaves
        // the queue; the next goes to the second request.
        let taker = routes.taker("p2").unwrap();
        assert_eq!(taker, 1);
        assert!(routes.deliver(taker, message("a"), true).is_none());
        assert_eq!(routes.taker("p2"), Some(2));
        assert!(routes.deliver(2, message("b"), true).is_none());
        assert_eq!(first.try_recv().unwrap().subject.as_str(), "a");
        assert_eq!(second.try_recv().unwrap().subject.as_str(), "b");
        assert_eq!(routes.taker("p0"), Some(3), "other consumers are apart");

        // A status message (not data) does not use up room.
        assert!(routes.deliver(2, message("408"), false).is_none());
        assert_eq!(routes.by_token[&2].left, 4);

        // Requests gone: a message for them comes back to be NAKed.
        routes.remove(2);
        assert_eq!(routes.taker("p2"), None);
        assert!(routes.deliver(2, message("c"), true).is_some());
        routes.remove(1);
        assert!(!routes.waiting.contains_key("p2"), "no empty queue kept");
    }

    #[test]
    fn the_consumer_is_read_from_both_ack_subject_forms() {
        assert_eq!(
            consumer_of(
                "$JS.ACK.SMS_DISPATCH.smpp-connector-op-trx-p2.1.10.9.1733300000000000000.0"
            ),
            Some("smpp-connector-op-trx-p2")
        );
        assert_eq!(
            consumer_of(
                "$JS.ACK.hub.ACCHASH.SMS_DISPATCH.smpp-connector-op-trx-p0.1.10.9.1733300000000000000.0.rand"
            ),
            Some("smpp-connector-op-trx-p0")
        );
        assert_eq!(consumer_of("_INBOX.abc.1"), None);
    }
}
