//! End to end, the whole route: app log files -> the firetail sidecar -> moto's Firehose (the
//! real AWS wire protocol, through the real SDK) -> Firehose's processor role -> the real
//! `firetail-transform` binary over the Lambda Runtime API -> destination-shaped output.
//! Every test counts events by their unique sequence numbers.
//!
//! The sidecar runs in-process here (the library `run()` its binary calls), asking the
//! CANNED-RESPONSE Kubernetes API stand-in ([`FakeKubeApi`], plain HTTP on loopback) for
//! container ids; the binary, against the same stand-in, is exercised in `process.rs`. Records are read back through
//! the testkit's recording pass-through, because moto concatenates a call's records.

use std::io::Write as _;

use firetail_testkit::records::{decode_events, destination_events};
use firetail_testkit::route::{
    Destination, FakeKubeApi, FakePod, PodDirs, Processor, RecordResult, Tally, message_of, seq_of,
};
use firetail_testkit::{MotoServer, RecordingProxy};
use firetail_wire::RecordFormat;
use serde_json::Value;

use crate::common::{
    self as e2e_common, InProcess, events_in, transform, wait_until, write_numbered,
};

const CONTAINERS: [&str; 2] = ["checkout", "worker"];
const PER_CONTAINER: u64 = 1500;

/// The container whose file got sequence number `n`.
fn container_of(n: u64) -> &'static str {
    CONTAINERS[(n / PER_CONTAINER) as usize]
}

fn check_tags(event: &Value, pod: &FakePod) {
    let n = seq_of(message_of(event)).unwrap();
    let container = container_of(n);
    assert_eq!(event["kube_namespace"], pod.namespace.as_str(), "{event}");
    assert_eq!(event["pod_name"], pod.name.as_str(), "{event}");
    assert_eq!(event["kube_container_name"], container, "{event}");
    assert_eq!(
        event["container_id"],
        FakePod::docker_id(container).as_str(),
        "{event}"
    );
}

/// A line that was not valid UTF-8 arrives with its exact bytes; every other line without.
fn check_exact_bytes(event: &Value) {
    let n = seq_of(message_of(event)).unwrap();
    let line = e2e_common::numbered_line(n);
    match e2e_common::exact_bytes(event) {
        Some(exact) => assert_eq!(exact, line, "{event}"),
        None => assert!(
            std::str::from_utf8(&line).is_ok(),
            "lost the exact bytes: {event}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_reaches_every_destination_exactly_once_with_tags() {
    let moto = MotoServer::start();
    let proxy = RecordingProxy::start(moto.url()).await.unwrap();
    let pod = FakePod::default();
    let kube = FakeKubeApi::start(&pod, &CONTAINERS).await.unwrap();
    let mut functions = Vec::new();
    for destination in Destination::ALL {
        functions.push((destination, transform(destination, &proxy.url(), &[]).await));
    }
    let total = PER_CONTAINER * CONTAINERS.len() as u64;

    for format in RecordFormat::ALL {
        let stream = format!("e2e-{format}");
        let arn = moto
            .create_s3_stream(&stream, &format!("{stream}-bucket"))
            .await;
        let tmp = tempfile::tempdir().unwrap();
        let dirs = PodDirs::new(tmp.path());
        let paths: Vec<_> = CONTAINERS
            .iter()
            .map(|c| dirs.container(c).join("app.log"))
            .collect();
        let sidecar = InProcess::start(&proxy.url(), &stream, &pod, &dirs, format, Some(&kube));
        let stream_events = || events_in(&proxy.stream_records(&stream));

        // The pod lookup runs beside tailing: probe until every container's events carry
        // their id, then write the numbered lines.
        let start = std::time::Instant::now();
        loop {
            let events = stream_events();
            let ready = CONTAINERS.iter().all(|c| {
                events.iter().any(|e| {
                    e["kubernetes"]["container_name"] == *c
                        && e["kubernetes"]["docker_id"] == FakePod::docker_id(c).as_str()
                })
            });
            if ready {
                break;
            }
            assert!(
                start.elapsed() < e2e_common::PATIENCE,
                "{format}: lookup never applied"
            );
            for p in &paths {
                let mut f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .unwrap();
                writeln!(f, "probe").unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        for (i, p) in paths.iter().enumerate() {
            let first = i as u64 * PER_CONTAINER;
            write_numbered(p, first..first + PER_CONTAINER);
        }
        wait_until(
            &format!("{format}: every line in the stream"),
            stream_events,
            |evs| {
                evs.iter()
                    .filter(|e| seq_of(e["log"].as_str().unwrap_or("")).is_some())
                    .count()
                    >= total as usize
            },
        )
        .await;
        let report = sidecar.stop().await;
        assert_eq!(report.drain.unacked_bytes, 0, "{format}");

        let records = proxy.stream_records(&stream);
        // In the stream: each line exactly once, in records of the chosen format.
        let mut in_stream = Tally::default();
        for e in events_in(&records) {
            let log = e["log"].as_str().unwrap();
            if log != "probe" {
                in_stream.add(log);
            }
        }
        in_stream
            .exactly_once(0..total)
            .unwrap_or_else(|e| panic!("{format} stream: {e}"));
        let per_record: Vec<usize> = records
            .iter()
            .map(|r| decode_events(r).unwrap().len())
            .collect();
        if format == RecordFormat::Json {
            assert!(
                per_record.iter().all(|n| *n == 1),
                "json: one event per record"
            );
        } else {
            assert!(
                per_record.iter().any(|n| *n > 100),
                "{format}: events are packed ({per_record:?})"
            );
        }

        for (destination, (api, _function)) in &functions {
            let processed = Processor::new(&arn).process(api, &records).await.unwrap();
            let mut tally = Tally::default();
            let packed_to_opensearch =
                *destination == Destination::OpenSearch && format != RecordFormat::Json;
            for ((result, data), (record, n)) in processed
                .results
                .iter()
                .zip(records.iter().zip(&per_record))
            {
                let context = format!("{format} -> {}", destination.as_str());
                if packed_to_opensearch && *n > 1 {
                    // By design: one OpenSearch document per record. Firehose keeps the
                    // original in the backup bucket; count its events from there.
                    assert_eq!(*result, RecordResult::ProcessingFailed, "{context}");
                    for e in decode_events(record).unwrap() {
                        let log = e["log"].as_str().unwrap();
                        if log != "probe" {
                            tally.add(log);
                        }
                    }
                    continue;
                }
                assert_eq!(*result, RecordResult::Ok, "{context}");
                for event in destination_events(*destination, data.as_deref().unwrap()).unwrap() {
                    if message_of(&event) == "probe" {
                        continue;
                    }
                    check_tags(&event, &pod);
                    check_exact_bytes(&event);
                    tally.add(message_of(&event));
                }
            }
            tally
                .exactly_once(0..total)
                .unwrap_or_else(|e| panic!("{format} -> {}: {e}", destination.as_str()));
            if packed_to_opensearch {
                assert!(processed.count(RecordResult::ProcessingFailed) > 0);
            }
        }
    }
    assert!(kube.served() >= 3, "the pod was looked up for every run");
}

/// The record EKS Fargate's built-in Fluent Bit sends to Firehose for a container's stdout:
/// one event per record, `log` plus the kubernetes filter's map (docker_id included).
fn fluent_bit_record(pod: &FakePod, n: u64) -> Vec<u8> {
    let container = container_of(n % (PER_CONTAINER * 2));
    let log = if n.is_multiple_of(4) {
        format!(
            "{{\"level\":\"warn\",\"msg\":\"seq={n} slow query\",\"ms\":{}}}",
            n % 900
        )
    } else {
        format!("2026-11-30 10:00:00 INFO request seq={n} done")
    };
    let record = serde_json::json!({
        "log": log,
        "stream": if n.is_multiple_of(5) { "stderr" } else { "stdout" },
        "logtag": "F",
        "time": "2026-11-30T10:00:00.123456789Z",
        "kubernetes": {
            "pod_name": pod.name,
            "namespace_name": pod.namespace,
            "pod_id": pod.uid,
            "labels": {"app.kubernetes.io/name": "checkout"},
            "host": pod.node,
            "container_name": container,
            "docker_id": FakePod::docker_id(container),
            "container_image": format!("shop/{container}:2.3.1"),
        }
    });
    let mut bytes = record.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fargate_fluent_bit_records_come_out_tagged_exactly_once() {
    let moto = MotoServer::start();
    let proxy = RecordingProxy::start(moto.url()).await.unwrap();
    let arn = moto
        .create_s3_stream("fargate-stdout", "fargate-stdout-bucket")
        .await;
    let pod = FakePod::default();
    let total = 1200u64;
    // Fluent Bit's firehose output puts up to 500 records per call through the same API.
    let client = firetail_testkit::aws::firehose_client(&proxy.url());
    let all: Vec<u64> = (0..total).collect();
    for chunk in all.chunks(400) {
        let records = chunk
            .iter()
            .map(|n| {
                aws_sdk_firehose::types::Record::builder()
                    .data(aws_sdk_firehose::primitives::Blob::new(fluent_bit_record(
                        &pod, *n,
                    )))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_record_batch()
            .delivery_stream_name("fargate-stdout")
            .set_records(Some(records))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_put_count(), 0);
    }
    let records = proxy.stream_records("fargate-stdout");
    assert_eq!(records.len(), total as usize);

    for destination in Destination::ALL {
        let (api, _function) = transform(destination, &proxy.url(), &[]).await;
        let processed = Processor::new(&arn).process(&api, &records).await.unwrap();
        assert_eq!(
            processed.count(RecordResult::Ok),
            records.len(),
            "{destination:?}"
        );
        let mut tally = Tally::default();
        for data in processed.ok_outputs() {
            for event in destination_events(destination, data).unwrap() {
                let n = seq_of(message_of(&event)).unwrap();
                let container = container_of(n % (PER_CONTAINER * 2));
                assert_eq!(event["kube_namespace"], pod.namespace.as_str(), "{event}");
                assert_eq!(event["pod_name"], pod.name.as_str(), "{event}");
                assert_eq!(event["kube_container_name"], container, "{event}");
                assert_eq!(
                    event["container_id"],
                    FakePod::docker_id(container).as_str()
                );
                tally.add(message_of(&event));
            }
        }
        tally
            .exactly_once(0..total)
            .unwrap_or_else(|e| panic!("{destination:?}: {e}"));
    }
}

/// Firehose's largest processor buffer (3 MB): one invocation of sidecar records.
const MAX_PROCESSOR_BUFFER_BYTES: usize = 3 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_mb_overflow_is_reingested_and_every_event_comes_out_once() {
    let moto = MotoServer::start();
    let proxy = RecordingProxy::start(moto.url()).await.unwrap();
    let stream = "overflow";
    let arn = moto.create_s3_stream(stream, "overflow-bucket").await;
    let pod = FakePod::default();
    let tmp = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(tmp.path());
    let path = dirs.container("checkout").join("app.log");
    // ~12 MB of output from well-compressing lines: gzip records far below the request limit,
    // transformed (uncompressed S3 lines) well above the 6 MB response limit.
    let total = 30_000u64;
    let mut text = String::new();
    for n in 0..total {
        text.push_str(&format!("GET /products seq={n} 200 {}\n", "p".repeat(160)));
    }
    std::fs::write(&path, text).unwrap();
    let sidecar = InProcess::start(
        &proxy.url(),
        stream,
        &pod,
        &dirs,
        RecordFormat::NdjsonGzip,
        None,
    );
    wait_until(
        "every line in the stream",
        || events_in(&proxy.stream_records(stream)),
        |evs| evs.len() >= total as usize,
    )
    .await;
    sidecar.stop().await;
    let sidecar_records = proxy.stream_records(stream);

    // The transform re-ingests through the recorder, so re-ingested records land in the same
    // stream with their boundaries, and Firehose's next buffer brings them back.
    let (api, function) = transform(
        Destination::S3,
        &proxy.url(),
        &[("FIRETAIL_S3_COMPRESSION", "none")],
    )
    .await;
    let processor = Processor {
        buffer_bytes: MAX_PROCESSOR_BUFFER_BYTES,
        ..Processor::new(&arn)
    };
    let mut tally = Tally::default();
    let mut pending = sidecar_records.clone();
    let mut consumed = sidecar_records.len();
    let mut rounds = Vec::new();
    while !pending.is_empty() {
        assert!(rounds.len() < 20, "re-ingest does not converge: {rounds:?}");
        let processed = processor.process(&api, &pending).await.unwrap();
        assert_eq!(
            processed.count(RecordResult::ProcessingFailed),
            0,
            "{}",
            function.stderr()
        );
        assert!(processed.largest_response_bytes <= 6_000_000);
        for data in processed.ok_outputs() {
            tally.add_events(&destination_events(Destination::S3, data).unwrap());
        }
        let all = proxy.stream_records(stream);
        rounds.push((
            processed.invocations,
            processed.count(RecordResult::Ok),
            processed.count(RecordResult::Dropped),
            all.len() - consumed,
            processed.largest_response_bytes,
        ));
        pending = all[consumed..].to_vec();
        consumed = all.len();
    }
    eprintln!("rounds (invocations, ok, dropped, re-ingested, largest response): {rounds:?}");
    let (invocations, _, dropped, reingested, largest) = rounds[0];
    assert_eq!(invocations, 1, "the first round is one invocation");
    assert!(dropped > 0 && reingested > 0, "{rounds:?}");
    assert!(
        largest > 5_000_000,
        "the real 6 MB budget was used: {rounds:?}"
    );
    assert!(rounds.len() >= 2, "{rounds:?}");
    tally.exactly_once(0..total).unwrap();
    let reingested_total: usize = rounds.iter().map(|r| r.3).sum();
    let objects = moto.objects("overflow-bucket").await;
    assert_eq!(
        objects.len() as u64,
        proxy.put_calls(),
        "moto stored every call, the transform's re-ingest calls included"
    );
    assert!(reingested_total > 0);
}
