//! The real `firetail-transform` binary over the Lambda Runtime API, re-ingesting its
//! overflow into moto's Firehose (the real AWS wire protocol): every event is answered or put
//! back, once.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_testkit::records::destination_events;
use firetail_testkit::route::{Destination, message_of, seq_of};
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_testkit::{MotoServer, workspace_bin};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{FirehoseEvent, FirehoseResponse, RecordResult};
use serde_json::Value;

/// `records` one-event sidecar records `seq=<i> xxx…` of stream `arn`.
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

fn seq_of_output(data: &str) -> u64 {
    let bytes = STANDARD.decode(data).unwrap();
    let events = destination_events(Destination::Datadog, &bytes).unwrap();
    seq_of(message_of(&events[0])).unwrap()
}

#[tokio::test]
async fn overflow_is_reingested_into_moto_firehose_and_nothing_is_lost() {
    let moto = MotoServer::start();
    let arn = moto
        .create_s3_stream("firetail-logs", "firetail-backup")
        .await;
    let api = RuntimeApi::start().await.unwrap();
    let mut env = firetail_testkit::aws::sdk_env(moto.url());
    // A 20 kB response budget with ~300 records of ~600 bytes: most must be re-ingested.
    env.push(("FIRETAIL_RESPONSE_LIMIT_BYTES".into(), "20000".into()));
    let _function = spawn_function(&workspace_bin("firetail-transform"), &api, env).unwrap();

    let event = sequenced_event(&arn, 300, 500);
    let body = api
        .invoke(serde_json::to_vec(&event).unwrap())
        .await
        .unwrap();
    let response: FirehoseResponse = serde_json::from_slice(&body).unwrap();
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
            let value = value.unwrap();
            *seen.entry(seq_of(message_of(&value)).unwrap()).or_default() += 1;
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
