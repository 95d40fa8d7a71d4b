//! In-process tests of the simulator: a throwaway ESME over `SmppCodec` on loopback.
//! Every await is bounded by a timeout.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use smpp_connector::protocol::pdu::{
    BindMode, BindRequest, CommandStatus, DEFAULT_MAX_PDU_LEN, Frame, Inbound, Pdu, SmBody,
    SmppCodec, find_tlv, tlv_tag,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_util::codec::Framed;

use crate::behaviour::Behaviour;
use crate::state::SimConfig;
use crate::{Sim, SimOptions, start};

const WAIT: Duration = Duration::from_secs(2);

async fn sim(behaviour: Behaviour, record: Option<PathBuf>, control: bool) -> Sim {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("debug")
        .try_init();
    let options = SimOptions {
        listen: "127.0.0.1:0".parse().expect("literal address"),
        control: control.then(|| "127.0.0.1:0".parse().expect("literal address")),
        config: SimConfig {
            system_id: "smppclient1".to_owned(),
            password: "password".to_owned(),
            enquire_link_ms: 0,
            max_pdu_len: DEFAULT_MAX_PDU_LEN,
            message_id_start: 1,
        },
        behaviour,
        record,
        tls: None,
    };
    timeout(WAIT, start(options))
        .await
        .expect("start in time")
        .expect("sim starts")
}

struct Esme {
    framed: Framed<TcpStream, SmppCodec>,
}

impl Esme {
    async fn connect(sim: &Sim) -> Esme {
        let stream = timeout(WAIT, TcpStream::connect(sim.smpp))
            .await
            .expect("connect in time")
            .expect("connect");
        Esme {
            framed: Framed::new(stream, SmppCodec::default()),
        }
    }

    async fn send(&mut self, frame: Frame) {
        let bytes = frame.encode().expect("encodable");
        self.send_raw(bytes).await;
    }

    async fn send_raw(&mut self, bytes: Bytes) {
        timeout(WAIT, self.framed.send(bytes))
            .await
            .expect("send in time")
            .expect("send");
    }

    async fn recv_inbound(&mut self) -> Inbound {
        timeout(WAIT, self.framed.next())
            .await
            .expect("PDU in time")
            .expect("connection open")
            .expect("framed")
    }

    async fn recv(&mut self) -> Frame {
        match self.recv_inbound().await {
            Inbound::Frame(frame) => frame,
            Inbound::Malformed(m) => panic!("malformed PDU from the sim: {m:?}"),
        }
    }

    async fn bind(&mut self, mode: BindMode, password: &str) -> Frame {
        let request = BindRequest {
            system_id: "smppclient1".to_owned(),
            password: password.to_owned(),
            system_type: "test".to_owned(),
            interface_version: 0x34,
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        };
        self.send(Frame::new(1, Pdu::bind(mode, request))).await;
        self.recv().await
    }
}

fn submit(seq: u32, destination: &str, text: &str) -> Frame {
    Frame::new(
        seq,
        Pdu::SubmitSm(Box::new(SmBody {
            source_addr_ton: 5,
            source_addr: "ACME".to_owned(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: destination.to_owned(),
            registered_delivery: 1,
            short_message: text.as_bytes().to_vec(),
            ..SmBody::default()
        })),
    )
}

fn read_record(path: &PathBuf) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("record readable")
        .lines()
        .map(|l| serde_json::from_str(l).expect("record line is JSON"))
        .collect()
}

#[tokio::test]
async fn submits_get_ok_responses_receipts_and_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = dir.path().join("record.jsonl");
    let sim = sim(Behaviour::default(), Some(record.clone()), false).await;
    let mut esme = Esme::connect(&sim).await;

    let bound = esme.bind(BindMode::Transceiver, "password").await;
    assert_eq!(bound.command_status, CommandStatus::ESME_ROK);
    let Pdu::BindTransceiverResp(resp) = &bound.pdu else {
        panic!("expected bind_transceiver_resp, got {bound:?}")
    };
    assert_eq!(resp.system_id.as_deref(), Some("smsc-sim"));
    assert_eq!(resp.sc_interface_version, Some(0x34));

    let destinations = ["447700900001", "447700900002", "447700900003"];
    for (i, dest) in destinations.iter().enumerate() {
        esme.send(submit(
            10 + i as u32,
            dest,
            "hello there, this is a long text",
        ))
        .await;
    }
    let mut message_ids = Vec::new();
    let mut receipts = Vec::new();
    while message_ids.len() < 3 || receipts.len() < 3 {
        let frame = esme.recv().await;
        match &frame.pdu {
            Pdu::SubmitSmResp(resp) => {
                assert_eq!(frame.command_status, CommandStatus::ESME_ROK);
                message_ids.push(resp.message_id.clone().expect("message_id"));
            }
            Pdu::DeliverSm(body) => {
                esme.send(Frame::new(frame.sequence_number, Pdu::DeliverSmResp))
                    .await;
                receipts.push(body.clone());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(message_ids, vec!["1", "2", "3"]);
    for (receipt, dest) in receipts.iter().zip(destinations) {
        assert_eq!(receipt.esm_class, 0x04);
        assert_eq!(receipt.source_addr, dest);
        assert_eq!(receipt.destination_addr, "ACME");
        let text = String::from_utf8_lossy(&receipt.short_message).into_owned();
        let id = find_tlv(&receipt.tlvs, tlv_tag::RECEIPTED_MESSAGE_ID)
            .expect("receipted_message_id")
            .as_text();
        assert!(text.starts_with(&format!("id:{id} sub:001 dlvrd:001 submit date:")));
        assert!(text.ends_with("stat:DELIVRD err:000 text:hello there, this is"));
        assert_eq!(
            find_tlv(&receipt.tlvs, tlv_tag::MESSAGE_STATE).and_then(|t| t.as_u8()),
            Some(2)
        );
    }

    // Unbind: unbind_resp, then the sim closes.
    esme.send(Frame::new(20, Pdu::Unbind)).await;
    let frame = esme.recv().await;
    assert_eq!(frame.pdu, Pdu::UnbindResp);
    let closed = timeout(WAIT, esme.framed.next())
        .await
        .expect("closed in time");
    assert!(closed.is_none());

    sim.state.recorder.flush().await;
    let lines = read_record(&record);
    let submits: Vec<&Value> = lines
        .iter()
        .filter(|l| l["command"] == "submit_sm" && l["dir"] == "in")
        .collect();
    assert_eq!(submits.len(), 3);
    for (line, (dest, id)) in submits.iter().zip(destinations.iter().zip(&message_ids)) {
        assert_eq!(line["destination_addr"], *dest);
        assert_eq!(line["message_id"], json!(id));
        assert_eq!(line["command_id"], 4);
        assert_eq!(line["source_addr"], "ACME");
        assert!(line["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')));
    }
    let bind = lines
        .iter()
        .find(|l| l["command"] == "bind_transceiver")
        .expect("bind recorded");
    assert_eq!(bind["password_ok"], true);
    assert!(
        !std::fs::read_to_string(&record)
            .expect("record")
            .contains("\"password\"")
    );
    let resps = lines
        .iter()
        .filter(|l| l["command"] == "deliver_sm_resp")
        .count();
    assert_eq!(resps, 3);
    let stats = sim.state.stats_json();
    assert_eq!(stats["submit_ok"], 3);
    assert_eq!(stats["deliver_sm_sent"], 3);
    assert_eq!(stats["deliver_sm_unanswered"], 0);
}

#[tokio::test]
async fn bind_transceiver_rejected_then_tx_rx_with_routed_receipts() {
    let behaviour = Behaviour {
        reject_bind_transceiver: true,
        ..Behaviour::default()
    };
    let sim = sim(behaviour, None, false).await;
    let mut tx = Esme::connect(&sim).await;
    let rejected = tx.bind(BindMode::Transceiver, "password").await;
    assert_eq!(rejected.command_status, CommandStatus::ESME_RINVCMDID);
    assert!(matches!(rejected.pdu, Pdu::BindTransceiverResp(_)));

    let bound = tx.bind(BindMode::Transmitter, "password").await;
    assert_eq!(bound.command_status, CommandStatus::ESME_ROK);
    let mut rx = Esme::connect(&sim).await;
    let bound = rx.bind(BindMode::Receiver, "password").await;
    assert_eq!(bound.command_status, CommandStatus::ESME_ROK);

    tx.send(submit(2, "447700900009", "hi")).await;
    let resp = tx.recv().await;
    assert!(matches!(resp.pdu, Pdu::SubmitSmResp(_)));
    let receipt = rx.recv().await;
    let Pdu::DeliverSm(body) = &receipt.pdu else {
        panic!("expected a receipt on the receiver, got {receipt:?}")
    };
    assert_eq!(body.source_addr, "447700900009");

    // A receiver may not submit; bad credentials are refused with the right status.
    rx.send(submit(3, "447700900009", "hi")).await;
    assert_eq!(
        rx.recv().await.command_status,
        CommandStatus::ESME_RINVBNDSTS
    );
    let mut other = Esme::connect(&sim).await;
    assert_eq!(
        other
            .bind(BindMode::Transmitter, "wrong")
            .await
            .command_status,
        CommandStatus::ESME_RINVPASWD
    );
}

#[tokio::test]
async fn enquire_link_ignored_when_configured() {
    let behaviour = Behaviour {
        answer_enquire_link: false,
        ..Behaviour::default()
    };
    let sim = sim(behaviour, None, false).await;
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Transceiver, "password").await;
    esme.send(Frame::new(2, Pdu::EnquireLink)).await;
    // No registered_delivery: the only answer is the submit_sm_resp.
    esme.send(Frame::new(3, Pdu::SubmitSm(Box::default())))
        .await;
    // PDUs are handled in order: had enquire_link been answered, its response came first.
    let frame = esme.recv().await;
    assert_eq!(frame.sequence_number, 3);
    assert!(matches!(frame.pdu, Pdu::SubmitSmResp(_)));

    sim.state
        .behaviour
        .update(&json!({"answer_enquire_link": true}))
        .expect("valid patch");
    esme.send(Frame::new(4, Pdu::EnquireLink)).await;
    let frame = esme.recv().await;
    assert_eq!(
        (frame.sequence_number, frame.pdu),
        (4, Pdu::EnquireLinkResp)
    );
}

#[tokio::test]
async fn malformed_pdu_gets_generic_nack_and_connection_stays_up() {
    let sim = sim(Behaviour::default(), None, false).await;
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Transceiver, "password").await;
    // submit_sm, length 20, body "ABCD": no NUL-terminated fields.
    let garbage = hex::decode("0000001400000004000000000000002a41424344").expect("hex");
    esme.send_raw(Bytes::from(garbage)).await;
    let nack = esme.recv().await;
    assert_eq!(nack.pdu, Pdu::GenericNack);
    assert_eq!(nack.sequence_number, 42);
    assert_eq!(nack.command_status, CommandStatus::ESME_RINVMSGLEN);

    // Unknown command id: ESME_RINVCMDID.
    let unknown = hex::decode("00000010000009990000000000000007").expect("hex");
    esme.send_raw(Bytes::from(unknown)).await;
    let nack = esme.recv().await;
    assert_eq!(
        (nack.pdu, nack.sequence_number, nack.command_status),
        (Pdu::GenericNack, 7, CommandStatus::ESME_RINVCMDID)
    );

    esme.send(Frame::new(43, Pdu::EnquireLink)).await;
    assert_eq!(esme.recv().await.pdu, Pdu::EnquireLinkResp);
}

#[tokio::test]
async fn control_api_changes_behaviour_and_injects() {
    let sim = sim(Behaviour::default(), None, true).await;
    let control = sim.control.expect("control listener");
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Transceiver, "password").await;

    let (status, body) = http(
        control,
        "POST",
        "/behaviour",
        r#"{"submit_status_next":["ESME_RTHROTTLED"],"message_id_format":"dec"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["submit_status_next"], json!([0x58]));
    let (status, body) = http(control, "POST", "/behaviour", r#"{"nope":1}"#).await;
    assert_eq!(status, 400, "{body}");

    esme.send(submit(2, "1", "x")).await;
    assert_eq!(
        esme.recv().await.command_status,
        CommandStatus::ESME_RTHROTTLED
    );
    esme.send(submit(3, "1", "x")).await;
    assert_eq!(esme.recv().await.command_status, CommandStatus::ESME_ROK);
    let receipt = esme.recv().await;
    esme.send(Frame::new(receipt.sequence_number, Pdu::DeliverSmResp))
        .await;

    let (status, body) = http(control, "POST", "/inject", r#"{"kind":"malformed"}"#).await;
    assert_eq!((status, &body), (200, &json!({"sent": 1})));
    assert!(matches!(esme.recv_inbound().await, Inbound::Malformed(_)));

    let (status, stats) = http(control, "GET", "/stats", "").await;
    assert_eq!(status, 200);
    assert_eq!(stats["bound"]["trx"], 1);
    assert_eq!(stats["received"]["submit_sm"], 2);
    assert_eq!(stats["submit_ok"], 1);

    let (status, body) = http(control, "POST", "/disconnect", "").await;
    assert_eq!((status, &body), (200, &json!({"closed": 1})));
    let closed = timeout(WAIT, esme.framed.next())
        .await
        .expect("closed in time");
    assert!(!matches!(closed, Some(Ok(_))));
}

/// A minimal HTTP/1.1 client: one request per connection.
async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> (u16, Value) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = timeout(WAIT, exchange)
        .await
        .expect("HTTP in time")
        .expect("HTTP exchange");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()))
    };
    (status, body)
}

#[tokio::test]
async fn drop_after_pdus_unbind_and_oversize_injection() {
    let behaviour = Behaviour {
        drop_after_pdus: Some(2),
        ..Behaviour::default()
    };
    let sim = sim(behaviour, None, false).await;
    // The second PDU closes the connection unanswered.
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Transceiver, "password").await;
    esme.send(submit(2, "1", "x")).await;
    let closed = timeout(WAIT, esme.framed.next())
        .await
        .expect("closed in time");
    assert!(!matches!(closed, Some(Ok(_))), "{closed:?}");
    sim.state
        .behaviour
        .update(&json!({"drop_after_pdus": null}))
        .expect("valid patch");

    // The SMSC asks to unbind; the ESME's unbind_resp closes the connection.
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Receiver, "password").await;
    let sent = crate::conn::inject(&sim.state, &crate::conn::Inject::Unbind, None)
        .await
        .expect("inject");
    assert_eq!(sent, 1);
    let unbind = esme.recv().await;
    assert_eq!(unbind.pdu, Pdu::Unbind);
    esme.send(Frame::new(unbind.sequence_number, Pdu::UnbindResp))
        .await;
    let closed = timeout(WAIT, esme.framed.next())
        .await
        .expect("closed in time");
    assert!(closed.is_none());

    // Oversize: the ESME's codec refuses the header without reading the body.
    let mut esme = Esme::connect(&sim).await;
    esme.bind(BindMode::Transceiver, "password").await;
    let sent = crate::conn::inject(&sim.state, &crate::conn::Inject::Oversize, None)
        .await
        .expect("inject");
    assert_eq!(sent, 1);
    let item = timeout(WAIT, esme.framed.next()).await.expect("in time");
    assert!(matches!(item, Some(Err(_))), "{item:?}");
}
