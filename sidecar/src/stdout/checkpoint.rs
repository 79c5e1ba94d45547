//! The stdout source's checkpoint: per container, which instance was read and how far its
//! lines are acknowledged. Its own file in the data directory, next to the file engine's
//! (which it never touches), written the same way: tmp + fsync + rename + fsync of the
//! directory, so a crash leaves the old or the new document, never a torn one.
//!
//! Format (version [`VERSION`]):
//! `{"version":1,"containers":[{"container":"app","container_id":"containerd://..",
//! "restart_count":0,"time":"2026-12-02T19:26:47.1234Z","count":2}]}` — `time` is the last
//! acknowledged line's kubelet timestamp as the kubelet wrote it, `count` how many lines at
//! exactly that timestamp were acknowledged; both absent when nothing of the instance was
//! delivered yet. A document of another version is refused (and the streams are read from
//! the start of their current instance: duplicates over loss).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::resume::Position;
use super::stamp::Stamp;

/// Version written into, and required from, the document.
pub const VERSION: u32 = 1;
/// File name inside the data directory.
pub const FILE: &str = "stdout-checkpoints.json";
const TMP: &str = "stdout-checkpoints.json.tmp";

/// One container's saved state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Container name.
    pub container: String,
    /// The instance's `containerID` (`containerd://...`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// The instance's `restartCount`.
    pub restart_count: u32,
    /// The last acknowledged line's timestamp (RFC3339Nano).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// Lines at exactly `time` acknowledged.
    #[serde(default)]
    pub count: u64,
}

impl Entry {
    /// The acknowledged position, if any (an unparsable time counts as none).
    pub fn position(&self) -> Option<Position> {
        let stamp = Stamp::parse(self.time.as_deref()?.as_bytes())?;
        Some(Position {
            stamp,
            count: self.count.max(1),
        })
    }
}

/// Why a checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading failed.
    #[error("reading {FILE}: {0}")]
    Io(#[from] io::Error),
    /// Not a checkpoint document.
    #[error("{FILE} is not valid: {0}")]
    Corrupt(#[from] serde_json::Error),
    /// Written by another version.
    #[error("{FILE} has version {0}, this build reads version {VERSION}")]
    Version(u32),
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    containers: Vec<Entry>,
}

/// The document for `entries`.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let doc = Document {
        version: VERSION,
        containers: entries.to_vec(),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Entries of a document written by [`encode`], keyed by container.
pub fn decode(bytes: &[u8]) -> Result<BTreeMap<String, Entry>, Error> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let head: VersionOnly = serde_json::from_slice(bytes)?;
    if head.version != VERSION {
        return Err(Error::Version(head.version));
    }
    let doc: Document = serde_json::from_slice(bytes)?;
    Ok(doc
        .containers
        .into_iter()
        .map(|e| (e.container.clone(), e))
        .collect())
}

/// Loads `dir`'s checkpoint; none yet is empty.
pub fn load(dir: &Path) -> Result<BTreeMap<String, Entry>, Error> {
    match fs::read(dir.join(FILE)) {
        Ok(bytes) => decode(&bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}

/// Atomically replaces `dir`'s checkpoint.
pub fn save(dir: &Path, entries: &[Entry]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(TMP);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(&encode(entries))?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(FILE))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(name: &str, time: Option<&str>, count: u64) -> Entry {
        Entry {
            container: name.into(),
            container_id: Some(format!("containerd://{name}")),
            restart_count: 3,
            time: time.map(str::to_owned),
            count,
        }
    }

    #[test]
    fn round_trips_and_is_versioned() {
        let entries = vec![
            entry("app", Some("2026-12-02T19:26:47.1234Z"), 2),
            entry("worker", None, 0),
        ];
        let bytes = encode(&entries);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"version\":1,"), "{text}");
        let back = decode(&bytes).unwrap();
        assert_eq!(back["app"], entries[0]);
        let pos = back["app"].position().unwrap();
        assert_eq!((pos.stamp.nanos, pos.count), (123_400_000, 2));
        assert!(back["worker"].position().is_none());
        assert!(matches!(
            decode(br#"{"version":2,"containers":[]}"#),
            Err(Error::Version(2))
        ));
        assert!(matches!(decode(b"{\"version\":1,"), Err(Error::Corrupt(_))));
    }

    #[test]
    fn save_replaces_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_empty());
        save(dir.path(), &[entry("app", None, 0)]).unwrap();
        save(dir.path(), &[entry("app", Some("2026-12-02T19:26:47Z"), 1)]).unwrap();
        assert_eq!(
            load(dir.path()).unwrap()["app"].time.as_deref(),
            Some("2026-12-02T19:26:47Z")
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [FILE]);
    }
}
