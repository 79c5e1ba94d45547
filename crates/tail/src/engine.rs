//! The engine loop: discovery, reading, framing, emission, timers, checkpoints and drain, on
//! one dedicated thread (file I/O is blocking; keeping it off the async runtime keeps the
//! shipper's tasks responsive).

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::ack::{AckCell, AckShared};
use super::checkpoint::{CheckpointStore, Entry};
use super::config::{DrainEnd, DrainMode, DrainReport, FileLeft, ReadFrom, TailConfig};
use super::discovery::Matcher;
use super::emit::Fault;
use super::event::{LogEvent, SourceFile};
use super::framing::{Cut, Frame, Framer};
use super::identity::{FINGERPRINT_BYTES, FileId, Fingerprint};
use super::multiline::Aggregator;
use super::stats::Counters;
use super::wake::Wake;
use super::watch::{FsSignals, FsWatcher};

/// Bytes per `read(2)`; also the engine's only read buffer.
pub(crate) const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Bytes read from one file before moving on to the next, so one busy file cannot starve the
/// others.
const TURN_BYTES: usize = 4 * READ_CHUNK_BYTES;
/// Events per batch sent to the consumer.
const BATCH_EVENTS: usize = 1024;
/// Batches the output channel holds; the in-flight byte budget is the real bound.
pub(crate) const OUT_BATCHES: usize = 64;

/// The consumer dropped the event stream; nothing more can be delivered.
#[derive(Debug)]
struct Stopped;

/// One open file (one read generation of it: a truncation replaces `cell` and `source`).
#[derive(Debug)]
struct Tracked {
    id: FileId,
    file: File,
    source: Arc<SourceFile>,
    cell: Arc<AckCell>,
    framer: Framer,
    agg: Option<Aggregator>,
    fp: Fingerprint,
    /// Last time bytes were read.
    last_growth: Instant,
    /// The last look found nothing more to read.
    at_eof: bool,
    /// Should be looked at on the next pass.
    dirty: bool,
    /// Not found by the last scan: rotated away or deleted, read to EOF then released.
    orphaned_since: Option<Instant>,
    /// The last stat/read failed (already logged).
    failing: bool,
    /// Bytes this file holds in its framer and multiline group, as charged to the budget.
    held: u64,
    /// A copy of this live file (same first bytes): not read while the original is, since
    /// everything in it is read there; it continues where the original stops (truncation or
    /// release).
    shadow_of: Option<FileId>,
}

impl Tracked {
    /// Starts a new read generation at `framer`'s position: a fresh source and ack cell, so
    /// late acks of events from before cannot move the new generation's checkpoint.
    fn new_generation(&mut self, framer: Framer) {
        let cell = Arc::new(AckCell::new(framer.position()));
        self.source = Arc::new(SourceFile::tracked(
            self.id,
            self.source.path.clone(),
            self.source.container.clone(),
            Arc::clone(&cell),
        ));
        self.cell = cell;
        self.framer = framer;
    }
}

/// A truncated file's head as it was, and how far it had been read: its unread rest may still
/// be readable in a copy (copytruncate).
#[derive(Debug, Clone)]
struct LostHead {
    original: FileId,
    path: PathBuf,
    fp: Fingerprint,
    read_to: u64,
}

#[derive(Debug)]
struct DrainState {
    mode: DrainMode,
    reply: oneshot::Sender<DrainReport>,
}

/// Everything the read path needs besides the file table (split so a file and the context can
/// be borrowed mutably at once).
#[derive(Debug)]
struct Ctx {
    cfg: TailConfig,
    counters: Arc<Counters>,
    acks: Arc<AckShared>,
    out: Option<mpsc::Sender<Vec<LogEvent>>>,
    buf: Vec<u8>,
    frames: Vec<Frame>,
    joined: Vec<Frame>,
    batch: Vec<LogEvent>,
    /// Any bytes read since the drain (quiet mode) last looked.
    last_progress: Instant,
    /// Sum of every file's `held`: the budget's share not in `acks.inflight`.
    held: u64,
    /// Truncations (or rewrites found at start) whose copies are still to be looked for.
    lost_heads: Vec<LostHead>,
}

#[derive(Debug)]
pub(crate) struct Engine {
    ctx: Ctx,
    files: HashMap<FileId, Tracked>,
    /// Visiting order for fair reading; `cursor` is where the next pass starts.
    order: Vec<FileId>,
    cursor: usize,
    by_path: HashMap<PathBuf, FileId>,
    matcher: Matcher,
    watcher: Option<FsWatcher>,
    signals: Arc<FsSignals>,
    rx: Receiver<Wake>,
    store: CheckpointStore,
    /// Loaded checkpoint entries not yet matched to a file.
    saved: HashMap<FileId, Entry>,
    /// The checkpoint existed but could not be read: never skip content (`read_from` is
    /// ignored) because positions are unknown.
    saved_unreadable: bool,
    /// Paths whose open failed and was already logged.
    failed: HashSet<PathBuf>,
    /// Symlinks pointing outside every root, skipped (and already logged).
    skipped_links: HashSet<PathBuf>,
    /// New files held back as possibly a copy still being written ([`Engine::may_become_copy`]),
    /// with when they were first held back.
    held_back: HashMap<FileId, Instant>,
    last_poll: Instant,
    last_checkpoint: Instant,
    checkpointed_ack_seq: u64,
    files_changed: bool,
    drain: Option<DrainState>,
    final_report: Option<DrainReport>,
    dirty_scratch: Vec<PathBuf>,
    /// Exclusive lock on the data directory, held for the engine's life.
    _lock: Option<File>,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cfg: TailConfig,
        matcher: Matcher,
        counters: Arc<Counters>,
        acks: Arc<AckShared>,
        signals: Arc<FsSignals>,
        watcher: Option<FsWatcher>,
        out: mpsc::Sender<Vec<LogEvent>>,
        rx: Receiver<Wake>,
        lock: Option<File>,
    ) -> Self {
        let store = CheckpointStore::new(cfg.data_dir.clone());
        let (saved, saved_unreadable) = match store.load() {
            Ok(saved) => (saved, false),
            Err(error) => {
                counters.fault(Fault::CheckpointLoad);
                tracing::warn!(%error, "checkpoint unreadable; reading every file from its start (duplicates possible, nothing skipped)");
                (HashMap::new(), true)
            }
        };
        let now = Instant::now();
        Self {
            ctx: Ctx {
                cfg,
                counters,
                acks,
                out: Some(out),
                buf: vec![0; READ_CHUNK_BYTES],
                frames: Vec::new(),
                joined: Vec::new(),
                batch: Vec::new(),
                last_progress: now,
                held: 0,
                lost_heads: Vec::new(),
            },
            files: HashMap::new(),
            order: Vec::new(),
            cursor: 0,
            by_path: HashMap::new(),
            matcher,
            watcher,
            signals,
            rx,
            store,
            saved,
            saved_unreadable,
            failed: HashSet::new(),
            skipped_links: HashSet::new(),
            held_back: HashMap::new(),
            last_poll: now,
            last_checkpoint: now,
            checkpointed_ack_seq: 0,
            files_changed: false,
            drain: None,
            final_report: None,
            dirty_scratch: Vec::new(),
            _lock: lock,
        }
    }

    pub(crate) fn run(mut self) {
        self.scan(Instant::now(), true);
        loop {
            match self.step() {
                Ok(true) => {}
                Ok(false) => break,
                Err(Stopped) => {
                    // The consumer is gone: persist what it confirmed and stop.
                    let saved = self.checkpoint(Instant::now(), true);
                    self.final_report = Some(self.report(DrainEnd::Stopped, saved));
                    break;
                }
            }
        }
        let reply = self.drain.take();
        let report = self.final_report.take();
        // Close every file and release the data-dir lock before answering, so a caller may
        // start a new engine on the same directory as soon as `drain` returns.
        drop(self);
        if let (Some(drain), Some(report)) = (reply, report) {
            let _ = drain.reply.send(report);
        }
    }

    /// One iteration: look at signals, read, run timers, maybe sleep. `Ok(false)` = exit.
    fn step(&mut self) -> Result<bool, Stopped> {
        Counters::add(&self.ctx.counters.engine_iterations, 1);
        // Non-blocking: take everything queued.
        while let Ok(wake) = self.rx.try_recv() {
            if !self.on_wake(wake) {
                return Ok(false);
            }
        }
        let now = Instant::now();
        if now >= self.last_poll + self.ctx.cfg.poll_interval {
            self.scan(now, false);
            for t in self.files.values_mut() {
                t.dirty = true;
            }
            self.last_poll = now;
        }
        let blocked = self.read_pass(now)?;
        if blocked {
            self.relieve()?;
        }
        let now = Instant::now();
        self.timers(now)?;
        self.checkpoint(now, false);

        if let Some(drain) = &self.drain {
            let all_read = !blocked && self.files.values().all(|t| t.at_eof && !t.dirty);
            let done = match drain.mode {
                DrainMode::ReadToEof { .. } => all_read,
                DrainMode::Quiet { quiet, .. } => all_read && now >= self.ctx.last_progress + quiet,
            };
            if done || now >= drain.mode.deadline() {
                let end = if done {
                    DrainEnd::AllRead
                } else {
                    DrainEnd::Deadline
                };
                self.finish(end)?;
                return Ok(false);
            }
        }

        if !blocked && self.files.values().any(|t| t.dirty) {
            return Ok(true);
        }
        let mut timeout = self.next_wait(now);
        if blocked {
            self.ctx.acks.wake_on_ack.store(true, Ordering::SeqCst);
            if self.ctx.used() < self.ctx.cfg.max_inflight_bytes {
                return Ok(true);
            }
        } else if timeout.is_zero() {
            return Ok(true);
        }
        timeout = timeout.max(Duration::from_millis(1));
        match self.rx.recv_timeout(timeout) {
            Ok(wake) => Ok(self.on_wake(wake)),
            Err(RecvTimeoutError::Timeout) => Ok(true),
            Err(RecvTimeoutError::Disconnected) => Ok(false),
        }
    }

    /// Returns false when the engine must stop.
    fn on_wake(&mut self, wake: Wake) -> bool {
        match wake {
            Wake::Fs => {
                let mut dirty = std::mem::take(&mut self.dirty_scratch);
                let mut rescan = self.signals.take(&mut dirty);
                for path in dirty.drain(..) {
                    match self
                        .by_path
                        .get(&path)
                        .and_then(|id| self.files.get_mut(id))
                    {
                        Some(t) => t.dirty = true,
                        None => rescan |= self.matcher.is_match(&path),
                    }
                }
                self.dirty_scratch = dirty;
                if rescan {
                    self.scan(Instant::now(), false);
                }
                true
            }
            Wake::Acked => true,
            Wake::Drain(mode, reply) => {
                let now = Instant::now();
                tracing::info!(?mode, files = self.files.len(), "tail engine draining");
                // Set first: a draining scan holds no new file back.
                self.drain = Some(DrainState { mode, reply });
                self.scan(now, false);
                for t in self.files.values_mut() {
                    t.dirty = true;
                }
                self.ctx.last_progress = now;
                true
            }
            Wake::Abort => false,
        }
    }

    /// Reads every dirty file once (up to its turn). Returns whether the budget ran out.
    /// Files are visited round-robin from where the previous pass stopped, so under sustained
    /// backpressure the budget rotates over all files instead of favouring a few.
    fn read_pass(&mut self, now: Instant) -> Result<bool, Stopped> {
        let max = self.ctx.cfg.max_inflight_bytes;
        let n = self.order.len();
        for k in 0..n {
            let at = (self.cursor + k) % n;
            let id = self.order[at];
            if let Some(original) = self.files.get(&id).and_then(|t| t.shadow_of)
                && self.files.contains_key(&original)
            {
                if let Some(t) = self.files.get_mut(&id) {
                    t.dirty = false;
                    t.at_eof = true;
                }
                continue;
            }
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            if !t.dirty {
                continue;
            }
            if self.ctx.used() >= max {
                Counters::add(&self.ctx.counters.backpressure_stalls, 1);
                self.cursor = at;
                return Ok(true);
            }
            self.ctx.service(t, now)?;
            if !self.ctx.lost_heads.is_empty() {
                self.recover_heads(now);
            }
        }
        self.cursor = if n == 0 { 0 } else { (self.cursor + 1) % n };
        Ok(false)
    }

    /// For each truncation seen, continues its unread rest from a copy that holds the same
    /// first bytes: a tailed copy waiting as a shadow, or an untailed file next to it (read to
    /// its end, then released).
    fn recover_heads(&mut self, now: Instant) {
        for lost in std::mem::take(&mut self.ctx.lost_heads) {
            let shadow = self
                .files
                .values()
                .find(|t| t.shadow_of == Some(lost.original))
                .map(|t| t.id);
            if let Some(copy) = shadow {
                self.continue_copy(copy, lost.read_to);
                continue;
            }
            if self
                .files
                .values()
                .any(|t| t.id != lost.original && t.fp == lost.fp)
            {
                continue; // a copy already read from where the original stopped
            }
            match find_copy(&lost, &self.files, &self.matcher) {
                Some((path, meta)) => {
                    let id = FileId::of(&meta);
                    // A copy the globs match is tailed from here on, like a shadow that took
                    // over; one they do not match is read to its end and released.
                    let tailed = self.matcher.is_match(&path);
                    tracing::info!(path = %lost.path.display(), copy = %path.display(), from = lost.read_to, tailed, "reading the truncated file's unread rest from its copy");
                    self.open_at(path, &meta, id, now, Some(lost.read_to), !tailed);
                    if self.files.contains_key(&id) {
                        Counters::add(&self.ctx.counters.copies_continued, 1);
                    }
                }
                None => {
                    tracing::info!(path = %lost.path.display(), read_to = lost.read_to, "no copy of the truncated file found next to it; what it held past read_to is lost");
                }
            }
        }
    }

    /// The original of shadow `copy` stopped at `at`: the copy takes over from there.
    fn continue_copy(&mut self, copy: FileId, at: u64) {
        let max_line = self.ctx.cfg.max_line_bytes;
        let Some(t) = self.files.get_mut(&copy) else {
            return;
        };
        t.shadow_of = None;
        let size = t.file.metadata().map_or(0, |m| m.len());
        let at = at.min(size);
        if let Err(error) = t.file.seek(SeekFrom::Start(at)) {
            self.ctx.counters.fault(Fault::Read);
            tracing::warn!(path = %t.source.path.display(), %error, "cannot seek copy");
            return;
        }
        let mid_line = at > 0 && {
            let mut byte = [0u8];
            matches!(t.file.read_at(&mut byte, at - 1), Ok(1) if byte[0] != b'\n')
        };
        tracing::info!(path = %t.source.path.display(), from = at, "copy continues where its original stopped");
        t.new_generation(Framer::resume(at, max_line, mid_line));
        t.dirty = true;
        t.at_eof = false;
        self.files_changed = true;
        Counters::add(&self.ctx.counters.copies_continued, 1);
    }

    /// The budget is full. When most of it is held in framers and multiline groups rather
    /// than waiting for acks, nothing would ever free it: send the largest held lines (as
    /// pieces marked [`Cut::Budget`]) and groups until a quarter of the budget is held.
    fn relieve(&mut self) -> Result<(), Stopped> {
        let max = self.ctx.cfg.max_inflight_bytes;
        if self.ctx.held < max / 2 {
            return Ok(());
        }
        let mut largest: Vec<(u64, FileId)> = self
            .files
            .values()
            .filter(|t| t.held > 0)
            .map(|t| (t.held, t.id))
            .collect();
        largest.sort_unstable_by(|a, b| b.cmp(a));
        for (_, id) in largest {
            if self.ctx.held <= max / 4 {
                break;
            }
            let Some(t) = self.files.get_mut(&id) else {
                continue;
            };
            self.ctx.flush_partial(t, Cut::Budget);
            if let Some(agg) = &mut t.agg {
                agg.flush(&mut self.ctx.joined);
            }
            self.ctx.emit(t, SystemTime::now());
            self.ctx.recharge(t);
            if self.ctx.batch.len() >= BATCH_EVENTS {
                self.ctx.send()?;
            }
        }
        self.ctx.send()
    }

    /// Quiet-period flushes, multiline timeouts and release of rotated/deleted files.
    fn timers(&mut self, now: Instant) -> Result<(), Stopped> {
        let cfg = &self.ctx.cfg;
        let quiet = cfg.partial_line_timeout;
        let grace = cfg.rotate_grace;
        let ml_timeout = cfg.multiline.as_ref().map(|m| m.flush_timeout);
        let mut released = Vec::new();
        for t in self.files.values_mut() {
            if t.dirty || !t.at_eof {
                continue;
            }
            let idle = now.saturating_duration_since(t.last_growth);
            if t.framer.has_partial() && idle >= quiet {
                self.ctx.flush_partial(t, Cut::Timeout);
            }
            if let (Some(agg), Some(timeout)) = (&mut t.agg, ml_timeout)
                && agg.is_holding()
                && idle >= timeout
            {
                agg.flush(&mut self.ctx.joined);
            }
            if let Some(since) = t.orphaned_since
                && now.saturating_duration_since(since.max(t.last_growth)) >= grace
            {
                // Whatever is left is all there will ever be.
                self.ctx.flush_partial(t, Cut::Release);
                if let Some(agg) = &mut t.agg {
                    agg.flush(&mut self.ctx.joined);
                }
                released.push(t.id);
            }
            self.ctx.emit(t, SystemTime::now());
            self.ctx.recharge(t);
        }
        self.ctx.send()?;
        for id in released {
            self.order.retain(|o| *o != id);
            if let Some(t) = self.files.remove(&id) {
                // Flushed above, so normally nothing; never leave a charge behind.
                self.ctx.held -= t.held;
                let shadows: Vec<FileId> = self
                    .files
                    .values()
                    .filter(|s| s.shadow_of == Some(id))
                    .map(|s| s.id)
                    .collect();
                for copy in shadows {
                    self.continue_copy(copy, t.framer.position());
                }
                tracing::info!(path = %t.source.path.display(), offset = t.framer.position(), "released rotated or deleted file after reading it to the end");
                Counters::add(&self.ctx.counters.files_released, 1);
                self.files_changed = true;
            }
        }
        self.update_gauges();
        Ok(())
    }

    fn update_gauges(&self) {
        let c = &self.ctx.counters;
        Counters::set(&c.files_open, self.files.len() as u64);
        let orphaned = self
            .files
            .values()
            .filter(|t| t.orphaned_since.is_some())
            .count();
        Counters::set(&c.files_orphaned, orphaned as u64);
    }

    /// The time until the next timer-driven action.
    fn next_wait(&self, now: Instant) -> Duration {
        let cfg = &self.ctx.cfg;
        let mut next = self.last_poll + cfg.poll_interval;
        // A deadline already behind us was acted on in this step, or cannot be acted on yet
        // (file still dirty, drain waiting for acks); counting it would spin the loop.
        let mut consider = |at: Instant| {
            if at > now {
                next = next.min(at);
            }
        };
        if self.files_changed
            || self.ctx.acks.ack_seq.load(Ordering::SeqCst) != self.checkpointed_ack_seq
        {
            consider(self.last_checkpoint + cfg.checkpoint_interval);
        }
        let ml_timeout = cfg.multiline.as_ref().map(|m| m.flush_timeout);
        for t in self.files.values() {
            if t.framer.has_partial() {
                consider(t.last_growth + cfg.partial_line_timeout);
            }
            if let (Some(agg), Some(timeout)) = (&t.agg, ml_timeout)
                && agg.is_holding()
            {
                consider(t.last_growth + timeout);
            }
            if let Some(since) = t.orphaned_since {
                consider(since.max(t.last_growth) + cfg.rotate_grace);
            }
        }
        if let Some(drain) = &self.drain {
            consider(drain.mode.deadline());
            if let DrainMode::Quiet { quiet, .. } = drain.mode {
                consider(self.ctx.last_progress + quiet);
            }
        }
        next.saturating_duration_since(now)
    }

    /// Finds matching files, opens new ones, notices renames and disappearances.
    fn scan(&mut self, now: Instant, startup: bool) {
        if let Some(watcher) = &mut self.watcher {
            for (root, error) in watcher.sync_roots(self.matcher.roots()) {
                self.ctx.counters.fault(Fault::Watch);
                tracing::warn!(root = %root.display(), %error, "cannot watch directory; relying on polling");
            }
        }
        let mut found = Vec::new();
        let counters = &self.ctx.counters;
        self.matcher.scan(&mut found, &mut |dir, error| {
            counters.fault(Fault::Discovery);
            tracing::warn!(dir = %dir.display(), %error, "cannot list directory; skipping it this scan");
        });
        let mut seen = HashSet::with_capacity(found.len());
        let mut by_path = HashMap::with_capacity(found.len());
        // Bytes not read yet, from the sizes this scan stats anyway (the unread backlog gauge).
        let mut unread = 0u64;
        let mut roots: Option<Vec<PathBuf>> = None;
        let mut skipped_links = HashSet::new();
        for path in found {
            if !self.ctx.cfg.follow_symlinks_outside_roots
                && points_outside(&path, &mut roots, self.matcher.roots())
            {
                if !self.skipped_links.contains(&path) {
                    self.ctx.counters.fault(Fault::SymlinkOutsideRoots);
                    tracing::warn!(path = %path.display(), target = %fs::canonicalize(&path).unwrap_or_default().display(), "symlink points outside the tailed directories; not followed (see --follow-symlinks-outside-roots)");
                }
                skipped_links.insert(path);
                continue;
            }
            let meta = match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => meta,
                // Vanished between listing and stat, or a dangling symlink.
                _ => continue,
            };
            let id = FileId::of(&meta);
            if !seen.insert(id) {
                continue; // a second name (hard link or symlink) for a file already seen
            }
            by_path.insert(path.clone(), id);
            if let Some(t) = self.files.get_mut(&id) {
                if t.orphaned_since.take().is_some() {
                    tracing::debug!(path = %path.display(), "file found again");
                }
                if t.source.path != path {
                    t.source = Arc::new(SourceFile::tracked(
                        id,
                        path,
                        t.source.container.clone(),
                        Arc::clone(&t.cell),
                    ));
                }
                unread += meta.len().saturating_sub(t.framer.position());
                continue;
            }
            self.open(path, &meta, id, now, startup);
            if let Some(t) = self.files.get(&id) {
                unread += meta.len().saturating_sub(t.framer.position());
            }
        }
        Counters::set(&self.ctx.counters.unread_bytes, unread);
        self.failed.retain(|p| by_path.contains_key(p));
        self.skipped_links = skipped_links;
        // Checkpointed files that still exist but could not be opened yet keep their saved
        // position (it is written back with every checkpoint); the rest are gone for good.
        self.saved.retain(|id, _| seen.contains(id));
        self.held_back.retain(|id, _| seen.contains(id));
        self.by_path = by_path;
        for t in self.files.values_mut() {
            if !seen.contains(&t.id) && t.orphaned_since.is_none() {
                tracing::info!(path = %t.source.path.display(), "file rotated away or deleted; reading it to the end before releasing it");
                t.orphaned_since = Some(now);
                t.dirty = true;
            }
        }
        if !self.ctx.lost_heads.is_empty() {
            self.recover_heads(now);
        }
        self.update_gauges();
    }

    fn open(
        &mut self,
        path: PathBuf,
        meta: &fs::Metadata,
        id: FileId,
        now: Instant,
        startup: bool,
    ) {
        self.open_with(path, meta, id, now, startup, None, false);
    }

    /// Opens a copy of a truncated file at `start`: `orphaned` when found outside the globs,
    /// to be read to its end and released (unless a scan finds it matching after all).
    fn open_at(
        &mut self,
        path: PathBuf,
        meta: &fs::Metadata,
        id: FileId,
        now: Instant,
        start: Option<u64>,
        orphaned: bool,
    ) {
        self.open_with(path, meta, id, now, false, start, orphaned);
    }

    #[allow(clippy::too_many_arguments)]
    fn open_with(
        &mut self,
        path: PathBuf,
        meta: &fs::Metadata,
        id: FileId,
        now: Instant,
        startup: bool,
        forced_start: Option<u64>,
        orphaned: bool,
    ) {
        let opened = File::open(&path).and_then(|file| {
            let fp = Fingerprint::read(&file, FINGERPRINT_BYTES)?;
            Ok((file, fp))
        });
        let (mut file, mut fp) = match opened {
            Ok(opened) => opened,
            Err(error) => {
                if self.failed.insert(path.clone()) {
                    self.ctx.counters.fault(Fault::Open);
                    tracing::warn!(path = %path.display(), %error, "cannot open log file; will retry on every scan");
                }
                return;
            }
        };
        self.failed.remove(&path);
        let mut size = meta.len();
        let held_since = self.held_back.remove(&id);
        if forced_start.is_none() && !fp.is_complete() && !startup && !self.saved.contains_key(&id)
        {
            // `cp` creates the copy, then fills it: a new file named like a copy whose bytes
            // so far are a tailed file's head may be its copy still being written. Read from
            // 0 now, it would send that file's content again; decide on a later scan, once it
            // holds a whole fingerprint or stops looking like that head — or after
            // `rotate_grace` (a copy is written much faster), or when draining, so that a file
            // which merely starts like another is late, never left unread.
            let since = held_since.unwrap_or(now);
            let may_wait = self.drain.is_none()
                && now.saturating_duration_since(since) < self.ctx.cfg.rotate_grace;
            if may_wait && self.may_become_copy(&path, &fp, id) {
                tracing::debug!(path = %path.display(), len = fp.len, "new file starts like a tailed one but is shorter than a fingerprint (a copy being written?); looking again on the next scan");
                self.held_back.insert(id, since);
                return;
            }
            // Not (or no longer) a head: it may have been completed meanwhile, and its
            // original truncated after that; judge it by what it holds now.
            if let (Ok(current), Ok(current_meta)) =
                (Fingerprint::read(&file, FINGERPRINT_BYTES), file.metadata())
            {
                fp = current;
                size = current_meta.len();
            }
        }
        let fresh_start =
            if startup && self.ctx.cfg.read_from == ReadFrom::End && !self.saved_unreadable {
                size
            } else {
                0
            };
        let mut shadow_of = None;
        let start = match (forced_start, self.saved.remove(&id)) {
            (Some(start), _) => start.min(size),
            (None, Some(entry))
                if entry.offset <= size && entry.fingerprint().matches(&file).unwrap_or(false) =>
            {
                tracing::debug!(path = %path.display(), offset = entry.offset, "resuming from checkpoint");
                entry.offset
            }
            (None, Some(entry)) => {
                // Not the checkpointed file (inode reuse) or rewritten while we were down: the
                // content is new to us, so read all of it whatever `read_from` says. If it was
                // a copytruncate, what was past the checkpoint may be in the copy.
                tracing::info!(path = %path.display(), checkpoint_path = %entry.path, "checkpointed inode now holds different content (truncation, inode reuse or rewrite); reading it from the start");
                if entry.fp_len as usize >= FINGERPRINT_BYTES {
                    self.ctx.lost_heads.push(LostHead {
                        original: id,
                        path: path.clone(),
                        fp: entry.fingerprint(),
                        read_to: entry.offset,
                    });
                }
                0
            }
            (None, None) => match self.copy_of(&path, &fp, id, size) {
                CopyOf::Live(original) => {
                    tracing::info!(path = %path.display(), "new file starts like a tailed one (a copy): read only from where the original stops");
                    shadow_of = Some(original);
                    0
                }
                CopyOf::Checkpointed(offset) => {
                    tracing::info!(path = %path.display(), offset, "new file starts like a checkpointed one (a copy): continuing from its checkpoint");
                    Counters::add(&self.ctx.counters.copies_continued, 1);
                    offset
                }
                CopyOf::Truncated(index) => {
                    // Its head is consumed: `recover_heads` has nothing left to look for.
                    let lost = self.ctx.lost_heads.swap_remove(index);
                    let offset = lost.read_to.min(size);
                    tracing::info!(path = %path.display(), original = %lost.path.display(), offset, "new file starts like a truncated one (its copy): continuing where the original stopped");
                    Counters::add(&self.ctx.counters.copies_continued, 1);
                    offset
                }
                CopyOf::No => fresh_start,
            },
        };
        if let Err(error) = file.seek(SeekFrom::Start(start)) {
            self.ctx.counters.fault(Fault::Read);
            tracing::warn!(path = %path.display(), %error, "cannot seek log file; will retry");
            return;
        }
        // Resuming after a piece that was cut before its newline: what follows continues it.
        let mid_line = start > 0 && {
            let mut byte = [0u8];
            matches!(file.read_at(&mut byte, start - 1), Ok(1) if byte[0] != b'\n')
        };
        let cell = Arc::new(AckCell::new(start));
        let container = self
            .ctx
            .cfg
            .container_name
            .clone()
            .or_else(|| self.matcher.container_for(&path))
            .unwrap_or_default();
        tracing::debug!(path = %path.display(), start, container, "tailing file");
        let source = Arc::new(SourceFile::tracked(id, path, container, Arc::clone(&cell)));
        let agg = self.ctx.cfg.multiline.clone().map(Aggregator::new);
        self.order.push(id);
        self.files.insert(
            id,
            Tracked {
                id,
                file,
                source,
                cell,
                framer: Framer::resume(start, self.ctx.cfg.max_line_bytes, mid_line),
                agg,
                fp,
                last_growth: now,
                at_eof: false,
                dirty: true,
                orphaned_since: orphaned.then_some(now),
                failing: false,
                held: 0,
                shadow_of,
            },
        );
        self.files_changed = true;
    }

    /// Whether a new file at `path` with head `fp` is a copy of a file being tailed, or of
    /// one in the loaded checkpoint. Only whole fingerprints count (shorter heads are too
    /// likely shared by unrelated files, a common banner), and only a file named like a
    /// rotated copy of the original ([`named_like_copy`]): many files of one app may well
    /// start with the same bytes.
    fn copy_of(&self, path: &Path, fp: &Fingerprint, id: FileId, size: u64) -> CopyOf {
        if !fp.is_complete() {
            return CopyOf::No;
        }
        if let Some(t) = self.files.values().find(|t| {
            t.id != id
                && t.shadow_of.is_none()
                && t.fp == *fp
                && named_like_copy(path, &t.source.path)
        }) {
            return CopyOf::Live(t.id);
        }
        // A truncation seen in this scan (a checkpointed file found rewritten at start, opened
        // before its copy): its head no longer identifies any tailed file, the lost head does.
        if let Some(index) = self.ctx.lost_heads.iter().position(|lost| {
            lost.original != id && lost.fp == *fp && named_like_copy(path, &lost.path)
        }) {
            return CopyOf::Truncated(index);
        }
        match self.saved.values().find(|e| {
            e.id() != id
                && e.fingerprint() == *fp
                && e.offset <= size
                && named_like_copy(path, Path::new(&e.path))
        }) {
            Some(e) => CopyOf::Checkpointed(e.offset),
            None => CopyOf::No,
        }
    }

    /// Whether a new file at `path`, holding less than a whole fingerprint (`fp`), may be a
    /// copy of a tailed file that is still being written: everything it holds is the head of
    /// a tailed file with a whole fingerprint that it is named like a copy of. Such a file is
    /// only ever held back while it is such a head (its bytes were, or will be, read from
    /// the original); once it differs or is whole, it is judged like any new file.
    fn may_become_copy(&self, path: &Path, fp: &Fingerprint, id: FileId) -> bool {
        self.files.values().any(|t| {
            t.id != id
                && t.shadow_of.is_none()
                && t.fp.is_complete()
                && named_like_copy(path, &t.source.path)
                && Fingerprint::read(&t.file, fp.len as usize).is_ok_and(|head| head == *fp)
        })
    }

    /// Persists acknowledged positions if they changed and the interval passed (or `force`).
    /// Returns whether the checkpoint on disk is current.
    fn checkpoint(&mut self, now: Instant, force: bool) -> bool {
        let seq = self.ctx.acks.ack_seq.load(Ordering::SeqCst);
        let changed = self.files_changed || seq != self.checkpointed_ack_seq;
        if !changed {
            return true;
        }
        if !force && now < self.last_checkpoint + self.ctx.cfg.checkpoint_interval {
            return false;
        }
        self.last_checkpoint = now;
        let mut lag = 0;
        let entries: Vec<Entry> = self
            .files
            .values()
            // A shadow has read nothing; after a restart it is recognised as a copy again.
            .filter(|t| t.shadow_of.is_none())
            .map(|t| {
                let offset = t.cell.acked_to();
                lag += t.framer.position().saturating_sub(offset);
                Entry {
                    dev: t.id.dev,
                    ino: t.id.ino,
                    fp_len: t.fp.len,
                    fp_hash: t.fp.hash,
                    offset,
                    path: t.source.path.to_string_lossy().into_owned(),
                }
            })
            .chain(self.saved.values().cloned())
            .collect();
        Counters::set(&self.ctx.counters.checkpoint_lag_bytes, lag);
        match self.store.save(&entries) {
            Ok(()) => {
                Counters::add(&self.ctx.counters.checkpoint_writes, 1);
                self.checkpointed_ack_seq = seq;
                self.files_changed = false;
                true
            }
            Err(error) => {
                self.ctx.counters.fault(Fault::CheckpointWrite);
                tracing::warn!(path = %self.store.path().display(), %error, "cannot write checkpoint; will retry (a restart now would re-send more)");
                false
            }
        }
    }

    /// Emits every remaining complete piece, closes the stream, waits for acks, checkpoints.
    fn finish(&mut self, end: DrainEnd) -> Result<(), Stopped> {
        for t in self.files.values_mut() {
            // A file not at EOF still has the rest of its pending line on disk; leaving the
            // fragment unemitted means a restart re-reads the whole line.
            if t.at_eof {
                self.ctx.flush_partial(t, Cut::Drain);
            }
            if let Some(agg) = &mut t.agg {
                agg.flush(&mut self.ctx.joined);
            }
            self.ctx.emit(t, SystemTime::now());
            self.ctx.recharge(t);
        }
        self.ctx.send()?;
        self.ctx.out = None;
        let deadline = self
            .drain
            .as_ref()
            .map_or_else(Instant::now, |d| d.mode.deadline());
        loop {
            if self.ctx.acks.inflight.load(Ordering::SeqCst) == 0 {
                break;
            }
            self.ctx.acks.wake_on_ack.store(true, Ordering::SeqCst);
            if self.ctx.acks.inflight.load(Ordering::SeqCst) == 0 {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            match self.rx.recv_timeout(deadline - now) {
                Ok(Wake::Abort) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            }
        }
        let saved = self.checkpoint(Instant::now(), true);
        let report = self.report(end, saved);
        tracing::info!(?report, "tail engine drained");
        self.final_report = Some(report);
        Ok(())
    }

    fn report(&self, end: DrainEnd, checkpoint_saved: bool) -> DrainReport {
        let c = &self.ctx.counters;
        DrainReport {
            end,
            events_emitted: c.events_emitted.load(Ordering::Relaxed),
            bytes_read: c.bytes_read.load(Ordering::Relaxed),
            unacked_bytes: self.ctx.acks.inflight.load(Ordering::SeqCst),
            checkpoint_saved,
            files_left: self.files_left(),
        }
    }

    /// Per tracked file (and per file that could not be opened), what is still unread or
    /// unacknowledged (one `fstat` each).
    fn files_left(&self) -> Vec<FileLeft> {
        let mut left: Vec<FileLeft> = self
            .files
            .values()
            .filter_map(|t| {
                // An unstat-able file counts as read to where we are: its size is unknown.
                let size = t.file.metadata().map_or(t.framer.position(), |m| m.len());
                FileLeft::of(
                    t.source.path.clone(),
                    size,
                    t.framer.position(),
                    t.cell.acked_to(),
                )
            })
            .collect();
        // Files that could not be opened (permissions, out of descriptors) are unread from
        // their checkpoint, or from the start.
        for path in &self.failed {
            let Ok(meta) = fs::metadata(path) else {
                continue;
            };
            let from = self
                .saved
                .get(&FileId::of(&meta))
                .map_or(0, |entry| entry.offset);
            left.extend(FileLeft::of(path.clone(), meta.len(), from, from));
        }
        left.sort_by(|a, b| a.path.cmp(&b.path));
        left
    }
}

impl Ctx {
    /// Reads one turn of `t`: truncation check, then chunks until EOF, budget or turn limit.
    fn service(&mut self, t: &mut Tracked, now: Instant) -> Result<(), Stopped> {
        t.dirty = false;
        let size = match t.file.metadata() {
            Ok(meta) => meta.len(),
            Err(error) => {
                self.counters.fault(Fault::Read);
                if !std::mem::replace(&mut t.failing, true) {
                    tracing::warn!(path = %t.source.path.display(), %error, "cannot stat open log file; will retry");
                }
                // Nothing readable now; the next poll retries.
                t.at_eof = true;
                return Ok(());
            }
        };
        let pos = t.framer.position();
        if size == pos {
            t.at_eof = true;
            return Ok(());
        }
        if size < pos || !t.fp.matches(&t.file).unwrap_or(true) {
            self.truncated(t, now);
        }
        let max = self.cfg.max_inflight_bytes;
        let mut turn = 0;
        loop {
            // Never read more than the budget has room for: every byte read is held (framer,
            // multiline group) or emitted until acknowledged, so this bounds them all.
            let room = max.saturating_sub(self.used());
            if turn >= TURN_BYTES || room == 0 {
                t.dirty = true;
                break;
            }
            let want = usize::try_from(room).map_or(READ_CHUNK_BYTES, |r| r.min(READ_CHUNK_BYTES));
            match t.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    t.at_eof = true;
                    break;
                }
                Ok(n) => {
                    turn += n;
                    t.at_eof = false;
                    t.failing = false;
                    t.last_growth = now;
                    self.last_progress = now;
                    Counters::add(&self.counters.bytes_read, n as u64);
                    t.framer.feed(&self.buf[..n], &mut self.frames);
                    self.route(t);
                    self.emit(t, SystemTime::now());
                    self.recharge(t);
                    if self.batch.len() >= BATCH_EVENTS {
                        self.send()?;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.counters.fault(Fault::Read);
                    // One line per failure episode, not one per retry.
                    if !std::mem::replace(&mut t.failing, true) {
                        tracing::warn!(path = %t.source.path.display(), %error, "cannot read log file; will retry on every poll");
                    }
                    t.at_eof = true;
                    break;
                }
            }
        }
        if !t.fp.is_complete()
            && let Ok(fp) = Fingerprint::read(&t.file, FINGERPRINT_BYTES)
        {
            t.fp = fp;
        }
        self.send()
    }

    /// The file shrank or its first bytes changed under us: copytruncate (or a rewrite).
    /// Start a new read generation at 0; what was already read stays emitted.
    fn truncated(&mut self, t: &mut Tracked, now: Instant) {
        self.counters.truncated();
        tracing::info!(path = %t.source.path.display(), read_to = t.framer.position(), "file truncated; reading it again from the start");
        self.flush_partial(t, Cut::Truncate);
        if let Some(agg) = &mut t.agg {
            agg.flush(&mut self.joined);
        }
        self.emit(t, SystemTime::now());
        self.recharge(t);
        if t.fp.is_complete() {
            self.lost_heads.push(LostHead {
                original: t.id,
                path: t.source.path.clone(),
                fp: t.fp,
                read_to: t.framer.position(),
            });
        }
        t.new_generation(Framer::new(0, self.cfg.max_line_bytes));
        t.agg = self.cfg.multiline.clone().map(Aggregator::new);
        t.last_growth = now;
        if let Err(error) = t.file.seek(SeekFrom::Start(0)) {
            self.counters.fault(Fault::Read);
            tracing::warn!(path = %t.source.path.display(), %error, "cannot seek truncated file");
        }
        t.fp = Fingerprint::read(&t.file, FINGERPRINT_BYTES).unwrap_or_default();
    }

    /// Emits the unterminated line of `t`, if any, as a piece marked with `cut`.
    fn flush_partial(&mut self, t: &mut Tracked, cut: Cut) {
        if t.framer.flush_partial(cut, &mut self.frames) {
            Counters::add(&self.counters.partial_flushes, 1);
            if cut == Cut::Budget {
                Counters::add(&self.counters.budget_cuts, 1);
            }
            self.route(t);
        }
    }

    /// Bytes charged to the budget: emitted and unacknowledged, plus held in framers and
    /// multiline groups.
    fn used(&self) -> u64 {
        self.acks.inflight.load(Ordering::SeqCst) + self.held
    }

    /// Re-reads what `t` holds and updates the budget's held share and its gauges.
    fn recharge(&mut self, t: &mut Tracked) {
        let now =
            (t.framer.pending_len() + t.agg.as_ref().map_or(0, Aggregator::held_bytes)) as u64;
        self.held = self.held - t.held + now;
        t.held = now;
        Counters::set(&self.counters.buffered_bytes, self.held);
        let used = self.used();
        self.counters
            .budget_peak_bytes
            .fetch_max(used, Ordering::Relaxed);
    }

    /// Moves framed lines through the multiline joiner (if any) into `joined`.
    fn route(&mut self, t: &mut Tracked) {
        match &mut t.agg {
            Some(agg) => {
                for frame in self.frames.drain(..) {
                    agg.push(frame, &mut self.joined);
                }
            }
            None => self.joined.append(&mut self.frames),
        }
    }

    /// Turns `joined` frames into events in the outgoing batch and charges the budget.
    fn emit(&mut self, t: &mut Tracked, read_time: SystemTime) {
        if self.joined.is_empty() {
            return;
        }
        let mut bytes = 0;
        let mut parts = 0;
        let mut last_end = 0;
        let count = self.joined.len() as u64;
        for frame in self.joined.drain(..) {
            bytes += frame.end_offset - frame.offset;
            last_end = frame.end_offset;
            parts += u64::from(frame.part.is_some());
            self.batch.push(LogEvent {
                source: Arc::clone(&t.source),
                bytes: frame.bytes,
                offset: frame.offset,
                end_offset: frame.end_offset,
                read_time,
                part: frame.part,
            });
        }
        // Register before sending, so an ack can never arrive for a range the cell has not
        // seen.
        t.cell.emitted(last_end);
        self.acks.inflight.fetch_add(bytes, Ordering::SeqCst);
        Counters::add(&self.counters.events_emitted, count);
        Counters::add(&self.counters.line_parts, parts);
    }

    fn send(&mut self) -> Result<(), Stopped> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let Some(out) = &self.out else {
            return Err(Stopped);
        };
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_EVENTS.min(64)));
        out.blocking_send(batch).map_err(|_| Stopped)
    }
}

/// Whether `path` is a symlink whose target lies outside every root (`canonical` caches the
/// roots with their own links resolved, computed on the first symlink met). A dangling link
/// is not "outside": it is skipped later as unreadable, like any vanished file.
fn points_outside(path: &Path, canonical: &mut Option<Vec<PathBuf>>, roots: &[PathBuf]) -> bool {
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if !is_link {
        return false;
    }
    let Ok(target) = fs::canonicalize(path) else {
        return false;
    };
    let roots = canonical.get_or_insert_with(|| {
        roots
            .iter()
            .filter_map(|r| fs::canonicalize(r).ok())
            .collect()
    });
    !roots.iter().any(|root| target.starts_with(root))
}

/// What a new file's head says about it.
enum CopyOf {
    No,
    /// A copy of this tailed file.
    Live(FileId),
    /// A copy of a checkpointed file, acknowledged up to this offset.
    Checkpointed(u64),
    /// A copy of the file whose truncation `lost_heads[index]` records.
    Truncated(usize),
}

/// The file next to `lost.path` (not tailed yet, not the data directory) that starts with the
/// truncated file's old head and holds more than was read from it — or that the globs match,
/// whatever it holds: a tailed copy must be claimed now, at where the original stopped, or the
/// next scan would take it for a new file (the original's fingerprint has changed) and read it
/// from 0. The most recently modified if several qualify.
fn find_copy(
    lost: &LostHead,
    files: &HashMap<FileId, Tracked>,
    matcher: &Matcher,
) -> Option<(PathBuf, fs::Metadata)> {
    let dir = lost.path.parent()?;
    let mut best: Option<(SystemTime, PathBuf, fs::Metadata)> = None;
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|k| k.is_file())
            || matcher.is_excluded(&path)
            || !named_like_copy(&path, &lost.path)
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if files.contains_key(&FileId::of(&meta))
            || (meta.len() <= lost.read_to && !matcher.is_match(&path))
        {
            continue;
        }
        let same_head = File::open(&path)
            .and_then(|f| Fingerprint::read(&f, FINGERPRINT_BYTES))
            .is_ok_and(|fp| fp == lost.fp);
        if !same_head {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if best.as_ref().is_none_or(|(m, _, _)| modified > *m) {
            best = Some((modified, path, meta));
        }
    }
    best.map(|(_, path, meta)| (path, meta))
}

/// Whether `copy` is named as rotation tools name a copy of `original`: another file in the
/// same directory whose name starts with the original's up to its first dot, followed by a
/// separator (`app.log` → `app.log.1`, `app.log-20261202`, `app-20261202.log`; not
/// `application.log`).
fn named_like_copy(copy: &Path, original: &Path) -> bool {
    let (Some(name), Some(orig)) = (copy.file_name(), original.file_name()) else {
        return false;
    };
    let (name, orig) = (name.to_string_lossy(), orig.to_string_lossy());
    let stem = orig.split('.').next().unwrap_or(&orig);
    let after_stem = name
        .strip_prefix(stem)
        .is_some_and(|rest| rest.starts_with(['.', '-', '_']));
    copy != original && copy.parent() == original.parent() && !stem.is_empty() && after_stem
}

#[cfg(test)]
mod tests {
    //! The copytruncate windows replayed step by step: the engine's scan and read phases are
    //! called directly, with the rotation's file operations between them, so orderings that a
    //! loaded machine produces only by chance happen every time.
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use super::*;
    use crate::emit::NoEmitter;

    /// An engine driven by hand (no thread, no inotify, no timers) on a temporary directory.
    struct Rig {
        engine: Engine,
        out: mpsc::Receiver<Vec<LogEvent>>,
        root: PathBuf,
        /// Every event received: the file it was read from and its text.
        got: Vec<(PathBuf, String)>,
        _dir: tempfile::TempDir,
    }

    fn temp_root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("app");
        fs::create_dir_all(&root).unwrap();
        (dir, root)
    }

    impl Rig {
        /// An engine tailing `root/app.log*`, as the copytruncate tests configure it.
        fn start(dir: tempfile::TempDir, root: PathBuf) -> Self {
            let cfg = TailConfig {
                paths: vec![format!("{}/app.log*", root.display())],
                data_dir: root.join(".firetail"),
                use_inotify: false,
                ..TailConfig::default()
            };
            let matcher = Matcher::new(&cfg.paths, &cfg.data_dir).unwrap();
            let (wake_tx, wake_rx) = std::sync::mpsc::channel();
            let acks = Arc::new(AckShared {
                inflight: AtomicU64::new(0),
                ack_seq: AtomicU64::new(0),
                ignored: AtomicU64::new(0),
                wake_on_ack: AtomicBool::new(false),
                waker: Mutex::new(wake_tx),
            });
            let (out_tx, out) = mpsc::channel(OUT_BATCHES);
            let engine = Engine::new(
                cfg,
                matcher,
                Arc::new(Counters::new(Arc::new(NoEmitter))),
                acks,
                Arc::new(FsSignals::default()),
                None,
                out_tx,
                wake_rx,
                None,
            );
            Self {
                engine,
                out,
                root,
                got: Vec::new(),
                _dir: dir,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.root.join(name)
        }

        /// The first half of a poll (`Engine::step`): rescan, mark every file to be looked at.
        fn scan(&mut self) {
            self.engine.scan(Instant::now(), false);
            self.dirty();
        }

        fn dirty(&mut self) {
            for t in self.engine.files.values_mut() {
                t.dirty = true;
            }
        }

        /// The second half: read every file marked, collect what was emitted.
        fn read(&mut self) {
            self.engine.read_pass(Instant::now()).unwrap();
            while let Ok(batch) = self.out.try_recv() {
                for ev in batch {
                    let text = String::from_utf8_lossy(&ev.bytes).into_owned();
                    self.got.push((ev.source.path.clone(), text));
                }
            }
        }

        fn poll(&mut self) {
            self.scan();
            self.read();
        }

        fn stats(&self) -> crate::TailStats {
            self.engine.ctx.counters.snapshot()
        }

        /// Asserts every line of `range` arrived exactly once and nothing else did.
        fn assert_once(&self, range: std::ops::Range<usize>) {
            let mut counts: BTreeMap<String, Vec<&Path>> = BTreeMap::new();
            for (path, text) in &self.got {
                counts.entry(text.clone()).or_default().push(path);
            }
            let twice: Vec<_> = counts.iter().filter(|(_, from)| from.len() > 1).collect();
            assert!(
                twice.is_empty(),
                "{} lines read more than once, first {:?}: {:?}",
                twice.len(),
                twice.first(),
                self.stats()
            );
            let want: Vec<String> = range.map(line).collect();
            let have: Vec<String> = counts.into_keys().collect();
            assert_eq!(have, want, "{:?}", self.stats());
        }

        /// Lines read from `name`.
        fn from(&self, name: &str) -> usize {
            let path = self.path(name);
            self.got.iter().filter(|(p, _)| *p == path).count()
        }
    }

    fn line(i: usize) -> String {
        format!("line {i:05} {}", "x".repeat(20))
    }

    fn lines(range: std::ops::Range<usize>) -> String {
        range.map(|i| line(i) + "\n").collect()
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn truncate(path: &Path) {
        OpenOptions::new()
            .write(true)
            .open(path)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    #[test]
    fn a_copy_first_seen_after_its_truncation_continues_where_the_original_stopped() {
        let (dir, root) = temp_root();
        let app = root.join("app.log");
        append(&app, &lines(0..100));
        let mut rig = Rig::start(dir, root);
        rig.engine.scan(Instant::now(), true);
        rig.read();
        rig.assert_once(0..100);

        // A poll's scan looks just before `cp app.log app.log.1; truncate app.log`, its read
        // just after: the truncation is seen before the copy ever was, with nothing unread.
        rig.scan();
        fs::copy(&app, rig.path("app.log.1")).unwrap();
        truncate(&app);
        append(&app, &lines(100..110));
        rig.read();
        rig.poll();
        rig.poll();
        rig.assert_once(0..110);
        assert_eq!(rig.from("app.log.1"), 0);
        assert_eq!(rig.stats().copies_continued, 1, "{:?}", rig.stats());

        // Again, with lines written between copy and truncation and read from the original
        // before the truncation is seen: the copy holds less than was read, and nothing new.
        rig.scan();
        fs::copy(&app, rig.path("app.log.2")).unwrap();
        append(&app, &lines(110..115));
        rig.read();
        truncate(&app);
        append(&app, &lines(115..120));
        rig.dirty();
        rig.read();
        rig.poll();
        rig.poll();
        rig.assert_once(0..120);
        assert_eq!(rig.from("app.log.2"), 0);
        let stats = rig.stats();
        assert_eq!(
            (stats.truncations, stats.copies_continued),
            (2, 2),
            "{stats:?}"
        );

        // Both copies stay tailed from where they were claimed.
        append(&rig.path("app.log.1"), &lines(120..121));
        append(&rig.path("app.log.2"), &lines(121..122));
        rig.poll();
        rig.assert_once(0..122);
    }

    #[test]
    fn a_copy_first_seen_while_being_written_continues_where_the_original_stopped() {
        let (dir, root) = temp_root();
        let app = root.join("app.log");
        append(&app, &lines(0..100));
        let mut rig = Rig::start(dir, root);
        rig.engine.scan(Instant::now(), true);
        rig.read();
        let head = fs::read(&app).unwrap();

        // `cp` has created the copy, then written part of its first 256 bytes, when polls
        // look at it; then it finishes and the original is truncated before the next poll.
        let copy = rig.path("app.log.1");
        fs::write(&copy, b"").unwrap();
        rig.poll();
        fs::write(&copy, &head[..100]).unwrap();
        rig.poll();
        fs::write(&copy, &head).unwrap();
        truncate(&app);
        append(&app, &lines(100..110));
        rig.poll();
        rig.poll();
        rig.assert_once(0..110);
        assert_eq!(rig.from("app.log.1"), 0);
        assert_eq!(rig.stats().copies_continued, 1, "{:?}", rig.stats());

        // Seen while being written, then finished and its original truncated between the scan
        // and the read of one poll.
        let head = fs::read(&app).unwrap();
        let copy = rig.path("app.log.2");
        fs::write(&copy, &head[..10]).unwrap();
        rig.scan();
        fs::write(&copy, &head).unwrap();
        truncate(&app);
        // Fewer bytes than before, or the truncation would look like no change at all.
        append(&app, &lines(110..115));
        rig.read();
        rig.poll();
        rig.poll();
        rig.assert_once(0..115);
        assert_eq!(rig.from("app.log.2"), 0);
        let stats = rig.stats();
        assert_eq!(
            (stats.truncations, stats.copies_continued),
            (2, 2),
            "{stats:?}"
        );
    }

    #[test]
    fn short_new_files_named_like_copies_are_held_back_only_while_they_are_a_tailed_head() {
        let (dir, root) = temp_root();
        let app = root.join("app.log");
        append(&app, &lines(0..100));
        let mut rig = Rig::start(dir, root);
        rig.engine.scan(Instant::now(), true);
        rig.read();
        rig.got.clear();

        // Not the head of any tailed file: read at once.
        append(&rig.path("app.log.other"), "something else\n");
        rig.poll();
        assert_eq!(rig.got.len(), 1);
        assert_eq!(rig.got[0].1, "something else");

        // The head of app.log so far: held back; read from 0 once it differs.
        let bak = rig.path("app.log.bak");
        append(&bak, "line 000");
        rig.poll();
        assert_eq!(rig.got.len(), 1);
        append(&bak, "-not-a-copy\n");
        rig.poll();
        assert_eq!(rig.got.len(), 2, "{:?}", rig.got);
        assert_eq!(rig.got[1].1, "line 000-not-a-copy");

        // Still that head after `rotate_grace`: no copy is written that slowly, read it.
        append(&rig.path("app.log.head"), &lines(0..1));
        rig.poll();
        assert_eq!(rig.got.len(), 2, "{:?}", rig.got);
        rig.engine.ctx.cfg.rotate_grace = Duration::ZERO;
        rig.poll();
        assert_eq!(rig.got.len(), 3, "{:?}", rig.got);
        assert_eq!(rig.got[2], (rig.path("app.log.head"), line(0)));
        assert_eq!(rig.stats().copies_continued, 0);
    }

    #[test]
    fn a_copy_opened_after_its_checkpointed_original_was_found_rewritten_continues_it() {
        let (dir, root) = temp_root();
        let app = root.join("app.log");
        append(&app, &lines(0..100));
        // Checkpointed up to line 50, then copytruncated while the sidecar was down.
        let meta = fs::metadata(&app).unwrap();
        let fp = Fingerprint::read(&File::open(&app).unwrap(), FINGERPRINT_BYTES).unwrap();
        let acked = lines(0..50).len() as u64;
        CheckpointStore::new(root.join(".firetail"))
            .save(&[Entry {
                dev: FileId::of(&meta).dev,
                ino: FileId::of(&meta).ino,
                fp_len: fp.len,
                fp_hash: fp.hash,
                offset: acked,
                path: app.to_string_lossy().into_owned(),
            }])
            .unwrap();
        fs::copy(&app, root.join("app.log.1")).unwrap();
        truncate(&app);
        append(&app, &lines(100..110));

        // The startup scan meets the original before its copy (directory order decides).
        let mut rig = Rig::start(dir, root);
        let now = Instant::now();
        for name in ["app.log", "app.log.1"] {
            let path = rig.path(name);
            let meta = fs::metadata(&path).unwrap();
            rig.engine.open(path, &meta, FileId::of(&meta), now, true);
        }
        rig.engine.scan(now, true);
        rig.read();
        rig.poll();
        rig.assert_once(50..110);
        assert_eq!(rig.from("app.log.1"), 50);
        assert_eq!(rig.stats().copies_continued, 1, "{:?}", rig.stats());
    }
}
