//! The transform binary's memory stays bounded whatever a record inflates to: the worst
//! invocations we can build (millions of tiny events in one record, a CloudWatch envelope of
//! hundreds of thousands of events, one huge event, events that escape six-fold, a request of
//! records that each inflate to the cap, JSON nested 100,000 deep), one after another through
//! the real binary, whose peak RSS (`VmHWM`) must stay under the documented bound. Every record
//! is still answered, and what is not delivered in the response is re-ingested or kept in the
//! backup bucket (`ProcessingFailed`), never lost.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_testkit::hostile;
use firetail_testkit::procfs::peak_rss_mib;
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_testkit::{FaultPlan, FirehoseEndpoint};
use firetail_transform::config::MALLOC_ENV;
use firetail_transform::invocation::InputRecord;
use firetail_transform::{FirehoseEvent, FirehoseResponse, RecordResult};

const BIN: &str = env!("CARGO_BIN_EXE_firetail-transform");

/// README, "The transform": the bound documented for any request Lambda can deliver.
const BOUND_MIB: f64 = 128.0;

/// The default inflate cap (FIRETAIL_MAX_DECOMPRESSED_BYTES): every case inflates to just
/// under it.
const CAP: usize = 32 * 1024 * 1024;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn invocation(records: Vec<Vec<u8>>) -> FirehoseEvent {
    invocation_of(records.iter().map(|r| STANDARD.encode(r)).collect())
}

/// An invocation of records whose `data` is given as Firehose sends it.
fn invocation_of(data: Vec<String>) -> FirehoseEvent {
    FirehoseEvent {
        invocation_id: "memory".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records: data
            .into_iter()
            .enumerate()
            .map(|(i, data)| InputRecord {
                record_id: format!("r{i}"),
                approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                data,
            })
            .collect(),
    }
}

/// `n` tiny sidecar-shaped events, newline-terminated, just under the cap.
fn tiny_events() -> Vec<u8> {
    let line = b"{\"log\":\"x\"}\n";
    line.repeat((CAP - 1024) / line.len())
}

/// A CloudWatch Logs envelope of as many tiny events as fit the cap.
fn cloudwatch_tiny() -> Vec<u8> {
    let event = br#"{"id":"","timestamp":1795341600000,"message":"x"},"#;
    let n = (CAP - 4096) / event.len();
    let mut out = br#"{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/g","logStream":"s","subscriptionFilters":["f"],"logEvents":["#.to_vec();
    for _ in 0..n {
        out.extend_from_slice(event);
    }
    out.pop();
    out.extend_from_slice(b"]}");
    out
}

#[tokio::test]
async fn peak_memory_stays_under_the_bound_for_the_worst_invocations() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    // With the C library's settings template.yaml gives the function: keeping freed memory
    // for the next invocation must not take the peak past the bound.
    let mut env = firetail_testkit::aws::sdk_env(&endpoint.url());
    env.extend(MALLOC_ENV.map(|(k, v)| (k.to_owned(), v.to_owned())));
    let function = spawn_function(Path::new(BIN), &api, env).unwrap();
    let huge_text: Vec<u8> = b"no newline, not JSON ".repeat((CAP - 1024) / 21);
    // Control bytes escape to `\u00XX`: six output bytes per input byte.
    let escapes = vec![1u8; 1_900_000];
    // (case, its records, the result each record must get)
    type Case = (&'static str, Vec<Vec<u8>>, Vec<RecordResult>);
    let cases: Vec<Case> = vec![
        (
            "2.8 million tiny events in one record",
            vec![gzip(&tiny_events())],
            vec![RecordResult::Ok],
        ),
        (
            "a CloudWatch envelope of 650,000 events",
            vec![gzip(&cloudwatch_tiny())],
            vec![RecordResult::Ok],
        ),
        (
            "one 32 MiB event",
            vec![gzip(&huge_text)],
            vec![RecordResult::ProcessingFailed],
        ),
        (
            // It still fits: the Datadog envelope compresses it below the record limit.
            "an event that escapes to 11 MB",
            vec![gzip(&escapes)],
            vec![RecordResult::Ok],
        ),
        (
            "40 records, each inflating to the cap",
            vec![gzip(&tiny_events()); 40],
            vec![RecordResult::Ok; 40],
        ),
    ];
    for (name, records, want) in cases {
        let event = invocation(records);
        let request = serde_json::to_vec(&event).unwrap();
        assert!(
            request.len() < 6_000_000,
            "{name}: a request Lambda accepts"
        );
        let body = api
            .invoke_timeout(request, Duration::from_secs(300))
            .await
            .unwrap();
        let response: FirehoseResponse = serde_json::from_slice(&body).unwrap();
        let got: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
        // A record whose output did not fit this response is re-ingested (Dropped): its
        // events come back through the stream.
        for (g, w) in got.iter().zip(&want) {
            assert!(
                g == w || (*w == RecordResult::Ok && *g == RecordResult::Dropped),
                "{name}: {got:?}"
            );
        }
        assert!(
            body.len() <= 6_000_000,
            "{name}: response within Lambda's limit"
        );
        let peak = peak_rss_mib(function.pid());
        eprintln!("{name}: peak RSS so far {peak:.1} MiB");
        assert!(
            peak < BOUND_MIB,
            "{name}: peak RSS {peak:.1} MiB over {BOUND_MIB} MiB"
        );
    }
    // The hostile corpus too (JSON nested 100,000 deep, a gzip bomb, 6 MiB records).
    let samples: Vec<_> = hostile::records()
        .into_iter()
        .filter(|s| s.name != "six-mb-text")
        .collect();
    let event = invocation_of(samples.iter().map(|s| s.data.clone()).collect());
    let body = api
        .invoke_timeout(
            serde_json::to_vec(&event).unwrap(),
            Duration::from_secs(300),
        )
        .await
        .unwrap();
    let response: FirehoseResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(response.records.len(), samples.len());
    let peak = peak_rss_mib(function.pid());
    eprintln!("hostile corpus: peak RSS {peak:.1} MiB");
    assert!(
        peak < BOUND_MIB,
        "peak RSS {peak:.1} MiB over {BOUND_MIB} MiB"
    );
    // What did not fit went back to the stream.
    assert!(endpoint.stats().records_accepted > 0);
}
