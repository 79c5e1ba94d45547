//! Helpers of the shipper tests: a short-timed configuration, the run loop started in this
//! process and stopped as SIGTERM would, and decoding what arrived back into events.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use firetail_firehose::{Backoff, ClientSettings, FirehoseClient, RetryPolicy, SdkClient};
use firetail_sidecar::config::{DrainPolicy, ShipConfig};
use firetail_sidecar::pod::PodInfo;
use firetail_sidecar::run::{RunConfig, RunReport, run};
use firetail_tail::TailConfig;

/// Shipping settings for tests: short flush, drain quiet period and backoff.
pub fn ship_config(stream: &str) -> ShipConfig {
    ShipConfig {
        delivery_stream: stream.to_owned(),
        flush_interval: Duration::from_millis(100),
        drain: DrainPolicy {
            quiet: Duration::from_millis(500),
            timeout: Duration::from_secs(60),
            ..DrainPolicy::default()
        },
        retry: RetryPolicy::forever(
            Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(200),
            },
            Duration::from_secs(1),
        ),
        ..ShipConfig::default()
    }
}

/// [`ship_config`] changed by `edit`.
pub fn ship_with(stream: &str, edit: impl FnOnce(&mut ShipConfig)) -> ShipConfig {
    let mut ship = ship_config(stream);
    edit(&mut ship);
    ship
}

/// Engine settings watching `<root>/logs/**/*.log`, checkpoints in `<root>/data`.
pub fn tail_config(root: &Path) -> TailConfig {
    TailConfig {
        paths: vec![format!("{}/**/*.log", root.join("logs").display())],
        data_dir: root.join("data"),
        poll_interval: Duration::from_millis(100),
        partial_line_timeout: Duration::from_millis(200),
        ..TailConfig::default()
    }
}

/// Pod metadata as the Downward API would give it.
pub fn pod() -> PodInfo {
    PodInfo {
        namespace: Some("shop".into()),
        pod_name: Some("web-1".into()),
        pod_id: Some("uid-1".into()),
        host: Some("fargate-ip-10-0-0-1".into()),
        ..PodInfo::default()
    }
}

/// The real SDK client for the endpoint at `url` (SDK retries off, as in production).
pub fn client_for(url: &str) -> SdkClient {
    SdkClient::for_endpoint(
        url,
        ClientSettings {
            attempt_timeout: Duration::from_secs(5),
        },
    )
}

/// The run loop on a task of its own.
pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<RunReport>,
}

impl Running {
    /// Starts `run(config, client, <stop>)`.
    pub fn start<C: FirehoseClient + 'static>(config: RunConfig, client: C) -> Self {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            run(config, client, async {
                let _ = stopped.await;
            })
            .await
            .expect("the run loop starts")
        });
        Self { stop, task }
    }

    /// Signals shutdown (SIGTERM) and waits for the drain to finish.
    pub async fn stop(self) -> RunReport {
        let _ = self.stop.send(());
        self.task.await.expect("the run loop does not panic")
    }
}

/// The events in one record (or one moto object: records concatenated).
pub fn decode(body: &[u8]) -> Vec<serde_json::Value> {
    firetail_testkit::records::decode_events(body).unwrap_or_else(|e| panic!("{e}"))
}

/// `log` text → how many times it arrived.
pub fn counts(events: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        let log = e[firetail_wire::event::LOG]
            .as_str()
            .expect("every event has a log");
        *m.entry(log.to_owned()).or_default() += 1;
    }
    m
}
