//! The JSON-lines record of every PDU the simulator received and sent.
//!
//! Owns the record file: one writer thread behind an unbounded channel, a buffered writer
//! flushed at most [`FLUSH_EVERY`] after a line was written, on [`Recorder::flush`] and
//! when the last sender goes away. Also owns the line format (`frame_line`,
//! `malformed_line`, `raw_line`). Connection tasks never touch the file: a line costs
//! them one serialisation and one channel send, and nothing at all when recording is off.
//!
//! It must not write a bind password: binds carry `password_ok` only.

use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use smpp_connector::protocol::pdu::{Frame, Malformed, Pdu, SmBody};

/// Longest time a recorded line stays in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Direction of a recorded PDU, from the simulator's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received from the ESME.
    In,
    /// Sent by the simulator.
    Out,
}

impl Dir {
    fn as_str(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

enum Msg {
    Line(String),
    Flush(mpsc::Sender<()>),
}

/// Handle on the record writer; cheap to share (`&Recorder` from the shared state).
#[derive(Debug)]
pub struct Recorder {
    tx: Option<mpsc::Sender<Msg>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Line(_) => f.write_str("Line"),
            Msg::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Recorder {
    /// A recorder that drops everything.
    pub fn disabled() -> Recorder {
        Recorder { tx: None }
    }

    /// Append to `path` (created if missing) from a dedicated thread.
    pub fn open(path: &Path) -> io::Result<Recorder> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        thread::Builder::new()
            .name("smsc-sim-record".to_owned())
            .spawn(move || write_loop(BufWriter::with_capacity(256 * 1024, file), rx))?;
        Ok(Recorder { tx: Some(tx) })
    }

    /// False when there is no record file: callers skip building lines.
    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }

    /// Queue one line (an object; `ts` is added here).
    pub fn write(&self, mut line: Map<String, Value>) {
        let Some(tx) = &self.tx else { return };
        line.insert(
            "ts".to_owned(),
            Value::String(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        match serde_json::to_string(&line) {
            Ok(text) => {
                let _ = tx.send(Msg::Line(text));
            }
            Err(error) => tracing::warn!(%error, "record line not serialisable"),
        }
    }

    /// Write out everything queued so far and flush the file (bounded wait).
    pub async fn flush(&self) {
        let Some(tx) = &self.tx else { return };
        let (ack_tx, ack_rx) = mpsc::channel();
        if tx.send(Msg::Flush(ack_tx)).is_err() {
            return;
        }
        let waited =
            tokio::task::spawn_blocking(move || ack_rx.recv_timeout(Duration::from_secs(5)));
        match waited.await {
            Ok(Ok(())) => {}
            _ => tracing::warn!("record flush did not complete"),
        }
    }
}

fn write_loop(mut out: BufWriter<std::fs::File>, rx: mpsc::Receiver<Msg>) {
    let mut dirty_since: Option<Instant> = None;
    loop {
        let wait = match dirty_since {
            Some(since) => FLUSH_EVERY.saturating_sub(since.elapsed()),
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(Msg::Line(line)) => {
                let written = out
                    .write_all(line.as_bytes())
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(error) = written {
                    tracing::error!(%error, "record write failed");
                }
                let since = *dirty_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= FLUSH_EVERY {
                    flush(&mut out, &mut dirty_since);
                }
            }
            Ok(Msg::Flush(ack)) => {
                flush(&mut out, &mut dirty_since);
                let _ = ack.send(());
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if dirty_since.is_some() {
                    flush(&mut out, &mut dirty_since);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                flush(&mut out, &mut dirty_since);
                return;
            }
        }
    }
}

fn flush(out: &mut BufWriter<std::fs::File>, dirty_since: &mut Option<Instant>) {
    if let Err(error) = out.flush() {
        tracing::error!(%error, "record flush failed");
    }
    *dirty_since = None;
}

fn header(conn: u64, dir: Dir, command: &str) -> Map<String, Value> {
    let mut line = Map::new();
    line.insert("conn".to_owned(), json!(conn));
    line.insert("dir".to_owned(), json!(dir.as_str()));
    line.insert("command".to_owned(), json!(command));
    line
}

/// The line for a decoded PDU. Callers add `password_ok` (binds) and `message_id`
/// (received submit_sm).
pub fn frame_line(conn: u64, dir: Dir, frame: &Frame) -> Map<String, Value> {
    let id = frame.command_id();
    let mut line = header(conn, dir, id.name());
    line.insert("command_id".to_owned(), json!(id as u32));
    line.insert("status".to_owned(), json!(frame.command_status.0));
    line.insert("seq".to_owned(), json!(frame.sequence_number));
    match &frame.pdu {
        Pdu::BindTransmitter(req) | Pdu::BindReceiver(req) | Pdu::BindTransceiver(req) => {
            line.insert("system_id".to_owned(), json!(req.system_id));
            line.insert("system_type".to_owned(), json!(req.system_type));
            line.insert("interface_version".to_owned(), json!(req.interface_version));
        }
        Pdu::BindTransmitterResp(resp)
        | Pdu::BindReceiverResp(resp)
        | Pdu::BindTransceiverResp(resp) => {
            line.insert("system_id".to_owned(), json!(resp.system_id));
        }
        Pdu::SubmitSm(body) | Pdu::DeliverSm(body) => sm_fields(&mut line, body),
        Pdu::SubmitSmResp(resp) => {
            line.insert("message_id".to_owned(), json!(resp.message_id));
        }
        Pdu::DeliverSmResp
        | Pdu::EnquireLink
        | Pdu::EnquireLinkResp
        | Pdu::Unbind
        | Pdu::UnbindResp
        | Pdu::GenericNack => {}
    }
    line
}

fn sm_fields(line: &mut Map<String, Value>, body: &SmBody) {
    line.insert("service_type".to_owned(), json!(body.service_type));
    line.insert("source_addr_ton".to_owned(), json!(body.source_addr_ton));
    line.insert("source_addr_npi".to_owned(), json!(body.source_addr_npi));
    line.insert("source_addr".to_owned(), json!(body.source_addr));
    line.insert("dest_addr_ton".to_owned(), json!(body.dest_addr_ton));
    line.insert("dest_addr_npi".to_owned(), json!(body.dest_addr_npi));
    line.insert("destination_addr".to_owned(), json!(body.destination_addr));
    line.insert("esm_class".to_owned(), json!(body.esm_class));
    line.insert("data_coding".to_owned(), json!(body.data_coding));
    line.insert(
        "registered_delivery".to_owned(),
        json!(body.registered_delivery),
    );
    line.insert("validity_period".to_owned(), json!(body.validity_period));
    line.insert(
        "short_message_hex".to_owned(),
        json!(hex::encode(&body.short_message)),
    );
    let tlvs: Vec<Value> = body
        .tlvs
        .iter()
        .map(|t| json!({"tag": t.tag, "value_hex": hex::encode(&t.value)}))
        .collect();
    line.insert("tlvs".to_owned(), Value::Array(tlvs));
}

/// The line for a received frame whose body did not decode.
pub fn malformed_line(conn: u64, malformed: &Malformed) -> Map<String, Value> {
    let mut line = header(conn, Dir::In, "malformed");
    line.insert("command_id".to_owned(), json!(malformed.command_id));
    line.insert("status".to_owned(), json!(malformed.command_status));
    line.insert("seq".to_owned(), json!(malformed.sequence_number));
    line.insert("error".to_owned(), json!(malformed.error.to_string()));
    line
}

/// The line for raw bytes the simulator wrote on purpose (`/inject`).
pub fn raw_line(conn: u64, kind: &str, bytes: &[u8]) -> Map<String, Value> {
    let mut line = header(conn, Dir::Out, kind);
    line.insert("hex".to_owned(), json!(hex::encode(bytes)));
    line
}

/// The line for a stream that could not be framed (the connection is closed after it).
/// A PDU the golden decoder rejected or read differently from the main decoder.
pub fn golden_error_line(conn: u64, error: &str) -> Map<String, Value> {
    let mut line = header(conn, Dir::In, "golden_error");
    line.insert("error".to_owned(), json!(error));
    line
}

pub fn frame_error_line(conn: u64, error: &str) -> Map<String, Value> {
    let mut line = header(conn, Dir::In, "frame_error");
    line.insert("error".to_owned(), json!(error));
    line
}
