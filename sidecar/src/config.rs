//! Command-line and environment configuration of the shipping half.
//!
//! # Layout
//! - [`ShipArgs`]: clap derive; every flag is also a `FIRETAIL_*` variable (the way a pod spec
//!   sets it). Flattened into the binary's CLI next to the tailing engine's flags.
//! - Small enums for the choices: [`SinkKind`], [`FormatArg`], [`OversizeMode`], [`DrainArg`],
//!   [`LogFormat`].
//! - [`ShipArgs::validate`]: cross-field checks clap cannot express.
//!
//! AWS credentials and region come from the SDK's default chain (IRSA web identity on EKS
//! Fargate), and an endpoint override from `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL`;
//! nothing here duplicates those.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::pack::RecordFormat;
use crate::send::{Backoff, SendPolicy};
use crate::tail::{MultilineConfig, MultilineMode, ReadFrom, TailConfig, TailError};

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// Amazon Data Firehose (`PutRecordBatch`).
    Firehose,
    /// Print the events to stdout instead (local runs, debugging).
    Stdout,
}

/// Default in-flight budget (`FIRETAIL_MAX_INFLIGHT_BYTES`) of the packed formats.
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 4 * 1024 * 1024;

/// Default in-flight budget with one event per record: each in-flight event then carries a
/// record of its own through the SDK (~3 KiB of memory for a 200-byte line), so 4 MiB of lines
/// peaked at 76 MiB RSS in `benches/sidecar`; 1 MiB peaked at 35 MiB at the same events per
/// CPU-second.
pub const DEFAULT_JSON_MAX_INFLIGHT_BYTES: u64 = 1024 * 1024;

/// `--record-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One event per record.
    Json,
    /// Up to 500 newline-terminated events per record.
    Ndjson,
    /// Newline-terminated events, one gzip member per record.
    NdjsonGzip,
}

impl From<FormatArg> for RecordFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Json => Self::Json,
            FormatArg::Ndjson => Self::Ndjson,
            FormatArg::NdjsonGzip => Self::NdjsonGzip,
        }
    }
}

/// What to do with a line whose event cannot fit one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OversizeMode {
    /// Split into pieces marked `"part": {"index", "last"}`.
    Split,
    /// Keep the first piece and append a truncation marker to `log`.
    Truncate,
}

/// How to finish on SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrainArg {
    /// Read to EOF when the app containers are known to be gone, else wait for quiet files.
    Auto,
    /// Read every file to EOF and stop.
    Eof,
    /// Keep tailing until files are quiet for `--drain-quiet-ms` (or the timeout passes).
    Quiet,
}

/// Whether to ask the Kubernetes API about the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KubeApiArg {
    /// When `KUBERNETES_SERVICE_HOST` and a service-account token are present.
    Auto,
    /// Never.
    Off,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Flags of the shipping half.
#[derive(Debug, Clone, Args)]
pub struct ShipArgs {
    /// Firehose delivery stream to send to (required with `--sink firehose`).
    #[arg(global = true, long, env = "FIRETAIL_DELIVERY_STREAM")]
    pub delivery_stream: Option<String>,

    /// Where records go.
    #[arg(global = true, long, env = "FIRETAIL_SINK", value_enum, default_value_t = SinkKind::Firehose)]
    pub sink: SinkKind,

    /// How events are laid out in Firehose records.
    #[arg(global = true, long, env = "FIRETAIL_RECORD_FORMAT", value_enum, default_value_t = FormatArg::NdjsonGzip)]
    pub record_format: FormatArg,

    /// Send what is buffered at least this often, even if records are not full.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_FLUSH_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub flush_interval_ms: u64,

    /// Most `PutRecordBatch` calls in flight at once.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_MAX_CONCURRENT_REQUESTS",
        default_value_t = 4
    )]
    pub max_concurrent_requests: usize,

    /// What to do with a line that cannot fit one Firehose record.
    #[arg(global = true, long, env = "FIRETAIL_OVERSIZE", value_enum, default_value_t = OversizeMode::Split)]
    pub oversize: OversizeMode,

    /// Directory of Downward API volume files `labels` and `annotations`.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_PODINFO_DIR",
        default_value = "/etc/podinfo"
    )]
    pub podinfo_dir: PathBuf,

    /// Re-read the Downward API files this often (labels and annotations can change).
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_PODINFO_REFRESH_SECS",
        default_value_t = 60
    )]
    pub podinfo_refresh_secs: u64,

    /// Value of the `stream` field of every event.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_STREAM_LABEL",
        default_value = "file"
    )]
    pub stream_label: String,

    /// On SIGTERM: `auto`, `eof` or `quiet`.
    #[arg(global = true, long, env = "FIRETAIL_DRAIN", value_enum, default_value_t = DrainArg::Auto)]
    pub drain: DrainArg,

    /// While draining, files count as finished after this long without new data.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_DRAIN_QUIET_MS",
        default_value_t = 2000
    )]
    pub drain_quiet_ms: u64,

    /// Hard limit for the whole drain (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_DRAIN_TIMEOUT_SECS",
        default_value_t = 25
    )]
    pub drain_timeout_secs: u64,

    /// Address for `/metrics`, `/healthz`, `/readyz`; `off` disables the server.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_METRICS_ADDR",
        default_value = "0.0.0.0:2020"
    )]
    pub metrics_addr: String,

    /// Timeout of one `PutRecordBatch` attempt.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_REQUEST_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,

    /// First retry delay ceiling after throttling or a transient error.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_RETRY_BASE_MS",
        default_value_t = 100
    )]
    pub retry_base_ms: u64,

    /// Largest retry delay ceiling.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_RETRY_MAX_MS",
        default_value_t = 20_000
    )]
    pub retry_max_ms: u64,

    /// Delay between attempts while the stream is missing or access is denied.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_PERMANENT_RETRY_SECS",
        default_value_t = 30
    )]
    pub permanent_retry_secs: u64,

    /// Look up container ids and images (and, at SIGTERM, whether the app containers have
    /// exited) from the Kubernetes API: `auto` when running in a cluster, or `off`.
    #[arg(global = true, long, env = "FIRETAIL_KUBERNETES_API", value_enum, default_value_t = KubeApiArg::Auto)]
    pub kubernetes_api: KubeApiArg,

    /// This container's own name, so that it does not count as an app container.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_SELF_CONTAINER",
        default_value = "firetail"
    )]
    pub self_container: String,

    /// Log format on stderr; the level comes from `FIRETAIL_LOG` (e.g. `info`, `firetail=debug`).
    #[arg(global = true, long, env = "FIRETAIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// Flags of the tailing engine (the engine takes `Duration`s; the flag names carry units).
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Comma-separated globs of files to tail (`**` crosses directories).
    #[arg(
        global = true,
        long = "path",
        env = "FIRETAIL_PATHS",
        value_delimiter = ',',
        default_value = "/var/log/app/**/*.log"
    )]
    pub paths: Vec<String>,

    /// Where checkpoints live; keep it on the shared emptyDir so a restarted sidecar resumes.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_DATA_DIR",
        default_value = "/var/log/app/.firetail"
    )]
    pub data_dir: PathBuf,

    /// Start of files that have no checkpoint when the sidecar starts: `beginning` or `end`.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_READ_FROM",
        default_value = "beginning"
    )]
    pub read_from: String,

    /// Lines longer than this arrive as marked parts.
    #[arg(global = true, long, env = "FIRETAIL_MAX_LINE_BYTES", default_value_t = 256 * 1024)]
    pub max_line_bytes: usize,

    /// Join stack traces: `java`, `python`, `go`, or a regex that matches the first line of
    /// an event.
    #[arg(global = true, long, env = "FIRETAIL_MULTILINE")]
    pub multiline: Option<String>,

    /// A held multiline group is emitted after its file is quiet this long.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_MULTILINE_FLUSH_MS",
        default_value_t = 1000
    )]
    pub multiline_flush_ms: u64,

    /// Largest joined multiline event; the next line starts a new one.
    #[arg(global = true, long, env = "FIRETAIL_MULTILINE_MAX_BYTES", default_value_t = 256 * 1024)]
    pub multiline_max_bytes: usize,

    /// Stop reading while this many read bytes are not yet acknowledged by Firehose; memory
    /// follows it (docs/BENCHMARKS.md). Default: 4 MiB, or 1 MiB with `--record-format json`.
    #[arg(global = true, long, env = "FIRETAIL_MAX_INFLIGHT_BYTES")]
    pub max_inflight_bytes: Option<u64>,

    /// Rescan globs and re-check files this often (the only discovery without inotify).
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_POLL_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub poll_interval_ms: u64,

    /// Keep a rotated-away or deleted file open this long after its last new byte.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_ROTATE_GRACE_MS",
        default_value_t = 5000
    )]
    pub rotate_grace_ms: u64,

    /// Emit an unterminated last line after its file is quiet this long.
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_QUIET_FLUSH_MS",
        default_value_t = 1000
    )]
    pub quiet_flush_ms: u64,

    /// Persist acknowledged positions this often (when they changed).
    #[arg(
        global = true,
        long,
        env = "FIRETAIL_CHECKPOINT_INTERVAL_MS",
        default_value_t = 1000
    )]
    pub checkpoint_interval_ms: u64,

    /// Container name for every event, instead of the directory under the watch root.
    #[arg(global = true, long, env = "FIRETAIL_CONTAINER_NAME")]
    pub container_name: Option<String>,

    /// Discover files by polling only (for volumes that deliver no inotify events).
    #[arg(global = true, long, env = "FIRETAIL_NO_INOTIFY")]
    pub no_inotify: bool,
}

impl TailArgs {
    /// The engine's configuration.
    pub fn to_tail_config(&self) -> Result<TailConfig, TailError> {
        self.to_tail_config_for(FormatArg::NdjsonGzip)
    }

    /// The engine's configuration for a sidecar sending `format`: without an explicit
    /// `--max-inflight-bytes`, `json` gets [`DEFAULT_JSON_MAX_INFLIGHT_BYTES`], the rest
    /// [`DEFAULT_MAX_INFLIGHT_BYTES`].
    pub fn to_tail_config_for(&self, format: FormatArg) -> Result<TailConfig, TailError> {
        let multiline = match self.multiline.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(spec) => Some(MultilineConfig {
                mode: spec.parse::<MultilineMode>()?,
                flush_timeout: Duration::from_millis(self.multiline_flush_ms),
                max_bytes: self.multiline_max_bytes,
            }),
        };
        Ok(TailConfig {
            paths: self
                .paths
                .iter()
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect(),
            data_dir: self.data_dir.clone(),
            read_from: self.read_from.parse::<ReadFrom>()?,
            max_line_bytes: self.max_line_bytes,
            multiline,
            max_inflight_bytes: self.max_inflight_bytes.unwrap_or(match format {
                FormatArg::Json => DEFAULT_JSON_MAX_INFLIGHT_BYTES,
                FormatArg::Ndjson | FormatArg::NdjsonGzip => DEFAULT_MAX_INFLIGHT_BYTES,
            }),
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            rotate_grace: Duration::from_millis(self.rotate_grace_ms),
            quiet_flush: Duration::from_millis(self.quiet_flush_ms),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            container_name: self.container_name.clone().filter(|c| !c.is_empty()),
            use_inotify: !self.no_inotify,
        })
    }
}

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// `--sink firehose` without a stream.
    #[error("FIRETAIL_DELIVERY_STREAM (--delivery-stream) is required when sending to Firehose")]
    MissingStream,
    /// A value out of range.
    #[error("{flag}: {why}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        why: String,
    },
}

impl ShipArgs {
    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sink == SinkKind::Firehose
            && self.delivery_stream.as_deref().is_none_or(str::is_empty)
        {
            return Err(ConfigError::MissingStream);
        }
        let positive = |flag, v: u64| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    flag,
                    why: "must be greater than 0".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("--flush-interval-ms", self.flush_interval_ms)?;
        positive(
            "--max-concurrent-requests",
            self.max_concurrent_requests as u64,
        )?;
        positive("--request-timeout-secs", self.request_timeout_secs)?;
        positive("--retry-base-ms", self.retry_base_ms)?;
        positive("--permanent-retry-secs", self.permanent_retry_secs)?;
        if self.retry_max_ms < self.retry_base_ms {
            return Err(ConfigError::Invalid {
                flag: "--retry-max-ms",
                why: "must be at least --retry-base-ms".into(),
            });
        }
        self.metrics_socket()?;
        Ok(())
    }

    /// The metrics address, or `None` when disabled.
    pub fn metrics_socket(&self) -> Result<Option<SocketAddr>, ConfigError> {
        match self.metrics_addr.trim() {
            "" | "off" => Ok(None),
            addr => addr.parse().map(Some).map_err(|e| ConfigError::Invalid {
                flag: "--metrics-addr",
                why: format!("{addr:?}: {e}"),
            }),
        }
    }

    /// Retry timing.
    pub fn send_policy(&self) -> SendPolicy {
        SendPolicy {
            backoff: Backoff {
                base: Duration::from_millis(self.retry_base_ms),
                cap: Duration::from_millis(self.retry_max_ms),
            },
            permanent_retry: Duration::from_secs(self.permanent_retry_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        ship: ShipArgs,
        #[command(flatten)]
        tail: TailArgs,
    }

    #[test]
    fn defaults_and_validation() {
        let cli = Cli::try_parse_from(["firetail", "--delivery-stream", "s"]).unwrap();
        assert_eq!(cli.ship.record_format, FormatArg::NdjsonGzip);
        assert_eq!(cli.ship.flush_interval_ms, 1000);
        assert_eq!(cli.ship.validate(), Ok(()));

        let cli = Cli::try_parse_from(["firetail", "--delivery-stream", ""]).unwrap();
        assert_eq!(cli.ship.validate(), Err(ConfigError::MissingStream));
        let cli = Cli::try_parse_from(["firetail", "--sink", "stdout"]).unwrap();
        assert_eq!(cli.ship.validate(), Ok(()));
        let cli = Cli::try_parse_from(["firetail", "--sink", "stdout", "--metrics-addr", "nope"])
            .unwrap();
        assert!(matches!(
            cli.ship.validate(),
            Err(ConfigError::Invalid {
                flag: "--metrics-addr",
                ..
            })
        ));
        let cli =
            Cli::try_parse_from(["firetail", "--sink", "stdout", "--metrics-addr", "off"]).unwrap();
        assert_eq!(cli.ship.metrics_socket(), Ok(None));
        assert!(Cli::try_parse_from(["firetail", "--record-format", "xml"]).is_err());
    }

    #[test]
    fn tail_flags_build_the_engine_config() {
        let cli = Cli::try_parse_from([
            "firetail",
            "--path",
            "/a/*.log, /b/**/*.log",
            "--multiline",
            "java",
            "--read-from",
            "end",
            "--poll-interval-ms",
            "250",
        ])
        .unwrap();
        let t = cli.tail.to_tail_config().unwrap();
        assert_eq!(t.paths, vec!["/a/*.log", "/b/**/*.log"]);
        assert_eq!(t.max_inflight_bytes, DEFAULT_MAX_INFLIGHT_BYTES);
        let json = cli.tail.to_tail_config_for(FormatArg::Json).unwrap();
        assert_eq!(json.max_inflight_bytes, DEFAULT_JSON_MAX_INFLIGHT_BYTES);
        let explicit = Cli::try_parse_from(["firetail", "--max-inflight-bytes", "65536"]).unwrap();
        let json = explicit.tail.to_tail_config_for(FormatArg::Json).unwrap();
        assert_eq!(json.max_inflight_bytes, 65_536);
        assert_eq!(t.read_from, ReadFrom::End);
        assert_eq!(t.poll_interval, Duration::from_millis(250));
        assert!(matches!(
            t.multiline.map(|m| m.mode),
            Some(MultilineMode::Java)
        ));
        let bad = Cli::try_parse_from(["firetail", "--read-from", "middle"]).unwrap();
        assert!(bad.tail.to_tail_config().is_err());
        let bad = Cli::try_parse_from(["firetail", "--multiline", "(unclosed"]).unwrap();
        assert!(bad.tail.to_tail_config().is_err());
    }

    #[test]
    fn every_flag_has_an_env_var_and_help() {
        use clap::CommandFactory;
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            if matches!(arg.get_id().as_str(), "help" | "version") {
                continue;
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert!(
                env.as_deref().is_some_and(|e| e.starts_with("FIRETAIL_")),
                "{} has no FIRETAIL_ env var",
                arg.get_id()
            );
            assert!(arg.get_help().is_some(), "{} has no help", arg.get_id());
        }
    }
}
