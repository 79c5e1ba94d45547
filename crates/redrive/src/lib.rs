//! `firetail redrive`: puts the records Firehose gave up on (written to the backup bucket)
//! back into a delivery stream.
//!
//! # Layout
//! - [`parse`]: the error-record line formats (pure).
//! - [`verdict`]: send, filter out, or report as "will fail again" (pure).
//! - [`state`]: resumable progress on local disk.
//! - [`report`]: the [`report::Summary`] and its text.
//! - [`engine`]: the I/O shell: list and read objects (aws-sdk-s3), send through the shipper's
//!   own sender ([`crate::send::send_batch`], the same limits and partial-failure retries), mark
//!   finished objects.
//! - [`RedriveArgs`]: the subcommand's flags, each also a `FIRETAIL_REDRIVE_*` variable. The
//!   delivery stream and the retry timing come from the shipping flags (`--delivery-stream`,
//!   `--retry-base-ms`, ...), which are global.

use std::path::PathBuf;

use clap::Args;

pub mod engine;
pub mod parse;
pub mod report;
pub mod state;
pub mod verdict;

pub use engine::{AfterDone, RedriveConfig, RedriveError, redrive};
pub use report::Summary;
pub use verdict::Destination;

/// Flags of `firetail redrive`.
#[derive(Debug, Clone, Args)]
pub struct RedriveArgs {
    /// Backup bucket Firehose writes failed records to.
    #[arg(long, env = "FIRETAIL_REDRIVE_BUCKET")]
    pub bucket: String,

    /// Key prefix to redrive, e.g. `firehose/processing-failed/` or
    /// `firehose/http-endpoint-failed/2026/11/`. Keys under `redriven/` are never read.
    #[arg(long, env = "FIRETAIL_REDRIVE_PREFIX", default_value = "")]
    pub prefix: String,

    /// Only records that arrived at or after this time (RFC 3339, e.g.
    /// `2026-11-30T00:00:00Z`, or milliseconds since the epoch).
    #[arg(long, env = "FIRETAIL_REDRIVE_SINCE")]
    pub since: Option<String>,

    /// Only records that arrived before this time (same formats as `--since`).
    #[arg(long, env = "FIRETAIL_REDRIVE_UNTIL")]
    pub until: Option<String>,

    /// Only records with this `errorCode` (repeat the flag, or separate with commas).
    #[arg(
        long = "error-code",
        env = "FIRETAIL_REDRIVE_ERROR_CODES",
        value_delimiter = ','
    )]
    pub error_codes: Vec<String>,

    /// Read and classify everything, print counts per error code and a sample; send, write,
    /// tag and delete nothing.
    #[arg(long, env = "FIRETAIL_REDRIVE_DRY_RUN")]
    pub dry_run: bool,

    /// Delete an object once every record in it was acknowledged.
    #[arg(long, env = "FIRETAIL_REDRIVE_DELETE_AFTER", conflicts_with_all = ["tag_after", "move_after"])]
    pub delete_after: bool,

    /// Tag an object `firetail-redriven=<stream>` once every record in it was acknowledged;
    /// tagged objects are skipped by later runs (from any machine).
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_TAG_AFTER",
        conflicts_with = "move_after"
    )]
    pub tag_after: bool,

    /// Move an object to `redriven/<key>` once every record in it was acknowledged.
    #[arg(long, env = "FIRETAIL_REDRIVE_MOVE_AFTER")]
    pub move_after: bool,

    /// What the stream delivers to; with `opensearch`, packed records (several events) are
    /// reported instead of sent, because the transform fails them for OpenSearch every time.
    #[arg(long, env = "FIRETAIL_REDRIVE_DESTINATION", value_enum, default_value_t = Destination::Unknown)]
    pub destination: Destination,

    /// Also resend documents OpenSearch rejected with a 4xx (do it after fixing the mapping).
    #[arg(long, env = "FIRETAIL_REDRIVE_RESEND_REJECTED")]
    pub resend_rejected: bool,

    /// Stop after this many objects were worked on (the rest is left for the next run).
    #[arg(long, env = "FIRETAIL_REDRIVE_MAX_OBJECTS")]
    pub max_objects: Option<usize>,

    /// Directory of the progress files (one per bucket, prefix and stream).
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_STATE_DIR",
        default_value = ".firetail-redrive"
    )]
    pub state_dir: PathBuf,

    /// Address buckets as `endpoint/bucket` (S3-compatible servers, local endpoints).
    #[arg(long, env = "FIRETAIL_REDRIVE_S3_FORCE_PATH_STYLE")]
    pub s3_force_path_style: bool,

    /// Progress bar on stderr: `auto` (drawn only when stderr is a terminal) or `never`.
    #[arg(long, env = "FIRETAIL_REDRIVE_PROGRESS", value_enum, default_value_t = ProgressArg::Auto)]
    pub progress: ProgressArg,
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressArg {
    /// Only on a terminal.
    Auto,
    /// Never.
    Never,
}

impl RedriveArgs {
    /// The after-action the flags ask for.
    pub fn after(&self) -> AfterDone {
        if self.delete_after {
            AfterDone::Delete
        } else if self.tag_after {
            AfterDone::Tag
        } else if self.move_after {
            AfterDone::Move
        } else {
            AfterDone::Nothing
        }
    }
}

/// Parses `--since` / `--until`: RFC 3339 or milliseconds since the epoch.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    // The SDK's parser takes only `Z`; apply a numeric offset (`+01:00`) ourselves.
    let (utc, offset_ms) = match s
        .len()
        .checked_sub(6)
        .and_then(|i| s.get(i..).map(|o| (i, o)))
    {
        Some((i, o))
            if (o.starts_with('+') || o.starts_with('-'))
                && o.as_bytes().get(3) == Some(&b':')
                && s[..i].contains('T') =>
        {
            let hours: i64 = o[1..3].parse().map_err(|_| format!("{s:?}: bad offset"))?;
            let minutes: i64 = o[4..6].parse().map_err(|_| format!("{s:?}: bad offset"))?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            (
                format!("{}Z", &s[..i]),
                sign * (hours * 60 + minutes) * 60_000,
            )
        }
        _ => (s.to_owned(), 0),
    };
    let t = aws_sdk_s3::primitives::DateTime::from_str(
        &utc,
        aws_sdk_s3::primitives::DateTimeFormat::DateTime,
    )
    .map_err(|e| format!("{s:?} is neither RFC 3339 nor epoch milliseconds: {e}"))?;
    let ms = t.to_millis().map_err(|e| format!("{s:?}: {e}"))?;
    Ok(ms - offset_ms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: RedriveArgs,
    }

    #[test]
    fn flags_parse_and_conflict() {
        let cli = Cli::try_parse_from([
            "x",
            "--bucket",
            "b",
            "--error-code",
            "a,b",
            "--error-code",
            "c",
            "--tag-after",
            "--destination",
            "opensearch",
        ])
        .unwrap();
        assert_eq!(cli.args.error_codes, vec!["a", "b", "c"]);
        assert_eq!(cli.args.after(), AfterDone::Tag);
        assert_eq!(cli.args.destination, Destination::Opensearch);
        assert!(
            Cli::try_parse_from(["x", "--bucket", "b", "--tag-after", "--delete-after"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["x", "--bucket", "b", "--move-after", "--tag-after"]).is_err()
        );
    }

    #[test]
    fn times() {
        assert_eq!(parse_time_ms("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time_ms("2023-11-14T23:13:20.5+01:00").unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_time_ms("2023-11-14T17:43:20-04:30").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_time_ms("yesterday").is_err());
    }
}
