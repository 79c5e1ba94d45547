//! Real AWS SDK clients pointed at a local endpoint (moto or the fault-injecting Firehose),
//! with dummy credentials, and the same settings as environment variables for child processes.
//!
//! Retries stay in the SDK's standard mode with its default 3 attempts; only the backoff is
//! shortened (10 ms first, 200 ms cap) so a test that provokes retries stays quick.

use std::time::Duration;

use aws_sdk_firehose::config::retry::RetryConfig;
use aws_sdk_firehose::config::{BehaviorVersion, Credentials, Region};

/// The region every helper uses.
pub const REGION: &str = "us-east-1";
/// The dummy access key id; any signature is accepted by the local endpoints.
pub const ACCESS_KEY_ID: &str = "AKIDFIRETAILTEST";
/// The dummy secret key.
pub const SECRET_ACCESS_KEY: &str = "firetail-test-secret";

fn credentials() -> Credentials {
    Credentials::new(
        ACCESS_KEY_ID,
        SECRET_ACCESS_KEY,
        None,
        None,
        "firetail-testkit",
    )
}

/// The SDK's standard retry mode with a short backoff.
pub fn test_retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(200))
}

/// A Firehose client config for `url`, to adjust (retries, timeouts) before `build()`.
pub fn firehose_config(url: &str) -> aws_sdk_firehose::config::Builder {
    aws_sdk_firehose::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(credentials())
        .endpoint_url(url)
        .retry_config(test_retry_config())
}

/// A Firehose client for the endpoint at `url` (e.g. `http://127.0.0.1:PORT`).
pub fn firehose_client(url: &str) -> aws_sdk_firehose::Client {
    aws_sdk_firehose::Client::from_conf(firehose_config(url).build())
}

/// An S3 client for the endpoint at `url`, path-style addressing (no bucket subdomains).
pub fn s3_client(url: &str) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::new()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "firetail-testkit",
        ))
        .endpoint_url(url)
        .force_path_style(true)
        .retry_config(test_retry_config())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Environment for a child process whose AWS SDK uses the default chain (the sidecar, the
/// transform): every service at `url`, dummy credentials, the test region, no instance
/// metadata probing.
pub fn sdk_env(url: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}
