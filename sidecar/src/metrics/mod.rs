//! Metrics, health, and the HTTP server that exposes them.
//!
//! # Layout
//! - [`defs`]: every metric's name and help text.
//! - [`Metrics`]: the counters, gauges and histogram (prometheus-client), one field per
//!   metric, named as the metric.
//! - [`Health`]: liveness (`/healthz`: the engine runs) and readiness (`/readyz`: the engine
//!   runs and there is no permanent delivery error right now).
//! - [`Observability`]: both, shared by the run loop, the senders and the server. It is the
//!   delivery loop's [`DeliveryObserver`] and the tailing engine's [`TailEmitter`], so both
//!   report as things happen; the engine's gauges are read at scrape time. From SIGTERM on,
//!   the drain gauges follow the drain, and [`Observability::record_drain`] fixes them at what
//!   it left (sidecar/README.md, "Shutdown and drain").
//! - [`server`]: `/metrics`, `/healthz`, `/readyz` until a shutdown future completes.
//!
//! A permanent delivery error (stream missing, access denied) makes `/readyz` fail but not
//! `/healthz`: restarting the container would not fix it, and the files keep the data.

pub mod defs;
pub mod server;

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use firetail_firehose::{CallError, DeliveryObserver};
use firetail_tail::{Fault, TailEmitter, TailStats};
use firetail_wire::limits::billed_bytes;

use crate::drain::{DrainOutcome, Outcome};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

pub use server::{bind, serve};

type Labels = Vec<(String, String)>;

/// Every metric the sidecar exports; each field is named as its metric ([`defs`]).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// [`defs::EVENTS_READ`].
    pub events_read: Counter,
    /// [`defs::READ_BYTES`].
    pub read_bytes: Counter,
    /// [`defs::EVENTS_SENT`].
    pub events_sent: Counter,
    /// [`defs::RECORDS_SENT`].
    pub records_sent: Counter,
    /// [`defs::RECORD_BYTES_SENT`].
    pub record_bytes_sent: Counter,
    /// [`defs::ESTIMATED_BILLED_BYTES`].
    pub estimated_billed_bytes: Counter,
    /// [`defs::REQUESTS`].
    pub requests: Counter,
    /// [`defs::EVENTS_PER_RECORD`].
    pub events_per_record: Histogram,
    /// [`defs::RETRIES`], by `code`.
    pub retries: Family<Labels, Counter>,
    /// [`defs::FAILURES`], by `code`.
    pub failures: Family<Labels, Counter>,
    /// [`defs::EVENTS_SPLIT`].
    pub events_split: Counter,
    /// [`defs::EVENTS_TRUNCATED`].
    pub events_truncated: Counter,
    /// [`defs::IN_FLIGHT_BYTES`].
    pub in_flight_bytes: Gauge,
    /// [`defs::BUFFERED_BYTES`].
    pub buffered_bytes: Gauge,
    /// [`defs::MEMORY_BUDGET_BYTES`], set once at start.
    pub memory_budget_bytes: Gauge,
    /// [`defs::CHECKPOINT_LAG_BYTES`].
    pub checkpoint_lag_bytes: Gauge,
    /// [`defs::TAIL_ERRORS`], by `kind` ([`Fault::as_str`]).
    pub tail_errors: Family<Labels, Counter>,
    /// [`defs::TRUNCATIONS`].
    pub truncations: Counter,
    /// [`defs::FILES_OPEN`].
    pub files_open: Gauge,
    /// [`defs::UNREAD_BYTES`].
    pub unread_bytes: Gauge,
    /// [`defs::DRAIN_UNREAD_BYTES`].
    pub drain_unread_bytes: Gauge,
    /// [`defs::DRAIN_UNACKED_BYTES`].
    pub drain_unacked_bytes: Gauge,
    /// [`defs::DRAINS`], by `outcome` ([`Outcome::as_str`]).
    pub drains: Family<Labels, Counter>,
    /// [`defs::HTTP_CONNECTIONS_REFUSED`].
    pub http_connections_refused: Counter,
    /// [`defs::HTTP_CONNECTIONS_TIMED_OUT`].
    pub http_connections_timed_out: Counter,
    /// [`defs::HTTP_ACCEPT_ERRORS`].
    pub http_accept_errors: Counter,
    /// [`defs::STDOUT_ERRORS`], by `reason`.
    pub stdout_errors: Family<Labels, Counter>,
    /// [`defs::STDOUT_LINES_SKIPPED`].
    pub stdout_lines_skipped: Counter,
    /// [`defs::STDOUT_STREAMS_OPEN`].
    pub stdout_streams_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under [`defs::PREFIX`].
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix(defs::PREFIX);
        let mut reg = |def: defs::Def, metric: &dyn RegisterClone| {
            metric.register_into(&mut registry, def);
        };
        let m = Self {
            events_read: Counter::default(),
            read_bytes: Counter::default(),
            events_sent: Counter::default(),
            records_sent: Counter::default(),
            record_bytes_sent: Counter::default(),
            estimated_billed_bytes: Counter::default(),
            requests: Counter::default(),
            events_per_record: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            retries: Family::default(),
            failures: Family::default(),
            events_split: Counter::default(),
            events_truncated: Counter::default(),
            in_flight_bytes: Gauge::default(),
            buffered_bytes: Gauge::default(),
            memory_budget_bytes: Gauge::default(),
            checkpoint_lag_bytes: Gauge::default(),
            tail_errors: Family::default(),
            truncations: Counter::default(),
            files_open: Gauge::default(),
            unread_bytes: Gauge::default(),
            drain_unread_bytes: Gauge::default(),
            drain_unacked_bytes: Gauge::default(),
            drains: Family::default(),
            http_connections_refused: Counter::default(),
            http_connections_timed_out: Counter::default(),
            http_accept_errors: Counter::default(),
            stdout_errors: Family::default(),
            stdout_lines_skipped: Counter::default(),
            stdout_streams_open: Gauge::default(),
            registry: Registry::default(),
        };
        reg(defs::EVENTS_READ, &m.events_read);
        reg(defs::READ_BYTES, &m.read_bytes);
        reg(defs::EVENTS_SENT, &m.events_sent);
        reg(defs::RECORDS_SENT, &m.records_sent);
        reg(defs::RECORD_BYTES_SENT, &m.record_bytes_sent);
        reg(defs::ESTIMATED_BILLED_BYTES, &m.estimated_billed_bytes);
        reg(defs::REQUESTS, &m.requests);
        reg(defs::EVENTS_PER_RECORD, &m.events_per_record);
        reg(defs::RETRIES, &m.retries);
        reg(defs::FAILURES, &m.failures);
        reg(defs::EVENTS_SPLIT, &m.events_split);
        reg(defs::EVENTS_TRUNCATED, &m.events_truncated);
        reg(defs::IN_FLIGHT_BYTES, &m.in_flight_bytes);
        reg(defs::BUFFERED_BYTES, &m.buffered_bytes);
        reg(defs::MEMORY_BUDGET_BYTES, &m.memory_budget_bytes);
        reg(defs::CHECKPOINT_LAG_BYTES, &m.checkpoint_lag_bytes);
        reg(defs::TAIL_ERRORS, &m.tail_errors);
        reg(defs::TRUNCATIONS, &m.truncations);
        reg(defs::FILES_OPEN, &m.files_open);
        reg(defs::UNREAD_BYTES, &m.unread_bytes);
        reg(defs::DRAIN_UNREAD_BYTES, &m.drain_unread_bytes);
        reg(defs::DRAIN_UNACKED_BYTES, &m.drain_unacked_bytes);
        reg(defs::DRAINS, &m.drains);
        reg(defs::HTTP_CONNECTIONS_REFUSED, &m.http_connections_refused);
        reg(
            defs::HTTP_CONNECTIONS_TIMED_OUT,
            &m.http_connections_timed_out,
        );
        reg(defs::HTTP_ACCEPT_ERRORS, &m.http_accept_errors);
        reg(defs::STDOUT_ERRORS, &m.stdout_errors);
        reg(defs::STDOUT_LINES_SKIPPED, &m.stdout_lines_skipped);
        reg(defs::STDOUT_STREAMS_OPEN, &m.stdout_streams_open);
        // Every fault kind shows from the start (at 0), so a dashboard has a series to draw.
        for kind in Fault::ALL {
            m.tail_errors
                .get_or_create(&label("kind", kind.as_str()))
                .inc_by(0);
        }
        for outcome in Outcome::ALL {
            m.drains
                .get_or_create(&label("outcome", outcome.as_str()))
                .inc_by(0);
        }
        Self { registry, ..m }
    }

    /// Counts one failure of `code`.
    pub fn failure(&self, code: &str) {
        self.failures.get_or_create(&label("code", code)).inc();
    }

    /// Counts one stdout-source error of `reason`.
    pub fn stdout_error(&self, reason: &str) {
        self.stdout_errors
            .get_or_create(&label("reason", reason))
            .inc();
    }

    /// Counts `n` records resent after `code`.
    pub fn retry(&self, code: &str, n: u64) {
        self.retries.get_or_create(&label("code", code)).inc_by(n);
    }

    /// Sets the gauges from an engine snapshot.
    pub fn set_tail_gauges(&self, stats: &TailStats) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.files_open.set(gauge(stats.files_open));
        self.in_flight_bytes.set(gauge(stats.inflight_bytes));
        self.buffered_bytes.set(gauge(stats.buffered_bytes));
        self.checkpoint_lag_bytes
            .set(gauge(stats.checkpoint_lag_bytes));
        self.unread_bytes.set(gauge(stats.unread_bytes));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing into a String cannot fail");
        out
    }
}

fn label(key: &str, value: &str) -> Labels {
    vec![(key.to_owned(), value.to_owned())]
}

/// Registers a clone of a metric (prometheus-client metrics are shared handles).
trait RegisterClone {
    fn register_into(&self, registry: &mut Registry, def: defs::Def);
}

impl<M: Metric + Clone> RegisterClone for M {
    fn register_into(&self, registry: &mut Registry, def: defs::Def) {
        registry.register(def.name, def.help, self.clone());
    }
}

/// Liveness and readiness.
#[derive(Debug, Default)]
pub struct Health {
    started: AtomicBool,
    permanent_error: Mutex<Option<String>>,
}

impl Health {
    /// The engine runs and the sender is set up.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Records (Some) or clears (None) a permanent delivery error.
    pub fn set_permanent_error(&self, error: Option<String>) {
        *self
            .permanent_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = error;
    }

    /// `Err(reason)` until the engine runs. A startup probe on `/healthz` thus holds a native
    /// sidecar's app containers back until files are being watched, without depending on
    /// Firehose being reachable.
    pub fn liveness(&self) -> Result<(), String> {
        if self.started.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err("starting".into())
        }
    }

    /// `Err(reason)` when not ready.
    pub fn readiness(&self) -> Result<(), String> {
        if !self.started.load(Ordering::Acquire) {
            return Err("starting".into());
        }
        self.permanent_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map_or(Ok(()), |e| Err(e.clone()))
    }
}

/// Reads the tailing engine's gauges (a [`firetail_tail::TailProbe`], in the run loop).
pub type GaugeSource = Box<dyn Fn() -> TailStats + Send + Sync>;

/// Metrics and health, shared by the run loop, the senders, the engine and the HTTP server.
#[derive(Default)]
pub struct Observability {
    /// Counters and gauges.
    pub metrics: Metrics,
    /// Liveness and readiness.
    pub health: Health,
    gauges: OnceLock<GaugeSource>,
    /// [`DRAIN_RUNNING`], [`DRAIN_DRAINING`] or [`DRAIN_DONE`].
    drain: AtomicU8,
}

const DRAIN_RUNNING: u8 = 0;
const DRAIN_DRAINING: u8 = 1;
const DRAIN_DONE: u8 = 2;

impl std::fmt::Debug for Observability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observability")
            .field("health", &self.health)
            .finish_non_exhaustive()
    }
}

impl Observability {
    /// Where the engine's gauges are read at each scrape (set once, when the engine starts).
    pub fn set_gauge_source(&self, source: GaugeSource) {
        let _ = self.gauges.set(source);
    }

    /// The exposition, with the gauges read now.
    pub fn encode(&self) -> String {
        if let Some(source) = self.gauges.get() {
            let stats = source();
            self.metrics.set_tail_gauges(&stats);
            // While draining, the drain gauges follow what is still to do, so the last scrape
            // before the pod goes shows it.
            if self.drain.load(Ordering::Acquire) == DRAIN_DRAINING {
                let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
                let m = &self.metrics;
                m.drain_unread_bytes.set(gauge(stats.unread_bytes));
                m.drain_unacked_bytes.set(gauge(stats.inflight_bytes));
            }
        }
        self.metrics.encode()
    }

    /// SIGTERM arrived: the drain gauges start following the drain.
    pub fn set_draining(&self) {
        let _ = self.drain.compare_exchange(
            DRAIN_RUNNING,
            DRAIN_DRAINING,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The drain ended: its outcome counts once, and the drain gauges keep what it left.
    pub fn record_drain(&self, outcome: &DrainOutcome) {
        self.drain.store(DRAIN_DONE, Ordering::Release);
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let m = &self.metrics;
        m.drain_unread_bytes.set(gauge(outcome.unread_bytes));
        m.drain_unacked_bytes.set(gauge(outcome.unacked_bytes));
        m.drains
            .get_or_create(&label("outcome", outcome.outcome.as_str()))
            .inc();
    }
}

impl DeliveryObserver for Observability {
    fn call(&self, _records: usize) {
        self.metrics.requests.inc();
    }

    fn accepted(&self, data_bytes: usize, events: usize) {
        let m = &self.metrics;
        m.records_sent.inc();
        m.events_sent.inc_by(events as u64);
        m.record_bytes_sent.inc_by(data_bytes as u64);
        m.estimated_billed_bytes
            .inc_by(billed_bytes(data_bytes) as u64);
        m.events_per_record.observe(events as f64);
    }

    fn entry_failed(&self, code: &str) {
        self.metrics.failure(code);
        self.metrics.retry(code, 1);
    }

    fn call_failed(&self, error: &CallError, records: usize) {
        self.metrics.failure(error.code());
        self.metrics.retry(error.code(), records as u64);
    }

    fn permanent_error(&self, error: Option<&CallError>) {
        self.health
            .set_permanent_error(error.map(ToString::to_string));
    }
}

impl TailEmitter for Observability {
    fn fault(&self, kind: Fault) {
        self.metrics
            .tail_errors
            .get_or_create(&label("kind", kind.as_str()))
            .inc();
    }

    fn truncated(&self) {
        self.metrics.truncations.inc();
    }
}
