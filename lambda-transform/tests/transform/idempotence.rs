//! The transform on its own output: what a redrive of failed deliveries puts back into the
//! stream (Firehose backs up `http-endpoint-failed` and OpenSearch failures as transformed).
//! Recognised by the marker, passed through byte for byte, for every destination; a marked
//! record whose body is broken is kept in the backup bucket, never delivered half-read.

use crate::common::Recorder;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::config::{Destination, S3Compression};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, RecordResult, handle};
use firetail_wire::gzip::gzip;
use flate2::Compression;
use serde_json::Value;

fn fixture(name: &str) -> FirehoseEvent {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event_of(payloads: &[Vec<u8>]) -> FirehoseEvent {
    FirehoseEvent {
        invocation_id: "redriven".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records: payloads
            .iter()
            .enumerate()
            .map(|(i, p)| InputRecord {
                record_id: format!("again-{i}"),
                approximate_arrival_timestamp: Some(1_795_400_000_000u64.into()),
                data: STANDARD.encode(p),
            })
            .collect(),
    }
}

#[tokio::test]
async fn own_output_passes_through_unchanged_for_every_destination() {
    let configs = [
        ("datadog", Config::default(), "sidecar-packed.json"),
        ("datadog single", Config::default(), "sidecar-json.json"),
        (
            "opensearch",
            Config {
                destination: Destination::OpenSearch,
                ..Config::default()
            },
            "sidecar-json.json",
        ),
        (
            "s3 gzip",
            Config {
                destination: Destination::S3,
                ..Config::default()
            },
            "sidecar-packed.json",
        ),
        (
            "s3 plain",
            Config {
                destination: Destination::S3,
                s3_compression: S3Compression::None,
                ..Config::default()
            },
            "sidecar-packed.json",
        ),
        (
            "cloudwatch origin",
            Config::default(),
            "cloudwatch-logs.json",
        ),
        ("fluent bit", Config::default(), "fluent-bit-fargate.json"),
    ];
    for (name, config, fixture_name) in configs {
        let sink = Recorder::accepting();
        let (first, first_stats) = handle(&fixture(fixture_name), &config, &sink, None).await;
        let outputs: Vec<Vec<u8>> = first
            .records
            .iter()
            .filter(|r| r.result == RecordResult::Ok)
            .map(|r| STANDARD.decode(&r.data).unwrap())
            .collect();
        assert!(!outputs.is_empty(), "{name}");

        let again = event_of(&outputs);
        let (second, stats) = handle(&again, &config, &sink, None).await;
        assert!(sink.accepted().is_empty(), "{name}: nothing re-ingested");
        assert_eq!(stats.records_passed_through, outputs.len() as u64, "{name}");
        assert_eq!(stats.records_ok, outputs.len() as u64, "{name}");
        assert_eq!(
            stats.events_out, first_stats.events_out,
            "{name}: same events"
        );
        for (out, sent) in second.records.iter().zip(&outputs) {
            assert_eq!(out.result, RecordResult::Ok, "{name}");
            assert_eq!(
                &STANDARD.decode(&out.data).unwrap(),
                sent,
                "{name}: byte for byte"
            );
        }
    }
}

#[tokio::test]
async fn a_marked_record_with_a_broken_body_is_kept_for_the_backup_bucket() {
    let envelope = br#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":[{"id":"0","timestamp":1,"message":"{\"firetail_transform\":1,\"message\":\"x\"}"}]}"#;
    let cut = &envelope[..envelope.len() - 10];
    let mut truncated_gzip = gzip(envelope, Compression::fast());
    truncated_gzip.truncate(truncated_gzip.len() - 12);
    let events_not_a_list =
        br#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":{"0":1}}"#;
    let unmarked_second_line =
        b"{\"firetail_transform\":1,\"message\":\"a\"}\n{\"message\":\"b\"}\n".to_vec();
    let payloads = vec![
        envelope.to_vec(),
        cut.to_vec(),
        gzip(cut, Compression::fast()),
        truncated_gzip,
        events_not_a_list.to_vec(),
        unmarked_second_line,
    ];
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event_of(&payloads), &Config::default(), &sink, None).await;
    let results: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
    use RecordResult::{Ok, ProcessingFailed};
    assert_eq!(
        results,
        [
            Ok,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed,
            ProcessingFailed
        ],
        "whole, cut, cut in gzip, truncated gzip, events not a list, an unmarked line"
    );
    assert_eq!(stats.records_passed_through, 1);
    assert!(sink.accepted().is_empty());
}

#[tokio::test]
async fn an_app_line_that_imitates_the_marker_is_rendered_not_passed_through() {
    // A hostile neighbour logs what looks like transform output, with spoofed tags. It is the
    // app's line inside a sidecar event, so it is rendered like any other: the pod's real
    // tags win and the app's look-alikes are kept under `app.`.
    let line = r#"{"firetail_transform":1,"message":"hi","ddtags":"kube_namespace:billing","kube_namespace":"billing"}"#;
    let event = serde_json::json!({
        "time": "2026-11-22T10:00:00Z",
        "stream": "stdout",
        "log": line,
        "kubernetes": {"namespace_name": "shop", "pod_name": "web-1", "container_name": "app"},
    });
    let sink = Recorder::accepting();
    let (response, stats) = handle(
        &event_of(&[event.to_string().into_bytes()]),
        &Config::default(),
        &sink,
        None,
    )
    .await;
    assert_eq!(stats.records_passed_through, 0);
    let logs = firetail_testkit::records::destination_events(
        Destination::Datadog,
        &STANDARD.decode(&response.records[0].data).unwrap(),
    )
    .unwrap();
    let log: &Value = &logs[0];
    assert_eq!(log["message"], "hi");
    assert_eq!(log["firetail_transform"], 1);
    assert_eq!(log["app.firetail_transform"], 1);
    assert_eq!(log["kube_namespace"], "shop");
    assert_eq!(log["app.kube_namespace"], "billing");
    assert_eq!(log["app.ddtags"], "kube_namespace:billing");
    assert!(
        log["ddtags"]
            .as_str()
            .unwrap()
            .contains("kube_namespace:shop")
    );
}
