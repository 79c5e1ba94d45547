//! The moto launcher and its SDK helpers against a real `moto_server` (installed by
//! `bash tests/run`; found through FIRETAIL_MOTO_SERVER or the venvs it records).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::{DeliveryStreamStatus, Record};
use firetail_testkit::MotoServer;

#[tokio::test]
async fn records_sent_through_the_sdk_land_in_s3() {
    let moto = MotoServer::start();
    let arn = moto.create_s3_stream("app-logs", "log-bucket").await;
    assert!(arn.ends_with(":deliverystream/app-logs"), "{arn}");

    let firehose = moto.firehose_client();
    // DescribeDeliveryStream must deserialise (it does only with CompressionFormat set).
    let described = firehose
        .describe_delivery_stream()
        .delivery_stream_name("app-logs")
        .send()
        .await
        .unwrap();
    let description = described.delivery_stream_description().unwrap();
    assert_eq!(
        description.delivery_stream_status(),
        &DeliveryStreamStatus::Active
    );

    let records = ["a-1\n", "a-2\n", "a-3\n"]
        .iter()
        .map(|line| {
            Record::builder()
                .data(Blob::new(line.as_bytes()))
                .build()
                .unwrap()
        })
        .collect::<Vec<_>>();
    let sent = firehose
        .put_record_batch()
        .delivery_stream_name("app-logs")
        .set_records(Some(records))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.failed_put_count(), 0);
    assert_eq!(sent.request_responses().len(), 3);
    firehose
        .put_record()
        .delivery_stream_name("app-logs")
        .record(Record::builder().data(Blob::new("b-1\n")).build().unwrap())
        .send()
        .await
        .unwrap();

    let objects = moto.objects("log-bucket").await;
    // One object per call, records concatenated verbatim.
    assert_eq!(objects.len(), 2, "{objects:?}");
    let mut bodies: Vec<String> = objects
        .iter()
        .map(|(_, body)| String::from_utf8(body.clone()).unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["a-1\na-2\na-3\n", "b-1\n"]);
    let mut keys: Vec<&str> = objects.iter().map(|(key, _)| key.as_str()).collect();
    let listed = keys.clone();
    keys.sort();
    assert_eq!(keys, listed, "objects() must be sorted by key");
}

#[tokio::test]
async fn reset_forgets_streams_and_buckets() {
    let moto = MotoServer::start();
    moto.create_s3_stream("gone", "gone-bucket").await;
    moto.reset();
    let listed = moto
        .firehose_client()
        .list_delivery_streams()
        .send()
        .await
        .unwrap();
    assert!(listed.delivery_stream_names().is_empty());
    let buckets = moto.s3_client().list_buckets().send().await.unwrap();
    assert!(buckets.buckets().is_empty());
}

#[test]
fn drop_kills_the_server() {
    let moto = MotoServer::start();
    let pid = moto.pid();
    let port: u16 = moto.url().rsplit(':').next().unwrap().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    drop(moto);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
#[should_panic(expected = "run `bash tests/run`, which installs moto into a venv")]
fn a_missing_binary_says_how_to_get_one() {
    MotoServer::start_at(Path::new("/nonexistent/moto_server"));
}
