//! A RECORDING PASS-THROUGH in front of moto's Firehose: every request is forwarded unchanged to
//! moto and moto's answer is returned unchanged; on the way, the records of each
//! `PutRecordBatch` / `PutRecord` that moto acknowledged are kept with their boundaries.
//!
//! Why: moto writes each call to S3 as one object with the records concatenated verbatim, so a
//! reader of the bucket cannot tell where one `ndjson` record ends and the next begins. Firehose
//! hands a processor Lambda exactly the records that were put, so a test or the demo that plays
//! Firehose's processor role needs those boundaries. moto still answers every call (the real
//! AWS wire protocol through the real SDK); this only listens.
//!
//! Only acknowledged records are kept: a call moto answered with an error, or a record with an
//! `ErrorCode` (moto sends none today), is not.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hyper::Request;
use hyper::body::Incoming;
use serde::Deserialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::server::{DropConnection, Reply, Server, read_body, reply};

const TARGET_PREFIX: &str = "Firehose_20150804.";

/// Request headers not passed on: the forwarded request is re-framed (one request per
/// connection, exact length).
const HOP_HEADERS: [&str; 5] = [
    "connection",
    "content-length",
    "transfer-encoding",
    "expect",
    "keep-alive",
];

/// One record moto acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRecord {
    /// The delivery stream it was put into.
    pub stream: String,
    /// The record bytes (decoded from base64).
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Shared {
    upstream: String,
    records: Mutex<Vec<RecordedRecord>>,
    put_calls: AtomicU64,
    delay_ms: AtomicU64,
}

/// The pass-through (see the module docs). Stops when dropped.
#[derive(Debug)]
pub struct RecordingProxy {
    server: Server,
    shared: Arc<Shared>,
}

impl RecordingProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream` (`http://127.0.0.1:PORT`,
    /// moto's URL).
    pub async fn start(upstream: &str) -> io::Result<Self> {
        let upstream = upstream
            .strip_prefix("http://")
            .ok_or_else(|| io::Error::other(format!("upstream {upstream} is not http://")))?
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let shared = Arc::new(Shared {
            upstream,
            ..Shared::default()
        });
        let state = Arc::clone(&shared);
        let server = Server::spawn(listener, |_| {}, move |req| handle(Arc::clone(&state), req));
        Ok(Self { server, shared })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The URL for an SDK client, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// Every acknowledged record, in acknowledgement order.
    pub fn records(&self) -> Vec<RecordedRecord> {
        self.shared
            .records
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The data of every acknowledged record put into `stream`, in order.
    pub fn stream_records(&self, stream: &str) -> Vec<Vec<u8>> {
        self.records()
            .into_iter()
            .filter(|r| r.stream == stream)
            .map(|r| r.data)
            .collect()
    }

    /// `PutRecordBatch` and `PutRecord` calls moto answered 200.
    pub fn put_calls(&self) -> u64 {
        self.shared.put_calls.load(Ordering::Relaxed)
    }

    /// Holds every request this long before forwarding it: a slow endpoint, so that
    /// acknowledgements trail reading (bounds what a crashed client can have in flight
    /// between two of its checkpoints).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Stops serving and closes every connection.
    pub async fn shutdown(&mut self) {
        self.server.shutdown().await;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutBody {
    delivery_stream_name: String,
    #[serde(default)]
    records: Vec<RecordIn>,
    record: Option<RecordIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecordIn {
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchAnswer {
    #[serde(default)]
    request_responses: Vec<EntryAnswer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EntryAnswer {
    error_code: Option<String>,
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Reply, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = read_body(body).await.ok_or(DropConnection)?;
    let delay = shared.delay_ms.load(Ordering::Relaxed);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or_default()
        .to_owned();

    let mut head = format!(
        "{} {} HTTP/1.1\r\n",
        parts.method,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    for (name, value) in &parts.headers {
        if HOP_HEADERS.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = value.to_str() {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let answer = match forward(&shared.upstream, head.as_bytes(), &body).await {
        Ok(answer) => answer,
        // moto is gone: the client sees a dropped connection, as it would from a dead endpoint.
        Err(_) => return Err(DropConnection),
    };

    if answer.status == 200 && (target == "PutRecordBatch" || target == "PutRecord") {
        record(&shared, &target, &body, &answer.body);
    }
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .filter(|(name, _)| {
            !HOP_HEADERS.contains(&name.as_str()) && name != "date" && name != "server"
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    Ok(reply(answer.status, &headers, answer.body))
}

fn record(shared: &Shared, target: &str, request: &[u8], answer: &[u8]) {
    let Ok(put) = serde_json::from_slice::<PutBody>(request) else {
        return;
    };
    let entries: Vec<RecordIn> = if target == "PutRecord" {
        put.record.into_iter().collect()
    } else {
        put.records
    };
    // Per-entry outcome of a batch; a PutRecord answer has no entries and means accepted.
    let outcomes: Vec<bool> = serde_json::from_slice::<BatchAnswer>(answer)
        .map(|a| {
            a.request_responses
                .into_iter()
                .map(|e| e.error_code.is_none())
                .collect()
        })
        .unwrap_or_default();
    let mut records = shared
        .records
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    for (i, entry) in entries.into_iter().enumerate() {
        if !outcomes.get(i).copied().unwrap_or(true) {
            continue;
        }
        if let Ok(data) = BASE64.decode(entry.data.as_bytes()) {
            records.push(RecordedRecord {
                stream: put.delivery_stream_name.clone(),
                data,
            });
        }
    }
    shared.put_calls.fetch_add(1, Ordering::Relaxed);
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// One request on a fresh connection; reads the answer to EOF (`connection: close`).
async fn forward(upstream: &str, head: &[u8], body: &[u8]) -> io::Result<Answer> {
    let mut stream = TcpStream::connect(upstream).await?;
    stream.write_all(head).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> io::Result<Answer> {
    let bad = || io::Error::other("malformed HTTP answer from upstream");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad())?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(bad)?
    } else {
        let len = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(rest.len());
        rest.get(..len).ok_or_else(bad)?.to_vec()
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_length_and_chunked_answers() {
        let a = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhi").unwrap();
        assert_eq!((a.status, &a.body[..]), (200, &b"hi"[..]));
        assert!(a.headers.contains(&("x-a".into(), "b".into())));
        let c = parse_answer(
            b"HTTP/1.1 500 ERR\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((c.status, &c.body[..]), (500, &b"abcde"[..]));
        assert!(parse_answer(b"garbage").is_err());
    }
}
