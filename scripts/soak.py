#!/usr/bin/env python3
"""Soak sampling and report for `scripts/bench --soak` (standard library only).

  soak.py sample --out CSV --service-pid P --nats-pid P --database-url URL --psql PSQL
                 --nats-monitor URL --metrics URL [--every SECONDS]
      One row every SECONDS (10) until SIGTERM: the service's RSS, open file descriptors
      and threads; NATS's RSS and the messages its consumers have pending or unacked;
      the correlation table's size on disk, live and dead rows, rows past their expiry
      not yet swept; the service's submit_sm, swept rows and dead letters so far.

  soak.py report --samples CSV --chunks DIR --chunk-count N --rate R --minutes M --json-out FILE
      A table per five minutes, and the verdicts: every figure flat or bounded (the
      criteria are printed with the figures). Exits 1 when one is not.
"""

import argparse
import csv
import glob
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

FIELDS = [
    "t", "service_rss_kib", "service_fds", "service_threads", "nats_rss_kib",
    "nats_pending", "nats_ack_pending", "table_bytes", "live_rows", "dead_rows",
    "expired_unswept", "submit_sm", "swept", "dead_letters", "heap_bytes", "index_bytes",
    "updates", "hot_updates", "autovacuums",
]

TABLE_SQL = (
    "SELECT pg_total_relation_size('smpp.message_correlations'), n_live_tup, n_dead_tup,"
    " (SELECT count(*) FROM smpp.message_correlations WHERE expires_at < now()),"
    " pg_relation_size('smpp.message_correlations'), pg_indexes_size('smpp.message_correlations'),"
    " n_tup_upd, n_tup_hot_upd, autovacuum_count"
    " FROM pg_stat_user_tables WHERE relid = 'smpp.message_correlations'::regclass"
)


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.split()[0] if value.split() else ""
    except OSError:
        pass
    return out


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def metric_sum(text, name):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def get(url, timeout=5):
    return urllib.request.urlopen(url, timeout=timeout).read().decode()


def nats_pending(monitor):
    """Messages not yet delivered and delivered but unacknowledged, over every consumer of
    the service's streams (not the KV buckets' watchers)."""
    jsz = json.loads(get(f"{monitor}/jsz?consumers=true"))
    pending = ack_pending = 0
    for account in jsz.get("account_details") or []:
        for stream in account.get("stream_detail") or []:
            if stream.get("name", "").startswith("KV_"):
                continue
            for consumer in stream.get("consumer_detail") or []:
                pending += consumer.get("num_pending", 0)
                ack_pending += consumer.get("num_ack_pending", 0)
    return pending, ack_pending


def sample(args):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    started = time.monotonic()
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, FIELDS)
        writer.writeheader()
        while not stop:
            row = {"t": round(time.monotonic() - started, 1)}
            status = proc_status(args.service_pid)
            row["service_rss_kib"] = status.get("VmRSS", "")
            row["service_threads"] = status.get("Threads", "")
            row["service_fds"] = fds(args.service_pid)
            row["nats_rss_kib"] = proc_status(args.nats_pid).get("VmRSS", "")
            try:
                row["nats_pending"], row["nats_ack_pending"] = nats_pending(args.nats_monitor)
            except Exception:  # noqa: BLE001 - a missed sample is left empty
                pass
            try:
                out = subprocess.run([args.psql, args.database_url, "-At", "-F", " ", "-c", TABLE_SQL],
                                     capture_output=True, text=True, timeout=30, check=True).stdout
                (row["table_bytes"], row["live_rows"], row["dead_rows"], row["expired_unswept"],
                 row["heap_bytes"], row["index_bytes"], row["updates"], row["hot_updates"],
                 row["autovacuums"]) = out.split()
            except Exception:  # noqa: BLE001
                pass
            try:
                text = get(args.metrics)
                row["submit_sm"] = int(metric_sum(text, "smpp_connector_submit_total"))
                row["swept"] = int(metric_sum(text, "smpp_connector_correlation_swept_total"))
                row["dead_letters"] = int(metric_sum(text, "smpp_connector_dead_letter_total"))
            except Exception:  # noqa: BLE001
                pass
            writer.writerow(row)
            f.flush()
            deadline = started + row["t"] + args.every
            while not stop and time.monotonic() < deadline:
                time.sleep(0.2)


def number(row, key):
    value = row.get(key, "")
    return float(value) if value not in ("", None) else None


def column(rows, key):
    return [v for v in (number(r, key) for r in rows) if v is not None]


def report(args):
    with open(args.samples) as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 6:
        print("soak: too few samples to judge", file=sys.stderr)
        return 1
    chunks = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(args.chunks, "soak-chunk-*.json")),
                                                   key=lambda p: int(p.rsplit("-", 1)[1].split(".")[0]))]
    end = float(rows[-1]["t"])
    window = 300.0
    print(f"{'minutes':>9} {'RSS MiB':>8} {'fds':>5} {'thr':>4} {'NATS MiB':>9} {'pending':>8}"
          f" {'table MiB':>10} {'heap':>6} {'index':>6} {'live rows':>10} {'dead rows':>10} {'expired':>8} {'submit_sm/s':>11}")
    windows = []
    start = 0.0
    while start < end:
        part = [r for r in rows if start <= float(r["t"]) < start + window] or [rows[-1]]
        first, last = part[0], part[-1]
        submits = column([first, last], "submit_sm")
        span = float(last["t"]) - float(first["t"])
        rate = (submits[1] - submits[0]) / span if len(submits) == 2 and span > 0 else 0.0
        w = {
            "from_minute": start / 60,
            "rss_mib_max": max(column(part, "service_rss_kib") or [0]) / 1024,
            "fds_max": max(column(part, "service_fds") or [0]),
            "threads_max": max(column(part, "service_threads") or [0]),
            "nats_rss_mib_max": max(column(part, "nats_rss_kib") or [0]) / 1024,
            "nats_pending_max": max(
                [(number(r, "nats_pending") or 0) + (number(r, "nats_ack_pending") or 0) for r in part]),
            "table_mib_max": max(column(part, "table_bytes") or [0]) / 2**20,
            "heap_mib_max": max(column(part, "heap_bytes") or [0]) / 2**20,
            "index_mib_max": max(column(part, "index_bytes") or [0]) / 2**20,
            "live_rows_last": (column(part, "live_rows") or [0])[-1],
            "dead_rows_max": max(column(part, "dead_rows") or [0]),
            "expired_unswept_max": max(column(part, "expired_unswept") or [0]),
            "submit_sm_per_second": rate,
        }
        windows.append(w)
        print(f"{start / 60:>4.0f}–{min(start + window, end) / 60:<4.0f} {w['rss_mib_max']:>8.1f}"
              f" {w['fds_max']:>5.0f} {w['threads_max']:>4.0f} {w['nats_rss_mib_max']:>9.1f}"
              f" {w['nats_pending_max']:>8.0f} {w['table_mib_max']:>10.1f} {w['heap_mib_max']:>6.0f}"
              f" {w['index_mib_max']:>6.0f} {w['live_rows_last']:>10.0f}"
              f" {w['dead_rows_max']:>10.0f} {w['expired_unswept_max']:>8.0f} {rate:>11.0f}")
        start += window

    # Judged on the last third against the middle one: the first third holds the warm-up
    # (the allocator's, and a seeded table whose indexes were built packed and split as
    # rows arrive: the first turnover grows them to their working size).
    half = [r for r in rows if float(r["t"]) >= end * 2 / 3]
    first_half = [r for r in rows if end / 3 <= float(r["t"]) < end * 2 / 3]
    warm = [r for r in rows if float(r["t"]) >= min(120.0, end / 4)]
    rss_first = max(column(first_half, "service_rss_kib")) / 1024
    rss_second = max(column(half, "service_rss_kib")) / 1024
    fd_values = column(warm, "service_fds")
    table_first = max(column(first_half, "table_bytes")) / 2**20
    table_second = max(column(half, "table_bytes")) / 2**20
    live = column(warm, "live_rows")
    expired = column(rows, "expired_unswept")
    pending = [(number(r, "nats_pending") or 0) + (number(r, "nats_ack_pending") or 0) for r in rows]
    # A chunk's result exists only when smpp-bench saw every message ACKed and one DLR
    # event published per submit_sm.
    messages = sum(c.get("messages", 0) for c in chunks)
    submits = sum(c.get("submit_sm", 0) for c in chunks)
    receipts = sum(c.get("receipts") or 0 for c in chunks)
    complete = len(chunks) == args.chunk_count and receipts == submits
    segments_rate = args.rate * (1.4 if chunks and chunks[0].get("mix") == "standard" else 1.0)
    p99 = [c.get("stored_to_ack_p99_ms") for c in chunks if c.get("stored_to_ack_p99_ms") is not None]
    dead_letters = column(rows, "dead_letters")

    verdicts = [
        ("service RSS", f"{rss_first:.1f} MiB peak in the middle third, {rss_second:.1f} MiB in the last",
         "last-third peak ≤ middle-third peak × 1.10 + 8 MiB", rss_second <= rss_first * 1.10 + 8),
        ("open file descriptors", f"{min(fd_values):.0f}–{max(fd_values):.0f} after the first 2 minutes",
         "spread ≤ 16", max(fd_values) - min(fd_values) <= 16),
        ("correlation table size", f"{table_first:.0f} MiB peak in the middle third, {table_second:.0f} MiB in the last",
         "last-third peak ≤ middle-third peak × 1.10", table_second <= table_first * 1.10),
        ("live correlation rows", f"{min(live):,.0f}–{max(live):,.0f} (the sweep deletes as many as are written)",
         "max ≤ min × 1.5", max(live) <= min(live) * 1.5),
        ("rows past expiry, not swept", f"at most {max(expired):,.0f}",
         f"≤ 2 sweep periods of traffic ({2 * 60 * segments_rate:,.0f})", max(expired) <= 2 * 60 * segments_rate),
        ("NATS pending + unacked", f"at most {max(pending):,.0f}, {pending[-1]:,.0f} at the end",
         f"≤ 10 s of traffic ({10 * args.rate:,.0f})", max(pending) <= 10 * args.rate),
        ("stored → ACK p99 per 5 minutes", ", ".join(f"{v:.0f}" for v in p99) + " ms",
         "every chunk ≤ 1,000 ms", bool(p99) and max(p99) <= 1000),
        ("dead letters", f"{(dead_letters[-1] if dead_letters else 0):.0f}", "0",
         bool(dead_letters) and dead_letters[-1] == 0),
        ("messages", f"{messages:,} in {len(chunks)} of {args.chunk_count} runs ACKed, {submits:,.0f} submit_sm,"
                     f" {receipts:,.0f} receipts published", "every run complete, receipts = submit_sm", complete),
    ]
    updates, hot = column(rows, "updates"), column(rows, "hot_updates")
    vacuums = column(rows, "autovacuums")
    if updates and hot and vacuums:
        print(f"\nreceipt UPDATEs: {updates[-1] - updates[0]:,.0f}, HOT {hot[-1] - hot[0]:,.0f};"
              f" autovacuum runs: {vacuums[-1] - vacuums[0]:.0f}")
    print()
    width = max(len(v[0]) for v in verdicts)
    failed = False
    for name, figure, criterion, ok in verdicts:
        failed |= not ok
        print(f"{name:<{width}}  {'ok  ' if ok else 'FAIL'}  {figure}  [{criterion}]")
    json.dump({"rate": args.rate, "minutes": args.minutes, "messages": messages, "windows": windows,
               "verdicts": [{"name": n, "figure": f, "criterion": c, "ok": ok} for n, f, c, ok in verdicts]},
              open(args.json_out, "w"), indent=2)
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--out", required=True)
    s.add_argument("--service-pid", type=int, required=True)
    s.add_argument("--nats-pid", type=int, required=True)
    s.add_argument("--database-url", required=True)
    s.add_argument("--psql", required=True)
    s.add_argument("--nats-monitor", required=True)
    s.add_argument("--metrics", required=True)
    s.add_argument("--every", type=float, default=10.0)
    r = sub.add_parser("report")
    r.add_argument("--samples", required=True)
    r.add_argument("--chunks", required=True)
    r.add_argument("--rate", type=int, required=True)
    r.add_argument("--minutes", type=int, required=True)
    r.add_argument("--chunk-count", type=int, required=True)
    r.add_argument("--json-out", required=True)
    args = parser.parse_args()
    if args.command == "sample":
        sample(args)
        return 0
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
