//! The HTTP/1.1 accept loop shared by the test servers: keep-alive connections, one task per
//! connection, and a stop signal that ends the loop and aborts every connection still open
//! (a long-polling client must not keep a stopped server alive).

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

/// A complete response: the test servers never stream.
pub(crate) type Reply = Response<Full<Bytes>>;

/// Returned by a handler to close the connection without answering. If the connection was set
/// to zero linger when accepted, the peer sees a TCP reset.
#[derive(Debug)]
pub(crate) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// A running accept loop. Dropping it stops the loop and its connections.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `listener` with `handler` until stopped. `on_accept` sees each new socket first.
    pub(crate) fn spawn<H, Fut, A>(listener: TcpListener, on_accept: A, handler: H) -> Self
    where
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Reply, DropConnection>> + Send + 'static,
        A: Fn(&TcpStream) + Send + 'static,
    {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    // Fires on an explicit stop and when the Server is dropped.
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else {
                            // Out of descriptors or similar: back off instead of spinning.
                            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        on_accept(&stream);
                        let handler = handler.clone();
                        connections.spawn(async move {
                            let service = service_fn(handler);
                            let _ = http1::Builder::new()
                                .timer(TokioTimer::new())
                                .keep_alive(true)
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        });
        Self {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, closes every connection and waits until that is done.
    pub(crate) async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Dropping the sender wakes the loop; it then aborts its connections by itself.
        self.stop.take();
    }
}

/// Builds a complete response; the builder cannot fail for the static parts used here.
pub(crate) fn reply(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Reads a whole request body. `None` if the client went away mid-body.
pub(crate) async fn read_body(body: Incoming) -> Option<Bytes> {
    use http_body_util::BodyExt;
    body.collect()
        .await
        .ok()
        .map(|collected| collected.to_bytes())
}
