//! Putting overflow records back into the delivery stream (PutRecordBatch).
//!
//! One trait at the AWS boundary, [`RecordSink`]; [`FirehoseSink`] is the real one. Only the
//! entries Firehose reports as failed are sent again, with jittered backoff, for a bounded
//! number of attempts that also respects the invocation's deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use thiserror::Error;
use tokio::sync::OnceCell;
use tracing::{info, warn};

/// PutRecordBatch accepts at most 500 records per call.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>
pub const PUT_RECORD_BATCH_MAX_RECORDS: usize = 500;

/// PutRecordBatch accepts at most 4 MiB of record data per call.
/// <https://docs.aws.amazon.com/firehose/latest/dev/limits.html>
pub const PUT_RECORD_BATCH_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Stop retrying when less than this remains before the Lambda deadline, so the response
/// still gets out.
const DEADLINE_RESERVE: Duration = Duration::from_secs(2);

/// A whole PutRecordBatch call failed (network, throttling after the SDK's own retries,
/// missing stream, access denied).
#[derive(Debug, Error)]
#[error("PutRecordBatch to {stream} failed: {message}")]
pub struct SinkError {
    pub stream: String,
    pub message: String,
}

/// Where overflow records go. Returns one entry per record: `None` when accepted, or the
/// error code Firehose gave that record.
pub trait RecordSink: Send + Sync {
    fn put_record_batch(
        &self,
        stream: &str,
        records: Vec<Vec<u8>>,
    ) -> impl Future<Output = Result<Vec<Option<String>>, SinkError>> + Send;
}

/// The real sink: aws-sdk-firehose with the default credential chain. The client is built on
/// first use, so a cold start that needs no re-ingest pays nothing for it.
#[derive(Debug, Default)]
pub struct FirehoseSink {
    client: OnceCell<aws_sdk_firehose::Client>,
    region: std::sync::Mutex<Option<String>>,
}

impl FirehoseSink {
    pub fn new() -> Self {
        FirehoseSink::default()
    }

    /// The region to use when the environment does not name one (the event's `region`).
    pub fn set_fallback_region(&self, region: &str) {
        if let Ok(mut r) = self.region.lock()
            && r.is_none()
            && !region.is_empty()
        {
            *r = Some(region.to_owned());
        }
    }

    async fn client(&self) -> &aws_sdk_firehose::Client {
        self.client
            .get_or_init(|| async {
                let fallback = self.region.lock().ok().and_then(|r| r.clone());
                let region = aws_config::meta::region::RegionProviderChain::default_provider()
                    .or_else(fallback.map(aws_config::Region::new));
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(region)
                    .load()
                    .await;
                aws_sdk_firehose::Client::new(&shared)
            })
            .await
    }
}

impl RecordSink for FirehoseSink {
    async fn put_record_batch(
        &self,
        stream: &str,
        records: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<String>>, SinkError> {
        let count = records.len();
        let mut entries = Vec::with_capacity(count);
        for data in records {
            let record = Record::builder()
                .data(Blob::new(data))
                .build()
                .map_err(|e| SinkError {
                    stream: stream.to_owned(),
                    message: e.to_string(),
                })?;
            entries.push(record);
        }
        let output = self
            .client()
            .await
            .put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(|e| SinkError {
                stream: stream.to_owned(),
                message: aws_sdk_firehose::error::DisplayErrorContext(e).to_string(),
            })?;
        let responses = output.request_responses();
        if responses.len() != count {
            return Err(SinkError {
                stream: stream.to_owned(),
                message: format!("{} responses for {count} records", responses.len()),
            });
        }
        Ok(responses
            .iter()
            .map(|r| r.error_code().map(str::to_owned))
            .collect())
    }
}

/// The delivery stream's name from its ARN
/// (`arn:aws:firehose:us-east-1:123456789012:deliverystream/NAME`).
pub fn stream_name(arn: &str) -> Option<&str> {
    arn.rsplit_once(":deliverystream/")
        .map(|(_, name)| name)
        .filter(|n| !n.is_empty())
}

/// Sends `payloads` to `stream`, resending only failed entries. Returns, per payload, whether
/// Firehose accepted it.
pub async fn put_all<S: RecordSink>(
    sink: &S,
    stream: &str,
    payloads: &[Vec<u8>],
    max_attempts: u32,
    deadline: Option<Instant>,
) -> Vec<bool> {
    let mut accepted = vec![false; payloads.len()];
    let mut pending: Vec<usize> = (0..payloads.len()).collect();
    let mut attempt = 0;
    while !pending.is_empty() && attempt < max_attempts {
        attempt += 1;
        let mut failed = Vec::new();
        for batch in batches(&pending, payloads) {
            let records = batch.iter().map(|&i| payloads[i].clone()).collect();
            match sink.put_record_batch(stream, records).await {
                Ok(results) => {
                    for (&i, error) in batch.iter().zip(results) {
                        match error {
                            None => accepted[i] = true,
                            Some(code) => {
                                info!(stream, attempt, error_code = %code, "re-ingest entry rejected; will retry");
                                failed.push(i);
                            }
                        }
                    }
                }
                Err(error) => {
                    warn!(stream, attempt, records = batch.len(), %error, "re-ingest call failed; will retry");
                    failed.extend_from_slice(&batch);
                }
            }
        }
        pending = failed;
        if pending.is_empty() || attempt >= max_attempts {
            break;
        }
        let delay = backoff(attempt);
        if let Some(deadline) = deadline
            && Instant::now() + delay + DEADLINE_RESERVE > deadline
        {
            warn!(
                stream,
                pending = pending.len(),
                "stopping re-ingest retries before the invocation deadline"
            );
            break;
        }
        tokio::time::sleep(delay).await;
    }
    accepted
}

/// Splits `indexes` into calls within the record and byte limits.
fn batches(indexes: &[usize], payloads: &[Vec<u8>]) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for &i in indexes {
        let len = payloads[i].len();
        if !current.is_empty()
            && (current.len() == PUT_RECORD_BATCH_MAX_RECORDS
                || bytes + len > PUT_RECORD_BATCH_MAX_BYTES)
        {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(i);
        bytes += len;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Exponential backoff from 100 ms, capped at 2 s, with full jitter.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (100u64 << attempt.min(5)).min(2_000);
    Duration::from_millis(cap_ms / 2 + jitter() % (cap_ms / 2 + 1))
}

fn jitter() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails the first `fail_first` entries of every call `calls_failing` times, recording
    /// what each call carried.
    struct Flaky {
        calls: Mutex<Vec<Vec<Vec<u8>>>>,
        reject: Mutex<Vec<Vec<u8>>>,
        whole_call_failures: Mutex<u32>,
    }

    impl RecordSink for Flaky {
        async fn put_record_batch(
            &self,
            _stream: &str,
            records: Vec<Vec<u8>>,
        ) -> Result<Vec<Option<String>>, SinkError> {
            self.calls.lock().map(|mut c| c.push(records.clone())).ok();
            let mut fail = self.whole_call_failures.lock().map_err(|_| SinkError {
                stream: String::new(),
                message: "poisoned".into(),
            })?;
            if *fail > 0 {
                *fail -= 1;
                return Err(SinkError {
                    stream: "s".into(),
                    message: "503".into(),
                });
            }
            let mut reject = self.reject.lock().map_err(|_| SinkError {
                stream: String::new(),
                message: "poisoned".into(),
            })?;
            Ok(records
                .iter()
                .map(|r| {
                    if let Some(pos) = reject.iter().position(|x| x == r) {
                        reject.remove(pos);
                        Some("ServiceUnavailableException".to_owned())
                    } else {
                        None
                    }
                })
                .collect())
        }
    }

    fn flaky(reject: &[&[u8]], whole_call_failures: u32) -> Flaky {
        Flaky {
            calls: Mutex::new(Vec::new()),
            reject: Mutex::new(reject.iter().map(|r| r.to_vec()).collect()),
            whole_call_failures: Mutex::new(whole_call_failures),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn resends_only_failed_entries() {
        let sink = flaky(&[b"b", b"d"], 0);
        let payloads: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let ok = put_all(&sink, "s", &payloads, 3, None).await;
        assert_eq!(ok, vec![true; 4]);
        let calls = sink.calls.lock().map(|c| c.clone()).unwrap_or_default();
        assert_eq!(
            calls,
            vec![payloads.clone(), vec![b"b".to_vec(), b"d".to_vec()]]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn whole_call_failures_are_retried_then_given_up() {
        let sink = flaky(&[], 1);
        assert_eq!(
            put_all(&sink, "s", &[b"a".to_vec()], 3, None).await,
            vec![true]
        );
        let sink = flaky(&[], 10);
        assert_eq!(
            put_all(&sink, "s", &[b"a".to_vec()], 3, None).await,
            vec![false]
        );
        assert_eq!(sink.calls.lock().map(|c| c.len()).unwrap_or_default(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_before_the_deadline() {
        let sink = flaky(&[], 10);
        let deadline = Instant::now() + Duration::from_secs(1);
        assert_eq!(
            put_all(&sink, "s", &[b"a".to_vec()], 10, Some(deadline)).await,
            vec![false]
        );
        assert_eq!(sink.calls.lock().map(|c| c.len()).unwrap_or_default(), 1);
    }

    #[test]
    fn batches_respect_limits() {
        let payloads: Vec<Vec<u8>> = (0..1_001).map(|_| vec![0u8; 10]).collect();
        let idx: Vec<usize> = (0..payloads.len()).collect();
        let sizes: Vec<usize> = batches(&idx, &payloads).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![500, 500, 1]);
        let big: Vec<Vec<u8>> = (0..9).map(|_| vec![0u8; 1_000 * 1024]).collect();
        let idx: Vec<usize> = (0..big.len()).collect();
        let sizes: Vec<usize> = batches(&idx, &big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 1]);
    }

    #[test]
    fn stream_names_from_arns() {
        assert_eq!(
            stream_name("arn:aws:firehose:us-east-1:123456789012:deliverystream/logs"),
            Some("logs")
        );
        assert_eq!(
            stream_name("arn:aws:firehose:us-east-1:123456789012:deliverystream/"),
            None
        );
        assert_eq!(stream_name("garbage"), None);
    }
}
