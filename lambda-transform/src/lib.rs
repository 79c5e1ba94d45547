//! firetail-transform: the Amazon Data Firehose data-transformation Lambda of firetail.
//!
//! # Flow
//! ```text
//! invocation ─decode─> payload (sidecar event/NDJSON, Fluent Bit event, CloudWatch envelope)
//!   ─render─> destination-shaped objects ─plan─> one result per record, within 6 MB
//!   ─reingest─> what did not fit, back into the stream ─> response + one EMF metrics line
//! ```
//!
//! # Layout
//! - [`invocation`]: the Firehose request/response wire types.
//! - [`config`]: `FIRETAIL_*` settings.
//! - [`decode`]: base64, capped gzip, and what a payload holds.
//! - [`kube_meta`], [`tags`]: the `kubernetes` map and the tags derived from it (one table);
//!   [`tags::datadog_pipeline`]: the Datadog log pipeline generated from that table.
//! - [`render`]: one event to one destination-shaped object ([`render::datadog`],
//!   [`render::document`]).
//! - [`plan`]: the pure per-invocation planner (pass through own output, shape, densify,
//!   allot; Datadog's per-request event limit).
//! - [`reingest`]: overflow back into the stream, through `firetail_firehose`.
//! - [`emf`]: the per-invocation CloudWatch EMF line.
//!
//! [`handle`] ties them together; `main.rs` only wires it to the Lambda runtime. The record
//! contract with the sidecar (field names, formats, limits) is `firetail_wire`.

pub mod config;
pub mod decode;
pub mod emf;
pub mod invocation;
pub mod kube_meta;
pub mod plan;
pub mod reingest;
pub mod rejoin;
pub mod render;
pub mod tags;

use std::time::{SystemTime, UNIX_EPOCH};

use firetail_firehose::{FirehoseClient, stream_name};
use tokio::time::Instant;
use tracing::{error, warn};

pub use config::Config;
pub use invocation::{FirehoseEvent, FirehoseResponse, OutputRecord, RecordResult};
pub use plan::Stats;

/// Transforms one invocation: plans every record, re-ingests what did not fit, settles each
/// record's final result and counts them. Never fails because of a record.
pub async fn handle<C: FirehoseClient>(
    event: &FirehoseEvent,
    config: &Config,
    client: &C,
    deadline: Option<Instant>,
) -> (FirehoseResponse, Stats) {
    let plan = plan::plan(event, config, now_ms());
    let shaping = plan.shaping;
    let mut records = plan.records;

    // Every payload with the index of the record whose result depends on it.
    let (owners, payloads): (Vec<usize>, Vec<Vec<u8>>) = records
        .iter_mut()
        .enumerate()
        .flat_map(|(i, r)| {
            std::mem::take(&mut r.reingest)
                .into_iter()
                .map(move |p| (i, p))
        })
        .unzip();
    let mut reingested = 0u64;
    if !payloads.is_empty() {
        let accepted = match stream_name(&event.delivery_stream_arn) {
            Some(stream) => {
                reingest::put_all(
                    client,
                    stream,
                    payloads,
                    config.reingest_max_attempts,
                    deadline,
                )
                .await
            }
            None => {
                warn!(arn = %event.delivery_stream_arn, "no delivery stream name in the event; cannot re-ingest");
                vec![false; owners.len()]
            }
        };
        for (owner, ok) in owners.into_iter().zip(accepted) {
            let record = &mut records[owner];
            if ok {
                reingested += 1;
            } else if record.result != RecordResult::ProcessingFailed {
                error!(record_id = %record.record_id, "re-ingest failed; record marked ProcessingFailed so Firehose keeps it in the backup bucket");
                record.result = RecordResult::ProcessingFailed;
                record.data = None;
            }
        }
    }

    let stats = Stats::tally(&records, shaping, reingested);
    let response = FirehoseResponse {
        records: records
            .into_iter()
            .map(|r| OutputRecord {
                record_id: r.record_id,
                result: r.result,
                data: r.data.unwrap_or_default(),
            })
            .collect(),
    };
    (response, stats)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
