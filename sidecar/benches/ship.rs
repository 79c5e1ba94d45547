//! Shipping benchmark: the real `firetail` binary (built with the bench profile) tails files
//! and sends to the testkit's Firehose endpoint on 127.0.0.1 (fault-free, counting only).
//!
//! Measures, per record format:
//! - throughput: a pre-written file of 200-byte lines, from start until every event is
//!   acknowledged; events per CPU-second of the firetail process (utime + stime from /proc);
//! - billed/raw: estimated billed bytes (records rounded up to 5 KiB) over line bytes read, and
//!   over the record bytes actually sent (the cost of the 5 KiB rounding alone);
//! - steady state: peak RSS (VmHWM) while an app writes 10,000 lines/s, then CPU used while
//!   idle.
//!
//! Run: `cargo bench -p firetail-sidecar --bench ship` (`FIRETAIL_BENCH_EVENTS` overrides the
//! throughput event count, default 300,000; `FIRETAIL_BENCH_FORMATS=ndjson,json` picks formats;
//! other `FIRETAIL_*` variables reach the firetail process, e.g. `FIRETAIL_MAX_INFLIGHT_BYTES`).
//! Results go to stdout as a Markdown table.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufWriter, Read as _, Write as _};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_testkit::firehose_endpoint::{EndpointOptions, FaultPlan, FirehoseEndpoint};
use firetail_testkit::procfs::{cpu_secs, peak_rss_mib};
use firetail_testkit::{ChildGuard, free_port};

const LINE_BYTES: usize = 200;

fn line(n: usize) -> String {
    let head =
        format!("2026-11-22T10:00:00.000Z INFO request id={n:09} path=/api/v1/items status=200 ");
    let mut s = head;
    while s.len() < LINE_BYTES {
        s.push_str("lorem ipsum ");
    }
    s.truncate(LINE_BYTES);
    s
}

fn start_firetail(url: &str, root: &Path, format: &str, metrics_port: u16) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
    cmd.envs(firetail_testkit::aws::sdk_env(url))
        .env("FIRETAIL_DELIVERY_STREAM", "bench")
        .env(
            "FIRETAIL_PATHS",
            format!("{}/logs/**/*.log", root.display()),
        )
        .env("FIRETAIL_DATA_DIR", root.join("data"))
        .env("FIRETAIL_PODINFO_DIR", root.join("podinfo"))
        .env("FIRETAIL_METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env("FIRETAIL_RECORD_FORMAT", format)
        .env("FIRETAIL_LOG_FORMAT", "text")
        .env("FIRETAIL_LOG", "warn")
        .env("POD_NAME", "bench-pod")
        .env("POD_NAMESPACE", "bench")
        .env("POD_UID", "0c3f1d2e-0000-4000-8000-000000000000")
        .env("NODE_NAME", "fargate-ip-10-0-0-1.ec2.internal");
    ChildGuard::spawn("firetail", cmd).unwrap()
}

/// `firetail_<name>` from the child's /metrics, 0 if absent.
fn metric(port: u16, name: &str) -> f64 {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return 0.0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let key = format!("firetail_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn wait_events(port: u16, n: usize, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if metric(port, "events_sent_total") as usize >= n {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

struct Row {
    format: &'static str,
    events: usize,
    wall_secs: f64,
    cpu_secs: f64,
    billed_ratio: f64,
    rounding_ratio: f64,
    records: f64,
    peak_rss_throughput: f64,
    peak_rss_steady: f64,
    idle_cpu_pct: f64,
}

fn bench_format(url: &str, format: &'static str, events: usize) -> Row {
    // Throughput: everything is on disk before firetail starts.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();
    {
        let f = std::fs::File::create(dir.path().join("logs/app/app.log")).unwrap();
        let mut w = BufWriter::new(f);
        for n in 0..events {
            writeln!(w, "{}", line(n)).unwrap();
        }
    }
    let port = free_port();
    let start = Instant::now();
    let mut child = start_firetail(url, dir.path(), format, port);
    assert!(
        wait_events(port, events, Duration::from_secs(600)),
        "{format}: not all events acknowledged\n{}",
        child.stderr()
    );
    let wall_secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs(child.pid());
    let billed = metric(port, "estimated_billed_bytes_total");
    let read = metric(port, "read_bytes_total");
    let records = metric(port, "records_sent_total");
    let record_bytes = metric(port, "record_bytes_sent_total");
    let peak_rss_throughput = peak_rss_mib(child.pid());
    child.kill().unwrap();

    // Steady state: 10,000 lines/s for 10 s, then 5 s idle.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();
    let port = free_port();
    let mut child = start_firetail(url, dir.path(), format, port);
    let path = dir.path().join("logs/app/app.log");
    let mut f = std::fs::File::create(&path).unwrap();
    let t0 = Instant::now();
    let mut written = 0usize;
    for tick in 1..=1000u32 {
        // 100 lines every 10 ms.
        let mut chunk = String::with_capacity(100 * (LINE_BYTES + 1));
        for _ in 0..100 {
            chunk.push_str(&line(written));
            chunk.push('\n');
            written += 1;
        }
        f.write_all(chunk.as_bytes()).unwrap();
        let due = t0 + Duration::from_millis(10) * tick;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    assert!(
        wait_events(port, written, Duration::from_secs(120)),
        "{format}: steady state lagged"
    );
    let peak_rss_steady = peak_rss_mib(child.pid());
    std::thread::sleep(Duration::from_millis(500));
    let idle_start = cpu_secs(child.pid());
    std::thread::sleep(Duration::from_secs(5));
    let idle_cpu_pct = (cpu_secs(child.pid()) - idle_start) / 5.0 * 100.0;
    child.kill().unwrap();

    Row {
        format,
        events,
        wall_secs,
        cpu_secs: cpu,
        billed_ratio: billed / read,
        rounding_ratio: billed / record_bytes,
        records,
        peak_rss_throughput,
        peak_rss_steady,
        idle_cpu_pct,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let events: usize = std::env::var("FIRETAIL_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let endpoint = rt
        .block_on(FirehoseEndpoint::start_with(EndpointOptions {
            plan: FaultPlan::none(),
            keep_records: false,
            ..EndpointOptions::default()
        }))
        .unwrap();
    let url = endpoint.url();
    let mut rows = Vec::new();
    let only = std::env::var("FIRETAIL_BENCH_FORMATS").unwrap_or_default();
    for format in ["ndjson-gzip", "ndjson", "json"] {
        if only.is_empty() || only.split(',').any(|f| f == format) {
            rows.push(bench_format(&url, format, events));
        }
    }
    println!(
        "| format | events | wall s | CPU s | events/CPU-s | records | billed/line bytes | billed/record bytes | peak RSS (burst) MiB | peak RSS (10k/s) MiB | idle CPU % |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.3} | {:.3} | {:.1} | {:.1} | {:.2} |",
            r.format,
            r.events,
            r.wall_secs,
            r.cpu_secs,
            r.events as f64 / r.cpu_secs.max(0.01),
            r.records,
            r.billed_ratio,
            r.rounding_ratio,
            r.peak_rss_throughput,
            r.peak_rss_steady,
            r.idle_cpu_pct
        );
    }
    let s = endpoint.stats();
    println!(
        "\nendpoint: {} requests, {} records, {} bytes, {} invalid calls",
        s.requests, s.records_accepted, s.bytes_accepted, s.invalid_calls
    );
}
