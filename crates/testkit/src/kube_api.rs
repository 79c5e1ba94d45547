//! A STAND-IN for the Kubernetes API's pod and pod-log endpoints (plain HTTP on 127.0.0.1;
//! no API server runs on these machines), for the sidecar's stdout source.
//!
//! It serves `GET /api/v1/namespaces/{ns}/pods/{name}` (the pod object, with each container's
//! `containerID`, `restartCount`, `state` and `lastState.terminated.containerID`) and
//! `GET .../pods/{name}/log` with the query parameters `container`, `follow`, `timestamps`,
//! `sinceTime` and `previous`. What it does is modelled on the API server and kubelet, not
//! guessed:
//! - with `timestamps=true` every line is prefixed by its time in Go's `time.RFC3339Nano`
//!   (UTC `Z`, the fraction's trailing zeros trimmed, no fraction when it is zero) and one
//!   space (kubelet `pkg/kubelet/kuberuntime/logs`);
//! - `sinceTime` is RFC 3339 with second precision; lines at or after it are served (the
//!   kubelet skips a line when `since.After(timestamp)`);
//! - `follow=true` keeps a chunked `text/plain` body open until the container instance
//!   terminates; `previous=true` serves the previous (terminated) instance, 400 if none;
//! - errors are `Status` objects (`{"kind":"Status","apiVersion":"v1","status":"Failure",
//!   "message","reason","code"}`), e.g. 400 `container "app" in pod "p" is waiting to start:
//!   ContainerCreating`, 403 `Forbidden` when RBAC denies `pods/log`.
//!
//! Faults are queued per log request ([`LogFault`]): a status answer (429/500/410/... with
//! an optional `Retry-After`), or a stream cut in the middle of a line. Container restarts
//! (a new instance: `restartCount` + 1, a new `containerID`) and exits are driven by the test.
//!
//! # Layout
//! - [`KubeApiStandIn`]: the server and the test's handle on the pod's containers.
//! - [`LogFault`]: what the next log request gets instead of its lines.
//! - [`stamp_text`]: a time as the kubelet writes it.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::route::{FakePod, PodDirs};

/// What the next log request gets instead of its lines.
#[derive(Debug, Clone)]
pub enum LogFault {
    /// An error answer with a `Status` object.
    Status {
        /// HTTP status.
        code: u16,
        /// The Status `reason`.
        reason: String,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// `lines` lines, then half of the next one, then the connection is cut.
    CutAfter {
        /// Whole lines served first.
        lines: usize,
    },
    /// `lines` lines, then nothing more while the connection stays open: a half-dead
    /// connection (a proxy or load balancer that lost the kubelet's side), which the API's
    /// follow stream, having no heartbeat, cannot tell from a quiet container.
    StallAfter {
        /// Whole lines served first.
        lines: usize,
    },
}

#[derive(Debug)]
struct Instance {
    id: String,
    lines: Vec<((i64, u32), String)>,
    terminated: bool,
}

#[derive(Debug)]
struct Container {
    name: String,
    instances: Vec<Instance>,
}

#[derive(Debug)]
struct State {
    namespace: String,
    pod: String,
    uid: String,
    containers: Vec<Container>,
    /// The next line's time: seconds, and a step counter (every 3 lines share a stamp).
    clock: (i64, u64),
    faults: VecDeque<LogFault>,
    forbidden: bool,
    log_requests: Vec<String>,
}

impl State {
    fn container(&mut self, name: &str) -> Option<&mut Container> {
        self.containers.iter_mut().find(|c| c.name == name)
    }

    /// See [`line_stamp`].
    fn next_stamp(&mut self) -> (i64, u32) {
        let stamp = line_stamp(self.clock.0, self.clock.1);
        self.clock.1 += 1;
        stamp
    }

    fn pod_object(&self) -> Value {
        let spec: Vec<Value> = self
            .containers
            .iter()
            .map(|c| json!({"name": c.name, "image": format!("shop/{}:2.3.1", c.name)}))
            .collect();
        let statuses: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let mut s = json!({
                    "name": c.name,
                    "image": format!("registry.example/shop/{}:2.3.1", c.name),
                    "restartCount": c.instances.len().saturating_sub(1),
                    "ready": false,
                });
                match c.instances.last() {
                    None => {
                        s["state"] = json!({"waiting": {"reason": "ContainerCreating"}});
                    }
                    Some(i) => {
                        s["containerID"] = json!(i.id);
                        s["state"] = if i.terminated {
                            json!({"terminated": {"exitCode": 0, "reason": "Completed", "containerID": i.id}})
                        } else {
                            json!({"running": {"startedAt": "2026-12-02T19:00:00Z"}})
                        };
                    }
                }
                s["lastState"] = match c.instances.len().checked_sub(2).map(|k| &c.instances[k]) {
                    Some(prev) => json!({"terminated": {"exitCode": 1, "reason": "Error", "containerID": prev.id}}),
                    None => json!({}),
                };
                s
            })
            .collect();
        json!({
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {"name": self.pod, "namespace": self.namespace, "uid": self.uid},
            "spec": {"containers": spec},
            "status": {"phase": "Running", "containerStatuses": statuses}
        })
    }
}

/// The stand-in's clock starts here (2026-12-02T19:00:00Z).
pub const FIRST_STAMP_SECS: i64 = 1_796_238_000;

/// The time (seconds, nanoseconds) the stand-in gives the `n`-th line written to it (across
/// all containers, from 0), its clock started at `first_secs`: three lines per stamp, 1 ms
/// apart, so trimmed fractions (`.001`, `.01`, `.1`) and whole seconds all occur and several
/// lines share a timestamp. Tests use it to tell which lines a checkpointed stamp covers.
pub fn line_stamp(first_secs: i64, n: u64) -> (i64, u32) {
    let ms = n / 3;
    (
        first_secs + i64::try_from(ms / 1000).unwrap_or(0),
        u32::try_from(ms % 1000).unwrap_or(0) * 1_000_000,
    )
}

/// A time as the kubelet writes it with `timestamps=true` (Go's `time.RFC3339Nano`, UTC).
pub fn stamp_text(secs: i64, nanos: u32) -> String {
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = firetail_wire::time::civil_from_days(secs.div_euclid(86_400));
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if nanos > 0 {
        out.push('.');
        out.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// `sinceTime` (RFC 3339, seconds; a fraction is ignored as the API server's parser does).
fn parse_since(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { text.get(r)?.parse().ok() };
    if b.len() < 20 {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + s)
}

/// The body of a log answer: chunks from a producer task; an `Err` cuts the connection.
struct ChanBody {
    rx: mpsc::Receiver<Result<Bytes, io::Error>>,
}

impl Body for ChanBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

type Reply = Response<ChanBody>;

fn answer(status: u16, content_type: &str, body: Vec<u8>, retry_after: Option<u64>) -> Reply {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Ok(Bytes::from(body)));
    let mut r = Response::new(ChanBody { rx });
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Some(secs) = retry_after {
        r.headers_mut().insert(
            hyper::header::RETRY_AFTER,
            hyper::header::HeaderValue::from(secs),
        );
    }
    r
}

fn status_reply(code: u16, reason: &str, message: &str, retry_after: Option<u64>) -> Reply {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code
    });
    answer(
        code,
        "application/json",
        body.to_string().into_bytes(),
        retry_after,
    )
}

/// The Kubernetes API stand-in; stops when dropped.
#[derive(Debug)]
pub struct KubeApiStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl KubeApiStandIn {
    /// Serves `pod` with `running` containers (first instance each, its id
    /// [`FakePod::docker_id`]) and `waiting` ones (not started yet).
    pub async fn start(pod: &FakePod, running: &[&str], waiting: &[&str]) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let mut containers: Vec<Container> = running
            .iter()
            .map(|name| Container {
                name: (*name).to_owned(),
                instances: vec![Instance {
                    id: format!("containerd://{}", FakePod::docker_id(name)),
                    lines: Vec::new(),
                    terminated: false,
                }],
            })
            .collect();
        containers.extend(waiting.iter().map(|name| Container {
            name: (*name).to_owned(),
            instances: Vec::new(),
        }));
        let state = Arc::new(Mutex::new(State {
            namespace: pod.namespace.clone(),
            pod: pod.name.clone(),
            uid: pod.uid.clone(),
            containers,
            // 2026-12-02T19:00:00Z
            clock: (FIRST_STAMP_SECS, 0),
            faults: VecDeque::new(),
            forbidden: false,
            log_requests: Vec::new(),
        }));
        let changed = Arc::new(Notify::new());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (st, ch) = (Arc::clone(&state), Arc::clone(&changed));
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let (st, ch) = (Arc::clone(&st), Arc::clone(&ch));
                        connections.spawn(async move {
                            let service = service_fn(move |req| {
                                let (st, ch) = (Arc::clone(&st), Arc::clone(&ch));
                                async move { Ok::<_, io::Error>(handle(req, st, ch)) }
                            });
                            let _ = http1::Builder::new()
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
        Ok(Self {
            addr,
            state,
            changed,
            stop: Some(stop),
            task: Some(task),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends `lines` to `container`'s current instance, stamped by the stand-in's clock.
    ///
    /// # Panics
    /// If the container is unknown or has not started.
    pub fn write<I: IntoIterator<Item = String>>(&self, container: &str, lines: I) {
        let mut s = self.lock();
        let stamped: Vec<((i64, u32), String)> =
            lines.into_iter().map(|l| (s.next_stamp(), l)).collect();
        let c = s
            .container(container)
            .unwrap_or_else(|| panic!("no container {container}"));
        let inst = c
            .instances
            .last_mut()
            .unwrap_or_else(|| panic!("{container} has not started"));
        inst.lines.extend(stamped);
        drop(s);
        self.changed.notify_waiters();
    }

    /// Starts a waiting container, or restarts one: its current instance terminates and a new
    /// one (restartCount + 1, a new containerID) runs.
    ///
    /// # Panics
    /// If the container is unknown.
    pub fn restart(&self, container: &str) {
        let mut s = self.lock();
        let c = s
            .container(container)
            .unwrap_or_else(|| panic!("no container {container}"));
        if let Some(last) = c.instances.last_mut() {
            last.terminated = true;
        }
        let n = c.instances.len();
        c.instances.push(Instance {
            id: Self::id_of(container, n),
            lines: Vec::new(),
            terminated: false,
        });
        drop(s);
        self.changed.notify_waiters();
    }

    /// The current instance of `container` exits (its follow streams end).
    pub fn terminate(&self, container: &str) {
        let mut s = self.lock();
        if let Some(last) = s.container(container).and_then(|c| c.instances.last_mut()) {
            last.terminated = true;
        }
        drop(s);
        self.changed.notify_waiters();
    }

    /// The `containerID` of `container`'s instance number `n` (0: the first).
    pub fn id_of(container: &str, n: usize) -> String {
        if n == 0 {
            format!("containerd://{}", FakePod::docker_id(container))
        } else {
            format!(
                "containerd://{}",
                FakePod::docker_id(&format!("{container}#{n}"))
            )
        }
    }

    /// Queues a fault for the next log request.
    pub fn push_fault(&self, fault: LogFault) {
        self.lock().faults.push_back(fault);
    }

    /// Whether RBAC denies `pods/log` (403 to every log request).
    pub fn set_forbidden(&self, forbidden: bool) {
        self.lock().forbidden = forbidden;
    }

    /// Path and query of every log request so far.
    pub fn log_requests(&self) -> Vec<String> {
        self.lock().log_requests.clone()
    }

    /// Ends every open stream (as an API server restart does) by stopping the server.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// The `firetail` binary's environment for this stand-in: its address and a token file
    /// written under `dirs`.
    pub fn sidecar_env(&self, dirs: &PodDirs) -> io::Result<Vec<(String, String)>> {
        let token = dirs.root.join("kube-token");
        std::fs::write(&token, "stand-in-token")?;
        Ok(vec![
            ("FIRETAIL_KUBERNETES_API".into(), "auto".into()),
            ("FIRETAIL_KUBERNETES_API_URL".into(), self.url()),
            (
                "FIRETAIL_KUBERNETES_TOKEN_FILE".into(),
                token.display().to_string(),
            ),
        ])
    }
}

impl Drop for KubeApiStandIn {
    fn drop(&mut self) {
        self.stop.take();
    }
}

fn handle(req: Request<Incoming>, state: Arc<Mutex<State>>, changed: Arc<Notify>) -> Reply {
    let lock = || state.lock().unwrap_or_else(PoisonError::into_inner);
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let (pod_path, pod_name) = {
        let s = lock();
        (
            format!("/api/v1/namespaces/{}/pods/{}", s.namespace, s.pod),
            s.pod.clone(),
        )
    };
    if req.method() != hyper::Method::GET {
        return status_reply(405, "MethodNotAllowed", "only GET", None);
    }
    if path == pod_path {
        return answer(
            200,
            "application/json",
            lock().pod_object().to_string().into_bytes(),
            None,
        );
    }
    if path != format!("{pod_path}/log") {
        return status_reply(
            404,
            "NotFound",
            "the server could not find the requested resource",
            None,
        );
    }
    let mut s = lock();
    s.log_requests
        .push(format!("{path}?{}", req.uri().query().unwrap_or_default()));
    if s.forbidden {
        let message = format!(
            "pods \"{pod_name}\" is forbidden: User \"system:serviceaccount:{ns}:checkout\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"{ns}\"",
            ns = s.namespace
        );
        return status_reply(403, "Forbidden", &message, None);
    }
    let fault = s.faults.pop_front();
    let cut_after = match fault {
        Some(LogFault::Status {
            code,
            reason,
            retry_after,
        }) => {
            return status_reply(
                code,
                &reason,
                &format!("stand-in fault {code}"),
                retry_after,
            );
        }
        Some(LogFault::CutAfter { lines }) => Some(lines),
        Some(LogFault::StallAfter { .. }) | None => None,
    };
    let stall_after = match fault {
        Some(LogFault::StallAfter { lines }) => Some(lines),
        _ => None,
    };
    let container = query.get("container").cloned().unwrap_or_default();
    let flag = |k: &str| query.get(k).is_some_and(|v| v == "true");
    let (follow, previous, timestamps) = (flag("follow"), flag("previous"), flag("timestamps"));
    let since = query.get("sinceTime").map(|t| t.replace("%3A", ":"));
    let since = match since.as_deref().map(parse_since) {
        Some(None) => {
            return status_reply(400, "BadRequest", "sinceTime: cannot parse", None);
        }
        Some(Some(secs)) => Some(secs),
        None => None,
    };
    let Some(c) = s.container(&container) else {
        let message = format!("container {container} is not valid for pod {pod_name}");
        return status_reply(400, "BadRequest", &message, None);
    };
    let n = c.instances.len();
    let index = if previous {
        match n.checked_sub(2) {
            Some(i) => i,
            None => {
                let message = format!(
                    "previous terminated container \"{container}\" in pod \"{pod_name}\" not found"
                );
                return status_reply(400, "BadRequest", &message, None);
            }
        }
    } else {
        match n.checked_sub(1) {
            Some(i) => i,
            None => {
                let message = format!(
                    "container \"{container}\" in pod \"{pod_name}\" is waiting to start: ContainerCreating"
                );
                return status_reply(400, "BadRequest", &message, None);
            }
        }
    };
    drop(s);
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut cursor = 0usize;
        let mut served = 0usize;
        loop {
            let notified = changed.notified();
            let (chunk, done) = {
                let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(inst) = s.container(&container).map(|c| &c.instances[index]) else {
                    return;
                };
                let mut chunk = Vec::new();
                let mut cut = false;
                for ((secs, nanos), line) in &inst.lines[cursor..] {
                    cursor += 1;
                    if since.is_some_and(|t| *secs < t) {
                        continue;
                    }
                    let text = if timestamps {
                        format!("{} {line}\n", stamp_text(*secs, *nanos))
                    } else {
                        format!("{line}\n")
                    };
                    if stall_after.is_some_and(|n| served >= n) {
                        break;
                    }
                    if cut_after.is_some_and(|n| served >= n) {
                        chunk.extend_from_slice(&text.as_bytes()[..text.len() / 2]);
                        cut = true;
                        break;
                    }
                    chunk.extend_from_slice(text.as_bytes());
                    served += 1;
                }
                let done = cut || !follow || inst.terminated;
                (
                    chunk,
                    if cut {
                        Some(true)
                    } else if done {
                        Some(false)
                    } else {
                        None
                    },
                )
            };
            if !chunk.is_empty() && tx.send(Ok(Bytes::from(chunk))).await.is_err() {
                return;
            }
            if stall_after.is_some_and(|n| served >= n) {
                // Hold the connection open, send nothing, until the client gives up on it.
                tx.closed().await;
                return;
            }
            match done {
                Some(true) => {
                    let _ = tx
                        .send(Err(io::Error::new(io::ErrorKind::ConnectionReset, "cut")))
                        .await;
                    return;
                }
                Some(false) => return,
                None => {
                    let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                }
            }
        }
    });
    let mut r = Response::new(ChanBody { rx });
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stamps_are_written_as_go_writes_rfc3339nano() {
        assert_eq!(stamp_text(1_796_238_000, 0), "2026-12-02T19:00:00Z");
        assert_eq!(
            stamp_text(1_796_238_000, 10_000_000),
            "2026-12-02T19:00:00.01Z"
        );
        assert_eq!(
            stamp_text(1_796_238_000, 123_400_000),
            "2026-12-02T19:00:00.1234Z"
        );
        assert_eq!(parse_since("2026-12-02T19:00:00Z"), Some(1_796_238_000));
    }
}
