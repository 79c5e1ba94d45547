//! Record format version 2: what is constant for a record is written once, in a header line;
//! the events after it carry only what varies.
//!
//! ```text
//! {"firetail_format":2,"stream":"file","file":"/var/log/app/web/app.log","kubernetes":{...}}
//! {"time":1795341600123,"log":"GET /cart 200"}
//! {"time":1795341600124,"log":"GET /pay 500","file":"/var/log/app/web/error.log"}
//! {"time":1795341600125,"log":"aaaa…","part":{"index":0,"last":false}}
//! {"time":1795341600126,"log_json":{"level":"info","msg":"paid","order":1234}}
//! ```
//!
//! - The **header** is the first line: [`VERSION_KEY`](crate::format::VERSION_KEY) first (so a
//!   reader knows the layout from the first bytes), then [`STREAM`], [`FILE`] and
//!   [`KUBERNETES`] of the record's first event. Absent fields are omitted.
//! - Each **event** has [`TIME`] as epoch **milliseconds** (an integer: every destination keeps
//!   milliseconds, and it is a third of the RFC 3339 text), [`LOG`](crate::event::LOG),
//!   [`LOG_BASE64`](crate::event::LOG_BASE64) when the line is not UTF-8,
//!   [`PART`](crate::event::PART) for a piece of a split line — the same meanings as in
//!   version 1 ([`crate::event`]) — or, instead of `log`, [`LOG_JSON`] when the whole line is
//!   exactly one JSON object ([`crate::json::is_one_object`]; never for a piece): the line's
//!   bytes themselves, so its text is the JSON text of that value, byte for byte; and [`STREAM`],
//!   [`FILE`] or [`KUBERNETES`] only where the event's value differs from the header's (a
//!   record packs lines of several files or containers). A field an event does not carry is
//!   the header's. Each event is self-contained given the header, so any run of events after
//!   the header is a valid record again (what the transform re-ingests when a record's output
//!   overflows).
//! - Readers ignore event fields they do not know, so later additions stay within version 2.
//!
//! Why this shape (measured in `crates/wire/benches/compression.rs`, docs/BENCHMARKS.md): one
//! JSON object per line keeps the transform's line reader and the `json` format's reader
//! alike, and the header costs one line per ~1 MB record; the per-event `kubernetes`, `file`,
//! `stream` and nanosecond time strings of version 1 are most of what separated its bill from
//! Fluent Bit's.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::{
    Cut, EventRef, FILE, KUBERNETES, LOG_JSON, STREAM, TIME, key, write_log, write_part,
};
use crate::json::{is_one_object, write_str};

/// What a record's header states for all of its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// [`STREAM`] (`--stream-label`, or `stdout`/`stderr`).
    pub stream: &'a str,
    /// [`FILE`].
    pub file: &'a str,
    /// [`KUBERNETES`]: a JSON object from [`crate::kube::KubeObject::to_json`], or empty.
    pub kubernetes: &'a [u8],
}

/// `{"firetail_format":2`: what every version 2 record starts with (after decompression).
pub const HEADER_PREFIX: &[u8] = b"{\"firetail_format\":2";

/// Appends the header line of a record whose first event has `h` (no trailing newline).
pub fn write_header(h: &Header<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(HEADER_PREFIX);
    out.push(b',');
    key(out, STREAM);
    write_str(out, h.stream);
    out.push(b',');
    key(out, FILE);
    write_str(out, h.file);
    if !h.kubernetes.is_empty() {
        out.push(b',');
        key(out, KUBERNETES);
        out.extend_from_slice(h.kubernetes);
    }
    out.push(b'}');
}

/// Appends `ev` (whose own constant fields are `this`) as one event of a record whose header
/// is `record` (no trailing newline).
pub fn encode(ev: &EventRef<'_>, this: &Header<'_>, record: &Header<'_>, out: &mut Vec<u8>) {
    encode_cut(ev, None, this, record, out);
}

/// [`encode`] of a piece sent before its line's newline: `cut` (the engine's reason) goes into
/// its `part` mark, as in version 1 ([`crate::event::encode_cut`]).
pub fn encode_cut(
    ev: &EventRef<'_>,
    cut: Option<Cut>,
    this: &Header<'_>,
    record: &Header<'_>,
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    key(out, TIME);
    crate::json::write_int(out, epoch_ms(ev.time));
    out.push(b',');
    write_line(ev.line, ev.part.is_some() || cut.is_some(), out);
    if this.stream != record.stream {
        out.push(b',');
        key(out, STREAM);
        write_str(out, this.stream);
    }
    if this.file != record.file {
        out.push(b',');
        key(out, FILE);
        write_str(out, this.file);
    }
    if this.kubernetes != record.kubernetes {
        out.push(b',');
        key(out, KUBERNETES);
        // An event of a pod nothing is known about, in a record whose header has metadata:
        // `{}` says "none", where leaving the field out would mean the header's.
        out.extend_from_slice(if this.kubernetes.is_empty() {
            b"{}"
        } else {
            this.kubernetes
        });
    }
    write_part(ev.part, cut, out);
    out.push(b'}');
}

/// `"log_json":<the line>` when the whole line is one JSON object, else `"log":…` as in
/// version 1. An app that logs JSON writes lines that are JSON text already: escaping each of
/// their quotes made such a record ~1 % bigger once compressed, and cost the transform an
/// unescape before it merges the object. A piece of a split line is never read as an object.
fn write_line(line: &[u8], piece: bool, out: &mut Vec<u8>) {
    if !piece
        && line.first() == Some(&b'{')
        && let Ok(text) = std::str::from_utf8(line)
        && is_one_object(text)
    {
        key(out, LOG_JSON);
        out.extend_from_slice(line);
    } else {
        write_log(line, out);
    }
}

/// Epoch milliseconds of `t` (negative before 1970).
pub fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

/// Upper bound of a header line and one event after it, both newline-terminated, for a line of
/// `line_len` bytes: what a record that starts with this event needs at most. The sidecar cuts
/// lines so that this fits a record.
pub fn first_event_len_bound(
    line_len: usize,
    file_len: usize,
    stream_len: usize,
    kube_len: usize,
) -> usize {
    // Header: prefix, two keys and their escaped values, the object; event: as version 1's
    // bound, whose fixed part already covers a time, a part mark and every key, plus the
    // overrides an event never needs when it is the record's first.
    let header = HEADER_PREFIX.len() + 32 + 6 * (file_len + stream_len) + kube_len + 2;
    header + crate::event::encoded_len_bound(line_len, 0, 0, 0) + 1
}

/// The header line of a version 2 payload and the events after it; `None` when `payload`
/// does not start with [`HEADER_PREFIX`].
pub fn split_header(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    if !payload.starts_with(HEADER_PREFIX) {
        return None;
    }
    let end = memchr::memchr(b'\n', payload).unwrap_or(payload.len());
    let header = &payload[..end];
    let header = header.strip_suffix(b"\r").unwrap_or(header);
    Some((header, payload.get(end + 1..).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::event::{LOG, LOG_BASE64, PART, PART_INDEX, PART_LAST, PartMark};
    use std::time::Duration;

    const KUBE: &[u8] = br#"{"pod_name":"web-1","container_name":"app"}"#;

    fn header<'a>(file: &'a str, kubernetes: &'a [u8]) -> Header<'a> {
        Header {
            stream: "file",
            file,
            kubernetes,
        }
    }

    #[test]
    fn header_then_events_holding_only_what_varies() {
        let h = header("/var/log/app/app/a.log", KUBE);
        let mut out = Vec::new();
        write_header(&h, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"firetail_format": 2, STREAM: "file", FILE: "/var/log/app/app/a.log",
                KUBERNETES: {"pod_name": "web-1", "container_name": "app"}})
        );
        assert_eq!(
            crate::format::version_of(&out),
            Ok(crate::format::Version::V2)
        );
        let ev = EventRef {
            line: b"GET / 200",
            time: UNIX_EPOCH + Duration::new(1_795_341_600, 123_999_999),
            file: h.file,
            part: None,
        };
        out.clear();
        encode(&ev, &h, &h, &mut out);
        assert_eq!(out, br#"{"time":1795341600123,"log":"GET / 200"}"#);

        // Another file and a pod without metadata, in the same record: only those differ.
        let other = header("/var/log/app/app/b.log", b"");
        out.clear();
        let ev = EventRef {
            line: b"ok \xff",
            part: Some(PartMark {
                index: 1,
                last: true,
            }),
            ..ev
        };
        encode(&ev, &other, &h, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({TIME: 1_795_341_600_123i64, LOG: "ok \u{fffd}", LOG_BASE64: "b2sg/w==",
                FILE: "/var/log/app/app/b.log", KUBERNETES: {}, PART: {PART_INDEX: 1, PART_LAST: true}})
        );
    }

    fn encoded(line: &[u8], part: Option<PartMark>, cut: Option<Cut>) -> Vec<u8> {
        let h = header("/var/log/app/app/a.log", KUBE);
        let ev = EventRef {
            line,
            time: UNIX_EPOCH + Duration::from_millis(7),
            file: h.file,
            part,
        };
        let mut out = Vec::new();
        encode_cut(&ev, cut, &h, &h, &mut out);
        out
    }

    #[test]
    fn a_line_that_is_one_json_object_is_carried_as_json() {
        // Nesting deeper than serde_json builds values for is still one object: its raw
        // reader does not recurse (nor does the transform's, which reads one level).
        let deep = format!("{}1{}", r#"{"a":["#.repeat(300), "]}".repeat(300));
        for line in [
            r#"{"level":"info","msg":"paid","order":1234}"#,
            r#"{}"#,
            r#"{"a":{"b":[1,2,{"c":"\u00e9 \" \ud800"}]},"é":"ü"}"#,
            &deep,
        ] {
            let out = encoded(line.as_bytes(), None, None);
            let mut want = br#"{"time":7,"log_json":"#.to_vec();
            want.extend_from_slice(line.as_bytes());
            want.push(b'}');
            assert_eq!(out, want, "{line}");
            // Whatever reads it sees the line's own text as that member's JSON text.
            let raw: std::collections::HashMap<String, &serde_json::value::RawValue> =
                serde_json::from_slice(&out).unwrap();
            assert_eq!(raw[LOG_JSON].get(), line);
        }
    }

    #[test]
    fn anything_else_stays_an_escaped_string() {
        let piece = Some(PartMark {
            index: 0,
            last: false,
        });
        for (line, part, cut) in [
            (&br#"{"a":1} "#[..], None, None),
            (br#" {"a":1}"#, None, None),
            (br#"{"a":1}{"b":2}"#, None, None),
            (br#"{"a":1,}"#, None, None),
            (br#"{"a":"tab	in a string"}"#, None, None),
            (br#"["a"]"#, None, None),
            (b"{\"a\":\"\xff\"}", None, None),
            (br#"{"a":1}"#, piece, None),
            (br#"{"a":1}"#, None, Some(Cut::Timeout)),
        ] {
            let out = encoded(line, part, cut);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert!(
                v.get(LOG_JSON).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
            assert_eq!(
                v[LOG].as_str().unwrap(),
                String::from_utf8_lossy(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn the_prefix_is_the_version_key_first() {
        let key = format!("{{\"{}\":2", crate::format::VERSION_KEY);
        assert_eq!(HEADER_PREFIX, key.as_bytes());
    }

    #[test]
    fn times_before_the_epoch_are_negative() {
        assert_eq!(epoch_ms(UNIX_EPOCH), 0);
        assert_eq!(epoch_ms(UNIX_EPOCH - Duration::from_millis(1500)), -1500);
    }

    #[test]
    fn split_header_finds_the_first_line() {
        let (h, rest) =
            split_header(b"{\"firetail_format\":2,\"stream\":\"x\"}\r\n{\"log\":1}\n").unwrap();
        assert_eq!(h, b"{\"firetail_format\":2,\"stream\":\"x\"}");
        assert_eq!(rest, b"{\"log\":1}\n");
        assert_eq!(split_header(b"{\"firetail_format\":2}").unwrap().1, b"");
        assert!(split_header(b"{\"time\":1}").is_none());
    }

    #[test]
    fn first_event_bound_holds_for_worst_case_bytes() {
        let worst: Vec<u8> = (0u8..=255).cycle().take(3000).collect();
        let nasty = "\u{1}\"".repeat(20);
        let h = Header {
            stream: &nasty,
            file: &nasty,
            kubernetes: KUBE,
        };
        let ev = EventRef {
            line: &worst,
            time: UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX)),
            file: &nasty,
            part: Some(PartMark {
                index: u32::MAX,
                last: false,
            }),
        };
        let mut out = Vec::new();
        write_header(&h, &mut out);
        out.push(b'\n');
        encode(&ev, &h, &h, &mut out);
        out.push(b'\n');
        assert!(
            out.len() <= first_event_len_bound(worst.len(), nasty.len(), nasty.len(), KUBE.len())
        );
    }
}
