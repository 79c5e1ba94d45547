//! Where a container's log stream stands, and which lines a resumed stream repeats.
//!
//! A position is the last line's timestamp and how many lines with exactly that timestamp it
//! covers (several lines can share one: the runtime's clock has finite resolution). The API's
//! `sinceTime` has second precision, so a stream resumed from a position starts at the
//! position's second: lines before the position's timestamp, and the first `count` lines at
//! it, were already read and are skipped.
//!
//! # Layout
//! - [`Position`]: the timestamp and the count at it; [`Position::advance`] over one line.
//! - [`Skipper`]: drops the lines of a resumed stream up to its position.
//! - [`Ledger`]: acknowledgements in any order, the contiguous acknowledged prefix, and the
//!   position it reaches (what the checkpoint records).

use std::collections::{BTreeMap, VecDeque};

use super::stamp::Stamp;

/// How far a container instance's log has been read (or delivered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The last line's timestamp.
    pub stamp: Stamp,
    /// Lines with exactly `stamp` covered (at least 1).
    pub count: u64,
}

impl Position {
    /// The position after a line stamped `stamp`, following `from`.
    pub fn advance(from: Option<Self>, stamp: Stamp) -> Self {
        match from {
            Some(p) if p.stamp == stamp => Self {
                stamp,
                count: p.count + 1,
            },
            _ => Self { stamp, count: 1 },
        }
    }

    /// The `sinceTime` to resume from: the position's second.
    pub fn since_time(self) -> String {
        self.stamp.since_time()
    }
}

/// Skips the lines of a stream resumed with `sinceTime` that its position already covers.
#[derive(Debug, Clone)]
pub struct Skipper {
    from: Option<Position>,
    seen_at_stamp: u64,
}

impl Skipper {
    /// Skips up to `from` (nothing when `None`).
    pub fn new(from: Option<Position>) -> Self {
        Self {
            from,
            seen_at_stamp: 0,
        }
    }

    /// Whether the next line, stamped `stamp`, was already read. Once a line is kept nothing
    /// more is skipped, so a clock stepping back later in the stream loses nothing.
    pub fn skip(&mut self, stamp: Stamp) -> bool {
        let Some(from) = self.from else {
            return false;
        };
        if stamp < from.stamp {
            return true;
        }
        if stamp == from.stamp && self.seen_at_stamp < from.count {
            self.seen_at_stamp += 1;
            return true;
        }
        self.from = None;
        false
    }
}

/// The acknowledgement book of one container instance's stream: each line gets an offset range
/// in a space of its own (its bytes and newline), acknowledgements arrive in any order and
/// maybe twice, and the delivered position advances only over the contiguous acknowledged
/// prefix of lines.
#[derive(Debug)]
pub struct Ledger {
    emitted_to: u64,
    acked_to: u64,
    /// Acknowledged ranges beyond `acked_to`: offset -> end.
    ahead: BTreeMap<u64, u64>,
    /// Lines handed out and not yet covered by `acked_to`: (end offset, timestamp).
    lines: VecDeque<(u64, Stamp)>,
    acked: Option<Position>,
    unacked_bytes: u64,
}

impl Ledger {
    /// A book whose delivered position starts at `start` (the checkpoint's, or none).
    pub fn new(start: Option<Position>) -> Self {
        Self {
            emitted_to: 0,
            acked_to: 0,
            ahead: BTreeMap::new(),
            lines: VecDeque::new(),
            acked: start,
            unacked_bytes: 0,
        }
    }

    /// Books a line of `bytes` bytes (newline included) stamped `stamp`; its range.
    pub fn line(&mut self, bytes: u64, stamp: Stamp) -> (u64, u64) {
        let offset = self.emitted_to;
        self.emitted_to += bytes.max(1);
        self.lines.push_back((self.emitted_to, stamp));
        self.unacked_bytes += self.emitted_to - offset;
        (offset, self.emitted_to)
    }

    /// Books a piece of a line that is longer than one event may be (not its last piece,
    /// which [`Self::line`] books): its range. The line counts as delivered once every piece is.
    pub fn piece(&mut self, bytes: u64) -> (u64, u64) {
        let offset = self.emitted_to;
        self.emitted_to += bytes;
        self.unacked_bytes += bytes;
        (offset, self.emitted_to)
    }

    /// Applies the acknowledgement of `[offset, end)` (a line, a piece of one, or a joined
    /// group of lines); the bytes it newly confirmed (0 for a duplicate or a foreign range).
    pub fn ack(&mut self, offset: u64, end: u64) -> u64 {
        if end <= offset || offset < self.acked_to || end > self.emitted_to {
            return 0;
        }
        if offset == self.acked_to {
            let mut to = end;
            while let Some(next) = self.ahead.remove(&to) {
                to = next;
            }
            self.acked_to = to;
            while let Some(&(line_end, stamp)) = self.lines.front() {
                if line_end > self.acked_to {
                    break;
                }
                self.lines.pop_front();
                self.acked = Some(Position::advance(self.acked, stamp));
            }
        } else if self.ahead.insert(offset, end).is_some() {
            return 0;
        }
        let freed = end - offset;
        self.unacked_bytes -= freed.min(self.unacked_bytes);
        freed
    }

    /// The delivered position: every line up to it is acknowledged.
    pub fn acked(&self) -> Option<Position> {
        self.acked
    }

    /// Bytes booked and not yet acknowledged.
    pub fn unacked_bytes(&self) -> u64 {
        self.unacked_bytes
    }

    /// Whether every booked line is acknowledged.
    pub fn settled(&self) -> bool {
        self.acked_to == self.emitted_to
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(secs: i64, nanos: u32) -> Stamp {
        Stamp { secs, nanos }
    }

    #[test]
    fn positions_count_lines_at_one_timestamp() {
        let p = Position::advance(None, at(10, 5));
        let p = Position::advance(Some(p), at(10, 5));
        assert_eq!(p.count, 2);
        let p = Position::advance(Some(p), at(10, 6));
        assert_eq!((p.stamp, p.count), (at(10, 6), 1));
    }

    #[test]
    fn a_resumed_stream_skips_what_the_position_covers_and_nothing_after() {
        // The stream from sinceTime = second 10: the position is the 2nd line at 10.5.
        let from = Position {
            stamp: at(10, 500),
            count: 2,
        };
        let mut s = Skipper::new(Some(from));
        let stream = [
            (at(10, 100), true),  // before the position
            (at(10, 500), true),  // 1st at the position's stamp
            (at(10, 500), true),  // 2nd
            (at(10, 500), false), // 3rd: new
            (at(10, 900), false),
            (at(10, 100), false), // a clock step back after resuming is kept
        ];
        for (i, (stamp, skipped)) in stream.into_iter().enumerate() {
            assert_eq!(s.skip(stamp), skipped, "line {i}");
        }
        let mut none = Skipper::new(None);
        assert!(!none.skip(at(0, 0)));
    }

    #[test]
    fn the_ledger_advances_only_over_the_contiguous_acknowledged_prefix() {
        let start = Position {
            stamp: at(5, 0),
            count: 1,
        };
        let mut l = Ledger::new(Some(start));
        let a = l.line(10, at(5, 0)); // a 2nd line at the start's stamp
        let b = l.line(10, at(6, 0));
        let c = l.line(10, at(6, 0));
        assert_eq!(l.unacked_bytes(), 30);
        // Out of order: c, then b: nothing moves while a is missing.
        assert_eq!(l.ack(c.0, c.1), 10);
        assert_eq!(l.ack(b.0, b.1), 10);
        assert_eq!(l.acked(), Some(start));
        assert!(!l.settled());
        assert_eq!(l.ack(a.0, a.1), 10);
        assert_eq!(
            l.acked(),
            Some(Position {
                stamp: at(6, 0),
                count: 2
            })
        );
        assert!(l.settled());
        assert_eq!(l.unacked_bytes(), 0);
        // Duplicates and foreign ranges confirm nothing.
        assert_eq!(l.ack(a.0, a.1), 0);
        assert_eq!(l.ack(30, 40), 0);
    }

    #[test]
    fn a_joined_group_and_the_pieces_of_a_line_acknowledge_their_lines() {
        let mut l = Ledger::new(None);
        let first = l.line(4, at(1, 0));
        let second = l.line(4, at(2, 0));
        let head = l.piece(50);
        let tail = l.line(50, at(3, 0));
        // first + second were joined into one multiline event.
        assert_eq!(l.ack(first.0, second.1), 8);
        assert_eq!(l.acked().unwrap().stamp, at(2, 0));
        // The third line came in two pieces; only both move the position past it.
        assert_eq!(l.ack(tail.0, tail.1), 50);
        assert_eq!(l.acked().unwrap().stamp, at(2, 0));
        assert_eq!(l.ack(head.0, head.1), 50);
        assert_eq!(l.acked().unwrap().stamp, at(3, 0));
    }
}
