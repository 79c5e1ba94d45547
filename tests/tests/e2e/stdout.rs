//! The stdout source end to end: the real `firetail` binary follows containers' logs from the
//! Kubernetes API STAND-IN ([`KubeApiStandIn`]: chunked follow streams with RFC3339Nano
//! timestamps, `sinceTime`, `previous`, restarts, injected faults) and ships them to the
//! FAULT-INJECTING Firehose endpoint stand-in; every line carries a sequence number and is
//! counted at the endpoint: nothing lost, ever; after `kill -9`, duplicates only of what the
//! killed run delivered past its last checkpoint.

use std::time::{Duration, Instant};

use firetail_testkit::kube_api::{FIRST_STAMP_SECS, line_stamp, stamp_text};
use firetail_testkit::route::{FakePod, PodDirs, Tally};
use firetail_testkit::{ChildGuard, FaultPlan, FirehoseEndpoint, KubeApiStandIn, LogFault};
use serde_json::Value;

use crate::common::{PATIENCE, events_in};
use crate::process::{line, start_sidecar};
use crate::shutdown_and_neighbours::{get, metrics_addr, strip_ansi};

const STREAM: &str = "stdout-e2e";

struct Rig {
    kube: KubeApiStandIn,
    endpoint: FirehoseEndpoint,
    dirs: PodDirs,
    _tmp: tempfile::TempDir,
}

impl Rig {
    async fn new(running: &[&str], waiting: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(tmp.path());
        dirs.container("files");
        Self {
            kube: KubeApiStandIn::start(&FakePod::default(), running, waiting)
                .await
                .unwrap(),
            endpoint: FirehoseEndpoint::start(FaultPlan::none()).await.unwrap(),
            dirs,
            _tmp: tmp,
        }
    }

    fn sidecar(&self, containers: &str, extra: &[(&str, &str)]) -> ChildGuard {
        let env = self.kube.sidecar_env(&self.dirs).unwrap();
        let mut all: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend([
            ("FIRETAIL_STDOUT_CONTAINERS", containers),
            ("FIRETAIL_STDOUT_RETRY_BASE_MS", "20"),
            ("FIRETAIL_STDOUT_RETRY_MAX_MS", "300"),
            ("FIRETAIL_STDOUT_POLL_INTERVAL_MS", "100"),
        ]);
        all.extend_from_slice(extra);
        start_sidecar(&self.endpoint.url(), STREAM, &self.dirs, "ndjson", &all)
    }

    fn events(&self) -> Vec<Value> {
        events_in(&self.endpoint.accepted())
    }

    fn tally(&self) -> Tally {
        let mut t = Tally::default();
        for e in self.events() {
            t.add(e["log"].as_str().unwrap_or_default());
        }
        t
    }

    /// Writes lines `range` to `container`, `per_call` at a time.
    fn write(&self, container: &str, range: std::ops::Range<u64>) {
        let lines: Vec<String> = range.map(|n| line(n, 150)).collect();
        for chunk in lines.chunks(200) {
            self.kube.write(container, chunk.iter().cloned());
        }
    }

    async fn wait_for(&self, what: &str, expected: impl Fn() -> Vec<u64>, sidecar: &ChildGuard) {
        let start = Instant::now();
        loop {
            let missing = self.tally().missing(expected());
            if missing.is_empty() {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{what}: {} missing, first {:?}\n{}",
                missing.len(),
                missing.first(),
                sidecar.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn stop_cleanly(sidecar: &mut ChildGuard) {
    sidecar.terminate().unwrap();
    let status = sidecar
        .wait_timeout(PATIENCE)
        .unwrap()
        .expect("exits after its drain");
    assert!(status.success(), "{status:?}\n{}", sidecar.stderr());
    assert!(
        sidecar
            .stderr()
            .contains("drained; everything read was delivered"),
        "{}",
        sidecar.stderr()
    );
}

/// The value of `name{labels}` in an exposition (0 when absent).
fn labelled(body: &str, series: &str) -> f64 {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follows_every_app_container_to_firehose_with_counted_sequence_numbers() {
    let rig = Rig::new(&["app", "worker", "firetail"], &["late"]).await;
    let mut sidecar = rig.sidecar("all", &[("FIRETAIL_MULTILINE", "java")]);
    rig.write("app", 0..2000);
    rig.write("worker", 10_000..11_000);
    // The sidecar's own container is not followed; its lines must not arrive.
    rig.kube.write("firetail", [line(90_000, 10)]);
    // A Java stack trace is joined like in files.
    rig.kube.write(
        "app",
        [
            "ERROR seq=50000 payment failed".to_owned(),
            "\tat shop.Pay.run(Pay.java:12)".to_owned(),
            "\tat shop.Main.main(Main.java:3)".to_owned(),
        ],
    );
    // A container that starts later (the API answers 400 "waiting to start" until then).
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.kube.restart("late");
    rig.write("late", 20_000..20_500);
    let expected = || {
        (0..2000)
            .chain(10_000..11_000)
            .chain(20_000..20_500)
            .chain([50_000])
            .collect::<Vec<u64>>()
    };
    rig.wait_for("all lines", expected, &sidecar).await;
    for c in ["app", "worker", "late", "firetail"] {
        rig.kube.terminate(c);
    }
    stop_cleanly(&mut sidecar).await;
    let tally = rig.tally();
    tally.exactly_once(expected()).unwrap();
    let events = rig.events();
    let trace = events
        .iter()
        .find(|e| e["log"].as_str().unwrap_or_default().contains("seq=50000"))
        .unwrap();
    assert_eq!(
        trace["log"],
        "ERROR seq=50000 payment failed\n\tat shop.Pay.run(Pay.java:12)\n\tat shop.Main.main(Main.java:3)"
    );
    for e in &events {
        let container = e["kubernetes"]["container_name"].as_str().unwrap();
        assert_eq!(e["stream"], "stdout", "{e}");
        assert_eq!(e["file"], format!("k8s://{container}"), "{e}");
        // `late` started in the test: its first instance, like the others'.
        let id = KubeApiStandIn::id_of(container, 0);
        assert_eq!(
            e["kubernetes"]["docker_id"],
            id.trim_start_matches("containerd://"),
            "{e}"
        );
        // The event's time is the kubelet's timestamp (the stand-in's clock starts at 19:00).
        assert!(
            e["time"].as_str().unwrap().starts_with("2026-12-02T19:0"),
            "{e}"
        );
    }
    let requests = rig.kube.log_requests();
    assert!(
        requests.iter().all(|r| !r.contains("container=firetail")),
        "{requests:?}"
    );
    assert!(requests.iter().all(|r| r.contains("timestamps=true")));
    assert!(
        requests
            .iter()
            .any(|r| r.contains("container=late&timestamps=true&follow=true"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_streams_500_and_429_recover_without_loss_or_duplicates() {
    let rig = Rig::new(&["app"], &[]).await;
    rig.write("app", 0..1000);
    for fault in [
        LogFault::CutAfter { lines: 300 },
        LogFault::Status {
            code: 500,
            reason: "InternalError".into(),
            retry_after: None,
        },
        LogFault::Status {
            code: 429,
            reason: "TooManyRequests".into(),
            retry_after: Some(1),
        },
        LogFault::CutAfter { lines: 200 },
        LogFault::Status {
            code: 503,
            reason: "ServiceUnavailable".into(),
            retry_after: None,
        },
    ] {
        rig.kube.push_fault(fault);
    }
    let mut sidecar = rig.sidecar("app", &[]);
    rig.wait_for("the first lines", || (0..1000).collect(), &sidecar)
        .await;
    // A cut while following, then more lines.
    rig.kube.push_fault(LogFault::CutAfter { lines: 0 });
    rig.write("app", 1000..2000);
    rig.wait_for("all lines", || (0..2000).collect(), &sidecar)
        .await;
    let addr = metrics_addr(&sidecar).await;
    let metrics = get(addr, "/metrics").await.unwrap();
    for reason in ["disconnect", "server_error", "throttled"] {
        let series = format!("firetail_stdout_errors_total{{reason=\"{reason}\"}}");
        assert!(labelled(&metrics, &series) >= 1.0, "{series}\n{metrics}");
    }
    rig.kube.terminate("app");
    stop_cleanly(&mut sidecar).await;
    rig.tally().exactly_once(0..2000).unwrap();
    let requests = rig.kube.log_requests();
    assert!(
        requests.iter().any(|r| r.contains("sinceTime=")),
        "{requests:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_is_reopened_after_the_idle_time_without_loss_or_duplicates() {
    let rig = Rig::new(&["app"], &[]).await;
    rig.write("app", 0..500);
    // The first follow delivers 200 lines, then stays open and silent while the container
    // goes on writing: only the idle reconnect gets the rest.
    rig.kube.push_fault(LogFault::StallAfter { lines: 200 });
    let mut sidecar = rig.sidecar("app", &[("FIRETAIL_STDOUT_IDLE_RECONNECT_MS", "1500")]);
    rig.write("app", 500..1000);
    rig.wait_for("all lines", || (0..1000).collect(), &sidecar)
        .await;
    let addr = metrics_addr(&sidecar).await;
    let metrics = get(addr, "/metrics").await.unwrap();
    let series = "firetail_stdout_errors_total{reason=\"idle_reconnect\"}";
    assert!(labelled(&metrics, series) >= 1.0, "{series}\n{metrics}");
    rig.kube.terminate("app");
    stop_cleanly(&mut sidecar).await;
    rig.tally().exactly_once(0..1000).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_then_restart_resumes_by_since_time_with_bounded_duplicates() {
    let rig = Rig::new(&["app"], &[]).await;
    let budget = ("FIRETAIL_MAX_INFLIGHT_BYTES", "262144");
    let mut first = rig.sidecar("app", &[budget]);
    // The app writes 6,000 lines over ~3 s while firetail is killed and restarted.
    for block in 0..30u64 {
        rig.write("app", block * 200..block * 200 + 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
        if block == 10 {
            first.kill().unwrap();
        }
    }
    let first_run = rig.tally();
    let delivered_before = first_run.distinct();
    assert!(
        delivered_before > 0,
        "the first run delivered nothing\n{}",
        first.stderr()
    );
    // What the killed run had checkpointed: the lines before its stamp, and `count` at it.
    let covered = checkpointed_lines(&rig.dirs, "app", 6000);
    let mut second = rig.sidecar("app", &[budget]);
    rig.wait_for("every line", || (0..6000).collect(), &second)
        .await;
    rig.kube.terminate("app");
    stop_cleanly(&mut second).await;
    let tally = rig.tally();
    eprintln!(
        "kill -9: {} lines delivered before the kill, {covered} of them checkpointed, {} duplicates after the restart",
        delivered_before,
        tally.duplicates()
    );
    assert!(tally.missing(0..6000).is_empty());
    // The restart resumes exactly at the checkpoint: what comes twice is precisely what the
    // killed run delivered past it (in flight at the kill, or acknowledged after its last
    // checkpoint write), and nothing the checkpoint covers. How many that is depends on the
    // machine's timing (the checkpoint interval is 200 ms); which lines, does not.
    let delivered_past_checkpoint: Vec<u64> = (covered..6000)
        .filter(|n| first_run.missing([*n]).is_empty())
        .collect();
    assert_eq!(tally.duplicated(), delivered_past_checkpoint);
    assert!(tally.most_copies() <= 2);
    let requests = rig.kube.log_requests();
    // The first run had no faults: its stream was never resumed, so the first request with a
    // sinceTime is the second run's first.
    let resumed = requests
        .iter()
        .find(|r| r.contains("sinceTime="))
        .unwrap_or_else(|| panic!("no request resumed by sinceTime: {requests:?}"));
    assert!(resumed.contains("follow=true"), "{resumed}");
    let skipped = strip_ansi(&second.stderr());
    assert!(!skipped.contains("checkpoint unreadable"), "{skipped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_restarts_are_followed_and_a_missed_tail_is_read_with_previous() {
    let rig = Rig::new(&["app"], &[]).await;
    let mut first = rig.sidecar("app", &[]);
    rig.write("app", 0..500);
    rig.wait_for("instance 0", || (0..500).collect(), &first)
        .await;
    // Let the checkpoint catch up, then firetail dies; meanwhile the container writes more,
    // restarts, and its next instance writes too.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    first.kill().unwrap();
    rig.write("app", 500..700);
    rig.kube.restart("app");
    rig.write("app", 700..1000);
    let mut second = rig.sidecar("app", &[]);
    rig.wait_for(
        "instance 0's tail and instance 1",
        || (0..1000).collect(),
        &second,
    )
    .await;
    // A restart while firetail follows: the stream ends, the next instance is followed.
    rig.write("app", 1000..1200);
    rig.kube.restart("app");
    rig.write("app", 1200..1500);
    rig.wait_for("instance 2", || (0..1500).collect(), &second)
        .await;
    rig.kube.terminate("app");
    stop_cleanly(&mut second).await;
    rig.tally().exactly_once(0..1500).unwrap();
    let requests = rig.kube.log_requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("previous=true&sinceTime=")),
        "{requests:?}"
    );
    // Each instance's lines carry that instance's container id.
    for e in rig.events() {
        let seq = firetail_testkit::route::seq_of(e["log"].as_str().unwrap()).unwrap();
        let n = match seq {
            0..700 => 0,
            700..1200 => 1,
            _ => 2,
        };
        let id = KubeApiStandIn::id_of("app", n);
        assert_eq!(
            e["kubernetes"]["docker_id"],
            id.trim_start_matches("containerd://"),
            "{e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_denying_pods_log_is_an_error_and_a_metric_and_is_retried() {
    let rig = Rig::new(&["app"], &[]).await;
    rig.kube.set_forbidden(true);
    rig.write("app", 0..100);
    let mut sidecar = rig.sidecar("app", &[]);
    let addr = metrics_addr(&sidecar).await;
    let series = "firetail_stdout_errors_total{reason=\"forbidden\"}";
    let start = Instant::now();
    loop {
        let m = get(addr, "/metrics").await.unwrap_or_default();
        if labelled(&m, series) >= 2.0 {
            break;
        }
        assert!(start.elapsed() < PATIENCE, "{m}\n{}", sidecar.stderr());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = strip_ansi(&sidecar.stderr());
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("denies reading this container's log")
            && l.contains("pods/log")),
        "{log}"
    );
    assert!(rig.tally().distinct() == 0);
    // The Role is fixed: the retries pick the lines up.
    rig.kube.set_forbidden(false);
    rig.wait_for("lines after the fix", || (0..100).collect(), &sidecar)
        .await;
    rig.kube.terminate("app");
    stop_cleanly(&mut sidecar).await;
    rig.tally().exactly_once(0..100).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drain_reads_each_stream_to_its_end() {
    let rig = Rig::new(&["app"], &[]).await;
    let mut sidecar = rig.sidecar("app", &[]);
    rig.write("app", 0..500);
    rig.wait_for("the first lines", || (0..500).collect(), &sidecar)
        .await;
    // SIGTERM first (a native sidecar outlives the app), then the app's last words and exit.
    sidecar.terminate().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    rig.write("app", 500..1500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    rig.kube.terminate("app");
    let status = sidecar
        .wait_timeout(PATIENCE)
        .unwrap()
        .expect("exits after its drain");
    assert!(status.success(), "{status:?}\n{}", sidecar.stderr());
    rig.tally().exactly_once(0..1500).unwrap();

    // A container that does not exit within the drain deadline: reported, exit status 75.
    let rig = Rig::new(&["app"], &[]).await;
    let mut sidecar = rig.sidecar(
        "app",
        &[
            ("FIRETAIL_DRAIN_TIMEOUT_SECS", "2"),
            ("FIRETAIL_REQUEST_TIMEOUT_SECS", "1"),
        ],
    );
    rig.write("app", 0..100);
    rig.wait_for("the lines", || (0..100).collect(), &sidecar)
        .await;
    sidecar.terminate().unwrap();
    let status = sidecar
        .wait_timeout(PATIENCE)
        .unwrap()
        .expect("exits at its deadline");
    assert_eq!(
        status.code(),
        Some(i32::from(firetail_sidecar::drain::EXIT_DRAIN_INCOMPLETE)),
        "{}",
        sidecar.stderr()
    );
    let log = strip_ansi(&sidecar.stderr());
    assert!(
        log.contains("drain ended before this container's log stream ended")
            && log.contains("k8s://app"),
        "{log}"
    );
    rig.tally().exactly_once(0..100).unwrap();
}

/// How many of lines `0..lines` (written to `container` only, from the stand-in's first
/// stamp) the sidecar's stdout checkpoint under `dirs` covers: every line stamped before its
/// time, and its `count` lines at that time.
fn checkpointed_lines(dirs: &PodDirs, container: &str, lines: u64) -> u64 {
    let path = dirs.data().join("stdout-checkpoints.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return 0;
    };
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let entry = doc["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["container"] == container)
        .cloned()
        .unwrap_or_default();
    let Some(time) = entry["time"].as_str() else {
        return 0;
    };
    let count = entry["count"].as_u64().unwrap_or(0);
    let stamp_of = |n| {
        let (secs, nanos) = line_stamp(FIRST_STAMP_SECS, n);
        stamp_text(secs, nanos)
    };
    let first_at = (0..lines)
        .find(|n| stamp_of(*n) == time)
        .unwrap_or_else(|| panic!("checkpoint time {time} is no line's stamp"));
    first_at + count
}
