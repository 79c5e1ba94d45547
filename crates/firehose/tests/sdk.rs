//! [`SdkClient`], the real aws-sdk-firehose client, against the test kit's FAULT-INJECTING
//! Firehose endpoint on 127.0.0.1: what the service answers becomes the same outcomes and
//! errors every sender works with, and `deliver` over it resends only what failed.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use firetail_firehose::{
    Backoff, Batch, CallError, ClientSettings, EntryOutcome, FirehoseClient, Record, RetryPolicy,
    SdkClient, StreamStatus, deliver,
};
use firetail_testkit::{FaultPlan, FirehoseEndpoint};

fn client(url: &str) -> SdkClient {
    SdkClient::for_endpoint(
        url,
        ClientSettings {
            attempt_timeout: Duration::from_secs(2),
        },
    )
}

fn records(n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|i| Bytes::from(format!("record {i}\n")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_become_outcomes_and_classified_errors() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 5,
        record_failure_ratio: 0.5,
        streams: Some(vec!["logs".into()]),
        ..FaultPlan::default()
    })
    .await
    .unwrap();
    let c = client(&endpoint.url());
    assert_eq!(
        c.describe_delivery_stream("logs").await.unwrap(),
        StreamStatus::Active
    );
    let outcomes = c.put_record_batch("logs", &records(40)).await.unwrap();
    assert_eq!(outcomes.len(), 40);
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, EntryOutcome::Failed { code, .. } if code == "ServiceUnavailableException"))
        .count();
    assert!((5..35).contains(&failed), "{failed} of 40 failed");
    assert_eq!(endpoint.accepted().len(), 40 - failed);

    // A stream that does not exist is an operator's problem, not a retry's.
    let missing = c.put_record_batch("nope", &records(1)).await.unwrap_err();
    assert!(
        matches!(&missing, CallError::Permanent { code, .. } if code == "ResourceNotFoundException"),
        "{missing}"
    );
    assert!(
        c.describe_delivery_stream("nope")
            .await
            .unwrap_err()
            .is_permanent()
    );

    // Throttled and failing calls, and a dead endpoint.
    endpoint.set_plan(FaultPlan {
        throttle_ratio: 1.0,
        ..FaultPlan::default()
    });
    let throttled = c.put_record_batch("logs", &records(1)).await.unwrap_err();
    assert!(
        matches!(throttled, CallError::Throttled { .. }),
        "{throttled}"
    );
    endpoint.set_plan(FaultPlan {
        server_error_ratio: 1.0,
        ..FaultPlan::default()
    });
    let five_hundred = c.put_record_batch("logs", &records(1)).await.unwrap_err();
    assert!(
        matches!(five_hundred, CallError::Transient { .. }),
        "{five_hundred}"
    );
    let dead = client("http://127.0.0.1:9")
        .put_record_batch("logs", &records(1))
        .await
        .unwrap_err();
    assert!(matches!(dead, CallError::Transient { .. }), "{dead}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_over_the_sdk_resends_only_failed_entries() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 11,
        record_failure_ratio: 0.3,
        server_error_ratio: 0.2,
        ..FaultPlan::default()
    })
    .await
    .unwrap();
    let batch = Batch {
        records: records(200)
            .into_iter()
            .enumerate()
            .map(|(i, data)| Record::single(data, i))
            .collect(),
    };
    let policy = RetryPolicy::forever(
        Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(10),
        },
        Duration::from_millis(10),
    );
    let mut acked = Vec::new();
    let report = deliver(&client(&endpoint.url()), "logs", batch, &policy, &(), |r| {
        acked.extend(r.tokens);
    })
    .await;
    acked.sort_unstable();
    assert_eq!(acked, (0..200).collect::<Vec<_>>(), "each record once");
    assert!(report.calls > 1 && report.resent_records > 0, "{report:?}");
    let mut stored: Vec<Vec<u8>> = endpoint.accepted();
    stored.sort();
    stored.dedup();
    assert_eq!(stored.len(), 200);
    assert_eq!(
        endpoint.accepted().len(),
        200,
        "no accepted entry was sent twice"
    );
}
