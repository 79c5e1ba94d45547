//! Delivering one batch: resend only what failed, back off with jitter, and stop when the
//! policy says so.
//!
//! Two policies, one loop:
//! - [`GiveUp::Never`] (the sidecar): the log files are the buffer. A record not accepted is not
//!   acknowledged, so its checkpoint does not advance; giving up would only lose data at the
//!   next restart. Permanent errors (stream missing, access denied) are retried slowly, at
//!   [`RetryPolicy::permanent_retry`], because an operator may fix them.
//! - [`GiveUp::After`] (the transform's re-ingest, redrive): a bounded number of attempts and
//!   an optional deadline that no attempt or wait may pass; a permanent error ends at once.
//!   What is left is handed back ([`Delivery::unsent`]) for the caller to report.

use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;

use crate::batch::{Batch, Record};
use crate::client::{CallError, EntryOutcome, FirehoseClient};
use crate::observe::DeliveryObserver;

/// Capped exponential backoff with "equal jitter" (half fixed, half random), so many senders
/// throttled at once spread out but none retries immediately.
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

/// When a delivery stops trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveUp {
    /// Never: every record is eventually accepted.
    Never,
    /// After `attempts` calls for a record, at a permanent error, or at `deadline`.
    After {
        /// Calls per record, the first included (at least 1).
        attempts: u32,
        /// No call or wait extends past this instant (tokio's clock, so paused-time tests see
        /// it; `Instant::from_std` converts).
        deadline: Option<Instant>,
    },
}

/// How [`deliver`] waits and when it stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// After throttling, transient errors and partially failed calls.
    pub backoff: Backoff,
    /// Between attempts while the error is permanent (only with [`GiveUp::Never`]).
    pub permanent_retry: Duration,
    /// When to stop.
    pub give_up: GiveUp,
}

impl RetryPolicy {
    /// Retry forever (see the module documentation).
    pub fn forever(backoff: Backoff, permanent_retry: Duration) -> Self {
        Self {
            backoff,
            permanent_retry,
            give_up: GiveUp::Never,
        }
    }

    /// At most `attempts` calls per record, none past `deadline`.
    pub fn bounded(backoff: Backoff, attempts: u32, deadline: Option<Instant>) -> Self {
        Self {
            backoff,
            permanent_retry: backoff.cap,
            give_up: GiveUp::After {
                attempts: attempts.max(1),
                deadline,
            },
        }
    }
}

impl Default for RetryPolicy {
    /// Forever, from 100 ms up to 20 s, permanent errors every 30 s (the sidecar's defaults).
    fn default() -> Self {
        Self::forever(
            Backoff {
                base: Duration::from_millis(100),
                cap: Duration::from_secs(20),
            },
            Duration::from_secs(30),
        )
    }
}

/// What [`deliver`] did.
#[derive(Debug)]
pub struct Delivery<T> {
    /// Calls made.
    pub calls: u32,
    /// Records sent again after a per-entry or whole-call failure.
    pub resent_records: u64,
    /// Records never accepted (empty with [`GiveUp::Never`]), in their original order.
    pub unsent: Vec<Record<T>>,
    /// Why the last failed attempt failed, when anything is unsent.
    pub last_error: Option<String>,
}

/// Sends `batch` to `stream` until every record is accepted or the policy gives up.
/// `on_accepted` receives each record exactly once, as soon as Firehose accepts it (so its
/// events can be acknowledged without waiting for the rest of the batch).
pub async fn deliver<C, T, O>(
    client: &C,
    stream: &str,
    batch: Batch<T>,
    policy: &RetryPolicy,
    observer: &O,
    mut on_accepted: impl FnMut(Record<T>),
) -> Delivery<T>
where
    C: FirehoseClient + ?Sized,
    O: DeliveryObserver + ?Sized,
{
    let mut rng = fastrand::Rng::new();
    let mut report = Delivery {
        calls: 0,
        resent_records: 0,
        unsent: Vec::new(),
        last_error: None,
    };
    let mut pending: Vec<Record<T>> = batch.records;
    let mut attempt: u32 = 0;
    let mut alarmed = false;
    while !pending.is_empty() {
        let deadline = match policy.give_up {
            GiveUp::After { deadline, .. } => deadline,
            GiveUp::Never => None,
        };
        let data: Vec<Bytes> = pending.iter().map(|r| r.data.clone()).collect();
        report.calls += 1;
        observer.call(pending.len());
        let answer = match deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::timeout(left, client.put_record_batch(stream, &data))
                    .await
                    .unwrap_or_else(|_| {
                        Err(CallError::Transient {
                            code: "Deadline".into(),
                            message: "the delivery deadline passed during the call".into(),
                        })
                    })
            }
            None => client.put_record_batch(stream, &data).await,
        };
        attempt += 1;
        let (failure, permanent) = match answer {
            Ok(outcomes) if outcomes.len() == pending.len() => {
                if alarmed {
                    tracing::info!(stream, "delivery recovered from a permanent error");
                    observer.permanent_error(None);
                    alarmed = false;
                }
                let mut failed = Vec::new();
                let mut first = None;
                for (record, outcome) in pending.drain(..).zip(outcomes) {
                    match outcome {
                        EntryOutcome::Accepted => {
                            observer.accepted(record.data.len(), record.tokens.len());
                            on_accepted(record);
                        }
                        EntryOutcome::Failed { code, message } => {
                            observer.entry_failed(&code);
                            if first.is_none() {
                                first = Some(format!("{code}: {message}"));
                            }
                            failed.push(record);
                        }
                    }
                }
                pending = failed;
                match first {
                    None => break,
                    Some(why) => {
                        tracing::warn!(
                            stream,
                            failed = pending.len(),
                            first_error = %why,
                            "partial failure, resending only the failed records"
                        );
                        (why, false)
                    }
                }
            }
            Ok(outcomes) => {
                // Without one outcome per record nobody can tell which were stored: resend all.
                let err = CallError::Transient {
                    code: "ResponseMismatch".into(),
                    message: format!("{} responses for {} records", outcomes.len(), pending.len()),
                };
                observer.call_failed(&err, pending.len());
                (err.to_string(), false)
            }
            Err(err) => {
                observer.call_failed(&err, pending.len());
                if err.is_permanent() && policy.give_up == GiveUp::Never {
                    // Not lost yet (the sender still holds the data), so not ERROR by our
                    // rule; but it needs an operator, so WARN on every attempt.
                    tracing::warn!(
                        stream,
                        error = %err,
                        records = pending.len(),
                        retry_in_secs = policy.permanent_retry.as_secs(),
                        "permanent delivery error; retrying slowly until it clears"
                    );
                    observer.permanent_error(Some(&err));
                    alarmed = true;
                } else {
                    tracing::info!(
                        stream,
                        error = %err,
                        records = pending.len(),
                        attempt,
                        "call failed"
                    );
                }
                let permanent = err.is_permanent();
                (err.to_string(), permanent)
            }
        };
        let delay = if permanent && policy.give_up == GiveUp::Never {
            policy.permanent_retry
        } else {
            policy.backoff.delay(attempt - 1, &mut rng)
        };
        if let GiveUp::After { attempts, deadline } = policy.give_up {
            let out_of_time = deadline.is_some_and(|d| Instant::now() + delay >= d);
            if permanent || attempt >= attempts || out_of_time {
                tracing::warn!(
                    stream,
                    unsent = pending.len(),
                    attempts = attempt,
                    last_error = %failure,
                    "giving up on these records"
                );
                report.last_error = Some(failure);
                report.unsent = pending;
                return report;
            }
        }
        report.resent_records += pending.len() as u64;
        tokio::time::sleep(delay).await;
    }
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testing::{Scripted, Step};

    fn batch(n: usize) -> Batch<usize> {
        Batch {
            records: (0..n)
                .map(|i| Record::single(Bytes::from(format!("r{i}")), i))
                .collect(),
        }
    }

    fn fast() -> Backoff {
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
        }
    }

    fn throttled() -> CallError {
        CallError::Throttled {
            code: "ServiceUnavailableException".into(),
            message: "x".into(),
        }
    }

    #[derive(Default)]
    struct Counts {
        calls: std::sync::atomic::AtomicUsize,
        accepted_events: std::sync::atomic::AtomicUsize,
        alarms: std::sync::Mutex<Vec<bool>>,
    }

    impl DeliveryObserver for Counts {
        fn call(&self, _records: usize) {
            self.calls
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn accepted(&self, _bytes: usize, events: usize) {
            self.accepted_events
                .fetch_add(events, std::sync::atomic::Ordering::Relaxed);
        }
        fn permanent_error(&self, error: Option<&CallError>) {
            self.alarms.lock().unwrap().push(error.is_some());
        }
    }

    #[tokio::test]
    async fn resends_only_failed_entries_and_hands_out_each_once() {
        let client = Scripted::new([
            Step::Mask(vec![true, false, true, false, true]),
            Step::Fail(throttled()),
            Step::Mask(vec![false, true]),
        ]);
        let counts = Counts::default();
        let mut acked = Vec::new();
        let policy = RetryPolicy::forever(fast(), Duration::from_millis(2));
        let report = deliver(&client, "s", batch(5), &policy, &counts, |r| {
            acked.extend(r.tokens)
        })
        .await;
        acked.sort_unstable();
        assert_eq!(acked, vec![0, 1, 2, 3, 4]);
        let sent: Vec<Vec<Vec<u8>>> = client
            .calls()
            .into_iter()
            .map(|c| c.records.iter().map(|b| b.to_vec()).collect())
            .collect();
        let names =
            |v: &[&str]| -> Vec<Vec<u8>> { v.iter().map(|s| s.as_bytes().to_vec()).collect() };
        assert_eq!(
            sent,
            vec![
                names(&["r0", "r1", "r2", "r3", "r4"]),
                names(&["r1", "r3"]),
                names(&["r1", "r3"]),
                names(&["r1"]),
            ]
        );
        assert_eq!((report.calls, report.resent_records), (4, 2 + 2 + 1));
        assert!(report.unsent.is_empty());
        assert_eq!(counts.calls.load(std::sync::atomic::Ordering::Relaxed), 4);
        assert_eq!(
            counts
                .accepted_events
                .load(std::sync::atomic::Ordering::Relaxed),
            5
        );
    }

    #[tokio::test]
    async fn forever_rides_out_a_permanent_error_and_clears_the_alarm() {
        let permanent = CallError::Permanent {
            code: "ResourceNotFoundException".into(),
            message: "no stream".into(),
        };
        let client = Scripted::new([Step::Fail(permanent.clone()), Step::Fail(permanent)]);
        let counts = Counts::default();
        let policy = RetryPolicy::forever(fast(), Duration::from_millis(2));
        let mut acked = 0;
        let report = deliver(&client, "s", batch(3), &policy, &counts, |r| {
            acked += r.tokens.len()
        })
        .await;
        assert_eq!((acked, report.calls), (3, 3));
        assert_eq!(*counts.alarms.lock().unwrap(), vec![true, true, false]);
    }

    #[tokio::test(start_paused = true)]
    async fn bounded_gives_up_after_its_attempts_and_hands_back_the_rest() {
        let client = Scripted::new([
            Step::Mask(vec![true, false, false]),
            Step::Mask(vec![false, true]),
        ]);
        let policy = RetryPolicy::bounded(fast(), 2, None);
        let mut acked = Vec::new();
        let report = deliver(&client, "s", batch(3), &policy, &(), |r| {
            acked.extend(r.tokens)
        })
        .await;
        assert_eq!(acked, vec![0, 2]);
        assert_eq!(
            report
                .unsent
                .iter()
                .map(|r| r.tokens[0])
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(report.calls, 2);
        assert!(
            report
                .last_error
                .unwrap()
                .contains("ServiceUnavailableException")
        );

        // A permanent error ends a bounded delivery at once.
        let client = Scripted::new([Step::Fail(CallError::Permanent {
            code: "AccessDeniedException".into(),
            message: "no".into(),
        })]);
        let report = deliver(
            &client,
            "s",
            batch(2),
            &RetryPolicy::bounded(fast(), 10, None),
            &(),
            |_| {},
        )
        .await;
        assert_eq!((report.calls, report.unsent.len()), (1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_call_or_wait_passes_the_deadline() {
        // Every call fails; backoff up to 4 s: with a 1 s deadline only one call fits.
        let client = Scripted::new(std::iter::repeat_n(Step::Fail(throttled()), 10));
        let slow = Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(4),
        };
        let start = Instant::now();
        let policy = RetryPolicy::bounded(slow, 10, Some(start + Duration::from_secs(1)));
        let report = deliver(&client, "s", batch(1), &policy, &(), |_| {}).await;
        assert_eq!((report.calls, report.unsent.len()), (1, 1));
        assert!(Instant::now() <= start + Duration::from_secs(1));

        // A call that never answers is cut off at the deadline, not waited for.
        let hanging = Scripted::new([Step::Hang]);
        let policy = RetryPolicy::bounded(fast(), 3, Some(Instant::now() + Duration::from_secs(5)));
        let started = Instant::now();
        let report = deliver(&hanging, "s", batch(2), &policy, &(), |_| {}).await;
        assert_eq!(report.unsent.len(), 2);
        assert!(report.last_error.unwrap().contains("Deadline"));
        assert!(Instant::now() - started <= Duration::from_secs(5));
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
