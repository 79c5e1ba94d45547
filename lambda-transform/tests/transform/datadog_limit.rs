//! Datadog's intake reads at most 65,000 events of a request. At the worst density we can
//! build — a million identical short lines, which gzip to a few bytes each — the transform's
//! Datadog records, buffered by Firehose up to twice the stream's buffer hint, never make a
//! request with more. Firehose is played here as the loop it is: invoke with about a
//! processor buffer of records, put re-ingested payloads back in the queue, buffer the `Ok`
//! records by size into HTTP requests.

use crate::common::Recorder;

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::invocation::InputRecord;
use firetail_transform::{Config, FirehoseEvent, RecordResult, handle};
use firetail_wire::gzip::gzip;
use firetail_wire::limits::PROCESSOR_DEFAULT_BUFFER_BYTES;
use firetail_wire::output::{
    BUFFER_OVERSHOOT_FACTOR, DATADOG_MAX_EVENTS_PER_REQUEST, datadog_bytes_per_event,
};
use flate2::Compression;

const LINES: usize = 1_000_000;
const LINES_PER_RECORD: usize = 20_000;

/// What Datadog's intake would receive: HTTP requests of the buffered records.
#[derive(Default)]
struct Requests {
    limit_bytes: usize,
    open_bytes: usize,
    open_events: usize,
    most_events: usize,
    requests: usize,
    events: usize,
}

impl Requests {
    fn buffer(&mut self, bytes: usize, events: usize) {
        if self.open_bytes + bytes > self.limit_bytes {
            self.flush();
        }
        self.open_bytes += bytes;
        self.open_events += events;
    }

    fn flush(&mut self) {
        if self.open_events > 0 {
            self.requests += 1;
            self.events += self.open_events;
            self.most_events = self.most_events.max(self.open_events);
        }
        self.open_bytes = 0;
        self.open_events = 0;
    }
}

/// Events in a Datadog record, counted without building each log (a million of them).
fn events_in(data: &[u8]) -> usize {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "logEvents")]
        log_events: Vec<serde::de::IgnoredAny>,
    }
    let text = firetail_testkit::records::inflate(data).unwrap();
    assert_eq!(firetail_wire::output::marker_version(&text), Some(1));
    serde_json::from_slice::<Envelope>(&text)
        .unwrap()
        .log_events
        .len()
}

async fn deliver_all(buffer_mib: usize, lines: usize) -> (Requests, u64) {
    let config = Config {
        datadog_buffer_mib: buffer_mib,
        ..Config::default()
    };
    let line = br#"{"time":"2026-11-22T10:00:00Z","stream":"stdout","log":"ok","kubernetes":{"namespace_name":"shop","pod_name":"web-7d4b9c8f6d-x2x9k","container_name":"app","docker_id":"5b1d3c0e9f7a"}}"#;
    let mut ndjson = Vec::new();
    for _ in 0..LINES_PER_RECORD {
        ndjson.extend_from_slice(line);
        ndjson.push(b'\n');
    }
    let record = gzip(&ndjson, Compression::fast());
    let mut queue: VecDeque<Vec<u8>> = (0..lines / LINES_PER_RECORD)
        .map(|_| record.clone())
        .collect();

    let mut requests = Requests {
        limit_bytes: BUFFER_OVERSHOOT_FACTOR * buffer_mib * 1024 * 1024,
        ..Requests::default()
    };
    let bytes_per_event = datadog_bytes_per_event(buffer_mib);
    let mut padded = 0;
    let mut invocation = 0;
    while !queue.is_empty() {
        invocation += 1;
        let mut records = Vec::new();
        let mut size = 0;
        while let Some(next) = queue.front() {
            if !records.is_empty() && size + next.len() > PROCESSOR_DEFAULT_BUFFER_BYTES {
                break;
            }
            let data = queue.pop_front().unwrap();
            size += data.len();
            records.push(InputRecord {
                record_id: format!("{invocation}-{}", records.len()),
                approximate_arrival_timestamp: Some(1_795_341_600_000u64.into()),
                data: STANDARD.encode(data),
            });
        }
        let event = FirehoseEvent {
            invocation_id: format!("inv-{invocation}"),
            delivery_stream_arn: "arn:aws:firehose:us-east-1:123456789012:deliverystream/logs"
                .into(),
            region: "us-east-1".into(),
            records,
        };
        let sink = Recorder::accepting();
        let (response, stats) = handle(&event, &config, &sink, None).await;
        assert_eq!(stats.records_failed, 0);
        padded += stats.datadog_records_padded;
        for r in &response.records {
            if r.result == RecordResult::Ok {
                let data = STANDARD.decode(&r.data).unwrap();
                let events = events_in(&data);
                assert!(
                    events * bytes_per_event <= data.len(),
                    "{events} events in {} bytes",
                    data.len()
                );
                requests.buffer(data.len(), events);
            }
        }
        queue.extend(sink.accepted().into_iter().map(|b| b.to_vec()));
        assert!(invocation < 10_000, "the overflow loop must converge");
    }
    requests.flush();
    (requests, padded)
}

#[tokio::test]
async fn a_million_identical_short_lines_never_make_a_request_over_datadogs_limit() {
    // The default buffer with a million lines; the smallest and largest buffers Firehose
    // allows with fewer (at 64 MiB every event costs 2 KiB of padding).
    for (buffer_mib, lines) in [(2, LINES), (1, LINES / 5), (64, LINES_PER_RECORD)] {
        let (requests, padded) = deliver_all(buffer_mib, lines).await;
        assert_eq!(requests.events, lines, "every event delivered once");
        assert!(padded > 0, "the worst density needs padding");
        assert!(
            requests.most_events <= DATADOG_MAX_EVENTS_PER_REQUEST,
            "{buffer_mib} MiB: a request of {} events",
            requests.most_events
        );
        eprintln!(
            "buffer {buffer_mib} MiB: {} requests, at most {} events each",
            requests.requests, requests.most_events
        );
    }
}
