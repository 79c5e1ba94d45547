//! Tail engine throughput: files on local disk → engine → a consumer that acks every event
//! (no network). Prints lines/s, bytes/s, lines per CPU-second and peak RSS per case.
//!
//! Each case runs in a child process (this binary re-executed with `FIRETAIL_BENCH_CASE`) so
//! that peak RSS (`VmHWM`) belongs to that case alone; the parent writes the input files first,
//! so generating them is not measured.
//!
//! `cargo bench -p firetail-sidecar --bench tail`
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_tail::{self as tail, DrainMode, MultilineConfig, MultilineMode, TailConfig};

/// Lines per case (override with `FIRETAIL_BENCH_TOTAL_LINES`).
const TOTAL_LINES: usize = 2_000_000;
const LINE_BYTES: usize = 200;

#[derive(Debug, Clone, Copy)]
struct Case {
    name: &'static str,
    files: usize,
    traces: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "1 file, 200-byte lines",
        files: 1,
        traces: false,
    },
    Case {
        name: "1,000 files, 200-byte lines",
        files: 1000,
        traces: false,
    },
    Case {
        name: "1 file, stack-trace mix (java multiline)",
        files: 1,
        traces: true,
    },
    Case {
        name: "1,000 files, stack-trace mix (java multiline)",
        files: 1000,
        traces: true,
    },
];

/// What a generated input holds.
#[derive(Debug, Default, Clone, Copy)]
struct Input {
    lines: u64,
    bytes: u64,
    events: u64,
}

fn plain_line(out: &mut String, i: usize) {
    let start = out.len();
    write!(
        out,
        "2026-11-22T23:00:00.{:06}Z INFO request handled id={i} path=/api/v1/items status=200 ",
        i % 1_000_000
    )
    .unwrap();
    while out.len() - start < LINE_BYTES - 1 {
        out.push('x');
    }
    out.push('\n');
}

/// One Java exception: 1 header line, 10 frames, a cause and 2 more frames (14 lines).
fn trace(out: &mut String, i: usize) {
    writeln!(
        out,
        "2026-11-22T23:00:00Z ERROR request {i} failed: java.lang.IllegalStateException: boom"
    )
    .unwrap();
    for f in 0..10 {
        writeln!(
            out,
            "\tat com.example.service.Handler{f}.handle(Handler{f}.java:{})",
            100 + f
        )
        .unwrap();
    }
    out.push_str("Caused by: java.io.IOException: connection reset\n");
    out.push_str("\tat com.example.net.Client.read(Client.java:77)\n");
    out.push_str("\t... 12 more\n");
}

fn total_lines() -> usize {
    std::env::var("FIRETAIL_BENCH_TOTAL_LINES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TOTAL_LINES)
}

fn generate(dir: &Path, case: Case) -> Input {
    let root = dir.join("app");
    let per_file = total_lines() / case.files;
    let mut input = Input::default();
    for f in 0..case.files {
        // `<root>/<container>/x.log`, ten containers.
        let sub = root.join(format!("c{}", f % 10));
        fs::create_dir_all(&sub).unwrap();
        let mut w = BufWriter::new(fs::File::create(sub.join(format!("f{f}.log"))).unwrap());
        let mut text = String::new();
        let mut lines = 0;
        let mut i = 0;
        while lines < per_file {
            text.clear();
            if case.traces && i % 10 == 9 {
                trace(&mut text, i);
                lines += 14;
            } else {
                plain_line(&mut text, i);
                lines += 1;
            }
            input.events += 1;
            input.bytes += text.len() as u64;
            w.write_all(text.as_bytes()).unwrap();
            i += 1;
        }
        input.lines += lines as u64;
        w.flush().unwrap();
    }
    input
}

fn proc_status(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    // Linux reports in USER_HZ, which is 100 on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

fn run_case(root: PathBuf, case: Case, input: Input, budget: u64) {
    let mut cfg = TailConfig {
        paths: vec![format!("{}/**/*.log", root.display())],
        data_dir: root.join(".firetail"),
        max_inflight_bytes: budget,
        ..TailConfig::default()
    };
    if case.traces {
        cfg.multiline = Some(MultilineConfig::new(MultilineMode::Java));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let (events, bytes) = rt.block_on(async move {
        let (handle, mut stream) = tail::start(cfg).unwrap();
        let acker = handle.acker();
        let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof {
            deadline: Instant::now() + Duration::from_secs(600),
        }));
        let (mut events, mut bytes) = (0u64, 0u64);
        while let Some(batch) = stream.recv_batch().await {
            for ev in &batch {
                events += 1;
                bytes += ev.consumed_bytes();
                acker.ack_event(ev);
            }
        }
        let report = drain.await.unwrap();
        assert!(report.checkpoint_saved, "{report:?}");
        (events, bytes)
    });
    let wall = t0.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    assert_eq!(events, input.events, "every event delivered");
    assert_eq!(bytes, input.bytes, "every byte delivered");
    let secs = wall.as_secs_f64();
    println!(
        "| {} | {} MiB | {} | {:.0} | {:.1} | {:.0} | {:.2} | {:.1} |",
        case.name,
        budget >> 20,
        input.lines,
        input.lines as f64 / secs,
        input.bytes as f64 / secs / 1e6,
        input.lines as f64 / cpu.as_secs_f64().max(0.01),
        cpu.as_secs_f64() / secs,
        proc_status("VmHWM:") as f64 / 1024.0,
    );
}

fn main() {
    if let Ok(index) = std::env::var("FIRETAIL_BENCH_CASE") {
        let case = CASES[index.parse::<usize>().unwrap()];
        let root = PathBuf::from(std::env::var("FIRETAIL_BENCH_ROOT").unwrap());
        let input = Input {
            lines: std::env::var("FIRETAIL_BENCH_LINES")
                .unwrap()
                .parse()
                .unwrap(),
            bytes: std::env::var("FIRETAIL_BENCH_BYTES")
                .unwrap()
                .parse()
                .unwrap(),
            events: std::env::var("FIRETAIL_BENCH_EVENTS")
                .unwrap()
                .parse()
                .unwrap(),
        };
        let budget = std::env::var("FIRETAIL_BENCH_BUDGET")
            .unwrap()
            .parse()
            .unwrap();
        run_case(root, case, input, budget);
        return;
    }
    // `cargo bench` passes `--bench`; anything else is ignored.
    println!(
        "tail engine: files -> engine -> acking consumer, {} lines per case, release build",
        total_lines()
    );
    println!(
        "| case | in-flight budget | lines | lines/s (wall) | MB/s (wall) | lines per CPU-second | CPU cores used | peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (index, case) in CASES.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let input = generate(dir.path(), *case);
        // The default budget, and a small one: in-flight events dominate memory.
        for budget in [TailConfig::default().max_inflight_bytes, 1 << 20] {
            let status = Command::new(std::env::current_exe().unwrap())
                .env("FIRETAIL_BENCH_BUDGET", budget.to_string())
                .env("FIRETAIL_BENCH_CASE", index.to_string())
                .env("FIRETAIL_BENCH_ROOT", dir.path().join("app"))
                .env("FIRETAIL_BENCH_LINES", input.lines.to_string())
                .env("FIRETAIL_BENCH_BYTES", input.bytes.to_string())
                .env("FIRETAIL_BENCH_EVENTS", input.events.to_string())
                .status()
                .unwrap();
            assert!(status.success(), "case {} failed", case.name);
            // Each run starts from the beginning again.
            let _ = fs::remove_dir_all(dir.path().join("app/.firetail"));
        }
    }
}
