//! `smpp-bench`: the load side of the end-to-end benchmark (`scripts/bench` starts the
//! stack, the simulator, the OMS stub and the service, then runs this).
//!
//! Publishes N SmsDispatchCommands to `smpp.operator.{operator}` with pipelined JetStream
//! acknowledgements — as fast as it can, or at a steady `--rate` — waits until the
//! service's consumer has nothing pending or unacknowledged, and prints: messages and
//! `submit_sm` per second, p50/p99 dispatch → ACK from the service's histograms (pulled →
//! ACK, and stored in the stream → ACK; the part of the run only), CPU seconds of every
//! `--process` (the process and its descendants, from /proc) in total and per 1,000
//! `submit_sm`, and peak RSS of the service. Loopback only; bounded in count
//! (≤ 1,000,000) and time (`--timeout-secs`).
//!
//! `--mix standard` is the message set peer gateways are measured with: of every five
//! messages four are GSM7 of 160 characters (one `submit_sm`) and one is Arabic of 200
//! characters (three UCS2 parts), so 25,000 messages are 35,000 `submit_sm`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "smpp-bench")]
struct Args {
    /// NATS server, or a cluster's servers comma-separated.
    #[arg(long, default_value = "nats://127.0.0.1:14222")]
    nats_url: String,
    /// TLS to NATS (a `tls://` URL or these): the CA that verifies the servers and a client
    /// certificate + key, as the service reads them.
    #[arg(long, env = "NATS_TLS_CA_FILE")]
    nats_tls_ca_file: Option<String>,
    #[arg(long, env = "NATS_TLS_CERT_FILE")]
    nats_tls_cert_file: Option<String>,
    #[arg(long, env = "NATS_TLS_KEY_FILE")]
    nats_tls_key_file: Option<String>,
    #[arg(long, default_value = "bench")]
    operator: String,
    /// Consumer direction (for the consumer name).
    #[arg(long, default_value = "trx")]
    direction: String,
    /// Messages to send.
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Text of every message with `--mix single` (GSM7, one segment by default).
    #[arg(
        long,
        default_value = "Benchmark message from smpp-connector, single segment GSM7."
    )]
    text: String,
    /// `single`: every message is `--text`; `standard`: 4 in 5 GSM7 × 160 characters,
    /// 1 in 5 Arabic × 200 characters (3 UCS2 parts).
    #[arg(long, value_enum, default_value_t = Mix::Single)]
    mix: Mix,
    /// Publish at this many messages per second (0: as fast as JetStream takes them).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Service process id (CPU and RSS are read from /proc).
    #[arg(long)]
    service_pid: u32,
    /// Another process whose CPU (with its descendants) is reported: `name=pid`
    /// (`name=self` for this load tool).
    #[arg(long = "process", value_parser = parse_process)]
    processes: Vec<(String, u32)>,
    /// Service metrics URL.
    #[arg(long, default_value = "http://127.0.0.1:18080/metrics")]
    metrics_url: String,
    /// NATS monitoring URL (`/varz` message counts are reported per `submit_sm`).
    #[arg(long)]
    nats_monitor_url: Option<String>,
    /// Give up after this long.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Write the result as JSON here too.
    #[arg(long)]
    json_out: Option<String>,
    /// After every dispatch is ACKed, wait for one published receipt per submit_sm and
    /// report receipts per second end to end (submit to DLR event published).
    #[arg(long)]
    expect_receipts: bool,
    /// MO instead of dispatch: have the simulator send this many concatenated MO
    /// messages and wait for their events on `sms.mo.inbound`.
    #[arg(long, default_value_t = 0)]
    mo_messages: u32,
    /// Parts per MO message (`--mo-messages`).
    #[arg(long, default_value_t = 3)]
    mo_parts: u8,
    /// The simulator's control URL (`--mo-messages`).
    #[arg(long)]
    sim_control: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mix {
    Single,
    Standard,
}

/// What the GSM7 message of the standard mix is cut from (no extension characters).
const GSM7_WORDS: &str = "Your parcel 4471-XK is out for delivery today between 10:00 and 14:00. Track it or change the slot in the app. ";
/// What the Arabic message of the standard mix is cut from.
const ARABIC_WORDS: &str =
    "مرحبا بكم في خدمة الرسائل القصيرة، طلبكم رقم ٤٤٧١ في الطريق إليكم اليوم. ";

/// `chars` characters of `words` repeated.
fn cut(words: &str, chars: usize) -> String {
    words.chars().cycle().take(chars).collect()
}

/// The texts of a run: (text of message n, `submit_sm` it costs) for every n.
struct Texts {
    mix: Mix,
    single: String,
    gsm7: String,
    arabic: String,
}

impl Texts {
    fn new(mix: Mix, single: &str) -> Self {
        Texts {
            mix,
            single: single.to_owned(),
            // 160 GSM7 septets: one submit_sm; 200 UCS2 characters: three parts of ≤ 67.
            gsm7: cut(GSM7_WORDS, 160),
            arabic: cut(ARABIC_WORDS, 200),
        }
    }

    fn text(&self, n: usize) -> &str {
        match self.mix {
            Mix::Single => &self.single,
            Mix::Standard if n % 5 == 4 => &self.arabic,
            Mix::Standard => &self.gsm7,
        }
    }
}

fn parse_process(raw: &str) -> Result<(String, u32), String> {
    let (name, pid) = raw
        .split_once('=')
        .ok_or_else(|| format!("expected name=pid, got {raw:?}"))?;
    // `self`: this load tool.
    let pid = if pid == "self" {
        std::process::id()
    } else {
        pid.parse()
            .map_err(|_| format!("pid of {name} is not a number or self: {pid:?}"))?
    };
    Ok((name.to_owned(), pid))
}

/// (parent pid, utime + stime + cutime + cstime in ticks) of one process.
fn stat_of(pid: u32) -> Option<(u32, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let parent = fields.get(1)?.parse().ok()?;
    // utime, stime, cutime, cstime: a reaped child's time is in its reaper's c*time.
    Some((parent, field(11) + field(12) + field(13) + field(14)))
}

/// CPU seconds of a process and every live descendant (PostgreSQL's backends).
fn tree_cpu_seconds(root: u32) -> anyhow::Result<f64> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((parent, ticks)) = stat_of(pid) {
            all.push((pid, parent, ticks));
        }
    }
    if !all.iter().any(|&(pid, ..)| pid == root) {
        bail!("process {root} not found");
    }
    let mut tree = vec![root];
    let mut ticks = 0.0;
    while let Some(pid) = tree.pop() {
        for &(child, parent, t) in &all {
            if child == pid {
                ticks += t;
            }
            if parent == pid {
                tree.push(child);
            }
        }
    }
    Ok(ticks / 100.0)
}

/// utime + stime of the service alone, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let (_, ticks) = stat_of(pid).with_context(|| format!("service process {pid} not found"))?;
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

/// One scrape of the service's `/metrics`.
struct Scrape(String);

async fn scrape(http: &reqwest::Client, url: &str) -> anyhow::Result<Scrape> {
    Ok(Scrape(http.get(url).send().await?.text().await?))
}

impl Scrape {
    /// Sum of a counter over all its label sets.
    fn counter(&self, name: &str) -> f64 {
        self.0
            .lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Cumulative buckets (le → count) of a histogram, summed over label sets.
    fn buckets(&self, histogram: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{histogram}_bucket{{");
        let mut buckets = BTreeMap::new();
        for line in self.0.lines() {
            let Some(rest) = line.strip_prefix(prefix.as_str()) else {
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
        buckets
    }
}

/// p50 and p99 of a histogram over the part of the run between two scrapes.
fn quantiles(before: &Scrape, after: &Scrape, histogram: &str) -> (Option<f64>, Option<f64>) {
    let earlier = before.buckets(histogram);
    let mut buckets: Vec<(f64, f64)> = after
        .buckets(histogram)
        .iter()
        .map(|(le, count)| {
            let le_value = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            (le_value, count - earlier.get(le).copied().unwrap_or(0.0))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    (quantile(&buckets, 0.50), quantile(&buckets, 0.99))
}

fn ms(value: Option<f64>) -> String {
    value.map_or("n/a".into(), |s| format!("{:.1}", s * 1000.0))
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

/// NATS server message counts (in, out) from `/varz`.
async fn nats_counts(http: &reqwest::Client, url: Option<&str>) -> Option<(f64, f64)> {
    let varz: serde_json::Value = http
        .get(format!("{}/varz", url?))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((varz["in_msgs"].as_f64()?, varz["out_msgs"].as_f64()?))
}

/// CPU seconds of every measured process, by name.
fn cpu_snapshot(args: &Args) -> anyhow::Result<Vec<(String, f64)>> {
    let mut all = vec![("service".to_owned(), cpu_seconds(args.service_pid)?)];
    for (name, pid) in &args.processes {
        all.push((name.clone(), tree_cpu_seconds(*pid)?));
    }
    Ok(all)
}

/// The backends the CPU target counts with the service (the simulator and this load
/// tool are the test's side, reported but not counted). A topology's nodes are named
/// after their kind (`nats-0`, `postgres-pg-standby`, `redis-sentinel-1`…) and counted too.
const COUNTED: [&str; 4] = ["service", "nats", "postgres", "redis"];

/// Whether a process's CPU counts towards the service's cost.
fn is_counted(name: &str) -> bool {
    COUNTED
        .iter()
        .any(|kind| name == *kind || name.starts_with(&format!("{kind}-")))
}

/// Connect to the servers of `--nats-url` (several, comma-separated), with TLS when a
/// `tls://` URL or a TLS file asks for it.
async fn connect(args: &Args) -> anyhow::Result<async_nats::Client> {
    let servers = args
        .nats_url
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("--nats-url")?;
    let mut options = async_nats::ConnectOptions::new();
    if args.nats_url.contains("tls://") || args.nats_tls_ca_file.is_some() {
        options = options.require_tls(true);
    }
    if let Some(ca) = &args.nats_tls_ca_file {
        options = options.add_root_certificates(ca.into());
    }
    if let (Some(cert), Some(key)) = (&args.nats_tls_cert_file, &args.nats_tls_key_file) {
        options = options.add_client_certificate(cert.into(), key.into());
    }
    Ok(options.connect(servers.as_slice()).await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.count == 0 || args.count > 1_000_000 {
        bail!("--count must be 1..=1000000");
    }
    if args.rate > 100_000 {
        bail!("--rate must be at most 100000 messages/s");
    }
    if !args.nats_url.contains("127.0.0.1") && !args.nats_url.contains("localhost") {
        bail!("the benchmark runs against loopback only");
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let client = connect(&args).await?;
    if args.mo_messages > 0 {
        return mo_run(&args, client, deadline).await;
    }
    let js = async_nats::jetstream::new(client.clone());
    let http = reqwest::Client::new();
    let consumer_name = format!("smpp-connector-{}-{}-p2", args.operator, args.direction);
    let stream = js
        .get_stream("SMS_DISPATCH")
        .await
        .context("SMS_DISPATCH stream")?;
    let texts = Texts::new(args.mix, &args.text);

    let before = scrape(&http, &args.metrics_url).await?;
    let cpu_before = cpu_snapshot(&args)?;
    let nats_before = nats_counts(&http, args.nats_monitor_url.as_deref()).await;
    let started = Instant::now();

    // Publish with up to 2,000 acknowledgements outstanding; with --rate, message n
    // goes at n / rate seconds after the start.
    let subject = format!("smpp.operator.{}", args.operator);
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut pending = std::collections::VecDeque::new();
    for n in 0..args.count {
        if args.rate > 0 {
            let due = started + Duration::from_secs_f64(n as f64 / f64::from(args.rate));
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let payload = json!({
            "version": "1.0",
            "messageId": format!("bench-{run}-{n}"),
            "operatorId": args.operator,
            "to": format!("+9370{:07}", n % 10_000_000),
            "text": texts.text(n),
        });
        let ack = js
            .publish(subject.clone(), serde_json::to_vec(&payload)?.into())
            .await?;
        pending.push_back(Box::pin(std::future::IntoFuture::into_future(ack)));
        if pending.len() >= 2_000 {
            pending.pop_front().expect("non-empty").await?;
        }
        // Paced: collect the acknowledgements as they come so none waits behind the pace.
        while args.rate > 0 && pending.len() > 1 {
            match futures::FutureExt::now_or_never(pending.front_mut().expect("non-empty")) {
                Some(result) => {
                    result?;
                    pending.pop_front();
                }
                None => break,
            }
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
    let mut elapsed = started.elapsed();
    let acked = elapsed;
    let mut receipts = None;
    if args.expect_receipts {
        // Receipts still being correlated and published when the last ACK went.
        loop {
            let now = scrape(&http, &args.metrics_url).await?;
            let submitted = now.counter("smpp_connector_submit_total")
                - before.counter("smpp_connector_submit_total");
            let published = now.counter("smpp_connector_dlr_total")
                - before.counter("smpp_connector_dlr_total");
            if published >= submitted {
                elapsed = started.elapsed();
                receipts = Some(published);
                break;
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for the receipts ({published} of {submitted} published)");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let cpu_after = cpu_snapshot(&args)?;
    let nats_after = nats_counts(&http, args.nats_monitor_url.as_deref()).await;
    let rss = peak_rss_mib(args.service_pid);
    let after = scrape(&http, &args.metrics_url).await?;
    let submits = after.counter("smpp_connector_submit_total")
        - before.counter("smpp_connector_submit_total");
    let nats_messages = nats_before
        .zip(nats_after)
        .map(|((in0, out0), (in1, out1))| {
            let per = |n: f64| if submits > 0.0 { n / submits } else { 0.0 };
            (per(in1 - in0), per(out1 - out0))
        });
    let (p50, p99) = quantiles(&before, &after, "smpp_connector_dispatch_latency_seconds");
    let (age_p50, age_p99) = quantiles(&before, &after, "smpp_connector_dispatch_age_seconds");
    let (lookup_p50, lookup_p99) =
        quantiles(&before, &after, "smpp_connector_receipt_lookup_seconds");
    let delta = |name: &str| after.counter(name) - before.counter(name);
    let swept = delta("smpp_connector_correlation_swept_total");
    let sweeps = delta("smpp_connector_correlation_sweep_seconds_count");
    let sweep_seconds = delta("smpp_connector_correlation_sweep_seconds_sum");
    let rate = args.count as f64 / elapsed.as_secs_f64();
    let submit_rate = submits / elapsed.as_secs_f64();

    let cpu: Vec<(String, f64)> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|((name, after), (_, before))| (name.clone(), after - before))
        .collect();
    let per_1000 = |seconds: f64| {
        if submits > 0.0 {
            seconds * 1000.0 * 1000.0 / submits
        } else {
            0.0
        }
    };
    let counted: f64 = cpu
        .iter()
        .filter(|(name, _)| is_counted(name))
        .map(|(_, s)| s)
        .sum();
    let service_cpu = cpu[0].1;

    let processes: serde_json::Map<String, serde_json::Value> = cpu
        .iter()
        .map(|(name, seconds)| {
            (
                name.clone(),
                json!({"cpu_seconds": seconds, "cpu_ms_per_1000_submit_sm": per_1000(*seconds)}),
            )
        })
        .collect();
    let result = json!({
        "mix": format!("{:?}", args.mix).to_lowercase(),
        "rate": args.rate,
        "messages": args.count,
        "submit_sm": submits,
        "seconds": elapsed.as_secs_f64(),
        "publish_seconds": published.as_secs_f64(),
        "messages_per_second": rate,
        "submit_sm_per_second": submit_rate,
        "dispatch_to_ack_p50_ms": p50.map(|s| s * 1000.0),
        "dispatch_to_ack_p99_ms": p99.map(|s| s * 1000.0),
        "stored_to_ack_p50_ms": age_p50.map(|s| s * 1000.0),
        "stored_to_ack_p99_ms": age_p99.map(|s| s * 1000.0),
        "receipt_lookup_p50_ms": lookup_p50.map(|s| s * 1000.0),
        "receipt_lookup_p99_ms": lookup_p99.map(|s| s * 1000.0),
        "service_cpu_seconds": service_cpu,
        "service_cpu_seconds_per_100k": service_cpu * 100_000.0 / args.count as f64,
        "counted_cpu_ms_per_1000_submit_sm": per_1000(counted),
        "processes": processes,
        "service_peak_rss_mib": rss,
        "nats_in_msgs_per_submit_sm": nats_messages.map(|m| m.0),
        "nats_out_msgs_per_submit_sm": nats_messages.map(|m| m.1),
        "acked_seconds": acked.as_secs_f64(),
        "receipts": receipts,
        "receipts_per_second": receipts.map(|r| r / elapsed.as_secs_f64()),
        "swept_rows": swept,
        "sweeps": sweeps,
        "sweep_seconds": sweep_seconds,
    });
    println!(
        "messages            {} ({submits:.0} submit_sm)",
        args.count
    );
    println!(
        "elapsed             {:.2} s (publishing took {:.2} s{})",
        elapsed.as_secs_f64(),
        published.as_secs_f64(),
        if args.rate > 0 {
            format!(", paced at {}/s", args.rate)
        } else {
            String::new()
        }
    );
    println!("throughput          {rate:.0} msg/s, {submit_rate:.0} submit_sm/s");
    if let Some(receipts) = receipts {
        println!(
            "receipts            {receipts:.0} published, {:.0}/s end to end (last ACK at {:.2} s, last receipt at {:.2} s)",
            receipts / elapsed.as_secs_f64(),
            acked.as_secs_f64(),
            elapsed.as_secs_f64()
        );
    }
    println!(
        "dispatch -> ACK     p50 {} ms, p99 {} ms (pulled -> ACK, service histogram)",
        ms(p50),
        ms(p99)
    );
    println!(
        "stored -> ACK       p50 {} ms, p99 {} ms (JetStream stored -> ACK, service histogram)",
        ms(age_p50),
        ms(age_p99)
    );
    println!(
        "receipt match       p50 {} ms, p99 {} ms (asked -> answered, batching included)",
        ms(lookup_p50),
        ms(lookup_p99)
    );
    if swept > 0.0 {
        println!(
            "correlation sweep   {swept:.0} expired rows deleted in {sweeps:.0} sweeps, {sweep_seconds:.2} s of sweeping, during the run"
        );
    }
    println!("CPU                 seconds   ms per 1,000 submit_sm");
    for (name, seconds) in &cpu {
        let mark = if is_counted(name) {
            ""
        } else {
            "  (test side, not counted)"
        };
        println!(
            "  {name:<16} {seconds:>8.2} {:>10.1}{mark}",
            per_1000(*seconds)
        );
    }
    println!(
        "  {:<16} {counted:>8.2} {:>10.1}",
        "counted total",
        per_1000(counted)
    );
    println!(
        "service CPU         {service_cpu:.2} s ({:.2} s per 100k messages)",
        service_cpu * 100_000.0 / args.count as f64
    );
    println!("service peak RSS    {rss:.1} MiB");
    if let Some((inbound, outbound)) = nats_messages {
        println!(
            "NATS messages       {inbound:.1} in, {outbound:.1} out per submit_sm (server /varz)"
        );
    }
    if let Some(path) = args.json_out {
        std::fs::write(&path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}

/// `--mo-messages`: the simulator sends concatenated MO messages as fast as the service
/// answers them; done when every message's event is on `sms.mo.inbound`.
async fn mo_run(args: &Args, client: async_nats::Client, deadline: Instant) -> anyhow::Result<()> {
    use futures::StreamExt;
    let control = args
        .sim_control
        .clone()
        .context("--mo-messages needs --sim-control")?;
    if !control.contains("127.0.0.1") && !control.contains("localhost") {
        bail!("the benchmark runs against loopback only");
    }
    if args.mo_messages > 200_000 || !(2..=10).contains(&args.mo_parts) {
        bail!("--mo-messages must be 1..=200000 and --mo-parts 2..=10");
    }
    let http = reqwest::Client::new();
    let mut events = client.subscribe("sms.mo.inbound").await?;
    client.flush().await?;
    let before = scrape(&http, &args.metrics_url).await?;
    let cpu_before = cpu_snapshot(args)?;
    let started = Instant::now();
    let seed = (uuid::Uuid::new_v4().as_u128() % 10_000) as u64;
    let burst = json!({"kind": "mo_burst", "messages": args.mo_messages, "parts": args.mo_parts, "seed": seed});
    let inject = {
        let http = http.clone();
        tokio::spawn(async move {
            http.post(format!("{control}/inject"))
                .json(&burst)
                .send()
                .await?
                .error_for_status()
        })
    };
    let prefix = format!("8{seed:04}");
    let (mut complete, mut partial) = (0u32, 0u32);
    while complete + partial < args.mo_messages {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(message)) = tokio::time::timeout(left, events.next()).await else {
            bail!(
                "timed out: {complete} complete and {partial} partial of {} MO messages",
                args.mo_messages
            );
        };
        let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
        if !event["from"]
            .as_str()
            .is_some_and(|f| f.starts_with(&prefix))
        {
            continue;
        }
        if event["incomplete"] == json!(false) {
            complete += 1;
        } else {
            partial += 1;
        }
    }
    let elapsed = started.elapsed();
    inject.await??;
    let cpu_after = cpu_snapshot(args)?;
    let after = scrape(&http, &args.metrics_url).await?;
    let parts = f64::from(args.mo_messages) * f64::from(args.mo_parts);
    let per_1000 = |seconds: f64| seconds * 1_000_000.0 / parts;
    let cpu: Vec<(String, f64)> = cpu_after
        .iter()
        .zip(&cpu_before)
        .map(|((name, a), (_, b))| (name.clone(), a - b))
        .collect();
    let counted: f64 = cpu
        .iter()
        .filter(|(name, _)| is_counted(name))
        .map(|(_, s)| s)
        .sum();
    let (p50, p99) = quantiles(&before, &after, "smpp_connector_dlr_latency_seconds");
    let parts_rate = parts / elapsed.as_secs_f64();
    println!(
        "MO messages         {} x {} parts: {complete} complete, {partial} partial",
        args.mo_messages, args.mo_parts
    );
    println!(
        "throughput          {parts_rate:.0} parts/s, {:.0} messages/s ({:.2} s)",
        f64::from(args.mo_messages) / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "deliver_sm -> resp  p50 {} ms, p99 {} ms (stored in Redis or event acknowledged)",
        ms(p50),
        ms(p99)
    );
    println!("CPU                 seconds   ms per 1,000 parts");
    for (name, seconds) in &cpu {
        println!("  {name:<16} {seconds:>8.2} {:>10.1}", per_1000(*seconds));
    }
    println!(
        "  {:<16} {counted:>8.2} {:>10.1}",
        "counted total",
        per_1000(counted)
    );
    if let Some(path) = &args.json_out {
        let result = json!({
            "mo_messages": args.mo_messages,
            "mo_parts": args.mo_parts,
            "complete": complete,
            "partial": partial,
            "seconds": elapsed.as_secs_f64(),
            "mo_parts_per_second": parts_rate,
            "deliver_sm_resp_p50_ms": p50.map(|s| s * 1000.0),
            "deliver_sm_resp_p99_ms": p99.map(|s| s * 1000.0),
            "counted_cpu_ms_per_1000_parts": per_1000(counted),
        });
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    if partial > 0 {
        bail!("{partial} MO messages came out partial");
    }
    Ok(())
}
