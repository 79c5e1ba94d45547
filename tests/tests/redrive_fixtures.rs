//! The redrive fixtures (`tests/fixtures/redrive/`), made by the real producers: what Firehose
//! writes to the backup bucket of a stack built from `template.yaml`.
//!
//! - `processing-failed` objects hold the records as the sidecar put them into the stream
//!   (its own encoder and packer: `json`, `ndjson`, `ndjson-gzip`);
//! - `http-endpoint-failed` objects hold what the real transform made of such records for
//!   Datadog, which is what Firehose tried to deliver;
//! - `AmazonOpenSearchService-failed` objects hold the transform's OpenSearch documents, with
//!   `esDocumentId`/`esIndexName`/`esTypeName`;
//! - keys as the template's `ErrorOutputPrefix`es write them (`failed/…`, the error output type
//!   as a directory; one object under today's fixed `failed/datadog-errors/`, whose records
//!   alone say what they are), Firehose's object names, gzip where the backup is `GZIP`.
//!
//! `manifest.json` lists every line with its record and what redrive must do with it. A
//! fixture that differs from what the producers write now fails this test; after a change to
//! the sidecar's encoder or the transform's output, regenerate every fixture with
//! `FIRETAIL_BLESS=1 cargo test -p firetail-e2e` (this test alone: `--test redrive_fixtures`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/redrive_producer.rs"]
mod producer;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_wire::output::marker_version;
use firetail_wire::{Destination, RecordFormat};
use serde_json::{Value, json};

use producer::{
    http_endpoint_failed, object, opensearch_failed, packed, processing_failed, sidecar_records,
    transform,
};

/// When the sidecar read every line: 2026-11-22T10:00:00.123Z.
const READ_MS: i64 = 1_795_341_600_123;

/// One line of a fixture object.
enum Line {
    Record {
        text: String,
        data: Vec<u8>,
        /// Events in the record.
        events: usize,
        /// Expected without `--destination`, and with `--destination opensearch`.
        unknown: &'static str,
        opensearch: &'static str,
    },
    Malformed(String),
}

struct Fixture {
    /// What the object stands for; the tests find objects by it.
    role: &'static str,
    key: String,
    gzip: bool,
    lines: Vec<Line>,
}

/// Numbered log lines: `rec-NNN text`, unique across the fixtures so tests can count events.
struct Lines(usize);

impl Lines {
    fn take(&mut self, texts: &[&str]) -> Vec<String> {
        texts
            .iter()
            .map(|t| {
                self.0 += 1;
                format!("rec-{:03} {t}", self.0)
            })
            .collect()
    }
}

/// Events in a record: the lines of a sidecar record, the logs of a transform output.
fn events(record: &[u8]) -> usize {
    let inflated = firetail_testkit::records::inflate(record).unwrap();
    let v: Option<Value> = serde_json::from_slice(&inflated).ok();
    match v.as_ref().and_then(|v| v.get("logEvents")) {
        Some(list) => list.as_array().unwrap().len(),
        None => firetail_wire::format::lines(&inflated).count(),
    }
}

/// What redrive must do with a record for an OpenSearch stream, by the rules docs/redrive.md
/// states: transform output for another destination and packed records fail there again.
fn for_opensearch(data: &[u8], datadog_output: bool) -> &'static str {
    let inflated = firetail_testkit::records::inflate(data).unwrap();
    let marked = marker_version(&inflated).is_some();
    if (datadog_output && marked) || events(data) > 1 {
        "fail"
    } else {
        "send"
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut seq = Lines(0);
    let arrival = |n: i64| READ_MS + 60_000 + n * 1_000;
    let mut all = Vec::new();

    // Transform failures of a Datadog stream: the sidecar's records as they were put.
    let mut lines = Vec::new();
    let mut n = 0;
    let mut push_processing = |lines: &mut Vec<Line>, data: Vec<u8>, code: &str| {
        n += 1;
        lines.push(Line::Record {
            text: processing_failed(&data, code, arrival(n)),
            events: events(&data),
            unknown: "send",
            opensearch: for_opensearch(&data, false),
            data,
        });
    };
    let single = sidecar_records(
        RecordFormat::Json,
        &seq.take(&[
            "GET /cart 200 12ms",
            "GET /cart/items 200 3ms",
            "POST /cart 201 40ms",
        ]),
        READ_MS,
    );
    for (data, code) in single.into_iter().zip([
        "Lambda.FunctionError",
        "Lambda.FunctionTimedOut",
        "Lambda.FunctionError",
    ]) {
        push_processing(&mut lines, data, code);
    }
    for record in sidecar_records(
        RecordFormat::Ndjson,
        &seq.take(&["worker started", "worker job 1", "worker job 2"]),
        READ_MS,
    ) {
        push_processing(&mut lines, record, "Lambda.ProcessingFailed");
    }
    for record in sidecar_records(
        RecordFormat::NdjsonGzip,
        &seq.take(&[
            "checkout begin",
            r#"{"level":"error","msg":"db down","retry":3}"#,
            "checkout retry",
            "checkout end",
        ]),
        READ_MS,
    ) {
        push_processing(&mut lines, record, "Lambda.ProcessingFailed");
    }
    all.push(Fixture {
        role: "datadog-processing",
        key: "failed/datadog/processing-failed/2026/11/22/10/firetail-logs-1-2026-11-22-10-06-00-5b0e8c4d-1f2a-4b3c-9d8e-7f6a5b4c3d2e.gz".into(),
        gzip: true,
        lines,
    });

    // Datadog delivery failures: the transform's Datadog output of single and packed records.
    let delivery = |seq: &mut Lines, singles: usize, packs: usize, per_pack: usize| {
        let mut records = packed(&seq.take(&vec!["GET /health 200 1ms"; singles]), 1, READ_MS);
        records.extend(packed(
            &seq.take(&vec!["batch step"; packs * per_pack]),
            per_pack,
            READ_MS,
        ));
        transform(Destination::Datadog, &records, READ_MS + 60_000)
    };
    let codes = [
        "HttpEndpoint.DestinationException",
        "HttpEndpoint.RequestTimeout",
        "HttpEndpoint.ResponseTooLarge",
    ];
    let http_lines = |outputs: Vec<Vec<u8>>, codes: &[&str]| -> Vec<Line> {
        outputs
            .into_iter()
            .enumerate()
            .map(|(i, data)| Line::Record {
                text: http_endpoint_failed(
                    &data,
                    codes[i % codes.len()],
                    arrival(100 + i as i64),
                    i as u64,
                ),
                events: events(&data),
                unknown: "send",
                opensearch: for_opensearch(&data, true),
                data,
            })
            .collect()
    };
    all.push(Fixture {
        role: "datadog-delivery",
        key: "failed/datadog/http-endpoint-failed/2026/11/22/11/firetail-logs-1-2026-11-22-11-12-40-8e1d2c3b-4a5f-4e6d-8c7b-6a5f4e3d2c1b.gz".into(),
        gzip: true,
        lines: http_lines(delivery(&mut seq, 6, 4, 5), &codes),
    });
    all.push(Fixture {
        role: "datadog-untyped",
        key: "failed/datadog-errors/2026/11/22/14/firetail-logs-1-2026-11-22-14-02-10-0c9b8a7f-6e5d-4c3b-8a29-1f0e9d8c7b6a.gz".into(),
        gzip: true,
        lines: http_lines(delivery(&mut seq, 2, 2, 3), &codes[..1]),
    });

    // OpenSearch documents it did not index: throttled, unavailable, rejected by the mapping.
    let docs = transform(
        Destination::OpenSearch,
        &sidecar_records(
            RecordFormat::Json,
            &seq.take(&[
                "search q=shoes 200",
                "search q=socks 200",
                r#"{"status":"fast","msg":"search q=hats"}"#,
            ]),
            READ_MS,
        ),
        READ_MS + 60_000,
    );
    let lines = docs
        .into_iter()
        .zip(["429", "503", "400"])
        .enumerate()
        .map(|(i, (data, status))| {
            let verdict = if status == "400" { "fail" } else { "send" };
            Line::Record {
                text: opensearch_failed(&data, status, arrival(200 + i as i64), i as u64),
                events: events(&data),
                unknown: verdict,
                opensearch: verdict,
                data,
            }
        })
        .collect();
    all.push(Fixture {
        role: "opensearch",
        key: "failed/opensearch/AmazonOpenSearchService-failed/2026/11/22/12/firetail-logs-1-2026-11-22-12-30-05-2d3c4b5a-6f7e-4d8c-9b0a-1e2f3d4c5b6a.gz".into(),
        gzip: true,
        lines,
    });

    // Transform failures of an S3 stream (`failed/!{firehose:error-output-type}/yyyy/MM/dd/`,
    // uncompressed), with a line cut short in the middle.
    let mut lines = Vec::new();
    let records = sidecar_records(
        RecordFormat::Json,
        &seq.take(&["late line 0", "late line 1", "late line 2", "late line 3"]),
        READ_MS,
    );
    for (i, data) in records.into_iter().enumerate() {
        lines.push(Line::Record {
            text: processing_failed(&data, "Lambda.FunctionError", arrival(300 + i as i64)),
            events: events(&data),
            unknown: "send",
            opensearch: "send",
            data,
        });
        if i == 1 {
            lines.push(Line::Malformed(
                r#"{"attemptsMade":4,"arrivalTimestamp":1795341660000,"errorCode":"Lambda.Fun"#
                    .into(),
            ));
        }
    }
    all.push(Fixture {
        role: "s3-processing",
        key: "failed/processing-failed/2026/11/22/firetail-logs-1-2026-11-22-13-00-00-6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d".into(),
        gzip: false,
        lines,
    });
    all
}

fn manifest(fixtures: &[Fixture]) -> String {
    let objects: Vec<Value> = fixtures
        .iter()
        .map(|f| {
            let lines: Vec<Value> = f
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| match l {
                    Line::Record {
                        data,
                        events,
                        unknown,
                        opensearch,
                        ..
                    } => json!({
                        "line": i + 1,
                        "data": STANDARD.encode(data),
                        "events": events,
                        "unknown": unknown,
                        "opensearch": opensearch,
                    }),
                    Line::Malformed(_) => json!({"line": i + 1, "malformed": true}),
                })
                .collect();
            json!({"role": f.role, "key": f.key, "gzip": f.gzip, "lines": lines})
        })
        .collect();
    serde_json::to_string_pretty(&json!({ "objects": objects })).unwrap() + "\n"
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/redrive")
}

/// Every file under `root`, relative to it.
fn files(root: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out
}

#[test]
fn redrive_fixtures_are_made_by_the_real_producers() {
    let bless = std::env::var_os("FIRETAIL_BLESS").is_some();
    let fixtures = fixtures();
    let mut want: Vec<(PathBuf, Vec<u8>)> = fixtures
        .iter()
        .map(|f| {
            let text: Vec<String> = f
                .lines
                .iter()
                .map(|l| match l {
                    Line::Record { text, .. } | Line::Malformed(text) => text.clone(),
                })
                .collect();
            (Path::new("objects").join(&f.key), object(&text, f.gzip))
        })
        .collect();
    want.push(("manifest.json".into(), manifest(&fixtures).into_bytes()));
    let root = dir();
    let expected: BTreeSet<PathBuf> = want
        .iter()
        .map(|(p, _)| p.clone())
        .chain([PathBuf::from("README.md")])
        .collect();
    let extra: Vec<PathBuf> = files(&root).difference(&expected).cloned().collect();
    let mut stale: Vec<String> = Vec::new();
    if bless {
        for path in &extra {
            std::fs::remove_file(root.join(path)).unwrap();
        }
        for (path, bytes) in &want {
            let full = root.join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(full, bytes).unwrap();
        }
    } else {
        stale.extend(
            extra
                .iter()
                .map(|p| format!("{} (not made any more)", p.display())),
        );
        for (path, bytes) in &want {
            if std::fs::read(root.join(path)).ok().as_ref() != Some(bytes) {
                stale.push(path.display().to_string());
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:#?} differ from what the sidecar and the transform write now; regenerate with \
         FIRETAIL_BLESS=1 cargo test -p firetail-e2e --test redrive_fixtures"
    );
}

/// The fixtures hold what each error output type holds: originals under processing-failed,
/// the transform's output under the delivery failures.
#[test]
fn each_prefix_holds_what_firehose_puts_there() {
    for f in fixtures() {
        for line in &f.lines {
            let Line::Record { data, text, .. } = line else {
                continue;
            };
            let inflated = firetail_testkit::records::inflate(data).unwrap();
            let record: Value = serde_json::from_str(text).unwrap();
            if f.key.contains("processing-failed") {
                // The sidecar's own events: `time`, `log`, `kubernetes`.
                let events = firetail_testkit::records::decode_events(data).unwrap();
                assert!(
                    events
                        .iter()
                        .all(|e| e["time"].is_string() && e["kubernetes"].is_object())
                );
                assert!(record["lambdaArn"].is_string());
            } else if f.role == "opensearch" {
                let doc: Value = serde_json::from_slice(&inflated).unwrap();
                assert!(
                    doc["@timestamp"].is_string() && doc.get("kubernetes").is_none(),
                    "{doc}"
                );
                for field in ["esDocumentId", "esIndexName", "esTypeName"] {
                    assert!(record[field].is_string(), "{field}");
                }
            } else {
                let logs =
                    firetail_testkit::records::destination_events(Destination::Datadog, data)
                        .unwrap();
                assert!(
                    logs.iter()
                        .all(|l| l["ddtags"].is_string() && l["timestamp"].is_i64())
                );
                assert!(record["dataId"].is_string());
            }
        }
    }
}
