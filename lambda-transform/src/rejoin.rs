//! Rejoining lines the sidecar had to send before their newline arrived.
//!
//! A piece whose `part` carries `cut` (`firetail_wire::event::PART_CUT`) ends where the app
//! stopped writing, not where its line ends; with `last` false the rest follows as the next
//! piece of the same `file`. When those pieces are adjacent in one record they are joined here
//! into one event before rendering: a block-buffered app's JSON line comes out whole. Pieces
//! that cannot be joined (the rest is in another record, or never came) are rendered one by
//! one and keep their mark, `cut` included, so the destination can tell them apart.
//!
//! Only records that contain a `"cut":` mark are parsed beyond the quick byte search, so
//! ordinary records cost nothing here.

use std::iter::Peekable;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use firetail_wire::event as wire;

/// One parsed piece of a cut line.
struct Piece {
    object: Map<String, Value>,
    file: Option<String>,
    index: u64,
    last: bool,
    cut: Option<String>,
    bytes: Vec<u8>,
}

impl Piece {
    /// `line` as a sidecar piece, if it is one.
    fn parse(line: &[u8]) -> Option<Self> {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(line) else {
            return None;
        };
        let part = object.get(wire::PART)?.as_object()?;
        let index = part.get(wire::PART_INDEX)?.as_u64()?;
        let last = part.get(wire::PART_LAST)?.as_bool()?;
        let cut = match part.get(wire::PART_CUT) {
            Some(v) => Some(
                v.as_str()
                    .filter(|c| wire::Cut::from_name(c).is_some())?
                    .to_owned(),
            ),
            None => None,
        };
        let bytes = match object.get(wire::LOG_BASE64).and_then(Value::as_str) {
            Some(b64) => STANDARD.decode(b64).ok()?,
            None => object.get(wire::LOG)?.as_str()?.as_bytes().to_vec(),
        };
        let file = object
            .get(wire::FILE)
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some(Self {
            object,
            file,
            index,
            last,
            cut,
            bytes,
        })
    }

    /// More of the line follows this piece.
    fn continues(&self) -> bool {
        self.cut.is_some() && !self.last
    }
}

/// Quick test: could `bytes` (a line, or a record's lines) carry a cut mark at all? One search
/// of a whole record spares every line of an ordinary record its own (a search per line
/// showed in `perf`).
pub fn may_be_cut(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\"cut\":").is_some()
}

/// If `first` is a cut piece whose continuation is next in `lines`, consumes the continuation
/// pieces and returns the joined event (as the sidecar would have written it had the line
/// been whole; still marked when the join did not reach the line's end). `None` leaves
/// `lines` untouched.
pub fn join_cut<'a, I>(first: &[u8], lines: &mut Peekable<I>) -> Option<Vec<u8>>
where
    I: Iterator<Item = &'a [u8]>,
{
    if !may_be_cut(first) {
        return None;
    }
    let head = Piece::parse(first).filter(Piece::continues)?;
    let mut joined = head.bytes.clone();
    let mut tail: Option<Piece> = None;
    loop {
        let prev = tail.as_ref().unwrap_or(&head);
        if !prev.continues() {
            break;
        }
        let Some(next) = lines.peek().and_then(|l| Piece::parse(l)) else {
            break;
        };
        if next.file != head.file || next.index != prev.index + 1 {
            break;
        }
        lines.next();
        joined.extend_from_slice(&next.bytes);
        tail = Some(next);
    }
    let tail = tail?;
    let mut object = head.object;
    match String::from_utf8(joined) {
        Ok(text) => {
            object.insert(wire::LOG.to_owned(), Value::String(text));
            object.remove(wire::LOG_BASE64);
        }
        Err(e) => {
            let bytes = e.into_bytes();
            object.insert(
                wire::LOG.to_owned(),
                Value::String(String::from_utf8_lossy(&bytes).into_owned()),
            );
            object.insert(
                wire::LOG_BASE64.to_owned(),
                Value::String(STANDARD.encode(&bytes)),
            );
        }
    }
    if head.index == 0 && tail.last && tail.cut.is_none() {
        // The whole line, from its first byte to its newline.
        object.remove(wire::PART);
    } else {
        let mut part = Map::new();
        part.insert(wire::PART_INDEX.to_owned(), Value::from(head.index));
        part.insert(wire::PART_LAST.to_owned(), Value::from(tail.last));
        if let Some(cut) = tail.cut {
            part.insert(wire::PART_CUT.to_owned(), Value::String(cut));
        }
        object.insert(wire::PART.to_owned(), Value::Object(part));
    }
    serde_json::to_vec(&Value::Object(object)).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn piece(file: &str, log: &str, index: u32, last: bool, cut: Option<&str>) -> Vec<u8> {
        let mut part = serde_json::json!({"index": index, "last": last});
        if let Some(c) = cut {
            part["cut"] = c.into();
        }
        serde_json::to_vec(&serde_json::json!({
            "time": "2026-11-22T10:00:00Z", "stream": "file", "log": log, "file": file,
            "part": part, "kubernetes": {"pod_name": "p"}
        }))
        .unwrap()
    }

    fn join(lines: &[Vec<u8>]) -> (Option<Value>, usize) {
        let mut rest = lines[1..].iter().map(Vec::as_slice).peekable();
        let joined = join_cut(&lines[0], &mut rest);
        (
            joined.map(|j| serde_json::from_slice(&j).unwrap()),
            rest.count(),
        )
    }

    #[test]
    fn adjacent_pieces_of_a_cut_line_become_the_whole_line() {
        let lines = [
            piece("/a.log", r#"{"msg":"hel"#, 0, false, Some("timeout")),
            piece("/a.log", r#"lo","n":1"#, 1, false, Some("budget")),
            piece("/a.log", "}", 2, true, None),
            piece("/a.log", "next", 0, true, None),
        ];
        let (joined, left) = join(&lines);
        let joined = joined.unwrap();
        assert_eq!(joined["log"], r#"{"msg":"hello","n":1}"#);
        assert!(joined.get("part").is_none(), "{joined}");
        assert_eq!(joined["kubernetes"]["pod_name"], "p");
        assert_eq!(left, 1, "the next line is left alone");
    }

    #[test]
    fn a_join_that_does_not_reach_the_newline_keeps_its_mark() {
        let lines = [
            piece("/a.log", "one ", 0, false, Some("timeout")),
            piece("/a.log", "two", 1, false, Some("timeout")),
        ];
        let (joined, _) = join(&lines);
        let joined = joined.unwrap();
        assert_eq!(joined["log"], "one two");
        assert_eq!(
            joined["part"],
            serde_json::json!({"index": 0, "last": false, "cut": "timeout"})
        );
    }

    #[test]
    fn pieces_of_other_files_or_out_of_order_are_not_joined() {
        let first = piece("/a.log", "one", 0, false, Some("timeout"));
        for next in [
            piece("/b.log", "two", 1, true, None),
            piece("/a.log", "two", 2, true, None),
            br#"{"log":"plain","file":"/a.log"}"#.to_vec(),
        ] {
            let (joined, left) = join(&[first.clone(), next]);
            assert!(joined.is_none());
            assert_eq!(left, 1);
        }
        // An over-long line's pieces carry no cut: delivered as they are.
        let (joined, _) = join(&[
            piece("/a.log", "x", 0, false, None),
            piece("/a.log", "y", 1, true, None),
        ]);
        assert!(joined.is_none());
    }

    #[test]
    fn invalid_utf8_pieces_join_into_exact_bytes() {
        let mut first: Value =
            serde_json::from_slice(&piece("/a.log", "", 0, false, Some("timeout"))).unwrap();
        first["log"] = "ok \u{fffd}".into();
        first["log_base64"] = STANDARD.encode(b"ok \xff").into();
        let lines = [
            serde_json::to_vec(&first).unwrap(),
            piece("/a.log", " end", 1, true, None),
        ];
        let (joined, _) = join(&lines);
        let joined = joined.unwrap();
        assert_eq!(
            STANDARD
                .decode(joined["log_base64"].as_str().unwrap())
                .unwrap(),
            b"ok \xff end"
        );
    }
}
