//! firetail-tail, the tailing engine: turns log files on a shared volume into an ordered stream
//! of events with exact file positions, and persists how far the consumer has confirmed
//! delivery.
//!
//! # Layout
//!
//! - [`framing`]: bytes → `\n` lines with offsets; CRLF; over-long lines split into parts.
//! - [`multiline`]: java / python / go presets and start-pattern joining of stack traces.
//! - [`identity`]: device + inode + fingerprint of the first bytes.
//! - [`checkpoint`]: versioned JSON, written tmp + fsync + rename.
//! - [`discovery`]: globs, walk roots, container names. `watch`: inotify wake-ups.
//! - `ack`: any-order acks → contiguous per-file prefix + in-flight budget.
//! - `emit`: [`TailEmitter`], told about faults as they happen; [`TailProbe`] reads gauges.
//! - `wake`: what wakes the engine thread (engine, watcher and ackers share it).
//! - `engine`: the loop on its own thread; [`start`] and [`TailHandle`] here.
//!
//! No AWS code and no knowledge of records live here; the sidecar drives this crate.
//!
//! # Interface (for the shipper)
//!
//! ```text
//! let (handle, mut events) = tail::start(config)?;   // spawns the engine thread
//! let acker = handle.acker();                        // Clone + Send
//! while let Some(ev) = events.recv().await { /* ship */ acker.ack(&ev.source, ev.offset, ev.end_offset) }
//! handle.drain(DrainMode::Quiet { quiet, deadline }).await   // in another task, on SIGTERM
//! ```
//!
//! `DrainMode::ReadToEof` carries a `deadline` too (a drain must end even if acks never come);
//! `EventStream::recv_batch` hands out whole batches; `Acker::ack_event(&ev)` is shorthand;
//! `SourceFile::detached` (feature `test-util`) builds sources for consumer tests;
//! `SourceFile::external` builds a source another reader owns (its acks go to its
//! [`ExternalAck`], not to the engine);
//! [`TailStats`] holds counters and gauges (see its fields). The engine runs on a
//! dedicated OS thread (file I/O is blocking), so `start` needs no runtime; `recv` and `drain`
//! are runtime-agnostic futures. Dropping the [`TailHandle`] without draining stops the engine
//! without a final checkpoint (like a crash; periodic checkpoints still hold). One engine per
//! `data_dir`: it is locked for the engine's life, and `drain` resolves only after the lock is
//! released, so a new engine can start on it right away.
//!
//! # Semantics
//!
//! - **At-least-once.** A file's checkpoint advances only over the contiguous prefix of
//!   acknowledged events, so a crash re-sends at most what was in flight; with a clean drain
//!   nothing is sent twice.
//! - **Memory model.** One budget, `max_inflight_bytes` (`B`, file bytes), covers every byte the
//!   engine holds: events emitted and not yet acknowledged ([`TailStats::inflight_bytes`]) plus
//!   each framer's unfinished line and each multiline group ([`TailStats::buffered_bytes`]).
//!   A read never takes more than the room left, so `inflight + buffered ≤ B` at all times
//!   ([`TailStats::budget_peak_bytes`] is the high-water mark); when the budget is full the
//!   engine stops reading (the files are the buffer). If at least half of it is held lines —
//!   which no ack would ever free — the largest are emitted as pieces cut for the budget
//!   ([`Cut::Budget`]) until a quarter is held. Beyond `B` the engine keeps a fixed cost per
//!   open file (descriptor, path, fingerprint, ack state: well under 2 KiB) and one 64 KiB read
//!   buffer. An in-memory event costs about 1.5× its file bytes; the sidecar's whole bound is
//!   in sidecar/README.md ("Memory model").
//! - **Start position.** A file with a matching checkpoint resumes there. `read_from` applies
//!   only to files without one that exist at startup; files that appear later, files whose
//!   checkpointed inode now holds other content, and every file when the checkpoint is
//!   unreadable are read from the start (duplicates over loss).
//! - **Framing.** Events are `\n`-terminated lines without `\n` / `\r\n`. Lines longer than
//!   `max_line_bytes` arrive as `Part { index, last, cut: None }` pieces, in order, nothing
//!   dropped. No event is cut at a write boundary without saying so: a line still without its
//!   newline is held (charged to the budget) until `partial_line_timeout` of silence, budget
//!   pressure, release of a rotated file, truncation or drain, then emitted as a piece whose
//!   `cut` names why ([`Cut`]). After `Timeout`/`Budget` the rest continues the numbering
//!   (`index` + 1, `last` when its newline arrives); `Drain`/`Release`/`Truncate` are `last`.
//!   After a restart in the middle of a cut line the first piece has `index` 1. Empty lines
//!   are events with empty `bytes`.
//! - **Encoding.** Bytes are passed through untouched, valid UTF-8 or not. The shipper writes
//!   the `log` field lossily (invalid sequences become U+FFFD) and, only when the line is not
//!   valid UTF-8 ([`is_valid_utf8`]), adds `log_base64` with the exact bytes, so nothing is lost.
//! - **Identity and rotation.** Files are known by device + inode, confirmed by a fingerprint of
//!   up to 256 leading bytes (an inode reused by a new file does not inherit a checkpoint).
//!   Rename-and-create: the old file is read to EOF and released `rotate_grace` after its last
//!   growth. Copytruncate: a file that shrank below the read position, or whose first bytes
//!   changed, is read again from 0; its copy is recognised by a whole 256-byte fingerprint
//!   equal to the original's and a name like a rotated copy's (same directory, same name up to
//!   the first dot, then `.`/`-`/`_`). A tailed copy waits while its original is read and
//!   continues where the original stopped (truncation or release), never from 0 — also when the
//!   engine first sees it only after the truncation, and when it first sees it while the copy
//!   is still being written (a new file shorter than a fingerprint whose bytes are a tailed
//!   file's head is looked at again on later scans, for up to `rotate_grace` and not while
//!   draining); at a truncation — or at start, for a checkpointed file found rewritten — the
//!   unread rest is read from such a copy even when no glob matches it
//!   ([`TailStats::copies_continued`]).
//!   Residual window: lines written between copy and truncation; a generation written and
//!   rotated away between two looks (with polling only, faster than `poll_interval`); files
//!   under 256 bytes at rotation (their copies are read from 0); a copy the engine finds at
//!   start still shorter than a fingerprint (read as any file found at start); and a truncated
//!   file refilled past the old position with identical first 256 bytes before the engine looks
//!   is indistinguishable from growth. Deleted files are read to EOF through the open
//!   descriptor.
//! - **Symlinks.** A matching symlink is tailed only when its target lies inside a glob root
//!   (roots and target resolved), unless `follow_symlinks_outside_roots`; others are skipped
//!   with a WARN and [`Fault::SymlinkOutsideRoots`] ([`TailStats::symlinks_skipped`]).
//! - **Container** = `container_name` if set, else the first directory below the glob's literal
//!   root (`/var/log/app/<container>/x.log`), else empty.
//! - **Faults** (unreadable files, vanished directories, checkpoint write errors such as a full
//!   disk, inotify failures): a WARN line with the path, a [`TailStats`] counter, retry, go on.

mod ack;
pub mod checkpoint;
mod config;
pub mod discovery;
mod emit;
mod engine;
mod error;
mod event;
pub mod framing;
pub mod identity;
pub mod multiline;
mod stats;
mod wake;
mod watch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

pub use ack::Acker;
pub use config::{
    DEFAULT_MAX_INFLIGHT_BYTES, DEFAULT_PARTIAL_LINE_TIMEOUT, DrainEnd, DrainMode, DrainReport,
    FileLeft, ReadFrom, TailConfig,
};
pub use emit::{Fault, NoEmitter, TailEmitter};
pub use error::TailError;
pub use event::{Cut, EventStream, ExternalAck, FileId, LogEvent, Part, SourceFile, is_valid_utf8};
pub use multiline::{MultilineConfig, MultilineMode};
pub use stats::TailStats;

use ack::AckShared;
use engine::{Engine, OUT_BATCHES};
use stats::Counters;
use wake::Wake;
use watch::{FsSignals, FsWatcher};

/// Starts the engine on its own thread, with no emitter. Fails on an invalid configuration,
/// or when another engine holds the data directory ([`TailError::DataDirInUse`]).
pub fn start(config: TailConfig) -> Result<(TailHandle, EventStream), TailError> {
    start_with(config, Arc::new(NoEmitter))
}

/// [`start`], telling `emitter` about every fault and truncation as it happens.
pub fn start_with(
    config: TailConfig,
    emitter: Arc<dyn TailEmitter>,
) -> Result<(TailHandle, EventStream), TailError> {
    config.validate()?;
    let matcher = discovery::Matcher::new(&config.paths, &config.data_dir)?;
    let lock = match checkpoint::CheckpointStore::new(config.data_dir.clone()).lock() {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => return Err(TailError::DataDirInUse(config.data_dir.clone())),
        Err(error) => {
            // Unwritable data dir: tail anyway; checkpoint writes will fail and be counted.
            tracing::warn!(data_dir = %config.data_dir.display(), %error, "cannot lock the data directory");
            None
        }
    };
    let (wake_tx, wake_rx) = std::sync::mpsc::channel();
    let (out_tx, out_rx) = tokio::sync::mpsc::channel(OUT_BATCHES);
    let counters = Arc::new(Counters::new(emitter));
    let signals = Arc::new(FsSignals::default());
    let acks = Arc::new(AckShared {
        inflight: AtomicU64::new(0),
        ack_seq: AtomicU64::new(0),
        ignored: AtomicU64::new(0),
        wake_on_ack: AtomicBool::new(false),
        waker: Mutex::new(wake_tx.clone()),
    });
    let watcher = if config.use_inotify {
        match FsWatcher::new(
            Arc::clone(&signals),
            Arc::clone(&counters),
            wake_tx.clone(),
            config.data_dir.clone(),
        ) {
            Ok(w) => Some(w),
            Err(error) => {
                counters.fault(Fault::Watch);
                tracing::warn!(%error, "inotify unavailable; discovering files by polling only");
                None
            }
        }
    } else {
        None
    };
    let engine = Engine::new(
        config,
        matcher,
        Arc::clone(&counters),
        Arc::clone(&acks),
        signals,
        watcher,
        out_tx,
        wake_rx,
        lock,
    );
    std::thread::Builder::new()
        .name("firetail-tail".to_owned())
        .spawn(move || engine.run())
        .map_err(TailError::Spawn)?;
    let handle = TailHandle {
        wake: wake_tx,
        probe: TailProbe { counters, acks },
        drained: false,
    };
    let stream = EventStream {
        rx: out_rx,
        buffered: Vec::new().into_iter(),
    };
    Ok((handle, stream))
}

/// Controls a running engine.
#[derive(Debug)]
pub struct TailHandle {
    wake: Sender<Wake>,
    probe: TailProbe,
    drained: bool,
}

/// Reads the engine's counters and gauges at any time, from any thread (a metrics scrape);
/// cheap to clone, and still answers after the engine stopped.
#[derive(Debug, Clone)]
pub struct TailProbe {
    counters: Arc<Counters>,
    acks: Arc<AckShared>,
}

impl TailProbe {
    /// Current counters and gauges.
    pub fn stats(&self) -> TailStats {
        let mut stats = self.counters.snapshot();
        stats.inflight_bytes = self.acks.inflight.load(Ordering::SeqCst);
        stats.acks_ignored = self.acks.ignored.load(Ordering::Relaxed);
        stats
    }
}

impl TailHandle {
    /// An acknowledger for delivered events.
    pub fn acker(&self) -> Acker {
        Acker {
            shared: Arc::clone(&self.probe.acks),
        }
    }

    /// A reader of the engine's counters and gauges.
    pub fn probe(&self) -> TailProbe {
        self.probe.clone()
    }

    /// Winds the engine down (see [`DrainMode`]) and resolves once the final checkpoint was
    /// attempted. Keep consuming and acking the [`EventStream`] meanwhile: it ends (`None`) once
    /// everything has been emitted.
    pub async fn drain(mut self, mode: DrainMode) -> DrainReport {
        self.drained = true;
        let (tx, rx) = oneshot::channel();
        let stopped = DrainReport {
            end: DrainEnd::Stopped,
            events_emitted: self.probe.counters.events_emitted.load(Ordering::Relaxed),
            bytes_read: self.probe.counters.bytes_read.load(Ordering::Relaxed),
            unacked_bytes: self.probe.acks.inflight.load(Ordering::SeqCst),
            checkpoint_saved: false,
            files_left: Vec::new(),
        };
        if self.wake.send(Wake::Drain(mode, tx)).is_err() {
            return stopped;
        }
        rx.await.unwrap_or(stopped)
    }

    /// Current counters and gauges.
    pub fn stats(&self) -> TailStats {
        self.probe.stats()
    }
}

impl Drop for TailHandle {
    fn drop(&mut self) {
        if !self.drained {
            let _ = self.wake.send(Wake::Abort);
        }
    }
}
