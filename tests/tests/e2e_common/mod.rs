//! Helpers shared by the `e2e_*` tests: the sidecar run in-process (the library `run()` the
//! `firetail` binary calls, so the fake Kubernetes API can be reached over plain HTTP), app
//! writers with sequence numbers, and the transform behind a Runtime API.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use firetail_sidecar::config::{ShipArgs, TailArgs};
use firetail_sidecar::enrich::PodInfo;
use firetail_sidecar::kube::KubeClient;
use firetail_sidecar::metrics::Observability;
use firetail_sidecar::pack::Limits;
use firetail_sidecar::run::{RunConfig, RunReport, run};
use firetail_sidecar::sink::firehose::FirehoseSink;
use firetail_testkit::route::{Destination, FakeKubeApi, FakePod, PodDirs, sidecar_events};
use firetail_testkit::{ChildGuard, RuntimeApi, spawn_function, workspace_bin};
use serde_json::Value;

/// How long any wait in these tests may take before it fails.
pub const PATIENCE: Duration = Duration::from_secs(90);

#[derive(Debug, Parser)]
#[command(args_override_self = true)]
struct Cli {
    #[command(flatten)]
    ship: ShipArgs,
    #[command(flatten)]
    tail: TailArgs,
}

/// A sidecar running in this process; [`InProcess::stop`] is SIGTERM.
pub struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<RunReport>,
    pub obs: Arc<Observability>,
}

impl InProcess {
    /// Starts `run()` as the binary would with these flags (plus short test intervals),
    /// shipping to `url`, and asking `kube` for container ids if given.
    pub fn start(
        url: &str,
        stream: &str,
        pod: &FakePod,
        dirs: &PodDirs,
        format: &str,
        kube: Option<&FakeKubeApi>,
        extra: &[&str],
    ) -> Self {
        pod.write_podinfo(&dirs.podinfo()).unwrap();
        let glob = dirs.glob();
        let data = dirs.data().display().to_string();
        let podinfo = dirs.podinfo().display().to_string();
        let mut args = vec![
            "firetail",
            "--delivery-stream",
            stream,
            "--record-format",
            format,
            "--path",
            &glob,
            "--data-dir",
            &data,
            "--podinfo-dir",
            &podinfo,
            "--flush-interval-ms",
            "100",
            "--poll-interval-ms",
            "100",
            "--quiet-flush-ms",
            "200",
            "--checkpoint-interval-ms",
            "200",
            "--retry-base-ms",
            "10",
            "--retry-max-ms",
            "200",
            "--drain",
            "quiet",
            "--drain-quiet-ms",
            "500",
            "--drain-timeout-secs",
            "60",
        ];
        args.extend_from_slice(extra);
        let cli = Cli::try_parse_from(args).unwrap();
        let tail = cli.tail.to_tail_config().unwrap();
        let env = pod.env(&dirs.podinfo());
        let (info, _) = PodInfo::from_downward_api(
            |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &dirs.podinfo(),
        );
        let kube = kube.map(|api| {
            let token = dirs.root.join("token");
            std::fs::write(&token, "e2e-token").unwrap();
            KubeClient::new(&api.url(), None, token).unwrap()
        });
        let conf = firetail_testkit::aws::firehose_config(url)
            .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
            .build();
        let sink = FirehoseSink::new(aws_sdk_firehose::Client::from_conf(conf), stream);
        let obs = Arc::new(Observability::default());
        let config = RunConfig {
            ship: cli.ship,
            tail,
            pod: info,
            obs: Arc::clone(&obs),
            limits: Limits::FIREHOSE,
            kube,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(config, sink, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        });
        Self {
            stop: Some(stop),
            task,
            obs,
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

/// Appends `seq=<n>` lines for every `n` in `range` to `path`: plain lines, and every third a
/// JSON line (`msg` carries the number).
pub fn write_numbered(path: &Path, range: std::ops::Range<u64>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for n in range {
        if n.is_multiple_of(3) {
            buf.push_str(&format!(
                "{{\"level\":\"info\",\"msg\":\"seq={n} order placed\",\"order\":{n}}}\n"
            ));
        } else {
            buf.push_str(&format!("GET /cart seq={n} 200 {}ms\n", n % 97));
        }
    }
    f.write_all(buf.as_bytes()).unwrap();
}

/// Every event in `records` (sidecar records of any format).
pub fn events_in(records: &[Vec<u8>]) -> Vec<Value> {
    records
        .iter()
        .flat_map(|r| sidecar_events(r).unwrap())
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
