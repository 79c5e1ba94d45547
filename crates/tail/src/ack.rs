//! Acknowledgements: the consumer confirms delivered events in any order; each file's
//! checkpoint advances only over the contiguous confirmed prefix, and the in-flight byte budget
//! is returned as soon as an event is confirmed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use super::event::SourceFile;

/// Ack bookkeeping for one read generation of one file (a truncation starts a new one).
#[derive(Debug)]
pub(crate) struct AckCell {
    state: Mutex<AckState>,
}

#[derive(Debug)]
struct AckState {
    /// Everything before this offset is acknowledged.
    acked_to: u64,
    /// Everything before this offset has been handed to the consumer.
    emitted_to: u64,
    /// Acknowledged ranges beyond `acked_to`: offset -> end_offset.
    ahead: BTreeMap<u64, u64>,
}

impl AckCell {
    pub(crate) fn new(start: u64) -> Self {
        Self {
            state: Mutex::new(AckState {
                acked_to: start,
                emitted_to: start,
                ahead: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AckState> {
        // The critical sections cannot panic half-way; a poisoned lock still holds valid data.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn acked_to(&self) -> u64 {
        self.lock().acked_to
    }

    /// Records that events up to `end` were handed out (called before they are sent).
    pub(crate) fn emitted(&self, end: u64) {
        let mut s = self.lock();
        s.emitted_to = s.emitted_to.max(end);
    }

    /// Applies one acknowledgement; returns the bytes it newly confirmed (0 for a duplicate or
    /// a range this cell never emitted).
    pub(crate) fn ack(&self, offset: u64, end: u64) -> u64 {
        let mut s = self.lock();
        if end <= offset || offset < s.acked_to || end > s.emitted_to {
            return 0;
        }
        if offset == s.acked_to {
            let mut to = end;
            while let Some(next) = s.ahead.remove(&to) {
                to = next;
            }
            s.acked_to = to;
        } else if s.ahead.insert(offset, end).is_some() {
            return 0;
        }
        end - offset
    }
}

/// State shared by the engine and every [`Acker`].
#[derive(Debug)]
pub(crate) struct AckShared {
    /// Emitted but not yet acknowledged bytes (file bytes, terminators included).
    pub(crate) inflight: AtomicU64,
    /// Bumped whenever an ack lands, so the engine knows a checkpoint is worth writing.
    pub(crate) ack_seq: AtomicU64,
    /// Acks that confirmed nothing (duplicates, foreign ranges).
    pub(crate) ignored: AtomicU64,
    /// Set by the engine before it sleeps waiting for budget; the next ack wakes it.
    pub(crate) wake_on_ack: AtomicBool,
    pub(crate) waker: Mutex<Sender<super::wake::Wake>>,
}

/// Confirms delivered events. Cheap to clone; usable from any thread.
#[derive(Debug, Clone)]
pub struct Acker {
    pub(crate) shared: Arc<AckShared>,
}

impl Acker {
    /// Confirms that the event `[offset, end_offset)` of `source` is durably delivered.
    /// Acks may arrive in any order; duplicates are ignored.
    pub fn ack(&self, source: &SourceFile, offset: u64, end_offset: u64) {
        if let Some(owner) = source.external_ack() {
            owner.ack(offset, end_offset);
            return;
        }
        let Some(cell) = source.ack_cell() else {
            return;
        };
        let freed = cell.ack(offset, end_offset);
        let shared = &self.shared;
        if freed == 0 {
            shared.ignored.fetch_add(1, Ordering::Relaxed);
            return;
        }
        shared.inflight.fetch_sub(freed, Ordering::SeqCst);
        shared.ack_seq.fetch_add(1, Ordering::SeqCst);
        if shared.wake_on_ack.swap(false, Ordering::SeqCst) {
            let waker = shared.waker.lock().unwrap_or_else(PoisonError::into_inner);
            // The engine may have exited already; then nobody needs waking.
            let _ = waker.send(super::wake::Wake::Acked);
        }
    }

    /// Confirms a whole event.
    pub fn ack_event(&self, event: &super::LogEvent) {
        self.ack(&event.source, event.offset, event.end_offset);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn in_order_acks_advance_the_prefix() {
        let c = AckCell::new(10);
        c.emitted(40);
        assert_eq!(c.ack(10, 20), 10);
        assert_eq!(c.ack(20, 40), 20);
        assert_eq!(c.acked_to(), 40);
    }

    #[test]
    fn out_of_order_acks_wait_for_the_gap() {
        let c = AckCell::new(0);
        c.emitted(30);
        assert_eq!(c.ack(20, 30), 10);
        assert_eq!(c.ack(10, 20), 10);
        assert_eq!(c.acked_to(), 0, "gap at [0,10) holds the checkpoint back");
        assert_eq!(c.ack(0, 10), 10);
        assert_eq!(c.acked_to(), 30);
    }

    #[derive(Debug, Default)]
    struct Owner {
        acks: Mutex<Vec<(u64, u64)>>,
    }

    impl super::super::event::ExternalAck for Owner {
        fn ack(&self, offset: u64, end_offset: u64) {
            self.acks.lock().unwrap().push((offset, end_offset));
        }
    }

    #[test]
    fn acks_of_an_external_source_go_to_its_owner_and_not_to_the_engine() {
        let (tx, _rx) = std::sync::mpsc::channel();
        let acker = Acker {
            shared: Arc::new(AckShared {
                inflight: AtomicU64::new(7),
                ack_seq: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                wake_on_ack: AtomicBool::new(false),
                waker: Mutex::new(tx),
            }),
        };
        let owner = Arc::new(Owner::default());
        let source = SourceFile::external("k8s://app", "app", owner.clone());
        acker.ack(&source, 10, 20);
        acker.ack(&source, 0, 10);
        assert_eq!(*owner.acks.lock().unwrap(), [(10, 20), (0, 10)]);
        // The engine's budget and checkpoint bookkeeping are untouched.
        assert_eq!(acker.shared.inflight.load(Ordering::SeqCst), 7);
        assert_eq!(acker.shared.ack_seq.load(Ordering::SeqCst), 0);
        assert_eq!(acker.shared.ignored.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn duplicates_and_foreign_ranges_free_nothing() {
        let c = AckCell::new(0);
        c.emitted(20);
        assert_eq!(c.ack(10, 20), 10);
        assert_eq!(c.ack(10, 20), 0, "duplicate ahead of the prefix");
        assert_eq!(c.ack(0, 10), 10);
        assert_eq!(c.ack(0, 10), 0, "duplicate behind the prefix");
        assert_eq!(c.ack(20, 30), 0, "never emitted");
        assert_eq!(c.ack(5, 5), 0, "empty range");
        assert_eq!(c.acked_to(), 20);
    }
}
