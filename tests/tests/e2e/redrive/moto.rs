//! Redrive through the real AWS SDK against moto's server (S3 + Firehose): the
//! checked-in fixtures (what Firehose writes to the backup bucket, made by the real sidecar
//! and transform: plain and gzip objects, several error codes, a malformed line) go back into a
//! delivery stream, and every record is counted in the stream's destination bucket.

use firetail_redrive::report::ProblemKind;
use firetail_redrive::{AfterDone, RedriveConfig, Summary, redrive};
use firetail_testkit::MotoServer;
use firetail_wire::Destination;

use super::common::{
    self, Line, PREFIX, config, delivered, firehose_for, key_of, keys, keys_in, lines, never,
    occurrences, store, tags, upload,
};

const BACKUP: &str = "backup";
const STREAM: &str = "logs";
const DEST: &str = "dest";

async fn setup() -> MotoServer {
    let moto = MotoServer::start();
    moto.create_s3_stream(STREAM, DEST).await;
    upload(&moto, BACKUP).await;
    moto
}

async fn run(moto: &MotoServer, cfg: &RedriveConfig) -> Summary {
    redrive(cfg, &store(moto), &firehose_for(moto.url()), never())
        .await
        .unwrap()
}

fn sendable(expected: fn(&Line) -> &str) -> Vec<Line> {
    lines()
        .into_iter()
        .filter(|l| expected(l) == "send")
        .collect()
}

/// Asserts each line's record arrived `times` times in `delivered`.
fn assert_arrived(delivered: &[u8], lines: &[Line], times: usize) {
    for l in lines {
        let data = l.data.as_ref().unwrap();
        assert_eq!(
            occurrences(delivered, data),
            times,
            "{}:{} arrived a wrong number of times",
            l.key,
            l.line
        );
    }
}

/// The fixture objects, by role, in key order: the untyped Datadog object, the Datadog
/// delivery and transform failures, the OpenSearch failures, the S3 stream's transform
/// failures.
const ROLES: [&str; 5] = [
    "datadog-untyped",
    "datadog-delivery",
    "datadog-processing",
    "opensearch",
    "s3-processing",
];

/// Objects whose every line is sent without a destination.
const COMPLETE: [&str; 3] = ["datadog-untyped", "datadog-delivery", "datadog-processing"];

fn keys_of(roles: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = roles.iter().map(|r| key_of(r)).collect();
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sendable_record_arrives_once_and_the_rest_is_reported() {
    let moto = setup().await;
    let state = tempfile::tempdir().unwrap();
    let cfg = config(BACKUP, STREAM, state.path());
    let summary = run(&moto, &cfg).await;

    assert_eq!(keys(), keys_of(&ROLES), "fixture objects changed?");
    let send = sendable(|l| &l.unknown);
    let fail: Vec<Line> = lines()
        .into_iter()
        .filter(|l| l.unknown == "fail")
        .collect();
    assert_eq!(
        (send.len(), fail.len()),
        (5 + 10 + 4 + 2 + 4, 1),
        "fixture changed?"
    );
    let got = delivered(&moto, DEST).await;
    assert_arrived(&got, &send, 1);
    assert_arrived(&got, &fail, 0);
    // Nothing else arrived: the destination is exactly the sendable records.
    let sent_bytes: usize = send.iter().map(|l| l.data.as_ref().unwrap().len()).sum();
    assert_eq!(got.len(), sent_bytes);

    assert_eq!(summary.records_sent, send.len() as u64);
    assert_eq!(summary.bytes_sent, sent_bytes as u64);
    assert_eq!(summary.records_will_fail_again, 1);
    assert_eq!(summary.malformed_lines, 1);
    assert_eq!(summary.records_unsent, 0);
    assert_eq!(summary.objects_listed, 5);
    assert_eq!(summary.objects_done, 3, "{summary:#?}");
    assert_eq!(summary.objects_left, 2);
    assert!(summary.left_behind());
    let malformed = summary
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::Malformed)
        .unwrap();
    assert_eq!(malformed.key, key_of("s3-processing"));
    assert_eq!(malformed.line, Some(3));
    let rejected = summary
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::WillFailAgain)
        .unwrap();
    assert_eq!(rejected.key, key_of("opensearch"));
    assert_eq!(rejected.line, Some(3));
    assert!(rejected.detail.contains("\"400\""), "{}", rejected.detail);
    assert_eq!(summary.problems.len(), 2, "{:#?}", summary.problems);
    let codes = &summary.by_error_code;
    assert_eq!(codes["Lambda.FunctionError"].records, 2 + 4);
    assert_eq!(codes["HttpEndpoint.DestinationException"].records, 4 + 4);
    assert_eq!(codes["400"].sendable, 0);
    let mut text = Vec::new();
    summary.render(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains(&format!(
            "malformed: {}:3: not JSON",
            key_of("s3-processing")
        )),
        "{text}"
    );

    // Nothing was asked to be deleted: every object is still there.
    assert_eq!(keys_in(&moto, BACKUP).await, keys());

    // A second run resends nothing and reports the same problems.
    let again = run(&moto, &cfg).await;
    assert_eq!(again.records_sent, 0);
    // Finished objects are not read again; the two left ones are, and their sent lines skipped.
    assert_eq!(again.records_already_sent, 2 + 4);
    assert_eq!(again.objects_already_done, 3);
    assert_eq!(again.malformed_lines, 1);
    assert_eq!(delivered(&moto, DEST).await, got);

    // Asking for deletion later deletes the objects finished earlier, without resending.
    let mut delete = cfg.clone();
    delete.after = AfterDone::Delete;
    let cleanup = run(&moto, &delete).await;
    assert_eq!(cleanup.records_sent, 0);
    assert_eq!(cleanup.objects_done, 3);
    assert_eq!(
        keys_in(&moto, BACKUP).await,
        keys_of(&["opensearch", "s3-processing"])
    );
    assert_eq!(delivered(&moto, DEST).await, got);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let moto = setup().await;
    let before = moto.objects(BACKUP).await;
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(BACKUP, STREAM, state.path());
    cfg.dry_run = true;
    cfg.after = AfterDone::Delete;
    let summary = run(&moto, &cfg).await;

    assert!(moto.objects(DEST).await.is_empty(), "nothing was sent");
    assert_eq!(moto.objects(BACKUP).await, before, "nothing was deleted");
    for (key, _) in &before {
        assert!(tags(&moto, BACKUP, key).await.is_empty());
    }
    assert_eq!(
        std::fs::read_dir(state.path()).unwrap().count(),
        0,
        "no state file"
    );
    assert!(summary.dry_run);
    assert_eq!(
        summary.records_sent,
        sendable(|l| &l.unknown).len() as u64,
        "would send"
    );
    assert_eq!(summary.calls, 0);
    let code = &summary.by_error_code["HttpEndpoint.RequestTimeout"];
    assert_eq!((code.records, code.sendable), (3, 3));
    // The first such record is the second of the delivery object, shown inflated when it is
    // gzip (the transform's envelopes are): readable JSON either way.
    let sample = code.sample.as_deref().unwrap();
    let second = lines()
        .into_iter()
        .find(|l| l.key == key_of("datadog-delivery") && l.line == 2)
        .unwrap();
    assert_eq!(
        sample,
        firetail_redrive::report::sample(&second.data.unwrap())
    );
    assert!(sample.starts_with("{\""), "{sample}");
    let mut text = Vec::new();
    summary.render(&mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.starts_with("DRY RUN"), "{text}");
    assert!(text.contains("errorCode HttpEndpoint.RequestTimeout: 3 records, 3 would send"));
    assert!(text.contains("sample: {\"time\":"), "{text}");
    assert!(
        text.contains("objects: 5 listed, 3 would be done"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_records_are_reported_not_sent_for_opensearch() {
    let moto = setup().await;
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(BACKUP, STREAM, state.path());
    cfg.rules.destination = Some(Destination::OpenSearch);
    cfg.after = AfterDone::Delete;
    let summary = run(&moto, &cfg).await;

    let send = sendable(|l| &l.opensearch);
    let fail: Vec<Line> = lines()
        .into_iter()
        .filter(|l| l.opensearch == "fail")
        .collect();
    let got = delivered(&moto, DEST).await;
    assert_arrived(&got, &send, 1);
    assert_arrived(&got, &fail, 0);
    // Every line the manifest marks is reported with its key and line, and nothing else is.
    let mut reported: Vec<(String, Option<u64>)> = summary
        .problems
        .iter()
        .filter(|p| p.kind == ProblemKind::WillFailAgain)
        .map(|p| (p.key.clone(), p.line))
        .collect();
    reported.sort();
    let mut want: Vec<(String, Option<u64>)> =
        fail.iter().map(|l| (l.key.clone(), Some(l.line))).collect();
    want.sort();
    assert_eq!(reported, want);
    let packed: Vec<&Line> = fail.iter().filter(|l| l.events > 1).collect();
    assert!(
        packed.len() >= 2 + 4 + 2,
        "packed sidecar records and envelopes"
    );
    for l in packed {
        let p = summary
            .problems
            .iter()
            .find(|p| p.key == l.key && p.line == Some(l.line))
            .unwrap();
        assert!(
            p.detail.contains("packed record") || p.detail.contains("is for Datadog"),
            "{}",
            p.detail
        );
    }
    // Only objects whose every line was sent were deleted; the others stay for the operator.
    let mut left: Vec<String> = lines()
        .into_iter()
        .filter(|l| l.opensearch != "send")
        .map(|l| l.key)
        .collect();
    left.dedup();
    left.sort();
    assert_eq!(keys_in(&moto, BACKUP).await, left);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_objects_are_tagged_moved_or_deleted_only_when_complete() {
    let moto = setup().await;
    let keys = keys();
    let complete = keys_of(&COMPLETE);

    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(BACKUP, STREAM, state.path());
    cfg.after = AfterDone::Tag;
    let summary = run(&moto, &cfg).await;
    assert_eq!(summary.objects_done, 3);
    for key in &keys {
        let t = tags(&moto, BACKUP, key).await;
        if complete.contains(key) {
            assert_eq!(t, vec![("firetail-redriven".to_owned(), STREAM.to_owned())]);
        } else {
            assert!(t.is_empty(), "{key}: {t:?}");
        }
    }
    // Tags are enough to skip, even without the state file (another machine).
    let fresh = tempfile::tempdir().unwrap();
    let mut cfg2 = config(BACKUP, STREAM, fresh.path());
    cfg2.after = AfterDone::Tag;
    cfg2.filter.error_codes = ["HttpEndpoint.DestinationException".to_owned()].into();
    let again = run(&moto, &cfg2).await;
    assert_eq!(again.objects_already_done, 3);
    assert_eq!(again.records_sent, 0);

    // Move: a fresh state (the tagged objects would be skipped otherwise) with the tag mode
    // off resends; use another stream's bucket to count.
    moto.create_s3_stream("moved", "moved-dest").await;
    let moved_state = tempfile::tempdir().unwrap();
    let mut cfg3 = config(BACKUP, "moved", moved_state.path());
    cfg3.after = AfterDone::Move;
    let s = redrive(&cfg3, &store(&moto), &firehose_for(moto.url()), never())
        .await
        .unwrap();
    assert_eq!(s.objects_done, 3);
    let mut expected = keys_of(&["opensearch", "s3-processing"]);
    expected.extend(complete.iter().map(|k| format!("redriven/{k}")));
    expected.sort();
    assert_eq!(keys_in(&moto, BACKUP).await, expected);
    // The moved copies are byte for byte the originals.
    let objects = moto.objects(BACKUP).await;
    for key in &complete {
        let body = &objects
            .iter()
            .find(|(k, _)| *k == format!("redriven/{key}"))
            .unwrap()
            .1;
        let original = std::fs::read(common::fixtures().join("objects").join(key)).unwrap();
        assert_eq!(body, &original);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixing_a_malformed_line_in_place_resends_only_that_line() {
    let moto = setup().await;
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(BACKUP, STREAM, state.path());
    cfg.after = AfterDone::Delete;
    let first = run(&moto, &cfg).await;
    assert_eq!(first.malformed_lines, 1);

    // The operator repairs the object in place (its ETag changes): the malformed line 3 goes,
    // a corrected record is appended, so the old lines 4 and 5 move up to 3 and 4.
    let key = key_of("s3-processing");
    let original = std::fs::read(common::fixtures().join("objects").join(&key)).unwrap();
    let fixed_record = b"{\"log\":\"repaired line\"}\n";
    let mut repaired = Vec::new();
    for (i, line) in original.split(|&b| b == b'\n').enumerate() {
        if i != 2 && !line.is_empty() {
            repaired.extend_from_slice(line);
            repaired.push(b'\n');
        }
    }
    repaired.extend(common::error_line(fixed_record, 1_764_410_460_000).bytes());
    repaired.push(b'\n');
    common::put(&moto.s3_client(), BACKUP, &key, repaired).await;

    let second = run(&moto, &cfg).await;
    assert_eq!(second.records_sent, 1, "{second:#?}");
    assert_eq!(second.records_already_sent, 2 + 4);
    assert_eq!(second.malformed_lines, 0);
    let got = delivered(&moto, DEST).await;
    assert_arrived(&got, &sendable(|l| &l.unknown), 1);
    assert_eq!(occurrences(&got, fixed_record), 1);
    // The repaired object is complete now, so it was deleted; the rejected document stays.
    assert_eq!(keys_in(&moto, BACKUP).await, vec![key_of("opensearch")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_continuation_tokens() {
    // ListObjectsV2 answers at most 1,000 keys per page.
    const OBJECTS: usize = 1_005;
    let moto = MotoServer::start();
    common::create_bucket(&moto, "many").await;
    let s3 = moto.s3_client();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in (0..OBJECTS).collect::<Vec<_>>().chunks(OBJECTS / 8 + 1) {
        let (s3, chunk) = (s3.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for i in chunk {
                let line = common::error_line(format!("r{i}").as_bytes(), 1);
                let key = format!("{PREFIX}processing-failed/{i:05}");
                common::put(&s3, "many", &key, line.into_bytes()).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config("many", STREAM, state.path());
    cfg.dry_run = true;
    let summary = run(&moto, &cfg).await;
    assert_eq!(summary.objects_listed, OBJECTS as u64);
    assert_eq!(summary.records_sent, OBJECTS as u64, "would send");
    assert!(!summary.left_behind());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_objects_stops_and_the_next_run_continues_without_resending() {
    let moto = setup().await;
    let state = tempfile::tempdir().unwrap();
    let mut cfg = config(BACKUP, STREAM, state.path());
    cfg.max_objects = Some(2);
    let first = run(&moto, &cfg).await;
    assert!(first.stopped_at_max_objects);
    assert_eq!(first.objects_not_reached, 3);
    assert!(first.left_behind());
    // The first two in key order: the untyped Datadog object (4) and the delivery one (10).
    assert_eq!(first.records_sent, 4 + 10);

    cfg.max_objects = None;
    let second = run(&moto, &cfg).await;
    assert!(!second.stopped_at_max_objects);
    assert_eq!(second.objects_already_done, 2, "both finished in run 1");
    assert_eq!(second.records_already_sent, 0);
    assert_eq!(
        second.records_sent,
        sendable(|l| &l.unknown).len() as u64 - (4 + 10)
    );
    let got = delivered(&moto, DEST).await;
    assert_arrived(&got, &sendable(|l| &l.unknown), 1);
}
