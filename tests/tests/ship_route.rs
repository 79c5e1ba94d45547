//! The route's two halves together: records the sidecar actually sent (to the testkit's
//! Firehose endpoint, no faults) are handed, as Firehose would, to the real
//! `firetail-transform` binary over the Lambda Runtime API; every event comes out with the
//! remapped fields. Needs the transform binary built (`cargo build --workspace --all-targets`).
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::run::RunConfig;
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_testkit::{FaultPlan, FirehoseEndpoint, workspace_bin};

mod ship_common;
use ship_common::{decode, pod, run_until, ship_args, sink_for, tail_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidecar_records_pass_through_the_real_transform() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let api = RuntimeApi::start().await.unwrap();
    let _function = spawn_function(
        &workspace_bin("firetail-transform"),
        &api,
        [
            ("FIRETAIL_DESTINATION", "s3"),
            ("FIRETAIL_S3_COMPRESSION", "none"),
        ],
    )
    .unwrap();

    for format in ["json", "ndjson", "ndjson-gzip"] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("logs/checkout")).unwrap();
        let mut f = std::fs::File::create(dir.path().join("logs/checkout/app.log")).unwrap();
        for n in 0..600 {
            writeln!(f, "order {n} placed").unwrap();
        }
        f.write_all(b"raw \xff byte\n").unwrap();
        drop(f);
        let before = endpoint.accepted().len();
        let config = RunConfig {
            ship: ship_args("logs", &["--record-format", format]),
            tail: tail_config(dir.path()),
            pod: pod(),
            obs: Arc::new(Observability::default()),
            limits: Limits::FIREHOSE,
            kube: None,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run_until(
            config,
            sink_for(&endpoint.url(), "logs"),
            stopped,
        ));
        stop.send(()).unwrap();
        assert_eq!(task.await.unwrap().drain.unacked_bytes, 0);
        let records: Vec<Vec<u8>> = endpoint.accepted()[before..].to_vec();
        let sent_events: usize = records.iter().map(|r| decode(r).len()).sum();
        assert_eq!(sent_events, 601, "{format}");

        // One invocation with every record, as Firehose's buffer would deliver them.
        let event = serde_json::json!({
            "invocationId": format!("inv-{format}"),
            "deliveryStreamArn": "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs",
            "region": "us-east-1",
            "records": records.iter().enumerate().map(|(i, r)| serde_json::json!({
                "recordId": format!("{i}"),
                "approximateArrivalTimestamp": 1_795_341_600_000u64,
                "data": STANDARD.encode(r),
            })).collect::<Vec<_>>(),
        });
        let body = api
            .invoke(serde_json::to_vec(&event).unwrap())
            .await
            .unwrap();
        let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let out = response["records"].as_array().unwrap();
        assert_eq!(out.len(), records.len(), "{format}: one answer per record");
        let mut logs = Vec::new();
        for r in out {
            assert_eq!(r["result"], "Ok", "{format}: {r}");
            let data = STANDARD.decode(r["data"].as_str().unwrap()).unwrap();
            for e in decode(&data) {
                assert_eq!(e["kube_namespace"], "shop", "{format}: {e}");
                assert_eq!(e["pod_name"], "web-1", "{format}: {e}");
                assert_eq!(e["kube_container_name"], "checkout", "{format}: {e}");
                // The S3 rendering names the line `message` (and the time `@timestamp`).
                logs.push(e["message"].as_str().unwrap_or_default().to_owned());
            }
        }
        assert_eq!(
            logs.len(),
            601,
            "{format}: every event out of the transform"
        );
        for n in 0..600 {
            assert!(
                logs.contains(&format!("order {n} placed")),
                "{format}: order {n}"
            );
        }
        assert!(logs.iter().any(|l| l.starts_with("raw ")), "{format}");
    }
}
