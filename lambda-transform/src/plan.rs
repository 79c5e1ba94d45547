//! The pure transform: a Firehose invocation in, a planned result for every record out.
//!
//! No I/O happens here. Records that cannot go back in this response (the 6 MB budget, or the
//! tail of a packed record whose output would pass the record limit) come back as re-ingest
//! payloads; the shell in `lib.rs` sends them and settles each record's final result.
//!
//! A record that is already transform output (it starts with the marker of
//! `firetail_wire::output`: a redrive put a failed delivery back) passes through unchanged.
//!
//! # Passes
//! 1. `shape_all`: decode and render every record into its destination's output; once the
//!    outputs so far, projected over the invocation, would not fit the response, the rest are
//!    deflated at a denser level as they are shaped, and shaping stops once the response is
//!    full (the rest is re-ingested unshaped).
//! 2. `densify` (only if the outputs still do not fit the response): re-compress the
//!    fast-level gzip outputs at the denser level. Cheaper than re-ingesting (a second
//!    Firehose ingest, a second invocation, later delivery).
//! 3. `allot`: hand out the response budget in record order; what does not fit is
//!    re-ingested (its original bytes), as AWS's CloudWatch Logs processor blueprint does.
//!
//! # Datadog's per-request event limit
//! Firehose sends Datadog what it buffered, by size, and Datadog reads at most
//! [`DATADOG_MAX_EVENTS_PER_REQUEST`](firetail_wire::output::DATADOG_MAX_EVENTS_PER_REQUEST) events of a request. So no Datadog record carries more
//! than one event per [`datadog_bytes_per_event`] bytes: one that compresses better than that
//! is padded with stored white space to the size its events must cost, and the densify pass
//! never makes a record denser than that.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_wire::codec::{Codec, Decompressor, Zstder};
use firetail_wire::gzip::{Gzipper, gunzip_capped, is_gzip};
use firetail_wire::output::{self, datadog_bytes_per_event};
use flate2::Compression;
use serde::Serialize;
use serde::de::IgnoredAny;
use tracing::warn;

use crate::config::{Config, Destination, S3Compression};
use crate::decode::{self, CwlEnvelope, CwlEvent, Payload, RecordHeader};
use crate::invocation::{FirehoseEvent, OutputRecord, RecordResult};
use crate::render::datadog::{ENVELOPE_TAIL, Envelope};
use crate::render::{CloudWatchOrigin, EventContext, Form, Rendered, Renderer};

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
    /// Events in `data`.
    pub events_out: u64,
    /// Bytes of `data` before base64.
    pub bytes_out: u64,
}

/// What shaping counted over the whole invocation.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ShapingCounts {
    /// Events read from the records.
    pub events_in: u64,
    /// Events removed by `FIRETAIL_DROP_REGEX`.
    pub events_filtered: u64,
    /// Decoded (and inflated) payload bytes.
    pub bytes_in: u64,
    /// Records that were already transform output, passed through unchanged.
    pub records_passed_through: u64,
    /// Datadog records padded so they carry no more events per byte than Datadog's
    /// per-request limit allows.
    pub datadog_records_padded: u64,
    /// Sidecar records of format version 2 (the rest of the sidecar's are version 1).
    pub records_format_v2: u64,
    /// Records that were zstd.
    pub records_zstd: u64,
}

/// Counters for one invocation (emitted as CloudWatch metrics).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Stats {
    pub records_in: u64,
    pub records_ok: u64,
    pub records_dropped: u64,
    pub records_failed: u64,
    /// Payloads (whole records or their overflowing tails) Firehose accepted back into the
    /// stream.
    pub records_reingested: u64,
    pub events_in: u64,
    pub events_out: u64,
    pub events_filtered: u64,
    /// Decoded (and inflated) payload bytes.
    pub bytes_in: u64,
    /// Output bytes before base64.
    pub bytes_out: u64,
    /// Records that were already transform output (a redrive of failed deliveries), passed
    /// through unchanged.
    pub records_passed_through: u64,
    /// Datadog records padded to keep Datadog's per-request event limit.
    pub datadog_records_padded: u64,
    /// Sidecar records of format version 2 read (during a rollout, the rest are version 1).
    pub records_format_v2: u64,
    /// Records that were zstd.
    pub records_zstd: u64,
}

impl Stats {
    /// The counters of an invocation whose records ended as `records`, `reingested` payloads
    /// of which Firehose accepted.
    pub fn tally(records: &[PlannedRecord], shaping: ShapingCounts, reingested: u64) -> Stats {
        let mut stats = Stats {
            records_in: records.len() as u64,
            records_reingested: reingested,
            events_in: shaping.events_in,
            events_filtered: shaping.events_filtered,
            bytes_in: shaping.bytes_in,
            records_passed_through: shaping.records_passed_through,
            datadog_records_padded: shaping.datadog_records_padded,
            records_format_v2: shaping.records_format_v2,
            records_zstd: shaping.records_zstd,
            ..Stats::default()
        };
        for r in records {
            match r.result {
                RecordResult::Ok => {
                    stats.records_ok += 1;
                    stats.events_out += r.events_out;
                    stats.bytes_out += r.bytes_out;
                }
                RecordResult::Dropped => stats.records_dropped += 1,
                RecordResult::ProcessingFailed => stats.records_failed += 1,
            }
        }
        stats
    }
}

/// The outcome of [`plan`].
#[derive(Debug)]
pub struct Plan {
    pub records: Vec<PlannedRecord>,
    pub shaping: ShapingCounts,
}

impl Plan {
    /// The counters as they will be if every re-ingest payload is accepted.
    pub fn stats(&self) -> Stats {
        let reingest = self.records.iter().map(|r| r.reingest.len() as u64).sum();
        Stats::tally(&self.records, self.shaping, reingest)
    }
}

/// Transforms every record of `event`. `now_ms` stands in for a missing arrival time.
pub fn plan(event: &FirehoseEvent, config: &Config, now_ms: i64) -> Plan {
    let account = firetail_firehose::account_id(&event.delivery_stream_arn).unwrap_or("unknown");
    let mut shaper = Shaper::new(config, account);
    let budget = data_budget(event, config);
    let mut shaped = shape_all(event, &mut shaper, now_ms, budget);
    let total: usize = shaped.iter().map(Shaped::cost).sum();
    if total > budget {
        densify(&mut shaped, total, budget, config);
    }
    Plan {
        records: allot(event, shaped, budget),
        shaping: shaper.counts,
    }
}

/// Every record needs its id and result in the response whatever happens; that is reserved
/// first, the rest of the response goes to data in record order.
fn data_budget(event: &FirehoseEvent, config: &Config) -> usize {
    let skeleton: usize = 16
        + event
            .records
            .iter()
            .map(|r| OutputRecord::encoded_len(&r.record_id, RecordResult::ProcessingFailed, 0))
            .sum::<usize>();
    config.response_limit_bytes.saturating_sub(skeleton)
}

/// Pass 1: every record decoded and rendered, until a response's worth of output is shaped
/// ([`SHAPE_BUDGETS`] of what densify may shrink); the records after that are re-ingested
/// unshaped. Once the outputs so far, projected over the whole invocation's input, pass the
/// budget, the rest are compressed at [`DENSE_GZIP_LEVEL`] as they are shaped: densifying
/// them later would deflate them twice and inflate them once more.
fn shape_all(
    event: &FirehoseEvent,
    shaper: &mut Shaper<'_>,
    now_ms: i64,
    budget: usize,
) -> Vec<Shaped> {
    // Only fast-level gzip outputs can shrink in the densify pass; the rest (dense or padded
    // records, plain or passed-through ones) already cost what they will, so shaping more
    // than a response of them would be work thrown away (it was half of a 6 MB invocation
    // of version 2 records, whose Datadog records are padded).
    let (mut shrinkable, mut fixed) = (0usize, 0usize);
    let input_total: usize = event.records.iter().map(|r| r.data.len()).sum();
    let mut input_seen = 0usize;
    event
        .records
        .iter()
        .map(|record| {
            if fixed.saturating_add(shrinkable / SHAPE_BUDGETS) > budget {
                return match decode::raw_bytes(&record.data) {
                    Ok(raw) => Shaped::Deferred(raw),
                    Err(error) => Shaped::Failed(error.to_string()),
                };
            }
            let raw = match decode::raw_bytes(&record.data) {
                Ok(raw) => raw,
                Err(error) => {
                    warn!(record_id = %record.record_id, %error, "record cannot be decoded; Firehose keeps the original in the backup bucket");
                    return Shaped::Failed(error.to_string());
                }
            };
            let shaped = shaper.shape(raw, record.arrival_ms().unwrap_or(now_ms));
            if let Shaped::Failed(reason) = &shaped {
                warn!(record_id = %record.record_id, reason, "record cannot be transformed; Firehose keeps the original in the backup bucket");
            }
            match &shaped {
                Shaped::Output(out) if out.kind == OutputKind::Compressed => {
                    shrinkable += shaped.cost();
                }
                _ => fixed += shaped.cost(),
            }
            input_seen += record.data.len();
            // Only fast-level outputs shrink (padded Datadog records are as large as their
            // events must be at any level).
            if shrinkable > 0
                && !shaper.compresses_densely()
                && projected(fixed + shrinkable, input_seen, input_total) > budget
            {
                shaper.compress_densely();
            }
            shaped
        })
        .collect()
}

/// What `cost` for the first `seen` bytes of input comes to over all `total` of it, at the
/// same rate (the records of one invocation are alike: one pod's sidecar, or a few).
fn projected(cost: usize, seen: usize, total: usize) -> usize {
    if seen == 0 {
        return cost;
    }
    let at_rate = cost as u128 * total as u128 / seen as u128;
    usize::try_from(at_rate).unwrap_or(usize::MAX)
}

/// The zstd level of a version 2 remainder: fast, as the gzip remainders are.
const REMAINDER_ZSTD_LEVEL: i32 = 3;

/// The gzip level used when the fastest one leaves a response over its budget. On the S3
/// documents delivered from a 6 MB invocation (`FIRETAIL_BENCH_LEVELS=1
/// FIRETAIL_BENCH_DESTINATION=s3 cargo bench -p firetail-transform --bench runtime`),
/// zlib-rs's level 2 writes 0.761 of level 1's bytes at 1.35x its CPU, level 3
/// 0.686 at 2.13x, level 4 0.678 at 2.16x, level 6 0.669 at 3.53x, level 7 0.630 at 5.97x.
/// Every record that does not fit is re-ingested, and Firehose bills its ingestion again: in
/// an interleaved A/B, level 2 re-ingested 369 of 700 records where level 4 re-ingests 329,
/// 12 % more Firehose ingestion per delivered event, costing about 17 times what the Lambda
/// CPU it saves is worth.
/// By the bill alone level 7 would be ~4 % cheaper still on such invocations, at more than
/// twice the CPU per event, which would take the transform under 3x the blueprint's speed at
/// 6 MB (docs/BENCHMARKS.md, "The dense level's trade, measured").
const DENSE_GZIP_LEVEL: u32 = 4;

/// Pass 2: fast-level gzip outputs re-compressed at [`DENSE_GZIP_LEVEL`], in record order,
/// until the outputs fit or the records so far fill the response (those after them are
/// re-ingested whatever their size). Our own fast-level output is inflated and deflated
/// again; the source record is not decoded or rendered a second time. A Datadog record stays
/// within its events' budget of bytes; dense, padded and passed-through records are left as
/// they are.
fn densify(shaped: &mut [Shaped], mut total: usize, budget: usize, config: &Config) {
    let mut dense = Gzipper::new(Compression::new(DENSE_GZIP_LEVEL));
    let bytes_per_event = datadog_bytes_per_event(config.datadog_buffer_mib);
    // Our outputs inflate to at most what was rendered for them, which the record limit and
    // the inflate cap of the input already bound.
    let cap = config
        .max_output_record_bytes
        .max(config.max_decompressed_bytes)
        .saturating_mul(8);
    let mut prefix = 0usize;
    for s in shaped.iter_mut() {
        if total <= budget || prefix > budget {
            break;
        }
        if let Shaped::Output(out) = s
            && out.kind == OutputKind::Compressed
            && is_gzip(&out.bytes)
            && let Ok(text) = gunzip_capped(&out.bytes, cap)
        {
            let mut denser = Vec::with_capacity(out.bytes.len());
            dense.gzip_into(&text, &mut denser);
            let floor = match config.destination {
                Destination::Datadog => out.events.saturating_mul(bytes_per_event),
                Destination::OpenSearch | Destination::S3 => 0,
            };
            if denser.len() < out.bytes.len() && denser.len() >= floor {
                total = total + base64_len(denser.len()) - base64_len(out.bytes.len());
                denser.shrink_to_fit();
                out.bytes = denser;
                out.kind = OutputKind::DenselyCompressed;
            }
        }
        prefix += s.cost();
    }
}

/// Pass 4: the response budget in record order.
fn allot(event: &FirehoseEvent, shaped: Vec<Shaped>, budget: usize) -> Vec<PlannedRecord> {
    let mut left = budget;
    event
        .records
        .iter()
        .zip(shaped)
        .map(|(record, s)| {
            let mut planned = PlannedRecord {
                record_id: record.record_id.clone(),
                result: RecordResult::ProcessingFailed,
                data: None,
                reingest: Vec::new(),
                events_out: 0,
                bytes_out: 0,
            };
            match s {
                Shaped::Dropped => planned.result = RecordResult::Dropped,
                Shaped::Failed(_) => {}
                Shaped::Deferred(raw) => {
                    planned.result = RecordResult::Dropped;
                    planned.reingest.push(raw);
                }
                Shaped::Output(out) => {
                    let cost = base64_len(out.bytes.len());
                    if cost > budget {
                        warn!(record_id = %record.record_id, output_bytes = out.bytes.len(), "transformed record alone exceeds the response limit; Firehose keeps the original in the backup bucket");
                    } else if cost > left {
                        // No room in this response: hand the original back to the stream.
                        planned.result = RecordResult::Dropped;
                        planned.reingest.push(out.raw);
                    } else {
                        left -= cost;
                        planned.result = RecordResult::Ok;
                        planned.events_out = out.events as u64;
                        planned.bytes_out = out.bytes.len() as u64;
                        planned.data = Some(STANDARD.encode(&out.bytes));
                        planned.reingest.extend(out.remainder);
                    }
                }
            }
            planned
        })
        .collect()
}

fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// A record after shaping.
enum Shaped {
    Output(Output),
    Dropped,
    Failed(String),
    /// Not shaped (enough output for this response already): the raw record, re-ingested.
    Deferred(Vec<u8>),
}

impl Shaped {
    /// Response bytes the record's data would take.
    fn cost(&self) -> usize {
        match self {
            Shaped::Output(out) => base64_len(out.bytes.len()),
            Shaped::Dropped | Shaped::Failed(_) | Shaped::Deferred(_) => 0,
        }
    }
}

/// A record's output, and what is needed if it cannot go back in this response.
struct Output {
    bytes: Vec<u8>,
    /// Events in `bytes`.
    events: usize,
    /// The record exactly as the producer sent it (re-ingested if there is no room for it).
    raw: Vec<u8>,
    /// The source events that did not fit the output record, to re-ingest.
    remainder: Option<Vec<u8>>,
    kind: OutputKind,
}

/// How an output's bytes were made, which decides whether densify may touch them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputKind {
    /// Gzip at the fast level.
    Compressed,
    /// Gzip at [`DENSE_GZIP_LEVEL`].
    DenselyCompressed,
    /// Not compressed (OpenSearch, S3 without compression).
    Plain,
    /// A Datadog record padded to its events' budget of bytes.
    Padded,
    /// Already transform output: the record's own bytes.
    PassedThrough,
}

/// What shaping one payload gave (the record's raw bytes are added by [`Shaper::shape`]).
enum Shaping {
    Output {
        bytes: Vec<u8>,
        events: usize,
        remainder: Option<Vec<u8>>,
        kind: OutputKind,
    },
    Dropped,
    Failed(String),
}

/// Reused buffers: rendered events back to back (Datadog's already as its envelope's
/// `logEvents`, S3's each ending with its newline), with their ends and source indexes, a
/// Datadog envelope's head, and the gzip state.
struct Scratch {
    buf: Vec<u8>,
    events: Vec<RenderedEvent>,
    /// Where rendering stopped at the render cap, as a `source_pos`.
    unrendered: Option<usize>,
    gzipper: Gzipper,
    /// For the remainder of a zstd record (made on first use).
    zstder: Option<Zstder>,
    /// A Datadog envelope's head.
    text: Vec<u8>,
    /// Whether the last Datadog record needed padding: the records of one invocation are
    /// alike, so the next one is deflated once, ready to pad, instead of twice.
    padding_expected: bool,
}

struct RenderedEvent {
    end: usize,
    /// Where the event starts in its source: a byte offset into NDJSON text, an index into a
    /// CloudWatch envelope's events.
    source_pos: usize,
}

/// The source of a record's events, kept to rebuild a re-ingest payload for a tail.
enum Source<'a> {
    Lines(&'a [u8]),
    /// A version 2 record: its header (parsed, and its line as written) and its event lines.
    V2 {
        header: RecordHeader<'a>,
        header_line: &'a [u8],
        events: &'a [u8],
    },
    CloudWatch(CwlEnvelope<'a>),
    Text(&'a [u8]),
}

/// Rendered bytes one record may hold before rendering stops (`max_output_record_bytes`
/// times this): what did not get rendered goes back to the stream as the record's remainder.
/// Bounds memory whatever a record inflates to (a gzip record of millions of tiny events).
/// Real records stay below it: a sidecar record inflates to at most one record's worth.
const RENDER_CAP_RECORDS: usize = 4;

/// The largest event (raw bytes, `max_output_record_bytes` times this) rendered at all:
/// escaping can grow an event six-fold, and nothing larger could shrink enough to fit an
/// output record, so such a record is `ProcessingFailed` (kept in the backup bucket).
const MAX_EVENT_RECORDS: usize = 2;

/// Output bytes shaped before the rest of the invocation's records are re-ingested as they
/// are, unshaped (times the response's data budget): the densify pass works on at most this
/// much, and outputs held for the response stay bounded.
const SHAPE_BUDGETS: usize = 2;

/// Shapes records one after another, reusing its renderer and buffers.
struct Shaper<'c> {
    config: &'c Config,
    renderer: Renderer<'c>,
    scratch: Scratch,
    /// The inflated payload of the record being shaped (reused).
    inflated: Vec<u8>,
    /// Decompresses every record's payload (keeps its zstd context).
    decompressor: Decompressor,
    counts: ShapingCounts,
    /// The AWS account of the delivery stream (a Datadog envelope's `owner`).
    account: &'c str,
    /// Bytes a Datadog record must have per event it carries.
    bytes_per_event: usize,
}

/// The kind of an output `gzipper` compressed.
fn compressed_by(gzipper: &Gzipper) -> OutputKind {
    if gzipper.level() == Compression::fast() {
        OutputKind::Compressed
    } else {
        OutputKind::DenselyCompressed
    }
}

impl<'c> Shaper<'c> {
    fn new(config: &'c Config, account: &'c str) -> Self {
        Shaper {
            config,
            account,
            bytes_per_event: datadog_bytes_per_event(config.datadog_buffer_mib),
            // A Datadog log is a string of its envelope: written so from the start.
            renderer: Renderer::with_form(
                config,
                match config.destination {
                    Destination::Datadog => Form::LogEvent,
                    Destination::OpenSearch | Destination::S3 => Form::Object,
                },
            ),
            scratch: Scratch {
                buf: Vec::new(),
                events: Vec::new(),
                unrendered: None,
                gzipper: Gzipper::new(Compression::fast()),
                zstder: None,
                text: Vec::new(),
                padding_expected: false,
            },
            inflated: Vec::new(),
            decompressor: Decompressor::default(),
            counts: ShapingCounts::default(),
        }
    }

    /// Compresses the records shaped from now on (and their remainders) at
    /// [`DENSE_GZIP_LEVEL`].
    fn compress_densely(&mut self) {
        self.scratch.gzipper = Gzipper::new(Compression::new(DENSE_GZIP_LEVEL));
    }

    fn compresses_densely(&self) -> bool {
        compressed_by(&self.scratch.gzipper) == OutputKind::DenselyCompressed
    }

    /// Renders the events of one decoded record and assembles its output.
    fn shape(&mut self, raw: Vec<u8>, arrival_ms: i64) -> Shaped {
        // One inflate buffer for every record: a record may inflate to the cap, and a fresh
        // allocation per record left the allocator holding several caps' worth (measured).
        let mut inflated = std::mem::take(&mut self.inflated);
        let codec = Codec::of(&raw);
        let payload: &[u8] = if let Some(codec) = codec {
            if let Err(error) = self.decompressor.decompress_into(
                codec,
                &raw,
                self.config.max_decompressed_bytes,
                &mut inflated,
            ) {
                self.inflated = inflated;
                return Shaped::Failed(decode::DecodeError::from(error).to_string());
            }
            if codec == Codec::Zstd {
                self.counts.records_zstd += 1;
            }
            &inflated
        } else {
            &raw
        };
        self.counts.bytes_in += payload.len() as u64;
        let shaped = if let Some(version) = output::marker_version(payload) {
            passed_through(payload, version)
                .map(|events| {
                    self.counts.records_passed_through += 1;
                    self.counts.events_in += events as u64;
                    Shaping::Output {
                        bytes: raw.clone(),
                        events,
                        remainder: None,
                        kind: OutputKind::PassedThrough,
                    }
                })
                .unwrap_or_else(Shaping::Failed)
        } else {
            self.shape_payload(payload, codec, arrival_ms)
        };
        inflated.clear();
        self.inflated = inflated;
        match shaped {
            Shaping::Output {
                bytes,
                events,
                remainder,
                kind,
            } => Shaped::Output(Output {
                bytes,
                events,
                raw,
                remainder,
                kind,
            }),
            Shaping::Dropped => Shaped::Dropped,
            Shaping::Failed(why) => Shaped::Failed(why),
        }
    }

    /// Renders and assembles one record's payload.
    fn shape_payload(&mut self, payload: &[u8], codec: Option<Codec>, arrival_ms: i64) -> Shaping {
        let source = match decode::Payload::of(payload) {
            Payload::Empty => return Shaping::Dropped,
            Payload::CloudWatch(env) if env.message_type == "CONTROL_MESSAGE" => {
                return Shaping::Dropped;
            }
            Payload::CloudWatch(env) => Source::CloudWatch(env),
            Payload::Lines(text) => Source::Lines(text),
            Payload::V2 { header, events } => {
                self.counts.records_format_v2 += 1;
                let header_line = firetail_wire::v2::split_header(payload.trim_ascii())
                    .map_or(&b""[..], |(line, _)| line);
                Source::V2 {
                    header,
                    header_line,
                    events,
                }
            }
            Payload::Text(text) => Source::Text(text),
            Payload::Unsupported(why) => return Shaping::Failed(why.to_string()),
            Payload::BadHeader(why) => return Shaping::Failed(why),
        };
        // Every event's bytes borrow from `payload`, which outlives their rendering.
        self.renderer.begin_record(payload);
        let origin = match self.render_source(&source, arrival_ms) {
            Ok(origin) => origin,
            Err(why) => return Shaping::Failed(why),
        };
        let n = self.scratch.events.len();
        if n == 0 {
            return Shaping::Dropped;
        }
        let config = self.config;
        if n > 1 && config.destination == Destination::OpenSearch {
            return Shaping::Failed(format!(
                "a packed record ({n} events) cannot become one OpenSearch document; \
                 set FIRETAIL_RECORD_FORMAT=json on the firetail sidecar"
            ));
        }
        let envelope = Envelope::new(origin.as_ref(), self.renderer.last_tags(), self.account);
        let max = config.max_output_record_bytes;
        let mut count = n;
        loop {
            let (bytes, kind) = self.assemble(count, &envelope);
            if bytes.len() <= max || config.destination == Destination::OpenSearch {
                // The source from the first event not in this output: the events that did
                // not fit, and any that were never rendered.
                let rest = match self.scratch.events.get(count) {
                    Some(e) => Some(e.source_pos),
                    None => self.scratch.unrendered,
                };
                let remainder =
                    rest.map(|first| remainder_payload(&source, first, codec, &mut self.scratch));
                if kind == OutputKind::Padded {
                    self.counts.datadog_records_padded += 1;
                }
                // Outputs live until the response is built; keep only what they use.
                let mut bytes = bytes;
                bytes.shrink_to_fit();
                return Shaping::Output {
                    bytes,
                    events: count,
                    remainder,
                    kind,
                };
            }
            if count == 1 {
                return Shaping::Failed(format!(
                    "one event's output is {} bytes, over the {max}-byte record limit",
                    bytes.len()
                ));
            }
            // Shrink in proportion to the overshoot, with a margin so one retry usually fits.
            let estimate = (count as u128 * max as u128 * 9 / 10 / bytes.len() as u128) as usize;
            count = estimate.clamp(1, count - 1);
        }
    }

    /// Renders the events of `source` into the scratch buffer, in order, until the render cap
    /// ([`RENDER_CAP_RECORDS`]); where rendering stopped, if it did, is left in
    /// `scratch.unrendered`. Returns the CloudWatch origin, if any, or why the record cannot be
    /// transformed at all.
    fn render_source(
        &mut self,
        source: &Source<'_>,
        arrival_ms: i64,
    ) -> Result<Option<CloudWatchOrigin>, String> {
        self.scratch.buf.clear();
        self.scratch.events.clear();
        self.scratch.unrendered = None;
        let max = self.config.max_output_record_bytes;
        let render_cap = max.saturating_mul(RENDER_CAP_RECORDS);
        // A Datadog record holds at most this many events (each costs `bytes_per_event` of
        // the record's bytes); rendering more would only make a longer remainder.
        let event_limit = match self.config.destination {
            Destination::Datadog => (max / self.bytes_per_event).max(1),
            Destination::OpenSearch | Destination::S3 => usize::MAX,
        };
        let event_cap = max.saturating_mul(MAX_EVENT_RECORDS);
        // An S3 object is the documents one per line: each is followed by its newline as it is
        // rendered, so the first `count` of them are one slice to deflate, never copied.
        let newline_delimited = self.config.destination == Destination::S3;
        let Shaper {
            renderer,
            scratch,
            counts,
            ..
        } = self;
        // Some(Err) stops the record; Some(Ok) stops rendering before this event.
        let mut render =
            |bytes: &[u8], ctx: EventContext<'_>, pos: usize| -> Option<Result<(), String>> {
                if !scratch.events.is_empty()
                    && (scratch.buf.len() >= render_cap || scratch.events.len() >= event_limit)
                {
                    scratch.unrendered = Some(pos);
                    return Some(Ok(()));
                }
                if bytes.len() > event_cap {
                    return Some(Err(format!(
                        "an event of {} bytes cannot fit a {max}-byte output record",
                        bytes.len()
                    )));
                }
                counts.events_in += 1;
                match renderer.render(bytes, ctx, &mut scratch.buf) {
                    Rendered::Written { .. } => {
                        if newline_delimited {
                            scratch.buf.push(b'\n');
                        }
                        scratch.events.push(RenderedEvent {
                            end: scratch.buf.len(),
                            source_pos: pos,
                        });
                    }
                    Rendered::Filtered => counts.events_filtered += 1,
                }
                None
            };
        let plain = EventContext {
            default_time_ms: arrival_ms,
            cloudwatch: None,
            header: None,
        };
        let stopped = |outcome: Option<Result<(), String>>| -> Result<bool, String> {
            match outcome {
                None => Ok(false),
                Some(Ok(())) => Ok(true),
                Some(Err(why)) => Err(why),
            }
        };
        match source {
            Source::Lines(text) => {
                let base = text.as_ptr() as usize;
                let any_cut = crate::rejoin::may_be_cut(text);
                let mut lines = firetail_wire::format::lines(text).peekable();
                while let Some(line) = lines.next() {
                    // Lines are slices of `text`: their start is an offset into it.
                    let pos = line.as_ptr() as usize - base;
                    // Pieces of a line cut before its newline, next to each other: one event
                    // (its position is its first piece's, so a remainder keeps them all).
                    let joined = any_cut
                        .then(|| crate::rejoin::join_cut(line, &mut lines))
                        .flatten();
                    if stopped(render(joined.as_deref().unwrap_or(line), plain, pos))? {
                        break;
                    }
                }
                Ok(None)
            }
            Source::V2 { header, events, .. } => {
                let ctx = EventContext {
                    header: Some(header),
                    ..plain
                };
                let base = events.as_ptr() as usize;
                let any_cut = crate::rejoin::may_be_cut(events);
                let mut lines = firetail_wire::format::lines(events).peekable();
                while let Some(line) = lines.next() {
                    let pos = line.as_ptr() as usize - base;
                    // As in version 1: adjacent pieces of a cut line become one event (a
                    // version 2 piece leaves out `file` when it is the header's, on both sides).
                    let joined = any_cut
                        .then(|| crate::rejoin::join_cut(line, &mut lines))
                        .flatten();
                    if stopped(render(joined.as_deref().unwrap_or(line), ctx, pos))? {
                        break;
                    }
                }
                Ok(None)
            }
            Source::Text(text) => {
                stopped(render(text, plain, 0))?;
                Ok(None)
            }
            Source::CloudWatch(env) => {
                let o = CloudWatchOrigin {
                    owner: env.owner.to_string(),
                    log_group: env.log_group.to_string(),
                    log_stream: env.log_stream.to_string(),
                };
                for (i, raw) in env.log_events.iter().enumerate() {
                    let e = CwlEvent::parse(raw);
                    let ctx = EventContext {
                        default_time_ms: if e.timestamp > 0 {
                            e.timestamp
                        } else {
                            arrival_ms
                        },
                        cloudwatch: Some(&o),
                        header: None,
                    };
                    if stopped(render(e.message.as_bytes(), ctx, i))? {
                        break;
                    }
                }
                Ok(Some(o))
            }
        }
    }

    /// The output record from the first `count` rendered events, and how it was made.
    fn assemble(&mut self, count: usize, envelope: &Envelope) -> (Vec<u8>, OutputKind) {
        let config = self.config;
        let bytes_per_event = self.bytes_per_event;
        let Scratch {
            buf,
            events,
            gzipper,
            text,
            padding_expected,
            ..
        } = &mut self.scratch;
        let events = &events[..count];
        let total_len = events.last().map_or(0, |e| e.end);
        match config.destination {
            Destination::Datadog => {
                // The envelope: its head, the events as rendered, its tail; deflated from
                // where they are.
                text.clear();
                envelope.write_head(text);
                let log_events = &buf[..total_len];
                let mut out = Vec::new();
                let floor = count.saturating_mul(bytes_per_event);
                if !*padding_expected {
                    gzipper.gzip_parts_into(&[text, log_events, ENVELOPE_TAIL], &mut out);
                    if out.len() >= floor {
                        return (out, compressed_by(gzipper));
                    }
                    out.clear();
                }
                // Compresses too well for Datadog's per-request event limit: as many bytes
                // as its events must cost, white space before the envelope's last brace
                // (more than a record can hold, the caller shrinks the count).
                let (close_list, close_object) = ENVELOPE_TAIL.split_at(1);
                let padded = gzipper.gzip_padded_into(
                    &[text, log_events, close_list],
                    close_object,
                    floor,
                    &mut out,
                );
                *padding_expected = padded;
                let kind = if padded {
                    OutputKind::Padded
                } else {
                    compressed_by(gzipper)
                };
                (out, kind)
            }
            Destination::OpenSearch => (buf[..total_len].to_vec(), OutputKind::Plain),
            Destination::S3 => {
                // Every document already ends with its newline.
                let text = &buf[..total_len];
                match config.s3_compression {
                    S3Compression::Gzip => {
                        let mut out = Vec::new();
                        gzipper.gzip_into(text, &mut out);
                        (out, compressed_by(gzipper))
                    }
                    S3Compression::None => (text.to_vec(), OutputKind::Plain),
                }
            }
        }
    }
}

/// How many events a record that is already transform output (marker `version`) holds, after
/// checking it is whole: valid JSON throughout, every line of an S3 object marked. A record
/// whose marker is there but whose body is not is `ProcessingFailed` (kept in the backup
/// bucket), never delivered half-read.
fn passed_through(payload: &[u8], version: u32) -> Result<usize, String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "logEvents", default)]
        log_events: Option<Vec<IgnoredAny>>,
    }
    let corrupt = |why: String| format!("transform output (version {version}) is corrupt: {why}");
    let mut events = 0;
    for (i, line) in firetail_wire::format::lines(payload).enumerate() {
        if output::marker_version(line).is_none() {
            return Err(corrupt(format!(
                "line {} does not start with the marker",
                i + 1
            )));
        }
        let probe: Probe =
            serde_json::from_slice(line).map_err(|e| corrupt(format!("line {}: {e}", i + 1)))?;
        events += probe.log_events.map_or(1, |e| e.len());
    }
    Ok(events)
}

/// The source events from `first` (a [`RenderedEvent::source_pos`]) on, in the record's
/// original encoding (a version 2 remainder starts with the record's header line again). A
/// compressed remainder is compressed straight from the source, never copied out whole first:
/// a record can inflate to the cap, and its remainder nearly as much.
fn remainder_payload(
    source: &Source<'_>,
    first: usize,
    codec: Option<Codec>,
    scratch: &mut Scratch,
) -> Vec<u8> {
    let gzip = codec == Some(Codec::Gzip);
    let gzipper = &mut scratch.gzipper;
    match source {
        Source::V2 {
            header_line,
            events,
            ..
        } => {
            let rest = events.get(first..).unwrap_or_default();
            // The header and the events as one input: one more copy of the remainder, which
            // a compressor would make anyway.
            let mut text = Vec::with_capacity(header_line.len() + 1 + rest.len());
            text.extend_from_slice(header_line);
            text.push(b'\n');
            text.extend_from_slice(rest);
            let mut out = Vec::with_capacity(text.len() / 8 + 64);
            match codec {
                Some(Codec::Gzip) => gzipper.gzip_into(&text, &mut out),
                Some(Codec::Zstd) => scratch
                    .zstder
                    .get_or_insert_with(|| Zstder::new(REMAINDER_ZSTD_LEVEL))
                    .zstd_into(&text, &mut out),
                None => out = text,
            }
            out
        }
        Source::Lines(text) | Source::Text(text) => {
            let rest = if matches!(source, Source::Lines(_)) {
                text.get(first..).unwrap_or_default()
            } else {
                text
            };
            if gzip {
                let mut out = Vec::with_capacity(rest.len() / 8 + 64);
                gzipper.gzip_into(rest, &mut out);
                out
            } else {
                rest.to_vec()
            }
        }
        Source::CloudWatch(env) => {
            if gzip {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), gzipper.level());
                env.write_remainder(first, &mut enc)
                    .expect("writing into memory cannot fail");
                enc.finish().expect("writing into memory cannot fail")
            } else {
                let mut out = Vec::new();
                env.write_remainder(first, &mut out)
                    .expect("writing into memory cannot fail");
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::projected;

    #[test]
    fn projection_scales_the_cost_so_far_to_the_whole_input() {
        assert_eq!(projected(100, 10, 60), 600);
        assert_eq!(projected(100, 60, 60), 100);
        assert_eq!(projected(7, 0, 60), 7);
        assert_eq!(projected(usize::MAX, 1, usize::MAX), usize::MAX);
    }
}
