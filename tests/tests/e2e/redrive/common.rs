//! Helpers shared by the redrive tests: the checked-in fixtures (objects in Firehose's
//! error-record formats, made by the real producers, and a manifest of what each line holds),
//! uploading them to moto, clients for moto and the fault endpoint, and reading back what
//! arrived.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_firehose::{Backoff, ClientSettings, RetryPolicy, SdkClient};
use firetail_redrive::{RedriveConfig, SdkStore};
use firetail_testkit::MotoServer;

/// Prefix the fixtures live under in the bucket: every failure a stack from template.yaml
/// writes (its output `FailedRecordPrefix`).
pub const PREFIX: &str = "failed/";

/// One line of a fixture object, from `manifest.json`.
#[derive(Debug, Clone)]
pub struct Line {
    /// Object key.
    pub key: String,
    /// Events in the record (0 for a malformed line).
    pub events: usize,
    /// 1-based line number in the (inflated) object.
    pub line: u64,
    /// The record bytes (`rawData` decoded); `None` for a malformed line.
    pub data: Option<Vec<u8>>,
    /// Expected verdict without `--destination`: "send" or "fail" (the manifest calls it
    /// `unknown`).
    pub unknown: String,
    /// Expected verdict with `--destination opensearch`.
    pub opensearch: String,
}

/// The fixtures directory.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redrive")
}

/// Object keys of the fixtures, sorted.
pub fn keys() -> Vec<String> {
    let mut keys: Vec<String> = manifest()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_owned())
        .collect();
    keys.sort();
    keys
}

/// The key of the fixture object with `role`.
pub fn key_of(role: &str) -> String {
    manifest()["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["role"] == role)
        .unwrap_or_else(|| panic!("no fixture object {role}"))["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn manifest() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("manifest.json")).unwrap()).unwrap()
}

/// Every line of every fixture object.
pub fn lines() -> Vec<Line> {
    let mut out = Vec::new();
    for object in manifest()["objects"].as_array().unwrap() {
        let key = object["key"].as_str().unwrap();
        for l in object["lines"].as_array().unwrap() {
            let malformed = l.get("malformed").is_some();
            out.push(Line {
                key: key.to_owned(),
                events: l["events"].as_u64().unwrap_or(0) as usize,
                line: l["line"].as_u64().unwrap(),
                data: (!malformed).then(|| STANDARD.decode(l["data"].as_str().unwrap()).unwrap()),
                unknown: l["unknown"].as_str().unwrap_or("malformed").to_owned(),
                opensearch: l["opensearch"].as_str().unwrap_or("malformed").to_owned(),
            });
        }
    }
    out
}

/// Creates `bucket` and puts every fixture object into it.
pub async fn upload(moto: &MotoServer, bucket: &str) {
    let s3 = moto.s3_client();
    create_bucket(moto, bucket).await;
    for key in keys() {
        let body = std::fs::read(fixtures().join("objects").join(&key)).unwrap();
        put(&s3, bucket, &key, body).await;
    }
}

/// Creates `bucket` (fine if it exists).
pub async fn create_bucket(moto: &MotoServer, bucket: &str) {
    let s3 = moto.s3_client();
    if let Err(e) = s3.create_bucket().bucket(bucket).send().await {
        assert!(
            e.as_service_error()
                .is_some_and(|e| e.is_bucket_already_owned_by_you()),
            "{e:?}"
        );
    }
}

/// Puts one object.
pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .unwrap();
}

/// Keys in `bucket`.
pub async fn keys_in(moto: &MotoServer, bucket: &str) -> Vec<String> {
    moto.objects(bucket)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// Tags of one object.
pub async fn tags(moto: &MotoServer, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = moto
        .s3_client()
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

/// How often `needle` occurs (without overlap) in `haystack`.
pub fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    let mut count = 0;
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        if &haystack[i..i + needle.len()] == needle {
            count += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    count
}

/// Everything moto delivered into `bucket`, concatenated (moto writes one object per call with
/// the records verbatim, so each record's bytes appear as they were sent).
pub async fn delivered(moto: &MotoServer, bucket: &str) -> Vec<u8> {
    moto.objects(bucket)
        .await
        .into_iter()
        .flat_map(|(_, body)| body)
        .collect()
}

/// Every JSON value in `bytes` as records lie in a moto object (records concatenated as
/// they were sent, no separator): gzip members are inflated one at a time, plain JSON read
/// value by value, so plain and gzip records may alternate.
pub fn values_in(mut bytes: &[u8]) -> Vec<serde_json::Value> {
    use std::io::Read as _;
    let mut out = Vec::new();
    while !bytes.is_empty() {
        if firetail_wire::gzip::is_gzip(bytes) {
            let mut member = flate2::bufread::GzDecoder::new(bytes);
            let mut text = Vec::new();
            member.read_to_end(&mut text).unwrap();
            bytes = member.into_inner();
            out.extend(values_in(&text));
            continue;
        }
        let mut stream =
            serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
        loop {
            let before = stream.byte_offset();
            match stream.next() {
                Some(Ok(v)) => out.push(v),
                // The start of a gzip member (or the end): continue from there.
                Some(Err(_)) | None => {
                    let at = before
                        + bytes[before..]
                            .iter()
                            .take_while(|b| b.is_ascii_whitespace())
                            .count();
                    assert!(
                        at == bytes.len() || firetail_wire::gzip::is_gzip(&bytes[at..]),
                        "not JSON at {at}"
                    );
                    bytes = &bytes[at..];
                    break;
                }
            }
        }
    }
    out
}

/// The events in `values` (from [`values_in`]): a CloudWatch-Logs-style envelope stands for
/// the objects in its `logEvents[].message`; anything else is one event.
pub fn events_of(values: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    values
        .into_iter()
        .flat_map(|v| match v.get("logEvents").and_then(|e| e.as_array()) {
            Some(list) => list
                .iter()
                .map(|e| serde_json::from_str(e["message"].as_str().unwrap()).unwrap())
                .collect(),
            None => vec![v],
        })
        .collect()
}

/// Calls per record in these tests: far more than a 30 % refusal rate needs, so every record
/// gets in (production's default is 8).
pub const ATTEMPTS: u32 = 20;

/// A redrive of the fixtures' prefix into `stream`, progress in `state_dir`, short backoff.
/// Six hours after the fixtures' events were read (2026-11-22T10:00:00.123Z,
/// `tests/tests/redrive_fixtures.rs`): a run over them inside Datadog's 18-hour window.
fn fixtures_now_ms() -> i64 {
    1_795_341_600_123 + 6 * 3_600_000
}

pub fn config(bucket: &str, stream: &str, state_dir: &Path) -> RedriveConfig {
    let mut config = RedriveConfig::new(bucket, stream);
    config.clock = fixtures_now_ms;
    config.prefix = PREFIX.to_owned();
    config.state_dir = state_dir.to_owned();
    let backoff = Backoff {
        base: Duration::from_millis(5),
        cap: Duration::from_millis(50),
    };
    config.retry = RetryPolicy::bounded(backoff, ATTEMPTS, None);
    config
}

/// The Firehose client for the endpoint at `url` (moto or the fault endpoint), with the SDK's
/// retries off as in production.
pub fn firehose_for(url: &str) -> SdkClient {
    SdkClient::for_endpoint(
        url,
        ClientSettings {
            attempt_timeout: Duration::from_secs(5),
        },
    )
}

/// The S3 store of `moto`.
pub fn store(moto: &MotoServer) -> SdkStore {
    SdkStore::new(moto.s3_client())
}

/// A shutdown future that never completes.
pub async fn never() {
    std::future::pending::<()>().await;
}

/// One error-record line in the processing-failed format carrying `data`.
pub fn error_line(data: &[u8], arrival_ms: i64) -> String {
    serde_json::json!({
        "attemptsMade": 4,
        "arrivalTimestamp": arrival_ms,
        "errorCode": "Lambda.FunctionError",
        "errorMessage": "The Lambda function was successfully invoked but it returned an error result.",
        "attemptEndingTimestamp": arrival_ms + 300_000,
        "rawData": STANDARD.encode(data),
        "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:firetail-transform",
    })
    .to_string()
}
