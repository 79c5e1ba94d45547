//! What to do with one error record: send it, leave it out on request, or report it because
//! the destination would fail it again. Pure.
//!
//! Why "fail again" exists: Firehose writes a record to the backup bucket once its retries are
//! spent. Putting back a record that fails for a reason of its own (not an outage) only makes
//! Firehose write it to the bucket again, where the next redrive would find it: a loop that
//! bills every turn. Such records are reported and left in place.

use std::collections::BTreeSet;

use firetail_wire::Destination;
use firetail_wire::gzip::maybe_gunzip;

use crate::parse::{ErrorRecord, Origin};

/// Largest inflated payload inspected when counting the events of a gzip record.
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
    /// destination apply.
    pub destination: Option<Destination>,
    /// Resend documents OpenSearch rejected with a 4xx (after the mapping was fixed).
    pub resend_rejected: bool,
    /// Largest record Firehose accepts.
    pub max_record_bytes: usize,
}

/// The decision for one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Put it back into the stream.
    Send,
    /// Outside the requested time range or error codes; it stays in the bucket.
    Filtered,
    /// The destination would fail it again; report it, leave it in the bucket.
    WillFailAgain(String),
}

/// Decides what to do with `record`.
pub fn verdict(record: &ErrorRecord, filter: &Filter, rules: &Rules) -> Verdict {
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
    if record.data.len() > rules.max_record_bytes {
        return Verdict::WillFailAgain(format!(
            "record is {} bytes, over Firehose's {}-byte record limit",
            record.data.len(),
            rules.max_record_bytes
        ));
    }
    // Only gzip can fail to inflate; a plain payload is inspected as it is.
    let payload = match maybe_gunzip(&record.data, MAX_INSPECT_BYTES) {
        Ok(p) => p,
        Err(why) => {
            return Verdict::WillFailAgain(format!("{why}; the transform would fail it again"));
        }
    };
    if rules.destination == Some(Destination::OpenSearch) {
        let events = count_events(&payload);
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
    Verdict::Send
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

/// Events inside a record: a CloudWatch Logs envelope counts its `logEvents`; otherwise every
/// non-blank line is one event.
fn count_events(payload: &[u8]) -> usize {
    if payload.starts_with(b"{")
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload)
    {
        return v
            .get("logEvents")
            .and_then(|e| e.as_array())
            .map_or(1, |events| events.len());
    }
    firetail_wire::format::lines(payload).count()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
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

    fn rules(destination: Option<Destination>) -> Rules {
        Rules {
            destination,
            resend_rejected: false,
            max_record_bytes: 1_000 * 1024,
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
        assert_eq!(verdict(&r, &none, &any), Verdict::Send);
        let codes = Filter {
            error_codes: ["Lambda.FunctionError".to_owned()].into(),
            ..Filter::default()
        };
        assert_eq!(verdict(&r, &codes, &any), Verdict::Filtered);
        let window = |since, until| Filter {
            since_ms: since,
            until_ms: until,
            ..Filter::default()
        };
        assert_eq!(verdict(&r, &window(Some(1_000), None), &any), Verdict::Send);
        assert_eq!(
            verdict(&r, &window(Some(1_001), None), &any),
            Verdict::Filtered
        );
        assert_eq!(
            verdict(&r, &window(None, Some(1_000)), &any),
            Verdict::Filtered
        );
        let mut undated = r.clone();
        undated.arrival_ms = None;
        assert_eq!(
            verdict(&undated, &window(Some(0), None), &any),
            Verdict::Filtered
        );
    }

    #[test]
    fn packed_records_fail_again_only_for_opensearch() {
        let ndjson = b"{\"log\":\"a\"}\n{\"log\":\"b\"}\n";
        for data in [ndjson.to_vec(), gzip(ndjson)] {
            let r = rec("Lambda.ProcessingFailed", Origin::Processing, &data);
            assert!(matches!(
                verdict(&r, &Filter::default(), &rules(Some(Destination::OpenSearch))),
                Verdict::WillFailAgain(ref why) if why.contains("packed record (2 events)")
            ));
            assert_eq!(
                verdict(&r, &Filter::default(), &rules(Some(Destination::Datadog))),
                Verdict::Send
            );
        }
        let single = rec(
            "Lambda.ProcessingFailed",
            Origin::Processing,
            b"{\"log\":\"a\"}\n",
        );
        assert_eq!(
            verdict(
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
            verdict(
                &cwl,
                &Filter::default(),
                &rules(Some(Destination::OpenSearch))
            ),
            Verdict::WillFailAgain(_)
        ));
    }

    #[test]
    fn corrupt_gzip_and_oversized_records_fail_again() {
        let mut broken = gzip(b"hello world hello world");
        broken.truncate(broken.len() - 6);
        let r = rec("Lambda.ProcessingFailed", Origin::Processing, &broken);
        assert!(matches!(
            verdict(&r, &Filter::default(), &rules(None)),
            Verdict::WillFailAgain(ref why) if why.contains("gzip")
        ));
        let big = rec("503", Origin::Delivery, &vec![b'x'; 1_000 * 1024 + 1]);
        assert!(matches!(
            verdict(&big, &Filter::default(), &rules(None)),
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
            verdict(&rejected, &f, &r),
            Verdict::WillFailAgain(_)
        ));
        assert!(matches!(
            verdict(&mapping, &f, &r),
            Verdict::WillFailAgain(_)
        ));
        assert_eq!(verdict(&throttled, &f, &r), Verdict::Send);
        assert_eq!(verdict(&down, &f, &r), Verdict::Send);
        let forced = Rules {
            resend_rejected: true,
            ..r
        };
        assert_eq!(verdict(&rejected, &f, &forced), Verdict::Send);
    }
}
