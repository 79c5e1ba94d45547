//! Metrics, health, and the small HTTP server that exposes them.
//!
//! # Layout
//! - [`Metrics`]: every counter and gauge the shipper updates (prometheus-client).
//! - [`Health`]: liveness (`/healthz`: the engine runs) and readiness (`/readyz`: the engine
//!   runs and there is no permanent sink error right now).
//! - [`serve`]: HTTP/1 server for `/metrics`, `/healthz`, `/readyz` until the shutdown future
//!   completes.
//!
//! A permanent sink error (stream missing, access denied) makes `/readyz` fail but not
//! `/healthz`: restarting the container would not fix it, and the files keep the data.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use crate::tail::TailStats;

type CodeLabels = Vec<(String, String)>;
type KindLabels = Vec<(String, String)>;

/// Every metric the sidecar exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Events received from the tailing engine.
    pub events_read: Counter,
    /// Line bytes received from the tailing engine.
    pub bytes_read: Counter,
    /// Events whose record Firehose accepted.
    pub events_sent: Counter,
    /// Records Firehose accepted.
    pub records_sent: Counter,
    /// Record bytes Firehose accepted (compressed where the format compresses).
    pub record_bytes_sent: Counter,
    /// Estimated billed bytes: each accepted record rounded up to 5 KiB.
    pub billed_bytes: Counter,
    /// `PutRecordBatch` calls made, including retries.
    pub requests: Counter,
    /// Events per record, observed when a record is accepted.
    pub events_per_record: Histogram,
    /// Records resent, by error code.
    pub retries: Family<CodeLabels, Counter>,
    /// Failed calls or entries, by error code.
    pub failures: Family<CodeLabels, Counter>,
    /// Lines split into parts because they could not fit one record.
    pub events_split: Counter,
    /// Lines truncated because `--oversize=truncate`.
    pub events_truncated: Counter,
    /// Bytes of events packed or sent but not yet acknowledged.
    pub in_flight_bytes: Gauge,
    /// Bytes between the newest read position and the checkpoint, over all files.
    pub checkpoint_lag_bytes: Gauge,
    /// Tailing faults by kind (open, read, checkpoint_write, ...), from the engine's counters.
    pub tail_errors: Family<KindLabels, Counter>,
    /// Truncations detected (copytruncate rotation).
    pub truncations: Counter,
    /// Files open in the tailing engine.
    pub files_open: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric under the `firetail_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("firetail");
        let m = Self {
            events_read: Counter::default(),
            bytes_read: Counter::default(),
            events_sent: Counter::default(),
            records_sent: Counter::default(),
            record_bytes_sent: Counter::default(),
            billed_bytes: Counter::default(),
            requests: Counter::default(),
            events_per_record: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            retries: Family::default(),
            failures: Family::default(),
            events_split: Counter::default(),
            events_truncated: Counter::default(),
            in_flight_bytes: Gauge::default(),
            checkpoint_lag_bytes: Gauge::default(),
            tail_errors: Family::default(),
            truncations: Counter::default(),
            files_open: Gauge::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "events_read",
            "Events received from the tailing engine",
            m.events_read.clone(),
        );
        r.register(
            "read_bytes",
            "Line bytes received from the tailing engine",
            m.bytes_read.clone(),
        );
        r.register(
            "events_sent",
            "Events in records Firehose accepted",
            m.events_sent.clone(),
        );
        r.register(
            "records_sent",
            "Records Firehose accepted",
            m.records_sent.clone(),
        );
        r.register(
            "record_bytes_sent",
            "Record bytes Firehose accepted",
            m.record_bytes_sent.clone(),
        );
        r.register(
            "estimated_billed_bytes",
            "Accepted records rounded up to 5 KiB each, as Firehose bills ingestion",
            m.billed_bytes.clone(),
        );
        r.register(
            "requests",
            "PutRecordBatch calls, retries included",
            m.requests.clone(),
        );
        r.register(
            "events_per_record",
            "Events per accepted record",
            m.events_per_record.clone(),
        );
        r.register(
            "retries",
            "Records resent, by error code",
            m.retries.clone(),
        );
        r.register(
            "failures",
            "Failed calls or entries, by error code",
            m.failures.clone(),
        );
        r.register(
            "events_split",
            "Lines split into parts to fit a record",
            m.events_split.clone(),
        );
        r.register(
            "events_truncated",
            "Lines truncated to fit a record",
            m.events_truncated.clone(),
        );
        r.register(
            "in_flight_bytes",
            "Bytes packed or sent, not yet acknowledged",
            m.in_flight_bytes.clone(),
        );
        r.register(
            "checkpoint_lag_bytes",
            "Bytes read but not yet covered by a checkpoint",
            m.checkpoint_lag_bytes.clone(),
        );
        r.register(
            "tail_errors",
            "Tailing faults by kind: open, read, checkpoint_write, checkpoint_load, discovery, watch",
            m.tail_errors.clone(),
        );
        r.register(
            "truncations",
            "Truncated files detected (copytruncate rotation)",
            m.truncations.clone(),
        );
        r.register("files_open", "Files open for tailing", m.files_open.clone());
        Self { registry, ..m }
    }

    /// Publishes the tailing engine's counters: `now` is the latest snapshot, `before` the one
    /// published last (the engine's counters only grow).
    pub fn observe_tail(&self, now: &TailStats, before: &TailStats) {
        let faults = [
            ("open", now.open_errors, before.open_errors),
            ("read", now.read_errors, before.read_errors),
            (
                "checkpoint_write",
                now.checkpoint_errors,
                before.checkpoint_errors,
            ),
            (
                "checkpoint_load",
                now.checkpoint_load_errors,
                before.checkpoint_load_errors,
            ),
            ("discovery", now.discovery_errors, before.discovery_errors),
            ("watch", now.watch_errors, before.watch_errors),
        ];
        for (kind, now, before) in faults {
            let family = self
                .tail_errors
                .get_or_create(&vec![("kind".to_owned(), kind.to_owned())]);
            family.inc_by(now.saturating_sub(before));
        }
        self.truncations
            .inc_by(now.truncations.saturating_sub(before.truncations));
        self.files_open
            .set(i64::try_from(now.files_open).unwrap_or(i64::MAX));
        self.in_flight_bytes
            .set(i64::try_from(now.inflight_bytes).unwrap_or(i64::MAX));
        self.checkpoint_lag_bytes
            .set(i64::try_from(now.checkpoint_lag_bytes).unwrap_or(i64::MAX));
    }

    /// Counts one failure of `code`.
    pub fn failure(&self, code: &str) {
        self.failures.get_or_create(&code_label(code)).inc();
    }

    /// Counts `n` records resent after `code`.
    pub fn retry(&self, code: &str, n: u64) {
        self.retries.get_or_create(&code_label(code)).inc_by(n);
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn code_label(code: &str) -> CodeLabels {
    vec![("code".to_owned(), code.to_owned())]
}

/// Liveness and readiness.
#[derive(Debug, Default)]
pub struct Health {
    started: AtomicBool,
    permanent_error: Mutex<Option<String>>,
}

impl Health {
    /// The engine runs and the sink is set up.
    pub fn set_started(&self) {
        self.started.store(true, Ordering::Release);
    }

    /// Records (Some) or clears (None) a permanent sink error.
    pub fn set_permanent_error(&self, error: Option<String>) {
        if let Ok(mut slot) = self.permanent_error.lock() {
            *slot = error;
        }
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
        match self.permanent_error.lock() {
            Ok(slot) => slot.as_ref().map_or(Ok(()), |e| Err(e.clone())),
            Err(_) => Err("health state poisoned".into()),
        }
    }
}

/// Metrics and health, shared by the run loop, the senders and the HTTP server.
#[derive(Debug, Default)]
pub struct Observability {
    /// Counters and gauges.
    pub metrics: Metrics,
    /// Liveness and readiness.
    pub health: Health,
}

fn respond(req: &Request<Incoming>, obs: &Observability) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            obs.metrics.encode(),
        ),
        "/healthz" => match obs.health.liveness() {
            Ok(()) => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        "/readyz" => match obs.health.readiness() {
            Ok(()) => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            Err(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{why}\n"),
            ),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_owned(),
        ),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    resp
}

/// Binds `addr`; returns the listener so callers learn the real port before serving.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    obs: Arc<Observability>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener accept failed");
                    continue;
                }
            },
        };
        let obs = Arc::clone(&obs);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let resp = respond(&req, &obs);
                async move { Ok::<_, std::convert::Infallible>(resp) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(err) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %err, "metrics connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_health_until_shutdown() {
        let obs = Arc::new(Observability::default());
        obs.metrics.events_read.inc_by(3);
        obs.metrics.retry("ServiceUnavailableException", 2);
        let full_disk = TailStats {
            checkpoint_errors: 3,
            files_open: 2,
            ..TailStats::default()
        };
        obs.metrics.observe_tail(&full_disk, &TailStats::default());
        let later = TailStats {
            checkpoint_errors: 5,
            ..full_disk
        };
        obs.metrics.observe_tail(&later, &full_disk);
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::clone(&obs), async {
            let _ = stopped.await;
        }));

        let metrics = get(addr, "/metrics").await;
        assert!(metrics.starts_with("HTTP/1.1 200"));
        assert!(
            metrics.contains("firetail_events_read_total 3"),
            "{metrics}"
        );
        assert!(metrics.contains("firetail_retries_total{code=\"ServiceUnavailableException\"} 2"));
        assert!(
            metrics.contains("firetail_tail_errors_total{kind=\"checkpoint_write\"} 5"),
            "{metrics}"
        );
        assert!(metrics.contains("firetail_files_open 2"), "{metrics}");
        for path in ["/healthz", "/readyz"] {
            let starting = get(addr, path).await;
            assert!(
                starting.starts_with("HTTP/1.1 503") && starting.contains("starting"),
                "{path}"
            );
        }
        obs.health.set_started();
        assert!(get(addr, "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get(addr, "/readyz").await.starts_with("HTTP/1.1 200"));
        obs.health
            .set_permanent_error(Some("ResourceNotFoundException".into()));
        assert!(
            get(addr, "/readyz")
                .await
                .contains("ResourceNotFoundException")
        );
        assert!(
            get(addr, "/healthz").await.starts_with("HTTP/1.1 200"),
            "alive while unready"
        );
        assert!(get(addr, "/nope").await.starts_with("HTTP/1.1 404"));

        stop.send(()).unwrap();
        server.await.unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "listener closed after shutdown"
        );
    }
}
