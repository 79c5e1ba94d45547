//! The I/O shell of `firetail redrive`: list the backup objects, read each, send its records
//! through the shipper's sender, record progress, mark the object when all of it is in.
//!
//! Objects are worked on one at a time, in key order (Firehose's keys start with the date, so
//! that is roughly arrival order). An object's records go out in `PutRecordBatch` calls cut by
//! [`crate::pack::batch_records`] and sent by [`crate::send::send_batch`], which resends only the
//! entries that failed. Progress is saved after every call.
//!
//! On shutdown (SIGINT/SIGTERM) no new call starts; the call in flight gets [`STOP_GRACE`] to
//! answer, so its acknowledgements are saved rather than guessed.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{Tag, Tagging};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::watch;

use super::parse::{inflate, lines, parse_line};
use super::report::{ProblemKind, Summary, sample};
use super::state::{self, State, StateError, line_hash};
use super::verdict::{Filter, Rules, Verdict, verdict};
use crate::metrics::Observability;
use crate::pack::{Limits, Record, batch_records};
use crate::send::{SendPolicy, send_batch};
use crate::sink::Sink;

/// Objects moved by `--move-after` go under this prefix, which listing always skips.
pub const REDRIVEN_PREFIX: &str = "redriven/";

/// Tag key set by `--tag-after`; its value is the delivery stream.
pub const TAG_KEY: &str = "firetail-redriven";

/// Largest inflated object read into memory. Firehose writes backup objects of at most its
/// buffer size (128 MiB), so this is several times any real one.
pub const MAX_OBJECT_BYTES: usize = 1024 * 1024 * 1024;

/// How long the `PutRecordBatch` call in flight may take to answer after a shutdown signal.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

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
    pub limits: Limits,
    /// Retry timing of the sender.
    pub policy: SendPolicy,
    /// Draw a progress bar on stderr.
    pub progress: bool,
}

/// Failures that stop a redrive before or between objects.
#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    /// The bucket could not be listed.
    #[error("listing s3://{bucket}/{prefix}: {message}")]
    List {
        /// Bucket.
        bucket: String,
        /// Prefix.
        prefix: String,
        /// SDK error.
        message: String,
    },
    /// The state file could not be read or written.
    #[error(transparent)]
    State(#[from] StateError),
}

#[derive(Debug)]
struct Listed {
    key: String,
    etag: String,
}

/// Redrives `s3://bucket/prefix` into `sink` until done or `shutdown` completes.
pub async fn redrive<S: Sink>(
    config: &RedriveConfig,
    s3: &Client,
    sink: &S,
    obs: &Observability,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Summary, RedriveError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut run = Run {
        config,
        s3,
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
        stop: stop_rx,
    };
    let result = run.all(sink, obs).await;
    watcher.abort();
    result.map(|()| run.summary)
}

struct Run<'a> {
    config: &'a RedriveConfig,
    s3: &'a Client,
    path: PathBuf,
    state: State,
    summary: Summary,
    stop: watch::Receiver<bool>,
}

impl Run<'_> {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn save(&self) -> Result<(), StateError> {
        if self.config.dry_run {
            return Ok(());
        }
        state::save(&self.path, &self.state)
    }

    async fn all<S: Sink>(&mut self, sink: &S, obs: &Observability) -> Result<(), RedriveError> {
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
        let bar = if c.progress {
            let style = ProgressStyle::with_template(
                "{bar:30} {pos}/{len} objects, {msg} [{elapsed_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            ProgressBar::new(objects.len() as u64).with_style(style)
        } else {
            ProgressBar::hidden()
        };
        let mut worked = 0usize;
        for (i, object) in objects.iter().enumerate() {
            let remaining = (objects.len() - i) as u64;
            if self.stopping() {
                self.summary.interrupted = true;
                self.summary.objects_not_reached = remaining;
                break;
            }
            let known = self.state.object(&object.key, &object.etag);
            if known.is_some_and(|p| {
                p.complete && (c.after == AfterDone::Nothing || p.marked == c.after.name())
            }) {
                self.summary.objects_already_done += 1;
                bar.inc(1);
                continue;
            }
            if c.max_objects.is_some_and(|max| worked >= max) {
                self.summary.stopped_at_max_objects = true;
                self.summary.objects_not_reached = remaining;
                break;
            }
            worked += 1;
            if c.after == AfterDone::Tag && self.is_tagged(&object.key).await {
                self.summary.objects_already_done += 1;
                bar.inc(1);
                continue;
            }
            self.object(object, sink, obs).await?;
            bar.inc(1);
            bar.set_message(format!(
                "{} records sent, {} left behind",
                self.summary.records_sent,
                self.summary.problems.len() as u64 + self.summary.problems_not_listed
            ));
            if self.summary.interrupted {
                self.summary.objects_not_reached = remaining - 1;
                break;
            }
        }
        bar.finish_and_clear();
        Ok(())
    }

    async fn list(&self) -> Result<Vec<Listed>, RedriveError> {
        let c = self.config;
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .s3
                .list_objects_v2()
                .bucket(&c.bucket)
                .prefix(&c.prefix)
                .set_continuation_token(token)
                .send()
                .await
                .map_err(|e| RedriveError::List {
                    bucket: c.bucket.clone(),
                    prefix: c.prefix.clone(),
                    message: DisplayErrorContext(&e).to_string(),
                })?;
            for o in page.contents() {
                let Some(key) = o.key() else { continue };
                if key.starts_with(REDRIVEN_PREFIX) || key.ends_with('/') {
                    continue;
                }
                out.push(Listed {
                    key: key.to_owned(),
                    etag: o.e_tag().unwrap_or_default().to_owned(),
                });
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                break;
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn is_tagged(&self, key: &str) -> bool {
        match self
            .s3
            .get_object_tagging()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out.tag_set().iter().any(|t| t.key() == TAG_KEY),
            Err(e) => {
                // Not knowing means reading it; the state file still prevents resending.
                tracing::warn!(key, error = %DisplayErrorContext(&e), "cannot read the object's tags");
                false
            }
        }
    }

    /// One object: read, classify, send, record, mark.
    async fn object<S: Sink>(
        &mut self,
        object: &Listed,
        sink: &S,
        obs: &Observability,
    ) -> Result<(), RedriveError> {
        let c = self.config;
        let key = object.key.as_str();
        // Line hashes carry over when the object changed; line numbers only when it did not.
        let progress = self.state.object_mut(key, &object.etag).clone();
        if !progress.complete {
            let body = match self.get(object).await {
                Ok(b) => b,
                Err(why) => {
                    self.summary.problem(key, None, ProblemKind::Object, why);
                    self.summary.objects_left += 1;
                    return Ok(());
                }
            };
            let body = match inflate(&body, MAX_OBJECT_BYTES) {
                Ok(b) => b,
                Err(why) => {
                    self.summary.problem(key, None, ProblemKind::Object, why);
                    self.summary.objects_left += 1;
                    return Ok(());
                }
            };
            let mut to_send = Vec::new();
            let mut held_back = false;
            for (n, line) in lines(&body) {
                let hash = line_hash(line);
                if progress.was_sent(n, hash) {
                    self.summary.records_already_sent += 1;
                    continue;
                }
                let record = match parse_line(line) {
                    Ok(r) => r,
                    Err(e) => {
                        held_back = true;
                        self.summary.malformed_lines += 1;
                        self.summary
                            .problem(key, Some(n), ProblemKind::Malformed, e.to_string());
                        continue;
                    }
                };
                let decision = verdict(&record, &c.filter, &c.rules);
                let code = self
                    .summary
                    .by_error_code
                    .entry(record.error_code.clone())
                    .or_default();
                code.records += 1;
                match decision {
                    Verdict::Send => {
                        code.sendable += 1;
                        if c.dry_run && code.sample.is_none() {
                            code.sample = Some(sample(&record.data));
                        }
                        to_send.push(Record {
                            raw_bytes: record.data.len(),
                            data: Bytes::from(record.data),
                            tokens: vec![(n, hash)],
                        });
                    }
                    Verdict::Filtered => {
                        held_back = true;
                        self.summary.records_filtered += 1;
                    }
                    Verdict::WillFailAgain(why) => {
                        held_back = true;
                        self.summary.records_will_fail_again += 1;
                        let detail = format!("errorCode {:?}: {why}", record.error_code);
                        self.summary
                            .problem(key, Some(n), ProblemKind::WillFailAgain, detail);
                    }
                }
            }
            if c.dry_run {
                self.summary.records_sent += to_send.len() as u64;
                self.summary.bytes_sent += to_send.iter().map(|r| r.data.len() as u64).sum::<u64>();
                if held_back {
                    self.summary.objects_left += 1;
                } else {
                    self.summary.objects_done += 1;
                }
                return Ok(());
            }
            let unsent = self.send(object, to_send, sink, obs).await?;
            if held_back || unsent > 0 {
                self.summary.objects_left += 1;
                return Ok(());
            }
            let entry = self.state.object_mut(key, &object.etag);
            entry.finish();
            self.save()?;
        } else if c.dry_run {
            self.summary.objects_done += 1;
            return Ok(());
        }
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

    /// Sends `records` of `object`; returns how many were not acknowledged (interrupted).
    async fn send<S: Sink>(
        &mut self,
        object: &Listed,
        records: Vec<Record<(u64, u64)>>,
        sink: &S,
        obs: &Observability,
    ) -> Result<u64, RedriveError> {
        let c = self.config;
        let mut batches = batch_records(records, &c.limits).into_iter();
        let mut unsent = 0u64;
        while let Some(batch) = batches.next() {
            if self.stopping() {
                self.summary.interrupted = true;
                unsent += batch.records.len() as u64;
                unsent += batches.map(|b| b.records.len() as u64).sum::<u64>();
                break;
            }
            let size = batch.records.len() as u64;
            let mut acked: Vec<(u64, u64)> = Vec::with_capacity(batch.records.len());
            let mut bytes = 0u64;
            let report = {
                let sending = send_batch(sink, batch, &c.policy, obs, |r| {
                    bytes += r.data.len() as u64;
                    acked.extend(r.tokens);
                });
                tokio::pin!(sending);
                let mut stop = self.stop.clone();
                tokio::select! {
                    report = &mut sending => Some(report),
                    _ = stop.wait_for(|s| *s) => {
                        tokio::time::timeout(STOP_GRACE, &mut sending).await.ok()
                    }
                }
            };
            self.summary.records_sent += acked.len() as u64;
            self.summary.bytes_sent += bytes;
            unsent += size - acked.len() as u64;
            if let Some(r) = report {
                self.summary.calls += u64::from(r.calls);
                self.summary.resent_records += r.resent_records;
            } else {
                self.summary.interrupted = true;
            }
            self.state
                .object_mut(&object.key, &object.etag)
                .record(&acked);
            self.save()?;
            if self.summary.interrupted {
                unsent += batches.map(|b| b.records.len() as u64).sum::<u64>();
                break;
            }
        }
        self.summary.records_unsent += unsent;
        Ok(unsent)
    }

    async fn get(&self, object: &Listed) -> Result<Vec<u8>, String> {
        let mut request = self
            .s3
            .get_object()
            .bucket(&self.config.bucket)
            .key(&object.key);
        if !object.etag.is_empty() {
            // Read the version that was listed; a replaced object is another object.
            request = request.if_match(&object.etag);
        }
        let out = request
            .send()
            .await
            .map_err(|e| format!("reading: {}", DisplayErrorContext(&e)))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn mark(&self, object: &Listed) -> Result<(), String> {
        let c = self.config;
        let key = object.key.as_str();
        let err = |what: &str, e: &dyn std::fmt::Display| format!("{what}: {e}");
        match c.after {
            AfterDone::Nothing => Ok(()),
            AfterDone::Tag => {
                let current = self
                    .s3
                    .get_object_tagging()
                    .bucket(&c.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| err("reading tags", &DisplayErrorContext(&e)))?;
                let mut tags: Vec<Tag> = current
                    .tag_set()
                    .iter()
                    .filter(|t| t.key() != TAG_KEY)
                    .cloned()
                    .collect();
                let ours = Tag::builder()
                    .key(TAG_KEY)
                    .value(&c.stream)
                    .build()
                    .map_err(|e| err("building the tag", &e))?;
                tags.push(ours);
                let tagging = Tagging::builder()
                    .set_tag_set(Some(tags))
                    .build()
                    .map_err(|e| err("building the tag set", &e))?;
                self.s3
                    .put_object_tagging()
                    .bucket(&c.bucket)
                    .key(key)
                    .tagging(tagging)
                    .send()
                    .await
                    .map_err(|e| err("tagging", &DisplayErrorContext(&e)))?;
                Ok(())
            }
            AfterDone::Move => {
                let mut copy = self
                    .s3
                    .copy_object()
                    .bucket(&c.bucket)
                    .key(format!("{REDRIVEN_PREFIX}{key}"))
                    .copy_source(format!("{}/{}", c.bucket, encode_key(key)));
                if !object.etag.is_empty() {
                    copy = copy.copy_source_if_match(&object.etag);
                }
                copy.send()
                    .await
                    .map_err(|e| err("copying under redriven/", &DisplayErrorContext(&e)))?;
                self.delete(key).await
            }
            AfterDone::Delete => self.delete(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), String> {
        self.s3
            .delete_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| format!("deleting: {}", DisplayErrorContext(&e)))?;
        Ok(())
    }
}

/// Percent-encodes a key for `x-amz-copy-source` (everything but unreserved characters and `/`).
fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_keys_are_percent_encoded() {
        assert_eq!(encode_key("a/b-1_2.~"), "a/b-1_2.~");
        assert_eq!(encode_key("a b+c=é"), "a%20b%2Bc%3D%C3%A9");
    }
}
