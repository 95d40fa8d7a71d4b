//! One ESME connection: the SMSC side of an SMPP 3.4 session.
//!
//! Owns the accept loop, and per connection a reader task (decodes with [`SmppCodec`],
//! answers per the live behaviour, sends the simulator's own enquire_link) and a writer
//! task that drains a bounded channel of [`Out`] items, batching them into one write.
//! Also owns the deliver_sm receipts, their routing (same connection if it can receive,
//! else a receiver bind with the same system_id) and `/inject` / `/disconnect`.
//!
//! Delayed responses run in their own task so the reader keeps reading. Nothing a peer
//! sends can make it panic: a body that does not decode is answered with generic_nack, a
//! stream that cannot be framed is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use smpp_connector::protocol::pdu::{
    BindMode, BindRequest, BindResponse, CommandId, CommandStatus, Frame, Inbound,
    MAX_SEQUENCE_NUMBER, MAX_SHORT_MESSAGE_LEN, Malformed, Pdu, SmBody, SmppCodec, SubmitSmResp,
    Tlv, tlv_tag,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use smpp_connector_testkit::golden::{self, GoldenPdu};

use crate::behaviour::{Behaviour, message_state};
use crate::record::{self, Dir};
use crate::state::SimState;

/// Items queued per connection before the reader (or a sender) waits for the writer.
const WRITE_QUEUE: usize = 8192;
/// A write batch is sent once it reaches this size.
const WRITE_BATCH: usize = 256 * 1024;
/// How long `/inject` waits for room in a connection's write queue.
const INJECT_SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a graceful close (after unbind) waits for queued PDUs to be written.
const GRACEFUL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// system_id the simulator returns in bind responses.
pub const SMSC_SYSTEM_ID: &str = "smsc-sim";

/// What a connection's writer sends.
#[derive(Debug)]
pub enum Out {
    /// A PDU, encoded by the writer (and recorded with `dir: "out"`).
    Frame(Frame),
    /// Bytes written as they are (`/inject`), recorded under `kind`.
    Raw { kind: &'static str, bytes: Bytes },
    /// Write what is queued, then close the connection.
    Close,
}

/// The role and identity of a bound connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub mode: BindMode,
    pub system_id: String,
}

/// The part of a connection other tasks may reach: its write queue, sequence numbers,
/// bind state and close token.
#[derive(Debug)]
pub struct ConnShared {
    pub id: u64,
    pub peer: SocketAddr,
    tx: mpsc::Sender<Out>,
    next_seq: AtomicU32,
    bound: Mutex<Option<Bound>>,
    /// deliver_sm written and not answered yet, by sequence number: the body and how
    /// many times it was sent (for a redelivery after a refusal).
    pending_deliver: Mutex<HashMap<u32, (SmBody, u32)>>,
    /// The simulator sent unbind: the ESME's unbind_resp closes the connection.
    unbind_sent: AtomicBool,
    /// Sequence numbers of redelivered deliver_sm → sends before this one.
    redelivery_of: Mutex<HashMap<u32, u32>>,
    /// The system_id it bound with (kept after the connection ends: store and forward).
    system_id: std::sync::OnceLock<String>,
    close: CancellationToken,
}

impl ConnShared {
    fn new(id: u64, peer: SocketAddr, tx: mpsc::Sender<Out>) -> ConnShared {
        ConnShared {
            id,
            peer,
            tx,
            next_seq: AtomicU32::new(1),
            bound: Mutex::new(None),
            pending_deliver: Mutex::new(HashMap::new()),
            unbind_sent: AtomicBool::new(false),
            redelivery_of: Mutex::new(HashMap::new()),
            system_id: std::sync::OnceLock::new(),
            close: CancellationToken::new(),
        }
    }

    pub fn bound(&self) -> Option<Bound> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_bound(&self, bound: Option<Bound>) {
        if let Some(bound) = &bound {
            let _ = self.system_id.set(bound.system_id.clone());
        }
        *self.bound.lock().unwrap_or_else(|e| e.into_inner()) = bound;
    }

    /// The system_id this connection bound with, kept after it is unbound or closed.
    fn system_id(&self) -> Option<String> {
        self.system_id.get().cloned()
    }

    /// Next sequence number for a request the simulator originates (1..=0x7FFFFFFF).
    fn next_seq(&self) -> u32 {
        let raw = self.next_seq.fetch_add(1, Ordering::Relaxed);
        (raw.wrapping_sub(1) % MAX_SEQUENCE_NUMBER) + 1
    }

    /// Queue an item; false when the connection is gone.
    async fn send(&self, out: Out) -> bool {
        self.tx.send(out).await.is_ok()
    }

    /// Close at once, without writing what is queued (network cut).
    pub fn abort(&self) {
        self.close.cancel();
    }

    /// Queue a deliver_sm sent `sends` times already, with a new sequence number.
    async fn send_deliver(&self, body: SmBody, sends: u32) -> bool {
        let seq = self.next_seq();
        self.redelivery_of
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, sends);
        self.send(Out::Frame(Frame::new(seq, Pdu::DeliverSm(Box::new(body)))))
            .await
    }

    /// Removes `seq` from the pending deliver_sm; its body and send count if it was pending.
    fn resolve_deliver(&self, seq: u32) -> Option<(SmBody, u32)> {
        self.pending_deliver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&seq)
    }
}

/// The read half of a connection (TCP or TLS).
type ReadHalf = Pin<Box<dyn AsyncRead + Send>>;
/// The write half of a connection (TCP or TLS).
type WriteHalf = Pin<Box<dyn AsyncWrite + Send>>;

/// How long a TLS client has to finish its handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept ESME connections until shutdown; with `tls`, each completes a TLS handshake
/// (a client certificate too, when the acceptor asks for one) before it speaks SMPP.
pub async fn serve(state: Arc<SimState>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        let accepted = tokio::select! {
            () = state.shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%peer, %error, "set_nodelay failed");
                }
                let reset_on_close = state.behaviour.snapshot().reset_on_close;
                if reset_on_close {
                    #[allow(deprecated)] // tokio's set_linger: exactly the SO_LINGER 0 we want
                    if let Err(error) = stream.set_linger(Some(Duration::ZERO)) {
                        tracing::debug!(%peer, %error, "set_linger failed");
                    }
                }
                let state = state.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let (rd, wr): (ReadHalf, WriteHalf) = match tls {
                        // An owned write half sends a FIN when dropped; for a reset the
                        // socket must close without one.
                        None if reset_on_close => {
                            let (rd, wr) = tokio::io::split(stream);
                            (Box::pin(rd), Box::pin(wr))
                        }
                        None => split(stream),
                        Some(acceptor) => {
                            match tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok(tls)) => {
                                    let (rd, wr) = tokio::io::split(tls);
                                    (Box::pin(rd), Box::pin(wr))
                                }
                                Ok(Err(error)) => {
                                    tracing::info!(%peer, %error, "TLS handshake failed");
                                    state.count_tls_failure();
                                    return;
                                }
                                Err(_) => {
                                    tracing::info!(%peer, "TLS handshake timed out");
                                    state.count_tls_failure();
                                    return;
                                }
                            }
                        }
                    };
                    run_conn(state, rd, wr, peer).await;
                });
            }
            Err(error) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Why a connection's reader stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// unbind / unbind_resp exchanged: write what is queued, then close.
    Unbound,
    /// `drop_after_pdus` reached.
    Dropped,
    PeerClosed,
    FrameError,
    /// `/disconnect`, shutdown, or a write error.
    Closed,
}

fn split(stream: TcpStream) -> (ReadHalf, WriteHalf) {
    let (rd, wr) = stream.into_split();
    (Box::pin(rd), Box::pin(wr))
}

async fn run_conn(state: Arc<SimState>, rd: ReadHalf, wr: WriteHalf, peer: SocketAddr) {
    let id = state.next_conn_id();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    let conn = Arc::new(ConnShared::new(id, peer, tx));
    state.register(conn.clone());
    tracing::info!(conn = id, %peer, "connection accepted");

    let writer = tokio::spawn(write_loop(state.clone(), conn.clone(), wr, rx));
    let mut reader = Reader {
        state: &state,
        conn: &conn,
        pdus: 0,
        enquire_pending: None,
    };
    let end = tokio::select! {
        end = reader.run(rd) => end,
        () = state.shutdown.cancelled() => End::Closed,
    };
    if end == End::Unbound {
        let _ = conn.send(Out::Close).await;
        let _ = tokio::time::timeout(GRACEFUL_CLOSE_TIMEOUT, writer).await;
    }
    conn.abort();
    keep_unanswered(&state, &conn);
    conn.set_bound(None);
    state.unregister(id);
    tracing::info!(conn = id, end = ?end, "connection closed");
}

async fn write_loop(
    state: Arc<SimState>,
    conn: Arc<ConnShared>,
    wr: WriteHalf,
    mut rx: mpsc::Receiver<Out>,
) {
    write_queued(&state, &conn, wr, &mut rx).await;
    // Store and forward: deliver_sm still queued when the connection ended are kept.
    let system_id = conn.system_id();
    if let Some(system_id) = system_id.filter(|_| state.behaviour.snapshot().store_and_forward) {
        // Written but unanswered (the ESME went away), then never written.
        keep_unanswered(&state, &conn);
        rx.close();
        while let Ok(out) = rx.try_recv() {
            if let Out::Frame(frame) = out
                && let Pdu::DeliverSm(body) = frame.pdu
            {
                state.store_undelivered(&system_id, *body);
            }
        }
    }
}

/// Store and forward: the deliver_sm a connection wrote that were never answered are kept
/// for the next receiver of its system_id. Called by the reader and the writer as each ends
/// (whichever runs last sees what the other added).
fn keep_unanswered(state: &SimState, conn: &ConnShared) {
    let Some(system_id) = conn
        .system_id()
        .filter(|_| state.behaviour.snapshot().store_and_forward)
    else {
        return;
    };
    let unanswered: Vec<SmBody> = conn
        .pending_deliver
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .drain()
        .map(|(_, (body, _))| body)
        .collect();
    for body in unanswered {
        state.store_undelivered(&system_id, body);
    }
}

async fn write_queued(
    state: &Arc<SimState>,
    conn: &Arc<ConnShared>,
    mut wr: WriteHalf,
    rx: &mut mpsc::Receiver<Out>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let first = tokio::select! {
            biased;
            () = conn.close.cancelled() => return,
            item = rx.recv() => item,
        };
        let Some(first) = first else { return };
        let mut closing = queue_out(state, conn, first, &mut buf);
        while !closing && buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(item) => closing = queue_out(state, conn, item, &mut buf),
                Err(_) => break,
            }
        }
        if !buf.is_empty() {
            let written = tokio::select! {
                () = conn.close.cancelled() => return,
                written = wr.write_all(&buf) => written,
            };
            if let Err(error) = written {
                tracing::info!(conn = conn.id, %error, "write failed");
                conn.abort();
                return;
            }
            buf.clear();
        }
        if closing {
            let _ = wr.shutdown().await;
            conn.abort();
            return;
        }
    }
}

/// Append one item to the write batch; true for [`Out::Close`].
fn queue_out(state: &SimState, conn: &ConnShared, item: Out, buf: &mut BytesMut) -> bool {
    match item {
        Out::Close => return true,
        Out::Raw { kind, bytes } => {
            buf.extend_from_slice(&bytes);
            state.stats.count_sent(kind);
            if state.recorder.enabled() {
                state
                    .recorder
                    .write(record::raw_line(conn.id, kind, &bytes));
            }
        }
        Out::Frame(frame) => {
            let start = buf.len();
            if let Pdu::SubmitSmResp(SubmitSmResp {
                message_id: Some(id),
            }) = &frame.pdu
                && id.len() > 64
                && frame.command_status.is_ok()
            {
                // `message_id_format: oversized`: past SMPP's limit, which our encoder
                // enforces; written by hand as a buggy SMSC would.
                header(
                    buf,
                    (16 + id.len() + 1) as u32,
                    CommandId::SubmitSmResp as u32,
                    frame.sequence_number,
                );
                buf.extend_from_slice(id.as_bytes());
                buf.put_u8(0);
            } else if let Err(error) = frame.encode_into(buf) {
                buf.truncate(start);
                tracing::warn!(conn = conn.id, %error, command = frame.command_id().name(), "PDU not encodable, not sent");
                return false;
            }
            let command = frame.command_id();
            match command {
                CommandId::DeliverSm => {
                    // Pending before the bytes leave: the answer cannot beat the insert.
                    if let Pdu::DeliverSm(body) = &frame.pdu {
                        let sends = conn
                            .redelivery_of
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&frame.sequence_number)
                            .unwrap_or(0)
                            + 1;
                        conn.pending_deliver
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(frame.sequence_number, ((**body).clone(), sends));
                    }
                    state.stats.deliver_sm_sent.fetch_add(1, Ordering::Relaxed);
                    state
                        .stats
                        .deliver_sm_unanswered
                        .fetch_add(1, Ordering::Relaxed);
                }
                CommandId::EnquireLink => {
                    state
                        .stats
                        .enquire_link_sent
                        .fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
            state.stats.count_sent(command.name());
            if state.recorder.enabled() {
                state
                    .recorder
                    .write(record::frame_line(conn.id, Dir::Out, &frame));
            }
        }
    }
    false
}

/// The reader side of one connection.
struct Reader<'a> {
    state: &'a Arc<SimState>,
    conn: &'a Arc<ConnShared>,
    /// PDUs received so far (for `drop_after_pdus`).
    pdus: u64,
    /// Sequence number of the simulator's enquire_link awaiting its response.
    enquire_pending: Option<u32>,
}

/// Sends of a refused deliver_sm at most (the first included).
const REDELIVERY_ATTEMPTS: u32 = 10;

impl Reader<'_> {
    /// Send a refused deliver_sm again after `delay` (its `sends` so far), on the same
    /// connection if it is still open.
    fn redeliver(&self, body: SmBody, sends: u32, delay: Duration) {
        let conn = self.conn.clone();
        tracing::debug!(
            conn = conn.id,
            sends,
            "deliver_sm refused; sending it again later"
        );
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            conn.send_deliver(body, sends).await;
        });
    }

    /// Read the raw PDU with the independent decoder; count and record any violation or
    /// disagreement with the main decoder.
    fn golden_check(&self, raw: Option<&[u8]>, frame: Option<&Frame>) {
        let Some(raw) = raw else {
            return;
        };
        let error = match (golden::decode(raw), frame.map(|f| &f.pdu)) {
            (Err(violation), _) => Some(violation.to_string()),
            (Ok(GoldenPdu::SubmitSm(golden)), Some(Pdu::SubmitSm(body))) => {
                let tlvs: Vec<(u16, Vec<u8>)> =
                    body.tlvs.iter().map(|t| (t.tag, t.value.clone())).collect();
                let same = golden.destination_addr == body.destination_addr
                    && golden.source_addr == body.source_addr
                    && golden.short_message == body.short_message
                    && golden.data_coding == body.data_coding
                    && golden.esm_class == body.esm_class
                    && golden.registered_delivery == body.registered_delivery
                    && golden.tlvs == tlvs;
                (!same).then(|| "submit_sm read differently by the two decoders".to_owned())
            }
            (Ok(GoldenPdu::SubmitSm(_)), _) => {
                Some("golden decoder read a submit_sm, the main one did not".to_owned())
            }
            (Ok(_), _) => None,
        };
        if let Some(error) = error {
            self.state
                .stats
                .golden_errors
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(conn = self.conn.id, %error, "golden check failed");
            if self.state.recorder.enabled() {
                self.state
                    .recorder
                    .write(record::golden_error_line(self.conn.id, &error));
            }
        }
    }

    async fn run(&mut self, rd: ReadHalf) -> End {
        let codec = GoldenCodec {
            inner: SmppCodec::new(self.state.config.max_pdu_len),
            max: self.state.config.max_pdu_len,
        };
        let mut framed = FramedRead::with_capacity(rd, codec, 64 * 1024);
        let enquire_every = Duration::from_millis(self.state.config.enquire_link_ms.max(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + enquire_every, enquire_every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let enquire_enabled = self.state.config.enquire_link_ms > 0;
        loop {
            let item = tokio::select! {
                () = self.conn.close.cancelled() => return End::Closed,
                _ = ticker.tick(), if enquire_enabled => {
                    self.on_enquire_tick().await;
                    continue;
                }
                item = framed.next() => item,
            };
            let end = match item {
                None => Some(End::PeerClosed),
                Some(Err(error)) => {
                    let error = error.to_string();
                    self.state.stats.count_received("frame_error");
                    if self.state.recorder.enabled() {
                        self.state
                            .recorder
                            .write(record::frame_error_line(self.conn.id, &error));
                    }
                    tracing::warn!(conn = self.conn.id, %error, "stream cannot be framed, closing");
                    Some(End::FrameError)
                }
                Some(Ok((Inbound::Malformed(malformed), raw))) => {
                    self.golden_check(raw.as_deref(), None);
                    self.on_malformed(malformed).await
                }
                Some(Ok((Inbound::Frame(frame), raw))) => {
                    self.golden_check(raw.as_deref(), Some(&frame));
                    self.on_frame(frame).await
                }
            };
            if let Some(end) = end {
                return end;
            }
        }
    }

    fn record_in(
        &self,
        frame: &Frame,
        extra: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
    ) {
        if self.state.recorder.enabled() {
            let mut line = record::frame_line(self.conn.id, Dir::In, frame);
            extra(&mut line);
            self.state.recorder.write(line);
        }
    }

    /// Counts the PDU; true when `drop_after_pdus` says to close now.
    fn drop_now(&mut self, behaviour: &Behaviour) -> bool {
        self.pdus += 1;
        behaviour.drop_after_pdus.is_some_and(|n| self.pdus >= n)
    }

    async fn reply(&self, frame: Frame) {
        let _ = self.conn.send(Out::Frame(frame)).await;
    }

    async fn on_malformed(&mut self, malformed: Malformed) -> Option<End> {
        let behaviour = self.state.behaviour.snapshot();
        self.state.stats.count_received("malformed");
        self.state.stats.malformed.fetch_add(1, Ordering::Relaxed);
        if self.state.recorder.enabled() {
            self.state
                .recorder
                .write(record::malformed_line(self.conn.id, &malformed));
        }
        tracing::debug!(conn = self.conn.id, error = %malformed.error, "malformed PDU");
        if self.drop_now(&behaviour) {
            return Some(End::Dropped);
        }
        self.reply(Frame::with_status(
            malformed.sequence_number,
            malformed.error.nack_status(),
            Pdu::GenericNack,
        ))
        .await;
        None
    }

    async fn on_frame(&mut self, frame: Frame) -> Option<End> {
        let behaviour = self.state.behaviour.snapshot();
        self.state.stats.count_received(frame.command_id().name());
        if self.drop_now(&behaviour) {
            let password_ok =
                bind_request(&frame.pdu).map(|r| r.password == self.state.config.password);
            self.record_in(&frame, |line| {
                if let Some(ok) = password_ok {
                    line.insert("password_ok".to_owned(), ok.into());
                }
            });
            tracing::info!(
                conn = self.conn.id,
                pdus = self.pdus,
                "drop_after_pdus reached, closing"
            );
            return Some(End::Dropped);
        }
        let seq = frame.sequence_number;
        let bound = self.conn.bound();
        match &frame.pdu {
            Pdu::BindTransmitter(req) => {
                self.on_bind(&frame, BindMode::Transmitter, req, &behaviour)
                    .await;
            }
            Pdu::BindReceiver(req) => {
                self.on_bind(&frame, BindMode::Receiver, req, &behaviour)
                    .await;
            }
            Pdu::BindTransceiver(req) => {
                self.on_bind(&frame, BindMode::Transceiver, req, &behaviour)
                    .await;
            }
            Pdu::EnquireLink => {
                self.record_in(&frame, |_| {});
                if behaviour.answer_enquire_link {
                    self.reply(Frame::new(seq, Pdu::EnquireLinkResp)).await;
                }
            }
            Pdu::Unbind => {
                self.record_in(&frame, |_| {});
                if bound.is_some() {
                    self.conn.set_bound(None);
                    self.reply(Frame::new(seq, Pdu::UnbindResp)).await;
                    return Some(End::Unbound);
                }
                self.reply(Frame::with_status(
                    seq,
                    CommandStatus::ESME_RINVBNDSTS,
                    Pdu::UnbindResp,
                ))
                .await;
            }
            Pdu::SubmitSm(body) => self.on_submit(&frame, body, bound, &behaviour).await,
            Pdu::DeliverSm(_) => {
                // The SMSC sends deliver_sm; an ESME may not.
                self.record_in(&frame, |_| {});
                let status = if bound.is_some() {
                    CommandStatus::ESME_RINVCMDID
                } else {
                    CommandStatus::ESME_RINVBNDSTS
                };
                self.reply(Frame::with_status(seq, status, Pdu::GenericNack))
                    .await;
            }
            Pdu::DeliverSmResp => {
                self.record_in(&frame, |_| {});
                self.state.stats.count_deliver_sm_resp(frame.command_status);
                if let Some((body, sends)) = self.conn.resolve_deliver(seq) {
                    self.state
                        .stats
                        .deliver_sm_unanswered
                        .fetch_sub(1, Ordering::Relaxed);
                    // A refused deliver_sm is sent again later, as an SMSC retries a receipt.
                    if frame.command_status != CommandStatus::ESME_ROK
                        && let Some(delay) = behaviour.redeliver_refused_ms
                        && sends < REDELIVERY_ATTEMPTS
                    {
                        self.redeliver(body, sends, Duration::from_millis(delay));
                    }
                }
            }
            Pdu::GenericNack => {
                self.record_in(&frame, |_| {});
                if self.conn.resolve_deliver(seq).is_some() {
                    self.state
                        .stats
                        .deliver_sm_unanswered
                        .fetch_sub(1, Ordering::Relaxed);
                }
                if self.enquire_pending == Some(seq) {
                    self.enquire_pending = None;
                }
            }
            Pdu::EnquireLinkResp => {
                self.record_in(&frame, |_| {});
                if self.enquire_pending == Some(seq) {
                    self.enquire_pending = None;
                }
            }
            Pdu::UnbindResp => {
                self.record_in(&frame, |_| {});
                if self.conn.unbind_sent.load(Ordering::Relaxed) {
                    self.conn.set_bound(None);
                    return Some(End::Unbound);
                }
            }
            Pdu::BindTransmitterResp(_)
            | Pdu::BindReceiverResp(_)
            | Pdu::BindTransceiverResp(_)
            | Pdu::SubmitSmResp(_) => {
                // Responses to requests the simulator never sends: record only.
                self.record_in(&frame, |_| {});
            }
        }
        None
    }

    async fn on_bind(
        &self,
        frame: &Frame,
        mode: BindMode,
        req: &BindRequest,
        behaviour: &Behaviour,
    ) {
        let config = &self.state.config;
        let stats = &self.state.stats;
        let password_ok = req.password == config.password;
        self.record_in(frame, |line| {
            line.insert("password_ok".to_owned(), password_ok.into());
        });
        stats.bind_attempts.fetch_add(1, Ordering::Relaxed);
        let status = if self.conn.bound().is_some() {
            CommandStatus::ESME_RALYBND
        } else if let Some(status) = behaviour.bind_status {
            status.command_status()
        } else if mode == BindMode::Transceiver && behaviour.reject_bind_transceiver {
            CommandStatus::ESME_RINVCMDID
        } else if req.system_id != config.system_id {
            CommandStatus::ESME_RINVSYSID
        } else if !password_ok {
            CommandStatus::ESME_RINVPASWD
        } else {
            CommandStatus::ESME_ROK
        };
        if status.is_ok() {
            self.conn.set_bound(Some(Bound {
                mode,
                system_id: req.system_id.clone(),
            }));
            stats.binds.fetch_add(1, Ordering::Relaxed);
            tracing::info!(conn = self.conn.id, mode = mode.name(), system_id = %req.system_id, "bound");
        } else {
            stats.bind_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::info!(conn = self.conn.id, mode = mode.name(), %status, "bind rejected");
        }
        let response = BindResponse {
            system_id: Some(SMSC_SYSTEM_ID.to_owned()),
            sc_interface_version: Some(0x34),
        };
        self.reply(Frame::with_status(
            frame.sequence_number,
            status,
            Pdu::bind_resp(mode, response),
        ))
        .await;
        // Store and forward: what earlier receivers of this system_id left unacknowledged.
        if status.is_ok() && mode.can_receive() && behaviour.store_and_forward {
            for body in self.state.take_undelivered(&req.system_id) {
                self.conn.send_deliver(body, 0).await;
            }
        }
    }

    async fn on_submit(
        &self,
        frame: &Frame,
        body: &SmBody,
        bound: Option<Bound>,
        behaviour: &Behaviour,
    ) {
        let seq = frame.sequence_number;
        let stats = &self.state.stats;
        let Some(bound) = bound.filter(|b| b.mode.can_submit()) else {
            self.record_in(frame, |_| {});
            stats.submit_failed.fetch_add(1, Ordering::Relaxed);
            self.reply(Frame::with_status(
                seq,
                CommandStatus::ESME_RINVBNDSTS,
                Pdu::SubmitSmResp(SubmitSmResp { message_id: None }),
            ))
            .await;
            return;
        };
        if behaviour.drop_submit_resp {
            self.record_in(frame, |_| {});
            stats.submit_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let status = self
            .state
            .behaviour
            .next_submit_status(behaviour)
            .command_status();
        let message_id = status
            .is_ok()
            .then(|| self.state.next_message_id(behaviour.message_id_format));
        self.record_in(frame, |line| {
            line.insert("message_id".to_owned(), message_id.clone().into());
        });
        if status.is_ok() {
            stats.submit_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.submit_failed.fetch_add(1, Ordering::Relaxed);
        }

        let receipt = match &message_id {
            Some(id) if behaviour.receipts && body.registered_delivery & 0x01 != 0 => {
                let target = if bound.mode.can_receive() {
                    Some(self.conn.clone())
                } else {
                    self.state.receiver_for(&bound.system_id)
                };
                let receipt = receipt_body(body, id, behaviour);
                match target {
                    Some(target) => {
                        stats.receipts_queued.fetch_add(1, Ordering::Relaxed);
                        let frame =
                            Frame::new(target.next_seq(), Pdu::DeliverSm(Box::new(receipt)));
                        Some((target, frame))
                    }
                    None if behaviour.store_and_forward => {
                        stats.receipts_queued.fetch_add(1, Ordering::Relaxed);
                        self.state.store_undelivered(&bound.system_id, receipt);
                        None
                    }
                    None => {
                        stats.receipts_unroutable.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(conn = self.conn.id, "no receiving bind for the receipt");
                        None
                    }
                }
            }
            _ => None,
        };

        let resp = Frame::with_status(seq, status, Pdu::SubmitSmResp(SubmitSmResp { message_id }));
        let resp = (self.conn.clone(), resp);
        let resp_delay = Duration::from_millis(behaviour.resp_delay_ms);
        let receipt_delay = Duration::from_millis(behaviour.receipt_delay_ms);
        // The second item's delay counts from the first one.
        let plan: Vec<(Duration, (Arc<ConnShared>, Frame))> = match receipt {
            None => vec![(resp_delay, resp)],
            Some(receipt) if behaviour.receipt_before_resp => {
                vec![(receipt_delay, receipt), (resp_delay, resp)]
            }
            Some(receipt) => vec![(resp_delay, resp), (receipt_delay, receipt)],
        };
        // A receipt whose connection is gone by the time it is due is stored (store and
        // forward) instead of lost.
        let keep = behaviour
            .store_and_forward
            .then(|| (self.state.clone(), bound.system_id.clone()));
        let send = move |target: Arc<ConnShared>, frame: Frame| {
            let keep = keep.clone();
            async move {
                let receipt = match (&keep, &frame.pdu) {
                    (Some(_), Pdu::DeliverSm(body)) => Some((**body).clone()),
                    _ => None,
                };
                if !target.send(Out::Frame(frame)).await
                    && let (Some((state, system_id)), Some(body)) = (keep, receipt)
                {
                    state.store_undelivered(&system_id, body);
                }
            }
        };
        if plan.iter().all(|(delay, _)| delay.is_zero()) {
            for (_, (target, frame)) in plan {
                send(target, frame).await;
            }
        } else {
            tokio::spawn(async move {
                for (delay, (target, frame)) in plan {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    send(target, frame).await;
                }
            });
        }
    }

    async fn on_enquire_tick(&mut self) {
        if self.conn.bound().is_none() {
            return;
        }
        if let Some(seq) = self.enquire_pending {
            self.state
                .stats
                .enquire_link_unanswered
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(conn = self.conn.id, seq, "enquire_link not answered");
        }
        let seq = self.conn.next_seq();
        self.enquire_pending = Some(seq);
        self.reply(Frame::new(seq, Pdu::EnquireLink)).await;
    }
}

fn bind_request(pdu: &Pdu) -> Option<&BindRequest> {
    match pdu {
        Pdu::BindTransmitter(r) | Pdu::BindReceiver(r) | Pdu::BindTransceiver(r) => Some(r),
        _ => None,
    }
}

/// The deliver_sm receipt for an accepted submit_sm.
fn receipt_body(submit: &SmBody, message_id: &str, behaviour: &Behaviour) -> SmBody {
    let now = chrono::Utc::now().format("%y%m%d%H%M").to_string();
    let mut text = format!(
        "id:{message_id} sub:001 dlvrd:001 submit date:{now} done date:{now} stat:{} err:{} text:",
        behaviour.receipt_stat, behaviour.receipt_err
    )
    .into_bytes();
    if submit.data_coding == 0 {
        // Skip a UDH (esm_class UDHI) so the excerpt is text.
        let content = if submit.esm_class & 0x40 != 0 {
            let udh_len = submit.short_message.first().map_or(0, |l| *l as usize + 1);
            submit.short_message.get(udh_len..).unwrap_or(&[])
        } else {
            &submit.short_message[..]
        };
        text.extend_from_slice(&content[..content.len().min(20)]);
    }
    text.truncate(MAX_SHORT_MESSAGE_LEN);
    let tlvs = if behaviour.receipt_tlvs {
        vec![
            Tlv::from_c_string(tlv_tag::RECEIPTED_MESSAGE_ID, message_id),
            Tlv::from_u8(
                tlv_tag::MESSAGE_STATE,
                message_state(&behaviour.receipt_stat),
            ),
        ]
    } else {
        Vec::new()
    };
    SmBody {
        source_addr_ton: submit.dest_addr_ton,
        source_addr_npi: submit.dest_addr_npi,
        source_addr: submit.destination_addr.clone(),
        dest_addr_ton: submit.source_addr_ton,
        dest_addr_npi: submit.source_addr_npi,
        destination_addr: submit.source_addr.clone(),
        esm_class: 0x04,
        data_coding: 0,
        short_message: text,
        tlvs,
        ..SmBody::default()
    }
}

/// What `/inject` writes.
#[derive(Debug, Clone)]
pub enum Inject {
    /// A framed deliver_sm whose 4-octet body is garbage without NULs.
    Malformed,
    /// A header claiming 0xFFFFFFF0 octets, then 16 octets; the connection stays open.
    Oversize,
    /// A header-only PDU with command_id 0x00000999.
    UnknownCommand,
    Raw(Bytes),
    DeliverSm(Box<SmBody>),
    Unbind,
    EnquireLink,
    /// `messages` concatenated MO messages of `parts` parts each (8-bit UDH, 153 GSM7
    /// septets a part), each message's parts in reverse order, one originator per message
    /// (`8{seed:04}{n:07}`), spread over the receiving connections: the load of
    /// `scripts/bench --mo`.
    MoBurst {
        messages: u32,
        parts: u8,
        seed: u16,
    },
    /// `receipts` delivery receipts for message ids nobody submitted (`u{seed}-{n}`),
    /// spread over the receiving connections: a flood of receipts that cannot be
    /// correlated (an SMSC replaying another client's receipts).
    ReceiptBurst {
        receipts: u32,
        seed: u16,
    },
}

/// Receipt `n` of an [`Inject::ReceiptBurst`].
fn burst_receipt(n: u32, seed: u16) -> SmBody {
    let id = format!("u{seed}-{n}");
    SmBody {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: format!("7{seed:04}{n:07}"),
        dest_addr_ton: 0,
        dest_addr_npi: 1,
        destination_addr: "3030".to_owned(),
        esm_class: 0x04,
        short_message: format!(
            "id:{id} sub:001 dlvrd:001 submit date:2612070000 done date:2612070001 stat:DELIVRD err:000 text:"
        )
        .into_bytes(),
        tlvs: vec![
            Tlv::from_c_string(tlv_tag::RECEIPTED_MESSAGE_ID, &id),
            Tlv::from_u8(tlv_tag::MESSAGE_STATE, message_state("DELIVRD")),
        ],
        ..SmBody::default()
    }
}

/// Queue an [`Inject::ReceiptBurst`], waiting for room as [`inject_burst`] does.
async fn inject_receipts(targets: &[Arc<ConnShared>], receipts: u32, seed: u16) -> usize {
    let mut sent = 0;
    for n in 0..receipts {
        let target = &targets[n as usize % targets.len()];
        let frame = Frame::new(
            target.next_seq(),
            Pdu::DeliverSm(Box::new(burst_receipt(n, seed))),
        );
        if target.tx.send(Out::Frame(frame)).await.is_err() {
            return sent;
        }
        sent += 1;
    }
    sent
}

/// The deliver_sm of part `seq` of burst message `n`.
fn burst_part(n: u32, parts: u8, seq: u8, seed: u16) -> SmBody {
    let mut user_data = vec![0x05, 0x00, 0x03, (n % 255) as u8 + 1, parts, seq];
    let text = format!("burst message {n} part {seq} ");
    user_data.extend(text.bytes().chain(std::iter::repeat(b'x')).take(153));
    SmBody {
        source_addr_ton: 1,
        source_addr_npi: 1,
        source_addr: format!("8{seed:04}{n:07}"),
        dest_addr_ton: 0,
        dest_addr_npi: 1,
        destination_addr: "3030".to_owned(),
        esm_class: 0x40,
        short_message: user_data,
        ..SmBody::default()
    }
}

/// Queue an [`Inject::MoBurst`]: waits for room in the write queues (no timeout: the
/// writers drain them at the ESME's pace). Returns the PDUs queued.
async fn inject_burst(targets: &[Arc<ConnShared>], messages: u32, parts: u8, seed: u16) -> usize {
    let mut sent = 0;
    for n in 0..messages {
        let target = &targets[n as usize % targets.len()];
        for seq in (1..=parts).rev() {
            let body = burst_part(n, parts, seq, seed);
            let frame = Frame::new(target.next_seq(), Pdu::DeliverSm(Box::new(body)));
            if target.tx.send(Out::Frame(frame)).await.is_err() {
                return sent;
            }
            sent += 1;
        }
    }
    sent
}

impl Inject {
    /// Whether the default target set is only connections that can receive (everything
    /// but the raw garbage kinds, which go to every bound connection).
    fn receivers_only(&self) -> bool {
        !matches!(self, Inject::Malformed | Inject::Oversize | Inject::Raw(_))
    }

    fn out_for(&self, conn: &ConnShared) -> Out {
        match self {
            Inject::Malformed => {
                let mut bytes = BytesMut::with_capacity(20);
                header(&mut bytes, 20, CommandId::DeliverSm as u32, conn.next_seq());
                let noise = uuid::Uuid::new_v4();
                bytes.extend(noise.as_bytes()[..4].iter().map(|b| b'A' + b % 26));
                Out::Raw {
                    kind: "malformed",
                    bytes: bytes.freeze(),
                }
            }
            Inject::Oversize => {
                let mut bytes = BytesMut::with_capacity(32);
                header(
                    &mut bytes,
                    0xFFFF_FFF0,
                    CommandId::DeliverSm as u32,
                    conn.next_seq(),
                );
                bytes.extend_from_slice(&[b'X'; 16]);
                Out::Raw {
                    kind: "oversize",
                    bytes: bytes.freeze(),
                }
            }
            Inject::UnknownCommand => {
                let mut bytes = BytesMut::with_capacity(16);
                header(&mut bytes, 16, 0x0000_0999, conn.next_seq());
                Out::Raw {
                    kind: "unknown_command",
                    bytes: bytes.freeze(),
                }
            }
            Inject::Raw(bytes) => Out::Raw {
                kind: "raw",
                bytes: bytes.clone(),
            },
            Inject::DeliverSm(body) => {
                Out::Frame(Frame::new(conn.next_seq(), Pdu::DeliverSm(body.clone())))
            }
            Inject::Unbind => {
                conn.unbind_sent.store(true, Ordering::Relaxed);
                Out::Frame(Frame::new(conn.next_seq(), Pdu::Unbind))
            }
            Inject::EnquireLink => Out::Frame(Frame::new(conn.next_seq(), Pdu::EnquireLink)),
            Inject::MoBurst {
                messages,
                parts,
                seed,
            } => Out::Frame(Frame::new(
                conn.next_seq(),
                Pdu::DeliverSm(Box::new(burst_part(*messages, *parts, 1, *seed))),
            )),
            Inject::ReceiptBurst { seed, .. } => Out::Frame(Frame::new(
                conn.next_seq(),
                Pdu::DeliverSm(Box::new(burst_receipt(0, *seed))),
            )),
        }
    }
}

fn header(dst: &mut BytesMut, length: u32, command_id: u32, seq: u32) {
    dst.put_u32(length);
    dst.put_u32(command_id);
    dst.put_u32(0);
    dst.put_u32(seq);
}

/// Send `inject` to connection `conn`, or by default to every bound connection that can
/// receive (every bound connection for malformed / oversize / raw). Returns how many were
/// queued; `Err` when an explicit connection id is unknown.
pub async fn inject(state: &SimState, inject: &Inject, conn: Option<u64>) -> Result<usize, String> {
    let targets = match conn {
        Some(id) => vec![
            state
                .conn(id)
                .ok_or_else(|| format!("no connection {id}"))?,
        ],
        None => state
            .conns()
            .into_iter()
            .filter(|c| {
                c.bound()
                    .is_some_and(|b| !inject.receivers_only() || b.mode.can_receive())
            })
            .collect(),
    };
    if let Inject::MoBurst {
        messages,
        parts,
        seed,
    } = *inject
    {
        if targets.is_empty() {
            return Ok(0);
        }
        return Ok(inject_burst(&targets, messages, parts, seed).await);
    }
    if let Inject::ReceiptBurst { receipts, seed } = *inject {
        if targets.is_empty() {
            return Ok(0);
        }
        return Ok(inject_receipts(&targets, receipts, seed).await);
    }
    let mut sent = 0;
    for target in targets {
        let out = inject.out_for(&target);
        if target
            .tx
            .send_timeout(out, INJECT_SEND_TIMEOUT)
            .await
            .is_ok()
        {
            sent += 1;
        }
    }
    Ok(sent)
}

/// Close connections at once (all, or the one with id `conn`); returns how many.
pub fn disconnect(state: &SimState, conn: Option<u64>) -> usize {
    let targets: Vec<Arc<ConnShared>> = match conn {
        Some(id) => state.conn(id).into_iter().collect(),
        None => state.conns(),
    };
    for target in &targets {
        target.abort();
    }
    targets.len()
}

/// `GET /connections`: one object per open connection.
pub fn connections_json(state: &SimState) -> serde_json::Value {
    let list: Vec<serde_json::Value> = state
        .conns()
        .iter()
        .map(|c| {
            let bound = c.bound();
            serde_json::json!({
                "id": c.id,
                "peer": c.peer.to_string(),
                "mode": bound.as_ref().map(|b| b.mode.name()),
                "system_id": bound.as_ref().map(|b| b.system_id.clone()),
                "pending_deliver_sm": c.pending_deliver.lock().unwrap_or_else(|e| e.into_inner()).len(),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// The simulator's framing: the project's codec, plus a copy of each whole PDU's bytes for
/// the golden decoder.
struct GoldenCodec {
    inner: SmppCodec,
    max: usize,
}

impl tokio_util::codec::Decoder for GoldenCodec {
    type Item = (Inbound, Option<Vec<u8>>);
    type Error = <SmppCodec as tokio_util::codec::Decoder>::Error;

    fn decode(&mut self, src: &mut bytes::BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        let raw = (src.len() >= 4)
            .then(|| u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize)
            .filter(|len| (16..=self.max).contains(len) && src.len() >= *len)
            .map(|len| src[..len].to_vec());
        Ok(self.inner.decode(src)?.map(|item| (item, raw)))
    }
}
