//! The Firehose data-transformation wire format.
//!
//! Our own types rather than `aws_lambda_events::firehose`: there, `data` is decoded while the
//! whole event is deserialised (one malformed record would fail the invocation), a fractional
//! timestamp can panic, and `result` is an untyped string whose documented constants Firehose
//! rejects. Here a record's payload is decoded on its own, and the result is an enum of the
//! three values Firehose accepts.
//! <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation.html>

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use firetail_wire::json::write_str;

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

impl FirehoseResponse {
    /// The response as JSON, written directly rather than by serde: nearly all of it is
    /// `data`, base64 that needs no escaping, which serde's string writer checks a byte at a
    /// time (4 % of an invocation's CPU in `perf`). The same text as `serde_json::to_string`
    /// (tested), checked as JSON once by [`RawValue::from_string`], which scans a word at a
    /// time; the Lambda runtime then copies it into the response as it is.
    pub fn to_raw_json(&self) -> serde_json::Result<Box<RawValue>> {
        let len: usize = self
            .records
            .iter()
            .map(|r| OutputRecord::encoded_len(&r.record_id, r.result, r.data.len()))
            .sum();
        let mut json = Vec::with_capacity(len + 16);
        json.extend_from_slice(b"{\"records\":[");
        for (i, r) in self.records.iter().enumerate() {
            if i > 0 {
                json.push(b',');
            }
            json.extend_from_slice(b"{\"recordId\":");
            write_str(&mut json, &r.record_id);
            json.extend_from_slice(b",\"result\":\"");
            json.extend_from_slice(r.result.name().as_bytes());
            json.extend_from_slice(b"\",\"data\":");
            write_str(&mut json, &r.data);
            json.push(b'}');
        }
        json.extend_from_slice(b"]}");
        // Only `&str` pieces and ASCII went in, so this cannot fail; checked all the same.
        let text = String::from_utf8(json).map_err(serde::ser::Error::custom)?;
        RawValue::from_string(text)
    }
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

impl RecordResult {
    /// The name Firehose reads (serde's too).
    pub fn name(self) -> &'static str {
        match self {
            RecordResult::Ok => "Ok",
            RecordResult::Dropped => "Dropped",
            RecordResult::ProcessingFailed => "ProcessingFailed",
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn response(records: &[(&str, RecordResult, &str)]) -> FirehoseResponse {
        FirehoseResponse {
            records: records
                .iter()
                .map(|&(id, result, data)| OutputRecord {
                    record_id: id.to_owned(),
                    result,
                    data: data.to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_raw_response_is_what_serde_writes() {
        for r in [
            response(&[]),
            response(&[(
                "49546986683135544286507457936321625675700192471156785154",
                RecordResult::Ok,
                "eyJhIjoxfQ==",
            )]),
            response(&[
                ("a\"b\\c\u{1}\u{1f}\u{7f}é🎉/", RecordResult::Dropped, ""),
                (
                    "",
                    RecordResult::ProcessingFailed,
                    "not base64: \"\n\t\u{8}\u{c}",
                ),
                ("x", RecordResult::Ok, "QUJD+/=="),
            ]),
        ] {
            assert_eq!(
                r.to_raw_json().unwrap().get(),
                serde_json::to_string(&r).unwrap()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_raw_response_is_what_serde_writes(
            records in proptest::collection::vec(
                (".*", 0..3u8, ".*"),
                0..8,
            ),
        ) {
            let results = [RecordResult::Ok, RecordResult::Dropped, RecordResult::ProcessingFailed];
            let r = FirehoseResponse {
                records: records
                    .into_iter()
                    .map(|(id, result, data)| OutputRecord {
                        record_id: id,
                        result: results[usize::from(result)],
                        data,
                    })
                    .collect(),
            };
            let raw = r.to_raw_json().unwrap();
            proptest::prop_assert_eq!(raw.get(), serde_json::to_string(&r).unwrap());
        }
    }
}
