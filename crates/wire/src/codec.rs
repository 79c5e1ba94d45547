//! The codecs a record may be compressed with, recognised by their magic bytes, and the one
//! capped decoder the transform (and every test reader) uses for all of them.
//!
//! - gzip (RFC 1952): `ndjson-gzip` and `v2-gzip` records, CloudWatch Logs envelopes
//!   ([`crate::gzip`]).
//! - zstd (RFC 8878): `v2-zstd` records, the sidecar's default (docs/BENCHMARKS.md,
//!   "Compression choice").
//!
//! Every decoder stops at the same cap, so no codec is a cheaper bomb than another. A zstd
//! frame also names the window the decoder must hold; [`ZSTD_WINDOW_LOG_MAX`] bounds that
//! allocation, whatever the frame asks for.

use std::io::Read as _;

use crate::gzip::{InflateError, gunzip_into, is_gzip};

/// The first four bytes of every zstd frame (RFC 8878 §3.1.1).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Largest zstd window a reader accepts: 2^23 bytes (8 MiB). The sidecar compresses whole
/// records of at most 1,000 KiB, so its frames need 2^20; the margin admits any level of the
/// reference library on a record, and the cap keeps a hostile frame from making the transform
/// allocate zstd's 128 MiB default limit.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 23;

/// Reads `decoder` to its end into `out` (cleared first), its length never more than one byte
/// past `max_bytes`: that byte is an error (`too_large`), and `out` is left empty. Every codec
/// decodes through this, so none is a cheaper bomb than another.
pub(crate) fn read_capped(
    decoder: impl std::io::Read,
    max_bytes: usize,
    out: &mut Vec<u8>,
    corrupt: fn(std::io::Error) -> InflateError,
    too_large: fn(usize) -> InflateError,
) -> Result<(), InflateError> {
    out.clear();
    let limit = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    decoder.take(limit).read_to_end(out).map_err(corrupt)?;
    if out.len() > max_bytes {
        out.clear();
        return Err(too_large(max_bytes));
    }
    Ok(())
}

/// A record codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// gzip members (concatenated members are one payload).
    Gzip,
    /// zstd frames (concatenated frames are one payload).
    Zstd,
}

impl Codec {
    /// The codec `bytes` start with, if any.
    pub fn of(bytes: &[u8]) -> Option<Codec> {
        if is_gzip(bytes) {
            Some(Codec::Gzip)
        } else if bytes.starts_with(&ZSTD_MAGIC) {
            Some(Codec::Zstd)
        } else {
            None
        }
    }

    /// Lower-case name (logs, metrics).
    pub fn as_str(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }
}

/// Decompresses `bytes` with `codec` into `out` (cleared first), never holding more than
/// `max_bytes` + 1 bytes of output.
pub fn decompress_into(
    codec: Codec,
    bytes: &[u8],
    max_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), InflateError> {
    Decompressor::default().decompress_into(codec, bytes, max_bytes, out)
}

/// [`decompress_into`] for many payloads: keeps its zstd decompression context between them
/// (creating one per record was 2 % of a 6 MB invocation of `v2-zstd` records in `perf`).
/// Its window is bounded by [`ZSTD_WINDOW_LOG_MAX`], so keeping it holds about 8 MiB at most
/// (the window and its block buffers).
#[derive(Default)]
pub struct Decompressor {
    /// Made at the first zstd payload: a one-off gzip read pays nothing for it.
    zstd: Option<zstd::zstd_safe::DCtx<'static>>,
}

impl std::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressor").finish_non_exhaustive()
    }
}

/// A zstd decompression context that refuses windows past [`ZSTD_WINDOW_LOG_MAX`].
fn zstd_context() -> zstd::zstd_safe::DCtx<'static> {
    let mut zstd = zstd::zstd_safe::DCtx::create();
    zstd.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(
        ZSTD_WINDOW_LOG_MAX,
    ))
    .expect("zstd accepts window logs from 10 to 31");
    zstd
}

impl Decompressor {
    /// Decompresses `bytes` with `codec` into `out` (cleared first), never holding more than
    /// `max_bytes` + 1 bytes of output.
    pub fn decompress_into(
        &mut self,
        codec: Codec,
        bytes: &[u8],
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        match codec {
            Codec::Gzip => gunzip_into(bytes, max_bytes, out),
            Codec::Zstd => self.unzstd_into(bytes, max_bytes, out),
        }
    }

    /// Every zstd frame in `bytes` into `out` (cleared first), capped like [`gunzip_into`].
    fn unzstd_into(
        &mut self,
        bytes: &[u8],
        max_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        // A session reset first, so an earlier corrupt or capped payload leaves nothing
        // behind (`Decoder::with_context` resets too; this does not rely on it); the window
        // limit is a parameter, which a session reset keeps.
        let zstd = self.zstd.get_or_insert_with(zstd_context);
        zstd.reset(zstd::zstd_safe::ResetDirective::SessionOnly)
            .map_err(|code| {
                InflateError::ZstdCorrupt(std::io::Error::other(zstd::zstd_safe::get_error_name(
                    code,
                )))
            })?;
        read_capped(
            zstd::stream::read::Decoder::with_context(bytes, zstd),
            max_bytes,
            out,
            InflateError::ZstdCorrupt,
            |limit_bytes| InflateError::ZstdTooLarge { limit_bytes },
        )
    }
}

/// `bytes` decompressed when they start with a codec's magic, else as they are; and which
/// codec it was.
pub fn maybe_decompress(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<(std::borrow::Cow<'_, [u8]>, Option<Codec>), InflateError> {
    match Codec::of(bytes) {
        Some(codec) => {
            let mut out = Vec::with_capacity(
                bytes
                    .len()
                    .saturating_mul(4)
                    .min(max_bytes.saturating_add(1)),
            );
            decompress_into(codec, bytes, max_bytes, &mut out)?;
            Ok((std::borrow::Cow::Owned(out), Some(codec)))
        }
        None => Ok((std::borrow::Cow::Borrowed(bytes), None)),
    }
}

/// Decompresses every zstd frame in `bytes` into `out` (cleared first), capped like
/// [`gunzip_into`] (one-off use; many payloads keep a [`Decompressor`]).
pub fn unzstd_into(bytes: &[u8], max_bytes: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    Decompressor::default().unzstd_into(bytes, max_bytes, out)
}

/// `v2-gzip`'s level: gzip's own default, where the bill stops improving (level 9 gains at
/// most 4 % for 1.5x the CPU; docs/BENCHMARKS.md, "Compression choice").
pub const DEFAULT_V2_GZIP_LEVEL: i32 = 6;

/// The `auto` profile, `v2-zstd`'s default, chosen by measurement side by side with Fluent Bit
/// on four corpora (docs/BENCHMARKS.md, "Choosing the compression"): zstd with matches of at
/// least [`AUTO_MIN_MATCH`] bytes, at [`AUTO_SHORT_LEVEL`] for records of short events and
/// [`AUTO_LONG_LEVEL`] for records whose events average more than [`AUTO_LONG_EVENT_BYTES`].
///
/// Why two levels: compressing costs CPU per byte, the rest of the sidecar per event, and the
/// CPU target is per event (3x Fluent Bit's events per CPU-second). A record of 200-byte lines
/// affords level 6's lazy matching (access logs: 0.162 → 0.133 of the source, still 5x Fluent
/// Bit's events per CPU-second); a record of 1 KiB JSON lines holds five times the bytes per
/// event, where level 6 falls to 2.5x Fluent Bit. Level 5 (greedy matching) with 6-byte
/// matches is the best bill that keeps the target there: 0.212 of the source against level
/// 3's 0.219-0.220, at 3.5x Fluent Bit's events per CPU-second (level 3: 7.6x), measured on
/// lines carried as JSON (`log_json`, [`crate::v2`]).
/// Why matches of 6 bytes: on all four corpora it gave smaller records than the levels' own
/// minimum of 5 at the same CPU (short matches cost more to code than the literals they save;
/// plain level 5 bills more than level 3 with them).
pub const AUTO_MIN_MATCH: u32 = 6;
/// The `auto` profile's level for records of short events.
pub const AUTO_SHORT_LEVEL: i32 = 6;
/// The `auto` profile's level for records of long events.
pub const AUTO_LONG_LEVEL: i32 = 5;
/// Mean uncompressed bytes per event above which a record is "of long events".
pub const AUTO_LONG_EVENT_BYTES: usize = 512;

/// How a [`Zstder`] picks its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZstdProfile {
    /// One level for every record, with the library's parameters for it.
    Level(i32),
    /// The measured default: see [`AUTO_MIN_MATCH`].
    Auto,
}

impl ZstdProfile {
    /// The level a record of `raw_bytes` holding `events` events is compressed at.
    pub fn level_for(self, raw_bytes: usize, events: usize) -> i32 {
        match self {
            ZstdProfile::Level(level) => level,
            ZstdProfile::Auto if raw_bytes > AUTO_LONG_EVENT_BYTES.saturating_mul(events) => {
                AUTO_LONG_LEVEL
            }
            ZstdProfile::Auto => AUTO_SHORT_LEVEL,
        }
    }
}

/// A zstd writer that keeps its context between records (setting one up costs more than
/// compressing a small record), writing one frame per record with its content size, no
/// checksum: Firehose's transport already checks integrity, and the frame's sizes catch a
/// truncated record.
pub struct Zstder {
    cctx: zstd::bulk::Compressor<'static>,
    profile: ZstdProfile,
    /// The level the context is set to now.
    level: i32,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Zstder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zstder")
            .field("profile", &self.profile)
            .field("level", &self.level)
            .finish()
    }
}

impl Zstder {
    /// A writer at `level` (1-19 are the reference library's regular levels; it clamps the
    /// rest).
    pub fn new(level: i32) -> Self {
        Self::with_profile(ZstdProfile::Level(level))
    }

    /// A writer with `profile`.
    pub fn with_profile(profile: ZstdProfile) -> Self {
        let level = profile.level_for(0, 0);
        let mut cctx = zstd::bulk::Compressor::new(level).expect("zstd accepts every level");
        if profile == ZstdProfile::Auto {
            // Sticky: later level changes keep an explicitly set parameter (zstd.h,
            // ZSTD_c_compressionLevel).
            cctx.set_parameter(zstd::zstd_safe::CParameter::MinMatch(AUTO_MIN_MATCH))
                .expect("zstd accepts a minimum match of 6");
        }
        Zstder {
            cctx,
            profile,
            level,
            scratch: Vec::new(),
        }
    }

    /// The profile.
    pub fn profile(&self) -> ZstdProfile {
        self.profile
    }

    /// The level of the last record (or the first one's, before any).
    pub fn level(&self) -> i32 {
        self.level
    }

    /// Appends `input` as one zstd frame to `out` (a record of short events, for
    /// [`ZstdProfile::Auto`]).
    pub fn zstd_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.zstd_record_into(input, 0, out);
    }

    /// Appends `input`, a record of `events` events, as one zstd frame to `out`.
    pub fn zstd_record_into(&mut self, input: &[u8], events: usize, out: &mut Vec<u8>) {
        let level = self.profile.level_for(input.len(), events);
        if level != self.level {
            self.cctx
                .set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
                .expect("zstd accepts every level");
            self.level = level;
        }
        // Compressed into a reused buffer of the worst-case size, then copied out: the record
        // then holds what it uses, not a 1 MB allocation for 200 KB.
        self.scratch.clear();
        self.scratch
            .reserve(zstd::zstd_safe::compress_bound(input.len()));
        self.cctx
            .compress_to_buffer(input, &mut self.scratch)
            .expect("a buffer of compress_bound bytes always holds the frame");
        out.extend_from_slice(&self.scratch);
    }
}

/// Most bytes [`Zstder::zstd_into`] can write for `len` input bytes.
pub fn zstd_bound(len: usize) -> usize {
    zstd::zstd_safe::compress_bound(len)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn auto_picks_its_level_by_event_length_and_round_trips() {
        assert_eq!(
            ZstdProfile::Auto.level_for(200 * 500, 500),
            AUTO_SHORT_LEVEL
        );
        assert_eq!(
            ZstdProfile::Auto.level_for(512 * 500, 500),
            AUTO_SHORT_LEVEL
        );
        assert_eq!(ZstdProfile::Auto.level_for(513 * 500, 500), AUTO_LONG_LEVEL);
        assert_eq!(ZstdProfile::Level(9).level_for(513 * 500, 500), 9);
        let mut z = Zstder::with_profile(ZstdProfile::Auto);
        let short: Vec<u8> = (0..5_000u32)
            .flat_map(|i| format!("GET /item/{} 200 {}ms\n", i % 97, i % 13).into_bytes())
            .collect();
        let long: Vec<u8> = (0..200u32)
            .flat_map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "x".repeat(900)).into_bytes())
            .collect();
        for (input, events, level) in [
            (&short, 5_000, AUTO_SHORT_LEVEL),
            (&long, 200, AUTO_LONG_LEVEL),
            (&short, 5_000, AUTO_SHORT_LEVEL),
        ] {
            let mut out = Vec::new();
            z.zstd_record_into(input, events, &mut out);
            assert_eq!(z.level(), level);
            let mut back = Vec::new();
            unzstd_into(&out, 1 << 22, &mut back).unwrap();
            assert_eq!(&back, input);
        }
        // The minimum match is the profile's, not level 6's own 5: the frames differ.
        let (mut with_mml, mut plain) = (Vec::new(), Vec::new());
        z.zstd_record_into(&short, 5_000, &mut with_mml);
        Zstder::new(AUTO_SHORT_LEVEL).zstd_into(&short, &mut plain);
        assert_ne!(with_mml, plain);
    }

    #[test]
    fn zstd_frames_round_trip_and_concatenate() {
        let mut z = Zstder::new(6);
        let mut out = Vec::new();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for input in [&b""[..], b"short", &big] {
            out.clear();
            z.zstd_into(input, &mut out);
            assert_eq!(Codec::of(&out), Some(Codec::Zstd));
            assert!(out.len() <= zstd_bound(input.len()));
            let mut back = Vec::new();
            unzstd_into(&out, 1 << 20, &mut back).unwrap();
            assert_eq!(back, input);
        }
        let mut two = Vec::new();
        z.zstd_into(b"{\"a\":1}\n", &mut two);
        z.zstd_into(b"{\"a\":2}\n", &mut two);
        let (text, codec) = maybe_decompress(&two, 100).unwrap();
        assert_eq!(&*text, b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(codec, Some(Codec::Zstd));
        assert_eq!(maybe_decompress(b"plain", 1).unwrap().1, None);
    }

    #[test]
    fn zstd_bombs_and_corrupt_frames_are_errors() {
        let mut z = Zstder::new(19);
        let mut bomb = Vec::new();
        z.zstd_into(&vec![b'x'; 10_000_000], &mut bomb);
        assert!(bomb.len() < 2_000, "{}", bomb.len());
        let mut out = Vec::new();
        let err = unzstd_into(&bomb, 9_999_999, &mut out).unwrap_err();
        assert!(matches!(
            err,
            InflateError::ZstdTooLarge {
                limit_bytes: 9_999_999
            }
        ));
        assert!(err.to_string().contains("zstd bomb"), "{err}");
        assert!(out.is_empty());
        unzstd_into(&bomb, 10_000_000, &mut out).unwrap();
        assert_eq!(out.len(), 10_000_000);
        assert!(matches!(
            unzstd_into(&bomb[..bomb.len() / 2], 1 << 30, &mut out),
            Err(InflateError::ZstdCorrupt(_))
        ));
        assert!(matches!(
            unzstd_into(&ZSTD_MAGIC, 100, &mut out),
            Err(InflateError::ZstdCorrupt(_))
        ));
    }

    #[test]
    fn one_decompressor_reads_every_payload_after_bombs_corrupt_frames_and_wide_windows() {
        let mut z = Zstder::new(19);
        let mut bomb = Vec::new();
        z.zstd_into(&vec![b'x'; 1_000_000], &mut bomb);
        let mut good = Vec::new();
        z.zstd_into(b"{\"a\":1}\n", &mut good);
        z.zstd_into(b"{\"a\":2}\n", &mut good);
        let mut wide = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        wide.window_log(27).unwrap();
        std::io::Write::write_all(&mut wide, &vec![b'y'; 1 << 16]).unwrap();
        let wide = wide.finish().unwrap();
        let gz = crate::gzip::gzip(b"gz\n", flate2::Compression::fast());

        let mut d = Decompressor::default();
        let mut out = Vec::new();
        // The bomb is stopped at the cap and the cut frame at its end, both part-way through
        // a frame: the payload after each must not see what was left of it. The wide frame is
        // refused at its header: the window limit must hold on reuse.
        for _ in 0..3 {
            assert!(matches!(
                d.decompress_into(Codec::Zstd, &bomb, 999_999, &mut out),
                Err(InflateError::ZstdTooLarge { .. })
            ));
            d.decompress_into(Codec::Zstd, &good, 100, &mut out)
                .unwrap();
            assert_eq!(out, b"{\"a\":1}\n{\"a\":2}\n");
            assert!(matches!(
                d.decompress_into(Codec::Zstd, &bomb[..bomb.len() / 2], 1 << 30, &mut out),
                Err(InflateError::ZstdCorrupt(_))
            ));
            d.decompress_into(Codec::Gzip, &gz, 100, &mut out).unwrap();
            assert_eq!(out, b"gz\n");
            assert!(matches!(
                d.decompress_into(Codec::Zstd, &wide, 1 << 30, &mut out),
                Err(InflateError::ZstdCorrupt(_))
            ));
            d.decompress_into(Codec::Zstd, &bomb, 1_000_000, &mut out)
                .unwrap();
            assert_eq!(out.len(), 1_000_000);
        }
    }

    #[test]
    fn frames_asking_for_a_window_past_the_limit_are_refused() {
        // Streamed compression does not know the content size, so the frame keeps the level's
        // full window: 2^27 at level 22 with a long window, past what readers allow.
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.window_log(27).unwrap();
        std::io::Write::write_all(&mut enc, &vec![b'y'; 1 << 16]).unwrap();
        let frame = enc.finish().unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            unzstd_into(&frame, 1 << 30, &mut out),
            Err(InflateError::ZstdCorrupt(_))
        ));
    }
}
