//! The command line of `firetail-redrive`: [`RedriveArgs`] (clap derive; every flag is also an
//! environment variable, `FIRETAIL_REDRIVE_*`, and `FIRETAIL_DELIVERY_STREAM` like the
//! sidecar's) and [`RedriveArgs::into_config`], which validates every flag into the library's
//! typed [`RedriveConfig`] and the two clients' settings.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser as _};
use clap::{Parser, ValueEnum};
use firetail_firehose::{Backoff, ClientSettings, RetryPolicy};
use firetail_redrive::age::{DATADOG_MAX_AGE_MS, DEFAULT_MAX_EVENT_AGE_HOURS, HOUR_MS};
use firetail_redrive::engine::REDRIVEN_PREFIX;
use firetail_redrive::verdict::Filter;
use firetail_redrive::{AfterDone, DEFAULT_RETRY_ATTEMPTS, RedriveConfig, S3Settings};
use firetail_wire::Destination;
use firetail_wire::time::parse_rfc3339_ms;

/// Puts the records Firehose wrote to its backup bucket (processing-failed,
/// http-endpoint-failed, OpenSearch failed) back into a delivery stream; resumable.
///
/// Exit status: 0 when everything in scope was redriven, 2 when something was left in the
/// bucket (see the summary), 1 when the run could not start or continue.
#[derive(Debug, Clone, Parser)]
#[command(name = "firetail-redrive", version)]
pub struct RedriveArgs {
    /// Backup bucket Firehose writes failed records to.
    #[arg(long, env = "FIRETAIL_REDRIVE_BUCKET")]
    pub bucket: String,

    /// Key prefix to redrive: `failed/` for everything a stack from template.yaml writes (its
    /// output `FailedRecordPrefix`), or a part of it, e.g.
    /// `failed/datadog/http-endpoint-failed/`. Keys under `redriven/` are never read.
    #[arg(long, env = "FIRETAIL_REDRIVE_PREFIX", default_value = "")]
    pub prefix: String,

    /// Delivery stream to put the records into (must be ACTIVE; checked first).
    #[arg(long, env = "FIRETAIL_DELIVERY_STREAM")]
    pub delivery_stream: String,

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

    /// What to do with an object once every record in it was acknowledged: `tag` it
    /// `firetail-redriven=<stream>` (later runs skip it, from any machine), `move` it to
    /// `redriven/<key>`, or `delete` it. Without it, only the state file remembers.
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_AFTER",
        value_enum,
        conflicts_with_all = ["delete_after", "tag_after", "move_after"]
    )]
    pub after: Option<AfterArg>,

    /// Same as `--after delete`.
    #[arg(long, env = "FIRETAIL_REDRIVE_DELETE_AFTER", conflicts_with_all = ["tag_after", "move_after"])]
    pub delete_after: bool,

    /// Same as `--after tag`.
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_TAG_AFTER",
        conflicts_with = "move_after"
    )]
    pub tag_after: bool,

    /// Same as `--after move`.
    #[arg(long, env = "FIRETAIL_REDRIVE_MOVE_AFTER")]
    pub move_after: bool,

    /// What the stream delivers to. With `opensearch`, packed records (several events) are
    /// reported instead of sent, because the transform fails them for OpenSearch every time.
    /// With `datadog`, records with an event older than `--max-event-age-hours` are left and
    /// reported (Datadog drops logs older than 18 h after accepting them), or re-stamped with
    /// `--restamp`. Leave it out when unsure: only the rules that hold for every destination
    /// apply (and the Datadog window to the transform's Datadog output).
    #[arg(long, env = "FIRETAIL_REDRIVE_DESTINATION", value_parser = destination_parser())]
    pub destination: Option<Destination>,

    /// For Datadog: an event older than this many hours is not sent as it is (1 to 17; Datadog
    /// drops logs older than 18 h, and Firehose may buffer and retry a while after accepting).
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_MAX_EVENT_AGE_HOURS",
        default_value_t = DEFAULT_MAX_EVENT_AGE_HOURS
    )]
    pub max_event_age_hours: u64,

    /// For Datadog (needs `--destination datadog`): send records with events older than
    /// `--max-event-age-hours` with those events' time set to now, the original kept in the
    /// attribute `firetail_original_timestamp` (epoch ms), instead of leaving them.
    #[arg(long, env = "FIRETAIL_REDRIVE_RESTAMP")]
    pub restamp: bool,

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

    /// Timeout of one `PutRecordBatch` attempt.
    #[arg(
        long,
        env = "FIRETAIL_REDRIVE_REQUEST_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub request_timeout_secs: u64,

    /// First retry delay ceiling after throttling, a partial failure or a transient error.
    #[arg(long, env = "FIRETAIL_REDRIVE_RETRY_BASE_MS", default_value_t = 100)]
    pub retry_base_ms: u64,

    /// Largest retry delay ceiling.
    #[arg(long, env = "FIRETAIL_REDRIVE_RETRY_MAX_MS", default_value_t = 20_000)]
    pub retry_max_ms: u64,

    /// Calls per record (the first included) before giving up on it: the records still not
    /// accepted are reported, their object stays, and the run stops. A permanent error
    /// (stream missing, access denied) stops at once.
    #[arg(long, env = "FIRETAIL_REDRIVE_RETRY_ATTEMPTS", default_value_t = DEFAULT_RETRY_ATTEMPTS)]
    pub retry_attempts: u32,

    /// Log format on stderr; the level comes from `FIRETAIL_LOG` (e.g. `info`, `debug`).
    #[arg(long, env = "FIRETAIL_REDRIVE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

/// `--after` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AfterArg {
    /// Tag `firetail-redriven=<stream>`.
    Tag,
    /// Copy to `redriven/<key>`, then delete.
    Move,
    /// Delete.
    Delete,
}

/// `--progress` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressArg {
    /// Only on a terminal.
    Auto,
    /// Never.
    Never,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A flag with a value the run cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {why}")]
pub struct CliError {
    /// The flag, e.g. `--retry-base-ms`.
    pub flag: &'static str,
    /// What is wrong with its value.
    pub why: String,
}

fn invalid(flag: &'static str, why: impl Into<String>) -> CliError {
    CliError {
        flag,
        why: why.into(),
    }
}

/// Everything the binary sets up from its flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The library's configuration.
    pub redrive: RedriveConfig,
    /// The S3 client's.
    pub s3: S3Settings,
    /// The Firehose client's.
    pub firehose: ClientSettings,
}

impl RedriveArgs {
    /// Validates every flag into [`Settings`].
    pub fn into_config(self) -> Result<Settings, CliError> {
        non_empty("--bucket", &self.bucket)?;
        non_empty("--delivery-stream", &self.delivery_stream)?;
        if self.prefix.starts_with(REDRIVEN_PREFIX) {
            return Err(invalid(
                "--prefix",
                format!("keys under {REDRIVEN_PREFIX} are never redriven"),
            ));
        }
        if self.max_objects == Some(0) {
            return Err(invalid(
                "--max-objects",
                "must be greater than 0 (leave it out for no limit)",
            ));
        }
        let mut redrive = RedriveConfig::new(&self.bucket, &self.delivery_stream);
        redrive.prefix.clone_from(&self.prefix);
        redrive.filter = self.filter()?;
        redrive.rules.destination = self.destination;
        redrive.rules.resend_rejected = self.resend_rejected;
        redrive.rules.max_event_age_ms = self.max_event_age()?;
        if self.restamp && self.destination != Some(Destination::Datadog) {
            return Err(invalid(
                "--restamp",
                "only for a Datadog stream: add --destination datadog",
            ));
        }
        redrive.rules.restamp = self.restamp;
        redrive.dry_run = self.dry_run;
        redrive.after = self.after();
        redrive.max_objects = self.max_objects;
        redrive.retry = self.retry()?;
        redrive.progress = match self.progress {
            ProgressArg::Auto => std::io::stderr().is_terminal(),
            ProgressArg::Never => false,
        };
        redrive.state_dir = self.state_dir;
        positive("--request-timeout-secs", self.request_timeout_secs)?;
        Ok(Settings {
            redrive,
            s3: S3Settings {
                force_path_style: self.s3_force_path_style,
            },
            firehose: ClientSettings {
                attempt_timeout: Duration::from_secs(self.request_timeout_secs),
            },
        })
    }

    /// The after-action the flags ask for.
    pub fn after(&self) -> AfterDone {
        match self.after {
            Some(AfterArg::Tag) => AfterDone::Tag,
            Some(AfterArg::Move) => AfterDone::Move,
            Some(AfterArg::Delete) => AfterDone::Delete,
            None if self.delete_after => AfterDone::Delete,
            None if self.tag_after => AfterDone::Tag,
            None if self.move_after => AfterDone::Move,
            None => AfterDone::Nothing,
        }
    }

    fn filter(&self) -> Result<Filter, CliError> {
        let time = |flag, value: &Option<String>| {
            value
                .as_deref()
                .map(parse_time_ms)
                .transpose()
                .map_err(|why| invalid(flag, why))
        };
        let since_ms = time("--since", &self.since)?;
        let until_ms = time("--until", &self.until)?;
        if let (Some(since), Some(until)) = (since_ms, until_ms)
            && until <= since
        {
            return Err(invalid("--until", "must be later than --since"));
        }
        Ok(Filter {
            since_ms,
            until_ms,
            error_codes: self.error_codes.iter().cloned().collect(),
        })
    }

    fn max_event_age(&self) -> Result<i64, CliError> {
        let limit = DATADOG_MAX_AGE_MS / HOUR_MS;
        match i64::try_from(self.max_event_age_hours) {
            Ok(h) if (1..limit).contains(&h) => Ok(h * HOUR_MS),
            _ => Err(invalid(
                "--max-event-age-hours",
                format!(
                    "must be 1 to {} (below Datadog's {limit}-hour limit)",
                    limit - 1
                ),
            )),
        }
    }

    fn retry(&self) -> Result<RetryPolicy, CliError> {
        positive("--retry-base-ms", self.retry_base_ms)?;
        if self.retry_max_ms < self.retry_base_ms {
            return Err(invalid(
                "--retry-max-ms",
                "must be at least --retry-base-ms",
            ));
        }
        positive("--retry-attempts", u64::from(self.retry_attempts))?;
        let backoff = Backoff {
            base: Duration::from_millis(self.retry_base_ms),
            cap: Duration::from_millis(self.retry_max_ms),
        };
        Ok(RetryPolicy::bounded(backoff, self.retry_attempts, None))
    }
}

/// `--destination` by the names the product uses everywhere ([`Destination::as_str`]).
/// (`firetail-wire`'s `clap` feature would spell OpenSearch `open-search`.)
fn destination_parser() -> impl clap::builder::TypedValueParser<Value = Destination> {
    let names = Destination::ALL.map(|d| match d {
        Destination::OpenSearch => PossibleValue::new(d.as_str()).alias("elasticsearch"),
        _ => PossibleValue::new(d.as_str()),
    });
    PossibleValuesParser::new(names).try_map(|name| name.parse::<Destination>())
}

fn non_empty(flag: &'static str, value: &str) -> Result<(), CliError> {
    if value.trim().is_empty() {
        return Err(invalid(flag, "must not be empty"));
    }
    Ok(())
}

fn positive(flag: &'static str, value: u64) -> Result<(), CliError> {
    if value == 0 {
        return Err(invalid(flag, "must be greater than 0"));
    }
    Ok(())
}

/// Parses `--since` / `--until`: RFC 3339 or milliseconds since the epoch.
pub fn parse_time_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    parse_rfc3339_ms(s).ok_or_else(|| format!("{s:?} is neither RFC 3339 nor epoch milliseconds"))
}

/// Prints a parse failure (or `--help`, `--version`) and gives the exit status: 0 for help
/// and version, 1 for a usage error (2 means "left in the bucket", not clap's "bad usage").
pub fn usage_exit(error: &clap::Error) -> ExitCode {
    let _ = error.print();
    if error.use_stderr() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::CommandFactory as _;

    fn parse(extra: &[&str]) -> Result<RedriveArgs, clap::Error> {
        let mut argv = vec![
            "firetail-redrive",
            "--bucket",
            "b",
            "--delivery-stream",
            "s",
        ];
        argv.extend_from_slice(extra);
        RedriveArgs::try_parse_from(argv)
    }

    fn config_error(extra: &[&str]) -> CliError {
        parse(extra).unwrap().into_config().unwrap_err()
    }

    #[test]
    fn flags_parse_and_conflict() {
        let args = parse(&[
            "--error-code",
            "a,b",
            "--error-code",
            "c",
            "--tag-after",
            "--destination",
            "opensearch",
        ])
        .unwrap();
        assert_eq!(args.error_codes, vec!["a", "b", "c"]);
        assert_eq!(args.after(), AfterDone::Tag);
        assert_eq!(args.destination, Some(Destination::OpenSearch));
        assert!(parse(&["--tag-after", "--delete-after"]).is_err());
        assert!(parse(&["--move-after", "--tag-after"]).is_err());
        assert_eq!(
            parse(&["--after", "move"]).unwrap().after(),
            AfterDone::Move
        );
        assert_eq!(
            parse(&["--delete-after"]).unwrap().after(),
            AfterDone::Delete
        );
        assert!(parse(&["--after", "tag", "--move-after"]).is_err());
        assert!(parse(&["--destination", "unknown"]).is_err());
        for (name, d) in [
            ("datadog", Destination::Datadog),
            ("elasticsearch", Destination::OpenSearch),
            ("s3", Destination::S3),
        ] {
            assert_eq!(
                parse(&["--destination", name]).unwrap().destination,
                Some(d)
            );
        }
    }

    #[test]
    fn defaults_become_the_library_config() {
        let settings = parse(&[]).unwrap().into_config().unwrap();
        let c = &settings.redrive;
        assert_eq!(
            (c.bucket.as_str(), c.stream.as_str(), c.prefix.as_str()),
            ("b", "s", "")
        );
        assert_eq!(c.after, AfterDone::Nothing);
        assert_eq!(c.rules.destination, None);
        assert_eq!(c.rules.max_event_age_ms, 17 * 3_600_000);
        assert!(!c.rules.restamp);
        assert_eq!(c.retry, firetail_redrive::default_retry());
        assert_eq!(c.state_dir, PathBuf::from(".firetail-redrive"));
        assert!(!settings.s3.force_path_style);
        assert_eq!(settings.firehose.attempt_timeout, Duration::from_secs(30));

        let settings = parse(&[
            "--retry-base-ms",
            "10",
            "--retry-max-ms",
            "200",
            "--retry-attempts",
            "3",
            "--since",
            "2025-11-29T10:00:00Z",
            "--progress",
            "never",
            "--destination",
            "datadog",
            "--restamp",
            "--max-event-age-hours",
            "12",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert!(settings.redrive.rules.restamp);
        assert_eq!(settings.redrive.rules.max_event_age_ms, 12 * 3_600_000);
        let expected = RetryPolicy::bounded(
            Backoff {
                base: Duration::from_millis(10),
                cap: Duration::from_millis(200),
            },
            3,
            None,
        );
        assert_eq!(settings.redrive.retry, expected);
        assert_eq!(settings.redrive.filter.since_ms, Some(1_764_410_400_000));
        assert!(!settings.redrive.progress);
    }

    #[test]
    fn every_flag_is_validated() {
        let cases: [(&[&str], &str); 12] = [
            (&["--max-event-age-hours", "0"], "--max-event-age-hours"),
            (&["--max-event-age-hours", "18"], "--max-event-age-hours"),
            (&["--restamp"], "--restamp"),
            (&["--restamp", "--destination", "s3"], "--restamp"),
            (&["--retry-base-ms", "0"], "--retry-base-ms"),
            (
                &["--retry-base-ms", "500", "--retry-max-ms", "100"],
                "--retry-max-ms",
            ),
            (&["--retry-attempts", "0"], "--retry-attempts"),
            (&["--request-timeout-secs", "0"], "--request-timeout-secs"),
            (&["--max-objects", "0"], "--max-objects"),
            (&["--since", "yesterday"], "--since"),
            (&["--since", "2000", "--until", "1000"], "--until"),
            (&["--prefix", "redriven/firehose/"], "--prefix"),
        ];
        for (flags, flag) in cases {
            assert_eq!(config_error(flags).flag, flag, "{flags:?}");
        }
        let blank = [
            "firetail-redrive",
            "--bucket",
            "b",
            "--delivery-stream",
            " ",
        ];
        let err = RedriveArgs::try_parse_from(blank).unwrap().into_config();
        assert_eq!(err.unwrap_err().flag, "--delivery-stream");
        assert!(parse(&["--retry-attempts", "-1"]).is_err());
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        RedriveArgs::command().debug_assert();
        for arg in RedriveArgs::command().get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{id} has no environment variable"))
                .to_string_lossy()
                .into_owned();
            assert!(
                env.starts_with("FIRETAIL_REDRIVE_") || env == "FIRETAIL_DELIVERY_STREAM",
                "--{id}: {env}"
            );
        }
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
