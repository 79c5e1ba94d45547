//! moto's server as a real Firehose + S3 endpoint on 127.0.0.1, reached through the real SDK.
//!
//! # Layout
//! - [`MotoServer::start`]: finds `moto_server`, starts it on a free port, waits until it answers.
//! - [`MotoServer::create_s3_stream`] / [`MotoServer::objects`]: a DirectPut stream into a bucket,
//!   and what landed there.
//!
//! What moto does and does not do (see shared/TOOLCHAIN.md): each PutRecord/PutRecordBatch
//! becomes one S3 object at once, records concatenated as sent; no buffering, no Lambda
//! processor, no partial failures, no throttling, no size limits. Use
//! [`crate::firehose_endpoint`] for those.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_firehose::types::{
    CompressionFormat, DeliveryStreamType, ExtendedS3DestinationConfiguration,
};

use crate::aws::{firehose_client, s3_client};
use crate::process::ChildGuard;

/// How long moto may take to answer after start (its imports take ~1-2 s on a quiet machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts retried on another port when the first one was taken meanwhile.
const START_ATTEMPTS: usize = 3;
/// Role ARN given to streams; moto does not check it.
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/firetail-firehose";

const NOT_FOUND: &str = "moto_server not found: set FIRETAIL_MOTO_SERVER to its absolute path, \
    or run `bash tests/run`, which installs moto into a venv";

/// A running `moto_server`, killed and reaped on drop.
#[derive(Debug)]
pub struct MotoServer {
    url: String,
    child: ChildGuard,
}

impl MotoServer {
    /// Starts `moto_server` from `FIRETAIL_MOTO_SERVER`, the venv that `bash tests/run` made
    /// (`$FIRETAIL_CACHE_DIR/venvs.env`), or `PATH`, in that order.
    ///
    /// # Panics
    /// If no `moto_server` is found, or it does not answer in time.
    pub fn start() -> Self {
        let exe = find_moto_server().unwrap_or_else(|| panic!("{NOT_FOUND}"));
        Self::start_at(&exe)
    }

    /// Starts the `moto_server` at `exe`.
    ///
    /// # Panics
    /// If `exe` cannot be run or does not answer in time.
    pub fn start_at(exe: &Path) -> Self {
        if !exe.is_file() {
            panic!("{} does not exist. {NOT_FOUND}", exe.display());
        }
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = crate::free_port();
            let mut command = Command::new(exe);
            command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            let mut child = ChildGuard::spawn("moto_server", command)
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
            match wait_ready(&mut child, port) {
                Ok(()) => {
                    return Self {
                        url: format!("http://127.0.0.1:{port}"),
                        child,
                    };
                }
                Err(e) => last_error = format!("{e}\nmoto stderr:\n{}", child.stderr()),
            }
        }
        panic!("moto_server did not start: {last_error}");
    }

    /// The endpoint URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Forgets every stream, bucket and object (`POST /moto-api/reset`).
    ///
    /// # Panics
    /// If moto does not answer 200.
    pub fn reset(&self) {
        let port = self.url.rsplit(':').next().and_then(|p| p.parse().ok());
        let answer = port
            .ok_or_else(|| std::io::Error::other("bad url"))
            .and_then(|port| http_status(port, "POST", "/moto-api/reset"));
        match answer {
            Ok(200) => {}
            other => panic!("moto reset failed: {other:?}"),
        }
    }

    /// A Firehose client for this server.
    pub fn firehose_client(&self) -> aws_sdk_firehose::Client {
        firehose_client(&self.url)
    }

    /// An S3 client for this server.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.url)
    }

    /// Creates `bucket` (if needed) and a DirectPut stream `name` delivering into it, with
    /// CompressionFormat set (without it the SDK cannot read moto's DescribeDeliveryStream).
    /// Returns the stream ARN.
    ///
    /// # Panics
    /// If moto rejects either call.
    pub async fn create_s3_stream(&self, name: &str, bucket: &str) -> String {
        let s3 = self.s3_client();
        if let Err(e) = s3.create_bucket().bucket(bucket).send().await {
            let owned = e
                .as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you());
            if !owned {
                panic!("create bucket {bucket}: {e:?}");
            }
        }
        let destination = ExtendedS3DestinationConfiguration::builder()
            .role_arn(ROLE_ARN)
            .bucket_arn(format!("arn:aws:s3:::{bucket}"))
            .compression_format(CompressionFormat::Uncompressed)
            .build()
            .unwrap_or_else(|e| panic!("destination for {name}: {e}"));
        let created = self
            .firehose_client()
            .create_delivery_stream()
            .delivery_stream_name(name)
            .delivery_stream_type(DeliveryStreamType::DirectPut)
            .extended_s3_destination_configuration(destination)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create stream {name}: {e:?}"));
        created.delivery_stream_arn().unwrap_or_default().to_owned()
    }

    /// Every object in `bucket` with its bytes, sorted by key. moto's keys embed a timestamp
    /// and a random id, so key order is not send order: count records, do not rely on order.
    ///
    /// # Panics
    /// If listing or reading fails.
    pub async fn objects(&self, bucket: &str) -> Vec<(String, Vec<u8>)> {
        let s3 = self.s3_client();
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(bucket)
                .set_continuation_token(token)
                .send()
                .await
                .unwrap_or_else(|e| panic!("list {bucket}: {e:?}"));
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            let object = s3
                .get_object()
                .bucket(bucket)
                .key(&key)
                .send()
                .await
                .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e:?}"));
            let body = object
                .body
                .collect()
                .await
                .unwrap_or_else(|e| panic!("read {bucket}/{key}: {e}"))
                .into_bytes()
                .to_vec();
            objects.push((key, body));
        }
        objects
    }
}

fn find_moto_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("FIRETAIL_MOTO_SERVER") {
        return Some(PathBuf::from(path));
    }
    if let Some(path) = from_venvs_env() {
        return Some(path);
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("moto_server"))
        .find(|candidate| candidate.is_file())
}

/// The path `.ci/venvs` recorded, so `cargo test` alone works after one `bash tests/run`.
fn from_venvs_env() -> Option<PathBuf> {
    let cache = std::env::var_os("FIRETAIL_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/firetail")))?;
    let env = std::fs::read_to_string(cache.join("venvs.env")).ok()?;
    env.lines()
        .find_map(|line| line.strip_prefix("export FIRETAIL_MOTO_SERVER="))
        .map(|value| PathBuf::from(value.trim_matches('\'')))
        .filter(|path| path.is_file())
}

fn wait_ready(child: &mut ChildGuard, port: u16) -> std::io::Result<()> {
    let start = Instant::now();
    while start.elapsed() < READY_TIMEOUT {
        if let Some(status) = child.try_wait()? {
            return Err(std::io::Error::other(format!(
                "moto_server exited: {status}"
            )));
        }
        if let Ok(200) = http_status(port, "GET", "/moto-api/") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(std::io::Error::other(format!(
        "moto_server on port {port} not ready after {READY_TIMEOUT:?}"
    )))
}

/// One bodiless HTTP/1.1 request to moto's control API; returns the status code.
fn http_status(port: u16, method: &str, path: &str) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let head = String::from_utf8_lossy(&response);
    head.split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed HTTP answer"))
}
