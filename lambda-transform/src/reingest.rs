//! Putting overflow records back into the delivery stream, over the one Firehose boundary
//! (`firetail_firehose`): only the entries Firehose reports as failed are sent again, for a
//! bounded number of attempts, none past the invocation's deadline (less a reserve, so the
//! response still gets out before Lambda's timeout). What is not accepted by then is answered
//! `ProcessingFailed`: Firehose keeps the original in the backup bucket.

use std::time::Duration;

use firetail_firehose::{
    Backoff, CallLimits, FirehoseClient, Record, RetryPolicy, batch_records, deliver,
};
use tokio::time::Instant;

/// Stop retrying when less than this remains before the Lambda deadline, so the response
/// still gets out.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(2);

/// Timeout of one `PutRecordBatch` attempt: a call that hangs must leave time for the next.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Backoff between attempts: from 100 ms, capped at 2 s.
pub const BACKOFF: Backoff = Backoff {
    base: Duration::from_millis(100),
    cap: Duration::from_secs(2),
};

/// Sends `payloads` to `stream`; returns, per payload, whether Firehose accepted it.
pub async fn put_all<C: FirehoseClient>(
    client: &C,
    stream: &str,
    payloads: Vec<Vec<u8>>,
    max_attempts: u32,
    deadline: Option<Instant>,
) -> Vec<bool> {
    let mut accepted = vec![false; payloads.len()];
    let policy = RetryPolicy::bounded(
        BACKOFF,
        max_attempts,
        deadline.map(|d| d.checked_sub(DEADLINE_RESERVE).unwrap_or(d)),
    );
    let records = payloads
        .into_iter()
        .enumerate()
        .map(|(i, data)| Record::single(data, i));
    for batch in batch_records(records, CallLimits::FIREHOSE) {
        deliver(client, stream, batch, &policy, &(), |record| {
            for &i in &record.tokens {
                accepted[i] = true;
            }
        })
        .await;
    }
    accepted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_firehose::CallError;
    use firetail_firehose::testing::{Scripted, Step};

    fn throttled() -> Step {
        Step::Fail(CallError::Throttled {
            code: "ServiceUnavailableException".into(),
            message: "503".into(),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn resends_only_failed_entries() {
        let client = Scripted::new([Step::Mask(vec![true, false, true, false])]);
        let payloads: Vec<Vec<u8>> = [b"a", b"b", b"c", b"d"]
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let ok = put_all(&client, "s", payloads, 3, None).await;
        assert_eq!(ok, vec![true; 4]);
        let calls: Vec<Vec<Vec<u8>>> = client
            .calls()
            .iter()
            .map(|c| c.records.iter().map(|r| r.to_vec()).collect())
            .collect();
        assert_eq!(
            calls,
            vec![
                vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec(), b"d".to_vec()],
                vec![b"b".to_vec(), b"d".to_vec()]
            ]
        );
        assert!(client.calls().iter().all(|c| c.stream == "s"));
    }

    #[tokio::test(start_paused = true)]
    async fn whole_call_failures_are_retried_then_given_up() {
        let client = Scripted::new([throttled()]);
        assert_eq!(
            put_all(&client, "s", vec![b"a".to_vec()], 3, None).await,
            vec![true]
        );
        let client = Scripted::new(std::iter::repeat_n(throttled(), 10));
        assert_eq!(
            put_all(&client, "s", vec![b"a".to_vec()], 3, None).await,
            vec![false]
        );
        assert_eq!(client.calls().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn stops_before_the_deadline() {
        let client = Scripted::new(std::iter::repeat_n(throttled(), 10));
        // 2.5 s left: the reserve leaves 0.5 s, room for a few short waits, not ten attempts.
        let deadline = Instant::now() + Duration::from_millis(2_500);
        assert_eq!(
            put_all(&client, "s", vec![b"a".to_vec()], 10, Some(deadline)).await,
            vec![false]
        );
        assert!(
            (1..10).contains(&client.calls().len()),
            "{}",
            client.calls().len()
        );
        assert!(Instant::now() <= deadline - DEADLINE_RESERVE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_endpoint_cannot_outlive_the_deadline() {
        let client = Scripted::new([Step::Hang]);
        let deadline = Instant::now() + Duration::from_secs(30);
        assert_eq!(
            put_all(&client, "s", vec![b"a".to_vec()], 4, Some(deadline)).await,
            vec![false]
        );
        assert!(Instant::now() <= deadline - DEADLINE_RESERVE);
    }

    #[test]
    fn payloads_are_batched_within_call_limits() {
        let calls = |payloads: Vec<Vec<u8>>| {
            let client = Scripted::accepting();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            rt.block_on(put_all(&client, "s", payloads, 1, None));
            client
                .calls()
                .iter()
                .map(|c| c.records.len())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            calls((0..1_001).map(|_| vec![0u8; 10]).collect()),
            vec![500, 500, 1]
        );
        assert_eq!(
            calls((0..9).map(|_| vec![0u8; 1_000 * 1024]).collect()),
            vec![4, 4, 1]
        );
    }
}
