//! Packing encoded events into Firehose records, and records into `PutRecordBatch` calls.
//!
//! # Layout
//! - [`Limits`]: what a record and a call may hold ([`Limits::FIREHOSE`] outside tests).
//! - [`Packer`]: pure state machine; encoded events in, [`Batch`]es out, in the layout of a
//!   [`RecordFormat`] (see `firetail_wire::format`). Version 1 formats take events encoded by
//!   the caller ([`Packer::push`]); version 2 formats encode each event against the header of
//!   the record it lands in ([`Packer::push_v2`]). Each [`Record`] carries the
//!   acknowledgement tokens of the events inside it, so the sender can acknowledge exactly
//!   the events whose record Firehose accepted.
//! - [`split_line`]: cuts a line that cannot fit one record into pieces on UTF-8 boundaries.
//!
//! Firehose bills every record rounded up to 5 KiB, so packing many small events into one
//! record is what keeps the bill close to the raw volume.

use std::sync::Arc;

use firetail_firehose::{Batch, Batcher, CallLimits, Record};
use firetail_wire::RecordFormat;
use firetail_wire::codec::{Codec, Zstder};
use firetail_wire::event::{Cut, EventRef};
use firetail_wire::gzip::Gzipper;
use firetail_wire::limits::{
    FIREHOSE_MAX_RECORD_BYTES, NDJSON_MAX_EVENTS_PER_RECORD, PUT_RECORD_BATCH_MAX_BYTES,
    PUT_RECORD_BATCH_MAX_RECORDS,
};
use firetail_wire::v2;

/// Bytes every record may need beyond its events for gzip framing, even on incompressible
/// input (deflate stored blocks cost 5 bytes per <=64 KiB; the gzip header and trailer 18).
/// A 1/256 margin is several times that bound.
fn gzip_margin(record_bytes: usize) -> usize {
    record_bytes / 256 + 64
}

/// The same for zstd: its worst case (`ZSTD_COMPRESSBOUND`) is 1/256 of the input plus up to
/// 64 bytes for inputs under 128 KiB, plus the frame header.
fn zstd_margin(record_bytes: usize) -> usize {
    record_bytes / 256 + 128
}

/// The compression level a format's records get unless `--compression-level` says otherwise
/// (docs/BENCHMARKS.md, "Compression choice"); `None` for plain formats and for `v2-zstd`,
/// whose default is the measured profile [`ZstdProfile::Auto`] (level 6, or 3 for long events).
pub fn default_compression_level(format: RecordFormat) -> Option<i32> {
    match format {
        RecordFormat::Json | RecordFormat::Ndjson | RecordFormat::V2Zstd => None,
        // Version 1 keeps the level it always had: its records and bills do not change.
        RecordFormat::NdjsonGzip => Some(1),
        RecordFormat::V2Gzip => Some(DEFAULT_V2_GZIP_LEVEL),
    }
}

// The defaults are the record contract's (`firetail_wire::codec`), where the compression
// bench and the transform's benchmarks read them too.
pub use firetail_wire::codec::{DEFAULT_V2_GZIP_LEVEL, ZstdProfile};

/// The levels each codec accepts (the reference libraries' regular ranges).
pub fn level_range(codec: Codec) -> std::ops::RangeInclusive<i32> {
    match codec {
        Codec::Gzip => 1..=9,
        Codec::Zstd => 1..=19,
    }
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
        record_bytes: FIREHOSE_MAX_RECORD_BYTES,
        batch_records: PUT_RECORD_BATCH_MAX_RECORDS,
        batch_bytes: PUT_RECORD_BATCH_MAX_BYTES,
        ndjson_events: NDJSON_MAX_EVENTS_PER_RECORD,
    };

    fn call(&self) -> CallLimits {
        CallLimits {
            records: self.batch_records,
            bytes: self.batch_bytes,
        }
    }
}

#[derive(Debug)]
enum Body {
    Plain(Vec<u8>),
    /// The uncompressed events; compressed in one call when the record is sealed. Feeding the
    /// encoder event by event cost ~2x the CPU (per-call copies and checksum setup in the
    /// deflate stream, measured with perf on `benches/sidecar`), for ~1 MiB more peak memory.
    Compressed(Vec<u8>),
}

/// What a version 2 record's header states (shared with the encoder, so opening a record
/// copies no bytes).
#[derive(Debug, Clone)]
pub struct V2Source {
    /// `stream`.
    pub stream: Arc<str>,
    /// `file`.
    pub file: Arc<str>,
    /// `kubernetes` (empty when nothing is known).
    pub kubernetes: Arc<[u8]>,
}

impl V2Source {
    fn header(&self) -> v2::Header<'_> {
        v2::Header {
            stream: &self.stream,
            file: &self.file,
            kubernetes: &self.kubernetes,
        }
    }
}

#[derive(Debug)]
struct OpenRecord<T> {
    body: Body,
    raw_bytes: usize,
    tokens: Vec<T>,
    /// The header of a version 2 record.
    header: Option<V2Source>,
}

#[derive(Debug)]
enum Compressor {
    None,
    Gzip(Gzipper),
    Zstd(Zstder),
}

/// Packs encoded events into records and records into batches.
#[derive(Debug)]
pub struct Packer<T> {
    format: RecordFormat,
    limits: Limits,
    open: Option<OpenRecord<T>>,
    batches: Batcher<T>,
    compressor: Compressor,
    /// A version 2 event being encoded (reused).
    scratch: Vec<u8>,
}

impl<T> Packer<T> {
    /// A packer for `format` within `limits`, at the format's default compression level.
    pub fn new(format: RecordFormat, limits: Limits) -> Self {
        Self::with_level(format, limits, None)
    }

    /// A packer for `format` within `limits`, compressing at `level` (`None`: the format's
    /// default, [`default_compression_level`]; ignored for plain formats).
    pub fn with_level(format: RecordFormat, limits: Limits, level: Option<i32>) -> Self {
        let level = level.or(default_compression_level(format));
        let compressor = match (format.codec(), level) {
            (Some(Codec::Gzip), Some(l)) => Compressor::Gzip(Gzipper::new(
                flate2::Compression::new(u32::try_from(l.clamp(1, 9)).unwrap_or(1)),
            )),
            (Some(Codec::Zstd), Some(l)) => Compressor::Zstd(Zstder::new(l)),
            (Some(Codec::Zstd), None) => Compressor::Zstd(Zstder::with_profile(ZstdProfile::Auto)),
            _ => Compressor::None,
        };
        Self {
            format,
            limits,
            open: None,
            batches: Batcher::new(limits.call()),
            compressor,
            scratch: Vec::new(),
        }
    }

    /// The record format packed.
    pub fn format(&self) -> RecordFormat {
        self.format
    }

    /// Version 1: the largest encoded event (without newline) that fits one record; longer
    /// events must be split with [`split_line`] before [`Packer::push`]. Version 2: the most
    /// bytes a header line and one event, newlines included, may take
    /// ([`v2::first_event_len_bound`] of a piece must not exceed it).
    pub fn max_event_bytes(&self) -> usize {
        let cap = self.raw_cap();
        match self.format.version() {
            firetail_wire::format::Version::V1 => cap - 1,
            firetail_wire::format::Version::V2 => cap,
        }
    }

    fn raw_cap(&self) -> usize {
        let record = self.limits.record_bytes;
        match self.format.codec() {
            Some(Codec::Gzip) => record - gzip_margin(record),
            Some(Codec::Zstd) => record - zstd_margin(record),
            None => record,
        }
    }

    fn event_cap(&self) -> usize {
        match self.format {
            RecordFormat::Json => 1,
            RecordFormat::Ndjson => self.limits.ndjson_events,
            RecordFormat::NdjsonGzip | RecordFormat::V2Zstd | RecordFormat::V2Gzip => usize::MAX,
        }
    }

    /// Adds one event to a version 2 record: into the open record, encoded against its header,
    /// when it fits; else into a new record whose header is this event's. Gives the token back
    /// (and packs nothing) when even a new record cannot hold it; the caller splits the line
    /// and pushes the pieces.
    pub fn push_v2(
        &mut self,
        ev: &EventRef<'_>,
        cut: Option<Cut>,
        source: &V2Source,
        token: T,
    ) -> Result<(), T> {
        debug_assert_eq!(self.format.version(), firetail_wire::format::Version::V2);
        let cap = self.raw_cap();
        let this = source.header();
        if let Some(open) = self.open.as_mut()
            && let Some(header) = &open.header
        {
            self.scratch.clear();
            v2::encode_cut(ev, cut, &this, &header.header(), &mut self.scratch);
            self.scratch.push(b'\n');
            if open.raw_bytes + self.scratch.len() <= cap {
                let (Body::Compressed(buf) | Body::Plain(buf)) = &mut open.body;
                buf.extend_from_slice(&self.scratch);
                open.raw_bytes += self.scratch.len();
                open.tokens.push(token);
                return Ok(());
            }
        }
        self.scratch.clear();
        v2::write_header(&this, &mut self.scratch);
        self.scratch.push(b'\n');
        v2::encode_cut(ev, cut, &this, &this, &mut self.scratch);
        self.scratch.push(b'\n');
        if self.scratch.len() > cap {
            return Err(token);
        }
        self.seal();
        let mut buf = Vec::with_capacity(self.scratch.len().max(64 * 1024).min(cap));
        buf.extend_from_slice(&self.scratch);
        self.open = Some(OpenRecord {
            body: match self.compressor {
                Compressor::None => Body::Plain(buf),
                Compressor::Gzip(_) | Compressor::Zstd(_) => Body::Compressed(buf),
            },
            raw_bytes: self.scratch.len(),
            tokens: vec![token],
            header: Some(source.clone()),
        });
        Ok(())
    }

    /// Adds one event of a version 1 format, encoded by the caller. Returns false (and packs
    /// nothing) when the event is longer than [`Packer::max_event_bytes`]; the caller splits it
    /// and pushes the pieces.
    pub fn push(&mut self, event: &[u8], token: T) -> bool {
        debug_assert_eq!(self.format.version(), firetail_wire::format::Version::V1);
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
        let compressed = !matches!(self.compressor, Compressor::None);
        let open = self.open.get_or_insert_with(|| OpenRecord {
            body: if compressed {
                Body::Compressed(Vec::new())
            } else {
                Body::Plain(Vec::new())
            },
            raw_bytes: 0,
            tokens: Vec::new(),
            header: None,
        });
        let (Body::Plain(buf) | Body::Compressed(buf)) = &mut open.body;
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
            Body::Compressed(raw) => {
                let mut out = Vec::with_capacity(raw.len() / 3);
                match &mut self.compressor {
                    Compressor::Gzip(g) => g.gzip_into(&raw, &mut out),
                    Compressor::Zstd(z) => z.zstd_record_into(&raw, open.tokens.len(), &mut out),
                    Compressor::None => out = raw,
                }
                out
            }
        };
        debug_assert!(data.len() <= self.limits.record_bytes);
        self.batches.push(Record {
            data: data.into(),
            raw_bytes: open.raw_bytes,
            tokens: open.tokens,
        });
    }

    /// Closes everything pending into ready batches (flush interval, drain).
    pub fn flush(&mut self) {
        self.seal();
        self.batches.cut();
    }

    /// Next batch that is full or was flushed.
    pub fn take_ready(&mut self) -> Option<Batch<T>> {
        self.batches.take_ready()
    }

    /// True when nothing is buffered or waiting.
    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.batches.is_empty()
    }

    /// Uncompressed bytes buffered and not yet in a ready batch.
    pub fn pending_raw_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |o| o.raw_bytes)
            + self
                .batches
                .open_records()
                .iter()
                .map(|r| r.raw_bytes)
                .sum::<usize>()
    }
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
    use firetail_firehose::Batch;

    fn small(record_bytes: usize) -> Limits {
        Limits {
            record_bytes,
            batch_records: 3,
            batch_bytes: 4 * record_bytes,
            ndjson_events: 4,
        }
    }

    fn drain<T>(p: &mut Packer<T>) -> Vec<Batch<T>> {
        p.flush();
        std::iter::from_fn(|| p.take_ready()).collect()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        firetail_wire::gzip::gunzip_capped(data, 1 << 30).unwrap()
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
                    RecordFormat::V2Zstd | RecordFormat::V2Gzip => unreachable!("version 1 only"),
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

    fn v2_source(file: &str, kube: &[u8]) -> V2Source {
        V2Source {
            stream: "file".into(),
            file: file.into(),
            kubernetes: kube.into(),
        }
    }

    fn decompress(data: &[u8]) -> Vec<u8> {
        firetail_wire::codec::maybe_decompress(data, 1 << 30)
            .unwrap()
            .0
            .into_owned()
    }

    #[test]
    fn v2_records_state_the_header_once_and_events_only_what_varies() {
        const KUBE: &[u8] = br#"{"pod_name":"web-1"}"#;
        let a = v2_source("/logs/app/a.log", KUBE);
        let b = v2_source("/logs/app/b.log", KUBE);
        let none = v2_source("/logs/app/a.log", b"");
        for format in [RecordFormat::V2Zstd, RecordFormat::V2Gzip] {
            let limits = small(4096);
            let mut p = Packer::new(format, limits);
            let mut want = Vec::new();
            for i in 0..300u32 {
                let line = format!("line {i} {}", "x".repeat((i % 50) as usize));
                let source = match i % 7 {
                    3 => &b,
                    5 => &none,
                    _ => &a,
                };
                let ev = EventRef {
                    line: line.as_bytes(),
                    time: std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::from(i)),
                    file: &source.file,
                    part: None,
                };
                assert!(p.push_v2(&ev, None, source, i).is_ok());
                want.push((line, source.file.to_string(), !source.kubernetes.is_empty()));
            }
            let batches = drain(&mut p);
            check_limits(&batches, limits);
            let mut got = Vec::new();
            let mut tokens = Vec::new();
            for r in batches.iter().flat_map(|b| &b.records) {
                assert_eq!(Codec::of(&r.data), format.codec(), "{format}");
                let text = decompress(&r.data);
                assert_eq!(r.raw_bytes, text.len());
                let (header, events) = v2::split_header(&text).expect("a header first");
                let header: serde_json::Value = serde_json::from_slice(header).unwrap();
                assert_eq!(header["firetail_format"], 2);
                let lines: Vec<&[u8]> = firetail_wire::format::lines(events).collect();
                assert_eq!(lines.len(), r.tokens.len(), "{format}: one token per event");
                for line in lines {
                    let e: serde_json::Value = serde_json::from_slice(line).unwrap();
                    // What an event does not say is the header's.
                    let field = |k: &str| e.get(k).unwrap_or(&header[k]).clone();
                    assert!(
                        e.get("stream").is_none(),
                        "{format}: same stream, never repeated"
                    );
                    let kube = field("kubernetes");
                    let has_kube = kube.as_object().is_some_and(|m| !m.is_empty());
                    got.push((
                        e["log"].as_str().unwrap().to_owned(),
                        field("file").as_str().unwrap().to_owned(),
                        has_kube,
                    ));
                    assert!(e["time"].is_i64());
                }
                tokens.extend(r.tokens.iter().copied());
            }
            assert_eq!(tokens, (0..300).collect::<Vec<_>>(), "{format}");
            assert_eq!(got, want, "{format}");
        }
    }

    #[test]
    fn v2_refuses_what_no_record_can_hold_and_stays_under_the_limit_on_noise() {
        let limits = Limits {
            record_bytes: 64 * 1024,
            batch_records: 500,
            batch_bytes: 1 << 20,
            ndjson_events: 500,
        };
        let source = v2_source("/logs/app/a.log", br#"{"pod_name":"web-1"}"#);
        for format in [RecordFormat::V2Zstd, RecordFormat::V2Gzip] {
            let mut p = Packer::new(format, limits);
            let big = vec![b'a'; limits.record_bytes];
            fn ev(line: &[u8]) -> EventRef<'_> {
                EventRef {
                    line,
                    time: std::time::UNIX_EPOCH,
                    file: "/logs/app/a.log",
                    part: None,
                }
            }
            assert_eq!(p.push_v2(&ev(&big), None, &source, 0), Err(0));
            assert!(p.is_empty(), "a refusal packs nothing");
            let mut rng = fastrand::Rng::with_seed(7);
            for i in 0..400 {
                let len = rng.usize(100..4000);
                let line: Vec<u8> = (0..len).map(|_| rng.u8(b'!'..=b'~')).collect();
                assert!(p.push_v2(&ev(&line), None, &source, i).is_ok());
            }
            let batches = drain(&mut p);
            check_limits(&batches, limits);
            assert_eq!(batches.iter().map(Batch::events).sum::<usize>(), 400);
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
