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

use firetail_tail::{self as tail, DrainMode, TailConfig};

const PATIENCE: Duration = Duration::from_secs(30);
const FILES: usize = 300;

/// The descriptor limit is per process: tests that change it take turns.
static LIMIT: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

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

#[test]
fn exhausted_descriptors_are_counted_and_every_file_is_read_once_they_return() {
    let _turn = LIMIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
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
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(20), events.recv()).await
            {
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
    });
}

/// A file that has a checkpoint but cannot be opened right now keeps its checkpointed position
/// through the next checkpoint write, so a restart does not read it again from the start.
#[test]
fn checkpointed_files_that_cannot_be_opened_keep_their_position() {
    let _turn = LIMIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        fs::create_dir_all(&root).unwrap();
        let files = 100;
        for i in 0..files {
            fs::write(root.join(format!("f{i:03}.log")), format!("line-{i:03}\n")).unwrap();
        }
        let cfg = TailConfig {
            paths: vec![format!("{}/*.log", root.display())],
            data_dir: root.join(".firetail"),
            // No rescans during the test: discovery happens once, under the low limit.
            poll_interval: Duration::from_secs(3600),
            checkpoint_interval: Duration::from_millis(20),
            ..TailConfig::default()
        };
        let deadline = Instant::now() + PATIENCE;

        // 1. Read everything and checkpoint it.
        let (handle, mut events) = tail::start(cfg.clone()).unwrap();
        let acker = handle.acker();
        let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof { deadline }));
        let mut n = 0;
        while let Some(ev) = events.recv().await {
            acker.ack_event(&ev);
            n += 1;
        }
        assert_eq!(n, files);
        assert!(drain.await.unwrap().checkpoint_saved);

        // 2. Restart with too few descriptors: most files cannot be opened. Then give descriptors
        //    back and let one checkpoint be written before crashing.
        let (soft, hard) = nofile_limits();
        let in_use = fs::read_dir("/proc/self/fd").unwrap().count();
        set_nofile(&format!("{}:{hard}", in_use + 16));
        let (handle, events) = tail::start(cfg.clone()).unwrap();
        while handle.stats().open_errors == 0 {
            assert!(Instant::now() < deadline, "{:?}", handle.stats());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        set_nofile(&format!("{soft}:{hard}"));
        let writes = handle.stats().checkpoint_writes;
        while handle.stats().checkpoint_writes == writes {
            assert!(Instant::now() < deadline, "{:?}", handle.stats());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(handle.stats().files_open < files as u64);
        drop((handle, events));

        // 3. A normal restart finds every file at its checkpoint: nothing is read again.
        let retry_deadline = Instant::now() + PATIENCE;
        let (handle, mut events) = loop {
            match tail::start(cfg.clone()) {
                Ok(started) => break started,
                Err(tail::TailError::DataDirInUse(_)) if Instant::now() < retry_deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
        };
        let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof {
            deadline: Instant::now() + PATIENCE,
        }));
        if let Some(ev) = events.recv().await {
            panic!(
                "re-read after restart: {:?}",
                String::from_utf8_lossy(&ev.bytes)
            );
        }
        assert!(drain.await.unwrap().checkpoint_saved);
    });
}
