//! The one boundary between the shipper and the outside world: "put these records".
//!
//! # Layout
//! - [`Sink`]: the trait the sender drives; one call is one `PutRecordBatch`.
//! - [`EntryOutcome`] / [`SinkError`]: per-record results and whole-call failures, already
//!   classified into what the sender needs to decide (retry fast, back off, or alarm).
//! - [`classify`]: pure mapping from an AWS error code / HTTP status to a [`SinkError`] kind.
//! - [`firehose`]: the real Amazon Data Firehose sink (aws-sdk-firehose).
//! - [`stdout`]: prints the events instead of sending them (`FIRETAIL_SINK=stdout`).

use std::future::Future;

use bytes::Bytes;

pub mod firehose;
pub mod stdout;

/// What happened to one record of an accepted call.
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

/// A whole call failed; no record of it was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
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
        /// Error code, or a short description of the transport failure.
        code: String,
        /// Error message.
        message: String,
    },
    /// Will not heal by itself (stream missing, access denied, bad request): alarm and keep
    /// retrying slowly, because the operator may fix it and the files still hold the data.
    #[error("permanent failure ({code}): {message}")]
    Permanent {
        /// Error code.
        code: String,
        /// Error message.
        message: String,
    },
}

impl SinkError {
    /// The error code, for metrics labels.
    pub fn code(&self) -> &str {
        match self {
            Self::Throttled { code, .. }
            | Self::Transient { code, .. }
            | Self::Permanent { code, .. } => code,
        }
    }
}

/// Sends batches of records somewhere.
pub trait Sink: Send + Sync + 'static {
    /// Sends `records` in one call. On `Ok`, the vector has exactly one outcome per record, in
    /// order.
    fn put_records(
        &self,
        records: &[Bytes],
    ) -> impl Future<Output = Result<Vec<EntryOutcome>, SinkError>> + Send;
}

/// Maps an AWS error `code` and HTTP `status` to the kind of failure.
pub fn classify(code: Option<&str>, status: Option<u16>, message: &str) -> SinkError {
    let code_s = code.unwrap_or("").to_owned();
    let named = |code: &str| {
        if code.is_empty() {
            status.map_or_else(|| "Unknown".to_owned(), |s| format!("Http{s}"))
        } else {
            code.to_owned()
        }
    };
    let message = message.to_owned();
    match code_s.as_str() {
        "ServiceUnavailableException"
        | "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "LimitExceededException" => {
            return SinkError::Throttled {
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
            return SinkError::Permanent {
                code: code_s,
                message,
            };
        }
        _ => {}
    }
    let code = named(&code_s);
    match status {
        Some(429) => SinkError::Throttled { code, message },
        Some(s) if s >= 500 => SinkError::Transient { code, message },
        // Expired or not-yet-valid credentials heal when the provider refreshes them.
        _ if code_s.contains("Expired") => SinkError::Transient { code, message },
        Some(s) if (400..500).contains(&s) => SinkError::Permanent { code, message },
        _ => SinkError::Transient { code, message },
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
            SinkError::Throttled { .. }
        ));
        assert!(matches!(
            c(Some("ResourceNotFoundException"), Some(400)),
            SinkError::Permanent { .. }
        ));
        assert!(matches!(
            c(Some("AccessDeniedException"), Some(400)),
            SinkError::Permanent { .. }
        ));
        assert!(
            matches!(c(None, Some(503)), SinkError::Transient { ref code, .. } if code == "Http503")
        );
        assert!(matches!(c(None, Some(500)), SinkError::Transient { .. }));
        assert!(matches!(c(None, Some(429)), SinkError::Throttled { .. }));
        assert!(matches!(
            c(Some("ExpiredTokenException"), Some(400)),
            SinkError::Transient { .. }
        ));
        assert!(matches!(
            c(Some("SomethingNew"), Some(403)),
            SinkError::Permanent { .. }
        ));
        assert!(
            matches!(c(None, None), SinkError::Transient { ref code, .. } if code == "Unknown")
        );
    }
}
