//! What a drain cut off by its deadline reports per file: the bytes never read and the bytes
//! read but never acknowledged, which together are everything past the checkpoint.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use firetail_tail::{self as tail, DrainEnd, DrainMode, TailConfig};

const PATIENCE: Duration = Duration::from_secs(30);

fn write(path: &Path, from: usize, to: usize) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in from..to {
        writeln!(f, "line {n:06} {}", "x".repeat(40)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_cut_off_names_each_file_with_its_unread_and_unacked_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    fs::create_dir_all(&root).unwrap();
    let (done, pending) = (root.join("done.log"), root.join("pending.log"));
    write(&done, 0, 100);
    let cfg = TailConfig {
        paths: vec![format!("{}/*.log", root.display())],
        data_dir: dir.path().join("data"),
        poll_interval: Duration::from_millis(50),
        checkpoint_interval: Duration::from_millis(20),
        // Far below what pending.log holds: reading stops at it.
        max_inflight_bytes: 4 * 1024,
        ..TailConfig::default()
    };
    let (handle, mut events) = tail::start(cfg).unwrap();
    let acker = handle.acker();
    // done.log: every line delivered and acknowledged.
    let deadline = Instant::now() + PATIENCE;
    let mut acked = 0;
    while acked < 100 {
        assert!(Instant::now() < deadline, "done.log not read");
        let ev = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        acker.ack_event(&ev);
        acked += 1;
    }
    // pending.log: read up to the budget, never acknowledged.
    write(&pending, 0, 2000);
    let first = tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.source.path, pending);
    let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof {
        deadline: Instant::now() + Duration::from_millis(500),
    }));
    while tokio::time::timeout(PATIENCE, events.recv())
        .await
        .unwrap()
        .is_some()
    {}
    let report = drain.await.unwrap();

    assert_eq!(report.end, DrainEnd::Deadline, "{report:?}");
    assert_eq!(report.files_left.len(), 1, "only pending.log: {report:?}");
    let left = &report.files_left[0];
    assert_eq!(left.path, pending);
    let size = fs::metadata(&pending).unwrap().len();
    assert_eq!(left.unread_bytes + left.unacked_bytes, size, "{left:?}");
    assert!(
        left.unread_bytes > 0,
        "the budget stopped reading: {left:?}"
    );
    assert!(
        left.unacked_bytes >= 4 * 1024 && left.unacked_bytes >= report.unacked_bytes,
        "{left:?} / in flight {}",
        report.unacked_bytes
    );
    assert_eq!(report.unread_bytes(), left.unread_bytes);
}
