//! Record payloads: base64, optional gzip (capped), and what kind of payload is inside.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::read::MultiGzDecoder;
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a record's payload could not be read; the record becomes `ProcessingFailed` and
/// Firehose keeps its original bytes in the backup bucket.
#[derive(Debug, Error)]
pub enum DecodeError {
    #[error("record data is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("gzip payload is corrupt or truncated: {0}")]
    Gzip(std::io::Error),
    #[error(
        "gzip payload inflates past {limit_bytes} bytes (FIRETAIL_MAX_DECOMPRESSED_BYTES); refusing a possible gzip bomb"
    )]
    TooLarge { limit_bytes: usize },
}

/// A record's bytes after base64 and gzip.
#[derive(Debug)]
pub struct Decoded {
    /// The bytes exactly as the producer sent them (needed for re-ingest).
    pub raw: Vec<u8>,
    /// The inflated payload when `raw` was gzip.
    pub inflated: Option<Vec<u8>>,
}

impl Decoded {
    pub fn payload(&self) -> &[u8] {
        self.inflated.as_deref().unwrap_or(&self.raw)
    }

    pub fn was_gzip(&self) -> bool {
        self.inflated.is_some()
    }
}

/// Decodes base64 and, when the bytes start with the gzip magic, inflates them without ever
/// holding more than `max_decompressed_bytes` (+1) of output.
pub fn decode_record(
    data_b64: &str,
    max_decompressed_bytes: usize,
) -> Result<Decoded, DecodeError> {
    decode_raw(STANDARD.decode(data_b64)?, max_decompressed_bytes)
}

/// [`decode_record`] for bytes already out of base64.
pub fn decode_raw(raw: Vec<u8>, max_decompressed_bytes: usize) -> Result<Decoded, DecodeError> {
    let inflated = if raw.starts_with(&GZIP_MAGIC) {
        Some(gunzip_capped(&raw, max_decompressed_bytes)?)
    } else {
        None
    };
    Ok(Decoded { raw, inflated })
}

/// Inflates every gzip member in `bytes`, failing once the output passes `max_bytes`.
pub fn gunzip_capped(bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity((bytes.len() * 4).min(max_bytes.saturating_add(1)));
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(DecodeError::Gzip)?;
    if out.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            limit_bytes: max_bytes,
        });
    }
    Ok(out)
}

/// A CloudWatch Logs subscription message.
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html>
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CwlEnvelope {
    pub message_type: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub log_group: String,
    #[serde(default)]
    pub log_stream: String,
    #[serde(default)]
    pub subscription_filters: Vec<String>,
    #[serde(default)]
    pub log_events: Vec<CwlEvent>,
}

/// One event of a CloudWatch Logs subscription message.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CwlEvent {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub message: String,
}

/// What a payload holds.
#[derive(Debug)]
pub enum Payload<'a> {
    /// A CloudWatch Logs subscription message (`DATA_MESSAGE` or `CONTROL_MESSAGE`).
    CloudWatch(CwlEnvelope),
    /// One JSON object per line (a single event, or a packed NDJSON record).
    Lines(Vec<&'a [u8]>),
    /// Not JSON lines: the whole payload is one message.
    Text(&'a [u8]),
    /// Nothing but white space.
    Empty,
}

/// Classifies a payload; never fails — what is not recognised is text.
pub fn classify(payload: &[u8]) -> Payload<'_> {
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() {
        return Payload::Empty;
    }
    if trimmed[0] == b'{'
        && looks_like_cloudwatch(trimmed)
        && let Ok(env) = serde_json::from_slice::<CwlEnvelope>(trimmed)
    {
        return Payload::CloudWatch(env);
    }
    if trimmed[0] != b'{' {
        return Payload::Text(trimmed);
    }
    let mut lines = Vec::new();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', trimmed).chain(std::iter::once(trimmed.len()));
    for end in ends {
        let line = &trimmed[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if !line.trim_ascii().is_empty() {
            lines.push(line);
        }
        start = end + 1;
    }
    Payload::Lines(lines)
}

/// CloudWatch Logs writes `messageType` first; checking the head avoids a failed full parse
/// of every ordinary event.
fn looks_like_cloudwatch(payload: &[u8]) -> bool {
    let head = &payload[..payload.len().min(64)];
    memchr::memmem::find(head, b"\"messageType\"").is_some()
        && memchr::memmem::find(payload, b"\"logEvents\"").is_some()
}

/// Compresses `bytes` as one gzip member (one-off use; hot paths keep a [`Gzipper`]).
pub fn gzip(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut out = Vec::new();
    Gzipper::new(level).gzip_into(bytes, &mut out);
    out
}

/// A gzip writer that keeps its deflate state between records: setting up a compressor costs
/// more than compressing a small log record, so the transform reuses one.
pub struct Gzipper {
    deflate: flate2::Compress,
}

impl std::fmt::Debug for Gzipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gzipper")
    }
}

impl Gzipper {
    pub fn new(level: flate2::Compression) -> Self {
        Gzipper {
            deflate: flate2::Compress::new(level, false),
        }
    }

    /// Appends `input` as one gzip member (RFC 1952) to `out`.
    pub fn gzip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        // Fixed header: no name, mtime 0 (reproducible output), OS unknown.
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate.reset();
        let mut consumed = 0;
        loop {
            // Log JSON deflates 5-20x; start small and let the Vec double if it must, so an
            // invocation's outputs do not hold reserved-but-unused memory.
            out.reserve((input.len() - consumed) / 8 + 64);
            let before = self.deflate.total_in();
            let status =
                self.deflate
                    .compress_vec(&input[consumed..], out, flate2::FlushCompress::Finish);
            consumed += usize::try_from(self.deflate.total_in() - before).unwrap_or(0);
            match status {
                Ok(flate2::Status::StreamEnd) => break,
                Ok(_) => continue,
                // Deflate into memory has no failure mode other than misuse; stop rather
                // than spin.
                Err(_) => break,
            }
        }
        let mut crc = flate2::Crc::new();
        crc.update(input);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
        assert!(matches!(classify(d.payload()), Payload::Lines(l) if l.len() == 2));
    }

    #[test]
    fn reused_gzipper_writes_valid_members() {
        let mut g = Gzipper::new(flate2::Compression::fast());
        let mut out = Vec::new();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for input in [&b""[..], b"short", &big, b"again"] {
            out.clear();
            g.gzip_into(input, &mut out);
            assert_eq!(gunzip_capped(&out, 1 << 20).unwrap(), input);
        }
    }

    #[test]
    fn concatenated_members_are_one_payload() {
        let mut gz = gzip(b"{\"a\":1}\n", flate2::Compression::fast());
        gz.extend(gzip(b"{\"a\":2}\n", flate2::Compression::fast()));
        assert_eq!(gunzip_capped(&gz, 100).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
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
            Err(DecodeError::Gzip(_))
        ));
        assert!(matches!(
            decode_record(&b64(&gz), 9_999),
            Err(DecodeError::TooLarge { limit_bytes: 9_999 })
        ));
        assert!(decode_record(&b64(&gz), 10_000).is_ok());
        assert!(matches!(
            decode_record(&b64(&[0x1f, 0x8b]), 100),
            Err(DecodeError::Gzip(_))
        ));
    }

    #[test]
    fn classifies_payloads() {
        assert!(matches!(classify(b"  \n"), Payload::Empty));
        assert!(
            matches!(classify(b"plain text\nsecond line\n"), Payload::Text(t) if t == b"plain text\nsecond line")
        );
        assert!(matches!(classify(b"[1,2]"), Payload::Text(_)));
        assert!(
            matches!(classify(b"{\"log\":\"x\"}\r\n\r\n{\"log\":\"y\"}"), Payload::Lines(l) if l == vec![&b"{\"log\":\"x\"}"[..], b"{\"log\":\"y\"}"])
        );
        let cwl = br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1,"message":"CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}"#;
        assert!(
            matches!(classify(cwl), Payload::CloudWatch(e) if e.message_type == "CONTROL_MESSAGE")
        );
        // Looks like CloudWatch but is not: falls back to lines, nothing lost.
        assert!(
            matches!(classify(br#"{"messageType":"x","logEvents":5}"#), Payload::Lines(l) if l.len() == 1)
        );
    }
}
