//! `firetail-redrive` end to end: its fixtures in moto's S3 (Firehose's documented
//! error-record formats), put back through the real AWS SDK into moto's Firehose or the
//! fault-injecting endpoint, and the built binary stopped and resumed. Needs moto's server
//! (`bash tests/run` provides it) and `cargo build -p firetail-redrive`.
//!
//! - `moto`: every sendable record arrives once, the rest is reported; dry run, OpenSearch
//!   rules, tag/move/delete, repaired objects, paging, `--max-objects`.
//! - `window`: Datadog's 18-hour window: old records stay until `--restamp`, which delivers
//!   them with the redrive's time and the original kept; every event exactly once.
//! - `bad_input`: the binary against unknown and mixed prefixes, truncated gzip, corrupt
//!   transform output and untimed Datadog records: reported by key and line, exit 2.
//! - `faults`: per-record failures resend only the failed entries.
//! - `full_loop`: sidecar -> transform -> delivery failure in the backup bucket -> redrive ->
//!   transform -> byte for byte what the first attempt carried, with its tags.
//! - `process`: the binary after SIGTERM and SIGKILL.
//! - `common`: fixtures, clients and counting.

mod bad_input;
pub mod common;
mod faults;
mod full_loop;
mod moto;
mod process;
mod window;
