//! The Amazon Data Firehose sink: one `PutRecordBatch` per call, results per record.
//!
//! # Layout
//! - [`FirehoseSink`]: wraps an `aws_sdk_firehose::Client` and a delivery stream name.
//! - [`FirehoseSink::describe`]: `DescribeDeliveryStream` status, for `firetail check`.
//! - `sdk_error`: turns an SDK error into a classified [`SinkError`].
//!
//! The client should be built with the SDK's own retries disabled: the sender retries with its
//! own backoff, only the failed entries, forever, and counts every attempt in the metrics.

use aws_sdk_firehose::Client;
use aws_sdk_firehose::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record;
use bytes::Bytes;

use super::{EntryOutcome, Sink, SinkError, classify};

/// Sends records to one Firehose delivery stream.
#[derive(Debug, Clone)]
pub struct FirehoseSink {
    client: Client,
    stream: String,
}

impl FirehoseSink {
    /// A sink for delivery stream `stream`.
    pub fn new(client: Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
        }
    }

    /// The delivery stream's status (`ACTIVE`, `CREATING`, ...).
    pub async fn describe(&self) -> Result<String, SinkError> {
        let out = self
            .client
            .describe_delivery_stream()
            .delivery_stream_name(&self.stream)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.delivery_stream_description().map_or_else(
            || "UNKNOWN".to_owned(),
            |d| d.delivery_stream_status().as_str().to_owned(),
        ))
    }
}

impl Sink for FirehoseSink {
    async fn put_records(&self, records: &[Bytes]) -> Result<Vec<EntryOutcome>, SinkError> {
        let mut entries = Vec::with_capacity(records.len());
        for data in records {
            let record = Record::builder()
                .data(Blob::new(data.to_vec()))
                .build()
                .map_err(|e| SinkError::Permanent {
                    code: "BuildRecord".into(),
                    message: e.to_string(),
                })?;
            entries.push(record);
        }
        let out = self
            .client
            .put_record_batch()
            .delivery_stream_name(&self.stream)
            .set_records(Some(entries))
            .send()
            .await
            .map_err(sdk_error)?;
        let responses = out.request_responses();
        if responses.len() != records.len() {
            // Without one response per record we cannot tell which were stored: resend all.
            return Err(SinkError::Transient {
                code: "ResponseMismatch".into(),
                message: format!(
                    "{} responses for {} records",
                    responses.len(),
                    records.len()
                ),
            });
        }
        Ok(responses
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
}

fn sdk_error<E>(err: SdkError<E, aws_sdk_firehose::config::http::HttpResponse>) -> SinkError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(ctx) => classify(
            ctx.err().code(),
            Some(ctx.raw().status().as_u16()),
            ctx.err().message().unwrap_or_default(),
        ),
        SdkError::TimeoutError(_) => SinkError::Transient {
            code: "Timeout".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
        SdkError::DispatchFailure(_) => SinkError::Transient {
            code: "Dispatch".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
        SdkError::ResponseError(ctx) => classify(
            None,
            Some(ctx.raw().status().as_u16()),
            &DisplayErrorContext(&err).to_string(),
        ),
        // Construction failures include missing credentials or region: an operator problem.
        _ => SinkError::Permanent {
            code: "Construction".into(),
            message: DisplayErrorContext(&err).to_string(),
        },
    }
}

/// Firehose client settings for the sender: the SDK's own retries off (the sender retries,
/// forever, only failed entries) and a timeout per attempt so a stalled connection cannot hold
/// a batch.
pub fn client_config(
    sdk: &aws_config::SdkConfig,
    attempt_timeout: std::time::Duration,
) -> aws_sdk_firehose::Config {
    aws_sdk_firehose::config::Builder::from(sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(attempt_timeout)
                .build(),
        )
        .build()
}
