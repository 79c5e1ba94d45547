//! The stdout source: the app containers' stdout/stderr, followed through the Kubernetes API
//! (`GET /api/v1/namespaces/{ns}/pods/{pod}/log?container=C&follow=true&timestamps=true`)
//! beside the files, through the same multiline joining, enrichment, packing, sending,
//! acknowledgement and checkpoints ([docs/stdout.md](../../../docs/stdout.md)).
//!
//! Each line's kubelet timestamp is its event's `time`; its `stream` is `stdout` (the API
//! merges a container's stdout and stderr into one stream); its `file` is `k8s://{container}`.
//!
//! # Layout
//! - [`stamp`]: the kubelet's RFC3339Nano prefix (trimmed fractions) and `sinceTime`.
//! - [`resume`]: positions (timestamp + lines at it), the skip of a resumed stream, and the
//!   [`resume::Ledger`] of acknowledgements in any order → the acknowledged prefix.
//! - [`checkpoint`]: the source's own versioned checkpoint file (tmp + fsync + rename).
//! - `follow`: one task per container (the I/O shell): polls the pod for the container's
//!   instance (`restartCount`, `containerID`), follows its log, reads a previous instance's
//!   tail with `previous=true`, backs off on errors, stops at its share of the budget.
//! - [`StdoutSource`]: starts the followers and the checkpoint writer, drains on SIGTERM.
//!
//! Pure core (stamp, resume, checkpoint encoding) and a thin shell (follow, this module).

pub mod checkpoint;
mod follow;
pub mod resume;
pub mod stamp;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use firetail_tail::{ExternalAck, LogEvent, MultilineConfig};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinSet;

use crate::metrics::Observability;
use crate::pod::watch::ApiSource;
use resume::Ledger;

/// The `stream` field of the source's events.
pub const STREAM: &str = "stdout";

/// The `file` field of the source's events from `container`.
pub fn source_path(container: &str) -> String {
    format!("k8s://{container}")
}

/// Which containers the source follows (`FIRETAIL_STDOUT_CONTAINERS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// None: the source is off.
    #[default]
    Off,
    /// Every regular (app) container of the pod except this one (`--self-container`).
    All,
    /// These containers.
    Names(Vec<String>),
}

impl FromStr for Selection {
    type Err = std::convert::Infallible;

    /// `""` (off), `all`, or a comma-separated list of container names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let names: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        Ok(match names.as_slice() {
            [] => Self::Off,
            [all] if all == "all" => Self::All,
            _ => Self::Names(names),
        })
    }
}

/// The source's settings (flags `--stdout-containers`, `--stdout-*-ms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdoutSettings {
    /// Which containers.
    pub containers: Selection,
    /// First retry delay after an error (doubled per failure, with jitter).
    pub retry_base: Duration,
    /// Longest retry delay; also the pace of retries while RBAC denies `pods/log`.
    pub retry_max: Duration,
    /// How often the pod is looked at while a container waits to start or restart.
    pub poll_interval: Duration,
    /// A follow stream that delivered nothing for this long is closed and reopened from the
    /// last line read (`sinceTime` + skip, so nothing is read twice): the API sends no
    /// heartbeat, so a half-dead connection looks like a quiet container and would otherwise
    /// stall that container's logs until the drain.
    pub idle_reconnect: Duration,
}

impl Default for StdoutSettings {
    fn default() -> Self {
        Self {
            containers: Selection::Off,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(30),
            poll_interval: Duration::from_secs(2),
            idle_reconnect: Duration::from_secs(300),
        }
    }
}

/// Everything the source needs at start ([`crate::run::run`] builds it).
#[derive(Debug, Clone)]
pub struct StdoutConfig {
    /// The settings.
    pub settings: StdoutSettings,
    /// Unacknowledged bytes all streams may hold together, shared equally between them.
    pub budget_bytes: u64,
    /// Lines longer than this become pieces (`part`), as in files.
    pub max_line_bytes: usize,
    /// The files' multiline joining, applied per container.
    pub multiline: Option<MultilineConfig>,
    /// Where the checkpoint lives (the engine's data directory).
    pub data_dir: PathBuf,
    /// How often the checkpoint is written when it changed.
    pub checkpoint_interval: Duration,
    /// This container, left out of `all`.
    pub self_container: String,
}

/// What a drain left in one container's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLeft {
    /// The container.
    pub container: String,
    /// Bytes read and not acknowledged.
    pub unacked_bytes: u64,
    /// Whether the stream was not read to its end (the container still ran, or the API could
    /// not be reached, when the deadline came).
    pub unfinished: bool,
}

/// What the source's drain left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdoutReport {
    /// Streams with something left (nothing left: not listed).
    pub streams_left: Vec<StreamLeft>,
    /// Whether the final checkpoint was written.
    pub checkpoint_saved: bool,
}

/// State shared by the followers, the acknowledgements and the checkpoint writer.
#[derive(Debug, Default)]
struct Shared {
    /// Unacknowledged bytes of every stream.
    inflight: Arc<AtomicU64>,
    /// Bytes of unfinished lines and multiline groups the followers hold.
    buffered: AtomicU64,
    /// Woken by acknowledgements.
    acked: Arc<Notify>,
    /// The current instance of each followed container.
    current: Mutex<BTreeMap<String, Arc<StreamAck>>>,
    /// Container ids of instances that started being read, not yet told to the run loop.
    new_ids: Mutex<HashMap<String, String>>,
    /// Followers running (the budget's divisor).
    streams: AtomicUsize,
    budget: u64,
}

impl Shared {
    fn share(&self) -> u64 {
        self.budget / self.streams.load(Ordering::Relaxed).max(1) as u64
    }
}

/// One container instance as the checkpoint knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Instance {
    container_id: Option<String>,
    restart_count: u32,
}

/// The acknowledgements of one container instance's stream.
#[derive(Debug)]
struct StreamAck {
    container: String,
    instance: Instance,
    ledger: Mutex<Ledger>,
    inflight: Arc<AtomicU64>,
    acked: Arc<Notify>,
}

impl StreamAck {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn entry(&self) -> checkpoint::Entry {
        let acked = self.ledger().acked();
        checkpoint::Entry {
            container: self.container.clone(),
            container_id: self.instance.container_id.clone(),
            restart_count: self.instance.restart_count,
            time: acked.map(|p| p.stamp.rfc3339_nano()),
            count: acked.map_or(0, |p| p.count),
        }
    }
}

impl ExternalAck for StreamAck {
    fn ack(&self, offset: u64, end_offset: u64) {
        let freed = self.ledger().ack(offset, end_offset);
        if freed > 0 {
            self.inflight.fetch_sub(freed, Ordering::SeqCst);
            self.acked.notify_waiters();
        }
    }
}

/// Reads the source's gauges.
#[derive(Debug, Clone)]
pub struct StdoutProbe {
    shared: Arc<Shared>,
}

impl StdoutProbe {
    /// Unacknowledged bytes (counted in `firetail_in_flight_bytes`).
    pub fn inflight_bytes(&self) -> u64 {
        self.shared.inflight.load(Ordering::SeqCst)
    }

    /// Held unfinished lines and multiline groups (counted in `firetail_buffered_bytes`).
    pub fn buffered_bytes(&self) -> u64 {
        self.shared.buffered.load(Ordering::Relaxed)
    }
}

/// The running source.
#[derive(Debug)]
pub struct StdoutSource {
    shared: Arc<Shared>,
    drain: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<StdoutReport>,
}

impl StdoutSource {
    /// Starts following for `api`'s pod; events arrive on the receiver, which ends once every
    /// follower stopped (after a drain).
    pub fn start(
        config: StdoutConfig,
        api: ApiSource,
        obs: Arc<Observability>,
    ) -> (Self, mpsc::Receiver<Vec<LogEvent>>) {
        let shared = Arc::new(Shared {
            budget: config.budget_bytes,
            ..Shared::default()
        });
        let (tx, rx) = mpsc::channel(16);
        let (drain, drain_rx) = watch::channel(None);
        let ctx = Arc::new(follow::Ctx {
            api,
            obs,
            shared: Arc::clone(&shared),
            settings: config.settings.clone(),
            max_line_bytes: config.max_line_bytes.max(1),
            multiline: config.multiline.clone(),
        });
        let task = tokio::spawn(supervise(config, ctx, tx, drain_rx));
        (
            Self {
                shared,
                drain,
                task,
            },
            rx,
        )
    }

    /// A reader of the gauges.
    pub fn probe(&self) -> StdoutProbe {
        StdoutProbe {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Container ids of instances that started being read since the last call: the run loop
    /// gives them to the enricher before the instance's first event.
    pub fn take_new_ids(&self) -> HashMap<String, String> {
        std::mem::take(
            &mut *self
                .shared
                .new_ids
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Starts the drain: each stream is read to its end (the API ends it when the container
    /// has exited), until `deadline`.
    pub fn drain(&self, deadline: Instant) {
        let _ = self.drain.send(Some(deadline));
    }

    /// Waits until the drain is over (reading, then acknowledgements, until the deadline) and
    /// the final checkpoint was written.
    pub async fn finish(self) -> StdoutReport {
        match self.task.await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(%error, "stdout source task failed");
                StdoutReport::default()
            }
        }
    }
}

/// The checkpoint entries: the current instance of each followed container, and what was
/// loaded for containers not (yet) followed again.
fn entries(
    shared: &Shared,
    loaded: &BTreeMap<String, checkpoint::Entry>,
) -> Vec<checkpoint::Entry> {
    let mut out = loaded.clone();
    for (name, ack) in shared
        .current
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
    {
        out.insert(name.clone(), ack.entry());
    }
    out.into_values().collect()
}

async fn supervise(
    config: StdoutConfig,
    ctx: Arc<follow::Ctx>,
    tx: mpsc::Sender<Vec<LogEvent>>,
    mut drain: watch::Receiver<Option<Instant>>,
) -> StdoutReport {
    let loaded = checkpoint::load(&config.data_dir).unwrap_or_else(|error| {
        ctx.obs.metrics.stdout_error("checkpoint_load");
        tracing::warn!(%error, "stdout checkpoint unreadable; streams are read from the start of their current instance");
        BTreeMap::new()
    });
    let names = match &config.settings.containers {
        Selection::Off => Vec::new(),
        Selection::Names(names) => names.clone(),
        Selection::All => {
            let mut backoff = follow::Backoff::new(&config.settings);
            loop {
                match ctx
                    .api
                    .client
                    .get_pod(&ctx.api.namespace, &ctx.api.name)
                    .await
                {
                    Ok(pod) => break pod.app_container_names(&config.self_container),
                    Err(error) => {
                        ctx.obs.metrics.stdout_error("pod");
                        tracing::warn!(%error, "cannot list the pod's containers for FIRETAIL_STDOUT_CONTAINERS=all; retrying");
                    }
                }
                if drain.borrow().is_some() {
                    return StdoutReport::default();
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff.next(None)) => {}
                    _ = drain.changed() => {}
                }
            }
        }
    };
    tracing::info!(containers = ?names, "following container logs through the Kubernetes API");
    ctx.shared.streams.store(names.len(), Ordering::Relaxed);
    let mut followers = JoinSet::new();
    for name in &names {
        let follower =
            follow::Follower::new(Arc::clone(&ctx), name.clone(), tx.clone(), drain.clone());
        followers.spawn(follower.run(loaded.get(name).cloned()));
    }
    drop(tx);
    let mut ticker =
        tokio::time::interval(config.checkpoint_interval.max(Duration::from_millis(50)));
    let mut last_saved = Vec::new();
    let mut save = |final_save: bool| -> bool {
        let now = entries(&ctx.shared, &loaded);
        let bytes = checkpoint::encode(&now);
        if bytes == last_saved && !final_save {
            return true;
        }
        match checkpoint::save(&config.data_dir, &now) {
            Ok(()) => {
                last_saved = bytes;
                true
            }
            Err(error) => {
                ctx.obs.metrics.stdout_error("checkpoint_write");
                tracing::warn!(%error, dir = %config.data_dir.display(), "cannot write the stdout checkpoint");
                false
            }
        }
    };
    let mut unfinished = Vec::new();
    loop {
        tokio::select! {
            joined = followers.join_next() => match joined {
                Some(Ok(left)) => {
                    if left.unfinished {
                        unfinished.push(left.container);
                    }
                }
                Some(Err(error)) => tracing::error!(%error, "a stdout follower failed"),
                None => break,
            },
            _ = ticker.tick() => {
                save(false);
            }
        }
    }
    // Every stream was read as far as it goes: wait for the acknowledgements.
    let deadline = *drain.borrow();
    while ctx.shared.inflight.load(Ordering::SeqCst) > 0 {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        tokio::select! {
            () = ctx.shared.acked.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = ticker.tick() => {
                save(false);
            }
        }
    }
    let checkpoint_saved = save(true);
    let current = ctx
        .shared
        .current
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut streams_left = Vec::new();
    for name in &names {
        let unacked_bytes = current.get(name).map_or(0, |a| a.ledger().unacked_bytes());
        let unfinished = unfinished.contains(name);
        if unacked_bytes > 0 || unfinished {
            streams_left.push(StreamLeft {
                container: name.clone(),
                unacked_bytes,
                unfinished,
            });
        }
    }
    StdoutReport {
        streams_left,
        checkpoint_saved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_parses_off_all_and_lists() {
        assert_eq!("".parse::<Selection>(), Ok(Selection::Off));
        assert_eq!(" , ".parse::<Selection>(), Ok(Selection::Off));
        assert_eq!("all".parse::<Selection>(), Ok(Selection::All));
        assert_eq!(
            "app, worker".parse::<Selection>(),
            Ok(Selection::Names(vec!["app".into(), "worker".into()]))
        );
        assert_eq!(source_path("app"), "k8s://app");
    }
}
