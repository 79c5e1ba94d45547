//! A sink that prints events to standard output instead of sending them.
//!
//! # Layout
//! - [`StdoutSink`]: decompresses gzip records so what is printed is always ndjson, one event
//!   per line, exactly what the transform would receive after decoding.

use std::io::{Read as _, Write as _};

use bytes::Bytes;

use super::{EntryOutcome, Sink, SinkError};

/// Prints every record's events to stdout; every record is accepted.
#[derive(Debug, Default)]
pub struct StdoutSink;

impl Sink for StdoutSink {
    async fn put_records(&self, records: &[Bytes]) -> Result<Vec<EntryOutcome>, SinkError> {
        let mut out = std::io::stdout().lock();
        for record in records {
            let written = if record.starts_with(&[0x1f, 0x8b]) {
                let mut text = Vec::new();
                flate2::read::MultiGzDecoder::new(&record[..])
                    .read_to_end(&mut text)
                    .and_then(|_| out.write_all(&text))
            } else {
                out.write_all(record)
            };
            written.map_err(|e| SinkError::Transient {
                code: "StdoutWrite".into(),
                message: e.to_string(),
            })?;
        }
        out.flush().map_err(|e| SinkError::Transient {
            code: "StdoutWrite".into(),
            message: e.to_string(),
        })?;
        Ok(vec![EntryOutcome::Accepted; records.len()])
    }
}
