#!/usr/bin/env python3
"""The stdout source's benchmark: the release `firetail` follows one container's log from the
Kubernetes API stand-in (`kube-api-stand-in`, plain HTTP on 127.0.0.1: chunked follow stream with
RFC3339Nano timestamps, as the kubelet serves it) and ships it to the Firehose endpoint stand-in
(`firehose-endpoint --discard --count-events`). Measures events per CPU-second of firetail
(utime + stime of all its threads, /proc/<pid>/stat), its peak RSS (VmHWM), and billed bytes per
line next to Fargate's log router, which sends one record per line (each billed rounded up to
5 KB: 5,120 bytes a line).

    cargo build --release -p firetail-sidecar -p firetail-testkit
    python3 benches/stdout.py [--lines 500000] [--line-bytes 200] [--format v2-zstd] [--runs 3]

Prints a Markdown table (docs/BENCHMARKS.md, "The stdout source").
"""
import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.request

ROUTER_BILLED_PER_LINE = 5120


def target_dir():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(root, "target"))


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start(cmd, **kw):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, **kw)
    line = proc.stdout.readline().strip()
    if not line.startswith("listening "):
        raise RuntimeError(f"{cmd[0]} did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def stats(url):
    with urllib.request.urlopen(url + "/stats", timeout=5) as r:
        return json.loads(r.read())


def run_once(bins, args):
    with tempfile.TemporaryDirectory() as tmp:
        kube, kube_url = start([bins["kube"], "--lines", str(args.lines), "--line-bytes", str(args.line_bytes)])
        endpoint, endpoint_url = start([bins["endpoint"], "--discard", "--count-events"])
        token = os.path.join(tmp, "token")
        with open(token, "w") as f:
            f.write("bench-token")
        env = dict(
            os.environ,
            AWS_ENDPOINT_URL_FIREHOSE=endpoint_url,
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
            POD_NAME="checkout-7d4b9c8f6d-x2x9k",
            POD_NAMESPACE="shop",
            POD_UID="0b7c9a52-5f3e-4d1c-9a4e-6a1c2d3e4f50",
            NODE_NAME="fargate-ip-10-0-12-34.ec2.internal",
            FIRETAIL_DELIVERY_STREAM="bench",
            FIRETAIL_PATHS=os.path.join(tmp, "logs/**/*.log"),
            FIRETAIL_DATA_DIR=os.path.join(tmp, "data"),
            FIRETAIL_PODINFO_DIR=os.path.join(tmp, "podinfo"),
            FIRETAIL_RECORD_FORMAT=args.format,
            FIRETAIL_METRICS_ADDR="127.0.0.1:0",
            FIRETAIL_KUBERNETES_API="auto",
            FIRETAIL_KUBERNETES_API_URL=kube_url,
            FIRETAIL_KUBERNETES_TOKEN_FILE=token,
            FIRETAIL_STDOUT_CONTAINERS="app",
            FIRETAIL_LOG="warn",
        )
        started = time.monotonic()
        firetail = subprocess.Popen([bins["firetail"]], env=env, stderr=subprocess.DEVNULL)
        try:
            last = -1
            while True:
                s = stats(endpoint_url)
                # Counted newlines may include a v2 record's header line: also wait until the
                # count stops moving.
                if s.get("events", 0) >= args.lines and s.get("events") == last:
                    break
                last = s.get("events", 0)
                if firetail.poll() is not None:
                    raise RuntimeError(f"firetail exited early: {firetail.returncode}")
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"timed out at {s}")
                time.sleep(0.2)
            wall = time.monotonic() - started
            cpu = cpu_secs(firetail.pid)
            rss = peak_rss_kib(firetail.pid)
            s = stats(endpoint_url)
        finally:
            firetail.send_signal(signal.SIGTERM)
            firetail.wait(timeout=60)
            for p in (kube, endpoint):
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=30)
        return {
            "wall_secs": wall,
            "cpu_secs": cpu,
            "events_per_cpu_sec": args.lines / cpu if cpu else float("inf"),
            "peak_rss_mib": rss / 1024,
            "records": s.get("records_accepted", 0),
            "billed_bytes": s.get("billed_bytes", 0),
            "billed_per_line": s.get("billed_bytes", 0) / args.lines,
        }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lines", type=int, default=500_000)
    p.add_argument("--line-bytes", type=int, default=200)
    p.add_argument("--format", default="v2-zstd")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--bin-dir", help="where the binaries are (default: <target dir>/release)")
    args = p.parse_args()
    release = args.bin_dir or os.path.join(target_dir(), "release")
    bins = {
        "firetail": os.path.join(release, "firetail"),
        "kube": os.path.join(release, "kube-api-stand-in"),
        "endpoint": os.path.join(release, "firehose-endpoint"),
    }
    for b in bins.values():
        if not os.access(b, os.X_OK):
            raise SystemExit(f"{b} missing: cargo build --release -p firetail-sidecar -p firetail-testkit")
    runs = [run_once(bins, args) for _ in range(args.runs)]
    runs.sort(key=lambda r: r["events_per_cpu_sec"])
    med = runs[len(runs) // 2]
    print(f"{args.lines:,} lines of {args.line_bytes} bytes, format {args.format}, median of {args.runs} runs\n")
    print("| events per CPU-second | CPU s | wall s | peak RSS MiB | records | billed bytes per line | router (1 record per line) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    ratio = ROUTER_BILLED_PER_LINE / med["billed_per_line"] if med["billed_per_line"] else float("inf")
    print(
        f"| {med['events_per_cpu_sec']:,.0f} | {med['cpu_secs']:.2f} | {med['wall_secs']:.2f} | "
        f"{med['peak_rss_mib']:.1f} | {med['records']:,} | {med['billed_per_line']:.1f} | "
        f"{ROUTER_BILLED_PER_LINE:,} | {ratio:,.0f}x |"
    )
    print("\nall runs: " + json.dumps(runs))


if __name__ == "__main__":
    main()
