//! inotify (through `notify`) as a latency shortcut. Polling stays the source of truth: events
//! only say "look now", so a volume without events, a lost event or an inotify queue overflow
//! costs latency, never data.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::ModifyKind;
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::emit::Fault;
use super::stats::Counters;
use super::wake::Wake;

/// What the watcher has seen since the engine last looked. Coalesced: however many events
/// arrive, the engine gets one wake-up and a set of paths.
#[derive(Debug, Default)]
pub(crate) struct FsSignals {
    /// Files whose content changed.
    dirty: Mutex<HashSet<PathBuf>>,
    /// Something was created, removed or renamed (or events were lost): rescan.
    rescan: AtomicBool,
    /// A wake-up is already queued.
    pending: AtomicBool,
}

impl FsSignals {
    /// Takes the accumulated signals: (rescan needed, dirty paths).
    pub(crate) fn take(&self, dirty: &mut Vec<PathBuf>) -> bool {
        self.pending.store(false, Ordering::SeqCst);
        let mut set = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        dirty.extend(set.drain());
        self.rescan.swap(false, Ordering::SeqCst)
    }
}

/// The inotify watches on the discovery roots.
pub(crate) struct FsWatcher {
    watcher: RecommendedWatcher,
    watched: HashSet<PathBuf>,
}

impl std::fmt::Debug for FsWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsWatcher")
            .field("watched", &self.watched)
            .finish_non_exhaustive()
    }
}

impl FsWatcher {
    pub(crate) fn new(
        signals: Arc<FsSignals>,
        counters: Arc<Counters>,
        waker: Sender<Wake>,
        exclude: PathBuf,
    ) -> notify::Result<Self> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<Event>| {
            match res {
                Ok(event) => {
                    let paths: Vec<&PathBuf> = event
                        .paths
                        .iter()
                        .filter(|p| !p.starts_with(&exclude))
                        .collect();
                    if paths.is_empty() && !event.need_rescan() {
                        // Our own checkpoint writes.
                        return;
                    }
                    if matches!(event.kind, EventKind::Modify(ModifyKind::Data(_)))
                        && !event.need_rescan()
                    {
                        let mut set = signals.dirty.lock().unwrap_or_else(PoisonError::into_inner);
                        set.extend(paths.into_iter().cloned());
                    } else if !matches!(event.kind, EventKind::Access(_)) {
                        signals.rescan.store(true, Ordering::SeqCst);
                    } else {
                        return;
                    }
                }
                Err(_) => {
                    counters.fault(Fault::Watch);
                    signals.rescan.store(true, Ordering::SeqCst);
                }
            }
            if !signals.pending.swap(true, Ordering::SeqCst) {
                let _ = waker.send(Wake::Fs);
            }
        })?;
        Ok(Self {
            watcher,
            watched: HashSet::new(),
        })
    }

    /// Watches each root that exists and is not watched yet; forgets roots that vanished so
    /// they are watched again once recreated. Returns errors for the caller to log.
    pub(crate) fn sync_roots(&mut self, roots: &[PathBuf]) -> Vec<(PathBuf, notify::Error)> {
        let mut errors = Vec::new();
        for root in roots {
            let exists = Path::new(root).is_dir();
            let watched = self.watched.contains(root);
            if exists && !watched {
                match self.watcher.watch(root, RecursiveMode::Recursive) {
                    Ok(()) => {
                        self.watched.insert(root.clone());
                    }
                    Err(e) => errors.push((root.clone(), e)),
                }
            } else if !exists && watched {
                let _ = self.watcher.unwatch(root);
                self.watched.remove(root);
            }
        }
        errors
    }
}
