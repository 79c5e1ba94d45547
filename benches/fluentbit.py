#!/usr/bin/env python3
"""Fluent Bit and firetail side by side on the same files, against the same local HTTPS
Firehose endpoint. Run it through `benches/fluentbit` (builds the release binaries first).

Both shippers read one kubelet-named file per corpus
(`<pod>_<namespace>_<container>-<64 hex>.log`, written once, seeded; generators in
benches/sidecar.py) from the start, and send it with PutRecordBatch to `firehose-endpoint
--tls-dir` (TLS from a CA generated per run: Fluent Bit's `kinesis_firehose` output speaks only
TLS, so firetail goes through the same TLS, trusting the CA with SSL_CERT_FILE). The endpoint
counts records, bytes, billed bytes (each record rounded up to 5 KB) and the events inside the
records (newlines, gzip records decompressed).

A run ends when the endpoint's event count has not moved for --settle-secs after reaching the
number of events written (or, if a shipper joins multiline events differently, after it
stopped moving at all). The shipper's CPU time (utime + stime, all threads, /proc/<pid>/stat)
and peak RSS (VmHWM) are those sampled when the last event arrived. Before every run the
input file is read once (Fluent Bit's tail drops it from the page cache with
posix_fadvise(DONTNEED) as it goes, so the next reader would otherwise read from disk).
Modes alternate within each repetition (all modes run 1, then all modes run 2, ...); each
figure is the median of --runs.

Modes:
- fb-agg-gzip-nometa: Fluent Bit, `simple_aggregation On`, `compression gzip`, the record as
  tail makes it ({"log": ...}), no filter.
- fb-agg-gzip-k8s: the same plus its `kubernetes` filter from a preloaded pod (no API server;
  Kube_Meta_Preload_Cache_Dir), `time_key time`, tail's `Path_Key file` and `stream` added by
  `modify`: the fields firetail's events carry.
- fb-agg-gzip-modify: the same fields, the `kubernetes` object built by `modify` + `nest`
  instead of the kubernetes filter (exactly firetail's keys).
- fb-default-k8s: Fluent Bit's default, one event per record, no compression, metadata as in
  fb-agg-gzip-k8s.
- ft-v2-zstd (the default), ft-ndjson-gzip (format version 1), ft-json: the release `firetail`
  with Downward API env/files (pod name, namespace, uid, node, two labels),
  FIRETAIL_RECORD_FORMAT, and MALLOC_ARENA_MAX=2 as its image sets it (override by setting
  MALLOC_ARENA_MAX for the script).
- ft-v2-zstd-lN (N in 1, 3-9; only when named in --modes): v2-zstd at FIRETAIL_COMPRESSION_LEVEL=N,
  to choose the default level side by side with Fluent Bit.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sidecar  # noqa: E402  (generators and /proc readers)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPORA = ["access", "lines200", "json1k", "stack"]
BASE_EVENTS = {"access": 1_000_000, "lines200": 1_000_000, "json1k": 200_000, "stack": 400_000}
MODES = ["fb-agg-gzip-nometa", "fb-agg-gzip-k8s", "fb-agg-gzip-modify", "fb-default-k8s",
         "ft-v2-zstd", "ft-ndjson-gzip", "ft-json"]
# Not run unless named in --modes: firetail's v2-zstd at other levels (--compression-level), for
# choosing the default by measurement side by side.
LEVEL_MODES = [f"ft-v2-zstd-l{n}" for n in (1, 3, 4, 5, 6, 7, 8, 9)]
LABELS = {
    "fb-agg-gzip-nometa": "Fluent Bit, aggregation + gzip, no metadata",
    "fb-agg-gzip-k8s": "Fluent Bit, aggregation + gzip, metadata (kubernetes filter)",
    "fb-agg-gzip-modify": "Fluent Bit, aggregation + gzip, metadata (modify + nest)",
    "fb-default-k8s": "Fluent Bit, default (1 event/record), metadata (kubernetes filter)",
    "ft-v2-zstd": "firetail v2-zstd (metadata)",
    "ft-ndjson-gzip": "firetail ndjson-gzip (metadata)",
    "ft-json": "firetail json (metadata)",
    **{m: f"firetail v2-zstd level {m.rsplit('-l', 1)[1]} (metadata)" for m in LEVEL_MODES},
}


def ft_format_and_level(mode):
    """`ft-v2-zstd-l6` -> ("v2-zstd", "6"); `ft-json` -> ("json", None)."""
    name = mode.removeprefix("ft-")
    if mode in LEVEL_MODES:
        name, level = name.rsplit("-l", 1)
        return name, level
    return name, None

POD = {"name": "shop-api-7d9f8b6c5d-x2k4q", "namespace": "shop",
       "uid": "0c3f1d2e-0000-4000-8000-000000000000", "node": "fargate-ip-10-0-0-1.ec2.internal",
       "container": "app", "labels": {"app": "shop-api", "pod-template-hash": "7d9f8b6c5d"}}
DOCKER_ID = "4f1c2b7e9d8a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c"
STREAM = "bench"


def corpus_file(work_dir, corpus, events):
    """Writes the corpus once as a kubelet-named log file; returns (dir, path, meta)."""
    base = os.path.join(work_dir, "corpora", f"{corpus}-{events}")
    logs = os.path.join(base, "containers")
    path = os.path.join(logs, f"{POD['name']}_{POD['namespace']}_{POD['container']}-{DOCKER_ID}.log")
    meta_path = os.path.join(base, "meta.json")
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            return logs, path, json.load(f)
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(logs)
    total = 0
    with open(path, "w") as f:
        buf = []
        for n, ev in enumerate(sidecar.events_for(corpus, events), 1):
            buf.append(ev)
            total += len(ev.encode())
            if n % 10_000 == 0:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    meta = {"events": events, "bytes": total}
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    return logs, path, meta


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 22):
            pass


class Endpoint:
    """`firehose-endpoint --tls-dir`: HTTPS on localhost with a CA generated for this run."""

    def __init__(self, binary, run_dir):
        self.tls_dir = os.path.join(run_dir, "tls")
        self.stats_file = os.path.join(run_dir, "endpoint-stats.json")
        self.proc = subprocess.Popen(
            [binary, "--discard", "--count-events", "--stats-file", self.stats_file,
             "--tls-dir", self.tls_dir], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening https://"):
            raise RuntimeError(f"firehose-endpoint did not start with TLS: {line!r}")
        self.url = line.split(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        self.ca = os.path.join(self.tls_dir, "ca.pem")
        self.ctx = ssl.create_default_context(cafile=self.ca)

    def stats(self):
        with urllib.request.urlopen(self.url + "/stats", timeout=2.0, context=self.ctx) as r:
            return json.loads(r.read())

    def stop(self):
        cpu = sidecar.read_cpu_secs(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        with open(self.stats_file) as f:
            return json.load(f), cpu


def pod_json():
    """What the API server would answer for the pod (the kubernetes filter's preload file)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": POD["name"], "namespace": POD["namespace"], "uid": POD["uid"],
                     "labels": POD["labels"]},
        "spec": {"nodeName": POD["node"], "containers": [{"name": POD["container"]}]},
        "status": {"phase": "Running"},
    }


def fluent_bit_config(mode, corpus, logs, run_dir, endpoint):
    """The classic-format configuration of one Fluent Bit run (printed into the docs)."""
    k8s = mode in ("fb-agg-gzip-k8s", "fb-default-k8s")
    modify = mode == "fb-agg-gzip-modify"
    meta = k8s or modify
    tag_prefix = "kube." + logs.strip("/").replace("/", ".") + "."
    lines = [
        "[SERVICE]",
        "    Flush        1",
        "    Grace        1",
        "    Log_Level    warn",
        "    HTTP_Server  Off",
        "",
        "[INPUT]",
        "    Name             tail",
        f"    Path             {logs}/*.log",
        "    Tag              kube.*",
        "    Read_from_Head   On",
        "    Refresh_Interval 1",
    ]
    if corpus == "stack":
        lines.append("    multiline.parser java")
    if meta:
        lines.append("    Path_Key         file")
    if k8s:
        preload = os.path.join(run_dir, "kube-preload")
        os.makedirs(preload, exist_ok=True)
        with open(os.path.join(preload, f"{POD['namespace']}_{POD['name']}.meta"), "w") as f:
            json.dump(pod_json(), f)
        lines += [
            "",
            "[FILTER]",
            "    Name                        kubernetes",
            "    Match                       kube.*",
            f"    Kube_Tag_Prefix             {tag_prefix}",
            f"    Kube_Meta_Preload_Cache_Dir {preload}",
            "    Merge_Log                   Off",
            "    Annotations                 Off",
            "    Labels                      On",
        ]
    if meta:
        lines += ["", "[FILTER]", "    Name   modify", "    Match  kube.*", "    Add    stream stdout"]
    if modify:
        lines += [
            f"    Add    kubernetes_namespace_name {POD['namespace']}",
            f"    Add    kubernetes_pod_name {POD['name']}",
            f"    Add    kubernetes_pod_id {POD['uid']}",
            f"    Add    kubernetes_container_name {POD['container']}",
            f"    Add    kubernetes_host {POD['node']}",
        ] + [f"    Add    labels_{k} {v}" for k, v in POD["labels"].items()] + [
            "",
            "[FILTER]",
            "    Name          nest",
            "    Match         kube.*",
            "    Operation     nest",
            "    Wildcard      labels_*",
            "    Nest_under    kubernetes_labels",
            "    Remove_prefix labels_",
            "",
            "[FILTER]",
            "    Name          nest",
            "    Match         kube.*",
            "    Operation     nest",
            "    Wildcard      kubernetes_*",
            "    Nest_under    kubernetes",
            "    Remove_prefix kubernetes_",
        ]
    lines += [
        "",
        "[OUTPUT]",
        "    Name            kinesis_firehose",
        "    Match           *",
        "    region          us-east-1",
        f"    delivery_stream {STREAM}",
        "    endpoint        localhost",
        f"    port            {endpoint.port}",
        "    tls.verify      On",
        f"    tls.ca_file     {endpoint.ca}",
    ]
    if meta:
        lines += ["    time_key        time", "    time_key_format %Y-%m-%dT%H:%M:%S.%3NZ"]
    if mode.startswith("fb-agg-gzip"):
        lines += ["    simple_aggregation On", "    compression     gzip"]
    return "\n".join(lines) + "\n"


def aws_env(endpoint):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "AKIDFIRETAILBENCH",
        "AWS_SECRET_ACCESS_KEY": "firetail-bench-secret",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    })
    return env


def start_fluent_bit(args, mode, corpus, logs, run_dir, endpoint):
    conf = os.path.join(run_dir, "fluent-bit.conf")
    with open(conf, "w") as f:
        f.write(fluent_bit_config(mode, corpus, logs, run_dir, endpoint))
    err = open(os.path.join(run_dir, "shipper.log"), "w")
    return subprocess.Popen([args.fluent_bit, "-c", conf], env=aws_env(endpoint),
                            stdout=err, stderr=subprocess.STDOUT), err


def start_firetail(args, mode, corpus, logs, run_dir, endpoint):
    podinfo = os.path.join(run_dir, "podinfo")
    os.makedirs(podinfo, exist_ok=True)
    with open(os.path.join(podinfo, "labels"), "w") as f:
        f.write("".join(f'{k}="{v}"\n' for k, v in POD["labels"].items()))
    with open(os.path.join(podinfo, "annotations"), "w") as f:
        f.write("")
    env = aws_env(endpoint)
    env.update({
        "AWS_ENDPOINT_URL_FIREHOSE": endpoint.url,
        "SSL_CERT_FILE": endpoint.ca,
        "FIRETAIL_DELIVERY_STREAM": STREAM,
        "FIRETAIL_PATHS": f"{logs}/*.log",
        "FIRETAIL_DATA_DIR": os.path.join(run_dir, "data"),
        "FIRETAIL_PODINFO_DIR": podinfo,
        "FIRETAIL_METRICS_ADDR": f"127.0.0.1:{sidecar.free_port()}",
        "FIRETAIL_RECORD_FORMAT": ft_format_and_level(mode)[0],
        "FIRETAIL_KUBERNETES_API": "off",
        "FIRETAIL_DRAIN": "eof",
        "FIRETAIL_LOG_FORMAT": "text",
        "FIRETAIL_LOG": "warn",
        "POD_NAME": POD["name"],
        "POD_NAMESPACE": POD["namespace"],
        "POD_UID": POD["uid"],
        "NODE_NAME": POD["node"],
        "FIRETAIL_CONTAINER_NAME": POD["container"],
        # As the sidecar image sets it (Dockerfile): glibc's malloc arenas capped at two.
        "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),
    })
    if corpus == "stack":
        env["FIRETAIL_MULTILINE"] = "java"
    level = ft_format_and_level(mode)[1]
    if level is not None:
        env["FIRETAIL_COMPRESSION_LEVEL"] = level
    err = open(os.path.join(run_dir, "shipper.log"), "w")
    return subprocess.Popen([args.firetail], env=env, stdout=subprocess.DEVNULL, stderr=err), err


def received_events(mode, stats):
    """Events in the records: the endpoint counts newlines, and Fluent Bit's aggregated records
    usually end with an empty line (each event ends with a newline, and the record gets one
    more). A few records do not, so this can be off by a few events; a run whose count never
    reaches the events written ends after 10 quiet seconds, with CPU sampled at the last event."""
    extra = stats["records_accepted"] if mode.startswith("fb-agg") else 0
    return stats["events"] - extra


def run_once(args, corpus, mode, run_index):
    events = max(1_000, int(BASE_EVENTS[corpus] * args.scale))
    logs, path, meta = corpus_file(args.work_dir, corpus, events)
    run_dir = os.path.join(args.work_dir, "runs", f"{corpus}-{mode}-{run_index}")
    shutil.rmtree(run_dir, ignore_errors=True)
    os.makedirs(run_dir)
    warm(path)
    endpoint = Endpoint(args.endpoint, run_dir)
    start = start_fluent_bit if mode.startswith("fb-") else start_firetail
    load_before = sidecar.loadavg()
    t0 = time.monotonic()
    proc, log = start(args, mode, corpus, logs, run_dir, endpoint)
    try:
        deadline = t0 + args.timeout_secs
        last, last_change = -1, t0
        cpu = hwm = 0.0
        wall = 0.0
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{mode} exited early with {proc.returncode}; see {log.name}")
            st = endpoint.stats()
            got = received_events(mode, st)
            now = time.monotonic()
            if got != last:
                last, last_change = got, now
                cpu, hwm, wall = sidecar.read_cpu_secs(proc.pid), sidecar.read_hwm_mib(proc.pid), now - t0
            quiet = now - last_change
            if got >= events and quiet >= args.settle_secs:
                break
            if got > 0 and quiet >= max(args.settle_secs, 10.0):
                break  # a different multiline join, or loss: reported below
            if now > deadline:
                raise RuntimeError(f"timeout: {got} of {events} events arrived; see {run_dir}")
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        stats, endpoint_cpu = endpoint.stop()
    if stats["undecodable_records"]:
        raise RuntimeError(f"{stats['undecodable_records']} records did not decompress; see {run_dir}")
    with open(log.name) as f:
        shipper_log = f.read()[-2000:]
    if not args.keep_runs:
        shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "events": events,
        "events_received": received_events(mode, stats),
        "source_bytes": meta["bytes"],
        "wall_secs": wall,
        "cpu_secs": cpu,
        "events_per_cpu_sec": events / cpu if cpu > 0 else float("inf"),
        "peak_rss_mib": hwm,
        "requests": stats["requests"],
        "records": stats["records_accepted"],
        "record_bytes": stats["bytes_accepted"],
        "billed_bytes": stats["billed_bytes"],
        "billed_over_source": stats["billed_bytes"] / meta["bytes"],
        "record_over_source": stats["bytes_accepted"] / meta["bytes"],
        "endpoint_cpu_secs": endpoint_cpu,
        "load_before": load_before,
        "load_after": sidecar.loadavg(),
        "shipper_log_tail": shipper_log if received_events(mode, stats) != events else "",
    }


def median_row(runs):
    row = {k: statistics.median([r[k] for r in runs]) for k in runs[0] if k != "shipper_log_tail"}
    row["events_per_cpu_sec_min"] = min(r["events_per_cpu_sec"] for r in runs)
    row["events_per_cpu_sec_max"] = max(r["events_per_cpu_sec"] for r in runs)
    row["runs"] = len(runs)
    return row


def k(x):
    return f"{x / 1000:,.0f}k"


def markdown(results, meta):
    out = [f"Machine: {meta['machine']}; {meta['date']}; {meta['runs']} run(s) per mode, median "
           f"(events/CPU-s min-max in brackets); modes alternated within each repetition; load "
           f"average {meta['load_min']:.1f}-{meta['load_max']:.1f} during the runs.\n"]
    for corpus in meta["corpora"]:
        rows = {r["mode"]: r["median"] for r in results if r["corpus"] == corpus}
        if not rows:
            continue
        any_row = next(iter(rows.values()))
        out.append(f"**{corpus}**: {any_row['events']:,.0f} events, {any_row['source_bytes'] / 1e6:,.1f} MB "
                   f"({any_row['source_bytes'] / any_row['events']:,.0f} B/event)\n")
        out.append("| mode | events / CPU-s [min-max] | peak RSS MiB | billed / source | record / source "
                   "| records | events received | wall s | endpoint CPU-s |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for mode in MODES + LEVEL_MODES:
            if mode not in rows:
                continue
            m = rows[mode]
            out.append(f"| {LABELS[mode]} | {k(m['events_per_cpu_sec'])} [{k(m['events_per_cpu_sec_min'])}-"
                       f"{k(m['events_per_cpu_sec_max'])}] | {m['peak_rss_mib']:.1f} | {m['billed_over_source']:.3f} "
                       f"| {m['record_over_source']:.3f} | {m['records']:,.0f} | {m['events_received']:,.0f} "
                       f"| {m['wall_secs']:.1f} | {m['endpoint_cpu_secs']:.2f} |")
        out.append("")
        ratios = []
        for ft_mode in ["ft-v2-zstd", *LEVEL_MODES, "ft-ndjson-gzip"]:
            ft = rows.get(ft_mode)
            for fb_mode in ("fb-agg-gzip-k8s", "fb-agg-gzip-modify", "fb-agg-gzip-nometa"):
                fb = rows.get(fb_mode)
                if ft and fb:
                    ratios.append(f"| {ft_mode.removeprefix('ft-')} vs {LABELS[fb_mode].removeprefix('Fluent Bit, ')} "
                                  f"| {ft['events_per_cpu_sec'] / fb['events_per_cpu_sec']:.2f}x "
                                  f"| {ft['peak_rss_mib'] / fb['peak_rss_mib']:.2f}x "
                                  f"| {ft['billed_over_source'] / fb['billed_over_source']:.2f}x |")
        ftj, fbd = rows.get("ft-json"), rows.get("fb-default-k8s")
        if ftj and fbd:
            ratios.append(f"| json vs default (1 event/record) "
                          f"| {ftj['events_per_cpu_sec'] / fbd['events_per_cpu_sec']:.2f}x "
                          f"| {ftj['peak_rss_mib'] / fbd['peak_rss_mib']:.2f}x "
                          f"| {ftj['billed_over_source'] / fbd['billed_over_source']:.2f}x |")
        if ratios:
            out.append("| firetail / Fluent Bit | events / CPU-s | peak RSS | billed / source |")
            out.append("|---|---|---|---|")
            out += ratios
            out.append("")
    return "\n".join(out) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin-dir", required=True, help="directory with release firetail and firehose-endpoint")
    p.add_argument("--fluent-bit", default=os.environ.get("FLUENT_BIT"),
                   help="the fluent-bit binary (default: $FLUENT_BIT)")
    p.add_argument("--work-dir", default=os.environ.get("FIRETAIL_BENCH_DIR", "/tmp/firetail-bench") + "/fluentbit")
    p.add_argument("--out-dir", help="write fluentbit.{md,json} here (default: print only)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--scale", type=float, default=1.0,
                   help="events x this (1.0: 1M access, 1M lines200, 200k json1k, 400k stack)")
    p.add_argument("--corpora", default=",".join(CORPORA))
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--settle-secs", type=float, default=1.5,
                   help="a run ends when no event arrived for this long after all had")
    p.add_argument("--timeout-secs", type=float, default=600.0)
    p.add_argument("--keep-runs", action="store_true", help="keep each run's directory (configs, logs)")
    p.add_argument("--print-config", metavar="MODE", help="print the Fluent Bit configuration of MODE and exit")
    args = p.parse_args()
    corpora = sidecar.parse_list(args.corpora, CORPORA)
    modes = sidecar.parse_list(args.modes, MODES + LEVEL_MODES)
    args.firetail = os.path.join(args.bin_dir, "firetail")
    args.endpoint = os.path.join(args.bin_dir, "firehose-endpoint")
    if args.print_config:
        class Fake:
            port, ca = "PORT", "/RUN/tls/ca.pem"
        print(fluent_bit_config(args.print_config, corpora[0], "/DATA/containers", "/tmp/print-config", Fake()))
        return
    if any(m.startswith("fb-") for m in modes) and not (args.fluent_bit and os.access(args.fluent_bit, os.X_OK)):
        sys.exit("set FLUENT_BIT=/path/to/fluent-bit (or --fluent-bit), or choose only ft-* --modes")
    for path in (args.firetail, args.endpoint):
        if not os.access(path, os.X_OK):
            sys.exit(f"{path} not found; build with `cargo build --release -p firetail-sidecar -p firetail-testkit`")
    os.makedirs(args.work_dir, exist_ok=True)
    fb_version = ""
    if args.fluent_bit:
        fb_version = subprocess.run([args.fluent_bit, "--version"], capture_output=True, text=True).stdout.split("\n")[0]

    results, loads = [], []
    for corpus in corpora:
        per_mode = {m: [] for m in modes}
        for i in range(args.runs):
            for mode in modes:
                r = run_once(args, corpus, mode, i)
                loads += [r["load_before"], r["load_after"]]
                per_mode[mode].append(r)
                note = "" if r["events_received"] == r["events"] else f" (received {r['events_received']:,})"
                print(f"{corpus:>8} {mode:<19} run {i + 1}: {r['events_per_cpu_sec']:>10,.0f} ev/CPU-s "
                      f"RSS {r['peak_rss_mib']:6.1f} MiB records {r['records']:>9,} billed/source "
                      f"{r['billed_over_source']:.3f} wall {r['wall_secs']:.1f}s load {r['load_before']:.1f}{note}",
                      flush=True)
        for mode in modes:
            results.append({"corpus": corpus, "mode": mode, "median": median_row(per_mode[mode]),
                            "runs": per_mode[mode]})
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} CPUs, {sidecar.cpu_model()}, Linux {platform.release()}",
        "fluent_bit": fb_version,
        "runs": args.runs,
        "corpora": corpora,
        "load_min": min(loads) if loads else 0.0,
        "load_max": max(loads) if loads else 0.0,
        "args": {k: v for k, v in vars(args).items()},
    }
    md = markdown(results, meta)
    print()
    print(md)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
        with open(os.path.join(args.out_dir, "fluentbit.json"), "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        with open(os.path.join(args.out_dir, "fluentbit.md"), "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
