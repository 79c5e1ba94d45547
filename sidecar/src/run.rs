//! The shipper's run loop: engine events in, acknowledged Firehose records out.
//!
//! # Layout
//! - [`RunConfig`]: everything [`run`] needs.
//! - [`run`]: starts the engine and the pod watcher, encodes and packs events, hands full
//!   batches to the `Shipper`, and drains when `shutdown` completes.
//! - `Shipper`: sends batches on concurrent tasks through the Firehose client and
//!   acknowledges each record's events as soon as it is accepted.
//! - [`RunReport`]: what happened, for the binary's exit status and for tests; its
//!   [`DrainOutcome`] is also logged per file and recorded in the metrics.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use firetail_firehose::{Batch, FirehoseClient, RetryPolicy, deliver};
use firetail_tail::{self as tail, Acker, DrainEnd, DrainMode, DrainReport, TailConfig};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::config::ShipConfig;
use crate::drain::DrainOutcome;
use crate::encode::{Encoder, Token};
use crate::metrics::Observability;
use crate::pack::{Limits, Packer};
use crate::pod::PodInfo;
use crate::pod::api::KubeClient;
use crate::pod::watch::{self, ApiSource};
use crate::stdout::{self as stdout_source, StdoutConfig, StdoutSource};

/// Everything [`run`] needs.
#[derive(Debug)]
pub struct RunConfig {
    /// Shipping settings.
    pub ship: ShipConfig,
    /// Engine settings.
    pub tail: TailConfig,
    /// Pod metadata at start (re-read every `ship.podinfo_refresh`).
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
    /// What the drain left, per file; decides the exit status.
    pub outcome: DrainOutcome,
}

/// Looks the pod up before the first event of a container whose id is not known yet, so that
/// event already carries `container_id`: a native sidecar starts before the app containers,
/// whose ids appear only once they run, and the periodic refresh would leave the first
/// minute of every app container's logs without it. One lookup per container, then not again
/// for [`ID_RETRY`] if the API did not know the id either (or did not answer).
#[derive(Debug, Default)]
struct IdLookups {
    tried: std::collections::HashMap<String, Instant>,
}

/// How long a container whose id the API did not give is not looked up again inline (the
/// periodic refresh still runs).
const ID_RETRY: std::time::Duration = std::time::Duration::from_secs(30);

impl IdLookups {
    async fn before(&mut self, container: &str, api: &ApiSource, encoder: &mut Encoder) {
        if container.is_empty() || encoder.enricher.knows_container_id(container) {
            return;
        }
        if self
            .tried
            .get(container)
            .is_some_and(|at| at.elapsed() < ID_RETRY)
        {
            return;
        }
        self.tried.insert(container.to_owned(), Instant::now());
        match api.client.get_pod(&api.namespace, &api.name).await {
            Ok(pod) => {
                let info = encoder.enricher.info().clone().with_lookup(pod.lookup());
                if encoder.enricher.update(info) {
                    tracing::info!(container, "container ids looked up for a new container");
                }
            }
            Err(error) => {
                tracing::info!(%error, container, "pod lookup for a new container failed; its container_id is omitted for now");
            }
        }
    }
}

/// Sends batches on their own tasks, at most `permits` at once, retrying forever.
struct Shipper<C> {
    client: Arc<C>,
    stream: Arc<str>,
    permits: Arc<Semaphore>,
    policy: RetryPolicy,
    obs: Arc<Observability>,
    acker: Acker,
    tasks: JoinSet<()>,
}

impl<C: FirehoseClient + 'static> Shipper<C> {
    fn send(&mut self, batch: Batch<Token>) {
        let client = Arc::clone(&self.client);
        let stream = Arc::clone(&self.stream);
        let permits = Arc::clone(&self.permits);
        let policy = self.policy;
        let obs = Arc::clone(&self.obs);
        let acker = self.acker.clone();
        self.tasks.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            deliver(
                client.as_ref(),
                &stream,
                batch,
                &policy,
                obs.as_ref(),
                |record| {
                    for token in &record.tokens {
                        token.ack(&acker);
                    }
                },
            )
            .await;
        });
    }

    fn send_ready(&mut self, packer: &mut Packer<Token>) {
        while let Some(batch) = packer.take_ready() {
            self.send(batch);
        }
    }
}

/// The next batch of the stdout source (never ready without one).
async fn recv_stdout(
    rx: &mut Option<tokio::sync::mpsc::Receiver<Vec<tail::LogEvent>>>,
) -> Option<Vec<tail::LogEvent>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the shipper until `shutdown` completes, then drains: reads what is left (per the
/// drain policy), sends it, waits for acknowledgements and lets the engine write its final
/// checkpoints, all within the drain timeout.
pub async fn run<C: FirehoseClient + 'static>(
    config: RunConfig,
    client: C,
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
    let api = kube
        .zip(pod.namespace.clone().zip(pod.pod_name.clone()))
        .map(|(client, (namespace, name))| ApiSource {
            client,
            namespace,
            name,
        });
    let mut tail_config = tail_config;
    // The stdout source needs the API; it is off without it (said once, loudly).
    let stdout_on = ship.stdout.containers != stdout_source::Selection::Off;
    if stdout_on && api.is_none() {
        tracing::error!(
            "FIRETAIL_STDOUT_CONTAINERS is set but there is no Kubernetes API client (no API address, token, POD_NAME or POD_NAMESPACE); container logs are NOT followed"
        );
    }
    let stdout_api = api.clone().filter(|_| stdout_on);
    // The engine stops reading at its in-flight budget (file bytes). Sending once half of it
    // is packed (encoded bytes, never fewer than the file bytes) means a full budget is always
    // on its way to Firehose rather than waiting for the flush tick.
    let inflight_budget = tail_config.max_inflight_bytes;
    // With the stdout source on, the files get half of the budget and the streams share the
    // other half, so both together stay within it.
    let stdout_budget = if stdout_api.is_some() {
        let half = inflight_budget / 2;
        tail_config.max_inflight_bytes = inflight_budget - half;
        half
    } else {
        0
    };
    let stdout_config = StdoutConfig {
        settings: ship.stdout.clone(),
        budget_bytes: stdout_budget,
        max_line_bytes: tail_config.max_line_bytes,
        multiline: tail_config.multiline.clone(),
        data_dir: tail_config.data_dir.clone(),
        checkpoint_interval: tail_config.checkpoint_interval,
        self_container: ship.self_container.clone(),
    };
    obs.metrics
        .memory_budget_bytes
        .set(i64::try_from(inflight_budget).unwrap_or(i64::MAX));
    let flush_threshold = usize::try_from(inflight_budget / 2).unwrap_or(usize::MAX);
    let emitter: Arc<dyn tail::TailEmitter> = obs.clone();
    let (handle, mut events) = tail::start_with(tail_config, emitter)?;
    let (stdout, mut stdout_events) = match stdout_api {
        Some(api) => {
            let (source, rx) = StdoutSource::start(stdout_config, api, Arc::clone(&obs));
            (Some(source), Some(rx))
        }
        None => (None, None),
    };
    let probe = handle.probe();
    let stdout_probe = stdout.as_ref().map(StdoutSource::probe);
    obs.set_gauge_source(Box::new(move || {
        let mut stats = probe.stats();
        if let Some(p) = &stdout_probe {
            stats.inflight_bytes += p.inflight_bytes();
            stats.buffered_bytes += p.buffered_bytes();
        }
        stats
    }));
    let stdout_label: Arc<str> = stdout_source::STREAM.into();
    // Each call in flight holds its data about three times (our copy, the SDK's, the base64
    // body). Spreading the in-flight budget over the concurrent calls, instead of 4 MiB each,
    // keeps memory near the budget; a call still takes at least one full record.
    let per_call = usize::try_from(inflight_budget).unwrap_or(usize::MAX)
        / ship.max_concurrent_requests.max(1);
    let limits = Limits {
        batch_bytes: limits.batch_bytes.min(per_call.max(limits.record_bytes)),
        ..limits
    };
    let mut packer: Packer<Token> =
        Packer::with_level(ship.record_format, limits, ship.compression_level);
    let mut encoder = Encoder::new(pod.clone(), &ship.stream_label, ship.oversize);
    let mut shipper = Shipper {
        client: Arc::new(client),
        stream: ship.delivery_stream.as_str().into(),
        permits: Arc::new(Semaphore::new(ship.max_concurrent_requests)),
        policy: ship.retry,
        obs: Arc::clone(&obs),
        acker: handle.acker(),
        tasks: JoinSet::new(),
    };
    let mut flush = tokio::time::interval(ship.flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut pod_updates, pod_watcher) = watch::spawn(
        pod,
        ship.podinfo_dir.clone(),
        api.clone(),
        ship.podinfo_refresh.max(std::time::Duration::from_secs(1)),
    );
    obs.health.set_started();
    tracing::info!(
        format = ship.record_format.as_str(),
        concurrency = ship.max_concurrent_requests,
        "firetail started"
    );

    let mut events_received = 0u64;
    let mut id_lookups = IdLookups::default();
    let mut handle = Some(handle);
    let mut drain_task: Option<tokio::task::JoinHandle<(DrainMode, DrainReport)>> = None;
    tokio::pin!(shutdown);
    let mut files_open = true;
    // Running, then draining, until the engine and the stdout source end their streams.
    while files_open || stdout_events.is_some() {
        tokio::select! {
            batch = events.recv_batch(), if files_open => {
                let Some(batch) = batch else {
                    files_open = false;
                    continue;
                };
                for ev in batch {
                    events_received += 1;
                    obs.metrics.events_read.inc();
                    obs.metrics.read_bytes.inc_by(ev.bytes.len() as u64);
                    if let Some(api) = &api {
                        id_lookups.before(&ev.source.container, api, &mut encoder).await;
                    }
                    encoder.push(ev, &mut packer, &obs);
                }
                if packer.pending_raw_bytes() >= flush_threshold {
                    packer.flush();
                }
            }
            batch = recv_stdout(&mut stdout_events), if stdout_events.is_some() => {
                let Some(batch) = batch else {
                    stdout_events = None;
                    continue;
                };
                if let Some(source) = &stdout {
                    let ids = source.take_new_ids();
                    if !ids.is_empty() {
                        let mut info = encoder.enricher.info().clone();
                        for (name, id) in ids {
                            info.containers.entry(name).or_default().docker_id =
                                Some(crate::pod::api::strip_runtime_scheme(&id).to_owned());
                        }
                        encoder.enricher.update(info);
                    }
                }
                for ev in batch {
                    events_received += 1;
                    obs.metrics.events_read.inc();
                    obs.metrics.read_bytes.inc_by(ev.bytes.len() as u64);
                    encoder.push_labelled(ev, &stdout_label, &mut packer, &obs);
                }
                if packer.pending_raw_bytes() >= flush_threshold {
                    packer.flush();
                }
            }
            _ = flush.tick() => packer.flush(),
            Ok(()) = pod_updates.changed() => {
                let mut info = pod_updates.borrow_and_update().clone();
                // The watcher may not have seen an id a new container's first event looked up.
                for (name, known) in &encoder.enricher.info().containers {
                    let entry = info.containers.entry(name.clone()).or_default();
                    if entry.docker_id.is_none() {
                        entry.docker_id.clone_from(&known.docker_id);
                    }
                    if entry.image.is_none() {
                        entry.image.clone_from(&known.image);
                    }
                }
                if encoder.enricher.update(info) {
                    tracing::info!("pod metadata changed (labels, annotations, container ids, images or owners)");
                }
            }
            () = &mut shutdown, if drain_task.is_none() => {
                obs.set_draining();
                if let Some(h) = handle.take() {
                    let api = api.clone();
                    let drain = ship.drain;
                    let own = ship.self_container.clone();
                    // The drain timeout counts from SIGTERM, lookup included.
                    let signalled = Instant::now();
                    if let Some(source) = &stdout {
                        source.drain(signalled + drain.timeout);
                    }
                    drain_task = Some(tokio::spawn(async move {
                        let apps_done = match &api {
                            Some(a) => a.client.app_containers_done(&a.namespace, &a.name, &own).await,
                            None => false,
                        };
                        let mode = drain.mode(apps_done, signalled);
                        tracing::info!(mode = ?mode, apps_done, "shutdown requested, draining");
                        (mode, h.drain(mode).await)
                    }));
                }
            }
            Some(joined) = shipper.tasks.join_next(), if !shipper.tasks.is_empty() => {
                if let Err(err) = joined {
                    tracing::error!(error = %err, "a send task failed; its events will be read again after restart");
                }
            }
        }
        shipper.send_ready(&mut packer);
    }
    // The stream ended: everything read is packed; send the rest.
    packer.flush();
    shipper.send_ready(&mut packer);
    // The engine waits for our acks (until its deadline), then checkpoints. The senders are
    // tasks of their own, so they keep delivering meanwhile.
    let failed = DrainReport {
        end: DrainEnd::Stopped,
        events_emitted: events_received,
        bytes_read: 0,
        unacked_bytes: 0,
        checkpoint_saved: false,
        files_left: Vec::new(),
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
            let mode = ship.drain.mode(false, Instant::now());
            (Some(mode), h.drain(mode).await)
        }
        (None, None) => (None, failed),
    };
    // The stdout source waits for its acknowledgements (until the deadline) and checkpoints.
    let stdout_report = match stdout {
        Some(source) => Some(source.finish().await),
        None => None,
    };
    pod_watcher.abort();
    let abandoned_batches = shipper.tasks.len();
    shipper.tasks.abort_all();
    while shipper.tasks.join_next().await.is_some() {}
    let mut outcome = DrainOutcome::of(&drain, abandoned_batches);
    if let Some(report) = &stdout_report {
        outcome = outcome.with_streams(report);
    }
    outcome.log(events_received, drain.bytes_read);
    obs.record_drain(&outcome);
    Ok(RunReport {
        drain,
        drain_mode,
        events_received,
        abandoned_batches,
        outcome,
    })
}
