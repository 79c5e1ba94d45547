//! Redrive progress on local disk, so an interrupted run continues where it stopped.
//!
//! One JSON file per (bucket, prefix, delivery stream). For every object it keeps the ETag it
//! was read at and the line numbers whose records Firehose acknowledged, as ranges. While an
//! object is not finished it also keeps a hash of every acknowledged line, so that an object
//! changed in place (an operator fixing a malformed line) resends only the lines that are new:
//! line numbers hold only for the ETag they were recorded at, line contents hold for any. A
//! finished object drops its hashes. The file is replaced atomically (write a temporary file,
//! fsync, rename, fsync the directory), so a crash leaves either the old or the new progress,
//! never a torn file.
//!
//! Lines are recorded after their `PutRecordBatch` answer; a crash between the answer and the
//! write resends at most that one batch (at least once, never lost).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

/// Progress of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectProgress {
    /// ETag the object had when its lines were acknowledged.
    pub etag: String,
    /// Acknowledged line numbers, as sorted, disjoint, inclusive ranges.
    #[serde(default)]
    pub acked: Vec<(u64, u64)>,
    /// Hashes ([`line_hash`]) of the acknowledged lines, sorted; kept until the object is
    /// complete, and across ETag changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<u64>,
    /// Every record line of the object was acknowledged.
    #[serde(default)]
    pub complete: bool,
    /// The after-action applied to the finished object (`tag`, `move`, `delete`); empty when
    /// none was. A later run asking for another action applies it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub marked: String,
}

impl ObjectProgress {
    /// Whether line `n`, whose bytes hash to `hash`, was acknowledged.
    pub fn was_sent(&self, n: u64, hash: u64) -> bool {
        self.contains(n) || self.sent.binary_search(&hash).is_ok()
    }

    /// Records acknowledged lines: (line number, [`line_hash`]) pairs.
    pub fn record(&mut self, lines: &[(u64, u64)]) {
        let numbers: Vec<u64> = lines.iter().map(|&(n, _)| n).collect();
        self.insert(&numbers);
        self.sent.extend(lines.iter().map(|&(_, h)| h));
        self.sent.sort_unstable();
        self.sent.dedup();
    }

    /// Marks the object complete; its line hashes are no longer needed.
    pub fn finish(&mut self) {
        self.complete = true;
        self.sent = Vec::new();
    }

    /// Whether line `n` was acknowledged.
    pub fn contains(&self, n: u64) -> bool {
        let i = self.acked.partition_point(|&(_, end)| end < n);
        self.acked.get(i).is_some_and(|&(start, _)| start <= n)
    }

    /// Adds acknowledged lines.
    pub fn insert(&mut self, lines: &[u64]) {
        if lines.is_empty() {
            return;
        }
        let mut points: Vec<(u64, u64)> = lines.iter().map(|&n| (n, n)).collect();
        points.extend_from_slice(&self.acked);
        points.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(points.len());
        for (start, end) in points {
            match merged.last_mut() {
                Some(last) if start <= last.1.saturating_add(1) => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        self.acked = merged;
    }

    /// Number of acknowledged lines.
    pub fn acked_lines(&self) -> u64 {
        self.acked.iter().map(|&(s, e)| e - s + 1).sum()
    }
}

/// Everything the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Format version.
    pub version: u32,
    /// Backup bucket.
    pub bucket: String,
    /// Key prefix.
    pub prefix: String,
    /// Delivery stream the records go to.
    pub stream: String,
    /// Progress by object key.
    pub objects: BTreeMap<String, ObjectProgress>,
}

impl State {
    /// Empty progress.
    pub fn new(bucket: &str, prefix: &str, stream: &str) -> Self {
        Self {
            version: VERSION,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            stream: stream.to_owned(),
            objects: BTreeMap::new(),
        }
    }

    /// Progress of `key` at `etag`; `None` when unknown or the object changed.
    pub fn object(&self, key: &str, etag: &str) -> Option<&ObjectProgress> {
        self.objects.get(key).filter(|p| p.etag == etag)
    }

    /// Progress of `key` at `etag`. When the object changed, only the hashes of the lines
    /// sent before carry over (line numbers and completion belong to the old content).
    pub fn object_mut(&mut self, key: &str, etag: &str) -> &mut ObjectProgress {
        let entry = self.objects.entry(key.to_owned()).or_default();
        if entry.etag != etag {
            *entry = ObjectProgress {
                etag: etag.to_owned(),
                sent: std::mem::take(&mut entry.sent),
                ..ObjectProgress::default()
            };
        }
        entry
    }
}

/// A line's hash for [`ObjectProgress::sent`]: FNV-1a, 64 bits, stable across builds. A line
/// carries its record's base64 data and arrival time, so distinct records do not share lines.
pub fn line_hash(line: &[u8]) -> u64 {
    fnv1a(line)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// Why the state file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not ours or is damaged; refusing to guess (a fresh start would resend).
    #[error("state file {path} is unreadable ({why}); move it away to start over")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// The state file for (`bucket`, `prefix`, `stream`) under `dir`.
pub fn state_path(dir: &Path, bucket: &str, prefix: &str, stream: &str) -> PathBuf {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = fnv1a([bucket, prefix, stream].join("\0").as_bytes());
    let safe: String = bucket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{safe}-{hash:016x}.json"))
}

/// Loads the state at `path`; a missing file is fresh progress.
pub fn load(path: &Path, bucket: &str, prefix: &str, stream: &str) -> Result<State, StateError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(State::new(bucket, prefix, stream));
        }
        Err(source) => {
            return Err(StateError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let corrupt = |why: String| StateError::Corrupt {
        path: path.to_owned(),
        why,
    };
    let state: State = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.version != VERSION {
        return Err(corrupt(format!("version {}", state.version)));
    }
    if state.bucket != bucket || state.prefix != prefix || state.stream != stream {
        return Err(corrupt(format!(
            "it belongs to s3://{}/{} -> {}",
            state.bucket, state.prefix, state.stream
        )));
    }
    Ok(state)
}

/// Replaces the state at `path` atomically.
pub fn save(path: &Path, state: &State) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| io(std::io::Error::other(e)))?;
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    // The rename is durable only once the directory entry is.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ranges_merge_and_answer_membership() {
        let mut p = ObjectProgress::default();
        p.insert(&[5, 3, 4, 9]);
        assert_eq!(p.acked, vec![(3, 5), (9, 9)]);
        p.insert(&[6, 8, 1]);
        assert_eq!(p.acked, vec![(1, 1), (3, 6), (8, 9)]);
        p.insert(&[7, 2, 2]);
        assert_eq!(p.acked, vec![(1, 9)]);
        assert_eq!(p.acked_lines(), 9);
        assert!(p.contains(1) && p.contains(9));
        assert!(!p.contains(0) && !p.contains(10));
    }

    #[test]
    fn save_load_round_trip_and_changed_etag_resets() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(dir.path(), "my bucket", "p/", "s");
        assert!(
            path.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("my_bucket-")
        );
        let mut state = load(&path, "my bucket", "p/", "s").unwrap();
        assert!(state.objects.is_empty());
        state.object_mut("k", "\"e1\"").insert(&[1, 2]);
        save(&path, &state).unwrap();
        let mut again = load(&path, "my bucket", "p/", "s").unwrap();
        assert_eq!(again, state);
        assert!(again.object("k", "\"e1\"").unwrap().contains(2));
        assert!(again.object("k", "\"e2\"").is_none());
        let changed = again.object_mut("k", "\"e2\"");
        assert!(changed.acked.is_empty());
        assert!(!changed.contains(2));
        assert!(!path.with_extension("json.tmp").exists());
    }

    #[test]
    fn line_hashes_survive_an_etag_change_until_the_object_is_finished() {
        let mut state = State::new("b", "", "s");
        let (a, b) = (
            line_hash(b"{\"rawData\":\"YQ==\"}"),
            line_hash(b"{\"rawData\":\"Yg==\"}"),
        );
        state.object_mut("k", "e1").record(&[(1, a), (3, b)]);
        let p = state.object("k", "e1").unwrap();
        assert!(p.was_sent(1, 0) && p.was_sent(9, b) && !p.was_sent(2, 7));
        // Edited in place: line 3 moved to line 2; its content is still known as sent.
        let edited = state.object_mut("k", "e2");
        assert!(edited.was_sent(2, b));
        assert!(
            !edited.was_sent(1, 42),
            "line numbers of the old content do not carry over"
        );
        edited.finish();
        assert!(edited.complete && edited.sent.is_empty());
    }

    #[test]
    fn refuses_foreign_or_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        save(&path, &State::new("a", "", "s")).unwrap();
        assert!(matches!(
            load(&path, "b", "", "s"),
            Err(StateError::Corrupt { .. })
        ));
        std::fs::write(&path, b"{\"version\":1,").unwrap();
        assert!(matches!(
            load(&path, "a", "", "s"),
            Err(StateError::Corrupt { .. })
        ));
        assert_ne!(
            state_path(dir.path(), "a", "x", "s"),
            state_path(dir.path(), "a", "y", "s")
        );
    }
}
