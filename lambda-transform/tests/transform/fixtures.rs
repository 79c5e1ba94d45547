//! The transform on the fixture events of every input kind, per destination, as Firehose
//! would see it: the response is decoded record by record and every log is checked.

use crate::common::{Recorder, gunzip};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::config::{Destination, S3Compression};
use firetail_transform::{Config, FirehoseEvent, FirehoseResponse, RecordResult, handle};
use serde_json::Value;

fn fixture(name: &str) -> FirehoseEvent {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

async fn run(event: &FirehoseEvent, config: &Config) -> FirehoseResponse {
    let sink = Recorder::accepting();
    let (response, stats) = handle(event, config, &sink, None).await;
    assert!(sink.accepted().is_empty(), "fixtures must not overflow");
    assert_eq!(stats.records_in as usize, event.records.len());
    assert_eq!(
        stats.records_ok + stats.records_dropped + stats.records_failed,
        stats.records_in
    );
    // Every recordId exactly once, in input order.
    let ids: Vec<&str> = response
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    let want: Vec<&str> = event.records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, want);
    response
}

/// The envelope of a Datadog output record and the logs Datadog's Firehose intake would split
/// it into. Every Datadog record is a gzip envelope; it and each log start with the marker.
fn datadog_logs(data: &str) -> (Value, Vec<Value>) {
    let bytes = STANDARD.decode(data).unwrap();
    assert!(
        firetail_wire::gzip::is_gzip(&bytes),
        "one shape: a gzip envelope"
    );
    let text = gunzip(&bytes);
    assert_eq!(firetail_wire::output::marker_version(&text), Some(1));
    let envelope: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(envelope["messageType"], "DATA_MESSAGE");
    let logs = envelope["logEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let message = e["message"].as_str().unwrap();
            assert_eq!(
                firetail_wire::output::marker_version(message.as_bytes()),
                Some(1)
            );
            let log: Value = serde_json::from_str(message).unwrap();
            assert_eq!(log["timestamp"], e["timestamp"]);
            assert_eq!(log["firetail_transform"], 1);
            log
        })
        .collect();
    (envelope, logs)
}

fn data(response: &FirehoseResponse, i: usize) -> &str {
    assert_eq!(response.records[i].result, RecordResult::Ok, "record {i}");
    &response.records[i].data
}

fn assert_pod_tags(log: &Value) {
    assert_eq!(log["kube_namespace"], "shop");
    assert_eq!(log["pod_name"], "checkout-7d4b9c8f6d-x2x9k");
    assert_eq!(log["kube_container_name"], "app");
    assert_eq!(
        log["container_id"],
        "5b1d3c0e9f7a4b2d8c6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e"
    );
    assert_eq!(log["kube_deployment"], "checkout");
    assert_eq!(log["kube_replica_set"], "checkout-7d4b9c8f6d");
    assert_eq!(log["image_tag"], "2.3.1");
    assert_eq!(log["short_image"], "checkout");
    assert_eq!(log["env"], "prod");
    assert_eq!(log["version"], "2.3.1");
    assert!(
        log.get("kubernetes").is_none(),
        "the raw map is replaced by tags"
    );
}

#[tokio::test]
async fn sidecar_single_events_to_datadog() {
    let response = run(&fixture("sidecar-json.json"), &Config::default()).await;

    let (envelope, logs) = datadog_logs(data(&response, 0));
    // One event, the same shape as many: the account from the stream's ARN, the log group
    // that sets Datadog's source, the pod's log stream.
    assert_eq!(envelope["owner"], "123456789012");
    assert_eq!(envelope["logGroup"], "firetail");
    assert_eq!(envelope["logStream"], "shop/checkout-7d4b9c8f6d-x2x9k/app");
    assert_eq!(
        envelope["subscriptionFilters"],
        serde_json::json!(["firetail"])
    );
    assert_eq!(envelope["firetail_transform"], 1);
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["message"], "GET /cart 200 12ms");
    assert_eq!(log["timestamp"], 1_795_341_600_123i64);
    assert_eq!(log["hostname"], "fargate-ip-10-0-12-34.ec2.internal");
    assert_eq!(log["service"], "checkout");
    assert_eq!(log["ddsource"], "checkout");
    assert_eq!(log["stream"], "file");
    assert_eq!(log["file"], "/var/log/app/app/app.log");
    assert!(log.get("status").is_none(), "no level, no status");
    assert_pod_tags(log);
    let ddtags = log["ddtags"].as_str().unwrap();
    for tag in [
        "kube_namespace:shop",
        "pod_name:checkout-7d4b9c8f6d-x2x9k",
        "kube_container_name:app",
        "container_id:5b1d3c0e9f7a",
        "kube_deployment:checkout",
        "service:checkout",
    ] {
        assert!(ddtags.contains(tag), "{tag} missing from {ddtags}");
    }

    // Merge_Log: the app's fields join the log; they cannot overwrite tags.
    let (_, logs) = datadog_logs(data(&response, 1));
    let log = &logs[0];
    assert_eq!(log["message"], "slow payment");
    assert_eq!(log["status"], "warn");
    assert_eq!(log["level"], "WARN");
    assert_eq!(log["latency_ms"], 1840);
    assert_eq!(log["pod_name"], "checkout-7d4b9c8f6d-x2x9k");
    assert_eq!(log["app.pod_name"], "spoofed");

    let (_, logs) = datadog_logs(data(&response, 2));
    assert!(
        logs[0]["message"]
            .as_str()
            .unwrap()
            .contains("\tat com.shop.Api.handle(Api.java:7)")
    );
}

#[tokio::test]
async fn packed_records_to_datadog_become_cloudwatch_envelopes() {
    let response = run(&fixture("sidecar-packed.json"), &Config::default()).await;
    let (envelope, logs) = datadog_logs(data(&response, 0));
    assert_eq!(envelope["owner"], "123456789012");
    assert_eq!(envelope["logGroup"], "firetail");
    assert_eq!(envelope["logStream"], "shop/checkout-7d4b9c8f6d-x2x9k/app");
    let messages: Vec<&str> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["plain line 0", "plain line 1", "plain line 2"]);

    let (_, logs) = datadog_logs(data(&response, 1));
    assert_eq!(logs.len(), 4);
    assert_eq!(logs[1]["message"], "db down");
    assert_eq!(logs[1]["status"], "error");
    assert_eq!(logs[1]["retry"], 3);
    assert!(
        logs[2]["message"]
            .as_str()
            .unwrap()
            .starts_with("java.lang.IllegalStateException")
    );
    logs.iter().for_each(assert_pod_tags);
}

#[tokio::test]
async fn format_version_2_records_zstd_and_gzip_to_datadog() {
    let response = run(&fixture("sidecar-v2.json"), &Config::default()).await;
    let (envelope, logs) = datadog_logs(data(&response, 0));
    assert_eq!(envelope["logStream"], "shop/checkout-7d4b9c8f6d-x2x9k/app");
    let messages: Vec<&str> = logs
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "v2 first");
    assert_eq!(messages[1], "db down");
    assert!(messages[2].starts_with("java.lang.IllegalStateException"));
    assert_eq!(messages[3], "v2 last");
    assert_eq!(logs[1]["status"], "error");
    assert_eq!(logs[1]["retry"], 3);
    // Millisecond times, as in version 1's output.
    assert_eq!(logs[0]["timestamp"], 1_795_341_600_123i64);
    for log in &logs {
        assert_pod_tags(log);
        assert_eq!(log["file"], "/var/log/app/app/app.log");
        assert_eq!(log["stream"], "file");
    }
    // The gzip record: the second event names its own file, the header gives the rest.
    let (_, logs) = datadog_logs(data(&response, 1));
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["file"], "/var/log/app/app/app.log");
    assert_eq!(logs[1]["file"], "/var/log/app/app/error.log");
    assert_eq!(logs[1]["message"], "from error.log");
    logs.iter().for_each(assert_pod_tags);
}

#[tokio::test]
async fn fargate_fluent_bit_records() {
    let response = run(&fixture("fluent-bit-fargate.json"), &Config::default()).await;
    let (_, logs) = datadog_logs(data(&response, 0));
    assert_eq!(
        logs[0]["message"],
        "2026-11-22 10:00:00 INFO started in 812 ms"
    );
    assert_eq!(logs[0]["timestamp"], 1_795_341_600_500i64);
    assert_eq!(logs[0]["logtag"], "F");
    assert_pod_tags(&logs[0]);

    // Merge_Log already ran in Fluent Bit: fields appear once, `date` is the time.
    let (_, logs) = datadog_logs(data(&response, 1));
    let log = &logs[0];
    assert_eq!(log["message"], "order placed");
    assert_eq!(log["order_id"], "o-17");
    assert_eq!(log["status"], "info");
    assert_eq!(log["timestamp"], 1_795_341_601_250i64);
    let text = serde_json::to_string(log).unwrap();
    assert_eq!(text.matches("\"order_id\"").count(), 1, "{text}");

    // Merge_Log with Keep_Log Off: no `log`, the app's message is the message.
    let (_, logs) = datadog_logs(data(&response, 2));
    assert_eq!(logs[0]["message"], "cache miss");
    assert_eq!(logs[0]["status"], "debug");
    assert_eq!(logs[0]["stream"], "stderr");
    assert_eq!(
        logs[0]["timestamp"], 1_795_341_600_002i64,
        "arrival time when the event has none"
    );
}

#[tokio::test]
async fn cloudwatch_subscription_messages() {
    let response = run(&fixture("cloudwatch-logs.json"), &Config::default()).await;
    let (envelope, logs) = datadog_logs(data(&response, 0));
    assert_eq!(envelope["logGroup"], "/aws/eks/shop/fargate");
    assert_eq!(envelope["owner"], "123456789012");
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0]["message"], "payment accepted");
    assert_eq!(logs[0]["timestamp"], 1_795_341_590_000i64);
    assert_eq!(
        logs[0]["aws"]["awslogs"]["logGroup"],
        "/aws/eks/shop/fargate"
    );
    assert_pod_tags(&logs[0]);
    assert_eq!(logs[1]["message"], "a plain text line");
    assert!(
        logs[1].get("kube_namespace").is_none(),
        "no metadata, no tags, still delivered"
    );

    assert_eq!(
        response.records[1].result,
        RecordResult::Dropped,
        "CONTROL_MESSAGE"
    );
    assert_eq!(response.records[1].data, "");
}

#[tokio::test]
async fn hostile_records_affect_only_themselves() {
    let event = fixture("hostile.json");
    let response = run(&event, &Config::default()).await;
    let results: Vec<RecordResult> = response.records.iter().map(|r| r.result).collect();
    use RecordResult::*;
    assert_eq!(
        results,
        [
            Ok,
            Ok,
            Ok,
            Ok,
            Ok,
            Dropped,
            ProcessingFailed,
            Ok,
            Ok,
            ProcessingFailed,
            Ok
        ],
        "text, array, bad utf-8, no metadata, broken json, empty, truncated gzip, deep json, \
         escaped NUL, malformed base64, no arrival time"
    );
    let message = |i| {
        datadog_logs(data(&response, i)).1[0]["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(message(0), "just some text\nwith a second line");
    assert_eq!(message(1), r#"["not", "an", "object"]"#);
    assert_eq!(message(4), r#"{"broken json"#);
    assert_eq!(message(8), "\u{0}nul inside");

    // Invalid UTF-8: readable message plus the exact bytes.
    let (_, logs) = datadog_logs(data(&response, 2));
    assert!(logs[0]["message"].as_str().unwrap().contains('\u{FFFD}'));
    let exact = STANDARD
        .decode(logs[0]["message_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(exact, b"\xff\xfe invalid utf-8 \xc3\x28");

    // Deeper than serde_json's own recursion limit: passed through verbatim, not rebuilt.
    let envelope: Value =
        serde_json::from_slice(&gunzip(&STANDARD.decode(data(&response, 7)).unwrap())).unwrap();
    let raw = envelope["logEvents"][0]["message"].as_str().unwrap();
    assert!(
        raw.starts_with(r#"{"firetail_transform":1,"message":"nested","#),
        "{raw}"
    );
    assert!(raw.contains(&format!(r#""deep":{}{}"#, "[".repeat(300), "]".repeat(300))));
}

#[tokio::test]
async fn opensearch_documents() {
    let config = Config {
        destination: Destination::OpenSearch,
        ..Config::default()
    };
    let response = run(&fixture("sidecar-json.json"), &config).await;
    let doc: Value = serde_json::from_slice(&STANDARD.decode(data(&response, 1)).unwrap()).unwrap();
    assert_eq!(doc["@timestamp"], "2026-11-22T10:00:00.123Z");
    assert_eq!(doc["message"], "slow payment");
    assert_eq!(doc["level"], "WARN");
    assert_eq!(doc["hostname"], "fargate-ip-10-0-12-34.ec2.internal");
    assert!(doc.get("ddtags").is_none());
    assert_pod_tags(&doc);
    let raw = STANDARD.decode(data(&response, 2)).unwrap();
    assert!(!raw.contains(&b'\n'), "one single-line document");

    // A packed record cannot be one document: it goes to the backup bucket, not lost.
    let response = run(&fixture("sidecar-packed.json"), &config).await;
    assert_eq!(response.records[0].result, RecordResult::ProcessingFailed);
    assert_eq!(response.records[1].result, RecordResult::ProcessingFailed);
}

#[tokio::test]
async fn s3_ndjson_gzip_members_concatenate() {
    let config = Config {
        destination: Destination::S3,
        ..Config::default()
    };
    let response = run(&fixture("sidecar-packed.json"), &config).await;
    // Firehose concatenates records into one object; multi-member gzip stays readable.
    let mut object = Vec::new();
    for r in &response.records {
        object.extend(STANDARD.decode(&r.data).unwrap());
    }
    let text = String::from_utf8(gunzip(&object)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    assert!(text.ends_with('\n'));
    assert_eq!(lines[4]["message"], "db down");
    lines.iter().for_each(assert_pod_tags);

    let config = Config {
        destination: Destination::S3,
        s3_compression: S3Compression::None,
        ..Config::default()
    };
    let response = run(&fixture("sidecar-json.json"), &config).await;
    let text = String::from_utf8(STANDARD.decode(data(&response, 0)).unwrap()).unwrap();
    assert_eq!(text.lines().count(), 1);
    assert!(text.ends_with('\n'));
}

#[tokio::test]
async fn drop_regex_filters_events_and_empties_records() {
    let config = Config {
        drop_regex: Some(regex::Regex::new("^plain line [02]$|^GET /cart").unwrap()),
        ..Config::default()
    };
    let response = run(&fixture("sidecar-packed.json"), &config).await;
    let (_, logs) = datadog_logs(data(&response, 0));
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["message"], "plain line 1");
    let response = run(&fixture("sidecar-json.json"), &config).await;
    assert_eq!(response.records[0].result, RecordResult::Dropped);
    assert_eq!(response.records[1].result, RecordResult::Ok);
}

#[tokio::test]
async fn response_is_what_firehose_reads() {
    let response = run(&fixture("hostile.json"), &Config::default()).await;
    let json = serde_json::to_value(&response).unwrap();
    for r in json["records"].as_array().unwrap() {
        let result = r["result"].as_str().unwrap();
        assert!(["Ok", "Dropped", "ProcessingFailed"].contains(&result));
        assert_eq!(
            r["data"].as_str().unwrap().is_empty(),
            result != "Ok",
            "data on every record"
        );
    }
}

#[test]
fn fixtures_are_real_firehose_events() {
    // The community crate's event type (strict about the envelope) reads every fixture, and
    // decodes the same bytes we do for every record with valid base64.
    for name in [
        "sidecar-json.json",
        "sidecar-packed.json",
        "sidecar-v2.json",
        "fluent-bit-fargate.json",
        "cloudwatch-logs.json",
    ] {
        let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        let theirs: aws_lambda_events::event::firehose::KinesisFirehoseEvent =
            serde_json::from_str(&text).unwrap();
        let ours = fixture(name);
        assert_eq!(theirs.records.len(), ours.records.len());
        for (t, o) in theirs.records.iter().zip(&ours.records) {
            assert_eq!(t.record_id.as_deref(), Some(o.record_id.as_str()));
            assert_eq!(
                t.data.as_slice(),
                STANDARD.decode(&o.data).unwrap().as_slice()
            );
        }
    }
}

/// Packed gzip records as the sidecar writes them (fastest gzip level).
fn packed_event(records: usize, events_per_record: usize) -> FirehoseEvent {
    use std::io::Write as _;
    let kube = r#"{"namespace_name":"shop","pod_name":"checkout-7d4b9c8f6d-x2x9k","container_name":"app","docker_id":"5b1d3c0e9f7a","container_image":"shop/checkout:2.3.1","labels":{"app.kubernetes.io/name":"checkout"}}"#;
    let records = (0..records)
        .map(|r| {
            let mut ndjson = String::new();
            for e in 0..events_per_record {
                let n = r * events_per_record + e;
                ndjson.push_str(&format!(
                    r#"{{"time":"2026-11-22T10:00:{:02}.{:03}Z","stream":"stdout","log":"seq={n:08} GET /api/v1/cart/{} 200 {}ms user=u-{:05}","kubernetes":{kube}}}"#,
                    n % 60,
                    n % 1000,
                    n * 7919 % 10_007,
                    n % 97,
                    n * 31 % 99_991,
                ));
                ndjson.push('\n');
            }
            let mut gz =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(ndjson.as_bytes()).unwrap();
            firetail_transform::invocation::InputRecord {
                record_id: format!("r{r}"),
                approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                data: STANDARD.encode(gz.finish().unwrap()),
            }
        })
        .collect();
    FirehoseEvent {
        invocation_id: "inv".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records,
    }
}

/// The events of an `Ok` output record, for the destination of `config`.
fn output_logs(config: &Config, data: &str) -> Vec<Value> {
    firetail_testkit::records::destination_events(
        config.destination,
        &STANDARD.decode(data).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn packed_outputs_are_recompressed_before_anything_is_reingested() {
    let s3 = Config {
        destination: Destination::S3,
        ..Config::default()
    };
    let event = packed_event(6, 300);
    let fast = run(&event, &s3).await;
    let fast_size = serde_json::to_vec(&fast).unwrap().len();
    // A tenth too small for the fastest gzip level: a denser level, not re-ingest, must fit.
    let config = Config {
        response_limit_bytes: fast_size * 9 / 10,
        ..s3.clone()
    };
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event, &config, &sink, None).await;
    assert!(sink.accepted().is_empty(), "nothing re-ingested");
    assert_eq!(stats.records_ok, 6);
    assert!(serde_json::to_vec(&response).unwrap().len() <= config.response_limit_bytes);
    // Every event exactly once, in order.
    let mut seqs = Vec::new();
    for i in 0..6 {
        for log in output_logs(&config, data(&response, i)) {
            assert_pod_tags_minimal(&log);
            let m = log["message"].as_str().unwrap();
            seqs.push(m[4..12].parse::<usize>().unwrap());
        }
    }
    assert_eq!(seqs, (0..1800).collect::<Vec<_>>());

    // Far too small even for the denser level: the tail is re-ingested, nothing is lost.
    let config = Config {
        response_limit_bytes: fast_size / 3,
        ..s3
    };
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event, &config, &sink, None).await;
    assert!(stats.records_reingested > 0);
    let delivered: usize = (0..6)
        .filter(|&i| response.records[i].result == RecordResult::Ok)
        .map(|i| output_logs(&config, data(&response, i)).len())
        .sum();
    let reingested: usize = sink
        .accepted()
        .iter()
        .map(|r| {
            gunzip(r)
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum();
    assert_eq!(delivered + reingested, 1800);
}

#[tokio::test]
async fn an_invocation_twice_the_response_delivers_dense_records_and_reingests_the_rest() {
    let s3 = Config {
        destination: Destination::S3,
        ..Config::default()
    };
    let event = packed_event(40, 300);
    let fast = run(&event, &s3).await;
    let fast_size = serde_json::to_vec(&fast).unwrap().len();
    let fast_record = STANDARD.decode(data(&fast, 0)).unwrap().len();
    // Room for about half of the records at the fastest level: the first record shows the
    // rest will not fit, so they are deflated densely from the start and more of them fit.
    let config = Config {
        response_limit_bytes: fast_size / 2,
        ..s3
    };
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event, &config, &sink, None).await;
    assert!(serde_json::to_vec(&response).unwrap().len() <= config.response_limit_bytes);
    let ok: Vec<usize> = (0..40)
        .filter(|&i| response.records[i].result == RecordResult::Ok)
        .collect();
    assert!(ok.len() > 20, "{} of 40 delivered", ok.len());
    for &i in &ok {
        let bytes = STANDARD.decode(data(&response, i)).unwrap();
        assert!(
            bytes.len() < fast_record,
            "record {i}: {} bytes",
            bytes.len()
        );
    }
    assert!(stats.records_reingested > 0);
    // Every event exactly once, delivered or back in the stream.
    let mut seqs = Vec::new();
    for &i in &ok {
        for log in output_logs(&config, data(&response, i)) {
            seqs.push(
                log["message"].as_str().unwrap()[4..12]
                    .parse::<usize>()
                    .unwrap(),
            );
        }
    }
    for r in sink.accepted() {
        for line in gunzip(&r).split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: Value = serde_json::from_slice(line).unwrap();
            seqs.push(v["log"].as_str().unwrap()[4..12].parse::<usize>().unwrap());
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..12_000).collect::<Vec<_>>());
}

#[tokio::test]
async fn densifying_a_datadog_record_never_passes_its_event_budget() {
    // These lines compress to under 65 bytes an event: the fast level already has to pad.
    let event = packed_event(6, 300);
    let response = run(&event, &Config::default()).await;
    let floor = firetail_wire::output::datadog_bytes_per_event(2);
    let fast_size = serde_json::to_vec(&response).unwrap().len();
    for i in 0..6 {
        let bytes = STANDARD.decode(data(&response, i)).unwrap();
        assert_eq!(datadog_logs(data(&response, i)).1.len(), 300);
        assert!(
            bytes.len() >= 300 * floor && bytes.len() <= 300 * floor + 5,
            "{}",
            bytes.len()
        );
    }
    // Short of room, a denser level would make the records too dense: they are re-ingested
    // instead, and every event still arrives exactly once.
    let config = Config {
        response_limit_bytes: fast_size * 9 / 10,
        ..Config::default()
    };
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event, &config, &sink, None).await;
    assert!(stats.records_reingested > 0);
    assert_eq!(stats.datadog_records_padded, 6);
    let mut delivered = 0;
    for i in 0..6 {
        if response.records[i].result == RecordResult::Ok {
            let bytes = STANDARD.decode(data(&response, i)).unwrap();
            let logs = datadog_logs(data(&response, i)).1;
            assert!(logs.len() * floor <= bytes.len());
            delivered += logs.len();
        }
    }
    let reingested: usize = sink
        .accepted()
        .iter()
        .map(|r| {
            gunzip(r)
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .sum();
    assert_eq!(delivered + reingested, 1800);
}

fn assert_pod_tags_minimal(log: &Value) {
    assert_eq!(log["kube_namespace"], "shop");
    assert_eq!(log["pod_name"], "checkout-7d4b9c8f6d-x2x9k");
    assert_eq!(log["kube_container_name"], "app");
    assert_eq!(log["container_id"], "5b1d3c0e9f7a");
}
