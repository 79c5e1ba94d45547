#!/usr/bin/env python3
"""End-to-end benchmark of the release `firetail` sidecar against the local Firehose endpoint.

Run it through `benches/sidecar` (builds the release binaries and the plot venv first); see
benches/README.md. Python standard library only, except matplotlib for the plot.

For every case (workload x files x rotation) and record format it starts `firehose-endpoint`
(counting only, events counted inside every record, gzip included) and the real `firetail`
binary with dummy credentials and AWS_ENDPOINT_URL_FIREHOSE pointing at the endpoint. A run
ends when the endpoint has received every event the workload holds; then the sidecar's CPU
time (utime + stime, all threads, /proc/<pid>/stat) and peak RSS (VmHWM) are read, the sidecar
is stopped with SIGTERM, and the endpoint's counters (requests, records, bytes, billed bytes,
events) are collected. Each case runs --runs times; the report gives the median of each figure.

Workloads (deterministic, seeded):
- lines200: 200-byte access-log-like text lines (newline included).
- json1k: 1,024-byte JSON lines (an app that logs JSON; `log` holds it escaped).
- stack: 9 of 10 events a 200-byte line, every 10th a 14-line Java exception, joined by
  FIRETAIL_MULTILINE=java.
- access (not run by default; benches/fluentbit's first corpus): nginx "combined" access-log
  lines of ~200 bytes.
Files: 1 (one container directory) or 100 (10 directories x 10 files).
Rotation: off (the files exist before the sidecar starts: a backlog, the maximum rate) or on
(the sidecar starts on empty directories and a writer appends at --rotate-mb-per-sec,
renaming each file to .1 .. .5 every few hundred KiB/MiB like logrotate, deleting the oldest;
events/s is then bounded by the writer, events per CPU-second stays comparable).
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS = ["json", "ndjson", "ndjson-gzip", "v2-zstd", "v2-gzip"]
WORKLOADS = ["lines200", "json1k", "stack"]
# Every generator events_for knows (benches/fluentbit and the compression bench use them all).
CORPORA = ["access", "lines200", "json1k", "stack"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
BILLING_INCREMENT = 5 * 1024

# The bar (docs/BENCHMARKS.md): Fluent Bit's Firehose output, measured by its maintainers.
FLUENT_BIT = {
    "json": {"events_per_cpu_sec": 581_000, "billed_over_raw": 25.6, "label": "one event per record"},
    "ndjson-gzip": {"events_per_cpu_sec": 196_000, "billed_over_raw": 0.18, "label": "aggregation + gzip"},
    "v2-zstd": {"events_per_cpu_sec": 196_000, "billed_over_raw": 0.18, "label": "aggregation + gzip"},
    "v2-gzip": {"events_per_cpu_sec": 196_000, "billed_over_raw": 0.18, "label": "aggregation + gzip"},
}
RSS_LIMIT_MIB = 40.0

VOCAB = (
    "account order cart item payment user session token cache retry upstream timeout "
    "database query index shard replica leader follower commit rollback batch stream "
    "record event metric trace span queue worker scheduler job task node pod container "
    "image volume mount config secret route service ingress gateway proxy client server "
    "request response header body status latency error warning notice debug info started "
    "finished accepted rejected created updated deleted found missing invalid expired"
).split()
PATHS = ["/api/v1/items", "/api/v1/orders", "/api/v2/users/me", "/health", "/api/v1/cart/checkout",
         "/static/app.js", "/api/v1/search", "/api/v1/payments/authorize"]
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
STATUSES = [200, 200, 200, 200, 201, 204, 301, 400, 404, 500, 503]
LEVELS = ["INFO"] * 8 + ["WARN", "ERROR", "DEBUG"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
          "kube-probe/1.30", "curl/8.5.0", "okhttp/4.12.0", "python-requests/2.32.3"]


class Text:
    """A long run of vocabulary words; slices of it pad lines with realistic entropy."""

    def __init__(self, rng):
        self.text = " ".join(rng.choice(VOCAB) for _ in range(200_000))
        self.rng = rng

    def pad(self, n):
        start = self.rng.randrange(0, len(self.text) - n - 1)
        return self.text[start:start + n]


def timestamp(i):
    """2026-11-30T10:00:00.000Z plus `i` milliseconds (cheap: no datetime per line)."""
    secs, ms = divmod(i, 1000)
    mins, sec = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    return f"2026-11-30T{10 + hours % 14:02d}:{mins:02d}:{sec:02d}.{ms:03d}Z"


def line200(rng, text, i):
    head = (
        f"{timestamp(i)} {rng.choice(LEVELS)} [http-{rng.randrange(64)}] "
        f"req={rng.getrandbits(64):016x} {rng.choice(METHODS)} {rng.choice(PATHS)} "
        f"status={rng.choice(STATUSES)} dur_ms={rng.randrange(1, 2000)} user={rng.randrange(10**6)} "
    )
    return head + text.pad(199 - len(head)) + "\n"


def line_access(rng, i):
    """An nginx "combined" access-log line (~200 bytes): few clients, paths and agents, like a
    real service's traffic; compresses better than lines200's random ids and word salad."""
    secs = i // 50
    ip = f"10.0.{rng.randrange(4)}.{rng.randrange(2, 40)}"
    path = rng.choice(PATHS)
    if rng.random() < 0.5:
        path += f"?page={rng.randrange(1, 20)}"
    referer = "-" if rng.random() < 0.4 else f"https://shop.example.com{rng.choice(PATHS)}"
    return (f"{ip} - - [30/Nov/2026:{10 + secs // 3600 % 14:02d}:{secs // 60 % 60:02d}:{secs % 60:02d} +0000] "
            f"\"{rng.choice(METHODS)} {path} HTTP/1.1\" {rng.choice(STATUSES)} {rng.randrange(200, 30000)} "
            f"\"{referer}\" \"{rng.choice(AGENTS)}\" rt={rng.randrange(1, 2000) / 1000:.3f} "
            f"upstream=10.0.8.{rng.randrange(2, 12)}:8080 req={rng.getrandbits(32):08x}\n")


def line_json1k(rng, text, i):
    doc = {
        "ts": timestamp(i),
        "level": rng.choice(LEVELS),
        "logger": "com.example.api.RequestLogger",
        "trace_id": f"{rng.getrandbits(128):032x}",
        "span_id": f"{rng.getrandbits(64):016x}",
        "http": {"method": rng.choice(METHODS), "path": rng.choice(PATHS),
                 "status": rng.choice(STATUSES), "duration_ms": rng.randrange(1, 2000)},
        "user": {"id": rng.randrange(10**6), "tier": rng.choice(["free", "pro", "enterprise"])},
        "msg": "",
    }
    body = json.dumps(doc, separators=(",", ":"))
    need = 1023 - len(body)
    doc["msg"] = text.pad(need)
    out = json.dumps(doc, separators=(",", ":"))
    return out + "\n"


def java_trace(rng, i):
    lines = [f"{timestamp(i)} ERROR [worker-{rng.randrange(16)}] request {i} failed: "
             f"java.lang.IllegalStateException: {rng.choice(VOCAB)} {rng.choice(VOCAB)}"]
    for f in range(10):
        cls = rng.choice(["Handler", "Service", "Repository", "Controller"])
        lines.append(f"\tat com.example.{rng.choice(VOCAB)}.{cls}{f}.handle({cls}{f}.java:{rng.randrange(20, 900)})")
    lines.append("Caused by: java.io.IOException: connection reset by peer")
    lines.append("\tat com.example.net.Client.read(Client.java:77)")
    lines.append("\t... 12 more")
    return "\n".join(lines) + "\n"


def events_for(workload, count, seed=7):
    """Yields `count` events (strings ending in a newline; a Java trace is one event)."""
    rng = random.Random(seed)
    text = Text(rng)
    for i in range(count):
        if workload == "lines200":
            yield line200(rng, text, i)
        elif workload == "access":
            yield line_access(rng, i)
        elif workload == "json1k":
            yield line_json1k(rng, text, i)
        elif i % 10 == 9:
            yield java_trace(rng, i)
        else:
            yield line200(rng, text, i)


def file_names(files):
    if files == 1:
        return [os.path.join("app", "app.log")]
    return [os.path.join(f"c{d}", f"app-{f}.log") for d in range(10) for f in range(files // 10)]


_CHUNKS = {}


def workload_chunks(workload, events, files, chunk_events=200):
    """Per file: a list of byte chunks, each ending at an event boundary (cached per process)."""
    key = (workload, events, files)
    if key not in _CHUNKS:
        _CHUNKS.clear()
        _CHUNKS[key] = _make_chunks(workload, events, files, chunk_events)
    return _CHUNKS[key]


def _make_chunks(workload, events, files, chunk_events):
    names = file_names(files)
    chunks = {name: [] for name in names}
    buf = []
    target = 0
    for n, ev in enumerate(events_for(workload, events), 1):
        buf.append(ev)
        if len(buf) == chunk_events:
            chunks[names[target]].append("".join(buf).encode())
            buf = []
            target = (target + 1) % len(names)
    if buf:
        chunks[names[target]].append("".join(buf).encode())
    return chunks


def prepare_backlog(workdir, workload, events, files):
    """Writes the workload once (cached by its parameters); returns (logs dir, meta)."""
    key = f"{workload}-{events}-{files}"
    base = os.path.join(workdir, "workloads", key)
    meta_path = os.path.join(base, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            return os.path.join(base, "logs"), json.load(f)
    shutil.rmtree(base, ignore_errors=True)
    logs = os.path.join(base, "logs")
    chunks = workload_chunks(workload, events, files)
    total = 0
    for name, parts in chunks.items():
        path = os.path.join(logs, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            for part in parts:
                f.write(part)
                total += len(part)
    meta = {"events": events, "bytes": total}
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return logs, meta


def read_cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def read_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


class Endpoint:
    def __init__(self, binary, stats_file):
        self.proc = subprocess.Popen(
            [binary, "--discard", "--count-events", "--stats-file", stats_file],
            stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening "):
            raise RuntimeError(f"firehose-endpoint did not start: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.stats_file = stats_file

    def stats(self):
        _, body = http_get(self.url + "/stats")
        return json.loads(body)

    def stop(self):
        cpu = read_cpu_secs(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        with open(self.stats_file) as f:
            return json.load(f), cpu


class Writer(threading.Thread):
    """Appends chunks to the files at a fixed rate, rotating like logrotate (rename .1 .. .5)."""

    KEEP = 5

    def __init__(self, logs, chunks, mb_per_sec, rotate_bytes):
        super().__init__(daemon=True)
        self.logs, self.chunks = logs, chunks
        self.rate = mb_per_sec * 1e6
        self.rotate_bytes = rotate_bytes
        self.rotations = 0
        self.error = None

    def rotate(self, path):
        for k in range(self.KEEP, 0, -1):
            src = path if k == 1 else f"{path}.{k - 1}"
            if os.path.exists(src):
                os.replace(src, f"{path}.{k}")
        self.rotations += 1

    def run(self):
        try:
            names = list(self.chunks)
            for name in names:
                os.makedirs(os.path.dirname(os.path.join(self.logs, name)), exist_ok=True)
            sizes = dict.fromkeys(names, 0)
            handles = {}
            start = time.monotonic()
            written = 0
            rounds = max(len(p) for p in self.chunks.values())
            for r in range(rounds):
                for name in names:
                    parts = self.chunks[name]
                    if r >= len(parts):
                        continue
                    path = os.path.join(self.logs, name)
                    if sizes[name] >= self.rotate_bytes:
                        handles.pop(name).close()
                        self.rotate(path)
                        sizes[name] = 0
                    if name not in handles:
                        handles[name] = open(path, "ab", buffering=0)
                    handles[name].write(parts[r])
                    sizes[name] += len(parts[r])
                    written += len(parts[r])
                    ahead = written / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
            for h in handles.values():
                h.close()
        except Exception as e:  # reported by the run, which then fails
            self.error = e


def sidecar_env(endpoint_url, run_dir, logs, fmt, workload, metrics_port):
    podinfo = os.path.join(run_dir, "podinfo")
    os.makedirs(podinfo, exist_ok=True)
    with open(os.path.join(podinfo, "labels"), "w") as f:
        f.write('app="shop-api"\npod-template-hash="7d9f8b6c5d"\n')
    with open(os.path.join(podinfo, "annotations"), "w") as f:
        f.write("")
    env = dict(os.environ)
    env.update({
        "AWS_ENDPOINT_URL_FIREHOSE": endpoint_url,
        "AWS_ACCESS_KEY_ID": "AKIDFIRETAILBENCH",
        "AWS_SECRET_ACCESS_KEY": "firetail-bench-secret",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "FIRETAIL_DELIVERY_STREAM": "bench",
        "FIRETAIL_PATHS": f"{logs}/**/*.log",
        "FIRETAIL_DATA_DIR": os.path.join(run_dir, "data"),
        "FIRETAIL_PODINFO_DIR": podinfo,
        "FIRETAIL_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
        "FIRETAIL_RECORD_FORMAT": fmt,
        "FIRETAIL_KUBERNETES_API": "off",
        "FIRETAIL_DRAIN": "eof",
        "FIRETAIL_LOG_FORMAT": "text",
        "FIRETAIL_LOG": "warn",
        "POD_NAME": "shop-api-7d9f8b6c5d-x2k4q",
        "POD_NAMESPACE": "shop",
        "POD_UID": "0c3f1d2e-0000-4000-8000-000000000000",
        "NODE_NAME": "fargate-ip-10-0-0-1.ec2.internal",
    })
    if workload == "stack":
        env["FIRETAIL_MULTILINE"] = "java"
    return env


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(args, bins, case, fmt, run_index):
    workload, files, rotation = case
    events = scaled_events(args, workload, rotation)
    run_dir = os.path.join(args.work_dir, "runs", f"{workload}-{files}-{rotation}-{fmt}-{run_index}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    if rotation:
        logs = os.path.join(run_dir, "logs")
        os.makedirs(logs)
        chunks = workload_chunks(workload, events, files)
        raw_bytes = sum(len(p) for parts in chunks.values() for p in parts)
    else:
        logs, meta = prepare_backlog(args.work_dir, workload, events, files)
        raw_bytes = meta["bytes"]

    endpoint = Endpoint(bins["firehose-endpoint"], os.path.join(run_dir, "endpoint-stats.json"))
    metrics_port = free_port()
    env = sidecar_env(endpoint.url, run_dir, logs, fmt, workload, metrics_port)
    load_before = loadavg()
    stderr = open(os.path.join(run_dir, "firetail.stderr"), "w")
    t0 = time.monotonic()
    proc = subprocess.Popen([bins["firetail"]], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    writer = None
    perf = None
    if args.perf_dir:
        os.makedirs(args.perf_dir, exist_ok=True)
        data = os.path.join(args.perf_dir, f"{workload}-{files}-{'rot' if rotation else 'backlog'}-{fmt}.data")
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "--call-graph", "dwarf,32768", "-p", str(proc.pid), "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if rotation:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if http_get(f"http://127.0.0.1:{metrics_port}/healthz", 0.5)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.01)
            total = sum(len(p) for parts in chunks.values() for p in parts)
            rotate_bytes = max(64 * 1024, total // files // 4)
            writer = Writer(logs, chunks, args.rotate_mb_per_sec, rotate_bytes)
            writer.start()
        deadline = time.monotonic() + args.timeout_secs
        got = 0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"firetail exited early with {proc.returncode}; see {stderr.name}")
            got = endpoint.stats()["events"]
            if got >= events:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"timeout: {got} of {events} events arrived; see {run_dir}")
            time.sleep(0.01)
        wall = time.monotonic() - t0
        cpu = read_cpu_secs(proc.pid)
        hwm = read_hwm_mib(proc.pid)
    finally:
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
        proc.send_signal(signal.SIGTERM)
        _, status, rusage = os.wait4(proc.pid, 0)
        proc.returncode = status
        stderr.close()
        stats, endpoint_cpu = endpoint.stop()
    if writer is not None:
        writer.join(timeout=60)
        if writer.error:
            raise RuntimeError(f"writer failed: {writer.error}")
    if stats["events"] != events:
        raise RuntimeError(f"{stats['events']} events arrived, {events} written (duplicates or loss); see {run_dir}")
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "events": events,
        "raw_bytes": raw_bytes,
        "wall_secs": wall,
        "cpu_secs": cpu,
        # Includes the drain after SIGTERM. (ru_maxrss is not used: it counts the forked
        # Python image before exec.)
        "cpu_secs_total": rusage.ru_utime + rusage.ru_stime,
        "events_per_sec": events / wall,
        "events_per_cpu_sec": events / cpu if cpu > 0 else float("inf"),
        "peak_rss_mib": hwm,
        "requests": stats["requests"],
        "records": stats["records_accepted"],
        "record_bytes": stats["bytes_accepted"],
        "billed_bytes": stats["billed_bytes"],
        "events_per_record": events / max(1, stats["records_accepted"]),
        "billed_over_raw": stats["billed_bytes"] / raw_bytes,
        "record_over_raw": stats["bytes_accepted"] / raw_bytes,
        "endpoint_cpu_secs": endpoint_cpu,
        "load_before": load_before,
        "load_after": loadavg(),
        "rotations": writer.rotations if writer else 0,
    }


def scaled_events(args, workload, rotation):
    base = {"lines200": 1_000_000, "access": 1_000_000, "json1k": 200_000, "stack": 400_000}[workload]
    scale = args.scale * (args.rotation_scale if rotation else 1.0)
    return max(1_000, int(base * scale))


def median_row(runs):
    row = {}
    for key in runs[0]:
        values = [r[key] for r in runs]
        row[key] = statistics.median(values)
    row["runs"] = len(runs)
    ratio = [r["events_per_cpu_sec"] for r in runs]
    row["events_per_cpu_sec_min"] = min(ratio)
    row["events_per_cpu_sec_max"] = max(ratio)
    return row


def fmt_int(x):
    return f"{x:,.0f}"


def markdown(results, meta):
    out = []
    out.append(f"Machine: {meta['machine']}; {meta['date']}; {meta['runs']} runs per case, median shown "
               f"(events/CPU-s range in brackets); load average {meta['load_min']:.1f}-{meta['load_max']:.1f} "
               f"during the runs.\n")
    out.append("| workload | files | rotation | format | events | events/s (wall) | events/CPU-s [min-max] "
               "| peak RSS MiB | requests | records | events/record | billed/raw | record/raw | endpoint CPU-s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        m = r["median"]
        out.append(
            f"| {r['workload']} | {r['files']} | {'yes' if r['rotation'] else 'no'} | {r['format']} "
            f"| {fmt_int(m['events'])} | {fmt_int(m['events_per_sec'])} "
            f"| {fmt_int(m['events_per_cpu_sec'])} [{fmt_int(m['events_per_cpu_sec_min'])}-{fmt_int(m['events_per_cpu_sec_max'])}] "
            f"| {m['peak_rss_mib']:.1f} | {fmt_int(m['requests'])} | {fmt_int(m['records'])} "
            f"| {m['events_per_record']:.1f} | {m['billed_over_raw']:.3f} | {m['record_over_raw']:.3f} "
            f"| {m['endpoint_cpu_secs']:.2f} |")
    out.append("")
    out.append("Against the bar (lines200, 1 file, no rotation):\n")
    out.append("| mode | Fluent Bit events/CPU-s | target (2x) | firetail events/CPU-s | Fluent Bit billed/raw "
               "| firetail billed/raw | firetail peak RSS MiB (target <= 40) | met |")
    out.append("|---|---|---|---|---|---|---|---|")
    for fmt, bar in FLUENT_BIT.items():
        match = [r for r in results if r["workload"] == "lines200" and r["files"] == 1
                 and not r["rotation"] and r["format"] == fmt]
        if not match:
            continue
        m = match[0]["median"]
        ok = m["events_per_cpu_sec"] >= 2 * bar["events_per_cpu_sec"] and m["peak_rss_mib"] <= RSS_LIMIT_MIB
        out.append(f"| {bar['label']} ({fmt}) | {fmt_int(bar['events_per_cpu_sec'])} "
                   f"| {fmt_int(2 * bar['events_per_cpu_sec'])} | {fmt_int(m['events_per_cpu_sec'])} "
                   f"| {bar['billed_over_raw']} | {m['billed_over_raw']:.3f} | {m['peak_rss_mib']:.1f} "
                   f"| {'yes' if ok else 'NO'} |")
    return "\n".join(out) + "\n"


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = [r for r in results if r["files"] == 1 and not r["rotation"]]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in base)]
    if not workloads:
        base = results
        workloads = sorted({r["workload"] for r in base})
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.8 / len(FORMATS)
    colors = {"json": "#d62728", "ndjson": "#1f77b4", "ndjson-gzip": "#2ca02c", "v2-zstd": "#9467bd",
              "v2-gzip": "#8c564b"}
    for k, fmt in enumerate(FORMATS):
        xs, eps, billed = [], [], []
        for i, w in enumerate(workloads):
            match = [r for r in base if r["workload"] == w and r["format"] == fmt]
            if match:
                xs.append(i + (k - 1) * width)
                eps.append(match[0]["median"]["events_per_cpu_sec"] / 1e3)
                billed.append(match[0]["median"]["billed_over_raw"])
        ax1.bar(xs, eps, width, label=fmt, color=colors[fmt])
        ax2.bar(xs, billed, width, label=fmt, color=colors[fmt])
    for fmt, bar in FLUENT_BIT.items():
        ax1.axhline(bar["events_per_cpu_sec"] / 1e3, color=colors[fmt], linestyle=":", linewidth=1)
        ax1.axhline(2 * bar["events_per_cpu_sec"] / 1e3, color=colors[fmt], linestyle="--", linewidth=1)
        ax2.axhline(bar["billed_over_raw"], color=colors[fmt], linestyle=":", linewidth=1)
    ax1.set_xticks(range(len(workloads)), workloads)
    ax1.set_ylabel("thousand events per CPU-second")
    ax1.set_title("Events per CPU-second (1 file, backlog)\ndotted: Fluent Bit, dashed: 2x Fluent Bit "
                  "(red: one event per record, green: aggregation + gzip)", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xticks(range(len(workloads)), workloads)
    ax2.set_ylabel("billed bytes / raw log bytes (log scale)")
    ax2.set_title("Billed / raw bytes (records rounded up to 5 KB)\ndotted: Fluent Bit 25.6x (one event "
                  "per record) and 0.18x (aggregation + gzip)", fontsize=9)
    ax2.axhline(1.0, color="grey", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_list(value, allowed, cast=str):
    items = [cast(v) for v in value.split(",") if v]
    for item in items:
        if item not in allowed:
            sys.exit(f"unknown value {item!r}; choose from {allowed}")
    return items


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", required=True, help="directory with release firetail and firehose-endpoint")
    p.add_argument("--work-dir", default=os.environ.get("FIRETAIL_BENCH_DIR", "/tmp/firetail-bench"))
    p.add_argument("--out-dir", default=os.path.join(ROOT, "docs", "bench"))
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--formats", default=",".join(FORMATS))
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--files", default="1,100")
    p.add_argument("--rotation", default="no,yes")
    p.add_argument("--scale", type=float, default=1.0,
                   help="events per case x this (1.0: 1M lines200, 200k json1k, 400k stack events)")
    p.add_argument("--rotation-scale", type=float, default=0.25,
                   help="extra factor for rotation cases (their writer is rate-limited)")
    p.add_argument("--rotate-mb-per-sec", type=float, default=25.0)
    p.add_argument("--timeout-secs", type=float, default=300.0)
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--perf-dir", help="profile each run with `perf record -g` into this directory "
                   "(perf's own overhead then inflates the figures)")
    args = p.parse_args()

    formats = parse_list(args.formats, FORMATS)
    workloads = parse_list(args.workloads, CORPORA)
    files_list = parse_list(args.files, [1, 100], int)
    rotations = [v == "yes" for v in parse_list(args.rotation, ["no", "yes"])]
    bins = {name: os.path.join(args.bin_dir, name) for name in ["firetail", "firehose-endpoint"]}
    for path in bins.values():
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found; build with `cargo build --release -p firetail-sidecar -p firetail-testkit`")
    os.makedirs(args.work_dir, exist_ok=True)
    os.makedirs(args.out_dir, exist_ok=True)

    cases = [(w, f, r) for w in workloads for f in files_list for r in rotations]
    results = []
    loads = []
    for case in cases:
        for fmt in formats:
            runs = []
            for i in range(args.runs):
                r = run_once(args, bins, case, fmt, i)
                loads += [r["load_before"], r["load_after"]]
                runs.append(r)
                print(f"{case[0]:>8} files={case[1]:<3} rotation={'yes' if case[2] else 'no ':<3} {fmt:<11} "
                      f"run {i + 1}: {r['events_per_cpu_sec']:>10,.0f} ev/CPU-s {r['events_per_sec']:>10,.0f} ev/s "
                      f"RSS {r['peak_rss_mib']:5.1f} MiB records {r['records']:>9,} billed/raw {r['billed_over_raw']:.3f} "
                      f"load {r['load_before']:.1f}", flush=True)
            results.append({"workload": case[0], "files": case[1], "rotation": case[2], "format": fmt,
                            "median": median_row(runs), "runs": runs})

    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
                   f"{cpu_model()}, Linux {platform.release()}",
        "runs": args.runs,
        "load_min": min(loads) if loads else 0.0,
        "load_max": max(loads) if loads else 0.0,
        "args": vars(args),
    }
    with open(os.path.join(args.out_dir, "sidecar.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    md = markdown(results, meta)
    with open(os.path.join(args.out_dir, "sidecar.md"), "w") as f:
        f.write(md)
    print()
    print(md)
    if not args.no_plot:
        plot(results, os.path.join(args.out_dir, "sidecar.png"))
        print(f"plot: {os.path.join(args.out_dir, 'sidecar.png')}")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
