//! Helpers of the end-to-end tests: the sidecar run in-process (the library `run()` the
//! `firetail` binary calls, so the Kubernetes API stand-in can be reached over plain HTTP),
//! app writers with sequence numbers, and the transform binary behind a Runtime API.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use firetail_firehose::{Backoff, ClientSettings, RetryPolicy, SdkClient};
use firetail_sidecar::config::{DrainPolicy, DrainStrategy, ShipConfig};
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::pod::api::KubeClient;
use firetail_sidecar::pod::downward;
use firetail_sidecar::run::{RunConfig, RunReport, run};
use firetail_tail::TailConfig;
use firetail_testkit::records::decode_events;
use firetail_testkit::route::{Destination, FakeKubeApi, FakePod, PodDirs};
use firetail_testkit::{ChildGuard, RuntimeApi, spawn_function, workspace_bin};
use firetail_wire::RecordFormat;
use serde_json::Value;

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A sidecar running in this process; [`InProcess::stop`] is SIGTERM.
pub struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<RunReport>,
}

impl InProcess {
    /// Starts `run()` as the binary would for this pod, with short test intervals, shipping
    /// to `url`, and asking `kube` for container ids if given.
    pub fn start(
        url: &str,
        stream: &str,
        pod: &FakePod,
        dirs: &PodDirs,
        format: RecordFormat,
        kube: Option<&FakeKubeApi>,
    ) -> Self {
        pod.write_podinfo(&dirs.podinfo()).unwrap();
        let ship = ShipConfig {
            delivery_stream: stream.to_owned(),
            record_format: format,
            podinfo_dir: dirs.podinfo(),
            flush_interval: Duration::from_millis(100),
            retry: RetryPolicy::forever(
                Backoff {
                    base: Duration::from_millis(10),
                    cap: Duration::from_millis(200),
                },
                Duration::from_secs(1),
            ),
            drain: DrainPolicy {
                strategy: DrainStrategy::Quiet,
                quiet: Duration::from_millis(500),
                timeout: Duration::from_secs(60),
            },
            ..ShipConfig::default()
        };
        let tail = TailConfig {
            paths: vec![dirs.glob()],
            data_dir: dirs.data(),
            poll_interval: Duration::from_millis(100),
            partial_line_timeout: Duration::from_millis(200),
            checkpoint_interval: Duration::from_millis(200),
            max_inflight_bytes: firetail_sidecar::config::default_max_inflight_bytes(format),
            ..TailConfig::default()
        };
        let env = pod.env(&dirs.podinfo());
        let (info, _) = downward::read(
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &dirs.podinfo(),
        );
        let kube = kube.map(|api| {
            let token = dirs.root.join("token");
            std::fs::write(&token, "e2e-token").unwrap();
            KubeClient::new(&api.url(), None, token).unwrap()
        });
        let client = SdkClient::for_endpoint(url, ClientSettings::default());
        let config = RunConfig {
            ship,
            tail,
            pod: info,
            obs: Arc::new(Observability::default()),
            limits: Limits::FIREHOSE,
            kube,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(config, client, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        });
        Self {
            stop: Some(stop),
            task,
        }
    }

    /// Stops (as SIGTERM would) and waits for the drain.
    pub async fn stop(mut self) -> RunReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.task)
            .await
            .expect("the sidecar drains in time")
            .unwrap()
    }
}

/// The line numbered `n`, without its newline: every third a JSON line (`msg` carries the
/// number), some not valid UTF-8 (to prove they arrive losslessly), the rest plain.
pub fn numbered_line(n: u64) -> Vec<u8> {
    if n.is_multiple_of(3) {
        format!("{{\"level\":\"info\",\"msg\":\"seq={n} order placed\",\"order\":{n}}}")
            .into_bytes()
    } else if n % 7 == 5 {
        let mut line = format!("GET /raw seq={n} ").into_bytes();
        line.extend_from_slice(b"\xff\xfe not utf-8 \xc3\x28");
        line
    } else {
        format!("GET /cart seq={n} 200 {}ms", n % 97).into_bytes()
    }
}

/// Appends [`numbered_line`]s for every `n` in `range` to `path`.
pub fn write_numbered(path: &Path, range: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = Vec::new();
    for n in range {
        buf.extend_from_slice(&numbered_line(n));
        buf.push(b'\n');
    }
    f.write_all(&buf).unwrap();
}

/// For a destination event whose line was not valid UTF-8: its exact bytes, from
/// `message_base64` (the transform's lossless field), else `None`.
pub fn exact_bytes(event: &Value) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let b64 = event.get("message_base64")?.as_str()?;
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("message_base64 is base64"),
    )
}

/// Every event in `records` (sidecar records of any format).
pub fn events_in(records: &[Vec<u8>]) -> Vec<Value> {
    records
        .iter()
        .flat_map(|r| decode_events(r).unwrap())
        .collect()
}

/// Polls `events` until `done` holds for them, failing after [`PATIENCE`].
pub async fn wait_until(
    what: &str,
    mut events: impl FnMut() -> Vec<Value>,
    mut done: impl FnMut(&[Value]) -> bool,
) {
    let start = Instant::now();
    loop {
        if done(&events()) {
            return;
        }
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The transform binary for `destination` behind a fresh Runtime API; `url` is where it
/// re-ingests (moto or a recorder in front of it).
pub async fn transform(
    destination: Destination,
    url: &str,
    extra: &[(&str, &str)],
) -> (RuntimeApi, ChildGuard) {
    let api = RuntimeApi::start().await.unwrap();
    let mut env = firetail_testkit::aws::sdk_env(url);
    env.push(("FIRETAIL_DESTINATION".into(), destination.as_str().into()));
    for (k, v) in extra {
        env.push(((*k).into(), (*v).into()));
    }
    let function = spawn_function(&workspace_bin("firetail-transform"), &api, env).unwrap();
    (api, function)
}
