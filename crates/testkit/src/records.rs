//! Records back into JSON events, for tests and tools: the one reader of what the sidecar and
//! the transform write, built on `firetail_wire` (the same inflater and line splitter the
//! transform uses).

use firetail_wire::Destination;
use firetail_wire::gzip::maybe_gunzip;
use serde_json::Value;

/// Inflated bytes are capped here: far above any real record, low enough that a broken test
/// fails instead of exhausting memory.
const MAX_INFLATED_BYTES: usize = 1 << 30;

/// `bytes` inflated if they are gzip (every member), else as they are.
pub fn inflate(bytes: &[u8]) -> Result<Vec<u8>, String> {
    maybe_gunzip(bytes, MAX_INFLATED_BYTES)
        .map(|b| b.into_owned())
        .map_err(|e| e.to_string())
}

/// The events of one sidecar record (any record format), or of several records concatenated
/// (a moto S3 object).
pub fn decode_events(record: &[u8]) -> Result<Vec<Value>, String> {
    let text = inflate(record)?;
    firetail_wire::format::lines(&text).map(parse).collect()
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
