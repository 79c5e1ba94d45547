//! Line framing: turns the bytes of one file into `\n`-terminated frames with exact offsets.
//!
//! Pure: no I/O, no clocks. The engine feeds whatever `read(2)` returned; the framer keeps only
//! the unfinished tail of the current line, and never more than `max_line_bytes` (+1 byte held back
//! to tell a split `\r\n` from a lone `\r`), so one endless line cannot grow memory.

use memchr::memchr;

/// One piece of a line that was split: it was longer than `max_line_bytes`, or it had to be
/// emitted before its newline arrived ([`Cut`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// 0 for the first piece of the line (1 for the first piece read after a restart in the
    /// middle of a line).
    pub index: u32,
    /// True on the piece that ends the line: its newline was seen, or nothing more will be
    /// read for it ([`Cut::ends_line`]).
    pub last: bool,
    /// Set when the piece ends where the writer stopped rather than at a newline or at the
    /// length limit.
    pub cut: Option<Cut>,
}

/// Why an unterminated line was emitted before its newline arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cut {
    /// The file stayed quiet for `partial_line_timeout`; the rest follows as the next piece.
    Timeout,
    /// The memory budget was full; the rest follows as the next piece.
    Budget,
    /// The engine was draining.
    Drain,
    /// A rotated-away or deleted file was released.
    Release,
    /// The file was truncated under the line.
    Truncate,
}

impl Cut {
    /// True when no more of the line will be read by this engine.
    pub fn ends_line(self) -> bool {
        matches!(self, Self::Drain | Self::Release | Self::Truncate)
    }
}

/// A framed line (or line piece) with the byte range it consumed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Content without the line terminator (`\n` or `\r\n`).
    pub bytes: Vec<u8>,
    /// Offset of the first byte.
    pub offset: u64,
    /// Offset just past the consumed bytes, terminator included.
    pub end_offset: u64,
    /// `Some` when the line was split into pieces.
    pub part: Option<Part>,
}

/// Incremental splitter for one file stream.
#[derive(Debug)]
pub struct Framer {
    max_line_bytes: usize,
    /// Bytes of the line in progress (not yet terminated).
    pending: Vec<u8>,
    /// File offset of `pending[0]`.
    pending_start: u64,
    /// Pieces of the current line already emitted.
    parts_emitted: u32,
}

/// Capacity above which an emptied pending buffer is given back to the allocator, so a single
/// huge line does not pin memory for the rest of the file's life.
const RETAINED_PENDING_CAPACITY: usize = 16 * 1024;

impl Framer {
    /// A framer whose next input byte sits at `start_offset` in the file.
    pub fn new(start_offset: u64, max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes: max_line_bytes.max(1),
            pending: Vec::new(),
            pending_start: start_offset,
            parts_emitted: 0,
        }
    }

    /// Offset of the next byte the framer expects (everything before it has been consumed).
    pub fn position(&self) -> u64 {
        self.pending_start + self.pending.len() as u64
    }

    /// A framer resuming at `start_offset`; `mid_line` when the byte before it is not a
    /// newline (a restart after a cut piece was acknowledged), so the first piece is marked as
    /// a continuation.
    pub fn resume(start_offset: u64, max_line_bytes: usize, mid_line: bool) -> Self {
        let mut framer = Self::new(start_offset, max_line_bytes);
        framer.parts_emitted = u32::from(mid_line);
        framer
    }

    /// True while an unterminated line is buffered.
    pub fn has_partial(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Bytes of the unterminated line held (charged to the engine's memory budget).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Feeds the next bytes of the file; complete frames are pushed to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Frame>) {
        while !chunk.is_empty() {
            match memchr(b'\n', chunk) {
                Some(nl) => {
                    let line = &chunk[..nl];
                    let end = self.position() + nl as u64 + 1;
                    let content = strip_cr(line);
                    if self.pending.is_empty()
                        && self.parts_emitted == 0
                        && content.len() <= self.max_line_bytes
                    {
                        // Fast path: the whole line is inside this chunk.
                        out.push(Frame {
                            bytes: content.to_vec(),
                            offset: self.pending_start,
                            end_offset: end,
                            part: None,
                        });
                        self.pending_start = end;
                    } else {
                        self.push_segment(line, out);
                        self.finish_line(end, out);
                    }
                    chunk = &chunk[nl + 1..];
                }
                None => {
                    self.push_segment(chunk, out);
                    chunk = &[];
                }
            }
        }
    }

    /// Emits the buffered unterminated line as a piece marked with `cut`. Unless the cut
    /// [ends the line](Cut::ends_line), what arrives next is the following piece of the same
    /// line. Returns whether anything was emitted.
    pub fn flush_partial(&mut self, cut: Cut, out: &mut Vec<Frame>) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        if self.pending.len() > self.max_line_bytes {
            // A held-back `\r` that turned out not to start a `\r\n`.
            self.split_piece(out);
        }
        let end = self.position();
        let bytes = std::mem::take(&mut self.pending);
        out.push(Frame {
            bytes,
            offset: self.pending_start,
            end_offset: end,
            part: Some(Part {
                index: self.parts_emitted,
                last: cut.ends_line(),
                cut: Some(cut),
            }),
        });
        self.pending_start = end;
        self.parts_emitted = if cut.ends_line() {
            0
        } else {
            self.parts_emitted.saturating_add(1)
        };
        true
    }

    fn last_part(&self) -> Option<Part> {
        (self.parts_emitted > 0).then_some(Part {
            index: self.parts_emitted,
            last: true,
            cut: None,
        })
    }

    /// Appends a newline-free segment, emitting `max_line_bytes` pieces whenever the line grows
    /// past the limit.
    fn push_segment(&mut self, mut seg: &[u8], out: &mut Vec<Frame>) {
        let max = self.max_line_bytes;
        loop {
            // Fill up to max + 1 bytes: one byte past the limit proves the line is too long.
            let room = (max + 1).saturating_sub(self.pending.len());
            let take = room.min(seg.len());
            self.pending.extend_from_slice(&seg[..take]);
            seg = &seg[take..];
            if self.pending.len() <= max {
                break;
            }
            // Exactly one byte over and it is a `\r` at the end of what we know: if a `\n`
            // follows, the line fits once the terminator is stripped, so do not split yet.
            if seg.is_empty() && self.pending[max] == b'\r' {
                break;
            }
            self.split_piece(out);
        }
    }

    /// Emits the first `max_line_bytes` of the pending line as a non-final piece.
    fn split_piece(&mut self, out: &mut Vec<Frame>) {
        let max = self.max_line_bytes;
        let rest = self.pending.split_off(max);
        let piece = std::mem::replace(&mut self.pending, rest);
        let offset = self.pending_start;
        self.pending_start += max as u64;
        out.push(Frame {
            bytes: piece,
            offset,
            end_offset: self.pending_start,
            part: Some(Part {
                index: self.parts_emitted,
                last: false,
                cut: None,
            }),
        });
        self.parts_emitted = self.parts_emitted.saturating_add(1);
    }

    fn finish_line(&mut self, end: u64, out: &mut Vec<Frame>) {
        let mut bytes = std::mem::take(&mut self.pending);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        out.push(Frame {
            bytes,
            offset: self.pending_start,
            end_offset: end,
            part: self.last_part(),
        });
        self.pending_start = end;
        self.parts_emitted = 0;
        if self.pending.capacity() > RETAINED_PENDING_CAPACITY {
            self.pending = Vec::new();
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_all(max: usize, chunks: &[&[u8]]) -> (Vec<Frame>, Framer) {
        let mut f = Framer::new(0, max);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        (out, f)
    }

    fn texts(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect()
    }

    #[test]
    fn splits_lines_and_tracks_offsets() {
        let (out, f) = frame_all(100, &[b"ab\ncde\n\nf"]);
        assert_eq!(texts(&out), ["ab", "cde", ""]);
        let ranges: Vec<_> = out.iter().map(|f| (f.offset, f.end_offset)).collect();
        assert_eq!(ranges, [(0, 3), (3, 7), (7, 8)]);
        assert!(f.has_partial());
        assert_eq!(f.position(), 9);
    }

    #[test]
    fn strips_crlf_but_keeps_lone_cr() {
        let (out, _) = frame_all(100, &[b"a\r\nb\rc\n\r\n"]);
        assert_eq!(texts(&out), ["a", "b\rc", ""]);
        assert_eq!(out[2].end_offset, 9);
    }

    #[test]
    fn line_spanning_chunks_is_joined() {
        let (out, _) = frame_all(100, &[b"hel", b"lo wo", b"rld\r", b"\nnext\n"]);
        assert_eq!(texts(&out), ["hello world", "next"]);
        assert_eq!((out[0].offset, out[0].end_offset), (0, 13));
        assert_eq!((out[1].offset, out[1].end_offset), (13, 18));
    }

    fn part(index: u32, last: bool, cut: Option<Cut>) -> Option<Part> {
        Some(Part { index, last, cut })
    }

    #[test]
    fn partial_line_is_flushed_as_a_cut_piece_and_the_rest_continues_it() {
        let mut f = Framer::new(10, 100);
        let mut out = Vec::new();
        f.feed(b"abc", &mut out);
        assert!(out.is_empty());
        assert_eq!(f.pending_len(), 3);
        assert!(f.flush_partial(Cut::Timeout, &mut out));
        assert!(!f.flush_partial(Cut::Timeout, &mut out));
        assert_eq!(f.pending_len(), 0);
        f.feed(b"de", &mut out);
        assert!(f.flush_partial(Cut::Budget, &mut out));
        f.feed(b"f\nnext\n", &mut out);
        assert_eq!(texts(&out), ["abc", "de", "f", "next"]);
        assert_eq!((out[0].offset, out[0].end_offset), (10, 13));
        assert_eq!((out[2].offset, out[2].end_offset), (15, 17));
        let parts: Vec<_> = out.iter().map(|f| f.part).collect();
        assert_eq!(
            parts,
            [
                part(0, false, Some(Cut::Timeout)),
                part(1, false, Some(Cut::Budget)),
                part(2, true, None),
                None
            ]
        );
    }

    #[test]
    fn a_cut_that_ends_the_line_starts_the_next_one_fresh() {
        for cut in [Cut::Drain, Cut::Release, Cut::Truncate] {
            let mut f = Framer::new(0, 100);
            let mut out = Vec::new();
            f.feed(b"abc", &mut out);
            assert!(f.flush_partial(cut, &mut out));
            f.feed(b"x\n", &mut out);
            assert_eq!(out[0].part, part(0, true, Some(cut)));
            assert_eq!(out[1].part, None);
        }
    }

    #[test]
    fn resuming_mid_line_marks_the_rest_as_a_continuation() {
        let mut f = Framer::resume(7, 100, true);
        let mut out = Vec::new();
        f.feed(b"rest\nnext\n", &mut out);
        assert_eq!(out[0].part, part(1, true, None));
        assert_eq!(out[1].part, None);
        let mut f = Framer::resume(7, 100, false);
        let mut out = Vec::new();
        f.feed(b"whole\n", &mut out);
        assert_eq!(out[0].part, None);
    }

    #[test]
    fn long_line_is_split_into_marked_parts() {
        let (out, _) = frame_all(4, &[b"abcdefghij\nxy\n"]);
        assert_eq!(texts(&out), ["abcd", "efgh", "ij", "xy"]);
        let parts: Vec<_> = out.iter().map(|f| f.part).collect();
        assert_eq!(
            parts,
            [
                part(0, false, None),
                part(1, false, None),
                part(2, true, None),
                None
            ]
        );
        assert_eq!(out[2].end_offset, 11);
        assert_eq!(out[3].offset, 11);
    }

    #[test]
    fn line_of_exactly_max_bytes_is_not_split_even_with_crlf() {
        let (out, _) = frame_all(4, &[b"abcd\r", b"\nabcd\n"]);
        assert_eq!(texts(&out), ["abcd", "abcd"]);
        assert!(out.iter().all(|f| f.part.is_none()));
        let (out, _) = frame_all(4, &[b"abcd\rx\n"]);
        assert_eq!(texts(&out), ["abcd", "\rx"]);
        assert_eq!(out[1].part, part(1, true, None));
    }

    #[test]
    fn endless_line_never_buffers_more_than_the_limit() {
        let mut f = Framer::new(0, 8);
        let mut out = Vec::new();
        for _ in 0..1000 {
            f.feed(b"0123456789abc", &mut out);
            assert!(f.pending.len() <= 9);
        }
        let total: usize = out.iter().map(|f| f.bytes.len()).sum::<usize>() + f.pending.len();
        assert_eq!(total, 13_000);
        assert!(out.iter().all(|f| f.bytes.len() == 8));
    }

    #[test]
    fn flushing_a_split_line_continues_its_numbering() {
        let (mut out, mut f) = frame_all(4, &[b"abcdef"]);
        assert!(f.flush_partial(Cut::Release, &mut out));
        assert_eq!(texts(&out), ["abcd", "ef"]);
        assert_eq!(out[1].part, part(1, true, Some(Cut::Release)));
        assert_eq!(out[1].end_offset, 6);
    }

    #[test]
    fn invalid_utf8_is_passed_through_unchanged() {
        let (out, _) = frame_all(100, &[b"\xff\xfe ok\n"]);
        assert_eq!(out[0].bytes, b"\xff\xfe ok");
    }

    #[test]
    fn concatenated_frames_reproduce_the_input() {
        // Any chunking and any limit: frames cover the input contiguously with no gaps.
        let input: &[u8] = b"one\r\ntwo\nthree-is-long\n\n\rx\r\nlast";
        for max in [1usize, 2, 3, 5, 8, 64] {
            for split in 1..input.len() {
                let (mut out, mut f) = frame_all(max, &[&input[..split], &input[split..]]);
                f.flush_partial(Cut::Drain, &mut out);
                let mut next = 0;
                for fr in &out {
                    assert_eq!(fr.offset, next, "max {max} split {split}");
                    assert!(fr.bytes.len() <= max.max(1));
                    next = fr.end_offset;
                }
                assert_eq!(next, input.len() as u64);
            }
        }
    }
}
