//! Firehose's error records, as it writes them to the backup bucket: one JSON object per line,
//! the object optionally gzip-compressed.
//!
//! Shapes read here (field names as Firehose writes them):
//! - transform failures (`processing-failed/`): `attemptsMade`, `arrivalTimestamp`,
//!   `errorCode`, `errorMessage`, `attemptEndingTimestamp`, `rawData`, `lambdaArn`. `rawData`
//!   is the record as it was put into the stream (the sidecar's or Fluent Bit's record).
//!   <https://docs.aws.amazon.com/firehose/latest/dev/data-transformation-failure-handling.html>
//! - OpenSearch documents it could not index (`AmazonOpenSearchService-failed/`): the same
//!   fields plus `subsequenceNumber`, `esDocumentId`, `esIndexName`, `esTypeName`; `errorCode`
//!   is the HTTP status as a string. `rawData` is the document as Firehose sent it: the
//!   transform's output.
//!   <https://docs.aws.amazon.com/firehose/latest/dev/retry.html>
//! - HTTP endpoint (Datadog) and other delivery failures: the common fields; `rawData` is what
//!   Firehose tried to deliver, the transform's output ("all or failed only data that it
//!   attempts to deliver", create-configure-backup).
//! - data format conversion errors spell the code `ErrorCode` / `lastErrorCode`; accepted too.
//!
//! The key says the same thing as the fields when Firehose's `ErrorOutputPrefix` contains
//! `!{firehose:error-output-type}`: [`key_error_type`] reads it from any directory of the key,
//! so the engine can refuse objects whose key and records disagree.
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

impl Origin {
    /// How a report names it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Processing => "a transform failure",
            Self::OpenSearch => "an OpenSearch failure",
            Self::Delivery => "a delivery failure",
        }
    }
}

/// The error output types Firehose writes (`!{firehose:error-output-type}`).
/// <https://docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html>
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// `processing-failed`.
    ProcessingFailed,
    /// `http-endpoint-failed`.
    HttpEndpointFailed,
    /// `AmazonOpenSearchService-failed` (older pages: `elasticsearch-failed`,
    /// `AmazonOpenSearchService_failed`).
    OpenSearchFailed,
    /// `splunk-failed`.
    SplunkFailed,
    /// `format-conversion-failed`.
    FormatConversionFailed,
}

impl ErrorType {
    /// Every type with the spellings it is recognised by, compared after lowercasing and
    /// turning `_` into `-` (AWS's own pages spell the OpenSearch one three ways).
    const SPELLINGS: [(ErrorType, &'static str); 6] = [
        (Self::ProcessingFailed, "processing-failed"),
        (Self::HttpEndpointFailed, "http-endpoint-failed"),
        (Self::OpenSearchFailed, "amazonopensearchservice-failed"),
        (Self::OpenSearchFailed, "elasticsearch-failed"),
        (Self::SplunkFailed, "splunk-failed"),
        (Self::FormatConversionFailed, "format-conversion-failed"),
    ];

    /// The name Firehose writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProcessingFailed => "processing-failed",
            Self::HttpEndpointFailed => "http-endpoint-failed",
            Self::OpenSearchFailed => "AmazonOpenSearchService-failed",
            Self::SplunkFailed => "splunk-failed",
            Self::FormatConversionFailed => "format-conversion-failed",
        }
    }

    /// The stage whose failure writes records of this type (what [`parse_line`] derives from
    /// a record's fields). Format conversion runs after the transform, so its records are
    /// transformed ones, like a delivery failure's.
    pub fn origin(self) -> Origin {
        match self {
            Self::ProcessingFailed => Origin::Processing,
            Self::OpenSearchFailed => Origin::OpenSearch,
            Self::HttpEndpointFailed | Self::SplunkFailed | Self::FormatConversionFailed => {
                Origin::Delivery
            }
        }
    }
}

/// What an object's key says about its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyType {
    /// A directory of the key names this error output type.
    Known(ErrorType),
    /// No directory names one (a fixed `ErrorOutputPrefix`): the records' fields decide.
    Untyped,
    /// A directory looks like an error output type (`…-failed`) Firehose does not write.
    Unknown(String),
    /// Directories name two different types.
    Conflicting(ErrorType, ErrorType),
}

/// Reads the error output type from the directories of `key` (its last segment is the object
/// name, which holds the stream's name and is not looked at). A directory names a type when
/// it contains one of its spellings not run into other letters, so `processing-failed`,
/// `datadog-processing-failed` and `processing-failed2026` (a null `ErrorOutputPrefix` writes
/// `<prefix><type>YYYY/…`) all do.
pub fn key_error_type(key: &str) -> KeyType {
    let mut found: Option<ErrorType> = None;
    let mut unknown: Option<String> = None;
    let dirs = key.rsplit_once('/').map_or("", |(dirs, _)| dirs);
    for segment in dirs.split('/') {
        let normal = segment.to_ascii_lowercase().replace('_', "-");
        let named = ErrorType::SPELLINGS
            .iter()
            .find(|(_, spelling)| names(&normal, spelling))
            .map(|(t, _)| *t);
        match (named, found) {
            (Some(t), Some(f)) if t != f => return KeyType::Conflicting(f, t),
            (Some(t), _) => found = Some(t),
            (None, _) if normal.len() > "-failed".len() && normal.ends_with("-failed") => {
                unknown.get_or_insert_with(|| segment.to_owned());
            }
            (None, _) => {}
        }
    }
    match (found, unknown) {
        (_, Some(segment)) => KeyType::Unknown(segment),
        (Some(t), None) => KeyType::Known(t),
        (None, None) => KeyType::Untyped,
    }
}

/// Whether `segment` contains `spelling` with no letter right before or after it.
fn names(segment: &str, spelling: &str) -> bool {
    segment.match_indices(spelling).any(|(at, _)| {
        let before = segment[..at].chars().next_back();
        let after = segment[at + spelling.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphabetic())
            && !after.is_some_and(|c| c.is_ascii_alphabetic())
    })
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
    /// `rawData` decoded: for a transform failure the record exactly as it was put into the
    /// stream; for a delivery failure (HTTP endpoint, OpenSearch) the record as transformed,
    /// which is what Firehose tried to deliver.
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
    // One public capture spells it `lambdaARN`; the `Lambda.` error code identifies a
    // transform failure either way.
    #[serde(default, alias = "lambdaARN")]
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

    #[test]
    fn error_types_are_read_from_any_directory_of_the_key() {
        use ErrorType::*;
        for (key, want) in [
            (
                "failed/datadog/processing-failed/2026/12/01/s-1-2026-12-01-10-00-00-a",
                ProcessingFailed,
            ),
            (
                "failed/datadog/http-endpoint-failed/2026/12/01/x",
                HttpEndpointFailed,
            ),
            ("failed/processing-failed/2026/12/01/x", ProcessingFailed),
            (
                "failed/opensearch/AmazonOpenSearchService-failed/2026/x",
                OpenSearchFailed,
            ),
            (
                "failed/opensearch/AmazonOpenSearchService_failed/2026/x",
                OpenSearchFailed,
            ),
            ("failed/elasticsearch-failed/x", OpenSearchFailed),
            ("splunk-failed/2026/x", SplunkFailed),
            (
                "failed/s3/format-conversion-failed/x",
                FormatConversionFailed,
            ),
            ("failed/datadog-processing-failed/x", ProcessingFailed),
            ("failed/processing-failed2026/12/01/x", ProcessingFailed),
        ]
        .map(|(k, t)| (k, KeyType::Known(t)))
        .into_iter()
        .chain([
            ("failed/datadog-errors/2026/12/01/x", KeyType::Untyped),
            // The object name is the stream's; a stream may be called anything.
            ("failed/processing-failed-stream-1-2026", KeyType::Untyped),
            (
                "failed/datadog/reprocessing-failed/x",
                KeyType::Unknown("reprocessing-failed".into()),
            ),
            (
                "failed/AmazonOpenSearchServerless-failed/x",
                KeyType::Unknown("AmazonOpenSearchServerless-failed".into()),
            ),
            (
                "failed/processing-failed/http-endpoint-failed/x",
                KeyType::Conflicting(ProcessingFailed, HttpEndpointFailed),
            ),
        ]) {
            assert_eq!(key_error_type(key), want, "{key}");
        }
        assert_eq!(ProcessingFailed.origin(), Origin::Processing);
        assert_eq!(FormatConversionFailed.origin(), Origin::Delivery);
        assert_eq!(OpenSearchFailed.as_str(), "AmazonOpenSearchService-failed");
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
