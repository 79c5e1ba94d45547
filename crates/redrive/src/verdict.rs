//! What to do with one error record: send it (as it is, or re-stamped for Datadog), leave it
//! out on request, or report it and leave it in place. Pure.
//!
//! Why "fail again" exists: Firehose writes a record to the backup bucket once its retries are
//! spent. Putting back a record that fails for a reason of its own (not an outage) only makes
//! Firehose write it to the bucket again, where the next redrive would find it: a loop that
//! bills every turn. Such records are reported and left in place.
//!
//! Why "too old" exists: Datadog drops logs older than 18 hours *after* its intake answered
//! 200 ([`crate::age`]), so Firehose would count them delivered and the object would be marked
//! done with the only copy of the logs gone. For a Datadog stream every event's time is read
//! first; a record with an event older than [`Rules::max_event_age_ms`] is re-stamped when
//! [`Rules::restamp`] is set and left in place otherwise.

use std::collections::BTreeSet;

use firetail_wire::Destination;
use firetail_wire::codec::{Codec, Zstder, maybe_decompress};

/// zstd level for re-stamped v2-zstd records (the sidecar's default).
const ZSTD_RESTAMP_LEVEL: i32 = 3;
use firetail_wire::time::format_rfc3339_ms;

use crate::age::{self, DEFAULT_MAX_EVENT_AGE_HOURS, HOUR_MS, Inspection, Shape, Unreadable};
use crate::parse::{ErrorRecord, Origin};

/// Largest inflated payload inspected when reading the events of a gzip record.
const MAX_INSPECT_BYTES: usize = 64 * 1024 * 1024;

/// Which records the user asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only records that arrived at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only records that arrived before this time (ms since the epoch).
    pub until_ms: Option<i64>,
    /// Only these `errorCode`s; empty means all.
    pub error_codes: BTreeSet<String>,
}

/// How to judge records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// What the stream delivers to; `None` when not said: only the rules that hold for every
    /// destination apply (and Datadog's window for records that are the transform's Datadog
    /// output, which only a Datadog stream carries).
    pub destination: Option<Destination>,
    /// Resend documents OpenSearch rejected with a 4xx (after the mapping was fixed).
    pub resend_rejected: bool,
    /// Largest record Firehose accepts.
    pub max_record_bytes: usize,
    /// For Datadog: events older than this are not sent as they are.
    pub max_event_age_ms: i64,
    /// For Datadog: send records with too-old events re-stamped to now (the original time kept
    /// in [`age::ORIGINAL_TIMESTAMP`]) instead of leaving them.
    pub restamp: bool,
}

impl Rules {
    /// The rules that hold for any stream: no destination, nothing resent that was rejected,
    /// Datadog's window at its default.
    pub fn new(max_record_bytes: usize) -> Self {
        Rules {
            destination: None,
            resend_rejected: false,
            max_record_bytes,
            max_event_age_ms: DEFAULT_MAX_EVENT_AGE_HOURS as i64 * HOUR_MS,
            restamp: false,
        }
    }
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Put it back into the stream as it is.
    Send,
    /// Put it back with its old events re-stamped: `data` replaces the record.
    Restamp {
        /// The record to send.
        data: Vec<u8>,
        /// Events whose time Datadog will read as the redrive's.
        events: usize,
    },
    /// Outside the requested time range or error codes; it stays in the bucket.
    Filtered,
    /// The destination would fail it again; report it, leave it in the bucket.
    WillFailAgain(String),
    /// An event is older than Datadog keeps and `--restamp` was not given; report, leave.
    TooOld(String),
    /// A Datadog record whose event times cannot be read, so it cannot be shown to be inside
    /// the window; report, leave.
    NoEventTime(String),
    /// Not what its writer writes (gzip that does not inflate, transform output that does not
    /// parse); report, leave.
    Corrupt(String),
}

/// Decides what to do with `record`, at `now_ms` (ms since the epoch).
pub fn verdict(record: &ErrorRecord, filter: &Filter, rules: &Rules, now_ms: i64) -> Verdict {
    if !filter.error_codes.is_empty() && !filter.error_codes.contains(&record.error_code) {
        return Verdict::Filtered;
    }
    if filter.since_ms.is_some() || filter.until_ms.is_some() {
        // Without an arrival time the record cannot be shown to be in range.
        let Some(at) = record.arrival_ms else {
            return Verdict::Filtered;
        };
        if filter.since_ms.is_some_and(|s| at < s) || filter.until_ms.is_some_and(|u| at >= u) {
            return Verdict::Filtered;
        }
    }
    if let Some(why) = oversized(record.data.len(), rules) {
        return Verdict::WillFailAgain(why);
    }
    // Only compressed payloads (gzip, or zstd from a v2-zstd sidecar) can fail to decode; a
    // plain payload is inspected as it is. The same cap as the transform's.
    let payload = match maybe_decompress(&record.data, MAX_INSPECT_BYTES) {
        Ok((p, _)) => p,
        Err(why) => return Verdict::Corrupt(format!("{why}; the transform would fail it again")),
    };
    let datadog = rules.destination == Some(Destination::Datadog);
    let inspection = match age::inspect(&payload) {
        Ok(i) => i,
        Err(Unreadable::Corrupt(why)) => {
            return Verdict::Corrupt(format!(
                "the transform's marker is present but the record is corrupt: {why}"
            ));
        }
        // The transform passes any marked payload through and fails a record of an unknown
        // layout until it is upgraded; only Datadog needs the times.
        Err(other) if datadog => return Verdict::NoEventTime(other.to_string()),
        Err(_) => return Verdict::Send,
    };
    if let Some(why) = wrong_destination(inspection.shape, rules.destination) {
        return Verdict::WillFailAgain(why);
    }
    if rules.destination == Some(Destination::OpenSearch) {
        let events = inspection.times.len();
        if events > 1 {
            return Verdict::WillFailAgain(format!(
                "packed record ({events} events) cannot become one OpenSearch document; \
                 the sidecar must use FIRETAIL_RECORD_FORMAT=json for OpenSearch"
            ));
        }
    }
    if record.origin == Origin::OpenSearch && !rules.resend_rejected && is_rejection(record) {
        return Verdict::WillFailAgain(format!(
            "OpenSearch rejected the document ({}); fix the index mapping, then redrive with \
             --resend-rejected",
            record.error_code
        ));
    }
    let datadog_window =
        datadog || (rules.destination.is_none() && inspection.shape == Shape::DatadogOutput);
    if datadog_window {
        return window(record, &payload, &inspection, rules, now_ms);
    }
    Verdict::Send
}

/// Datadog's window: send, re-stamp, or leave a record by its events' times.
fn window(
    record: &ErrorRecord,
    payload: &[u8],
    inspection: &Inspection,
    rules: &Rules,
    now_ms: i64,
) -> Verdict {
    let cutoff = now_ms - rules.max_event_age_ms;
    let total = inspection.times.len();
    let old = inspection.older_than(cutoff);
    let untimed = inspection.untimed();
    if old == 0 && untimed == 0 {
        return Verdict::Send;
    }
    let hours = rules.max_event_age_ms as f64 / HOUR_MS as f64;
    if !rules.restamp {
        if untimed > 0 {
            return Verdict::NoEventTime(format!(
                "{untimed} of {total} events carry no time the transform reads, so the record \
                 cannot be shown to be inside Datadog's 18-hour window (the transform would \
                 stamp them with their redrive); redrive with --restamp to send it so"
            ));
        }
        let oldest = inspection.oldest().unwrap_or(cutoff);
        return Verdict::TooOld(format!(
            "{old} of {total} events older than {hours} h (oldest {}, {:.1} h ago): Datadog \
             would drop them; --restamp sends them stamped now",
            format_rfc3339_ms(oldest),
            (now_ms - oldest) as f64 / HOUR_MS as f64,
        ));
    }
    let (mut data, changed) = match age::restamp(payload, inspection, cutoff, now_ms) {
        Ok(restamped) => restamped,
        Err(why) => return Verdict::Corrupt(why.to_string()),
    };
    // Compressed again as it came, so the record stays as small as the producer made it.
    match Codec::of(&record.data) {
        Some(Codec::Gzip) => {
            data = firetail_wire::gzip::gzip(&data, flate2::Compression::default())
        }
        Some(Codec::Zstd) => {
            let mut out = Vec::with_capacity(firetail_wire::codec::zstd_bound(data.len()));
            Zstder::new(ZSTD_RESTAMP_LEVEL).zstd_into(&data, &mut out);
            data = out;
        }
        None => {}
    }
    if let Some(why) = oversized(data.len(), rules) {
        return Verdict::WillFailAgain(format!("re-stamped, {why}"));
    }
    // Untimed events get the redrive's time from the transform: re-stamped all the same.
    Verdict::Restamp {
        data,
        events: changed + untimed,
    }
}

fn oversized(len: usize, rules: &Rules) -> Option<String> {
    (len > rules.max_record_bytes).then(|| {
        format!(
            "record is {len} bytes, over Firehose's {}-byte record limit",
            rules.max_record_bytes
        )
    })
}

/// Transform output meant for another destination: the transform passes it through as it is,
/// so the stream's destination would get a shape it does not read.
fn wrong_destination(shape: Shape, destination: Option<Destination>) -> Option<String> {
    let meant = match (shape, destination?) {
        (Shape::DatadogOutput, Destination::OpenSearch | Destination::S3) => "Datadog",
        (Shape::DocumentOutput, Destination::Datadog) => "OpenSearch or S3",
        _ => return None,
    };
    Some(format!(
        "{shape} is for {meant}; the transform passes it through unchanged, so a {} stream \
         would deliver the wrong shape",
        destination?
    ))
}

/// An OpenSearch answer about the document itself (4xx other than throttling or timeout),
/// which resending the same document cannot change.
fn is_rejection(record: &ErrorRecord) -> bool {
    match record.error_code.trim().parse::<u16>() {
        Ok(status) => (400..500).contains(&status) && status != 429 && status != 408,
        Err(_) => {
            let c = record.error_code.to_ascii_lowercase();
            c.contains("mapper_parsing") || c.contains("illegal_argument")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_wire::gzip::{is_gzip, maybe_gunzip};
    use std::io::Write as _;

    fn rec(code: &str, origin: Origin, data: &[u8]) -> ErrorRecord {
        ErrorRecord {
            attempts_made: Some(1),
            arrival_ms: Some(1_000),
            error_code: code.into(),
            error_message: String::new(),
            attempt_ending_ms: None,
            data: data.to_vec(),
            origin,
        }
    }

    /// 2026-12-01T10:00:00Z.
    const NOW: i64 = 1_764_583_200_000;

    fn judge(record: &ErrorRecord, filter: &Filter, rules: &Rules) -> Verdict {
        verdict(record, filter, rules, NOW)
    }

    fn rules(destination: Option<Destination>) -> Rules {
        Rules {
            destination,
            ..Rules::new(1_000 * 1024)
        }
    }

    fn gzip(s: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(s).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn filters_by_code_and_time() {
        let r = rec("HttpEndpoint.DestinationException", Origin::Delivery, b"x");
        let none = Filter::default();
        let any = rules(None);
        assert_eq!(judge(&r, &none, &any), Verdict::Send);
        let codes = Filter {
            error_codes: ["Lambda.FunctionError".to_owned()].into(),
            ..Filter::default()
        };
        assert_eq!(judge(&r, &codes, &any), Verdict::Filtered);
        let window = |since, until| Filter {
            since_ms: since,
            until_ms: until,
            ..Filter::default()
        };
        assert_eq!(judge(&r, &window(Some(1_000), None), &any), Verdict::Send);
        assert_eq!(
            judge(&r, &window(Some(1_001), None), &any),
            Verdict::Filtered
        );
        assert_eq!(
            judge(&r, &window(None, Some(1_000)), &any),
            Verdict::Filtered
        );
        let mut undated = r.clone();
        undated.arrival_ms = None;
        assert_eq!(
            judge(&undated, &window(Some(0), None), &any),
            Verdict::Filtered
        );
    }

    #[test]
    fn packed_records_fail_again_only_for_opensearch() {
        // Young events: Datadog's window does not hold them back.
        let mut ndjson = sidecar_event(YOUNG);
        ndjson.push(b'\n');
        ndjson.extend(sidecar_event(YOUNG));
        ndjson.push(b'\n');
        for data in [ndjson.clone(), gzip(&ndjson)] {
            let r = rec("Lambda.ProcessingFailed", Origin::Processing, &data);
            assert!(matches!(
                judge(&r, &Filter::default(), &rules(Some(Destination::OpenSearch))),
                Verdict::WillFailAgain(ref why) if why.contains("packed record (2 events)")
            ));
            assert_eq!(
                judge(&r, &Filter::default(), &rules(Some(Destination::Datadog))),
                Verdict::Send
            );
        }
        let single = rec(
            "Lambda.ProcessingFailed",
            Origin::Processing,
            b"{\"log\":\"a\"}\n",
        );
        assert_eq!(
            judge(
                &single,
                &Filter::default(),
                &rules(Some(Destination::OpenSearch))
            ),
            Verdict::Send
        );
        let cwl = rec(
            "Lambda.FunctionError",
            Origin::Processing,
            &gzip(br#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1"},{"id":"2"}]}"#),
        );
        assert!(matches!(
            judge(
                &cwl,
                &Filter::default(),
                &rules(Some(Destination::OpenSearch))
            ),
            Verdict::WillFailAgain(_)
        ));
    }

    #[test]
    fn corrupt_gzip_is_corrupt_and_oversized_records_fail_again() {
        let mut broken = gzip(b"hello world hello world");
        broken.truncate(broken.len() - 6);
        let r = rec("Lambda.ProcessingFailed", Origin::Processing, &broken);
        assert!(matches!(
            judge(&r, &Filter::default(), &rules(None)),
            Verdict::Corrupt(ref why) if why.contains("gzip")
        ));
        let big = rec("503", Origin::Delivery, &vec![b'x'; 1_000 * 1024 + 1]);
        assert!(matches!(
            judge(&big, &Filter::default(), &rules(None)),
            Verdict::WillFailAgain(ref why) if why.contains("record limit")
        ));
    }

    #[test]
    fn opensearch_rejections_need_resend_rejected() {
        let doc = b"{\"message\":\"x\"}";
        let rejected = rec("400", Origin::OpenSearch, doc);
        let mapping = rec("mapper_parsing_exception", Origin::OpenSearch, doc);
        let throttled = rec("429", Origin::OpenSearch, doc);
        let down = rec("503", Origin::OpenSearch, doc);
        let r = rules(Some(Destination::OpenSearch));
        let f = Filter::default();
        assert!(matches!(
            judge(&rejected, &f, &r),
            Verdict::WillFailAgain(_)
        ));
        assert!(matches!(judge(&mapping, &f, &r), Verdict::WillFailAgain(_)));
        assert_eq!(judge(&throttled, &f, &r), Verdict::Send);
        assert_eq!(judge(&down, &f, &r), Verdict::Send);
        let forced = Rules {
            resend_rejected: true,
            ..r
        };
        assert_eq!(judge(&rejected, &f, &forced), Verdict::Send);
    }

    const OLD: i64 = NOW - 20 * HOUR_MS;
    const YOUNG: i64 = NOW - HOUR_MS;

    /// The transform's Datadog output (marker first) of one log per time in `times`, gzip.
    fn datadog_output(times: &[i64]) -> Vec<u8> {
        let events: Vec<String> = times
            .iter()
            .enumerate()
            .map(|(i, ms)| {
                let log =
                    format!(r#"{{"firetail_transform":1,"message":"m{i}","timestamp":{ms}}}"#);
                format!(
                    r#"{{"id":"{i}","timestamp":{ms},"message":{}}}"#,
                    serde_json::Value::from(log)
                )
            })
            .collect();
        gzip(
            format!(
                r#"{{"firetail_transform":1,"messageType":"DATA_MESSAGE","owner":"1","logGroup":"firetail","logStream":"s","subscriptionFilters":["firetail"],"logEvents":[{}]}}"#,
                events.join(",")
            )
            .as_bytes(),
        )
    }

    fn sidecar_event(ms: i64) -> Vec<u8> {
        format!(
            r#"{{"time":"{}","stream":"file","log":"x","file":"/f"}}"#,
            format_rfc3339_ms(ms)
        )
        .into_bytes()
    }

    fn datadog() -> Rules {
        rules(Some(Destination::Datadog))
    }

    /// A v2-zstd record as the sidecar writes it (header, then events with epoch-ms times).
    fn v2_zstd(times: &[i64]) -> Vec<u8> {
        use firetail_wire::event::EventRef;
        use firetail_wire::v2;
        let header = v2::Header {
            stream: "stdout",
            file: "/var/log/app/a.log",
            kubernetes: br#"{"namespace_name":"shop","pod_name":"api-1"}"#,
        };
        let mut plain = Vec::new();
        v2::write_header(&header, &mut plain);
        for (i, &ms) in times.iter().enumerate() {
            plain.push(b'\n');
            let line = format!("line {i}");
            let ev = EventRef {
                line: line.as_bytes(),
                time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64),
                file: header.file,
                part: None,
            };
            v2::encode(&ev, &header, &header, &mut plain);
        }
        plain.push(b'\n');
        let mut out = Vec::new();
        Zstder::new(3).zstd_into(&plain, &mut out);
        out
    }

    #[test]
    fn v2_zstd_records_are_inspected_and_restamped_as_zstd() {
        let f = Filter::default();
        let old = rec(
            "Lambda.ProcessingFailed",
            Origin::Processing,
            &v2_zstd(&[YOUNG, OLD]),
        );
        assert!(matches!(judge(&old, &f, &datadog()), Verdict::TooOld(_)));
        let young = rec(
            "Lambda.ProcessingFailed",
            Origin::Processing,
            &v2_zstd(&[YOUNG, YOUNG]),
        );
        assert_eq!(judge(&young, &f, &datadog()), Verdict::Send);
        let restamp = Rules {
            restamp: true,
            ..datadog()
        };
        let Verdict::Restamp { data, events } = judge(&old, &f, &restamp) else {
            panic!("not re-stamped")
        };
        assert_eq!(events, 1);
        let (plain, codec) = maybe_decompress(&data, 1 << 20).unwrap();
        assert_eq!(codec, Some(Codec::Zstd), "zstd stays zstd");
        assert!(
            plain.starts_with(firetail_wire::v2::HEADER_PREFIX),
            "header first"
        );
        assert_eq!(
            age::inspect(&plain).unwrap().times,
            [Some(YOUNG), Some(NOW)]
        );
    }

    #[test]
    fn datadog_records_with_old_events_are_left_unless_restamped() {
        let f = Filter::default();
        let young = rec(
            "HttpEndpoint.DestinationException",
            Origin::Delivery,
            &datadog_output(&[YOUNG, YOUNG]),
        );
        assert_eq!(judge(&young, &f, &datadog()), Verdict::Send);
        let mixed = rec(
            "HttpEndpoint.DestinationException",
            Origin::Delivery,
            &datadog_output(&[YOUNG, OLD]),
        );
        let Verdict::TooOld(why) = judge(&mixed, &f, &datadog()) else {
            panic!("not too old")
        };
        assert!(
            why.starts_with("1 of 2 events older than 17 h (oldest "),
            "{why}"
        );
        assert!(why.contains("20.0 h ago"), "{why}");
        // The shape alone says Datadog: the window holds without --destination too.
        assert!(matches!(
            judge(&mixed, &f, &rules(None)),
            Verdict::TooOld(_)
        ));
        // Other destinations have no such window.
        let doc = rec("503", Origin::OpenSearch, &sidecar_event(OLD));
        assert_eq!(
            judge(&doc, &f, &rules(Some(Destination::OpenSearch))),
            Verdict::Send
        );

        let restamp = Rules {
            restamp: true,
            ..datadog()
        };
        let Verdict::Restamp { data, events } = judge(&mixed, &f, &restamp) else {
            panic!("not re-stamped")
        };
        assert_eq!(events, 1);
        assert!(is_gzip(&data), "gzip stays gzip");
        let inflated = maybe_gunzip(&data, 1 << 20).unwrap();
        assert!(
            inflated.starts_with(firetail_wire::output::MARKER_PREFIX),
            "marker first"
        );
        assert_eq!(
            age::inspect(&inflated).unwrap().times,
            [Some(YOUNG), Some(NOW)]
        );

        // A wider window lets the same record through.
        let wide = Rules {
            max_event_age_ms: 21 * HOUR_MS,
            ..datadog()
        };
        assert_eq!(judge(&mixed, &f, &wide), Verdict::Send);
    }

    #[test]
    fn original_records_are_judged_by_the_time_the_transform_reads() {
        let f = Filter::default();
        let mut ndjson = sidecar_event(YOUNG);
        ndjson.push(b'\n');
        ndjson.extend(sidecar_event(OLD));
        let old = rec("Lambda.FunctionError", Origin::Processing, &gzip(&ndjson));
        assert!(matches!(judge(&old, &f, &datadog()), Verdict::TooOld(_)));
        assert_eq!(
            judge(&old, &f, &rules(None)),
            Verdict::Send,
            "no window without Datadog"
        );
        let restamp = Rules {
            restamp: true,
            ..datadog()
        };
        assert!(matches!(
            judge(&old, &f, &restamp),
            Verdict::Restamp { events: 1, .. }
        ));

        // No time at all: cannot be shown to be young; with --restamp the transform stamps it.
        let untimed = rec(
            "Lambda.FunctionError",
            Origin::Processing,
            br#"{"log":"no time"}"#,
        );
        let Verdict::NoEventTime(why) = judge(&untimed, &f, &datadog()) else {
            panic!("not untimed")
        };
        assert!(why.starts_with("1 of 1 events carry no time"), "{why}");
        assert_eq!(
            judge(&untimed, &f, &restamp),
            Verdict::Restamp {
                data: br#"{"log":"no time"}"#.to_vec(),
                events: 1
            }
        );
    }

    #[test]
    fn corrupt_or_misdirected_transform_output_is_reported() {
        let f = Filter::default();
        let corrupt = rec(
            "HttpEndpoint.DestinationException",
            Origin::Delivery,
            &gzip(br#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":"#),
        );
        for r in [rules(None), datadog(), rules(Some(Destination::OpenSearch))] {
            assert!(
                matches!(judge(&corrupt, &f, &r), Verdict::Corrupt(ref why) if why.contains("marker is present")),
                "{r:?}"
            );
        }
        let no_time = rec("HttpEndpoint.DestinationException", Origin::Delivery, &gzip(br#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":[{"id":"0","message":"{\"firetail_transform\":1}"}]}"#));
        assert!(
            matches!(judge(&no_time, &f, &datadog()), Verdict::Corrupt(ref why) if why.contains("no numeric timestamp"))
        );
        let future = rec(
            "HttpEndpoint.DestinationException",
            Origin::Delivery,
            br#"{"firetail_transform":2,"x":1}"#,
        );
        assert!(
            matches!(judge(&future, &f, &datadog()), Verdict::NoEventTime(ref why) if why.contains("version 2"))
        );
        assert_eq!(judge(&future, &f, &rules(None)), Verdict::Send);

        let dd = rec("400", Origin::OpenSearch, &datadog_output(&[YOUNG]));
        assert!(matches!(
            judge(&dd, &f, &rules(Some(Destination::OpenSearch))),
            Verdict::WillFailAgain(ref why) if why.contains("is for Datadog")
        ));
        let doc = rec(
            "HttpEndpoint.DestinationException",
            Origin::Delivery,
            br#"{"firetail_transform":1,"@timestamp":"2026-12-01T09:00:00.000Z","message":"m"}"#,
        );
        assert!(matches!(
            judge(&doc, &f, &datadog()),
            Verdict::WillFailAgain(ref why) if why.contains("is for OpenSearch or S3")
        ));
    }
}
