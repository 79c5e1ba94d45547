//! File identity: device + inode, confirmed by a fingerprint of the file's first bytes.
//!
//! The inode alone survives renames but not reuse: once a rotated file is deleted, the kernel
//! may hand its inode to the next new file. The fingerprint (hash of up to
//! [`FINGERPRINT_BYTES`] leading bytes, with the length it covers) tells the two apart, and
//! also reveals a copytruncate that was refilled past our read position before we looked.

use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How many leading bytes identify a file's content.
pub const FINGERPRINT_BYTES: usize = 256;

/// Device and inode of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// Hash of the first `len` bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u64,
}

impl Fingerprint {
    /// Fingerprints `bytes` (callers pass at most [`FINGERPRINT_BYTES`]).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self {
            len: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            hash: fnv1a(bytes),
        }
    }

    /// Reads and fingerprints the first `min(limit, size)` bytes of `file` without moving its
    /// cursor.
    pub fn read(file: &File, limit: usize) -> io::Result<Self> {
        let mut buf = [0u8; FINGERPRINT_BYTES];
        let want = limit.min(FINGERPRINT_BYTES);
        let mut got = 0;
        while got < want {
            let n = file.read_at(&mut buf[got..want], got as u64)?;
            if n == 0 {
                break;
            }
            got += n;
        }
        Ok(Self::of_bytes(&buf[..got]))
    }

    /// Whether `file` still starts with the bytes this fingerprint was taken from.
    pub fn matches(&self, file: &File) -> io::Result<bool> {
        let now = Self::read(file, self.len as usize)?;
        Ok(now == *self)
    }

    /// True once the fingerprint covers as much as it ever will.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= FINGERPRINT_BYTES
    }
}

/// 64-bit FNV-1a: tiny, stable across builds and releases (unlike `DefaultHasher`), and enough
/// to tell two files' first bytes apart; it is not a security boundary.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fingerprint_covers_at_most_the_limit_and_detects_rewrites() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[b'x'; 1000]).unwrap();
        let fp = Fingerprint::read(&f, FINGERPRINT_BYTES).unwrap();
        assert_eq!(fp.len as usize, FINGERPRINT_BYTES);
        assert!(fp.is_complete());
        assert!(fp.matches(&f).unwrap());
        f.write_all_at(b"y", 10).unwrap();
        assert!(!fp.matches(&f).unwrap());
        f.set_len(5).unwrap();
        assert!(!fp.matches(&f).unwrap(), "shorter file cannot match");
    }

    #[test]
    fn short_file_fingerprint_matches_after_growth() {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        let fp = Fingerprint::read(&f, FINGERPRINT_BYTES).unwrap();
        assert_eq!(fp.len, 5);
        assert!(!fp.is_complete());
        f.write_all(b" world").unwrap();
        assert!(fp.matches(&f).unwrap());
    }
}
