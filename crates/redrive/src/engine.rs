//! The I/O shell of a redrive: list the backup objects, read each, classify its lines, send
//! the sendable records, record progress, mark the object when all of it is in.
//!
//! Objects are worked on one at a time, in key order (Firehose's keys start with the date, so
//! that is roughly arrival order). An object's records go out in `PutRecordBatch` calls cut by
//! [`firetail_firehose::batch_records`] and sent by [`firetail_firehose::deliver`], which
//! resends only the entries that failed, with a bounded [`RetryPolicy`]. Progress is saved
//! after every call. Records still not accepted when the policy gives up are reported, their
//! object stays where it is, and the run stops: what is left would meet the same refusal.
//!
//! On shutdown (SIGINT/SIGTERM) no new call starts; the call in flight gets [`STOP_GRACE`] to
//! answer, so its acknowledgements are saved rather than guessed.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use firetail_firehose::{
    Backoff, Batch, CallError, CallLimits, Delivery, EntryOutcome, FirehoseClient, Record,
    RetryPolicy, StreamStatus, batch_records, deliver,
};
use firetail_wire::gzip::{gunzip_capped, is_gzip};
use firetail_wire::limits::FIREHOSE_MAX_RECORD_BYTES;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use crate::parse::{ErrorRecord, KeyType, LineError, Origin, key_error_type, lines, parse_line};
use crate::report::{ProblemKind, Summary, sample};
use crate::s3::{Listed, ObjectStore, StoreError};
use crate::state::{self, ObjectProgress, State, StateError, line_hash};
use crate::verdict::{Filter, Rules, Verdict, verdict};

/// Objects moved by [`AfterDone::Move`] go under this prefix, which listing always skips.
pub const REDRIVEN_PREFIX: &str = "redriven/";

/// Tag key set by [`AfterDone::Tag`]; its value is the delivery stream.
pub const TAG_KEY: &str = "firetail-redriven";

/// Largest inflated object read into memory. Firehose writes backup objects of at most its
/// buffer size (128 MiB), so this is several times any real one.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024 * 1024;

/// How long the `PutRecordBatch` call in flight may take to answer after a shutdown signal.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// Calls per record before a redrive gives up on it, by default.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 8;

/// A record's acknowledgement token: its line number in the object and the line's hash.
type Token = (u64, u64);

/// What happens to an object once every record in it was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterDone {
    /// Nothing; the state file remembers it.
    Nothing,
    /// Tag it [`TAG_KEY`]`=<stream>`.
    Tag,
    /// Copy it under [`REDRIVEN_PREFIX`], then delete the original.
    Move,
    /// Delete it.
    Delete,
}

impl AfterDone {
    /// The name recorded in the state file (empty for [`AfterDone::Nothing`]).
    pub fn name(self) -> &'static str {
        match self {
            Self::Nothing => "",
            Self::Tag => "tag",
            Self::Move => "move",
            Self::Delete => "delete",
        }
    }
}

/// Everything a redrive needs besides its clients.
#[derive(Debug, Clone)]
pub struct RedriveConfig {
    /// Backup bucket.
    pub bucket: String,
    /// Key prefix.
    pub prefix: String,
    /// Delivery stream the records go to (names the state file and the tag).
    pub stream: String,
    /// Which records are asked for.
    pub filter: Filter,
    /// How records are judged.
    pub rules: Rules,
    /// Send, write and mark nothing.
    pub dry_run: bool,
    /// What to do with finished objects.
    pub after: AfterDone,
    /// Stop after this many objects were worked on.
    pub max_objects: Option<usize>,
    /// Directory of the state files.
    pub state_dir: PathBuf,
    /// Call limits.
    pub limits: CallLimits,
    /// Backoff and attempts of the sender (bounded: a one-shot tool ends).
    pub retry: RetryPolicy,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Milliseconds since the epoch, now: what Datadog's window is measured against and what
    /// a re-stamped record carries. The system clock; a test of records frozen at a past time
    /// gives its own.
    pub clock: fn() -> i64,
}

impl RedriveConfig {
    /// Everything under `bucket` into `stream`, with the defaults of the command's flags:
    /// no filter, no destination, nothing marked, progress in `.firetail-redrive`.
    pub fn new(bucket: &str, stream: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            prefix: String::new(),
            stream: stream.to_owned(),
            filter: Filter::default(),
            rules: Rules::new(FIREHOSE_MAX_RECORD_BYTES),
            dry_run: false,
            after: AfterDone::Nothing,
            max_objects: None,
            state_dir: PathBuf::from(".firetail-redrive"),
            limits: CallLimits::FIREHOSE,
            retry: default_retry(),
            progress: false,
            clock: now_ms,
        }
    }
}

/// From 100 ms up to 20 s between attempts, [`DEFAULT_RETRY_ATTEMPTS`] calls per record.
pub fn default_retry() -> RetryPolicy {
    let backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(20),
    };
    RetryPolicy::bounded(backoff, DEFAULT_RETRY_ATTEMPTS, None)
}

/// Failures that stop a redrive before or between objects.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The bucket could not be listed.
    #[error("s3://{bucket}/{prefix}: {source}")]
    List {
        /// Bucket.
        bucket: String,
        /// Prefix.
        prefix: String,
        /// What the store said.
        source: StoreError,
    },
    /// The delivery stream could not be described.
    #[error("delivery stream {stream}: {source}")]
    Describe {
        /// Stream.
        stream: String,
        /// What Firehose said.
        source: CallError,
    },
    /// The delivery stream does not accept records.
    #[error("delivery stream {stream} is {status}, not ACTIVE")]
    NotActive {
        /// Stream.
        stream: String,
        /// Its status.
        status: StreamStatus,
    },
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Checks that `stream` accepts records, so a one-shot run says so at once instead of
/// retrying against a stream that is missing or still being created.
pub async fn ensure_active<C>(firehose: &C, stream: &str) -> Result<(), RedriveError>
where
    C: FirehoseClient + ?Sized,
{
    match firehose.describe_delivery_stream(stream).await {
        Ok(StreamStatus::Active) => Ok(()),
        Ok(status) => Err(RedriveError::NotActive {
            stream: stream.to_owned(),
            status,
        }),
        Err(source) => Err(RedriveError::Describe {
            stream: stream.to_owned(),
            source,
        }),
    }
}

/// Redrives `s3://bucket/prefix` into the stream until done or `shutdown` completes.
pub async fn redrive<S, C>(
    config: &RedriveConfig,
    store: &S,
    firehose: &C,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, RedriveError>
where
    S: ObjectStore,
    C: FirehoseClient,
{
    let (stop_tx, stop) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut run = Run {
        config,
        store,
        firehose: UntilStopped {
            inner: firehose,
            stop: stop.clone(),
            refused: AtomicU32::new(0),
        },
        path: state::state_path(
            &config.state_dir,
            &config.bucket,
            &config.prefix,
            &config.stream,
        ),
        state: State::new(&config.bucket, &config.prefix, &config.stream),
        summary: Summary {
            dry_run: config.dry_run,
            ..Summary::default()
        },
        stop,
        bar: progress_bar(config.progress),
    };
    let result = run.all().await;
    watcher.abort();
    run.bar.finish_and_clear();
    result.map(|()| run.summary)
}

fn progress_bar(draw: bool) -> ProgressBar {
    if !draw {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{bar:30} {pos}/{len} objects, {msg} [{elapsed_precise}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(0).with_style(style)
}

/// The client as the run sees it: after the shutdown signal it refuses every new call (a
/// permanent error, so a bounded delivery ends at once), while the call in flight goes on.
struct UntilStopped<'a, C> {
    inner: &'a C,
    stop: watch::Receiver<bool>,
    /// Calls refused since last read (they are not `PutRecordBatch` calls).
    refused: AtomicU32,
}

impl<C: FirehoseClient> FirehoseClient for UntilStopped<'_, C> {
    async fn put_record_batch(
        &self,
        stream: &str,
        records: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, CallError> {
        if *self.stop.borrow() {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(CallError::Permanent {
                code: "Interrupted".into(),
                message: "shutting down: no new call".into(),
            });
        }
        self.inner.put_record_batch(stream, records).await
    }

    async fn describe_delivery_stream(&self, stream: &str) -> Result<StreamStatus, CallError> {
        self.inner.describe_delivery_stream(stream).await
    }
}

/// Completes once the stop flag is set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Runs `work` to its end, or, once the stop flag is set, for at most [`STOP_GRACE`] more.
async fn with_grace<F: Future>(mut stop: watch::Receiver<bool>, work: F) -> Option<F::Output> {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => Some(out),
        () = stopped(&mut stop) => tokio::time::timeout(STOP_GRACE, &mut work).await.ok(),
    }
}

/// What one object's lines come to.
#[derive(Debug, Default)]
struct Plan {
    /// Records to send.
    to_send: Vec<Record<Token>>,
    /// A line stays in the object (malformed, filtered, would fail again).
    held_back: bool,
}

struct Run<'a, S, C> {
    config: &'a RedriveConfig,
    store: &'a S,
    firehose: UntilStopped<'a, C>,
    path: PathBuf,
    state: State,
    summary: Summary,
    stop: watch::Receiver<bool>,
    bar: ProgressBar,
}

impl<S: ObjectStore, C: FirehoseClient> Run<'_, S, C> {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn save(&self) -> Result<(), StateError> {
        if self.config.dry_run {
            return Ok(());
        }
        state::save(&self.path, &self.state)
    }

    /// Every listed object, until done, interrupted, `--max-objects`, or a delivery gave up.
    async fn all(&mut self) -> Result<(), RedriveError> {
        let c = self.config;
        self.state = state::load(&self.path, &c.bucket, &c.prefix, &c.stream)?;
        let objects = self.list().await?;
        self.summary.objects_listed = objects.len() as u64;
        tracing::info!(
            bucket = %c.bucket,
            prefix = %c.prefix,
            stream = %c.stream,
            objects = objects.len(),
            dry_run = c.dry_run,
            state_file = %self.path.display(),
            "redrive starting"
        );
        self.bar.set_length(objects.len() as u64);
        let mut worked = 0usize;
        for (i, object) in objects.iter().enumerate() {
            let remaining = (objects.len() - i) as u64;
            if self.stopping() {
                self.summary.interrupted = true;
                self.summary.objects_not_reached = remaining;
                break;
            }
            if self.done_before(object) {
                self.skip();
                continue;
            }
            if c.max_objects.is_some_and(|max| worked >= max) {
                self.summary.stopped_at_max_objects = true;
                self.summary.objects_not_reached = remaining;
                break;
            }
            worked += 1;
            if c.after == AfterDone::Tag && self.is_tagged(&object.key).await {
                self.skip();
                continue;
            }
            self.object(object).await?;
            self.show_progress();
            if self.summary.interrupted || self.summary.gave_up.is_some() {
                self.summary.objects_not_reached = remaining - 1;
                break;
            }
        }
        Ok(())
    }

    /// Every object under the prefix but `redriven/` and folder markers, sorted by key.
    async fn list(&self) -> Result<Vec<Listed>, RedriveError> {
        let c = self.config;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .store
                .list(&c.bucket, &c.prefix, token)
                .await
                .map_err(|source| RedriveError::List {
                    bucket: c.bucket.clone(),
                    prefix: c.prefix.clone(),
                    source,
                })?;
            out.extend(
                page.objects
                    .into_iter()
                    .filter(|o| !o.key.starts_with(REDRIVEN_PREFIX) && !o.key.ends_with('/')),
            );
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Finished by an earlier run, with the after-action asked for now (if any) applied.
    fn done_before(&self, object: &Listed) -> bool {
        let after = self.config.after;
        self.state
            .object(&object.key, &object.etag)
            .is_some_and(|p| {
                p.complete && (after == AfterDone::Nothing || p.marked == after.name())
            })
    }

    fn skip(&mut self) {
        self.summary.objects_already_done += 1;
        self.bar.inc(1);
    }

    fn show_progress(&self) {
        self.bar.inc(1);
        self.bar.set_message(format!(
            "{} records sent, {} left behind",
            self.summary.records_sent,
            self.summary.problems.len() as u64 + self.summary.problems_not_listed
        ));
    }

    async fn is_tagged(&self, key: &str) -> bool {
        match self.store.get_tags(&self.config.bucket, key).await {
            Ok(tags) => tags.iter().any(|(k, _)| k == TAG_KEY),
            Err(error) => {
                // Not knowing means reading it; the state file still prevents resending.
                tracing::warn!(key, %error, "cannot read the object's tags");
                false
            }
        }
    }

    /// One object: read, classify, send, record, mark.
    async fn object(&mut self, object: &Listed) -> Result<(), RedriveError> {
        // Line hashes carry over when the object changed; line numbers only when it did not.
        let progress = self.state.object_mut(&object.key, &object.etag).clone();
        if !progress.complete {
            if !self.redrive_lines(object, &progress).await? {
                return Ok(());
            }
        } else if self.config.dry_run {
            self.summary.objects_done += 1;
            return Ok(());
        }
        self.finish(object).await
    }

    /// Sends what is left of the object's lines; true when every line is now acknowledged.
    async fn redrive_lines(
        &mut self,
        object: &Listed,
        progress: &ObjectProgress,
    ) -> Result<bool, RedriveError> {
        let Some(body) = self.read(object).await else {
            self.summary.objects_left += 1;
            return Ok(false);
        };
        let plan = self.classify(&object.key, &body, progress);
        if self.config.dry_run {
            self.count_dry_run(&plan);
            return Ok(false);
        }
        let unsent = self.send(object, plan.to_send).await?;
        if plan.held_back || unsent > 0 {
            self.summary.objects_left += 1;
            return Ok(false);
        }
        self.state.object_mut(&object.key, &object.etag).finish();
        self.save()?;
        Ok(true)
    }

    /// The object's bytes at the listed ETag, inflated when gzip; a failure is reported.
    async fn read(&mut self, object: &Listed) -> Option<Vec<u8>> {
        let key = object.key.as_str();
        let got = self
            .store
            .get(&self.config.bucket, key, if_match(&object.etag))
            .await;
        let body = match got {
            Ok(body) => body,
            Err(why) => {
                self.summary
                    .problem(key, None, ProblemKind::Object, why.to_string());
                return None;
            }
        };
        if !is_gzip(&body) {
            return Some(body);
        }
        match gunzip_capped(&body, MAX_OBJECT_BYTES) {
            Ok(inflated) => Some(inflated),
            Err(why) => {
                self.summary
                    .problem(key, None, ProblemKind::Object, why.to_string());
                None
            }
        }
    }

    /// Judges every line not acknowledged before.
    fn classify(&mut self, key: &str, body: &[u8], progress: &ObjectProgress) -> Plan {
        let now = (self.config.clock)();
        let parsed: Vec<(u64, u64, Result<ErrorRecord, LineError>)> = lines(body)
            .map(|(n, line)| (n, line_hash(line), parse_line(line)))
            .collect();
        let unclear = self.origin_unclear(key, &parsed);
        let mut plan = Plan::default();
        for (n, hash, parsed) in parsed {
            if progress.was_sent(n, hash) {
                self.summary.records_already_sent += 1;
                continue;
            }
            let record = match parsed {
                Ok(r) => r,
                Err(e) => {
                    self.summary.malformed_lines += 1;
                    self.summary
                        .problem(key, Some(n), ProblemKind::Malformed, e.to_string());
                    plan.held_back = true;
                    continue;
                }
            };
            if unclear {
                // Reported with the object; none of its records is sent.
                self.summary.records_origin_unclear += 1;
                plan.held_back = true;
                continue;
            }
            match self.judge(key, n, record, now) {
                Some(data) => plan
                    .to_send
                    .push(Record::single(Bytes::from(data), (n, hash))),
                None => plan.held_back = true,
            }
        }
        plan
    }

    /// Whether the object's key and its records disagree about where the records come from
    /// (Firehose writes one error output type per object, so either means the object is not
    /// what it seems); reports it per object and per line.
    fn origin_unclear(
        &mut self,
        key: &str,
        parsed: &[(u64, u64, Result<ErrorRecord, LineError>)],
    ) -> bool {
        let origins: Vec<(u64, Origin)> = parsed
            .iter()
            .filter_map(|(n, _, r)| r.as_ref().ok().map(|r| (*n, r.origin)))
            .collect();
        let expected = match key_error_type(key) {
            KeyType::Known(t) => {
                let wrong: Vec<&(u64, Origin)> =
                    origins.iter().filter(|(_, o)| *o != t.origin()).collect();
                if wrong.is_empty() {
                    return false;
                }
                for (n, origin) in &wrong {
                    let detail = format!(
                        "the record's fields make it {}, but the key says {}",
                        origin.name(),
                        t.as_str()
                    );
                    self.summary
                        .problem(key, Some(*n), ProblemKind::Origin, detail);
                }
                let detail = format!(
                    "{} of {} records are not {} as the key says; nothing in this object is sent",
                    wrong.len(),
                    origins.len(),
                    t.as_str()
                );
                self.summary.problem(key, None, ProblemKind::Origin, detail);
                return true;
            }
            KeyType::Unknown(segment) => {
                let detail = format!(
                    "{segment:?} in the key is not an error output type Firehose writes \
                     (processing-failed, http-endpoint-failed, AmazonOpenSearchService-failed, \
                     splunk-failed, format-conversion-failed); nothing in this object is sent"
                );
                self.summary.problem(key, None, ProblemKind::Origin, detail);
                return true;
            }
            KeyType::Conflicting(a, b) => {
                let detail = format!(
                    "the key names two error output types, {} and {}; nothing in this object \
                     is sent",
                    a.as_str(),
                    b.as_str()
                );
                self.summary.problem(key, None, ProblemKind::Origin, detail);
                return true;
            }
            KeyType::Untyped => most_common(&origins),
        };
        let Some(expected) = expected else {
            return false;
        };
        let wrong: Vec<&(u64, Origin)> = origins.iter().filter(|(_, o)| *o != expected).collect();
        if wrong.is_empty() {
            return false;
        }
        for (n, origin) in &wrong {
            let detail = format!(
                "the record is {}, but most records of this object are {}",
                origin.name(),
                expected.name()
            );
            self.summary
                .problem(key, Some(*n), ProblemKind::Origin, detail);
        }
        let detail = format!(
            "records of several origins in one object ({} of {} are not {}); nothing in this \
             object is sent",
            wrong.len(),
            origins.len(),
            expected.name()
        );
        self.summary.problem(key, None, ProblemKind::Origin, detail);
        true
    }

    /// One record: its data when it is to be sent; counted and reported either way.
    fn judge(&mut self, key: &str, n: u64, record: ErrorRecord, now: i64) -> Option<Vec<u8>> {
        let c = self.config;
        let decision = verdict(&record, &c.filter, &c.rules, now);
        let code = self
            .summary
            .by_error_code
            .entry(record.error_code.clone())
            .or_default();
        code.records += 1;
        let (kind, why) = match decision {
            Verdict::Send => {
                code.sendable += 1;
                if c.dry_run && code.sample.is_none() {
                    code.sample = Some(sample(&record.data));
                }
                return Some(record.data);
            }
            Verdict::Restamp { data, events } => {
                code.sendable += 1;
                code.restamped += 1;
                if c.dry_run && code.sample.is_none() {
                    code.sample = Some(sample(&record.data));
                }
                self.summary.records_restamped += 1;
                self.summary.events_restamped += events as u64;
                return Some(data);
            }
            Verdict::Filtered => {
                self.summary.records_filtered += 1;
                return None;
            }
            Verdict::WillFailAgain(why) => {
                self.summary.records_will_fail_again += 1;
                (ProblemKind::WillFailAgain, why)
            }
            Verdict::TooOld(why) => {
                code.too_old += 1;
                self.summary.records_too_old += 1;
                (ProblemKind::TooOld, why)
            }
            Verdict::NoEventTime(why) => {
                self.summary.records_no_event_time += 1;
                (ProblemKind::NoEventTime, why)
            }
            Verdict::Corrupt(why) => {
                self.summary.records_corrupt += 1;
                (ProblemKind::Corrupt, why)
            }
        };
        let detail = format!("errorCode {:?}: {why}", record.error_code);
        self.summary.problem(key, Some(n), kind, detail);
        None
    }

    fn count_dry_run(&mut self, plan: &Plan) {
        self.summary.records_sent += plan.to_send.len() as u64;
        self.summary.bytes_sent += plan
            .to_send
            .iter()
            .map(|r| r.data.len() as u64)
            .sum::<u64>();
        if plan.held_back {
            self.summary.objects_left += 1;
        } else {
            self.summary.objects_done += 1;
        }
    }

    /// Sends `records` of `object`; returns how many were not acknowledged.
    async fn send(
        &mut self,
        object: &Listed,
        records: Vec<Record<Token>>,
    ) -> Result<u64, RedriveError> {
        let mut batches = batch_records(records, self.config.limits).into_iter();
        let mut unsent = 0u64;
        for batch in batches.by_ref() {
            if self.stopping() {
                self.summary.interrupted = true;
                unsent += batch.records.len() as u64;
                break;
            }
            unsent += self.send_batch(object, batch).await?;
            if self.summary.interrupted || self.summary.gave_up.is_some() {
                break;
            }
        }
        unsent += batches.map(|b| b.records.len() as u64).sum::<u64>();
        self.summary.records_unsent += unsent;
        Ok(unsent)
    }

    /// One `PutRecordBatch` batch with its retries; saves what was acknowledged, returns how
    /// many records were not.
    async fn send_batch(
        &mut self,
        object: &Listed,
        batch: Batch<Token>,
    ) -> Result<u64, RedriveError> {
        let c = self.config;
        let size = batch.records.len() as u64;
        let mut acked: Vec<Token> = Vec::with_capacity(batch.records.len());
        let mut bytes = 0u64;
        let delivery = {
            let sending = deliver(&self.firehose, &c.stream, batch, &c.retry, &(), |r| {
                bytes += r.data.len() as u64;
                acked.extend(r.tokens);
            });
            with_grace(self.stop.clone(), sending).await
        };
        self.summary.records_sent += acked.len() as u64;
        self.summary.bytes_sent += bytes;
        self.state
            .object_mut(&object.key, &object.etag)
            .record(&acked);
        self.save()?;
        let refused = self.firehose.refused.swap(0, Ordering::Relaxed);
        match delivery {
            None => self.summary.interrupted = true,
            Some(d) => self.delivered(&object.key, d, refused),
        }
        Ok(size - acked.len() as u64)
    }

    /// Counts a finished delivery; what it did not get accepted is reported and stops the run.
    fn delivered(&mut self, key: &str, d: Delivery<Token>, refused: u32) {
        self.summary.calls += u64::from(d.calls.saturating_sub(refused));
        self.summary.resent_records += d.resent_records;
        if d.unsent.is_empty() {
            return;
        }
        if refused > 0 {
            // Cut short by the shutdown signal, not refused by Firehose.
            self.summary.interrupted = true;
            return;
        }
        let why = d.last_error.unwrap_or_else(|| "no error given".into());
        let numbers: Vec<String> = d
            .unsent
            .iter()
            .flat_map(|r| r.tokens.iter().map(|(n, _)| n.to_string()))
            .collect();
        let shown = numbers
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if numbers.len() > 10 { ", ..." } else { "" };
        let detail = format!(
            "{} records not accepted by Firehose (lines {shown}{more}); last error: {why}",
            numbers.len()
        );
        self.summary
            .problem(key, None, ProblemKind::NotAccepted, detail);
        self.summary.gave_up = Some(why);
    }

    /// Marks a finished object as asked, then counts it done.
    async fn finish(&mut self, object: &Listed) -> Result<(), RedriveError> {
        let c = self.config;
        let key = object.key.as_str();
        if c.after != AfterDone::Nothing {
            if let Err(why) = self.mark(object).await {
                self.summary.problem(
                    key,
                    None,
                    ProblemKind::Object,
                    format!("every record was redriven, but marking failed: {why}"),
                );
                self.summary.objects_left += 1;
                return Ok(());
            }
            self.state.object_mut(key, &object.etag).marked = c.after.name().to_owned();
            self.save()?;
        }
        tracing::info!(key, "object redriven");
        self.summary.objects_done += 1;
        Ok(())
    }

    async fn mark(&self, object: &Listed) -> Result<(), StoreError> {
        let c = self.config;
        let (bucket, key) = (c.bucket.as_str(), object.key.as_str());
        match c.after {
            AfterDone::Nothing => Ok(()),
            AfterDone::Tag => {
                let mut tags = self.store.get_tags(bucket, key).await?;
                tags.retain(|(k, _)| k != TAG_KEY);
                tags.push((TAG_KEY.to_owned(), c.stream.clone()));
                self.store.put_tags(bucket, key, &tags).await
            }
            AfterDone::Move => {
                let to = format!("{REDRIVEN_PREFIX}{key}");
                self.store
                    .copy(bucket, key, &to, if_match(&object.etag))
                    .await?;
                self.store.delete(bucket, key).await
            }
            AfterDone::Delete => self.store.delete(bucket, key).await,
        }
    }
}

/// The origin most records have (the first seen among equals), `None` without records.
fn most_common(origins: &[(u64, Origin)]) -> Option<Origin> {
    let mut counts: Vec<(Origin, usize)> = Vec::new();
    for (_, o) in origins {
        match counts.iter_mut().find(|(c, _)| c == o) {
            Some((_, n)) => *n += 1,
            None => counts.push((*o, 1)),
        }
    }
    let best = counts.iter().map(|(_, n)| *n).max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(o, _)| o)
}

/// Milliseconds since the Unix epoch, now: the clock Datadog's window is measured against.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The ETag to pin a read or copy to, when the listing gave one.
fn if_match(etag: &str) -> Option<&str> {
    (!etag.is_empty()).then_some(etag)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::path::Path;

    use base64::Engine as _;
    use firetail_firehose::testing::{Failing, Scripted, Step};

    use super::*;
    use crate::s3::memory::{MemoryStore, Op};

    const BUCKET: &str = "backup";

    /// A processing-failed error line carrying `data`.
    fn line(data: &str) -> String {
        serde_json::json!({
            "attemptsMade": 4,
            "arrivalTimestamp": 1_764_410_400_000_i64,
            "errorCode": "Lambda.FunctionError",
            "rawData": base64::engine::general_purpose::STANDARD.encode(data),
            "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:t",
        })
        .to_string()
    }

    /// An object of error lines, one per record.
    fn object(records: &[&str]) -> String {
        records.iter().map(|r| line(r) + "\n").collect()
    }

    fn config(state: &Path, attempts: u32) -> RedriveConfig {
        let mut c = RedriveConfig::new(BUCKET, "logs");
        c.state_dir = state.to_owned();
        let fast = Backoff {
            base: Duration::from_millis(1),
            cap: Duration::from_millis(4),
        };
        c.retry = RetryPolicy::bounded(fast, attempts, None);
        c
    }

    async fn never() {
        std::future::pending::<()>().await;
    }

    fn accepted(firehose: &Scripted) -> Vec<String> {
        firehose
            .accepted()
            .iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn an_object_is_marked_only_when_every_record_in_it_was_accepted() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["a1", "a2"]));
        store.put(BUCKET, "b", object(&["b1"]) + "{not json\n");
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Delete;
        let firehose = Scripted::accepting();
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        assert_eq!(accepted(&firehose), ["a1", "a2", "b1"]);
        assert_eq!((summary.objects_done, summary.objects_left), (1, 1));
        assert_eq!((summary.records_sent, summary.malformed_lines), (3, 1));
        assert_eq!(
            store.keys(BUCKET),
            ["b"],
            "only the complete object is deleted"
        );
        assert!(summary.left_behind());
    }

    #[tokio::test]
    async fn partial_failures_resend_only_the_failed_entries() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0", "r1", "r2"]));
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Delete;
        let firehose = Scripted::new([Step::Mask(vec![true, false, true])]);
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        let calls: Vec<Vec<Bytes>> = firehose.calls().into_iter().map(|c| c.records).collect();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[1],
            [Bytes::from("r1")],
            "only the refused entry is resent"
        );
        assert_eq!((summary.calls, summary.resent_records), (2, 1));
        assert_eq!(summary.records_sent, 3);
        assert!(store.keys(BUCKET).is_empty());
        assert!(!summary.left_behind(), "{summary:#?}");
    }

    #[tokio::test]
    async fn bounded_retries_leave_the_object_in_place_report_it_and_stop() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0", "r1", "r2"]));
        store.put(BUCKET, "b", object(&["b0"]));
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 2);
        cfg.after = AfterDone::Delete;
        // Two attempts: r0 and r2 get in, r1 is refused both times.
        let firehose =
            Scripted::new([Step::Mask(vec![true, false, true]), Step::Mask(vec![false])]);
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        assert_eq!(accepted(&firehose), ["r0", "r2"]);
        assert_eq!((summary.records_sent, summary.records_unsent), (2, 1));
        assert_eq!(summary.calls, 2);
        assert!(
            summary
                .gave_up
                .as_deref()
                .is_some_and(|why| why.contains("ServiceUnavailableException")),
            "{summary:#?}"
        );
        let problem = &summary.problems[0];
        assert_eq!(
            (problem.key.as_str(), problem.kind),
            ("a", ProblemKind::NotAccepted)
        );
        assert!(
            problem
                .detail
                .contains("1 records not accepted by Firehose (lines 2)")
        );
        assert_eq!(
            summary.objects_not_reached, 1,
            "the run stops after giving up"
        );
        assert_eq!(store.keys(BUCKET), ["a", "b"], "nothing is deleted");
        assert!(summary.left_behind());

        // The next run sends only what is missing.
        let firehose = Scripted::accepting();
        let again = redrive(&cfg, &store, &firehose, never()).await.unwrap();
        assert_eq!(accepted(&firehose), ["r1", "b0"]);
        assert_eq!(again.records_already_sent, 2);
        assert!(store.keys(BUCKET).is_empty());
        assert!(!again.left_behind(), "{again:#?}");
    }

    #[tokio::test]
    async fn a_permanent_error_ends_the_run_at_once() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0", "r1"]));
        store.put(BUCKET, "b", object(&["b0"]));
        let state = tempfile::tempdir().unwrap();
        let firehose = Failing(CallError::Permanent {
            code: "AccessDeniedException".into(),
            message: "no".into(),
        });
        let summary = redrive(&config(state.path(), 8), &store, &firehose, never())
            .await
            .unwrap();
        assert_eq!(summary.calls, 1);
        assert_eq!((summary.records_sent, summary.records_unsent), (0, 2));
        assert!(summary.gave_up.unwrap().contains("AccessDeniedException"));
        assert_eq!(summary.objects_not_reached, 1);
    }

    #[tokio::test]
    async fn dry_run_changes_nothing() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0", "r1"]));
        let before = store.object(BUCKET, "a");
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.dry_run = true;
        cfg.after = AfterDone::Tag;
        let firehose = Scripted::accepting();
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        assert!(firehose.calls().is_empty());
        assert_eq!(store.object(BUCKET, "a"), before, "not deleted, not tagged");
        assert_eq!(std::fs::read_dir(state.path()).unwrap().count(), 0);
        assert_eq!((summary.records_sent, summary.objects_done), (2, 1));
        assert_eq!(summary.calls, 0);
        let code = &summary.by_error_code["Lambda.FunctionError"];
        assert_eq!(code.sample.as_deref(), Some("r0"));
    }

    /// Accepts everything, one second after each call.
    struct Slow(Scripted);

    impl FirehoseClient for Slow {
        async fn put_record_batch(
            &self,
            stream: &str,
            records: &[Bytes],
        ) -> Result<Vec<EntryOutcome>, CallError> {
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.0.put_record_batch(stream, records).await
        }

        async fn describe_delivery_stream(&self, stream: &str) -> Result<StreamStatus, CallError> {
            self.0.describe_delivery_stream(stream).await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_the_call_in_flight_answer_and_starts_no_new_one() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["a0", "a1"]));
        store.put(BUCKET, "b", object(&["b0"]));
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Delete;
        let firehose = Slow(Scripted::accepting());
        let shutdown = tokio::time::sleep(Duration::from_millis(500));
        let summary = redrive(&cfg, &store, &firehose, shutdown).await.unwrap();

        assert_eq!(firehose.0.calls().len(), 1, "no call after the signal");
        assert_eq!(summary.records_sent, 2, "the call in flight was answered");
        assert!(summary.interrupted);
        assert_eq!(summary.objects_not_reached, 1);
        assert_eq!(store.keys(BUCKET), ["b"], "a was finished before stopping");

        // A call that never answers (b's) is given up after the grace period; nothing is
        // marked.
        let hanging = Scripted::new([Step::Hang]);
        let started = tokio::time::Instant::now();
        let shutdown = tokio::time::sleep(Duration::from_millis(500));
        let summary = redrive(&cfg, &store, &hanging, shutdown).await.unwrap();
        assert!(
            started.elapsed()
                <= Duration::from_millis(500) + STOP_GRACE + Duration::from_millis(50)
        );
        assert!(summary.interrupted);
        assert_eq!((summary.records_sent, summary.records_unsent), (0, 1));
        assert_eq!(store.keys(BUCKET), ["b"]);
    }

    #[tokio::test]
    async fn tags_are_added_beside_others_and_honoured_without_the_state_file() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0"]));
        let other = [("team".to_owned(), "logs".to_owned())];
        store.put_tags(BUCKET, "a", &other).await.unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Tag;
        let firehose = Scripted::accepting();
        redrive(&cfg, &store, &firehose, never()).await.unwrap();
        let tags = store.object(BUCKET, "a").unwrap().tags;
        assert_eq!(
            tags,
            [other[0].clone(), (TAG_KEY.to_owned(), "logs".to_owned())]
        );

        let fresh = tempfile::tempdir().unwrap();
        cfg.state_dir = fresh.path().to_owned();
        let again = redrive(&cfg, &store, &firehose, never()).await.unwrap();
        assert_eq!(again.objects_already_done, 1);
        assert_eq!(firehose.calls().len(), 1, "not sent again");
    }

    #[tokio::test]
    async fn a_failed_mark_leaves_the_object_and_says_so() {
        let store = MemoryStore::new();
        store.put(BUCKET, "a", object(&["r0"]));
        store.fail(Op::Delete);
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Move;
        let summary = redrive(&cfg, &store, &Scripted::accepting(), never())
            .await
            .unwrap();
        assert_eq!((summary.records_sent, summary.objects_left), (1, 1));
        assert!(
            summary.problems[0]
                .detail
                .starts_with("every record was redriven, but marking failed")
        );
        assert!(store.keys(BUCKET).contains(&"a".to_owned()));
    }

    #[tokio::test]
    async fn listing_follows_pages_and_skips_redriven_and_folder_markers() {
        let store = MemoryStore::with_page_size(2);
        for i in 0..5 {
            store.put(BUCKET, &format!("firehose/{i}"), object(&["x"]));
        }
        store.put(BUCKET, "firehose/", "");
        store.put(BUCKET, "redriven/firehose/0", object(&["x"]));
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.dry_run = true;
        let summary = redrive(&cfg, &store, &Scripted::accepting(), never())
            .await
            .unwrap();
        assert_eq!(summary.objects_listed, 5);
        assert_eq!(summary.records_sent, 5);
    }

    /// An http-endpoint-failed error line carrying `data`.
    fn delivery_line(data: &[u8]) -> String {
        serde_json::json!({
            "attemptsMade": 2,
            "arrivalTimestamp": 1_764_410_400_000_i64,
            "errorCode": "HttpEndpoint.DestinationException",
            "errorMessage": "503",
            "attemptEndingTimestamp": 1_764_410_700_000_i64,
            "rawData": base64::engine::general_purpose::STANDARD.encode(data),
            "subsequenceNumber": 0,
            "dataId": "1",
        })
        .to_string()
    }

    /// A sidecar event read at `ms`.
    fn event_at(ms: i64) -> String {
        format!(
            r#"{{"time":"{}","stream":"file","log":"x","file":"/f"}}"#,
            firetail_wire::time::format_rfc3339_ms(ms)
        )
    }

    fn datadog(state: &Path) -> RedriveConfig {
        let mut cfg = config(state, 8);
        cfg.rules.destination = Some(firetail_wire::Destination::Datadog);
        cfg.after = AfterDone::Delete;
        cfg
    }

    #[tokio::test]
    async fn too_old_records_keep_their_object_and_are_counted_per_code() {
        let now = now_ms();
        let (old, young) = (event_at(now - 20 * 3_600_000), event_at(now - 3_600_000));
        let store = MemoryStore::new();
        store.put(
            BUCKET,
            "failed/processing-failed/a",
            object(&[&young, &old]),
        );
        store.put(BUCKET, "failed/processing-failed/b", object(&[&young]));
        let state = tempfile::tempdir().unwrap();
        let cfg = datadog(state.path());
        let firehose = Scripted::accepting();
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        assert_eq!(accepted(&firehose), [young.clone(), young.clone()]);
        assert_eq!((summary.records_too_old, summary.records_sent), (1, 2));
        assert_eq!(summary.by_error_code["Lambda.FunctionError"].too_old, 1);
        assert_eq!(
            store.keys(BUCKET),
            ["failed/processing-failed/a"],
            "a holds a record not delivered"
        );
        let p = &summary.problems[0];
        assert_eq!(
            (p.key.as_str(), p.line, p.kind),
            ("failed/processing-failed/a", Some(2), ProblemKind::TooOld)
        );
        assert!(summary.left_behind());

        // With --restamp the old record goes out with the redrive's time, and the object is done.
        let mut restamp = cfg.clone();
        restamp.rules.restamp = true;
        let firehose = Scripted::accepting();
        let again = redrive(&restamp, &store, &firehose, never()).await.unwrap();
        let sent = accepted(&firehose);
        assert_eq!(sent.len(), 1, "only the old record is left to send");
        let v: serde_json::Value = serde_json::from_str(&sent[0]).unwrap();
        let sent_ms = firetail_wire::time::parse_rfc3339_ms(v["time"].as_str().unwrap()).unwrap();
        assert!(sent_ms >= now, "re-stamped");
        assert_eq!(v[crate::age::ORIGINAL_TIMESTAMP], now - 20 * 3_600_000);
        assert_eq!((again.records_restamped, again.events_restamped), (1, 1));
        assert!(store.keys(BUCKET).is_empty());
        assert!(!again.left_behind(), "{again:#?}");
    }

    #[tokio::test]
    async fn objects_of_mixed_or_unknown_origin_are_left_whole() {
        let now = now_ms();
        let young = event_at(now - 3_600_000);
        let store = MemoryStore::new();
        // A delivery failure among transform failures, under a key that names neither.
        let mixed = format!(
            "{}\n{}\n{}\n",
            line(&young),
            delivery_line(young.as_bytes()),
            line(&young)
        );
        store.put(BUCKET, "failed/datadog-errors/2026/mixed", mixed);
        // The key says processing-failed, the record is a delivery failure.
        store.put(
            BUCKET,
            "failed/processing-failed/wrong",
            delivery_line(young.as_bytes()) + "\n",
        );
        store.put(BUCKET, "failed/datadog/bogus-failed/u", object(&[&young]));
        store.put(BUCKET, "failed/datadog-errors/2026/fine", object(&[&young]));
        let state = tempfile::tempdir().unwrap();
        let cfg = datadog(state.path());
        let firehose = Scripted::accepting();
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();

        assert_eq!(
            accepted(&firehose),
            [young],
            "only the clean object is sent"
        );
        assert_eq!(summary.records_origin_unclear, 3 + 1 + 1);
        assert_eq!(
            store.keys(BUCKET),
            [
                "failed/datadog-errors/2026/mixed",
                "failed/datadog/bogus-failed/u",
                "failed/processing-failed/wrong"
            ]
        );
        let origin: Vec<(&str, Option<u64>)> = summary
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::Origin)
            .map(|p| (p.key.as_str(), p.line))
            .collect();
        assert_eq!(
            origin,
            [
                ("failed/datadog-errors/2026/mixed", Some(2)),
                ("failed/datadog-errors/2026/mixed", None),
                ("failed/datadog/bogus-failed/u", None),
                ("failed/processing-failed/wrong", Some(1)),
                ("failed/processing-failed/wrong", None),
            ]
        );
        assert!(
            summary
                .problems
                .iter()
                .any(|p| p.detail.contains("\"bogus-failed\" in the key"))
        );
        assert!(summary.left_behind());
    }

    #[tokio::test]
    async fn a_truncated_gzip_object_is_reported_and_kept() {
        let store = MemoryStore::new();
        let gz = firetail_wire::gzip::gzip(
            object(&["r0", "r1"]).as_bytes(),
            flate2::Compression::fast(),
        );
        store.put(
            BUCKET,
            "failed/processing-failed/cut.gz",
            gz[..gz.len() - 9].to_vec(),
        );
        let state = tempfile::tempdir().unwrap();
        let mut cfg = config(state.path(), 8);
        cfg.after = AfterDone::Delete;
        let firehose = Scripted::accepting();
        let summary = redrive(&cfg, &store, &firehose, never()).await.unwrap();
        assert!(firehose.calls().is_empty());
        assert_eq!(summary.objects_left, 1);
        let p = &summary.problems[0];
        assert_eq!((p.kind, p.line), (ProblemKind::Object, None));
        assert!(p.detail.contains("corrupt or truncated"), "{}", p.detail);
        assert_eq!(store.keys(BUCKET), ["failed/processing-failed/cut.gz"]);
    }

    #[test]
    fn a_redrive_can_be_spawned() {
        fn send<T: Send>(_: T) {}
        let (store, firehose) = (MemoryStore::new(), Scripted::accepting());
        send(redrive(
            &RedriveConfig::new(BUCKET, "logs"),
            &store,
            &firehose,
            never(),
        ));
    }

    #[tokio::test]
    async fn only_an_active_stream_is_accepted() {
        let firehose = Scripted::accepting();
        ensure_active(&firehose, "logs").await.unwrap();
        firehose.set_status(StreamStatus::Creating);
        let err = ensure_active(&firehose, "logs").await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "delivery stream logs is CREATING, not ACTIVE"
        );
        let missing = Failing(CallError::Permanent {
            code: "ResourceNotFoundException".into(),
            message: "gone".into(),
        });
        assert!(matches!(
            ensure_active(&missing, "logs").await,
            Err(RedriveError::Describe { .. })
        ));
    }
}
