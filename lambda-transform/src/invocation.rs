//! The Firehose data-transformation wire format.
//!
//! Our own types rather than `aws_lambda_events::firehose`: there, `data` is decoded while the
//! whole event is deserialised (one malformed record would fail the invocation), a fractional
//! timestamp can panic, and `result` is an untyped string whose documented constants Firehose
//! rejects. Here a record's payload is decoded on its own, and the result is an enum of the
//! three values Firehose accepts.
//! <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html>

use serde::{Deserialize, Serialize};

/// One invocation from Firehose.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FirehoseEvent {
    #[serde(default)]
    pub invocation_id: String,
    #[serde(default)]
    pub delivery_stream_arn: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub records: Vec<InputRecord>,
}

/// One record as Firehose hands it to the processor.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputRecord {
    pub record_id: String,
    /// Milliseconds since the epoch; kept as a raw JSON value so that an odd encoding costs
    /// this field, never the invocation.
    #[serde(default)]
    pub approximate_arrival_timestamp: Option<serde_json::Value>,
    /// Base64 of the record's bytes, decoded per record.
    #[serde(default)]
    pub data: String,
}

impl InputRecord {
    /// Arrival time in epoch milliseconds, if Firehose sent a usable number.
    pub fn arrival_ms(&self) -> Option<i64> {
        self.approximate_arrival_timestamp
            .as_ref()
            .and_then(serde_json::Value::as_f64)
            .and_then(firetail_wire::time::epoch_number_to_ms)
    }
}

/// The processor's answer.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FirehoseResponse {
    pub records: Vec<OutputRecord>,
}

/// The outcome of one input record; Firehose requires every `recordId` exactly once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OutputRecord {
    pub record_id: String,
    pub result: RecordResult,
    /// Base64 of the transformed bytes; empty unless `Ok`. Firehose requires the field on
    /// every record, whatever the result.
    /// <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-status-model.html>
    #[serde(default)]
    pub data: String,
}

/// The three results Firehose accepts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum RecordResult {
    /// Transformed; `data` goes to the destination.
    Ok,
    /// Intentionally removed (filtered, control message, or re-ingested into the stream).
    Dropped,
    /// Could not be transformed; Firehose writes the original to the S3 backup bucket.
    ProcessingFailed,
}

impl OutputRecord {
    /// Bytes this record adds to the JSON response, including its separator.
    pub fn encoded_len(record_id: &str, result: RecordResult, data_b64_len: usize) -> usize {
        let result_len = match result {
            RecordResult::Ok => 2,
            RecordResult::Dropped => 7,
            RecordResult::ProcessingFailed => 16,
        };
        // {"recordId":"…","result":"…","data":"…"} and a comma.
        40 + firetail_wire::json::escaped_len(record_id) + result_len + data_b64_len
    }
}
