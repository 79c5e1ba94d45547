//! Engine counters: shared atomics written by the engine, snapshotted by
//! [`super::TailProbe::stats`]; faults also go to the [`TailEmitter`] as they happen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::emit::{Fault, NoEmitter, TailEmitter};

/// A point-in-time copy of the engine's counters and gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Files currently open (gauge).
    pub files_open: u64,
    /// Open files that were rotated away or deleted and are read to EOF (gauge).
    pub files_orphaned: u64,
    /// Files released after rotation/deletion.
    pub files_released: u64,
    pub bytes_read: u64,
    pub events_emitted: u64,
    /// Emitted, unacknowledged bytes (gauge).
    pub inflight_bytes: u64,
    /// Bytes read but not yet covered by the persisted checkpoint, summed over files (gauge).
    pub checkpoint_lag_bytes: u64,
    pub checkpoint_writes: u64,
    pub checkpoint_errors: u64,
    /// The saved checkpoint could not be loaded at startup (files were read from the start).
    pub checkpoint_load_errors: u64,
    pub open_errors: u64,
    pub read_errors: u64,
    pub discovery_errors: u64,
    pub watch_errors: u64,
    pub truncations: u64,
    /// Pieces emitted for over-long lines.
    pub line_parts: u64,
    /// Unterminated last lines emitted after a quiet period, release or drain.
    pub partial_flushes: u64,
    /// Acks that confirmed nothing (duplicate or unknown range).
    pub acks_ignored: u64,
    /// Times reading stopped because the in-flight budget was used up.
    pub backpressure_stalls: u64,
    /// Engine loop iterations: stays flat while nothing happens (no busy polling).
    pub engine_iterations: u64,
    /// Bytes in the tracked files beyond their read positions, as of the last scan (gauge).
    pub unread_bytes: u64,
    /// Bytes held in framers (unterminated lines) and multiline groups (gauge); with
    /// `inflight_bytes` this is what the memory budget bounds.
    pub buffered_bytes: u64,
    /// Highest `inflight_bytes + buffered_bytes` the engine has seen (high-water mark).
    pub budget_peak_bytes: u64,
    /// Unterminated lines sent before their newline because the budget was full.
    pub budget_cuts: u64,
    /// Symlinks skipped because their target lies outside every glob root.
    pub symlinks_skipped: u64,
    /// Copies (same first bytes as a truncated or checkpointed file) read from where their
    /// original stopped instead of from 0.
    pub copies_continued: u64,
}

macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        /// Live counters (everything in [`TailStats`] except what the ack side owns).
        #[derive(Debug)]
        pub(crate) struct Counters {
            $(pub(crate) $name: AtomicU64,)*
            emitter: Arc<dyn TailEmitter>,
        }

        impl Counters {
            pub(crate) fn new(emitter: Arc<dyn TailEmitter>) -> Self {
                Self { $($name: AtomicU64::new(0),)* emitter }
            }

            pub(crate) fn snapshot(&self) -> TailStats {
                TailStats { $($name: self.$name.load(Ordering::Relaxed),)* ..TailStats::default() }
            }
        }
    };
}

counters!(
    files_open,
    files_orphaned,
    files_released,
    bytes_read,
    events_emitted,
    checkpoint_lag_bytes,
    checkpoint_writes,
    checkpoint_errors,
    checkpoint_load_errors,
    open_errors,
    read_errors,
    discovery_errors,
    watch_errors,
    truncations,
    line_parts,
    partial_flushes,
    backpressure_stalls,
    engine_iterations,
    unread_bytes,
    buffered_bytes,
    budget_peak_bytes,
    budget_cuts,
    symlinks_skipped,
    copies_continued,
);

impl Default for Counters {
    fn default() -> Self {
        Self::new(Arc::new(NoEmitter))
    }
}

impl Counters {
    /// Counts a fault and tells the emitter.
    pub(crate) fn fault(&self, kind: Fault) {
        let counter = match kind {
            Fault::Open => &self.open_errors,
            Fault::Read => &self.read_errors,
            Fault::CheckpointWrite => &self.checkpoint_errors,
            Fault::CheckpointLoad => &self.checkpoint_load_errors,
            Fault::Discovery => &self.discovery_errors,
            Fault::Watch => &self.watch_errors,
            Fault::SymlinkOutsideRoots => &self.symlinks_skipped,
        };
        Self::add(counter, 1);
        self.emitter.fault(kind);
    }

    /// Counts a truncation and tells the emitter.
    pub(crate) fn truncated(&self) {
        Self::add(&self.truncations, 1);
        self.emitter.truncated();
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }
}
