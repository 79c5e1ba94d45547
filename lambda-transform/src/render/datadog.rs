//! What Datadog receives: every record, one event or many, is a gzip CloudWatch-Logs-style
//! envelope of JSON logs, which Datadog's Firehose intake splits into its events. One shape
//! for every record, so a pod's logs get the same `source` and attributes however many of
//! them shared a record.
//!
//! The envelope: `firetail_transform` (the output version), `messageType` `DATA_MESSAGE`,
//! `owner` (the AWS account id, from the delivery stream's ARN), `logGroup` `firetail` (Datadog
//! derives `source` from it when a log names none), `logStream` `<namespace>/<pod>/<container>`,
//! `subscriptionFilters` `["firetail"]`, `logEvents` (`id`, `timestamp`, `message` = the log as
//! a JSON string). A CloudWatch Logs record keeps its own owner, log group and stream.
//!
//! A log: `firetail_transform`, `message`, `timestamp` (epoch milliseconds), `status` (from the
//! app's level), `hostname`, `service`, `ddsource`, `ddtags` (`key:value,...`), then every tag
//! as an attribute of its own name (`kube_namespace`, `pod_name`, `kube_container_name`,
//! `container_id`, ...), then the app's fields.

use firetail_wire::json::{write_int, write_str, write_uint};
use firetail_wire::output::{self, datadog as names};

use super::{ObjectWriter, write_member};
use crate::tags::TagSet;

/// The log's level.
pub const STATUS: &str = "status";

/// Keys a Datadog log owns besides the common ones; an app's fields of these names are kept
/// as `app.<key>`.
const OWNED: [&str; 6] = [
    "timestamp",
    STATUS,
    "hostname",
    "service",
    "ddsource",
    "ddtags",
];

/// Writes the members derived from the tags (`,"hostname":…,"ddtags":…`); returns the keys a
/// Datadog log owns.
pub(super) fn write_head(tags: &TagSet, head: &mut Vec<u8>) -> &'static [&'static str] {
    for (key, value) in [
        ("hostname", tags.hostname.as_deref()),
        ("service", tags.service.as_deref()),
        ("ddsource", tags.ddsource.as_deref()),
    ] {
        if let Some(v) = value {
            write_member(head, key, v);
        }
    }
    if !tags.pairs.is_empty() {
        write_member(head, "ddtags", &tags.ddtags());
    }
    &OWNED
}

/// `"message":…,"timestamp":…`.
pub(super) fn write_message_and_time(
    w: &mut ObjectWriter<'_>,
    message: &super::Message<'_>,
    time_ms: i64,
) {
    w.key("message");
    message.write(w);
    w.key("timestamp");
    w.int(time_ms);
}

/// How a packed record is named when it is not a CloudWatch message already.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// `owner`.
    pub owner: String,
    /// `logGroup`.
    pub log_group: String,
    /// `logStream`.
    pub log_stream: String,
}

impl Envelope {
    /// The envelope of a record: a CloudWatch message keeps its own origin; anything else is
    /// owned by `account` (the stream's AWS account) in log group `firetail`, log stream
    /// `<namespace>/<pod>/<container>` of its events.
    pub fn new(
        origin: Option<&super::CloudWatchOrigin>,
        tags: Option<&TagSet>,
        account: &str,
    ) -> Envelope {
        if let Some(o) = origin {
            return Envelope {
                owner: o.owner.clone(),
                log_group: o.log_group.clone(),
                log_stream: o.log_stream.clone(),
            };
        }
        let tag = |k: &str| tags.and_then(|t| t.get(k)).unwrap_or("unknown").to_owned();
        Envelope {
            owner: account.to_owned(),
            log_group: names::LOG_GROUP.to_owned(),
            log_stream: format!(
                "{}/{}/{}",
                tag("kube_namespace"),
                tag("pod_name"),
                tag("kube_container_name")
            ),
        }
    }

    /// `{"firetail_transform":1,"messageType":"DATA_MESSAGE",…,"logEvents":[` — the caller
    /// adds the events (rendered in [`Form::LogEvent`](super::Form::LogEvent)) and `]}`.
    pub fn write_head(&self, json: &mut Vec<u8>) {
        json.push(b'{');
        output::write_marker(json);
        json.extend_from_slice(b",\"messageType\":\"DATA_MESSAGE\",\"owner\":");
        write_str(json, &self.owner);
        json.extend_from_slice(b",\"logGroup\":");
        write_str(json, &self.log_group);
        json.extend_from_slice(b",\"logStream\":");
        write_str(json, &self.log_stream);
        json.extend_from_slice(b",\"subscriptionFilters\":[");
        write_str(json, names::SUBSCRIPTION_FILTER);
        json.extend_from_slice(b"],\"logEvents\":[");
    }
}

/// The envelope's end, after its events.
pub const ENVELOPE_TAIL: &[u8] = b"]}";

/// What one CloudWatch Logs event of the envelope holds before its `message` string's text:
/// `{"id":"<id>","timestamp":<ms>,"message":"`, after a comma unless it is the first (`id`
/// 0).
pub(super) fn write_log_event_head(json: &mut Vec<u8>, id: u64, time_ms: i64) {
    if id > 0 {
        json.push(b',');
    }
    json.extend_from_slice(b"{\"id\":\"");
    write_uint(json, id);
    json.extend_from_slice(b"\",\"timestamp\":");
    write_int(json, time_ms);
    json.extend_from_slice(b",\"message\":\"");
}

/// What closes one CloudWatch Logs event after its `message` string's text.
pub(super) const LOG_EVENT_TAIL: &[u8] = b"\"}";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_wire::json::write_escaped;

    #[test]
    fn each_log_is_its_object_as_a_string_of_the_envelope() {
        let objects: Vec<String> = (0..4)
            .map(|i| {
                let mut o = Vec::new();
                o.extend_from_slice(b"{\"message\":");
                write_str(&mut o, &format!("line {i} \"quoted\" \\ é\n"));
                o.extend_from_slice(b",\"file\":\"/var/log/app/a \\\"b\\\".log\"}");
                String::from_utf8(o).unwrap()
            })
            .collect();
        let envelope = Envelope {
            owner: "123456789012".into(),
            log_group: names::LOG_GROUP.into(),
            log_stream: "shop/a/app".into(),
        };
        let mut text = Vec::new();
        envelope.write_head(&mut text);
        for (i, o) in objects.iter().enumerate() {
            write_log_event_head(&mut text, i as u64, 1_000 + i as i64);
            write_escaped(&mut text, o);
            text.extend_from_slice(LOG_EVENT_TAIL);
        }
        text.extend_from_slice(ENVELOPE_TAIL);
        let parsed: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(parsed["logStream"], "shop/a/app");
        let events = parsed["logEvents"].as_array().unwrap();
        assert_eq!(events.len(), objects.len());
        for (i, (event, o)) in events.iter().zip(&objects).enumerate() {
            assert_eq!(event["id"], i.to_string());
            assert_eq!(event["timestamp"], 1_000 + i as i64);
            assert_eq!(event["message"].as_str().unwrap(), o);
        }
    }
}
