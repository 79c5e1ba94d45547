//! `firetail check`: what the sidecar would do with this configuration, without shipping.
//!
//! # Layout
//! - [`check`]: runs every step and returns a human-readable report; `Err` says what is wrong.
//! - Steps: the configuration (already validated by the command line), the files the globs
//!   match right now, pod metadata, and `DescribeDeliveryStream` → `ACTIVE` when a Firehose
//!   client is given.

use firetail_firehose::{CallError, FirehoseClient, StreamStatus};
use firetail_tail::TailConfig;
use firetail_tail::discovery::Matcher;

use crate::config::ShipConfig;
use crate::pod::PodInfo;

/// Why the check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Engine settings are invalid.
    #[error("tailing configuration: {0}")]
    Tail(#[from] firetail_tail::TailError),
    /// The stream could not be described.
    #[error("delivery stream {stream:?}: {error}")]
    Describe {
        /// Stream name.
        stream: String,
        /// What the API said.
        error: CallError,
    },
    /// The stream exists but does not accept records yet (or any more).
    #[error("delivery stream {stream:?} is {status}, not ACTIVE")]
    NotActive {
        /// Stream name.
        stream: String,
        /// Its status.
        status: StreamStatus,
    },
}

/// Runs every check on the configuration `run` would get; `report` receives one line per
/// finding, also on failure.
pub async fn check<C: FirehoseClient>(
    ship: &ShipConfig,
    tail: &TailConfig,
    pod: &PodInfo,
    firehose: Option<&C>,
    report: &mut Vec<String>,
) -> Result<(), CheckError> {
    report.push(format!(
        "config ok: stream={:?} format={} flush={}ms in-flight budget={} bytes",
        ship.delivery_stream,
        ship.record_format,
        ship.flush_interval.as_millis(),
        tail.max_inflight_bytes,
    ));
    let tail_config = tail;
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
    if let Some(client) = firehose {
        let stream = ship.delivery_stream.clone();
        let status = client
            .describe_delivery_stream(&stream)
            .await
            .map_err(|error| CheckError::Describe {
                stream: stream.clone(),
                error,
            })?;
        if status != StreamStatus::Active {
            return Err(CheckError::NotActive { stream, status });
        }
        report.push(format!("delivery stream {stream:?} is ACTIVE"));
    }
    Ok(())
}
