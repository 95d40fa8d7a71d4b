//! `smpp-bench`: the load side of the end-to-end benchmark (`scripts/bench` starts the
//! stack, the simulator, the OMS stub and the service, then runs this).
//!
//! Publishes N SmsDispatchCommands to `smpp.operator.{operator}` with pipelined JetStream
//! acknowledgements, waits until the service's consumer has nothing pending or
//! unacknowledged, and prints: messages/s, p50/p99 dispatch → ACK (from the service's
//! `smpp_connector_dispatch_latency_seconds` histogram, the part of the run only), CPU
//! seconds and peak RSS of the service process (from /proc). Loopback only; bounded in
//! count (≤ 1,000,000) and time (`--timeout-secs`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "smpp-bench")]
struct Args {
    #[arg(long, default_value = "nats://127.0.0.1:14222")]
    nats_url: String,
    #[arg(long, default_value = "bench")]
    operator: String,
    /// Consumer direction (for the consumer name).
    #[arg(long, default_value = "trx")]
    direction: String,
    /// Messages to send.
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Text of every message (GSM7, one segment by default).
    #[arg(
        long,
        default_value = "Benchmark message from smpp-connector, single segment GSM7."
    )]
    text: String,
    /// Service process id (CPU and RSS are read from /proc).
    #[arg(long)]
    service_pid: u32,
    /// Service metrics URL.
    #[arg(long, default_value = "http://127.0.0.1:18080/metrics")]
    metrics_url: String,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Write the result as JSON here too.
    #[arg(long)]
    json_out: Option<String>,
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("service process {pid} not found"))?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    Ok(ticks / 100.0)
}

/// Peak resident set (VmHWM), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Cumulative buckets (le → count) of the dispatch latency histogram.
async fn latency_buckets(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let text = http.get(url).send().await?.text().await?;
    let mut buckets = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("smpp_connector_dispatch_latency_seconds_bucket{")
        else {
            continue;
        };
        let Some(le) = rest.split("le=\"").nth(1).and_then(|s| s.split('"').next()) else {
            continue;
        };
        let count: f64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *buckets.entry(le.to_owned()).or_insert(0.0) += count;
    }
    Ok(buckets)
}

/// Quantile from cumulative bucket counts (linear within the bucket, like Prometheus).
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(previous.0);
            }
            let width = le - previous.0;
            let in_bucket = count - previous.1;
            let fraction = if in_bucket > 0.0 {
                (rank - previous.1) / in_bucket
            } else {
                1.0
            };
            return Some(previous.0 + width * fraction);
        }
        previous = (le, count);
    }
    None
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 || args.count > 1_000_000 {
        bail!("--count must be 1..=1000000");
    }
    if !args.nats_url.contains("127.0.0.1") && !args.nats_url.contains("localhost") {
        bail!("the benchmark runs against loopback only");
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let client = async_nats::connect(args.nats_url.as_str()).await?;
    let js = async_nats::jetstream::new(client.clone());
    let http = reqwest::Client::new();
    let consumer_name = format!("smpp-connector-{}-{}-p2", args.operator, args.direction);
    let stream = js
        .get_stream("SMS_DISPATCH")
        .await
        .context("SMS_DISPATCH stream")?;

    let before = latency_buckets(&http, &args.metrics_url).await?;
    let cpu_before = cpu_seconds(args.service_pid)?;
    let started = Instant::now();

    // Publish with up to 2,000 acknowledgements outstanding.
    let subject = format!("smpp.operator.{}", args.operator);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut pending = std::collections::VecDeque::new();
    for n in 0..args.count {
        let payload = json!({
            "version": "1.0",
            "messageId": format!("bench-{run}-{n}"),
            "operatorId": args.operator,
            "to": format!("+9370{:07}", n % 10_000_000),
            "text": args.text,
        });
        let ack = js
            .publish(subject.clone(), serde_json::to_vec(&payload)?.into())
            .await?;
        pending.push_back(ack);
        if pending.len() >= 2_000 {
            pending.pop_front().expect("non-empty").await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    let published = started.elapsed();

    // Done when the consumer has delivered and had acknowledged everything.
    loop {
        if Instant::now() > deadline {
            bail!("timed out waiting for the service to acknowledge every message");
        }
        let info = stream.consumer_info(&consumer_name).await?;
        if info.num_pending == 0 && info.num_ack_pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let cpu = cpu_seconds(args.service_pid)? - cpu_before;
    let rss = peak_rss_mib(args.service_pid);
    let after = latency_buckets(&http, &args.metrics_url).await?;
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .map(|(le, count)| {
            let le_value = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            (le_value, count - before.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let p50 = quantile(&buckets, 0.50);
    let p99 = quantile(&buckets, 0.99);
    let rate = args.count as f64 / elapsed.as_secs_f64();

    let result = json!({
        "messages": args.count,
        "seconds": elapsed.as_secs_f64(),
        "publish_seconds": published.as_secs_f64(),
        "messages_per_second": rate,
        "dispatch_to_ack_p50_ms": p50.map(|s| s * 1000.0),
        "dispatch_to_ack_p99_ms": p99.map(|s| s * 1000.0),
        "service_cpu_seconds": cpu,
        "service_cpu_seconds_per_100k": cpu * 100_000.0 / args.count as f64,
        "service_peak_rss_mib": rss,
    });
    println!("messages            {}", args.count);
    println!(
        "elapsed             {:.2} s (publishing took {:.2} s)",
        elapsed.as_secs_f64(),
        published.as_secs_f64()
    );
    println!("throughput          {rate:.0} msg/s");
    println!(
        "dispatch -> ACK     p50 {} ms, p99 {} ms (service histogram)",
        p50.map_or("n/a".into(), |s| format!("{:.1}", s * 1000.0)),
        p99.map_or("n/a".into(), |s| format!("{:.1}", s * 1000.0))
    );
    println!(
        "service CPU         {cpu:.2} s ({:.2} s per 100k messages)",
        cpu * 100_000.0 / args.count as f64
    );
    println!("service peak RSS    {rss:.1} MiB");
    if let Some(path) = args.json_out {
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}
