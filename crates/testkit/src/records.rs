//! Records back into JSON events, for tests and tools: the one reader of what the sidecar and
//! the transform write, built on `firetail_wire` (the same inflater and line splitter the
//! transform uses).

use firetail_wire::Destination;
use firetail_wire::codec::maybe_decompress;
use firetail_wire::event::{LOG, LOG_JSON};
use serde_json::Value;

/// Inflated bytes are capped here: far above any real record, low enough that a broken test
/// fails instead of exhausting memory.
const MAX_INFLATED_BYTES: usize = 1 << 30;

/// `bytes` decompressed if they are gzip or zstd (every member or frame), else as they are.
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    maybe_decompress(bytes, MAX_INFLATED_BYTES)
        .map(|(b, _)| b.into_owned())
        .map_err(|e| e.to_string())
}

/// The events of one sidecar record (any record format), or of several records concatenated
/// (a moto S3 object), in version 1's shape: a version 2 event gets the header's `stream`,
/// `file` and `kubernetes` where it has none of its own, its millisecond `time` as RFC 3339
/// text, and a line carried as `log_json` as the `log` string of its exact bytes, so tests
/// compare both versions with one reader. The header is not an event.
pub fn decode_events(record: &[u8]) -> Result<Vec<Value>, String> {
    let text = inflate(record)?;
    let mut header: Option<Value> = None;
    let mut out = Vec::new();
    for line in firetail_wire::format::lines(&text) {
        if line.starts_with(firetail_wire::v2::HEADER_PREFIX) {
            // A concatenation of records (an S3 object) has one header per record.
            header = Some(parse(line)?);
            continue;
        }
        let mut event = parse(line)?;
        if let (Some(h), Some(map)) = (&header, event.as_object_mut()) {
            for key in ["stream", "file", "kubernetes"] {
                if let Some(v) = h.get(key).filter(|_| !map.contains_key(key)) {
                    map.insert(key.to_owned(), v.clone());
                }
            }
            if map
                .get("kubernetes")
                .is_some_and(|k| k.as_object().is_some_and(|o| o.is_empty()))
            {
                map.remove("kubernetes");
            }
            if let Some(ms) = map.get("time").and_then(Value::as_i64) {
                let text = firetail_wire::time::format_rfc3339_ms(ms);
                map.insert("time".to_owned(), Value::from(text));
            }
            // A line carried as JSON is the `log` string it stands for: its own bytes.
            if !map.contains_key(LOG)
                && map.contains_key(LOG_JSON)
                && let Some(text) = log_json_text(line)
            {
                map.remove(LOG_JSON);
                map.insert(LOG.to_owned(), Value::from(text));
            }
        }
        out.push(event);
    }
    Ok(out)
}

/// The events in one `Ok` output record of the transform for `destination`, checking the
/// shape every destination is promised:
/// - datadog: a gzip CloudWatch Logs envelope whose `logEvents[].message` are log objects;
/// - opensearch: one document;
/// - s3: newline-delimited objects, gzip or not;
///
/// and every object (envelope, log, document, line) starts with the transform's marker.
pub fn destination_events(destination: Destination, data: &[u8]) -> Result<Vec<Value>, String> {
    match destination {
        Destination::Datadog => {
            if !firetail_wire::gzip::is_gzip(data) {
                return Err("a Datadog record that is not a gzip envelope".into());
            }
            let text = inflate(data)?;
            let envelope = parse(marked(&text)?)?;
            envelope["logEvents"]
                .as_array()
                .ok_or("gzip record without logEvents")?
                .iter()
                .map(|e| {
                    parse(marked(
                        e["message"].as_str().unwrap_or_default().as_bytes(),
                    )?)
                })
                .collect()
        }
        Destination::OpenSearch => Ok(vec![parse(marked(data)?)?]),
        Destination::S3 => firetail_wire::format::lines(&inflate(data)?)
            .map(|line| parse(marked(line)?))
            .collect(),
    }
}

/// `object` when it starts with the transform's marker.
fn marked(object: &[u8]) -> Result<&[u8], String> {
    firetail_wire::output::marker_version(object)
        .map(|_| object)
        .ok_or_else(|| {
            let start = &object[..object.len().min(80)];
            format!("no transform marker: {}", String::from_utf8_lossy(start))
        })
}

/// The exact text of a version 2 event's `log_json` (a parsed `Value` would not keep it).
fn log_json_text(line: &[u8]) -> Option<String> {
    let raw: std::collections::HashMap<String, &serde_json::value::RawValue> =
        serde_json::from_slice(line).ok()?;
    raw.get(LOG_JSON).map(|v| v.get().to_owned())
}

fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(bytes)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_gzip_and_concatenated_records() {
        let one = b"{\"log\":\"a\"}\n{\"log\":\"b\"}\n";
        let gz = firetail_wire::gzip::gzip(one, flate2::Compression::fast());
        let mut both = gz.clone();
        both.extend(firetail_wire::gzip::gzip(
            b"{\"log\":\"c\"}",
            flate2::Compression::fast(),
        ));
        assert_eq!(decode_events(one).unwrap().len(), 2);
        assert_eq!(decode_events(&gz).unwrap().len(), 2);
        assert_eq!(decode_events(&both).unwrap()[2]["log"], "c");
        assert!(decode_events(b"not json\n").is_err());
        let v2 = b"{\"firetail_format\":2,\"stream\":\"file\",\"file\":\"/a\",\"kubernetes\":{\"pod_name\":\"p\"}}\n{\"time\":1000,\"log\":\"x\"}\n{\"time\":2000,\"log\":\"y\",\"file\":\"/b\",\"kubernetes\":{}}\n";
        let mut zstd = Vec::new();
        firetail_wire::codec::Zstder::new(3).zstd_into(v2, &mut zstd);
        let events = decode_events(&zstd).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0]["file"], "/a");
        assert_eq!(events[0]["kubernetes"]["pod_name"], "p");
        assert_eq!(events[0]["time"], "1970-01-01T00:00:01.000Z");
        assert_eq!(events[1]["file"], "/b");
        assert!(events[1].get("kubernetes").is_none());

        // A line carried as JSON reads back as the string of its exact bytes.
        let line = r#"{"seq": 1,"msg":"a \"q\"","n":1.50}"#;
        let v2 = format!(
            "{{\"firetail_format\":2,\"stream\":\"file\",\"file\":\"/a\"}}\n{{\"time\":1,\"log_json\":{line}}}\n"
        );
        let events = decode_events(v2.as_bytes()).unwrap();
        assert_eq!(events[0]["log"], line);
        assert!(events[0].get("log_json").is_none());
    }
    #[test]
    fn datadog_envelopes_and_s3_lines_decode() {
        use std::io::Write as _;
        let gzip = |text: &str| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap()
        };
        let env = r#"{"firetail_transform":1,"logEvents":[
            {"message":"{\"firetail_transform\":1,\"message\":\"seq=1\"}"},
            {"message":"{\"firetail_transform\":1,\"message\":\"seq=2\"}"}]}"#;
        let events = destination_events(Destination::Datadog, &gzip(env)).unwrap();
        assert_eq!(events.len(), 2);
        let unmarked = env.replacen(r#"{"firetail_transform":1,"#, "{", 1);
        assert!(destination_events(Destination::Datadog, &gzip(&unmarked)).is_err());
        let plain = br#"{"firetail_transform":1,"message":"x"}"#;
        assert!(destination_events(Destination::Datadog, plain).is_err());
        let s3 = destination_events(
            Destination::S3,
            b"{\"firetail_transform\":1,\"message\":\"a\"}\n{\"firetail_transform\":1,\"message\":\"b\"}\n",
        )
        .unwrap();
        assert_eq!(crate::route::message_of(&s3[1]), "b");
        assert!(destination_events(Destination::S3, b"{\"message\":\"a\"}\n").is_err());
    }
}
