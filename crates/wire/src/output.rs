//! What the transform writes, as far as anyone else must recognise it: the marker that makes
//! the transform idempotent, the Datadog record's fixed names, and Datadog's intake limits.
//!
//! Firehose backs up a record it failed to deliver *as transformed* (`http-endpoint-failed`,
//! OpenSearch failures), so a redrive puts our own output back into the stream. The transform
//! must know it when it sees it again; guessing from the shape of the JSON would be wrong the
//! day an app logs something that looks like it. So every object the transform writes (a
//! Datadog envelope and each log in it, an OpenSearch document, each line of an S3 object)
//! *starts* with [`MARKER_KEY`] and the output layout version:
//! `{"firetail_transform":1,…`. The producers never write that: a sidecar record starts with
//! its own fields and carries the app's line as a string, Fluent Bit starts with its time key.

/// The first key of every object the transform writes.
pub const MARKER_KEY: &str = "firetail_transform";

/// The layout version of the transform's output; it changes when a field changes meaning.
pub const MARKER_VERSION: u32 = 1;

/// What an output payload (after gunzip) starts with, whatever its version.
pub const MARKER_PREFIX: &[u8] = b"{\"firetail_transform\":";

/// The version of the transform output that `payload` (plain, not gzip) starts with, or
/// `None` when it is not transform output.
pub fn marker_version(payload: &[u8]) -> Option<u32> {
    let rest = payload.strip_prefix(MARKER_PREFIX)?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 9 || !matches!(rest.get(digits), Some(b',' | b'}')) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Appends `"firetail_transform":1` (the caller writes the `{` and what follows).
pub fn write_marker(out: &mut Vec<u8>) {
    out.extend_from_slice(&MARKER_PREFIX[1..]);
    crate::json::write_uint(out, u64::from(MARKER_VERSION));
}

/// The Datadog record: always a gzip CloudWatch-Logs-style envelope of Datadog logs.
///
/// Datadog's Firehose intake splits such an envelope into its log events and sets `source`
/// from the log group name ("if the log group does not match a known AWS service pattern, the
/// log group name itself is used as the source", DataDog/documentation#35959), `aws_account`
/// from the owner and the Firehose ARN.
pub mod datadog {
    /// `logGroup` of records the transform builds (sidecar and Fluent Bit records): Datadog
    /// derives `source:firetail` from it when a log has no `ddsource`. A CloudWatch Logs
    /// record keeps its own log group.
    pub const LOG_GROUP: &str = "firetail";

    /// `subscriptionFilters` of records the transform builds.
    pub const SUBSCRIPTION_FILTER: &str = "firetail";

    /// The log's event time, epoch milliseconds (in the log and in its envelope event).
    pub const TIMESTAMP: &str = "timestamp";

    /// Where a redrive that re-stamps an old log keeps its original `timestamp`.
    pub const ORIGINAL_TIMESTAMP: &str = "firetail_original_timestamp";

    /// The envelope's list of events (`{"id","timestamp","message"}`; `message` is the log).
    pub const LOG_EVENTS: &str = "logEvents";
}

/// Datadog's Firehose intake reads at most this many events from one request and drops the
/// rest. Datadog's guide says both "an intake limit of 65,536 events per batch" and "a single
/// Kinesis payload must not be more than 65,000 log messages"; the smaller one holds.
/// <https://docs.datadoghq.com/logs/guide/send-aws-services-logs-with-the-datadog-kinesis-firehose-destination/>
pub const DATADOG_MAX_EVENTS_PER_REQUEST: usize = 65_000;

/// Datadog's recommended Firehose buffer size for its intake (2 MiB), our default.
pub const DATADOG_DEFAULT_BUFFER_MIB: usize = 2;

/// Firehose "treats these options as hints" and may buffer more than the size it is given
/// (HttpEndpointBufferingHints). By how much is not documented; we budget for a request of up
/// to this many times the hint.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_HttpEndpointBufferingHints.html>
pub const BUFFER_OVERSHOOT_FACTOR: usize = 2;

/// Bytes of record data that must carry no more than one event, for a Datadog stream whose
/// HTTP buffer is `buffer_mib` MiB: a request of [`BUFFER_OVERSHOOT_FACTOR`] buffers then holds
/// at most [`DATADOG_MAX_EVENTS_PER_REQUEST`] events. Firehose buffers the records it got from
/// the transform, so a record of `n` bytes may carry `n / bytes_per_event` events.
pub fn datadog_bytes_per_event(buffer_mib: usize) -> usize {
    (buffer_mib * 1024 * 1024 * BUFFER_OVERSHOOT_FACTOR).div_ceil(DATADOG_MAX_EVENTS_PER_REQUEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_and_near_misses() {
        let mut out = b"{".to_vec();
        write_marker(&mut out);
        out.extend_from_slice(b",\"message\":\"x\"}");
        assert_eq!(out, br#"{"firetail_transform":1,"message":"x"}"#);
        assert_eq!(marker_version(&out), Some(1));
        assert_eq!(marker_version(br#"{"firetail_transform":12}"#), Some(12));
        for not_ours in [
            &br#"{"time":"2026-01-01T00:00:00Z","log":"{\"firetail_transform\":1}"}"#[..],
            br#" {"firetail_transform":1}"#,
            br#"{"firetail_transform":"1"}"#,
            br#"{"firetail_transform":1x}"#,
            br#"{"firetail_transform":}"#,
            br#"{"firetail_transform":12345678901}"#,
            b"",
        ] {
            assert_eq!(
                marker_version(not_ours),
                None,
                "{}",
                String::from_utf8_lossy(not_ours)
            );
        }
    }

    #[test]
    fn default_buffer_allows_one_event_per_65_bytes() {
        // 2 MiB × 2 / 65,000 events.
        assert_eq!(datadog_bytes_per_event(DATADOG_DEFAULT_BUFFER_MIB), 65);
        let worst_request_events = 2 * DATADOG_DEFAULT_BUFFER_MIB * 1024 * 1024 / 65;
        assert!(worst_request_events <= DATADOG_MAX_EVENTS_PER_REQUEST);
        assert_eq!(datadog_bytes_per_event(64), 2_065);
    }
}
