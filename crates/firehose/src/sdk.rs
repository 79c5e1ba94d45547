//! The real client: aws-sdk-firehose with the default credential chain (IRSA's web identity on
//! EKS Fargate) and an endpoint override from `AWS_ENDPOINT_URL_FIREHOSE` / `AWS_ENDPOINT_URL`.
//!
//! The SDK's own retries are off: [`crate::deliver()`] retries, only the failed entries, and
//! counts every attempt. Each attempt has a timeout ([`ClientSettings::attempt_timeout`]) so a
//! stalled connection cannot hold a batch. The client can be built at once
//! ([`SdkClient::from_env`], the sidecar and redrive) or at first use ([`SdkClient::lazy`], the
//! transform: a cold start that re-ingests nothing pays nothing for it).

use std::time::Duration;

use aws_sdk_firehose::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use bytes::Bytes;
use tokio::sync::OnceCell;

use crate::client::{CallError, EntryOutcome, FirehoseClient, StreamStatus, classify};

/// How the SDK client is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// Timeout of one attempt (connect, send, answer).
    pub attempt_timeout: Duration,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(30),
        }
    }
}

/// [`FirehoseClient`] over aws-sdk-firehose.
#[derive(Debug)]
pub struct SdkClient {
    client: OnceCell<aws_sdk_firehose::Client>,
    settings: ClientSettings,
    fallback_region: std::sync::Mutex<Option<String>>,
}

impl SdkClient {
    /// A client from the default chain, built now.
    pub async fn from_env(settings: ClientSettings) -> Self {
        let me = Self::lazy(settings);
        me.client().await;
        me
    }

    /// A client from the default chain, built at its first call.
    pub fn lazy(settings: ClientSettings) -> Self {
        Self {
            client: OnceCell::new(),
            settings,
            fallback_region: std::sync::Mutex::new(None),
        }
    }

    /// Wraps a client built elsewhere (tests and tools pointing at a local endpoint).
    pub fn from_client(client: aws_sdk_firehose::Client) -> Self {
        Self {
            client: OnceCell::new_with(Some(client)),
            settings: ClientSettings::default(),
            fallback_region: std::sync::Mutex::new(None),
        }
    }

    /// A client for a local Firehose endpoint (`http://127.0.0.1:PORT`) with dummy credentials
    /// in `us-east-1`: moto, the test kit's fault-injecting endpoint, benchmarks.
    pub fn for_endpoint(url: &str, settings: ClientSettings) -> Self {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_firehose::config::SharedCredentialsProvider::new(
                aws_sdk_firehose::config::Credentials::new(
                    "testing",
                    "testing",
                    None,
                    None,
                    "firetail-local",
                ),
            ))
            .endpoint_url(url)
            .build();
        Self {
            client: OnceCell::new_with(Some(aws_sdk_firehose::Client::from_conf(client_config(
                &sdk, settings,
            )))),
            settings,
            fallback_region: std::sync::Mutex::new(None),
        }
    }

    /// The region to use when the environment names none (the transform passes the
    /// invocation's `region`). Only effective before the client is built.
    pub fn set_fallback_region(&self, region: &str) {
        if let Ok(mut r) = self.fallback_region.lock()
            && r.is_none()
            && !region.is_empty()
        {
            *r = Some(region.to_owned());
        }
    }

    async fn client(&self) -> &aws_sdk_firehose::Client {
        self.client
            .get_or_init(|| async {
                let fallback = self.fallback_region.lock().ok().and_then(|r| r.clone());
                let region = aws_config::meta::region::RegionProviderChain::default_provider()
                    .or_else(fallback.map(aws_config::Region::new));
                let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .region(region)
                    .load()
                    .await;
                aws_sdk_firehose::Client::from_conf(client_config(&shared, self.settings))
            })
            .await
    }
}

/// Firehose client settings from a loaded SDK configuration: the SDK's retries off and a
/// timeout per attempt (see the module documentation).
pub fn client_config(
    sdk: &aws_config::SdkConfig,
    settings: ClientSettings,
) -> aws_sdk_firehose::Config {
    aws_sdk_firehose::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(settings.attempt_timeout)
                .build(),
        )
        .build()
}

impl FirehoseClient for SdkClient {
    async fn put_record_batch(
        &self,
        stream: &str,
        records: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        let mut entries = Vec::with_capacity(records.len());
        for data in records {
            // `Blob` owns a Vec, so every attempt copies the record once; records are `Bytes`
            // so that holding them for a resend costs nothing until then.
            let record = Record::builder()
                .data(Blob::new(data.to_vec()))
                .build()
                .map_err(|e| CallError::Permanent {
                    code: "BuildRecord".into(),
                    message: e.to_string(),
                })?;
            entries.push(record);
        }
        let out = self
            .client()
            .await
            .put_record_batch()
            .delivery_stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out
            .request_responses()
            .iter()
            .map(|r| match r.error_code() {
                Some(code) => EntryOutcome::Failed {
                    code: code.to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                },
                None => EntryOutcome::Accepted,
            })
            .collect())
    }

    async fn describe_delivery_stream(&self, stream: &str) -> Result<StreamStatus, CallError> {
        let out = self
            .client()
            .await
            .describe_delivery_stream()
            .delivery_stream_name(stream)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.delivery_stream_description().map_or_else(
            || StreamStatus::Other("UNKNOWN".into()),
            |d| StreamStatus::parse(d.delivery_stream_status().as_str()),
        ))
    }
}

fn sdk_error<E>(err: SdkError<E, aws_sdk_firehose::config::http::HttpResponse>) -> CallError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => classify(
            ctx.err().code(),
            Some(ctx.raw().status().as_u16()),
            ctx.err().message().unwrap_or_default(),
        ),
        SdkError::TimeoutError(_) => CallError::Transient {
            code: "Timeout".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
        SdkError::DispatchFailure(_) => CallError::Transient {
            code: "Dispatch".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
        SdkError::ResponseError(ctx) => classify(
            None,
            Some(ctx.raw().status().as_u16()),
            &DisplayErrorContext(&err).to_string(),
        ),
        // Construction failures include missing credentials or region: an operator problem.
        _ => CallError::Permanent {
            code: "Construction".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
    }
}
