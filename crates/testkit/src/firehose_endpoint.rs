//! A FAULT-INJECTING Firehose endpoint on 127.0.0.1: it speaks the AWS JSON 1.1 protocol the
//! SDKs use for Amazon Data Firehose, accepts any SigV4 signature, enforces the service's call
//! limits, records every record it accepts, and misbehaves on purpose as a [`FaultPlan`] says:
//! per-record failures, throttled calls, HTTP 5xx, slow answers, connection resets, lost acks
//! and a dead window. moto cannot produce any of these; this endpoint exists for them and for
//! benchmarks (the `firehose-endpoint` binary runs it standalone).
//!
//! # Layout
//! - [`FirehoseEndpoint`]: the server, its record log ([`FirehoseEndpoint::accepted`]) and
//!   counters ([`FirehoseEndpoint::stats`]).
//! - [`FaultPlan`]: what goes wrong and how often, drawn from a seeded generator.
//! - [`Stats`]: a snapshot of the counters.
//! - [`TestCa`]: a generated certificate authority and server certificate, for serving
//!   HTTPS ([`EndpointOptions::tls`]) to clients that speak only TLS (Fluent Bit's
//!   `kinesis_firehose` output). Clients trust it through its PEM ([`TestCa::ca_pem`]): the
//!   AWS SDK for Rust through `SSL_CERT_FILE`, Fluent Bit through `tls.ca_file`.
//!
//! # Protocol
//! `POST /` with `X-Amz-Target: Firehose_20150804.{PutRecordBatch|PutRecord|DescribeDeliveryStream}`.
//! Answers have the service's shapes (`FailedPutCount`, `Encrypted`, `RequestResponses` with
//! `RecordId` or `ErrorCode` + `ErrorMessage`); errors are `{"__type": .., "message": ..}`.
//!
//! # How faults look to a client
//! - per-record failure: HTTP 200, the entry carries `ErrorCode: ServiceUnavailableException`,
//!   `ErrorMessage: Slow down.` (what the service sends when a stream is over its throughput).
//! - throttled call and dead window: `__type: ServiceUnavailableException` with
//!   [`FaultPlan::throttle_status`], 503 by default. The Rust SDK classifies retries by status
//!   (500/502/503/504) and by a list of throttling codes that does not include this one, so a
//!   503 is retried by the SDK and a 400 surfaces as a modelled error for the caller to retry.
//! - server error: HTTP 500 `InternalFailure` (retried by the SDK).
//! - reset: the request is read, nothing is recorded, the socket is closed with a TCP reset.
//! - lost ack: the records ARE recorded, then the socket is reset; a client that resends them
//!   creates duplicates, as it would against the real service.
//!
//! Limits: <https://docs.aws.amazon.com/firehose/latest/dev/limits.html> and
//! <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::Deserialize;
use tokio::net::TcpListener;

use crate::server::{DropConnection, Reply, Server, read_body, reply};

use firetail_wire::limits::{
    FIREHOSE_MAX_RECORD_BYTES as MAX_RECORD_BYTES,
    PUT_RECORD_BATCH_MAX_BYTES as MAX_BYTES_PER_CALL,
    PUT_RECORD_BATCH_MAX_RECORDS as MAX_RECORDS_PER_CALL,
};

/// `GET` on this path answers the counters as JSON ([`Stats`]), for scripts polling a
/// standalone endpoint.
pub const STATS_PATH: &str = "/stats";
const TARGET_PREFIX: &str = "Firehose_20150804.";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const ACCOUNT_ID: &str = "123456789012";
const THROTTLE_MESSAGE: &str = "Slow down.";
/// Bodies above this are refused unread. Generous (4x the call limit) so that a call a bit
/// over the limit still gets the service's InvalidArgumentException, not this guard.
const MAX_BODY_BYTES: usize = 4 * MAX_BYTES_PER_CALL;

/// What goes wrong, and how often. Ratios are probabilities in `0.0..=1.0` drawn per call
/// (per record for `record_failure_ratio`) from a generator seeded with `seed`, so the same
/// sequence of calls meets the same faults. `FaultPlan::default()` never fails.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// Seed of the fault generator.
    pub seed: u64,
    /// Chance that a record in an accepted call is refused with `ServiceUnavailableException`.
    pub record_failure_ratio: f64,
    /// Chance that a call starts a throttling burst.
    pub throttle_ratio: f64,
    /// Calls refused in one burst, the first included (at least 1).
    pub throttle_burst_calls: u32,
    /// HTTP status of a throttled call (503 unless set; see the module docs).
    pub throttle_status: u16,
    /// Chance that a call is answered HTTP 500 `InternalFailure`.
    pub server_error_ratio: f64,
    /// Chance that a call is answered only after `delay`.
    pub delay_ratio: f64,
    /// How long a slow answer takes.
    pub delay: Duration,
    /// Chance that a call's connection is reset before anything is recorded.
    pub reset_ratio: f64,
    /// Chance that a call's records are recorded and then the connection is reset.
    pub lost_ack_ratio: f64,
    /// Every call is throttled for this long after the plan takes effect.
    pub dead_for: Duration,
    /// Stream names that exist; `None` accepts any. Others get `ResourceNotFoundException`.
    pub streams: Option<Vec<String>>,
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self {
            seed: 0,
            record_failure_ratio: 0.0,
            throttle_ratio: 0.0,
            throttle_burst_calls: 1,
            throttle_status: 503,
            server_error_ratio: 0.0,
            delay_ratio: 0.0,
            delay: Duration::ZERO,
            reset_ratio: 0.0,
            lost_ack_ratio: 0.0,
            dead_for: Duration::ZERO,
            streams: None,
        }
    }
}

impl FaultPlan {
    /// A plan that never fails.
    pub fn none() -> Self {
        Self::default()
    }
}

/// How the endpoint is started.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The faults to inject.
    pub plan: FaultPlan,
    /// Keep accepted records for [`FirehoseEndpoint::accepted`]; `false` only counts them
    /// (benchmarks).
    pub keep_records: bool,
    /// Count the events inside accepted records ([`Stats::events`]): newlines, after
    /// gunzipping a record that starts with the gzip magic. Costs CPU in the endpoint.
    pub count_events: bool,
    /// Serve HTTPS with this certificate instead of plain HTTP. TLS is terminated in front
    /// of the plain server (one more hop on 127.0.0.1 inside the endpoint process), so the
    /// protocol, the counters and the faults are the same; a reset fault reaches the client
    /// as the TLS connection's reset.
    pub tls: Option<TestCa>,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        Self {
            port: 0,
            plan: FaultPlan::default(),
            keep_records: true,
            count_events: false,
            tls: None,
        }
    }
}

/// One accepted record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedRecord {
    /// The delivery stream it was sent to.
    pub stream: String,
    /// The decoded record bytes.
    pub data: Vec<u8>,
}

/// A snapshot of the endpoint's counters (also served as JSON on `GET /stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// HTTP requests received (any target, any outcome).
    pub requests: u64,
    /// Records accepted (each got a `RecordId`, lost acks included).
    pub records_accepted: u64,
    /// Records refused one by one (an `ErrorCode` in `RequestResponses`).
    pub records_failed: u64,
    /// Decoded bytes of the accepted records.
    pub bytes_accepted: u64,
    /// What Firehose would bill for the accepted records: each rounded up to
    /// `firetail_wire::limits::BILLING_INCREMENT_BYTES`.
    pub billed_bytes: u64,
    /// Newline-terminated events inside the accepted records (gzip records decompressed);
    /// 0 unless [`EndpointOptions::count_events`]. A gzip record that does not decompress
    /// counts in `undecodable_records` instead.
    pub events: u64,
    /// Accepted records that looked like gzip but did not decompress (with `count_events`).
    pub undecodable_records: u64,
    /// Calls answered `ServiceUnavailableException` as a whole (bursts and dead window).
    pub throttled_calls: u64,
    /// Calls answered HTTP 500.
    pub server_errors: u64,
    /// Connections reset before recording.
    pub resets: u64,
    /// Calls whose records were recorded but whose answer was replaced by a reset.
    pub lost_acks: u64,
    /// Calls rejected as invalid (limits, bad JSON or base64, unknown target or stream).
    pub invalid_calls: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    records_accepted: AtomicU64,
    records_failed: AtomicU64,
    bytes_accepted: AtomicU64,
    billed_bytes: AtomicU64,
    events: AtomicU64,
    undecodable_records: AtomicU64,
    throttled_calls: AtomicU64,
    server_errors: AtomicU64,
    resets: AtomicU64,
    lost_acks: AtomicU64,
    invalid_calls: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The decisions for one call, drawn together under one lock so a seed replays exactly.
#[derive(Debug, Default)]
struct CallFaults {
    throttle: bool,
    reset: bool,
    server_error: bool,
    delay: Option<Duration>,
    lost_ack: bool,
}

#[derive(Debug)]
struct Faults {
    plan: FaultPlan,
    since: Instant,
    rng: Seeded,
    burst_left: u32,
}

impl Faults {
    fn new(plan: FaultPlan) -> Self {
        Self {
            rng: Seeded(fastrand::Rng::with_seed(plan.seed)),
            since: Instant::now(),
            burst_left: 0,
            plan,
        }
    }

    fn draw_call(&mut self) -> CallFaults {
        let plan = &self.plan;
        let mut faults = CallFaults {
            reset: self.rng.chance(plan.reset_ratio),
            ..CallFaults::default()
        };
        if self.since.elapsed() < plan.dead_for {
            faults.throttle = true;
        } else if self.burst_left > 0 {
            self.burst_left -= 1;
            faults.throttle = true;
        } else if self.rng.chance(plan.throttle_ratio) {
            self.burst_left = plan.throttle_burst_calls.saturating_sub(1);
            faults.throttle = true;
        }
        faults.server_error = self.rng.chance(plan.server_error_ratio);
        if self.rng.chance(plan.delay_ratio) {
            faults.delay = Some(plan.delay);
        }
        faults.lost_ack = self.rng.chance(plan.lost_ack_ratio);
        faults
    }
}

/// The fault draws: seeded, so a plan's faults repeat run after run.
#[derive(Debug)]
struct Seeded(fastrand::Rng);

impl Seeded {
    /// True with probability `ratio`; draws nothing for 0 so an unused fault does not shift
    /// the sequence of the others.
    fn chance(&mut self, ratio: f64) -> bool {
        ratio > 0.0 && self.0.f64() < ratio
    }
}

#[derive(Debug)]
struct Shared {
    faults: Mutex<Faults>,
    counters: Counters,
    keep_records: bool,
    count_events: bool,
    accepted: Mutex<Vec<AcceptedRecord>>,
    next_record_id: AtomicU64,
}

impl Shared {
    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The fault-injecting Firehose endpoint (see the module docs). Stops when dropped.
#[derive(Debug)]
pub struct FirehoseEndpoint {
    server: Server,
    shared: Arc<Shared>,
    tls: Option<TlsFront>,
}

impl FirehoseEndpoint {
    /// Starts on a free port of 127.0.0.1, keeping every accepted record.
    pub async fn start(plan: FaultPlan) -> io::Result<Self> {
        Self::start_with(EndpointOptions {
            plan,
            ..EndpointOptions::default()
        })
        .await
    }

    /// Starts with explicit options.
    pub async fn start_with(options: EndpointOptions) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let shared = Arc::new(Shared {
            faults: Mutex::new(Faults::new(options.plan)),
            counters: Counters::default(),
            keep_records: options.keep_records,
            count_events: options.count_events,
            accepted: Mutex::new(Vec::new()),
            next_record_id: AtomicU64::new(1),
        });
        let handler_state = Arc::clone(&shared);
        // Zero linger turns a dropped connection into a reset; normal closes come from clients.
        let server = Server::spawn(
            listener,
            |stream| {
                let _ = stream.set_zero_linger();
            },
            move |req| handle(Arc::clone(&handler_state), req),
        );
        let tls = match options.tls {
            Some(ca) => {
                let inner = server.addr();
                Some(TlsFront::start(&ca, options.port, inner).await?)
            }
            None => None,
        };
        Ok(Self {
            server,
            shared,
            tls,
        })
    }

    /// The bound address (the TLS front's when serving HTTPS).
    pub fn addr(&self) -> SocketAddr {
        match &self.tls {
            Some(front) => front.addr,
            None => self.server.addr(),
        }
    }

    /// The endpoint URL for an SDK client: `http://127.0.0.1:PORT`, or
    /// `https://localhost:PORT` when serving HTTPS (the certificate names `localhost` and
    /// `127.0.0.1`; some clients check an IP address only against DNS names).
    pub fn url(&self) -> String {
        match &self.tls {
            Some(front) => format!("https://localhost:{}", front.addr.port()),
            None => format!("http://{}", self.addr()),
        }
    }

    /// Replaces the fault plan; its generator restarts from the new seed and its dead window
    /// starts now.
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.faults() = Faults::new(plan);
    }

    /// The data of every accepted record, in acceptance order.
    pub fn accepted(&self) -> Vec<Vec<u8>> {
        self.accepted_records()
            .into_iter()
            .map(|record| record.data)
            .collect()
    }

    /// Every accepted record with its stream, in acceptance order.
    pub fn accepted_records(&self) -> Vec<AcceptedRecord> {
        self.shared
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        snapshot(&self.shared.counters)
    }

    /// Waits up to `timeout` until at least `count` records were accepted; returns whether
    /// they were. For tests whose sender runs in another task or process.
    pub async fn wait_accepted(&self, count: u64, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.stats().records_accepted >= count {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops serving and closes every connection.
    pub async fn shutdown(&mut self) {
        if let Some(mut front) = self.tls.take() {
            front.task.abort();
            let _ = (&mut front.task).await;
        }
        self.server.shutdown().await;
    }
}

/// A certificate authority generated for one endpoint, and the server certificate it signed
/// for `localhost` and `127.0.0.1` (ECDSA P-256, made with rcgen). Nothing is written to disk
/// unless the caller writes [`TestCa::ca_pem`].
#[derive(Clone)]
pub struct TestCa {
    ca_pem: String,
    cert_der: rustls::pki_types::CertificateDer<'static>,
    key_der: Arc<Vec<u8>>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// Generates a fresh CA and a server certificate signed by it.
    pub fn generate() -> Result<Self, rcgen::Error> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "firetail testkit CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            cert_der: cert.der().clone(),
            key_der: Arc::new(key.serialize_der()),
        })
    }

    /// The CA certificate in PEM, for a client's trust store.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    fn server_config(&self) -> io::Result<rustls::ServerConfig> {
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(self.key_der.as_slice().to_vec()),
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth()
                    .with_single_cert(vec![self.cert_der.clone()], key)
            })
            .map_err(io::Error::other)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// Terminates TLS on the public port and relays the plain bytes to the HTTP server on its
/// own port of 127.0.0.1. Aborting the task drops every relayed connection.
#[derive(Debug)]
struct TlsFront {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsFront {
    async fn start(ca: &TestCa, port: u16, inner: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(ca.server_config()?));
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((outer, _)) = accepted else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let _ = outer.set_nodelay(true);
                        // A reset of the inner connection becomes a reset of this one.
                        let _ = outer.set_zero_linger();
                        let acceptor = acceptor.clone();
                        connections.spawn(async move {
                            let Ok(mut tls) = acceptor.accept(outer).await else { return };
                            let Ok(mut plain) = tokio::net::TcpStream::connect(inner).await else {
                                return;
                            };
                            let _ = plain.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        });
        Ok(Self { addr, task })
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn snapshot(c: &Counters) -> Stats {
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    Stats {
        requests: get(&c.requests),
        records_accepted: get(&c.records_accepted),
        records_failed: get(&c.records_failed),
        bytes_accepted: get(&c.bytes_accepted),
        billed_bytes: get(&c.billed_bytes),
        events: get(&c.events),
        undecodable_records: get(&c.undecodable_records),
        throttled_calls: get(&c.throttled_calls),
        server_errors: get(&c.server_errors),
        resets: get(&c.resets),
        lost_acks: get(&c.lost_acks),
        invalid_calls: get(&c.invalid_calls),
    }
}

#[derive(Deserialize)]
struct RecordIn<'a> {
    #[serde(rename = "Data", borrow)]
    data: Cow<'a, str>,
}

#[derive(Deserialize)]
struct PutRecordBatchIn<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    stream: Cow<'a, str>,
    #[serde(rename = "Records", borrow)]
    records: Vec<RecordIn<'a>>,
}

#[derive(Deserialize)]
struct PutRecordIn<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    stream: Cow<'a, str>,
    #[serde(rename = "Record", borrow)]
    record: RecordIn<'a>,
}

#[derive(Deserialize)]
struct DescribeIn<'a> {
    #[serde(rename = "DeliveryStreamName", borrow)]
    stream: Cow<'a, str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    PutRecordBatch,
    PutRecord,
    Describe,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    if req.method() == Method::GET && req.uri().path() == STATS_PATH {
        // Not a Firehose call: not counted, never faulted.
        let body = serde_json::to_string(&snapshot(&shared.counters)).unwrap_or_default();
        return Ok(reply(200, &[("content-type", "application/json")], body));
    }
    bump(&shared.counters.requests, 1);
    let operation = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|target| target.strip_prefix(TARGET_PREFIX))
        .and_then(|name| match name {
            "PutRecordBatch" => Some(Operation::PutRecordBatch),
            "PutRecord" => Some(Operation::PutRecord),
            "DescribeDeliveryStream" => Some(Operation::Describe),
            _ => None,
        });
    let is_post = req.method() == Method::POST;
    let too_big = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len > MAX_BODY_BYTES);
    if too_big {
        return Ok(invalid(
            &shared,
            413,
            "SerializationException",
            "request body too large",
        ));
    }
    let Some(body) = read_body(req.into_body()).await else {
        return Err(DropConnection);
    };
    let Some(operation) = operation.filter(|_| is_post) else {
        return Ok(invalid(
            &shared,
            400,
            "UnknownOperationException",
            "only POST with a Firehose_20150804 target is served",
        ));
    };
    let faults = shared.faults().draw_call();
    if faults.reset {
        bump(&shared.counters.resets, 1);
        return Err(DropConnection);
    }
    match operation {
        Operation::Describe => Ok(describe(&shared, &body)),
        Operation::PutRecord | Operation::PutRecordBatch => {
            put(&shared, operation, &body, faults).await
        }
    }
}

async fn put(
    shared: &Shared,
    operation: Operation,
    body: &[u8],
    faults: CallFaults,
) -> Result<Reply, DropConnection> {
    let (stream, records) = match operation {
        Operation::PutRecord => match serde_json::from_slice::<PutRecordIn<'_>>(body) {
            Ok(input) => (input.stream, vec![input.record]),
            Err(e) => {
                return Ok(invalid(
                    shared,
                    400,
                    "SerializationException",
                    &e.to_string(),
                ));
            }
        },
        _ => match serde_json::from_slice::<PutRecordBatchIn<'_>>(body) {
            Ok(input) => (input.stream, input.records),
            Err(e) => {
                return Ok(invalid(
                    shared,
                    400,
                    "SerializationException",
                    &e.to_string(),
                ));
            }
        },
    };
    if let Some(reply) = unknown_stream(shared, &stream) {
        return Ok(reply);
    }
    if records.is_empty() || records.len() > MAX_RECORDS_PER_CALL {
        let message = format!(
            "Records size is {}; it must be between 1 and {MAX_RECORDS_PER_CALL}",
            records.len()
        );
        return Ok(invalid(shared, 400, "InvalidArgumentException", &message));
    }
    // Decode everything first: an invalid call is refused whole, before any fault or record.
    let mut data = Vec::with_capacity(body.len() / 4 * 3);
    let mut ends = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let start = data.len();
        if let Err(e) = BASE64.decode_vec(record.data.as_bytes(), &mut data) {
            let message = format!("Record {index} is not valid base64: {e}");
            return Ok(invalid(shared, 400, "SerializationException", &message));
        }
        let size = data.len() - start;
        if size > MAX_RECORD_BYTES {
            let message = format!(
                "Record {index} has {size} bytes, more than the {MAX_RECORD_BYTES} allowed"
            );
            return Ok(invalid(shared, 400, "InvalidArgumentException", &message));
        }
        ends.push(data.len());
    }
    if data.len() > MAX_BYTES_PER_CALL {
        let message = format!(
            "Records size {} exceeds the {MAX_BYTES_PER_CALL} byte limit per call",
            data.len()
        );
        return Ok(invalid(shared, 400, "InvalidArgumentException", &message));
    }

    if let Some(delay) = faults.delay {
        tokio::time::sleep(delay).await;
    }
    if faults.throttle {
        bump(&shared.counters.throttled_calls, 1);
        let status = shared.faults().plan.throttle_status;
        return Ok(error_reply(
            status,
            "ServiceUnavailableException",
            THROTTLE_MESSAGE,
        ));
    }
    if faults.server_error {
        bump(&shared.counters.server_errors, 1);
        return Ok(error_reply(500, "InternalFailure", "injected server error"));
    }

    // Per-record outcomes, drawn in one go.
    let failed: Vec<bool> = {
        let mut state = shared.faults();
        let ratio = state.plan.record_failure_ratio;
        (0..ends.len()).map(|_| state.rng.chance(ratio)).collect()
    };
    if operation == Operation::PutRecord && failed[0] {
        // PutRecord has no per-record status: the whole call is refused.
        bump(&shared.counters.records_failed, 1);
        let status = shared.faults().plan.throttle_status;
        return Ok(error_reply(
            status,
            "ServiceUnavailableException",
            THROTTLE_MESSAGE,
        ));
    }

    let failed_count = failed.iter().filter(|f| **f).count();
    let accepted_count = ends.len() - failed_count;
    let first_id = shared
        .next_record_id
        .fetch_add(accepted_count as u64, Ordering::Relaxed);
    let mut accepted_bytes = 0u64;
    let mut billed = 0u64;
    let mut events = EventCount::default();
    {
        let mut start = 0;
        for (end, failed) in ends.iter().zip(&failed) {
            if !failed {
                let record = &data[start..*end];
                billed += firetail_wire::limits::billed_bytes(record.len()) as u64;
                if shared.count_events {
                    events.add(record);
                }
            }
            start = *end;
        }
    }
    if shared.keep_records {
        let mut log = shared
            .accepted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut start = 0;
        for (end, failed) in ends.iter().zip(&failed) {
            if !failed {
                log.push(AcceptedRecord {
                    stream: stream.clone().into_owned(),
                    data: data[start..*end].to_vec(),
                });
                accepted_bytes += (end - start) as u64;
            }
            start = *end;
        }
    } else {
        let mut start = 0;
        for (end, failed) in ends.iter().zip(&failed) {
            if !failed {
                accepted_bytes += (end - start) as u64;
            }
            start = *end;
        }
    }
    bump(&shared.counters.records_accepted, accepted_count as u64);
    bump(&shared.counters.records_failed, failed_count as u64);
    bump(&shared.counters.bytes_accepted, accepted_bytes);
    bump(&shared.counters.billed_bytes, billed);
    bump(&shared.counters.events, events.events);
    bump(&shared.counters.undecodable_records, events.undecodable);

    if faults.lost_ack {
        bump(&shared.counters.lost_acks, 1);
        return Err(DropConnection);
    }

    let mut out = String::with_capacity(64 + failed.len() * 80);
    let mut next_id = first_id;
    if operation == Operation::PutRecord {
        let _ = write!(out, r#"{{"Encrypted":false,"RecordId":"{next_id:056x}"}}"#);
    } else {
        let _ = write!(
            out,
            r#"{{"Encrypted":false,"FailedPutCount":{failed_count},"RequestResponses":["#
        );
        for (i, failed) in failed.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if *failed {
                let _ = write!(
                    out,
                    r#"{{"ErrorCode":"ServiceUnavailableException","ErrorMessage":"{THROTTLE_MESSAGE}"}}"#
                );
            } else {
                // Record ids are opaque to clients; a counter keeps them unique and cheap.
                let _ = write!(out, r#"{{"RecordId":"{next_id:056x}"}}"#);
                next_id += 1;
            }
        }
        out.push_str("]}");
    }
    Ok(ok_reply(out))
}

/// Events (newlines) found in records, gzip members and zstd frames decompressed; a format
/// version 2 record's header line is not an event.
#[derive(Debug, Default)]
struct EventCount {
    events: u64,
    undecodable: u64,
}

impl EventCount {
    fn add(&mut self, record: &[u8]) {
        let header = |first: &[u8]| u64::from(first.starts_with(firetail_wire::v2::HEADER_PREFIX));
        // Streamed, not inflated whole: a discarding endpoint counts gigabytes of events in a
        // benchmark without holding them.
        use std::io::Read as _;
        let mut decoder: Box<dyn std::io::Read + '_> = match firetail_wire::codec::Codec::of(record)
        {
            None => {
                self.events += count_newlines(record).saturating_sub(header(record));
                return;
            }
            Some(firetail_wire::codec::Codec::Gzip) => {
                Box::new(flate2::read::MultiGzDecoder::new(record))
            }
            Some(firetail_wire::codec::Codec::Zstd) => {
                match zstd::stream::read::Decoder::with_buffer(record) {
                    Ok(d) => Box::new(d),
                    Err(_) => {
                        self.undecodable += 1;
                        return;
                    }
                }
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut newlines = 0;
        let mut headers = None;
        loop {
            match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // The first read holds the header's first bytes (it is far longer).
                    headers.get_or_insert_with(|| header(&buf[..n]));
                    newlines += count_newlines(&buf[..n]);
                }
                Err(_) => {
                    self.undecodable += 1;
                    return;
                }
            }
        }
        self.events += newlines.saturating_sub(headers.unwrap_or(0));
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

fn unknown_stream(shared: &Shared, stream: &str) -> Option<Reply> {
    let known = match &shared.faults().plan.streams {
        None => true,
        Some(streams) => streams.iter().any(|s| s == stream),
    };
    if known {
        return None;
    }
    let message = format!("Firehose {stream} under account {ACCOUNT_ID} not found.");
    Some(invalid(shared, 400, "ResourceNotFoundException", &message))
}

fn describe(shared: &Shared, body: &[u8]) -> Reply {
    let input = match serde_json::from_slice::<DescribeIn<'_>>(body) {
        Ok(input) => input,
        Err(e) => return invalid(shared, 400, "SerializationException", &e.to_string()),
    };
    if let Some(reply) = unknown_stream(shared, &input.stream) {
        return reply;
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let name = input.stream.as_ref();
    let description = serde_json::json!({
        "DeliveryStreamDescription": {
            "DeliveryStreamName": name,
            "DeliveryStreamARN":
                format!("arn:aws:firehose:us-east-1:{ACCOUNT_ID}:deliverystream/{name}"),
            "DeliveryStreamStatus": "ACTIVE",
            "DeliveryStreamType": "DirectPut",
            "VersionId": "1",
            "CreateTimestamp": created,
            "Destinations": [{ "DestinationId": "destinationId-000000000001" }],
            "HasMoreDestinations": false,
        }
    });
    ok_reply(description.to_string())
}

fn ok_reply(body: String) -> Reply {
    reply(
        200,
        &[
            ("content-type", CONTENT_TYPE),
            ("x-amzn-requestid", "00000000-0000-4000-8000-000000000000"),
        ],
        body,
    )
}

fn error_reply(status: u16, kind: &str, message: &str) -> Reply {
    let body = serde_json::json!({ "__type": kind, "message": message });
    reply(
        status,
        &[
            ("content-type", CONTENT_TYPE),
            ("x-amzn-requestid", "00000000-0000-4000-8000-000000000000"),
        ],
        body.to_string(),
    )
}

fn invalid(shared: &Shared, status: u16, kind: &str, message: &str) -> Reply {
    bump(&shared.counters.invalid_calls, 1);
    error_reply(status, kind, message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_seed_replays_the_same_faults() {
        let plan = FaultPlan {
            seed: 42,
            throttle_ratio: 0.2,
            throttle_burst_calls: 3,
            reset_ratio: 0.1,
            ..FaultPlan::default()
        };
        let draw = |plan: &FaultPlan| {
            let mut faults = Faults::new(plan.clone());
            (0..200)
                .map(|_| {
                    let f = faults.draw_call();
                    (f.throttle, f.reset)
                })
                .collect::<Vec<_>>()
        };
        let first = draw(&plan);
        assert_eq!(first, draw(&plan));
        let other_seed = FaultPlan {
            seed: 43,
            ..plan.clone()
        };
        assert_ne!(first, draw(&other_seed));
    }

    #[test]
    fn throttling_comes_in_bursts_of_the_planned_length() {
        let mut faults = Faults::new(FaultPlan {
            seed: 7,
            throttle_ratio: 0.05,
            throttle_burst_calls: 4,
            ..FaultPlan::default()
        });
        let throttled: Vec<bool> = (0..2_000).map(|_| faults.draw_call().throttle).collect();
        let mut runs = Vec::new();
        let mut run = 0;
        for t in throttled.iter().chain([&false]) {
            if *t {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        assert!(!runs.is_empty());
        // Back-to-back bursts merge, so a run is a whole number of bursts.
        assert!(runs.iter().all(|r| r % 4 == 0), "{runs:?}");
    }

    #[test]
    fn ratios_are_respected_roughly_and_zero_never_fires() {
        let mut rng = Seeded(fastrand::Rng::with_seed(1));
        let hits = (0..10_000).filter(|_| rng.chance(0.3)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert!((0..1_000).all(|_| !rng.chance(0.0)));
        assert!((0..1_000).all(|_| rng.chance(1.0)));
    }

    #[test]
    fn events_are_counted_in_plain_and_gzip_records() {
        use std::io::Write as _;
        let mut count = EventCount::default();
        count.add(b"{\"a\":1}\n{\"a\":2}\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"x\ny\nz\n").unwrap();
        let gz = gz.finish().unwrap();
        count.add(&gz);
        assert_eq!(count.events, 5);
        count.add(&gz[..gz.len() / 2]);
        assert_eq!((count.events, count.undecodable), (5, 1));
        // Format version 2: the header line is not an event, in every codec.
        let v2 = b"{\"firetail_format\":2,\"stream\":\"file\"}\n{\"time\":1,\"log\":\"a\"}\n{\"time\":2,\"log\":\"b\"}\n";
        count.add(v2);
        let mut zst = Vec::new();
        firetail_wire::codec::Zstder::new(7).zstd_into(v2, &mut zst);
        count.add(&zst);
        count.add(&firetail_wire::gzip::gzip(v2, flate2::Compression::fast()));
        assert_eq!((count.events, count.undecodable), (11, 1));
        count.add(&zst[..zst.len() - 3]);
        assert_eq!(count.undecodable, 2);
    }

    #[test]
    fn a_dead_window_throttles_everything_until_it_ends() {
        let mut faults = Faults::new(FaultPlan {
            dead_for: Duration::from_secs(3600),
            ..FaultPlan::default()
        });
        assert!((0..10).all(|_| faults.draw_call().throttle));
        let mut faults = Faults::new(FaultPlan::default());
        assert!((0..10).all(|_| !faults.draw_call().throttle));
    }
}
