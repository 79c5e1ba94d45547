//! firetail-redrive: puts the records Firehose gave up on (written to the stream's S3 backup
//! bucket) back into a delivery stream. A one-shot operator tool with a binary of its own
//! (`firetail-redrive`), so the sidecar's image carries no S3 code.
//!
//! # Layout
//! In flow order, from the bucket to the stream:
//! - [`s3`]: [`ObjectStore`], the S3 boundary (list, get at an ETag, tags, copy, delete), its
//!   SDK implementation [`SdkStore`], and an in-memory bucket (feature `test-util`).
//! - [`parse`]: the error-record line formats Firehose writes (pure).
//! - [`age`]: each record's event times, and re-stamping the old ones, for Datadog's
//!   18-hour window (pure).
//! - [`verdict`]: send (as it is or re-stamped), filter out, or report: would fail again, too
//!   old for Datadog, no event time, corrupt (pure).
//! - [`engine`]: the I/O shell: list and read objects, classify their lines, send through
//!   [`firetail_firehose::deliver`] (the shared batching, partial-failure resends and bounded
//!   retries), record progress, mark finished objects.
//! - [`state`]: resumable progress on local disk.
//! - [`report`]: the [`Summary`] and its text.
//!
//! The binary's flags (`src/cli.rs`, clap) become a [`RedriveConfig`]; this library takes
//! only typed values.

pub mod age;
pub mod engine;
pub mod parse;
pub mod report;
pub mod s3;
pub mod state;
pub mod verdict;

pub use engine::{
    AfterDone, DEFAULT_RETRY_ATTEMPTS, RedriveConfig, RedriveError, default_retry, ensure_active,
    redrive,
};
pub use report::Summary;
pub use s3::{ObjectStore, S3Settings, SdkStore};
