//! Segmentation throughput of `smpp_connector::encoding`, one core: encode + segment,
//! encode + CSMS parts, and the fingerprint (SHA-256, measured apart because it dominates)
//! for a 160-character GSM7 text, a 459-character GSM7 text and a 200-character Arabic
//! UCS2 text. Target: at least 1,000,000 messages/s for encode + segment.
//!
//! A plain `harness = false` binary timed with `std::time::Instant`, so CI compiles no
//! criterion. Run with `cargo bench --bench segmentation`; an argument filters cases by
//! name. Must not be part of the tests and must not assert on timings (machines differ):
//! it prints ns/message and messages/s per case and leaves judging to the reader.
//!
//! Columns: wall-clock ns/message (best and median of the batches) and, on Linux, the
//! median on-CPU ns/message of this thread (`/proc/thread-self/schedstat`), which leaves
//! out the time the thread waited for a CPU on a busy machine; messages/s is computed
//! from the on-CPU figure when there is one, else from the best wall-clock one.

// Benchmarks measure time: the clock ban of the pure crate is for `src/`, not for this.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use smpp_connector::encoding::{
    EncodingRequest, RefBits, Strategy, encode, fingerprint, parts, segment,
};

/// Batches per measurement; the median batch is reported.
const BATCHES: usize = 15;
/// Rough wall time of one batch.
const BATCH_TIME: Duration = Duration::from_millis(60);

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();

    let gsm_sentence = "Dear customer, your payment of 1,250.00 AFN was received on 12/03. \
                        Your new balance is 4,730.50 AFN. Thank you for using our service! ";
    let arabic_sentence = "\u{0639}\u{0632}\u{06CC}\u{0632} \u{0645}\u{0634}\u{062A}\u{0631}\u{06CC}\u{060C} \
                           \u{067E}\u{0631}\u{062F}\u{0627}\u{062E}\u{062A} \u{0634}\u{0645}\u{0627} \
                           \u{0628}\u{0647} \u{0645}\u{0628}\u{0644}\u{063A} \u{06F1}\u{06F2}\u{06F5}\u{06F0} \
                           \u{0627}\u{0641}\u{063A}\u{0627}\u{0646}\u{06CC} \u{062F}\u{0631}\u{06CC}\u{0627}\u{0641}\u{062A} \
                           \u{0634}\u{062F}. ";
    let cases = [
        ("gsm7-160", take_chars(gsm_sentence, 160)),
        ("gsm7-459", take_chars(gsm_sentence, 459)),
        ("ucs2-arabic-200", take_chars(arabic_sentence, 200)),
    ];

    println!(
        "{:<16} {:<20} {:>4} {:>9} {:>9} {:>9} {:>12}",
        "case", "operation", "segs", "wall best", "wall med", "cpu ns", "msgs/s/core"
    );
    for (name, text) in &cases {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let encoded = encode(text, EncodingRequest::Auto).expect("auto never fails");
        let segments = segment(&encoded, RefBits::Eight)
            .expect("few segments")
            .len();

        let report = |operation: &str, timing: Timing| {
            let cpu = timing
                .cpu_median
                .map_or_else(|| "-".to_owned(), |ns| format!("{ns:.1}"));
            let per_second = 1e9 / timing.cpu_median.unwrap_or(timing.wall_best);
            println!(
                "{name:<16} {operation:<20} {segments:>4} {:>9.1} {:>9.1} {cpu:>9} {per_second:>12.0}",
                timing.wall_best, timing.wall_median,
            );
        };
        report(
            "encode+segment",
            measure(|| {
                let encoded = encode(black_box(text), EncodingRequest::Auto).expect("auto");
                let ranges = segment(&encoded, RefBits::Eight).expect("few segments");
                black_box((encoded, ranges));
            }),
        );
        report(
            "encode+parts(CSMS)",
            measure(|| {
                let encoded = encode(black_box(text), EncodingRequest::Auto).expect("auto");
                let parts =
                    parts(&encoded, Strategy::Csms, RefBits::Eight, 42).expect("few segments");
                black_box(parts);
            }),
        );
        report(
            "fingerprint",
            measure(|| {
                black_box(fingerprint(black_box(&encoded)));
            }),
        );
        report(
            "encode+segment+fp",
            measure(|| {
                let encoded = encode(black_box(text), EncodingRequest::Auto).expect("auto");
                let ranges = segment(&encoded, RefBits::Eight).expect("few segments");
                let fp = fingerprint(&encoded);
                black_box((ranges, fp));
            }),
        );
    }
}

/// The first `n` characters of `sentence` repeated.
fn take_chars(sentence: &str, n: usize) -> String {
    sentence.chars().cycle().take(n).collect()
}

/// Nanoseconds per call of one operation.
struct Timing {
    wall_best: f64,
    wall_median: f64,
    /// Median on-CPU time, where the platform reports it.
    cpu_median: Option<f64>,
}

/// Times `f` over [`BATCHES`] batches after a warm-up that sizes the batches.
fn measure(mut f: impl FnMut()) -> Timing {
    let mut iterations = 1_000u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        let elapsed = start.elapsed();
        if elapsed >= BATCH_TIME / 4 {
            let scale = BATCH_TIME.as_secs_f64() / elapsed.as_secs_f64();
            iterations = ((iterations as f64) * scale).max(1.0) as u64;
            break;
        }
        iterations *= 4;
    }
    let mut wall = Vec::with_capacity(BATCHES);
    let mut cpu = Vec::with_capacity(BATCHES);
    for _ in 0..BATCHES {
        let cpu_start = thread_cpu_ns();
        let start = Instant::now();
        for _ in 0..iterations {
            f();
        }
        wall.push(start.elapsed().as_nanos() as f64 / iterations as f64);
        if let (Some(before), Some(after)) = (cpu_start, thread_cpu_ns()) {
            cpu.push(after.saturating_sub(before) as f64 / iterations as f64);
        }
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    Timing {
        wall_best: wall[0],
        wall_median: wall[BATCHES / 2],
        cpu_median: (cpu.len() == BATCHES).then(|| cpu[BATCHES / 2]),
    }
}

/// Nanoseconds this thread has spent on a CPU (Linux only; `None` elsewhere).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
