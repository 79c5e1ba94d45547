//! Bad input, through the `firetail-redrive` binary against moto's S3 and Firehose, into a
//! Datadog stream with `--delete-after`: an unknown error-type directory, records of several
//! origins in one object, a key that says one origin and records of another, a truncated gzip
//! object, a truncated gzip record, transform output whose body is corrupt three ways, and a
//! Datadog record with no event time. Each is reported by key, line and reason; the exit
//! status is 2; every good record beside them arrives once; only the clean object is deleted.

use std::process::Command;
use std::time::Duration;

use firetail_testkit::{ChildGuard, MotoServer, workspace_bin};
use firetail_wire::Destination;
use firetail_wire::gzip::gzip;
use flate2::Compression;

use super::common::{create_bucket, delivered, keys_in, occurrences, put};
use crate::redrive_producer::{http_endpoint_failed, object, packed, processing_failed, transform};

const BACKUP: &str = "bad-backup";
const STREAM: &str = "bad";
const DEST: &str = "bad-dest";
const CODE: &str = "HttpEndpoint.DestinationException";

const GOOD: &str = "failed/datadog/http-endpoint-failed/2026/12/01/10/firetail-logs-1-good.gz";
const UNKNOWN: &str = "failed/datadog/weird-failed/2026/12/01/10/firetail-logs-1-unknown.gz";
const MIXED: &str = "failed/datadog-errors/2026/12/01/10/firetail-logs-1-mixed.gz";
const MISFILED: &str = "failed/datadog/processing-failed/2026/12/01/10/firetail-logs-1-misfiled.gz";
const CUT: &str = "failed/datadog/http-endpoint-failed/2026/12/01/11/firetail-logs-1-cut.gz";
const CORRUPT: &str =
    "failed/datadog/http-endpoint-failed/2026/12/01/12/firetail-logs-1-corrupt.gz";
const UNTIMED: &str = "failed/datadog/processing-failed/2026/12/01/13/firetail-logs-1-untimed.gz";

/// Sidecar records of `n` young lines each named `what`, one event per record.
fn sidecar(what: &str, n: usize, now: i64) -> Vec<Vec<u8>> {
    let lines: Vec<String> = (0..n).map(|i| format!("{what} {i}")).collect();
    packed(&lines, 1, now - 3_600_000)
}

/// The transform's Datadog output of `n` young packed records named `what`.
fn output(what: &str, n: usize, now: i64) -> Vec<Vec<u8>> {
    let lines: Vec<String> = (0..n * 2).map(|i| format!("{what} {i}")).collect();
    transform(
        Destination::Datadog,
        &packed(&lines, 2, now - 3_600_000),
        now - 3_500_000,
    )
}

fn http(data: &[u8], n: u64, now: i64) -> String {
    http_endpoint_failed(data, CODE, now - 3_500_000, n)
}

fn processing(data: &[u8], now: i64) -> String {
    processing_failed(data, "Lambda.FunctionError", now - 3_500_000)
}

/// Uploads every object; returns the records that must arrive.
async fn upload(moto: &MotoServer, now: i64) -> Vec<Vec<u8>> {
    create_bucket(moto, BACKUP).await;
    let s3 = moto.s3_client();
    let mut must_arrive = Vec::new();
    let mut objects: Vec<(&str, Vec<u8>)> = Vec::new();

    let good = output("good", 2, now);
    let lines: Vec<String> = good
        .iter()
        .enumerate()
        .map(|(i, d)| http(d, i as u64, now))
        .collect();
    must_arrive.extend(good);
    objects.push((GOOD, object(&lines, true)));

    let unknown = output("unknown", 1, now);
    objects.push((UNKNOWN, object(&[http(&unknown[0], 0, now)], true)));

    let s = sidecar("mixed", 2, now);
    let o = output("mixed", 1, now);
    let lines = [
        processing(&s[0], now),
        processing(&s[1], now),
        http(&o[0], 0, now),
    ];
    objects.push((MIXED, object(&lines, true)));

    let o = output("misfiled", 1, now);
    objects.push((MISFILED, object(&[http(&o[0], 0, now)], true)));

    let o = output("cut", 2, now);
    let lines: Vec<String> = o
        .iter()
        .enumerate()
        .map(|(i, d)| http(d, i as u64, now))
        .collect();
    let whole = object(&lines, true);
    objects.push((CUT, whole[..whole.len() - 20].to_vec()));

    let o = output("corrupt", 3, now);
    let mut cut_record = o[1].clone();
    cut_record.truncate(cut_record.len() - 12);
    let marked = |body: &str| gzip(body.as_bytes(), Compression::default());
    let lines = [
        http(&o[0], 0, now),
        http(&cut_record, 1, now),
        http(
            &marked(
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","owner":"123456789012","logEv"#,
            ),
            2,
            now,
        ),
        http(
            &marked(
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"firetail"}"#,
            ),
            3,
            now,
        ),
        http(
            &marked(
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"firetail","logStream":"shop/cart/app","subscriptionFilters":["firetail"],"logEvents":[{"id":"0","timestamp":1,"message":"{\"firetail_transform\":1,\"message\":\"x\",\"times"}]}"#,
            ),
            4,
            now,
        ),
        http(&o[2], 5, now),
    ];
    must_arrive.push(o[0].clone());
    must_arrive.push(o[2].clone());
    objects.push((CORRUPT, object(&lines, true)));

    // A sidecar event without its `time`: nothing says when it happened.
    let s = sidecar("untimed", 2, now);
    let mut event: serde_json::Value = serde_json::from_slice(&s[0]).unwrap();
    event.as_object_mut().unwrap().remove("time");
    let untimed = serde_json::to_vec(&event).unwrap();
    objects.push((
        UNTIMED,
        object(&[processing(&untimed, now), processing(&s[1], now)], true),
    ));
    must_arrive.push(s[1].clone());

    for (key, body) in objects {
        put(&s3, BACKUP, key, body).await;
    }
    must_arrive
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_reported_by_key_and_line_exits_2_and_nothing_bad_is_deleted() {
    let moto = MotoServer::start();
    moto.create_s3_stream(STREAM, DEST).await;
    let must_arrive = upload(&moto, firetail_transform::now_ms()).await;
    let state = tempfile::tempdir().unwrap();

    let mut cmd = Command::new(workspace_bin("firetail-redrive"));
    cmd.envs(firetail_testkit::aws::sdk_env(moto.url()))
        .env("FIRETAIL_REDRIVE_LOG_FORMAT", "text")
        .args([
            "--bucket",
            BACKUP,
            "--prefix",
            "failed/",
            "--delivery-stream",
            STREAM,
            "--destination",
            "datadog",
            "--delete-after",
            "--s3-force-path-style",
            "--progress",
            "never",
            "--state-dir",
        ])
        .arg(state.path());
    let mut child = ChildGuard::spawn("firetail-redrive", cmd).unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    let out = child.stdout();
    assert_eq!(status.code(), Some(2), "{out}\n{}", child.stderr());

    let corrupt =
        |line: u64, why: &str| format!("corrupt: {CORRUPT}:{line}: errorCode \"{CODE}\": {why}");
    for want in [
        format!("origin unclear: {UNKNOWN}: \"weird-failed\" in the key is not an error output type"),
        format!("origin unclear: {MIXED}:3: the record is a delivery failure, but most records of this object are a transform failure"),
        format!("origin unclear: {MIXED}: records of several origins in one object (1 of 3 are not a transform failure)"),
        format!("origin unclear: {MISFILED}:1: the record's fields make it a delivery failure, but the key says processing-failed"),
        format!("object error: {CUT}: gzip payload is corrupt or truncated"),
        corrupt(2, "gzip payload is corrupt or truncated"),
        corrupt(3, "the transform's marker is present but the record is corrupt: not a JSON object"),
        corrupt(4, "the transform's marker is present but the record is corrupt: the envelope has no logEvents array"),
        corrupt(5, "the transform's marker is present but the record is corrupt: the log of event 1 is not a JSON object"),
        format!("no event time: {UNTIMED}:1: errorCode \"Lambda.FunctionError\": 1 of 1 events carry no time"),
        "bad input: 4 corrupt records, 5 records in objects of unclear origin".to_owned(),
        "datadog window: 0 records too old (left), 0 re-stamped (0 events), 1 without event time (left)".to_owned(),
        format!("records: {} sent", must_arrive.len()),
        "INCOMPLETE: something was left in the bucket".to_owned(),
    ] {
        assert!(out.contains(&want), "missing {want:?} in\n{out}");
    }

    let got = delivered(&moto, DEST).await;
    for record in &must_arrive {
        assert_eq!(occurrences(&got, record), 1);
    }
    let arrived: usize = must_arrive.iter().map(Vec::len).sum();
    assert_eq!(got.len(), arrived, "nothing else arrived");
    let mut left = vec![UNKNOWN, MIXED, MISFILED, CUT, CORRUPT, UNTIMED];
    left.sort();
    assert_eq!(
        keys_in(&moto, BACKUP).await,
        left,
        "only the clean object is deleted"
    );
}
