//! firetail-sidecar: the library behind the `firetail` binary.
//!
//! # Flow
//! ```text
//! log files ─tail─> LogEvent ─encode─> JSON event ─pack─> Firehose record ─deliver─> Firehose
//!   (firetail-tail)        (encode.rs: firetail-wire     (pack.rs)       (firetail-firehose)
//!                           event + pod metadata)
//!                  ack <── accepted record's tokens <──────────────────────────┘
//!   checkpoint <── acknowledged prefix of each file (firetail-tail)
//! ```
//! An event is acknowledged, and its file's checkpoint moves past it, only once Firehose has
//! accepted the record that holds it.
//!
//! # Layout
//! - [`run`]: the run loop `run(config, client, shutdown)`.
//! - [`drain`]: what a drain left (per file), for the log, the metrics and the exit status.
//! - [`encode`]: engine events to encoded events (pod metadata, oversize split or truncate,
//!   acknowledgement tokens).
//! - [`pack`]: encoded events into records and calls, within Firehose's limits.
//! - [`pod`]: pod metadata from the Downward API and the Kubernetes API, kept fresh by one
//!   task.
//! - [`config`]: the typed configuration (the binary's `cli.rs` builds it from flags).
//! - [`metrics`]: Prometheus metrics, health, and their HTTP server.
//! - [`fdlimit`]: the descriptor limit raised from soft to hard at startup.
//! - [`stdout`]: the stdout source, the app containers' logs followed through the Kubernetes
//!   API beside the files (`FIRETAIL_STDOUT_CONTAINERS`).
//! - [`stdout_sink`]: a Firehose client that prints instead (`--sink stdout`).
//! - [`cmd`]: `firetail check` and the cost model behind `firetail cost`.
//!
//! The tailing engine is the `firetail-tail` crate, the Firehose boundary `firetail-firehose`,
//! the record contract with the transform `firetail-wire`.

pub mod cmd;
pub mod config;
pub mod drain;
pub mod encode;
pub mod fdlimit;
pub mod metrics;
pub mod pack;
pub mod pod;
pub mod run;
pub mod stdout;
pub mod stdout_sink;
