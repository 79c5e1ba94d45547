//! firetail-wire: what the sidecar writes and the transform reads — the contract between the
//! two halves of firetail, in one place — and what the transform writes that redrive reads.
//!
//! No AWS and no async runtime: both halves, the test kit and the fuzz targets build on it.
//! A name changed here changes both sides; a name one side spells on its own is a bug the
//! contract test (`tests/tests/contract.rs`) catches.
//!
//! # Layout
//! - [`event`]: the event's field names, [`event::encode`] (the sidecar's writer).
//! - [`kube`]: the `kubernetes` object's field names and [`kube::KubeObject`] (its writer).
//! - [`format`](mod@format): record formats (`v2-zstd`, `v2-gzip`, `json`, `ndjson`,
//!   `ndjson-gzip`) and layout versions; [`v2`]: version 2's header and lean events.
//! - [`limits`]: Firehose and Lambda limits with their documentation, and billing.
//! - [`destination`]: [`Destination`] (Datadog, OpenSearch, S3).
//! - [`output`]: what the transform writes that others recognise: the idempotence marker,
//!   the Datadog record's fixed names, Datadog's intake limits.
//! - [`json`]: the JSON string writer. [`time`]: RFC 3339 and epoch numbers.
//! - [`gzip`]: the capped inflater and a reusable gzip writer; [`codec`]: gzip or zstd by
//!   magic bytes, one capped decoder for both, a reusable zstd writer.

pub mod codec;
pub mod destination;
pub mod event;
pub mod format;
pub mod gzip;
pub mod json;
pub mod kube;
pub mod limits;
pub mod output;
pub mod time;
pub mod v2;

pub use destination::Destination;
pub use format::RecordFormat;
