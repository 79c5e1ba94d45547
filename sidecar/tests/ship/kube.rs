//! The Kubernetes API path of the run loop: container ids and images from the pod object land in
//! every event, and `--drain auto` reads to EOF once the API says the app containers exited.
//! No Kubernetes API server runs on these machines, so a CANNED-RESPONSE HTTP server on
//! 127.0.0.1 stands in for it (plain HTTP; TLS and the in-cluster discovery are exercised by the
//! client's unit tests only). Records go to the fault-injecting endpoint with no faults.
use std::io::Write as _;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::pod::api::KubeClient;
use firetail_sidecar::run::RunConfig;
use firetail_tail::DrainMode;
use firetail_testkit::{FaultPlan, FirehoseEndpoint};
use firetail_wire::RecordFormat;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Running, client_for, decode, pod, ship_with, tail_config};

const POD_RUNNING: &str = r#"{"metadata":{"ownerReferences":[{"apiVersion":"apps/v1",
 "kind":"ReplicaSet","name":"web-7d4b9c8f6d","uid":"u","controller":true}]},"spec":{"containers":[{"name":"app","image":"shop/app:3"}]},
 "status":{"containerStatuses":[{"name":"app","image":"registry/shop/app:3",
   "containerID":"containerd://0123abcd","state":{"running":{}}}]}}"#;

/// Answers every GET with the current body; counts the requests it served.
async fn canned_pod_api(body: Arc<Mutex<String>>) -> (String, Arc<Mutex<u32>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let served = Arc::new(Mutex::new(0));
    let count = Arc::clone(&served);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let path_ok = req.starts_with(b"GET /api/v1/namespaces/shop/pods/web-1 ");
                let (status, body) = if path_ok {
                    ("200 OK", body)
                } else {
                    ("404 Not Found", "{}".to_owned())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                *count.lock().unwrap() += 1;
            });
        }
    });
    (url, served)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_lookup_fills_ids_and_drives_the_drain_mode() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let body = Arc::new(Mutex::new(POD_RUNNING.to_owned()));
    let (api, served) = canned_pod_api(Arc::clone(&body)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();

    let obs = Arc::new(Observability::default());
    let config = RunConfig {
        // A 30 s quiet period: only a read-to-EOF drain can finish this test quickly.
        ship: ship_with("logs", |s| {
            s.record_format = RecordFormat::Ndjson;
            s.drain.quiet = Duration::from_secs(30);
        }),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::clone(&obs),
        limits: Limits::FIREHOSE,
        kube: Some(KubeClient::new(&api, None, token).unwrap()),
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    // Probe lines until one arrives with the container details (the lookup has been applied),
    // then every later line must carry them.
    let path = dir.path().join("logs/app/app.log");
    let mut f = std::fs::File::create(&path).unwrap();
    let events_now = || -> Vec<serde_json::Value> {
        endpoint.accepted().iter().flat_map(|r| decode(r)).collect()
    };
    let start = std::time::Instant::now();
    let mut probes = 0;
    while !events_now()
        .iter()
        .any(|e| e["kubernetes"]["docker_id"] == "0123abcd")
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "lookup never applied"
        );
        writeln!(f, "probe {probes}").unwrap();
        probes += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for n in 0..20 {
        writeln!(f, "after lookup {n}").unwrap();
    }
    drop(f);
    while obs.metrics.events_sent.get() < probes + 20 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // The app container exits; then the kubelet sends SIGTERM.
    *body.lock().unwrap() =
        POD_RUNNING.replace(r#""running":{}"#, r#""terminated":{"exitCode":0}"#);
    let report = running.stop().await;
    assert!(
        matches!(report.drain_mode, Some(DrainMode::ReadToEof { .. })),
        "{:?}",
        report.drain_mode
    );
    assert_eq!(report.drain.unacked_bytes, 0);

    assert!(
        *served.lock().unwrap() >= 2,
        "looked up at start and at shutdown"
    );
    let events: Vec<serde_json::Value> = events_now()
        .into_iter()
        .filter(|e| e["log"].as_str().unwrap().starts_with("after lookup"))
        .collect();
    assert_eq!(events.len(), 20);
    for e in &events {
        assert_eq!(e["kubernetes"]["container_name"], "app");
        assert_eq!(e["kubernetes"]["docker_id"], "0123abcd");
        assert_eq!(e["kubernetes"]["container_image"], "registry/shop/app:3");
        assert_eq!(
            e["kubernetes"]["ownerReferences"],
            serde_json::json!([{"kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "controller": true}])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_api_answers_fields_are_omitted_and_drain_waits_for_quiet() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();
    std::fs::write(dir.path().join("logs/app/app.log"), "one\ntwo\n").unwrap();
    // Nothing listens here: every lookup fails.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let config = RunConfig {
        ship: ship_with("logs", |s| s.drain.quiet = Duration::from_millis(300)),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::new(Observability::default()),
        limits: Limits::FIREHOSE,
        kube: Some(KubeClient::new(&dead, None, token).unwrap()),
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    let report = running.stop().await;
    assert!(
        matches!(report.drain_mode, Some(DrainMode::Quiet { .. })),
        "{:?}",
        report.drain_mode
    );
    let events: Vec<serde_json::Value> =
        endpoint.accepted().iter().flat_map(|r| decode(r)).collect();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert!(e["kubernetes"].get("docker_id").is_none());
        assert!(e["kubernetes"].get("container_image").is_none());
        assert_eq!(e["kubernetes"]["pod_name"], "web-1");
    }
}

/// The pod as a native sidecar sees it when it starts: the app container is waiting, so the
/// API has no container id for it yet.
const POD_APP_WAITING: &str = r#"{"metadata":{},"spec":{"containers":[{"name":"app","image":"shop/app:3"}]},
 "status":{"containerStatuses":[{"name":"app","image":"shop/app:3","state":{"waiting":{"reason":"PodInitializing"}}}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_line_of_a_container_started_after_the_sidecar_carries_its_id() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let body = Arc::new(Mutex::new(POD_APP_WAITING.to_owned()));
    let (api, served) = canned_pod_api(Arc::clone(&body)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    std::fs::create_dir_all(dir.path().join("logs/app")).unwrap();
    let config = RunConfig {
        ship: ship_with("logs", |s| {
            // The periodic refresh alone would not see the id within this test.
            s.podinfo_refresh = Duration::from_secs(3600);
        }),
        tail: tail_config(dir.path()),
        pod: pod(),
        obs: Arc::new(Observability::default()),
        limits: Limits::FIREHOSE,
        kube: Some(KubeClient::new(&api, None, token).unwrap()),
    };
    let running = Running::start(config, client_for(&endpoint.url()));
    // The startup lookup has seen the app waiting.
    let start = std::time::Instant::now();
    while *served.lock().unwrap() < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no startup lookup"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The app starts (the API now has its id) and writes its first line at once.
    *body.lock().unwrap() = POD_RUNNING.to_owned();
    std::fs::write(
        dir.path().join("logs/app/app.log"),
        "first line\nsecond line\n",
    )
    .unwrap();
    let report = running.stop().await;
    assert_eq!(report.drain.unacked_bytes, 0);
    let events: Vec<serde_json::Value> =
        endpoint.accepted().iter().flat_map(|r| decode(r)).collect();
    assert_eq!(events.len(), 2);
    for e in &events {
        assert_eq!(e["kubernetes"]["docker_id"], "0123abcd", "{e}");
    }
}
