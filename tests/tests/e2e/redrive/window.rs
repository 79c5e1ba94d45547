//! Datadog's 18-hour window end to end, through the real AWS SDK against moto's S3 and
//! Firehose: backup objects made by the real sidecar encoder and the real transform, with
//! events read an hour ago and twenty hours ago. Without `--restamp` the old records stay in
//! the bucket, counted and reported, and their objects are not deleted; with it they arrive
//! with the redrive's time and their original in `firetail_original_timestamp`, and the
//! transform carries that attribute to the Datadog log. Every event arrives exactly once over
//! both runs.

use std::collections::BTreeMap;

use firetail_redrive::report::ProblemKind;
use firetail_redrive::{AfterDone, RedriveConfig, Summary, redrive};
use firetail_testkit::MotoServer;
use firetail_wire::Destination;
use firetail_wire::output::MARKER_PREFIX;
use firetail_wire::output::datadog::ORIGINAL_TIMESTAMP;
use firetail_wire::time::parse_rfc3339_ms;
use serde_json::Value;

use super::common::{
    config, create_bucket, delivered, events_of, firehose_for, keys_in, never, occurrences, put,
    store, values_in,
};
use crate::redrive_producer::{http_endpoint_failed, object, packed, processing_failed, transform};

const BACKUP: &str = "dd-backup";
const STREAM: &str = "dd";
const DEST: &str = "dd-dest";
const HOUR: i64 = 3_600_000;
const DELIVERY: &str = "HttpEndpoint.DestinationException";
const PROCESSING: &str = "Lambda.FunctionError";

fn now_ms() -> i64 {
    firetail_transform::now_ms()
}

/// One record of a backup object, with what the test knows about it.
struct Sent {
    key: String,
    line: u64,
    data: Vec<u8>,
    old: bool,
    read_ms: i64,
}

struct Backup {
    young_key: String,
    mixed_key: String,
    original_key: String,
    records: Vec<Sent>,
    /// Every event's line, `win-NNN …`, each once.
    events: Vec<String>,
}

/// `count` lines read at `read_ms`, `per` events to a record.
struct Group {
    count: usize,
    per: usize,
    read_ms: i64,
    old: bool,
}

/// Numbered lines.
fn take(seq: &mut usize, n: usize, what: &str) -> Vec<String> {
    (0..n)
        .map(|_| {
            *seq += 1;
            format!("win-{:03} {what}", *seq)
        })
        .collect()
}

/// Three objects: the transform's Datadog output of young records only; of young and old
/// records (packed and single); and transform failures holding the sidecar's own records,
/// young and old (json and ndjson-gzip).
async fn upload(moto: &MotoServer, now: i64) -> Backup {
    create_bucket(moto, BACKUP).await;
    let (young, old) = (now - HOUR, now - 20 * HOUR);
    let mut seq = 0;
    let mut events = Vec::new();
    let mut records = Vec::new();
    let mut backup = Backup {
        young_key: "failed/datadog/http-endpoint-failed/2026/12/01/10/firetail-logs-1-a-young.gz"
            .into(),
        mixed_key: "failed/datadog/http-endpoint-failed/2026/12/01/10/firetail-logs-1-b-mixed.gz"
            .into(),
        original_key: "failed/datadog/processing-failed/2026/12/01/10/firetail-logs-1-c-orig.gz"
            .into(),
        records: Vec::new(),
        events: Vec::new(),
    };
    let group = |count, per, read_ms, old| Group {
        count,
        per,
        read_ms,
        old,
    };
    // (key, groups of records, delivery failures or transform failures)
    let plans = [
        (
            backup.young_key.as_str(),
            vec![group(6, 3, young, false)],
            true,
        ),
        (
            backup.mixed_key.as_str(),
            vec![
                group(3, 3, young, false),
                group(6, 3, old, true),
                group(1, 1, old, true),
                group(2, 2, young, false),
            ],
            true,
        ),
        (
            backup.original_key.as_str(),
            vec![
                group(2, 1, old, true),
                group(1, 1, young, false),
                group(3, 3, old, true),
            ],
            false,
        ),
    ];
    let s3 = moto.s3_client();
    for (key, groups, delivery) in plans {
        let mut lines = Vec::new();
        for Group {
            count,
            per,
            read_ms,
            old: is_old,
        } in groups
        {
            let texts = take(&mut seq, count, if is_old { "old" } else { "young" });
            events.extend(texts.iter().cloned());
            let mut datas = packed(&texts, per, read_ms);
            if delivery {
                datas = transform(Destination::Datadog, &datas, read_ms + 60_000);
            }
            for data in datas {
                let n = lines.len() as u64 + 1;
                let arrival = read_ms + 60_000;
                lines.push(if delivery {
                    http_endpoint_failed(&data, DELIVERY, arrival, n)
                } else {
                    processing_failed(&data, PROCESSING, arrival)
                });
                records.push(Sent {
                    key: key.to_owned(),
                    line: n,
                    data,
                    old: is_old,
                    read_ms,
                });
            }
        }
        put(&s3, BACKUP, key, object(&lines, true)).await;
    }
    backup.records = records;
    backup.events = events;
    backup
}

fn datadog(state: &std::path::Path) -> RedriveConfig {
    let mut cfg = config(BACKUP, STREAM, state);
    // These objects are written with event times relative to now.
    cfg.clock = firetail_redrive::engine::now_ms;
    cfg.rules.destination = Some(Destination::Datadog);
    cfg.after = AfterDone::Delete;
    cfg
}

async fn run(moto: &MotoServer, cfg: &RedriveConfig) -> Summary {
    redrive(cfg, &store(moto), &firehose_for(moto.url()), never())
        .await
        .unwrap()
}

/// The line an event stands for: a Datadog log's `message`, a sidecar event's `log`.
fn text_of(event: &Value) -> String {
    event
        .get("log")
        .or_else(|| event.get("message"))
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

/// The inflated text of every gzip member in a moto object (plain records between them are
/// skipped).
fn gzip_members(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    use std::io::Read as _;
    let mut out = Vec::new();
    while let Some(at) = bytes
        .windows(2)
        .position(|w| w == firetail_wire::gzip::GZIP_MAGIC)
    {
        let mut member = flate2::bufread::GzDecoder::new(&bytes[at..]);
        let mut text = Vec::new();
        member.read_to_end(&mut text).unwrap();
        bytes = member.into_inner();
        out.push(text);
    }
    out
}

/// `event` without the members a re-stamp may change.
fn unstamped(event: &Value) -> Value {
    let mut e = event.clone();
    let o = e.as_object_mut().unwrap();
    for key in ["time", "timestamp", ORIGINAL_TIMESTAMP] {
        o.remove(key);
    }
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_records_stay_until_restamped_and_every_event_arrives_once() {
    let moto = MotoServer::start();
    moto.create_s3_stream(STREAM, DEST).await;
    let backup = upload(&moto, now_ms()).await;
    let state = tempfile::tempdir().unwrap();
    let cfg = datadog(state.path());

    // 1. Without --restamp: the young records go, the old ones stay, counted per code.
    let first = run(&moto, &cfg).await;
    let got = delivered(&moto, DEST).await;
    for r in &backup.records {
        let want = usize::from(!r.old);
        assert_eq!(occurrences(&got, &r.data), want, "{}:{}", r.key, r.line);
    }
    let old: Vec<&Sent> = backup.records.iter().filter(|r| r.old).collect();
    let old_in = |key: &str| old.iter().filter(|r| r.key == key).count() as u64;
    assert_eq!(first.records_too_old, old.len() as u64);
    assert_eq!(
        first.by_error_code[DELIVERY].too_old,
        old_in(&backup.mixed_key)
    );
    assert_eq!(
        first.by_error_code[PROCESSING].too_old,
        old_in(&backup.original_key)
    );
    assert_eq!(
        first.records_sent,
        (backup.records.len() - old.len()) as u64
    );
    let mut reported: Vec<(String, Option<u64>)> = first
        .problems
        .iter()
        .map(|p| {
            assert_eq!(p.kind, ProblemKind::TooOld, "{p:?}");
            assert!(p.detail.contains("older than 17 h"), "{}", p.detail);
            (p.key.clone(), p.line)
        })
        .collect();
    reported.sort();
    let mut want: Vec<(String, Option<u64>)> =
        old.iter().map(|r| (r.key.clone(), Some(r.line))).collect();
    want.sort();
    assert_eq!(reported, want, "each old record by key and line");
    assert!(first.left_behind(), "exit status 2");
    let mut left = vec![backup.mixed_key.clone(), backup.original_key.clone()];
    left.sort();
    assert_eq!(
        keys_in(&moto, BACKUP).await,
        left,
        "only the object of young records is deleted"
    );
    let mut text = Vec::new();
    first.render(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!(
            "datadog window: {} records too old (left), 0 re-stamped (0 events)",
            old.len()
        )),
        "{text}"
    );

    // 2. With --restamp: the old records go with the redrive's time, and the objects are done.
    let mut restamp = cfg.clone();
    restamp.rules.restamp = true;
    let before = now_ms();
    let second = run(&moto, &restamp).await;
    let after = now_ms();
    assert_eq!(second.records_restamped, old.len() as u64, "{second:#?}");
    let old_events: usize = old
        .iter()
        .map(|r| events_of(values_in(&r.data)).len())
        .sum();
    assert_eq!(second.events_restamped, old_events as u64);
    // The young records of the two objects left were sent by the first run.
    let young_left = backup
        .records
        .iter()
        .filter(|r| !r.old && r.key != backup.young_key)
        .count();
    assert_eq!(second.records_already_sent, young_left as u64);
    assert!(!second.left_behind(), "{second:#?}");
    assert!(keys_in(&moto, BACKUP).await.is_empty());

    // Every event exactly once over both runs.
    let arrived = events_of(values_in(&delivered(&moto, DEST).await));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &arrived {
        *counts.entry(text_of(e)).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = backup.events.iter().map(|e| (e.clone(), 1)).collect();
    assert_eq!(counts, want, "nothing lost, nothing duplicated");

    // Each event as sent: old ones re-stamped with the original kept, all else unchanged.
    let by_text: BTreeMap<String, &Value> = arrived.iter().map(|e| (text_of(e), e)).collect();
    for r in &backup.records {
        for original in events_of(values_in(&r.data)) {
            let sent = by_text[&text_of(&original)];
            assert_eq!(unstamped(sent), unstamped(&original), "{sent}");
            let (time, kept) = match sent.get("log") {
                Some(_) => (
                    parse_rfc3339_ms(sent["time"].as_str().unwrap()).unwrap(),
                    sent.get(ORIGINAL_TIMESTAMP),
                ),
                None => (
                    sent["timestamp"].as_i64().unwrap(),
                    sent.get(ORIGINAL_TIMESTAMP),
                ),
            };
            if r.old {
                assert!((before..=after).contains(&time), "re-stamped: {sent}");
                assert_eq!(kept.and_then(Value::as_i64), Some(r.read_ms), "{sent}");
            } else {
                assert_eq!(time, r.read_ms, "{sent}");
                assert!(kept.is_none(), "{sent}");
            }
        }
    }
    // A re-stamped Datadog envelope says the same time in the event as in its log.
    for v in values_in(&delivered(&moto, DEST).await) {
        for e in v["logEvents"].as_array().into_iter().flatten() {
            let log: Value = serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
            assert_eq!(e["timestamp"], log["timestamp"], "{e}");
        }
    }
    // The transform's marker stays first in every envelope and every log it carried, so the
    // transform passes the re-stamped record through as its own output.
    let marked = |bytes: &[u8]| bytes.starts_with(MARKER_PREFIX);
    let sent_marked: Vec<Vec<u8>> = gzip_members(&delivered(&moto, DEST).await)
        .into_iter()
        .filter(|m| marked(m))
        .collect();
    let backed_up = backup
        .records
        .iter()
        .filter(|r| marked(&firetail_testkit::records::inflate(&r.data).unwrap()))
        .count();
    assert_eq!(sent_marked.len(), backed_up);
    for member in &sent_marked {
        for e in values_in(member)[0]["logEvents"].as_array().unwrap() {
            assert!(marked(e["message"].as_str().unwrap().as_bytes()), "{e}");
        }
    }

    // The transform turns a re-stamped sidecar event into a Datadog log with the new time and
    // the original as an attribute.
    for r in backup
        .records
        .iter()
        .filter(|r| r.old && r.key == backup.original_key)
    {
        for original in events_of(values_in(&r.data)) {
            let sent = by_text[&text_of(&original)];
            let record = serde_json::to_vec(sent).unwrap();
            let out = transform(Destination::Datadog, &[record], after);
            let logs = firetail_testkit::records::destination_events(Destination::Datadog, &out[0])
                .unwrap();
            assert_eq!(logs.len(), 1);
            let log = &logs[0];
            assert!(
                (before..=after).contains(&log["timestamp"].as_i64().unwrap()),
                "{log}"
            );
            assert_eq!(log[ORIGINAL_TIMESTAMP], r.read_ms, "{log}");
            assert_eq!(log["kube_namespace"], "shop", "{log}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_counts_old_and_restamped_records_per_code_and_changes_nothing() {
    let moto = MotoServer::start();
    moto.create_s3_stream(STREAM, DEST).await;
    let backup = upload(&moto, now_ms()).await;
    let before = moto.objects(BACKUP).await;
    let state = tempfile::tempdir().unwrap();
    let old = backup.records.iter().filter(|r| r.old).count() as u64;
    for restamp in [false, true] {
        let mut cfg = datadog(state.path());
        cfg.dry_run = true;
        cfg.rules.restamp = restamp;
        let summary = run(&moto, &cfg).await;
        let (too_old, restamped) = if restamp { (0, old) } else { (old, 0) };
        assert_eq!(
            (summary.records_too_old, summary.records_restamped),
            (too_old, restamped)
        );
        let code = &summary.by_error_code[PROCESSING];
        assert_eq!(code.too_old + code.restamped, 3, "{code:?}");
        let mut text = Vec::new();
        summary.render(&mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(&format!(
                "datadog window: {too_old} records too old (left), {restamped} would be re-stamped"
            )),
            "{text}"
        );
        assert_eq!(summary.left_behind(), !restamp);
    }
    assert!(moto.objects(DEST).await.is_empty());
    assert_eq!(moto.objects(BACKUP).await, before);
}
