//! One event in, one destination-shaped JSON object out, starting with the transform's marker
//! (`{"firetail_transform":1,…`, `firetail_wire::output`).
//!
//! Events are parsed one level deep: the keys the sidecar and Fluent Bit write (names from
//! `firetail_wire::event`) and an app's own `message`/time keys are interpreted, every other
//! value is copied through as raw JSON text without being rebuilt. `log` holding a JSON object
//! is merged like Fluent Bit's `Merge_Log`, and nothing an app logs can overwrite the tags: a
//! colliding key is kept under `app.<key>`.
//!
//! # Layout
//! - [`Renderer`]: reads an event, derives its tags (cached per distinct `kubernetes` map) and
//!   writes the object; what differs per destination is in [`datadog`] and [`document`].
//! - [`datadog`]: the Datadog log (`message`, `timestamp`, `hostname`, `service`, `ddsource`,
//!   `status`, `ddtags`, tags as attributes) and the CloudWatch-Logs-style envelope that
//!   carries several of them in one record.
//! - [`document`]: the OpenSearch / S3 document (`@timestamp`, `message`, `hostname`, tags),
//!   one per OpenSearch record, newline-delimited (optionally gzip) for S3.
//!
//! Fields written for every destination besides the message and the tags: `message_base64`
//! (the exact bytes of a line that is not UTF-8), `part` (`{"index","last"}`, the piece of a
//! line too long for one event), `aws.awslogs` (a CloudWatch Logs event's origin).

pub mod datadog;
pub mod document;

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::ops::Range;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use firetail_wire::event::{self as wire, PartMark};
use firetail_wire::json::write_str;
use firetail_wire::output;
use firetail_wire::time;

use crate::config::{Config, Destination};
use crate::decode::RecordHeader;
use crate::kube_meta::{KubeMeta, Text};
use crate::tags::{self, TagSet};

/// Keys an app's level is found under, most specific first.
const LEVEL_KEYS: [&str; 6] = [
    "level",
    "severity",
    "lvl",
    "loglevel",
    "log_level",
    "log.level",
];

/// Where an event came from besides its own bytes.
#[derive(Debug, Clone, Copy)]
pub struct EventContext<'a> {
    /// Used when the event carries no readable time: the CloudWatch event's timestamp, or the
    /// record's arrival at Firehose.
    pub default_time_ms: i64,
    /// The CloudWatch Logs envelope the event came in, if any.
    pub cloudwatch: Option<&'a CloudWatchOrigin>,
    /// The header of the format version 2 record the event came in, if any: the `stream`,
    /// `file` and `kubernetes` of every event that does not carry its own, and `time` in
    /// epoch milliseconds.
    pub header: Option<&'a RecordHeader<'a>>,
}

/// The envelope fields of a CloudWatch Logs event, kept as `aws.awslogs.*`.
#[derive(Debug, Clone)]
pub struct CloudWatchOrigin {
    pub owner: String,
    pub log_group: String,
    pub log_stream: String,
}

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    /// Appended to the output; the event's time in epoch milliseconds, and where in the
    /// object (offsets from its first byte) its pod's shared members are: the same bytes for
    /// every event of a pod, so a writer that escapes objects can escape them once.
    Written { time_ms: i64, head: Range<usize> },
    /// Matched `FIRETAIL_DROP_REGEX`; nothing was appended.
    Filtered,
}

/// Tags and pre-rendered JSON for one distinct `kubernetes` map.
#[derive(Debug)]
struct Prepared {
    tags: TagSet,
    /// `,"hostname":…,"ddtags":…,"kube_namespace":…` — everything after the message/time.
    head: Vec<u8>,
    /// Keys the renderer owns; app fields with these names are written as `app.<key>`.
    reserved: HashSet<String>,
}

/// Renders events for one destination, remembering the tags of the last pod seen (packed
/// records repeat the same metadata on every line).
#[derive(Debug)]
pub struct Renderer<'c> {
    config: &'c Config,
    cache_key: String,
    cache: Option<Prepared>,
}

impl<'c> Renderer<'c> {
    pub fn new(config: &'c Config) -> Self {
        Renderer {
            config,
            cache_key: String::new(),
            cache: None,
        }
    }

    /// The tags of the event rendered last (used to name CloudWatch-style envelopes).
    pub fn last_tags(&self) -> Option<&TagSet> {
        self.cache.as_ref().map(|p| &p.tags)
    }

    /// Renders one event (a JSON object line, or any other bytes as a text message) and
    /// appends the object to `out`.
    pub fn render<'a>(
        &mut self,
        bytes: &'a [u8],
        ctx: EventContext<'a>,
        out: &mut Vec<u8>,
    ) -> Rendered {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                // Keep the exact bytes next to the readable form: lossless without guessing.
                let lossy = String::from_utf8_lossy(bytes);
                let exact = base64::engine::general_purpose::STANDARD.encode(bytes);
                return self.render_text(&lossy, Some(&exact), ctx, out);
            }
        };
        if text.starts_with('{')
            && let Ok(fields) = serde_json::from_str::<Fields<'_>>(text)
        {
            return self.render_object(fields.0, ctx, out);
        }
        self.render_text(text, None, ctx, out)
    }

    fn render_text(
        &mut self,
        message: &str,
        exact_base64: Option<&str>,
        ctx: EventContext<'_>,
        out: &mut Vec<u8>,
    ) -> Rendered {
        if self.filtered(message) {
            return Rendered::Filtered;
        }
        self.prepare("");
        let Some(prepared) = self.cache.as_ref() else {
            return Rendered::Filtered;
        };
        let time_ms = ctx.default_time_ms;
        let start = out.len();
        let mut w = ObjectWriter::start(out);
        let message = Message::Text(Cow::Borrowed(message));
        write_message_and_time(&mut w, self.config.destination, &message, time_ms);
        let head = w.raw(&prepared.head, start);
        if let Some(b64) = exact_base64 {
            w.key(MESSAGE_BASE64);
            write_str(w.out, b64);
        }
        write_cloudwatch(&mut w, ctx.cloudwatch);
        w.finish();
        Rendered::Written { time_ms, head }
    }

    fn render_object<'a>(
        &mut self,
        fields: Vec<(Cow<'a, str>, &'a RawValue)>,
        ctx: EventContext<'a>,
        out: &mut Vec<u8>,
    ) -> Rendered {
        let mut log_raw: Option<&'a RawValue> = None;
        let mut log_base64: Option<Cow<'a, str>> = None;
        let mut part: Option<(PartMark, Option<wire::Cut>)> = None;
        let mut top_message: Option<Cow<'a, str>> = None;
        let mut time_ms: Option<i64> = None;
        let mut kube: Option<&'a RawValue> = None;
        let mut rest: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            match key.as_ref() {
                wire::LOG if log_raw.is_none() && value.get().starts_with('"') => {
                    log_raw = Some(value);
                }
                wire::LOG_BASE64 if log_base64.is_none() => match string_of(value) {
                    Some(s) => log_base64 = Some(s),
                    None => rest.push((key, value)),
                },
                wire::PART if part.is_none() => match part_of(value) {
                    Some(p) => part = Some(p),
                    None => rest.push((key, value)),
                },
                "message" if top_message.is_none() => match string_of(value) {
                    Some(s) => top_message = Some(s),
                    None => rest.push((key, value)),
                },
                wire::KUBERNETES if kube.is_none() => kube = Some(value),
                // Version 2 writes epoch milliseconds exactly: no guessing of the unit.
                wire::TIME if time_ms.is_none() && ctx.header.is_some() => {
                    match value.get().parse::<i64>().ok().or_else(|| time_of(value)) {
                        Some(ms) => time_ms = Some(ms),
                        None => rest.push((key, value)),
                    }
                }
                wire::TIME | "@timestamp" | "timestamp" | "date" if time_ms.is_none() => {
                    match time_of(value) {
                        Some(ms) => time_ms = Some(ms),
                        None => rest.push((key, value)),
                    }
                }
                _ => rest.push((key, value)),
            }
        }

        if let Some(header) = ctx.header {
            // Version 2: what the event does not carry is the header's. `stream` and `file`
            // lead the copied fields, in the order version 1 writes them, so the same events
            // render the same in both versions.
            let mut own = |name: &'static str, default: Option<&'a RawValue>| {
                let i = rest.iter().position(|(k, _)| k == name);
                i.map(|i| rest.remove(i))
                    .or_else(|| default.map(|v| (Cow::Borrowed(name), v)))
            };
            let stream = own(wire::STREAM, header.stream);
            let file = own(wire::FILE, header.file);
            rest.splice(0..0, stream.into_iter().chain(file));
            match kube {
                // `{}`: the event's pod has no metadata, where the header's has.
                Some(k) if k.get() == "{}" => kube = None,
                Some(_) => {}
                None => kube = header.kubernetes,
            }
        }

        // The line is unescaped only if something reads its text: the drop filter, or the
        // merge of a line that may be a JSON object. Otherwise its JSON string is copied into
        // the output as it came (unescaping and escaping again every line showed in `perf`).
        let (log, log_literal) = match log_raw {
            Some(raw) if self.config.drop_regex.is_none() && is_plain_literal(raw.get()) => {
                (None, Some(raw.get()))
            }
            Some(raw) => match string_of(raw) {
                Some(text) => (Some(text), None),
                // Not a string serde can read (a lone surrogate): an app field like any other.
                None => {
                    rest.push((Cow::Borrowed(wire::LOG), raw));
                    (None, None)
                }
            },
            None => (None, None),
        };

        // Merge_Log: a JSON object in `log` contributes its fields.
        let merged_source = log.as_deref().filter(|s| s.trim_start().starts_with('{'));
        let mut merged: Vec<(Cow<'_, str>, &RawValue)> = merged_source
            .and_then(|s| serde_json::from_str::<Fields<'_>>(s).ok())
            .map(|f| f.0)
            .unwrap_or_default();

        // The message: the app's own message field, else the line, else a top-level message.
        // A top-level `message` that loses to another source is kept as `app.message`.
        let mut displaced: Option<Cow<'_, str>> = None;
        let message = if let Some(m) = take_string(&mut merged, &["message", "msg"]) {
            displaced = top_message.take();
            Message::Text(m)
        } else if let Some(l) = log.as_deref() {
            displaced = top_message.take();
            Message::Text(Cow::Borrowed(l))
        } else if let Some(literal) = log_literal {
            displaced = top_message.take();
            Message::Literal(literal)
        } else if let Some(t) = top_message.take() {
            Message::Text(t)
        } else {
            Message::Text(take_string(&mut rest, &["msg"]).unwrap_or(Cow::Borrowed("")))
        };
        if let Message::Text(text) = &message
            && self.filtered(text)
        {
            return Rendered::Filtered;
        }

        let level = LEVEL_KEYS
            .iter()
            .find_map(|k| find_string(&merged, k).or_else(|| find_string(&rest, k)));
        let time_ms = time_ms.unwrap_or(ctx.default_time_ms);

        self.prepare(kube.map_or("", RawValue::get));
        let Some(prepared) = self.cache.as_ref() else {
            return Rendered::Filtered;
        };
        let destination = self.config.destination;
        let start = out.len();
        let mut w = ObjectWriter::start(out);
        write_message_and_time(&mut w, destination, &message, time_ms);
        if destination == Destination::Datadog
            && let Some(level) = level
        {
            w.key(datadog::STATUS);
            write_str(w.out, &level.to_ascii_lowercase());
        }
        let head = w.raw(&prepared.head, start);
        if let Some(exact) = &log_base64 {
            w.key(MESSAGE_BASE64);
            write_str(w.out, exact);
        }
        if let Some((p, cut)) = part {
            write_part(&mut w, p, cut);
        }
        write_cloudwatch(&mut w, ctx.cloudwatch);
        if self.config.keep_kubernetes
            && let Some(k) = kube
        {
            w.key(wire::KUBERNETES);
            w.out.extend_from_slice(k.get().as_bytes());
        }
        if let Some(m) = &displaced {
            w.key("app.message");
            write_str(w.out, m);
        }
        // `part` belongs to the sidecar only when it marked this event as a piece.
        let rename =
            |key: &str| prepared.reserved.contains(key) || (part.is_some() && key == wire::PART);
        for (key, value) in &rest {
            w.field(key, value, rename(key));
        }
        for (key, value) in &merged {
            // Already at the top level when Fluent Bit merged the log before us.
            if rest.iter().any(|(k, _)| k == key) {
                continue;
            }
            w.field(key, value, rename(key));
        }
        w.finish();
        Rendered::Written { time_ms, head }
    }

    fn filtered(&self, message: &str) -> bool {
        self.config
            .drop_regex
            .as_ref()
            .is_some_and(|re| re.is_match(message))
    }

    /// Makes the cache hold the tags of `kube_raw`.
    fn prepare(&mut self, kube_raw: &str) {
        if self.cache.is_some() && self.cache_key == kube_raw {
            return;
        }
        let meta = KubeMeta::parse(kube_raw);
        let tags = tags::derive(&meta, &self.config.tags);
        self.cache = Some(prepare_tags(tags, self.config.destination));
        self.cache_key.clear();
        self.cache_key.push_str(kube_raw);
    }
}

/// Keys every destination's object owns, whatever the app logs.
const RESERVED: [&str; 5] = [
    output::MARKER_KEY,
    "message",
    MESSAGE_BASE64,
    "aws",
    wire::KUBERNETES,
];

/// The exact bytes of a line that is not UTF-8, standard base64 (the sidecar's `log_base64`).
pub const MESSAGE_BASE64: &str = "message_base64";

fn prepare_tags(tags: TagSet, destination: Destination) -> Prepared {
    let mut reserved: HashSet<String> = RESERVED.into_iter().map(str::to_owned).collect();
    let mut head = Vec::with_capacity(256);
    let owned = match destination {
        Destination::Datadog => datadog::write_head(&tags, &mut head),
        Destination::OpenSearch | Destination::S3 => document::write_head(&tags, &mut head),
    };
    reserved.extend(owned.iter().map(|k| (*k).to_owned()));
    for (key, value) in &tags.pairs {
        if reserved.insert(key.clone()) {
            write_member(&mut head, key, value);
        }
    }
    Prepared {
        tags,
        head,
        reserved,
    }
}

/// `,"key":"value"` — a member of a pre-rendered head.
fn write_member(head: &mut Vec<u8>, key: &str, value: &str) {
    head.push(b',');
    write_str(head, key);
    head.push(b':');
    write_str(head, value);
}

/// An event's message: its text, or the JSON string literal it came in when nothing needed
/// its text (written as it is: the same string, not unescaped and escaped again).
pub(crate) enum Message<'a> {
    Text(Cow<'a, str>),
    Literal(&'a str),
}

impl Message<'_> {
    /// The message as a JSON string literal.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Message::Text(text) => write_str(out, text),
            Message::Literal(literal) => out.extend_from_slice(literal.as_bytes()),
        }
    }
}

/// Whether a JSON string literal can be copied as the message: its text cannot start a JSON
/// object (the merge reads it then; white space or an escape first could hide a `{`), and it
/// has no `\u` escape (which the text path would refuse when it is a lone surrogate).
fn is_plain_literal(raw: &str) -> bool {
    matches!(raw.as_bytes().get(1), Some(&b) if b.is_ascii_graphic() && b != b'{' && b != b'\\')
        && memchr::memmem::find(raw.as_bytes(), b"\\u").is_none()
}

fn write_message_and_time(
    w: &mut ObjectWriter<'_>,
    destination: Destination,
    message: &Message<'_>,
    time_ms: i64,
) {
    match destination {
        Destination::Datadog => datadog::write_message_and_time(w, message, time_ms),
        Destination::OpenSearch | Destination::S3 => {
            document::write_message_and_time(w, message, time_ms);
        }
    }
}

/// `"part":{"index":N,"last":B}` (with `"cut":"…"` on a piece cut before its newline), in the
/// sidecar's own spelling.
fn write_part(w: &mut ObjectWriter<'_>, part: PartMark, cut: Option<wire::Cut>) {
    w.key(wire::PART);
    w.out.push(b'{');
    write_str(w.out, wire::PART_INDEX);
    w.out.push(b':');
    firetail_wire::json::write_uint(w.out, u64::from(part.index));
    w.out.push(b',');
    write_str(w.out, wire::PART_LAST);
    w.out
        .extend_from_slice(if part.last { b":true" } else { b":false" });
    if let Some(cut) = cut {
        w.out.push(b',');
        write_str(w.out, wire::PART_CUT);
        w.out.push(b':');
        write_str(w.out, cut.as_str());
    }
    w.out.push(b'}');
}

fn write_cloudwatch(w: &mut ObjectWriter<'_>, origin: Option<&CloudWatchOrigin>) {
    let Some(o) = origin else { return };
    w.key("aws");
    w.out.extend_from_slice(b"{\"awslogs\":{\"owner\":");
    write_str(w.out, &o.owner);
    w.out.extend_from_slice(b",\"logGroup\":");
    write_str(w.out, &o.log_group);
    w.out.extend_from_slice(b",\"logStream\":");
    write_str(w.out, &o.log_stream);
    w.out.extend_from_slice(b"}}");
}

/// Appends `{"firetail_transform":1,"k":v,...}` members to a buffer (the marker is always
/// first, so every later member starts with a comma).
pub(crate) struct ObjectWriter<'o> {
    /// The buffer; after [`ObjectWriter::key`], the caller writes the value here.
    pub out: &'o mut Vec<u8>,
}

impl<'o> ObjectWriter<'o> {
    /// `{"firetail_transform":1` — every object the transform writes starts with its marker
    /// (see `firetail_wire::output`).
    fn start(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        output::write_marker(out);
        ObjectWriter { out }
    }

    /// Starts a member: separator, key, colon.
    pub fn key(&mut self, key: &str) {
        self.out.push(b',');
        write_str(self.out, key);
        self.out.push(b':');
    }

    /// Pre-rendered members that start with a comma; returns where they are in the object
    /// that starts at `object_start` of the buffer.
    fn raw(&mut self, members: &[u8], object_start: usize) -> Range<usize> {
        let at = self.out.len() - object_start;
        self.out.extend_from_slice(members);
        at..at + members.len()
    }

    /// A copied app field, as `app.<key>` when `rename` (its name is taken).
    fn field(&mut self, key: &str, value: &RawValue, rename: bool) {
        if rename {
            let renamed = format!("app.{key}");
            self.key(&renamed);
        } else {
            self.key(key);
        }
        self.out.extend_from_slice(value.get().as_bytes());
    }

    fn finish(self) {
        self.out.push(b'}');
    }
}

fn string_of(value: &RawValue) -> Option<Cow<'_, str>> {
    let raw = value.get();
    if !raw.starts_with('"') {
        return None;
    }
    // A raw value is valid JSON: a string without a backslash is the text between its
    // quotes, borrowed as it is (most values; parsing each again showed in `perf`).
    if let Some(inner) = raw.get(1..raw.len() - 1)
        && !inner.contains('\\')
    {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<Text<'_>>(raw).ok().and_then(|t| t.0)
}

/// A sidecar piece mark: exactly `{"index": <u32>, "last": <bool>}`, or that with
/// `"cut": <reason>`; anything else is an app's own field and is copied through.
fn part_of(value: &RawValue) -> Option<(PartMark, Option<wire::Cut>)> {
    if !value.get().starts_with('{') {
        return None;
    }
    let fields = serde_json::from_str::<Fields<'_>>(value.get()).ok()?.0;
    if !(2..=3).contains(&fields.len()) {
        return None;
    }
    let mut index = None;
    let mut last = None;
    let mut cut = None;
    for (key, v) in fields {
        match key.as_ref() {
            wire::PART_INDEX => index = v.get().parse::<u32>().ok(),
            wire::PART_LAST => last = v.get().parse::<bool>().ok(),
            wire::PART_CUT => {
                cut = Some(string_of(v).and_then(|c| wire::Cut::from_name(&c))?);
            }
            _ => return None,
        }
    }
    let mark = PartMark {
        index: index?,
        last: last?,
    };
    Some((mark, cut))
}

fn time_of(value: &RawValue) -> Option<i64> {
    let raw = value.get();
    if raw.starts_with('"') {
        string_of(value).and_then(|s| time::parse_rfc3339_ms(&s))
    } else {
        raw.parse::<f64>().ok().and_then(time::epoch_number_to_ms)
    }
}

fn find_string<'v>(fields: &'v [(Cow<'_, str>, &'v RawValue)], key: &str) -> Option<Cow<'v, str>> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| string_of(v))
}

/// Removes and returns the first string-valued field named one of `keys`.
fn take_string<'a>(
    fields: &mut Vec<(Cow<'_, str>, &'a RawValue)>,
    keys: &[&str],
) -> Option<Cow<'a, str>> {
    for key in keys {
        if let Some(i) = fields
            .iter()
            .position(|(k, v)| k == key && v.get().starts_with('"'))
        {
            let (_, value) = fields.remove(i);
            return string_of(value);
        }
    }
    None
}

/// The members of a JSON object in input order, values left as raw JSON text.
struct Fields<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Fields<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    fields.push((key.0.unwrap_or(Cow::Borrowed("")), value));
                }
                Ok(Fields(fields))
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    /// Renders `line` for `destination`, with or without a drop filter that matches nothing
    /// (which makes the renderer read every line's text).
    fn rendered(line: &str, destination: Destination, read_text: bool) -> serde_json::Value {
        let config = Config {
            destination,
            drop_regex: read_text.then(|| regex::Regex::new("^never matches$").unwrap()),
            ..Config::default()
        };
        let mut renderer = Renderer::new(&config);
        let ctx = EventContext {
            default_time_ms: 7,
            cloudwatch: None,
            header: None,
        };
        let mut out = Vec::new();
        assert!(matches!(
            renderer.render(line.as_bytes(), ctx, &mut out),
            Rendered::Written { .. }
        ));
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn a_line_copied_as_its_literal_renders_as_the_line_read() {
        let kube =
            r#""kubernetes":{"namespace_name":"shop","pod_name":"a","container_name":"app"}"#;
        for log in [
            r#""GET /a?q=\"x\" HTTP/1.1\" 200 \\ tab\tend""#,
            r#""""#,
            r#""plain""#,
            r#""é 日本 \ud83c\udf89""#,
            r#""  {\"message\":\"merged after white space\",\"level\":\"warn\"}""#,
            r#""\n{\"message\":\"merged after an escape\"}""#,
            r#""{\"message\":\"merged\",\"user\":\"u1\"}""#,
            r#""[1,2]""#,
            r#""x\u0001y""#,
        ] {
            let line = format!(
                r#"{{"time":"2026-12-02T10:00:00.123Z","stream":"stdout","log":{log},{kube}}}"#
            );
            for destination in [Destination::Datadog, Destination::S3] {
                let copied = rendered(&line, destination, false);
                let read = rendered(&line, destination, true);
                assert_eq!(copied, read, "{line}");
            }
            let text: String = serde_json::from_str(log).unwrap();
            let got = rendered(&line, Destination::Datadog, false);
            if !text.trim_start().starts_with('{') {
                assert_eq!(got["message"], text.as_str(), "{line}");
            }
        }
    }

    #[test]
    fn which_literals_are_copied() {
        assert!(is_plain_literal(r#""GET / \"x\"""#));
        assert!(is_plain_literal(r#""""#));
        for read in [
            r#""{\"a\":1}""#,
            r#"" {""#,
            r#""\n{""#,
            r#""\u007b""#,
            r#""a\u0001""#,
        ] {
            assert!(!is_plain_literal(read), "{read}");
        }
    }

    #[test]
    fn part_marks_are_exactly_the_sidecar_shape() {
        let mark = PartMark {
            index: 3,
            last: true,
        };
        assert_eq!(
            part_of(&raw(r#"{"index":3,"last":true}"#)),
            Some((mark, None))
        );
        assert_eq!(
            part_of(&raw(r#"{"index":3,"last":true,"cut":"drain"}"#)),
            Some((mark, Some(wire::Cut::Drain)))
        );
        for other in [
            r#"{"index":3}"#,
            r#"{"index":1,"last":true,"cut":"whenever"}"#,
            r#"{"index":1,"last":true,"cut":1}"#,
            r#"{"index":-1,"last":true}"#,
            r#"{"index":1,"last":"yes"}"#,
            r#"{"index":1,"last":true,"x":1}"#,
            r#""part""#,
            "7",
        ] {
            assert_eq!(part_of(&raw(other)), None, "{other}");
        }
    }
}
