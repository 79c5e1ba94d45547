//! The hostile-input corpus for the sidecar and the transform (issue 6).
//!
//! Small samples are checked in under `tests/hostile/`; large ones (a 50 MiB line, a gzip
//! bomb, 6 MiB records, JSON nested 100,000 deep) are generated here, deterministically, so
//! no large file lives in the repository.
//!
//! # Layout
//! - `tests/hostile/files/*`: log files as an app would write them, for the sidecar.
//!   [`files`] adds the generated ones.
//! - `tests/hostile/records/<name>.<ok|dropped|failed>.<raw|b64>`: Firehose record payloads for
//!   the transform. The middle part is the result the transform must give (with the default
//!   configuration, Datadog destination); `.raw` files are the record's bytes (base64-encoded
//!   by [`records`]), `.b64` files are the `data` field verbatim (malformed base64).
//!   [`records`] adds the generated ones.
//!
//! The fuzz targets in `tests/fuzz` are seeded from the same directories.

use std::io::Write as _;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Size of the generated line that never ends (the "50 MB line with no newline").
pub const HUGE_LINE_BYTES: usize = 50 * 1024 * 1024;
/// Size of the generated single records (the "6 MB single record"): more than a
/// Lambda response or a Firehose record may hold.
pub const SIX_MB: usize = 6 * 1024 * 1024;
/// How far the gzip bomb inflates: twice the transform's default cap (32 MiB).
pub const GZIP_BOMB_INFLATED_BYTES: usize = 64 * 1024 * 1024;
/// Nesting depth of the generated deep JSON record.
pub const DEEP_JSON_LEVELS: usize = 100_000;

/// `tests/hostile` in the source tree.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/hostile")
}

/// The result the transform must give a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Ok,
    Dropped,
    ProcessingFailed,
}

/// One hostile Firehose record.
#[derive(Debug, Clone)]
pub struct HostileRecord {
    /// The sample's name (file name without its suffixes, or the generated sample's name).
    pub name: String,
    /// The record's `data` field as Firehose sends it (normally base64).
    pub data: String,
    pub expect: Expect,
}

/// One hostile log file.
#[derive(Debug, Clone)]
pub struct HostileFile {
    /// File name, ending in `.log`.
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Every checked-in record sample, then the generated ones, in a stable order.
///
/// # Panics
/// If the corpus directory is missing or a file name does not follow the naming rule.
pub fn records() -> Vec<HostileRecord> {
    let mut out = checked_in_records();
    out.extend(generated_records());
    out
}

/// The checked-in record samples, sorted by file name.
///
/// # Panics
/// If the corpus directory is missing or a file name does not follow the naming rule.
pub fn checked_in_records() -> Vec<HostileRecord> {
    sorted_dir("records")
        .into_iter()
        .map(|(file, bytes)| {
            let mut parts = file.rsplitn(3, '.');
            let (kind, expect, name) = (parts.next(), parts.next(), parts.next());
            let expect = match expect {
                Some("ok") => Expect::Ok,
                Some("dropped") => Expect::Dropped,
                Some("failed") => Expect::ProcessingFailed,
                other => panic!("{file}: expected result {other:?} is not ok|dropped|failed"),
            };
            let data = match kind {
                Some("raw") => STANDARD.encode(&bytes),
                Some("b64") => String::from_utf8(bytes)
                    .unwrap_or_else(|e| panic!("{file}: a .b64 sample must be text: {e}")),
                other => panic!("{file}: kind {other:?} is not raw|b64"),
            };
            HostileRecord {
                name: name.unwrap_or_default().to_owned(),
                data,
                expect,
            }
        })
        .collect()
}

/// The large record samples, built on the fly.
pub fn generated_records() -> Vec<HostileRecord> {
    let record = |name: &str, bytes: &[u8], expect| HostileRecord {
        name: name.to_owned(),
        data: STANDARD.encode(bytes),
        expect,
    };
    let six_mb_event = {
        let mut event = b"{\"log\":\"".to_vec();
        event.extend(printable(SIX_MB, 6));
        event.extend_from_slice(b"\"}\n");
        event
    };
    let deep = {
        let mut json = b"{\"log\":\"deep\",\"nest\":".to_vec();
        json.extend(std::iter::repeat_n(b'[', DEEP_JSON_LEVELS));
        json.extend(std::iter::repeat_n(b']', DEEP_JSON_LEVELS));
        json.push(b'}');
        json
    };
    vec![
        record("gzip-bomb", &gzip_bomb(), Expect::ProcessingFailed),
        // The same for zstd (format v2's codec), and a frame asking for a 128 MiB window.
        record("zstd-bomb", &zstd_bomb(), Expect::ProcessingFailed),
        record(
            "zstd-huge-window",
            &zstd_huge_window(),
            Expect::ProcessingFailed,
        ),
        // Too large for one output record (1,000 KiB) and for the response (6 MB): the
        // transform cannot deliver it, Firehose keeps it in the backup bucket.
        record(
            "six-mb-text",
            &printable(SIX_MB, 7),
            Expect::ProcessingFailed,
        ),
        record(
            "six-mb-event-gzip",
            &gzip(&six_mb_event),
            Expect::ProcessingFailed,
        ),
        record("deep-json-100k", &deep, Expect::Ok),
    ]
}

/// Every checked-in log file, then the generated ones (a 50 MiB line with no newline, a 2 MiB
/// binary file, and the gzip bomb's bytes).
///
/// # Panics
/// If the corpus directory is missing.
pub fn files() -> Vec<HostileFile> {
    let mut out: Vec<HostileFile> = sorted_dir("files")
        .into_iter()
        .map(|(name, bytes)| HostileFile { name, bytes })
        .collect();
    out.push(HostileFile {
        name: "huge-line-no-newline.log".into(),
        bytes: printable(HUGE_LINE_BYTES, 50),
    });
    out.push(HostileFile {
        name: "binary-large.log".into(),
        bytes: random_bytes(2 * 1024 * 1024, 2),
    });
    // Compressed bytes in a log file are just bytes to the sidecar: shipped as written,
    // never inflated.
    out.push(HostileFile {
        name: "gzip-bomb.log".into(),
        bytes: gzip_bomb(),
    });
    out
}

/// Concatenated gzip members of zeros: about 64 KiB on the wire, inflating to
/// [`GZIP_BOMB_INFLATED_BYTES`]. Concatenated members are one payload to the transform, so
/// this is cheap to build yet as hostile as one huge member.
pub fn gzip_bomb() -> Vec<u8> {
    const MEMBER_BYTES: usize = 1024 * 1024;
    let member = gzip(&vec![0u8; MEMBER_BYTES]);
    member.repeat(GZIP_BOMB_INFLATED_BYTES / MEMBER_BYTES)
}

/// One zstd frame of [`GZIP_BOMB_INFLATED_BYTES`] zeros (a few KiB on the wire).
pub fn zstd_bomb() -> Vec<u8> {
    let mut out = Vec::new();
    firetail_wire::codec::Zstder::new(3).zstd_into(&vec![0u8; GZIP_BOMB_INFLATED_BYTES], &mut out);
    out
}

/// A small zstd frame (streamed, so its header names the window, not the content size) whose
/// window is 2^27 bytes: a decoder that honoured it would allocate 128 MiB.
pub fn zstd_huge_window() -> Vec<u8> {
    let Ok(mut enc) = zstd::stream::write::Encoder::new(Vec::new(), 3) else {
        return Vec::new();
    };
    let _ = enc.window_log(27);
    let _ = enc.write_all(&printable(256 * 1024, 27));
    enc.finish().unwrap_or_default()
}

/// One gzip member of `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(bytes);
    enc.finish().unwrap_or_default()
}

/// `len` printable ASCII bytes (no quote, backslash or newline), deterministic per `seed`.
pub fn printable(len: usize, seed: u32) -> Vec<u8> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;-_=+/()";
    let mut rng = XorShift::new(seed);
    (0..len)
        .map(|_| ALPHABET[rng.next() as usize % ALPHABET.len()])
        .collect()
}

/// `len` arbitrary bytes, deterministic per `seed`.
pub fn random_bytes(len: usize, seed: u32) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

fn sorted_dir(sub: &str) -> Vec<(String, Vec<u8>)> {
    let path = dir().join(sub);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .map(|entry| {
            let entry = entry.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path())
                .unwrap_or_else(|e| panic!("{}: {e}", entry.path().display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    out
}

/// xorshift32: deterministic filler, not randomness anyone relies on.
struct XorShift(u32);

impl XorShift {
    fn new(seed: u32) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9) | 1)
    }

    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}
