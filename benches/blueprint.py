#!/usr/bin/env python3
"""AWS's Python CloudWatch-Logs processor blueprint (`kinesis-firehose-cloudwatch-logs-processor`)
on the transform benchmark's events, in CPython on one core, next to `firetail-transform`.
Run it through `benches/blueprint` (which also runs `cargo bench -p firetail-transform
--bench runtime` and puts both side by side).

The blueprint is NOT in this repository (Amazon Software License): give its `lambda_function.py`
with --blueprint or FIRETAIL_BLUEPRINT_PY (docs/BENCHMARKS.md says which copy was measured and
its SHA-256). It is imported unchanged; `boto3` is replaced by an in-process stub whose
`put_record_batch` accepts everything, so a re-ingest costs the blueprint's own work only.

Workloads: the events of lambda-transform/benches/workload.rs (the same ~200-byte app lines,
every tenth a JSON line; the same Fargate pod metadata), as CloudWatch Logs would deliver
them to Firehose (the only input the blueprint understands): gzip DATA_MESSAGE envelopes of
500 log events each, in invocations filled to 1 MB and 6 MB of request JSON, like the
transform benchmark's "sidecar ndjson-gzip (500 events/record)" rows.
- plain: each log event's message is the app line;
- EKS: each message is the whole EKS event (`time`, `stream`, `log`, `file`, `kubernetes{}`).

Timings are CPU time of this process (time.process_time), pinned to one core, per invocation:
`handler` alone, and `invoke` = json.loads of the request body + handler + json.dumps of the
response (what the Python runtime adds around a handler, and what the transform's figure,
timed from the Runtime API's answer to the posted response, includes). The floor is the
same records' bytes without parsing: base64 decode + gunzip + gzip (level 1) + base64 encode.
"""

import argparse
import base64
import contextlib
import gzip
import importlib.util
import io
import json
import os
import re
import statistics
import sys
import time
import types
import zlib

KUBE = ('{"pod_name":"checkout-7d4b9c8f6d-x2x9k","namespace_name":"shop","pod_id":"0b7c9a52-5f3e-4d1c-9a4e-6a1c2d3e4f50",'
        '"labels":{"app.kubernetes.io/name":"checkout","pod-template-hash":"7d4b9c8f6d","tags.datadoghq.com/env":"prod",'
        '"tags.datadoghq.com/service":"checkout","tags.datadoghq.com/version":"2.3.1"},"annotations":{"CapacityProvisioned":'
        '"0.25vCPU 0.5GB","Logging":"LoggingEnabled"},"host":"fargate-ip-10-0-12-34.ec2.internal","container_name":"app",'
        '"docker_id":"5b1d3c0e9f7a4b2d8c6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e","container_image":'
        '"123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:2.3.1"}')
EVENTS_PER_RECORD = 500


def app_line(i):
    """lambda-transform/benches/workload.rs `app_line`, byte for byte."""
    if i % 10 == 0:
        return (f'{{"level":"info","msg":"order placed","order_id":"o-{i:08}","latency_ms":{i % 997},'
                f'"path":"/api/v1/cart/checkout","user":"u-{i % 100_000:06}"}}')
    return (f"2026-11-22T10:00:00.{i % 1000:03}Z INFO  [http-nio-8080-exec-{i % 16}] c.s.checkout.CartController - "
            f"GET /api/v1/cart/{i:08} 200 {i % 250}ms user=u-{i % 100_000:06} trace=4bf92f3577b34da6a3ce929d0e0e{i % 10_000:04}")


def eks_event(i):
    """workload.rs `sidecar_event`: the event with its pod metadata."""
    log = json.dumps(app_line(i), ensure_ascii=False, separators=(",", ":"))
    return (f'{{"time":"2026-11-22T10:00:00.{i % 1000:03}Z","stream":"file","log":{log},'
            f'"file":"/var/log/app/app/app.log","kubernetes":{KUBE}}}')


def invocation(kind, target_bytes):
    """Firehose's request for a CloudWatch Logs source, about `target_bytes` of JSON."""
    records, size, seq, count = [], 200, 0, 0
    while size < target_bytes:
        events = []
        for _ in range(EVENTS_PER_RECORD):
            seq += 1
            message = app_line(seq) if kind == "plain" else eks_event(seq)
            events.append({"id": f"{37_000_000_000_000_000_000_000_000_000_000_000_000_000_000 + seq:056d}",
                           "timestamp": 1_795_341_600_000 + seq // 1000, "message": message})
        envelope = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "/aws/eks/shop/app",
                    "logStream": "checkout-7d4b9c8f6d-x2x9k", "subscriptionFilters": ["firehose"],
                    "logEvents": events}
        data = base64.b64encode(gzip.compress(json.dumps(envelope).encode(), compresslevel=1)).decode()
        record = {"recordId": f"49546986683135544286507457936321625675700192471156785154{len(records):06}",
                  "approximateArrivalTimestamp": 1_795_341_600_000, "data": data}
        size += len(data) + len(record["recordId"]) + 80
        if size > target_bytes and records:
            break
        records.append(record)
        count += len(events)
    return request(records), count


def request(records):
    event = {"invocationId": "bench", "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench",
             "region": "us-east-1", "records": records}
    return json.dumps(event).encode()


def sidecar_invocation(target_bytes):
    """workload.rs `SidecarPackedGzip`: the transform benchmark's records (500 EKS events, gzip level 1)."""
    records, size, seq = [], 200, 0
    while size < target_bytes:
        lines = []
        for _ in range(EVENTS_PER_RECORD):
            seq += 1
            lines.append(eks_event(seq) + "\n")
        data = base64.b64encode(gzip.compress("".join(lines).encode(), compresslevel=1)).decode()
        record = {"recordId": f"49546986683135544286507457936321625675700192471156785154{len(records):06}",
                  "approximateArrivalTimestamp": 1_795_341_600_000, "data": data}
        size += len(data) + len(record["recordId"]) + 80
        if size > target_bytes and records:
            break
        records.append(record)
    return request(records), len(records) * EVENTS_PER_RECORD


class FakeFirehose:
    reingested = 0

    def put_record_batch(self, DeliveryStreamName, Records):  # noqa: N803 (boto3's names)
        FakeFirehose.reingested += len(Records)
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"} for _ in Records]}


def load_blueprint(path):
    boto3 = types.ModuleType("boto3")
    boto3.client = lambda *a, **k: FakeFirehose()
    sys.modules["boto3"] = boto3
    spec = importlib.util.spec_from_file_location("blueprint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cpu_per_call(fn, min_cpu, min_runs):
    times = []
    total = 0.0
    while len(times) < min_runs or total < min_cpu:
        t = time.process_time()
        fn()
        dt = time.process_time() - t
        times.append(dt)
        total += dt
    return statistics.median(times)


def floor(body):
    event = json.loads(body)
    for r in event["records"]:
        raw = zlib.decompress(base64.b64decode(r["data"]), 31)
        c = zlib.compressobj(1, zlib.DEFLATED, 31)
        base64.b64encode(c.compress(raw) + c.flush())


def uncompressed_bytes(body):
    return sum(len(zlib.decompress(base64.b64decode(r["data"]), 31)) for r in json.loads(body)["records"])


def transform_destination(path):
    """The destination the `--bench runtime` run shaped records for (`Destination: ...`)."""
    with open(path) as f:
        for line in f:
            if line.startswith("Destination: "):
                return line.split(":", 1)[1].strip()
    return "datadog"


def transform_rows(path):
    """Rows of `cargo bench -p firetail-transform --bench runtime`'s table, by (records, invocation)."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) >= 9 and cells[1] in ("1 MB", "6 MB"):
                m = re.match(r"([\d.]+)k", cells[6])
                if m:
                    row = {"events_per_sec": float(m.group(1)) * 1000,
                           "ms_wall": float(cells[4]), "mb": float(cells[3])}
                    if len(cells) >= 12:
                        # The transform's own us/event and the Rust byte floor of its records.
                        row["us_per_event"] = float(cells[9])
                        row["floor_us"] = float(cells[10])
                    if len(cells) >= 14:
                        # The floor of the outputs it delivered (their text deflated, their
                        # bytes encoded, the inputs decoded).
                        row["output_floor_us"] = float(cells[12])
                    if len(cells) >= 16:
                        # The same outputs each deflated at the lowest level that writes it as
                        # small as delivered (the transform compresses densely to fit a response).
                        row["as_small_floor_us"] = float(cells[14])
                    rows[(cells[0], cells[1])] = row
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.environ.get("FIRETAIL_BLUEPRINT_PY") or os.path.expanduser(
        "~/.cache/firetail/blueprint/lambda_function.py")
    p.add_argument("--blueprint", default=default, help="the blueprint's lambda_function.py")
    p.add_argument("--transform-output", help="a saved `cargo bench --bench runtime` output to compare with")
    p.add_argument("--cpu", type=int, default=None, help="pin to this core (default: the last one)")
    p.add_argument("--min-cpu", type=float, default=2.0, help="CPU-seconds per measurement, at least")
    args = p.parse_args()
    if not os.path.exists(args.blueprint):
        sys.exit(f"blueprint not found at {args.blueprint}: set FIRETAIL_BLUEPRINT_PY to its lambda_function.py")
    cpu = args.cpu if args.cpu is not None else max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    bp = load_blueprint(args.blueprint)
    with open(args.blueprint, "rb") as f:
        import hashlib
        digest = hashlib.sha256(f.read()).hexdigest()
    print(f"blueprint {args.blueprint} (sha256 {digest[:16]}...), CPython {sys.version.split()[0]}, pinned to CPU {cpu}\n")

    transform = transform_rows(args.transform_output) if args.transform_output else {}
    destination = transform_destination(args.transform_output) if args.transform_output else "-"
    eks_blueprint_us = {}
    print("| events (CloudWatch Logs envelopes, 500 events/record) | invocation | records | events | uncompressed MB "
          "| blueprint handler ms | blueprint invoke ms | blueprint us/event | floor us/event (these records) "
          "| re-ingested by the blueprint | floor us/event (transform's records) | firetail us/event "
          "| blueprint / firetail | firetail / floor |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind in ("plain", "EKS"):
        for label, size in (("1 MB", 1_000_000), ("6 MB", 6_000_000)):
            body, events = invocation(kind, size)
            event = json.loads(body)
            n_records = len(event["records"])
            sink = io.StringIO()
            FakeFirehose.reingested = 0
            with contextlib.redirect_stdout(sink):
                response = bp.handler(json.loads(body), None)
            reingested = FakeFirehose.reingested
            ok = sum(1 for r in response["records"] if r["result"] == "Ok")

            parsed = [None]

            def handler_only():
                with contextlib.redirect_stdout(sink):
                    bp.handler(parsed[0], None)

            def invoke():
                with contextlib.redirect_stdout(sink):
                    json.dumps(bp.handler(json.loads(body), None))

            # The handler mutates nothing in the event it is given, so one parsed copy serves.
            parsed[0] = json.loads(body)
            h = cpu_per_call(handler_only, args.min_cpu, 3)
            inv = cpu_per_call(invoke, args.min_cpu, 3)
            fl = cpu_per_call(lambda: floor(body), args.min_cpu / 2, 3)
            side_body, side_events = sidecar_invocation(size)
            side_fl = cpu_per_call(lambda: floor(side_body), args.min_cpu / 2, 3) * 1e6 / side_events
            mb = uncompressed_bytes(body) / 1e6
            fire = transform.get(("sidecar ndjson-gzip (500 events/record)", label)) if kind == "EKS" else None
            fire_us = 1e6 / fire["events_per_sec"] if fire else None
            bp_us = inv * 1e6 / events
            if kind == "EKS":
                eks_blueprint_us[label] = bp_us
            fl_us = fl * 1e6 / events
            print(f"| {kind} | {label} | {n_records} | {events:,} | {mb:.1f} | {h * 1e3:.0f} | {inv * 1e3:.0f} "
                  f"| {bp_us:.2f} | {fl_us:.2f} | {reingested} of {n_records} records (Ok {ok}) "
                  f"| {side_fl:.2f} | {f'{fire_us:.2f}' if fire_us else '-'} "
                  f"| {f'{bp_us / fire_us:.2f}x' if fire_us else '-'} "
                  f"| {f'{fire_us / side_fl:.2f}x' if fire_us else '-'} |", flush=True)
    if transform:
        print(f"\nfiretail-transform rows (`--bench runtime`, destination {destination}; "
              "us/event = 1e6 / events per CPU-second):\n")
        for (records, label), row in transform.items():
            print(f"- {records}, {label}: {1e6 / row['events_per_sec']:.2f} us/event ({row['events_per_sec'] / 1000:.0f}k events/s per core)")
        print("\nThe EKS events per record format against the blueprint (blueprint: invoke us/event above; floor: the "
              "Rust byte floor of the transform's own records, from `--bench runtime`):\n")
        print("| transform's records | invocation | firetail us/event | blueprint us/event | blueprint / firetail "
              "| floor us/event | firetail / floor | output floor us/event | firetail / output floor "
              "| as-small output floor us/event | firetail / as-small output floor |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name in ("sidecar v2-zstd (500 events/record)", "sidecar ndjson-gzip (500 events/record)"):
            for label in ("1 MB", "6 MB"):
                row, bp_us = transform.get((name, label)), eks_blueprint_us.get(label)
                if not row or bp_us is None:
                    continue
                fire_us = 1e6 / row["events_per_sec"]
                fl, ofl = row.get("floor_us"), row.get("output_floor_us")
                sfl = row.get("as_small_floor_us")
                print(f"| {name} | {label} | {fire_us:.2f} | {bp_us:.2f} | {bp_us / fire_us:.2f}x "
                      f"| {f'{fl:.2f}' if fl else '-'} | {f'{fire_us / fl:.2f}x' if fl else '-'} "
                      f"| {f'{ofl:.2f}' if ofl else '-'} | {f'{fire_us / ofl:.2f}x' if ofl else '-'} "
                      f"| {f'{sfl:.2f}' if sfl else '-'} | {f'{fire_us / sfl:.2f}x' if sfl else '-'} |")

if __name__ == "__main__":
    main()
