//! What a delivery reports as it goes, for whoever counts: the sidecar's Prometheus metrics
//! and readiness, the transform's invocation stats, redrive's summary. Every method has an
//! empty default, and `()` observes nothing.

use crate::client::CallError;

/// Receives delivery events from [`crate::deliver()`].
pub trait DeliveryObserver: Sync {
    /// A `PutRecordBatch` call with `records` records is about to be made (retries included).
    fn call(&self, records: usize) {
        let _ = records;
    }

    /// Firehose accepted a record of `data_bytes` bytes holding `events` events.
    fn accepted(&self, data_bytes: usize, events: usize) {
        let _ = (data_bytes, events);
    }

    /// Firehose rejected one entry of an answered call with `code`; it will be resent unless
    /// the policy gives up.
    fn entry_failed(&self, code: &str) {
        let _ = code;
    }

    /// A whole call carrying `records` records failed.
    fn call_failed(&self, error: &CallError, records: usize) {
        let _ = (error, records);
    }

    /// A permanent error was met (`Some`; delivery keeps retrying slowly) or has cleared
    /// (`None`, after a call succeeded again).
    fn permanent_error(&self, error: Option<&CallError>) {
        let _ = error;
    }
}

impl DeliveryObserver for () {}
