//! What OpenSearch and S3 receive: one JSON document per event — `@timestamp` (RFC 3339, UTC,
//! milliseconds), `message`, `hostname`, every tag as a field, then the app's fields.
//! OpenSearch takes one document per record; S3 gets newline-delimited documents, one gzip
//! member per record by default (`FIRETAIL_S3_COMPRESSION`).

use firetail_wire::time;

use super::{ObjectWriter, write_member};
use crate::tags::TagSet;

/// Keys a document owns besides the common ones.
const OWNED: [&str; 2] = ["@timestamp", "hostname"];

/// Writes the members derived from the tags (`,"hostname":…`); returns the keys a document
/// owns.
pub(super) fn write_head(tags: &TagSet, head: &mut Vec<u8>) -> &'static [&'static str] {
    if let Some(h) = tags.hostname.as_deref() {
        write_member(head, "hostname", h);
    }
    &OWNED
}

/// `"@timestamp":…,"message":…`.
pub(super) fn write_message_and_time(
    w: &mut ObjectWriter<'_>,
    message: &super::Message<'_>,
    time_ms: i64,
    timestamps: &mut time::Rfc3339MsWriter,
) {
    w.key("@timestamp");
    match timestamps.format(time_ms) {
        Some(text) => w.plain_string(text),
        None => w.string(&time::format_rfc3339_ms(time_ms)),
    }
    w.key("message");
    message.write(w);
}
