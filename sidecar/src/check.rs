//! `firetail check`: validate the configuration and the delivery stream without shipping.
//!
//! # Layout
//! - [`check`]: runs every step and returns a human-readable report; `Err` says what is wrong.
//! - Steps: flags ([`crate::config`]), engine settings, the files the globs match right now,
//!   pod metadata, and `DescribeDeliveryStream` → `ACTIVE` when the sink is Firehose.

use crate::config::{ShipArgs, TailArgs};
use crate::enrich::PodInfo;
use crate::sink::firehose::FirehoseSink;
use crate::tail::discovery::Matcher;

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Shipping flags are invalid.
    #[error("configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// Engine flags are invalid.
    #[error("tailing configuration: {0}")]
    Tail(#[from] crate::tail::TailError),
    /// The stream could not be described.
    #[error("delivery stream {stream:?}: {error}")]
    Describe {
        /// Stream name.
        stream: String,
        /// What the API said.
        error: crate::sink::SinkError,
    },
    /// The stream exists but does not accept records yet (or any more).
    #[error("delivery stream {stream:?} is {status}, not ACTIVE")]
    NotActive {
        /// Stream name.
        stream: String,
        /// Its status.
        status: String,
    },
}

/// Runs every check; `report` receives one line per finding, also on failure.
pub async fn check(
    ship: &ShipArgs,
    tail: &TailArgs,
    pod: &PodInfo,
    firehose: Option<&FirehoseSink>,
    report: &mut Vec<String>,
) -> Result<(), CheckError> {
    ship.validate()?;
    let tail_config = tail.to_tail_config()?;
    report.push(format!(
        "config ok: sink={:?} format={} flush={}ms",
        ship.sink,
        crate::pack::RecordFormat::from(ship.record_format).as_str(),
        ship.flush_interval_ms
    ));
    let matcher = Matcher::new(&tail_config.paths, &tail_config.data_dir)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    matcher.scan(&mut found, &mut |path, err| {
        errors.push(format!("cannot scan {}: {err}", path.display()));
    });
    found.sort();
    report.push(format!(
        "{} file(s) match {:?} now (checkpoints in {})",
        found.len(),
        tail_config.paths,
        tail_config.data_dir.display()
    ));
    for path in &found {
        // Same precedence as the engine: an explicit container name wins over the directory.
        let container = tail_config
            .container_name
            .clone()
            .or_else(|| matcher.container_for(path))
            .unwrap_or_default();
        report.push(format!("  {} (container {container:?})", path.display()));
    }
    report.extend(errors);
    let kube = pod.kubernetes_json(None);
    report.push(if kube.is_empty() {
        "pod metadata: none found (POD_NAME/POD_NAMESPACE/... unset); `kubernetes` omitted".into()
    } else {
        format!("pod metadata: {}", String::from_utf8_lossy(&kube))
    });
    if let Some(sink) = firehose {
        let stream = ship.delivery_stream.clone().unwrap_or_default();
        let status = sink
            .describe()
            .await
            .map_err(|error| CheckError::Describe {
                stream: stream.clone(),
                error,
            })?;
        if status != "ACTIVE" {
            return Err(CheckError::NotActive { stream, status });
        }
        report.push(format!("delivery stream {stream:?} is ACTIVE"));
    }
    Ok(())
}
