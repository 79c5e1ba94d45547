//! Descriptor exhaustion: with more matching files than the process may open, the engine logs
//! and counts every failed open, keeps tailing what it could open, and picks the rest up once
//! descriptors are available again — losing nothing.
//!
//! Its own test binary: it lowers this process's open-file limit (with util-linux `prlimit`),
//! which would break unrelated tests running in parallel in a shared binary.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_sidecar::tail::{self, DrainMode, TailConfig};

const PATIENCE: Duration = Duration::from_secs(30);
const FILES: usize = 300;

fn set_nofile(limit: &str) {
    let status = Command::new("prlimit")
        .arg("--pid")
        .arg(std::process::id().to_string())
        .arg(format!("--nofile={limit}"))
        .status()
        .expect("prlimit (util-linux) is needed for this test");
    assert!(status.success(), "prlimit --nofile={limit} failed");
}

fn nofile_limits() -> (String, String) {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut f = line.split_whitespace().skip(3);
    (f.next().unwrap().to_owned(), f.next().unwrap().to_owned())
}

#[tokio::test]
async fn exhausted_descriptors_are_counted_and_every_file_is_read_once_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    fs::create_dir_all(&root).unwrap();
    for i in 0..FILES {
        fs::write(root.join(format!("f{i:03}.log")), format!("line-{i:03}\n")).unwrap();
    }
    let cfg = TailConfig {
        paths: vec![format!("{}/*.log", root.display())],
        data_dir: root.join(".firetail"),
        poll_interval: Duration::from_millis(50),
        checkpoint_interval: Duration::from_millis(20),
        ..TailConfig::default()
    };
    let (soft, hard) = nofile_limits();
    let in_use = fs::read_dir("/proc/self/fd").unwrap().count();
    // Room for the engine's own descriptors and a few dozen log files, far fewer than FILES.
    set_nofile(&format!("{}:{hard}", in_use + 40));
    let (handle, mut events) = tail::start(cfg).unwrap();
    let acker = handle.acker();

    let mut seen = HashSet::new();
    let deadline = Instant::now() + PATIENCE;
    while handle.stats().open_errors == 0 || seen.is_empty() {
        assert!(
            Instant::now() < deadline,
            "no open error: {:?}",
            handle.stats()
        );
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(20), events.recv()).await {
            acker.ack_event(&ev);
            assert!(seen.insert(ev.bytes));
        }
    }
    let stats = handle.stats();
    assert!(stats.files_open < FILES as u64, "{stats:?}");

    set_nofile(&format!("{soft}:{hard}"));
    while seen.len() < FILES {
        let ev = tokio::time::timeout_at((deadline + PATIENCE).into(), events.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {FILES} files read", seen.len()))
            .unwrap();
        acker.ack_event(&ev);
        assert!(seen.insert(ev.bytes.clone()), "duplicate {:?}", ev.bytes);
    }
    let stats = handle.stats();
    assert_eq!(stats.files_open, FILES as u64);
    // Failed paths are logged once each (not on every retry): at most one error per file.
    assert!(stats.open_errors <= FILES as u64, "{stats:?}");

    let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof {
        deadline: Instant::now() + PATIENCE,
    }));
    if let Some(ev) = events.recv().await {
        panic!("unexpected event {:?}", ev.bytes);
    }
    let report = drain.await.unwrap();
    assert_eq!(report.unacked_bytes, 0);
    assert!(report.checkpoint_saved);
}
