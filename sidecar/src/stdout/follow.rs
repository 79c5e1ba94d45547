//! One container's follower: the I/O shell around [`super::resume`].
//!
//! Loop: look at the pod for the container's current instance (`restartCount`,
//! `containerID`); if the instance being read was replaced, read the rest of it with
//! `previous=true` (from its read position, by `sinceTime`), wait until it is acknowledged,
//! then switch to the new instance from its first line; otherwise follow the current instance
//! from its read position. A stream that ends is resumed by `sinceTime` (skipping what was
//! read) until the pod says the instance terminated; a line cut by a disconnect is dropped
//! and read again. The pod is polled (no watch, so no 410 Gone to handle).
//!
//! Errors back off exponentially with jitter up to `retry_max`, at least `Retry-After`;
//! 403 (RBAC denies `pods/log`) is logged as an error and retried at `retry_max`; 400
//! "waiting to start" is retried at the poll interval; a 400 to `previous=true` means the
//! kubelet no longer has that instance's log (logged as an error, the instance is done). Every error counts in
//! `firetail_stdout_errors_total{reason}`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use firetail_tail::framing::Frame;
use firetail_tail::multiline::Aggregator;
use firetail_tail::{LogEvent, MultilineConfig, Part, SourceFile};
use http_body_util::BodyExt as _;
use tokio::sync::{mpsc, watch};

use super::resume::{Ledger, Position, Skipper};
use super::stamp::{Stamp, split_line};
use super::{Instance, Shared, StdoutSettings, StreamAck, StreamLeft, checkpoint, source_path};
use crate::metrics::Observability;
use crate::pod::api::{KubeError, LogQuery};
use crate::pod::watch::ApiSource;

/// What every follower shares.
#[derive(Debug)]
pub(super) struct Ctx {
    pub(super) api: ApiSource,
    pub(super) obs: Arc<Observability>,
    pub(super) shared: Arc<Shared>,
    pub(super) settings: StdoutSettings,
    pub(super) max_line_bytes: usize,
    pub(super) multiline: Option<MultilineConfig>,
}

/// Exponential backoff with jitter, capped.
#[derive(Debug)]
pub(super) struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub(super) fn new(settings: &StdoutSettings) -> Self {
        Self {
            base: settings.retry_base,
            cap: settings.retry_max.max(settings.retry_base),
            failures: 0,
        }
    }

    /// The next delay (between half and all of `base × 2^failures`, capped), at least
    /// `at_least` (a `Retry-After`).
    pub(super) fn next(&mut self, at_least: Option<Duration>) -> Duration {
        let full = self
            .base
            .saturating_mul(1u32 << self.failures.min(16))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let jittered = full / 2 + full.mul_f64(fastrand::f64() / 2.0);
        jittered.max(at_least.unwrap_or_default())
    }

    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The instance being read.
#[derive(Debug)]
struct Reading {
    ack: Arc<StreamAck>,
    source: Arc<SourceFile>,
    /// The last line read (handed on); a reconnect resumes here.
    read: Option<Position>,
    /// Read to its end (the container terminated).
    finished: bool,
}

/// How a read ended without an error.
enum End {
    /// The API closed the stream; `lines` were new.
    Closed { lines: u64 },
    /// The drain deadline passed.
    Deadline,
    /// The run loop is gone.
    Gone,
    /// Nothing arrived for `idle_reconnect`: reopen from the last line read.
    Idle,
}

/// Why a read failed.
enum ReadError {
    Kube(KubeError),
    /// The stream broke off (its partial last line was dropped).
    Cut(String),
}

/// One container's follower.
pub(super) struct Follower {
    ctx: Arc<Ctx>,
    container: String,
    tx: mpsc::Sender<Vec<LogEvent>>,
    drain: watch::Receiver<Option<Instant>>,
    backoff: Backoff,
    held_reported: u64,
}

impl Follower {
    pub(super) fn new(
        ctx: Arc<Ctx>,
        container: String,
        tx: mpsc::Sender<Vec<LogEvent>>,
        drain: watch::Receiver<Option<Instant>>,
    ) -> Self {
        let backoff = Backoff::new(&ctx.settings);
        Self {
            ctx,
            container,
            tx,
            drain,
            backoff,
            held_reported: 0,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        *self.drain.borrow()
    }

    fn draining(&self) -> bool {
        self.deadline().is_some()
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Starts reading `instance` from `start` (a checkpoint's position, or none: its first
    /// line), and makes it the container's checkpointed instance.
    fn reading(&self, instance: Instance, start: Option<Position>) -> Reading {
        if let Some(id) = &instance.container_id {
            self.ctx
                .shared
                .new_ids
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(self.container.clone(), id.clone());
        }
        let ack = Arc::new(StreamAck {
            container: self.container.clone(),
            instance,
            ledger: std::sync::Mutex::new(Ledger::new(start)),
            inflight: Arc::clone(&self.ctx.shared.inflight),
            acked: Arc::clone(&self.ctx.shared.acked),
        });
        self.ctx
            .shared
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(self.container.clone(), Arc::clone(&ack));
        let source = SourceFile::external(
            source_path(&self.container),
            self.container.clone(),
            Arc::clone(&ack) as Arc<dyn firetail_tail::ExternalAck>,
        );
        Reading {
            ack,
            source,
            read: start,
            finished: false,
        }
    }

    /// Sleeps `delay`, waking early when the drain starts.
    async fn pause(&mut self, delay: Duration) {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = self.drain.changed() => {}
        }
    }

    /// Follows the container until the drain is over for it.
    pub(super) async fn run(mut self, start: Option<checkpoint::Entry>) -> StreamLeft {
        let mut cur = start.map(|e| {
            let instance = Instance {
                container_id: e.container_id.clone(),
                restart_count: e.restart_count,
            };
            self.reading(instance, e.position())
        });
        let unfinished = loop {
            if self.past_deadline() {
                break true;
            }
            if self.tx.is_closed() {
                break false;
            }
            let pod = match self
                .ctx
                .api
                .client
                .get_pod(&self.ctx.api.namespace, &self.ctx.api.name)
                .await
            {
                Ok(pod) => pod,
                Err(error) => {
                    self.ctx.obs.metrics.stdout_error("pod");
                    tracing::warn!(container = %self.container, %error, "cannot read the pod for its container status; retrying");
                    let delay = self.backoff.next(None);
                    self.pause(delay).await;
                    continue;
                }
            };
            let Some(run) = pod
                .container_run(&self.container)
                .filter(|r| r.container_id.is_some())
            else {
                // Not started yet (or not in this pod): nothing to read so far.
                if self.draining() {
                    break false;
                }
                let delay = self.ctx.settings.poll_interval;
                self.pause(delay).await;
                continue;
            };
            let now = Instance {
                container_id: run.container_id.clone(),
                restart_count: run.restart_count,
            };
            let Some(r) = cur.as_mut() else {
                cur = Some(self.reading(now, None));
                continue;
            };
            let ours = &r.ack.instance;
            let replaced = run.restart_count > ours.restart_count
                || (run.restart_count == ours.restart_count
                    && ours.container_id.is_some()
                    && ours.container_id != run.container_id);
            if replaced {
                if !r.finished {
                    if run.restart_count != ours.restart_count + 1
                        || (ours.container_id.is_some() && run.previous_id != ours.container_id)
                    {
                        tracing::warn!(container = %self.container, from = ours.restart_count, to = run.restart_count,
                            "the container restarted more than once since it was read; the API keeps only the previous instance's log, lines of instances in between are lost");
                    }
                    match self.read(r, true, false).await {
                        Ok(End::Closed { .. }) => r.finished = true,
                        Ok(End::Idle) => self.idle_reconnect(),
                        Ok(End::Deadline) => break true,
                        Ok(End::Gone) => break false,
                        // 400: the kubelet no longer has the previous instance's log.
                        Err(ReadError::Kube(KubeError::Api {
                            code: 400, message, ..
                        })) => {
                            self.ctx.obs.metrics.stdout_error("previous_gone");
                            tracing::error!(container = %self.container, %message,
                                "the previous instance's log is no longer available; its lines not read yet are lost");
                            r.finished = true;
                        }
                        Err(error) => {
                            self.on_error(&error).await;
                            continue;
                        }
                    }
                }
                // The next instance becomes the checkpointed one only once this one is
                // delivered, so a restart of firetail meanwhile still finds it.
                if !self.settle(&r.ack).await {
                    break true;
                }
                tracing::info!(container = %self.container, restart_count = now.restart_count, "following the container's new instance");
                cur = Some(self.reading(now, None));
                continue;
            }
            if r.finished {
                if self.draining() {
                    break false;
                }
                let delay = self.ctx.settings.poll_interval;
                self.pause(delay).await;
                continue;
            }
            match self.read(r, false, run.running).await {
                Ok(End::Closed { lines }) => {
                    if !run.running {
                        // Read to its end, and the pod said it had terminated before.
                        r.finished = true;
                    } else if lines == 0 {
                        // Closed at once: do not hammer the API.
                        let delay = self.backoff.next(None);
                        self.pause(delay).await;
                    } else {
                        self.backoff.reset();
                    }
                }
                Ok(End::Idle) => self.idle_reconnect(),
                Ok(End::Deadline) => break true,
                Ok(End::Gone) => break false,
                Err(error) => self.on_error(&error).await,
            }
        };
        self.set_held(0);
        StreamLeft {
            container: self.container.clone(),
            unacked_bytes: cur.as_ref().map_or(0, |r| r.ack.ledger().unacked_bytes()),
            unfinished,
        }
    }

    /// Waits until every line read from `ack`'s instance is acknowledged; false at the
    /// deadline.
    async fn settle(&mut self, ack: &StreamAck) -> bool {
        loop {
            if ack.ledger().settled() {
                return true;
            }
            if self.past_deadline() || self.tx.is_closed() {
                return false;
            }
            tokio::select! {
                () = self.ctx.shared.acked.notified() => {}
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Counts, logs and waits after `error`.
    /// Counts and logs a reopen after silence (no backoff: the next read resumes at once).
    fn idle_reconnect(&self) {
        self.ctx.obs.metrics.stdout_error("idle_reconnect");
        tracing::info!(container = %self.container, idle_ms = self.ctx.settings.idle_reconnect.as_millis() as u64,
            "nothing arrived on the log stream for a while; reopening it from the last line read");
    }

    async fn on_error(&mut self, error: &ReadError) {
        let (reason, delay) = match error {
            ReadError::Cut(_) => ("disconnect", self.backoff.next(None)),
            ReadError::Kube(KubeError::Api {
                code, retry_after, ..
            }) => match code {
                403 => ("forbidden", self.ctx.settings.retry_max),
                429 => ("throttled", self.backoff.next(*retry_after)),
                500..=599 => ("server_error", self.backoff.next(*retry_after)),
                400 if waiting(error) => ("waiting", self.ctx.settings.poll_interval),
                400 => ("bad_request", self.backoff.next(None)),
                404 => ("not_found", self.backoff.next(None)),
                _ => ("client_error", self.backoff.next(*retry_after)),
            },
            ReadError::Kube(_) => ("connect", self.backoff.next(None)),
        };
        self.ctx.obs.metrics.stdout_error(reason);
        match error {
            ReadError::Kube(KubeError::Api {
                code: 403, message, ..
            }) => tracing::error!(
                container = %self.container,
                message = %message,
                retry_in_ms = delay.as_millis() as u64,
                "the Kubernetes API denies reading this container's log (RBAC: the Role needs `get` on `pods/log`); retrying slowly"
            ),
            ReadError::Kube(error) => {
                tracing::warn!(container = %self.container, reason, %error, retry_in_ms = delay.as_millis() as u64, "container log request failed; retrying")
            }
            ReadError::Cut(error) => {
                tracing::warn!(container = %self.container, %error, retry_in_ms = delay.as_millis() as u64, "container log stream broke off; resuming by sinceTime")
            }
        }
        self.pause(delay).await;
    }

    fn set_held(&mut self, held: u64) {
        let buffered = &self.ctx.shared.buffered;
        if held >= self.held_reported {
            buffered.fetch_add(held - self.held_reported, Ordering::Relaxed);
        } else {
            buffered.fetch_sub(self.held_reported - held, Ordering::Relaxed);
        }
        self.held_reported = held;
    }

    /// Reads one stream of the instance from `r.read` on.
    async fn read(
        &mut self,
        r: &mut Reading,
        previous: bool,
        follow: bool,
    ) -> Result<End, ReadError> {
        let query = LogQuery {
            container: self.container.clone(),
            follow,
            previous,
            since_time: r.read.map(Position::since_time),
        };
        let api = &self.ctx.api;
        let open = api.client.log_stream(&api.namespace, &api.name, &query);
        let deadline = self.deadline();
        let idle = self.ctx.settings.idle_reconnect;
        let mut body = tokio::select! {
            opened = open => opened.map_err(ReadError::Kube)?,
            () = sleep_until(deadline) => return Ok(End::Deadline),
            () = tokio::time::sleep(idle) => {
                return Err(ReadError::Cut(format!("no answer to the log request in {} ms", idle.as_millis())));
            }
        };
        let obs = Arc::clone(&self.ctx.obs);
        obs.metrics.stdout_streams_open.inc();
        let mut state = StreamState {
            skipper: Skipper::new(r.read),
            cutter: Cutter::default(),
            agg: self.ctx.multiline.clone().map(Aggregator::new),
            stamps: VecDeque::new(),
            out: Vec::new(),
            lines: 0,
            last_stamp: r.read.map(|p| p.stamp),
            max_line: self.ctx.max_line_bytes,
        };
        let flush_after = self
            .ctx
            .multiline
            .as_ref()
            .map_or(Duration::from_secs(1), |m| m.flush_timeout);
        let result = loop {
            // Over its share of the budget: stop reading (the kubelet keeps the log, TCP
            // holds the stream) until acknowledgements bring it back under.
            if r.ack.ledger().unacked_bytes() > self.ctx.shared.share() {
                state.flush(r);
                if !self.send(&mut state).await {
                    break Ok(End::Gone);
                }
                let deadline = self.deadline();
                tokio::select! {
                    () = self.ctx.shared.acked.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = sleep_until(deadline) => break Ok(End::Deadline),
                    _ = self.drain.changed() => {}
                }
                continue;
            }
            let holding = state.agg.as_ref().is_some_and(Aggregator::is_holding);
            let deadline = self.deadline();
            let frame = tokio::select! {
                frame = body.frame() => frame,
                () = tokio::time::sleep(flush_after), if holding => {
                    state.flush(r);
                    if !self.send(&mut state).await {
                        break Ok(End::Gone);
                    }
                    continue;
                }
                () = sleep_until(deadline) => break Ok(End::Deadline),
                _ = self.drain.changed() => continue,
                () = tokio::time::sleep(idle), if !holding => {
                    state.cutter.abandon();
                    state.flush(r);
                    break Ok(End::Idle);
                }
            };
            match frame {
                None => {
                    // The stream ended properly: a last line without a newline is whole.
                    state.finish_line(r, &obs);
                    state.flush(r);
                    break Ok(End::Closed { lines: state.lines });
                }
                Some(Err(error)) => {
                    // Complete lines stand; the cut one is read again after resuming.
                    state.cutter.abandon();
                    state.flush(r);
                    break Err(ReadError::Cut(error.to_string()));
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        state.feed(r, &data, &obs);
                        if !self.send(&mut state).await {
                            break Ok(End::Gone);
                        }
                    }
                }
            }
            let held = state.held();
            self.set_held(held);
        };
        let sent = self.send(&mut state).await;
        self.set_held(0);
        obs.metrics.stdout_streams_open.dec();
        if !sent {
            return Ok(End::Gone);
        }
        result
    }

    /// Hands the events gathered so far to the run loop; false when it is gone.
    async fn send(&mut self, state: &mut StreamState) -> bool {
        if state.out.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut state.out);
        self.tx.send(batch).await.is_ok()
    }
}

/// Whether a 400 says the container has not started yet (`... is waiting to start: ...`).
fn waiting(error: &ReadError) -> bool {
    matches!(error, ReadError::Kube(KubeError::Api { message, .. }) if message.contains("waiting to start"))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// An unfinished line: its timestamp, whether it is skipped, pieces emitted.
#[derive(Debug, Clone, Copy)]
struct Open {
    stamp: Stamp,
    skip: bool,
    pieces: u32,
}

/// Bytes of the line in progress.
#[derive(Debug, Default)]
struct Cutter {
    buf: Vec<u8>,
    open: Option<Open>,
}

impl Cutter {
    fn abandon(&mut self) {
        self.buf.clear();
        self.open = None;
    }
}

/// One stream's reading state.
struct StreamState {
    skipper: Skipper,
    cutter: Cutter,
    agg: Option<Aggregator>,
    /// First offset of each frame given to the joiner, with its line's timestamp.
    stamps: VecDeque<(u64, Stamp)>,
    out: Vec<LogEvent>,
    lines: u64,
    last_stamp: Option<Stamp>,
    max_line: usize,
}

impl StreamState {
    fn held(&self) -> u64 {
        (self.cutter.buf.len() + self.agg.as_ref().map_or(0, Aggregator::held_bytes)) as u64
    }

    fn feed(&mut self, r: &mut Reading, mut data: &[u8], obs: &Observability) {
        while !data.is_empty() {
            match memchr_newline(data) {
                Some(at) => {
                    self.cutter.buf.extend_from_slice(&data[..at]);
                    data = &data[at + 1..];
                    self.finish_line(r, obs);
                }
                None => {
                    self.cutter.buf.extend_from_slice(data);
                    data = &[];
                    self.cut_long(r, obs);
                }
            }
        }
    }

    /// Opens the line in progress once its timestamp is there: decides whether it is
    /// skipped, and moves the content past the timestamp.
    fn open(&mut self, obs: &Observability, whole: bool) -> Option<Open> {
        if let Some(open) = self.cutter.open {
            return Some(open);
        }
        let buf = &self.cutter.buf;
        // A prefix is at most 35 bytes; wait for the space unless the line is complete.
        if !whole && !buf.iter().take(40).any(|b| *b == b' ') && buf.len() < 40 {
            return None;
        }
        let (stamp, skip_len) = match split_line(buf) {
            Some((stamp, content)) => (stamp, buf.len() - content.len()),
            // Not a timestamped line (the API always prefixes): the last line's time.
            None => (self.last_stamp.unwrap_or_else(now_stamp), 0),
        };
        self.cutter.buf.drain(..skip_len);
        let skip = self.skipper.skip(stamp);
        if skip {
            obs.metrics.stdout_lines_skipped.inc();
        }
        let open = Open {
            stamp,
            skip,
            pieces: 0,
        };
        self.cutter.open = Some(open);
        Some(open)
    }

    /// Emits pieces of a line that outgrew `max_line` before its newline.
    fn cut_long(&mut self, r: &mut Reading, obs: &Observability) {
        while self.cutter.buf.len() > self.max_line {
            let Some(open) = self.open(obs, false) else {
                return;
            };
            if self.cutter.buf.len() <= self.max_line {
                return;
            }
            let piece: Vec<u8> = self.cutter.buf.drain(..self.max_line).collect();
            if let Some(o) = self.cutter.open.as_mut() {
                o.pieces += 1;
            }
            if open.skip {
                continue;
            }
            let (offset, end_offset) = r.ack.ledger().piece(piece.len() as u64);
            self.push(
                r,
                Frame {
                    bytes: piece,
                    offset,
                    end_offset,
                    part: Some(Part {
                        index: open.pieces,
                        last: false,
                        cut: None,
                    }),
                },
                open.stamp,
            );
        }
    }

    /// The line in progress is complete (newline, or the stream's proper end).
    fn finish_line(&mut self, r: &mut Reading, obs: &Observability) {
        if self.cutter.open.is_none() && self.cutter.buf.is_empty() {
            return;
        }
        let Some(open) = self.open(obs, true) else {
            return;
        };
        let mut bytes = std::mem::take(&mut self.cutter.buf);
        self.cutter.open = None;
        self.last_stamp = Some(open.stamp);
        if open.skip {
            return;
        }
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        self.lines += 1;
        r.read = Some(Position::advance(r.read, open.stamp));
        let (offset, end_offset) = r.ack.ledger().line(bytes.len() as u64 + 1, open.stamp);
        let part = (open.pieces > 0).then_some(Part {
            index: open.pieces,
            last: true,
            cut: None,
        });
        self.push(
            r,
            Frame {
                bytes,
                offset,
                end_offset,
                part,
            },
            open.stamp,
        );
    }

    fn push(&mut self, r: &Reading, frame: Frame, stamp: Stamp) {
        r.ack
            .inflight
            .fetch_add(frame.end_offset - frame.offset, Ordering::SeqCst);
        match self.agg.as_mut() {
            None => self.out.push(event(r, frame, stamp)),
            Some(agg) => {
                self.stamps.push_back((frame.offset, stamp));
                let mut done = Vec::new();
                agg.push(frame, &mut done);
                self.joined(r, done);
            }
        }
    }

    /// Emits what the joiner holds.
    fn flush(&mut self, r: &Reading) {
        if let Some(agg) = self.agg.as_mut() {
            let mut done = Vec::new();
            agg.flush(&mut done);
            self.joined(r, done);
        }
    }

    fn joined(&mut self, r: &Reading, frames: Vec<Frame>) {
        for frame in frames {
            let mut stamp = None;
            while let Some(&(offset, s)) = self.stamps.front() {
                if offset >= frame.end_offset {
                    break;
                }
                stamp = stamp.or(Some(s));
                self.stamps.pop_front();
            }
            let stamp = stamp.unwrap_or_else(now_stamp);
            self.out.push(event(r, frame, stamp));
        }
    }
}

fn event(r: &Reading, frame: Frame, stamp: Stamp) -> LogEvent {
    LogEvent {
        source: Arc::clone(&r.source),
        bytes: frame.bytes,
        offset: frame.offset,
        end_offset: frame.end_offset,
        read_time: stamp.to_system_time(),
        part: frame.part,
    }
}

fn memchr_newline(data: &[u8]) -> Option<usize> {
    data.iter().position(|b| *b == b'\n')
}

fn now_stamp() -> Stamp {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Stamp {
        secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}
