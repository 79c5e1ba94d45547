//! Checkpoints: the acknowledged position of every tailed file, persisted so a restarted
//! sidecar resumes where delivery was confirmed.
//!
//! Format (version [`CHECKPOINT_VERSION`]): one JSON document
//! `{"version":1,"files":[{"dev":..,"ino":..,"fp_len":..,"fp_hash":..,"offset":..,"path":".."}]}`.
//! JSON keeps it inspectable with `cat` on the emptyDir; `path` is informational only — identity
//! is `dev`+`ino` confirmed by the fingerprint. A document with another version is refused
//! rather than guessed at.
//!
//! Writes go to a temporary file that is fsynced and renamed over the old one (then the
//! directory is fsynced), so a crash leaves either the old or the new checkpoint, never a torn
//! one.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::identity::{FileId, Fingerprint};

/// Version written into, and required from, the checkpoint document.
pub const CHECKPOINT_VERSION: u32 = 1;
/// File name inside the data directory.
pub const CHECKPOINT_FILE: &str = "checkpoints.json";
const CHECKPOINT_TMP: &str = "checkpoints.json.tmp";
/// Held exclusively by the running engine: two engines on one directory would overwrite each
/// other's checkpoints.
const LOCK_FILE: &str = "lock";

/// The persisted state of one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub dev: u64,
    pub ino: u64,
    /// Bytes covered by the fingerprint.
    pub fp_len: u32,
    /// FNV-1a of those bytes.
    pub fp_hash: u64,
    /// Everything before this offset has been acknowledged.
    pub offset: u64,
    /// Where the file was last seen (for humans).
    pub path: String,
}

impl Entry {
    pub fn id(&self) -> FileId {
        FileId {
            dev: self.dev,
            ino: self.ino,
        }
    }

    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            len: self.fp_len,
            hash: self.fp_hash,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<Entry>,
}

/// Why a checkpoint could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("checkpoint {path} is not valid: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("checkpoint {path} has version {found}, this build reads version {CHECKPOINT_VERSION}")]
    UnsupportedVersion { path: PathBuf, found: u32 },
}

/// Serialises entries into a version-tagged document.
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    #[derive(Serialize)]
    struct DocumentRef<'a> {
        version: u32,
        files: &'a [Entry],
    }
    let doc = DocumentRef {
        version: CHECKPOINT_VERSION,
        files: entries,
    };
    serde_json::to_vec(&doc).expect("integers and strings serialise into memory")
}

/// Parses a document written by [`encode`].
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<Entry>, CheckpointError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        version: u32,
    }
    let corrupt = |source| CheckpointError::Corrupt {
        path: path.to_owned(),
        source,
    };
    let head: VersionOnly = serde_json::from_slice(bytes).map_err(corrupt)?;
    if head.version != CHECKPOINT_VERSION {
        return Err(CheckpointError::UnsupportedVersion {
            path: path.to_owned(),
            found: head.version,
        });
    }
    let doc: Document = serde_json::from_slice(bytes).map_err(corrupt)?;
    Ok(doc.files)
}

/// The checkpoint file in a data directory.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
}

impl CheckpointStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// Takes the directory's exclusive lock. `Ok(None)`: another engine holds it.
    pub fn lock(&self) -> io::Result<Option<File>> {
        fs::create_dir_all(&self.dir)?;
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.dir.join(LOCK_FILE))?;
        match file.try_lock() {
            Ok(()) => Ok(Some(file)),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// Loads the saved entries; a missing file is an empty checkpoint.
    pub fn load(&self) -> Result<HashMap<FileId, Entry>, CheckpointError> {
        let path = self.path();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
            Err(source) => return Err(CheckpointError::Io { path, source }),
        };
        Ok(decode(&path, &bytes)?
            .into_iter()
            .map(|e| (e.id(), e))
            .collect())
    }

    /// Atomically replaces the checkpoint: write tmp, fsync, rename, fsync the directory.
    pub fn save(&self, entries: &[Entry]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let bytes = encode(entries);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, self.path())?;
            File::open(&self.dir)?.sync_all()
        })();
        if result.is_err() {
            // Best effort: do not leave a half-written temporary behind on a full disk.
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entry(ino: u64, offset: u64) -> Entry {
        Entry {
            dev: 7,
            ino,
            fp_len: 12,
            fp_hash: 0xdead_beef,
            offset,
            path: format!("/var/log/app/c/{ino}.log"),
        }
    }

    #[test]
    fn round_trips_and_is_versioned() {
        let entries = vec![entry(1, 10), entry(2, u64::MAX)];
        let bytes = encode(&entries);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.starts_with("{\"version\":1,"), "{text}");
        assert_eq!(decode(Path::new("x"), &bytes).unwrap(), entries);
    }

    #[test]
    fn refuses_unknown_versions_and_garbage() {
        let err = decode(Path::new("x"), br#"{"version":2,"files":[],"new":1}"#).unwrap_err();
        assert!(matches!(
            err,
            CheckpointError::UnsupportedVersion { found: 2, .. }
        ));
        let err = decode(Path::new("x"), b"{\"version\":1,\"files\":[{\"dev\":").unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }));
        assert!(decode(Path::new("x"), b"").is_err());
    }

    #[test]
    fn save_replaces_atomically_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("nested/.firetail"));
        assert!(store.load().unwrap().is_empty());
        store.save(&[entry(1, 5)]).unwrap();
        store.save(&[entry(1, 9), entry(3, 1)]).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[&FileId { dev: 7, ino: 1 }].offset, 9);
        let names: Vec<_> = fs::read_dir(dir.path().join("nested/.firetail"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [CHECKPOINT_FILE]);
    }

    #[test]
    fn lock_is_exclusive_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().join("d"));
        let held = store.lock().unwrap();
        assert!(held.is_some());
        assert!(store.lock().unwrap().is_none());
        drop(held);
        assert!(store.lock().unwrap().is_some());
    }

    #[test]
    fn full_disk_is_an_error_and_keeps_the_previous_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path().to_owned());
        store.save(&[entry(1, 5)]).unwrap();
        // /dev/full answers every write with ENOSPC: the temporary becomes a full disk.
        std::os::unix::fs::symlink("/dev/full", dir.path().join(CHECKPOINT_TMP)).unwrap();
        let err = store.save(&[entry(1, 99)]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC expected, got {err}");
        assert_eq!(store.load().unwrap()[&FileId { dev: 7, ino: 1 }].offset, 5);
    }
}
