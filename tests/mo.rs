//! Mobile-originated messages: the simulator sends deliver_sm that are not receipts, the
//! service publishes `MoInboundEvent` on `sms.mo.inbound` — decoded by data_coding, and
//! concatenated parts (UDH 8-bit, UDH 16-bit, SAR) reassembled in Redis: in any order,
//! repeats ignored, partial after the window, across a restart and across two pods.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::proxy::redis_proxy;
use crate::support::sim::credentials;
use crate::support::{Nats, Oms, Service, Sim, Stage, eventually, metric, schema, unique};

const T: Duration = Duration::from_secs(30);

/// GSM 7-bit default alphabet, unpacked (one septet per byte), for the characters the
/// tests use: ASCII letters, digits and space are themselves; '@' 0x00, '£' 0x01, '€'
/// the escape 0x1B 0x65.
pub(crate) fn gsm7(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for c in text.chars() {
        match c {
            '@' => out.push(0x00),
            '£' => out.push(0x01),
            '€' => out.extend([0x1B, 0x65]),
            c if c.is_ascii_alphanumeric() || c == ' ' || c == '.' => out.push(c as u8),
            other => panic!("gsm7 helper: {other:?} not mapped"),
        }
    }
    out
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

pub(crate) fn deliver(from: &str, data_coding: u8, user_data: &[u8]) -> Value {
    json!({
        "kind": "deliver_sm",
        "source_addr": from,
        "destination_addr": "3030",
        "esm_class": 0,
        "data_coding": data_coding,
        "short_message_hex": hex::encode(user_data),
    })
}

/// One part with a UDH: IEI 0x00 (8-bit reference) or 0x08 (16-bit).
pub(crate) fn udh_part(
    from: &str,
    dc: u8,
    reference: u16,
    total: u8,
    seq: u8,
    data: &[u8],
) -> Value {
    let mut ud = if reference > 0xFF {
        let [hi, lo] = reference.to_be_bytes();
        vec![0x06, 0x08, 0x04, hi, lo, total, seq]
    } else {
        vec![0x05, 0x00, 0x03, reference as u8, total, seq]
    };
    ud.extend_from_slice(data);
    let mut pdu = deliver(from, dc, &ud);
    pdu["esm_class"] = json!(0x40);
    pdu
}

/// One part described by the SAR TLVs.
fn sar_part(from: &str, reference: u16, total: u8, seq: u8, text: &str) -> Value {
    let mut pdu = deliver(from, 0, &gsm7(text));
    pdu["tlvs"] = json!([
        {"tag": 0x020C, "value_hex": hex::encode(reference.to_be_bytes())},
        {"tag": 0x020E, "value_hex": hex::encode([total])},
        {"tag": 0x020F, "value_hex": hex::encode([seq])},
    ]);
    pdu
}

/// A subscriber number of its own per message (the events are told apart by `from`).
pub(crate) fn number() -> String {
    format!("9370{:07}", uuid::Uuid::new_v4().as_u128() % 10_000_000)
}

async fn inject(sim: &Sim, pdu: Value) {
    assert_eq!(sim.inject(pdu).await, 1, "sent to one connection");
}

pub(crate) async fn inject_to(sim: &Sim, conn: u64, mut pdu: Value) {
    pdu["conn"] = json!(conn);
    assert_eq!(sim.inject(pdu).await, 1, "sent to connection {conn}");
}

/// Wait until `n` deliver_sm_resp were recorded; their statuses.
async fn resp_statuses(sim: &Sim, n: usize) -> Vec<u64> {
    eventually(T, "deliver_sm_resp", || async {
        let resps = sim.received_now("deliver_sm_resp");
        (resps.len() >= n).then(|| {
            resps
                .iter()
                .map(|r| r["status"].as_u64().unwrap_or(u64::MAX))
                .collect()
        })
    })
    .await
}

/// Wait until bind 0 of `op` lists no open concatenated message in Redis.
async fn open_messages_drop_to_zero(op: &str) {
    use fred::prelude::*;
    let redis = crate::support::redis_client().await;
    let index = smpp_connector::inbound::reassembly::open_index_key(op, 0);
    eventually(T, "no open message", || {
        let (redis, index) = (redis.clone(), index.clone());
        async move {
            let open: u64 = redis.zcard(&index).await.ok()?;
            (open == 0).then_some(())
        }
    })
    .await;
}

fn metric_sum(text: &str, name: &str) -> f64 {
    metric(text, name).iter().sum()
}

/// Every MO event this test saw from `from`, each validated against the contract.
pub(crate) fn events_from<'a>(seen: &'a [Value], from: &str) -> Vec<&'a Value> {
    let events: Vec<&Value> = seen.iter().filter(|e| e["from"] == from).collect();
    for event in &events {
        schema::assert_valid("mo-inbound-event.v1.schema.json", event);
    }
    events
}

#[tokio::test]
async fn single_part_messages_are_decoded_by_data_coding() {
    let s = Stage::builder("mo_single").start().await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    let (gsm_from, ucs_from, bin_from) = (number(), number(), number());
    inject(&s.sim, deliver(&gsm_from, 0x00, &gsm7("Hi @£€ 1"))).await;
    inject(&s.sim, deliver(&ucs_from, 0x08, &ucs2("Salam 😀"))).await;
    inject(&s.sim, deliver(&bin_from, 0x04, &[0xDE, 0xAD, 0xBE, 0xEF])).await;

    let gsm = mo.wait_for(T, "GSM7 MO", |e| e["from"] == gsm_from).await;
    assert_eq!(gsm["text"], "Hi @£€ 1");
    assert_eq!(
        (gsm["parts"].clone(), gsm["incomplete"].clone()),
        (json!(1), json!(false))
    );
    assert_eq!(gsm["to"], "3030");
    let ucs = mo.wait_for(T, "UCS2 MO", |e| e["from"] == ucs_from).await;
    assert_eq!(ucs["text"], "Salam 😀");
    assert_eq!(ucs["dataCoding"], 8);
    let bin = mo.wait_for(T, "binary MO", |e| e["from"] == bin_from).await;
    assert_eq!(
        (bin["text"].clone(), bin["binary"].clone()),
        (json!("3q2+7w=="), json!(true))
    );
    for from in [&gsm_from, &ucs_from, &bin_from] {
        assert_eq!(events_from(&mo.seen, from).len(), 1);
    }
    assert_eq!(resp_statuses(&s.sim, 3).await, vec![0, 0, 0]);
    s.service
        .assert_no_secrets(&[&gsm_from, &ucs_from, "Salam"]);
}

#[tokio::test]
async fn concatenated_parts_in_any_order_make_one_event_each() {
    let s = Stage::builder("mo_concat").start().await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    let (udh8, udh16, sar) = (number(), number(), number());

    // 3 parts, 8-bit reference, out of order, part 1 twice before the message completes.
    inject(&s.sim, udh_part(&udh8, 0, 0x2A, 3, 3, &gsm7("jumps."))).await;
    inject(&s.sim, udh_part(&udh8, 0, 0x2A, 3, 1, &gsm7("The quick "))).await;
    inject(&s.sim, udh_part(&udh8, 0, 0x2A, 3, 1, &gsm7("The quick "))).await;
    inject(&s.sim, udh_part(&udh8, 0, 0x2A, 3, 2, &gsm7("brown fox "))).await;
    // 2 parts, 16-bit reference, UCS2 with an emoji's surrogate pair split between them.
    let all = ucs2("ab😀c");
    inject(&s.sim, udh_part(&udh16, 8, 0x1234, 2, 2, &all[6..])).await;
    inject(&s.sim, udh_part(&udh16, 8, 0x1234, 2, 1, &all[..6])).await;
    // 2 parts by SAR TLVs.
    inject(&s.sim, sar_part(&sar, 7, 2, 1, "Hello ")).await;
    inject(&s.sim, sar_part(&sar, 7, 2, 2, "world")).await;

    let first = mo
        .wait_for(T, "8-bit UDH message", |e| e["from"] == udh8)
        .await;
    assert_eq!(first["text"], "The quick brown fox jumps.");
    assert_eq!(
        (
            first["parts"].clone(),
            first["partsReceived"].clone(),
            first["incomplete"].clone()
        ),
        (json!(3), json!(3), json!(false))
    );
    let second = mo
        .wait_for(T, "16-bit UDH message", |e| e["from"] == udh16)
        .await;
    assert_eq!(second["text"], "ab😀c");
    assert_eq!(second["parts"], 2);
    let third = mo.wait_for(T, "SAR message", |e| e["from"] == sar).await;
    assert_eq!(third["text"], "Hello world");
    assert_eq!(third["operatorId"], s.op.as_str());

    // The SMSC delivers a part of a published message again (its resp was lost).
    inject(&s.sim, udh_part(&udh8, 0, 0x2A, 3, 3, &gsm7("jumps."))).await;
    let statuses = resp_statuses(&s.sim, 9).await;
    assert_eq!(statuses, vec![0; 9], "every part answered ESME_ROK");
    mo.drain(Duration::from_secs(1)).await;
    for from in [&udh8, &udh16, &sar] {
        assert_eq!(
            events_from(&mo.seen, from).len(),
            1,
            "one event per message"
        );
    }
    assert_eq!(
        s.nats
            .subject_messages("SMS_EVENTS", "sms.mo.inbound")
            .await,
        3
    );
    let metrics = s.service.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "smpp_concat_complete_total{mno=\""),
        3.0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            &format!(
                "smpp_concat_parts_total{{mno=\"{}\",result=\"repeat\"}}",
                s.op
            )
        ),
        2.0
    );
    eventually(T, "buffer empty", || async {
        let metrics = s.service.metrics().await;
        (metric_sum(&metrics, "smpp_concat_buffer_size{") == 0.0
            && metrics.contains("smpp_concat_buffer_size{"))
        .then_some(())
    })
    .await;
    s.service.assert_no_secrets(&[&udh8, "quick"]);
}

#[tokio::test]
async fn a_missing_part_gives_one_partial_event_after_the_window() {
    let s = Stage::builder("mo_partial")
        .env(&[("CONCAT_WINDOW_SECONDS", "1")])
        .start()
        .await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    let from = number();
    inject(&s.sim, udh_part(&from, 0, 0x51, 3, 3, &gsm7("end"))).await;
    inject(&s.sim, udh_part(&from, 0, 0x51, 3, 1, &gsm7("begin "))).await;
    let partial = mo
        .wait_for(T, "partial message", |e| e["from"] == from)
        .await;
    assert_eq!(partial["text"], "begin end");
    assert_eq!(
        (
            partial["parts"].clone(),
            partial["partsReceived"].clone(),
            partial["incomplete"].clone()
        ),
        (json!(3), json!(2), json!(true))
    );
    // Between the partial's publish and its tombstone, parts are refused for the SMSC to
    // retry (it is being published); wait for the tombstone (out of the open index).
    open_messages_drop_to_zero(&s.op).await;
    // A part repeated after the partial went out is recognised; the missing part arriving
    // late is not lost: it comes out on its own, partial, after its window.
    inject(&s.sim, udh_part(&from, 0, 0x51, 3, 1, &gsm7("begin "))).await;
    inject(&s.sim, udh_part(&from, 0, 0x51, 3, 2, &gsm7("middle "))).await;
    let late = mo
        .wait_for(T, "the late part", |e| {
            e["from"] == from && e["partsReceived"] == 1
        })
        .await;
    assert_eq!(late["text"], "middle ");
    mo.drain(Duration::from_secs(2)).await;
    assert_eq!(events_from(&mo.seen, &from).len(), 2);
    assert_eq!(resp_statuses(&s.sim, 4).await, vec![0; 4]);
    let metrics = s.service.metrics().await;
    assert_eq!(
        metric_sum(&metrics, "smpp_concat_partial_total{mno=\""),
        2.0
    );
    assert_eq!(metric_sum(&metrics, "smpp_concat_buffer_size{"), 0.0);
}

/// An admin restart of the bind while its expiry scan waits on a slow Redis (700 ms): the
/// restart cancels the scan with the actor's other futures, and the bind must go on
/// scanning. Before, its "scan under way" flag stayed set and no partial message of that
/// bind was ever published again.
#[tokio::test]
async fn the_expiry_scan_goes_on_after_a_restart_cancelled_it() {
    let test = "mo_scan_restart";
    let (proxy, redis_url) = redis_proxy().await;
    let s = Stage::builder(test)
        .env(&[("CONCAT_WINDOW_SECONDS", "1"), ("REDIS_URL", &redis_url)])
        .start()
        .await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    // Scans run every 250 ms and now take 700 ms: one is nearly always under way.
    proxy.delay_replies(Duration::from_millis(700));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = s
        .service
        .admin_post(
            &format!("/admin/binds/{}/trx/0/restart", s.op),
            Some(&s.service.token),
        )
        .await;
    assert_eq!(status, 202);
    eventually(T, "bound again", || async {
        let conns = s.sim.connections().await;
        (conns.iter().filter(|c| !c["mode"].is_null()).count() == 1
            && s.service.bind_states().await == vec![(0, "BOUND".to_owned())])
        .then_some(())
    })
    .await;
    let from = number();
    inject(
        &s.sim,
        udh_part(&from, 0, 0x31, 2, 1, &gsm7("after the restart ")),
    )
    .await;
    let partial = mo
        .wait_for(T, "the partial message", |e| e["from"] == from)
        .await;
    assert_eq!(partial["incomplete"], true);
    proxy.delay_replies(Duration::ZERO);
}

#[tokio::test]
async fn parts_survive_a_restart_of_the_service() {
    let test = "mo_restart";
    let nats = Nats::start(test).await;
    let mut mo = nats.subscribe("sms.mo.inbound").await;
    let mut s = Stage::builder(test).nats(nats).start().await;
    let from = number();
    inject(
        &s.sim,
        udh_part(&from, 0, 0x99, 2, 1, &gsm7("before the restart ")),
    )
    .await;
    assert_eq!(resp_statuses(&s.sim, 1).await, vec![0]);
    assert!(
        s.service.stop().is_some_and(|s| s.success()),
        "clean shutdown"
    );

    let second = s.pod(test, &[]).await;
    second.wait_bound(1).await;
    inject(&s.sim, udh_part(&from, 0, 0x99, 2, 2, &gsm7("and after"))).await;
    let event = mo.wait_for(T, "the message", |e| e["from"] == from).await;
    assert_eq!(event["text"], "before the restart and after");
    assert_eq!(event["incomplete"], false);
    mo.drain(Duration::from_millis(500)).await;
    assert_eq!(events_from(&mo.seen, &from).len(), 1);
}

/// An operator with `bindCount` 2 at a simulator, NATS with a subscription to MO events.
async fn two_bind_operator(test: &str) -> (String, Nats, crate::support::nats::Events, Sim, Oms) {
    let op = format!("op{}", unique());
    let nats = Nats::start(test).await;
    let mo = nats.subscribe("sms.mo.inbound").await;
    let sim = Sim::start(test, json!({}));
    let oms = Oms::start(
        test,
        credentials(&op, sim.smpp_port, json!({"bindCount": 2})),
    );
    (op, nats, mo, sim, oms)
}

/// The ids of the simulator's `n` bound sessions, once there are `n`.
pub(crate) async fn bound_sessions(sim: &Sim, n: usize) -> Vec<u64> {
    eventually(T, "bound sessions", || async {
        let ids: Vec<u64> = sim
            .connections()
            .await
            .iter()
            .filter(|c| !c["mode"].is_null())
            .filter_map(|c| c["id"].as_u64())
            .collect();
        (ids.len() == n).then_some(ids)
    })
    .await
}

/// `bindCount` lowered from 2 to 1 while each bind holds part 1 of a two-part message: the
/// message of the removed bind 1 still comes out, partial, after its window (bind 0 scans
/// the indexes nobody owns). Before, it expired in Redis unpublished an hour later.
#[tokio::test]
async fn parts_of_a_bind_removed_by_lowering_bind_count_are_published() {
    let test = "mo_bind_removed";
    let nats = Nats::start(test).await;
    let mut mo = nats.subscribe("sms.mo.inbound").await;
    let window = [("CONCAT_WINDOW_SECONDS", "1")];
    let mut s = Stage::builder(test)
        .nats(nats)
        .credentials(json!({"bindCount": 2}))
        .env(&window)
        .bound(2)
        .start()
        .await;
    let conns = bound_sessions(&s.sim, 2).await;
    let senders = [number(), number()];
    for (conn, from) in conns.iter().zip(&senders) {
        inject_to(
            &s.sim,
            *conn,
            udh_part(from, 0, 0x21, 2, 1, &gsm7("first half ")),
        )
        .await;
    }
    assert_eq!(resp_statuses(&s.sim, 2).await, vec![0, 0]);
    // Both parts are stored, each in its bind's index; the service goes before the window
    // ends, and comes back with one bind.
    assert!(s.service.terminate().await.is_some_and(|s| s.success()));
    s.oms
        .set(credentials(&s.op, s.sim.smpp_port, json!({"bindCount": 1})));
    let after = s.pod(test, &window).await;
    after.wait_bound(1).await;
    for from in &senders {
        let event = mo
            .wait_for(T, "the partial message", |e| e["from"] == *from)
            .await;
        assert_eq!(event["text"], "first half ");
        assert_eq!(event["incomplete"], true);
        assert_eq!(event["partsReceived"], 1);
    }
    let bind_ids: std::collections::BTreeSet<u64> = senders
        .iter()
        .flat_map(|from| events_from(&mo.seen, from))
        .filter_map(|e| e["bindId"].as_u64())
        .collect();
    assert_eq!(
        bind_ids,
        [0, 1].into(),
        "each names the bind its part came in on"
    );
}

#[tokio::test]
async fn two_pods_receiving_parts_of_one_message_publish_one_event() {
    let test = "mo_two_pods";
    let (op, nats, mut mo, sim, oms) = two_bind_operator(test).await;
    let window = [("CONCAT_WINDOW_SECONDS", "3")];
    let a = Service::start("mo_two_pods_a", &nats, &oms, &op, &window).await;
    let b = Service::start("mo_two_pods_b", &nats, &oms, &op, &window).await;
    // Bind ownership gives each pod one of the two bind ids: two sessions, on two pods
    // and two binds.
    let conns = bound_sessions(&sim, 2).await;

    // One part on each session (so on both pods and both binds), last part first: one
    // event.
    let from = number();
    let texts = ["one part per ", "session"];
    for (i, conn) in conns.iter().enumerate().rev() {
        let seq = i as u8 + 1;
        inject_to(
            &sim,
            *conn,
            udh_part(&from, 0, 0x10, 2, seq, &gsm7(texts[i])),
        )
        .await;
    }
    let event = mo.wait_for(T, "the message", |e| e["from"] == from).await;
    assert_eq!(event["text"], "one part per session");
    assert_eq!(event["partsReceived"], 2);

    // A message missing a part: both pods scan each bind's index; one partial event.
    let lonely = number();
    inject_to(
        &sim,
        conns[1],
        udh_part(&lonely, 0, 0x11, 2, 1, &gsm7("alone")),
    )
    .await;
    let partial = mo.wait_for(T, "partial", |e| e["from"] == lonely).await;
    assert_eq!(partial["incomplete"], true);
    mo.drain(Duration::from_secs(3)).await;
    assert_eq!(events_from(&mo.seen, &from).len(), 1);
    assert_eq!(events_from(&mo.seen, &lonely).len(), 1);
    assert_eq!(
        nats.subject_messages("SMS_EVENTS", "sms.mo.inbound").await,
        2
    );
    assert_eq!(resp_statuses(&sim, 3).await, vec![0; 3]);
    drop((a, b));
}

#[tokio::test]
async fn redis_down_still_publishes_single_parts_and_defers_concatenated_ones() {
    let test = "mo_redis_down";
    let (proxy, proxied) = redis_proxy().await;
    let s = Stage::builder(test)
        .env(&[("REDIS_URL", &proxied)])
        .start()
        .await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    proxy.cut();

    let single = number();
    inject(&s.sim, deliver(&single, 0, &gsm7("short"))).await;
    let event = mo.wait_for(T, "single part", |e| e["from"] == single).await;
    assert_eq!(event["text"], "short");
    let long = number();
    inject(&s.sim, udh_part(&long, 0, 0x20, 2, 1, &gsm7("first "))).await;
    // ESME_RX_T_APPN (0x64): not stored, the SMSC delivers it again.
    assert_eq!(resp_statuses(&s.sim, 2).await, vec![0, 0x64]);

    proxy.restore();
    eventually(T, "redis back", || async {
        inject(&s.sim, udh_part(&long, 0, 0x20, 2, 1, &gsm7("first "))).await;
        let statuses = s.sim.received("deliver_sm_resp").await;
        (statuses.last().and_then(|r| r["status"].as_u64()) == Some(0)).then_some(())
    })
    .await;
    inject(&s.sim, udh_part(&long, 0, 0x20, 2, 2, &gsm7("second"))).await;
    let event = mo
        .wait_for(T, "the long message", |e| e["from"] == long)
        .await;
    assert_eq!(event["text"], "first second");
    let metrics = s.service.metrics().await;
    assert!(metric_sum(&metrics, "smpp_concat_parts_total{mno=\"") >= 3.0);
    assert!(metrics.contains("result=\"not_stored\""));
}

#[tokio::test]
async fn a_reused_reference_publishes_the_open_message_first() {
    let s = Stage::builder("mo_reused_ref").start().await;
    let mut mo = s.nats.subscribe("sms.mo.inbound").await;
    let from = number();
    // Part 1 of a message whose part 2 never comes, then a new message under the same
    // reference: the first comes out partial at once, the second complete.
    // (One at a time: parts handled concurrently under a reused reference are ambiguous.)
    inject(&s.sim, udh_part(&from, 0, 0x33, 2, 1, &gsm7("lost half "))).await;
    resp_statuses(&s.sim, 1).await;
    inject(&s.sim, udh_part(&from, 0, 0x33, 2, 1, &gsm7("new "))).await;
    resp_statuses(&s.sim, 2).await;
    inject(&s.sim, udh_part(&from, 0, 0x33, 2, 2, &gsm7("message"))).await;
    let old = mo
        .wait_for(T, "the open message", |e| {
            e["from"] == from && e["incomplete"] == true
        })
        .await;
    assert_eq!(
        (old["text"].clone(), old["partsReceived"].clone()),
        (json!("lost half "), json!(1))
    );
    let new = mo
        .wait_for(T, "the new message", |e| {
            e["from"] == from && e["incomplete"] == false
        })
        .await;
    assert_eq!(new["text"], "new message");
    assert_eq!(resp_statuses(&s.sim, 3).await, vec![0; 3]);
    mo.drain(Duration::from_millis(500)).await;
    assert_eq!(events_from(&mo.seen, &from).len(), 2);
}
