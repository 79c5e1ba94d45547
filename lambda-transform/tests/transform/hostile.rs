//! The hostile-input corpus (`tests/hostile/records`, plus generated gzip and zstd bombs, 6 MiB records
//! and JSON nested 100,000 deep) through the transform: the library's `handle` and the real
//! binary over the Lambda Runtime API. Every record is answered exactly once with the result
//! its sample name promises, ordinary records around the hostile ones are delivered intact,
//! and the counters (and the EMF metrics line) add up.

use crate::common::Recorder;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_testkit::hostile::{self, Expect, HostileRecord};
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_transform::config::Destination;
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, FirehoseResponse, RecordResult, Stats, handle};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_firetail-transform");

/// An ordinary sidecar event with sequence number `seq`.
fn ordinary(seq: usize) -> InputRecord {
    let line = format!(
        r#"{{"log":"seq={seq}","kubernetes":{{"namespace_name":"shop","pod_name":"web-1","container_name":"app"}}}}"#
    );
    InputRecord {
        record_id: format!("ordinary-{seq}"),
        approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
        data: STANDARD.encode(line),
    }
}

/// The hostile records, each followed by an ordinary one, so that a hostile record that
/// disturbed its neighbour would show.
fn event(samples: &[HostileRecord]) -> FirehoseEvent {
    let mut records = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        records.push(InputRecord {
            record_id: sample.name.clone(),
            approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
            data: sample.data.clone(),
        });
        records.push(ordinary(i));
    }
    FirehoseEvent {
        invocation_id: "hostile".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records,
    }
}

fn expected(expect: Expect) -> RecordResult {
    match expect {
        Expect::Ok => RecordResult::Ok,
        Expect::Dropped => RecordResult::Dropped,
        Expect::ProcessingFailed => RecordResult::ProcessingFailed,
    }
}

/// One log object. The transform copies an app's JSON values verbatim, so JSON nested deeper
/// than serde_json's recursion limit, and numbers outside the range of a double (`1e999`,
/// valid JSON grammar), come out as they went in; such a log is checked to be one object
/// with the transform's fields.
fn parse_log(bytes: &[u8]) -> Value {
    match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e)
            if e.to_string().contains("recursion limit")
                || e.to_string().contains("number out of range") =>
        {
            let text = String::from_utf8_lossy(bytes);
            assert!(text.starts_with('{') && text.ends_with('}'), "{e}");
            assert!(text.contains("\"timestamp\":"), "{e}");
            serde_json::json!({ "deep": true })
        }
        Err(e) => panic!("{e}: {}", String::from_utf8_lossy(bytes)),
    }
}

/// The messages Datadog would receive from one output record.
fn messages(data: &str) -> Vec<Value> {
    crate::common::datadog_messages(data)
        .iter()
        .map(|m| parse_log(m))
        .collect()
}

/// Checks every answer against the corpus; returns the counters a correct run must report.
fn check_response(samples: &[HostileRecord], event: &FirehoseEvent, response: &FirehoseResponse) {
    let ids: Vec<&str> = response
        .records
        .iter()
        .map(|r| r.record_id.as_str())
        .collect();
    let want: Vec<&str> = event.records.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, want, "every record answered once, in order");

    let mut wrong = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        let answer = &response.records[2 * i];
        if answer.result != expected(sample.expect) {
            wrong.push(format!(
                "{}: {:?}, expected {:?}",
                sample.name, answer.result, sample.expect
            ));
        }
        assert_eq!(
            answer.result == RecordResult::Ok,
            !answer.data.is_empty(),
            "{}: data exactly on Ok",
            sample.name
        );
        if answer.result == RecordResult::Ok {
            for log in messages(&answer.data) {
                assert!(log.is_object(), "{}: {log}", sample.name);
            }
        }
        let neighbour = &response.records[2 * i + 1];
        assert_eq!(
            neighbour.result,
            RecordResult::Ok,
            "the record after {}",
            sample.name
        );
        let logs = messages(&neighbour.data);
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs[0]["message"],
            format!("seq={i}"),
            "after {}",
            sample.name
        );
        assert_eq!(logs[0]["pod_name"], "web-1");
    }
    assert!(
        wrong.is_empty(),
        "unexpected results:\n{}",
        wrong.join("\n")
    );
}

fn expected_counts(samples: &[HostileRecord]) -> (u64, u64, u64) {
    let count = |e: Expect| samples.iter().filter(|s| s.expect == e).count() as u64;
    (
        count(Expect::Ok) + samples.len() as u64,
        count(Expect::Dropped),
        count(Expect::ProcessingFailed),
    )
}

#[tokio::test]
async fn every_hostile_record_gets_its_result_through_handle() {
    let samples = hostile::records();
    let event = event(&samples);
    let sink = Recorder::accepting();
    let (response, stats) = handle(&event, &Config::default(), &sink, None).await;
    check_response(&samples, &event, &response);
    assert!(
        sink.accepted().is_empty(),
        "nothing overflows: the hostile records that cannot be delivered fail on their own"
    );

    let (ok, dropped, failed) = expected_counts(&samples);
    assert_eq!(
        (
            stats.records_in,
            stats.records_ok,
            stats.records_dropped,
            stats.records_failed
        ),
        (event.records.len() as u64, ok, dropped, failed),
        "{stats:?}"
    );
    assert_eq!(stats.records_reingested, 0);
    assert!(stats.events_out >= ok, "{stats:?}");
    // The bomb is refused at the cap: what was inflated is bounded by the cap per record.
    let cap = Config::default().max_decompressed_bytes as u64;
    assert!(stats.bytes_in < samples.len() as u64 * cap, "{stats:?}");
    // The response is what Firehose accepts.
    let size = serde_json::to_vec(&response).unwrap().len();
    assert!(size <= Config::default().response_limit_bytes, "{size}");
}

#[tokio::test]
async fn hostile_records_never_panic_for_any_destination() {
    // One record per invocation too, so that no record relies on a neighbour.
    let samples = hostile::records();
    for destination in [
        Destination::Datadog,
        Destination::OpenSearch,
        Destination::S3,
    ] {
        let config = Config {
            destination,
            ..Config::default()
        };
        for sample in &samples {
            let event = event(std::slice::from_ref(sample));
            let (response, stats): (FirehoseResponse, Stats) =
                handle(&event, &config, &Recorder::accepting(), None).await;
            assert_eq!(response.records.len(), 2, "{}", sample.name);
            assert_eq!(
                stats.records_ok + stats.records_dropped + stats.records_failed,
                2
            );
            assert_eq!(response.records[1].result, RecordResult::Ok);
            if sample.expect != Expect::Ok {
                // Undeliverable and empty records are so for every destination.
                assert_eq!(
                    response.records[0].result,
                    expected(sample.expect),
                    "{} to {destination:?}",
                    sample.name
                );
            }
        }
    }
}

#[tokio::test]
async fn the_binary_answers_hostile_records_and_counts_them_in_its_metrics() {
    // The plain 6 MiB text record makes the invocation itself larger than Lambda accepts
    // (6 MB); Firehose could not send it. Its gzip twin stands in for it here.
    let samples: Vec<HostileRecord> = hostile::records()
        .into_iter()
        .filter(|s| s.name != "six-mb-text")
        .collect();
    let event = event(&samples);
    let api = RuntimeApi::start().await.unwrap();
    let function =
        spawn_function(Path::new(BIN), &api, [("FIRETAIL_DESTINATION", "datadog")]).unwrap();
    let body = api
        .invoke(serde_json::to_vec(&event).unwrap())
        .await
        .unwrap();
    let response: FirehoseResponse = serde_json::from_slice(&body).unwrap();
    check_response(&samples, &event, &response);

    let stdout = function.stdout();
    let emf: Vec<Value> = stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(emf.len(), 1, "{stdout}");
    let (ok, dropped, failed) = expected_counts(&samples);
    assert_eq!(emf[0]["RecordsIn"], event.records.len() as u64);
    assert_eq!(emf[0]["RecordsOk"], ok);
    assert_eq!(emf[0]["RecordsDropped"], dropped);
    assert_eq!(emf[0]["RecordsFailed"], failed);
    // Each failure is explained, with the record id, in the function's log.
    let logs = format!("{stdout}{}", function.stderr());
    for sample in samples
        .iter()
        .filter(|s| s.expect == Expect::ProcessingFailed)
    {
        assert!(logs.contains(&sample.name), "{} not logged", sample.name);
    }
    assert!(logs.contains("gzip bomb"), "{logs}");
    assert!(logs.contains("zstd bomb"), "{logs}");
}

/// Every codec decodes under the one `max_decompressed_bytes`, to the byte: a record that
/// inflates to exactly the cap is delivered, one byte more is `ProcessingFailed`, for gzip and
/// zstd alike (so neither is a cheaper bomb than the other).
#[test]
fn gzip_and_zstd_records_meet_the_same_inflate_cap_to_the_byte() {
    use firetail_wire::codec::Zstder;
    use firetail_wire::gzip::gzip;

    /// NDJSON of sidecar events inflating to exactly `len` bytes.
    fn text_of_len(len: usize) -> Vec<u8> {
        let head = br#"{"log":""#;
        let tail = b"\",\"kubernetes\":{\"namespace_name\":\"shop\",\"pod_name\":\"web-1\",\"container_name\":\"app\"}}\n";
        let mut text = head.to_vec();
        text.resize(len - tail.len(), b'x');
        text.extend_from_slice(tail);
        assert_eq!(text.len(), len);
        text
    }
    let cap = 200_000;
    let config = Config {
        destination: Destination::S3,
        max_decompressed_bytes: cap,
        ..Config::default()
    };
    let mut zstd = Zstder::new(19);
    for (len, expect) in [
        (cap, RecordResult::Ok),
        (cap + 1, RecordResult::ProcessingFailed),
    ] {
        let text = text_of_len(len);
        let mut zstd_bytes = Vec::new();
        zstd.zstd_into(&text, &mut zstd_bytes);
        let gzip_bytes = gzip(&text, flate2::Compression::best());
        for (codec, bytes) in [("gzip", gzip_bytes), ("zstd", zstd_bytes)] {
            assert!(
                bytes.len() < 2_000,
                "{codec}: a bomb, {} bytes",
                bytes.len()
            );
            let event = FirehoseEvent {
                invocation_id: "cap".into(),
                delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs"
                    .into(),
                region: "us-east-1".into(),
                records: vec![InputRecord {
                    record_id: format!("{codec}-{len}"),
                    approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                    data: STANDARD.encode(&bytes),
                }],
            };
            let plan = firetail_transform::plan::plan(&event, &config, 0);
            assert_eq!(
                plan.records[0].result, expect,
                "{codec}, {len} bytes, cap {cap}"
            );
        }
    }
}
