//! Packing encoded events into Firehose records and records into `PutRecordBatch` calls.
//!
//! # Layout
//! - Firehose limits as named constants ([`MAX_RECORD_BYTES`], [`MAX_BATCH_RECORDS`],
//!   [`MAX_BATCH_BYTES`]) and the ndjson de-aggregation cap [`MAX_EVENTS_PER_NDJSON_RECORD`].
//! - [`RecordFormat`]: `json` | `ndjson` | `ndjson-gzip`.
//! - [`Packer`]: pure state machine; events in, [`Batch`]es out. Each [`Record`] carries the
//!   acknowledgement tokens of the events inside it, so the sender can acknowledge exactly the
//!   events whose record Firehose accepted.
//! - [`split_line`]: cuts a line that cannot fit one record into pieces on UTF-8 boundaries.
//!
//! Firehose bills every record rounded up to 5 KiB, so packing many small events into one
//! record is what keeps the bill close to the raw volume.

use std::io::Write as _;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

/// Largest record Firehose accepts, before base64 encoding.
/// <https://docs.aws.amazon.com/firehose/latest/dev/limits.html>
pub const MAX_RECORD_BYTES: usize = 1_000 * 1024;

/// Most records in one `PutRecordBatch` call.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const MAX_BATCH_RECORDS: usize = 500;

/// Most bytes (sum of record data) in one `PutRecordBatch` call.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// Firehose bills ingestion per record rounded up to the next 5 KiB.
/// <https://aws.amazon.com/firehose/pricing/>
pub const BILLING_INCREMENT_BYTES: usize = 5 * 1024;

/// Firehose's own de-aggregation of newline-delimited records (dynamic partitioning) handles
/// at most 500 JSON objects per record, so an `ndjson` record never holds more.
/// <https://docs.aws.amazon.com/firehose/latest/dev/dynamic-partitioning-multirecord-deaggergation.html>
pub const MAX_EVENTS_PER_NDJSON_RECORD: usize = 500;

/// How events are laid out inside a Firehose record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// One event per record (OpenSearch; what Fluent Bit's Firehose output does).
    Json,
    /// Many newline-terminated events per record, at most [`MAX_EVENTS_PER_NDJSON_RECORD`].
    Ndjson,
    /// Newline-terminated events in one gzip member per record.
    NdjsonGzip,
}

impl RecordFormat {
    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::NdjsonGzip => "ndjson-gzip",
        }
    }
}

/// Bytes every record may need beyond its events for gzip framing, even on incompressible
/// input (deflate stored blocks cost 5 bytes per <=64 KiB; the gzip header and trailer 18).
/// A 1/256 margin is several times that bound.
fn gzip_margin(record_bytes: usize) -> usize {
    record_bytes / 256 + 64
}

/// Limits the packer works to; [`Limits::FIREHOSE`] in production, smaller ones in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest record data.
    pub record_bytes: usize,
    /// Most records per batch.
    pub batch_records: usize,
    /// Most data bytes per batch.
    pub batch_bytes: usize,
    /// Most events per `ndjson` record.
    pub ndjson_events: usize,
}

impl Limits {
    /// Firehose's service limits.
    pub const FIREHOSE: Self = Self {
        record_bytes: MAX_RECORD_BYTES,
        batch_records: MAX_BATCH_RECORDS,
        batch_bytes: MAX_BATCH_BYTES,
        ndjson_events: MAX_EVENTS_PER_NDJSON_RECORD,
    };
}

/// One Firehose record and the events inside it.
#[derive(Debug)]
pub struct Record<T> {
    /// What goes on the wire.
    pub data: Bytes,
    /// Uncompressed bytes of the events (including newlines).
    pub raw_bytes: usize,
    /// Acknowledgement tokens, one per event, in order.
    pub tokens: Vec<T>,
}

/// Records for one `PutRecordBatch` call, within its record-count and byte limits.
#[derive(Debug)]
pub struct Batch<T> {
    /// The records, in the order they were packed.
    pub records: Vec<Record<T>>,
}

impl<T> Batch<T> {
    /// Sum of the record data sizes.
    pub fn data_bytes(&self) -> usize {
        self.records.iter().map(|r| r.data.len()).sum()
    }

    /// Number of events in the batch.
    pub fn events(&self) -> usize {
        self.records.iter().map(|r| r.tokens.len()).sum()
    }
}

/// Bytes Firehose bills for a record of `len` bytes.
pub fn billed_bytes(len: usize) -> usize {
    len.div_ceil(BILLING_INCREMENT_BYTES).max(1) * BILLING_INCREMENT_BYTES
}

#[derive(Debug)]
enum Body {
    Plain(Vec<u8>),
    /// The uncompressed events; compressed in one call when the record is sealed. Feeding the
    /// encoder event by event cost ~2x the CPU (per-call copies and checksum setup in the
    /// deflate stream, measured with perf on `benches/sidecar`), for ~1 MiB more peak memory.
    Gzip(Vec<u8>),
}

#[derive(Debug)]
struct OpenRecord<T> {
    body: Body,
    raw_bytes: usize,
    tokens: Vec<T>,
}

/// Packs encoded events into records and records into batches.
#[derive(Debug)]
pub struct Packer<T> {
    format: RecordFormat,
    limits: Limits,
    open: Option<OpenRecord<T>>,
    batch: Vec<Record<T>>,
    batch_bytes: usize,
    ready: std::collections::VecDeque<Batch<T>>,
}

impl<T> Packer<T> {
    /// A packer for `format` within `limits`.
    pub fn new(format: RecordFormat, limits: Limits) -> Self {
        Self {
            format,
            limits,
            open: None,
            batch: Vec::new(),
            batch_bytes: 0,
            ready: std::collections::VecDeque::new(),
        }
    }

    /// Largest encoded event (without newline) that fits one record. Longer events must be
    /// split with [`split_line`] before [`Packer::push`].
    pub fn max_event_bytes(&self) -> usize {
        let cap = self.raw_cap();
        cap - 1
    }

    fn raw_cap(&self) -> usize {
        match self.format {
            RecordFormat::NdjsonGzip => {
                self.limits.record_bytes - gzip_margin(self.limits.record_bytes)
            }
            RecordFormat::Json | RecordFormat::Ndjson => self.limits.record_bytes,
        }
    }

    fn event_cap(&self) -> usize {
        match self.format {
            RecordFormat::Json => 1,
            RecordFormat::Ndjson => self.limits.ndjson_events,
            RecordFormat::NdjsonGzip => usize::MAX,
        }
    }

    /// Adds one encoded event. Returns false (and packs nothing) when the event is longer than
    /// [`Packer::max_event_bytes`]; the caller splits it and pushes the pieces.
    pub fn push(&mut self, event: &[u8], token: T) -> bool {
        let needed = event.len() + 1;
        if needed > self.raw_cap() {
            return false;
        }
        let fits = self.open.as_ref().is_some_and(|open| {
            open.raw_bytes + needed <= self.raw_cap() && open.tokens.len() < self.event_cap()
        });
        if !fits {
            self.seal();
        }
        let open = self.open.get_or_insert_with(|| OpenRecord {
            body: match self.format {
                RecordFormat::NdjsonGzip => Body::Gzip(Vec::new()),
                RecordFormat::Json | RecordFormat::Ndjson => Body::Plain(Vec::new()),
            },
            raw_bytes: 0,
            tokens: Vec::new(),
        });
        let (Body::Plain(buf) | Body::Gzip(buf)) = &mut open.body;
        buf.extend_from_slice(event);
        buf.push(b'\n');
        open.raw_bytes += needed;
        open.tokens.push(token);
        if open.tokens.len() >= self.event_cap() {
            self.seal();
        }
        true
    }

    /// Closes the open record (if any) into the current batch.
    fn seal(&mut self) {
        let Some(open) = self.open.take() else {
            return;
        };
        let data = match open.body {
            Body::Plain(buf) => buf,
            Body::Gzip(raw) => {
                // Deflate output is rarely above a third of its input for log lines.
                let mut enc =
                    GzEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::fast());
                // Writing into a Vec-backed encoder cannot fail.
                let _ = enc.write_all(&raw);
                enc.finish().unwrap_or_default()
            }
        };
        debug_assert!(data.len() <= self.limits.record_bytes);
        if self.batch.len() + 1 > self.limits.batch_records
            || self.batch_bytes + data.len() > self.limits.batch_bytes
        {
            self.cut_batch();
        }
        self.batch_bytes += data.len();
        self.batch.push(Record {
            data: Bytes::from(data),
            raw_bytes: open.raw_bytes,
            tokens: open.tokens,
        });
        if self.batch.len() == self.limits.batch_records {
            self.cut_batch();
        }
    }

    fn cut_batch(&mut self) {
        if !self.batch.is_empty() {
            self.ready.push_back(Batch {
                records: std::mem::take(&mut self.batch),
            });
            self.batch_bytes = 0;
        }
    }

    /// Closes everything pending into ready batches (flush interval, drain).
    pub fn flush(&mut self) {
        self.seal();
        self.cut_batch();
    }

    /// Next batch that is full or was flushed.
    pub fn take_ready(&mut self) -> Option<Batch<T>> {
        self.ready.pop_front()
    }

    /// True when nothing is buffered or waiting.
    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.batch.is_empty() && self.ready.is_empty()
    }

    /// Uncompressed bytes buffered and not yet in a ready batch.
    pub fn pending_raw_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.raw_bytes)
            + self.batch.iter().map(|r| r.raw_bytes).sum::<usize>()
    }
}

/// Groups records that exist already (each within [`Limits::record_bytes`]) into batches within
/// the call limits, keeping their order. `firetail redrive` uses it: its records come whole from
/// the backup bucket and must be sent byte for byte, so they cannot go through [`Packer`].
pub fn batch_records<T>(
    records: impl IntoIterator<Item = Record<T>>,
    limits: &Limits,
) -> Vec<Batch<T>> {
    let mut batches = Vec::new();
    let mut current: Vec<Record<T>> = Vec::new();
    let mut bytes = 0;
    for record in records {
        if !current.is_empty()
            && (current.len() >= limits.batch_records
                || bytes + record.data.len() > limits.batch_bytes)
        {
            batches.push(Batch {
                records: std::mem::take(&mut current),
            });
            bytes = 0;
        }
        bytes += record.data.len();
        current.push(record);
    }
    if !current.is_empty() {
        batches.push(Batch { records: current });
    }
    batches
}

/// Splits `line` into pieces of at most `max_piece` bytes, cutting on UTF-8 character
/// boundaries when the line is valid UTF-8 there (so each piece stays readable).
pub fn split_line(line: &[u8], max_piece: usize) -> Vec<&[u8]> {
    let max_piece = max_piece.max(4);
    let mut pieces = Vec::with_capacity(line.len() / max_piece + 1);
    let mut rest = line;
    while rest.len() > max_piece {
        let mut cut = max_piece;
        // Back off over UTF-8 continuation bytes (at most 3) to a character start.
        while cut > max_piece - 3 && (rest[cut] & 0xC0) == 0x80 {
            cut -= 1;
        }
        if (rest[cut] & 0xC0) == 0x80 {
            cut = max_piece;
        }
        let (head, tail) = rest.split_at(cut);
        pieces.push(head);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Read as _;

    fn small(record_bytes: usize) -> Limits {
        Limits {
            record_bytes,
            batch_records: 3,
            batch_bytes: 4 * record_bytes,
            ndjson_events: 4,
        }
    }

    #[test]
    fn batch_records_keeps_order_within_call_limits() {
        let limits = Limits {
            record_bytes: 10,
            batch_records: 3,
            batch_bytes: 20,
            ndjson_events: 4,
        };
        let records = [10, 10, 1, 1, 1, 1, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| Record {
                data: Bytes::from(vec![b'x'; n]),
                raw_bytes: n,
                tokens: vec![i],
            });
        let batches = batch_records(records, &limits);
        let shape: Vec<Vec<usize>> = batches
            .iter()
            .map(|b| b.records.iter().map(|r| r.tokens[0]).collect())
            .collect();
        // 20 bytes fill the first call; three records fill the second.
        assert_eq!(shape, vec![vec![0, 1], vec![2, 3, 4], vec![5, 6]]);
        assert!(batch_records(Vec::<Record<usize>>::new(), &limits).is_empty());
    }

    fn drain<T>(p: &mut Packer<T>) -> Vec<Batch<T>> {
        p.flush();
        std::iter::from_fn(|| p.take_ready()).collect()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn check_limits<T>(batches: &[Batch<T>], limits: Limits) {
        for b in batches {
            assert!(!b.records.is_empty());
            assert!(b.records.len() <= limits.batch_records);
            assert!(b.data_bytes() <= limits.batch_bytes);
            for r in &b.records {
                assert!(
                    r.data.len() <= limits.record_bytes,
                    "{} > {}",
                    r.data.len(),
                    limits.record_bytes
                );
            }
        }
    }

    #[test]
    fn every_event_lands_once_in_order_for_each_format() {
        for format in [
            RecordFormat::Json,
            RecordFormat::Ndjson,
            RecordFormat::NdjsonGzip,
        ] {
            let limits = small(200);
            let mut p = Packer::new(format, limits);
            let events: Vec<String> = (0..101)
                .map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}", "x".repeat(i % 37)))
                .collect();
            for (i, e) in events.iter().enumerate() {
                assert!(p.push(e.as_bytes(), i));
            }
            let batches = drain(&mut p);
            assert!(p.is_empty());
            check_limits(&batches, limits);
            let mut tokens = Vec::new();
            let mut lines = Vec::new();
            for r in batches.iter().flat_map(|b| &b.records) {
                let text = match format {
                    RecordFormat::NdjsonGzip => gunzip(&r.data),
                    _ => r.data.to_vec(),
                };
                let text = String::from_utf8(text).unwrap();
                assert!(text.ends_with('\n'));
                let in_record: Vec<String> = text.lines().map(str::to_owned).collect();
                assert_eq!(
                    in_record.len(),
                    r.tokens.len(),
                    "{format:?}: tokens match events in record"
                );
                assert_eq!(r.raw_bytes, text.len());
                match format {
                    RecordFormat::Json => assert_eq!(in_record.len(), 1),
                    RecordFormat::Ndjson => assert!(in_record.len() <= limits.ndjson_events),
                    RecordFormat::NdjsonGzip => {}
                }
                lines.extend(in_record);
                tokens.extend(r.tokens.iter().copied());
            }
            assert_eq!(tokens, (0..101).collect::<Vec<_>>(), "{format:?}");
            assert_eq!(lines, events, "{format:?}");
        }
    }

    #[test]
    fn gzip_records_stay_under_limit_on_incompressible_input() {
        let limits = Limits {
            record_bytes: 64 * 1024,
            batch_records: 500,
            batch_bytes: 1 << 20,
            ndjson_events: 500,
        };
        let mut p = Packer::new(RecordFormat::NdjsonGzip, limits);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut n = 0;
        for _ in 0..400 {
            // Random printable bytes barely compress.
            let len = rng.usize(100..4000);
            let ev: Vec<u8> = (0..len).map(|_| rng.u8(b'!'..=b'~')).collect();
            assert!(p.push(&ev, ()));
            n += 1;
        }
        let batches = drain(&mut p);
        check_limits(&batches, limits);
        assert_eq!(batches.iter().map(Batch::events).sum::<usize>(), n);
    }

    #[test]
    fn batch_limits_cut_by_count_and_bytes() {
        let limits = Limits {
            record_bytes: 100,
            batch_records: 500,
            batch_bytes: 250,
            ndjson_events: 500,
        };
        let mut p = Packer::new(RecordFormat::Json, limits);
        for i in 0..10 {
            assert!(p.push(&[b'a'; 89], i));
        }
        // 90-byte records, 250-byte batches: two records each.
        let batches = drain(&mut p);
        assert_eq!(
            batches.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
            vec![2, 2, 2, 2, 2]
        );
        let mut p = Packer::new(RecordFormat::Json, Limits::FIREHOSE);
        for i in 0..1001 {
            assert!(p.push(b"{}", i));
        }
        let batches = drain(&mut p);
        assert_eq!(
            batches.iter().map(|b| b.records.len()).collect::<Vec<_>>(),
            vec![500, 500, 1]
        );
    }

    #[test]
    fn full_batch_is_ready_without_flush() {
        let mut p = Packer::new(RecordFormat::Json, small(50));
        for i in 0..3 {
            assert!(p.push(b"{}", i));
        }
        assert_eq!(p.take_ready().map(|b| b.records.len()), Some(3));
        assert!(p.take_ready().is_none());
    }

    #[test]
    fn oversize_event_is_refused_not_dropped() {
        let mut p = Packer::new(RecordFormat::Ndjson, small(100));
        assert_eq!(p.max_event_bytes(), 99);
        assert!(!p.push(&[b'a'; 100], 0));
        assert!(p.push(&[b'a'; 99], 1));
        let batches = drain(&mut p);
        assert_eq!(batches[0].records[0].tokens, vec![1]);
    }

    #[test]
    fn billing_rounds_up_to_five_kib() {
        assert_eq!(billed_bytes(0), 5120);
        assert_eq!(billed_bytes(1), 5120);
        assert_eq!(billed_bytes(5120), 5120);
        assert_eq!(billed_bytes(5121), 10240);
    }

    proptest::proptest! {
        /// Any sequence of event sizes, any format, any limits: every event lands exactly once,
        /// in order, and no record or batch breaks a limit.
        #[test]
        fn packing_invariants(
            sizes in proptest::collection::vec(0usize..3000, 0..300),
            format in proptest::sample::select(vec![RecordFormat::Json, RecordFormat::Ndjson, RecordFormat::NdjsonGzip]),
            record_bytes in 4096usize..20_000,
            batch_records in 1usize..20,
            ndjson_events in 1usize..50,
            flush_every in 1usize..100,
        ) {
            let limits = Limits { record_bytes, batch_records, batch_bytes: record_bytes * 3, ndjson_events };
            let mut p = Packer::new(format, limits);
            let mut out = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let event: Vec<u8> = std::iter::repeat_n(b'a' + (i % 26) as u8, *size).collect();
                proptest::prop_assert!(p.push(&event, i));
                if i % flush_every == 0 {
                    p.flush();
                }
                out.extend(std::iter::from_fn(|| p.take_ready()));
            }
            out.extend(drain(&mut p));
            check_limits(&out, limits);
            let tokens: Vec<usize> = out.iter().flat_map(|b| b.records.iter().flat_map(|r| r.tokens.iter().copied())).collect();
            proptest::prop_assert_eq!(tokens, (0..sizes.len()).collect::<Vec<_>>());
            for r in out.iter().flat_map(|b| &b.records) {
                let text = match format {
                    RecordFormat::NdjsonGzip => gunzip(&r.data),
                    _ => r.data.to_vec(),
                };
                let lens: Vec<usize> = text.split(|b| *b == b'\n').map(<[u8]>::len).collect();
                // n events, each newline-terminated, leave one empty tail.
                proptest::prop_assert_eq!(lens.len(), r.tokens.len() + 1);
                for (len, token) in lens.iter().zip(&r.tokens) {
                    proptest::prop_assert_eq!(*len, sizes[*token]);
                }
            }
        }
    }

    #[test]
    fn split_keeps_every_byte_and_respects_char_boundaries() {
        let line = "aé日🎉".repeat(50);
        for max in [4, 5, 7, 16, 100] {
            let pieces = split_line(line.as_bytes(), max);
            assert_eq!(pieces.concat(), line.as_bytes());
            for p in &pieces {
                assert!(p.len() <= max);
                assert!(
                    std::str::from_utf8(p).is_ok(),
                    "max {max}: piece cut inside a char"
                );
            }
        }
        let invalid = vec![0x80u8; 33];
        let pieces = split_line(&invalid, 8);
        assert_eq!(pieces.concat(), invalid);
        assert!(pieces.iter().all(|p| p.len() <= 8));
    }
}
