//! The contract between the two halves, in one fast test binary that needs nothing installed:
//! the real sidecar encoder's records (every record format; plain, JSON, invalid UTF-8 and
//! multiline events; lines split into parts; pod metadata with owner references) go through
//! the real transform for every destination, and every field must come out where the README
//! says. The names themselves are pinned as literals, so a field renamed on one side (or in
//! `firetail-wire` alone) fails here.
//!
//! Version 1 and version 2 records of the same events must render the same for every
//! destination (sidecars of both versions run side by side during a rollout).
//!
//! Also here: the transform's sidecar fixtures (`lambda-transform/fixtures/sidecar-*.json`) are
//! generated from the real encoder; a stale fixture fails. Regenerate with
//! `FIRETAIL_BLESS=1 cargo test -p firetail-e2e --test contract`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_firehose::Batch;
use firetail_firehose::testing::Scripted;
use firetail_sidecar::config::OversizeMode;
use firetail_sidecar::encode::{Encoder, Token};
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::{Limits, Packer};
use firetail_sidecar::pod::{ContainerInfo, PodInfo};
use firetail_tail::{self as tail, DrainMode, LogEvent, Part, SourceFile, TailConfig};
use firetail_testkit::records::{decode_events, destination_events};
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, RecordResult, handle};
use firetail_wire::kube::OwnerRef;
use firetail_wire::{Destination, RecordFormat};
use serde_json::{Value, json};

/// When every event was read: 2026-11-22T10:00:00.123456789Z.
fn read_time() -> SystemTime {
    UNIX_EPOCH + Duration::new(1_795_341_600, 123_456_789)
}
const READ_TIME_MS: i64 = 1_795_341_600_123;
const ARN: &str = "arn:aws:firehose:us-east-1:123456789012:deliverystream/firetail-logs";
const DOCKER_ID: &str = "5b1d3c0e9f7a4b2d8c6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout:2.3.1";
const FILE: &str = "/var/log/app/app/app.log";

/// The pod as the sidecar knows it from the Downward API and the Kubernetes API.
fn pod() -> PodInfo {
    let pairs = |items: &[(&str, &str)]| -> BTreeMap<String, String> {
        items
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    PodInfo {
        namespace: Some("shop".into()),
        pod_name: Some("checkout-7d4b9c8f6d-x2x9k".into()),
        pod_id: Some("0b7c9a52-5f3e-4d1c-9a4e-6a1c2d3e4f50".into()),
        host: Some("fargate-ip-10-0-12-34.ec2.internal".into()),
        labels: pairs(&[
            ("app.kubernetes.io/name", "checkout"),
            ("pod-template-hash", "7d4b9c8f6d"),
            ("tags.datadoghq.com/env", "prod"),
            ("tags.datadoghq.com/service", "checkout"),
            ("tags.datadoghq.com/version", "2.3.1"),
        ]),
        annotations: pairs(&[
            ("CapacityProvisioned", "0.25vCPU 0.5GB"),
            ("kubernetes.io/psp", "eks.privileged"),
        ]),
        containers: [(
            "app".to_owned(),
            ContainerInfo {
                docker_id: Some(DOCKER_ID.into()),
                image: Some(IMAGE.into()),
            },
        )]
        .into(),
        owners: vec![OwnerRef {
            kind: "ReplicaSet".into(),
            name: "checkout-7d4b9c8f6d".into(),
            controller: Some(true),
        }],
    }
}

/// A line as the engine hands it over; `part` for a piece of an over-long line.
fn event(source: &Arc<SourceFile>, bytes: &[u8], offset: u64, part: Option<Part>) -> LogEvent {
    let end_offset = offset + bytes.len() as u64 + u64::from(part.is_none_or(|p| p.last));
    LogEvent {
        source: Arc::clone(source),
        bytes: bytes.to_vec(),
        offset,
        end_offset,
        read_time: read_time(),
        part,
    }
}

/// What the sidecar's real encoder and packer make of `lines` (each one engine event).
fn records(format: RecordFormat, limits: Limits, events: Vec<LogEvent>) -> Vec<Vec<u8>> {
    let obs = Observability::default();
    let mut encoder = Encoder::new(pod(), "file", OversizeMode::Split);
    let mut packer: Packer<Token> = Packer::new(format, limits);
    for ev in events {
        encoder.push(ev, &mut packer, &obs);
    }
    packer.flush();
    let batches: Vec<Batch<Token>> = std::iter::from_fn(|| packer.take_ready()).collect();
    batches
        .into_iter()
        .flat_map(|b| b.records)
        .map(|r| r.data.to_vec())
        .collect()
}

/// The events of the contract, in order: each with the exact line it stands for.
struct Sample {
    events: Vec<LogEvent>,
    /// Every original line, whole (an engine-split line joined).
    lines: Vec<Vec<u8>>,
}

const LONG_LINE_BYTES: usize = 10_000;

fn sample() -> Sample {
    let app = SourceFile::detached(FILE, "app");
    let plain = b"GET /cart 200 12ms".to_vec();
    let json =
        br#"{"level":"WARN","msg":"slow payment","latency_ms":1840,"pod_name":"spoofed"}"#.to_vec();
    let invalid = b"raw \xff\xfe bytes \xc3\x28 end".to_vec();
    let trace = b"java.lang.IllegalStateException: cart is empty\n\tat com.shop.Checkout.pay(Checkout.java:42)\n\tat com.shop.Api.handle(Api.java:7)".to_vec();
    // Too long for one (small) record: the encoder splits it into marked parts.
    let long: Vec<u8> = (0..LONG_LINE_BYTES)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    // Longer than the engine's --max-line-bytes: two engine parts, the first split again.
    let engine_first: Vec<u8> = vec![b'x'; 6_000];
    let engine_last: Vec<u8> = b"tail of an over-long line".to_vec();
    let mut offset = 0;
    let mut events = Vec::new();
    let mut next = |bytes: &[u8], part: Option<Part>| {
        events.push(event(&app, bytes, offset, part));
        offset += bytes.len() as u64 + u64::from(part.is_none_or(|p| p.last));
    };
    next(&plain, None);
    next(&json, None);
    next(&invalid, None);
    next(&trace, None);
    next(&long, None);
    next(
        &engine_first,
        Some(Part {
            index: 0,
            last: false,
            cut: None,
        }),
    );
    next(
        &engine_last,
        Some(Part {
            index: 1,
            last: true,
            cut: None,
        }),
    );
    next(b"", None);
    let mut engine_line = engine_first.clone();
    engine_line.extend_from_slice(&engine_last);
    Sample {
        events,
        // Merge_Log: the JSON line's own `msg` is what arrives as the message.
        lines: vec![
            plain,
            b"slow payment".to_vec(),
            invalid,
            trace,
            long,
            engine_line,
            Vec::new(),
        ],
    }
}

/// Small records so that the long lines must be split.
fn small_limits() -> Limits {
    Limits {
        record_bytes: 4096,
        ..Limits::FIREHOSE
    }
}

fn invocation(records: &[Vec<u8>]) -> FirehoseEvent {
    FirehoseEvent {
        invocation_id: "contract".into(),
        delivery_stream_arn: ARN.into(),
        region: "us-east-1".into(),
        records: records
            .iter()
            .enumerate()
            .map(|(i, r)| InputRecord {
                record_id: format!("r{i}"),
                approximate_arrival_timestamp: Some(json!(1_795_341_660_000u64)),
                data: STANDARD.encode(r),
            })
            .collect(),
    }
}

/// The exact bytes an output event stands for: `message_base64` when present, else `message`.
fn exact_bytes(event: &Value) -> Vec<u8> {
    match event.get("message_base64") {
        Some(b64) => STANDARD.decode(b64.as_str().unwrap()).unwrap(),
        None => event["message"].as_str().unwrap().as_bytes().to_vec(),
    }
}

/// The tags the README promises for this pod, as attributes of every destination's event.
fn check_tags(event: &Value, context: &str) {
    for (key, want) in [
        ("kube_namespace", "shop"),
        ("pod_name", "checkout-7d4b9c8f6d-x2x9k"),
        ("kube_container_name", "app"),
        ("container_id", DOCKER_ID),
        ("kube_replica_set", "checkout-7d4b9c8f6d"),
        ("kube_deployment", "checkout"),
        (
            "image_name",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop/checkout",
        ),
        ("short_image", "checkout"),
        ("image_tag", "2.3.1"),
        ("kube_app_name", "checkout"),
        ("env", "prod"),
        ("version", "2.3.1"),
        ("hostname", "fargate-ip-10-0-12-34.ec2.internal"),
        ("file", FILE),
        ("stream", "file"),
    ] {
        assert_eq!(event[key], want, "{context}: {key} in {event}");
    }
    assert!(
        event.get("kubernetes").is_none(),
        "{context}: the map becomes tags"
    );
}

fn check_destination_fields(destination: Destination, event: &Value, context: &str) {
    match destination {
        Destination::Datadog => {
            assert_eq!(event["timestamp"], READ_TIME_MS, "{context}");
            assert_eq!(event["service"], "checkout", "{context}");
            assert_eq!(event["ddsource"], "checkout", "{context}");
            let ddtags = event["ddtags"].as_str().unwrap();
            for tag in [
                "kube_namespace:shop",
                "pod_name:checkout-7d4b9c8f6d-x2x9k",
                "kube_container_name:app",
                "container_id:5b1d3c0e9f7a",
                "kube_deployment:checkout",
            ] {
                assert!(ddtags.contains(tag), "{context}: {tag} not in {ddtags}");
            }
        }
        Destination::OpenSearch | Destination::S3 => {
            assert_eq!(event["@timestamp"], "2026-11-22T10:00:00.123Z", "{context}");
        }
    }
}

#[tokio::test]
async fn every_sidecar_record_format_reaches_every_destination_with_every_field() {
    let s = sample();
    for format in RecordFormat::ALL {
        let records = records(format, small_limits(), sample().events);
        let in_records: usize = records
            .iter()
            .map(|r| decode_events(r).unwrap().len())
            .sum();
        for destination in Destination::ALL {
            let context = format!("{format} -> {destination}");
            let config = Config {
                destination,
                ..Config::default()
            };
            let client = Scripted::accepting();
            let (response, stats) = handle(&invocation(&records), &config, &client, None).await;
            assert!(client.calls().is_empty(), "{context}: nothing overflows");
            let packed = format != RecordFormat::Json;
            let mut out = Vec::new();
            for (record, answer) in records.iter().zip(&response.records) {
                if destination == Destination::OpenSearch && packed {
                    // Documented: a record of several events cannot be one document.
                    let events = decode_events(record).unwrap().len();
                    let want = if events > 1 {
                        RecordResult::ProcessingFailed
                    } else {
                        RecordResult::Ok
                    };
                    assert_eq!(answer.result, want, "{context}");
                    if events > 1 {
                        continue;
                    }
                }
                assert_eq!(answer.result, RecordResult::Ok, "{context}: {answer:?}");
                let data = STANDARD.decode(&answer.data).unwrap();
                out.extend(destination_events(destination, &data).unwrap());
            }
            if destination == Destination::OpenSearch && packed {
                assert!(stats.records_failed > 0, "{context}");
                continue;
            }
            assert_eq!(
                out.len(),
                in_records,
                "{context}: one log per encoded event"
            );
            assert_eq!(stats.events_out as usize, out.len(), "{context}");

            // Whole events carry their line; pieces say which part of which line they are,
            // and the pieces of a line, in index order, are that line.
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut open: Option<(u64, Vec<u8>)> = None;
            for e in &out {
                check_tags(e, &context);
                check_destination_fields(destination, e, &context);
                let bytes = exact_bytes(e);
                match e.get("part") {
                    None => {
                        assert!(open.is_none(), "{context}: a line's parts are contiguous");
                        lines.push(bytes);
                    }
                    Some(p) => {
                        let index = p["index"].as_u64().unwrap();
                        let last = p["last"].as_bool().unwrap();
                        let (want, mut acc) = open.take().unwrap_or((0, Vec::new()));
                        assert_eq!(index, want, "{context}: parts in order {e}");
                        acc.extend_from_slice(&bytes);
                        if last {
                            lines.push(acc);
                        } else {
                            open = Some((index + 1, acc));
                        }
                    }
                }
            }
            assert!(
                open.is_none(),
                "{context}: every split line ends with its last part"
            );
            assert_eq!(lines, s.lines, "{context}: every line, exactly, in order");

            // The JSON line is merged; its fields cannot overwrite the tags.
            let merged = out.iter().find(|e| e["latency_ms"] == 1840).unwrap();
            assert_eq!(merged["message"], "slow payment", "{context}");
            assert_eq!(merged["app.pod_name"], "spoofed", "{context}");
            if destination == Destination::Datadog {
                assert_eq!(merged["status"], "warn", "{context}");
            }
            // The line that is not UTF-8: readable `message`, exact `message_base64`.
            let raw = out
                .iter()
                .find(|e| e.get("message_base64").is_some())
                .unwrap();
            assert_eq!(
                raw["message"], "raw \u{fffd}\u{fffd} bytes \u{fffd}( end",
                "{context}"
            );
        }
    }
}

/// The sample, with lines of a second file and of a second container (no docker id, no image)
/// interleaved: a version 2 record's events then differ from its header.
fn mixed_sample() -> Vec<LogEvent> {
    let other_file = SourceFile::detached("/var/log/app/app/error.log", "app");
    let other_container = SourceFile::detached("/var/log/app/worker/worker.log", "worker");
    let mut events = Vec::new();
    for (i, ev) in sample().events.into_iter().enumerate() {
        events.push(ev);
        let source = if i % 2 == 0 {
            &other_file
        } else {
            &other_container
        };
        let line = format!("interleaved {i} from {}", source.path.display());
        events.push(event(source, line.as_bytes(), (i * 100) as u64, None));
    }
    events
}

/// Every output event of `records` for `destination`, in order, parsed and as written.
async fn rendered_with_text(
    records: &[Vec<u8>],
    destination: Destination,
) -> (Vec<Value>, Vec<String>) {
    let config = Config {
        destination,
        ..Config::default()
    };
    let client = Scripted::accepting();
    let (response, _) = handle(&invocation(records), &config, &client, None).await;
    assert!(client.calls().is_empty(), "nothing overflows");
    let mut out = Vec::new();
    let mut texts = Vec::new();
    for answer in &response.records {
        assert_eq!(answer.result, RecordResult::Ok, "{destination}: {answer:?}");
        let data = STANDARD.decode(&answer.data).unwrap();
        out.extend(destination_events(destination, &data).unwrap());
        // The bytes of each object, so that field order counts too.
        let text = firetail_testkit::records::inflate(&data).unwrap();
        match destination {
            Destination::Datadog => {
                let envelope: Value = serde_json::from_slice(&text).unwrap();
                for e in envelope["logEvents"].as_array().unwrap() {
                    texts.push(e["message"].as_str().unwrap().to_owned());
                }
            }
            _ => texts.extend(
                firetail_wire::format::lines(&text).map(|l| String::from_utf8(l.to_vec()).unwrap()),
            ),
        }
    }
    assert_eq!(texts.len(), out.len());
    (out, texts)
}

/// The texts of the events that are not pieces of a split line.
fn whole_texts(events: &[Value], texts: &[String]) -> Vec<String> {
    events
        .iter()
        .zip(texts)
        .filter(|(e, _)| e.get("part").is_none())
        .map(|(_, t)| t.clone())
        .collect()
}

#[tokio::test]
async fn version_1_and_version_2_of_the_same_events_reach_every_destination_alike() {
    // The transform reads both during a rollout: the same lines, packed by the real encoder in
    // either version (and either codec), must come out the same, field for field.
    for limits in [small_limits(), Limits::FIREHOSE] {
        let v1 = records(RecordFormat::NdjsonGzip, limits, mixed_sample());
        for destination in [Destination::Datadog, Destination::S3] {
            let (want, want_texts) = rendered_with_text(&v1, destination).await;
            assert_eq!(want.len(), decode_events_all(&v1).len());
            // Sanity: the interleaved lines carry their own file and container.
            let worker = want
                .iter()
                .find(|e| e["file"] == "/var/log/app/worker/worker.log")
                .unwrap();
            assert_eq!(worker["kube_container_name"], "worker", "{worker}");
            assert!(worker.get("container_id").is_none(), "{worker}");
            for format in [RecordFormat::V2Zstd, RecordFormat::V2Gzip] {
                let v2 = records(format, limits, mixed_sample());
                assert!(
                    v2.iter().all(|r| firetail_testkit::records::inflate(r)
                        .unwrap()
                        .starts_with(b"{\"firetail_format\":2,")),
                    "{format}: every record states its version first"
                );
                let (got, got_texts) = rendered_with_text(&v2, destination).await;
                assert_eq!(
                    whole_texts(&got, &got_texts),
                    whole_texts(&want, &want_texts),
                    "{format} -> {destination}: byte for byte"
                );
                // Where a line must be split depends on what else a record holds, so pieces
                // are compared joined; every other field must be the same.
                let (got, want) = (joined(&got), joined(&want));
                assert_eq!(got.len(), want.len(), "{format} -> {destination}");
                for (g, w) in got.iter().zip(&want) {
                    assert_eq!(g, w, "{format} -> {destination}");
                }
            }
        }
    }
}

/// `events` with the pieces of each split line joined into one event: the message is the
/// pieces' messages in order, `part` is gone, every other field is the first piece's (the
/// same on every piece). Pieces of a line come from one file, in order; other files' lines may
/// come between them.
fn joined(events: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for e in events {
        let file = e["file"].as_str().unwrap().to_owned();
        let Some(part) = e.get("part") else {
            assert!(
                !open.contains_key(&file),
                "a line's pieces are contiguous in its file"
            );
            out.push(e.clone());
            continue;
        };
        let mut piece = e.clone();
        let map = piece.as_object_mut().unwrap();
        map.remove("part");
        let message = map.remove("message").unwrap();
        let last = part["last"].as_bool().unwrap();
        match open.get(&file) {
            Some(&i) => {
                let mut rest = out[i].clone();
                let text = format!(
                    "{}{}",
                    rest["message"].as_str().unwrap(),
                    message.as_str().unwrap()
                );
                rest.as_object_mut().unwrap().remove("message");
                assert_eq!(
                    &rest, &piece,
                    "pieces of one line differ only in their text"
                );
                out[i]["message"] = Value::from(text);
            }
            None => {
                map.insert("message".into(), message);
                open.insert(file.clone(), out.len());
                out.push(piece);
            }
        }
        if last {
            open.remove(&file);
        }
    }
    assert!(open.is_empty(), "every split line ends with its last piece");
    out
}

fn decode_events_all(records: &[Vec<u8>]) -> Vec<Value> {
    records
        .iter()
        .flat_map(|r| decode_events(r).unwrap())
        .collect()
}

#[tokio::test]
async fn a_version_2_record_is_smaller_than_version_1_and_names_its_version() {
    let v1 = records(RecordFormat::NdjsonGzip, Limits::FIREHOSE, mixed_sample());
    let v2 = records(RecordFormat::V2Gzip, Limits::FIREHOSE, mixed_sample());
    let raw = |rs: &[Vec<u8>]| -> usize {
        rs.iter()
            .map(|r| firetail_testkit::records::inflate(r).unwrap().len())
            .sum()
    };
    // The 12 events of the app container carry the pod's metadata once per record instead of
    // each time (the 4 of the worker container carry their own: it differs from the header's).
    let kube = pod().kubernetes_json(Some("app")).len();
    let saved = raw(&v1) - raw(&v2);
    assert!(
        saved >= (12 - v2.len()) * kube,
        "{saved} bytes saved, {} records, {kube}-byte metadata",
        v2.len()
    );
    let text = firetail_testkit::records::inflate(&v2[0]).unwrap();
    let header: Value =
        serde_json::from_slice(text.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(header["firetail_format"], 2);
    assert_eq!(header["file"], FILE);
    assert_eq!(header["stream"], "file");
    assert_eq!(
        header["kubernetes"]["pod_name"],
        "checkout-7d4b9c8f6d-x2x9k"
    );
}

#[test]
fn version_2_events_use_the_documented_names_and_carry_json_lines_as_json() {
    // README.md "The transform" and sidecar/README.md name these; `log_json` holds a line
    // that is one JSON object, byte for byte.
    let sample = sample();
    let json_line = sample
        .events
        .iter()
        .map(|e| e.bytes.clone())
        .find(|l| l.first() == Some(&b'{'))
        .unwrap();
    let mut keys = BTreeSet::new();
    let mut carried_as_json = Vec::new();
    for r in records(RecordFormat::V2Gzip, Limits::FIREHOSE, mixed_sample()) {
        let text = firetail_testkit::records::inflate(&r).unwrap();
        for line in text
            .split(|b| *b == b'\n')
            .skip(1)
            .filter(|l| !l.is_empty())
        {
            let raw: std::collections::BTreeMap<String, &serde_json::value::RawValue> =
                serde_json::from_slice(line).unwrap();
            if let Some(v) = raw.get("log_json") {
                carried_as_json.push(v.get().as_bytes().to_vec());
            }
            keys.extend(raw.into_keys());
        }
    }
    assert_eq!(carried_as_json, vec![json_line]);
    // (`stream` too, where an event's differs from its header's; not in this sample.)
    let documented: BTreeSet<String> = [
        "file",
        "kubernetes",
        "log",
        "log_base64",
        "log_json",
        "part",
        "time",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(keys, documented);
}

#[test]
fn the_sidecar_writes_the_documented_names() {
    let records = records(RecordFormat::Json, small_limits(), sample().events);
    let events: Vec<Value> = records
        .iter()
        .flat_map(|r| decode_events(r).unwrap())
        .collect();
    let mut keys = BTreeSet::new();
    let mut kube_keys = BTreeSet::new();
    for e in &events {
        keys.extend(e.as_object().unwrap().keys().cloned());
        kube_keys.extend(e["kubernetes"].as_object().unwrap().keys().cloned());
        if let Some(part) = e.get("part") {
            let part_keys: BTreeSet<&str> = part
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(part_keys, BTreeSet::from(["index", "last"]));
        }
    }
    // README.md "The transform" and sidecar/README.md list these; renaming one breaks every
    // reader built for Fluent Bit's shape, so it must be deliberate.
    let documented =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|s| (*s).to_owned()).collect() };
    assert_eq!(
        keys,
        documented(&[
            "file",
            "kubernetes",
            "log",
            "log_base64",
            "part",
            "stream",
            "time"
        ])
    );
    assert_eq!(
        kube_keys,
        documented(&[
            "annotations",
            "container_image",
            "container_name",
            "docker_id",
            "host",
            "labels",
            "namespace_name",
            "ownerReferences",
            "pod_id",
            "pod_name",
        ])
    );
}

/// The sidecar fixtures of the transform's tests, made by the real encoder and packer.
fn sidecar_fixtures() -> Vec<(&'static str, FirehoseEvent)> {
    let app = SourceFile::detached(FILE, "app");
    let at = |lines: &[&[u8]]| -> Vec<LogEvent> {
        let mut offset = 0;
        lines
            .iter()
            .map(|l| {
                let ev = event(&app, l, offset, None);
                offset = ev.end_offset;
                ev
            })
            .collect()
    };
    let trace: &[u8] = b"java.lang.IllegalStateException: cart is empty\n\tat com.shop.Checkout.pay(Checkout.java:42)\n\tat com.shop.Api.handle(Api.java:7)";
    let single = records(
        RecordFormat::Json,
        Limits::FIREHOSE,
        at(&[
            b"GET /cart 200 12ms",
            br#"{"level":"WARN","msg":"slow payment","latency_ms":1840,"pod_name":"spoofed"}"#,
            trace,
        ]),
    );
    let mut packed = records(
        RecordFormat::Ndjson,
        Limits::FIREHOSE,
        at(&[b"plain line 0", b"plain line 1", b"plain line 2"]),
    );
    packed.extend(records(
        RecordFormat::NdjsonGzip,
        Limits::FIREHOSE,
        at(&[
            b"first",
            br#"{"level":"error","message":"db down","retry":3}"#,
            trace,
            b"last",
        ]),
    ));
    let invocation = |records: Vec<Vec<u8>>| FirehoseEvent {
        invocation_id: "4b9a1c2e-aaaa-bbbb-cccc-0123456789ab".into(),
        delivery_stream_arn: ARN.into(),
        region: "us-east-1".into(),
        records: records
            .iter()
            .enumerate()
            .map(|(i, r)| InputRecord {
                record_id: format!(
                    "49546986683135544286507457936321625675700192471156785154{i:04}"
                ),
                approximate_arrival_timestamp: Some(json!(1_795_341_600_000u64 + i as u64)),
                data: STANDARD.encode(r),
            })
            .collect(),
    };
    // Format version 2, both codecs; the second record holds lines of two files.
    let mut v2 = records(
        RecordFormat::V2Zstd,
        Limits::FIREHOSE,
        at(&[
            b"v2 first",
            br#"{"level":"error","message":"db down","retry":3}"#,
            trace,
            b"v2 last",
        ]),
    );
    let mut two_files = at(&[b"from app.log"]);
    let error_log = SourceFile::detached("/var/log/app/app/error.log", "app");
    two_files.push(event(&error_log, b"from error.log", 0, None));
    v2.extend(records(RecordFormat::V2Gzip, Limits::FIREHOSE, two_files));
    vec![
        ("sidecar-json.json", invocation(single)),
        ("sidecar-packed.json", invocation(packed)),
        ("sidecar-v2.json", invocation(v2)),
    ]
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../lambda-transform/fixtures")
}

#[test]
fn transform_fixtures_are_generated_from_the_real_encoder() {
    let bless = std::env::var_os("FIRETAIL_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, event) in sidecar_fixtures() {
        let text = serde_json::to_string_pretty(&event).unwrap() + "\n";
        let path = fixtures_dir().join(name);
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what the encoder writes now; regenerate with \
         FIRETAIL_BLESS=1 cargo test -p firetail-e2e --test contract"
    );
}

/// A slow, block-buffered writer: one JSON line in two writes 2.5 s apart (longer than the
/// 1 s quiet flush that used to cut it), through the real engine, encoder and transform.
/// Returns the engine's events for that line.
async fn line_in_two_writes(partial_line_timeout: Option<Duration>) -> Vec<LogEvent> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app");
    std::fs::create_dir_all(&root).unwrap();
    let mut cfg = TailConfig {
        paths: vec![format!("{}/*.log", root.display())],
        data_dir: root.join(".firetail"),
        poll_interval: Duration::from_millis(100),
        ..TailConfig::default()
    };
    if let Some(t) = partial_line_timeout {
        cfg.partial_line_timeout = t;
    }
    let (handle, mut events) = tail::start(cfg).unwrap();
    let acker = handle.acker();
    let path = root.join("app.log");
    std::fs::write(&path, br#"{"level":"INFO","msg":"order 7 "#).unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"paid\",\"n\":7}\n").unwrap();
    let mut got = Vec::new();
    // Until the event that ends at the newline.
    while !got
        .last()
        .is_some_and(|e: &LogEvent| e.part.is_none_or(|p| p.last))
    {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap();
        acker.ack_event(&ev);
        got.push(ev);
    }
    let drain = tokio::spawn(handle.drain(DrainMode::ReadToEof {
        deadline: std::time::Instant::now() + Duration::from_secs(30),
    }));
    while let Some(ev) = events.recv().await {
        acker.ack_event(&ev);
        got.push(ev);
    }
    drain.await.unwrap();
    got
}

/// What the transform makes of `records` for Datadog: the logs, in order.
async fn datadog_logs(records: &[Vec<u8>]) -> Vec<Value> {
    let config = Config {
        destination: Destination::Datadog,
        ..Config::default()
    };
    let (response, _) = handle(&invocation(records), &config, &Scripted::accepting(), None).await;
    let mut out = Vec::new();
    for answer in &response.records {
        assert_eq!(answer.result, RecordResult::Ok, "{answer:?}");
        let data = STANDARD.decode(&answer.data).unwrap();
        out.extend(destination_events(Destination::Datadog, &data).unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_written_in_two_writes_arrives_whole_or_in_pieces_that_say_so() {
    const WHOLE: &str = r#"{"level":"INFO","msg":"order 7 paid","n":7}"#;
    // The default wait for the newline covers the pause: one event, the whole line.
    let got = line_in_two_writes(None).await;
    assert_eq!(
        got.len(),
        1,
        "{:?}",
        got.iter().map(|e| &e.bytes).collect::<Vec<_>>()
    );
    assert_eq!(got[0].bytes, WHOLE.as_bytes());
    let logs = datadog_logs(&records(RecordFormat::NdjsonGzip, Limits::FIREHOSE, got)).await;
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["message"], "order 7 paid");
    assert_eq!(logs[0]["n"], 7);

    // A wait shorter than the pause: two pieces, the first marked as cut.
    let got = line_in_two_writes(Some(Duration::from_secs(1))).await;
    assert_eq!(got.len(), 2);
    let cut = got[0].part.unwrap();
    assert_eq!(
        (cut.index, cut.last, cut.cut),
        (0, false, Some(tail::Cut::Timeout))
    );
    let rest = got[1].part.unwrap();
    assert_eq!((rest.index, rest.last, rest.cut), (1, true, None));

    // Version 1 and version 2 records alike.
    for format in [RecordFormat::NdjsonGzip, RecordFormat::V2Zstd] {
        pieces_through_the_transform(format, &got, WHOLE).await;
    }
}

/// The two pieces of a line cut by the timeout, through the transform in `format`: joined in
/// one record, labelled across two.
async fn pieces_through_the_transform(format: RecordFormat, got: &[tail::LogEvent], whole: &str) {
    // In one record the transform joins them: the app's JSON arrives whole.
    let one_record = records(format, Limits::FIREHOSE, got.to_vec());
    assert_eq!(one_record.len(), 1);
    let logs = datadog_logs(&one_record).await;
    assert_eq!(logs.len(), 1, "{format:?}: {logs:?}");
    assert_eq!(logs[0]["message"], "order 7 paid");
    assert_eq!(logs[0]["n"], 7);
    assert!(logs[0].get("part").is_none(), "{}", logs[0]);

    // In two records (the pause spans a flush) each piece says what it is.
    let mut two_records = Vec::new();
    for ev in got.iter().cloned() {
        two_records.extend(records(format, Limits::FIREHOSE, vec![ev]));
    }
    let logs = datadog_logs(&two_records).await;
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert_eq!(
        logs[0]["part"],
        json!({"index": 0, "last": false, "cut": "timeout"})
    );
    assert_eq!(logs[1]["part"], json!({"index": 1, "last": true}));
    let joined = format!(
        "{}{}",
        logs[0]["message"].as_str().unwrap(),
        logs[1]["message"].as_str().unwrap()
    );
    assert_eq!(joined, whole, "{format:?}");
}
