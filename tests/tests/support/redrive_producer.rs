//! Backup-bucket objects made by the real producers, for the redrive tests: sidecar records
//! from the sidecar's own encoder and packer, what the real transform makes of them, and the
//! error-record lines Firehose writes around them (field layout as the AWS docs give it; see
//! `crates/redrive/src/parse.rs`). Shared by the fixture bless test (`redrive_fixtures.rs`,
//! which writes `tests/fixtures/redrive/`) and the end-to-end redrive tests, which build
//! objects with event times relative to now; each uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_firehose::Batch;
use firetail_sidecar::config::OversizeMode;
use firetail_sidecar::encode::{Encoder, Token};
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::{Limits, Packer};
use firetail_sidecar::pod::{ContainerInfo, PodInfo};
use firetail_tail::{LogEvent, SourceFile};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, RecordResult};
use firetail_wire::{Destination, RecordFormat};
use serde_json::json;

/// The delivery stream the records were put into.
pub const STREAM_ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/firetail-logs";
/// The transform, as Firehose names it in `lambdaArn`.
pub const LAMBDA_ARN: &str =
    "arn:aws:lambda:us-east-1:123456789012:function:firetail-transform:$LATEST";
const FILE: &str = "/var/log/app/app/app.log";
const DOCKER_ID: &str = "9c1f0a2b3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f7a";

/// The pod the sidecar runs in, as it knows it from the Downward API and the Kubernetes API.
fn pod() -> PodInfo {
    let labels: BTreeMap<String, String> = [
        ("app.kubernetes.io/name", "cart"),
        ("tags.datadoghq.com/env", "prod"),
        ("tags.datadoghq.com/service", "cart"),
        ("tags.datadoghq.com/version", "1.4.0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    PodInfo {
        namespace: Some("shop".into()),
        pod_name: Some("cart-6f9d8b7c5d-q4w2e".into()),
        pod_id: Some("3e0c1a2b-4d5e-4f60-8a9b-0c1d2e3f4a5b".into()),
        host: Some("fargate-ip-10-0-7-21.ec2.internal".into()),
        labels,
        annotations: BTreeMap::new(),
        containers: [(
            "app".to_owned(),
            ContainerInfo {
                docker_id: Some(DOCKER_ID.into()),
                image: Some("123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/cart:1.4.0".into()),
            },
        )]
        .into(),
        owners: Vec::new(),
    }
}

/// `ms` since the epoch as a time.
pub fn at_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).expect("a time after 1970"))
}

/// What the sidecar's encoder and packer make of `lines`, each read at `read_ms`: the records
/// it would put into the stream.
pub fn sidecar_records(format: RecordFormat, lines: &[String], read_ms: i64) -> Vec<Vec<u8>> {
    let source = SourceFile::detached(FILE, "app");
    let obs = Observability::default();
    let mut encoder = Encoder::new(pod(), "file", OversizeMode::Split);
    let mut packer: Packer<Token> = Packer::new(format, Limits::FIREHOSE);
    let mut offset = 0u64;
    for line in lines {
        let end_offset = offset + line.len() as u64 + 1;
        let event = LogEvent {
            source: Arc::clone(&source),
            bytes: line.as_bytes().to_vec(),
            offset,
            end_offset,
            read_time: at_ms(read_ms),
            part: None,
        };
        offset = end_offset;
        encoder.push(event, &mut packer, &obs);
    }
    packer.flush();
    let batches: Vec<Batch<Token>> = std::iter::from_fn(|| packer.take_ready()).collect();
    batches
        .into_iter()
        .flat_map(|b| b.records)
        .map(|r| r.data.to_vec())
        .collect()
}

/// One sidecar record per group of `lines` (`per_record` events each, `ndjson-gzip` when more
/// than one, `json` otherwise).
pub fn packed(lines: &[String], per_record: usize, read_ms: i64) -> Vec<Vec<u8>> {
    lines
        .chunks(per_record)
        .flat_map(|chunk| {
            let format = if chunk.len() > 1 {
                RecordFormat::NdjsonGzip
            } else {
                RecordFormat::Json
            };
            let records = sidecar_records(format, chunk, read_ms);
            assert_eq!(records.len(), 1, "one record per group");
            records
        })
        .collect()
}

/// What the real transform, configured for `destination`, returns for each of `records`
/// (each must come out `Ok` within one invocation): what Firehose then tries to deliver.
pub fn transform(destination: Destination, records: &[Vec<u8>], arrival_ms: i64) -> Vec<Vec<u8>> {
    let event = FirehoseEvent {
        invocation_id: "redrive-fixtures".into(),
        delivery_stream_arn: STREAM_ARN.into(),
        region: "us-east-1".into(),
        records: records
            .iter()
            .enumerate()
            .map(|(i, r)| InputRecord {
                record_id: format!("{i:04}"),
                approximate_arrival_timestamp: Some(json!(arrival_ms)),
                data: STANDARD.encode(r),
            })
            .collect(),
    };
    let config = Config {
        destination,
        ..Config::default()
    };
    firetail_transform::plan::plan(&event, &config, arrival_ms)
        .records
        .into_iter()
        .map(|r| {
            assert_eq!(r.result, RecordResult::Ok, "{}", r.record_id);
            assert!(r.reingest.is_empty(), "everything fits one response");
            STANDARD
                .decode(r.data.expect("an Ok record has data"))
                .expect("base64")
        })
        .collect()
}

/// A transform failure as Firehose writes it to `processing-failed`: `rawData` is the record
/// as it was put into the stream.
pub fn processing_failed(data: &[u8], code: &str, arrival_ms: i64) -> String {
    let message = match code {
        "Lambda.FunctionTimedOut" => {
            "Firehose encountered a timeout while invoking the Lambda function."
        }
        "Lambda.ProcessingFailed" => {
            "The record was marked ProcessingFailed by the Lambda function."
        }
        _ => "The Lambda function was successfully invoked but it returned an error result.",
    };
    json_line(&[
        ("attemptsMade", json!(4)),
        ("arrivalTimestamp", json!(arrival_ms)),
        ("errorCode", json!(code)),
        ("errorMessage", json!(message)),
        ("attemptEndingTimestamp", json!(arrival_ms + 300_000)),
        ("rawData", json!(STANDARD.encode(data))),
        ("lambdaArn", json!(LAMBDA_ARN)),
    ])
}

/// An HTTP endpoint (Datadog) delivery failure as Firehose writes it to
/// `http-endpoint-failed`: `rawData` is what it tried to deliver, the transform's output.
pub fn http_endpoint_failed(data: &[u8], code: &str, arrival_ms: i64, n: u64) -> String {
    json_line(&[
        ("attemptsMade", json!(3)),
        ("arrivalTimestamp", json!(arrival_ms)),
        ("errorCode", json!(code)),
        (
            "errorMessage",
            json!(
                "The following response was received from the endpoint destination. 503: {\"errors\":[\"Service Unavailable\"]}"
            ),
        ),
        ("attemptEndingTimestamp", json!(arrival_ms + 3_600_000)),
        ("rawData", json!(STANDARD.encode(data))),
        ("subsequenceNumber", json!(0)),
        (
            "dataId",
            json!(format!(
                "49649780212418458318470185960731546714384431339221860354.{n}"
            )),
        ),
    ])
}

/// A document OpenSearch did not index, as Firehose writes it to
/// `AmazonOpenSearchService-failed`: `rawData` is the document it sent (the transform's
/// output), `errorCode` OpenSearch's HTTP status.
pub fn opensearch_failed(data: &[u8], status: &str, arrival_ms: i64, n: u64) -> String {
    let message = match status {
        "400" => {
            r#"{"type":"mapper_parsing_exception","reason":"failed to parse field [status] of type [long]"}"#
        }
        "429" => {
            r#"{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation"}"#
        }
        _ => r#"{"type":"unavailable_shards_exception","reason":"primary shard is not active"}"#,
    };
    json_line(&[
        ("attemptsMade", json!(0)),
        ("arrivalTimestamp", json!(arrival_ms)),
        ("errorCode", json!(status)),
        ("errorMessage", json!(message)),
        ("attemptEndingTimestamp", json!(arrival_ms + 900)),
        ("rawData", json!(STANDARD.encode(data))),
        ("subsequenceNumber", json!(0)),
        (
            "esDocumentId",
            json!(format!(
                "49649780212418458318470185960731546714384431339221860354.{n}"
            )),
        ),
        ("esIndexName", json!("firetail-2026-11-22")),
        ("esTypeName", json!("")),
    ])
}

/// One JSON object with its members in the given order (Firehose writes `attemptsMade` first;
/// `serde_json`'s map would sort the keys).
fn json_line(members: &[(&str, serde_json::Value)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{v}", json!(k)))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// A backup object: the lines, each ending in a newline, gzip when `gzip` (the stack's backup
/// configuration writes `CompressionFormat: GZIP` for Datadog and OpenSearch).
pub fn object(lines: &[String], gzip: bool) -> Vec<u8> {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if gzip {
        firetail_wire::gzip::gzip(body.as_bytes(), flate2::Compression::default())
    } else {
        body.into_bytes()
    }
}
