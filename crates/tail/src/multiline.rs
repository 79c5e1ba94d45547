//! Multiline joining: folds stack traces and similar continuation lines into one event.
//!
//! Pure: the engine pushes frames and decides *when* a held group is flushed (flush timeout,
//! quiet file, drain); this module only decides *what* belongs together. Joined events keep
//! the byte range of all their lines, so acknowledgements still map to exact file positions.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use regex::bytes::Regex;

use super::error::TailError;
use super::framing::Frame;

/// How continuation lines are recognised.
#[derive(Clone)]
pub enum MultilineMode {
    /// Java/JVM: lines starting with whitespace (`\tat ...`, `\t... 3 more`) or `Caused by:`
    /// continue the previous line.
    Java,
    /// Python: a `Traceback (most recent call last):` line joins the line before it (the
    /// `logger.exception` message); indented lines follow, and the first unindented line (the
    /// exception itself) closes the trace. Chained tracebacks (blank lines, the "During handling
    /// of the above exception" / "The above exception was the direct cause" banner, the next
    /// `Traceback`) stay in the same event.
    Python,
    /// Go: a `panic:` or `fatal error:` line opens a trace that takes blank lines, `goroutine N
    /// [...]:` headers, `pkg.func(...)` frames, indented file lines and `exit status N`.
    Go,
    /// A line matching the regex starts a new event; any other line continues the current one.
    StartPattern(Regex),
}

impl fmt::Debug for MultilineMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Java => f.write_str("java"),
            Self::Python => f.write_str("python"),
            Self::Go => f.write_str("go"),
            Self::StartPattern(re) => write!(f, "start-pattern({})", re.as_str()),
        }
    }
}

impl FromStr for MultilineMode {
    type Err = TailError;

    /// `java`, `python`, `go`, or any other value as a start-pattern regex.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "java" => Ok(Self::Java),
            "python" => Ok(Self::Python),
            "go" => Ok(Self::Go),
            pattern => Regex::new(pattern)
                .map(Self::StartPattern)
                .map_err(|source| TailError::InvalidMultiline {
                    pattern: pattern.to_owned(),
                    source,
                }),
        }
    }
}

/// Multiline settings.
#[derive(Debug, Clone)]
pub struct MultilineConfig {
    /// Continuation rules.
    pub mode: MultilineMode,
    /// A held group is emitted once its file has been quiet this long.
    pub flush_timeout: Duration,
    /// A group is emitted before it would grow past this many bytes (joined content); the line
    /// that did not fit starts the next group. Nothing is dropped.
    pub max_bytes: usize,
}

impl MultilineConfig {
    /// Settings for `mode` with the default timeout (1 s) and cap (256 KiB).
    pub fn new(mode: MultilineMode) -> Self {
        Self {
            mode,
            flush_timeout: Duration::from_millis(1000),
            max_bytes: 256 * 1024,
        }
    }
}

/// Where a language-specific trace parser stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TraceState {
    Normal,
    InTrace,
    /// Just after a Python exception line: a chained traceback may follow.
    AfterTrace,
}

/// Per-file joiner.
#[derive(Debug)]
pub struct Aggregator {
    config: MultilineConfig,
    group: Option<Frame>,
    state: TraceState,
}

impl Aggregator {
    pub fn new(config: MultilineConfig) -> Self {
        Self {
            config,
            group: None,
            state: TraceState::Normal,
        }
    }

    /// True while a group is held back waiting for continuation lines.
    pub fn is_holding(&self) -> bool {
        self.group.is_some()
    }

    /// Bytes currently held.
    pub fn held_bytes(&self) -> usize {
        self.group.as_ref().map_or(0, |g| g.bytes.len())
    }

    /// Offers a frame; finished events are pushed to `out`.
    pub fn push(&mut self, frame: Frame, out: &mut Vec<Frame>) {
        if frame.part.is_some() {
            // Pieces of an over-long line are already as large as an event may be; pass them
            // through in order rather than joining.
            self.flush(out);
            self.state = TraceState::Normal;
            out.push(frame);
            return;
        }
        let continues = self.group.is_some() && self.classify(&frame.bytes);
        if !continues {
            if self.group.is_none() {
                // No group to join: still let the line open a trace state.
                self.classify(&frame.bytes);
            }
            self.flush(out);
            self.group = Some(frame);
            return;
        }
        let Some(group) = self.group.as_mut() else {
            return;
        };
        if group.bytes.len() + 1 + frame.bytes.len() > self.config.max_bytes {
            self.flush(out);
            self.group = Some(frame);
            return;
        }
        group.bytes.push(b'\n');
        group.bytes.extend_from_slice(&frame.bytes);
        group.end_offset = frame.end_offset;
    }

    /// Emits the held group, if any.
    pub fn flush(&mut self, out: &mut Vec<Frame>) {
        if let Some(group) = self.group.take() {
            out.push(group);
        }
    }

    /// Decides whether `line` continues the current group, updating the trace state.
    fn classify(&mut self, line: &[u8]) -> bool {
        match &self.config.mode {
            MultilineMode::Java => {
                starts_with_space(line)
                    || line.starts_with(b"Caused by:")
                    || line.starts_with(b"Suppressed:")
            }
            MultilineMode::Python => {
                if line.starts_with(b"Traceback (most recent call last):") {
                    self.state = TraceState::InTrace;
                    return true;
                }
                match self.state {
                    TraceState::InTrace => {
                        if !starts_with_space(line) {
                            // The exception line closes the trace and still belongs to it.
                            self.state = TraceState::AfterTrace;
                        }
                        true
                    }
                    // Chained exceptions: blank lines and the "During handling..." / "The above
                    // exception..." banners lead to the next Traceback of the same event.
                    TraceState::AfterTrace
                        if line.is_empty()
                            || line.starts_with(b"During handling of the above exception")
                            || line.starts_with(b"The above exception was the direct cause") =>
                    {
                        true
                    }
                    _ => {
                        self.state = TraceState::Normal;
                        false
                    }
                }
            }
            MultilineMode::Go => {
                if line.starts_with(b"panic: ") || line.starts_with(b"fatal error: ") {
                    let continues = self.state == TraceState::InTrace;
                    self.state = TraceState::InTrace;
                    return continues;
                }
                if self.state == TraceState::InTrace {
                    if line.is_empty()
                        || starts_with_space(line)
                        || line.starts_with(b"goroutine ")
                        || line.starts_with(b"created by ")
                        || line.starts_with(b"[signal ")
                        || line.starts_with(b"exit status ")
                        || is_go_frame(line)
                    {
                        return true;
                    }
                    self.state = TraceState::Normal;
                }
                false
            }
            MultilineMode::StartPattern(re) => !re.is_match(line),
        }
    }
}

fn starts_with_space(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

/// `main.main()`, `net/http.(*conn).serve(0xc000)`: no blanks, a call's parentheses at the end.
fn is_go_frame(line: &[u8]) -> bool {
    let Some(open) = line.iter().position(|&b| b == b'(') else {
        return false;
    };
    open > 0 && line.ends_with(b")") && !line[..open].iter().any(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::framing::Framer;

    fn join(mode: &str, max_bytes: usize, text: &str) -> Vec<(String, u64, u64)> {
        let mut config = MultilineConfig::new(mode.parse().unwrap());
        config.max_bytes = max_bytes;
        let mut agg = Aggregator::new(config);
        let mut framer = Framer::new(0, 1 << 20);
        let mut frames = Vec::new();
        framer.feed(text.as_bytes(), &mut frames);
        let mut out = Vec::new();
        for f in frames {
            agg.push(f, &mut out);
        }
        agg.flush(&mut out);
        out.into_iter()
            .map(|f| (String::from_utf8(f.bytes).unwrap(), f.offset, f.end_offset))
            .collect()
    }

    fn bodies(events: &[(String, u64, u64)]) -> Vec<&str> {
        events.iter().map(|e| e.0.as_str()).collect()
    }

    const JAVA: &str = "2026-01-01 ERROR boom\n\
java.lang.IllegalStateException: bad\n\
\tat com.x.A.run(A.java:10)\n\
\tat com.x.B.main(B.java:3)\n\
Caused by: java.io.IOException: disk\n\
\t... 2 more\n\
2026-01-01 INFO fine\n";

    #[test]
    fn java_joins_frames_and_causes() {
        let ev = join("java", 1 << 20, JAVA);
        assert_eq!(
            bodies(&ev),
            [
                "2026-01-01 ERROR boom",
                "java.lang.IllegalStateException: bad\n\tat com.x.A.run(A.java:10)\n\tat com.x.B.main(B.java:3)\nCaused by: java.io.IOException: disk\n\t... 2 more",
                "2026-01-01 INFO fine",
            ]
        );
        // Ranges stay contiguous and cover the input.
        assert_eq!(ev[0].1, 0);
        assert_eq!(ev[1].1, ev[0].2);
        assert_eq!(ev[2].1, ev[1].2);
        assert_eq!(ev[2].2, JAVA.len() as u64);
    }

    #[test]
    fn python_traceback_joins_message_and_exception_line() {
        let text = "INFO start\nERROR failed to load\nTraceback (most recent call last):\n  File \"a.py\", line 3, in <module>\n    load()\nValueError: nope\nINFO next\n";
        let ev = join("python", 1 << 20, text);
        assert_eq!(
            bodies(&ev),
            [
                "INFO start",
                "ERROR failed to load\nTraceback (most recent call last):\n  File \"a.py\", line 3, in <module>\n    load()\nValueError: nope",
                "INFO next"
            ]
        );
    }

    #[test]
    fn python_chained_tracebacks_stay_one_event() {
        let trace = "Traceback (most recent call last):\n  File \"a.py\", line 2, in <module>\n    1/0\nZeroDivisionError: division by zero\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"a.py\", line 4, in <module>\nValueError: x";
        let text = format!("ERROR boom\n{trace}\nINFO after\n");
        let ev = join("python", 1 << 20, &text);
        assert_eq!(
            bodies(&ev),
            [format!("ERROR boom\n{trace}").as_str(), "INFO after"]
        );
    }

    #[test]
    fn go_panic_is_one_event() {
        let text = "level=info msg=up\npanic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:7 +0x1d\nexit status 2\nlevel=info msg=restarted\n";
        let ev = join("go", 1 << 20, text);
        assert_eq!(
            bodies(&ev),
            [
                "level=info msg=up",
                "panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:7 +0x1d\nexit status 2",
                "level=info msg=restarted"
            ]
        );
    }

    #[test]
    fn start_pattern_groups_until_next_match() {
        let text = "[1] a\ncont\n more\n[2] b\n[3] c\nx\n";
        let ev = join(r"^\[\d+\]", 1 << 20, text);
        assert_eq!(bodies(&ev), ["[1] a\ncont\n more", "[2] b", "[3] c\nx"]);
    }

    #[test]
    fn max_bytes_cap_starts_a_new_group_without_dropping() {
        let text = "head\n\tl1\n\tl2\n\tl3\nnext\n";
        let ev = join("java", 10, text);
        assert_eq!(bodies(&ev), ["head\n\tl1", "\tl2\n\tl3", "next"]);
        let joined: usize = ev.iter().map(|e| (e.2 - e.1) as usize).sum();
        assert_eq!(joined, text.len());
    }

    #[test]
    fn split_parts_pass_through_in_order() {
        let mut agg = Aggregator::new(MultilineConfig::new(MultilineMode::Java));
        let mut framer = Framer::new(0, 4);
        let mut frames = Vec::new();
        framer.feed(b"head\n\tabcdefg\n\tz\n", &mut frames);
        let mut out = Vec::new();
        for f in frames {
            agg.push(f, &mut out);
        }
        agg.flush(&mut out);
        let got: Vec<_> = out
            .iter()
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
            .collect();
        assert_eq!(got, ["head", "\tabc", "defg", "\tz"]);
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let err = "([".parse::<MultilineMode>().unwrap_err();
        assert!(err.to_string().contains("(["), "{err}");
    }
}
