//! The whole route as the end-to-end tests and the local demo drive it: a fake pod's metadata
//! (Downward API files and environment, optionally a pod object served as the Kubernetes API
//! would), the `firetail` sidecar binary, Firehose's processor role (records batched into
//! transformation events for the real `firetail-transform` binary over the Runtime API), and
//! decoding what comes out per destination, so events can be counted by sequence number.
//!
//! # Layout
//! - [`FakePod`]: names, labels, annotations; [`FakePod::write_podinfo`], [`FakePod::env`].
//! - [`FakeKubeApi`]: a CANNED-RESPONSE stand-in for the Kubernetes API's pod GET (no API server
//!   runs on these machines); it only answers `GET /api/v1/namespaces/{ns}/pods/{name}`.
//! - [`sidecar_command`]: the `firetail` binary's environment for a pod and an endpoint.
//! - [`Processor`]: Firehose's side of the processor contract — batching records into
//!   invocations and checking that every record id comes back exactly once.
//! - [`seq_of`], [`Tally`]: counting events by their unique sequence numbers.
//!
//! Records decode into events with [`crate::records`].

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::runtime_api::RuntimeApi;
use crate::server::{DropConnection, Reply, Server, reply};

pub use firetail_wire::Destination;
pub use firetail_wire::limits::{LAMBDA_REQUEST_LIMIT_BYTES, PROCESSOR_DEFAULT_BUFFER_BYTES};

/// A pod as the Downward API describes it.
#[derive(Debug, Clone)]
pub struct FakePod {
    /// `POD_NAMESPACE`.
    pub namespace: String,
    /// `POD_NAME`.
    pub name: String,
    /// `POD_UID`.
    pub uid: String,
    /// `NODE_NAME` (a Fargate node).
    pub node: String,
    /// The `labels` file.
    pub labels: Vec<(String, String)>,
    /// The `annotations` file.
    pub annotations: Vec<(String, String)>,
}

impl Default for FakePod {
    fn default() -> Self {
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            namespace: "shop".into(),
            name: "checkout-7d4b9c8f6d-x2x9k".into(),
            uid: "0b7c9a52-5f3e-4d1c-9a4e-6a1c2d3e4f50".into(),
            node: "fargate-ip-10-0-12-34.ec2.internal".into(),
            labels: pairs(&[
                ("app.kubernetes.io/name", "checkout"),
                ("tags.datadoghq.com/env", "demo"),
                ("tags.datadoghq.com/service", "checkout"),
                ("tags.datadoghq.com/version", "2.3.1"),
            ]),
            annotations: pairs(&[("CapacityProvisioned", "0.25vCPU 0.5GB")]),
        }
    }
}

impl FakePod {
    /// Writes `labels` and `annotations` into `dir` in the Downward API's file format
    /// (`key="value"` per line, values quoted and escaped).
    pub fn write_podinfo(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let render = |pairs: &[(String, String)]| -> String {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={}\n", Value::String(v.clone())))
                .collect()
        };
        std::fs::write(dir.join("labels"), render(&self.labels))?;
        std::fs::write(dir.join("annotations"), render(&self.annotations))
    }

    /// `POD_NAME`, `POD_NAMESPACE`, `POD_UID`, `NODE_NAME` and `FIRETAIL_PODINFO_DIR`.
    pub fn env(&self, podinfo_dir: &Path) -> Vec<(String, String)> {
        vec![
            ("POD_NAME".into(), self.name.clone()),
            ("POD_NAMESPACE".into(), self.namespace.clone()),
            ("POD_UID".into(), self.uid.clone()),
            ("NODE_NAME".into(), self.node.clone()),
            (
                "FIRETAIL_PODINFO_DIR".into(),
                podinfo_dir.display().to_string(),
            ),
        ]
    }

    /// The runtime id the fake API gives `container`: 64 hex digits derived from its name.
    pub fn docker_id(container: &str) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in container.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}").repeat(4)
    }

    /// The pod object for `containers` (all running), as `GET .../pods/{name}` returns it.
    pub fn api_object(&self, containers: &[&str]) -> Value {
        let spec: Vec<Value> = containers
            .iter()
            .map(|c| serde_json::json!({"name": c, "image": format!("shop/{c}:2.3.1")}))
            .collect();
        let statuses: Vec<Value> = containers
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c,
                    "image": format!("registry.example/shop/{c}:2.3.1"),
                    "containerID": format!("containerd://{}", Self::docker_id(c)),
                    "state": {"running": {}}
                })
            })
            .collect();
        serde_json::json!({
            "kind": "Pod",
            "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid},
            "spec": {"containers": spec},
            "status": {"containerStatuses": statuses}
        })
    }
}

/// A CANNED-RESPONSE stand-in for the Kubernetes API (plain HTTP on 127.0.0.1): answers
/// `GET /api/v1/namespaces/{ns}/pods/{name}` with a fixed pod object, 404 otherwise.
#[derive(Debug)]
pub struct FakeKubeApi {
    server: Server,
    served: Arc<Mutex<u64>>,
}

impl FakeKubeApi {
    /// Serves `pod`'s object with `containers` running.
    pub async fn start(pod: &FakePod, containers: &[&str]) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let path = format!("/api/v1/namespaces/{}/pods/{}", pod.namespace, pod.name);
        let body = pod.api_object(containers).to_string();
        let served = Arc::new(Mutex::new(0));
        let count = Arc::clone(&served);
        let server = Server::spawn(
            listener,
            |_| {},
            move |req: Request<Incoming>| {
                let ok = req.method() == hyper::Method::GET && req.uri().path() == path;
                let body = body.clone();
                let count = Arc::clone(&count);
                async move {
                    let answer: Result<Reply, DropConnection> = Ok(if ok {
                        *count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
                        reply(200, &[("content-type", "application/json")], body)
                    } else {
                        reply(404, &[("content-type", "application/json")], "{}")
                    });
                    answer
                }
            },
        );
        Ok(Self { server, served })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Pod GETs answered 200 so far.
    pub fn served(&self) -> u64 {
        *self.served.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The `firetail` binary's environment for this stand-in: its address and a token file
    /// written under `dirs` (the binary accepts plain `http://` for loopback only).
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

/// Where a sidecar run keeps its files: `<root>/logs/<container>/*.log` (the emptyDir),
/// `<root>/data` (checkpoints, on the emptyDir in a pod), `<root>/podinfo` (Downward API).
#[derive(Debug, Clone)]
pub struct PodDirs {
    /// The base directory.
    pub root: PathBuf,
}

impl PodDirs {
    /// Layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// The directory a container writes to (created).
    pub fn container(&self, name: &str) -> PathBuf {
        let dir = self.root.join("logs").join(name);
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    /// The glob the sidecar tails.
    pub fn glob(&self) -> String {
        format!("{}/**/*.log", self.root.join("logs").display())
    }

    /// Checkpoint directory.
    pub fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    /// Downward API directory.
    pub fn podinfo(&self) -> PathBuf {
        self.root.join("podinfo")
    }
}

/// The `firetail` binary at `bin`, shipping `dirs` to `stream` at the Firehose endpoint `url`
/// in `format`, as the pod `pod` (podinfo files are written here). Short intervals for tests;
/// metrics on a free port; `extra` overrides anything.
pub fn sidecar_command(
    bin: &Path,
    url: &str,
    stream: &str,
    pod: &FakePod,
    dirs: &PodDirs,
    format: &str,
    extra: &[(&str, &str)],
) -> io::Result<Command> {
    pod.write_podinfo(&dirs.podinfo())?;
    let mut cmd = Command::new(bin);
    cmd.envs(crate::aws::sdk_env(url))
        .envs(pod.env(&dirs.podinfo()))
        .env("FIRETAIL_DELIVERY_STREAM", stream)
        .env("FIRETAIL_PATHS", dirs.glob())
        .env("FIRETAIL_DATA_DIR", dirs.data())
        .env("FIRETAIL_RECORD_FORMAT", format)
        .env("FIRETAIL_METRICS_ADDR", "127.0.0.1:0")
        .env("FIRETAIL_KUBERNETES_API", "off")
        .env("FIRETAIL_FLUSH_INTERVAL_MS", "200")
        .env("FIRETAIL_POLL_INTERVAL_MS", "200")
        .env("FIRETAIL_PARTIAL_LINE_TIMEOUT_MS", "300")
        .env("FIRETAIL_MULTILINE_FLUSH_MS", "300")
        .env("FIRETAIL_CHECKPOINT_INTERVAL_MS", "200")
        .env("FIRETAIL_RETRY_BASE_MS", "10")
        .env("FIRETAIL_RETRY_MAX_MS", "200")
        .env("FIRETAIL_DRAIN", "quiet")
        .env("FIRETAIL_DRAIN_QUIET_MS", "1000")
        .env("FIRETAIL_DRAIN_TIMEOUT_SECS", "60")
        .env("FIRETAIL_LOG_FORMAT", "text")
        .env("FIRETAIL_LOG", "info");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    Ok(cmd)
}

/// The outcome of one record of a transformation event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordResult {
    /// Transformed; its data goes to the destination.
    Ok,
    /// Removed on purpose (or re-ingested by the transform).
    Dropped,
    /// Failed; Firehose sends the original to the backup bucket.
    ProcessingFailed,
}

/// What the processor got back for all records.
#[derive(Debug, Default, Clone)]
pub struct Processed {
    /// Invocations made.
    pub invocations: usize,
    /// Per input record, in input order: its result and, for `Ok`, the decoded output data.
    pub results: Vec<(RecordResult, Option<Vec<u8>>)>,
    /// Largest response body seen, in bytes.
    pub largest_response_bytes: usize,
}

impl Processed {
    /// How many records ended with `result`.
    pub fn count(&self, result: RecordResult) -> usize {
        self.results.iter().filter(|(r, _)| *r == result).count()
    }

    /// The output data of every `Ok` record.
    pub fn ok_outputs(&self) -> impl Iterator<Item = &[u8]> {
        self.results.iter().filter_map(|(_, d)| d.as_deref())
    }
}

/// Firehose's processor role: it batches a stream's records into transformation events and
/// checks the function's answer the way Firehose does (every record id exactly once, a known
/// result, data only when `Ok`).
#[derive(Debug, Clone)]
pub struct Processor {
    /// The delivery stream ARN the events name (the transform re-ingests into it).
    pub stream_arn: String,
    /// Record data per invocation (decoded bytes), like Firehose's processor buffer size.
    pub buffer_bytes: usize,
    /// `approximateArrivalTimestamp` of every record.
    pub arrival_ms: u64,
}

impl Processor {
    /// A processor for `stream_arn` with the default buffer.
    pub fn new(stream_arn: &str) -> Self {
        Self {
            stream_arn: stream_arn.to_owned(),
            buffer_bytes: PROCESSOR_DEFAULT_BUFFER_BYTES,
            arrival_ms: 1_795_341_600_000,
        }
    }

    /// The transformation events for `records`, each with up to `buffer_bytes` of record data
    /// (at least one record) and within the 6 MB request limit.
    pub fn events(&self, records: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        let mut batch: Vec<(usize, &[u8])> = Vec::new();
        let mut bytes = 0;
        let mut encoded = 0;
        for (i, record) in records.iter().enumerate() {
            let cost = record.len().div_ceil(3) * 4 + 200;
            if !batch.is_empty()
                && (bytes + record.len() > self.buffer_bytes
                    || encoded + cost > LAMBDA_REQUEST_LIMIT_BYTES - 1024)
            {
                events.push(self.event(&batch));
                batch.clear();
                bytes = 0;
                encoded = 0;
            }
            batch.push((i, record));
            bytes += record.len();
            encoded += cost;
        }
        if !batch.is_empty() {
            events.push(self.event(&batch));
        }
        events
    }

    fn event(&self, batch: &[(usize, &[u8])]) -> Vec<u8> {
        let records: Vec<Value> = batch
            .iter()
            .map(|(i, data)| {
                serde_json::json!({
                    "recordId": format!("{i:08}"),
                    "approximateArrivalTimestamp": self.arrival_ms,
                    "data": BASE64.encode(data),
                })
            })
            .collect();
        let event = serde_json::json!({
            "invocationId": format!("00000000-0000-4000-8000-{:012}", batch[0].0),
            "deliveryStreamArn": self.stream_arn,
            "region": crate::aws::REGION,
            "records": records,
        });
        event.to_string().into_bytes()
    }

    /// Invokes the function behind `api` with every record and checks each answer.
    ///
    /// # Errors
    /// A failed invocation, or an answer Firehose would reject (a record id missing, repeated
    /// or unknown, an unknown result, bad base64).
    pub async fn process(
        &self,
        api: &RuntimeApi,
        records: &[Vec<u8>],
    ) -> Result<Processed, String> {
        let mut out = Processed {
            results: vec![(RecordResult::ProcessingFailed, None); records.len()],
            ..Processed::default()
        };
        let mut answered = vec![false; records.len()];
        for event in self.events(records) {
            let asked: Vec<usize> = serde_json::from_slice::<Value>(&event)
                .map_err(|e| e.to_string())?["records"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r["recordId"].as_str()?.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            let body = api.invoke(event).await.map_err(|e| e.to_string())?;
            out.invocations += 1;
            out.largest_response_bytes = out.largest_response_bytes.max(body.len());
            let response: Value =
                serde_json::from_slice(&body).map_err(|e| format!("response is not JSON: {e}"))?;
            let answers = response["records"]
                .as_array()
                .ok_or("response without records")?;
            if answers.len() != asked.len() {
                return Err(format!(
                    "{} records sent, {} answered",
                    asked.len(),
                    answers.len()
                ));
            }
            for answer in answers {
                let id: usize = answer["recordId"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("bad recordId in {answer}"))?;
                if !asked.contains(&id) || std::mem::replace(&mut answered[id], true) {
                    return Err(format!("record id {id} unknown or answered twice"));
                }
                let result = match answer["result"].as_str() {
                    Some("Ok") => RecordResult::Ok,
                    Some("Dropped") => RecordResult::Dropped,
                    Some("ProcessingFailed") => RecordResult::ProcessingFailed,
                    other => return Err(format!("record {id}: result {other:?}")),
                };
                let data = match result {
                    RecordResult::Ok => Some(
                        BASE64
                            .decode(answer["data"].as_str().unwrap_or_default())
                            .map_err(|e| format!("record {id}: data: {e}"))?,
                    ),
                    _ => None,
                };
                out.results[id] = (result, data);
            }
        }
        Ok(out)
    }
}

/// The message of an output event: `message` (every destination names it so).
pub fn message_of(event: &Value) -> &str {
    event["message"]
        .as_str()
        .or_else(|| event["log"].as_str())
        .unwrap_or_default()
}

/// The number after the first `seq=` in `text`.
pub fn seq_of(text: &str) -> Option<u64> {
    let rest = &text[text.find("seq=")? + 4..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// How many times each sequence number was seen.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    seen: BTreeMap<u64, u32>,
    unnumbered: u64,
}

impl Tally {
    /// Counts the sequence number in `text` (or an unnumbered event).
    pub fn add(&mut self, text: &str) {
        match seq_of(text) {
            Some(n) => *self.seen.entry(n).or_default() += 1,
            None => self.unnumbered += 1,
        }
    }

    /// Counts every event's message.
    pub fn add_events<'a>(&mut self, events: impl IntoIterator<Item = &'a Value>) {
        for e in events {
            self.add(message_of(e));
        }
    }

    /// Sequence numbers of `expected` never seen.
    pub fn missing(&self, expected: impl IntoIterator<Item = u64>) -> Vec<u64> {
        expected
            .into_iter()
            .filter(|n| !self.seen.contains_key(n))
            .collect()
    }

    /// Extra copies: the sum over sequence numbers of (times seen - 1).
    pub fn duplicates(&self) -> u64 {
        self.seen.values().map(|n| u64::from(n - 1)).sum()
    }

    /// Sequence numbers seen more than once, in order.
    pub fn duplicated(&self) -> Vec<u64> {
        self.seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| *k)
            .collect()
    }

    /// The most times any sequence number was seen (0 when none was).
    pub fn most_copies(&self) -> u32 {
        self.seen.values().copied().max().unwrap_or(0)
    }

    /// Distinct sequence numbers seen.
    pub fn distinct(&self) -> usize {
        self.seen.len()
    }

    /// Events seen in total (numbered or not).
    pub fn total(&self) -> u64 {
        self.seen.values().map(|n| u64::from(*n)).sum::<u64>() + self.unnumbered
    }

    /// Events without a sequence number.
    pub fn unnumbered(&self) -> u64 {
        self.unnumbered
    }

    /// Sequence numbers seen that are not in `expected`.
    pub fn unexpected(&self, expected: &std::collections::BTreeSet<u64>) -> Vec<u64> {
        self.seen
            .keys()
            .filter(|n| !expected.contains(n))
            .copied()
            .collect()
    }

    /// Asserts every one of `expected` was seen exactly once and nothing else was.
    ///
    /// # Errors
    /// A description of what was lost, duplicated or unexpected.
    pub fn exactly_once(&self, expected: impl IntoIterator<Item = u64>) -> Result<(), String> {
        let expected: std::collections::BTreeSet<u64> = expected.into_iter().collect();
        let missing = self.missing(expected.iter().copied());
        let dup: Vec<u64> = self
            .seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| *k)
            .collect();
        let unexpected = self.unexpected(&expected);
        if missing.is_empty() && dup.is_empty() && unexpected.is_empty() && self.unnumbered == 0 {
            return Ok(());
        }
        Err(format!(
            "{} lost (first {:?}), {} duplicated (first {:?}), {} unexpected (first {:?}), {} unnumbered",
            missing.len(),
            missing.first(),
            dup.len(),
            dup.first(),
            unexpected.len(),
            unexpected.first(),
            self.unnumbered
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seq_and_tally() {
        assert_eq!(seq_of("GET /cart seq=42 200"), Some(42));
        assert_eq!(seq_of("seq=7"), Some(7));
        assert_eq!(seq_of("no number"), None);
        let mut t = Tally::default();
        for s in ["seq=1", "seq=2", "seq=2", "plain"] {
            t.add(s);
        }
        assert_eq!(t.duplicates(), 1);
        assert_eq!(t.missing(1..=3), vec![3]);
        assert_eq!(t.total(), 4);
        assert!(t.exactly_once(1..=2).is_err());
    }

    #[test]
    fn processor_batches_by_buffer_size() {
        let p = Processor {
            buffer_bytes: 100,
            ..Processor::new("arn")
        };
        let records: Vec<Vec<u8>> = (0..10).map(|_| vec![b'x'; 40]).collect();
        let events = p.events(&records);
        assert_eq!(events.len(), 5, "two 40-byte records per 100-byte buffer");
        let first: Value = serde_json::from_slice(&events[0]).unwrap();
        assert_eq!(first["records"][1]["recordId"], "00000001");
    }
}
