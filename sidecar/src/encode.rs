//! Engine events into encoded events for the packer: the `kubernetes` object, the oversize
//! rule (split into marked parts, or truncate), and the acknowledgement token each event
//! carries to its record.
//!
//! # Layout
//! - [`Token`]: what a record holds to acknowledge one event, or one piece of a split event
//!   (a [`SplitGroup`] acknowledges the engine event once its last piece is accepted).
//! - [`Encoder`]: [`firetail_wire::event::encode`] for each engine event (version 1 formats;
//!   version 2 formats hand the event to [`Packer::push_v2`], which encodes it against its
//!   record's header), splitting what cannot fit a record so each piece's encoding fits for
//!   sure, and renumbering parts when an engine part itself must be split again.
//!
//! Acknowledgement is per event and only after Firehose accepted the record holding it (for a
//! split event: all of its pieces), so the engine's checkpoints never pass undelivered data.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use firetail_tail::{Acker, LogEvent, SourceFile};
use firetail_wire::event::{Cut, EventRef, PartMark, encode_cut, encoded_len_bound};
use firetail_wire::format::Version;
use firetail_wire::v2;

use crate::config::OversizeMode;
use crate::metrics::Observability;
use crate::pack::{Packer, V2Source, split_line};
use crate::pod::{Enricher, PodInfo};

/// What a record carries to acknowledge one event (or one piece of a split event).
#[derive(Debug)]
pub enum Token {
    /// A whole engine event.
    Whole {
        /// Its file.
        source: Arc<SourceFile>,
        /// Its first byte.
        offset: u64,
        /// Just past its last byte.
        end_offset: u64,
    },
    /// One piece of an engine event that had to be split.
    Piece(Arc<SplitGroup>),
}

/// The pieces of one engine event that had to be split; acknowledged when the last one is.
#[derive(Debug)]
pub struct SplitGroup {
    remaining: AtomicU32,
    source: Arc<SourceFile>,
    offset: u64,
    end_offset: u64,
}

impl Token {
    /// Acknowledges what this token stands for (for a piece: once all pieces are).
    pub fn ack(&self, acker: &Acker) {
        match self {
            Self::Whole {
                source,
                offset,
                end_offset,
            } => acker.ack(source, *offset, *end_offset),
            Self::Piece(group) => {
                if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    acker.ack(&group.source, group.offset, group.end_offset);
                }
            }
        }
    }
}

/// Turns engine events into encoded events for the packer.
pub struct Encoder {
    /// The pod metadata of every event.
    pub enricher: Enricher,
    stream_label: Arc<str>,
    oversize: OversizeMode,
    /// Extra parts added so far to the engine-split line being read from each source (keyed by
    /// the source's address, which is stable while an `Arc` to it is held here).
    renumber: HashMap<usize, (Arc<SourceFile>, u32)>,
    /// The last source's path as text (events come in runs from one file).
    last_file: Option<(Arc<SourceFile>, Arc<str>)>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

impl Encoder {
    /// An encoder writing `stream_label` as every event's `stream`.
    pub fn new(pod: PodInfo, stream_label: &str, oversize: OversizeMode) -> Self {
        Self {
            enricher: Enricher::new(pod),
            stream_label: stream_label.into(),
            oversize,
            renumber: HashMap::new(),
            last_file: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Encodes `ev` and pushes it (or its pieces) into `packer`.
    pub fn push(&mut self, ev: LogEvent, packer: &mut Packer<Token>, obs: &Observability) {
        let label = Arc::clone(&self.stream_label);
        self.push_labelled(ev, &label, packer, obs);
    }

    /// [`Self::push`] with `stream` as the event's `stream` instead of the configured label
    /// (the stdout source's lines say `stdout`).
    pub fn push_labelled(
        &mut self,
        ev: LogEvent,
        stream: &Arc<str>,
        packer: &mut Packer<Token>,
        obs: &Observability,
    ) {
        let file = match &self.last_file {
            Some((src, text)) if Arc::ptr_eq(src, &ev.source) => Arc::clone(text),
            _ => {
                let text: Arc<str> = ev.source.path.to_string_lossy().into();
                self.last_file = Some((Arc::clone(&ev.source), Arc::clone(&text)));
                text
            }
        };
        let container = (!ev.source.container.is_empty()).then_some(ev.source.container.as_str());
        let kube = self.enricher.kubernetes(container);
        let key = Arc::as_ptr(&ev.source) as usize;
        let shift = self.renumber.get(&key).map_or(0, |(_, n)| *n);
        let engine_part = ev.part.map(|p| PartMark {
            index: p.index + shift,
            last: p.last,
        });
        let cut = ev.part.and_then(|p| p.cut).map(wire_cut);
        let max_event = packer.max_event_bytes();
        let whole = EventRef {
            line: &ev.bytes,
            time: ev.read_time,
            file: &file,
            part: engine_part,
        };
        let v2_source = (packer.format().version() == Version::V2).then(|| V2Source {
            stream: Arc::clone(stream),
            file: Arc::clone(&file),
            kubernetes: Arc::clone(&kube),
        });
        let token = Token::Whole {
            source: Arc::clone(&ev.source),
            offset: ev.offset,
            end_offset: ev.end_offset,
        };
        if self
            .try_push(
                &whole,
                cut,
                (stream, &kube),
                v2_source.as_ref(),
                token,
                packer,
            )
            .is_ok()
        {
            if ev.part.is_some_and(|p| p.last) {
                self.renumber.remove(&key);
            }
            return;
        }
        // Too big for one record: cut the line so each piece's encoding fits for sure.
        let bound = |line_len: usize, file_len: usize, stream_len: usize, kube_len: usize| {
            if v2_source.is_some() {
                v2::first_event_len_bound(line_len, file_len, stream_len, kube_len)
            } else {
                encoded_len_bound(line_len, file_len, stream_len, kube_len)
            }
        };
        let overhead = bound(0, file.len(), stream.len(), kube.len());
        let per_byte_worst = bound(1, 0, 0, 0) - bound(0, 0, 0, 0) + 2;
        let piece_bytes = (max_event.saturating_sub(overhead) / per_byte_worst).max(64);
        let pieces = split_line(&ev.bytes, piece_bytes);
        match self.oversize {
            OversizeMode::Truncate => {
                obs.metrics.events_truncated.inc();
                let kept = pieces.first().copied().unwrap_or_default();
                let mut line = kept.to_vec();
                line.extend_from_slice(
                    format!(
                        " [firetail: truncated {} bytes]",
                        ev.bytes.len() - kept.len()
                    )
                    .as_bytes(),
                );
                tracing::warn!(
                    file = %file,
                    offset = ev.offset,
                    line_bytes = ev.bytes.len(),
                    kept_bytes = kept.len(),
                    "line too long for one record, truncated as configured"
                );
                let truncated = EventRef {
                    line: &line,
                    ..whole
                };
                let token = Token::Whole {
                    source: Arc::clone(&ev.source),
                    offset: ev.offset,
                    end_offset: ev.end_offset,
                };
                if self
                    .try_push(
                        &truncated,
                        cut,
                        (stream, &kube),
                        v2_source.as_ref(),
                        token,
                        packer,
                    )
                    .is_err()
                {
                    report_refused(packer, line.len(), obs);
                }
                if ev.part.is_some_and(|p| p.last) {
                    self.renumber.remove(&key);
                }
            }
            OversizeMode::Split => {
                obs.metrics.events_split.inc();
                let n = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
                let group = Arc::new(SplitGroup {
                    remaining: AtomicU32::new(n),
                    source: Arc::clone(&ev.source),
                    offset: ev.offset,
                    end_offset: ev.end_offset,
                });
                let base = engine_part.map_or(0, |p| p.index);
                let line_ends_here = ev.part.is_none_or(|p| p.last);
                for (j, piece) in pieces.iter().enumerate() {
                    let j = u32::try_from(j).unwrap_or(u32::MAX);
                    let part = PartMark {
                        index: base + j,
                        last: line_ends_here && j + 1 == n,
                    };
                    let ev_piece = EventRef {
                        line: piece,
                        part: Some(part),
                        ..whole
                    };
                    let token = Token::Piece(Arc::clone(&group));
                    // Only the final piece ends where the writer stopped.
                    let piece_cut = cut.filter(|_| j + 1 == n);
                    if self
                        .try_push(
                            &ev_piece,
                            piece_cut,
                            (stream, &kube),
                            v2_source.as_ref(),
                            token,
                            packer,
                        )
                        .is_err()
                    {
                        report_refused(packer, piece.len(), obs);
                    }
                }
                if line_ends_here {
                    self.renumber.remove(&key);
                } else {
                    let entry = self
                        .renumber
                        .entry(key)
                        .or_insert_with(|| (Arc::clone(&ev.source), 0));
                    entry.1 += n - 1;
                }
            }
        }
    }
}

impl Encoder {
    /// Packs one event in the packer's format; gives the token back when the event cannot fit
    /// a record (the caller splits it, or reports it).
    fn try_push(
        &mut self,
        ev: &EventRef<'_>,
        cut: Option<Cut>,
        (stream, kube): (&str, &[u8]),
        v2_source: Option<&V2Source>,
        token: Token,
        packer: &mut Packer<Token>,
    ) -> Result<(), Token> {
        if let Some(source) = v2_source {
            return packer.push_v2(ev, cut, source, token);
        }
        self.buf.clear();
        encode_cut(ev, cut, stream, kube, &mut self.buf);
        if self.buf.len() > packer.max_event_bytes() {
            return Err(token);
        }
        let packed = packer.push(&self.buf, token);
        debug_assert!(packed, "the size was checked");
        Ok(())
    }
}

/// The record contract's name for the engine's reason.
fn wire_cut(cut: firetail_tail::Cut) -> Cut {
    match cut {
        firetail_tail::Cut::Timeout => Cut::Timeout,
        firetail_tail::Cut::Budget => Cut::Budget,
        firetail_tail::Cut::Drain => Cut::Drain,
        firetail_tail::Cut::Release => Cut::Release,
        firetail_tail::Cut::Truncate => Cut::Truncate,
    }
}

/// The piece sizes above make a refusal impossible unless the pod metadata alone nearly fills a
/// record; then the event is not acknowledged (its file keeps it, and the checkpoint stops
/// there), which is reported loudly rather than skipped.
fn report_refused(packer: &Packer<Token>, line_bytes: usize, obs: &Observability) {
    obs.metrics.failure("EventTooLarge");
    tracing::error!(
        line_bytes,
        max_event_bytes = packer.max_event_bytes(),
        "event cannot fit a record even after splitting; not sent, checkpoint held"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pack::Limits;
    use firetail_tail::Part;
    use firetail_wire::RecordFormat;
    use firetail_wire::event::{LOG, PART, PART_CUT, PART_INDEX, PART_LAST};
    use std::time::SystemTime;

    fn encoder(oversize: OversizeMode) -> Encoder {
        Encoder::new(PodInfo::default(), "file", oversize)
    }

    fn event(
        source: &Arc<SourceFile>,
        bytes: Vec<u8>,
        offset: u64,
        part: Option<Part>,
    ) -> LogEvent {
        let end_offset = offset + bytes.len() as u64 + u64::from(part.is_none_or(|p| p.last));
        LogEvent {
            source: Arc::clone(source),
            bytes,
            offset,
            end_offset,
            read_time: SystemTime::UNIX_EPOCH,
            part,
        }
    }

    fn limits() -> Limits {
        Limits {
            record_bytes: 4096,
            batch_records: 500,
            batch_bytes: 1 << 20,
            ndjson_events: 500,
        }
    }

    /// (log, part) of every event the packer holds, in order.
    fn packed(packer: &mut Packer<Token>) -> Vec<(String, Option<(u64, bool)>)> {
        packer.flush();
        let mut out = Vec::new();
        while let Some(batch) = packer.take_ready() {
            for record in batch.records {
                let text = firetail_wire::codec::maybe_decompress(&record.data, 1 << 30)
                    .unwrap()
                    .0
                    .into_owned();
                // Version 2: the events after the header.
                let events = firetail_wire::v2::split_header(&text).map_or(&text[..], |h| h.1);
                for line in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let part = v.get(PART).map(|p| {
                        (
                            p[PART_INDEX].as_u64().unwrap(),
                            p[PART_LAST].as_bool().unwrap(),
                        )
                    });
                    out.push((v[LOG].as_str().unwrap().to_owned(), part));
                }
            }
        }
        out
    }

    /// The `part.cut` of every event the packer holds, in order.
    fn cuts(packer: &mut Packer<Token>) -> Vec<Option<String>> {
        packer.flush();
        let mut out = Vec::new();
        while let Some(batch) = packer.take_ready() {
            for record in batch.records {
                let text = firetail_wire::codec::maybe_decompress(&record.data, 1 << 30)
                    .unwrap()
                    .0
                    .into_owned();
                let events = firetail_wire::v2::split_header(&text).map_or(&text[..], |h| h.1);
                for line in events.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    out.push(v[PART][PART_CUT].as_str().map(str::to_owned));
                }
            }
        }
        out
    }

    #[test]
    fn a_cut_piece_carries_its_reason_and_only_its_last_split_piece_does() {
        for format in [RecordFormat::Ndjson, RecordFormat::V2Zstd] {
            cut_reasons(format);
        }
    }

    fn cut_reasons(format: RecordFormat) {
        let obs = Observability::default();
        let mut enc = encoder(OversizeMode::Split);
        let mut packer = Packer::new(format, limits());
        let src = SourceFile::detached("/logs/app/a.log", "app");
        let cut = |index, cut| {
            Some(Part {
                index,
                last: false,
                cut: Some(cut),
            })
        };
        enc.push(
            event(
                &src,
                b"half".to_vec(),
                0,
                cut(0, firetail_tail::Cut::Timeout),
            ),
            &mut packer,
            &obs,
        );
        assert_eq!(cuts(&mut packer), [Some("timeout".to_owned())]);
        // Too big for a 4 KiB record: split again, the reason stays on the final piece.
        enc.push(
            event(
                &src,
                vec![b'y'; 10_000],
                4,
                cut(1, firetail_tail::Cut::Budget),
            ),
            &mut packer,
            &obs,
        );
        let got = cuts(&mut packer);
        assert!(got.len() > 1, "{got:?}");
        assert_eq!(got.last().unwrap().as_deref(), Some("budget"));
        assert!(got[..got.len() - 1].iter().all(Option::is_none), "{got:?}");
    }

    #[test]
    fn engine_parts_split_again_are_renumbered_contiguously() {
        for format in [RecordFormat::Ndjson, RecordFormat::V2Zstd] {
            parts_renumbered(format);
        }
    }

    fn parts_renumbered(format: RecordFormat) {
        let obs = Observability::default();
        let mut enc = encoder(OversizeMode::Split);
        let mut packer = Packer::new(format, limits());
        let src = SourceFile::detached("/logs/app/a.log", "app");
        let other = SourceFile::detached("/logs/app/b.log", "app");
        // An engine-split line of three pieces; the middle one is too big for a 4 KiB record.
        let p0 = "a".repeat(100);
        let p1 = "b".repeat(10_000);
        let p2 = "c".repeat(100);
        enc.push(
            event(
                &src,
                p0.clone().into_bytes(),
                0,
                Some(Part {
                    index: 0,
                    last: false,
                    cut: None,
                }),
            ),
            &mut packer,
            &obs,
        );
        // Another file's line in between must not disturb the numbering.
        enc.push(event(&other, b"other".to_vec(), 0, None), &mut packer, &obs);
        enc.push(
            event(
                &src,
                p1.clone().into_bytes(),
                100,
                Some(Part {
                    index: 1,
                    last: false,
                    cut: None,
                }),
            ),
            &mut packer,
            &obs,
        );
        enc.push(
            event(
                &src,
                p2.clone().into_bytes(),
                10_100,
                Some(Part {
                    index: 2,
                    last: true,
                    cut: None,
                }),
            ),
            &mut packer,
            &obs,
        );
        // The next line of the same file starts fresh.
        enc.push(
            event(&src, b"next".to_vec(), 10_201, None),
            &mut packer,
            &obs,
        );

        let events = packed(&mut packer);
        let parts: Vec<&(String, Option<(u64, bool)>)> =
            events.iter().filter(|e| e.1.is_some()).collect();
        let indexes: Vec<u64> = parts.iter().map(|e| e.1.unwrap().0).collect();
        assert_eq!(indexes, (0..indexes.len() as u64).collect::<Vec<_>>());
        assert!(indexes.len() > 3, "the middle piece was split again");
        let lasts: Vec<bool> = parts.iter().map(|e| e.1.unwrap().1).collect();
        assert_eq!(lasts.iter().filter(|l| **l).count(), 1);
        assert_eq!(lasts.last(), Some(&true));
        let joined: String = parts.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(joined, format!("{p0}{p1}{p2}"));
        assert!(events.contains(&("other".to_owned(), None)));
        assert_eq!(events.last(), Some(&("next".to_owned(), None)));
        assert!(enc.renumber.is_empty());
        assert_eq!(obs.metrics.events_split.get(), 1);
    }

    #[test]
    fn truncate_mode_keeps_a_prefix_with_a_marker() {
        for format in [RecordFormat::NdjsonGzip, RecordFormat::V2Gzip] {
            truncated(format);
        }
    }

    fn truncated(format: RecordFormat) {
        let obs = Observability::default();
        let mut enc = encoder(OversizeMode::Truncate);
        let mut packer = Packer::new(format, limits());
        let src = SourceFile::detached("/logs/app/a.log", "app");
        let line = "x".repeat(50_000);
        enc.push(event(&src, line.into_bytes(), 0, None), &mut packer, &obs);
        packer.flush();
        let batch = packer.take_ready().unwrap();
        assert_eq!(batch.events(), 1);
        let text = firetail_wire::gzip::gunzip_capped(&batch.records[0].data, 1 << 20).unwrap();
        let event = firetail_wire::v2::split_header(&text).map_or(&text[..], |h| h.1);
        let v: serde_json::Value = serde_json::from_slice(event.trim_ascii_end()).unwrap();
        let log = v[LOG].as_str().unwrap();
        assert!(log.starts_with("xxx"));
        let kept = log.find(' ').unwrap();
        assert!(
            log.ends_with(&format!(" [firetail: truncated {} bytes]", 50_000 - kept)),
            "{log}"
        );
        assert!(v.get(PART).is_none());
        assert_eq!(obs.metrics.events_truncated.get(), 1);
    }
}
