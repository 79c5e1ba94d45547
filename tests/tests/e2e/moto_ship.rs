//! End to end through the real AWS SDK against moto's server (Firehose → S3): lines written to
//! files arrive in S3 complete and decodable, for every record format, and lines written while
//! the sidecar drains after SIGTERM still arrive.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::run::RunConfig;
use firetail_tail::{DrainEnd, TailConfig};
use firetail_testkit::MotoServer;
use firetail_wire::RecordFormat;
use firetail_wire::event::{LOG, PART, PART_INDEX, PART_LAST};

use crate::ship::{Running, client_for, counts, decode, pod, ship_with, tail_config};

/// Every event in the bucket, parsed, in no particular order.
async fn events_in(moto: &MotoServer, bucket: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for (_, body) in moto.objects(bucket).await {
        // moto concatenates the records of a call; gzip records are gzip members.
        out.extend(decode(&body));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_delivers_every_line_decodably() {
    let moto = MotoServer::start();
    for (i, format) in RecordFormat::ALL.into_iter().enumerate() {
        let stream = format!("logs-{i}");
        let bucket = format!("bucket-{i}");
        moto.create_s3_stream(&stream, &bucket).await;
        let dir = tempfile::tempdir().unwrap();
        let web = dir.path().join("logs/web");
        let worker = dir.path().join("logs/worker");
        std::fs::create_dir_all(&web).unwrap();
        std::fs::create_dir_all(&worker).unwrap();
        let mut expected = BTreeMap::new();
        let mut f = std::fs::File::create(web.join("app.log")).unwrap();
        for n in 0..1500 {
            let line = format!("web line {n} \"quoted\" \\ tab\t{}", "x".repeat(n % 300));
            writeln!(f, "{line}").unwrap();
            expected.insert(line, 1);
        }
        let mut g = std::fs::File::create(worker.join("jobs.log")).unwrap();
        for n in 0..700 {
            writeln!(g, "worker job {n}").unwrap();
            expected.insert(format!("worker job {n}"), 1);
        }
        // Invalid UTF-8 and a CRLF line.
        g.write_all(b"bad \xff\xfe bytes\r\n").unwrap();
        expected.insert("bad \u{fffd}\u{fffd} bytes".to_owned(), 1);
        drop((f, g));

        let obs = Arc::new(Observability::default());
        let config = RunConfig {
            ship: ship_with(&stream, |s| s.record_format = format),
            tail: tail_config(dir.path()),
            pod: pod(),
            obs: Arc::clone(&obs),
            limits: Limits::FIREHOSE,
            kube: None,
        };
        let running = Running::start(config, client_for(moto.url()));
        // Shut down at once: the drain must still read, send and acknowledge everything.
        let report = running.stop().await;
        assert_eq!(report.drain.end, DrainEnd::AllRead, "{format}");
        assert_eq!(report.drain.unacked_bytes, 0, "{format}");
        assert!(report.drain.checkpoint_saved, "{format}");
        assert_eq!(report.events_received, 2201, "{format}");

        let events = events_in(&moto, &bucket).await;
        assert_eq!(
            counts(&events),
            expected,
            "{format}: every line exactly once"
        );
        let bad = events
            .iter()
            .find(|e| e["log"].as_str().unwrap().starts_with("bad"))
            .unwrap();
        assert_eq!(bad["log_base64"], "YmFkIP/+IGJ5dGVz", "{format}");
        for e in &events {
            assert_eq!(e["kubernetes"]["pod_name"], "web-1");
            assert_eq!(e["kubernetes"]["namespace_name"], "shop");
            let container = e["kubernetes"]["container_name"].as_str().unwrap();
            let file = e["file"].as_str().unwrap();
            assert!(
                file.contains(&format!("/logs/{container}/")),
                "{file} vs {container}"
            );
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
            assert!(e.get("part").is_none());
        }
        let m = &obs.metrics;
        assert_eq!(m.events_sent.get(), 2201, "{format}");
        assert_eq!(m.events_read.get(), 2201, "{format}");
        let records = m.records_sent.get();
        match format {
            RecordFormat::Json => assert_eq!(records, 2201),
            // 2201 events, at most 500 per ndjson record.
            RecordFormat::Ndjson => assert!(records >= 5, "{records}"),
            RecordFormat::NdjsonGzip | RecordFormat::V2Zstd | RecordFormat::V2Gzip => {
                assert!(records >= 1);
            }
        }
        assert!(m.estimated_billed_bytes.get() >= m.record_bytes_sent.get());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_lines_arrive_as_ordered_parts() {
    let moto = MotoServer::start();
    moto.create_s3_stream("logs", "bucket").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();
    // 3 MB of quotes: escaping doubles it, so even one engine part (1 MiB max line here)
    // cannot fit a 1,000 KiB record and the shipper must split again.
    let long: String = "\"ab".repeat(1_000_000);
    let mut f = std::fs::File::create(dir.path().join("logs/app/big.log")).unwrap();
    writeln!(f, "before").unwrap();
    writeln!(f, "{long}").unwrap();
    writeln!(f, "after").unwrap();
    drop(f);
    let obs = Arc::new(Observability::default());
    let config = RunConfig {
        ship: ship_with("logs", |s| s.record_format = RecordFormat::Ndjson),
        tail: TailConfig {
            max_line_bytes: 1024 * 1024,
            max_inflight_bytes: 16 * 1024 * 1024,
            ..tail_config(dir.path())
        },
        pod: pod(),
        obs: Arc::clone(&obs),
        limits: Limits::FIREHOSE,
        kube: None,
    };
    let report = Running::start(config, client_for(moto.url())).stop().await;
    assert_eq!(report.drain.unacked_bytes, 0);

    let events = events_in(&moto, "bucket").await;
    let mut parts: Vec<(u64, bool, String)> = events
        .iter()
        .filter(|e| e.get(PART).is_some())
        .map(|e| {
            (
                e[PART][PART_INDEX].as_u64().unwrap(),
                e[PART][PART_LAST].as_bool().unwrap(),
                e[LOG].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    parts.sort_by_key(|p| p.0);
    let indexes: Vec<u64> = parts.iter().map(|p| p.0).collect();
    assert_eq!(
        indexes,
        (0..parts.len() as u64).collect::<Vec<_>>(),
        "contiguous indexes"
    );
    assert_eq!(
        parts.iter().filter(|p| p.1).count(),
        1,
        "exactly one last part"
    );
    assert!(
        parts.last().unwrap().1,
        "the highest index is the last part"
    );
    let joined: String = parts.iter().map(|p| p.2.as_str()).collect();
    assert_eq!(joined, long, "parts join back to the line");
    assert!(obs.metrics.events_split.get() >= 1);
    let whole = counts(&events);
    assert_eq!(whole.get("before"), Some(&1));
    assert_eq!(whole.get("after"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_written_while_draining_still_arrive() {
    let moto = MotoServer::start();
    moto.create_s3_stream("logs", "bucket").await;
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("logs/app");
    std::fs::create_dir_all(&app).unwrap();
    let config = RunConfig {
        ship: ship_with("logs", |s| {
            s.record_format = RecordFormat::NdjsonGzip;
            // Generous: the writer pauses at most a few ms, even on a loaded machine.
            s.drain.quiet = Duration::from_millis(1500);
        }),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::new(Observability::default()),
        limits: Limits::FIREHOSE,
        kube: None,
    };
    let running = Running::start(config, client_for(moto.url()));
    // The app keeps writing across the SIGTERM (as a regular container does while the kubelet
    // stops the pod), then stops.
    let path = app.join("app.log");
    let writer = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::create(path).unwrap();
        for n in 0..3000 {
            writeln!(f, "line {n}").unwrap();
            if n % 100 == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let stopping = tokio::spawn(running.stop());
    writer.await.unwrap();
    let report = stopping.await.unwrap();
    assert_eq!(report.drain.end, DrainEnd::AllRead);
    assert_eq!(report.drain.unacked_bytes, 0);
    let got = counts(&events_in(&moto, "bucket").await);
    let expected: BTreeMap<String, usize> = (0..3000).map(|n| (format!("line {n}"), 1)).collect();
    assert_eq!(got, expected);
}
