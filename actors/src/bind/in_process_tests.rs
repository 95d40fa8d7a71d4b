//! A `BindActor` in-process under a paused clock: its SMSC is a task of the test at the
//! other end of a duplex pipe (an [`SmscConnector`] of the test), its credentials come
//! from [`MemoryCredentials`], its rows go to [`MemoryStore`], its Redis side is
//! [`MemoryRedis`]. Time moves only when every task waits, so the session's timers
//! (enquire_link every 30 s, its 10 s timeout, the 5–60 s backoff) run at their real
//! settings and each test asserts the sequence and the instants, not the wall clock.
//!
//! What is not in process: JetStream (the publisher's client points at a port nothing
//! listens on; the bind's lanes are empty, so it never pulls). The dispatch path runs in
//! the whole-process tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use futures::future::BoxFuture;
use smpp_connector::config::{BindKey, Direction, OperatorId};
use smpp_connector::protocol::pdu::{BindResponse, CommandStatus, Frame, Pdu};
use smpp_connector::protocol::session::BindState;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use super::io::{ConnectError, Connection, SmscConnector};
use super::{BindActor, BindCrashed, BindDeps, BindStateChanged, PullMux};
use crate::correlation::{CorrelationActor, MemoryStore};
use crate::inbound::InboundDeps;
use crate::oms::MemoryCredentials;
use crate::test_support;
use crate::throttle::{MemoryRedis, ThrottleActor};

const OPERATOR: &str = "opinproc";

/// How the test's SMSC behaves.
#[derive(Debug, Clone, Copy)]
struct Behaviour {
    bind_status: CommandStatus,
    answer_enquire_link: bool,
}

/// What the test's SMSC saw, with the paused clock's instants.
#[derive(Debug, Default)]
struct Seen {
    connects: Vec<Instant>,
    /// (when, command_id) of every PDU the bind sent.
    pdus: Vec<(Instant, u32)>,
}

/// The test's SMSC: each connection is a duplex pipe served by a task that answers binds,
/// enquire_links and unbinds as [`Behaviour`] says.
#[derive(Clone)]
struct PipeSmsc {
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Seen>>,
}

impl PipeSmsc {
    fn new(bind_status: CommandStatus) -> Self {
        PipeSmsc {
            behaviour: Arc::new(Mutex::new(Behaviour {
                bind_status,
                answer_enquire_link: true,
            })),
            seen: Arc::default(),
        }
    }

    fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().unwrap());
    }

    fn connects(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().connects.clone()
    }

    /// When the bind sent PDUs with `command_id`.
    fn sent(&self, command_id: u32) -> Vec<Instant> {
        let seen = self.seen.lock().unwrap();
        seen.pdus
            .iter()
            .filter(|(_, id)| *id == command_id)
            .map(|(at, _)| *at)
            .collect()
    }

    async fn serve(self, mut pipe: DuplexStream) {
        loop {
            let mut header = [0u8; 16];
            if pipe.read_exact(&mut header).await.is_err() {
                return;
            }
            let length = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
            let command_id = u32::from_be_bytes(header[4..8].try_into().unwrap());
            let sequence = u32::from_be_bytes(header[12..16].try_into().unwrap());
            let mut body = vec![0u8; length.saturating_sub(16)];
            if pipe.read_exact(&mut body).await.is_err() {
                return;
            }
            self.seen
                .lock()
                .unwrap()
                .pdus
                .push((Instant::now(), command_id));
            let behaviour = *self.behaviour.lock().unwrap();
            let answer = match command_id {
                BIND_TRANSCEIVER => Some(Frame::with_status(
                    sequence,
                    behaviour.bind_status,
                    Pdu::bind_resp(
                        smpp_connector::protocol::pdu::BindMode::Transceiver,
                        BindResponse::default(),
                    ),
                )),
                ENQUIRE_LINK if behaviour.answer_enquire_link => {
                    Some(Frame::new(sequence, Pdu::EnquireLinkResp))
                }
                UNBIND => Some(Frame::new(sequence, Pdu::UnbindResp)),
                _ => None,
            };
            if let Some(frame) = answer {
                let bytes = frame.encode().expect("encode");
                if pipe.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            if command_id == UNBIND {
                return;
            }
        }
    }
}

const BIND_TRANSCEIVER: u32 = 0x0000_0009;
const ENQUIRE_LINK: u32 = 0x0000_0015;
const UNBIND: u32 = 0x0000_0006;

impl SmscConnector for PipeSmsc {
    fn connect(
        &self,
        _host: &str,
        _port: u16,
        _tls: Option<&TlsConnector>,
        _timeout: Duration,
    ) -> BoxFuture<'static, Result<Connection, ConnectError>> {
        self.seen.lock().unwrap().connects.push(Instant::now());
        let (ours, theirs) = tokio::io::duplex(64 * 1024);
        tokio::spawn(self.clone().serve(theirs));
        let (read, write) = tokio::io::split(ours);
        Box::pin(async move {
            Ok(Connection {
                read: Box::pin(read),
                write: Box::pin(write),
            })
        })
    }
}

/// The supervisor's place: records the bind's state changes with their instants.
#[derive(Default)]
struct Recorder {
    states: Arc<Mutex<Vec<(Instant, BindState)>>>,
}

impl Actor for Recorder {
    type Context = Context<Self>;
}

impl Handler<BindStateChanged> for Recorder {
    type Result = ();

    fn handle(&mut self, changed: BindStateChanged, _ctx: &mut Context<Self>) {
        self.states
            .lock()
            .unwrap()
            .push((Instant::now(), changed.state));
    }
}

impl Handler<BindCrashed> for Recorder {
    type Result = ();

    fn handle(&mut self, _: BindCrashed, _ctx: &mut Context<Self>) {}
}

/// One trx bind of the test operator against `smsc`; the recorder's state log.
async fn start_bind(smsc: &PipeSmsc) -> (Addr<BindActor>, Arc<Mutex<Vec<(Instant, BindState)>>>) {
    let config = test_support::config(OPERATOR, "pod-inproc", &[("BIND_DIRECTION", "trx")]);
    let op = OperatorId::try_new(OPERATOR).expect("operator");
    let oms = MemoryCredentials::new();
    oms.set_json(
        &op,
        &format!(
            r#"{{"operatorId": "{OPERATOR}", "host": "smsc.test", "port": 2775,
                "systemId": "esme", "password": "pw-inpr", "bindCount": 1, "window": 10,
                "enquireLinkSeconds": 30}}"#
        ),
    );
    let publisher = test_support::unreachable_publisher(test_support::closed_port()).await;
    let correlation = CorrelationActor::new(Arc::new(MemoryStore::new()), 100, 1).start();
    let throttle = ThrottleActor::new(
        MemoryRedis::new().shared(),
        smpp_connector::backends::RedisTopology::Standalone,
    )
    .start();
    let recorder = Recorder::default();
    let states = recorder.states.clone();
    let recorder = recorder.start();
    let deps = Arc::new(BindDeps {
        inbound: Arc::new(InboundDeps {
            config: config.clone(),
            correlation: correlation.clone(),
            publisher: publisher.clone(),
            throttle: throttle.clone(),
        }),
        config: config.clone(),
        credentials: Arc::new(oms),
        correlation,
        supervisor: recorder.clone().recipient(),
        crashed: recorder.recipient(),
        pulls: PullMux::new(publisher.context().clone()),
        publisher,
        throttle,
        tls: crate::tls::smpp_connector(&config.smpp_tls).expect("tls"),
        smsc: Arc::new(smsc.clone()),
    });
    let key = BindKey::new(op.clone(), Direction::Trx, 0);
    let lanes: super::Lanes = Arc::new([]);
    let bind = actix::Supervisor::start(move |_| BindActor::new(key, op, deps, lanes));
    (bind, states)
}

/// The gaps between `instants`, to the 10 ms: a paused clock's sleep may end a
/// millisecond after its deadline (tokio rounds timers up to the millisecond).
fn gaps(instants: &[Instant]) -> Vec<Duration> {
    instants.windows(2).map(|w| to_10ms(w[1] - w[0])).collect()
}

fn to_10ms(gap: Duration) -> Duration {
    Duration::from_millis(gap.as_millis() as u64 / 10 * 10)
}

fn states_of(states: &Arc<Mutex<Vec<(Instant, BindState)>>>) -> Vec<BindState> {
    states.lock().unwrap().iter().map(|(_, s)| *s).collect()
}

/// Bound in process; the session is kept alive by an enquire_link every 30 s (the
/// credentials' `enquireLinkSeconds`), to the millisecond of the paused clock.
#[actix_rt::test]
async fn a_bound_bind_sends_an_enquire_link_every_thirty_seconds() {
    tokio::time::pause();
    let smsc = PipeSmsc::new(CommandStatus::ESME_ROK);
    let (_bind, states) = start_bind(&smsc).await;
    tokio::time::sleep(Duration::from_secs(95)).await;
    assert_eq!(
        states_of(&states),
        vec![BindState::Connecting, BindState::Bound],
        "connected and bound once"
    );
    assert_eq!(smsc.connects().len(), 1);
    let bound_at = states.lock().unwrap()[1].0;
    let links = smsc.sent(ENQUIRE_LINK);
    assert_eq!(links.len(), 3, "at 30, 60 and 90 s: {links:?}");
    assert_eq!(to_10ms(links[0] - bound_at), Duration::from_secs(30));
    assert_eq!(gaps(&links), vec![Duration::from_secs(30); 2]);
}

/// The SMSC stops answering enquire_link: 10 s later the bind gives the session up and
/// reconnects after the backoff's first step (5 s), binds again and goes on.
#[actix_rt::test]
async fn an_unanswered_enquire_link_ends_the_session_and_the_bind_reconnects_after_the_backoff() {
    tokio::time::pause();
    let smsc = PipeSmsc::new(CommandStatus::ESME_ROK);
    let (_bind, states) = start_bind(&smsc).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    smsc.set(|b| b.answer_enquire_link = false);
    tokio::time::sleep(Duration::from_secs(40)).await;
    smsc.set(|b| b.answer_enquire_link = true);
    tokio::time::sleep(Duration::from_secs(30)).await;

    let connects = smsc.connects();
    assert_eq!(connects.len(), 2, "one reconnect: {connects:?}");
    let unanswered = smsc.sent(ENQUIRE_LINK)[0];
    assert_eq!(to_10ms(unanswered - connects[0]), Duration::from_secs(30));
    // Timed out 10 s after the unanswered enquire_link, then the backoff's 5 s.
    assert_eq!(to_10ms(connects[1] - unanswered), Duration::from_secs(15));
    assert_eq!(
        states_of(&states),
        vec![
            BindState::Connecting,
            BindState::Bound,
            BindState::Disconnected,
            BindState::Connecting,
            BindState::Bound,
        ]
    );
}

/// A refused bind is a failed attempt: the next ones wait 5, 10, 20, 40, 60 s (the
/// backoff doubles to its 60 s cap); once the SMSC accepts, the bind is bound.
#[actix_rt::test]
async fn a_refused_bind_backs_off_five_ten_twenty_forty_sixty_seconds() {
    tokio::time::pause();
    let smsc = PipeSmsc::new(CommandStatus::ESME_RBINDFAIL);
    let (_bind, states) = start_bind(&smsc).await;
    tokio::time::sleep(Duration::from_secs(140)).await;
    let refused = smsc.connects();
    assert_eq!(
        gaps(&refused),
        [5, 10, 20, 40, 60].map(Duration::from_secs).to_vec(),
        "{refused:?}"
    );
    assert!(!states_of(&states).contains(&BindState::Bound));
    smsc.set(|b| b.bind_status = CommandStatus::ESME_ROK);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(states_of(&states).last(), Some(&BindState::Bound));
    assert_eq!(
        smsc.connects().len(),
        refused.len() + 1,
        "bound at the next attempt"
    );
}

/// An admin restart unbinds gracefully (nothing in flight: the unbind goes at once) and
/// binds again at once, without the backoff; the supervisor sees UNBINDING in between.
#[actix_rt::test]
async fn an_admin_restart_unbinds_and_binds_again_at_once() {
    tokio::time::pause();
    let smsc = PipeSmsc::new(CommandStatus::ESME_ROK);
    let (bind, states) = start_bind(&smsc).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    bind.send(super::RestartBind { reason: "admin" })
        .await
        .expect("bind");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let connects = smsc.connects();
    assert_eq!(connects.len(), 2, "{connects:?}");
    let unbinds = smsc.sent(UNBIND);
    assert_eq!(unbinds.len(), 1);
    assert!(
        to_10ms(connects[1] - unbinds[0]) < Duration::from_millis(100),
        "reconnected at once, not after the backoff"
    );
    assert_eq!(
        states_of(&states),
        vec![
            BindState::Connecting,
            BindState::Bound,
            BindState::Unbinding,
            BindState::Disconnected,
            BindState::Connecting,
            BindState::Bound,
        ]
    );
}
