//! Helpers shared by the transform's integration tests.
#![allow(clippy::unwrap_used, dead_code)] // each test binary uses part of it

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

/// The log messages Datadog would split one Datadog-destination output record into: the
/// record itself for a single log, or each `logEvents[].message` of a gzip envelope.
pub fn datadog_messages(data: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;
    use std::io::Read as _;

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return vec![bytes];
    }
    let mut json = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut json)
        .unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&json).unwrap();
    envelope["logEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().as_bytes().to_vec())
        .collect()
}
