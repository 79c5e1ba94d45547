//! Helpers shared by the `ship_*` integration tests: flags, engine settings, and decoding what
//! arrived at an endpoint back into events.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use firetail_sidecar::config::ShipArgs;
use firetail_sidecar::enrich::PodInfo;
use firetail_sidecar::run::{RunConfig, RunReport, run};
use firetail_sidecar::sink::firehose::FirehoseSink;
use firetail_sidecar::tail::TailConfig;

#[derive(Debug, Parser)]
#[command(args_override_self = true)]
struct Cli {
    #[command(flatten)]
    ship: ShipArgs,
}

/// Shipping flags for tests: short flush, drain quiet period and backoff; `extra` flags
/// override these.
pub fn ship_args(stream: &str, extra: &[&str]) -> ShipArgs {
    let mut args = vec![
        "firetail",
        "--delivery-stream",
        stream,
        "--flush-interval-ms",
        "100",
        "--drain-quiet-ms",
        "500",
        "--drain-timeout-secs",
        "60",
        "--retry-base-ms",
        "10",
        "--retry-max-ms",
        "200",
        "--permanent-retry-secs",
        "1",
    ];
    args.extend_from_slice(extra);
    Cli::try_parse_from(args).unwrap().ship
}

/// Engine settings watching `<root>/logs/**/*.log`, checkpoints in `<root>/data`.
pub fn tail_config(root: &Path) -> TailConfig {
    TailConfig {
        paths: vec![format!("{}/**/*.log", root.join("logs").display())],
        data_dir: root.join("data"),
        poll_interval: Duration::from_millis(100),
        quiet_flush: Duration::from_millis(200),
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

/// A Firehose sink for the endpoint at `url`, with the SDK's retries off (as in production).
pub fn sink_for(url: &str, stream: &str) -> FirehoseSink {
    let conf = firetail_testkit::aws::firehose_config(url)
        .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_sdk_firehose::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(5))
                .build(),
        )
        .build();
    FirehoseSink::new(aws_sdk_firehose::Client::from_conf(conf), stream)
}

/// Runs the shipper until `stop` fires, then drains.
pub async fn run_until(
    config: RunConfig,
    sink: FirehoseSink,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> RunReport {
    run(config, sink, async {
        let _ = stop.await;
    })
    .await
    .unwrap()
}

/// The events in one record (or one moto object: records concatenated).
pub fn decode(body: &[u8]) -> Vec<serde_json::Value> {
    let text = if body.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(body)
            .read_to_string(&mut s)
            .unwrap();
        s
    } else {
        String::from_utf8(body.to_vec()).unwrap()
    };
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// `log` text → how many times it arrived.
pub fn counts(events: &[serde_json::Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for e in events {
        *m.entry(e["log"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    m
}
