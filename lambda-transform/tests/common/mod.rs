//! Helpers shared by the transform's integration tests.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use firetail_transform::RecordSink;
use firetail_transform::reingest::SinkError;

/// A re-ingest sink that accepts everything and keeps what it was given.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Vec<u8>>>);

impl RecordSink for Recorder {
    async fn put_record_batch(
        &self,
        _: &str,
        records: Vec<Vec<u8>>,
    ) -> Result<Vec<Option<String>>, SinkError> {
        let n = records.len();
        self.0.lock().unwrap().extend(records);
        Ok(vec![None; n])
    }
}
