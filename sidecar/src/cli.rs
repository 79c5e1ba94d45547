//! The `firetail` command line (clap lives only here, in the binary): each subcommand has its
//! own flags, each flag is also a `FIRETAIL_*` variable (the way a pod spec sets it), and each
//! subcommand turns its flags into the library's typed configuration, validating what clap
//! cannot.
//!
//! `firetail` with no subcommand is `firetail run`: a pod spec passes flags only
//! (`args: [--drain-timeout-secs=20]`), so [`with_default_subcommand`] inserts `run`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use firetail_firehose::{Backoff, RetryPolicy};
use firetail_sidecar::cmd::cost::{
    self, FIREHOSE_USD_PER_GB, Inputs, MEASURED_EVENT_OVERHEAD_BYTES, MEASURED_GZIP_RATIO,
    MEASURED_V2_GZIP_RATIO, MEASURED_ZSTD_RATIO, NAT_GATEWAY_USD_PER_GB, VPC_ENDPOINT_USD_PER_GB,
};
use firetail_sidecar::config::{
    DrainPolicy, DrainStrategy, OversizeMode, ShipConfig, default_max_inflight_bytes,
};
use firetail_sidecar::pod::api::ApiSettings;
use firetail_sidecar::stdout::{Selection as StdoutSelection, StdoutSettings};
use firetail_tail::{MultilineConfig, MultilineMode, ReadFrom, TailConfig};
use firetail_wire::RecordFormat;

/// Tails log files and ships them to Amazon Data Firehose.
#[derive(Debug, Parser)]
#[command(
    name = "firetail",
    version,
    after_help = "`firetail` alone is `firetail run`."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tail and ship until SIGTERM (the default).
    Run(RunArgs),
    /// Validate the configuration, list the files that would be tailed, and check that the
    /// delivery stream is ACTIVE; exit non-zero otherwise.
    Check(RunArgs),
    /// Estimate the monthly cost (Firehose, Lambda, network) of a log volume for each record
    /// format; sends nothing.
    Cost(CostArgs),
}

/// The arguments with `run` inserted when no subcommand is named.
pub fn with_default_subcommand(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let named = args.get(1).and_then(|a| a.to_str()).is_some_and(|a| {
        matches!(
            a,
            "run" | "check" | "cost" | "help" | "-h" | "--help" | "-V" | "--version"
        )
    });
    if !named {
        args.insert(1.min(args.len()), OsString::from("run"));
    }
    args
}

/// Where records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SinkKind {
    /// Amazon Data Firehose (`PutRecordBatch`).
    Firehose,
    /// Print the events to stdout instead (local runs, debugging).
    Stdout,
}

/// `--oversize` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OversizeArg {
    /// Split into pieces marked `"part": {"index", "last"}`.
    Split,
    /// Keep the first piece and append a truncation marker to `log`.
    Truncate,
}

/// `--drain` values.
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

/// `--read-from` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadFromArg {
    /// Read what the app wrote before the sidecar started.
    Beginning,
    /// Skip existing content; only new lines are shipped.
    End,
}

/// Flags of `run` and `check`: shipping and tailing.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub ship: ShipArgs,
    #[command(flatten)]
    pub tail: TailArgs,
}

/// Flags of the shipping half.
#[derive(Debug, Clone, Args)]
pub struct ShipArgs {
    /// Firehose delivery stream to send to (required with `--sink firehose`).
    #[arg(long, env = "FIRETAIL_DELIVERY_STREAM")]
    pub delivery_stream: Option<String>,

    /// Where records go.
    #[arg(long, env = "FIRETAIL_SINK", value_enum, default_value_t = SinkKind::Firehose)]
    pub sink: SinkKind,

    /// How events are laid out in Firehose records: `v2-zstd` (format version 2, zstd; needs
    /// firetail-transform 0.2 or later), `v2-gzip`, or version 1's `ndjson-gzip`, `ndjson`,
    /// `json` (one event per record, for OpenSearch).
    #[arg(long, env = "FIRETAIL_RECORD_FORMAT", value_enum, default_value_t = RecordFormat::DEFAULT)]
    pub record_format: RecordFormat,

    /// Compression level of `v2-zstd` (1-19; default: the measured `auto` profile, level 6
    /// with 6-byte minimum matches, level 5 for records of events over 512 bytes), `v2-gzip`
    /// (1-9, default 6) or `ndjson-gzip` (1-9, default 1) records. Higher levels bill less and
    /// cost the sidecar more CPU (docs/BENCHMARKS.md, "Choosing the compression").
    #[arg(long, env = "FIRETAIL_COMPRESSION_LEVEL")]
    pub compression_level: Option<i32>,

    /// Send what is buffered at least this often, even if records are not full.
    #[arg(long, env = "FIRETAIL_FLUSH_INTERVAL_MS", default_value_t = 1000)]
    pub flush_interval_ms: u64,

    /// Most `PutRecordBatch` calls in flight at once.
    #[arg(long, env = "FIRETAIL_MAX_CONCURRENT_REQUESTS", default_value_t = 4)]
    pub max_concurrent_requests: usize,

    /// What to do with a line that cannot fit one Firehose record.
    #[arg(long, env = "FIRETAIL_OVERSIZE", value_enum, default_value_t = OversizeArg::Split)]
    pub oversize: OversizeArg,

    /// Directory of Downward API volume files `labels` and `annotations`.
    #[arg(long, env = "FIRETAIL_PODINFO_DIR", default_value = "/etc/podinfo")]
    pub podinfo_dir: PathBuf,

    /// Re-read the Downward API files (and the pod from the API) this often.
    #[arg(long, env = "FIRETAIL_PODINFO_REFRESH_SECS", default_value_t = 60)]
    pub podinfo_refresh_secs: u64,

    /// Value of the `stream` field of every event.
    #[arg(long, env = "FIRETAIL_STREAM_LABEL", default_value = "file")]
    pub stream_label: String,

    /// On SIGTERM: `auto`, `eof` or `quiet`.
    #[arg(long, env = "FIRETAIL_DRAIN", value_enum, default_value_t = DrainArg::Auto)]
    pub drain: DrainArg,

    /// While draining, files count as finished after this long without new data.
    #[arg(long, env = "FIRETAIL_DRAIN_QUIET_MS", default_value_t = 2000)]
    pub drain_quiet_ms: u64,

    /// Hard limit for the whole drain, from SIGTERM; keep it below the time the pod's
    /// terminationGracePeriodSeconds leaves the sidecar (sidecar/README.md, "Shutdown and
    /// drain").
    #[arg(long, env = "FIRETAIL_DRAIN_TIMEOUT_SECS", default_value_t = DEFAULT_DRAIN_TIMEOUT_SECS)]
    pub drain_timeout_secs: u64,

    /// Address for `/metrics`, `/healthz`, `/readyz`; `off` disables the server.
    #[arg(long, env = "FIRETAIL_METRICS_ADDR", default_value = "0.0.0.0:2020", value_parser = parse_metrics_addr)]
    pub metrics_addr: MetricsAddr,

    /// Timeout of one `PutRecordBatch` attempt; at most --drain-timeout-secs, so an attempt
    /// started at SIGTERM ends (and can be retried) within the drain.
    #[arg(long, env = "FIRETAIL_REQUEST_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS)]
    pub request_timeout_secs: u64,

    /// First retry delay ceiling after throttling or a transient error.
    #[arg(long, env = "FIRETAIL_RETRY_BASE_MS", default_value_t = 100)]
    pub retry_base_ms: u64,

    /// Largest retry delay ceiling.
    #[arg(long, env = "FIRETAIL_RETRY_MAX_MS", default_value_t = 20_000)]
    pub retry_max_ms: u64,

    /// Delay between attempts while the stream is missing or access is denied.
    #[arg(long, env = "FIRETAIL_PERMANENT_RETRY_SECS", default_value_t = 30)]
    pub permanent_retry_secs: u64,

    /// Look up container ids and images (and, at SIGTERM, whether the app containers have
    /// exited) from the Kubernetes API: `auto` when running in a cluster, or `off`.
    #[arg(long, env = "FIRETAIL_KUBERNETES_API", value_enum, default_value_t = KubeApiArg::Auto)]
    pub kubernetes_api: KubeApiArg,

    /// The Kubernetes API's address (default: in-cluster, from `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT`); `http://` only to a loopback address.
    #[arg(long, env = "FIRETAIL_KUBERNETES_API_URL")]
    pub kubernetes_api_url: Option<String>,

    /// The service-account token for the Kubernetes API, re-read on every request.
    #[arg(
        long,
        env = "FIRETAIL_KUBERNETES_TOKEN_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    )]
    pub kubernetes_token_file: PathBuf,

    /// The CA bundle the Kubernetes API's certificate must chain to.
    #[arg(
        long,
        env = "FIRETAIL_KUBERNETES_CA_FILE",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
    )]
    pub kubernetes_ca_file: PathBuf,

    /// This container's own name, so that it does not count as an app container.
    #[arg(long, env = "FIRETAIL_SELF_CONTAINER", default_value = "firetail")]
    pub self_container: String,

    /// Also ship these containers' stdout/stderr, followed through the Kubernetes API
    /// (`pods/log`): a comma-separated list of container names, or `all` (every regular
    /// container but --self-container). Empty: off. Needs the API (--kubernetes-api auto) and
    /// `get` on `pods/log` (docs/stdout.md).
    #[arg(long, env = "FIRETAIL_STDOUT_CONTAINERS", default_value = "")]
    pub stdout_containers: String,

    /// First retry delay of a failed container log request (doubled per failure, jittered).
    #[arg(long, env = "FIRETAIL_STDOUT_RETRY_BASE_MS", default_value_t = 500)]
    pub stdout_retry_base_ms: u64,

    /// Longest retry delay of container log requests; also the pace while RBAC denies them.
    #[arg(long, env = "FIRETAIL_STDOUT_RETRY_MAX_MS", default_value_t = 30_000)]
    pub stdout_retry_max_ms: u64,

    /// How often the pod's status is read while a followed container waits to start or
    /// restart.
    #[arg(long, env = "FIRETAIL_STDOUT_POLL_INTERVAL_MS", default_value_t = 2000)]
    pub stdout_poll_interval_ms: u64,

    /// Reopen a followed stream that delivered nothing for this long, from its last line (the
    /// API sends no heartbeat: a half-dead connection looks like a quiet container).
    #[arg(
        long,
        env = "FIRETAIL_STDOUT_IDLE_RECONNECT_MS",
        default_value_t = 300_000
    )]
    pub stdout_idle_reconnect_ms: u64,

    /// Log format on stderr; the level comes from `FIRETAIL_LOG` (e.g. `info`, `firetail=debug`).
    #[arg(long, env = "FIRETAIL_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// Default of `--drain-timeout-secs`: 5 s below Kubernetes' default
/// terminationGracePeriodSeconds (30 s), which covers the app's shutdown too when firetail is
/// a plain container stopped alongside it.
pub const DEFAULT_DRAIN_TIMEOUT_SECS: u64 = 25;

/// Default of `--request-timeout-secs`: well under the drain timeout (it must not exceed it),
/// so a hung attempt at SIGTERM times out and is retried within the drain. A healthy
/// `PutRecordBatch` of 4 MiB answers in well under a second.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 10;

/// `--metrics-addr`: an address, or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

fn parse_metrics_addr(s: &str) -> Result<MetricsAddr, String> {
    match s.trim() {
        "" | "off" => Ok(MetricsAddr(None)),
        addr => addr
            .parse()
            .map(|a| MetricsAddr(Some(a)))
            .map_err(|e| format!("{addr:?} is neither an address (host:port) nor `off`: {e}")),
    }
}

/// Flags of the tailing engine (the engine takes `Duration`s; the flag names carry units).
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Comma-separated globs of files to tail (`**` crosses directories).
    #[arg(
        long = "path",
        env = "FIRETAIL_PATHS",
        value_delimiter = ',',
        default_value = "/var/log/app/**/*.log"
    )]
    pub paths: Vec<String>,

    /// Where checkpoints live; keep it on the shared emptyDir so a restarted sidecar resumes.
    #[arg(
        long,
        env = "FIRETAIL_DATA_DIR",
        default_value = "/var/log/app/.firetail"
    )]
    pub data_dir: PathBuf,

    /// Start of files that have no checkpoint when the sidecar starts.
    #[arg(long, env = "FIRETAIL_READ_FROM", value_enum, default_value_t = ReadFromArg::Beginning)]
    pub read_from: ReadFromArg,

    /// Lines longer than this arrive as marked parts.
    #[arg(long, env = "FIRETAIL_MAX_LINE_BYTES", default_value_t = 256 * 1024)]
    pub max_line_bytes: usize,

    /// Join stack traces: `java`, `python`, `go`, or a regex that matches the first line of
    /// an event.
    #[arg(long, env = "FIRETAIL_MULTILINE")]
    pub multiline: Option<String>,

    /// A held multiline group is emitted after its file is quiet this long.
    #[arg(long, env = "FIRETAIL_MULTILINE_FLUSH_MS", default_value_t = 1000)]
    pub multiline_flush_ms: u64,

    /// Largest joined multiline event; the next line starts a new one.
    #[arg(long, env = "FIRETAIL_MULTILINE_MAX_BYTES", default_value_t = 256 * 1024)]
    pub multiline_max_bytes: usize,

    /// Stop reading while this many read bytes are not yet acknowledged by Firehose; memory
    /// follows it (docs/BENCHMARKS.md). Default: 4 MiB, or 1 MiB with `--record-format json`.
    #[arg(long, env = "FIRETAIL_MAX_INFLIGHT_BYTES")]
    pub max_inflight_bytes: Option<u64>,

    /// Rescan globs and re-check files this often (the only discovery without inotify).
    #[arg(long, env = "FIRETAIL_POLL_INTERVAL_MS", default_value_t = 1000)]
    pub poll_interval_ms: u64,

    /// Keep a rotated-away or deleted file open this long after its last new byte.
    #[arg(long, env = "FIRETAIL_ROTATE_GRACE_MS", default_value_t = 5000)]
    pub rotate_grace_ms: u64,

    /// How long an unterminated line waits for its newline once its file is quiet; then it is
    /// sent as a piece marked `part.cut = "timeout"` and the rest follows as the next piece.
    #[arg(
        long,
        alias = "quiet-flush-ms",
        env = "FIRETAIL_PARTIAL_LINE_TIMEOUT_MS",
        default_value_t = 5000
    )]
    pub partial_line_timeout_ms: u64,

    /// Persist acknowledged positions this often (when they changed).
    #[arg(long, env = "FIRETAIL_CHECKPOINT_INTERVAL_MS", default_value_t = 1000)]
    pub checkpoint_interval_ms: u64,

    /// Container name for every event, instead of the directory under the watch root.
    #[arg(long, env = "FIRETAIL_CONTAINER_NAME")]
    pub container_name: Option<String>,

    /// Discover files by polling only (for volumes that deliver no inotify events).
    #[arg(long, env = "FIRETAIL_NO_INOTIFY")]
    pub no_inotify: bool,

    /// Tail matching symlinks whose target lies outside every glob root (off: such links are
    /// skipped with a warning and counted in `firetail_tail_errors{kind="symlink_outside_roots"}`).
    #[arg(long, env = "FIRETAIL_FOLLOW_SYMLINKS_OUTSIDE_ROOTS")]
    pub follow_symlinks_outside_roots: bool,
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

fn invalid(flag: &'static str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        flag,
        why: why.into(),
    }
}

/// What `run` and `check` work with: the library's configuration plus what only the binary
/// sets up (the client, the metrics server, the Kubernetes API client, logging).
#[derive(Debug, Clone)]
pub struct Settings {
    pub ship: ShipConfig,
    pub tail: TailConfig,
    pub sink: SinkKind,
    pub metrics_addr: Option<SocketAddr>,
    pub request_timeout: Duration,
    /// `None` when `--kubernetes-api off`.
    pub kubernetes_api: Option<ApiSettings>,
}

impl RunArgs {
    /// Validates the flags and builds the configuration.
    pub fn into_settings(self) -> Result<Settings, ConfigError> {
        let s = self.ship;
        let stream = s.delivery_stream.clone().unwrap_or_default();
        if s.sink == SinkKind::Firehose && stream.trim().is_empty() {
            return Err(ConfigError::MissingStream);
        }
        let positive = |flag, v: u64| {
            if v == 0 {
                Err(invalid(flag, "must be greater than 0"))
            } else {
                Ok(())
            }
        };
        positive("--flush-interval-ms", s.flush_interval_ms)?;
        positive(
            "--max-concurrent-requests",
            s.max_concurrent_requests as u64,
        )?;
        positive("--request-timeout-secs", s.request_timeout_secs)?;
        positive("--retry-base-ms", s.retry_base_ms)?;
        positive("--permanent-retry-secs", s.permanent_retry_secs)?;
        positive("--drain-timeout-secs", s.drain_timeout_secs)?;
        // An attempt that can outlive the drain is cut off by it: its records are neither
        // acknowledged nor retried, however fast Firehose would have answered a second try.
        if s.request_timeout_secs > s.drain_timeout_secs {
            return Err(invalid(
                "--request-timeout-secs",
                format!(
                    "{} s is longer than --drain-timeout-secs ({} s): a PutRecordBatch attempt \
                     started at SIGTERM would outlive the drain; set it to at most the drain \
                     timeout, preferably half of it (sidecar/README.md, \"Shutdown and drain\")",
                    s.request_timeout_secs, s.drain_timeout_secs
                ),
            ));
        }
        if s.retry_max_ms < s.retry_base_ms {
            return Err(invalid(
                "--retry-max-ms",
                "must be at least --retry-base-ms",
            ));
        }
        if let Some(level) = s.compression_level {
            let Some(codec) = s.record_format.codec() else {
                return Err(invalid(
                    "--compression-level",
                    format!("{} records are not compressed", s.record_format),
                ));
            };
            let range = firetail_sidecar::pack::level_range(codec);
            if !range.contains(&level) {
                return Err(invalid(
                    "--compression-level",
                    format!(
                        "{} accepts {}-{}",
                        s.record_format,
                        range.start(),
                        range.end()
                    ),
                ));
            }
        }
        let ship = ShipConfig {
            delivery_stream: stream,
            record_format: s.record_format,
            compression_level: s.compression_level,
            flush_interval: Duration::from_millis(s.flush_interval_ms),
            max_concurrent_requests: s.max_concurrent_requests,
            oversize: match s.oversize {
                OversizeArg::Split => OversizeMode::Split,
                OversizeArg::Truncate => OversizeMode::Truncate,
            },
            podinfo_dir: s.podinfo_dir,
            podinfo_refresh: Duration::from_secs(s.podinfo_refresh_secs.max(1)),
            stream_label: s.stream_label,
            drain: DrainPolicy {
                strategy: match s.drain {
                    DrainArg::Auto => DrainStrategy::Auto,
                    DrainArg::Eof => DrainStrategy::Eof,
                    DrainArg::Quiet => DrainStrategy::Quiet,
                },
                quiet: Duration::from_millis(s.drain_quiet_ms),
                timeout: Duration::from_secs(s.drain_timeout_secs),
            },
            retry: RetryPolicy::forever(
                Backoff {
                    base: Duration::from_millis(s.retry_base_ms),
                    cap: Duration::from_millis(s.retry_max_ms),
                },
                Duration::from_secs(s.permanent_retry_secs),
            ),
            self_container: s.self_container,
            stdout: StdoutSettings {
                containers: s.stdout_containers.parse().unwrap_or(StdoutSelection::Off),
                retry_base: Duration::from_millis(s.stdout_retry_base_ms.max(1)),
                retry_max: Duration::from_millis(s.stdout_retry_max_ms.max(1)),
                poll_interval: Duration::from_millis(s.stdout_poll_interval_ms.max(10)),
                idle_reconnect: Duration::from_millis(s.stdout_idle_reconnect_ms.max(100)),
            },
        };
        let tail = self.tail.into_config(s.record_format)?;
        Ok(Settings {
            ship,
            tail,
            sink: s.sink,
            metrics_addr: s.metrics_addr.0,
            request_timeout: Duration::from_secs(s.request_timeout_secs),
            kubernetes_api: match s.kubernetes_api {
                KubeApiArg::Off => None,
                KubeApiArg::Auto => Some(ApiSettings {
                    url: s.kubernetes_api_url.filter(|u| !u.trim().is_empty()),
                    token_file: s.kubernetes_token_file,
                    ca_file: s.kubernetes_ca_file,
                }),
            },
        })
    }
}

impl TailArgs {
    /// The engine's configuration for a sidecar sending `format`: without an explicit
    /// `--max-inflight-bytes`, the format's default budget.
    pub fn into_config(self, format: RecordFormat) -> Result<TailConfig, ConfigError> {
        let multiline = match self.multiline.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(spec) => Some(MultilineConfig {
                mode: spec
                    .parse::<MultilineMode>()
                    .map_err(|e| invalid("--multiline", e.to_string()))?,
                flush_timeout: Duration::from_millis(self.multiline_flush_ms),
                max_bytes: self.multiline_max_bytes,
            }),
        };
        let paths: Vec<String> = self
            .paths
            .iter()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect();
        if paths.is_empty() {
            return Err(invalid("--path", "at least one glob is required"));
        }
        let positive = |flag, v: u64| {
            if v == 0 {
                Err(invalid(flag, "must be greater than 0"))
            } else {
                Ok(())
            }
        };
        positive("--poll-interval-ms", self.poll_interval_ms)?;
        positive("--max-line-bytes", self.max_line_bytes as u64)?;
        positive("--multiline-max-bytes", self.multiline_max_bytes as u64)?;
        let max_inflight_bytes = self
            .max_inflight_bytes
            .unwrap_or_else(|| default_max_inflight_bytes(format));
        positive("--max-inflight-bytes", max_inflight_bytes)?;
        Ok(TailConfig {
            paths,
            data_dir: self.data_dir,
            read_from: match self.read_from {
                ReadFromArg::Beginning => ReadFrom::Beginning,
                ReadFromArg::End => ReadFrom::End,
            },
            max_line_bytes: self.max_line_bytes,
            multiline,
            max_inflight_bytes,
            poll_interval: Duration::from_millis(self.poll_interval_ms),
            rotate_grace: Duration::from_millis(self.rotate_grace_ms),
            partial_line_timeout: Duration::from_millis(self.partial_line_timeout_ms),
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval_ms),
            container_name: self.container_name.filter(|c| !c.is_empty()),
            use_inotify: !self.no_inotify,
            follow_symlinks_outside_roots: self.follow_symlinks_outside_roots,
        })
    }
}

/// How pods reach the Firehose API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Through a NAT gateway (private subnets, the common EKS Fargate setup).
    Nat,
    /// Through an interface VPC endpoint for Firehose.
    VpcEndpoint,
    /// Directly (public subnet, or no per-GB charge on the path).
    Direct,
}

impl Network {
    /// USD per GB processed on the way to Firehose.
    pub fn usd_per_gb(self) -> f64 {
        match self {
            Self::Nat => NAT_GATEWAY_USD_PER_GB,
            Self::VpcEndpoint => VPC_ENDPOINT_USD_PER_GB,
            Self::Direct => 0.0,
        }
    }
}

/// `firetail cost`: estimate monthly cost per record format (prints a table, sends nothing).
#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// Raw log volume, GB (2^30 bytes) per day, all pods together.
    #[arg(long, env = "FIRETAIL_COST_GB_PER_DAY")]
    pub gb_per_day: f64,
    /// Average line length in bytes, newline included.
    #[arg(long, env = "FIRETAIL_COST_LINE_BYTES")]
    pub line_bytes: f64,
    /// Pods (sidecars) the volume is spread over; quiet pods send smaller records.
    #[arg(long, env = "FIRETAIL_COST_PODS", default_value_t = 1)]
    pub pods: u32,
    /// The sidecar's flush interval: a quiet pod closes a record at least this often.
    #[arg(long, env = "FIRETAIL_FLUSH_INTERVAL_MS", default_value_t = 1000)]
    pub flush_interval_ms: u64,
    /// Bytes the sidecar adds to each line (time, file, kubernetes metadata, escaping).
    #[arg(long, env = "FIRETAIL_COST_EVENT_OVERHEAD_BYTES", default_value_t = MEASURED_EVENT_OVERHEAD_BYTES)]
    pub event_overhead_bytes: f64,
    /// ndjson-gzip compressed / uncompressed bytes (0 < ratio <= 1).
    #[arg(long, env = "FIRETAIL_COST_GZIP_RATIO", default_value_t = MEASURED_GZIP_RATIO)]
    pub gzip_ratio: f64,
    /// v2-zstd compressed / uncompressed bytes (0 < ratio <= 1).
    #[arg(long, env = "FIRETAIL_COST_ZSTD_RATIO", default_value_t = MEASURED_ZSTD_RATIO)]
    pub zstd_ratio: f64,
    /// v2-gzip compressed / uncompressed bytes (0 < ratio <= 1).
    #[arg(long, env = "FIRETAIL_COST_V2_GZIP_RATIO", default_value_t = MEASURED_V2_GZIP_RATIO)]
    pub v2_gzip_ratio: f64,
    /// Firehose processor buffer size (the template's ProcessorBufferSizeMBs), MB.
    #[arg(
        long,
        env = "FIRETAIL_COST_PROCESSOR_BUFFER_MB",
        default_value_t = firetail_sidecar::cmd::cost::TEMPLATE_PROCESSOR_BUFFER_MB
    )]
    pub processor_buffer_mb: f64,
    /// Firehose processor buffer interval (ProcessorBufferIntervalSecs), seconds.
    #[arg(
        long,
        env = "FIRETAIL_COST_PROCESSOR_INTERVAL_SECS",
        default_value_t = 60.0
    )]
    pub processor_interval_secs: f64,
    /// Transform memory, MB (the template's MemorySize).
    #[arg(long, env = "FIRETAIL_COST_LAMBDA_MEMORY_MB", default_value_t = 256.0)]
    pub lambda_memory_mb: f64,
    /// Transform throughput, MB of uncompressed events per vCPU-second (see the transform
    /// benchmark in docs/BENCHMARKS.md).
    #[arg(
        long,
        env = "FIRETAIL_COST_LAMBDA_MB_PER_VCPU_SEC",
        default_value_t = 100.0
    )]
    pub lambda_mb_per_vcpu_sec: f64,
    /// How pods reach Firehose.
    #[arg(long, env = "FIRETAIL_COST_NETWORK", value_enum, default_value_t = Network::Nat)]
    pub network: Network,
    /// Firehose ingestion price, USD per GB.
    #[arg(long, env = "FIRETAIL_COST_FIREHOSE_USD_PER_GB", default_value_t = FIREHOSE_USD_PER_GB)]
    pub firehose_usd_per_gb: f64,
}

/// Why [`CostArgs`] cannot be estimated.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CostArgsError(String);

impl CostArgs {
    /// The model inputs.
    pub fn to_inputs(&self) -> Result<Inputs, CostArgsError> {
        let positive = [
            ("--gb-per-day", self.gb_per_day),
            ("--line-bytes", self.line_bytes),
            ("--processor-buffer-mb", self.processor_buffer_mb),
            ("--lambda-memory-mb", self.lambda_memory_mb),
            ("--lambda-mb-per-vcpu-sec", self.lambda_mb_per_vcpu_sec),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(CostArgsError(format!("{name} must be a positive number")));
            }
        }
        for (name, ratio) in [
            ("--gzip-ratio", self.gzip_ratio),
            ("--zstd-ratio", self.zstd_ratio),
            ("--v2-gzip-ratio", self.v2_gzip_ratio),
        ] {
            if !(ratio > 0.0 && ratio <= 1.0) {
                return Err(CostArgsError(format!("{name} must be in (0, 1]")));
            }
        }
        if !(self.event_overhead_bytes >= 0.0 && self.firehose_usd_per_gb >= 0.0) {
            return Err(CostArgsError(
                "--event-overhead-bytes and --firehose-usd-per-gb must not be negative".into(),
            ));
        }
        if self.flush_interval_ms == 0 {
            return Err(CostArgsError(
                "--flush-interval-ms must be greater than 0".into(),
            ));
        }
        let mut inputs = Inputs::new(self.gb_per_day, self.line_bytes);
        inputs.pods = f64::from(self.pods.max(1));
        inputs.event_overhead_bytes = self.event_overhead_bytes;
        inputs.gzip_ratio = self.gzip_ratio;
        inputs.zstd_ratio = self.zstd_ratio;
        inputs.v2_gzip_ratio = self.v2_gzip_ratio;
        inputs.flush_interval_secs = self.flush_interval_ms as f64 / 1_000.0;
        inputs.processor_buffer_mb = self.processor_buffer_mb;
        inputs.processor_interval_secs = self.processor_interval_secs;
        inputs.lambda_memory_mb = self.lambda_memory_mb;
        inputs.lambda_mb_per_vcpu_sec = self.lambda_mb_per_vcpu_sec;
        inputs.prices.network_per_gb = self.network.usd_per_gb();
        inputs.prices.firehose_per_gb = self.firehose_usd_per_gb;
        Ok(inputs)
    }

    /// The report `firetail cost` prints.
    pub fn report(&self) -> Result<String, CostArgsError> {
        let inputs = self.to_inputs()?;
        Ok(cost::render(&inputs, &cost::estimate(&inputs)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(with_default_subcommand(args.iter().map(OsString::from)))
    }

    fn run_settings(args: &[&str]) -> Result<Settings, ConfigError> {
        match parse(args).unwrap().command {
            Command::Run(a) | Command::Check(a) => a.into_settings(),
            Command::Cost(_) => panic!("not run"),
        }
    }

    #[test]
    fn no_subcommand_means_run_and_flags_belong_to_their_subcommand() {
        assert!(matches!(
            parse(&["firetail", "--drain-timeout-secs=20"])
                .unwrap()
                .command,
            Command::Run(_)
        ));
        assert!(matches!(
            parse(&["firetail"]).unwrap().command,
            Command::Run(_)
        ));
        assert!(matches!(
            parse(&["firetail", "check", "--sink", "stdout"])
                .unwrap()
                .command,
            Command::Check(_)
        ));
        // Shipping flags are not cost flags, and cost flags are not run flags.
        assert!(
            parse(&[
                "firetail",
                "cost",
                "--gb-per-day",
                "1",
                "--line-bytes",
                "2",
                "--drain",
                "eof"
            ])
            .is_err()
        );
        assert!(parse(&["firetail", "run", "--gb-per-day", "1"]).is_err());
    }

    #[test]
    fn defaults_and_validation() {
        let s = run_settings(&["firetail", "--delivery-stream", "s"]).unwrap();
        assert_eq!(s.ship.record_format, RecordFormat::V2Zstd);
        assert_eq!(s.ship.compression_level, None);
        assert_eq!(s.ship.flush_interval, Duration::from_secs(1));
        assert_eq!(s.metrics_addr, Some("0.0.0.0:2020".parse().unwrap()));
        assert_eq!(
            run_settings(&["firetail", "--delivery-stream", ""]).unwrap_err(),
            ConfigError::MissingStream
        );
        assert!(run_settings(&["firetail", "--sink", "stdout"]).is_ok());
        for (flag, value) in [
            ("--retry-base-ms", "0"),
            ("--permanent-retry-secs", "0"),
            ("--request-timeout-secs", "0"),
            ("--flush-interval-ms", "0"),
            ("--max-concurrent-requests", "0"),
        ] {
            assert!(
                matches!(
                    run_settings(&["firetail", "--sink", "stdout", flag, value]),
                    Err(ConfigError::Invalid { flag: f, .. }) if f == flag
                ),
                "{flag} {value}"
            );
        }
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.ship.drain.timeout, Duration::from_secs(25));
        assert!(parse(&["firetail", "--sink", "stdout", "--metrics-addr", "nope"]).is_err());
        let off = run_settings(&["firetail", "--sink", "stdout", "--metrics-addr", "off"]).unwrap();
        assert_eq!(off.metrics_addr, None);
        assert!(parse(&["firetail", "--record-format", "xml"]).is_err());
        // The level is checked against the format's codec.
        let level = |format: &str, level: &str| {
            run_settings(&[
                "firetail",
                "--sink",
                "stdout",
                "--record-format",
                format,
                "--compression-level",
                level,
            ])
            .map(|s| (s.ship.record_format, s.ship.compression_level))
        };
        assert_eq!(
            level("v2-zstd", "19").unwrap(),
            (RecordFormat::V2Zstd, Some(19))
        );
        assert_eq!(
            level("v2-gzip", "9").unwrap(),
            (RecordFormat::V2Gzip, Some(9))
        );
        for (format, bad) in [
            ("v2-zstd", "20"),
            ("v2-gzip", "10"),
            ("ndjson-gzip", "0"),
            ("json", "1"),
            ("ndjson", "1"),
        ] {
            assert!(
                matches!(
                    level(format, bad),
                    Err(ConfigError::Invalid {
                        flag: "--compression-level",
                        ..
                    })
                ),
                "{format} {bad}"
            );
        }
    }

    #[test]
    fn a_request_timeout_longer_than_the_drain_is_rejected() {
        let with = |request: &str, drain: &str| {
            run_settings(&[
                "firetail",
                "--sink",
                "stdout",
                "--request-timeout-secs",
                request,
                "--drain-timeout-secs",
                drain,
            ])
        };
        let err = with("30", "25").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { flag, why }
                if *flag == "--request-timeout-secs" && why.contains("outlive the drain")),
            "{err}"
        );
        assert!(err.to_string().contains("30 s"), "{err}");
        // The manifests' drain (20 s) with the default request timeout.
        let s = run_settings(&["firetail", "--sink", "stdout", "--drain-timeout-secs=20"]).unwrap();
        assert!(s.request_timeout <= s.ship.drain.timeout);
        assert!(with("20", "20").is_ok());
        // The old default request timeout (30 s) against the default drain (25 s).
        assert!(
            run_settings(&[
                "firetail",
                "--sink",
                "stdout",
                "--request-timeout-secs",
                "30"
            ])
            .is_err()
        );
    }

    #[test]
    fn tail_flags_build_the_engine_config() {
        let s = run_settings(&[
            "firetail",
            "--sink",
            "stdout",
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
        let t = s.tail;
        assert_eq!(t.paths, vec!["/a/*.log", "/b/**/*.log"]);
        assert_eq!(
            t.max_inflight_bytes,
            firetail_sidecar::config::DEFAULT_MAX_INFLIGHT_BYTES
        );
        assert_eq!(t.read_from, ReadFrom::End);
        assert_eq!(t.poll_interval, Duration::from_millis(250));
        assert!(matches!(
            t.multiline.map(|m| m.mode),
            Some(MultilineMode::Java)
        ));
        let json =
            run_settings(&["firetail", "--sink", "stdout", "--record-format", "json"]).unwrap();
        assert_eq!(
            json.tail.max_inflight_bytes,
            firetail_sidecar::config::DEFAULT_JSON_MAX_INFLIGHT_BYTES
        );
        let explicit = run_settings(&[
            "firetail",
            "--sink",
            "stdout",
            "--record-format",
            "json",
            "--max-inflight-bytes",
            "65536",
        ])
        .unwrap();
        assert_eq!(explicit.tail.max_inflight_bytes, 65_536);
        assert!(parse(&["firetail", "--read-from", "middle"]).is_err());
        assert!(
            run_settings(&["firetail", "--sink", "stdout", "--multiline", "(unclosed"]).is_err()
        );
    }

    #[test]
    fn every_flag_has_an_env_var_and_help() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                if matches!(arg.get_id().as_str(), "help" | "version") {
                    continue;
                }
                let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
                assert!(
                    env.as_deref().is_some_and(|e| e.starts_with("FIRETAIL_")),
                    "{} {} has no FIRETAIL_ env var",
                    sub.get_name(),
                    arg.get_id()
                );
                assert!(arg.get_help().is_some(), "{} has no help", arg.get_id());
            }
        }
    }

    #[test]
    fn the_report_names_every_format_and_checks_its_flags() {
        let args = CostArgs {
            gb_per_day: 10.0,
            line_bytes: 200.0,
            pods: 4,
            flush_interval_ms: 1_000,
            event_overhead_bytes: 300.0,
            gzip_ratio: 0.1,
            zstd_ratio: 0.1,
            v2_gzip_ratio: 0.1,
            processor_buffer_mb: 1.0,
            processor_interval_secs: 60.0,
            lambda_memory_mb: 256.0,
            lambda_mb_per_vcpu_sec: 100.0,
            network: Network::VpcEndpoint,
            firehose_usd_per_gb: FIREHOSE_USD_PER_GB,
        };
        let inputs = args.to_inputs().unwrap();
        assert_eq!(inputs.pods, 4.0);
        assert_eq!(inputs.prices.network_per_gb, 0.01);
        let text = args.report().unwrap();
        for name in [
            "json (1/rec)",
            "ndjson ",
            "ndjson-gzip",
            "v2-gzip",
            "v2-zstd",
        ] {
            assert!(text.contains(name), "{text}");
        }
        for bad in [
            CostArgs {
                gzip_ratio: 0.0,
                ..args.clone()
            },
            CostArgs {
                zstd_ratio: 1.5,
                ..args.clone()
            },
            CostArgs {
                v2_gzip_ratio: -0.1,
                ..args.clone()
            },
        ] {
            assert!(bad.to_inputs().is_err());
        }
        let bad = CostArgs {
            line_bytes: -1.0,
            ..args
        };
        assert!(bad.to_inputs().is_err());
    }
}
