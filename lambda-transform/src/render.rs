//! One event in, one destination-shaped JSON object out.
//!
//! Events are parsed one level deep: known keys (`log`, `message`, `time`, `kubernetes`) are
//! interpreted, every other value is copied through as raw JSON text without being rebuilt.
//! `log` holding a JSON object is merged like Fluent Bit's `Merge_Log`, and nothing an app logs
//! can overwrite the tags: a colliding key is kept under `app.<key>`.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use base64::Engine as _;
use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::config::{Config, Destination};
use crate::kube::{KubeMeta, Text};
use crate::tags::{self, TagSet};
use crate::time;

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
    pub fn render(&mut self, bytes: &[u8], ctx: EventContext<'_>, out: &mut Vec<u8>) -> Rendered {
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
        let mut w = ObjectWriter::start(out);
        write_message_and_time(&mut w, self.config.destination, message, time_ms);
        w.raw(&prepared.head);
        if let Some(b64) = exact_base64 {
            w.key("message_base64");
            write_json_str(w.out, b64);
        }
        write_cloudwatch(&mut w, ctx.cloudwatch);
        w.finish();
        Rendered::Written { time_ms }
    }

    fn render_object<'a>(
        &mut self,
        fields: Vec<(Cow<'a, str>, &'a RawValue)>,
        ctx: EventContext<'_>,
        out: &mut Vec<u8>,
    ) -> Rendered {
        let mut log: Option<Cow<'a, str>> = None;
        let mut top_message: Option<Cow<'a, str>> = None;
        let mut time_ms: Option<i64> = None;
        let mut kube: Option<&'a RawValue> = None;
        let mut rest: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            match key.as_ref() {
                "log" if log.is_none() => match string_of(value) {
                    Some(s) => log = Some(s),
                    None => rest.push((key, value)),
                },
                "message" if top_message.is_none() => match string_of(value) {
                    Some(s) => top_message = Some(s),
                    None => rest.push((key, value)),
                },
                "kubernetes" if kube.is_none() => kube = Some(value),
                "time" | "@timestamp" | "timestamp" | "date" if time_ms.is_none() => {
                    match time_of(value) {
                        Some(ms) => time_ms = Some(ms),
                        None => rest.push((key, value)),
                    }
                }
                _ => rest.push((key, value)),
            }
        }

        // Merge_Log: a JSON object in `log` contributes its fields.
        let merged_source = log.as_deref().filter(|s| s.trim_start().starts_with('{'));
        let mut merged: Vec<(Cow<'_, str>, &RawValue)> = merged_source
            .and_then(|s| serde_json::from_str::<Fields<'_>>(s).ok())
            .map(|f| f.0)
            .unwrap_or_default();

        // The message: the app's own message field, else the line, else a top-level message.
        // A top-level `message` that loses to another source is kept as `app.message`.
        let mut displaced: Option<Cow<'_, str>> = None;
        let message: Cow<'_, str> = if let Some(m) = take_string(&mut merged, &["message", "msg"]) {
            displaced = top_message.take();
            m
        } else if let Some(l) = log.as_deref() {
            displaced = top_message.take();
            Cow::Borrowed(l)
        } else if let Some(t) = top_message.take() {
            t
        } else {
            take_string(&mut rest, &["msg"]).unwrap_or(Cow::Borrowed(""))
        };
        if self.filtered(&message) {
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
        let mut w = ObjectWriter::start(out);
        write_message_and_time(&mut w, destination, &message, time_ms);
        if destination == Destination::Datadog
            && let Some(level) = level
        {
            w.key("status");
            write_json_str(w.out, &level.to_ascii_lowercase());
        }
        w.raw(&prepared.head);
        write_cloudwatch(&mut w, ctx.cloudwatch);
        if self.config.keep_kubernetes
            && let Some(k) = kube
        {
            w.key("kubernetes");
            w.out.extend_from_slice(k.get().as_bytes());
        }
        if let Some(m) = &displaced {
            w.key("app.message");
            write_json_str(w.out, m);
        }
        for (key, value) in &rest {
            w.field(key, value, &prepared.reserved);
        }
        for (key, value) in &merged {
            // Already at the top level when Fluent Bit merged the log before us.
            if rest.iter().any(|(k, _)| k == key) {
                continue;
            }
            w.field(key, value, &prepared.reserved);
        }
        w.finish();
        Rendered::Written { time_ms }
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
        let tags = tags::derive(&meta, self.config);
        self.cache = Some(prepare_tags(tags, self.config.destination));
        self.cache_key.clear();
        self.cache_key.push_str(kube_raw);
    }
}

fn prepare_tags(tags: TagSet, destination: Destination) -> Prepared {
    let mut reserved: HashSet<String> = ["message", "message_base64", "aws", "kubernetes"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut head = Vec::with_capacity(256);
    let field = |head: &mut Vec<u8>, key: &str, value: &str| {
        head.push(b',');
        write_json_str(head, key);
        head.push(b':');
        write_json_str(head, value);
    };
    match destination {
        Destination::Datadog => {
            reserved.extend(
                [
                    "timestamp",
                    "status",
                    "hostname",
                    "service",
                    "ddsource",
                    "ddtags",
                ]
                .into_iter()
                .map(str::to_owned),
            );
            for (key, value) in [
                ("hostname", tags.hostname.as_deref()),
                ("service", tags.service.as_deref()),
                ("ddsource", tags.ddsource.as_deref()),
            ] {
                if let Some(v) = value {
                    field(&mut head, key, v);
                }
            }
            if !tags.pairs.is_empty() {
                field(&mut head, "ddtags", &tags.ddtags());
            }
        }
        Destination::OpenSearch | Destination::S3 => {
            reserved.extend(["@timestamp", "hostname"].into_iter().map(str::to_owned));
            if let Some(h) = tags.hostname.as_deref() {
                field(&mut head, "hostname", h);
            }
        }
    }
    for (key, value) in &tags.pairs {
        if reserved.insert(key.clone()) {
            field(&mut head, key, value);
        }
    }
    Prepared {
        tags,
        head,
        reserved,
    }
}

fn write_message_and_time(
    w: &mut ObjectWriter<'_>,
    destination: Destination,
    message: &str,
    time_ms: i64,
) {
    match destination {
        Destination::Datadog => {
            w.key("message");
            write_json_str(w.out, message);
            w.key("timestamp");
            w.out.extend_from_slice(time_ms.to_string().as_bytes());
        }
        Destination::OpenSearch | Destination::S3 => {
            w.key("@timestamp");
            write_json_str(w.out, &time::format_rfc3339_ms(time_ms));
            w.key("message");
            write_json_str(w.out, message);
        }
    }
}

fn write_cloudwatch(w: &mut ObjectWriter<'_>, origin: Option<&CloudWatchOrigin>) {
    let Some(o) = origin else { return };
    w.key("aws");
    w.out.extend_from_slice(b"{\"awslogs\":{\"owner\":");
    write_json_str(w.out, &o.owner);
    w.out.extend_from_slice(b",\"logGroup\":");
    write_json_str(w.out, &o.log_group);
    w.out.extend_from_slice(b",\"logStream\":");
    write_json_str(w.out, &o.log_stream);
    w.out.extend_from_slice(b"}}");
}

/// Appends `{"k":v,...}` members to a buffer, tracking the separator.
struct ObjectWriter<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl<'o> ObjectWriter<'o> {
    fn start(out: &'o mut Vec<u8>) -> Self {
        out.push(b'{');
        ObjectWriter { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_json_str(self.out, key);
        self.out.push(b':');
    }

    /// Pre-rendered members that start with a comma.
    fn raw(&mut self, members: &[u8]) {
        if members.is_empty() {
            return;
        }
        if self.empty {
            self.out.extend_from_slice(&members[1..]);
        } else {
            self.out.extend_from_slice(members);
        }
        self.empty = false;
    }

    fn field(&mut self, key: &str, value: &RawValue, reserved: &HashSet<String>) {
        if reserved.contains(key) {
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

/// Writes `s` as a JSON string.
pub fn write_json_str(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Most text needs no escaping: step over it a word at a time.
        if let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            && !needs_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let b = bytes[i];
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Whether any byte of `word` is `"`, `\` or a control character — the bytes JSON strings
/// must escape. Each test is the classic "has a byte below n" bit trick, exact for n ≤ 128.
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS;
    (below(word ^ (ONES * u64::from(b'"')), 1)
        | below(word ^ (ONES * u64::from(b'\\')), 1)
        | below(word, 0x20))
        != 0
}

fn string_of(value: &RawValue) -> Option<Cow<'_, str>> {
    if !value.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'_>>(value.get())
        .ok()
        .and_then(|t| t.0)
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
    use proptest::prelude::*;

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        write_json_str(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_every_special_byte_at_every_offset() {
        let specials: Vec<char> = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', 'é', '€', '\u{7f}'])
            .collect();
        for pad in 0..17 {
            for &c in &specials {
                let s = format!("{}{c}{}", "a".repeat(pad), "b".repeat(9));
                let out = escaped(&s);
                assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
            }
        }
        assert_eq!(escaped("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\u0001""#);
    }

    proptest! {
        #[test]
        fn round_trips_through_serde(s in any::<String>()) {
            let out = escaped(&s);
            prop_assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s);
        }
    }
}
