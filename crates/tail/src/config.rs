//! Engine settings, drain modes and the drain report.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use super::error::TailError;
use super::multiline::MultilineConfig;

/// Where to start in a file that has no checkpoint and already existed when the engine started.
/// Files that appear later are always read from their beginning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Read what the app wrote before the sidecar started (default).
    #[default]
    Beginning,
    /// Skip existing content; only new lines are shipped.
    End,
}

impl FromStr for ReadFrom {
    type Err = TailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "beginning" => Ok(Self::Beginning),
            "end" => Ok(Self::End),
            other => Err(TailError::InvalidConfig(format!(
                "read-from must be `beginning` or `end`, got {other:?}"
            ))),
        }
    }
}

/// Default in-flight budget ([`TailConfig::max_inflight_bytes`]).
pub const DEFAULT_MAX_INFLIGHT_BYTES: u64 = 4 * 1024 * 1024;

/// Default [`TailConfig::partial_line_timeout`]: longer than the pauses of a block-buffered
/// writer between the halves of one line, short enough that a final line without newline is
/// not held for long.
pub const DEFAULT_PARTIAL_LINE_TIMEOUT: Duration = Duration::from_secs(5);

/// Tailing engine settings. Durations are `Duration`s; the CLI layer owns the `_secs`/`_ms`
/// flag names.
#[derive(Debug, Clone)]
pub struct TailConfig {
    /// Globs of files to tail (`*` stays within a directory, `**` crosses directories).
    pub paths: Vec<String>,
    /// Where checkpoints live; skipped by discovery even when it lies under a watched root.
    pub data_dir: PathBuf,
    /// Start position for files without a checkpoint that exist at startup.
    pub read_from: ReadFrom,
    /// Lines longer than this are split into [`super::Part`]s.
    pub max_line_bytes: usize,
    /// Join continuation lines (stack traces) into one event.
    pub multiline: Option<MultilineConfig>,
    /// The memory budget, in file bytes: reading stops while the bytes emitted and not yet
    /// acknowledged plus the bytes held in framers (unterminated lines) and multiline groups
    /// reach this (default 4 MiB, as the sidecar's). See "Memory model" in the crate docs.
    pub max_inflight_bytes: u64,
    /// Rescan globs and re-check every file this often; the only discovery on volumes without
    /// inotify, and a safety net where inotify exists.
    pub poll_interval: Duration,
    /// How long a rotated-away or deleted file is kept open after its last new byte.
    pub rotate_grace: Duration,
    /// How long an unterminated line waits for its newline once its file went quiet; then it
    /// is emitted as a piece marked [`super::Cut::Timeout`] and the rest follows as the next
    /// piece.
    pub partial_line_timeout: Duration,
    /// How often acknowledged positions are persisted (when they changed).
    pub checkpoint_interval: Duration,
    /// Overrides the container name derived from the directory layout.
    pub container_name: Option<String>,
    /// Use inotify (through `notify`) in addition to polling.
    pub use_inotify: bool,
    /// Tail a matching symlink whose target lies outside every glob root. Off by default: a
    /// link in the log directory must not ship a file from elsewhere on the volume.
    pub follow_symlinks_outside_roots: bool,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            paths: vec!["/var/log/app/**/*.log".to_owned()],
            data_dir: PathBuf::from("/var/lib/firetail"),
            read_from: ReadFrom::Beginning,
            max_line_bytes: 256 * 1024,
            multiline: None,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            poll_interval: Duration::from_secs(1),
            rotate_grace: Duration::from_secs(5),
            partial_line_timeout: DEFAULT_PARTIAL_LINE_TIMEOUT,
            checkpoint_interval: Duration::from_secs(1),
            container_name: None,
            use_inotify: true,
            follow_symlinks_outside_roots: false,
        }
    }
}

impl TailConfig {
    pub(crate) fn validate(&self) -> Result<(), TailError> {
        let bad = |m: &str| Err(TailError::InvalidConfig(m.to_owned()));
        if self.paths.is_empty() {
            return bad("at least one path glob is required");
        }
        if self.max_line_bytes == 0 {
            return bad("max_line_bytes must be positive");
        }
        if self.max_inflight_bytes == 0 {
            return bad("max_inflight_bytes must be positive");
        }
        if self.poll_interval.is_zero() {
            return bad("poll_interval must be positive (zero would busy-poll)");
        }
        if let Some(m) = &self.multiline
            && m.max_bytes == 0
        {
            return bad("multiline max_bytes must be positive");
        }
        Ok(())
    }
}

/// How [`super::TailHandle::drain`] winds the engine down. Either way the engine then emits any
/// unterminated last lines and held multiline groups, ends the stream, waits (until the
/// deadline) for the consumer to acknowledge everything, and writes a final checkpoint.
#[derive(Debug, Clone, Copy)]
pub enum DrainMode {
    /// Read every file to its current end, then finish. Gives up reading at `deadline`.
    ReadToEof { deadline: Instant },
    /// Keep tailing until no file has grown for `quiet` (the app has stopped writing), or until
    /// `deadline`.
    Quiet { quiet: Duration, deadline: Instant },
}

impl DrainMode {
    pub(crate) fn deadline(&self) -> Instant {
        match *self {
            Self::ReadToEof { deadline } | Self::Quiet { deadline, .. } => deadline,
        }
    }
}

/// Why reading stopped during a drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainEnd {
    /// Every file was read to its end.
    AllRead,
    /// The deadline passed first; unread bytes stay in the files for the next start.
    Deadline,
    /// The engine stopped before the drain completed (consumer dropped the stream).
    Stopped,
}

/// Outcome of a drain.
#[derive(Debug, Clone)]
pub struct DrainReport {
    pub end: DrainEnd,
    /// Events handed to the consumer over the engine's life.
    pub events_emitted: u64,
    /// Bytes read from files over the engine's life.
    pub bytes_read: u64,
    /// Bytes emitted but never acknowledged (they will be read again after a restart).
    pub unacked_bytes: u64,
    /// Whether the final checkpoint was written.
    pub checkpoint_saved: bool,
    /// Every tracked file that still had bytes unread or unacknowledged when the drain ended
    /// (the next start reads them from the checkpoint on), in path order. Empty after a
    /// complete drain.
    pub files_left: Vec<FileLeft>,
}

impl DrainReport {
    /// Bytes never read, summed over [`Self::files_left`].
    pub fn unread_bytes(&self) -> u64 {
        self.files_left.iter().map(|f| f.unread_bytes).sum()
    }
}

/// What a drain left in one file: the bytes past its acknowledged position, split at the read
/// position. A restart resumes at the acknowledged position, so both parts are read (again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLeft {
    /// The file's path when the drain ended.
    pub path: PathBuf,
    /// Bytes beyond the read position (file size minus read position).
    pub unread_bytes: u64,
    /// Bytes read but not acknowledged (read position minus acknowledged position, which is
    /// what the checkpoint holds), the unterminated line being framed included.
    pub unacked_bytes: u64,
}

impl FileLeft {
    /// The leftovers of a file of `size` bytes read to `read_to` and acknowledged to
    /// `acked_to`; `None` when nothing is left. A size below the read position means the file
    /// was truncated since it was last looked at: all of its content is then unread.
    pub fn of(path: PathBuf, size: u64, read_to: u64, acked_to: u64) -> Option<Self> {
        let unread_bytes = if size < read_to { size } else { size - read_to };
        let unacked_bytes = read_to.saturating_sub(acked_to);
        (unread_bytes > 0 || unacked_bytes > 0).then_some(Self {
            path,
            unread_bytes,
            unacked_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_drain_leaves_in_a_file() {
        let left = |size, read_to, acked_to| {
            FileLeft::of(PathBuf::from("/l/a.log"), size, read_to, acked_to)
                .map(|f| (f.unread_bytes, f.unacked_bytes))
        };
        // Read and acknowledged to the end: nothing left.
        assert_eq!(left(100, 100, 100), None);
        assert_eq!(left(0, 0, 0), None);
        // Never reached the end, everything read acknowledged.
        assert_eq!(left(100, 60, 60), Some((40, 0)));
        // Read to the end, part of it unacknowledged.
        assert_eq!(left(100, 100, 30), Some((0, 70)));
        // Both.
        assert_eq!(left(1000, 600, 250), Some((400, 350)));
        // Truncated after it was read: all of the new content is unread.
        assert_eq!(left(10, 600, 600), Some((10, 0)));
        assert_eq!(left(10, 600, 250), Some((10, 350)));
    }

    #[test]
    fn unread_bytes_sum_over_files() {
        let report = DrainReport {
            end: DrainEnd::Deadline,
            events_emitted: 0,
            bytes_read: 0,
            unacked_bytes: 0,
            checkpoint_saved: true,
            files_left: [(7, 1), (5, 0)]
                .into_iter()
                .map(|(unread_bytes, unacked_bytes)| FileLeft {
                    path: PathBuf::from("x"),
                    unread_bytes,
                    unacked_bytes,
                })
                .collect(),
        };
        assert_eq!(report.unread_bytes(), 12);
    }
}
