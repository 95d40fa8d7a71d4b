//! Pulling dispatch commands from the bind's lane consumers.
//!
//! A pull runs as a detached task that hands every message to the actor by address (never
//! a stream owned by the actor's context): if the bind restarts while a batch is arriving,
//! the messages still reach the actor, which NAKs them at once instead of leaving them to
//! AckWait. A pull takes at most the room the actor gave it:
//!
//! 1. no-wait fetches, lane by lane in strict priority, while the lanes have messages;
//! 2. when every lane is empty, one long poll on every lane at once, each a request for
//!    one message that the server answers as soon as it has it. The pull ends as soon as
//!    one lane answered and the next pull's step 1 takes whatever else arrived; the lanes
//!    still waiting stay open as *listeners* — what they deliver (one message each at
//!    most, beyond the pull's room: it waits in the ledger like any queued message) goes
//!    to the actor, and the next pull skips them. So a P0 message arriving while the bind
//!    idles or drains P2 is picked up at once, and a steady trickle is not held back for
//!    the whole poll.
//!
//! Each request costs NATS one round trip: under load the first step finds messages
//! every time and one request brings up to the window's free room.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use async_nats::StatusCode;
use async_nats::jetstream;
use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::{BatchConfig, BatchError};
use futures::StreamExt;

use super::actor::BindActor;
use super::pull_mux::{Inbox, PullMux};
use crate::telemetry::internal_events::{Backend, BackendFailed, emit};

/// How long an idle lane's request waits on the server for a message. A message arriving
/// is answered at once whatever this is; it only sets how often an idle lane asks again
/// (200 idle binds × 3 lanes: 120 requests/s at 5 s, 6,000/s at 100 ms).
pub(super) const LONG_POLL: Duration = Duration::from_secs(5);
/// A request the server never ended (its 408 lost, e.g. across a NATS reconnect, which
/// drops the server's waiting requests) is given up this long after it should have
/// ended: until then its lane counts as listening and is not pulled.
const REQUEST_GRACE: Duration = Duration::from_secs(1);

/// One message from a pull task.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Pulled {
    pub generation: u64,
    pub priority: usize,
    pub message: jetstream::Message,
}

/// A pull task's own part ended; `listeners` are the lanes (priorities) whose long poll
/// is still open.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct PullFinished {
    pub generation: u64,
    pub error: Option<PullError>,
    pub listeners: Vec<usize>,
}

/// A listener's request ended (answered, expired or failed).
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct ListenEnded {
    pub generation: u64,
    pub priority: usize,
}

/// Why a pull from the dispatch consumers failed (the bind retries after 500 ms).
#[derive(Debug, thiserror::Error)]
#[error("pull from lane P{priority}: {source}")]
pub(crate) struct PullError {
    priority: usize,
    source: BatchError,
}

/// One open pull request: its inbox subscription and how many messages it may still bring.
struct Request {
    priority: usize,
    inbox: Inbox,
    left: usize,
}

/// What one read from a request gave.
enum Read {
    Message(Box<jetstream::Message>),
    Ended,
}

impl Request {
    /// Ask `consumer` for up to `batch` messages; `wait` keeps the request on the server
    /// until the first message arrives or it expires.
    async fn open(
        mux: &PullMux,
        consumer: &PullConsumer,
        priority: usize,
        batch: usize,
        wait: Option<Duration>,
    ) -> Result<Request, PullError> {
        let fail = |source: BatchError| PullError { priority, source };
        let inbox = mux
            .inbox(&consumer.cached_info().name, batch)
            .await
            .map_err(|e| fail(e.into()))?;
        let config = BatchConfig {
            batch,
            expires: wait,
            no_wait: true,
            ..Default::default()
        };
        consumer
            .request_batch(config, inbox.subject.clone())
            .await
            .map_err(|e| fail(e.into()))?;
        Ok(Request {
            priority,
            inbox,
            left: batch,
        })
    }

    /// The next message, or `Ended` when the server closed the request (no messages,
    /// expired, terminated) or it brought all it asked for.
    async fn read(&mut self, js: &jetstream::Context, deadline: tokio::time::Instant) -> Read {
        loop {
            if self.left == 0 {
                return Read::Ended;
            }
            let next = tokio::time::timeout_at(deadline, self.inbox.messages.recv()).await;
            let Ok(Some(message)) = next else {
                return Read::Ended;
            };
            let message = *message;
            match message.status.unwrap_or(StatusCode::OK) {
                StatusCode::OK => {
                    self.left -= 1;
                    return Read::Message(Box::new(jetstream::Message {
                        message,
                        context: js.clone(),
                    }));
                }
                StatusCode::IDLE_HEARTBEAT => continue,
                // 404 no messages, 408 expired (or answered), 409 terminated.
                _ => return Read::Ended,
            }
        }
    }
}

/// Pull up to `room` messages from `lanes` (priority, consumer: the lanes without an
/// open listener), handing each to the actor, then `PullFinished`; listeners left open
/// are read to their end after that, each closed by `ListenEnded`.
pub(super) async fn pull_once(
    mux: PullMux,
    lanes: super::message::Lanes,
    room: usize,
    generation: u64,
    addr: Addr<BindActor>,
) {
    let forward = |priority, message: Box<jetstream::Message>| {
        if addr.connected() {
            addr.do_send(Pulled {
                generation,
                priority,
                message: *message,
            });
        } else {
            // The bind is gone (stopped for good: released, its ownership moved): the
            // message goes back at once for the bind's new owner, not after AckWait.
            let (_, acker) = message.split();
            super::message::nak(Arc::new(acker), Duration::ZERO);
        }
    };
    let finish = |error, listeners| {
        addr.do_send(PullFinished {
            generation,
            error,
            listeners,
        });
    };
    let js = mux.context().clone();
    // 1. Strict priority while the lanes have messages.
    for (priority, consumer) in lanes.iter() {
        let mut request = match Request::open(&mux, consumer, *priority, room, None).await {
            Ok(request) => request,
            Err(error) => return finish(Some(error), Vec::new()),
        };
        let deadline = tokio::time::Instant::now() + REQUEST_GRACE;
        let mut got = 0;
        while let Read::Message(message) = request.read(&js, deadline).await {
            got += 1;
            forward(*priority, message);
        }
        if got > 0 {
            return finish(None, Vec::new());
        }
    }
    // 2. Every lane empty: wait on all of them for one message; the first lane to answer
    //    ends the pull. One each: room reserved for idle lanes stays small, and what
    //    arrives behind that first message is taken by the next pull's step 1.
    let share = 1;
    let mut error = None;
    let mut requests = Vec::with_capacity(lanes.len());
    for (priority, consumer) in lanes.iter() {
        match Request::open(&mux, consumer, *priority, share, Some(LONG_POLL)).await {
            Ok(request) => requests.push(request),
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    if requests.is_empty() {
        return finish(error, Vec::new());
    }
    let deadline = tokio::time::Instant::now() + LONG_POLL + REQUEST_GRACE;
    let js = &js;
    let read_next = |mut request: Request| async move {
        let read = request.read(js, deadline).await;
        (request, read)
    };
    // The lanes whose request is still open.
    let mut open: Vec<usize> = requests.iter().map(|r| r.priority).collect();
    let mut reads: futures::stream::FuturesUnordered<_> =
        requests.into_iter().map(read_next).collect();
    let mut answered: Option<usize> = None;
    let mut finished = false;
    while let Some((request, read)) = reads.next().await {
        let priority = request.priority;
        match read {
            Read::Message(message) => {
                forward(priority, message);
                if !finished {
                    answered.get_or_insert(priority);
                }
                reads.push(read_next(request));
            }
            Read::Ended if finished => addr.do_send(ListenEnded {
                generation,
                priority,
            }),
            Read::Ended => {
                open.retain(|p| *p != priority);
                if answered == Some(priority) {
                    // The first answer is complete: the lanes still waiting listen on.
                    finish(error.take(), open.clone());
                    finished = true;
                }
            }
        }
    }
    if !finished {
        finish(error, Vec::new());
    }
}

impl Handler<Pulled> for BindActor {
    type Result = ();

    fn handle(&mut self, pulled: Pulled, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        let _timer = self.health.time();
        if pulled.generation == self.generation {
            self.on_pulled(pulled.message, pulled.priority, ctx);
        } else {
            // Pulled for a session that is gone: back at once.
            let (_, acker) = pulled.message.split();
            super::message::nak(Arc::new(acker), Duration::ZERO);
            self.metrics.naks.increment(1);
        }
    }
}

impl Handler<PullFinished> for BindActor {
    type Result = ();

    fn handle(&mut self, done: PullFinished, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if done.generation != self.generation {
            // A pull of a session that is gone: the restart already cleared its state.
            return;
        }
        let now = crate::clock::now();
        let retry_at = self
            .core
            .pull_finished(now, &done.listeners, done.error.is_some());
        if let Some(err) = done.error {
            emit(BackendFailed {
                backend: Backend::Nats,
                what: "pull failed",
                error: &err,
            });
        }
        match retry_at {
            None => self.drive(ctx),
            Some(at) => {
                ctx.run_later(at.saturating_duration_since(now), |act, ctx| {
                    let _span = act.span.clone().entered();
                    act.core.pull_retry_due();
                    act.drive(ctx);
                });
            }
        }
    }
}

impl Handler<ListenEnded> for BindActor {
    type Result = ();

    fn handle(&mut self, ended: ListenEnded, ctx: &mut Context<Self>) {
        let _span = self.span.clone().entered();
        if ended.generation != self.generation {
            return;
        }
        self.core.listen_ended(ended.priority);
        self.drive(ctx);
    }
}
