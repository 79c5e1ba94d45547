//! Record payloads: base64, optional gzip or zstd (capped alike), and what kind of payload is
//! inside.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_wire::codec::{self, Codec};
use firetail_wire::format::{self, UnsupportedVersion, Version};
use firetail_wire::gzip::InflateError;
use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

/// Why a record's payload could not be read; the record becomes `ProcessingFailed` and
/// Firehose keeps its original bytes in the backup bucket.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("record data is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("{0} (cap: FIRETAIL_MAX_DECOMPRESSED_BYTES)")]
    Inflate(#[from] InflateError),
}

/// A record's bytes after base64 and decompression.
#[derive(Debug)]
pub struct Decoded {
    /// The bytes exactly as the producer sent them (needed for re-ingest).
    pub raw: Vec<u8>,
    /// The decompressed payload when `raw` was gzip or zstd.
    pub inflated: Option<Vec<u8>>,
    /// The codec of `raw`, if any.
    pub codec: Option<Codec>,
}

impl Decoded {
    pub fn payload(&self) -> &[u8] {
        self.inflated.as_deref().unwrap_or(&self.raw)
    }

    pub fn was_gzip(&self) -> bool {
        self.codec == Some(Codec::Gzip)
    }
}

/// Decodes base64 and, when the bytes start with the gzip or zstd magic, decompresses them
/// without ever holding more than `max_decompressed_bytes` (+1) of output.
pub fn decode_record(
    data_b64: &str,
    max_decompressed_bytes: usize,
) -> Result<Decoded, DecodeError> {
    decode_raw(STANDARD.decode(data_b64)?, max_decompressed_bytes)
}

/// The record's bytes, out of base64 only (a record re-ingested without being read).
pub fn raw_bytes(data_b64: &str) -> Result<Vec<u8>, DecodeError> {
    Ok(STANDARD.decode(data_b64)?)
}

/// [`decode_record`] for bytes already out of base64.
pub fn decode_raw(raw: Vec<u8>, max_decompressed_bytes: usize) -> Result<Decoded, DecodeError> {
    let codec = Codec::of(&raw);
    let inflated = match codec {
        Some(c) => {
            let mut out = Vec::new();
            codec::decompress_into(c, &raw, max_decompressed_bytes, &mut out)?;
            Some(out)
        }
        None => None,
    };
    Ok(Decoded {
        raw,
        inflated,
        codec,
    })
}

/// A CloudWatch Logs subscription message; its events are kept as raw JSON, parsed one at a
/// time when rendered, so an envelope of a million tiny events costs a pointer each, not a
/// parsed event each.
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html>
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CwlEnvelope<'a> {
    #[serde(borrow)]
    pub message_type: Cow<'a, str>,
    #[serde(default, borrow)]
    pub owner: Cow<'a, str>,
    #[serde(default, borrow)]
    pub log_group: Cow<'a, str>,
    #[serde(default, borrow)]
    pub log_stream: Cow<'a, str>,
    #[serde(default, borrow)]
    pub subscription_filters: Vec<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub log_events: Vec<&'a RawValue>,
}

impl CwlEnvelope<'_> {
    /// Writes the envelope with its events from `first` on, as JSON (a re-ingest payload).
    pub fn write_remainder(&self, first: usize, out: impl std::io::Write) -> std::io::Result<()> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'e> {
            message_type: &'e str,
            owner: &'e str,
            log_group: &'e str,
            log_stream: &'e str,
            subscription_filters: &'e [Cow<'e, str>],
            log_events: &'e [&'e RawValue],
        }
        let envelope = Out {
            message_type: &self.message_type,
            owner: &self.owner,
            log_group: &self.log_group,
            log_stream: &self.log_stream,
            subscription_filters: &self.subscription_filters,
            log_events: self.log_events.get(first..).unwrap_or_default(),
        };
        serde_json::to_writer(out, &envelope).map_err(std::io::Error::other)
    }
}

/// One event of a CloudWatch Logs subscription message.
#[derive(Debug, Default, Deserialize)]
pub struct CwlEvent<'a> {
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, borrow)]
    pub message: Cow<'a, str>,
}

impl<'a> CwlEvent<'a> {
    /// Parses one raw event; one that is not an event object is an empty message.
    pub fn parse(raw: &'a RawValue) -> CwlEvent<'a> {
        serde_json::from_str(raw.get()).unwrap_or_default()
    }
}

/// What a payload holds.
#[derive(Debug)]
pub enum Payload<'a> {
    /// A CloudWatch Logs subscription message (`DATA_MESSAGE` or `CONTROL_MESSAGE`).
    CloudWatch(CwlEnvelope<'a>),
    /// One JSON object per line (a single event, or a packed NDJSON record): the text, read
    /// line by line with `firetail_wire::format::lines`.
    Lines(&'a [u8]),
    /// A format version 2 record: its header line, and the event lines after it.
    V2 {
        header: RecordHeader<'a>,
        events: &'a [u8],
    },
    /// Not JSON lines: the whole payload is one message.
    Text(&'a [u8]),
    /// Nothing but white space.
    Empty,
    /// A firetail record of a layout version this build does not read.
    Unsupported(UnsupportedVersion),
    /// A version 2 record whose header cannot be read: why.
    BadHeader(String),
}

impl<'a> Payload<'a> {
    /// What `payload` holds; never fails — what is not recognised is text.
    pub fn of(payload: &'a [u8]) -> Payload<'a> {
        let trimmed = payload.trim_ascii();
        if trimmed.is_empty() {
            return Payload::Empty;
        }
        if trimmed[0] == b'{'
            && looks_like_cloudwatch(trimmed)
            && let Ok(env) = serde_json::from_slice::<CwlEnvelope<'a>>(trimmed)
        {
            return Payload::CloudWatch(env);
        }
        if trimmed[0] != b'{' {
            return Payload::Text(trimmed);
        }
        match format::version_of(trimmed) {
            Ok(Version::V1) => Payload::Lines(trimmed),
            Ok(Version::V2) => {
                // `version_of` tolerates white space the sidecar never writes; the header must
                // be exactly what `firetail_wire::v2` writes for the events to be read.
                let Some((line, events)) = firetail_wire::v2::split_header(trimmed) else {
                    return Payload::BadHeader(
                        "a format 2 record whose header is not written as the sidecar writes it"
                            .into(),
                    );
                };
                match serde_json::from_slice::<RecordHeader<'a>>(line) {
                    Ok(header) => Payload::V2 { header, events },
                    Err(e) => Payload::BadHeader(format!(
                        "a format 2 record whose header is not valid JSON: {e}"
                    )),
                }
            }
            Err(unsupported) => Payload::Unsupported(unsupported),
        }
    }
}

/// What a version 2 record's header states for its events (`firetail_wire::v2`): values kept
/// as raw JSON, given to each event that does not carry its own.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct RecordHeader<'a> {
    #[serde(default, borrow)]
    pub stream: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub file: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub kubernetes: Option<&'a RawValue>,
}

/// CloudWatch Logs writes `messageType` first; checking the head avoids a failed full parse
/// of every ordinary event.
fn looks_like_cloudwatch(payload: &[u8]) -> bool {
    let head = &payload[..payload.len().min(64)];
    memchr::memmem::find(head, b"\"messageType\"").is_some()
        && memchr::memmem::find(payload, b"\"logEvents\"").is_some()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_wire::gzip::gzip;

    fn b64(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }

    #[test]
    fn plain_and_gzip() {
        let d = decode_record(&b64(b"hello"), 1024).unwrap();
        assert_eq!(d.payload(), b"hello");
        assert!(!d.was_gzip());
        let gz = gzip(b"{\"a\":1}\n{\"a\":2}\n", flate2::Compression::fast());
        let d = decode_record(&b64(&gz), 1024).unwrap();
        assert!(d.was_gzip());
        assert_eq!(d.raw, gz);
        assert!(
            matches!(Payload::of(d.payload()), Payload::Lines(l) if format::lines(l).count() == 2)
        );
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_record("not base64!!", 10),
            Err(DecodeError::Base64(_))
        ));
        let gz = gzip(&[b'x'; 10_000], flate2::Compression::best());
        assert!(matches!(
            decode_record(&b64(&gz[..gz.len() / 2]), 1 << 20),
            Err(DecodeError::Inflate(InflateError::Corrupt(_)))
        ));
        assert!(matches!(
            decode_record(&b64(&gz), 9_999),
            Err(DecodeError::Inflate(InflateError::TooLarge {
                limit_bytes: 9_999
            }))
        ));
        assert!(decode_record(&b64(&gz), 10_000).is_ok());
        assert!(matches!(
            decode_record(&b64(&[0x1f, 0x8b]), 100),
            Err(DecodeError::Inflate(InflateError::Corrupt(_)))
        ));
    }

    #[test]
    fn classifies_payloads() {
        assert!(matches!(Payload::of(b"  \n"), Payload::Empty));
        assert!(
            matches!(Payload::of(b"plain text\nsecond line\n"), Payload::Text(t) if t == b"plain text\nsecond line")
        );
        assert!(matches!(Payload::of(b"[1,2]"), Payload::Text(_)));
        assert!(
            matches!(Payload::of(b"{\"log\":\"x\"}\r\n\r\n{\"log\":\"y\"}"), Payload::Lines(l) if format::lines(l).collect::<Vec<_>>() == vec![&b"{\"log\":\"x\"}"[..], b"{\"log\":\"y\"}"])
        );
        let cwl = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        assert!(
            matches!(Payload::of(cwl), Payload::CloudWatch(e) if e.message_type == "CONTROL_MESSAGE")
        );
        // A later layout version than this build reads: refused by what it declares.
        assert!(
            matches!(Payload::of(b"{\"firetail_format\":9}\n{\"log\":\"x\"}\n"), Payload::Unsupported(u) if u.declared == "9")
        );
        // Looks like CloudWatch but is not: falls back to lines, nothing lost.
        assert!(
            matches!(Payload::of(br#"{"messageType":"x","logEvents":5}"#), Payload::Lines(l) if format::lines(l).count() == 1)
        );
    }
}
