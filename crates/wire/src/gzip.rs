//! Gzip as both halves use it: the sidecar's `ndjson-gzip` records, the transform's inflating
//! of them (and of CloudWatch Logs envelopes) with a cap, and its gzip outputs.

use flate2::read::MultiGzDecoder;

use crate::codec::read_capped;

/// The first two bytes of every gzip member (RFC 1952).
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Whether `bytes` starts like a gzip member.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Why compressed data could not be inflated (gzip, or zstd through [`crate::codec`]).
#[derive(Debug, thiserror::Error)]
pub enum InflateError {
    /// Not valid gzip, or cut short.
    #[error("gzip payload is corrupt or truncated: {0}")]
    Corrupt(std::io::Error),
    /// Inflates past the cap: a gzip bomb, or a payload far larger than any real record.
    #[error("gzip payload inflates past {limit_bytes} bytes; refusing a possible gzip bomb")]
    TooLarge {
        /// The cap.
        limit_bytes: usize,
    },
    /// Not a valid zstd frame, cut short, or asking for a larger window than readers allow
    /// ([`crate::codec::ZSTD_WINDOW_LOG_MAX`]).
    #[error("zstd payload is corrupt or truncated: {0}")]
    ZstdCorrupt(std::io::Error),
    /// A zstd payload that decompresses past the cap.
    #[error("zstd payload decompresses past {limit_bytes} bytes; refusing a possible zstd bomb")]
    ZstdTooLarge {
        /// The cap.
        limit_bytes: usize,
    },
}

/// Inflates every gzip member in `bytes` (concatenated members are one payload), never holding
/// more than `max_bytes` + 1 bytes of output.
pub fn gunzip_capped(bytes: &[u8], max_bytes: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::with_capacity(
        bytes
            .len()
            .saturating_mul(4)
            .min(max_bytes.saturating_add(1)),
    );
    gunzip_into(bytes, max_bytes, &mut out)?;
    Ok(out)
}

/// [`gunzip_capped`] into `out` (cleared first), so one buffer can serve many payloads.
pub fn gunzip_into(bytes: &[u8], max_bytes: usize, out: &mut Vec<u8>) -> Result<(), InflateError> {
    read_capped(
        MultiGzDecoder::new(bytes),
        max_bytes,
        out,
        InflateError::Corrupt,
        |limit_bytes| InflateError::TooLarge { limit_bytes },
    )
}

/// `bytes` inflated when it is gzip, else as it is.
pub fn maybe_gunzip(
    bytes: &[u8],
    max_bytes: usize,
) -> Result<std::borrow::Cow<'_, [u8]>, InflateError> {
    if is_gzip(bytes) {
        gunzip_capped(bytes, max_bytes).map(std::borrow::Cow::Owned)
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Compresses `bytes` as one gzip member (one-off use; hot paths keep a [`Gzipper`]).
pub fn gzip(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut out = Vec::new();
    Gzipper::new(level).gzip_into(bytes, &mut out);
    out
}

/// A gzip writer that keeps its deflate state between members: setting up a compressor costs
/// more than compressing a small log record, so both halves reuse one.
pub struct Gzipper {
    deflate: flate2::Compress,
    level: flate2::Compression,
}

impl std::fmt::Debug for Gzipper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gzipper")
            .field("level", &self.level.level())
            .finish()
    }
}

impl Gzipper {
    /// A writer at `level`.
    pub fn new(level: flate2::Compression) -> Self {
        Gzipper {
            deflate: flate2::Compress::new(level, false),
            level,
        }
    }

    /// The compression level.
    pub fn level(&self) -> flate2::Compression {
        self.level
    }

    /// Appends `input` as one gzip member (RFC 1952) to `out`: a fixed header (no name, mtime
    /// 0 so equal input gives equal bytes, OS unknown), deflate, CRC-32 and length.
    pub fn gzip_into(&mut self, input: &[u8], out: &mut Vec<u8>) {
        self.gzip_parts_into(&[input], out);
    }

    /// [`Gzipper::gzip_into`] of the concatenation of `parts`, without concatenating them (the
    /// transform's Datadog envelope is a head, its events and a tail; copying them into one
    /// buffer first showed in `perf`).
    pub fn gzip_parts_into(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) {
        let crc = self.start_member(parts, flate2::FlushCompress::Finish, out);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952).
        let total: usize = parts.iter().map(|p| p.len()).sum();
        out.extend_from_slice(&(total as u32).to_le_bytes());
    }

    /// Appends a member's fixed header (no name, mtime 0 so equal input gives equal bytes, OS
    /// unknown) and deflates `parts` in order, the last with `flush`; returns their CRC-32.
    fn start_member(
        &mut self,
        parts: &[&[u8]],
        flush: flate2::FlushCompress,
        out: &mut Vec<u8>,
    ) -> flate2::Crc {
        out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
        self.deflate.reset();
        let last = parts.len().saturating_sub(1);
        for (i, part) in parts.iter().enumerate() {
            let part_flush = if i == last {
                flush
            } else {
                flate2::FlushCompress::None
            };
            if !self.deflate_part(part, part_flush, out) {
                break;
            }
        }
        if parts.is_empty() {
            self.deflate_part(b"", flush, out);
        }
        let mut crc = flate2::Crc::new();
        for part in parts {
            crc.update(part);
        }
        crc
    }

    /// Deflates all of `input` into `out` with `flush`: for `Finish`, until the stream ends;
    /// for `Sync`, until the flush is complete; for `None`, until the input is taken. `false`
    /// if deflate failed (only by misuse; the CRC then fails any reader loudly).
    fn deflate_part(
        &mut self,
        input: &[u8],
        flush: flate2::FlushCompress,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut consumed = 0;
        loop {
            // Log JSON deflates 5-20x; start small and let the Vec double if it must, so
            // outputs do not hold reserved-but-unused memory.
            out.reserve((input.len() - consumed) / 8 + 64);
            let before = self.deflate.total_in();
            let status = self.deflate.compress_vec(&input[consumed..], out, flush);
            consumed += usize::try_from(self.deflate.total_in() - before).unwrap_or(0);
            let all_in = consumed == input.len();
            match (status, flush) {
                (Err(_), _) => return false,
                (Ok(flate2::Status::StreamEnd), _) => return true,
                (Ok(_), flate2::FlushCompress::Finish) => {}
                // Done once all input is in and the flush did not fill the space it was given.
                (Ok(_), flate2::FlushCompress::Sync) if all_in && out.len() < out.capacity() => {
                    return true;
                }
                (Ok(_), flate2::FlushCompress::None) if all_in => return true,
                (Ok(_), _) => {}
            }
        }
    }

    /// Appends one gzip member of `head` (the concatenation of its parts), then ASCII spaces,
    /// then `tail`, at least `min_len` bytes long: `head` is deflated at this gzipper's level, the spaces and `tail` follow as
    /// stored (uncompressed) deflate blocks, as many spaces as it takes to reach `min_len`.
    ///
    /// For a receiver that counts events per byte of compressed data (Datadog's intake behind
    /// Firehose's size-based buffer): the record costs exactly the bytes it must, not the
    /// several times more that storing all of it uncompressed would. Returns whether any
    /// padding was needed; with none, the member is a valid gzip of `head` + `tail` a few
    /// bytes longer than [`Gzipper::gzip_into`]'s, so a caller expecting to pad can deflate
    /// once instead of trying without padding first.
    pub fn gzip_padded_into(
        &mut self,
        head: &[&[u8]],
        tail: &[u8],
        min_len: usize,
        out: &mut Vec<u8>,
    ) -> bool {
        let start = out.len();
        // A sync flush ends the compressed part on a byte boundary without ending the stream,
        // so stored blocks can follow (RFC 1951 §3.2.4).
        let mut crc = self.start_member(head, flate2::FlushCompress::Sync, out);
        const STORED_MAX: usize = 65_535;
        const TRAILER: usize = 8;
        let blocks = |stored: usize| stored.div_ceil(STORED_MAX).max(1);
        let fixed = out.len() - start + TRAILER;
        let size = |pad: usize| fixed + 5 * blocks(pad + tail.len()) + pad + tail.len();
        // Every 64 KiB of padding costs a block header too: take those off, then add back
        // what rounding took.
        let rough = min_len.saturating_sub(size(0));
        let mut pad = rough.saturating_sub(5 * (blocks(rough + tail.len()) - 1));
        while size(pad) < min_len {
            pad += 1;
        }
        // The stored part is the padding then the tail, cut into blocks of at most 64 KiB;
        // written piece by piece, never built whole.
        let stored_len = pad + tail.len();
        out.reserve(stored_len + 5 * blocks(stored_len) + TRAILER);
        let spaces = [b' '; 4096];
        let (mut pad_left, mut tail_left) = (pad, tail);
        if stored_len == 0 {
            out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
        }
        let mut left = stored_len;
        while left > 0 {
            let len = left.min(STORED_MAX);
            left -= len;
            // BFINAL on the last block, BTYPE 00 (stored); LEN and its one's complement.
            out.push(u8::from(left == 0));
            out.extend_from_slice(&(len as u16).to_le_bytes());
            out.extend_from_slice(&(!(len as u16)).to_le_bytes());
            let mut block_left = len;
            while block_left > 0 && pad_left > 0 {
                let n = block_left.min(pad_left).min(spaces.len());
                out.extend_from_slice(&spaces[..n]);
                crc.update(&spaces[..n]);
                block_left -= n;
                pad_left -= n;
            }
            let (piece, rest) = tail_left.split_at(block_left);
            out.extend_from_slice(piece);
            crc.update(piece);
            tail_left = rest;
        }
        out.extend_from_slice(&crc.sum().to_le_bytes());
        let total = head.iter().map(|p| p.len()).sum::<usize>() + stored_len;
        out.extend_from_slice(&(total as u32).to_le_bytes());
        pad > 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use flate2::Compression;

    #[test]
    fn reused_gzipper_writes_valid_members() {
        let mut g = Gzipper::new(Compression::fast());
        let mut out = Vec::new();
        let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        for input in [&b""[..], b"short", &big, b"again"] {
            out.clear();
            g.gzip_into(input, &mut out);
            assert!(is_gzip(&out));
            assert_eq!(gunzip_capped(&out, 1 << 20).unwrap(), input);
        }
    }

    #[test]
    fn padded_members_are_exactly_as_long_as_asked_and_inflate_to_the_text() {
        let mut g = Gzipper::new(Compression::fast());
        let head: Vec<u8> = b"{\"logEvents\":["
            .iter()
            .copied()
            .chain(
                std::iter::repeat_n(&b"{\"m\":\"GET /healthz 200\"},"[..], 5_000)
                    .flatten()
                    .copied(),
            )
            .collect();
        let mut plain = Vec::new();
        g.gzip_into(&head, &mut plain);
        for min_len in [
            0,
            1,
            plain.len(),
            plain.len() + 1,
            70_000,
            200_000,
            1_000_000,
        ] {
            let mut out = b"prefix".to_vec();
            let padded = g.gzip_padded_into(&[&head], b"]}", min_len, &mut out);
            let member = &out[6..];
            // Padding only where the deflated text alone would be too short.
            assert_eq!(padded, min_len > plain.len() + 2 + 5 + 4, "{min_len}");
            assert!(member.len() >= min_len, "{min_len}: {}", member.len());
            // Exactly what was asked, or the unpadded size (a block header more than gzip's).
            let unpadded = plain.len() + 2 + 5;
            assert!(
                member.len() <= min_len.max(unpadded) + 4,
                "{min_len}: {}",
                member.len()
            );
            let text = gunzip_capped(member, 2_000_000).unwrap();
            assert!(text.starts_with(&head) && text.ends_with(b"]}"));
            assert!(text[head.len()..text.len() - 2].iter().all(|&b| b == b' '));
        }
        let mut out = Vec::new();
        g.gzip_padded_into(&[], b"", 0, &mut out);
        assert_eq!(gunzip_capped(&out, 10).unwrap(), b"");
    }

    #[test]
    fn a_member_of_parts_is_the_member_of_their_concatenation() {
        let mut g = Gzipper::new(Compression::fast());
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let cases: [&[&[u8]]; 5] = [
            &[],
            &[b""],
            &[b"{\"logEvents\":[", b"", &big, b"]}"],
            &[&big[..70_000], &big[70_000..]],
            &[b"a", b"b", b"c"],
        ];
        for parts in cases {
            let whole = parts.concat();
            let (mut out, mut padded) = (Vec::new(), Vec::new());
            g.gzip_parts_into(parts, &mut out);
            assert_eq!(gunzip_capped(&out, 2_000_000).unwrap(), whole);
            g.gzip_padded_into(parts, b"}", out.len() + 100, &mut padded);
            let text = gunzip_capped(&padded, 2_000_000).unwrap();
            assert!(
                text.starts_with(&whole) && text.ends_with(b"}"),
                "{}",
                parts.len()
            );
            assert!(padded.len() >= out.len() + 100);
        }
    }

    #[test]
    fn concatenated_members_are_one_payload() {
        let mut gz = gzip(b"{\"a\":1}\n", Compression::fast());
        gz.extend(gzip(b"{\"a\":2}\n", Compression::best()));
        assert_eq!(gunzip_capped(&gz, 100).unwrap(), b"{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn bombs_and_corrupt_input_are_errors() {
        let gz = gzip(&[b'x'; 10_000], Compression::best());
        assert!(matches!(
            gunzip_capped(&gz, 9_999),
            Err(InflateError::TooLarge { limit_bytes: 9_999 })
        ));
        assert_eq!(gunzip_capped(&gz, 10_000).unwrap().len(), 10_000);
        assert!(matches!(
            gunzip_capped(&gz[..gz.len() / 2], 1 << 20),
            Err(InflateError::Corrupt(_))
        ));
        assert!(matches!(
            gunzip_capped(&GZIP_MAGIC, 100),
            Err(InflateError::Corrupt(_))
        ));
        assert_eq!(&*maybe_gunzip(b"plain", 1).unwrap(), b"plain");
    }
}
