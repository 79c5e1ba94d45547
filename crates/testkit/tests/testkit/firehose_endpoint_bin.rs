//! The `firehose-endpoint` binary: starts, serves the real SDK, reports on SIGTERM, writes the
//! accepted records out.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use firetail_testkit::ChildGuard;
use firetail_testkit::aws::firehose_client;

const BIN: &str = env!("CARGO_BIN_EXE_firehose-endpoint");

/// Waits for the `listening URL` line and returns the URL.
fn wait_listening(child: &ChildGuard) -> String {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if let Some(url) = child
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("listening ").map(str::to_owned))
        {
            return url;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("no listening line; stderr: {}", child.stderr());
}

async fn send(url: &str, lines: &[&str]) -> i32 {
    let records = lines
        .iter()
        .map(|l| Record::builder().data(Blob::new(*l)).build().unwrap())
        .collect();
    firehose_client(url)
        .put_record_batch()
        .delivery_stream_name("bench")
        .set_records(Some(records))
        .send()
        .await
        .unwrap()
        .failed_put_count()
}

#[tokio::test]
async fn counts_reports_on_sigterm_and_writes_records_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("records");
    let mut command = Command::new(BIN);
    command.arg("--out").arg(&out);
    let mut child = ChildGuard::spawn("firehose-endpoint", command).unwrap();
    let url = wait_listening(&child);

    assert_eq!(send(&url, &["one\n", "two\n"]).await, 0);
    assert_eq!(send(&url, &["three\n"]).await, 0);

    child.terminate().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    assert!(status.success(), "{}", child.stderr());
    let stdout = child.stdout();
    let last = stdout.lines().last().unwrap();
    assert_stats(
        last,
        &[
            ("requests", 2),
            ("records", 3),
            ("bytes", 14),
            ("billed_bytes", 3 * 5120),
            ("failed_records", 0),
        ],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"one\ntwo\nthree\n");
}

#[tokio::test]
async fn injects_failures_when_asked_and_discard_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("records");
    let mut command = Command::new(BIN);
    command
        .args(["--fail-ratio", "1", "--discard", "--out"])
        .arg(&out);
    let mut child = ChildGuard::spawn("firehose-endpoint", command).unwrap();
    let url = wait_listening(&child);

    assert_eq!(send(&url, &["a\n", "b\n", "c\n"]).await, 3);

    child.terminate().unwrap();
    child
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .unwrap();
    let stdout = child.stdout();
    let last = stdout.lines().last().unwrap();
    assert_stats(
        last,
        &[
            ("requests", 1),
            ("records", 0),
            ("bytes", 0),
            ("failed_records", 3),
        ],
    );
    assert!(!out.exists(), "--discard must not write records");
}

#[test]
fn rejects_ratios_outside_zero_to_one() {
    let output = Command::new(BIN)
        .args(["--fail-ratio", "1.5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--fail-ratio must be between 0 and 1")
    );
}

/// Checks `key=value` counters of the endpoint's final `stats ...` line.
fn assert_stats(line: &str, want: &[(&str, u64)]) {
    assert!(line.starts_with("stats "), "{line}");
    let got: std::collections::HashMap<&str, u64> = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect();
    for (key, value) in want {
        assert_eq!(got.get(key), Some(value), "{key} in {line}");
    }
}
