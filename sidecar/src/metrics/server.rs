//! The small HTTP/1 server for `/metrics`, `/healthz` and `/readyz` (hyper; a framework would
//! weigh more than the three routes).
//!
//! It shares the process's descriptors with the tailing engine, so nothing a client does may
//! use them up (sidecar/README.md, "Metrics server"): at most
//! [`ServerLimits::max_connections`] connections are open at once (any more are closed on
//! arrival), one request per connection, a request's headers must arrive within
//! [`ServerLimits::header_read_timeout`] and the whole exchange end within
//! [`ServerLimits::connection_timeout`]. An accept error (`EMFILE` when the process is out of
//! descriptors) is retried after an exponential backoff, and warnings about refused
//! connections and accept errors are rate-limited; counters count every one.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::Observability;

fn respond(req: &Request<Incoming>, obs: &Observability) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match req.uri().path() {
        "/metrics" => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            obs.encode(),
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

/// Most connections open at once. Kubelet probes and a scraper need a handful; the cap keeps
/// the server far below any descriptor limit (1,024 is the smallest soft limit in practice).
pub const MAX_CONNECTIONS: usize = 32;
/// Time a client has to send a request's headers after connecting.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a connection may last in all (request, response and a slow reader of it).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait after an accept error; it doubles on each further error, up to
/// [`ACCEPT_BACKOFF_MAX`], and starts over after a successful accept.
pub const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
/// Longest wait after an accept error.
pub const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// At most one warning of each kind (accept error, refused connection) per this interval; the
/// next one says how many were not logged.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);
/// Read buffer per connection (hyper's minimum); the three routes take no body.
const MAX_BUF_BYTES: usize = 8 * 1024;

/// The server's bounds ([`ServerLimits::default`] has the constants above; tests shorten
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; more are closed on arrival.
    pub max_connections: usize,
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// See [`CONNECTION_TIMEOUT`].
    pub connection_timeout: Duration,
    /// See [`ACCEPT_BACKOFF_MIN`].
    pub accept_backoff_min: Duration,
    /// See [`ACCEPT_BACKOFF_MAX`].
    pub accept_backoff_max: Duration,
    /// See [`WARN_INTERVAL`].
    pub warn_interval: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
            accept_backoff_min: ACCEPT_BACKOFF_MIN,
            accept_backoff_max: ACCEPT_BACKOFF_MAX,
            warn_interval: WARN_INTERVAL,
        }
    }
}

/// The wait before the next accept after consecutive errors: `min`, doubling, at most `max`.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl AcceptBackoff {
    /// Starts at `min`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The wait after one more error.
    pub fn on_error(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// An accept succeeded: the next error waits `min` again.
    pub fn on_success(&mut self) {
        self.next = self.min;
    }
}

/// Lets one event through per `interval` and counts the ones held back, which the next one
/// let through reports.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    /// Nothing let through yet.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)` when this event may be logged at `now`, `n` being how many were held back
    /// since the last one; `None` when it must not.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        if self
            .last
            .is_some_and(|last| now.saturating_duration_since(last) < self.interval)
        {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Binds `addr`; returns the listener so callers learn the real port before serving.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `listener` until `shutdown` completes, with
/// the default [`ServerLimits`].
pub async fn serve(
    listener: TcpListener,
    obs: Arc<Observability>,
    shutdown: impl Future<Output = ()>,
) {
    serve_with(listener, obs, ServerLimits::default(), shutdown).await;
}

/// Accepts connections.
trait Accept {
    fn accept(&self) -> impl Future<Output = std::io::Result<TcpStream>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&self) -> std::io::Result<TcpStream> {
        TcpListener::accept(self).await.map(|(stream, _)| stream)
    }
}

/// [`serve`] within `limits`. Open connections are closed when `shutdown` completes.
pub async fn serve_with(
    listener: TcpListener,
    obs: Arc<Observability>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    accept_loop(&listener, obs, limits, shutdown).await;
}

async fn accept_loop(
    listener: &impl Accept,
    obs: Arc<Observability>,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = AcceptBackoff::new(limits.accept_backoff_min, limits.accept_backoff_max);
    let mut accept_warn = RateLimit::new(limits.warn_interval);
    let mut refused_warn = RateLimit::new(limits.warn_interval);
    let mut connections = JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok(stream) => {
                backoff.on_success();
                stream
            }
            Err(error) => {
                // The failed connection usually stays queued (EMFILE, ENFILE, ENOBUFS), so
                // accepting again at once fails again at once: wait, longer each time.
                obs.metrics.http_accept_errors.inc();
                let wait = backoff.on_error();
                if let Some(suppressed) = accept_warn.allow(Instant::now()) {
                    tracing::warn!(
                        %error,
                        retry_in_ms = wait.as_millis() as u64,
                        not_logged_since_last = suppressed,
                        "metrics listener accept failed; backing off"
                    );
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(wait) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            // Closing at once frees the descriptor; a probe or scraper tries again later.
            obs.metrics.http_connections_refused.inc();
            if let Some(suppressed) = refused_warn.allow(Instant::now()) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    not_logged_since_last = suppressed,
                    "metrics connection refused: the connection cap is reached"
                );
            }
            drop(stream);
            continue;
        };
        connections.spawn(connection(stream, Arc::clone(&obs), limits, permit));
    }
    connections.shutdown().await;
}

async fn connection(
    stream: TcpStream,
    obs: Arc<Observability>,
    limits: ServerLimits,
    _permit: OwnedSemaphorePermit,
) {
    let service_obs = Arc::clone(&obs);
    let service = hyper::service::service_fn(move |req| {
        let resp = respond(&req, &service_obs);
        async move { Ok::<_, std::convert::Infallible>(resp) }
    });
    let io = hyper_util::rt::TokioIo::new(stream);
    let served = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // One request per connection: no idle keep-alive connection holds a descriptor.
        .keep_alive(false)
        .max_buf_size(MAX_BUF_BYTES)
        .serve_connection(io, service);
    match tokio::time::timeout(limits.connection_timeout, served).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) if err.is_timeout() => {
            obs.metrics.http_connections_timed_out.inc();
        }
        Ok(Err(err)) => tracing::debug!(error = %err, "metrics connection ended with an error"),
        Err(_) => {
            obs.metrics.http_connections_timed_out.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_tail::{Fault, TailEmitter as _, TailStats};
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
        // A full disk: the engine emits each failed checkpoint write as it happens.
        for _ in 0..5 {
            obs.fault(Fault::CheckpointWrite);
        }
        let files_open = Arc::new(std::sync::atomic::AtomicU64::new(2));
        let source = Arc::clone(&files_open);
        obs.set_gauge_source(Box::new(move || TailStats {
            files_open: source.load(std::sync::atomic::Ordering::Relaxed),
            ..TailStats::default()
        }));
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
        assert!(
            metrics.contains("firetail_tail_errors_total{kind=\"open\"} 0"),
            "every fault kind is exposed from the start: {metrics}"
        );
        files_open.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(
            get(addr, "/metrics")
                .await
                .contains("firetail_files_open 7"),
            "gauges are read at scrape time"
        );
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

    #[test]
    fn accept_backoff_doubles_to_its_cap_and_starts_over() {
        let ms = Duration::from_millis;
        let mut b = AcceptBackoff::new(ms(10), ms(100));
        let waits: Vec<_> = (0..6).map(|_| b.on_error()).collect();
        assert_eq!(waits, [ms(10), ms(20), ms(40), ms(80), ms(100), ms(100)]);
        b.on_success();
        assert_eq!(b.on_error(), ms(10));
    }

    #[test]
    fn rate_limit_lets_one_through_per_interval_and_counts_the_rest() {
        let start = Instant::now();
        let mut r = RateLimit::new(Duration::from_secs(10));
        assert_eq!(r.allow(start), Some(0));
        for s in 1..10 {
            assert_eq!(r.allow(start + Duration::from_secs(s)), None);
        }
        assert_eq!(r.allow(start + Duration::from_secs(10)), Some(9));
        assert_eq!(r.allow(start + Duration::from_secs(11)), None);
    }

    /// A listener whose every accept fails at once, as one out of descriptors does.
    struct OutOfDescriptors(std::sync::atomic::AtomicU64);

    impl Accept for OutOfDescriptors {
        async fn accept(&self) -> std::io::Result<TcpStream> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(std::io::Error::from_raw_os_error(24)) // EMFILE
        }
    }

    #[tokio::test]
    async fn accept_errors_back_off_instead_of_spinning() {
        let obs = Arc::new(Observability::default());
        let listener = OutOfDescriptors(std::sync::atomic::AtomicU64::new(0));
        let limits = ServerLimits {
            accept_backoff_min: Duration::from_millis(10),
            accept_backoff_max: Duration::from_millis(200),
            ..ServerLimits::default()
        };
        let window = tokio::time::sleep(Duration::from_millis(1000));
        accept_loop(&listener, Arc::clone(&obs), limits, window).await;
        let calls = listener.0.load(std::sync::atomic::Ordering::Relaxed);
        // 10 + 20 + 40 + 80 + 160 ms, then every 200 ms: about 8 tries in a second (retrying
        // at once made millions, each with a warning).
        assert!((3..=12).contains(&calls), "{calls} accepts in 1 s");
        assert_eq!(obs.metrics.http_accept_errors.get(), calls);
        assert!(
            obs.encode()
                .contains(&format!("firetail_http_accept_errors_total {calls}")),
            "counted in the exposition"
        );
    }

    /// Connects and reads until the server closes the connection; true if it did within
    /// `within`.
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn idle_connections_are_capped_and_timed_out_and_a_fresh_scrape_still_answers() {
        let obs = Arc::new(Observability::default());
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ServerLimits {
            max_connections: 4,
            header_read_timeout: Duration::from_millis(300),
            connection_timeout: Duration::from_millis(600),
            ..ServerLimits::default()
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(listener, Arc::clone(&obs), limits, async {
            let _ = stopped.await;
        }));
        // Connections that never send a byte, five times the cap.
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        // Those over the cap are closed on arrival, the others once the header timeout passed.
        for (n, stream) in idle.iter_mut().enumerate() {
            assert!(
                closed_within(stream, Duration::from_secs(5)).await,
                "idle connection {n} still open"
            );
        }
        assert_eq!(obs.metrics.http_connections_refused.get(), 16);
        assert_eq!(obs.metrics.http_connections_timed_out.get(), 4);
        // The server answers a fresh scrape.
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 200"));
        // One request per connection: no idle keep-alive connection is left holding a slot.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("closed after the response")
            .unwrap();
        assert!(String::from_utf8_lossy(&out).contains("connection: close"));
        // A client that sends half its headers and stalls is cut off too.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHo")
            .await
            .unwrap();
        assert!(closed_within(&mut slow, Duration::from_secs(5)).await);
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
