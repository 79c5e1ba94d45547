//! Delivering one batch: resend only what failed, back off with jitter, never give up.
//!
//! # Layout
//! - [`Backoff`]: capped exponential delay with "equal jitter" (half fixed, half random), so
//!   many sidecars throttled at once spread out but none retries immediately.
//! - [`SendPolicy`]: the backoffs for throttling/transient errors and the slow cadence for
//!   permanent ones.
//! - [`send_batch`]: drives a [`Sink`] until every record of a batch is accepted, handing each
//!   accepted record to a callback at once (so its events are acknowledged without waiting for
//!   the rest of the batch).
//!
//! Why never give up: the log files are the buffer. A record not accepted is not acknowledged,
//! so its checkpoint does not advance; giving up would only lose data at the next restart.

use std::time::Duration;

use bytes::Bytes;

use crate::metrics::Observability;
use crate::pack::{Batch, Record, billed_bytes};
use crate::sink::{EntryOutcome, Sink, SinkError};

/// Capped exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay ceiling before the first retry.
    pub base: Duration,
    /// Largest delay ceiling.
    pub cap: Duration,
}

impl Backoff {
    /// Delay before retry number `attempt` (0-based): uniformly in `[c/2, c]` where
    /// `c = min(cap, base * 2^attempt)`.
    pub fn delay(&self, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << attempt.min(20))
            .min(self.cap);
        let half = ceiling / 2;
        let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rng.u64(0..=nanos))
    }
}

/// How [`send_batch`] waits between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendPolicy {
    /// After throttling, transient errors and partially failed calls.
    pub backoff: Backoff,
    /// Between attempts while the sink reports a permanent error.
    pub permanent_retry: Duration,
}

impl Default for SendPolicy {
    fn default() -> Self {
        Self {
            backoff: Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(20),
            },
            permanent_retry: Duration::from_secs(30),
        }
    }
}

/// What [`send_batch`] did, for tests and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendReport {
    /// Calls made.
    pub calls: u32,
    /// Records resent after a per-entry or whole-call failure.
    pub resent_records: u64,
}

/// Sends `batch` through `sink` until every record is accepted; `on_accepted` receives each
/// record exactly once, as soon as Firehose accepts it.
pub async fn send_batch<S, T>(
    sink: &S,
    batch: Batch<T>,
    policy: &SendPolicy,
    obs: &Observability,
    mut on_accepted: impl FnMut(Record<T>),
) -> SendReport
where
    S: Sink,
{
    let mut rng = fastrand::Rng::new();
    let mut report = SendReport::default();
    let mut pending: Vec<Record<T>> = batch.records;
    let mut attempt: u32 = 0;
    let mut alarmed = false;
    while !pending.is_empty() {
        let data: Vec<Bytes> = pending.iter().map(|r| r.data.clone()).collect();
        report.calls += 1;
        obs.metrics.requests.inc();
        let delay = match sink.put_records(&data).await {
            Ok(outcomes) => {
                if alarmed {
                    tracing::info!("sink recovered from a permanent error");
                    obs.health.set_permanent_error(None);
                    alarmed = false;
                }
                let mut failed = Vec::new();
                let mut first_code = None;
                for (record, outcome) in pending.drain(..).zip(outcomes) {
                    match outcome {
                        EntryOutcome::Accepted => {
                            count_accepted(obs, &record);
                            on_accepted(record);
                        }
                        EntryOutcome::Failed { code, message } => {
                            obs.metrics.failure(&code);
                            obs.metrics.retry(&code, 1);
                            if first_code.is_none() {
                                first_code = Some((code, message));
                            }
                            failed.push(record);
                        }
                    }
                }
                pending = failed;
                let Some((code, message)) = first_code else {
                    break;
                };
                report.resent_records += pending.len() as u64;
                tracing::warn!(
                    failed = pending.len(),
                    code = %code,
                    message = %message,
                    "partial failure, resending only the failed records"
                );
                let d = policy.backoff.delay(attempt, &mut rng);
                attempt += 1;
                d
            }
            Err(err) => {
                obs.metrics.failure(err.code());
                obs.metrics.retry(err.code(), pending.len() as u64);
                report.resent_records += pending.len() as u64;
                match &err {
                    SinkError::Permanent { .. } => {
                        // Data is not lost yet (the files hold it), so this is not ERROR by
                        // our rule; but it needs an operator, so log at WARN every attempt.
                        tracing::warn!(
                            error = %err,
                            records = pending.len(),
                            retry_in_secs = policy.permanent_retry.as_secs(),
                            "permanent sink error; not ready until it clears"
                        );
                        obs.health.set_permanent_error(Some(err.to_string()));
                        alarmed = true;
                        policy.permanent_retry
                    }
                    SinkError::Throttled { .. } | SinkError::Transient { .. } => {
                        let d = policy.backoff.delay(attempt, &mut rng);
                        tracing::info!(
                            error = %err,
                            records = pending.len(),
                            attempt,
                            delay_ms = d.as_millis() as u64,
                            "call failed, backing off"
                        );
                        attempt += 1;
                        d
                    }
                }
            }
        };
        tokio::time::sleep(delay).await;
    }
    report
}

fn count_accepted<T>(obs: &Observability, record: &Record<T>) {
    let m = &obs.metrics;
    m.records_sent.inc();
    m.events_sent.inc_by(record.tokens.len() as u64);
    m.record_bytes_sent.inc_by(record.data.len() as u64);
    m.billed_bytes
        .inc_by(billed_bytes(record.data.len()) as u64);
    m.events_per_record.observe(record.tokens.len() as f64);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Scripted sink for the bookkeeping only; the SDK path is covered by the integration
    /// tests against moto and the fault-injecting endpoint.
    #[derive(Default)]
    struct Scripted {
        script: Mutex<VecDeque<Result<Vec<bool>, SinkError>>>,
        calls: Mutex<Vec<Vec<Bytes>>>,
    }

    impl Sink for Scripted {
        async fn put_records(&self, records: &[Bytes]) -> Result<Vec<EntryOutcome>, SinkError> {
            self.calls.lock().unwrap().push(records.to_vec());
            let next = self.script.lock().unwrap().pop_front();
            match next {
                None => Ok(vec![EntryOutcome::Accepted; records.len()]),
                Some(Err(e)) => Err(e),
                Some(Ok(mask)) => Ok(mask
                    .into_iter()
                    .map(|ok| {
                        if ok {
                            EntryOutcome::Accepted
                        } else {
                            EntryOutcome::Failed {
                                code: "ServiceUnavailableException".into(),
                                message: "slow down".into(),
                            }
                        }
                    })
                    .collect()),
            }
        }
    }

    fn batch(n: usize) -> Batch<usize> {
        Batch {
            records: (0..n)
                .map(|i| Record {
                    data: Bytes::from(format!("r{i}")),
                    raw_bytes: 2,
                    tokens: vec![i],
                })
                .collect(),
        }
    }

    fn fast() -> SendPolicy {
        SendPolicy {
            backoff: Backoff {
                base: Duration::from_millis(1),
                cap: Duration::from_millis(4),
            },
            permanent_retry: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn resends_only_failed_entries_and_acks_each_once() {
        let sink = Scripted::default();
        sink.script.lock().unwrap().extend([
            Ok(vec![true, false, true, false, true]),
            Err(SinkError::Throttled {
                code: "ServiceUnavailableException".into(),
                message: "x".into(),
            }),
            Ok(vec![false, true]),
        ]);
        let obs = Observability::default();
        let mut acked = Vec::new();
        let report = send_batch(&sink, batch(5), &fast(), &obs, |r| acked.extend(r.tokens)).await;
        acked.sort_unstable();
        assert_eq!(acked, vec![0, 1, 2, 3, 4]);
        let calls = sink.calls.lock().unwrap();
        let sent: Vec<Vec<&[u8]>> = calls
            .iter()
            .map(|c| c.iter().map(|b| &b[..]).collect())
            .collect();
        assert_eq!(
            sent,
            vec![
                vec![&b"r0"[..], b"r1", b"r2", b"r3", b"r4"],
                vec![&b"r1"[..], b"r3"],
                vec![&b"r1"[..], b"r3"],
                vec![&b"r1"[..]],
            ]
        );
        assert_eq!(
            report,
            SendReport {
                calls: 4,
                resent_records: 2 + 2 + 1
            }
        );
        assert_eq!(obs.metrics.events_sent.get(), 5);
        assert_eq!(obs.metrics.requests.get(), 4);
    }

    #[tokio::test]
    async fn permanent_error_marks_unready_then_recovers() {
        let sink = Scripted::default();
        let permanent = SinkError::Permanent {
            code: "ResourceNotFoundException".into(),
            message: "no stream".into(),
        };
        sink.script
            .lock()
            .unwrap()
            .extend([Err(permanent.clone()), Err(permanent)]);
        let obs = Observability::default();
        obs.health.set_started();
        let mut acked = 0;
        let report = send_batch(&sink, batch(3), &fast(), &obs, |r| acked += r.tokens.len()).await;
        assert_eq!(acked, 3);
        assert_eq!(report.calls, 3);
        assert!(
            obs.health.readiness().is_ok(),
            "cleared after the sink recovered"
        );
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let b = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        };
        let mut rng = fastrand::Rng::with_seed(1);
        for attempt in 0..40 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << attempt.min(20))
                .min(Duration::from_secs(5));
            let d = b.delay(attempt, &mut rng);
            assert!(d >= ceiling / 2 && d <= ceiling, "attempt {attempt}: {d:?}");
        }
        let spread: std::collections::HashSet<Duration> =
            (0..20).map(|_| b.delay(3, &mut rng)).collect();
        assert!(spread.len() > 10, "delays are jittered");
    }
}
