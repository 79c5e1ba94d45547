//! Record formats: how the sidecar lays events out inside one Firehose record, and how a reader
//! recognises which layout version a record uses.
//!
//! # Version 1 (every sidecar so far)
//! Each event is one self-contained JSON object ([`crate::event`]), its `kubernetes` object
//! included. A record is, by [`RecordFormat`]:
//! - `json`: one event, no trailing newline needed;
//! - `ndjson`: up to [`crate::limits::NDJSON_MAX_EVENTS_PER_RECORD`] events, each ending in `\n`;
//! - `ndjson-gzip`: `\n`-terminated events in one gzip member (readers accept several).
//!
//! # Version 2 (`v2-zstd`, the default, and `v2-gzip`)
//! A header line with what is constant for the record (pod metadata, `stream`, `file`), then
//! one line per event with only what varies ([`crate::v2`]); the whole record is one zstd frame
//! or one gzip member.
//!
//! # Telling them apart
//! A versioned record declares its layout: its (decompressed) payload starts with a header
//! object whose first key is [`VERSION_KEY`], e.g. `{"firetail_format":2,...}`. Version 1
//! records have no header. A reader that meets a version it does not know must not guess: the transform
//! answers `ProcessingFailed`, so Firehose keeps the record in the backup bucket for a redrive
//! after the transform is upgraded. Sidecars of the previous release stay in the field during a
//! rollout, so readers keep reading every older version.

use memchr::memchr_iter;

/// How events are laid out in a record (`--record-format`, `FIRETAIL_RECORD_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum RecordFormat {
    /// One event per record (OpenSearch; what Fluent Bit's Firehose output does).
    Json,
    /// Many newline-terminated events per record, at most 500.
    Ndjson,
    /// Newline-terminated events, one gzip member per record.
    NdjsonGzip,
    /// Format version 2 (a header, then lean events), one zstd frame per record: the default.
    #[cfg_attr(feature = "clap", value(name = "v2-zstd"))]
    V2Zstd,
    /// Format version 2, one gzip member per record (for readers without zstd).
    #[cfg_attr(feature = "clap", value(name = "v2-gzip"))]
    V2Gzip,
}

impl RecordFormat {
    /// Every format, one event per record first.
    pub const ALL: [RecordFormat; 5] = [
        Self::Json,
        Self::Ndjson,
        Self::NdjsonGzip,
        Self::V2Zstd,
        Self::V2Gzip,
    ];

    /// What the sidecar writes unless told otherwise.
    pub const DEFAULT: RecordFormat = Self::V2Zstd;

    /// The name in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::NdjsonGzip => "ndjson-gzip",
            Self::V2Zstd => "v2-zstd",
            Self::V2Gzip => "v2-gzip",
        }
    }

    /// Whether records of this format are gzip.
    pub fn is_gzip(self) -> bool {
        self.codec() == Some(crate::codec::Codec::Gzip)
    }

    /// The codec of this format's records, `None` when they are plain text.
    pub fn codec(self) -> Option<crate::codec::Codec> {
        match self {
            Self::Json | Self::Ndjson => None,
            Self::NdjsonGzip | Self::V2Gzip => Some(crate::codec::Codec::Gzip),
            Self::V2Zstd => Some(crate::codec::Codec::Zstd),
        }
    }

    /// The layout version of this format's records.
    pub fn version(self) -> Version {
        match self {
            Self::Json | Self::Ndjson | Self::NdjsonGzip => Version::V1,
            Self::V2Zstd | Self::V2Gzip => Version::V2,
        }
    }

    /// Whether one record holds many events.
    pub fn is_packed(self) -> bool {
        self != Self::Json
    }
}

impl std::fmt::Display for RecordFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a record format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a record format: expected v2-zstd, v2-gzip, json, ndjson or ndjson-gzip")]
pub struct UnknownFormat(pub String);

impl std::str::FromStr for RecordFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s.trim())
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// The key a versioned record's header object starts with.
pub const VERSION_KEY: &str = "firetail_format";

/// Layout versions this build reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// Self-contained events, no header (see the module documentation).
    V1,
    /// A header line, then events holding only what varies ([`crate::v2`]).
    V2,
}

impl Version {
    /// The newest version this build reads (and the sidecar writes by default).
    pub const LATEST: Version = Version::V2;

    /// The version number as a header states it.
    pub fn number(self) -> u32 {
        match self {
            Self::V1 => 1,
            Self::V2 => 2,
        }
    }
}

/// A record that declares a layout version this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "record declares firetail format {declared:?}, which this build does not read \
     (it reads up to {}); upgrade the transform, then redrive the record", Version::LATEST.number()
)]
pub struct UnsupportedVersion {
    /// What the header says, as written.
    pub declared: String,
}

/// The layout version of an (inflated) record payload.
pub fn version_of(payload: &[u8]) -> Result<Version, UnsupportedVersion> {
    let head = payload.trim_ascii_start();
    let Some(rest) = head.strip_prefix(b"{") else {
        return Ok(Version::V1);
    };
    let rest = rest.trim_ascii_start();
    let Some(rest) = rest
        .strip_prefix(b"\"")
        .and_then(|r| r.strip_prefix(VERSION_KEY.as_bytes()))
        .and_then(|r| r.strip_prefix(b"\""))
    else {
        return Ok(Version::V1);
    };
    let value = rest
        .trim_ascii_start()
        .strip_prefix(b":")
        .unwrap_or(rest)
        .trim_ascii_start();
    let end = value
        .iter()
        .position(|b| matches!(b, b',' | b'}' | b'\n'))
        .unwrap_or(value.len())
        .min(32);
    let declared = String::from_utf8_lossy(value[..end].trim_ascii()).into_owned();
    match declared.as_str() {
        "1" => Ok(Version::V1),
        "2" => Ok(Version::V2),
        _ => Err(UnsupportedVersion { declared }),
    }
}

/// The non-blank lines of a newline-delimited payload, without their `\n` or `\r\n`: the
/// events of a version 1 record.
pub fn lines(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr_iter(b'\n', payload)
        .chain(std::iter::once(payload.len()))
        .filter_map(move |end| {
            let line = payload.get(start..end).unwrap_or_default();
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            (!line.trim_ascii().is_empty()).then_some(line)
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in RecordFormat::ALL {
            assert_eq!(f.as_str().parse::<RecordFormat>(), Ok(f));
        }
        assert!("xml".parse::<RecordFormat>().is_err());
        assert!(RecordFormat::NdjsonGzip.is_gzip() && RecordFormat::V2Gzip.is_gzip());
        assert!(!RecordFormat::V2Zstd.is_gzip() && !RecordFormat::Ndjson.is_gzip());
        assert_eq!(RecordFormat::DEFAULT.version(), Version::V2);
        assert_eq!(
            RecordFormat::DEFAULT.codec(),
            Some(crate::codec::Codec::Zstd)
        );
    }

    #[test]
    fn records_without_a_header_are_version_1() {
        for payload in [
            &b""[..],
            b"plain text",
            b"{\"time\":\"2026-11-22T10:00:00Z\",\"log\":\"x\"}\n",
            b"  {\"firetail\":2}",
            b"[1,2]",
        ] {
            assert_eq!(version_of(payload), Ok(Version::V1));
        }
        assert_eq!(version_of(b"{\"firetail_format\":1}\n{}"), Ok(Version::V1));
    }

    #[test]
    fn unknown_versions_are_refused_by_what_they_declare() {
        assert_eq!(
            version_of(b"{\"firetail_format\":2,\"stream\":\"f\"}\n"),
            Ok(Version::V2)
        );
        let err = version_of(b"{\"firetail_format\": 7, \"kubernetes\":{}}\n").unwrap_err();
        assert_eq!(err.declared, "7");
        assert!(err.to_string().contains("upgrade the transform"));
        assert!(version_of(b"{ \"firetail_format\":\"x\"}").is_err());
    }

    #[test]
    fn lines_strip_terminators_and_skip_blanks() {
        let got: Vec<&[u8]> = lines(b"a\r\n\n  \nb\nc").collect();
        assert_eq!(got, vec![&b"a"[..], b"b", b"c"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"x\n").collect::<Vec<_>>(), vec![&b"x"[..]]);
    }

    #[cfg(feature = "clap")]
    #[test]
    fn command_line_names_are_the_settings_names() {
        use clap::ValueEnum as _;
        for v in RecordFormat::ALL {
            let possible = v.to_possible_value().expect("every variant has a name");
            assert_eq!(possible.get_name(), v.as_str());
        }
    }
}
