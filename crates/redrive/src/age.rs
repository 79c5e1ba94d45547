//! Each record's event times, and re-stamping the old ones, for Datadog's 18-hour window.
//! Pure: bytes in, times or new bytes out.
//!
//! Why: Datadog "rejects a log entry if its official date is older than 18 hours in the past",
//! after its Firehose intake answered 200 (Logs Pipelines › Preprocessing; Logs API). A late
//! redrive would be acknowledged by Firehose and then dropped by Datadog, and a
//! `--delete-after` would remove the only copy. So a redrive into a Datadog stream must know
//! the time Datadog will see for every event of a record before it sends the record.
//!
//! What that time is depends on who wrote the record:
//! - **the transform** (delivery failures; the payload starts with
//!   [`firetail_wire::output::MARKER_PREFIX`]): for Datadog a CloudWatch-Logs-style envelope
//!   whose every `logEvents[]` entry has a `timestamp` and a `message` that is the Datadog log
//!   (itself starting with the marker, with its own `timestamp`). The transform passes such a
//!   payload through unchanged, so these times are what Datadog gets. OpenSearch and S3 output
//!   (documents with `@timestamp`) is recognised so it can be told apart, nothing more.
//! - **a producer** (transform failures hold the record as it was put into the stream): the
//!   transform will render it again, so the time is the one the transform reads — the first of
//!   `time`, `@timestamp`, `timestamp`, `date` in a JSON event that parses as RFC 3339 or an
//!   epoch number (sidecar events carry `time`, Fluent Bit `time`/`date`/`@timestamp`), for a
//!   CloudWatch Logs envelope the same keys in a JSON message, else the event's `timestamp`.
//!   An event with none of these is stamped by the transform with the record's arrival, which
//!   for a redriven record is the redrive: `None` here.
//!
//! Re-stamping ([`restamp`]) sets the time Datadog will read to now and keeps the original (in
//! epoch milliseconds) in [`ORIGINAL_TIMESTAMP`], which reaches Datadog as an attribute:
//! - transform output: the envelope event's `timestamp` and the log's `timestamp`; the log gets
//!   the attribute; the marker stays the first key of both objects;
//! - producer events: the time key the transform reads is rewritten (a string as RFC 3339, a
//!   number as epoch milliseconds) and the attribute added beside it; the transform copies
//!   unknown fields through;
//! - a CloudWatch Logs event: its `timestamp`, and the message's time key if the message is a
//!   JSON object that has one; the attribute goes into the message object, and a text message
//!   becomes `{"message": text, ORIGINAL_TIMESTAMP: t}`, which the transform renders as the
//!   same message (a text message has no other place for an attribute).
//!
//! Only the events that are too old change; every other byte of the record stays as it was.
//! Objects are edited with their members in written order and their values as raw JSON text
//! (never rebuilt through a map that would reorder keys or reformat numbers).

use std::fmt;

use firetail_wire::event::TIME;
use firetail_wire::format::{UnsupportedVersion, Version, version_of};
use firetail_wire::json::write_str;
use firetail_wire::output::datadog::{LOG_EVENTS, TIMESTAMP};
use firetail_wire::output::{MARKER_VERSION, marker_version};
use firetail_wire::time::{epoch_number_to_ms, format_rfc3339_ms, parse_rfc3339_ms};
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

pub use firetail_wire::output::datadog::ORIGINAL_TIMESTAMP;

/// Datadog drops logs whose date is older than this (18 h).
/// <https://docs.datadoghq.com/logs/log_configuration/pipelines/#preprocessing>
pub const DATADOG_MAX_AGE_MS: i64 = 18 * HOUR_MS;

/// Default age past which a redrive does not send an event as it is: an hour short of
/// Datadog's limit, for Firehose's buffering and retries after the record is accepted.
pub const DEFAULT_MAX_EVENT_AGE_HOURS: u64 = 17;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// The time keys the transform reads in a JSON event, in no order of preference: the first
/// of them in the event that parses wins (as in the transform's renderer).
const TIME_KEYS: [&str; 4] = [TIME, "@timestamp", "timestamp", "date"];

/// Key of a CloudWatch Logs envelope that names it one.
const MESSAGE_TYPE: &str = "messageType";

/// What a record's (inflated) payload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The transform's Datadog output: an envelope of Datadog logs.
    DatadogOutput,
    /// The transform's OpenSearch or S3 output: documents, one per line.
    DocumentOutput,
    /// A producer's JSON events, one per line (sidecar, Fluent Bit).
    Events,
    /// A CloudWatch Logs subscription message.
    CloudWatch,
    /// Not JSON: one text message.
    Text,
    /// Nothing but white space.
    Empty,
}

impl Shape {
    /// Whether the transform wrote it (it carries the marker).
    pub fn is_transform_output(self) -> bool {
        matches!(self, Self::DatadogOutput | Self::DocumentOutput)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DatadogOutput => "the transform's Datadog output",
            Self::DocumentOutput => "the transform's OpenSearch/S3 output",
            Self::Events => "producer events",
            Self::CloudWatch => "a CloudWatch Logs message",
            Self::Text => "text",
            Self::Empty => "an empty record",
        })
    }
}

/// A record's shape and the time Datadog would see for each of its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// What it is.
    pub shape: Shape,
    /// Per event, in order: epoch milliseconds, or `None` when the event carries no time the
    /// transform reads (it then stamps the event with the record's arrival).
    pub times: Vec<Option<i64>>,
}

impl Inspection {
    /// The events whose time is before `cutoff_ms`.
    pub fn older_than(&self, cutoff_ms: i64) -> usize {
        self.times
            .iter()
            .filter(|t| t.is_some_and(|t| t < cutoff_ms))
            .count()
    }

    /// The events without a time.
    pub fn untimed(&self) -> usize {
        self.times.iter().filter(|t| t.is_none()).count()
    }

    /// The oldest event time.
    pub fn oldest(&self) -> Option<i64> {
        self.times.iter().flatten().min().copied()
    }
}

/// Why a payload's events cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// It carries the transform's marker, but is not what the transform writes.
    #[error("the transform's marker is present but the record is corrupt: {0}")]
    Corrupt(String),
    /// Transform output of a layout this build does not know.
    #[error(
        "transform output layout version {0}; this firetail-redrive reads version \
         {MARKER_VERSION}: upgrade it"
    )]
    OutputVersion(u32),
    /// A sidecar record of a layout version this build does not know.
    #[error(transparent)]
    RecordVersion(#[from] UnsupportedVersion),
}

/// The shape and event times of an inflated record payload.
pub fn inspect(payload: &[u8]) -> Result<Inspection, Unreadable> {
    if let Some(version) = marker_version(payload) {
        if version != MARKER_VERSION {
            return Err(Unreadable::OutputVersion(version));
        }
        return inspect_output(payload);
    }
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() {
        return Ok(Inspection {
            shape: Shape::Empty,
            times: Vec::new(),
        });
    }
    if trimmed[0] != b'{' {
        return Ok(Inspection {
            shape: Shape::Text,
            times: vec![None],
        });
    }
    if let Some(envelope) = cloudwatch(trimmed) {
        let times = envelope_events(&envelope)
            .unwrap_or_default()
            .iter()
            .map(|e| CwlEvent::read(e).time)
            .collect();
        return Ok(Inspection {
            shape: Shape::CloudWatch,
            times,
        });
    }
    // A version 2 record's header is not an event (it carries no time).
    let events = match version_of(trimmed)? {
        Version::V1 => trimmed,
        Version::V2 => firetail_wire::v2::split_header(trimmed).map_or(trimmed, |(_, e)| e),
    };
    let times = event_lines(events)
        .map(|line| {
            Object::parse(line)
                .ok()
                .and_then(|o| o.time().map(|(_, t)| t))
        })
        .collect();
    Ok(Inspection {
        shape: Shape::Events,
        times,
    })
}

/// Transform output: a Datadog envelope, or documents each starting with the marker.
fn inspect_output(payload: &[u8]) -> Result<Inspection, Unreadable> {
    let mut lines = event_lines(payload);
    let first = lines.next().unwrap_or_default();
    let head = Object::parse(first).map_err(|e| corrupt(format!("not a JSON object ({e})")))?;
    if head.get(MESSAGE_TYPE).is_some() {
        if lines.next().is_some() {
            return Err(corrupt(
                "a Datadog envelope spans more than one line".into(),
            ));
        }
        let times = output_events(&head)?
            .iter()
            .map(|e| Some(e.event_ms.min(e.log_ms)))
            .collect();
        return Ok(Inspection {
            shape: Shape::DatadogOutput,
            times,
        });
    }
    let mut times = vec![head.get("@timestamp").and_then(time_of)];
    for (i, line) in lines.enumerate() {
        let n = i + 2;
        if marker_version(line) != Some(MARKER_VERSION) {
            return Err(corrupt(format!("document {n} has no marker")));
        }
        let doc = Object::parse(line)
            .map_err(|e| corrupt(format!("document {n} is not a JSON object ({e})")))?;
        times.push(doc.get("@timestamp").and_then(time_of));
    }
    Ok(Inspection {
        shape: Shape::DocumentOutput,
        times,
    })
}

/// Rewrites the events of `payload` (inflated; `inspection` is its [`inspect`]) whose time is
/// before `cutoff_ms` to carry `now_ms`, keeping each original in [`ORIGINAL_TIMESTAMP`].
/// Returns the new payload (not compressed) and how many events changed.
pub fn restamp(
    payload: &[u8],
    inspection: &Inspection,
    cutoff_ms: i64,
    now_ms: i64,
) -> Result<(Vec<u8>, usize), Unreadable> {
    match inspection.shape {
        Shape::DatadogOutput => restamp_output(payload, cutoff_ms, now_ms),
        Shape::Events => Ok(restamp_lines(payload, cutoff_ms, now_ms)),
        Shape::CloudWatch => Ok(restamp_cloudwatch(payload, cutoff_ms, now_ms)),
        // Nothing here carries a time Datadog reads from the record.
        Shape::DocumentOutput | Shape::Text | Shape::Empty => Ok((payload.to_vec(), 0)),
    }
}

fn restamp_output(
    payload: &[u8],
    cutoff_ms: i64,
    now_ms: i64,
) -> Result<(Vec<u8>, usize), Unreadable> {
    let mut envelope = Object::parse(payload.trim_ascii_end())
        .map_err(|e| corrupt(format!("not a JSON object ({e})")))?;
    let events = output_events(&envelope)?;
    let mut changed = 0;
    let mut list = Vec::with_capacity(events.len());
    for mut e in events {
        if e.event_ms.min(e.log_ms) >= cutoff_ms {
            list.push(e.raw);
            continue;
        }
        changed += 1;
        e.event.set(TIMESTAMP, number(now_ms));
        e.log.set(TIMESTAMP, number(now_ms));
        e.log.set_if_absent(ORIGINAL_TIMESTAMP, number(e.log_ms));
        e.event.set("message", string(&e.log.to_text()));
        list.push(e.event.to_raw());
    }
    envelope.set(LOG_EVENTS, array(&list));
    Ok((envelope.to_bytes(), changed))
}

fn restamp_lines(payload: &[u8], cutoff_ms: i64, now_ms: i64) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(payload.len() + 64);
    let mut changed = 0;
    for (i, segment) in payload.split(|&b| b == b'\n').enumerate() {
        if i > 0 {
            out.push(b'\n');
        }
        let restamped = Object::parse(segment).ok().and_then(|mut event| {
            restamp_object(&mut event, None, cutoff_ms, now_ms).then_some(event)
        });
        match restamped {
            Some(event) => {
                changed += 1;
                event.write(&mut out);
            }
            // Blank, text, or nothing to change: as it was.
            None => out.extend_from_slice(segment),
        }
    }
    (out, changed)
}

fn restamp_cloudwatch(payload: &[u8], cutoff_ms: i64, now_ms: i64) -> (Vec<u8>, usize) {
    let unchanged = || (payload.to_vec(), 0);
    let Some(mut envelope) = cloudwatch(payload.trim_ascii()) else {
        return unchanged();
    };
    let Some(events) = envelope_events(&envelope) else {
        return unchanged();
    };
    let mut changed = 0;
    let mut list = Vec::with_capacity(events.len());
    for raw in events {
        let e = CwlEvent::read(&raw);
        let (Some(mut event), Some(time)) = (e.object, e.time) else {
            list.push(raw);
            continue;
        };
        if time >= cutoff_ms {
            list.push(raw);
            continue;
        }
        changed += 1;
        event.set(TIMESTAMP, number(now_ms));
        let message = match e.message_object {
            Some(mut m) => {
                restamp_object(&mut m, Some(time), cutoff_ms, now_ms);
                m
            }
            None => {
                let mut m = Object::default();
                m.set("message", string(e.message.as_deref().unwrap_or_default()));
                m.set(ORIGINAL_TIMESTAMP, number(time));
                m
            }
        };
        event.set("message", string(&message.to_text()));
        list.push(event.to_raw());
    }
    envelope.set(LOG_EVENTS, array(&list));
    (envelope.to_bytes(), changed)
}

/// Re-stamps one producer event when the time the transform reads in it (or, for a
/// CloudWatch message without one, `default`) is before `cutoff_ms`; true when it changed.
fn restamp_object(event: &mut Object, default: Option<i64>, cutoff_ms: i64, now_ms: i64) -> bool {
    let (at, time) = match (event.time(), default) {
        (Some((i, t)), _) => (Some(i), t),
        (None, Some(t)) => (None, t),
        (None, None) => return false,
    };
    if time >= cutoff_ms {
        return false;
    }
    if let Some(i) = at {
        // The same kind of value the producer wrote, so the transform reads it the same way.
        let fresh = if event.0[i].1.get().starts_with('"') {
            string(&format_rfc3339_ms(now_ms))
        } else {
            number(now_ms)
        };
        event.0[i].1 = fresh;
    }
    event.set_if_absent(ORIGINAL_TIMESTAMP, number(time));
    true
}

/// One event of the transform's Datadog envelope, parsed for re-stamping.
struct OutputEvent {
    /// The event as written.
    raw: Box<RawValue>,
    event: Object,
    event_ms: i64,
    log: Object,
    log_ms: i64,
}

/// Every event of a transform envelope, checked: a timestamp, a log that carries the marker
/// and its own timestamp.
fn output_events(envelope: &Object) -> Result<Vec<OutputEvent>, Unreadable> {
    let Some(events) = envelope_events(envelope) else {
        return Err(corrupt(format!("the envelope has no {LOG_EVENTS} array")));
    };
    let mut out = Vec::with_capacity(events.len());
    for (i, raw) in events.into_iter().enumerate() {
        let n = i + 1;
        let event = Object::parse(raw.get().as_bytes())
            .map_err(|e| corrupt(format!("log event {n} is not a JSON object ({e})")))?;
        let event_ms = event
            .get(TIMESTAMP)
            .and_then(|v| v.get().parse::<i64>().ok())
            .ok_or_else(|| corrupt(format!("log event {n} has no numeric {TIMESTAMP}")))?;
        let message: String = event
            .get("message")
            .and_then(|v| serde_json::from_str(v.get()).ok())
            .ok_or_else(|| corrupt(format!("log event {n} has no string message")))?;
        if marker_version(message.as_bytes()) != Some(MARKER_VERSION) {
            return Err(corrupt(format!(
                "the log of event {n} does not start with the marker"
            )));
        }
        let log = Object::parse(message.as_bytes())
            .map_err(|e| corrupt(format!("the log of event {n} is not a JSON object ({e})")))?;
        let log_ms = log
            .get(TIMESTAMP)
            .and_then(|v| v.get().parse::<i64>().ok())
            .ok_or_else(|| corrupt(format!("the log of event {n} has no numeric {TIMESTAMP}")))?;
        out.push(OutputEvent {
            raw,
            event,
            event_ms,
            log,
            log_ms,
        });
    }
    Ok(out)
}

fn corrupt(why: String) -> Unreadable {
    Unreadable::Corrupt(why)
}

/// A CloudWatch Logs message, recognised as the transform does: `messageType` near the start
/// and a `logEvents` member.
fn cloudwatch(trimmed: &[u8]) -> Option<Object> {
    let head = &trimmed[..trimmed.len().min(64)];
    if !contains(head, b"\"messageType\"") || !contains(trimmed, b"\"logEvents\"") {
        return None;
    }
    Object::parse(trimmed)
        .ok()
        .filter(|o| o.get(MESSAGE_TYPE).is_some())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The raw events of an envelope's `logEvents`, or `None` when it is not an array.
fn envelope_events(envelope: &Object) -> Option<Vec<Box<RawValue>>> {
    serde_json::from_str(envelope.get(LOG_EVENTS)?.get()).ok()
}

/// One producer CloudWatch Logs event as the transform reads it.
struct CwlEvent {
    object: Option<Object>,
    message: Option<String>,
    message_object: Option<Object>,
    /// The message's time key, else the event's positive `timestamp`.
    time: Option<i64>,
}

impl CwlEvent {
    fn read(raw: &RawValue) -> CwlEvent {
        let object = Object::parse(raw.get().as_bytes()).ok();
        let message: Option<String> = object
            .as_ref()
            .and_then(|o| o.get("message"))
            .and_then(|m| serde_json::from_str(m.get()).ok());
        let message_object = message
            .as_deref()
            .filter(|m| m.starts_with('{'))
            .and_then(|m| Object::parse(m.as_bytes()).ok());
        let stamped = object
            .as_ref()
            .and_then(|o| o.get(TIMESTAMP))
            .and_then(|t| t.get().parse::<i64>().ok())
            .filter(|&t| t > 0);
        let time = message_object
            .as_ref()
            .and_then(|m| m.time().map(|(_, t)| t))
            .or(stamped);
        CwlEvent {
            object,
            message,
            message_object,
            time,
        }
    }
}

/// Non-blank lines, without a trailing `\r`.
fn event_lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    payload
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
}

/// A time value as the transform reads it: an RFC 3339 string or an epoch number.
fn time_of(value: &RawValue) -> Option<i64> {
    let raw = value.get();
    if raw.starts_with('"') {
        let text: String = serde_json::from_str(raw).ok()?;
        parse_rfc3339_ms(&text)
    } else {
        raw.parse::<f64>().ok().and_then(epoch_number_to_ms)
    }
}

#[allow(clippy::expect_used)]
fn number(ms: i64) -> Box<RawValue> {
    RawValue::from_string(ms.to_string()).expect("an integer is JSON")
}

#[allow(clippy::expect_used)]
fn string(s: &str) -> Box<RawValue> {
    let mut out = Vec::with_capacity(s.len() + 2);
    write_str(&mut out, s);
    RawValue::from_string(String::from_utf8(out).expect("write_str writes UTF-8"))
        .expect("write_str writes a JSON string")
}

#[allow(clippy::expect_used)]
fn array(items: &[Box<RawValue>]) -> Box<RawValue> {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.get());
    }
    out.push(']');
    RawValue::from_string(out).expect("an array of JSON values is JSON")
}

/// A JSON object as written: members in order, values as raw JSON text.
#[derive(Debug, Default)]
struct Object(Vec<(String, Box<RawValue>)>);

impl Object {
    fn parse(bytes: &[u8]) -> Result<Object, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// Replaces the first member named `key`, or appends it.
    fn set(&mut self, key: &str, value: Box<RawValue>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(member) => member.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// Appends `key` unless present: an event re-stamped before keeps its first original.
    fn set_if_absent(&mut self, key: &str, value: Box<RawValue>) {
        if self.get(key).is_none() {
            self.0.push((key.to_owned(), value));
        }
    }

    /// The member the transform takes the event's time from, and the time.
    fn time(&self) -> Option<(usize, i64)> {
        self.0.iter().enumerate().find_map(|(i, (k, v))| {
            TIME_KEYS
                .contains(&k.as_str())
                .then(|| time_of(v))
                .flatten()
                .map(|t| (i, t))
        })
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, key);
            out.push(b':');
            out.extend_from_slice(value.get().as_bytes());
        }
        out.push(b'}');
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    #[allow(clippy::expect_used)]
    fn to_text(&self) -> String {
        String::from_utf8(self.to_bytes()).expect("keys and raw JSON are UTF-8")
    }

    #[allow(clippy::expect_used)]
    fn to_raw(&self) -> Box<RawValue> {
        RawValue::from_string(self.to_text()).expect("an object of JSON values is JSON")
    }
}

impl<'de> Deserialize<'de> for Object {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Object;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Object(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, UNIX_EPOCH};

    use firetail_wire::event::{EventRef, encode};
    use serde_json::{Value, json};

    use super::*;

    /// 2026-12-01T10:00:00Z.
    const NOW: i64 = 1_764_583_200_000;
    const CUTOFF: i64 = NOW - 17 * HOUR_MS;
    const OLD: i64 = NOW - 20 * HOUR_MS;
    const YOUNG: i64 = NOW - HOUR_MS;

    /// A Datadog log as the transform's output contract lays it out: the marker first.
    fn log(message: &str, ms: i64) -> String {
        format!(
            r#"{{"firetail_transform":1,"message":{},"timestamp":{ms},"status":"info","hostname":"h","service":"web","ddsource":"web","ddtags":"kube_namespace:shop","kube_namespace":"shop"}}"#,
            json!(message)
        )
    }

    /// The transform's Datadog envelope of `logs` (message, time).
    fn envelope(logs: &[(&str, i64)]) -> Vec<u8> {
        let events: Vec<String> = logs
            .iter()
            .enumerate()
            .map(|(i, (m, ms))| {
                format!(
                    r#"{{"id":"{i}","timestamp":{ms},"message":{}}}"#,
                    json!(log(m, *ms))
                )
            })
            .collect();
        format!(
            r#"{{"firetail_transform":1,"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"firetail","logStream":"shop/web-1/app","subscriptionFilters":["firetail"],"logEvents":[{}]}}"#,
            events.join(",")
        )
        .into_bytes()
    }

    /// A sidecar event written by the sidecar's own encoder.
    fn sidecar(line: &str, ms: i64) -> Vec<u8> {
        let ev = EventRef {
            line: line.as_bytes(),
            time: UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap()),
            file: "/var/log/app/app.log",
            part: None,
        };
        let mut out = Vec::new();
        encode(&ev, "file", br#"{"namespace_name":"shop"}"#, &mut out);
        out
    }

    /// A CloudWatch Logs subscription message; `messageType` first, as CloudWatch writes it.
    fn cloudwatch_message(events: &Value) -> String {
        format!(
            r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/app","logStream":"s","subscriptionFilters":["f"],"logEvents":{events}}}"#
        )
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn times_of_every_shape() {
        let dd = envelope(&[("a", OLD), ("b", YOUNG)]);
        assert_eq!(
            inspect(&dd).unwrap(),
            Inspection {
                shape: Shape::DatadogOutput,
                times: vec![Some(OLD), Some(YOUNG)],
            }
        );
        let mut ndjson = sidecar("one", OLD);
        ndjson.push(b'\n');
        ndjson.extend(sidecar("two", YOUNG));
        ndjson.push(b'\n');
        let i = inspect(&ndjson).unwrap();
        assert_eq!(i.shape, Shape::Events);
        assert_eq!(i.times, [Some(OLD), Some(YOUNG)]);
        assert_eq!(
            (i.older_than(CUTOFF), i.untimed(), i.oldest()),
            (1, 0, Some(OLD))
        );

        // Fluent Bit: epoch seconds in `date`, or `@timestamp`; the first key that parses.
        let fb = format!(
            "{{\"date\":{}.5,\"log\":\"x\"}}\n{{\"time\":\"not a time\",\"@timestamp\":\"{}\"}}\n{{\"log\":\"no time\"}}",
            OLD / 1000,
            format_rfc3339_ms(YOUNG)
        );
        assert_eq!(
            inspect(fb.as_bytes()).unwrap().times,
            [Some(OLD + 500), Some(YOUNG), None]
        );

        // CloudWatch Logs: a JSON message's time key wins over the event's timestamp.
        let cwl = cloudwatch_message(&json!([
            {"id": "1", "timestamp": OLD, "message": "text"},
            {"id": "2", "timestamp": OLD, "message": json!({"time": format_rfc3339_ms(YOUNG)}).to_string()},
            {"id": "3", "timestamp": 0, "message": "no time"}]));
        let i = inspect(cwl.as_bytes()).unwrap();
        assert_eq!(i.shape, Shape::CloudWatch);
        assert_eq!(i.times, [Some(OLD), Some(YOUNG), None]);

        assert_eq!(inspect(b"plain text").unwrap().times, [None]);
        assert_eq!(inspect(b" \n").unwrap().shape, Shape::Empty);
        let doc = format!(
            "{{\"firetail_transform\":1,\"@timestamp\":\"{}\",\"message\":\"m\"}}\n{{\"firetail_transform\":1,\"message\":\"n\"}}\n",
            format_rfc3339_ms(OLD)
        );
        let i = inspect(doc.as_bytes()).unwrap();
        assert_eq!(
            (i.shape, i.times),
            (Shape::DocumentOutput, vec![Some(OLD), None])
        );
    }

    #[test]
    fn corrupt_transform_output_says_why() {
        let good = String::from_utf8(envelope(&[("a", OLD)])).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEv"#.into(), "not a JSON object"),
            (r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE"}"#.into(), "no logEvents array"),
            (good.replace(r#""timestamp":"#, r#""ts":"#), "log event 1 has no numeric timestamp"),
            (
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1,"message":"{\"message\":\"x\"}"}]}"#.into(),
                "does not start with the marker",
            ),
            (
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1,"message":"{\"firetail_transform\":1,\"mess"}]}"#.into(),
                "the log of event 1 is not a JSON object",
            ),
            (
                r#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","logEvents":[{"timestamp":1,"message":"{\"firetail_transform\":1}"}]}"#.into(),
                "the log of event 1 has no numeric timestamp",
            ),
            (
                "{\"firetail_transform\":1,\"message\":\"a\"}\n{\"message\":\"b\"}".into(),
                "document 2 has no marker",
            ),
        ];
        for (payload, why) in cases {
            match inspect(payload.as_bytes()) {
                Err(Unreadable::Corrupt(got)) => assert!(got.contains(why), "{got} / {why}"),
                other => panic!("{payload}: {other:?}"),
            }
        }
        assert_eq!(
            inspect(br#"{"firetail_transform":2,"messageType":"DATA_MESSAGE"}"#),
            Err(Unreadable::OutputVersion(2))
        );
        assert!(matches!(
            inspect(b"{\"firetail_format\":9}\n{\"log\":\"x\"}"),
            Err(Unreadable::RecordVersion(_))
        ));
    }

    #[test]
    fn restamping_transform_output_changes_only_old_events() {
        let dd = envelope(&[("old", OLD), ("young", YOUNG)]);
        let i = inspect(&dd).unwrap();
        let (out, changed) = restamp(&dd, &i, CUTOFF, NOW).unwrap();
        assert_eq!(changed, 1);
        assert!(out.starts_with(br#"{"firetail_transform":1,"messageType":"DATA_MESSAGE","#));
        let (before, after) = (parse(&dd), parse(&out));
        // The envelope and the young event are as they were.
        for key in ["owner", "logGroup", "logStream", "subscriptionFilters"] {
            assert_eq!(before[key], after[key]);
        }
        assert_eq!(before["logEvents"][1], after["logEvents"][1]);
        let event = &after["logEvents"][0];
        assert_eq!(event["timestamp"], NOW);
        assert_eq!(event["id"], "0");
        let text = event["message"].as_str().unwrap();
        assert!(text.starts_with(r#"{"firetail_transform":1,"message":"old","timestamp":"#));
        let mut want = parse(log("old", OLD).as_bytes());
        want["timestamp"] = json!(NOW);
        want[ORIGINAL_TIMESTAMP] = json!(OLD);
        assert_eq!(parse(text.as_bytes()), want);
        assert_eq!(inspect(&out).unwrap().times, [Some(NOW), Some(YOUNG)]);

        // Re-stamped again a day later: the first original stays.
        let later = NOW + 20 * HOUR_MS;
        let (again, n) =
            restamp(&out, &inspect(&out).unwrap(), later - 17 * HOUR_MS, later).unwrap();
        assert_eq!(n, 2);
        let logs: Vec<Value> = parse(&again)["logEvents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| parse(e["message"].as_str().unwrap().as_bytes()))
            .collect();
        assert_eq!(logs[0][ORIGINAL_TIMESTAMP], OLD);
        assert_eq!(logs[1][ORIGINAL_TIMESTAMP], YOUNG);
        assert_eq!(logs[1]["timestamp"], later);
    }

    #[test]
    fn restamping_sidecar_events_rewrites_time_and_keeps_the_original() {
        let old = sidecar("old line", OLD);
        let young = sidecar("young line", YOUNG);
        let mut ndjson = old.clone();
        ndjson.push(b'\n');
        ndjson.extend_from_slice(b"not json\n");
        ndjson.extend_from_slice(&young);
        ndjson.push(b'\n');
        let (out, changed) = restamp(&ndjson, &inspect(&ndjson).unwrap(), CUTOFF, NOW).unwrap();
        assert_eq!(changed, 1);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 4, "same lines, trailing newline kept");
        assert_eq!(lines[1], b"not json");
        assert_eq!(
            lines[2],
            &young[..],
            "a young event is byte for byte the same"
        );
        assert_eq!(lines[3], b"");
        let mut want = parse(&old);
        want[TIME] = json!(format_rfc3339_ms(NOW));
        want[ORIGINAL_TIMESTAMP] = json!(OLD);
        assert_eq!(parse(lines[0]), want);
        assert!(
            lines[0].starts_with(b"{\"time\":\""),
            "the key order is kept"
        );

        // A single json record without a newline; a numeric time stays numeric.
        let (out, _) = restamp(&old, &inspect(&old).unwrap(), CUTOFF, NOW).unwrap();
        assert!(!out.ends_with(b"\n"));
        let fb = format!("{{\"date\":{},\"log\":\"x\"}}", OLD / 1000);
        let (out, n) =
            restamp(fb.as_bytes(), &inspect(fb.as_bytes()).unwrap(), CUTOFF, NOW).unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            parse(&out),
            json!({"date": NOW, "log": "x", ORIGINAL_TIMESTAMP: OLD})
        );
    }

    #[test]
    fn restamping_cloudwatch_events_keeps_the_original_in_the_message() {
        let text_ms = OLD;
        let json_ms = OLD - 1;
        let cwl = cloudwatch_message(&json!([
            {"id": "1", "timestamp": text_ms, "message": "GET / 200"},
            {"id": "2", "timestamp": OLD, "message": json!({"msg": "m", "time": format_rfc3339_ms(json_ms)}).to_string()},
            {"id": "3", "timestamp": YOUNG, "message": "young"}]));
        let i = inspect(cwl.as_bytes()).unwrap();
        let (out, changed) = restamp(cwl.as_bytes(), &i, CUTOFF, NOW).unwrap();
        assert_eq!(changed, 2);
        let after = parse(&out);
        let events = after["logEvents"].as_array().unwrap();
        assert_eq!(events[0]["timestamp"], NOW);
        assert_eq!(
            parse(events[0]["message"].as_str().unwrap().as_bytes()),
            json!({"message": "GET / 200", ORIGINAL_TIMESTAMP: text_ms})
        );
        assert_eq!(events[1]["timestamp"], NOW);
        assert_eq!(
            parse(events[1]["message"].as_str().unwrap().as_bytes()),
            json!({"msg": "m", "time": format_rfc3339_ms(NOW), ORIGINAL_TIMESTAMP: json_ms})
        );
        assert_eq!(events[2], parse(cwl.as_bytes())["logEvents"][2]);
        assert_eq!(inspect(&out).unwrap().older_than(CUTOFF), 0);
    }
}
