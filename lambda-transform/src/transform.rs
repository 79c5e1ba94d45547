//! The pure transform: a Firehose invocation in, a result for every record out.
//!
//! No I/O happens here. Records that cannot go back in this response (the 6 MB budget, or the
//! tail of a packed record whose output would pass the record limit) come back as re-ingest
//! payloads; the shell in `lib.rs` sends them and settles the final result.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use serde::Serialize;
use tracing::warn;

use crate::config::{Config, Destination, S3Compression};
use crate::decode::{self, CwlEnvelope, Decoded, Gzipper, Payload};
use crate::event::{FirehoseEvent, OutputRecord, RecordResult};
use crate::render::{CloudWatchOrigin, EventContext, Rendered, Renderer, write_json_str};

/// The decision for one input record, before re-ingest.
#[derive(Debug)]
pub struct PlannedRecord {
    pub record_id: String,
    pub result: RecordResult,
    /// Base64 of the output (only for `Ok`).
    pub data: Option<String>,
    /// Payloads to put back into the delivery stream. The record's result stands only if all
    /// of them are accepted; otherwise it becomes `ProcessingFailed`.
    pub reingest: Vec<Vec<u8>>,
}

/// Counters for one invocation (emitted as CloudWatch metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stats {
    pub records_in: u64,
    pub records_ok: u64,
    pub records_dropped: u64,
    pub records_failed: u64,
    /// Records (whole or their overflowing tail) put back into the stream.
    pub records_reingested: u64,
    pub events_in: u64,
    pub events_out: u64,
    pub events_filtered: u64,
    /// Decoded (and inflated) payload bytes.
    pub bytes_in: u64,
    /// Output bytes before base64.
    pub bytes_out: u64,
}

/// The outcome of [`plan`].
#[derive(Debug)]
pub struct Plan {
    pub records: Vec<PlannedRecord>,
    pub stats: Stats,
}

/// Transforms every record of `event`. `now_ms` stands in for a missing arrival time.
///
/// Passes: shape every record; if the outputs would not fit the response, compact the
/// single-event Datadog records into gzip envelopes, then re-shape gzip outputs at a denser
/// level; finally hand out the budget in record order, re-ingesting what still does not fit.
pub fn plan(event: &FirehoseEvent, config: &Config, now_ms: i64) -> Plan {
    let mut renderer = Renderer::new(config);
    let mut stats = Stats::default();
    let mut scratch = Scratch::new();

    // Every record needs its id and result in the response whatever happens; reserve that
    // first, the rest of the budget goes to data in record order.
    let skeleton: usize = 16
        + event
            .records
            .iter()
            .map(|r| OutputRecord::encoded_len(&r.record_id, RecordResult::ProcessingFailed, 0))
            .sum::<usize>();
    let data_budget = config.response_limit_bytes.saturating_sub(skeleton);

    let mut shaped: Vec<(Shaped, Option<Vec<u8>>)> = Vec::with_capacity(event.records.len());
    for record in &event.records {
        stats.records_in += 1;
        let arrival_ms = record.arrival_ms().unwrap_or(now_ms);
        let decoded = match decode::decode_record(&record.data, config.max_decompressed_bytes) {
            Ok(d) => d,
            Err(error) => {
                warn!(record_id = %record.record_id, %error, "record cannot be decoded; Firehose keeps the original in the backup bucket");
                shaped.push((Shaped::Failed(error.to_string()), None));
                continue;
            }
        };
        stats.bytes_in += decoded.payload().len() as u64;
        let s = shape(
            &mut renderer,
            &mut scratch,
            &decoded,
            arrival_ms,
            config,
            &mut stats,
        );
        if let Shaped::Failed(reason) = &s {
            warn!(record_id = %record.record_id, reason, "record cannot be transformed; Firehose keeps the original in the backup bucket");
        }
        // The original bytes are only needed if the record may have to be re-ingested.
        let raw = matches!(s, Shaped::Output { .. }).then_some(decoded.raw);
        shaped.push((s, raw));
    }

    let output_cost = |shaped: &[(Shaped, Option<Vec<u8>>)]| -> usize {
        shaped
            .iter()
            .map(|(s, _)| match s {
                Shaped::Output { bytes, .. } => base64_len(bytes.len()),
                _ => 0,
            })
            .sum()
    };
    let mut total = output_cost(&shaped);
    if total > data_budget {
        for (s, _) in &mut shaped {
            if total <= data_budget {
                break;
            }
            if let Shaped::Output {
                bytes,
                compact: Some(c),
                ..
            } = s
            {
                let before = base64_len(bytes.len());
                let smaller = c.envelope_gzip(bytes, &mut scratch.gzipper);
                if smaller.len() < bytes.len() {
                    total = total + base64_len(smaller.len()) - before;
                    *bytes = smaller;
                }
            }
        }
    }

    if total > data_budget {
        // Still too big. Gzip outputs were made at the fastest level; a denser level for as
        // many of them as needed costs far less than re-ingesting (a second Firehose ingest,
        // a second invocation, later delivery).
        let mut dense = Scratch::with_level(Compression::new(DENSE_GZIP_LEVEL));
        let mut discarded = Stats::default();
        for (record, (s, raw)) in event.records.iter().zip(&mut shaped) {
            if total <= data_budget {
                break;
            }
            let Shaped::Output {
                bytes,
                compact: None,
                ..
            } = &*s
            else {
                continue;
            };
            if !bytes.starts_with(&decode::GZIP_MAGIC) {
                continue;
            }
            let before = base64_len(bytes.len());
            // A copy: the original must stay intact for re-ingest whatever happens here.
            let Some(original) = raw.clone() else {
                continue;
            };
            let Ok(decoded) = decode::decode_raw(original, config.max_decompressed_bytes) else {
                continue; // unreachable: these bytes decoded once already
            };
            let arrival_ms = record.arrival_ms().unwrap_or(now_ms);
            let denser = shape(
                &mut renderer,
                &mut dense,
                &decoded,
                arrival_ms,
                config,
                &mut discarded,
            );
            if let Shaped::Output { bytes: new, .. } = &denser
                && base64_len(new.len()) < before
            {
                total = total + base64_len(new.len()) - before;
                *s = denser;
            }
        }
    }

    let mut budget_left = data_budget;
    let mut records = Vec::with_capacity(event.records.len());
    for (record, (s, raw)) in event.records.iter().zip(shaped) {
        let mut planned = PlannedRecord {
            record_id: record.record_id.clone(),
            result: RecordResult::ProcessingFailed,
            data: None,
            reingest: Vec::new(),
        };
        match s {
            Shaped::Dropped => planned.result = RecordResult::Dropped,
            Shaped::Failed(_) => {}
            Shaped::Output {
                bytes,
                remainder,
                events,
                ..
            } => {
                let cost = base64_len(bytes.len());
                if cost > data_budget {
                    warn!(record_id = %record.record_id, output_bytes = bytes.len(), "transformed record alone exceeds the response limit; Firehose keeps the original in the backup bucket");
                } else if cost > budget_left {
                    // No room in this response: hand the original back to the stream, as
                    // AWS's CloudWatch Logs processor blueprint does.
                    planned.result = RecordResult::Dropped;
                    planned.reingest.push(raw.unwrap_or_default());
                    stats.records_reingested += 1;
                } else {
                    budget_left -= cost;
                    stats.bytes_out += bytes.len() as u64;
                    stats.events_out += events as u64;
                    planned.result = RecordResult::Ok;
                    planned.data = Some(STANDARD.encode(&bytes));
                    if let Some(rest) = remainder {
                        planned.reingest.push(rest);
                        stats.records_reingested += 1;
                    }
                }
            }
        }
        records.push(planned);
    }
    for r in &records {
        match r.result {
            RecordResult::Ok => stats.records_ok += 1,
            RecordResult::Dropped => stats.records_dropped += 1,
            RecordResult::ProcessingFailed => stats.records_failed += 1,
        }
    }
    Plan { records, stats }
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

enum Shaped {
    Output {
        bytes: Vec<u8>,
        /// Events in `bytes`.
        events: usize,
        /// The source events that did not fit the output record, to re-ingest.
        remainder: Option<Vec<u8>>,
        /// Set for a plain single-event Datadog log, which can still be wrapped in a gzip
        /// envelope if the response runs out of room.
        compact: Option<Compact>,
    },
    Dropped,
    Failed(String),
}

/// How to rewrite a single-event Datadog log as a one-event gzip envelope.
struct Compact {
    envelope: Envelope,
    time_ms: i64,
}

impl Compact {
    fn envelope_gzip(&self, object: &[u8], gzipper: &mut Gzipper) -> Vec<u8> {
        let mut json = Vec::with_capacity(object.len() + object.len() / 8 + 256);
        self.envelope.write_head(&mut json);
        write_log_event(&mut json, 0, self.time_ms, object);
        json.extend_from_slice(b"]}");
        let mut out = Vec::new();
        gzipper.gzip_into(&json, &mut out);
        out
    }
}

/// Reused buffers: rendered events back to back, with their ends, times and source indexes,
/// the uncompressed text of an output record, and the gzip state.
struct Scratch {
    buf: Vec<u8>,
    events: Vec<RenderedEvent>,
    gzipper: Gzipper,
    text: Vec<u8>,
}

impl Scratch {
    fn new() -> Self {
        Self::with_level(Compression::fast())
    }

    fn with_level(level: Compression) -> Self {
        Scratch {
            buf: Vec::new(),
            events: Vec::new(),
            gzipper: Gzipper::new(level),
            text: Vec::new(),
        }
    }
}

/// The gzip level used when the fastest one leaves a response over its budget.
const DENSE_GZIP_LEVEL: u32 = 6;

struct RenderedEvent {
    end: usize,
    time_ms: i64,
    source_index: usize,
}

/// The source of a record's events, kept to rebuild a re-ingest payload for a tail.
enum Source<'a> {
    Lines(Vec<&'a [u8]>),
    CloudWatch(CwlEnvelope),
    Text(&'a [u8]),
}

fn shape(
    renderer: &mut Renderer<'_>,
    scratch: &mut Scratch,
    decoded: &Decoded,
    arrival_ms: i64,
    config: &Config,
    stats: &mut Stats,
) -> Shaped {
    let source = match decode::classify(decoded.payload()) {
        Payload::Empty => return Shaped::Dropped,
        Payload::CloudWatch(env) if env.message_type == "CONTROL_MESSAGE" => {
            return Shaped::Dropped;
        }
        Payload::CloudWatch(env) => Source::CloudWatch(env),
        Payload::Lines(lines) => Source::Lines(lines),
        Payload::Text(text) => Source::Text(text),
    };

    scratch.buf.clear();
    scratch.events.clear();
    let mut render = |bytes: &[u8], ctx: EventContext<'_>, index: usize, scratch: &mut Scratch| {
        stats.events_in += 1;
        match renderer.render(bytes, ctx, &mut scratch.buf) {
            Rendered::Written { time_ms } => scratch.events.push(RenderedEvent {
                end: scratch.buf.len(),
                time_ms,
                source_index: index,
            }),
            Rendered::Filtered => stats.events_filtered += 1,
        }
    };
    let mut origin = None;
    match &source {
        Source::Lines(lines) => {
            for (i, line) in lines.iter().enumerate() {
                let ctx = EventContext {
                    default_time_ms: arrival_ms,
                    cloudwatch: None,
                };
                render(line, ctx, i, scratch);
            }
        }
        Source::Text(text) => {
            let ctx = EventContext {
                default_time_ms: arrival_ms,
                cloudwatch: None,
            };
            render(text, ctx, 0, scratch);
        }
        Source::CloudWatch(env) => {
            let o = CloudWatchOrigin {
                owner: env.owner.clone(),
                log_group: env.log_group.clone(),
                log_stream: env.log_stream.clone(),
            };
            for (i, e) in env.log_events.iter().enumerate() {
                let time = if e.timestamp > 0 {
                    e.timestamp
                } else {
                    arrival_ms
                };
                let ctx = EventContext {
                    default_time_ms: time,
                    cloudwatch: Some(&o),
                };
                render(e.message.as_bytes(), ctx, i, scratch);
            }
            origin = Some(o);
        }
    }
    let n = scratch.events.len();
    if n == 0 {
        return Shaped::Dropped;
    }
    if n > 1 && config.destination == Destination::OpenSearch {
        return Shaped::Failed(format!(
            "a packed record ({n} events) cannot become one OpenSearch document; \
             set FIRETAIL_RECORD_FORMAT=json on the firetail sidecar"
        ));
    }

    let envelope = Envelope::new(origin.as_ref(), renderer);
    let max = config.max_output_record_bytes;
    let mut count = n;
    loop {
        let (bytes, plain_single) = assemble(scratch, count, config, &envelope);
        if bytes.len() <= max || config.destination == Destination::OpenSearch {
            let remainder = (count < n).then(|| {
                let first = scratch.events[count].source_index;
                remainder_payload(&source, first, decoded.was_gzip(), &mut scratch.gzipper)
            });
            let compact = plain_single.then(|| Compact {
                time_ms: scratch.events[0].time_ms,
                envelope,
            });
            // Outputs live until the response is built; keep only what they use.
            let mut bytes = bytes;
            bytes.shrink_to_fit();
            return Shaped::Output {
                bytes,
                remainder,
                events: count,
                compact,
            };
        }
        if count == 1 {
            return Shaped::Failed(format!(
                "one event's output is {} bytes, over the {max}-byte record limit",
                bytes.len()
            ));
        }
        // Shrink in proportion to the overshoot, with a margin so one retry usually fits.
        let estimate = (count as u128 * max as u128 * 9 / 10 / bytes.len() as u128) as usize;
        count = estimate.clamp(1, count - 1);
    }
}

/// How a packed Datadog record is named when it is not a CloudWatch message already.
struct Envelope {
    owner: String,
    log_group: String,
    log_stream: String,
}

impl Envelope {
    fn new(origin: Option<&CloudWatchOrigin>, renderer: &Renderer<'_>) -> Envelope {
        if let Some(o) = origin {
            return Envelope {
                owner: o.owner.clone(),
                log_group: o.log_group.clone(),
                log_stream: o.log_stream.clone(),
            };
        }
        let tag = |k: &str| {
            renderer
                .last_tags()
                .and_then(|t| t.get(k))
                .unwrap_or("unknown")
                .to_owned()
        };
        Envelope {
            owner: "firetail".to_owned(),
            log_group: format!("/firetail/{}", tag("kube_namespace")),
            log_stream: format!("{}/{}", tag("pod_name"), tag("kube_container_name")),
        }
    }

    /// `{"messageType":"DATA_MESSAGE",…,"logEvents":[` — the caller adds events and `]}`.
    fn write_head(&self, json: &mut Vec<u8>) {
        json.extend_from_slice(b"{\"messageType\":\"DATA_MESSAGE\",\"owner\":");
        write_json_str(json, &self.owner);
        json.extend_from_slice(b",\"logGroup\":");
        write_json_str(json, &self.log_group);
        json.extend_from_slice(b",\"logStream\":");
        write_json_str(json, &self.log_stream);
        json.extend_from_slice(b",\"subscriptionFilters\":[\"firetail\"],\"logEvents\":[");
    }
}

/// One CloudWatch Logs event whose message is the rendered log object.
fn write_log_event(json: &mut Vec<u8>, id: usize, time_ms: i64, object: &[u8]) {
    json.extend_from_slice(b"{\"id\":\"");
    json.extend_from_slice(id.to_string().as_bytes());
    json.extend_from_slice(b"\",\"timestamp\":");
    json.extend_from_slice(time_ms.to_string().as_bytes());
    json.extend_from_slice(b",\"message\":");
    // Rendered objects are built from &str pieces only, so this never replaces anything.
    write_json_str(json, &String::from_utf8_lossy(object));
    json.push(b'}');
}

/// Builds the output record from the first `count` rendered events. The flag is true when the
/// output is a plain single Datadog log (which could still be compacted).
fn assemble(
    scratch: &mut Scratch,
    count: usize,
    config: &Config,
    envelope: &Envelope,
) -> (Vec<u8>, bool) {
    let Scratch {
        buf,
        events,
        gzipper,
        text,
    } = scratch;
    let events = &events[..count];
    let total_len = events.last().map_or(0, |e| e.end);
    let mut start = 0;
    let objects = events.iter().map(|e| {
        let object = &buf[start..e.end];
        start = e.end;
        (object, e)
    });
    match config.destination {
        Destination::Datadog => {
            if count == 1 && total_len <= config.max_output_record_bytes {
                return (buf[..total_len].to_vec(), true);
            }
            // A gzip CloudWatch Logs message: Datadog's Firehose intake splits it into logs.
            text.clear();
            envelope.write_head(text);
            for (i, (object, e)) in objects.enumerate() {
                if i > 0 {
                    text.push(b',');
                }
                write_log_event(text, i, e.time_ms, object);
            }
            text.extend_from_slice(b"]}");
            let mut out = Vec::new();
            gzipper.gzip_into(text, &mut out);
            (out, false)
        }
        Destination::OpenSearch => (buf[..total_len].to_vec(), false),
        Destination::S3 => {
            text.clear();
            for (object, _) in objects {
                text.extend_from_slice(object);
                text.push(b'\n');
            }
            match config.s3_compression {
                S3Compression::Gzip => {
                    let mut out = Vec::new();
                    gzipper.gzip_into(text, &mut out);
                    (out, false)
                }
                S3Compression::None => (text.clone(), false),
            }
        }
    }
}

/// The source events from `first` on, in the record's original encoding.
fn remainder_payload(
    source: &Source<'_>,
    first: usize,
    gzip: bool,
    gzipper: &mut Gzipper,
) -> Vec<u8> {
    let plain = match source {
        Source::Lines(lines) => {
            let mut out = Vec::new();
            for line in &lines[first..] {
                out.extend_from_slice(line);
                out.push(b'\n');
            }
            out
        }
        Source::CloudWatch(env) => {
            let mut rest = env.clone();
            rest.log_events.drain(..first);
            serde_json::to_vec(&rest).unwrap_or_default()
        }
        Source::Text(text) => text.to_vec(),
    };
    if gzip {
        let mut out = Vec::with_capacity(plain.len() / 4);
        gzipper.gzip_into(&plain, &mut out);
        out
    } else {
        plain
    }
}
