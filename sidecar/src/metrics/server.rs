//! The small HTTP/1 server for `/metrics`, `/healthz` and `/readyz` (hyper; a framework would
//! weigh more than the three routes).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::net::TcpListener;

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
}
