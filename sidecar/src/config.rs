//! The shipper's configuration, typed. The binary's command line (`cli.rs`, clap) builds it;
//! tests build it as a struct literal over [`ShipConfig::default`].
//!
//! AWS credentials and region come from the SDK's default chain (IRSA web identity on EKS
//! Fargate), and an endpoint override from `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL`;
//! nothing here duplicates those.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firetail_firehose::{Backoff, RetryPolicy};
use firetail_tail::DrainMode;
use firetail_wire::RecordFormat;

/// Default in-flight budget of the packed formats (the engine's own default).
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = firetail_tail::DEFAULT_MAX_INFLIGHT_BYTES;

/// Default in-flight budget with one event per record: each in-flight event then carries a
/// record of its own through the SDK (~3 KiB of memory for a 200-byte line), so 4 MiB of lines
/// peaked at 76 MiB RSS in `benches/sidecar`; 1 MiB peaked at 35 MiB at the same events per
/// CPU-second.
pub const DEFAULT_JSON_MAX_INFLIGHT_BYTES: u64 = 1024 * 1024;

/// The in-flight budget for `format` when none is set.
pub fn default_max_inflight_bytes(format: RecordFormat) -> u64 {
    match format {
        RecordFormat::Json => DEFAULT_JSON_MAX_INFLIGHT_BYTES,
        RecordFormat::Ndjson
        | RecordFormat::NdjsonGzip
        | RecordFormat::V2Zstd
        | RecordFormat::V2Gzip => DEFAULT_MAX_INFLIGHT_BYTES,
    }
}

/// What to do with a line whose event cannot fit one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OversizeMode {
    /// Split into pieces marked `"part": {"index", "last"}`.
    Split,
    /// Keep the first piece and append a truncation marker to `log`.
    Truncate,
}

/// How to finish on SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStrategy {
    /// Read to EOF when the Kubernetes API says the app containers are gone, else wait for
    /// quiet files.
    Auto,
    /// Read every file to EOF and stop.
    Eof,
    /// Keep tailing until files are quiet (or the timeout passes).
    Quiet,
}

/// How the drain after SIGTERM goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DrainPolicy {
    /// The strategy.
    pub strategy: DrainStrategy,
    /// While draining, files count as finished after this long without new data.
    pub quiet: Duration,
    /// Hard limit for the whole drain, counted from SIGTERM (keep it below the pod's
    /// `terminationGracePeriodSeconds`).
    pub timeout: Duration,
}

impl Default for DrainPolicy {
    fn default() -> Self {
        Self {
            strategy: DrainStrategy::Auto,
            quiet: Duration::from_secs(2),
            timeout: Duration::from_secs(25),
        }
    }
}

impl DrainPolicy {
    /// The engine's drain mode for a drain that started at `signalled`; `apps_done` says the
    /// Kubernetes API reported every app container terminated (nothing more will be written).
    pub fn mode(&self, apps_done: bool, signalled: Instant) -> DrainMode {
        let deadline = signalled + self.timeout;
        match self.strategy {
            DrainStrategy::Eof => DrainMode::ReadToEof { deadline },
            DrainStrategy::Auto if apps_done => DrainMode::ReadToEof { deadline },
            // Without a signal that the app containers are gone, waiting for quiet files is the
            // safe choice: it also ends at EOF as soon as nothing grows any more.
            DrainStrategy::Auto | DrainStrategy::Quiet => DrainMode::Quiet {
                quiet: self.quiet,
                deadline,
            },
        }
    }
}

/// Everything the shipper does besides tailing.
#[derive(Debug, Clone)]
pub struct ShipConfig {
    /// The Firehose delivery stream.
    pub delivery_stream: String,
    /// How events are laid out in records.
    pub record_format: RecordFormat,
    /// The codec level of compressed formats; `None`: the format's default
    /// (`pack::default_compression_level`).
    pub compression_level: Option<i32>,
    /// Send what is buffered at least this often, even if records are not full.
    pub flush_interval: Duration,
    /// Most `PutRecordBatch` calls in flight at once.
    pub max_concurrent_requests: usize,
    /// What to do with a line that cannot fit one record.
    pub oversize: OversizeMode,
    /// Directory of the Downward API volume files `labels` and `annotations`.
    pub podinfo_dir: PathBuf,
    /// Re-read pod metadata this often.
    pub podinfo_refresh: Duration,
    /// Value of every event's `stream` field.
    pub stream_label: String,
    /// How to drain on SIGTERM.
    pub drain: DrainPolicy,
    /// How delivery retries (forever: the files are the buffer).
    pub retry: RetryPolicy,
    /// This container's own name, so that it does not count as an app container.
    pub self_container: String,
    /// The stdout source: app containers' logs through the Kubernetes API (off by default).
    pub stdout: crate::stdout::StdoutSettings,
}

impl Default for ShipConfig {
    /// The command line's defaults, with an empty stream name.
    fn default() -> Self {
        Self {
            delivery_stream: String::new(),
            record_format: RecordFormat::DEFAULT,
            compression_level: None,
            flush_interval: Duration::from_secs(1),
            max_concurrent_requests: 4,
            oversize: OversizeMode::Split,
            podinfo_dir: PathBuf::from("/etc/podinfo"),
            podinfo_refresh: Duration::from_secs(60),
            stream_label: "file".to_owned(),
            drain: DrainPolicy::default(),
            retry: RetryPolicy::forever(
                Backoff {
                    base: Duration::from_millis(100),
                    cap: Duration::from_secs(20),
                },
                Duration::from_secs(30),
            ),
            self_container: "firetail".to_owned(),
            stdout: crate::stdout::StdoutSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_modes_follow_the_strategy() {
        let now = Instant::now();
        let policy = |strategy| DrainPolicy {
            strategy,
            ..DrainPolicy::default()
        };
        assert!(matches!(
            policy(DrainStrategy::Auto).mode(true, now),
            DrainMode::ReadToEof { deadline } if deadline == now + Duration::from_secs(25)
        ));
        assert!(matches!(
            policy(DrainStrategy::Auto).mode(false, now),
            DrainMode::Quiet { quiet, .. } if quiet == Duration::from_secs(2)
        ));
        assert!(matches!(
            policy(DrainStrategy::Eof).mode(false, now),
            DrainMode::ReadToEof { .. }
        ));
        assert!(matches!(
            policy(DrainStrategy::Quiet).mode(true, now),
            DrainMode::Quiet { .. }
        ));
        assert_eq!(
            default_max_inflight_bytes(RecordFormat::Json),
            DEFAULT_JSON_MAX_INFLIGHT_BYTES
        );
    }
}
