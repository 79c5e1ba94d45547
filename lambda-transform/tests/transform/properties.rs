//! Properties of the transform over generated invocations: every recordId exactly once and in
//! order, a response within the limit, no panic on arbitrary bytes, and no event lost when
//! the response budget and record limit force re-ingest and splitting.

use crate::common::{Recorder, gunzip};

use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::config::{Destination, S3Compression};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, RecordResult, handle};
use proptest::prelude::*;
use serde_json::Value;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn event(records: Vec<(String, String)>) -> FirehoseEvent {
    FirehoseEvent {
        invocation_id: "inv".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records: records
            .into_iter()
            .map(|(record_id, data)| InputRecord {
                record_id,
                approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                data,
            })
            .collect(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn destination() -> impl Strategy<Value = Destination> {
    prop_oneof![
        Just(Destination::Datadog),
        Just(Destination::OpenSearch),
        Just(Destination::S3)
    ]
}

/// Record payloads from harmless to hostile.
fn payload() -> impl Strategy<Value = String> {
    let bytes = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        bytes.clone().prop_map(|b| STANDARD.encode(b)),
        bytes.clone().prop_map(|b| STANDARD.encode(gzip(&b))),
        bytes.prop_map(|b| { let g = gzip(&b); STANDARD.encode(&g[..g.len() / 2]) }),
        "[ -~]{0,40}",
        r#"\{"(log|message|time|kubernetes|date)":("[ -~]{0,20}"|[0-9.e+-]{1,10}|\{\}|null|\[\])\}"#
            .prop_map(|s| STANDARD.encode(s)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_record_once_in_order_within_the_limit(
        records in prop::collection::vec(("[a-zA-Z0-9\"\\\\]{1,12}", payload()), 0..20),
        destination in destination(),
        limit in 1_024usize..8_000,
    ) {
        let event = event(records);
        let config = Config { destination, response_limit_bytes: limit, ..Config::default() };
        let sink = Recorder::accepting();
        let (response, stats) = runtime().block_on(handle(&event, &config, &sink, None));
        let ids: Vec<&str> = response.records.iter().map(|r| r.record_id.as_str()).collect();
        let want: Vec<&str> = event.records.iter().map(|r| r.record_id.as_str()).collect();
        prop_assert_eq!(ids, want);
        prop_assert_eq!(stats.records_ok + stats.records_dropped + stats.records_failed, stats.records_in);
        for r in &response.records {
            prop_assert_eq!(r.result == RecordResult::Ok, !r.data.is_empty());
        }
        // The budget is a promise only when the ids themselves fit.
        let skeleton: usize = event.records.iter().map(|r| r.record_id.len() * 2 + 60).sum();
        if skeleton < limit / 2 {
            let size = serde_json::to_vec(&response).unwrap().len();
            prop_assert!(size <= limit, "response {size} > limit {limit}");
        }
    }
}

/// A sidecar-style NDJSON event with a unique sequence number in its message.
fn line(seq: u64, pad: usize) -> String {
    format!(
        r#"{{"time":"2026-11-22T10:00:00Z","log":"seq={seq} {}","kubernetes":{{"namespace_name":"ns","pod_name":"p","container_name":"c"}}}}"#,
        "x".repeat(pad)
    )
}

/// Sequence numbers found in a Firehose output record of any destination.
fn seqs_in_output(bytes: &[u8], out: &mut Vec<u64>) {
    let bytes = if firetail_wire::gzip::is_gzip(bytes) {
        gunzip(bytes)
    } else {
        bytes.to_vec()
    };
    let text = String::from_utf8(bytes).unwrap();
    if let Ok(env) = serde_json::from_str::<Value>(&text)
        && env.get("logEvents").is_some()
    {
        for e in env["logEvents"].as_array().unwrap() {
            seqs_in_output(e["message"].as_str().unwrap().as_bytes(), out);
        }
        return;
    }
    for l in text.lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let m = v["message"].as_str().unwrap();
        out.push(
            m.trim_start_matches("seq=")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap(),
        );
    }
}

/// Sequence numbers in a payload handed back to the stream (original sidecar lines).
fn seqs_in_reingested(bytes: &[u8], out: &mut Vec<u64>) {
    let bytes = if firetail_wire::gzip::is_gzip(bytes) {
        gunzip(bytes)
    } else {
        bytes.to_vec()
    };
    for l in String::from_utf8(bytes).unwrap().lines() {
        let v: Value = serde_json::from_str(l).unwrap();
        let m = v["log"].as_str().unwrap();
        out.push(
            m.trim_start_matches("seq=")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap(),
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn no_event_lost_under_overflow_and_splitting(
        shape in prop::collection::vec((1usize..40, 0usize..600, any::<bool>()), 1..30),
        datadog in any::<bool>(),
        s3_gzip in any::<bool>(),
        limit in 4_000usize..60_000,
        max_record in 2_048usize..20_000,
    ) {
        let mut seq = 0u64;
        let mut records = Vec::new();
        for (i, (events, pad, gz)) in shape.iter().enumerate() {
            let mut ndjson = String::new();
            for _ in 0..*events {
                ndjson.push_str(&line(seq, *pad));
                ndjson.push('\n');
                seq += 1;
            }
            let data = if *gz { gzip(ndjson.as_bytes()) } else { ndjson.into_bytes() };
            records.push((format!("r{i}"), STANDARD.encode(data)));
        }
        let config = Config {
            destination: if datadog { Destination::Datadog } else { Destination::S3 },
            s3_compression: if s3_gzip { S3Compression::Gzip } else { S3Compression::None },
            response_limit_bytes: limit,
            max_output_record_bytes: max_record,
            ..Config::default()
        };
        let event = event(records);
        let sink = Recorder::accepting();
        let (response, stats) = runtime().block_on(handle(&event, &config, &sink, None));

        let mut delivered = Vec::new();
        let bytes_per_event = firetail_wire::output::datadog_bytes_per_event(config.datadog_buffer_mib);
        for r in &response.records {
            if r.result == RecordResult::Ok {
                let bytes = STANDARD.decode(&r.data).unwrap();
                prop_assert!(bytes.len() <= max_record);
                let before = delivered.len();
                seqs_in_output(&bytes, &mut delivered);
                if datadog {
                    let events = delivered.len() - before;
                    prop_assert!(events * bytes_per_event <= bytes.len(),
                        "{events} events in {} bytes", bytes.len());
                }
            }
        }
        let mut reingested = Vec::new();
        for p in sink.accepted().iter() {
            seqs_in_reingested(p, &mut reingested);
        }
        // Failed records go whole to the backup bucket: count their events as kept.
        let mut backed_up = 0u64;
        for (r, input) in response.records.iter().zip(&event.records) {
            if r.result == RecordResult::ProcessingFailed {
                let mut v = Vec::new();
                seqs_in_reingested(&STANDARD.decode(&input.data).unwrap(), &mut v);
                backed_up += v.len() as u64;
            }
        }
        let mut counts: BTreeMap<u64, u32> = BTreeMap::new();
        for s in delivered.iter().chain(&reingested) {
            *counts.entry(*s).or_default() += 1;
        }
        prop_assert!(counts.values().all(|&c| c == 1), "an event went out twice");
        prop_assert_eq!(counts.len() as u64 + backed_up, seq, "events lost");
        prop_assert_eq!(stats.events_out as usize, delivered.len());
    }
}
