//! The real `firetail-transform` binary, driven through the Lambda Runtime API on 127.0.0.1,
//! with the fault-injecting endpoint behind the re-ingest path (moto's Firehose behind it is an
//! end-to-end test).

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_testkit::firehose_endpoint::{FaultPlan, FirehoseEndpoint};
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{FirehoseEvent, FirehoseResponse, RecordResult};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_firetail-transform");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Credentials and endpoint for a Firehose peer at `url` (moto or the fault endpoint).
fn aws_env(url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_ENDPOINT_URL_FIREHOSE", url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

async fn invoke(api: &RuntimeApi, event: &[u8]) -> FirehoseResponse {
    let body = api.invoke(event.to_vec()).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// `count` sidecar events `seq=<n>` in `records` one-event records of a stream `arn`.
fn sequenced_event(arn: &str, records: usize, pad: usize) -> FirehoseEvent {
    FirehoseEvent {
        invocation_id: "inv".into(),
        delivery_stream_arn: arn.into(),
        region: "us-east-1".into(),
        records: (0..records)
            .map(|i| {
                let line = format!(
                    r#"{{"log":"seq={i} {}","kubernetes":{{"namespace_name":"ns","pod_name":"p","container_name":"c"}}}}"#,
                    "x".repeat(pad)
                );
                InputRecord {
                    record_id: format!("r{i}"),
                    approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                    data: STANDARD.encode(line),
                }
            })
            .collect(),
    }
}

fn seq_of_log_line(bytes: &[u8]) -> u64 {
    let v: Value = serde_json::from_slice(bytes).unwrap();
    let log = v["log"].as_str().or(v["message"].as_str()).unwrap();
    log.trim_start_matches("seq=")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn binary_answers_invocations_over_the_runtime_api() {
    let mut api = RuntimeApi::start().await.unwrap();
    let mut function =
        spawn_function(Path::new(BIN), &api, [("FIRETAIL_DESTINATION", "datadog")]).unwrap();

    for name in [
        "sidecar-json.json",
        "sidecar-packed.json",
        "fluent-bit-fargate.json",
        "cloudwatch-logs.json",
        "hostile.json",
    ] {
        let input = fixture(name);
        let response = invoke(&api, &input).await;
        // The binary answers exactly what the library computes.
        let event: FirehoseEvent = serde_json::from_slice(&input).unwrap();
        let client = crate::common::Recorder::accepting();
        let (expected, _) = firetail_transform::handle(
            &event,
            &firetail_transform::Config::default(),
            &client,
            None,
        )
        .await;
        assert_eq!(response.records.len(), expected.records.len(), "{name}");
        for (got, want) in response.records.iter().zip(&expected.records) {
            assert_eq!(
                (&got.record_id, got.result),
                (&want.record_id, want.result),
                "{name}"
            );
            // A record without an arrival time is stamped with "now", which differs.
            if got.record_id != "no-timestamp" {
                assert_eq!(got.data, want.data, "{name} {}", got.record_id);
            }
        }
    }

    // One EMF line per invocation, on stdout, parseable on its own.
    let stdout = function.stdout();
    let emf: Vec<Value> = stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(emf.len(), 5, "{stdout}");
    assert_eq!(emf[4]["RecordsIn"], 11);
    assert_eq!(emf[4]["RecordsFailed"], 2);
    assert_eq!(emf[4]["FunctionName"], "firetail-transform");
    // Bad records are explained in the logs, at WARN, with their record id.
    let stderr_and_out = format!("{stdout}{}", function.stderr());
    assert!(
        stderr_and_out.contains("malformed-base64"),
        "{stderr_and_out}"
    );

    api.shutdown().await;
    let status = function.wait_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        status.is_some(),
        "the function exits once the Runtime API is gone"
    );
}

#[tokio::test]
async fn invalid_configuration_stops_the_function_with_a_clear_message() {
    let api = RuntimeApi::start().await.unwrap();
    let mut function =
        spawn_function(Path::new(BIN), &api, [("FIRETAIL_DESTINATION", "splunk")]).unwrap();
    let status = function
        .wait_timeout(Duration::from_secs(20))
        .unwrap()
        .expect("exits");
    assert!(!status.success());
    let logs = format!("{}{}", function.stdout(), function.stderr());
    assert!(logs.contains("FIRETAIL_DESTINATION"), "{logs}");
}

#[tokio::test]
async fn partial_failures_resend_only_the_failed_entries() {
    let plan = FaultPlan {
        seed: 7,
        record_failure_ratio: 0.4,
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let mut env = aws_env(&endpoint.url());
    env.push(("FIRETAIL_RESPONSE_LIMIT_BYTES".into(), "20000".into()));
    env.push(("FIRETAIL_REINGEST_MAX_ATTEMPTS".into(), "10".into()));
    let _function = spawn_function(Path::new(BIN), &api, env).unwrap();

    let arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs";
    let event = sequenced_event(arn, 200, 500);
    let response = invoke(&api, &serde_json::to_vec(&event).unwrap()).await;
    let dropped = response
        .records
        .iter()
        .filter(|r| r.result == RecordResult::Dropped)
        .count();
    assert!(
        response
            .records
            .iter()
            .all(|r| r.result != RecordResult::ProcessingFailed)
    );

    let accepted = endpoint.accepted();
    assert_eq!(
        accepted.len(),
        dropped,
        "each overflow record accepted exactly once"
    );
    let mut seqs: Vec<u64> = accepted.iter().map(|r| seq_of_log_line(r)).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), dropped, "no acknowledged entry was sent twice");
    let stats = endpoint.stats();
    assert!(
        stats.records_failed > 0,
        "the plan injected failures: {stats:?}"
    );
}

#[tokio::test]
async fn a_dead_stream_turns_overflow_into_processing_failed() {
    // The stream does not exist: every call is refused, so the overflow records must go to
    // the backup bucket (ProcessingFailed) instead of being dropped.
    let plan = FaultPlan {
        streams: Some(vec![]),
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let mut env = aws_env(&endpoint.url());
    env.push(("FIRETAIL_RESPONSE_LIMIT_BYTES".into(), "20000".into()));
    env.push(("FIRETAIL_REINGEST_MAX_ATTEMPTS".into(), "2".into()));
    let function = spawn_function(Path::new(BIN), &api, env).unwrap();

    let arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/gone";
    let event = sequenced_event(arn, 100, 500);
    let response = invoke(&api, &serde_json::to_vec(&event).unwrap()).await;
    let ok = response
        .records
        .iter()
        .filter(|r| r.result == RecordResult::Ok)
        .count();
    let failed = response
        .records
        .iter()
        .filter(|r| r.result == RecordResult::ProcessingFailed)
        .count();
    assert!(ok > 0 && failed > 0);
    assert_eq!(ok + failed, 100, "nothing is Dropped when re-ingest fails");
    assert!(endpoint.accepted().is_empty());
    let logs = format!("{}{}", function.stdout(), function.stderr());
    assert!(logs.contains("ResourceNotFoundException"), "{logs}");
}

#[tokio::test]
async fn a_hanging_stream_turns_overflow_into_processing_failed_before_the_deadline() {
    // Every re-ingest call is answered only after two minutes: far past the invocation's
    // 12-second deadline. The function must answer in time, the records it could not hand back
    // marked ProcessingFailed (Firehose keeps them in the backup bucket), never time out —
    // a timeout fails and retries the whole batch.
    let plan = FaultPlan {
        delay_ratio: 1.0,
        delay: Duration::from_secs(120),
        ..FaultPlan::default()
    };
    let endpoint = FirehoseEndpoint::start(plan).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let mut env = aws_env(&endpoint.url());
    env.push(("FIRETAIL_RESPONSE_LIMIT_BYTES".into(), "20000".into()));
    let _function = spawn_function(Path::new(BIN), &api, env).unwrap();

    let arn = "arn:aws:firehose:us-east-1:123456789012:deliverystream/hangs";
    let event = sequenced_event(arn, 100, 500);
    let started = std::time::Instant::now();
    let body = api
        .invoke_timeout(serde_json::to_vec(&event).unwrap(), Duration::from_secs(12))
        .await
        .expect("answered before the deadline");
    let took = started.elapsed();
    let response: FirehoseResponse = serde_json::from_slice(&body).unwrap();
    let count = |want| response.records.iter().filter(|r| r.result == want).count();
    let (ok, failed) = (
        count(RecordResult::Ok),
        count(RecordResult::ProcessingFailed),
    );
    assert!(ok > 0 && failed > 0, "ok {ok}, failed {failed}");
    assert_eq!(
        ok + failed,
        100,
        "nothing is Dropped when re-ingest did not finish"
    );
    // The deadline less its reserve: the answer leaves Lambda time to send it.
    assert!(took < Duration::from_secs(11), "answered after {took:?}");
    assert!(endpoint.accepted().is_empty());
}
