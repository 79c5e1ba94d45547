//! What a redrive did: counts, problems with their object and line, and the text summary.

use std::collections::BTreeMap;
use std::io::Write;

/// Problems kept in the summary; more are counted, and every one is logged.
pub const MAX_PROBLEMS: usize = 1_000;

/// Bytes of a record shown as a dry-run sample.
pub const SAMPLE_BYTES: usize = 200;

/// What kind of thing was left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProblemKind {
    /// A line that is not an error record.
    Malformed,
    /// A record the destination would fail again.
    WillFailAgain,
    /// The object could not be read, or marked after it was redriven.
    Object,
    /// Records Firehose did not accept within the retry policy's attempts.
    NotAccepted,
    /// A Datadog record with an event older than the window, not re-stamped.
    TooOld,
    /// A Datadog record whose event times cannot be read.
    NoEventTime,
    /// A record that is not what its writer writes (bad gzip, corrupt transform output).
    Corrupt,
    /// An object whose key and records disagree about where the records come from.
    Origin,
}

impl ProblemKind {
    fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WillFailAgain => "will fail again",
            Self::Object => "object error",
            Self::NotAccepted => "not accepted",
            Self::TooOld => "too old",
            Self::NoEventTime => "no event time",
            Self::Corrupt => "corrupt",
            Self::Origin => "origin unclear",
        }
    }
}

/// One thing left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Object key.
    pub key: String,
    /// 1-based line in the (inflated) object, when the problem is one line.
    pub line: Option<u64>,
    /// Kind.
    pub kind: ProblemKind,
    /// Explanation.
    pub detail: String,
}

/// Counts for one `errorCode`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeCount {
    /// Records seen with this code (not counting those sent by an earlier run).
    pub records: u64,
    /// Of those, records that were (or in a dry run, would be) sent.
    pub sendable: u64,
    /// Of the sendable, records sent re-stamped (`--restamp`).
    pub restamped: u64,
    /// Records left because an event is older than Datadog's window allows.
    pub too_old: u64,
    /// The first such record's data, escaped and cut to [`SAMPLE_BYTES`] (dry runs).
    pub sample: Option<String>,
}

/// The outcome of a redrive.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Nothing was sent, written or marked.
    pub dry_run: bool,
    /// Objects under the prefix (excluding `redriven/`).
    pub objects_listed: u64,
    /// Objects finished by this run (every record acknowledged; marked if asked).
    pub objects_done: u64,
    /// Objects finished by an earlier run.
    pub objects_already_done: u64,
    /// Objects that still hold something to redrive or a problem.
    pub objects_left: u64,
    /// Objects not looked at (interrupted, or `--max-objects`).
    pub objects_not_reached: u64,
    /// Records acknowledged by Firehose in this run (in a dry run: that would be sent).
    pub records_sent: u64,
    /// Bytes of those records.
    pub bytes_sent: u64,
    /// Records skipped because an earlier run sent them.
    pub records_already_sent: u64,
    /// Records outside `--since`/`--until`/`--error-code`.
    pub records_filtered: u64,
    /// Records the destination would fail again (reported).
    pub records_will_fail_again: u64,
    /// Records not acknowledged when the run stopped.
    pub records_unsent: u64,
    /// Lines that are not error records (reported).
    pub malformed_lines: u64,
    /// Datadog records left because an event is older than the window (reported).
    pub records_too_old: u64,
    /// Records sent with their old events re-stamped (in a dry run: that would be).
    pub records_restamped: u64,
    /// Events in those records whose time Datadog reads as the redrive's.
    pub events_restamped: u64,
    /// Datadog records left because their event times cannot be read (reported).
    pub records_no_event_time: u64,
    /// Records left because they are corrupt (reported).
    pub records_corrupt: u64,
    /// Records left because their object's key and records disagree on their origin.
    pub records_origin_unclear: u64,
    /// `PutRecordBatch` calls.
    pub calls: u64,
    /// Records resent after a partial or whole-call failure.
    pub resent_records: u64,
    /// Per `errorCode`.
    pub by_error_code: BTreeMap<String, CodeCount>,
    /// Problems, at most [`MAX_PROBLEMS`].
    pub problems: Vec<Problem>,
    /// Problems beyond [`MAX_PROBLEMS`].
    pub problems_not_listed: u64,
    /// Stopped by a signal.
    pub interrupted: bool,
    /// Stopped by `--max-objects`.
    pub stopped_at_max_objects: bool,
    /// Stopped because Firehose did not accept records within the retry policy (its last
    /// error): what is left would only fail the same way.
    pub gave_up: Option<String>,
}

impl Summary {
    /// Anything in scope that is still in the bucket: problems, unsent records, objects not
    /// reached. Records excluded by a filter do not count (the user asked for that).
    pub fn left_behind(&self) -> bool {
        !self.problems.is_empty()
            || self.problems_not_listed > 0
            || self.records_unsent > 0
            || self.objects_not_reached > 0
            || self.interrupted
            || self.gave_up.is_some()
    }

    /// Records a problem (and logs it).
    pub fn problem(&mut self, key: &str, line: Option<u64>, kind: ProblemKind, detail: String) {
        tracing::warn!(key, line, kind = kind.label(), detail, "left in the bucket");
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                key: key.to_owned(),
                line,
                kind,
                detail,
            });
        } else {
            self.problems_not_listed += 1;
        }
    }

    /// Writes the human-readable summary.
    pub fn render(&self, out: &mut impl Write) -> std::io::Result<()> {
        let (verb, done) = if self.dry_run {
            ("would send", "would be done")
        } else {
            ("sent", "done")
        };
        if self.dry_run {
            writeln!(out, "DRY RUN: nothing was sent, written, tagged or deleted")?;
        }
        writeln!(
            out,
            "objects: {} listed, {} {done}, {} done before, {} left, {} not reached",
            self.objects_listed,
            self.objects_done,
            self.objects_already_done,
            self.objects_left,
            self.objects_not_reached
        )?;
        writeln!(
            out,
            "records: {} {verb} ({} bytes), {} sent before, {} filtered out, {} will fail again, {} malformed, {} unsent",
            self.records_sent,
            self.bytes_sent,
            self.records_already_sent,
            self.records_filtered,
            self.records_will_fail_again,
            self.malformed_lines,
            self.records_unsent
        )?;
        if self.records_corrupt + self.records_origin_unclear > 0 {
            writeln!(
                out,
                "bad input: {} corrupt records, {} records in objects of unclear origin",
                self.records_corrupt, self.records_origin_unclear
            )?;
        }
        if self.records_too_old + self.records_restamped + self.records_no_event_time > 0 {
            let restamped = if self.dry_run {
                "would be re-stamped"
            } else {
                "re-stamped"
            };
            writeln!(
                out,
                "datadog window: {} records too old (left), {} {restamped} ({} events), {} without event time (left)",
                self.records_too_old,
                self.records_restamped,
                self.events_restamped,
                self.records_no_event_time
            )?;
        }
        if !self.dry_run {
            writeln!(
                out,
                "calls: {} PutRecordBatch, {} records resent after failures",
                self.calls, self.resent_records
            )?;
        }
        self.render_details(out, verb)?;
        self.render_ending(out)
    }

    /// Counts per error code, then every problem.
    fn render_details(&self, out: &mut impl Write, verb: &str) -> std::io::Result<()> {
        for (code, c) in &self.by_error_code {
            let code = if code.is_empty() { "(none)" } else { code };
            write!(
                out,
                "  errorCode {code}: {} records, {} {verb}",
                c.records, c.sendable
            )?;
            if c.restamped > 0 {
                write!(out, " ({} re-stamped)", c.restamped)?;
            }
            if c.too_old > 0 {
                write!(out, ", {} too old", c.too_old)?;
            }
            writeln!(out)?;
            if let Some(sample) = &c.sample {
                writeln!(out, "    sample: {sample}")?;
            }
        }
        for p in &self.problems {
            match p.line {
                Some(line) => {
                    writeln!(out, "  {}: {}:{line}: {}", p.kind.label(), p.key, p.detail)?
                }
                None => writeln!(out, "  {}: {}: {}", p.kind.label(), p.key, p.detail)?,
            }
        }
        if self.problems_not_listed > 0 {
            writeln!(
                out,
                "  ... and {} more problems (see the log)",
                self.problems_not_listed
            )?;
        }
        Ok(())
    }

    /// Why the run stopped early, and the verdict.
    fn render_ending(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.interrupted {
            writeln!(out, "interrupted: run again to continue")?;
        }
        if self.stopped_at_max_objects {
            writeln!(out, "stopped at --max-objects: run again to continue")?;
        }
        if let Some(why) = &self.gave_up {
            writeln!(
                out,
                "stopped: Firehose did not accept every record ({why}); run again to continue"
            )?;
        }
        let result = if self.left_behind() {
            "INCOMPLETE: something was left in the bucket"
        } else {
            "OK: everything in scope was redriven"
        };
        writeln!(out, "{result}")
    }
}

/// `data` as printable text for a sample: a gzip record's first bytes inflated (the
/// transform's Datadog output is always gzip, and compressed bytes tell an operator nothing),
/// UTF-8 lossy, control characters escaped, cut.
pub fn sample(data: &[u8]) -> String {
    use std::io::Read as _;
    let mut head = Vec::new();
    let inflated = firetail_wire::gzip::is_gzip(data)
        && flate2::read::MultiGzDecoder::new(data)
            .take(SAMPLE_BYTES as u64 + 1)
            .read_to_end(&mut head)
            .is_ok();
    let text = if inflated { &head[..] } else { data };
    let cut = &text[..text.len().min(SAMPLE_BYTES)];
    let mut s = String::with_capacity(cut.len());
    for c in String::from_utf8_lossy(cut).chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if c.is_control() => s.extend(c.escape_unicode()),
            c => s.push(c),
        }
    }
    if text.len() > SAMPLE_BYTES {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn renders_counts_problems_and_the_verdict() {
        let mut s = Summary {
            objects_listed: 3,
            objects_done: 2,
            objects_left: 1,
            records_sent: 7,
            bytes_sent: 70,
            malformed_lines: 1,
            calls: 2,
            ..Summary::default()
        };
        s.by_error_code.insert(
            "Lambda.FunctionError".into(),
            CodeCount {
                records: 7,
                sendable: 7,
                ..CodeCount::default()
            },
        );
        assert!(!s.left_behind());
        s.problem("a/b", Some(3), ProblemKind::Malformed, "not JSON".into());
        assert!(s.left_behind());
        let mut out = Vec::new();
        s.render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("objects: 3 listed, 2 done"), "{text}");
        assert!(text.contains("records: 7 sent (70 bytes)"), "{text}");
        assert!(text.contains("errorCode Lambda.FunctionError: 7 records, 7 sent"));
        assert!(text.contains("malformed: a/b:3: not JSON"), "{text}");
        assert!(text.ends_with("INCOMPLETE: something was left in the bucket\n"));
    }

    #[test]
    fn a_delivery_that_gave_up_is_left_behind() {
        let mut s = Summary {
            gave_up: Some("throttled (ServiceUnavailableException): Slow down.".into()),
            ..Summary::default()
        };
        assert!(s.left_behind());
        s.problem(
            "k",
            None,
            ProblemKind::NotAccepted,
            "2 records not accepted".into(),
        );
        let mut out = Vec::new();
        s.render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("not accepted: k: 2 records not accepted"),
            "{text}"
        );
        assert!(
            text.contains("stopped: Firehose did not accept every record (throttled"),
            "{text}"
        );
        assert!(text.ends_with("INCOMPLETE: something was left in the bucket\n"));
    }

    #[test]
    fn datadog_window_and_bad_input_are_counted_per_code() {
        let mut s = Summary {
            records_sent: 3,
            records_restamped: 2,
            events_restamped: 5,
            records_too_old: 4,
            records_corrupt: 1,
            records_origin_unclear: 6,
            ..Summary::default()
        };
        s.by_error_code.insert(
            "HttpEndpoint.DestinationException".into(),
            CodeCount {
                records: 7,
                sendable: 3,
                restamped: 2,
                too_old: 4,
                sample: None,
            },
        );
        s.problem(
            "k",
            Some(2),
            ProblemKind::TooOld,
            "1 of 1 events older".into(),
        );
        let mut out = Vec::new();
        s.render(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        for line in [
            "bad input: 1 corrupt records, 6 records in objects of unclear origin\n",
            "datadog window: 4 records too old (left), 2 re-stamped (5 events), 0 without event time (left)\n",
            "  errorCode HttpEndpoint.DestinationException: 7 records, 3 sent (2 re-stamped), 4 too old\n",
            "  too old: k:2: 1 of 1 events older\n",
        ] {
            assert!(text.contains(line), "{line} not in {text}");
        }
        assert!(s.left_behind());
        s.dry_run = true;
        let mut out = Vec::new();
        s.render(&mut out).unwrap();
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains("2 would be re-stamped (5 events)")
        );
    }

    #[test]
    fn samples_are_escaped_and_cut() {
        assert_eq!(sample(b"a\nb\"\x01\xff"), "a\\nb\"\\u{1}\u{fffd}");
        let long = vec![b'x'; SAMPLE_BYTES + 1];
        assert!(sample(&long).ends_with("x..."));
        let gz = firetail_wire::gzip::gzip(&long, flate2::Compression::fast());
        assert_eq!(sample(&gz), sample(&long), "gzip is shown inflated");
        let short = firetail_wire::gzip::gzip(b"{\"m\":1}\n", flate2::Compression::fast());
        assert_eq!(sample(&short), "{\"m\":1}\\n");
        assert!(
            sample(&gz[..12]).starts_with("\\u{1f}"),
            "broken gzip is shown as it is"
        );
    }
}
