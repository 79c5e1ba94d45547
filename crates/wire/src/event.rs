//! One log event as the sidecar writes it and the transform reads it.
//!
//! ```json
//! {"time":"2026-11-22T10:00:00.123456789Z","stream":"file","log":"GET /cart 200",
//!  "file":"/var/log/app/web/app.log","kubernetes":{...}}
//! ```
//!
//! The shape is Fluent Bit's (`time`, `stream`, `log`, `kubernetes{..}`), so the transform reads
//! the sidecar's events and Fargate's Fluent Bit router's with one reader. Absent fields are
//! omitted, never `null`. Two fields are ours:
//! - [`LOG_BASE64`]: written only when the line is not valid UTF-8. `log` then holds the line
//!   with U+FFFD replacements (readable), `log_base64` the exact bytes (lossless); the transform
//!   delivers them as `message` and `message_base64`.
//! - [`PART`] `{"index":N,"last":B}`: the event is piece `N` of a line too long for one event
//!   (longer than the sidecar's `--max-line-bytes`, or than a record). Pieces of one line come
//!   from the same `file`, in order, `index` counting from 0, `last` true on the final one. The
//!   transform delivers each piece as its own log and keeps the mark, so a reader can join them.
//! - [`PART_CUT`] inside `part`, e.g. `{"index":0,"last":false,"cut":"timeout"}`: the piece
//!   ends where the writer stopped, not at a newline nor at the length limit ([`Cut`] names
//!   why). With `last` false the rest of the line follows as the next piece of the same file
//!   (`index` + 1; the piece that ends at the newline has no `cut`); with `last` true nothing
//!   more will follow from this sidecar (file released, truncated, or the sidecar drained).
//!   After a restart in the middle of a cut line the rest arrives with `index` 1 (the count of
//!   earlier pieces is not kept). The transform joins the pieces of a cut line that arrive in
//!   one record into one log, and delivers the others with the mark, as a label.

use std::time::SystemTime;

use base64::Engine as _;

use crate::json::write_str;
use crate::time::write_rfc3339;

/// When the sidecar read the line (RFC 3339, UTC, nanoseconds).
pub const TIME: &str = "time";
/// Fluent Bit's `stream`: `stdout`/`stderr` for container output, the sidecar's
/// `--stream-label` (default `file`) for files.
pub const STREAM: &str = "stream";
/// The line, without its newline.
pub const LOG: &str = "log";
/// The exact bytes of a line that is not valid UTF-8 (standard base64).
pub const LOG_BASE64: &str = "log_base64";
/// Format version 2 only, in place of [`LOG`]: a whole line that is exactly one JSON object,
/// as that JSON text itself rather than escaped into a string ([`crate::v2`]).
pub const LOG_JSON: &str = "log_json";
/// The file the line was read from.
pub const FILE: &str = "file";
/// The piece mark of a split line.
pub const PART: &str = "part";
/// Key of [`PART`]: zero-based position of the piece.
pub const PART_INDEX: &str = "index";
/// Key of [`PART`]: true on the final piece.
pub const PART_LAST: &str = "last";
/// Key of [`PART`], present only on a piece cut at a write boundary: a [`Cut`] name.
pub const PART_CUT: &str = "cut";
/// Pod metadata ([`crate::kube`]).
pub const KUBERNETES: &str = "kubernetes";

/// Marks one piece of a line that was split because it was too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartMark {
    /// Zero-based position of this piece within the line.
    pub index: u32,
    /// True on the final piece.
    pub last: bool,
}

/// Why a line was emitted before its newline arrived ([`PART_CUT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cut {
    /// The file was quiet for the sidecar's `--partial-line-timeout-ms`.
    Timeout,
    /// The sidecar's memory budget was full: held lines were sent to free it.
    Budget,
    /// The sidecar was shutting down.
    Drain,
    /// A rotated-away or deleted file was released after its grace period.
    Release,
    /// The file was truncated (copytruncate) while the line was unfinished.
    Truncate,
}

impl Cut {
    /// Every reason.
    pub const ALL: [Cut; 5] = [
        Self::Timeout,
        Self::Budget,
        Self::Drain,
        Self::Release,
        Self::Truncate,
    ];

    /// The name written in [`PART_CUT`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Budget => "budget",
            Self::Drain => "drain",
            Self::Release => "release",
            Self::Truncate => "truncate",
        }
    }

    /// The reason named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A borrowed view of one log event.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// The line without its newline.
    pub line: &'a [u8],
    /// When the line was read (files carry no per-line timestamps that could be trusted).
    pub time: SystemTime,
    /// Path of the file the line came from.
    pub file: &'a str,
    /// Set when the line is one piece of a longer line.
    pub part: Option<PartMark>,
}

/// Appends `ev` as one JSON object (no trailing newline) to `out`.
///
/// `stream` is the [`STREAM`] value; `kubernetes` is a JSON object written by
/// [`crate::kube::KubeObject::to_json`], or empty to omit the field.
pub fn encode(ev: &EventRef<'_>, stream: &str, kubernetes: &[u8], out: &mut Vec<u8>) {
    encode_cut(ev, None, stream, kubernetes, out);
}

/// [`encode`], with `cut` written into the `part` mark (ignored when `ev.part` is `None`).
pub fn encode_cut(
    ev: &EventRef<'_>,
    cut: Option<Cut>,
    stream: &str,
    kubernetes: &[u8],
    out: &mut Vec<u8>,
) {
    out.push(b'{');
    key(out, TIME);
    out.push(b'"');
    write_rfc3339(ev.time, out);
    out.push(b'"');
    out.push(b',');
    key(out, STREAM);
    write_str(out, stream);
    out.push(b',');
    write_log(ev.line, out);
    out.push(b',');
    key(out, FILE);
    write_str(out, ev.file);
    write_part(ev.part, cut, out);
    if !kubernetes.is_empty() {
        out.push(b',');
        key(out, KUBERNETES);
        out.extend_from_slice(kubernetes);
    }
    out.push(b'}');
}

/// `"log":…` (and `"log_base64":…` when `line` is not valid UTF-8): the one place both record
/// versions write a line, so they cannot drift apart.
pub(crate) fn write_log(line: &[u8], out: &mut Vec<u8>) {
    key(out, LOG);
    match std::str::from_utf8(line) {
        Ok(text) => write_str(out, text),
        Err(_) => {
            write_str(out, &String::from_utf8_lossy(line));
            out.push(b',');
            key(out, LOG_BASE64);
            out.push(b'"');
            let start = out.len();
            out.resize(start + base64_len(line.len()), 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(line, &mut out[start..])
                .expect("the buffer was sized with base64_len");
            out.truncate(start + written);
            out.push(b'"');
        }
    }
}

/// `,"part":{…}` when the event is a piece (with `cut` when it was sent before its newline).
pub(crate) fn write_part(part: Option<PartMark>, cut: Option<Cut>, out: &mut Vec<u8>) {
    let Some(part) = part else {
        return;
    };
    out.push(b',');
    key(out, PART);
    out.push(b'{');
    key(out, PART_INDEX);
    crate::json::write_uint(out, u64::from(part.index));
    out.push(b',');
    key(out, PART_LAST);
    out.extend_from_slice(if part.last { b"true" } else { b"false" });
    if let Some(cut) = cut {
        out.push(b',');
        key(out, PART_CUT);
        write_str(out, cut.as_str());
    }
    out.push(b'}');
}

/// `"name":` (names are plain ASCII constants: nothing to escape).
pub(crate) fn key(out: &mut Vec<u8>, name: &str) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Upper bound of the bytes [`encode`] can produce for a line of `line_len` bytes, given the
/// lengths of the other strings. The sidecar uses it to decide up front whether a line must be
/// split to fit a record.
pub fn encoded_len_bound(
    line_len: usize,
    file_len: usize,
    stream_len: usize,
    kube_len: usize,
) -> usize {
    // Worst case a byte escapes to `\u00XX` (6 bytes); invalid UTF-8 also adds base64 (4/3)
    // and each invalid byte may become a 3-byte U+FFFD (escaped, at most 6 bytes).
    // 20 for the `part` mark's worst case, 24 more for its `cut`.
    let log = line_len * 6 + base64_len(line_len) + 44;
    let fixed = 128 + 6 * (file_len + stream_len) + kube_len;
    log + fixed
}

/// Padded base64 length of `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn encodes_the_shape_and_omits_absent_fields() {
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
                TIME: "1970-01-01T00:00:00.001000000Z",
                STREAM: "file",
                LOG: "hello \"world\"",
                FILE: "/var/log/app/web/a.log",
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
        assert_eq!(v[LOG], "ok \u{fffd}\u{fffd} end");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v[LOG_BASE64].as_str().unwrap())
            .unwrap();
        assert_eq!(decoded, raw);
        assert_eq!(v[PART], serde_json::json!({PART_INDEX: 2, PART_LAST: true}));
        assert_eq!(v[KUBERNETES]["pod_name"], "p");
    }

    #[test]
    fn a_cut_is_written_inside_the_part_mark() {
        let ev = EventRef {
            line: b"half a li",
            time: at(1, 0),
            file: "f",
            part: Some(PartMark {
                index: 0,
                last: false,
            }),
        };
        for cut in Cut::ALL {
            let mut out = Vec::new();
            encode_cut(&ev, Some(cut), "file", b"", &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(
                v[PART],
                serde_json::json!({PART_INDEX: 0, PART_LAST: false, PART_CUT: cut.as_str()})
            );
            assert_eq!(Cut::from_name(cut.as_str()), Some(cut));
        }
        let mut plain = Vec::new();
        encode(&ev, "file", b"", &mut plain);
        let mut no_cut = Vec::new();
        encode_cut(&ev, None, "file", b"", &mut no_cut);
        assert_eq!(plain, no_cut);
        assert_eq!(Cut::from_name("other"), None);
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
