//! Firehose's error records, as it writes them to the backup bucket: one JSON object per line,
//! the object optionally gzip-compressed.
//!
//! Shapes read here (field names as Firehose writes them):
//! - transform failures (`processing-failed/`): `attemptsMade`, `arrivalTimestamp`,
//!   `errorCode`, `errorMessage`, `attemptEndingTimestamp`, `rawData`, `lambdaArn`.
//!   <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html>
//! - OpenSearch documents it could not index (`AmazonOpenSearchService-failed/`): the same
//!   fields plus `subsequenceNumber`, `esDocumentId`, `esIndexName`, `esTypeName`; `errorCode`
//!   is the HTTP status as a string.
//!   <https://docs.aws.amazon.com/firehose/latest/dev/retry.html>
//! - HTTP endpoint (Datadog) and other delivery failures: the common fields.
//! - data format conversion errors spell the code `ErrorCode` / `lastErrorCode`; accepted too.
//!
//! Pure: bytes in, records or errors out. A gzip object is inflated before it gets here, with
//! the shared capped inflater ([`firetail_wire::gzip::maybe_gunzip`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::Value;

/// Which stage of Firehose failed the record, from the fields present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The data transformation (Lambda) failed or returned `ProcessingFailed`.
    Processing,
    /// OpenSearch refused the document.
    OpenSearch,
    /// Delivery to an HTTP endpoint (Datadog), Splunk or another destination failed.
    Delivery,
}

/// One error record with its payload decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRecord {
    /// `attemptsMade`.
    pub attempts_made: Option<u64>,
    /// `arrivalTimestamp`, milliseconds since the epoch.
    pub arrival_ms: Option<i64>,
    /// `errorCode` (empty when absent).
    pub error_code: String,
    /// `errorMessage` (empty when absent).
    pub error_message: String,
    /// `attemptEndingTimestamp`, milliseconds since the epoch.
    pub attempt_ending_ms: Option<i64>,
    /// `rawData` decoded: the record exactly as it was put into the stream (or, for an
    /// OpenSearch failure, the document as it was sent).
    pub data: Vec<u8>,
    /// Which stage failed it.
    pub origin: Origin,
}

/// Why a line is not an error record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object with the fields of an error record.
    #[error("not an error record: {0}")]
    Shape(String),
    /// No `rawData`.
    #[error("no rawData field")]
    MissingRawData,
    /// `rawData` is not base64.
    #[error("rawData is not base64: {0}")]
    BadBase64(String),
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    #[serde(default)]
    attempts_made: Option<Value>,
    #[serde(default)]
    arrival_timestamp: Option<Value>,
    #[serde(default, alias = "ErrorCode", alias = "lastErrorCode")]
    error_code: Option<Value>,
    #[serde(default, alias = "ErrorMessage", alias = "lastErrorMessage")]
    error_message: Option<Value>,
    #[serde(default)]
    attempt_ending_timestamp: Option<Value>,
    #[serde(default)]
    raw_data: Option<String>,
    #[serde(default)]
    lambda_arn: Option<String>,
    #[serde(default)]
    es_document_id: Option<String>,
    #[serde(default)]
    es_index_name: Option<String>,
}

/// A number written as a JSON number or a numeric string (the docs show both).
fn number(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(v: Option<Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    }
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<ErrorRecord, LineError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| LineError::NotJson(e.to_string()))?;
    if !value.is_object() {
        return Err(LineError::Shape("not a JSON object".into()));
    }
    let wire: Wire = serde_json::from_value(value).map_err(|e| LineError::Shape(e.to_string()))?;
    let raw = wire.raw_data.ok_or(LineError::MissingRawData)?;
    let data = STANDARD
        .decode(raw.trim())
        .map_err(|e| LineError::BadBase64(e.to_string()))?;
    let error_code = text(wire.error_code);
    let origin = if wire.lambda_arn.is_some() || error_code.starts_with("Lambda.") {
        Origin::Processing
    } else if wire.es_document_id.is_some() || wire.es_index_name.is_some() {
        Origin::OpenSearch
    } else {
        Origin::Delivery
    };
    Ok(ErrorRecord {
        attempts_made: number(wire.attempts_made.as_ref()).and_then(|n| u64::try_from(n).ok()),
        arrival_ms: number(wire.arrival_timestamp.as_ref()),
        error_code,
        error_message: text(wire.error_message),
        attempt_ending_ms: number(wire.attempt_ending_timestamp.as_ref()),
        data,
        origin,
    })
}

/// The non-blank lines of an object body with their 1-based line numbers; a trailing `\r` is
/// not part of a line.
pub fn lines(body: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    body.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| (i as u64 + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write as _;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn transform_failure_record() {
        let line = format!(
            r#"{{"attemptsMade":4,"arrivalTimestamp":1700000000123,"errorCode":"Lambda.FunctionError","errorMessage":"The Lambda function was successfully invoked but it returned an error result.","attemptEndingTimestamp":1700000300456,"rawData":"{}","lambdaArn":"arn:aws:lambda:us-east-1:123456789012:function:firetail-transform:$LATEST"}}"#,
            b64("{\"log\":\"hello\"}\n")
        );
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(r.attempts_made, Some(4));
        assert_eq!(r.arrival_ms, Some(1_700_000_000_123));
        assert_eq!(r.attempt_ending_ms, Some(1_700_000_300_456));
        assert_eq!(r.error_code, "Lambda.FunctionError");
        assert!(r.error_message.starts_with("The Lambda function"));
        assert_eq!(r.data, b"{\"log\":\"hello\"}\n");
        assert_eq!(r.origin, Origin::Processing);
    }

    #[test]
    fn opensearch_failed_document() {
        let line = format!(
            r#"{{"attemptsMade":0,"arrivalTimestamp":1700000000000,"errorCode":"400","errorMessage":"{{\"type\":\"mapper_parsing_exception\"}}","attemptEndingTimestamp":1700000000999,"rawData":"{}","subsequenceNumber":0,"esDocumentId":"4957-1700000000000-0","esIndexName":"logs","esTypeName":""}}"#,
            b64("{\"message\":\"x\"}")
        );
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(r.origin, Origin::OpenSearch);
        assert_eq!(r.error_code, "400");
        assert_eq!(r.error_message, "{\"type\":\"mapper_parsing_exception\"}");
    }

    #[test]
    fn http_endpoint_failure_and_numeric_strings() {
        // The docs' field list shows quoted values; accept numbers written as strings, and a
        // numeric error code.
        let line = format!(
            r#"{{"attemptsMade":"3","arrivalTimestamp":"1700000000000","errorCode":503,"errorMessage":null,"rawData":"{}","subsequenceNumber":0,"dataId":"x"}}"#,
            b64("abc")
        );
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(r.origin, Origin::Delivery);
        assert_eq!(r.attempts_made, Some(3));
        assert_eq!(r.arrival_ms, Some(1_700_000_000_000));
        assert_eq!(r.error_code, "503");
        assert_eq!(r.error_message, "");
        assert_eq!(r.attempt_ending_ms, None);
    }

    #[test]
    fn format_conversion_spelling() {
        let line = format!(
            r#"{{"attemptsMade":1,"arrivalTimestamp":1,"lastErrorCode":"DataFormatConversion.InvalidSchema","lastErrorMessage":"m","rawData":"{}"}}"#,
            b64("z")
        );
        let r = parse_line(line.as_bytes()).unwrap();
        assert_eq!(r.error_code, "DataFormatConversion.InvalidSchema");
        assert_eq!(r.error_message, "m");
    }

    #[test]
    fn malformed_lines() {
        assert!(matches!(
            parse_line(b"{\"attemptsMade\":1,"),
            Err(LineError::NotJson(_))
        ));
        assert!(matches!(parse_line(b"[1,2]"), Err(LineError::Shape(_))));
        assert!(matches!(
            parse_line(b"{\"errorCode\":\"x\"}"),
            Err(LineError::MissingRawData)
        ));
        assert!(matches!(
            parse_line(b"{\"rawData\":\"***\"}"),
            Err(LineError::BadBase64(_))
        ));
        assert!(matches!(
            parse_line(b"{\"rawData\":7}"),
            Err(LineError::Shape(_))
        ));
    }

    #[test]
    fn lines_are_numbered_from_one_and_blank_lines_skipped() {
        let body = b"a\r\n\n  \nb\nc";
        let got: Vec<(u64, &[u8])> = lines(body).collect();
        assert_eq!(got, vec![(1, &b"a"[..]), (4, b"b"), (5, b"c")]);
    }

    /// Object bodies go through the shared inflater; redrive relies on it for these cases.
    #[test]
    fn inflate_plain_gzip_multi_member_and_cap() {
        use firetail_wire::gzip::maybe_gunzip as inflate;
        assert_eq!(&*inflate(b"plain", 10).unwrap(), b"plain");
        let mut gz = Vec::new();
        for part in ["one\n", "two\n"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part.as_bytes()).unwrap();
            gz.extend(e.finish().unwrap());
        }
        assert_eq!(&*inflate(&gz, 100).unwrap(), b"one\ntwo\n");
        assert!(inflate(&gz, 5).is_err());
        assert!(inflate(&gz[..gz.len() - 4], 100).is_err());
    }
}
