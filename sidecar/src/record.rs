//! One log event as the JSON object the `firetail-transform` Lambda reads.
//!
//! # Layout
//! - [`EventRef`] / [`PartMark`]: a borrowed view of one event, independent of the engine's types.
//! - [`encode`]: appends the event's JSON object (no trailing newline) to a buffer.
//! - [`write_rfc3339`]: RFC 3339 UTC timestamps with nanoseconds, without a date crate.
//! - [`write_json_str`]: JSON string escaping straight into the output buffer.
//!
//! The shape is Fluent Bit's (`time`, `stream`, `log`, `file`, `kubernetes{..}`) so that the
//! transform and any downstream parser built for Fluent Bit read it unchanged. Absent fields are
//! omitted, never `null`. A line that is not valid UTF-8 is written twice: `log` with U+FFFD
//! replacements (readable) and `log_base64` with the exact bytes (lossless).

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

/// Marks one piece of a line that was split because it was too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartMark {
    /// Zero-based position of this piece within the line.
    pub index: u32,
    /// True on the final piece.
    pub last: bool,
}

/// A borrowed view of one log event.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// The line without its newline.
    pub line: &'a [u8],
    /// When the line was read (files carry no per-line timestamps we could trust).
    pub time: SystemTime,
    /// Path of the file the line came from.
    pub file: &'a str,
    /// Set when the line is one piece of a longer line.
    pub part: Option<PartMark>,
}

/// Appends `ev` as one JSON object to `out`.
///
/// `stream` is the Fluent Bit `stream` value; `kubernetes` is a pre-serialised JSON object (see
/// [`crate::enrich`]) or empty to omit the field.
pub fn encode(ev: &EventRef<'_>, stream: &str, kubernetes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"time\":\"");
    write_rfc3339(ev.time, out);
    out.extend_from_slice(b"\",\"stream\":");
    write_json_str(stream, out);
    out.extend_from_slice(b",\"log\":");
    match std::str::from_utf8(ev.line) {
        Ok(text) => write_json_str(text, out),
        Err(_) => {
            write_json_str(&String::from_utf8_lossy(ev.line), out);
            out.extend_from_slice(b",\"log_base64\":\"");
            let start = out.len();
            let b64 = base64::engine::general_purpose::STANDARD;
            out.resize(start + base64_len(ev.line.len()), 0);
            let written = b64
                .encode_slice(ev.line, &mut out[start..])
                .unwrap_or_default();
            out.truncate(start + written);
            out.push(b'"');
        }
    }
    out.extend_from_slice(b",\"file\":");
    write_json_str(ev.file, out);
    if let Some(part) = ev.part {
        out.extend_from_slice(b",\"part\":{\"index\":");
        out.extend_from_slice(part.index.to_string().as_bytes());
        out.extend_from_slice(if part.last {
            b",\"last\":true}"
        } else {
            b",\"last\":false}"
        });
    }
    if !kubernetes.is_empty() {
        out.extend_from_slice(b",\"kubernetes\":");
        out.extend_from_slice(kubernetes);
    }
    out.push(b'}');
}

/// Upper bound of the bytes [`encode`] can produce for a line of `line_len` bytes, given the
/// lengths of the other strings. Used to decide up front whether a line must be split.
pub fn encoded_len_bound(
    line_len: usize,
    file_len: usize,
    stream_len: usize,
    kube_len: usize,
) -> usize {
    // Worst case a byte escapes to `\u00XX` (6 bytes); invalid UTF-8 also adds base64 (4/3)
    // and each invalid byte may become a 3-byte U+FFFD.
    let log = line_len * 6 + base64_len(line_len) + 20;
    let fixed = 128 + 6 * (file_len + stream_len) + kube_len;
    log + fixed
}

/// Padded base64 length of `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Writes `s` as a JSON string literal (with quotes).
pub fn write_json_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = next_escape(bytes, 0);
    while i < bytes.len() {
        let b = bytes[i];
        out.extend_from_slice(&bytes[start..i]);
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            _ => b"",
        };
        if esc.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
        i = next_escape(bytes, start);
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Index of the first byte at or after `i` that a JSON string must escape (`"`, `\`, or a
/// control byte below 0x20), or `bytes.len()`. Scans 8 bytes per step: escaping every log
/// line was the sidecar's largest single cost after SigV4 hashing in `perf` profiles, and most
/// lines contain nothing to escape.
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

/// Writes `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` (UTC). Times before 1970 are clamped to the
/// epoch: a read time cannot precede it on a sane clock.
pub fn write_rfc3339(t: SystemTime, out: &mut Vec<u8>) {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    push_num(out, year, 4);
    out.push(b'-');
    push_num(out, month, 2);
    out.push(b'-');
    push_num(out, day, 2);
    out.push(b'T');
    push_num(out, rem / 3600, 2);
    out.push(b':');
    push_num(out, rem % 3600 / 60, 2);
    out.push(b':');
    push_num(out, rem % 60, 2);
    out.push(b'.');
    push_num(out, u64::from(since.subsec_nanos()), 9);
    out.push(b'Z');
}

fn push_num(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for slot in out[start..].iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Proleptic Gregorian date of a day count since 1970-01-01, computed over 400-year eras
/// (146,097 days each) so that no loop over years is needed.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each counted year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn ts(t: SystemTime) -> String {
        let mut v = Vec::new();
        write_rfc3339(t, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(ts(at(0, 0)), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 is a leap day of a century divisible by 400.
        assert_eq!(ts(at(951_782_400, 5)), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            ts(at(1_795_000_000, 123_000_000)),
            "2026-11-18T11:06:40.123000000Z"
        );
        assert_eq!(
            ts(at(4_102_444_799, 999_999_999)),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn rfc3339_matches_day_walk_for_many_days() {
        // Independent oracle: walk month lengths day by day.
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for day in 0..80_000u64 {
            assert_eq!(civil_from_days(day), (y, m, d), "day {day}");
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let len = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ];
            d += 1;
            if d > len[(m - 1) as usize] {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn json_escaping_round_trips_through_serde() {
        let nasty = "quote\" back\\ nl\n cr\r tab\t bell\u{7} nul\u{0} del\u{7f} é 日本 🎉";
        let mut out = Vec::new();
        write_json_str(nasty, &mut out);
        let back: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, nasty);
    }

    #[test]
    fn escaping_matches_serde_at_every_position_of_the_word_scan() {
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
                        let mut out = Vec::new();
                        write_json_str(&text, &mut out);
                        assert_eq!(
                            String::from_utf8(out).unwrap(),
                            serde_json::to_string(&text).unwrap(),
                            "{text:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn encodes_the_transform_shape_and_omits_absent_fields() {
        let ev = EventRef {
            line: b"hello \"world\"",
            time: at(0, 1_000_000),
            file: "/var/log/app/web/a.log",
            part: None,
        };
        let mut out = Vec::new();
        encode(&ev, "file", b"", &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "time": "1970-01-01T00:00:00.001000000Z",
                "stream": "file",
                "log": "hello \"world\"",
                "file": "/var/log/app/web/a.log",
            })
        );
    }

    #[test]
    fn invalid_utf8_keeps_exact_bytes_in_base64() {
        let raw: &[u8] = b"ok \xff\xfe end";
        let ev = EventRef {
            line: raw,
            time: at(1, 0),
            file: "f",
            part: Some(PartMark {
                index: 2,
                last: true,
            }),
        };
        let mut out = Vec::new();
        encode(&ev, "file", br#"{"pod_name":"p"}"#, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["log"], "ok \u{fffd}\u{fffd} end");
        let b64 = v["log_base64"].as_str().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        assert_eq!(decoded, raw);
        assert_eq!(v["part"], serde_json::json!({"index": 2, "last": true}));
        assert_eq!(v["kubernetes"]["pod_name"], "p");
    }

    #[test]
    fn bound_holds_for_worst_case_bytes() {
        let worst: Vec<u8> = (0u8..=255).cycle().take(3000).collect();
        let ev = EventRef {
            line: &worst,
            time: at(1, 0),
            file: "\u{1}\u{1}",
            part: Some(PartMark {
                index: u32::MAX,
                last: false,
            }),
        };
        let mut out = Vec::new();
        encode(&ev, "file", b"{}", &mut out);
        assert!(out.len() <= encoded_len_bound(worst.len(), 2, 4, 2));
    }
}
