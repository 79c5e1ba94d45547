//! What a drain left behind, turned into the log lines, the metrics and the exit status that
//! report it (sidecar/README.md, "Shutdown and drain").
//!
//! A drain that ends at its deadline with bytes unread or unacknowledged is not a success: on
//! Fargate the `emptyDir` that holds those bytes dies with the pod. The process then exits
//! with [`EXIT_DRAIN_INCOMPLETE`], so the container's status says so, and names every file
//! with what was left in it.

use std::path::PathBuf;

use firetail_tail::{DrainEnd, DrainReport, FileLeft};

use crate::stdout::{StdoutReport, source_path};

/// Exit status of `firetail run` when the drain left data unread or unacknowledged: 75,
/// `EX_TEMPFAIL` of sysexits.h (the data is still in the files; a start with a reachable
/// Firehose sends it). Configuration and startup errors exit with 1, a complete drain with 0.
pub const EXIT_DRAIN_INCOMPLETE: u8 = 75;

/// Files named one by one in the log; the rest are summed in one line, so a drain over tens of
/// thousands of files cannot flood the log the pod's last moments are read from.
pub const MAX_FILES_LOGGED: usize = 100;

/// How a drain ended, as the `outcome` label of the drains metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Everything read was acknowledged and nothing was left unread.
    Complete,
    /// The deadline passed with data unread or unacknowledged.
    Deadline,
    /// The drain did not run to its end (the engine or the drain task stopped); what is left
    /// is unknown.
    Failed,
}

impl Outcome {
    /// Every outcome, in exposition order.
    pub const ALL: [Self; 3] = [Self::Complete, Self::Deadline, Self::Failed];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Deadline => "deadline",
            Self::Failed => "failed",
        }
    }
}

/// What a drain left, summed and per file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainOutcome {
    /// How it ended.
    pub outcome: Outcome,
    /// Bytes never read, over all files.
    pub unread_bytes: u64,
    /// Bytes read but never acknowledged: the larger of the engine's in-flight count and the
    /// per-file sum (which also holds unterminated lines not yet emitted).
    pub unacked_bytes: u64,
    /// Per file, what was left (from the engine's report).
    pub files_left: Vec<FileLeft>,
    /// Batches still unsent or unacknowledged when the run ended.
    pub abandoned_batches: usize,
    /// Whether the final checkpoint was written.
    pub checkpoint_saved: bool,
    /// Container log streams (the stdout source) not read to their end by the deadline.
    pub streams_unfinished: Vec<String>,
}

impl DrainOutcome {
    /// The outcome of the engine's `report`; `abandoned_batches` is the run loop's count of
    /// send tasks cut off at the end.
    pub fn of(report: &DrainReport, abandoned_batches: usize) -> Self {
        let files_unacked: u64 = report.files_left.iter().map(|f| f.unacked_bytes).sum();
        let unacked_bytes = report.unacked_bytes.max(files_unacked);
        let unread_bytes = report.unread_bytes();
        let outcome = if report.end == DrainEnd::Stopped {
            Outcome::Failed
        } else if unread_bytes > 0 || unacked_bytes > 0 {
            Outcome::Deadline
        } else {
            // The deadline may have passed while the app still wrote, but nothing was left
            // behind when reading stopped: complete.
            Outcome::Complete
        };
        Self {
            outcome,
            unread_bytes,
            unacked_bytes,
            files_left: report.files_left.clone(),
            abandoned_batches,
            checkpoint_saved: report.checkpoint_saved,
            streams_unfinished: Vec::new(),
        }
    }

    /// Adds what the stdout source's drain left: each stream with unacknowledged bytes is
    /// listed like a file (`k8s://{container}`), and a stream not read to its end makes the
    /// drain incomplete (how much it left is unknown: the kubelet still has it).
    pub fn with_streams(mut self, report: &StdoutReport) -> Self {
        for left in &report.streams_left {
            self.unacked_bytes += left.unacked_bytes;
            self.files_left.push(FileLeft {
                path: PathBuf::from(source_path(&left.container)),
                unread_bytes: 0,
                unacked_bytes: left.unacked_bytes,
            });
            if left.unfinished {
                self.streams_unfinished.push(left.container.clone());
            }
        }
        self.checkpoint_saved &= report.checkpoint_saved;
        let left_something = !report.streams_left.is_empty();
        if self.outcome == Outcome::Complete && left_something {
            self.outcome = Outcome::Deadline;
        }
        self
    }

    /// Whether everything read was delivered and nothing was left unread.
    pub fn is_complete(&self) -> bool {
        self.outcome == Outcome::Complete
    }

    /// The process exit status this outcome calls for: 0, or [`EXIT_DRAIN_INCOMPLETE`].
    pub fn exit_code(&self) -> u8 {
        if self.is_complete() {
            0
        } else {
            EXIT_DRAIN_INCOMPLETE
        }
    }

    /// Logs the outcome: one INFO line when complete; otherwise one ERROR line per file (up to
    /// [`MAX_FILES_LOGGED`], the rest summed) and an ERROR summary.
    pub fn log(&self, events_received: u64, bytes_read: u64) {
        if self.is_complete() {
            tracing::info!(
                events = events_received,
                bytes_read,
                checkpoint_saved = self.checkpoint_saved,
                "drained; everything read was delivered"
            );
            return;
        }
        for file in self.files_left.iter().take(MAX_FILES_LOGGED) {
            tracing::error!(
                path = %file.path.display(),
                unread_bytes = file.unread_bytes,
                unacked_bytes = file.unacked_bytes,
                "drain left data in this file"
            );
        }
        if let Some(rest) = self.files_left.get(MAX_FILES_LOGGED..) {
            tracing::error!(
                files = rest.len(),
                unread_bytes = rest.iter().map(|f| f.unread_bytes).sum::<u64>(),
                unacked_bytes = rest.iter().map(|f| f.unacked_bytes).sum::<u64>(),
                "drain left data in more files (not named one by one)"
            );
        }
        for container in &self.streams_unfinished {
            tracing::error!(
                container = %container,
                path = %source_path(container),
                "drain ended before this container's log stream ended (the container still ran, or the API was unreachable); the rest stays in the kubelet's log"
            );
        }
        tracing::error!(
            outcome = %self.outcome.as_str(),
            files = self.files_left.len(),
            streams_unfinished = self.streams_unfinished.len(),
            unread_bytes = self.unread_bytes,
            unacked_bytes = self.unacked_bytes,
            abandoned_batches = self.abandoned_batches,
            checkpoint_saved = self.checkpoint_saved,
            exit_code = self.exit_code(),
            "drain ended before everything was delivered; what is left stays in the files (lost if the pod's volume goes)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stdout::StreamLeft;

    #[test]
    fn streams_left_by_the_stdout_source_make_the_drain_incomplete() {
        let clean = DrainOutcome::of(&report(DrainEnd::AllRead, 0, &[]), 0);
        let same = clean.clone().with_streams(&StdoutReport {
            streams_left: Vec::new(),
            checkpoint_saved: true,
        });
        assert!(same.is_complete());
        let left = clean.with_streams(&StdoutReport {
            streams_left: vec![
                StreamLeft {
                    container: "app".into(),
                    unacked_bytes: 0,
                    unfinished: true,
                },
                StreamLeft {
                    container: "worker".into(),
                    unacked_bytes: 70,
                    unfinished: false,
                },
            ],
            checkpoint_saved: true,
        });
        assert_eq!(left.outcome, Outcome::Deadline);
        assert_eq!(left.exit_code(), EXIT_DRAIN_INCOMPLETE);
        assert_eq!(left.unacked_bytes, 70);
        assert_eq!(left.streams_unfinished, ["app"]);
        assert_eq!(left.files_left[1].path, PathBuf::from("k8s://worker"));
    }

    fn report(end: DrainEnd, inflight: u64, files: &[(&str, u64, u64)]) -> DrainReport {
        DrainReport {
            end,
            events_emitted: 10,
            bytes_read: 1000,
            unacked_bytes: inflight,
            checkpoint_saved: true,
            files_left: files
                .iter()
                .map(|&(path, unread_bytes, unacked_bytes)| FileLeft {
                    path: PathBuf::from(path),
                    unread_bytes,
                    unacked_bytes,
                })
                .collect(),
        }
    }

    #[test]
    fn a_drain_that_left_nothing_is_complete_and_exits_zero() {
        for end in [DrainEnd::AllRead, DrainEnd::Deadline] {
            let outcome = DrainOutcome::of(&report(end, 0, &[]), 0);
            assert_eq!(outcome.outcome, Outcome::Complete, "{end:?}");
            assert_eq!(outcome.exit_code(), 0);
        }
    }

    #[test]
    fn unread_or_unacked_bytes_make_the_drain_incomplete() {
        // Unread only: the deadline stopped reading, everything read was acknowledged.
        let unread = DrainOutcome::of(&report(DrainEnd::Deadline, 0, &[("/a", 500, 0)]), 0);
        assert_eq!(unread.outcome, Outcome::Deadline);
        assert_eq!((unread.unread_bytes, unread.unacked_bytes), (500, 0));
        assert_eq!(unread.exit_code(), EXIT_DRAIN_INCOMPLETE);
        // Everything read, some of it never acknowledged (the engine says AllRead).
        let unacked = DrainOutcome::of(&report(DrainEnd::AllRead, 300, &[("/a", 0, 300)]), 2);
        assert_eq!(unacked.outcome, Outcome::Deadline);
        assert_eq!(unacked.unacked_bytes, 300);
        assert_eq!(unacked.exit_code(), EXIT_DRAIN_INCOMPLETE);
        // In flight without a file to show it (a released file): still unacknowledged.
        let released = DrainOutcome::of(&report(DrainEnd::AllRead, 40, &[]), 1);
        assert_eq!(released.unacked_bytes, 40);
        assert!(!released.is_complete());
    }

    #[test]
    fn per_file_figures_are_kept_and_summed() {
        let outcome = DrainOutcome::of(
            &report(
                DrainEnd::Deadline,
                250,
                &[
                    ("/l/a.log", 1000, 200),
                    ("/l/b.log", 0, 100),
                    ("/l/c.log", 7, 0),
                ],
            ),
            3,
        );
        assert_eq!(outcome.unread_bytes, 1007);
        // The per-file sum (300) exceeds the in-flight count (250): it also holds the
        // unterminated lines being framed.
        assert_eq!(outcome.unacked_bytes, 300);
        assert_eq!(outcome.files_left.len(), 3);
        assert_eq!(outcome.files_left[1].path, PathBuf::from("/l/b.log"));
        assert_eq!(outcome.abandoned_batches, 3);
    }

    #[test]
    fn a_drain_that_did_not_run_to_its_end_failed_whatever_it_reports() {
        let outcome = DrainOutcome::of(&report(DrainEnd::Stopped, 0, &[]), 0);
        assert_eq!(outcome.outcome, Outcome::Failed);
        assert_eq!(outcome.exit_code(), EXIT_DRAIN_INCOMPLETE);
    }
}
