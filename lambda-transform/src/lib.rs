//! firetail-transform: the Amazon Data Firehose data-transformation Lambda of firetail.
//!
//! # Layout
//! - [`event`]: the Firehose request/response wire types.
//! - [`config`]: `FIRETAIL_*` settings.
//! - [`decode`]: base64, capped gzip, and what a payload holds (events, NDJSON, CloudWatch).
//! - [`kube`], [`tags`]: the `kubernetes` map and the tags derived from it.
//! - [`render`]: one event to one destination-shaped JSON object.
//! - [`transform`]: the pure per-invocation planner (response budget, record limits).
//! - [`reingest`]: the AWS boundary — overflow records back into the stream.
//! - [`metrics`]: the per-invocation CloudWatch EMF line.
//!
//! [`handle`] ties them together; `main.rs` only wires it to the Lambda runtime.

pub mod config;
pub mod decode;
pub mod event;
pub mod kube;
pub mod metrics;
pub mod reingest;
pub mod render;
pub mod tags;
pub mod time;
pub mod transform;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tracing::{error, warn};

pub use config::Config;
pub use event::{FirehoseEvent, FirehoseResponse, OutputRecord, RecordResult};
pub use reingest::{FirehoseSink, RecordSink};
pub use transform::Stats;

/// Transforms one invocation: plans every record, re-ingests what did not fit, and settles
/// each record's final result. Never fails because of a record.
pub async fn handle<S: RecordSink>(
    event: &FirehoseEvent,
    config: &Config,
    sink: &S,
    deadline: Option<Instant>,
) -> (FirehoseResponse, Stats) {
    let plan = transform::plan(event, config, now_ms());
    let mut stats = plan.stats;
    let mut records = plan.records;

    let payloads: Vec<(usize, Vec<u8>)> = records
        .iter_mut()
        .enumerate()
        .flat_map(|(i, r)| {
            std::mem::take(&mut r.reingest)
                .into_iter()
                .map(move |p| (i, p))
        })
        .collect();
    if !payloads.is_empty() {
        let owners: Vec<usize> = payloads.iter().map(|(i, _)| *i).collect();
        let data: Vec<Vec<u8>> = payloads.into_iter().map(|(_, p)| p).collect();
        let accepted = match reingest::stream_name(&event.delivery_stream_arn) {
            Some(stream) => {
                reingest::put_all(sink, stream, &data, config.reingest_max_attempts, deadline).await
            }
            None => {
                warn!(arn = %event.delivery_stream_arn, "no delivery stream name in the event; cannot re-ingest");
                vec![false; data.len()]
            }
        };
        for (owner, ok) in owners.into_iter().zip(accepted) {
            let record = &mut records[owner];
            if !ok && record.result != RecordResult::ProcessingFailed {
                error!(record_id = %record.record_id, "re-ingest failed; record marked ProcessingFailed so Firehose keeps it in the backup bucket");
                match record.result {
                    RecordResult::Ok => stats.records_ok -= 1,
                    RecordResult::Dropped => stats.records_dropped -= 1,
                    RecordResult::ProcessingFailed => {}
                }
                stats.records_failed += 1;
                record.result = RecordResult::ProcessingFailed;
            }
        }
    }

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
