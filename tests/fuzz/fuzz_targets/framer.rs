//! The tailing engine's line framer (`firetail_tail::framing`) on arbitrary bytes, fed in
//! arbitrary chunks with quiet-period flushes at arbitrary points.
//!
//! Input layout: byte 0 picks `max_line_bytes` (1..=64, small so splitting is exercised),
//! byte 1 seeds the chunk sizes and flush points, the rest is the file's content.
//!
//! Oracle: frames tile the input exactly (contiguous offsets, nothing skipped, nothing
//! invented), each frame is its slice minus one terminator (`\n` or `\r\n`), no frame exceeds
//! the limit, part indices count up and close (or the last piece is marked cut), a timeout cut
//! is continued by the next piece, and buffered bytes never exceed limit + 1.
#![no_main]

use firetail_tail::framing::{Cut, Frame, Framer};
use libfuzzer_sys::fuzz_target;

const START: u64 = 1_000;

fuzz_target!(|data: &[u8]| {
    let [max_byte, seed, content @ ..] = data else {
        return;
    };
    let max = 1 + usize::from(*max_byte % 64);
    let mut rng = u32::from(*seed) | 1;
    let mut next = move || {
        // xorshift32: cheap, deterministic for a given input.
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };

    let mut framer = Framer::new(START, max);
    let mut frames: Vec<Frame> = Vec::new();
    let mut fed = 0usize;
    let mut flushed = false;
    while fed < content.len() {
        let len = 1 + (next() as usize % 97).min(content.len() - fed - 1);
        framer.feed(&content[fed..fed + len], &mut frames);
        fed += len;
        assert_eq!(
            framer.position(),
            START + fed as u64,
            "every fed byte is consumed or held"
        );
        let emitted_to = frames.last().map_or(START, |f| f.end_offset);
        assert!(
            framer.position() - emitted_to <= max as u64 + 1,
            "holds {} bytes with a limit of {max}",
            framer.position() - emitted_to
        );
        if next() % 13 == 0 {
            flushed |= framer.flush_partial(Cut::Timeout, &mut frames);
        }
    }
    // The end of the input, as at a drain: the held piece ends its line.
    framer.flush_partial(Cut::Drain, &mut frames);
    assert!(!framer.has_partial());

    let mut expect_offset = START;
    let mut open_part: Option<u32> = None;
    for frame in &frames {
        assert_eq!(frame.offset, expect_offset, "frames are contiguous");
        assert!(frame.end_offset >= frame.offset);
        assert!(
            frame.bytes.len() <= max,
            "frame of {} > {max}",
            frame.bytes.len()
        );
        let slice = &content[(frame.offset - START) as usize..(frame.end_offset - START) as usize];
        let rest = slice.strip_prefix(&frame.bytes[..]).unwrap_or_else(|| {
            panic!(
                "frame {:?} is not a prefix of its range {slice:?}",
                frame.bytes
            )
        });
        assert!(
            matches!(rest, b"" | b"\n" | b"\r\n"),
            "frame {:?} leaves {rest:?} of its range",
            frame.bytes
        );
        if rest == b"\n" && !flushed {
            assert!(!frame.bytes.ends_with(b"\r"), "a CRLF line keeps its CR");
        }
        if !rest.is_empty() {
            assert!(
                frame.part.is_none_or(|p| p.last),
                "a line end closes its parts"
            );
        }
        match (open_part, frame.part) {
            (None, Some(p)) => assert_eq!(p.index, 0, "parts start at 0"),
            (Some(i), Some(p)) => assert_eq!(p.index, i + 1, "parts count up"),
            (Some(i), None) => panic!("line split into parts stopped after part {i}"),
            (None, None) => {}
        }
        if let Some(p) = frame.part.filter(|p| p.cut == Some(Cut::Timeout)) {
            assert!(!p.last, "a timeout cut is continued by the next piece");
            assert!(rest.is_empty(), "a cut piece ends where the writer stopped");
        }
        open_part = frame.part.filter(|p| !p.last).map(|p| p.index);
        expect_offset = frame.end_offset;
    }
    // A line stays open only when its last piece says why: the writer stopped (timeout) and
    // nothing more came before the end, so no later piece could close it.
    if open_part.is_some() {
        let last = frames.last().and_then(|f| f.part);
        assert!(
            last.is_some_and(|p| p.cut == Some(Cut::Timeout)),
            "the last line's parts are closed or marked cut: {last:?}"
        );
    }
    assert_eq!(
        expect_offset,
        START + content.len() as u64,
        "frames cover the input"
    );
});
