//! The real `firetail` binary against the fault-injecting Firehose endpoint on 127.0.0.1:
//! killed mid-stream (SIGKILL) and restarted, then stopped with SIGTERM while the app is still
//! writing. Nothing may be lost; duplicates are bounded by what was in flight.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_testkit::{ChildGuard, FaultPlan, FirehoseEndpoint};

mod ship_common;
use ship_common::{counts, decode};

const MAX_INFLIGHT_BYTES: u64 = 32 * 1024;
const CHECKPOINT_INTERVAL_MS: u64 = 100;
const ENDPOINT_DELAY: Duration = Duration::from_millis(50);

fn start_firetail(endpoint: &FirehoseEndpoint, root: &Path) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
    cmd.envs(firetail_testkit::aws::sdk_env(&endpoint.url()))
        .env("FIRETAIL_DELIVERY_STREAM", "logs")
        .env(
            "FIRETAIL_PATHS",
            format!("{}/logs/**/*.log", root.display()),
        )
        .env("FIRETAIL_DATA_DIR", root.join("data"))
        .env("FIRETAIL_PODINFO_DIR", root.join("podinfo"))
        .env("FIRETAIL_METRICS_ADDR", "127.0.0.1:0")
        .env("FIRETAIL_RECORD_FORMAT", "ndjson-gzip")
        .env("FIRETAIL_FLUSH_INTERVAL_MS", "50")
        .env("FIRETAIL_POLL_INTERVAL_MS", "100")
        .env(
            "FIRETAIL_CHECKPOINT_INTERVAL_MS",
            CHECKPOINT_INTERVAL_MS.to_string(),
        )
        .env(
            "FIRETAIL_MAX_INFLIGHT_BYTES",
            MAX_INFLIGHT_BYTES.to_string(),
        )
        .env("FIRETAIL_RETRY_BASE_MS", "10")
        .env("FIRETAIL_RETRY_MAX_MS", "200")
        .env("FIRETAIL_DRAIN_QUIET_MS", "1500")
        .env("FIRETAIL_DRAIN_TIMEOUT_SECS", "60")
        .env("FIRETAIL_LOG_FORMAT", "text")
        .env("POD_NAME", "web-1")
        .env("POD_NAMESPACE", "shop");
    ChildGuard::spawn("firetail", cmd).unwrap()
}

fn line(n: usize) -> String {
    format!("event {n:06} {}", "z".repeat(40))
}

fn write_range(path: &Path, range: std::ops::Range<usize>, pause_every: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in range {
        writeln!(f, "{}", line(n)).unwrap();
        if n % pause_every == 0 {
            f.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_restart_then_sigterm_while_writing_loses_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Every call answers late, so acknowledgements trail reading and data is in flight when
    // the process is killed.
    let endpoint = rt
        .block_on(FirehoseEndpoint::start(FaultPlan {
            delay_ratio: 1.0,
            delay: ENDPOINT_DELAY,
            ..FaultPlan::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("logs/app");
    std::fs::create_dir_all(&app).unwrap();
    let path = app.join("app.log");
    let total = 24_000;
    let first = 12_000;

    // Run 1: the app writes the first half; kill -9 once about a third has been delivered.
    let mut run1 = start_firetail(&endpoint, dir.path());
    write_range(&path, 0..first, 500);
    let accepted_events = || -> usize { endpoint.accepted().iter().map(|r| decode(r).len()).sum() };
    wait_for("a third delivered", Duration::from_secs(60), || {
        accepted_events() >= first / 3
    });
    run1.kill().unwrap();
    let after_kill = accepted_events();
    assert!(
        after_kill < first,
        "killed before everything was delivered ({after_kill})"
    );

    // Run 2 resumes from the checkpoint; the app writes the rest and is still writing when
    // SIGTERM arrives.
    let mut run2 = start_firetail(&endpoint, dir.path());
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || write_range(&writer_path, first..total, 200));
    std::thread::sleep(Duration::from_millis(300));
    run2.terminate().unwrap();
    writer.join().unwrap();
    let status = run2
        .wait_timeout(Duration::from_secs(90))
        .unwrap()
        .expect("firetail exits after draining");
    assert!(
        status.success(),
        "exit status {status:?}\n{}",
        run2.stderr()
    );
    assert!(
        run2.stderr()
            .contains("drained; everything read was delivered"),
        "{}",
        run2.stderr()
    );

    let events: Vec<serde_json::Value> =
        endpoint.accepted().iter().flat_map(|r| decode(r)).collect();
    let got = counts(&events);
    let expected: BTreeMap<String, usize> = (0..total).map(|n| (line(n), 1)).collect();
    let missing: Vec<&String> = expected.keys().filter(|k| !got.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} lines lost, first {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(got.len(), total, "nothing but the written lines arrived");

    // Duplicates come only from run 1's unacknowledged or not-yet-checkpointed tail: at most
    // the in-flight budget, plus what could be acknowledged in one checkpoint interval (one
    // budget per endpoint round trip) and a round trip of slack.
    let line_bytes = line(0).len() as u64 + 1;
    let duplicate_bytes: u64 = got.values().map(|n| (*n as u64 - 1) * line_bytes).sum();
    let round_trips = (CHECKPOINT_INTERVAL_MS + 150) / ENDPOINT_DELAY.as_millis() as u64;
    let bound = MAX_INFLIGHT_BYTES * (1 + round_trips);
    eprintln!(
        "delivered before kill: {after_kill} events; duplicate bytes: {duplicate_bytes} (bound {bound})"
    );
    assert!(
        duplicate_bytes <= bound,
        "{duplicate_bytes} duplicate bytes > bound {bound} (written {} bytes)",
        total as u64 * line_bytes
    );
    let duplicated: Vec<usize> = (0..total)
        .filter(|n| got.get(&line(*n)) == Some(&2))
        .collect();
    if let (Some(lo), Some(hi)) = (duplicated.first(), duplicated.last()) {
        assert_eq!(
            duplicated.len(),
            hi - lo + 1,
            "duplicates are one contiguous range"
        );
        assert!(*hi < first, "only run 1's lines can be duplicated");
    }
    assert!(got.values().all(|n| *n <= 2));
}
