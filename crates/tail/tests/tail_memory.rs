//! The memory model: every byte the engine holds — emitted and unacknowledged, or held in a
//! framer as an unterminated line — is charged to one budget (`max_inflight_bytes`), and
//! reading stops when it is full. The hostile case of issue 13: 1,500 files each holding an
//! unterminated 250 KiB line and a consumer that never acknowledges (Firehose down). Without
//! the charge, every framer held its line and the quiet flush emitted them all: 375 MB.
//!
//! Its own test binary: it opens 1,500 files and writes 375 MB, which would slow unrelated
//! tests sharing a binary.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::{Duration, Instant};

use firetail_tail::{self as tail, DEFAULT_MAX_INFLIGHT_BYTES, TailConfig};

const FILES: usize = 1_500;
const LINE_BYTES: usize = 250 * 1024;
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unterminated_lines_in_1500_files_never_pass_the_budget_while_nothing_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    fs::create_dir_all(&root).unwrap();
    let line = vec![b'x'; LINE_BYTES];
    for i in 0..FILES {
        fs::write(root.join(format!("f{i:04}.log")), &line).unwrap();
    }
    let budget = DEFAULT_MAX_INFLIGHT_BYTES;
    let cfg = TailConfig {
        paths: vec![format!("{}/*.log", root.display())],
        data_dir: root.join(".firetail"),
        // Short, so the timeout flush of partial lines runs many times during the test: it
        // must respect the budget too.
        partial_line_timeout: Duration::from_millis(200),
        poll_interval: Duration::from_millis(100),
        max_inflight_bytes: budget,
        ..TailConfig::default()
    };
    let (handle, mut events) = tail::start(cfg).unwrap();
    // The consumer takes events and never acknowledges them, like a sidecar whose Firehose
    // is down.
    let mut held_events = Vec::new();
    let mut received_bytes = 0u64;
    let start = Instant::now();
    let mut worst = 0u64;
    let mut worst_read = 0u64;
    let mut stalled_since: Option<Instant> = None;
    loop {
        let stats = handle.stats();
        worst = worst.max(stats.inflight_bytes + stats.buffered_bytes);
        worst_read = worst_read.max(stats.bytes_read);
        if stats.files_open as usize == FILES && stats.backpressure_stalls > 0 {
            // Long enough for several timeout flushes and polls at full budget.
            let since = *stalled_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(2) {
                break;
            }
        }
        assert!(
            start.elapsed() < PATIENCE,
            "engine never reached its budget: {stats:?}"
        );
        match tokio::time::timeout(Duration::from_millis(10), events.recv_batch()).await {
            Ok(Some(batch)) => {
                received_bytes += batch.iter().map(|e| e.consumed_bytes()).sum::<u64>();
                held_events.extend(batch);
            }
            Ok(None) => panic!("stream ended"),
            Err(_) => {}
        }
    }
    let stats = handle.stats();
    // Nothing was acknowledged, so every byte read is still held somewhere: bytes read is
    // the engine's whole footprint in file bytes.
    assert!(
        worst_read <= budget,
        "read {worst_read} bytes with nothing acknowledged, budget {budget}: {stats:?}"
    );
    assert!(worst <= budget, "held {worst} > budget {budget}: {stats:?}");
    assert!(
        stats.budget_peak_bytes <= budget,
        "peak {} > budget {budget}: {stats:?}",
        stats.budget_peak_bytes
    );
    // The budget was used, not avoided: most of it is out as cut pieces waiting for acks.
    assert!(
        stats.bytes_read >= budget / 2,
        "only {} bytes read: {stats:?}",
        stats.bytes_read
    );
    assert_eq!(received_bytes, stats.inflight_bytes, "{stats:?}");
    assert!(
        held_events
            .iter()
            .all(|e| e.part.is_some_and(|p| p.cut.is_some())),
        "every event is an unfinished line, marked as cut"
    );
    drop(handle);
}
