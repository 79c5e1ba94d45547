//! Shipping through the real SDK against the FAULT-INJECTING Firehose endpoint (testkit): the
//! faults moto cannot produce. Every test counts events: nothing lost, and acknowledged
//! entries never resent.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use firetail_sidecar::drain::{EXIT_DRAIN_INCOMPLETE, Outcome};
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::run::RunConfig;
use firetail_tail::{DrainEnd, TailConfig};
use firetail_testkit::{FaultPlan, FirehoseEndpoint};
use firetail_wire::RecordFormat;

use crate::common::{Running, client_for, counts, decode, pod, ship_with, tail_config};

/// Writes `per_file` lines to each of `files` files under `<root>/logs/<container>/`.
fn write_lines(root: &Path, files: usize, per_file: usize) -> BTreeMap<String, usize> {
    let mut expected = BTreeMap::new();
    for f in 0..files {
        let dir = root.join(format!("logs/c{f}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut out = std::fs::File::create(dir.join("app.log")).unwrap();
        for n in 0..per_file {
            let line = format!("file {f} line {n} {}", "p".repeat(n % 150));
            writeln!(out, "{line}").unwrap();
            expected.insert(line, 1);
        }
    }
    expected
}

fn events_of(endpoint: &FirehoseEndpoint) -> Vec<serde_json::Value> {
    endpoint.accepted().iter().flat_map(|r| decode(r)).collect()
}

/// Small records so a few thousand events make many records and calls, and faults hit often.
fn small_limits() -> Limits {
    Limits {
        record_bytes: 8 * 1024,
        batch_records: 10,
        batch_bytes: 64 * 1024,
        ndjson_events: 50,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_throttling_5xx_and_resets_lose_nothing_and_resend_only_failures() {
    let plan = FaultPlan {
        seed: 42,
        record_failure_ratio: 0.3,
        throttle_ratio: 0.1,
        throttle_burst_calls: 2,
        server_error_ratio: 0.1,
        reset_ratio: 0.05,
        delay_ratio: 0.05,
        delay: Duration::from_millis(50),
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    for format in [
        RecordFormat::Ndjson,
        RecordFormat::NdjsonGzip,
        RecordFormat::Json,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let expected = write_lines(dir.path(), 3, 800);
        let before = endpoint.accepted().len();
        let obs = Arc::new(Observability::default());
        let config = RunConfig {
            ship: ship_with("logs", |s| s.record_format = format),
            tail: tail_config(dir.path()),
            pod: pod(),
            obs: Arc::clone(&obs),
            limits: small_limits(),
            kube: None,
        };
        let running = Running::start(config, client_for(&endpoint.url()));
        let report = running.stop().await;
        assert_eq!(report.drain.end, DrainEnd::AllRead, "{format}");
        assert_eq!(report.drain.unacked_bytes, 0, "{format}");

        let records = endpoint.accepted();
        let events: Vec<serde_json::Value> =
            records[before..].iter().flat_map(|r| decode(r)).collect();
        // Exactly once: a resent acknowledged entry would show up twice.
        assert_eq!(counts(&events), expected, "{format}");
        let m = &obs.metrics;
        assert_eq!(m.events_sent.get(), 2400, "{format}");
        assert_eq!(
            m.records_sent.get(),
            (records.len() - before) as u64,
            "{format}"
        );
    }
    // The faults did happen, through every path of the sender.
    let s = endpoint.stats();
    assert!(s.records_failed > 50, "{s:?}");
    assert!(s.throttled_calls > 5, "{s:?}");
    assert!(s.server_errors > 5, "{s:?}");
    assert!(s.resets > 0, "{s:?}");
    assert_eq!(s.lost_acks, 0);
    assert_eq!(
        s.invalid_calls, 0,
        "every call within Firehose limits: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_acks_cause_bounded_duplicates_never_loss() {
    let plan = FaultPlan {
        seed: 7,
        lost_ack_ratio: 0.2,
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_lines(dir.path(), 2, 1000);
    let config = RunConfig {
        ship: ship_with("logs", |s| s.record_format = RecordFormat::Ndjson),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::new(Observability::default()),
        limits: small_limits(),
        kube: None,
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    let report = running.stop().await;
    assert_eq!(report.drain.unacked_bytes, 0);
    let got = counts(&events_of(&endpoint));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "every line arrived"
    );
    let duplicates: usize = got.values().map(|n| n - 1).sum();
    let s = endpoint.stats();
    assert!(s.lost_acks > 0, "{s:?}");
    // A duplicate can only come from a call whose answer was lost: at most one batch each.
    let per_call = small_limits().batch_records * small_limits().ndjson_events;
    assert!(duplicates > 0, "lost acks must have caused resends");
    assert!(
        duplicates as u64 <= s.lost_acks * per_call as u64,
        "{duplicates} duplicates for {} lost acks",
        s.lost_acks
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_stream_makes_unready_keeps_data_and_recovers() {
    let plan = FaultPlan {
        streams: Some(vec!["some-other-stream".into()]),
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_lines(dir.path(), 1, 300);
    let obs = Arc::new(Observability::default());
    let config = RunConfig {
        ship: ship_with("logs", |s| s.record_format = RecordFormat::NdjsonGzip),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::clone(&obs),
        limits: Limits::FIREHOSE,
        kube: None,
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    // Wait until the sender has met the permanent error and marked the sidecar unready.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Err(why) = obs.health.readiness()
            && why.contains("ResourceNotFoundException")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never became unready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(endpoint.accepted().is_empty());
    // The operator creates the stream; the slow retry delivers everything.
    endpoint.set_plan(FaultPlan::default());
    let report = running.stop().await;
    assert_eq!(report.drain.unacked_bytes, 0);
    assert_eq!(counts(&events_of(&endpoint)), expected);
    assert!(obs.health.readiness().is_ok(), "ready again after recovery");
    let metrics = obs.metrics.encode();
    assert!(
        metrics.contains("firetail_failures_total{code=\"ResourceNotFoundException\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modelled_throttling_errors_are_retried_too() {
    // HTTP 400 with `__type: ServiceUnavailableException`: the SDK surfaces it as a modelled
    // error instead of retrying; the sender must back off and retry it like a 503.
    let plan = FaultPlan {
        seed: 3,
        throttle_ratio: 0.4,
        throttle_burst_calls: 3,
        throttle_status: 400,
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_lines(dir.path(), 2, 500);
    let obs = Arc::new(Observability::default());
    let config = RunConfig {
        ship: ship_with("logs", |s| s.record_format = RecordFormat::NdjsonGzip),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::clone(&obs),
        limits: small_limits(),
        kube: None,
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    let report = running.stop().await;
    assert_eq!(report.drain.unacked_bytes, 0);
    assert_eq!(counts(&events_of(&endpoint)), expected);
    assert!(endpoint.stats().throttled_calls > 0);
    let metrics = obs.metrics.encode();
    assert!(
        metrics.contains("firetail_retries_total{code=\"ServiceUnavailableException\"}"),
        "{metrics}"
    );
    assert!(
        obs.health.readiness().is_ok(),
        "throttling is not a permanent error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_deadline_leaves_undelivered_lines_in_the_files_for_the_next_start() {
    // Firehose is unreachable for the whole first run.
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        dead_for: Duration::from_secs(3600),
        ..FaultPlan::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let expected = write_lines(dir.path(), 2, 300);
    let config = |obs: &Arc<Observability>| RunConfig {
        ship: ship_with("logs", |s| s.drain.timeout = Duration::from_secs(2)),
        // A budget smaller than the files: the drain leaves bytes unread as well as unacked.
        tail: TailConfig {
            max_inflight_bytes: 8 * 1024,
            ..tail_config(dir.path())
        },
        pod: pod(),
        obs: Arc::clone(obs),
        limits: small_limits(),
        kube: None,
    };
    let obs = Arc::new(Observability::default());
    let report = Running::start(config(&obs), client_for(&endpoint.url()))
        .stop()
        .await;
    assert!(report.drain.unacked_bytes > 0, "{:?}", report.drain);
    assert!(report.abandoned_batches > 0);
    assert!(endpoint.accepted().is_empty());
    assert_eq!(obs.metrics.events_sent.get(), 0);
    // The outcome names every file with what is left in it: nothing was acknowledged, so
    // unread + unacked is the whole file, and with the small budget some of it was never read.
    let outcome = &report.outcome;
    assert_eq!(outcome.outcome, Outcome::Deadline, "{outcome:?}");
    assert_eq!(outcome.exit_code(), EXIT_DRAIN_INCOMPLETE);
    assert_eq!(outcome.files_left.len(), 2, "{outcome:?}");
    for f in &outcome.files_left {
        let size = std::fs::metadata(&f.path).unwrap().len();
        assert_eq!(f.unread_bytes + f.unacked_bytes, size, "{f:?}");
    }
    assert!(
        outcome.unread_bytes > 0 && outcome.unacked_bytes > 0,
        "{outcome:?}"
    );
    let metrics = obs.encode();
    for expected in [
        "firetail_drains_total{outcome=\"deadline\"} 1".to_owned(),
        "firetail_drains_total{outcome=\"complete\"} 0".to_owned(),
        format!("firetail_drain_unread_bytes {}", outcome.unread_bytes),
        format!("firetail_drain_unacked_bytes {}", outcome.unacked_bytes),
    ] {
        assert!(metrics.contains(&expected), "{expected} not in\n{metrics}");
    }

    // Firehose is back; the next start (same files, same checkpoints) delivers everything.
    endpoint.set_plan(FaultPlan::none());
    let obs = Arc::new(Observability::default());
    let report = Running::start(config(&obs), client_for(&endpoint.url()))
        .stop()
        .await;
    assert_eq!(report.drain.unacked_bytes, 0);
    assert_eq!(
        report.outcome.outcome,
        Outcome::Complete,
        "{:?}",
        report.outcome
    );
    assert_eq!(report.outcome.exit_code(), 0);
    assert!(report.outcome.files_left.is_empty());
    let metrics = obs.encode();
    assert!(
        metrics.contains("firetail_drains_total{outcome=\"complete\"} 1")
            && metrics.contains("firetail_drain_unread_bytes 0"),
        "{metrics}"
    );
    assert_eq!(
        counts(&events_of(&endpoint)),
        expected,
        "nothing lost, nothing twice"
    );
}
