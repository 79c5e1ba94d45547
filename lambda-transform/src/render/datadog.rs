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

use std::ops::Range;

use firetail_wire::json::{write_escaped, write_int, write_str, write_uint};
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
    message.write(w.out);
    w.key("timestamp");
    write_int(w.out, time_ms);
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
    /// adds events and `]}`.
    fn write_head(&self, json: &mut Vec<u8>) {
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

    /// Writes the envelope of `logs` into `text`.
    pub fn write<'a>(
        &self,
        logs: impl Iterator<Item = LogObject<'a>>,
        heads: &mut EscapedHead,
        text: &mut Vec<u8>,
    ) {
        text.clear();
        self.write_head(text);
        for (i, log) in logs.enumerate() {
            if i > 0 {
                text.push(b',');
            }
            write_log_event(text, i, log, heads);
        }
        text.extend_from_slice(b"]}");
    }
}

/// A rendered log object, its time, and where its pod's shared members are in it.
#[derive(Debug, Clone)]
pub struct LogObject<'a> {
    pub object: &'a [u8],
    pub time_ms: i64,
    /// [`Rendered::Written`](super::Rendered::Written)'s `head`.
    pub head: Range<usize>,
}

/// The shared members of the last pod's logs, escaped as the inside of a JSON string.
///
/// Each log travels as a string in its envelope, so every byte of it is escaped once more;
/// the members its pod's logs share (tags twice over, as `ddtags` and as attributes) are most
/// of its bytes and were most of the transform's time in `perf`, escaped anew for every log.
#[derive(Debug, Default)]
pub struct EscapedHead {
    raw: Vec<u8>,
    escaped: Vec<u8>,
}

impl EscapedHead {
    /// Appends `head` escaped, escaping it only if it differs from the last one.
    fn write(&mut self, head: &[u8], out: &mut Vec<u8>) {
        if self.raw != head {
            self.raw.clear();
            self.raw.extend_from_slice(head);
            self.escaped.clear();
            escape_piece(&mut self.escaped, head);
        }
        out.extend_from_slice(&self.escaped);
    }
}

/// One CloudWatch Logs event whose message is the rendered log object.
fn write_log_event(json: &mut Vec<u8>, id: usize, log: LogObject<'_>, heads: &mut EscapedHead) {
    json.extend_from_slice(b"{\"id\":\"");
    write_uint(json, id as u64);
    json.extend_from_slice(b"\",\"timestamp\":");
    write_int(json, log.time_ms);
    json.extend_from_slice(b",\"message\":\"");
    let LogObject { object, head, .. } = log;
    match object.get(head.clone()) {
        Some(shared) => {
            escape_piece(json, &object[..head.start]);
            heads.write(shared, json);
            escape_piece(json, &object[head.end..]);
        }
        None => escape_piece(json, object),
    }
    json.extend_from_slice(b"\"}");
}

/// Escapes a piece of a rendered object. Rendered objects are built from `&str` pieces and
/// the head is cut at member boundaries, so the check never fails; if it did, the piece is
/// still written, with U+FFFD for what is not UTF-8, rather than as invalid JSON.
fn escape_piece(json: &mut Vec<u8>, piece: &[u8]) {
    match std::str::from_utf8(piece) {
        Ok(s) => write_escaped(json, s),
        Err(_) => write_escaped(json, &String::from_utf8_lossy(piece)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// An object as the renderer lays it out: own members, the pod's head, own members.
    fn object(message: &str, head: &str) -> (Vec<u8>, Range<usize>) {
        let mut o = Vec::new();
        o.extend_from_slice(b"{\"message\":");
        write_str(&mut o, message);
        let at = o.len();
        o.extend_from_slice(head.as_bytes());
        let span = at..o.len();
        o.extend_from_slice(b",\"file\":\"/var/log/app/a \\\"b\\\".log\"}");
        (o, span)
    }

    #[test]
    fn each_log_is_its_object_as_a_string_whichever_pods_alternate() {
        // Heads with something to escape, alternating and repeating, so the escaped-head
        // cache is hit, missed and refilled; the same cache across two envelopes.
        let heads = [
            r#","ddtags":"kube_namespace:shop,pod_name:a","kube_namespace":"shop","pod_name":"a""#,
            r#","ddtags":"kube_namespace:ops,pod_name:b\\c","pod_name":"b\\c","note":"\"q\"""#,
        ];
        let objects: Vec<(Vec<u8>, Range<usize>)> = [0, 0, 1, 0, 1, 1]
            .iter()
            .enumerate()
            .map(|(i, &h)| object(&format!("line {i} \"quoted\" \\ é\n"), heads[h]))
            .collect();
        let envelope = Envelope {
            owner: "123456789012".into(),
            log_group: names::LOG_GROUP.into(),
            log_stream: "shop/a/app".into(),
        };
        let mut cache = EscapedHead::default();
        for _ in 0..2 {
            let mut text = Vec::new();
            let logs = objects.iter().enumerate().map(|(i, (o, head))| LogObject {
                object: o,
                time_ms: 1_000 + i as i64,
                head: head.clone(),
            });
            envelope.write(logs, &mut cache, &mut text);
            let parsed: serde_json::Value = serde_json::from_slice(&text).unwrap();
            let events = parsed["logEvents"].as_array().unwrap();
            assert_eq!(events.len(), objects.len());
            for (i, (event, (o, _))) in events.iter().zip(&objects).enumerate() {
                assert_eq!(event["id"], i.to_string());
                assert_eq!(event["timestamp"], 1_000 + i as i64);
                assert_eq!(event["message"].as_str().unwrap().as_bytes(), o.as_slice());
                // And the message is the object itself, valid JSON.
                let log: serde_json::Value =
                    serde_json::from_str(event["message"].as_str().unwrap()).unwrap();
                assert_eq!(log["message"], format!("line {i} \"quoted\" \\ é\n"));
            }
        }
    }

    #[test]
    fn a_head_span_outside_the_object_writes_the_object_whole() {
        let (o, _) = object("x", r#","a":"b""#);
        let mut text = Vec::new();
        let mut cache = EscapedHead::default();
        write_log_event(
            &mut text,
            0,
            LogObject {
                object: &o,
                time_ms: 1,
                head: 5..o.len() + 10,
            },
            &mut cache,
        );
        let event: serde_json::Value = serde_json::from_slice(&text).unwrap();
        assert_eq!(event["message"].as_str().unwrap().as_bytes(), o.as_slice());
    }
}
