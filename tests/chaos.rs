//! Chaos (issue 11): the service killed (kill -9) or stopped (SIGTERM) at random moments
//! under a mixed load of short and three-part messages, again and again. Afterwards every
//! command is ACKed with every segment correlated (nothing dead-lettered), every receipt
//! the SMSC produced is published (the simulator stores and forwards receipts a dead
//! session left unacknowledged, as a real SMSC does), the duplicates at the SMSC are
//! bounded by the window per crash (0 for SIGTERM), and no long message reaches the SMSC
//! with its parts under two concatenation references.
//!
//! `CHAOS_CYCLES` sets the number of cycles (3 here, in CI; `scripts/chaos crash` runs 20)
//! and `CHAOS_RATE` the commands per second (150).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::load::{Load, ids_and_segments};
use crate::support::{Service, Stage, correlation_rows, eventually};

const WINDOW: usize = 30;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A pseudo-random number in 0..n from a counter (no dependency on a random crate).
fn pick(seed: &mut u64, n: u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed % n
}

/// (concatenation reference, part number) from a submit_sm's UDH, if it has one: 8-bit
/// (`05 00 03 RR TT SS`) or 16-bit (`06 08 04 RR RR TT SS`, once a bind's 8-bit space would
/// wrap within the minute).
fn udh(submit: &Value) -> Option<(u16, u8)> {
    let bytes = hex::decode(submit["short_message_hex"].as_str()?).ok()?;
    if submit["esm_class"].as_u64()? & 0x40 == 0 || bytes.len() < 6 {
        return None;
    }
    match bytes[1] {
        0x08 if bytes.len() > 6 => Some((u16::from_be_bytes([bytes[3], bytes[4]]), bytes[6])),
        _ => Some((u16::from(bytes[3]), bytes[5])),
    }
}

struct Outcome {
    commands: usize,
    segments: usize,
    submits: usize,
    duplicates: usize,
    receipts: u64,
    events: u64,
}

/// Run the load with `cycles` stops of the service, `kill` (SIGKILL) or SIGTERM.
async fn run(test: &str, cycles: u64, kill: bool) -> Outcome {
    let rate = env_number("CHAOS_RATE", 150);
    let pod = format!("{test}-pod");
    let env = [("POD_NAME", pod.as_str())];
    let mut s = Stage::builder(test)
        .sim(
            json!({"receipts": true, "receipt_delay_ms": 50, "resp_delay_ms": 5,
               "store_and_forward": true}),
        )
        .credentials(json!({"window": WINDOW}))
        .env(&env)
        .start()
        .await;

    // The load: every fifth command a three-part message, each to a number of its own.
    let load = Load::start(&s.nats, &s.op, rate);

    let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(kill);
    for _ in 0..cycles {
        tokio::time::sleep(Duration::from_millis(300 + pick(&mut seed, 1200))).await;
        if kill {
            drop(s.service); // SIGKILL
        } else {
            let status = s.service.terminate().await;
            assert!(
                status.is_some_and(|s| s.success()),
                "SIGTERM exit {status:?}"
            );
            drop(s.service);
        }
        s.service = Service::start(test, &s.nats, &s.oms, &s.op, &env).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = load.stop().await;
    let (ids, segments) = ids_and_segments(&sent);

    // Everything ends ACKed with every segment correlated.
    let deadline = Duration::from_secs(120);
    eventually(deadline, "every segment correlated", || {
        let ids = ids.clone();
        async move { (correlation_rows(&ids).await.len() == segments).then_some(()) }
    })
    .await;
    s.nats.wait_drained(&s.op, deadline).await;
    assert_eq!(
        s.nats
            .subject_messages("SMS_EVENTS", "sms.dispatch.dlq")
            .await,
        0,
        "nothing dead-lettered"
    );

    // Every receipt the SMSC produced (one per accepted submit) is published once.
    let receipts = s.sim.stats().await["submit_ok"].as_u64().unwrap_or(0);
    let events = eventually(deadline, "every receipt published", || async {
        let events = s
            .nats
            .subject_messages("SMS_EVENTS", "sms.dlr.inbound")
            .await;
        (events >= receipts).then_some(events)
    })
    .await;

    // Duplicates at the SMSC, and one reference per long message.
    let submits = s.sim.received("submit_sm").await;
    let mut per_part: BTreeMap<(String, u8), usize> = BTreeMap::new();
    let mut references: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for submit in &submits {
        let to = submit["destination_addr"].as_str().unwrap_or("").to_owned();
        let part = udh(submit);
        let seq = part.map_or(1, |(_, seq)| seq);
        *per_part.entry((to.clone(), seq)).or_default() += 1;
        if let Some((reference, _)) = part {
            references.entry(to).or_default().insert(reference);
        }
    }
    let split: Vec<_> = references.iter().filter(|(_, r)| r.len() > 1).collect();
    assert!(
        split.is_empty(),
        "parts of one message under two references: {split:?}"
    );
    let duplicates = submits.len() - per_part.len();
    s.sim.assert_golden_clean().await;
    Outcome {
        commands: sent.len(),
        segments,
        submits: submits.len(),
        duplicates,
        receipts,
        events,
    }
}

#[tokio::test]
async fn kill_9_cycles_lose_nothing_and_bound_the_duplicates() {
    let cycles = env_number("CHAOS_CYCLES", 3);
    let outcome = run("chaos_crash", cycles, true).await;
    println!(
        "chaos crash: {cycles} kill -9 cycles, {} commands, {} segments, {} submit_sm, \
         {} duplicates (bound {}), {} receipts, {} DLR events, 0 lost",
        outcome.commands,
        outcome.segments,
        outcome.submits,
        outcome.duplicates,
        WINDOW as u64 * cycles,
        outcome.receipts,
        outcome.events
    );
    assert!(
        outcome.duplicates as u64 <= WINDOW as u64 * cycles,
        "duplicates {} above the window per crash",
        outcome.duplicates
    );
}

#[tokio::test]
async fn sigterm_cycles_lose_nothing_and_send_nothing_twice() {
    let cycles = env_number("CHAOS_CYCLES", 3);
    let outcome = run("chaos_sigterm", cycles, false).await;
    println!(
        "chaos sigterm: {cycles} SIGTERM cycles, {} commands, {} segments, {} submit_sm, \
         {} duplicates, {} receipts, {} DLR events, 0 lost",
        outcome.commands,
        outcome.segments,
        outcome.submits,
        outcome.duplicates,
        outcome.receipts,
        outcome.events
    );
    assert_eq!(outcome.duplicates, 0, "a graceful stop sends nothing twice");
}
