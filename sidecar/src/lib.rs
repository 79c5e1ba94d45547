//! firetail-sidecar: the library behind the `firetail` binary.
//!
//! # Layout
//! - `tail`: turns log files into an ordered, acknowledged event stream (no AWS code).
//! - [`check`]: `firetail check`.
//! - [`config`]: the shipping flags (`FIRETAIL_*`).
//! - [`cost`]: the cost model behind `firetail cost`.
//! - [`enrich`]: pod metadata for the `kubernetes` object.
//! - [`kube`]: the pod's own object from the Kubernetes API (ids, images, app state).
//! - [`record`]: one event as the JSON object the transform reads.
//! - [`pack`]: events into records, records into `PutRecordBatch` calls, within Firehose limits.
//! - [`sink`]: the one trait at the Firehose boundary, with the real and the stdout sink.
//! - [`run`]: the library entry point `run(config, sink, shutdown)`.
//! - [`send`]: delivering a batch, resending only failed entries.
//! - [`metrics`]: Prometheus metrics, health and their HTTP server.
//! - [`redrive`]: `firetail redrive`, failed records from the backup bucket back into the stream.

pub mod check;
pub mod config;
pub mod cost;
pub mod enrich;
pub mod kube;
pub mod metrics;
pub mod pack;
pub mod record;
pub mod redrive;
pub mod run;
pub mod send;
pub mod sink;
pub mod tail;
