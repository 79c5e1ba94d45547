//! Redrive against the FAULT-INJECTING Firehose endpoint (per-record failures, which
//! moto cannot produce), reading the fixtures from moto's S3: only the failed entries are
//! resent, and every record is accepted exactly once.

use std::collections::BTreeMap;

use firetail_redrive::redrive;
use firetail_testkit::{FaultPlan, FirehoseEndpoint, MotoServer};

use super::common::{config, firehose_for, lines, never, store, upload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failures_resend_only_the_failed_entries() {
    let moto = MotoServer::start();
    upload(&moto, "backup").await;
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 11,
        record_failure_ratio: 0.3,
        ..FaultPlan::default()
    })
    .await
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let cfg = config("backup", "logs", state.path());
    let summary = redrive(&cfg, &store(&moto), &firehose_for(&endpoint.url()), never())
        .await
        .unwrap();

    let stats = endpoint.stats();
    assert!(stats.records_failed > 5, "faults were injected: {stats:?}");
    // Exactly the refused entries were resent, once per refusal; every call is counted.
    assert_eq!(summary.resent_records, stats.records_failed, "{summary:#?}");
    assert_eq!(summary.calls, stats.requests);
    let sendable = lines().into_iter().filter(|l| l.unknown == "send").count() as u64;
    assert_eq!(summary.records_sent, sendable);

    let mut expected: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for l in lines().into_iter().filter(|l| l.unknown == "send") {
        *expected.entry(l.data.unwrap()).or_default() += 1;
    }
    let mut got: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for data in endpoint.accepted() {
        *got.entry(data).or_default() += 1;
    }
    assert_eq!(got, expected, "every sendable record accepted exactly once");
    assert_eq!(stats.records_accepted, sendable);
}
