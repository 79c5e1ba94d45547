//! The service limits both halves work within, and Firehose's billing rule. Each is a fact of
//! an AWS service, not a setting: the link says where it is documented.

/// Largest record Firehose accepts, before base64 encoding (1,000 KiB).
/// <https://docs.aws.amazon.com/firehose/latest/dev/limits.html>
pub const FIREHOSE_MAX_RECORD_BYTES: usize = 1_000 * 1024;

/// Most records in one `PutRecordBatch` call.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const PUT_RECORD_BATCH_MAX_RECORDS: usize = 500;

/// Most record data in one `PutRecordBatch` call (4 MiB).
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const PUT_RECORD_BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Firehose bills ingestion per record rounded up to the next 5 KB (5,120 bytes).
/// <https://aws.amazon.com/firehose/pricing/>
pub const BILLING_INCREMENT_BYTES: usize = 5 * 1024;

/// Firehose's own de-aggregation of newline-delimited records (dynamic partitioning) handles
/// at most 500 JSON objects per record, so an `ndjson` record never holds more.
/// <https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html>
pub const NDJSON_MAX_EVENTS_PER_RECORD: usize = 500;

/// Largest synchronous Lambda response: Firehose fails the whole invocation above it. We stay
/// under 6,000,000 bytes, as AWS's own CloudWatch Logs processor blueprint does, to leave room
/// for the JSON framing.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const LAMBDA_RESPONSE_LIMIT_BYTES: usize = 6_000_000;

/// Largest synchronous Lambda invocation request (6 MB): what one Firehose processor
/// invocation can carry.
/// <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>
pub const LAMBDA_REQUEST_LIMIT_BYTES: usize = 6_000_000;

/// Firehose's default processor buffer: it invokes the Lambda with about this much record data
/// (1 MB; configurable 0.2–3 MB).
/// <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html>
pub const PROCESSOR_DEFAULT_BUFFER_BYTES: usize = 1024 * 1024;

/// The processor buffer template.yaml sets (`ProcessorBufferSizeMBs`' default, 0.5 MB): half of
/// Firehose's default. One response carries at most ~69,000 Datadog events (6 MB, less base64,
/// at [`crate::output::datadog_bytes_per_event`] each), and a 1 MB buffer of version 2 records
/// of short repetitive lines holds more, so some of them were re-ingested and billed again;
/// at 0.5 MB they fit with room for Firehose's buffer to overshoot. Smaller invocations cost
/// only the per-invocation overhead (docs/BENCHMARKS.md, "What one invocation can deliver").
pub const TEMPLATE_PROCESSOR_BUFFER_BYTES: usize = 512 * 1024;

/// Bytes Firehose bills for a record of `len` bytes: rounded up to the next
/// [`BILLING_INCREMENT_BYTES`], and never less than one increment.
pub fn billed_bytes(len: usize) -> usize {
    len.div_ceil(BILLING_INCREMENT_BYTES).max(1) * BILLING_INCREMENT_BYTES
}

/// [`billed_bytes`] of an average record size (the cost model works with averages).
pub fn billed_bytes_avg(len: f64) -> f64 {
    let increment = BILLING_INCREMENT_BYTES as f64;
    (len / increment).ceil().max(1.0) * increment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_five_kib() {
        assert_eq!(billed_bytes(0), 5120);
        assert_eq!(billed_bytes(1), 5120);
        assert_eq!(billed_bytes(5120), 5120);
        assert_eq!(billed_bytes(5121), 10240);
        assert_eq!(billed_bytes(FIREHOSE_MAX_RECORD_BYTES), 1_024_000);
        assert!((billed_bytes_avg(5120.5) - 10240.0).abs() < f64::EPSILON);
        assert!((billed_bytes_avg(0.0) - 5120.0).abs() < f64::EPSILON);
    }
}
