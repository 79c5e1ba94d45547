//! One event in, one destination-shaped JSON object out, starting with the transform's marker
//! (`{"firetail_transform":1,…`, `firetail_wire::output`).
//!
//! Events are parsed one level deep: the keys the sidecar and Fluent Bit write (names from
//! `firetail_wire::event`) and an app's own `message`/time keys are interpreted, every other
//! value is copied through as raw JSON text without being rebuilt. `log` holding a JSON object
//! (or version 2's `log_json`, the line carried as JSON) is merged like Fluent Bit's
//! `Merge_Log`, and nothing an app logs can overwrite the tags: a colliding key is kept under
//! `app.<key>`.
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

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

/// JSON text of one value, as it came (valid JSON: read by serde, or checked by
/// [`plain_v2_event`]).
type Json<'a> = &'a str;

use firetail_wire::event::{self as wire, PartMark};
use firetail_wire::json::{write_escaped, write_escaped_twice, write_str, write_uint};
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
    /// Appended to the output; the event's time in epoch milliseconds.
    Written { time_ms: i64 },
    /// Matched `FIRETAIL_DROP_REGEX`; nothing was appended.
    Filtered,
}

/// Tags and pre-rendered JSON for one distinct `kubernetes` map.
#[derive(Debug)]
struct Prepared {
    tags: TagSet,
    /// `,"hostname":…,"ddtags":…,"kube_namespace":…` — everything after the message/time
    /// (escaped when the renderer's form escapes).
    head: Vec<u8>,
    /// Keys the renderer owns; app fields with these names are written as `app.<key>`.
    reserved: HashSet<String>,
}

/// How an object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As a JSON object.
    Object,
    /// As the inside of a JSON string whose text is the object (without the quotes): a
    /// Datadog log travels as its envelope's `message`. Written so directly, in one pass:
    /// writing the object and escaping it afterwards was a sixth of the transform's time.
    Escaped,
    /// As one CloudWatch Logs event of a Datadog envelope, whose `message` is the object in
    /// the escaped form: `{"id":"<n>","timestamp":<ms>,"message":"…"}`, after a comma but for
    /// a record's first event (numbered from 0 after [`Renderer::begin_record`]). A record's
    /// events back to back are then its envelope's `logEvents` as they are, not copied into
    /// it one by one (which showed in `perf`).
    LogEvent,
}

impl Form {
    /// Whether strings are written escaped once more (as the inside of a JSON string).
    fn escapes(self) -> bool {
        !matches!(self, Form::Object)
    }
}

/// Renders events for one destination, remembering the tags of the last pod seen (packed
/// records repeat the same metadata on every line).
#[derive(Debug)]
pub struct Renderer<'c> {
    config: &'c Config,
    form: Form,
    cache_key: String,
    cache: Option<Prepared>,
    /// The bytes of the record being rendered (address range), from [`Renderer::begin_record`].
    record: Option<std::ops::Range<usize>>,
    /// Where in that record the cached metadata's text lies (address, length): the same
    /// slice of the same record again is the same text, without comparing its ~400 bytes per
    /// event (which showed in `perf`). Only slices inside the record count: a short-lived
    /// buffer (a rejoined line) may be freed and its address reused for other bytes.
    cache_at: Option<(usize, usize)>,
    /// Bumped whenever `cache` changes (what [`HeaderFields`] was written for).
    generation: u64,
    /// The `id` of the next [`Form::LogEvent`] of this record: how many were written.
    next_id: u64,
    header_fields: HeaderFields,
    /// A document's `@timestamp`, kept for the next event of the same second.
    timestamps: firetail_wire::time::Rfc3339MsWriter,
}

/// A version 2 header's `stream` and `file` as the members of an event that carries neither
/// (nearly all of them), written once per record rather than per event: renamed, escaped and
/// copied per event, they showed in `perf`.
#[derive(Debug, Default)]
struct HeaderFields {
    /// The `Renderer::generation` and the header's raw `stream` and `file` written.
    written_for: Option<(u64, Option<String>, Option<String>)>,
    /// `,"stream":…,"file":…` in the renderer's form, with the names the cached tags leave.
    members: Vec<u8>,
}

impl<'c> Renderer<'c> {
    /// A renderer of JSON objects.
    pub fn new(config: &'c Config) -> Self {
        Renderer::with_form(config, Form::Object)
    }

    /// A renderer writing each object in `form`.
    pub fn with_form(config: &'c Config, form: Form) -> Self {
        Renderer {
            config,
            form,
            cache_key: String::new(),
            cache: None,
            record: None,
            cache_at: None,
            generation: 0,
            next_id: 0,
            header_fields: HeaderFields::default(),
            timestamps: Default::default(),
        }
    }

    /// Starts the events of one record whose bytes are `record` (they stay borrowed, unchanged,
    /// until the next call).
    pub fn begin_record(&mut self, record: &[u8]) {
        let start = record.as_ptr() as usize;
        self.record = Some(start..start + record.len());
        self.cache_at = None;
        self.next_id = 0;
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
        if ctx.header.is_some()
            && let Some(fields) = plain_v2_event(text)
        {
            return self.render_object(fields, ctx, out);
        }
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
        // The next event's id; counted once it is written (below).
        let id = self.next_id;
        let Some(prepared) = self.cache.as_ref() else {
            return Rendered::Filtered;
        };
        let time_ms = ctx.default_time_ms;
        let mut w = ObjectWriter::start(out, self.form, id, time_ms);
        let message = Message::Text(Cow::Borrowed(message));
        write_message_and_time(
            &mut w,
            self.config.destination,
            &message,
            time_ms,
            &mut self.timestamps,
        );
        w.members(&prepared.head);
        if let Some(b64) = exact_base64 {
            w.key(MESSAGE_BASE64);
            w.string(b64);
        }
        write_cloudwatch(&mut w, ctx.cloudwatch);
        w.finish();
        self.next_id += 1;
        Rendered::Written { time_ms }
    }

    fn render_object<'a>(
        &mut self,
        fields: Vec<(Cow<'a, str>, Json<'a>)>,
        ctx: EventContext<'a>,
        out: &mut Vec<u8>,
    ) -> Rendered {
        let mut log_raw: Option<Json<'a>> = None;
        let mut log_json: Option<Json<'a>> = None;
        let mut log_base64: Option<Cow<'a, str>> = None;
        let mut part: Option<(PartMark, Option<wire::Cut>)> = None;
        let mut top_message: Option<Cow<'a, str>> = None;
        let mut time_ms: Option<i64> = None;
        let mut kube: Option<Json<'a>> = None;
        let mut rest: Vec<(Cow<'a, str>, Json<'a>)> = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            match key.as_ref() {
                wire::LOG if log_raw.is_none() && value.starts_with('"') => {
                    log_raw = Some(value);
                }
                // Version 2's line that is a JSON object: its text is this JSON text.
                wire::LOG_JSON
                    if log_json.is_none() && ctx.header.is_some() && value.starts_with('{') =>
                {
                    log_json = Some(value);
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
                    match value.parse::<i64>().ok().or_else(|| time_of(value)) {
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

        // Version 2's `stream` and `file` from the header, when the event has neither: written
        // from `self.header_fields` where the other path puts them first in `rest`.
        let mut from_header: Option<(Option<Json<'a>>, Option<Json<'a>>)> = None;
        if let Some(header) = ctx.header {
            // Version 2: what the event does not carry is the header's. `stream` and `file`
            // lead the copied fields, in the order version 1 writes them, so the same events
            // render the same in both versions.
            let (stream, file) = (
                header.stream.map(RawValue::get),
                header.file.map(RawValue::get),
            );
            if rest
                .iter()
                .all(|(k, _)| k != wire::STREAM && k != wire::FILE)
            {
                from_header = Some((stream, file));
            }
            let mut own = |name: &'static str, default: Option<Json<'a>>| {
                let i = rest.iter().position(|(k, _)| k == name);
                i.map(|i| rest.remove(i))
                    .or_else(|| default.map(|v| (Cow::Borrowed(name), v)))
            };
            if from_header.is_none() {
                let stream = own(wire::STREAM, stream);
                let file = own(wire::FILE, file);
                rest.splice(0..0, stream.into_iter().chain(file));
            }
            match kube {
                // `{}`: the event's pod has no metadata, where the header's has.
                Some("{}") => kube = None,
                Some(_) => {}
                None => kube = header.kubernetes.map(RawValue::get),
            }
        }

        if log_raw.is_some()
            && let Some(json) = log_json.take()
        {
            // Both: not what a sidecar writes; the string is the line, the object a field.
            rest.push((Cow::Borrowed(wire::LOG_JSON), json));
        }
        // The line is unescaped only if something reads its text: the drop filter, or the
        // merge of a line that may be a JSON object. Otherwise its JSON string is copied into
        // the output as it came (unescaping and escaping again every line showed in `perf`).
        // A line carried as JSON is its own text already.
        let (log, log_literal) = match log_raw {
            None if log_json.is_some() => (log_json.map(Cow::Borrowed), None),
            Some(raw) if self.config.drop_regex.is_none() && is_plain_literal(raw) => {
                (None, Some(raw))
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
        let mut merged: Vec<(Cow<'_, str>, Json<'_>)> = merged_source
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

        self.prepare(kube.unwrap_or(""));
        if let Some((stream, file)) = from_header {
            self.prepare_header_fields(stream, file);
        }
        // The next event's id; counted once it is written (below).
        let id = self.next_id;
        let Some(prepared) = self.cache.as_ref() else {
            return Rendered::Filtered;
        };
        let destination = self.config.destination;
        let mut w = ObjectWriter::start(out, self.form, id, time_ms);
        write_message_and_time(&mut w, destination, &message, time_ms, &mut self.timestamps);
        if destination == Destination::Datadog
            && let Some(level) = level
        {
            w.key(datadog::STATUS);
            w.string(&level.to_ascii_lowercase());
        }
        w.members(&prepared.head);
        if let Some(exact) = &log_base64 {
            w.key(MESSAGE_BASE64);
            w.string(exact);
        }
        if let Some((p, cut)) = part {
            write_part(&mut w, p, cut);
        }
        write_cloudwatch(&mut w, ctx.cloudwatch);
        if self.config.keep_kubernetes
            && let Some(k) = kube
        {
            w.key(wire::KUBERNETES);
            w.json(k);
        }
        if let Some(m) = &displaced {
            w.key("app.message");
            w.string(m);
        }
        // `part` belongs to the sidecar only when it marked this event as a piece.
        let rename =
            |key: &str| prepared.reserved.contains(key) || (part.is_some() && key == wire::PART);
        if from_header.is_some() {
            w.members(&self.header_fields.members);
        }
        for (key, value) in &rest {
            w.field(key, value, rename(key));
        }
        let in_header = |key: &str| match from_header {
            Some((stream, file)) => {
                (key == wire::STREAM && stream.is_some()) || (key == wire::FILE && file.is_some())
            }
            None => false,
        };
        for (key, value) in &merged {
            // Already at the top level when Fluent Bit merged the log before us (or, in
            // version 2, given by the header).
            if rest.iter().any(|(k, _)| k == key) || in_header(key) {
                continue;
            }
            w.field(key, value, rename(key));
        }
        w.finish();
        self.next_id += 1;
        Rendered::Written { time_ms }
    }

    fn filtered(&self, message: &str) -> bool {
        self.config
            .drop_regex
            .as_ref()
            .is_some_and(|re| re.is_match(message))
    }

    /// Makes `header_fields` hold the members of a header's `stream` and `file` (raw JSON),
    /// named as the cached tags leave them.
    fn prepare_header_fields(&mut self, stream: Option<Json<'_>>, file: Option<Json<'_>>) {
        let cached = &mut self.header_fields;
        if let Some((generation, s, f)) = &cached.written_for
            && *generation == self.generation
            && s.as_deref() == stream
            && f.as_deref() == file
        {
            return;
        }
        let Some(prepared) = self.cache.as_ref() else {
            return;
        };
        cached.members.clear();
        let mut w = ObjectWriter {
            out: &mut cached.members,
            form: self.form,
        };
        for (name, value) in [(wire::STREAM, stream), (wire::FILE, file)] {
            if let Some(value) = value {
                w.field(name, value, prepared.reserved.contains(name));
            }
        }
        cached.written_for = Some((
            self.generation,
            stream.map(str::to_owned),
            file.map(str::to_owned),
        ));
    }

    /// Makes the cache hold the tags of `kube_raw`.
    fn prepare(&mut self, kube_raw: &str) {
        let start = kube_raw.as_ptr() as usize;
        let at = (start, kube_raw.len());
        let in_record = self
            .record
            .as_ref()
            .is_some_and(|r| r.start <= start && start + kube_raw.len() <= r.end);
        if self.cache.is_some() && in_record && self.cache_at == Some(at) {
            return;
        }
        self.cache_at = in_record.then_some(at);
        if self.cache.is_some() && self.cache_key == kube_raw {
            return;
        }
        let meta = KubeMeta::parse(kube_raw);
        let tags = tags::derive(&meta, &self.config.tags);
        self.cache = Some(prepare_tags(tags, self.config.destination, self.form));
        self.generation += 1;
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

fn prepare_tags(tags: TagSet, destination: Destination, form: Form) -> Prepared {
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
    if form.escapes() {
        // Built from `&str` pieces, so always UTF-8; escaped once per pod, not per event.
        let mut escaped = Vec::with_capacity(head.len() + head.len() / 4);
        write_escaped(&mut escaped, &String::from_utf8_lossy(&head));
        head = escaped;
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
    fn write(&self, w: &mut ObjectWriter<'_>) {
        match self {
            Message::Text(text) => w.string(text),
            Message::Literal(literal) => w.json(literal),
        }
    }
}

/// Whether a JSON string literal can be copied as the message: its text cannot start a JSON
/// object (the merge reads it then; white space or an escape first could hide a `{`), and it
/// has no `\u` escape (which the text path would refuse when it is a lone surrogate).
fn is_plain_literal(raw: &str) -> bool {
    matches!(raw.as_bytes().get(1), Some(&b) if b.is_ascii_graphic() && b != b'{' && b != b'\\')
        && !has_u_escape(raw.as_bytes())
}

/// Whether a backslash is followed by `u` anywhere in `bytes` (conservatively: also after an
/// escaped backslash). A search for the backslash alone: most lines have none, and a
/// two-byte `memmem` search set up per event showed in `perf`.
fn has_u_escape(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'\\', bytes).any(|i| bytes.get(i + 1) == Some(&b'u'))
}

fn write_message_and_time(
    w: &mut ObjectWriter<'_>,
    destination: Destination,
    message: &Message<'_>,
    time_ms: i64,
    timestamps: &mut firetail_wire::time::Rfc3339MsWriter,
) {
    match destination {
        Destination::Datadog => datadog::write_message_and_time(w, message, time_ms),
        Destination::OpenSearch | Destination::S3 => {
            document::write_message_and_time(w, message, time_ms, timestamps);
        }
    }
}

/// `"part":{"index":N,"last":B}` (with `"cut":"…"` on a piece cut before its newline), in the
/// sidecar's own spelling.
fn write_part(w: &mut ObjectWriter<'_>, part: PartMark, cut: Option<wire::Cut>) {
    w.key(wire::PART);
    w.punct(b"{");
    w.string(wire::PART_INDEX);
    w.punct(b":");
    w.uint(u64::from(part.index));
    w.punct(b",");
    w.string(wire::PART_LAST);
    w.punct(if part.last { b":true" } else { b":false" });
    if let Some(cut) = cut {
        w.punct(b",");
        w.string(wire::PART_CUT);
        w.punct(b":");
        w.string(cut.as_str());
    }
    w.punct(b"}");
}

fn write_cloudwatch(w: &mut ObjectWriter<'_>, origin: Option<&CloudWatchOrigin>) {
    let Some(o) = origin else { return };
    w.key("aws");
    w.punct(b"{");
    w.string("awslogs");
    w.punct(b":{");
    w.string("owner");
    w.punct(b":");
    w.string(&o.owner);
    w.key("logGroup");
    w.string(&o.log_group);
    w.key("logStream");
    w.string(&o.log_stream);
    w.punct(b"}}");
}

/// Appends `{"firetail_transform":1,"k":v,...}` members to a buffer, in its [`Form`] (the
/// marker is always first, so every later member starts with a comma).
pub(crate) struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    form: Form,
}

impl<'o> ObjectWriter<'o> {
    /// `{"firetail_transform":1` — every object the transform writes starts with its marker
    /// (see `firetail_wire::output`); in [`Form::LogEvent`], the event `id` at `time_ms`
    /// around it.
    fn start(out: &'o mut Vec<u8>, form: Form, id: u64, time_ms: i64) -> Self {
        if form == Form::LogEvent {
            datadog::write_log_event_head(out, id, time_ms);
        }
        out.push(b'{');
        let mut w = ObjectWriter { out, form };
        match form {
            Form::Object => output::write_marker(w.out),
            Form::Escaped | Form::LogEvent => {
                w.name(output::MARKER_KEY);
                w.punct(b":");
                w.uint(u64::from(output::MARKER_VERSION));
            }
        }
        w
    }

    /// Starts a member named by us: separator, key, colon; the caller writes the value. Our
    /// names need no escaping (checked in debug builds), so neither form escapes them per
    /// event (which showed in `perf`).
    pub fn key(&mut self, key: &'static str) {
        self.out.push(b',');
        self.name(key);
        self.out.push(b':');
    }

    /// A name of ours as a JSON string in this writer's form, copied without escaping.
    fn name(&mut self, name: &'static str) {
        self.plain_string(name.as_bytes());
    }

    /// Starts a member named by the app (any text, escaped as its form needs).
    fn app_key(&mut self, key: &str) {
        self.out.push(b',');
        self.string(key);
        self.out.push(b':');
    }

    /// A JSON string of `s`.
    pub fn string(&mut self, s: &str) {
        match self.form {
            Form::Object => write_str(self.out, s),
            Form::Escaped | Form::LogEvent => {
                self.out.extend_from_slice(b"\\\"");
                write_escaped_twice(self.out, s);
                self.out.extend_from_slice(b"\\\"");
            }
        }
    }

    /// A JSON string of ASCII text that needs no escaping in either form (our names, a
    /// formatted timestamp), copied without the escaper's per-byte scan (checked in debug builds).
    pub fn plain_string(&mut self, text: &[u8]) {
        debug_assert!(
            text.iter()
                .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        let quote: &[u8] = if self.form.escapes() { b"\\\"" } else { b"\"" };
        self.out.extend_from_slice(quote);
        self.out.extend_from_slice(text);
        self.out.extend_from_slice(quote);
    }

    /// JSON text copied as it came (a value of the event, a string literal).
    pub fn json(&mut self, text: &str) {
        match self.form {
            Form::Object => self.out.extend_from_slice(text.as_bytes()),
            Form::Escaped | Form::LogEvent => write_escaped(self.out, text),
        }
    }

    /// Structure that reads the same in both forms: brackets, separators, `true`/`false`.
    pub fn punct(&mut self, text: &[u8]) {
        debug_assert!(!text.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20));
        self.out.extend_from_slice(text);
    }

    /// An integer (the same in both forms).
    pub fn int(&mut self, n: i64) {
        firetail_wire::json::write_int(self.out, n);
    }

    /// A count or index (the same in both forms).
    pub fn uint(&mut self, n: u64) {
        write_uint(self.out, n);
    }

    /// Pre-rendered members that start with a comma, already in this writer's form.
    fn members(&mut self, members: &[u8]) {
        self.out.extend_from_slice(members);
    }

    /// A copied app field, as `app.<key>` when `rename` (its name is taken).
    fn field(&mut self, key: &str, value: Json<'_>, rename: bool) {
        if rename {
            let renamed = format!("app.{key}");
            self.app_key(&renamed);
        } else {
            self.app_key(key);
        }
        self.json(value);
    }

    fn finish(self) {
        self.out.push(b'}');
        if self.form == Form::LogEvent {
            self.out.extend_from_slice(datadog::LOG_EVENT_TAIL);
        }
    }
}

fn string_of(raw: Json<'_>) -> Option<Cow<'_, str>> {
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
fn part_of(value: Json<'_>) -> Option<(PartMark, Option<wire::Cut>)> {
    if !value.starts_with('{') {
        return None;
    }
    let fields = serde_json::from_str::<Fields<'_>>(value).ok()?.0;
    if !(2..=3).contains(&fields.len()) {
        return None;
    }
    let mut index = None;
    let mut last = None;
    let mut cut = None;
    for (key, v) in fields {
        match key.as_ref() {
            wire::PART_INDEX => index = v.parse::<u32>().ok(),
            wire::PART_LAST => last = v.parse::<bool>().ok(),
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

fn time_of(raw: Json<'_>) -> Option<i64> {
    if raw.starts_with('"') {
        string_of(raw).and_then(|s| time::parse_rfc3339_ms(&s))
    } else {
        raw.parse::<f64>().ok().and_then(time::epoch_number_to_ms)
    }
}

fn find_string<'v>(fields: &'v [(Cow<'_, str>, Json<'v>)], key: &str) -> Option<Cow<'v, str>> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| string_of(v))
}

/// Removes and returns the first string-valued field named one of `keys`.
fn take_string<'a>(
    fields: &mut Vec<(Cow<'_, str>, Json<'a>)>,
    keys: &[&str],
) -> Option<Cow<'a, str>> {
    for key in keys {
        if let Some(i) = fields
            .iter()
            .position(|(k, v)| k == key && v.starts_with('"'))
        {
            let (_, value) = fields.remove(i);
            return string_of(value);
        }
    }
    None
}

/// The members of a version 2 event of the sidecar's usual shapes, `{"time":<ms>,"log":"…"}`
/// or `{"time":<ms>,"log_json":{…}}` exactly, read without serde's map reader (the largest
/// part of rendering such an event in `perf`); `None` for any other line, which serde reads.
/// It accepts only what serde reads the same way: an integer of at most 18 digits without
/// sign or leading zero, then a string literal with valid escapes, or an object that is valid
/// JSON (which serde checks: a line that the sidecar carries as JSON is merged, so parsed,
/// anyway).
fn plain_v2_event(text: &str) -> Option<Vec<(Cow<'_, str>, Json<'_>)>> {
    let rest = text.strip_prefix(r#"{"time":"#)?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=18).contains(&digits) || (digits > 1 && rest.starts_with('0')) {
        return None;
    }
    let (time, rest) = rest.split_at(digits);
    let time = (Cow::Borrowed(wire::TIME), time);
    if let Some(rest) = rest.strip_prefix(r#","log":"#) {
        let len = firetail_wire::json::string_literal_len(rest.as_bytes())?;
        let (log, rest) = rest.split_at(len);
        return (rest == "}").then(|| vec![time, (Cow::Borrowed(wire::LOG), log)]);
    }
    let object = rest.strip_prefix(r#","log_json":"#)?.strip_suffix('}')?;
    firetail_wire::json::is_one_object(object)
        .then(|| vec![time, (Cow::Borrowed(wire::LOG_JSON), object)])
}

/// The members of a JSON object in input order, values left as raw JSON text.
struct Fields<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

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
                    fields.push((key.0.unwrap_or(Cow::Borrowed("")), value.get()));
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
    use crate::tags::TagRules;
    use proptest::strategy::Strategy as _;

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

    /// Renders `line` in both forms with one configuration and context; the escaped form must
    /// be exactly the object form escaped once (what the envelope used to do after rendering).
    fn assert_forms_agree(line: &[u8], config: &Config, ctx: EventContext<'_>) {
        let (mut object, mut escaped) = (Vec::new(), Vec::new());
        let a = Renderer::with_form(config, Form::Object).render(line, ctx, &mut object);
        let b = Renderer::with_form(config, Form::Escaped).render(line, ctx, &mut escaped);
        assert_eq!(a, b, "{}", String::from_utf8_lossy(line));
        let mut expected = Vec::new();
        write_escaped(&mut expected, std::str::from_utf8(&object).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&escaped),
            String::from_utf8_lossy(&expected),
            "{}",
            String::from_utf8_lossy(line)
        );
        if let Rendered::Written { time_ms } = a {
            // And the object form is valid JSON: the escaped form is the string of valid JSON.
            serde_json::from_slice::<serde_json::Value>(&object).unwrap();
            // A log event is the escaped form inside its frame: the second of a record after
            // a comma, with its id and the event's time.
            let mut r = Renderer::with_form(config, Form::LogEvent);
            let (mut first, mut second) = (Vec::new(), Vec::new());
            assert_eq!(r.render(line, ctx, &mut first), a);
            assert_eq!(r.render(line, ctx, &mut second), a);
            for (id, framed) in [(0u64, first), (1, second)] {
                let mut expected = Vec::new();
                datadog::write_log_event_head(&mut expected, id, time_ms);
                write_escaped(&mut expected, std::str::from_utf8(&object).unwrap());
                expected.extend_from_slice(datadog::LOG_EVENT_TAIL);
                assert_eq!(
                    String::from_utf8_lossy(&framed),
                    String::from_utf8_lossy(&expected)
                );
            }
            // After `begin_record`, ids start again.
            r.begin_record(b"");
            let mut again = Vec::new();
            r.render(line, ctx, &mut again);
            assert!(again.starts_with(b"{\"id\":\"0\","));
        }
    }

    /// Each destination as configured by default, and with the original `kubernetes` kept and
    /// a drop filter that matches nothing (which makes the renderer read every line's text).
    fn configs(destinations: &[Destination]) -> Vec<Config> {
        let mut configs = Vec::new();
        for &destination in destinations {
            for (keep_kubernetes, drop) in [(false, None), (true, Some("^never$"))] {
                configs.push(Config {
                    destination,
                    keep_kubernetes,
                    drop_regex: drop.map(|d| regex::Regex::new(d).unwrap()),
                    ..Config::default()
                });
            }
        }
        configs
    }

    /// Lines that take every path of the renderer: copied literals and read text, merged
    /// logs, displaced messages, levels, pieces, bytes that are not UTF-8, app fields with
    /// reserved names, escapes and control bytes in keys and values, v1 and v2 shapes.
    fn path_lines() -> Vec<Vec<u8>> {
        let kube = r#""kubernetes":{"namespace_name":"sh\"op","pod_name":"a\\b","container_name":"app\u0001","labels":{"app":"x\ny"}}"#;
        let mut lines: Vec<Vec<u8>> = [
            format!(r#"{{"time":"2026-12-02T10:00:00.123Z","stream":"stdout","log":"GET /a?q=\"x\" \\ tab\tend","file":"/var/log/app/a \"b\".log",{kube}}}"#),
            format!(r#"{{"time":1795341600123,"log":"{{\"message\":\"merged \\\"q\\\"\",\"level\":\"WARN\",\"user\":\"u\\u0002\"}}",{kube}}}"#),
            format!(r#"{{"log":"plain","message":"top \"level\"","status":"kept as app","ddtags":"x:y",{kube}}}"#),
            format!(r#"{{"log":"piece","part":{{"index":2,"last":false,"cut":"drain"}},{kube}}}"#),
            format!(r#"{{"log":"not a piece","part":{{"index":"x"}},{kube}}}"#),
            format!(r#"{{"log_base64":"/w==","log":"\ufffd","stream":"stderr",{kube}}}"#),
            format!(r#"{{"time":"2026-12-02T10:00:00Z","log":"x\u0001y \ud83c\udf89",{kube}}}"#),
            format!(r#"{{"lo\"g":"odd key","n":[1,{{"a":"\\"}}],"b":true,"z":null,{kube}}}"#),
            r#"{"time":1795341600123,"log":"GET /a \"x\" \\ \/ \u00e9 end"}"#.to_owned(),
            r#"{"time":1795341600124,"log":"{\"message\":\"merged\",\"level\":\"error\"}"}"#.to_owned(),
            r#"{"time":1795341600125,"log_json":{"message":"merged \"q\"","level":"WARN","user":"u\u0002","n":{"a":[1]}}}"#.to_owned(),
            r#"{"time":1795341600126,"log_json":{"no":"message"},"file":"/var/log/app/b.log"}"#.to_owned(),
            r#"{"time":1795341600127,"log":"the string","log_json":{"message":"an app field"}}"#.to_owned(),
            r#"{"time":1795341600128,"log_json":{"unclosed":1}"#.to_owned(),
            r#"{"message":"no metadata","level":"debug"}"#.to_owned(),
            r#"{"time":"x","kubernetes":{}}"#.to_owned(),
            "a plain \"text\" line \\ with\ttab".to_owned(),
            "{ not json \"at all\"".to_owned(),
            String::new(),
        ]
        .into_iter()
        .map(String::into_bytes)
        .collect();
        lines.push(b"bytes \xff\xfe that are \"not\" UTF-8".to_vec());
        lines
    }

    #[test]
    fn the_escaped_form_is_the_object_escaped_on_every_path() {
        let header_json = r#"{"v":2,"stream":"stdout","file":"/var/log/app/\"h\".log","kubernetes":{"namespace_name":"ns","pod_name":"p\\q","container_name":"c"}}"#;
        let header: RecordHeader<'_> = serde_json::from_str(header_json).unwrap();
        let origin = CloudWatchOrigin {
            owner: "123456789012".into(),
            log_group: "/aws/\"eks\"".into(),
            log_stream: "s\\t".into(),
        };
        let contexts = [
            EventContext {
                default_time_ms: 7,
                cloudwatch: None,
                header: None,
            },
            EventContext {
                default_time_ms: 7,
                cloudwatch: None,
                header: Some(&header),
            },
            EventContext {
                default_time_ms: 7,
                cloudwatch: Some(&origin),
                header: None,
            },
        ];
        for config in configs(&[Destination::Datadog, Destination::S3]) {
            for line in path_lines() {
                for ctx in contexts {
                    assert_forms_agree(&line, &config, ctx);
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_escaped_form_is_the_object_escaped_for_any_text(
            log in proptest::prelude::any::<String>(),
            key in proptest::prelude::any::<String>(),
            value in proptest::prelude::any::<String>(),
            pod in proptest::prelude::any::<String>(),
        ) {
            let s = |t: &str| serde_json::to_string(t).unwrap();
            let line = format!(
                r#"{{"log":{},{}:{},"kubernetes":{{"namespace_name":"ns","pod_name":{}}}}}"#,
                s(&log), s(&key), s(&value), s(&pod)
            );
            let config = Config::default();
            let ctx = EventContext { default_time_ms: 7, cloudwatch: None, header: None };
            assert_forms_agree(line.as_bytes(), &config, ctx);
            assert_forms_agree(log.as_bytes(), &config, ctx);
        }
    }

    /// serde's reading of `line`'s members, for comparison with [`plain_v2_event`]'s.
    fn serde_fields(line: &str) -> Option<Vec<(String, String)>> {
        let fields = serde_json::from_str::<Fields<'_>>(line).ok()?.0;
        Some(
            fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.to_owned()))
                .collect(),
        )
    }

    fn plain_fields(line: &str) -> Option<Vec<(String, String)>> {
        let fields = plain_v2_event(line)?;
        Some(
            fields
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.to_owned()))
                .collect(),
        )
    }

    #[test]
    fn the_usual_v2_event_is_read_as_serde_reads_it() {
        for line in [
            r#"{"time":1795341600123,"log":"GET /a \"x\" \\ \/ \t \u00e9 \ud83c\udf89"}"#,
            r#"{"time":0,"log":""}"#,
            r#"{"time":7,"log":"\ud800 lone"}"#,
            r#"{"time":8,"log_json":{"a":"\"}","b":[{}],"c":"\ud800"}}"#,
            r#"{"time":9,"log_json":{}}"#,
        ] {
            assert_eq!(plain_fields(line), serde_fields(line), "{line}");
            assert!(plain_fields(line).is_some(), "{line}");
        }
        // Anything else is serde's: other shapes, and what serde reads differently or not at
        // all (a leading zero, a sign, a bad escape, a raw control byte, trailing text).
        for line in [
            r#"{"time":1,"log":"x","file":"f"}"#,
            r#"{"log":"x","time":1}"#,
            r#"{"time":01,"log":"x"}"#,
            r#"{"time":-1,"log":"x"}"#,
            r#"{"time":1.5,"log":"x"}"#,
            r#"{"time":12345678901234567890,"log":"x"}"#,
            r#"{"time":1,"log":"\x"}"#,
            r#"{"time":1,"log":"\u12"}"#,
            "{\"time\":1,\"log\":\"a\u{1}b\"}",
            r#"{"time":1,"log":"x"} "#,
            r#"{"time":1,"log":"x"}}"#,
            r#"{"time":1,"log":"x"#,
            r#"{"time":1, "log":"x"}"#,
            r#"{"time":1,"log_json":{"a":1}"#,
            r#"{"time":1,"log_json":{"a":1,}}"#,
            r#"{"time":1,"log_json":{"a":1}}}"#,
            r#"{"time":1,"log_json":{"a":1} }"#,
            r#"{"time":1,"log_json":{"a":1},"file":"f"}"#,
            r#"{"time":1,"log_json":["a"]}"#,
        ] {
            assert_eq!(plain_fields(line), None, "{line}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_line_the_v2_reader_takes_renders_as_serde_would_have_it(
            time in 0u64..10_000_000_000_000,
            log in proptest::prelude::any::<String>(),
        ) {
            let line = format!(r#"{{"time":{time},"log":{}}}"#, serde_json::to_string(&log).unwrap());
            proptest::prop_assert!(plain_fields(&line).is_some());
            proptest::prop_assert_eq!(plain_fields(&line), serde_fields(&line));
        }
    }

    /// The version 2 event the sidecar writes for `line` (its own encoder: `log_json` for a
    /// JSON object), and the same event with the line as a `log` string.
    fn v2_both_ways(line: &str) -> (Vec<u8>, Vec<u8>) {
        use std::time::{Duration, UNIX_EPOCH};
        let header = firetail_wire::v2::Header {
            stream: "stdout",
            file: "/var/log/app/a.log",
            kubernetes: br#"{"namespace_name":"ns","pod_name":"p","container_name":"c"}"#,
        };
        let ev = firetail_wire::event::EventRef {
            line: line.as_bytes(),
            time: UNIX_EPOCH + Duration::from_millis(1_795_341_600_123),
            file: header.file,
            part: None,
        };
        let mut sidecar = Vec::new();
        firetail_wire::v2::encode(&ev, &header, &header, &mut sidecar);
        let string = format!(
            r#"{{"time":1795341600123,"log":{}}}"#,
            serde_json::to_string(line).unwrap()
        );
        (sidecar, string.into_bytes())
    }

    /// Renders both events of [`v2_both_ways`] with every configuration and form; the outputs
    /// must be the same bytes.
    fn assert_json_line_renders_as_its_string(line: &str) {
        let header_json = r#"{"firetail_format":2,"stream":"stdout","file":"/var/log/app/a.log","kubernetes":{"namespace_name":"ns","pod_name":"p","container_name":"c"}}"#;
        let header: RecordHeader<'_> = serde_json::from_str(header_json).unwrap();
        let ctx = EventContext {
            default_time_ms: 7,
            cloudwatch: None,
            header: Some(&header),
        };
        let (as_json, as_string) = v2_both_ways(line);
        let all = [
            Destination::Datadog,
            Destination::S3,
            Destination::OpenSearch,
        ];
        for config in configs(&all) {
            for form in [Form::Object, Form::Escaped] {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                let ra = Renderer::with_form(&config, form).render(&as_json, ctx, &mut a);
                let rb = Renderer::with_form(&config, form).render(&as_string, ctx, &mut b);
                assert_eq!(ra, rb, "{line}");
                assert_eq!(String::from_utf8_lossy(&a), String::from_utf8_lossy(&b));
            }
        }
    }

    /// A version 2 event without `stream` and `file` (written from the renderer's per-record
    /// copy of the header's) renders as the same event carrying the header's values itself
    /// (the general path), across headers, pods, tags that take the names, and forms; the
    /// same renderer goes on from record to record, as in a plan.
    #[test]
    fn header_stream_and_file_render_as_if_the_event_carried_them() {
        let pod = r#"{"namespace_name":"ns","pod_name":"p","container_name":"c"}"#;
        let headers = [
            format!(
                r#"{{"firetail_format":2,"stream":"stdout","file":"/var/log/app/a.log","kubernetes":{pod}}}"#
            ),
            format!(
                r#"{{"firetail_format":2,"stream":"stderr","file":"/var/log/app/\"b\".log","kubernetes":{pod}}}"#
            ),
            format!(r#"{{"firetail_format":2,"stream":"stdout","kubernetes":{pod}}}"#),
            r#"{"firetail_format":2,"file":"/var/log/app/a.log"}"#.to_owned(),
        ];
        let events = [
            r#"{"time":1795341600123,"log":"GET /a \"x\" 200"}"#,
            r#"{"time":1795341600124,"log_json":{"message":"m","level":"WARN","stream":"app's","file":"app's"}}"#,
            r#"{"time":1795341600125,"log":"{\"msg\":\"merged\",\"file\":7}"}"#,
            r#"{"time":1795341600126,"log":"other pod","kubernetes":{"namespace_name":"o","pod_name":"q","container_name":"d"}}"#,
            r#"{"time":1795341600127,"log":"no pod","kubernetes":{}}"#,
            r#"{"time":1795341600128,"log":"piece","part":{"index":0,"last":false,"cut":"drain"}}"#,
            r#"{"time":1795341600129,"log":"after","extra":[1,{"a":"\\"}]}"#,
        ];
        let rules = [
            TagRules::default(),
            TagRules {
                extra_tags: vec![("stream".into(), "s".into()), ("file".into(), "f".into())],
                ..TagRules::default()
            },
        ];
        let all = [
            Destination::Datadog,
            Destination::S3,
            Destination::OpenSearch,
        ];
        for tags in &rules {
            for mut config in configs(&all) {
                config.tags = tags.clone();
                for form in [Form::Object, Form::Escaped, Form::LogEvent] {
                    let mut fast = Renderer::with_form(&config, form);
                    let mut general = Renderer::with_form(&config, form);
                    for header_json in &headers {
                        // One record: its header and events in one buffer, as a plan sees it.
                        let record = format!("{header_json}\n{}", events.join("\n"));
                        let header_line = &record[..header_json.len()];
                        let header: RecordHeader<'_> = serde_json::from_str(header_line).unwrap();
                        let carried: String =
                            [(wire::STREAM, header.stream), (wire::FILE, header.file)]
                                .iter()
                                .filter_map(|(k, v)| v.map(|v| format!(r#""{k}":{},"#, v.get())))
                                .collect();
                        let ctx = EventContext {
                            default_time_ms: 7,
                            cloudwatch: None,
                            header: Some(&header),
                        };
                        fast.begin_record(record.as_bytes());
                        general.begin_record(b"");
                        for line in record[header_json.len() + 1..].split('\n') {
                            let explicit = format!("{{{carried}{}", &line[1..]);
                            let (mut a, mut b) = (Vec::new(), Vec::new());
                            let ra = fast.render(line.as_bytes(), ctx, &mut a);
                            let rb = general.render(explicit.as_bytes(), ctx, &mut b);
                            assert_eq!(ra, rb, "{line}");
                            assert_eq!(
                                String::from_utf8_lossy(&a),
                                String::from_utf8_lossy(&b),
                                "{header_json} {line} {form:?} {:?}",
                                config.destination
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_json_line_renders_the_same_carried_as_json_or_as_a_string() {
        for line in [
            r#"{"message":"paid","level":"INFO","order":1234,"ok":true,"tags":["a","b"]}"#,
            r#"{"msg":"m \"q\" \\ \/ \u00e9 \ud800","severity":"warn","nested":{"a":{"b":null}}}"#,
            r#"{"level":"error","message":7,"status":"app's","ddtags":"x:y","kubernetes":{"a":1}}"#,
            r#"{"time":"2026-12-02T10:00:00Z","log":"an app's log key","part":{"index":0,"last":true}}"#,
            r#"{"firetail_transform":9,"message_base64":"x","aws":1,"":""}"#,
            r#"{"a":1,"a":2}"#,
            r#"{}"#,
            "{\"日本\":\"🎉\",\"k\":-1.5e3}",
        ] {
            let (as_json, _) = v2_both_ways(line);
            assert!(
                std::str::from_utf8(&as_json)
                    .unwrap()
                    .contains(r#""log_json":{"#),
                "{line}"
            );
            assert_json_line_renders_as_its_string(line);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_json_line_renders_the_same_carried_as_json_or_as_a_string(
            fields in proptest::collection::vec(
                (
                    proptest::prop_oneof![
                        proptest::prelude::Just("message".to_owned()),
                        proptest::prelude::Just("level".to_owned()),
                        proptest::prelude::Just("hostname".to_owned()),
                        proptest::prelude::any::<String>(),
                    ],
                    proptest::prop_oneof![
                        proptest::prelude::any::<String>().prop_map(serde_json::Value::from),
                        proptest::prelude::any::<i64>().prop_map(serde_json::Value::from),
                        proptest::prelude::any::<String>()
                            .prop_map(|s| serde_json::json!({ "inner": s, "list": [s] })),
                    ],
                ),
                0..6,
            ),
        ) {
            let mut line = String::from("{");
            for (i, (key, value)) in fields.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                line.push_str(&serde_json::to_string(key).unwrap());
                line.push(':');
                line.push_str(&value.to_string());
            }
            line.push('}');
            assert_json_line_renders_as_its_string(&line);
        }
    }

    #[test]
    fn which_literals_are_copied() {
        assert!(is_plain_literal(r#""GET / \"x\"""#));
        assert!(is_plain_literal(r#""""#));
        assert!(is_plain_literal(r#""a \\ b \" \/ \n u""#));
        for read in [
            r#""{\"a\":1}""#,
            r#"" {""#,
            r#""\n{""#,
            r#""\u007b""#,
            r#""a\u0001""#,
            // An escaped backslash then `u`: read too (the search does not pair backslashes).
            r#""a\\u0041""#,
            r#""x \" y \u00e9""#,
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
        assert_eq!(part_of(r#"{"index":3,"last":true}"#), Some((mark, None)));
        assert_eq!(
            part_of(r#"{"index":3,"last":true,"cut":"drain"}"#),
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
            assert_eq!(part_of(other), None, "{other}");
        }
    }
}
