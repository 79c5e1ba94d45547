//! The one JSON string writer of firetail: the sidecar escapes every log line with it and the
//! transform every message, so it is on both halves' hot path.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` to `out` as a JSON string literal, quotes included.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    write_escaped(out, s);
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string literal, without the quotes: for a
/// string written in pieces (the transform writes a log object as a string of its
/// envelope a member at a time).
pub fn write_escaped(out: &mut Vec<u8>, s: &str) {
    copy_escaping(out, s, |out, b| {
        // Two pushes rather than a slice copy: in a log object written as a string every
        // eighth byte or so is a quote, and a call to copy two bytes cost more than them.
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ => 0,
        };
        out.push(b'\\');
        if short == 0 {
            out.extend_from_slice(b"u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(short);
        }
    });
}

/// Copies `s` to `out`, writing each byte a JSON string must escape with `escape` instead.
#[inline(always)]
fn copy_escaping(out: &mut Vec<u8>, s: &str, mut escape: impl FnMut(&mut Vec<u8>, u8)) {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = next_escape(bytes, 0);
    while i < bytes.len() {
        out.extend_from_slice(&bytes[start..i]);
        escape(out, bytes[i]);
        start = i + 1;
        i = next_escape(bytes, start);
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Appends `s` escaped twice for the inside of a JSON string: what [`write_escaped`] gives for
/// the text [`write_escaped`] gives for `s`, in one pass. For a string inside a JSON document
/// that is itself a string (a Datadog log travels as the `message` of its envelope): the
/// transform writes such a log already escaped instead of writing it and escaping it again.
pub fn write_escaped_twice(out: &mut Vec<u8>, s: &str) {
    copy_escaping(out, s, |out, b| {
        // Once: `\` and a letter (or `u00XX`). Twice: that backslash escaped (`\\`), the
        // letter as it is, except a quote or backslash, which needs its own backslash again.
        out.push(b'\\');
        out.push(b'\\');
        match b {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(b);
            }
            b'\n' => out.push(b'n'),
            b'\r' => out.push(b'r'),
            b'\t' => out.push(b't'),
            0x08 => out.push(b'b'),
            0x0c => out.push(b'f'),
            _ => {
                out.extend_from_slice(b"u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
    });
}

/// The length of the JSON string literal at the start of `bytes`, quotes included, if one is
/// there: closed, without a control byte, every escape one JSON has (`\"`, `\\`, `\/`, `\b`,
/// `\f`, `\n`, `\r`, `\t`, or `\u` and four hex digits). That the bytes are UTF-8 is the
/// caller's to know (they come from a `&str`). For a reader of a fixed line shape that skips
/// a general JSON parser, and must accept only what one would.
pub fn string_literal_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    loop {
        i = next_escape(bytes, i);
        match *bytes.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => match *bytes.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = bytes.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            // A control byte, which a JSON string must escape.
            _ => return None,
        }
    }
}

/// Whether `text` is exactly one JSON object: `{` first, `}` last (no white space around it),
/// valid JSON in between as serde_json's raw-value reader reads it (which does not recurse, so
/// any nesting depth is accepted). Format version 2 carries such a line as JSON rather than as
/// an escaped string ([`crate::v2`]).
pub fn is_one_object(text: &str) -> bool {
    text.starts_with('{')
        && text.ends_with('}')
        && serde_json::from_str::<&serde_json::value::RawValue>(text).is_ok()
}

/// Appends `n` in decimal, as JSON writes an integer: without the allocation and formatting
/// machinery of `to_string`, which showed in the transform's profile (two integers per
/// Datadog log, besides the ones in the log itself).
pub fn write_int(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    write_uint(out, n.unsigned_abs());
}

/// Appends `n` in decimal ([`write_int`] for counts and indexes, which are never negative).
pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Bytes `s` takes once written by [`write_str`], without the quotes.
pub fn escaped_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum()
}

/// Index of the first byte at or after `i` that a JSON string must escape (`"`, `\`, or a
/// control byte below 0x20), or `bytes.len()`. Scans 8 bytes per step: escaping was the
/// largest single cost of both halves after hashing (sidecar) and inflating (transform) in
/// `perf` profiles, and most log lines contain nothing to escape.
fn next_escape(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte's high bit is set in each mask where that byte is below 0x20, is a quote or
        // is a backslash. Borrows can only mark bytes after a true match, so the lowest mark
        // is always exact.
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q & HIGH;
        let bs = w ^ (ONES * u64::from(b'\\'));
        let backslash = bs.wrapping_sub(ONES) & !bs & HIGH;
        let marks = control | quote | backslash;
        if marks != 0 {
            return i + (marks.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            return i;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn round_trips_through_serde() {
        let nasty = "quote\" back\\ nl\n cr\r tab\t bell\u{7} nul\u{0} del\u{7f} é 日本 🎉";
        let back: String = serde_json::from_str(&escaped(nasty)).unwrap();
        assert_eq!(back, nasty);
        assert_eq!(escaped("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
    }

    #[test]
    fn matches_serde_at_every_position_of_the_word_scan() {
        // Each special byte at every offset of strings up to 3 words long, among plain ASCII,
        // bytes just above the control range and multi-byte UTF-8: the 8-byte scan must find
        // the first one wherever it sits, including after a borrow from an earlier match.
        let specials = ['"', '\\', '\n', '\u{0}', '\u{1f}', '\u{8}', '\u{c}'];
        let fillers = ["a", " ", "!", "\u{7f}", "é", "日"];
        for len in 0..24 {
            for at in 0..len.max(1) {
                for special in specials {
                    for filler in fillers {
                        let mut text: String = (0..len)
                            .map(|k| {
                                if k == at {
                                    special.to_string()
                                } else {
                                    filler.to_string()
                                }
                            })
                            .collect();
                        text.push(special);
                        assert_eq!(
                            escaped(&text),
                            serde_json::to_string(&text).unwrap(),
                            "{text:?}"
                        );
                        assert_eq!(escaped_len(&text) + 2, escaped(&text).len());
                    }
                }
            }
        }
    }

    #[test]
    fn escaping_twice_reads_back_as_the_string_in_two_reads() {
        let nasty = "quote\" back\\ nl\n cr\r tab\t bs\u{8} ff\u{c} nul\u{0} us\u{1f} é 🎉";
        let mut out = vec![b'"'];
        write_escaped_twice(&mut out, nasty);
        out.push(b'"');
        let once: String = serde_json::from_slice(&out).unwrap();
        let back: String = serde_json::from_str(&format!("\"{once}\"")).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn integers_as_serde_writes_them() {
        for n in [0, 1, -1, 9, 10, -10, 1_795_341_600_123, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            write_int(&mut out, n);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&n).unwrap()
            );
        }
        for n in [0, 7, 10, 4_294_967_296, u64::MAX] {
            let mut out = Vec::new();
            write_uint(&mut out, n);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&n).unwrap()
            );
        }
    }

    #[test]
    fn a_string_written_in_pieces_is_the_string_written_whole() {
        let pieces = ["{\"a\":\"x\\y\"", ",\"b\":\n1", "}", "", "é\u{1}"];
        let mut out = vec![b'"'];
        for p in pieces {
            write_escaped(&mut out, p);
        }
        out.push(b'"');
        assert_eq!(out, escaped(&pieces.concat()).into_bytes());
    }

    proptest! {
        #[test]
        fn any_integer_round_trips(n in any::<i64>()) {
            let mut out = Vec::new();
            write_int(&mut out, n);
            prop_assert_eq!(serde_json::from_slice::<i64>(&out).unwrap(), n);
        }

        #[test]
        fn escaping_twice_in_one_pass_is_escaping_twice(s in any::<String>()) {
            let mut once = Vec::new();
            write_escaped(&mut once, &s);
            let mut twice = Vec::new();
            write_escaped(&mut twice, std::str::from_utf8(&once).unwrap());
            let mut one_pass = Vec::new();
            write_escaped_twice(&mut one_pass, &s);
            prop_assert_eq!(one_pass, twice);
        }

        #[test]
        fn a_string_literal_is_measured_as_serde_reads_it(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("\"".to_owned()), Just("\\".to_owned()), Just("\\u".to_owned()),
                    Just("\\ud800".to_owned()), Just("\\udc00".to_owned()), Just("\n".to_owned()),
                    Just("\u{1}".to_owned()), Just("é".to_owned()), Just("0a".to_owned()),
                    Just("n".to_owned()), Just("/".to_owned()), any::<char>().prop_map(String::from),
                ],
                0..12,
            ),
        ) {
            let text = format!("\"{}\"", pieces.concat());
            let ours = string_literal_len(text.as_bytes());
            let serde_reads = |t: &str| serde_json::from_str::<&serde_json::value::RawValue>(t).is_ok();
            // Whole: ours measures all of it exactly when serde reads it as one string.
            prop_assert_eq!(ours == Some(text.len()), serde_reads(&text), "{:?}", text);
            // Cut short (a quote inside ends it): what ours measures, serde reads alone.
            if let Some(len) = ours {
                prop_assert!(serde_reads(&text[..len]), "{:?}", text);
            }
        }

        #[test]
        fn any_string_round_trips(s in any::<String>()) {
            let out = escaped(&s);
            prop_assert_eq!(out.len(), escaped_len(&s) + 2);
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }
}
