//! The one trait at the Firehose boundary, and the outcomes every implementation reports in
//! the same terms.

use std::future::Future;

use bytes::Bytes;

/// What happened to one record of an answered `PutRecordBatch` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryOutcome {
    /// Firehose stored the record.
    Accepted,
    /// Firehose rejected this record only (`RequestResponses[i].ErrorCode`); resend it.
    Failed {
        /// `ErrorCode`, e.g. `ServiceUnavailableException`.
        code: String,
        /// `ErrorMessage`.
        message: String,
    },
}

/// A whole call failed: no record of it was stored (or, for a timeout, none is known to be).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The service asked us to slow down (`ServiceUnavailableException`, HTTP 429).
    #[error("throttled ({code}): {message}")]
    Throttled {
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
    /// 5xx, timeouts, connection failures: retry with backoff.
    #[error("transient failure ({code}): {message}")]
    Transient {
        /// Error code, or a short name of the transport failure.
        code: String,
        /// Error message.
        message: String,
    },
    /// Will not heal by itself (stream missing, access denied, bad request): an operator must
    /// act. A sender that holds the data elsewhere (the sidecar: the log files) keeps retrying
    /// slowly; one with a deadline gives up.
    #[error("permanent failure ({code}): {message}")]
    Permanent {
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
}

impl CallError {
    /// The error code, for metrics labels.
    pub fn code(&self) -> &str {
        match self {
            Self::Throttled { code, .. }
            | Self::Transient { code, .. }
            | Self::Permanent { code, .. } => code,
        }
    }

    /// Whether the error needs an operator.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Permanent { .. })
    }
}

/// `DeliveryStreamStatus` of `DescribeDeliveryStream`.
/// <https://docs.aws.amazon.com/firehose/latest/APIReference/API_DeliveryStreamDescription.html>
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// Accepts records.
    Active,
    /// Being created; records are refused until it is active.
    Creating,
    /// Being deleted.
    Deleting,
    /// Creation failed.
    CreatingFailed,
    /// Deletion failed.
    DeletingFailed,
    /// A status this build does not know, as the service spelt it.
    Other(String),
}

impl StreamStatus {
    /// From the service's spelling.
    pub fn parse(s: &str) -> Self {
        match s {
            "ACTIVE" => Self::Active,
            "CREATING" => Self::Creating,
            "DELETING" => Self::Deleting,
            "CREATING_FAILED" => Self::CreatingFailed,
            "DELETING_FAILED" => Self::DeletingFailed,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The service's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Active => "ACTIVE",
            Self::Creating => "CREATING",
            Self::Deleting => "DELETING",
            Self::CreatingFailed => "CREATING_FAILED",
            Self::DeletingFailed => "DELETING_FAILED",
            Self::Other(s) => s,
        }
    }
}

impl std::fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two Firehose operations firetail uses.
pub trait FirehoseClient: Send + Sync {
    /// One `PutRecordBatch` call with `records` (within [`crate::CallLimits::FIREHOSE`]) to
    /// `stream`. On `Ok`, exactly one outcome per record, in order.
    fn put_record_batch(
        &self,
        stream: &str,
        records: &[Bytes],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, CallError>> + Send;

    /// `DescribeDeliveryStream`: the stream's status.
    fn describe_delivery_stream(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<StreamStatus, CallError>> + Send;
}

/// Maps an AWS error `code` and HTTP `status` to the kind of failure.
pub fn classify(code: Option<&str>, status: Option<u16>, message: &str) -> CallError {
    let code_s = code.unwrap_or("").to_owned();
    let message = message.to_owned();
    match code_s.as_str() {
        "ServiceUnavailableException"
        | "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "LimitExceededException" => {
            return CallError::Throttled {
                code: code_s,
                message,
            };
        }
        "ResourceNotFoundException"
        | "AccessDeniedException"
        | "AccessDenied"
        | "UnrecognizedClientException"
        | "InvalidArgumentException"
        | "InvalidKMSResourceException"
        | "InvalidKmsResourceException"
        | "InvalidSourceException"
        | "InvalidSignatureException"
        | "ValidationException" => {
            return CallError::Permanent {
                code: code_s,
                message,
            };
        }
        _ => {}
    }
    let code = if code_s.is_empty() {
        status.map_or_else(|| "Unknown".to_owned(), |s| format!("Http{s}"))
    } else {
        code_s.clone()
    };
    match status {
        Some(429) => CallError::Throttled { code, message },
        Some(s) if s >= 500 => CallError::Transient { code, message },
        // Expired or not-yet-valid credentials heal when the provider refreshes them.
        _ if code_s.contains("Expired") => CallError::Transient { code, message },
        Some(s) if (400..500).contains(&s) => CallError::Permanent { code, message },
        _ => CallError::Transient { code, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_firehose_errors() {
        let c = |code, status| classify(code, status, "m");
        assert!(matches!(
            c(Some("ServiceUnavailableException"), Some(400)),
            CallError::Throttled { .. }
        ));
        assert!(matches!(
            c(Some("ResourceNotFoundException"), Some(400)),
            CallError::Permanent { .. }
        ));
        assert!(matches!(
            c(Some("AccessDeniedException"), Some(400)),
            CallError::Permanent { .. }
        ));
        assert!(
            matches!(c(None, Some(503)), CallError::Transient { ref code, .. } if code == "Http503")
        );
        assert!(matches!(c(None, Some(500)), CallError::Transient { .. }));
        assert!(matches!(c(None, Some(429)), CallError::Throttled { .. }));
        assert!(matches!(
            c(Some("ExpiredTokenException"), Some(400)),
            CallError::Transient { .. }
        ));
        assert!(matches!(
            c(Some("SomethingNew"), Some(403)),
            CallError::Permanent { .. }
        ));
        assert!(
            matches!(c(None, None), CallError::Transient { ref code, .. } if code == "Unknown")
        );
    }

    #[test]
    fn stream_statuses_round_trip() {
        for s in [
            "ACTIVE",
            "CREATING",
            "DELETING",
            "CREATING_FAILED",
            "DELETING_FAILED",
            "NEW",
        ] {
            assert_eq!(StreamStatus::parse(s).as_str(), s);
        }
        assert_eq!(StreamStatus::parse("ACTIVE"), StreamStatus::Active);
    }
}
