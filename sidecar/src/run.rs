//! The shipper's run loop: engine events in, acknowledged Firehose records out.
//!
//! # Layout
//! - [`RunConfig`]: everything `run` needs (flags, engine config, pod metadata, metrics).
//! - [`run`]: starts the engine, encodes and packs events, sends batches on concurrent tasks,
//!   acknowledges accepted events, and drains when `shutdown` completes.
//! - `Encoder`: event → JSON bytes, including the oversize split/truncate rule and the
//!   renumbering of parts when an engine part itself must be split again.
//! - [`RunReport`]: what happened, for the binary's exit status and for tests.
//!
//! Acknowledgement is per event and only after Firehose accepted the record holding it (for a
//! split event: all of its pieces), so the engine's checkpoints never pass undelivered data.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::{DrainArg, OversizeMode, ShipArgs};
use crate::enrich::{Enricher, PodInfo, PodLookup};
use crate::kube::KubeClient;
use crate::metrics::Observability;
use crate::pack::{Limits, Packer, RecordFormat, split_line};
use crate::record::{EventRef, PartMark, encode, encoded_len_bound};
use crate::send::send_batch;
use crate::sink::Sink;
use crate::tail::{
    self, Acker, DrainEnd, DrainMode, DrainReport, LogEvent, SourceFile, TailConfig,
};

/// Everything [`run`] needs.
#[derive(Debug)]
pub struct RunConfig {
    /// Shipping flags.
    pub ship: ShipArgs,
    /// Engine configuration.
    pub tail: TailConfig,
    /// Pod metadata at start (labels/annotations are re-read from `ship.podinfo_dir`).
    pub pod: PodInfo,
    /// Shared metrics and health (also served over HTTP by the caller).
    pub obs: Arc<Observability>,
    /// Packing limits; [`Limits::FIREHOSE`] outside tests.
    pub limits: Limits,
    /// Kubernetes API client for container ids/images and the drain decision, if available.
    pub kube: Option<KubeClient>,
}

/// Failure to start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The engine did not start.
    #[error("tailing engine: {0}")]
    Tail(#[from] tail::TailError),
}

/// The outcome of a run that was shut down.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The engine's drain outcome.
    pub drain: DrainReport,
    /// How the drain was asked to end (`None` if the drain task failed).
    pub drain_mode: Option<DrainMode>,
    /// Events received from the engine.
    pub events_received: u64,
    /// Batches still unsent or unacknowledged when the drain deadline ended the run.
    pub abandoned_batches: usize,
}

/// What a record carries to acknowledge one event (or one piece of a split event).
#[derive(Debug)]
enum Token {
    Whole {
        source: Arc<SourceFile>,
        offset: u64,
        end_offset: u64,
    },
    Piece(Arc<SplitGroup>),
}

/// The pieces of one engine event that had to be split; acknowledged when the last one is.
#[derive(Debug)]
struct SplitGroup {
    remaining: AtomicU32,
    source: Arc<SourceFile>,
    offset: u64,
    end_offset: u64,
}

impl Token {
    fn ack(&self, acker: &Acker) {
        match self {
            Self::Whole {
                source,
                offset,
                end_offset,
            } => acker.ack(source, *offset, *end_offset),
            Self::Piece(group) => {
                if group.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    acker.ack(&group.source, group.offset, group.end_offset);
                }
            }
        }
    }
}

/// Turns engine events into encoded events for the packer.
struct Encoder {
    enricher: Enricher,
    stream_label: String,
    oversize: OversizeMode,
    /// Extra parts added so far to the engine-split line being read from each source (keyed by
    /// the source's address, which is stable while an `Arc` to it is held here).
    renumber: HashMap<usize, (Arc<SourceFile>, u32)>,
    /// The last source's path as text (events come in runs from one file).
    last_file: Option<(Arc<SourceFile>, Arc<str>)>,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder").finish_non_exhaustive()
    }
}

impl Encoder {
    /// Encodes `ev` and pushes it (or its pieces) into `packer`.
    fn push(&mut self, ev: LogEvent, packer: &mut Packer<Token>, obs: &Observability) {
        let file = match &self.last_file {
            Some((src, text)) if Arc::ptr_eq(src, &ev.source) => Arc::clone(text),
            _ => {
                let text: Arc<str> = ev.source.path.to_string_lossy().into();
                self.last_file = Some((Arc::clone(&ev.source), Arc::clone(&text)));
                text
            }
        };
        let container = (!ev.source.container.is_empty()).then_some(ev.source.container.as_str());
        let kube = self.enricher.kubernetes(container);
        let key = Arc::as_ptr(&ev.source) as usize;
        let shift = self.renumber.get(&key).map_or(0, |(_, n)| *n);
        let engine_part = ev.part.map(|p| PartMark {
            index: p.index + shift,
            last: p.last,
        });
        let max_event = packer.max_event_bytes();
        let whole = EventRef {
            line: &ev.bytes,
            time: ev.read_time,
            file: &file,
            part: engine_part,
        };
        self.buf.clear();
        encode(&whole, &self.stream_label, &kube, &mut self.buf);
        if self.buf.len() <= max_event {
            if ev.part.is_some_and(|p| p.last) {
                self.renumber.remove(&key);
            }
            let token = Token::Whole {
                source: Arc::clone(&ev.source),
                offset: ev.offset,
                end_offset: ev.end_offset,
            };
            push_or_report(packer, &self.buf, token, obs);
            return;
        }
        // Too big for one record: cut the line so each piece's encoding fits for sure.
        let overhead = encoded_len_bound(0, file.len(), self.stream_label.len(), kube.len());
        let per_byte_worst = encoded_len_bound(1, 0, 0, 0) - encoded_len_bound(0, 0, 0, 0) + 2;
        let piece_bytes = (max_event.saturating_sub(overhead) / per_byte_worst).max(64);
        let pieces = split_line(&ev.bytes, piece_bytes);
        match self.oversize {
            OversizeMode::Truncate => {
                obs.metrics.events_truncated.inc();
                let kept = pieces.first().copied().unwrap_or_default();
                let mut line = kept.to_vec();
                line.extend_from_slice(
                    format!(
                        " [firetail: truncated {} bytes]",
                        ev.bytes.len() - kept.len()
                    )
                    .as_bytes(),
                );
                tracing::warn!(
                    file = %file,
                    offset = ev.offset,
                    line_bytes = ev.bytes.len(),
                    kept_bytes = kept.len(),
                    "line too long for one record, truncated as configured"
                );
                self.buf.clear();
                let truncated = EventRef {
                    line: &line,
                    ..whole
                };
                encode(&truncated, &self.stream_label, &kube, &mut self.buf);
                let token = Token::Whole {
                    source: Arc::clone(&ev.source),
                    offset: ev.offset,
                    end_offset: ev.end_offset,
                };
                push_or_report(packer, &self.buf, token, obs);
                if ev.part.is_some_and(|p| p.last) {
                    self.renumber.remove(&key);
                }
            }
            OversizeMode::Split => {
                obs.metrics.events_split.inc();
                let n = u32::try_from(pieces.len()).unwrap_or(u32::MAX);
                let group = Arc::new(SplitGroup {
                    remaining: AtomicU32::new(n),
                    source: Arc::clone(&ev.source),
                    offset: ev.offset,
                    end_offset: ev.end_offset,
                });
                let base = engine_part.map_or(0, |p| p.index);
                let line_ends_here = ev.part.is_none_or(|p| p.last);
                for (j, piece) in pieces.iter().enumerate() {
                    let j = u32::try_from(j).unwrap_or(u32::MAX);
                    let part = PartMark {
                        index: base + j,
                        last: line_ends_here && j + 1 == n,
                    };
                    self.buf.clear();
                    let ev_piece = EventRef {
                        line: piece,
                        part: Some(part),
                        ..whole
                    };
                    encode(&ev_piece, &self.stream_label, &kube, &mut self.buf);
                    push_or_report(packer, &self.buf, Token::Piece(Arc::clone(&group)), obs);
                }
                if line_ends_here {
                    self.renumber.remove(&key);
                } else {
                    let entry = self
                        .renumber
                        .entry(key)
                        .or_insert_with(|| (Arc::clone(&ev.source), 0));
                    entry.1 += n - 1;
                }
            }
        }
    }
}

/// Packs one encoded event. The piece sizes above make a refusal impossible unless the pod
/// metadata alone nearly fills a record; then the event is not acknowledged (its file keeps it,
/// and the checkpoint stops there), which is reported loudly rather than skipped.
fn push_or_report(packer: &mut Packer<Token>, event: &[u8], token: Token, obs: &Observability) {
    if !packer.push(event, token) {
        obs.metrics.failure("EventTooLarge");
        tracing::error!(
            event_bytes = event.len(),
            max_event_bytes = packer.max_event_bytes(),
            "encoded event cannot fit a record even after splitting; not sent, checkpoint held"
        );
    }
}

/// Runs the shipper until `shutdown` completes, then drains: reads what is left (per
/// `--drain`), sends it, waits for acknowledgements and lets the engine write its final
/// checkpoints, all within `--drain-timeout-secs`.
pub async fn run<S: Sink>(
    config: RunConfig,
    sink: S,
    shutdown: impl Future<Output = ()>,
) -> Result<RunReport, RunError> {
    let RunConfig {
        ship,
        tail: tail_config,
        pod,
        obs,
        limits,
        kube,
    } = config;
    let pod_key = pod.namespace.clone().zip(pod.pod_name.clone());
    let kube = kube.zip(pod_key);
    // The engine stops reading at its in-flight budget (file bytes). Sending once half of it
    // is packed (encoded bytes, never fewer than the file bytes) means a full budget is always
    // on its way to Firehose rather than waiting for the flush tick.
    let inflight_budget = tail_config.max_inflight_bytes;
    let flush_threshold = usize::try_from(inflight_budget / 2).unwrap_or(usize::MAX);
    let (handle, mut events) = tail::start(tail_config)?;
    let acker = handle.acker();
    let sink = Arc::new(sink);
    let format = RecordFormat::from(ship.record_format);
    // Each call in flight holds its data about three times (our copy, the SDK's, the base64
    // body). Spreading the in-flight budget over the concurrent calls, instead of 4 MiB each,
    // keeps memory near the budget; a call still takes at least one full record.
    let per_call = usize::try_from(inflight_budget).unwrap_or(usize::MAX)
        / ship.max_concurrent_requests.max(1);
    let limits = Limits {
        batch_bytes: limits.batch_bytes.min(per_call.max(limits.record_bytes)),
        ..limits
    };
    let mut packer: Packer<Token> = Packer::new(format, limits);
    let mut encoder = Encoder {
        enricher: Enricher::new(pod),
        stream_label: ship.stream_label.clone(),
        oversize: ship.oversize,
        renumber: HashMap::new(),
        last_file: None,
        buf: Vec::with_capacity(4096),
    };
    // The engine's counters as last published to /metrics.
    let mut published_tail = crate::tail::TailStats::default();
    let policy = ship.send_policy();
    let permits = Arc::new(Semaphore::new(ship.max_concurrent_requests));
    let mut senders: JoinSet<()> = JoinSet::new();
    let mut flush = tokio::time::interval(Duration::from_millis(ship.flush_interval_ms));
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(Duration::from_secs(ship.podinfo_refresh_secs.max(1)));
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    refresh.tick().await;
    let (containers_tx, mut containers_rx) = tokio::sync::watch::channel(None);
    let watcher = kube.clone().map(|(client, (ns, name))| {
        tokio::spawn(watch_containers(
            client,
            ns,
            name,
            refresh.period(),
            containers_tx,
        ))
    });
    obs.health.set_started();
    tracing::info!(
        format = format.as_str(),
        concurrency = ship.max_concurrent_requests,
        "firetail started"
    );

    let mut events_received = 0u64;
    let mut handle = Some(handle);
    let mut drain_task: Option<tokio::task::JoinHandle<(DrainMode, DrainReport)>> = None;
    tokio::pin!(shutdown);
    // Phase 1 (running) and 2 (draining, until the engine ends the stream).
    loop {
        tokio::select! {
            batch = events.recv_batch() => {
                let Some(batch) = batch else { break };
                for ev in batch {
                    events_received += 1;
                    obs.metrics.events_read.inc();
                    obs.metrics.bytes_read.inc_by(ev.bytes.len() as u64);
                    encoder.push(ev, &mut packer, &obs);
                }
                if packer.pending_raw_bytes() >= flush_threshold {
                    packer.flush();
                }
            }
            _ = flush.tick() => {
                packer.flush();
                if let Some(h) = handle.as_ref() {
                    let stats = h.stats();
                    obs.metrics.observe_tail(&stats, &published_tail);
                    published_tail = stats;
                }
            }
            _ = refresh.tick() => {
                let (fresh, _) = PodInfo::from_downward_api(|_| None, &ship.podinfo_dir);
                let mut info = encoder.enricher.info().clone();
                if !fresh.labels.is_empty() || !fresh.annotations.is_empty() {
                    info.labels = fresh.labels;
                    info.annotations = fresh.annotations;
                    if encoder.enricher.update(info) {
                        tracing::info!("pod labels or annotations changed");
                    }
                }
            }
            Ok(()) = containers_rx.changed() => {
                let latest = containers_rx.borrow_and_update().clone();
                if let Some(lookup) = latest
                    && encoder.enricher.set_lookup(lookup)
                {
                    tracing::info!("container ids, images or owners changed");
                }
            }
            () = &mut shutdown, if drain_task.is_none() => {
                if let Some(h) = handle.take() {
                    let ship = ship.clone();
                    let kube = kube.clone();
                    // The drain timeout counts from SIGTERM, lookup included.
                    let signalled = Instant::now();
                    drain_task = Some(tokio::spawn(async move {
                        let apps_done = match &kube {
                            Some((client, (ns, name))) => app_containers_done(client, ns, name, &ship.self_container).await,
                            None => false,
                        };
                        let mode = drain_mode(&ship, apps_done, signalled);
                        tracing::info!(mode = ?mode, apps_done, "shutdown requested, draining");
                        (mode, h.drain(mode).await)
                    }));
                }
            }
            Some(joined) = senders.join_next(), if !senders.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "a send task failed; its events will be read again after restart");
                }
            }
        }
        while let Some(batch) = packer.take_ready() {
            spawn_send(&mut senders, &sink, &permits, &policy, &obs, &acker, batch);
        }
    }
    // The stream ended: everything read is packed; send the rest.
    packer.flush();
    while let Some(batch) = packer.take_ready() {
        spawn_send(&mut senders, &sink, &permits, &policy, &obs, &acker, batch);
    }
    // Phase 3: the engine waits for our acks (until its deadline), then checkpoints. The
    // senders are tasks of their own, so they keep delivering meanwhile.
    let failed = DrainReport {
        end: DrainEnd::Stopped,
        events_emitted: events_received,
        bytes_read: 0,
        unacked_bytes: 0,
        checkpoint_saved: false,
    };
    let (drain_mode, drain) = match (drain_task, handle.take()) {
        (Some(task), _) => match task.await {
            Ok((mode, report)) => (Some(mode), report),
            Err(err) => {
                tracing::error!(error = %err, "drain task failed");
                (None, failed)
            }
        },
        // The stream ended without a shutdown: the engine thread stopped on its own.
        (None, Some(h)) => {
            let mode = drain_mode(&ship, false, Instant::now());
            (Some(mode), h.drain(mode).await)
        }
        (None, None) => (None, failed),
    };
    if let Some(w) = watcher {
        w.abort();
    }
    let abandoned_batches = senders.len();
    senders.abort_all();
    while senders.join_next().await.is_some() {}
    if drain.unacked_bytes > 0 || drain.end != DrainEnd::AllRead {
        tracing::error!(
            end = ?drain.end,
            unacked_bytes = drain.unacked_bytes,
            abandoned_batches,
            checkpoint_saved = drain.checkpoint_saved,
            "drain ended before everything was delivered; what is left stays in the files"
        );
    } else {
        tracing::info!(
            events = events_received,
            bytes_read = drain.bytes_read,
            checkpoint_saved = drain.checkpoint_saved,
            "drained; everything read was delivered"
        );
    }
    Ok(RunReport {
        drain,
        drain_mode,
        events_received,
        abandoned_batches,
    })
}

/// The drain mode for `--drain`; `apps_done` says the Kubernetes API reported every app
/// container terminated (so nothing more will be written).
fn drain_mode(ship: &ShipArgs, apps_done: bool, now: Instant) -> DrainMode {
    let deadline = now + Duration::from_secs(ship.drain_timeout_secs);
    match ship.drain {
        DrainArg::Eof => DrainMode::ReadToEof { deadline },
        DrainArg::Auto if apps_done => DrainMode::ReadToEof { deadline },
        // Without a signal that the app containers are gone, waiting for quiet files is the
        // safe choice: it also ends at EOF as soon as nothing grows any more.
        DrainArg::Auto | DrainArg::Quiet => DrainMode::Quiet {
            quiet: Duration::from_millis(ship.drain_quiet_ms),
            deadline,
        },
    }
}

/// Asks the API whether the app containers have exited; any failure means "don't know".
async fn app_containers_done(client: &KubeClient, ns: &str, name: &str, own: &str) -> bool {
    match client.get_pod(ns, name).await {
        Ok(pod) => pod.app_containers_done(own),
        Err(error) => {
            tracing::info!(%error, "cannot read the pod at shutdown; waiting for quiet files");
            false
        }
    }
}

/// Publishes container ids and images at start and every `period`. A failed lookup (no RBAC
/// permission, API unreachable) is logged once per kind of failure and leaves the fields out.
async fn watch_containers(
    client: KubeClient,
    ns: String,
    name: String,
    period: Duration,
    tx: tokio::sync::watch::Sender<Option<PodLookup>>,
) {
    let mut last_error = String::new();
    loop {
        match client.get_pod(&ns, &name).await {
            Ok(pod) => {
                last_error.clear();
                let lookup = pod.lookup();
                tx.send_if_modified(|slot| {
                    if slot.as_ref() == Some(&lookup) {
                        false
                    } else {
                        *slot = Some(lookup);
                        true
                    }
                });
            }
            Err(error) => {
                let text = error.to_string();
                if text != last_error {
                    tracing::info!(%error, "pod lookup failed; docker_id, container_image and ownerReferences omitted");
                    last_error = text;
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}

fn spawn_send<S: Sink>(
    senders: &mut JoinSet<()>,
    sink: &Arc<S>,
    permits: &Arc<Semaphore>,
    policy: &crate::send::SendPolicy,
    obs: &Arc<Observability>,
    acker: &Acker,
    batch: crate::pack::Batch<Token>,
) {
    let sink = Arc::clone(sink);
    let permits = Arc::clone(permits);
    let policy = *policy;
    let obs = Arc::clone(obs);
    let acker = acker.clone();
    senders.spawn(async move {
        let Ok(_permit) = permits.acquire_owned().await else {
            return;
        };
        send_batch(sink.as_ref(), batch, &policy, &obs, |record| {
            for token in &record.tokens {
                token.ack(&acker);
            }
        })
        .await;
    });
}

/// Reads the Downward API from the process environment and `dir`, logging what was missing.
pub fn pod_info_from_env(dir: &Path) -> PodInfo {
    let (info, notes) = PodInfo::from_downward_api(|k| std::env::var(k).ok(), dir);
    for note in notes {
        tracing::info!(missing = %note, "Downward API file not available; field omitted");
    }
    info
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tail::Part;
    use std::time::SystemTime;

    fn encoder(oversize: OversizeMode) -> Encoder {
        Encoder {
            enricher: Enricher::new(PodInfo::default()),
            stream_label: "file".into(),
            oversize,
            renumber: HashMap::new(),
            last_file: None,
            buf: Vec::new(),
        }
    }

    fn event(
        source: &Arc<SourceFile>,
        bytes: Vec<u8>,
        offset: u64,
        part: Option<Part>,
    ) -> LogEvent {
        let end_offset = offset + bytes.len() as u64 + u64::from(part.is_none_or(|p| p.last));
        LogEvent {
            source: Arc::clone(source),
            bytes,
            offset,
            end_offset,
            read_time: SystemTime::UNIX_EPOCH,
            part,
        }
    }

    fn limits() -> Limits {
        Limits {
            record_bytes: 4096,
            batch_records: 500,
            batch_bytes: 1 << 20,
            ndjson_events: 500,
        }
    }

    /// (log, part) of every event the packer holds, in order.
    fn packed(packer: &mut Packer<Token>) -> Vec<(String, Option<(u64, bool)>)> {
        packer.flush();
        let mut out = Vec::new();
        while let Some(batch) = packer.take_ready() {
            for record in batch.records {
                for line in record.data.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    let part = v
                        .get("part")
                        .map(|p| (p["index"].as_u64().unwrap(), p["last"].as_bool().unwrap()));
                    out.push((v["log"].as_str().unwrap().to_owned(), part));
                }
            }
        }
        out
    }

    #[test]
    fn engine_parts_split_again_are_renumbered_contiguously() {
        let obs = Observability::default();
        let mut enc = encoder(OversizeMode::Split);
        let mut packer = Packer::new(RecordFormat::Ndjson, limits());
        let src = SourceFile::detached("/logs/app/a.log", "app");
        let other = SourceFile::detached("/logs/app/b.log", "app");
        // An engine-split line of three pieces; the middle one is too big for a 4 KiB record.
        let p0 = "a".repeat(100);
        let p1 = "b".repeat(10_000);
        let p2 = "c".repeat(100);
        enc.push(
            event(
                &src,
                p0.clone().into_bytes(),
                0,
                Some(Part {
                    index: 0,
                    last: false,
                }),
            ),
            &mut packer,
            &obs,
        );
        // Another file's line in between must not disturb the numbering.
        enc.push(event(&other, b"other".to_vec(), 0, None), &mut packer, &obs);
        enc.push(
            event(
                &src,
                p1.clone().into_bytes(),
                100,
                Some(Part {
                    index: 1,
                    last: false,
                }),
            ),
            &mut packer,
            &obs,
        );
        enc.push(
            event(
                &src,
                p2.clone().into_bytes(),
                10_100,
                Some(Part {
                    index: 2,
                    last: true,
                }),
            ),
            &mut packer,
            &obs,
        );
        // The next line of the same file starts fresh.
        enc.push(
            event(&src, b"next".to_vec(), 10_201, None),
            &mut packer,
            &obs,
        );

        let events = packed(&mut packer);
        let parts: Vec<&(String, Option<(u64, bool)>)> =
            events.iter().filter(|e| e.1.is_some()).collect();
        let indexes: Vec<u64> = parts.iter().map(|e| e.1.unwrap().0).collect();
        assert_eq!(indexes, (0..indexes.len() as u64).collect::<Vec<_>>());
        assert!(indexes.len() > 3, "the middle piece was split again");
        let lasts: Vec<bool> = parts.iter().map(|e| e.1.unwrap().1).collect();
        assert_eq!(lasts.iter().filter(|l| **l).count(), 1);
        assert_eq!(lasts.last(), Some(&true));
        let joined: String = parts.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(joined, format!("{p0}{p1}{p2}"));
        assert!(events.contains(&("other".to_owned(), None)));
        assert_eq!(events.last(), Some(&("next".to_owned(), None)));
        assert!(enc.renumber.is_empty());
        assert_eq!(obs.metrics.events_split.get(), 1);
    }

    #[test]
    fn truncate_mode_keeps_a_prefix_with_a_marker() {
        let obs = Observability::default();
        let mut enc = encoder(OversizeMode::Truncate);
        let mut packer = Packer::new(RecordFormat::NdjsonGzip, limits());
        let src = SourceFile::detached("/logs/app/a.log", "app");
        let line = "x".repeat(50_000);
        enc.push(event(&src, line.into_bytes(), 0, None), &mut packer, &obs);
        packer.flush();
        let batch = packer.take_ready().unwrap();
        assert_eq!(batch.events(), 1);
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::GzDecoder::new(&batch.records[0].data[..]),
            &mut text,
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(text.trim_end()).unwrap();
        let log = v["log"].as_str().unwrap();
        assert!(log.starts_with("xxx"));
        let kept = log.find(' ').unwrap();
        assert!(
            log.ends_with(&format!(" [firetail: truncated {} bytes]", 50_000 - kept)),
            "{log}"
        );
        assert!(v.get("part").is_none());
        assert_eq!(obs.metrics.events_truncated.get(), 1);
    }
}
