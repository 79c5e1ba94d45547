//! The whole loop a failed delivery takes, with every part real but Datadog: app log files ->
//! the firetail sidecar -> moto's Firehose -> the `firetail-transform` binary (Lambda Runtime
//! API) -> a delivery failure, written to the backup bucket as Firehose writes it (the record
//! as transformed under `http-endpoint-failed`, the original under `processing-failed`) ->
//! the `firetail-redrive` binary -> moto's Firehose -> the transform again -> what Datadog
//! receives: byte for byte what the first delivery attempt carried, every event once, with
//! all four tags. Before the marker, the second pass re-rendered the first pass's output and
//! Datadog got `app.ddtags` instead of tags.

use std::process::Command;
use std::time::Duration;

use firetail_testkit::records::destination_events;
use firetail_testkit::route::{
    Destination, FakeKubeApi, FakePod, PodDirs, Processor, RecordResult, Tally, message_of, seq_of,
};
use firetail_testkit::{ChildGuard, MotoServer, RecordingProxy, workspace_bin};
use firetail_wire::RecordFormat;
use serde_json::Value;

use super::common::{create_bucket, keys_in, put};
use crate::common::{InProcess, events_in, transform, wait_until, write_numbered};
use crate::redrive_producer::{http_endpoint_failed, object, processing_failed};

const CONTAINERS: [&str; 2] = ["checkout", "worker"];
const PER_CONTAINER: u64 = 400;
const BACKUP: &str = "loop-backup";
const DELIVERY_FAILED: &str =
    "failed/datadog/http-endpoint-failed/2026/12/01/10/firetail-logs-1-2026-12-01-10-00-00-loop.gz";
const PROCESSING_FAILED: &str =
    "failed/datadog/processing-failed/2026/12/01/10/firetail-logs-1-2026-12-01-10-00-00-loop.gz";

fn check_tags(event: &Value, pod: &FakePod) {
    let n = seq_of(message_of(event)).unwrap();
    let container = CONTAINERS[(n / PER_CONTAINER) as usize];
    assert_eq!(event["kube_namespace"], pod.namespace.as_str(), "{event}");
    assert_eq!(event["pod_name"], pod.name.as_str(), "{event}");
    assert_eq!(event["kube_container_name"], container, "{event}");
    assert_eq!(
        event["container_id"],
        FakePod::docker_id(container).as_str(),
        "{event}"
    );
    let ddtags = event["ddtags"].as_str().unwrap_or_default();
    assert!(
        ddtags.contains(&format!("container_id:{}", FakePod::docker_id(container))),
        "{event}"
    );
    assert!(event.get("app.ddtags").is_none(), "rendered twice: {event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redriven_delivery_failure_reaches_datadog_byte_for_byte_with_its_tags() {
    let moto = MotoServer::start();
    let proxy = RecordingProxy::start(moto.url()).await.unwrap();
    let pod = FakePod::default();
    let kube = FakeKubeApi::start(&pod, &CONTAINERS).await.unwrap();
    let (api, _function) = transform(Destination::Datadog, &proxy.url(), &[]).await;
    let total = PER_CONTAINER * CONTAINERS.len() as u64;

    // 1. The sidecar ships the pod's lines into the stream.
    let source_arn = moto.create_s3_stream("loop-src", "loop-src-dest").await;
    let tmp = tempfile::tempdir().unwrap();
    let dirs = PodDirs::new(tmp.path());
    let sidecar = InProcess::start(
        &proxy.url(),
        "loop-src",
        &pod,
        &dirs,
        RecordFormat::NdjsonGzip,
        Some(&kube),
    );
    // One container after the other, so the stream holds several records.
    for (i, c) in CONTAINERS.iter().enumerate() {
        let first = i as u64 * PER_CONTAINER;
        write_numbered(
            &dirs.container(c).join("app.log"),
            first..first + PER_CONTAINER,
        );
        wait_until(
            &format!("{c}'s lines in the stream"),
            || events_in(&proxy.stream_records("loop-src")),
            |events| events.len() >= (first + PER_CONTAINER) as usize,
        )
        .await;
    }
    assert_eq!(sidecar.stop().await.drain.unacked_bytes, 0);
    let records = proxy.stream_records("loop-src");
    assert!(records.len() >= 2, "several records: {}", records.len());

    // 2. Firehose invokes the transform; its outputs are what it would deliver to Datadog.
    let first = Processor::new(&source_arn)
        .process(&api, &records)
        .await
        .unwrap();
    let outputs: Vec<Vec<u8>> = first
        .results
        .iter()
        .map(|(result, data)| {
            assert_eq!(*result, RecordResult::Ok);
            data.clone().unwrap()
        })
        .collect();

    // 3. Datadog is down. Firehose backs up what it tried to deliver (the transformed
    //    records) under http-endpoint-failed; say the Lambda timed out on the other half, so
    //    their originals are under processing-failed.
    let arrival = firetail_transform::now_ms();
    let mut delivery_lines = Vec::new();
    let mut processing_lines = Vec::new();
    for (i, (record, output)) in records.iter().zip(&outputs).enumerate() {
        if i % 2 == 0 {
            delivery_lines.push(http_endpoint_failed(
                output,
                "HttpEndpoint.DestinationException",
                arrival,
                i as u64,
            ));
        } else {
            processing_lines.push(processing_failed(
                record,
                "Lambda.FunctionTimedOut",
                arrival,
            ));
        }
    }
    create_bucket(&moto, BACKUP).await;
    let s3 = moto.s3_client();
    put(&s3, BACKUP, DELIVERY_FAILED, object(&delivery_lines, true)).await;
    put(
        &s3,
        BACKUP,
        PROCESSING_FAILED,
        object(&processing_lines, true),
    )
    .await;

    // 4. The operator redrives the backup into the stream.
    let again_arn = moto.create_s3_stream("loop-again", "loop-again-dest").await;
    let state = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(workspace_bin("firetail-redrive"));
    cmd.envs(firetail_testkit::aws::sdk_env(moto.url()))
        // Records through the recording pass-through, so their boundaries are kept.
        .env("AWS_ENDPOINT_URL_FIREHOSE", proxy.url())
        .env("FIRETAIL_REDRIVE_LOG_FORMAT", "text")
        .args([
            "--bucket",
            BACKUP,
            "--prefix",
            "failed/",
            "--delivery-stream",
            "loop-again",
            "--destination",
            "datadog",
            "--delete-after",
            "--s3-force-path-style",
            "--progress",
            "never",
            "--state-dir",
        ])
        .arg(state.path());
    let mut child = ChildGuard::spawn("firetail-redrive", cmd).unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}\n{}",
        child.stdout(),
        child.stderr()
    );
    assert!(
        keys_in(&moto, BACKUP).await.is_empty(),
        "every object delivered, so deleted"
    );

    // 5. Firehose invokes the transform on what came back; Datadog gets its outputs.
    let redriven = proxy.stream_records("loop-again");
    assert_eq!(redriven.len(), records.len());
    let second = Processor::new(&again_arn)
        .process(&api, &redriven)
        .await
        .unwrap();
    let mut delivered: Vec<Vec<u8>> = second
        .results
        .iter()
        .map(|(result, data)| {
            assert_eq!(*result, RecordResult::Ok);
            data.clone().unwrap()
        })
        .collect();

    // Byte for byte what the first attempt would have delivered: a transformed record passes
    // through, an original is transformed as it was the first time.
    let mut expected = outputs.clone();
    expected.sort();
    delivered.sort();
    assert!(
        delivered == expected,
        "the second delivery differs from the first"
    );
    let mut tally = Tally::default();
    for output in &delivered {
        for event in destination_events(Destination::Datadog, output).unwrap() {
            check_tags(&event, &pod);
            tally.add(message_of(&event));
        }
    }
    tally
        .exactly_once(0..total)
        .unwrap_or_else(|e| panic!("after the redrive: {e}"));
}
