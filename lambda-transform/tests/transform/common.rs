//! Helpers shared by the transform's tests.

use firetail_testkit::records::inflate;

pub use firetail_firehose::testing::Scripted as Recorder;

/// `bytes` inflated if gzip.
pub fn gunzip(bytes: &[u8]) -> Vec<u8> {
    inflate(bytes).unwrap()
}

/// The log messages Datadog would split one Datadog-destination output record into: the
/// record itself for a single log, or each `logEvents[].message` of a gzip envelope.
pub fn datadog_messages(data: &str) -> Vec<Vec<u8>> {
    use base64::Engine as _;

    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    if !firetail_wire::gzip::is_gzip(&bytes) {
        return vec![bytes];
    }
    let envelope: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    envelope["logEvents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().as_bytes().to_vec())
        .collect()
}
