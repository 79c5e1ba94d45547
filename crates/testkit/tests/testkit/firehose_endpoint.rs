//! The fault-injecting Firehose endpoint driven by the REAL aws-sdk-firehose client: success,
//! partial failures, SDK retries of throttling / 5xx / resets, lost acks, and the call limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use firetail_testkit::wire::limits::{
    FIREHOSE_MAX_RECORD_BYTES as MAX_RECORD_BYTES,
    PUT_RECORD_BATCH_MAX_BYTES as MAX_BYTES_PER_CALL,
    PUT_RECORD_BATCH_MAX_RECORDS as MAX_RECORDS_PER_CALL,
};
use std::time::{Duration, Instant};

use aws_sdk_firehose::Client;
use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use firetail_testkit::aws::{firehose_client, firehose_config};
use firetail_testkit::firehose_endpoint::{AcceptedRecord, EndpointOptions};
use firetail_testkit::{FaultPlan, FirehoseEndpoint};

const STREAM: &str = "app-logs";

fn records(prefix: &str, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| format!("{prefix}-{i:05}\n").into_bytes())
        .collect()
}

async fn put_batch(
    client: &Client,
    data: &[Vec<u8>],
) -> Result<
    aws_sdk_firehose::operation::put_record_batch::PutRecordBatchOutput,
    aws_sdk_firehose::error::SdkError<
        aws_sdk_firehose::operation::put_record_batch::PutRecordBatchError,
    >,
> {
    let records = data
        .iter()
        .map(|d| {
            Record::builder()
                .data(Blob::new(d.clone()))
                .build()
                .unwrap()
        })
        .collect();
    client
        .put_record_batch()
        .delivery_stream_name(STREAM)
        .set_records(Some(records))
        .send()
        .await
}

/// A client that outlasts longer fault streaks than the default 3 attempts. The SDK's backoff
/// is full jitter (a uniform fraction of the capped exponential), so nine retries can all be
/// short: with 10 attempts the throttling test below failed 1 run in 40 (the retries ended
/// inside its 150 ms dead window). 39 retries at up to 50 ms each average about 0.9 s, and
/// failed 0 runs in 40.
fn patient_client(url: &str) -> Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(40)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50));
    Client::from_conf(firehose_config(url).retry_config(retry).build())
}

fn service_code<E: aws_sdk_firehose::error::ProvideErrorMetadata>(
    err: &aws_sdk_firehose::error::SdkError<E>,
) -> Option<String> {
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_owned)
}

#[tokio::test]
async fn success_path_records_every_record_in_order() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let client = firehose_client(&endpoint.url());
    let first = records("a", 10);
    let second = records("b", 5);

    let out = put_batch(&client, &first).await.unwrap();
    assert_eq!(out.failed_put_count(), 0);
    assert_eq!(out.encrypted(), Some(false));
    assert_eq!(out.request_responses().len(), 10);
    put_batch(&client, &second).await.unwrap();

    let ids: BTreeSet<_> = out
        .request_responses()
        .iter()
        .map(|r| r.record_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10, "record ids must be unique");
    let expected: Vec<Vec<u8>> = first.iter().chain(&second).cloned().collect();
    assert_eq!(endpoint.accepted(), expected);
    assert_eq!(
        endpoint.accepted_records()[0],
        AcceptedRecord {
            stream: STREAM.to_owned(),
            data: b"a-00000\n".to_vec()
        }
    );
    assert!(endpoint.wait_accepted(15, Duration::ZERO).await);
    assert!(!endpoint.wait_accepted(16, Duration::from_millis(20)).await);
    let stats = endpoint.stats();
    assert_eq!(stats.requests, 2);
    assert_eq!(stats.records_accepted, 15);
    assert_eq!(stats.records_failed, 0);
    assert_eq!(
        stats.bytes_accepted,
        expected.iter().map(|r| r.len() as u64).sum::<u64>()
    );
}

#[tokio::test]
async fn put_record_and_describe_work_and_unknown_streams_are_refused() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        streams: Some(vec![STREAM.to_owned()]),
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = firehose_client(&endpoint.url());
    let out = client
        .put_record()
        .delivery_stream_name(STREAM)
        .record(Record::builder().data(Blob::new("one\n")).build().unwrap())
        .send()
        .await
        .unwrap();
    assert!(!out.record_id().is_empty());
    assert_eq!(endpoint.accepted(), vec![b"one\n".to_vec()]);

    let described = client
        .describe_delivery_stream()
        .delivery_stream_name(STREAM)
        .send()
        .await
        .unwrap();
    let description = described.delivery_stream_description().unwrap();
    assert_eq!(description.delivery_stream_name(), STREAM);
    assert_eq!(description.delivery_stream_status().as_str(), "ACTIVE");

    let missing = client
        .describe_delivery_stream()
        .delivery_stream_name("nope")
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    let err = client
        .put_record_batch()
        .delivery_stream_name("nope")
        .records(Record::builder().data(Blob::new("x")).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_resource_not_found_exception()
    );
    assert_eq!(endpoint.stats().records_accepted, 1);
}

#[tokio::test]
async fn partial_failures_surface_per_entry_and_only_successes_are_recorded() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 1,
        record_failure_ratio: 0.3,
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = firehose_client(&endpoint.url());
    let data = records("p", 300);
    let out = put_batch(&client, &data).await.unwrap();

    let responses = out.request_responses();
    assert_eq!(responses.len(), 300);
    let failed: Vec<usize> = responses
        .iter()
        .enumerate()
        .filter(|(_, r)| r.error_code().is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(out.failed_put_count() as usize, failed.len());
    // About 30 %: the seed makes it exact, the range keeps the test honest about the ratio.
    assert!((60..120).contains(&failed.len()), "{} failed", failed.len());
    for i in &failed {
        assert_eq!(
            responses[*i].error_code(),
            Some("ServiceUnavailableException")
        );
        assert_eq!(responses[*i].error_message(), Some("Slow down."));
        assert!(responses[*i].record_id().is_none());
    }
    let expected: Vec<Vec<u8>> = data
        .iter()
        .enumerate()
        .filter(|(i, _)| !failed.contains(i))
        .map(|(_, d)| d.clone())
        .collect();
    assert_eq!(endpoint.accepted(), expected);

    // Resending only the failed entries, until none fail, delivers each record exactly once.
    let mut pending: Vec<Vec<u8>> = failed.iter().map(|i| data[*i].clone()).collect();
    for _ in 0..50 {
        if pending.is_empty() {
            break;
        }
        let out = put_batch(&client, &pending).await.unwrap();
        pending = out
            .request_responses()
            .iter()
            .zip(&pending)
            .filter(|(r, _)| r.error_code().is_some())
            .map(|(_, d)| d.clone())
            .collect();
    }
    assert!(pending.is_empty());
    let mut got = endpoint.accepted();
    got.sort();
    let mut want = data.clone();
    want.sort();
    assert_eq!(got, want);
    let stats = endpoint.stats();
    assert_eq!(stats.records_accepted, 300);
    assert!(stats.records_failed >= failed.len() as u64);
}

#[tokio::test]
async fn throttled_calls_are_retried_by_the_sdk_until_the_dead_window_ends() {
    // The window opens when the endpoint starts, so the clock starts before it (taken after
    // building the client, the call could end less than 150 ms later on a fast machine).
    let started = Instant::now();
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        dead_for: Duration::from_millis(150),
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = patient_client(&endpoint.url());
    let data = records("t", 20);
    let out = put_batch(&client, &data).await.unwrap();
    assert_eq!(out.failed_put_count(), 0);
    assert!(started.elapsed() >= Duration::from_millis(150));
    let stats = endpoint.stats();
    assert!(stats.throttled_calls >= 1);
    assert_eq!(stats.requests, stats.throttled_calls + 1);
    assert_eq!(endpoint.accepted(), data);
}

#[tokio::test]
async fn a_throttle_sent_as_400_is_a_modelled_error_and_not_retried() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        throttle_ratio: 1.0,
        throttle_status: 400,
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = patient_client(&endpoint.url());
    let err = put_batch(&client, &records("t", 3)).await.unwrap_err();
    assert!(
        err.as_service_error()
            .unwrap()
            .is_service_unavailable_exception()
    );
    assert_eq!(endpoint.stats().requests, 1);
    assert!(endpoint.accepted().is_empty());
}

#[tokio::test]
async fn server_errors_and_resets_are_retried_and_lose_nothing() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 9,
        server_error_ratio: 0.3,
        reset_ratio: 0.3,
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = patient_client(&endpoint.url());
    let mut sent = Vec::new();
    for batch in 0..20 {
        let data = records(&format!("r{batch}"), 10);
        let out = put_batch(&client, &data).await.unwrap();
        assert_eq!(out.failed_put_count(), 0);
        sent.extend(data);
    }
    let stats = endpoint.stats();
    assert!(stats.server_errors > 0, "{stats:?}");
    assert!(stats.resets > 0, "{stats:?}");
    assert_eq!(stats.requests, 20 + stats.server_errors + stats.resets);
    // Neither fault records anything, so every record is there exactly once, in order.
    assert_eq!(endpoint.accepted(), sent);
}

#[tokio::test]
async fn a_lost_ack_makes_the_sdk_resend_and_duplicates_appear() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        seed: 3,
        lost_ack_ratio: 0.4,
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = patient_client(&endpoint.url());
    for batch in 0..10 {
        put_batch(&client, &records(&format!("l{batch}"), 5))
            .await
            .unwrap();
    }
    let stats = endpoint.stats();
    assert!(stats.lost_acks > 0, "{stats:?}");
    assert_eq!(stats.records_accepted, 50 + 5 * stats.lost_acks);
    let unique: BTreeSet<Vec<u8>> = endpoint.accepted().into_iter().collect();
    assert_eq!(unique.len(), 50);
}

#[tokio::test]
async fn slow_answers_arrive_late_but_complete() {
    let endpoint = FirehoseEndpoint::start(FaultPlan {
        delay_ratio: 1.0,
        delay: Duration::from_millis(100),
        ..FaultPlan::none()
    })
    .await
    .unwrap();
    let client = firehose_client(&endpoint.url());
    let started = Instant::now();
    put_batch(&client, &records("s", 2)).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(endpoint.accepted().len(), 2);
}

#[tokio::test]
async fn set_plan_changes_behaviour_mid_run() {
    let endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let client = firehose_client(&endpoint.url());
    put_batch(&client, &records("x", 4)).await.unwrap();
    endpoint.set_plan(FaultPlan {
        record_failure_ratio: 1.0,
        ..FaultPlan::none()
    });
    let out = put_batch(&client, &records("y", 4)).await.unwrap();
    assert_eq!(out.failed_put_count(), 4);
    assert_eq!(endpoint.stats().records_accepted, 4);
}

#[tokio::test]
async fn call_limits_are_enforced_with_invalid_argument() {
    let endpoint = FirehoseEndpoint::start_with(EndpointOptions::default())
        .await
        .unwrap();
    let client = firehose_client(&endpoint.url());

    let too_many = put_batch(&client, &records("m", MAX_RECORDS_PER_CALL + 1))
        .await
        .unwrap_err();
    assert_eq!(
        service_code(&too_many).as_deref(),
        Some("InvalidArgumentException")
    );
    assert!(
        too_many
            .as_service_error()
            .unwrap()
            .is_invalid_argument_exception()
    );

    let too_large = put_batch(&client, &[vec![b'x'; MAX_RECORD_BYTES + 1]])
        .await
        .unwrap_err();
    assert_eq!(
        service_code(&too_large).as_deref(),
        Some("InvalidArgumentException")
    );

    let per_record = MAX_RECORD_BYTES - 1;
    let count = MAX_BYTES_PER_CALL / per_record + 1;
    let over_call = put_batch(&client, &vec![vec![b'y'; per_record]; count])
        .await
        .unwrap_err();
    assert_eq!(
        service_code(&over_call).as_deref(),
        Some("InvalidArgumentException")
    );

    // Exactly at the limits is fine.
    put_batch(&client, &records("ok", MAX_RECORDS_PER_CALL))
        .await
        .unwrap();
    put_batch(&client, &[vec![b'z'; MAX_RECORD_BYTES]])
        .await
        .unwrap();

    let stats = endpoint.stats();
    assert_eq!(stats.invalid_calls, 3);
    assert_eq!(stats.records_accepted, MAX_RECORDS_PER_CALL as u64 + 1);
}

#[tokio::test]
async fn discard_mode_counts_without_keeping() {
    let endpoint = FirehoseEndpoint::start_with(EndpointOptions {
        keep_records: false,
        ..EndpointOptions::default()
    })
    .await
    .unwrap();
    let client = firehose_client(&endpoint.url());
    put_batch(&client, &records("d", 7)).await.unwrap();
    assert!(endpoint.accepted().is_empty());
    let stats = endpoint.stats();
    assert_eq!(stats.records_accepted, 7);
    assert_eq!(stats.bytes_accepted, 7 * 8);
}

#[tokio::test]
async fn billed_bytes_events_and_the_stats_path_report_what_arrived() {
    let endpoint = FirehoseEndpoint::start_with(EndpointOptions {
        keep_records: false,
        count_events: true,
        ..EndpointOptions::default()
    })
    .await
    .unwrap();
    let client = firehose_client(&endpoint.url());
    // Three events in a 6,000-byte record (billed 10,240), one small record (5,120) and a
    // gzip record holding two events (5,120).
    let mut big = Vec::new();
    for _ in 0..3 {
        big.extend(std::iter::repeat_n(b'a', 1_999));
        big.push(b'\n');
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, b"{\"a\":1}\n{\"a\":2}\n").unwrap();
    let gz = gz.finish().unwrap();
    put_batch(&client, &[big.clone(), b"one\n".to_vec(), gz.clone()])
        .await
        .unwrap();
    let stats = endpoint.stats();
    assert_eq!(stats.records_accepted, 3);
    assert_eq!(
        stats.bytes_accepted,
        (big.len() + 4 + gz.len()) as u64,
        "{stats:?}"
    );
    assert_eq!(stats.billed_bytes, 10_240 + 5_120 + 5_120);
    assert_eq!(stats.events, 6);
    assert_eq!(stats.undecodable_records, 0);

    // GET /stats is not a Firehose call: it answers the same counters and counts nothing.
    let mut conn = tokio::net::TcpStream::connect(endpoint.addr())
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut conn,
        b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut conn, &mut answer)
        .await
        .unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["records_accepted"], 3);
    assert_eq!(json["billed_bytes"], 20_480);
    assert_eq!(json["events"], 6);
    assert_eq!(endpoint.stats().requests, 1);
}

/// Sends one HTTP/1.1 request over TLS, trusting only `ca_pem`, and returns the raw answer.
async fn https_request(ca_pem: &str, port: u16, request: &[u8]) -> std::io::Result<String> {
    use rustls::pki_types::pem::PemObject as _;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(request).await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await?;
    Ok(String::from_utf8(answer).unwrap())
}

#[tokio::test]
async fn tls_mode_serves_https_with_a_certificate_from_the_generated_ca() {
    use firetail_testkit::firehose_endpoint::TestCa;
    let ca = TestCa::generate().unwrap();
    let endpoint = FirehoseEndpoint::start_with(EndpointOptions {
        count_events: true,
        tls: Some(ca.clone()),
        ..EndpointOptions::default()
    })
    .await
    .unwrap();
    let port = endpoint.addr().port();
    assert_eq!(endpoint.url(), format!("https://localhost:{port}"));

    let body = r#"{"DeliveryStreamName":"app-logs","Records":[{"Data":"YQpiCg=="}]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: Firehose_20150804.PutRecordBatch\r\n\
         Content-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = https_request(ca.ca_pem(), port, request.as_bytes())
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"FailedPutCount\":0"), "{answer}");
    assert_eq!(endpoint.accepted(), vec![b"a\nb\n".to_vec()]);
    assert_eq!(endpoint.stats().events, 2);

    let answer = https_request(
        ca.ca_pem(),
        port,
        b"GET /stats HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(answer.contains("\"records_accepted\":1"), "{answer}");

    // A client that does not trust the CA is refused during the handshake.
    let other = TestCa::generate().unwrap();
    let refused = https_request(other.ca_pem(), port, b"GET /stats HTTP/1.1\r\n\r\n").await;
    assert!(
        refused.is_err(),
        "a foreign CA must not verify: {refused:?}"
    );
}
