//! Invocation generators shared by the transform benchmarks.

use std::io::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::FirehoseEvent;
use firetail_transform::invocation::InputRecord;

/// The record payload styles a delivery stream sees.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Our sidecar in `json` mode: one event per record.
    SidecarSingle,
    /// Our sidecar in `ndjson-gzip` mode: 500 events per gzip record.
    SidecarPackedGzip,
    /// EKS Fargate's built-in Fluent Bit: one event per record, Merge_Log applied.
    FluentBit,
    /// Our sidecar's default, `v2-zstd`: a header with the pod metadata, then 500 lean events,
    /// one zstd frame (the sidecar's default profile) per record.
    SidecarV2Zstd,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::SidecarSingle,
        Kind::SidecarPackedGzip,
        Kind::SidecarV2Zstd,
        Kind::FluentBit,
    ];

    /// Events in each record of this kind.
    #[allow(dead_code)] // not every benchmark or test that includes this module calls it
    pub fn events_per_record(self) -> usize {
        match self {
            Kind::SidecarSingle | Kind::FluentBit => 1,
            Kind::SidecarPackedGzip | Kind::SidecarV2Zstd => PACKED_EVENTS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::SidecarSingle => "sidecar json (1 event/record)",
            Kind::SidecarPackedGzip => "sidecar ndjson-gzip (500 events/record)",
            Kind::FluentBit => "Fargate Fluent Bit (1 event/record)",
            Kind::SidecarV2Zstd => "sidecar v2-zstd (500 events/record)",
        }
    }
}

/// Events in each packed record (the names above say so too).
const PACKED_EVENTS: usize = 500;

const KUBE: &str = r#"{"pod_name":"checkout-7d4b9c8f6d-x2x9k","namespace_name":"shop","pod_id":"0b7c9a52-5f3e-4d1c-9a4e-6a1c2d3e4f50","labels":{"app.kubernetes.io/name":"checkout","pod-template-hash":"7d4b9c8f6d","tags.datadoghq.com/env":"prod","tags.datadoghq.com/service":"checkout","tags.datadoghq.com/version":"2.3.1"},"annotations":{"CapacityProvisioned":"0.25vCPU 0.5GB","Logging":"LoggingEnabled"},"host":"fargate-ip-10-0-12-34.ec2.internal","container_name":"app","docker_id":"5b1d3c0e9f7a4b2d8c6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e","container_image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:2.3.1"}"#;

/// A ~200-byte application line; every tenth is a JSON log line.
fn app_line(i: u64) -> String {
    if i.is_multiple_of(10) {
        format!(
            r#"{{"level":"info","msg":"order placed","order_id":"o-{i:08}","latency_ms":{},"path":"/api/v1/cart/checkout","user":"u-{:06}"}}"#,
            i % 997,
            i % 100_000
        )
    } else {
        format!(
            "2026-11-22T10:00:00.{:03}Z INFO  [http-nio-8080-exec-{}] c.s.checkout.CartController - GET /api/v1/cart/{i:08} 200 {}ms user=u-{:06} trace=4bf92f3577b34da6a3ce929d0e0e{:04}",
            i % 1000,
            i % 16,
            i % 250,
            i % 100_000,
            i % 10_000
        )
    }
}

fn escape(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The read time of event `i`: within one second, as the sidecar stamps a busy file's lines.
fn read_time(i: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_795_341_600_000 + i % 1000)
}

const FILE: &str = "/var/log/app/app/app.log";

/// Event `i` as the sidecar's version 1 encoder writes it (the real writer, not an imitation).
fn sidecar_event(i: u64) -> String {
    let line = app_line(i);
    let ev = firetail_wire::event::EventRef {
        line: line.as_bytes(),
        time: read_time(i),
        file: FILE,
        part: None,
    };
    let mut out = Vec::new();
    firetail_wire::event::encode(&ev, "file", KUBE.as_bytes(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

fn fluent_bit_event(i: u64) -> String {
    format!(
        r#"{{"log":{},"stream":"stdout","logtag":"F","time":"2026-11-22T10:00:00.{:03}Z","kubernetes":{KUBE}}}"#,
        escape(&app_line(i)),
        i % 1000
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// An invocation of about `target_bytes` of JSON request, as Firehose would send it.
#[allow(dead_code)] // not every benchmark or test that includes this module calls it
pub fn invocation(kind: Kind, target_bytes: usize) -> FirehoseEvent {
    invocation_while(kind, |request, _| request <= target_bytes)
}

/// An invocation of as many records as fit `buffer_bytes` of record data (the records' bytes
/// as put, which is how we read Firehose's processor buffer), at least one.
#[allow(dead_code)] // not every benchmark or test that includes this module calls it
pub fn invocation_of_buffer(kind: Kind, buffer_bytes: usize) -> FirehoseEvent {
    invocation_while(kind, |_, data| data <= buffer_bytes)
}

/// Records appended while `fits(request bytes, record data bytes)` holds for the invocation
/// with the next one (the first always goes in).
fn invocation_while(kind: Kind, fits: impl Fn(usize, usize) -> bool) -> FirehoseEvent {
    let mut records = Vec::new();
    let mut size = 200;
    let mut data_bytes = 0usize;
    let mut seq = 0u64;
    loop {
        let data = match kind {
            Kind::SidecarSingle => {
                seq += 1;
                let mut e = sidecar_event(seq).into_bytes();
                e.push(b'\n');
                e
            }
            Kind::FluentBit => {
                seq += 1;
                fluent_bit_event(seq).into_bytes()
            }
            Kind::SidecarPackedGzip => {
                let mut ndjson = String::new();
                for _ in 0..PACKED_EVENTS {
                    seq += 1;
                    ndjson.push_str(&sidecar_event(seq));
                    ndjson.push('\n');
                }
                gzip(ndjson.as_bytes())
            }
            Kind::SidecarV2Zstd => {
                // The same events as the gzip records, by the sidecar's version 2 writers.
                let header = firetail_wire::v2::Header {
                    stream: "file",
                    file: FILE,
                    kubernetes: KUBE.as_bytes(),
                };
                let mut text = Vec::new();
                firetail_wire::v2::write_header(&header, &mut text);
                text.push(b'\n');
                for _ in 0..PACKED_EVENTS {
                    seq += 1;
                    let line = app_line(seq);
                    let ev = firetail_wire::event::EventRef {
                        line: line.as_bytes(),
                        time: read_time(seq),
                        file: FILE,
                        part: None,
                    };
                    firetail_wire::v2::encode(&ev, &header, &header, &mut text);
                    text.push(b'\n');
                }
                let mut out = Vec::new();
                firetail_wire::codec::Zstder::with_profile(firetail_wire::codec::ZstdProfile::Auto)
                    .zstd_record_into(&text, PACKED_EVENTS, &mut out);
                out
            }
        };
        let record = InputRecord {
            record_id: format!(
                "49546986683135544286507457936321625675700192471156785154{:06}",
                records.len()
            ),
            approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
            data: STANDARD.encode(&data),
        };
        size += record.data.len() + record.record_id.len() + 80;
        data_bytes += data.len();
        if !fits(size, data_bytes) && !records.is_empty() {
            break;
        }
        records.push(record);
    }
    FirehoseEvent {
        invocation_id: "bench".into(),
        delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/bench".into(),
        region: "us-east-1".into(),
        records,
    }
}
