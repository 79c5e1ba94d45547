//! A Lambda Runtime API server on 127.0.0.1, so a real Lambda binary (built on `lambda_runtime`)
//! runs unchanged inside a test, the way Lambda's own runtime interface would drive it.
//!
//! # Layout
//! - [`RuntimeApi`]: the server. [`RuntimeApi::invoke`] queues one event and resolves with the
//!   function's answer; the function long-polls `next` to receive it.
//! - [`InvokeError`]: every way an invocation can end without a response body.
//! - [`spawn_function`]: starts a Lambda binary against a [`RuntimeApi`] and returns a
//!   [`ChildGuard`] that kills it when dropped.
//!
//! # Protocol served (what `lambda_runtime` 1.5 sends)
//! - `GET  /2018-06-01/runtime/invocation/next`: blocks until an event is queued; answers with
//!   the event and `Lambda-Runtime-Aws-Request-Id`, `Lambda-Runtime-Deadline-Ms`,
//!   `Lambda-Runtime-Invoked-Function-Arn`, `Lambda-Runtime-Trace-Id`.
//! - `POST /2018-06-01/runtime/invocation/{id}/response`: the result, 202.
//! - `POST /2018-06-01/runtime/invocation/{id}/error`: an invocation error, 202.
//! - `POST /2018-06-01/runtime/init/error`: fails every pending and later invocation.
//!
//! Reference: <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use crate::process::ChildGuard;
use crate::server::{DropConnection, Reply, Server, read_body, reply};

/// How long [`RuntimeApi::invoke`] waits for the function; Lambda's own maximum is 15 minutes,
/// tests want a failure long before that.
pub const DEFAULT_INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

/// Memory size advertised to the function, in MiB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub const FUNCTION_MEMORY_MB: u32 = 512;

const ACCOUNT_ID: &str = "123456789012";
const REGION: &str = "us-east-1";
const PATH_PREFIX: &str = "/2018-06-01/runtime/";

/// Why an invocation produced no response body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The function posted to `/invocation/{id}/error` (a handler error or panic).
    #[error("invocation error {error_type:?}: {}", String::from_utf8_lossy(.body))]
    Function {
        /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
        error_type: Option<String>,
        /// The error document, usually `{"errorType":..,"errorMessage":..}`.
        body: Vec<u8>,
    },
    /// The function posted to `/init/error`; no invocation can succeed after that.
    #[error("init error {error_type:?}: {}", String::from_utf8_lossy(.body))]
    Init {
        /// The `Lambda-Runtime-Function-Error-Type` header, if sent.
        error_type: Option<String>,
        /// The error document.
        body: Vec<u8>,
    },
    /// No answer within the timeout (the function is stuck, crashed or never started).
    #[error("no answer from the function within {0:?}")]
    Timeout(Duration),
    /// The server was shut down while the invocation was pending.
    #[error("the runtime API server shut down")]
    Shutdown,
}

type Outcome = Result<Vec<u8>, InvokeError>;

/// One queued event.
struct Invocation {
    id: String,
    payload: Bytes,
    deadline_ms: u128,
}

/// State shared between the test's handle and the connection tasks.
struct Shared {
    queue_tx: mpsc::UnboundedSender<Invocation>,
    /// Behind an async mutex: concurrent `next` polls take turns at the queue.
    queue_rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    /// Invocations handed out or queued, by request id, with the caller waiting on each.
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<InvokeError>>,
    first_poll: OnceLock<Instant>,
    polls: AtomicU64,
    connections: Arc<AtomicU64>,
    stopped: std::sync::atomic::AtomicBool,
    next_id: AtomicU64,
    function_name: Mutex<String>,
}

impl Shared {
    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Outcome>>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn function_arn(&self) -> String {
        let name = self
            .function_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}")
    }
}

/// A Lambda Runtime API server on 127.0.0.1 (see the module docs). Stops when dropped; a
/// function still polling it then sees its connection closed and exits.
#[derive(Debug)]
pub struct RuntimeApi {
    server: Server,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("polls", &self.polls.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub async fn start() -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            waiting: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            first_poll: OnceLock::new(),
            polls: AtomicU64::new(0),
            connections: Arc::new(AtomicU64::new(0)),
            stopped: std::sync::atomic::AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            function_name: Mutex::new("function".to_owned()),
        });
        let handler_state = Arc::clone(&shared);
        let connections = Arc::clone(&shared.connections);
        let server = Server::spawn(
            listener,
            move |_| {
                connections.fetch_add(1, Ordering::Relaxed);
            },
            move |req| handle(Arc::clone(&handler_state), req),
        );
        Ok(Self { server, shared })
    }

    /// The address the function must use (`AWS_LAMBDA_RUNTIME_API` is `ip:port`, no scheme).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The environment Lambda gives a function, pointed at this server. Also sets the function
    /// name used in `Lambda-Runtime-Invoked-Function-Arn`.
    pub fn env(&self, function_name: &str) -> Vec<(String, String)> {
        function_name.clone_into(
            &mut self
                .shared
                .function_name
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        [
            ("AWS_LAMBDA_RUNTIME_API", self.addr().to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_owned()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                FUNCTION_MEMORY_MB.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/01/01/[$LATEST]00000000000000000000000000000000".to_owned(),
            ),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// Queues one event and waits up to [`DEFAULT_INVOKE_TIMEOUT`] for the function's answer.
    pub async fn invoke(&self, payload: Vec<u8>) -> Result<Vec<u8>, InvokeError> {
        self.invoke_timeout(payload, DEFAULT_INVOKE_TIMEOUT).await
    }

    /// Queues one event and waits up to `timeout` for the function's answer. The timeout is
    /// also the deadline the function is told. An invocation that times out before the
    /// function picked it up is withdrawn.
    pub async fn invoke_timeout(
        &self,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvokeError> {
        if let Some(err) = self
            .shared
            .init_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Err(err);
        }
        if self.shared.stopped.load(Ordering::Acquire) {
            return Err(InvokeError::Shutdown);
        }
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let id = format!("00000000-0000-4000-8000-{n:012x}");
        let (tx, rx) = oneshot::channel();
        self.shared.waiting().insert(id.clone(), tx);
        let deadline_ms = (SystemTime::now() + timeout)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let queued = Invocation {
            id: id.clone(),
            payload: Bytes::from(payload),
            deadline_ms,
        };
        if self.shared.queue_tx.send(queued).is_err() {
            self.shared.waiting().remove(&id);
            return Err(InvokeError::Shutdown);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(InvokeError::Shutdown),
            Err(_) => {
                self.shared.waiting().remove(&id);
                Err(InvokeError::Timeout(timeout))
            }
        }
    }

    /// When the function first asked for an event: process start to this instant is the cold
    /// start a benchmark wants.
    pub fn first_poll_at(&self) -> Option<Instant> {
        self.shared.first_poll.get().copied()
    }

    /// Waits up to `timeout` for the function's first `next` request and returns its time
    /// ([`Self::first_poll_at`]); `None` if it did not come.
    pub async fn wait_first_poll(&self, timeout: Duration) -> Option<Instant> {
        let start = Instant::now();
        loop {
            if let Some(at) = self.first_poll_at() {
                return Some(at);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            // The instant itself is taken by the server; polling here only has to notice it.
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// How many `next` requests arrived so far.
    pub fn polls(&self) -> u64 {
        self.shared.polls.load(Ordering::Relaxed)
    }

    /// How many TCP connections were accepted so far (keep-alive clients reuse one).
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Stops the server and closes every connection; pending invocations end with
    /// [`InvokeError::Shutdown`].
    pub async fn shutdown(&mut self) {
        self.shared.stopped.store(true, Ordering::Release);
        self.server.shutdown().await;
        self.shared.waiting().clear();
    }
}

/// Routes one request of the Runtime API.
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    let path = req.uri().path().to_owned();
    let Some(route) = path.strip_prefix(PATH_PREFIX) else {
        return Ok(error_reply(404, "unknown path"));
    };
    let method = req.method().clone();
    match (method, route) {
        (Method::GET, "invocation/next") => Ok(next(&shared).await),
        (Method::POST, "init/error") => {
            let (error_type, body) = error_parts(req).await;
            let err = InvokeError::Init { error_type, body };
            *shared
                .init_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(err.clone());
            for (_, waiter) in shared.waiting().drain() {
                let _ = waiter.send(Err(err.clone()));
            }
            Ok(accepted())
        }
        (Method::POST, route) => {
            let Some((id, kind)) = route
                .strip_prefix("invocation/")
                .and_then(|rest| rest.split_once('/'))
            else {
                return Ok(error_reply(404, "unknown path"));
            };
            let outcome = match kind {
                "response" => match read_body(req.into_body()).await {
                    Some(body) => Ok(body.to_vec()),
                    None => return Err(DropConnection),
                },
                "error" => {
                    let (error_type, body) = error_parts(req).await;
                    Err(InvokeError::Function { error_type, body })
                }
                _ => return Ok(error_reply(404, "unknown path")),
            };
            // An id nobody waits for: unknown, already answered, or timed out.
            let Some(waiter) = shared.waiting().remove(id) else {
                return Ok(error_reply(400, "unknown or finished request id"));
            };
            let _ = waiter.send(outcome);
            Ok(accepted())
        }
        _ => Ok(error_reply(405, "method not allowed")),
    }
}

/// Long-polls the queue and hands out the next event still wanted.
async fn next(shared: &Shared) -> Reply {
    shared.first_poll.get_or_init(Instant::now);
    shared.polls.fetch_add(1, Ordering::Relaxed);
    loop {
        let invocation = shared.queue_rx.lock().await.recv().await;
        let Some(invocation) = invocation else {
            return error_reply(500, "queue closed");
        };
        // Skip events withdrawn by a timed-out invoke.
        if !shared.waiting().contains_key(&invocation.id) {
            continue;
        }
        let deadline = invocation.deadline_ms.to_string();
        let arn = shared.function_arn();
        let trace = format!(
            "Root=1-00000000-{:024x};Parent=0000000000000000;Sampled=0",
            invocation.deadline_ms
        );
        return reply(
            200,
            &[
                ("content-type", "application/json"),
                ("lambda-runtime-aws-request-id", &invocation.id),
                ("lambda-runtime-deadline-ms", &deadline),
                ("lambda-runtime-invoked-function-arn", &arn),
                ("lambda-runtime-trace-id", &trace),
            ],
            invocation.payload,
        );
    }
}

async fn error_parts(req: Request<Incoming>) -> (Option<String>, Vec<u8>) {
    let error_type = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = read_body(req.into_body())
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (error_type, body)
}

fn accepted() -> Reply {
    reply(
        202,
        &[("content-type", "application/json")],
        r#"{"status":"OK"}"#,
    )
}

fn error_reply(status: u16, message: &str) -> Reply {
    let body = serde_json::json!({ "errorMessage": message, "errorType": "InvalidRequest" });
    reply(
        status,
        &[("content-type", "application/json")],
        body.to_string(),
    )
}

/// Starts the Lambda binary `bin` against `api` with the Lambda environment of
/// [`RuntimeApi::env`] (function name: the file name of `bin`) plus `extra_env`. Its stdout and
/// stderr go to files readable through the guard, and are printed if a test panics while the
/// guard is alive.
pub fn spawn_function<K, V>(
    bin: &Path,
    api: &RuntimeApi,
    extra_env: impl IntoIterator<Item = (K, V)>,
) -> io::Result<ChildGuard>
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "function".to_owned());
    let mut command = std::process::Command::new(bin);
    command.env_clear();
    // Keep what a process needs to run at all; Lambda's own environment is equally small.
    for key in ["PATH", "HOME", "TMPDIR", "RUST_BACKTRACE", "RUST_LOG"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(api.env(&name));
    command.envs(extra_env);
    ChildGuard::spawn(&name, command)
}
