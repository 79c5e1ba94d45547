//! The transform's decoder (`decode_record`: base64, capped gzip inflate; `Payload::of`) and the
//! whole pure planner (`plan::plan`) on arbitrary payloads.
//!
//! Input layout: byte 0 picks how the payload is wrapped (base64 text as given, base64 of the
//! bytes, base64 of their gzip, base64 of a truncated gzip) and byte 1 the destination and the
//! limits; the rest is split on `\0\0` into up to 8 records.
//!
//! Oracle: no panic; the decoder never returns more than its cap and returns non-gzip bytes
//! unchanged; the plan answers every record once, in order, `Ok` exactly when it carries
//! data, with counters that add up.
#![no_main]

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::config::{Config, Destination, S3Compression};
use firetail_transform::decode::{self, DecodeError};
use firetail_transform::invocation::{FirehoseEvent, InputRecord, RecordResult};
use firetail_transform::plan;
use firetail_wire::gzip::InflateError;
use libfuzzer_sys::fuzz_target;

/// Small, so the bomb guard and the record and response budgets are reached.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

fn wrap(mode: u8, payload: &[u8]) -> String {
    match mode % 4 {
        0 => String::from_utf8_lossy(payload).into_owned(),
        1 => STANDARD.encode(payload),
        2 => STANDARD.encode(gzip(payload)),
        _ => {
            let gz = gzip(payload);
            STANDARD.encode(&gz[..gz.len() * 2 / 3])
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [mode, shape, rest @ ..] = data else {
        return;
    };
    let mut payloads: Vec<&[u8]> = Vec::new();
    let mut from = 0;
    for i in 0..rest.len().saturating_sub(1) {
        if payloads.len() == 7 {
            break;
        }
        if rest[i] == 0 && rest[i + 1] == 0 && i >= from {
            payloads.push(&rest[from..i]);
            from = i + 2;
        }
    }
    payloads.push(&rest[from.min(rest.len())..]);

    let records: Vec<InputRecord> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let data = wrap(mode.rotate_right(i as u32 * 2), p);
            match decode::decode_record(&data, MAX_DECOMPRESSED_BYTES) {
                Ok(d) => {
                    if let Some(inflated) = &d.inflated {
                        assert!(inflated.len() <= MAX_DECOMPRESSED_BYTES);
                    } else {
                        assert_eq!(d.payload(), &d.raw[..]);
                    }
                    let _ = decode::Payload::of(d.payload());
                }
                Err(DecodeError::Inflate(InflateError::TooLarge { limit_bytes })) => {
                    assert_eq!(limit_bytes, MAX_DECOMPRESSED_BYTES)
                }
                Err(_) => {}
            }
            InputRecord {
                record_id: format!("r{i}"),
                approximate_arrival_timestamp: (shape & 0x80 == 0)
                    .then_some(1_795_341_600_000u64.into()),
                data,
            }
        })
        .collect();

    let config = Config {
        destination: match shape % 3 {
            0 => Destination::Datadog,
            1 => Destination::OpenSearch,
            _ => Destination::S3,
        },
        s3_compression: if shape & 0x04 == 0 {
            S3Compression::Gzip
        } else {
            S3Compression::None
        },
        max_decompressed_bytes: MAX_DECOMPRESSED_BYTES,
        response_limit_bytes: 512 + usize::from(shape >> 3 & 0x0f) * 1_024,
        max_output_record_bytes: 256 + usize::from(shape >> 5 & 0x03) * 2_048,
        ..Config::default()
    };
    let event = FirehoseEvent {
        invocation_id: "fuzz".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs".into(),
        region: "us-east-1".into(),
        records,
    };
    let plan = plan::plan(&event, &config, 1_795_341_600_000);
    assert_eq!(plan.records.len(), event.records.len());
    for (planned, input) in plan.records.iter().zip(&event.records) {
        assert_eq!(planned.record_id, input.record_id);
        assert_eq!(planned.result == RecordResult::Ok, planned.data.is_some());
        if planned.result == RecordResult::ProcessingFailed {
            assert!(
                planned.reingest.is_empty(),
                "a failed record is not re-ingested"
            );
        }
    }
    let s = plan.stats();
    assert_eq!(s.records_in as usize, event.records.len());
    assert_eq!(
        s.records_ok + s.records_dropped + s.records_failed,
        s.records_in
    );
    assert!(s.events_out <= s.events_in);
});
