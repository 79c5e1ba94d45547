//! Integration tests of the tailing engine on real files in temporary directories: discovery,
//! rotation styles, truncation, deletion, restart from checkpoints, backpressure, faults.
//! Every wait is on a condition with a generous bound; nothing asserts on durations.
#![allow(clippy::unwrap_used)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use firetail_tail::checkpoint::{CheckpointStore, Entry};
use firetail_tail::{
    self as tail, Acker, DrainEnd, DrainMode, DrainReport, EventStream, LogEvent, MultilineConfig,
    MultilineMode, Part, ReadFrom, TailConfig, TailHandle, TailStats,
};
use tempfile::TempDir;

/// Bound for any single wait; only reached when something is broken.
const PATIENCE: Duration = Duration::from_secs(30);

fn config(root: &Path) -> TailConfig {
    TailConfig {
        paths: vec![format!("{}/**/*.log", root.display())],
        data_dir: root.join(".firetail"),
        poll_interval: Duration::from_millis(100),
        rotate_grace: Duration::from_millis(200),
        partial_line_timeout: Duration::from_millis(100),
        checkpoint_interval: Duration::from_millis(20),
        ..TailConfig::default()
    }
}

fn append(path: &Path, text: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn lines(prefix: &str, range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("{prefix}-{i:05}\n")).collect()
}

fn text(ev: &LogEvent) -> String {
    String::from_utf8_lossy(&ev.bytes).into_owned()
}

fn texts(evs: &[LogEvent]) -> Vec<String> {
    evs.iter().map(text).collect()
}

/// Receives exactly `n` events (acking each when `ack`), panicking after [`PATIENCE`].
async fn recv_n(events: &mut EventStream, acker: &Acker, n: usize, ack: bool) -> Vec<LogEvent> {
    let mut got = Vec::with_capacity(n);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while got.len() < n {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ev)) => {
                if ack {
                    acker.ack(&ev.source, ev.offset, ev.end_offset);
                }
                got.push(ev);
            }
            Ok(None) => panic!("stream ended after {} of {n}: {:?}", got.len(), texts(&got)),
            Err(_) => panic!("timed out after {} of {n}: {:?}", got.len(), texts(&got)),
        }
    }
    got
}

/// Drains the engine while consuming and acking the rest of the stream.
async fn drain_all(
    handle: TailHandle,
    mut events: EventStream,
    acker: &Acker,
    mode: DrainMode,
) -> (Vec<LogEvent>, DrainReport) {
    let drain = tokio::spawn(handle.drain(mode));
    let mut rest = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while let Some(ev) = tokio::time::timeout_at(deadline, events.recv())
        .await
        .unwrap()
    {
        acker.ack(&ev.source, ev.offset, ev.end_offset);
        rest.push(ev);
    }
    let report = tokio::time::timeout_at(deadline, drain)
        .await
        .unwrap()
        .unwrap();
    (rest, report)
}

fn to_eof() -> DrainMode {
    DrainMode::ReadToEof {
        deadline: Instant::now() + PATIENCE,
    }
}

async fn wait_for(handle: &TailHandle, what: &str, cond: impl Fn(&TailStats) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = handle.stats();
        if cond(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Tail {
    handle: TailHandle,
    events: EventStream,
    acker: Acker,
}

fn start(cfg: TailConfig) -> Tail {
    // A crashed (dropped) engine may still hold the data-dir lock for a moment.
    let deadline = Instant::now() + PATIENCE;
    let (handle, events) = loop {
        match tail::start(cfg.clone()) {
            Ok(started) => break started,
            Err(tail::TailError::DataDirInUse(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    };
    let acker = handle.acker();
    Tail {
        handle,
        events,
        acker,
    }
}

impl Tail {
    async fn recv(&mut self, n: usize) -> Vec<LogEvent> {
        recv_n(&mut self.events, &self.acker, n, true).await
    }

    async fn drain(self) -> (Vec<LogEvent>, DrainReport) {
        drain_all(self.handle, self.events, &self.acker, to_eof()).await
    }
}

fn root() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    fs::create_dir_all(&root).unwrap();
    (dir, root)
}

#[tokio::test]
async fn reads_lines_with_exact_offsets_crlf_partial_and_raw_bytes() {
    let (_d, root) = root();
    let path = root.join("a.log");
    fs::write(&path, b"one\r\ntwo\n\xff\xferaw\n").unwrap();
    let mut t = start(config(&root));
    let got = t.recv(3).await;
    assert_eq!(texts(&got[..2]), ["one", "two"]);
    assert_eq!(got[2].bytes, b"\xff\xferaw");
    assert!(!tail::is_valid_utf8(&got[2].bytes));
    let ranges: Vec<_> = got.iter().map(|e| (e.offset, e.end_offset)).collect();
    assert_eq!(ranges, [(0, 5), (5, 9), (9, 15)]);
    assert_eq!(got[0].source.path, path);
    // A last line without newline is emitted once the file has been quiet, marked as a cut
    // piece; its rest continues it.
    append(&path, "no newline yet");
    let got = t.recv(1).await;
    assert_eq!(text(&got[0]), "no newline yet");
    assert_eq!((got[0].offset, got[0].end_offset), (15, 29));
    let cut = |index, last, cut| Some(Part { index, last, cut });
    assert_eq!(got[0].part, cut(0, false, Some(tail::Cut::Timeout)));
    append(&path, " - continued\nnext\n");
    let got = t.recv(2).await;
    assert_eq!(texts(&got), [" - continued", "next"]);
    assert_eq!(got[0].part, cut(1, true, None));
    assert_eq!(got[1].part, None);
    let (rest, report) = t.drain().await;
    assert!(rest.is_empty(), "{:?}", texts(&rest));
    assert_eq!(report.end, DrainEnd::AllRead);
    assert_eq!(report.unacked_bytes, 0);
    assert!(report.checkpoint_saved);
}

#[tokio::test]
async fn discovers_new_files_and_new_subdirectories_with_container_names() {
    let (_d, root) = root();
    let mut cfg = config(&root);
    // Slow polling: discovery must come from inotify here.
    cfg.poll_interval = Duration::from_secs(3600);
    let mut t = start(cfg);
    append(&root.join("top.log"), "top\n");
    let got = t.recv(1).await;
    assert_eq!(text(&got[0]), "top");
    assert_eq!(got[0].source.container, "");
    fs::create_dir_all(root.join("web/nested")).unwrap();
    append(&root.join("web/nested/x.log"), "deep\n");
    append(&root.join("web/nested/ignored.txt"), "nope\n");
    let got = t.recv(1).await;
    assert_eq!(text(&got[0]), "deep");
    assert_eq!(got[0].source.container, "web");
    let (rest, _) = t.drain().await;
    assert!(rest.is_empty(), "{:?}", texts(&rest));
}

#[tokio::test]
async fn polling_alone_discovers_and_reads() {
    let (_d, root) = root();
    let mut cfg = config(&root);
    cfg.use_inotify = false;
    cfg.poll_interval = Duration::from_millis(20);
    cfg.container_name = Some("app".to_owned());
    let mut t = start(cfg);
    fs::create_dir_all(root.join("c")).unwrap();
    append(&root.join("c/p.log"), &lines("p", 0..10));
    let got = t.recv(10).await;
    assert_eq!(
        got[9].source.container, "app",
        "explicit name overrides the directory"
    );
    append(&root.join("c/p.log"), &lines("p", 10..20));
    let got = t.recv(10).await;
    assert_eq!(text(&got[9]), "p-00019");
    t.drain().await;
}

/// Asserts `got` holds exactly the lines `prefix-start..end`, in order.
fn assert_exact(got: &[String], prefix: &str, range: std::ops::Range<usize>) {
    let want: Vec<String> = range.map(|i| format!("{prefix}-{i:05}")).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn rename_and_create_rotation_reads_old_file_to_the_end() {
    let (_d, root) = root();
    let path = root.join("app.log");
    append(&path, &lines("l", 0..100));
    let mut t = start(config(&root));
    let mut got = texts(&t.recv(100).await);
    // More lines land in the old file right before it is renamed away; the new file follows.
    append(&path, &lines("l", 100..150));
    fs::rename(&path, root.join("app.log.1")).unwrap();
    append(&path, &lines("l", 150..180));
    got.extend(texts(&t.recv(80).await));
    wait_for(&t.handle, "old file released", |s| s.files_released == 1).await;
    let (rest, _) = t.drain().await;
    got.extend(texts(&rest));
    // Old and new file are independent streams; each must be complete and ordered.
    let mut old: Vec<String> = got
        .iter()
        .filter(|l| l.as_str() < "l-00150")
        .cloned()
        .collect();
    let new: Vec<String> = got
        .iter()
        .filter(|l| l.as_str() >= "l-00150")
        .cloned()
        .collect();
    assert_exact(&new, "l", 150..180);
    old.sort();
    assert_exact(&old, "l", 0..150);
    assert_eq!(got.len(), 180, "no duplicates");
}

#[tokio::test]
async fn copytruncate_restarts_at_zero_without_skipping_or_rereading() {
    let (_d, root) = root();
    let path = root.join("app.log");
    append(&path, &lines("a", 0..50));
    let mut t = start(config(&root));
    let got = t.recv(50).await;
    assert_exact(&texts(&got), "a", 0..50);
    // copytruncate, then the app writes more than before before we look again: the size alone
    // would not reveal the truncation, the fingerprint does.
    fs::copy(&path, root.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &lines("b", 0..80));
    let got = t.recv(80).await;
    assert_exact(&texts(&got), "b", 0..80);
    assert_eq!(got[0].offset, 0);
    // A plain shrink below the read position.
    fs::write(&path, "").unwrap();
    append(&path, &lines("c", 0..3));
    let got = t.recv(3).await;
    assert_exact(&texts(&got), "c", 0..3);
    assert!(t.handle.stats().truncations >= 2);
    let (rest, report) = t.drain().await;
    assert!(rest.is_empty(), "{:?}", texts(&rest));
    assert_eq!(report.unacked_bytes, 0);
}

#[tokio::test]
async fn deleted_file_is_read_to_the_end_through_the_open_descriptor() {
    let (_d, root) = root();
    let path = root.join("gone.log");
    append(&path, &lines("d", 0..1));
    let mut t = start(config(&root));
    t.recv(1).await;
    // The writer keeps its descriptor and writes after the unlink (as an app would).
    let mut writer = OpenOptions::new().append(true).open(&path).unwrap();
    writer.write_all(lines("d", 1..500).as_bytes()).unwrap();
    fs::remove_file(&path).unwrap();
    writer.write_all(lines("d", 500..600).as_bytes()).unwrap();
    let got = t.recv(599).await;
    assert_exact(&texts(&got), "d", 1..600);
    drop(writer);
    wait_for(&t.handle, "deleted file released", |s| {
        s.files_released == 1 && s.files_open == 0
    })
    .await;
    t.drain().await;
}

#[tokio::test]
async fn restart_resumes_from_the_checkpoint_exactly_once() {
    let (_d, root) = root();
    let path = root.join("r.log");
    append(&path, &lines("r", 0..100));
    let mut t = start(config(&root));
    let got = t.recv(100).await;
    assert_exact(&texts(&got), "r", 0..100);
    let (rest, report) = t.drain().await;
    assert!(rest.is_empty());
    assert!(report.checkpoint_saved);
    append(&path, &lines("r", 100..150));
    let mut t = start(config(&root));
    let got = t.recv(50).await;
    assert_exact(&texts(&got), "r", 100..150);
    let (rest, _) = t.drain().await;
    assert!(rest.is_empty(), "{:?}", texts(&rest));
}

#[tokio::test]
async fn unacknowledged_events_are_delivered_again_after_a_crash() {
    let (_d, root) = root();
    let path = root.join("c.log");
    append(&path, &lines("c", 0..100));
    let mut t = start(config(&root));
    let got = recv_n(&mut t.events, &t.acker, 100, false).await;
    // Ack out of order with a gap at 40..60: the checkpoint may only cover 0..40.
    for ev in got[60..].iter().rev().chain(got[..40].iter()) {
        t.acker.ack(&ev.source, ev.offset, ev.end_offset);
    }
    let gap_offset = got[40].offset;
    wait_for(&t.handle, "checkpoint of the acked prefix", |s| {
        s.inflight_bytes
            == got[40..60]
                .iter()
                .map(LogEvent::consumed_bytes)
                .sum::<u64>()
    })
    .await;
    let store = CheckpointStore::new(root.join(".firetail"));
    let deadline = Instant::now() + PATIENCE;
    while store.load().unwrap().values().next().map(|e| e.offset) != Some(gap_offset) {
        assert!(
            Instant::now() < deadline,
            "checkpoint never reached the acked prefix"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Crash: drop everything without draining.
    drop(t);
    let mut t = start(config(&root));
    let again = t.recv(60).await;
    assert_exact(&texts(&again), "c", 40..100);
    assert_eq!(again[0].offset, gap_offset);
    let (rest, _) = t.drain().await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn read_from_end_skips_existing_content_but_not_new_files() {
    let (_d, root) = root();
    append(&root.join("old.log"), &lines("old", 0..10));
    let mut cfg = config(&root);
    cfg.read_from = ReadFrom::End;
    let mut t = start(cfg);
    wait_for(&t.handle, "existing file opened", |s| s.files_open == 1).await;
    append(&root.join("old.log"), &lines("old", 10..12));
    append(&root.join("new.log"), &lines("new", 0..2));
    let mut got = texts(&t.recv(4).await);
    got.sort();
    assert_eq!(got, ["new-00000", "new-00001", "old-00010", "old-00011"]);
    let (rest, _) = t.drain().await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn reused_inode_does_not_inherit_the_old_checkpoint() {
    let (_d, root) = root();
    let path = root.join("reuse.log");
    append(&path, &lines("n", 0..5));
    let meta = fs::metadata(&path).unwrap();
    // The checkpoint describes a previous file with this inode: other first bytes, offset 24.
    CheckpointStore::new(root.join(".firetail"))
        .save(&[Entry {
            dev: meta.dev(),
            ino: meta.ino(),
            fp_len: 8,
            fp_hash: 42,
            offset: 24,
            path: path.display().to_string(),
        }])
        .unwrap();
    // Even with read_from=end: content we have never seen is read whole.
    let mut cfg = config(&root);
    cfg.read_from = ReadFrom::End;
    let mut t = start(cfg);
    let got = t.recv(5).await;
    assert_exact(&texts(&got), "n", 0..5);
    t.drain().await;
}

#[tokio::test]
async fn backpressure_stops_reading_until_acks_free_the_budget() {
    let (_d, root) = root();
    let path = root.join("big.log");
    let total = 20_000;
    append(&path, &lines("b", 0..total));
    let mut cfg = config(&root);
    cfg.max_inflight_bytes = 4096;
    let mut t = start(cfg);
    let file_len = fs::metadata(&path).unwrap().len();
    // Receive without acking until the engine reports it stopped for budget.
    let mut held = Vec::new();
    wait_for(&t.handle, "a backpressure stall", |s| {
        s.backpressure_stalls > 0
    })
    .await;
    let stats = t.handle.stats();
    // At most one read chunk beyond the budget is in flight, and the file is far from read.
    assert!(stats.inflight_bytes <= 4096 + 64 * 1024, "{stats:?}");
    assert!(stats.bytes_read < file_len / 2, "{stats:?}");
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), t.events.recv()).await
    {
        held.push(ev);
    }
    assert!(!held.is_empty() && held.len() < total);
    for ev in &held {
        t.acker.ack_event(ev);
    }
    let rest = t.recv(total - held.len()).await;
    let mut all = texts(&held);
    all.extend(texts(&rest));
    assert_exact(&all, "b", 0..total);
    let (rest, report) = t.drain().await;
    assert!(rest.is_empty());
    assert_eq!(report.unacked_bytes, 0);
}

#[tokio::test]
async fn under_backpressure_every_file_gets_its_turn() {
    let (_d, root) = root();
    let per_file = 20_000; // ~300 KB each: several read chunks
    for name in ["a", "b", "c"] {
        append(&root.join(format!("{name}.log")), &lines(name, 0..per_file));
    }
    let mut cfg = config(&root);
    cfg.max_inflight_bytes = 4096;
    let mut t = start(cfg);
    let got = texts(&t.recv(3 * per_file).await);
    // No file may be read to its end before every other file has had a turn.
    for name in ["a", "b", "c"] {
        let last = got.iter().rposition(|l| l.starts_with(name)).unwrap();
        for other in ["a", "b", "c"] {
            let first = got.iter().position(|l| l.starts_with(other)).unwrap();
            assert!(first < last, "{other} waited until {name} was done");
        }
        let mine: Vec<String> = got
            .iter()
            .filter(|l| l.starts_with(name))
            .cloned()
            .collect();
        assert_exact(&mine, name, 0..per_file);
    }
    t.drain().await;
}

#[tokio::test]
async fn over_long_lines_arrive_as_ordered_parts() {
    let (_d, root) = root();
    let mut cfg = config(&root);
    cfg.max_line_bytes = 1000;
    let long = "x".repeat(3500);
    append(&root.join("long.log"), &format!("{long}\nshort\n"));
    let mut t = start(cfg);
    let got = t.recv(5).await;
    let parts: Vec<Option<Part>> = got.iter().map(|e| e.part).collect();
    assert_eq!(
        parts[3],
        Some(Part {
            index: 3,
            last: true,
            cut: None,
        })
    );
    assert!(parts[..3].iter().enumerate().all(|(i, p)| *p
        == Some(Part {
            index: i as u32,
            last: false,
            cut: None,
        })));
    assert_eq!(parts[4], None);
    let joined: String = texts(&got[..4]).concat();
    assert_eq!(joined, long);
    assert_eq!(text(&got[4]), "short");
    assert_eq!(t.handle.stats().line_parts, 4);
    t.drain().await;
}

#[tokio::test]
async fn multiline_java_traces_are_joined_and_flushed_after_the_timeout() {
    let (_d, root) = root();
    let mut cfg = config(&root);
    let mut ml = MultilineConfig::new(MultilineMode::Java);
    ml.flush_timeout = Duration::from_millis(100);
    cfg.multiline = Some(ml);
    let mut t = start(cfg);
    let trace =
        "ERROR boom\n\tat a.B.c(B.java:1)\n\tat a.B.d(B.java:2)\nCaused by: x\n\t... 1 more\n";
    append(&root.join("j.log"), &format!("INFO a\n{trace}"));
    // The trace is the last thing in the file: only the flush timeout can end it.
    let got = t.recv(2).await;
    assert_eq!(text(&got[0]), "INFO a");
    assert_eq!(text(&got[1]), trace.trim_end());
    assert_eq!(got[1].end_offset, (7 + trace.len()) as u64);
    t.drain().await;
}

#[tokio::test]
async fn full_disk_on_checkpoint_is_counted_and_survived() {
    let (_d, root) = root();
    let data = root.join(".firetail");
    fs::create_dir_all(&data).unwrap();
    // Every write to the checkpoint temporary fails with ENOSPC until the engine removes it.
    std::os::unix::fs::symlink("/dev/full", data.join("checkpoints.json.tmp")).unwrap();
    append(&root.join("f.log"), &lines("f", 0..10));
    let mut t = start(config(&root));
    t.recv(10).await;
    wait_for(&t.handle, "a failed then a good checkpoint", |s| {
        s.checkpoint_errors >= 1 && s.checkpoint_writes >= 1
    })
    .await;
    append(&root.join("f.log"), &lines("f", 10..12));
    assert_exact(&texts(&t.recv(2).await), "f", 10..12);
    let (_, report) = t.drain().await;
    assert!(report.checkpoint_saved);
}

#[tokio::test]
async fn vanished_and_recreated_directories_are_survived() {
    let (_d, root) = root();
    let sub = root.join("svc");
    fs::create_dir_all(&sub).unwrap();
    append(&sub.join("v.log"), &lines("v", 0..3));
    let mut t = start(config(&root));
    t.recv(3).await;
    fs::remove_dir_all(&sub).unwrap();
    wait_for(&t.handle, "vanished file released", |s| s.files_open == 0).await;
    fs::create_dir_all(&sub).unwrap();
    append(&sub.join("v.log"), &lines("w", 0..3));
    assert_exact(&texts(&t.recv(3).await), "w", 0..3);
    let (rest, _) = t.drain().await;
    assert!(rest.is_empty());
}

#[tokio::test]
async fn quiet_drain_waits_for_the_app_to_stop_writing() {
    let (_d, root) = root();
    let path = root.join("q.log");
    let mut t = start(config(&root));
    let writer = std::thread::spawn({
        let path = path.clone();
        move || {
            for i in 0..20 {
                append(&path, &lines("q", i * 10..i * 10 + 10));
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let got = t.recv(1).await;
    let drain = DrainMode::Quiet {
        quiet: Duration::from_millis(300),
        deadline: Instant::now() + PATIENCE,
    };
    let (rest, report) = drain_all(t.handle, t.events, &t.acker, drain).await;
    writer.join().unwrap();
    let mut all = texts(&got);
    all.extend(texts(&rest));
    assert_exact(&all, "q", 0..200);
    assert_eq!(report.end, DrainEnd::AllRead);
    assert!(report.checkpoint_saved);
}

#[tokio::test]
async fn a_second_engine_on_the_same_data_dir_is_refused() {
    let (_d, root) = root();
    let t = start(config(&root));
    let err = tail::start(config(&root)).unwrap_err();
    assert!(matches!(err, tail::TailError::DataDirInUse(_)), "{err}");
    // Once drained, the directory is free immediately.
    t.drain().await;
    let t = tail::start(config(&root)).unwrap();
    drop(t);
}

/// Idle means asleep: over an observation window the loop may wake for its timers only. A
/// slower machine can only make the count smaller, so this cannot flake by being loaded.
#[tokio::test]
async fn an_idle_engine_does_not_busy_poll() {
    let (_d, root) = root();
    append(&root.join("idle.log"), "one\n");
    for (use_inotify, poll_ms, allowed) in [(true, 3_600_000, 5), (false, 100, 5 + 3 * 5)] {
        let mut cfg = config(&root);
        cfg.use_inotify = use_inotify;
        cfg.poll_interval = Duration::from_millis(poll_ms);
        let mut t = start(cfg);
        if use_inotify {
            t.recv(1).await;
        }
        // Let the ack's checkpoint happen, then watch an idle window.
        wait_for(&t.handle, "settled", |s| {
            s.checkpoint_lag_bytes == 0 && s.inflight_bytes == 0
        })
        .await;
        let before = t.handle.stats().engine_iterations;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let woke = t.handle.stats().engine_iterations - before;
        assert!(
            woke <= allowed,
            "inotify={use_inotify}: {woke} wake-ups in an idle window"
        );
        t.drain().await;
    }
}

#[tokio::test]
async fn invalid_configuration_is_refused_with_a_clear_error() {
    let err = tail::start(TailConfig {
        paths: vec!["/x/[".to_owned()],
        ..TailConfig::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("/x/["), "{err}");
    assert!("rust".parse::<ReadFrom>().is_err());
    assert!("(".parse::<MultilineMode>().is_err());
}

#[tokio::test]
async fn symlinks_out_of_the_roots_are_skipped_and_counted_unless_allowed() {
    let (dir, root) = root();
    let outside = dir.path().join("secret");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("creds.log"), "secret-line\n").unwrap();
    fs::create_dir_all(root.join("web")).unwrap();
    fs::write(root.join("web/real.txt"), "inside-line\n").unwrap();
    fs::write(root.join("a.log"), "plain-line\n").unwrap();
    // A link out of the log directory, and one that stays inside it.
    std::os::unix::fs::symlink(outside.join("creds.log"), root.join("web/stolen.log")).unwrap();
    std::os::unix::fs::symlink(root.join("web/real.txt"), root.join("web/inside.log")).unwrap();

    let t = start(config(&root));
    wait_for(&t.handle, "the skipped link", |s| s.symlinks_skipped >= 1).await;
    let (got, report) = t.drain().await;
    let mut got = texts(&got);
    got.sort();
    assert_eq!(got, ["inside-line", "plain-line"]);
    assert_eq!(report.end, DrainEnd::AllRead);

    // Allowed by the flag, the link is an ordinary file to tail.
    fs::remove_dir_all(root.join(".firetail")).unwrap();
    let mut cfg = config(&root);
    cfg.follow_symlinks_outside_roots = true;
    let t = start(cfg);
    let probe = t.handle.probe();
    let (got, _) = t.drain().await;
    let mut got = texts(&got);
    got.sort();
    assert_eq!(got, ["inside-line", "plain-line", "secret-line"]);
    assert_eq!(probe.stats().symlinks_skipped, 0);
}

/// Writes `lines` numbered lines to `root/app.log` in bursts, rotating it by copytruncate
/// (`cp app.log app.log.N; truncate app.log`) every `per_rotation` lines. Nothing is written
/// between the copy and the truncation, so every line is in app.log or in one copy.
fn copytruncate_writer(
    root: &Path,
    lines: usize,
    per_rotation: usize,
) -> std::thread::JoinHandle<()> {
    let root = root.to_owned();
    std::thread::spawn(move || {
        let path = root.join("app.log");
        let mut rotations = 0;
        let mut n = 0;
        while n < lines {
            let burst = 25.min(lines - n);
            // Lines long enough that a rotation's head covers a whole fingerprint.
            let text: String = (n..n + burst)
                .map(|i| format!("copytruncate line {i:06} {}\n", "y".repeat(40)))
                .collect();
            append(&path, &text);
            n += burst;
            std::thread::sleep(Duration::from_millis(15));
            if n % per_rotation == 0 && n < lines {
                rotations += 1;
                fs::copy(&path, root.join(format!("app.log.{rotations}"))).unwrap();
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .unwrap()
                    .set_len(0)
                    .unwrap();
            }
        }
    })
}

/// Per line number, how often it arrived; panics on a line nobody wrote.
fn count_lines(got: &[LogEvent]) -> std::collections::BTreeMap<usize, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for ev in got {
        let t = text(ev);
        let n: usize = t
            .strip_prefix("copytruncate line ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected event {t:?}"));
        *counts.entry(n).or_default() += 1;
    }
    counts
}

async fn copytruncate_run(glob: &str) -> (std::collections::BTreeMap<usize, usize>, TailStats) {
    const LINES: usize = 2_000;
    let (_d, root) = root();
    let mut cfg = config(&root);
    cfg.paths = vec![format!("{}/{glob}", root.display())];
    // Polling only: a truncation is noticed up to a poll after the last read, so lines the
    // engine had not read yet are in the copy only. Each generation lives for three polls or
    // more (the documented window: a generation written and rotated away between two looks
    // is never seen in the original).
    cfg.use_inotify = false;
    cfg.poll_interval = Duration::from_millis(50);
    cfg.rotate_grace = Duration::from_millis(500);
    let mut t = start(cfg);
    let probe = t.handle.probe();
    let writer = copytruncate_writer(&root, LINES, 250);
    let mut got = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while count_lines(&got).len() < LINES || !writer.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{} of {LINES} lines arrived: {:?}",
            count_lines(&got).len(),
            probe.stats()
        );
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(50), t.events.recv()).await
        {
            t.acker.ack_event(&ev);
            got.push(ev);
        }
    }
    writer.join().unwrap();
    let (rest, report) = t.drain().await;
    got.extend(rest);
    assert_eq!(report.end, DrainEnd::AllRead);
    (count_lines(&got), probe.stats())
}

#[tokio::test]
async fn copytruncate_with_tailed_copies_delivers_every_line_exactly_once() {
    let (counts, stats) = copytruncate_run("app.log*").await;
    let dup: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(
        dup.is_empty(),
        "{} lines duplicated, first {:?}: {stats:?}",
        dup.len(),
        dup.first()
    );
    assert_eq!(counts.len(), 2_000, "{stats:?}");
    assert!(stats.truncations >= 1, "{stats:?}");
    // Continuation from the copy happens only when a truncation finds unread bytes, which
    // depends on timing (see the untailed variant below); exactly once is the claim here.
}

#[tokio::test]
async fn copytruncate_with_untailed_copies_loses_nothing_unread_at_truncation() {
    let (counts, stats) = copytruncate_run("*.log").await;
    assert_eq!(counts.len(), 2_000, "lines lost: {stats:?}");
    assert!(counts.values().all(|c| *c == 1), "{stats:?}");
    assert!(stats.truncations >= 1, "{stats:?}");
    // Whether a truncation finds unread bytes to continue from the copy depends on whether the
    // engine had caught up with the writer (on a loaded CI machine it may have every time), so
    // this run cannot promise the continuation path; `copytruncate_while_down_resumes_from_the_
    // checkpoint_in_the_copy` exercises it deterministically. Lossless either way is the claim.
}

#[tokio::test]
async fn copytruncate_while_down_resumes_from_the_checkpoint_in_the_copy() {
    let (_d, root) = root();
    let path = root.join("app.log");
    let numbered = |range: std::ops::Range<usize>| -> String {
        range
            .map(|i| format!("copytruncate line {i:06} {}\n", "y".repeat(40)))
            .collect()
    };
    append(&path, &numbered(0..300));
    let mut t = start(config(&root));
    let got = recv_n(&mut t.events, &t.acker, 300, false).await;
    for ev in &got[..100] {
        t.acker.ack_event(ev);
    }
    let acked_to = got[99].end_offset;
    let store = CheckpointStore::new(root.join(".firetail"));
    let deadline = Instant::now() + PATIENCE;
    while store.load().unwrap().values().map(|e| e.offset).next() != Some(acked_to) {
        assert!(
            Instant::now() < deadline,
            "checkpoint never reached {acked_to}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Crash (no drain), then logrotate's copytruncate runs while the sidecar is down.
    drop(t);
    append(&path, &numbered(300..500));
    fs::copy(&path, root.join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&path, &numbered(500..600));

    let t = start(config(&root));
    let probe = t.handle.probe();
    let (got, report) = t.drain().await;
    assert_eq!(report.end, DrainEnd::AllRead);
    let counts = count_lines(&got);
    let want: Vec<usize> = (100..600).collect();
    assert_eq!(
        counts.keys().copied().collect::<Vec<_>>(),
        want,
        "{:?}",
        probe.stats()
    );
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(probe.stats().copies_continued, 1);
}
