// HEAD
//! The real `firetail-transform` binary, driven through the Lambda Runtime API on 127.0.0.1,
//! with the fault-injecting endpoint behind the re-ingest path (moto's Firehose behind it is an
//! end-to-end test).


use std::collections::HashMap;
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

fn seq_of_output(data: &str) -> u64 {
    seq_of_log_line(&crate::common::datadog_messages(data)[0])
}


#[tokio::test]
async fn overflow_is_reingested_into_moto_firehose_and_nothing_is_lost() {
    let moto = MotoServer::start();
    let arn = moto
        .create_s3_stream("firetail-logs", "firetail-backup")
        .await;
    let api = RuntimeApi::start().await.unwrap();
    let mut env = aws_env(moto.url());
    // A 20 kB response budget with ~300 records of ~600 bytes: most must be re-ingested.
    env.push(("FIRETAIL_RESPONSE_LIMIT_BYTES".into(), "20000".into()));
    let _function = spawn_function(Path::new(BIN), &api, env).unwrap();

    let event = sequenced_event(&arn, 300, 500);
    let response = invoke(&api, &serde_json::to_vec(&event).unwrap()).await;
    assert_eq!(response.records.len(), 300);
    assert!(serde_json::to_vec(&response).unwrap().len() <= 20_000);

    let mut seen: HashMap<u64, u32> = HashMap::new();
    let mut dropped = 0;
    for r in &response.records {
        match r.result {
            RecordResult::Ok => *seen.entry(seq_of_output(&r.data)).or_default() += 1,
            RecordResult::Dropped => dropped += 1,
            RecordResult::ProcessingFailed => panic!("{} failed", r.record_id),
        }
    }
    assert!(dropped > 200, "most records overflow ({dropped})");
    // moto writes each PutRecordBatch call to S3 with the records concatenated verbatim.
    let mut reingested = 0;
    for (_, object) in moto.objects("firetail-backup").await {
        for value in serde_json::Deserializer::from_slice(&object).into_iter::<Value>() {
            let line = serde_json::to_vec(&value.unwrap()).unwrap();
            *seen.entry(seq_of_log_line(&line)).or_default() += 1;
            reingested += 1;
        }
    }
    assert_eq!(
        reingested, dropped,
        "every dropped record is back in the stream"
    );
    assert_eq!(
        seen.len(),
        300,
        "every event is either answered or re-ingested"
    );
    assert!(seen.values().all(|&n| n == 1), "and only once");
}

