//! The `firetail-redrive` binary interrupted and resumed: S3 is moto's server, Firehose the
//! fault-injecting endpoint slowed down so the run can be stopped half-way. SIGTERM finishes
//! the call in flight and saves progress, so the resumed run delivers every record exactly
//! once; SIGKILL can cost at most the one call whose answer was not saved.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_testkit::{ChildGuard, FaultPlan, FirehoseEndpoint, MotoServer, workspace_bin};

use super::common::{create_bucket, error_line, put};

const OBJECTS: usize = 30;
const PER_OBJECT: usize = 3;

/// 30 objects of 3 records each; returns every record's bytes.
async fn bulk(moto: &MotoServer) -> Vec<Vec<u8>> {
    create_bucket(moto, "backup").await;
    let s3 = moto.s3_client();
    let mut all = Vec::new();
    for o in 0..OBJECTS {
        let mut body = String::new();
        for r in 0..PER_OBJECT {
            let data = format!("{{\"log\":\"object {o:03} record {r}\"}}\n").into_bytes();
            body.push_str(&error_line(&data, 1_764_410_400_000 + (o * 10 + r) as i64));
            body.push('\n');
            all.push(data);
        }
        let key = format!("failed/processing-failed/2025/11/29/logs-{o:03}");
        put(&s3, "backup", &key, body.into_bytes()).await;
    }
    all
}

fn slow() -> FaultPlan {
    FaultPlan {
        delay_ratio: 1.0,
        delay: Duration::from_millis(150),
        ..FaultPlan::default()
    }
}

fn start(moto: &MotoServer, endpoint: &FirehoseEndpoint, state: &Path) -> ChildGuard {
    let mut cmd = Command::new(workspace_bin("firetail-redrive"));
    cmd.envs(firetail_testkit::aws::sdk_env(moto.url()))
        .env("AWS_ENDPOINT_URL_FIREHOSE", endpoint.url())
        .env("FIRETAIL_REDRIVE_LOG_FORMAT", "text")
        .env("FIRETAIL_REDRIVE_RETRY_BASE_MS", "10")
        .env("FIRETAIL_REDRIVE_RETRY_MAX_MS", "200")
        .args([
            "--bucket",
            "backup",
            "--prefix",
            "failed/",
            "--delivery-stream",
            "logs",
            "--s3-force-path-style",
            "--progress",
            "never",
            "--state-dir",
        ])
        .arg(state);
    ChildGuard::spawn("firetail-redrive", cmd).unwrap()
}

fn wait_accepted(endpoint: &FirehoseEndpoint, count: u64) {
    let start = Instant::now();
    while endpoint.stats().records_accepted < count {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {count} records"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn counts(records: Vec<Vec<u8>>) -> BTreeMap<Vec<u8>, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_then_resume_delivers_every_record_exactly_once() {
    let moto = MotoServer::start();
    let all = bulk(&moto).await;
    let endpoint = FirehoseEndpoint::start(slow()).await.unwrap();
    let state = tempfile::tempdir().unwrap();

    let mut first = start(&moto, &endpoint, state.path());
    wait_accepted(&endpoint, 10 * PER_OBJECT as u64);
    first.terminate().unwrap();
    let status = first
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(2), "stderr: {}", first.stderr());
    assert!(first.stdout().contains("interrupted"), "{}", first.stdout());
    let after_first = endpoint.stats().records_accepted;
    assert!(
        after_first < all.len() as u64,
        "stopped before the end ({after_first})"
    );

    endpoint.set_plan(FaultPlan::default());
    let mut second = start(&moto, &endpoint, state.path());
    let status = second
        .wait_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {}", second.stderr());
    let out = second.stdout();
    assert!(
        out.contains("OK: everything in scope was redriven"),
        "{out}"
    );
    assert!(
        out.contains(&format!("records: {} sent", all.len() as u64 - after_first)),
        "{out}"
    );
    assert_eq!(
        counts(endpoint.accepted()),
        counts(all),
        "exactly once across the interruption"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_resume_loses_nothing_and_resends_at_most_one_call() {
    let moto = MotoServer::start();
    let all = bulk(&moto).await;
    let endpoint = FirehoseEndpoint::start(slow()).await.unwrap();
    let state = tempfile::tempdir().unwrap();

    let mut first = start(&moto, &endpoint, state.path());
    wait_accepted(&endpoint, 10 * PER_OBJECT as u64);
    first.kill().unwrap();
    let after_kill = endpoint.stats().records_accepted;
    assert!(after_kill < all.len() as u64, "killed before the end");
    // The state file survived the kill whole (it is replaced atomically); a kill in the middle
    // of a save leaves only a `.json.tmp` beside it, which the next save overwrites.
    let files: Vec<_> = std::fs::read_dir(state.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert!(saved["objects"].as_object().unwrap().len() >= 9, "{saved}");

    endpoint.set_plan(FaultPlan::default());
    let mut second = start(&moto, &endpoint, state.path());
    let status = second
        .wait_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {}", second.stderr());

    let got = counts(endpoint.accepted());
    let expected = counts(all);
    for (record, n) in &expected {
        let arrived = got.get(record).copied().unwrap_or(0);
        assert!(arrived >= *n, "lost: {}", String::from_utf8_lossy(record));
    }
    let total: usize = got.values().sum();
    let duplicates = total - expected.len();
    assert!(
        duplicates <= PER_OBJECT,
        "at most the call in flight at the kill is resent: {duplicates} duplicates"
    );
}
