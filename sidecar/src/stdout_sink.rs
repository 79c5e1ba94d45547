//! `--sink stdout`: a [`FirehoseClient`] that prints each record's events instead of sending
//! them (local runs, debugging). Gzip records are inflated, so what is printed is always one
//! event per line, exactly what the transform reads after decoding.

use std::io::Write as _;

use bytes::Bytes;
use firetail_firehose::{CallError, EntryOutcome, FirehoseClient, StreamStatus};
use firetail_wire::gzip::maybe_gunzip;
use firetail_wire::limits::FIREHOSE_MAX_RECORD_BYTES;

/// Records the sidecar writes inflate to at most one record's worth of events (the packer
/// caps the uncompressed size), so a larger result is a bug worth failing loudly on.
const MAX_INFLATED_BYTES: usize = FIREHOSE_MAX_RECORD_BYTES;

/// Prints every record's events to stdout; every record is accepted.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl FirehoseClient for StdoutSink {
    async fn put_record_batch(
        &self,
        _stream: &str,
        records: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        let failed = |e: &dyn std::fmt::Display| CallError::Transient {
            code: "StdoutWrite".into(),
            message: e.to_string(),
        };
        let mut out = std::io::stdout().lock();
        for record in records {
            let text = maybe_gunzip(record, MAX_INFLATED_BYTES).map_err(|e| failed(&e))?;
            out.write_all(&text).map_err(|e| failed(&e))?;
        }
        out.flush().map_err(|e| failed(&e))?;
        Ok(vec![EntryOutcome::Accepted; records.len()])
    }

    async fn describe_delivery_stream(&self, _stream: &str) -> Result<StreamStatus, CallError> {
        Ok(StreamStatus::Active)
    }
}
