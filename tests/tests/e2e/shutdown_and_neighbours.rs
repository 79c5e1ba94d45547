//! The real `firetail` binary where a drain cannot finish and where a neighbour misbehaves:
//!
//! - Firehose (the FAULT-INJECTING endpoint) hangs when SIGTERM arrives: the process must exit
//!   with the drain-incomplete status, name every file with its unread and unacknowledged
//!   bytes, show them in the metrics while draining, and lose nothing once restarted against
//!   a working endpoint.
//! - Hundreds of idle connections to the metrics port, under a small descriptor limit
//!   (`ulimit -n`, as a container runtime sets it): tailing must go on, new files included, the
//!   log must not flood, and the server must answer again once the idle ones timed out.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_sidecar::drain::EXIT_DRAIN_INCOMPLETE;
use firetail_testkit::route::{FakePod, PodDirs, sidecar_command};
use firetail_testkit::{ChildGuard, FaultPlan, FirehoseEndpoint, workspace_bin};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::PATIENCE;
use crate::process::{append, line, start_sidecar, stream_tally, through_transform};

/// Waits until every numbered line of `expected` reached the endpoint.
async fn wait_delivered(endpoint: &FirehoseEndpoint, expected: &[u64], sidecar: &ChildGuard) {
    let start = Instant::now();
    loop {
        let missing = stream_tally(&endpoint.accepted()).missing(expected.iter().copied());
        if missing.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{} lines not delivered, first {:?}\n{}",
            missing.len(),
            missing.first(),
            tail_of(&sidecar.stderr())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The last 4 KiB of a log, for failure messages.
fn tail_of(log: &str) -> &str {
    let mut from = log.len().saturating_sub(4096);
    while !log.is_char_boundary(from) {
        from += 1;
    }
    &log[from..]
}

/// The log without terminal colour codes (the text format may colour field names).
pub(crate) fn strip_ansi(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `key=value` of a text-format log line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let at = line.find(&format!(" {key}="))? + key.len() + 2;
    line[at..].split_whitespace().next()
}

/// Where the sidecar serves `/metrics` (it binds port 0 and logs the address).
pub(crate) async fn metrics_addr(sidecar: &ChildGuard) -> SocketAddr {
    let start = Instant::now();
    loop {
        let log = strip_ansi(&sidecar.stderr());
        if let Some(addr) = log
            .lines()
            .find(|l| l.contains("serving /metrics"))
            .and_then(|l| field(l, "addr"))
        {
            return addr.parse().unwrap();
        }
        assert!(start.elapsed() < PATIENCE, "no metrics address:\n{log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `GET path`, or `None` if the server did not answer within 3 s.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}

/// The value of an unlabelled metric in an exposition.
fn metric(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Bytes of the numbered lines `range` as [`append`] wrote them with `pad`.
fn bytes_of(range: std::ops::Range<u64>, pad: usize) -> u64 {
    range.map(|n| line(n, pad).len() as u64 + 1).sum()
}

/// The sidecar's "drain left data in this file" lines: path → (unread, unacked).
fn files_left(log: &str) -> BTreeMap<PathBuf, (u64, u64)> {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains("drain left data in this file"))
        .map(|l| {
            let n = |key| field(l, key).and_then(|v| v.parse::<u64>().ok()).unwrap();
            (
                PathBuf::from(field(l, "path").unwrap()),
                (n("unread_bytes"), n("unacked_bytes")),
            )
        })
        .collect()
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

const PAD: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_off_by_a_hanging_endpoint_exits_non_zero_names_what_it_left_and_loses_nothing()
{
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(tmp.path());
    let app = dirs.container("app").join("app.log");
    let worker = dirs.container("worker").join("app.log");
    // A budget far below what is written after the hang, so reading stops at it: the drain
    // leaves bytes unread (beyond the budget) and unacknowledged (within it).
    let extra = [
        ("FIRETAIL_MAX_INFLIGHT_BYTES", "32768"),
        ("FIRETAIL_DRAIN_TIMEOUT_SECS", "4"),
        ("FIRETAIL_REQUEST_TIMEOUT_SECS", "2"),
    ];
    append(&app, 0..1000, PAD);
    let mut run1 = start_sidecar(&endpoint.url(), "logs", &dirs, "ndjson-gzip", &extra);
    let first: Vec<u64> = (0..1000).collect();
    wait_delivered(&endpoint, &first, &run1).await;
    // Firehose stops answering (each call hangs for an hour); the app writes on.
    endpoint.set_plan(FaultPlan {
        delay_ratio: 1.0,
        delay: Duration::from_secs(3600),
        ..FaultPlan::default()
    });
    append(&app, 1000..4000, PAD);
    append(&worker, 4000..7000, PAD);
    let addr = metrics_addr(&run1).await;
    let start = Instant::now();
    while get(addr, "/metrics")
        .await
        .and_then(|m| metric(&m, "firetail_in_flight_bytes"))
        .is_none_or(|v| v < 1.0)
    {
        assert!(start.elapsed() < PATIENCE, "nothing sent after the hang");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    run1.terminate().unwrap();
    // While the drain runs, its gauges show what is still to do.
    let mut seen = None;
    while run1.try_wait().unwrap().is_none() {
        if let Some(m) = get(addr, "/metrics").await {
            let unread = metric(&m, "firetail_drain_unread_bytes").unwrap_or(0.0);
            let unacked = metric(&m, "firetail_drain_unacked_bytes").unwrap_or(0.0);
            if unread > 0.0 && unacked > 0.0 {
                seen = Some((unread, unacked));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = run1.wait_timeout(PATIENCE).unwrap().unwrap();
    let log = run1.stderr();
    assert_eq!(
        status.code(),
        Some(i32::from(EXIT_DRAIN_INCOMPLETE)),
        "{status:?}\n{}",
        tail_of(&log)
    );
    let (unread, unacked) = seen.expect("the drain gauges showed unread and unacked bytes");
    eprintln!("while draining: drain_unread_bytes {unread}, drain_unacked_bytes {unacked}");
    // Every file is named with what is left in it: all of the worker's file (nothing of it
    // was acknowledged), and the app's file after its first 1,000 lines.
    let left = files_left(&log);
    assert_eq!(
        left.keys().collect::<Vec<_>>(),
        [&app, &worker],
        "{}",
        tail_of(&log)
    );
    let (app_unread, app_unacked) = left[&app];
    let (worker_unread, worker_unacked) = left[&worker];
    assert_eq!(
        app_unread + app_unacked,
        size(&app) - bytes_of(0..1000, PAD)
    );
    assert_eq!(worker_unread + worker_unacked, size(&worker));
    assert!(app_unread + worker_unread > 0 && app_unacked + worker_unacked > 0);
    eprintln!(
        "left: app unread {app_unread} unacked {app_unacked}; worker unread {worker_unread} unacked {worker_unacked}"
    );
    let summary = strip_ansi(&log);
    let summary = summary
        .lines()
        .find(|l| l.contains("drain ended before everything was delivered"))
        .unwrap_or_else(|| panic!("no summary:\n{}", tail_of(&log)));
    assert_eq!(
        field(summary, "unread_bytes"),
        Some((app_unread + worker_unread).to_string().as_str())
    );
    assert_eq!(field(summary, "outcome"), Some("deadline"));

    // Firehose answers again; the next start delivers the rest, each line once.
    endpoint.set_plan(FaultPlan::none());
    let mut run2 = start_sidecar(&endpoint.url(), "logs", &dirs, "ndjson-gzip", &extra);
    let all: Vec<u64> = (0..7000).collect();
    wait_delivered(&endpoint, &all, &run2).await;
    run2.terminate().unwrap();
    let status = run2.wait_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "{}", tail_of(&run2.stderr()));
    assert!(
        run2.stderr()
            .contains("drained; everything read was delivered")
    );
    let records = endpoint.accepted();
    stream_tally(&records).exactly_once(0..7000).unwrap();
    let (tally, _) = through_transform(
        "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs",
        &endpoint.url(),
        &records,
    )
    .await;
    tally.exactly_once(0..7000).unwrap();
}

/// Descriptors the process has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

const NOFILE: usize = 256;
const IDLE_CONNECTIONS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_metrics_connections_neither_starve_tailing_of_descriptors_nor_flood_the_log() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(tmp.path());
    append(&dirs.container("app").join("app.log"), 0..100, 20);
    // The binary under a small descriptor limit, set by the shell it is exec'ed from.
    let plain = sidecar_command(
        &workspace_bin("firetail"),
        &endpoint.url(),
        "logs",
        &FakePod::default(),
        &dirs,
        "ndjson",
        &[],
    )
    .unwrap();
    let mut limited = Command::new("sh");
    limited
        .arg("-c")
        .arg(format!("ulimit -n {NOFILE} && exec \"$0\""))
        .arg(plain.get_program());
    for (k, v) in plain.get_envs() {
        match v {
            Some(v) => limited.env(k, v),
            None => limited.env_remove(k),
        };
    }
    let mut sidecar = ChildGuard::spawn("firetail", limited).unwrap();
    let pid = sidecar.pid();
    let first: Vec<u64> = (0..100).collect();
    wait_delivered(&endpoint, &first, &sidecar).await;
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert!(
        nofile.split_whitespace().nth(3) == Some(&NOFILE.to_string()),
        "{nofile}"
    );
    let addr = metrics_addr(&sidecar).await;
    let fds_before = open_fds(pid);
    let log_before = sidecar.stderr_len();

    // Far more idle connections than descriptors: none ever sends a byte. A server that
    // stopped accepting lets the listen queue fill up, and connecting then times out.
    let mut idle = Vec::with_capacity(IDLE_CONNECTIONS);
    for _ in 0..IDLE_CONNECTIONS {
        match tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
        {
            Ok(Ok(stream)) => idle.push(stream),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    let opened = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fds_idle = open_fds(pid);
    let log_bytes = sidecar.stderr_len() - log_before;
    eprintln!(
        "descriptors: {fds_before} before, {fds_idle} with {} idle connections (limit {NOFILE}); log grew {log_bytes} bytes in 1 s",
        idle.len()
    );
    // Warnings are rate-limited (an accept error retried at once logged ~100 MB/s).
    if log_bytes >= 64 * 1024 {
        let _ = sidecar.kill();
        // Keep the failure report (which prints the child's log) readable.
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .open(sidecar.log_dir().join("stderr"))
            .and_then(|f| f.set_len(16 * 1024));
        panic!("the log grew {log_bytes} bytes in 1 s");
    }
    assert_eq!(
        idle.len(),
        IDLE_CONNECTIONS,
        "the listener stopped accepting"
    );
    assert!(
        fds_idle < NOFILE / 2,
        "{fds_idle} descriptors open with idle connections"
    );

    // New files appear while the idle connections are held: they are tailed.
    let mut expected = first.clone();
    for c in 0..20u64 {
        let from = 1000 + c * 100;
        append(
            &dirs.container(&format!("new-{c}")).join("app.log"),
            from..from + 100,
            20,
        );
        expected.extend(from..from + 100);
    }
    wait_delivered(&endpoint, &expected, &sidecar).await;

    // Once the idle connections timed out, a fresh scrape is answered.
    tokio::time::sleep(Duration::from_secs(6).saturating_sub(opened.elapsed())).await;
    let metrics = get(addr, "/metrics")
        .await
        .expect("a fresh scrape is answered");
    let refused = metric(&metrics, "firetail_http_connections_refused_total").unwrap();
    let timed_out = metric(&metrics, "firetail_http_connections_timed_out_total").unwrap();
    eprintln!("refused {refused}, timed out {timed_out}");
    assert!(
        refused + timed_out >= IDLE_CONNECTIONS as f64,
        "{refused} + {timed_out}"
    );
    let log = strip_ansi(&sidecar.stderr());
    let warnings = log
        .lines()
        .filter(|l| l.contains("metrics connection refused"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} refusal warnings (one per 10 s)"
    );
    drop(idle);

    sidecar.terminate().unwrap();
    let status = sidecar.wait_timeout(PATIENCE).unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "{}", tail_of(&sidecar.stderr()));
    stream_tally(&endpoint.accepted())
        .exactly_once(expected.iter().copied())
        .unwrap();
}
