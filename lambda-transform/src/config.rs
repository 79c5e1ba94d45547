//! Configuration from the Lambda function's environment (`FIRETAIL_*`).
//!
//! A Lambda function has no command line, so this reads the environment directly (rather than
//! through clap, as the sidecar's binary does); every error names the variable.

use firetail_wire::limits::{FIREHOSE_MAX_RECORD_BYTES, LAMBDA_RESPONSE_LIMIT_BYTES};
use firetail_wire::output::DATADOG_DEFAULT_BUFFER_MIB;
use regex::Regex;
use thiserror::Error;

pub use firetail_wire::Destination;

use crate::tags::{TagMapping, TagRules};

/// The glibc malloc settings `template.yaml` gives the function (and the runtime benchmark
/// gives the process it measures): buffers under 16 MiB come from the heap, and the heap keeps
/// up to 128 MiB free at its top, so an invocation's large buffers (its request, a response of
/// up to 6 MB) are there for the next invocation instead of being unmapped and faulted in again
/// (13 % of a 1 MB invocation's CPU, docs/BENCHMARKS.md). Larger ones (a record inflating
/// towards the 32 MiB cap) are mapped, and grow by remapping: from the heap, growing one by
/// doubling copied it into a fresh block whenever the heap could not extend in place, and the
/// memory test's peak RSS went from 91 to 127-137 MiB in one run in three under load (64 MiB
/// threshold); at 16 MiB it is 113 MiB in every run. Not a `FIRETAIL_*` setting: the C
/// library reads them before `main`.
pub const MALLOC_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "16777216"),
    ("MALLOC_TRIM_THRESHOLD_", "134217728"),
];

/// Compression of records produced for the S3 destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Compression {
    /// Every output record is one gzip member; S3 objects are valid multi-member gzip files.
    /// The delivery stream must then use `CompressionFormat: UNCOMPRESSED`.
    Gzip,
    /// Plain newline-delimited JSON (let Firehose compress the object).
    None,
}

/// Everything the transform can be told, parsed once per cold start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `FIRETAIL_DESTINATION`: `datadog` (default), `opensearch` or `s3`.
    pub destination: Destination,
    /// `FIRETAIL_TAG_MAP` (`source=tag,...` entries merged over the default mapping;
    /// `source=` removes a default) and `FIRETAIL_EXTRA_TAGS` (static `key:value,...` tags
    /// added to every event).
    pub tags: TagRules,
    /// `FIRETAIL_DROP_REGEX`: events whose message matches are removed.
    pub drop_regex: Option<Regex>,
    /// `FIRETAIL_S3_COMPRESSION`: `gzip` (default) or `none`.
    pub s3_compression: S3Compression,
    /// `FIRETAIL_KEEP_KUBERNETES`: keep the original `kubernetes` map in each event
    /// (default `false`: it is replaced by the tags, which keeps records small).
    pub keep_kubernetes: bool,
    /// `FIRETAIL_MAX_DECOMPRESSED_BYTES`: gzip payloads inflating past this are rejected as
    /// bombs (default 32 MiB; a packed sidecar record is at most 500 events).
    pub max_decompressed_bytes: usize,
    /// `FIRETAIL_RESPONSE_LIMIT_BYTES`: response budget (default and maximum
    /// [`LAMBDA_RESPONSE_LIMIT_BYTES`]); lower only to exercise the overflow path.
    pub response_limit_bytes: usize,
    /// `FIRETAIL_MAX_OUTPUT_RECORD_BYTES`: largest packed output record (default and maximum
    /// [`FIREHOSE_MAX_RECORD_BYTES`]).
    pub max_output_record_bytes: usize,
    /// `FIRETAIL_REINGEST_MAX_ATTEMPTS`: PutRecordBatch attempts for overflow records before
    /// they are reported as `ProcessingFailed` (default 4).
    pub reingest_max_attempts: u32,
    /// `FIRETAIL_DATADOG_BUFFER_MIB`: the Datadog stream's HTTP buffer size (`SizeInMBs`,
    /// 1–64, default 2; the template passes the same parameter to both). It decides how many
    /// events a Datadog record may carry per byte, so that no request Firehose sends holds
    /// more than Datadog's intake reads
    /// ([`firetail_wire::output::datadog_bytes_per_event`]).
    pub datadog_buffer_mib: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            destination: Destination::Datadog,
            tags: TagRules::default(),
            drop_regex: None,
            s3_compression: S3Compression::Gzip,
            keep_kubernetes: false,
            max_decompressed_bytes: 32 * 1024 * 1024,
            response_limit_bytes: LAMBDA_RESPONSE_LIMIT_BYTES,
            max_output_record_bytes: FIREHOSE_MAX_RECORD_BYTES,
            reingest_max_attempts: 4,
            datadog_buffer_mib: DATADOG_DEFAULT_BUFFER_MIB,
        }
    }
}

/// A setting that cannot be used; the function refuses to start rather than mis-tag logs.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{var}={value:?}: {reason}")]
    Invalid {
        var: &'static str,
        value: String,
        reason: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        if let Some(v) = get("FIRETAIL_DESTINATION") {
            config.destination =
                v.parse()
                    .map_err(|e: firetail_wire::destination::UnknownDestination| {
                        invalid("FIRETAIL_DESTINATION", &v, &e.to_string())
                    })?;
        }
        if let Some(v) = get("FIRETAIL_TAG_MAP") {
            config.tags.tag_map = TagMapping::parse_overrides(&v)
                .map_err(|reason| invalid("FIRETAIL_TAG_MAP", &v, &reason))?;
        }
        if let Some(v) = get("FIRETAIL_EXTRA_TAGS") {
            config.tags.extra_tags = parse_extra_tags(&v)
                .map_err(|reason| invalid("FIRETAIL_EXTRA_TAGS", &v, &reason))?;
        }
        if let Some(v) = get("FIRETAIL_DROP_REGEX") {
            let re =
                Regex::new(&v).map_err(|e| invalid("FIRETAIL_DROP_REGEX", &v, &e.to_string()))?;
            config.drop_regex = Some(re);
        }
        if let Some(v) = get("FIRETAIL_S3_COMPRESSION") {
            config.s3_compression = match v.trim().to_ascii_lowercase().as_str() {
                "gzip" => S3Compression::Gzip,
                "none" => S3Compression::None,
                _ => {
                    return Err(invalid(
                        "FIRETAIL_S3_COMPRESSION",
                        &v,
                        "expected gzip or none",
                    ));
                }
            };
        }
        if let Some(v) = get("FIRETAIL_KEEP_KUBERNETES") {
            config.keep_kubernetes = parse_bool(&v)
                .ok_or_else(|| invalid("FIRETAIL_KEEP_KUBERNETES", &v, "expected true or false"))?;
        }
        if let Some(v) = get("FIRETAIL_MAX_DECOMPRESSED_BYTES") {
            config.max_decompressed_bytes =
                parse_in("FIRETAIL_MAX_DECOMPRESSED_BYTES", &v, 1024, usize::MAX)?;
        }
        if let Some(v) = get("FIRETAIL_RESPONSE_LIMIT_BYTES") {
            config.response_limit_bytes = parse_in(
                "FIRETAIL_RESPONSE_LIMIT_BYTES",
                &v,
                1024,
                LAMBDA_RESPONSE_LIMIT_BYTES,
            )?;
        }
        if let Some(v) = get("FIRETAIL_MAX_OUTPUT_RECORD_BYTES") {
            config.max_output_record_bytes = parse_in(
                "FIRETAIL_MAX_OUTPUT_RECORD_BYTES",
                &v,
                1024,
                FIREHOSE_MAX_RECORD_BYTES,
            )?;
        }
        if let Some(v) = get("FIRETAIL_REINGEST_MAX_ATTEMPTS") {
            config.reingest_max_attempts = parse_in("FIRETAIL_REINGEST_MAX_ATTEMPTS", &v, 1, 20)?;
        }
        if let Some(v) = get("FIRETAIL_DATADOG_BUFFER_MIB") {
            // Firehose's HttpEndpointBufferingHints.SizeInMBs range.
            config.datadog_buffer_mib = parse_in("FIRETAIL_DATADOG_BUFFER_MIB", &v, 1, 64)?;
        }
        Ok(config)
    }
}

fn invalid(var: &'static str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        var,
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A whole number between `min` and `max` (a size in bytes, or a count).
fn parse_in<T>(var: &'static str, v: &str, min: T, max: T) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let n: T = v
        .trim()
        .parse()
        .map_err(|_| invalid(var, v, "expected a whole number"))?;
    if n < min || n > max {
        return Err(invalid(var, v, &format!("must be between {min} and {max}")));
    }
    Ok(n)
}

/// `team:payments,cost-center=42` → `[("team","payments"),("cost-center","42")]`.
fn parse_extra_tags(v: &str) -> Result<Vec<(String, String)>, String> {
    let mut tags = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, val) = item
            .split_once(':')
            .or_else(|| item.split_once('='))
            .ok_or_else(|| format!("{item:?} is not key:value"))?;
        let (k, val) = (k.trim(), val.trim());
        if k.is_empty() {
            return Err(format!("{item:?} has an empty key"));
        }
        tags.push((k.to_owned(), val.to_owned()));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn the_template_gives_the_function_the_malloc_settings() {
        let template = include_str!("../../template.yaml");
        for (key, value) in MALLOC_ENV {
            let line = format!("          {key}: \"{value}\"\n");
            assert_eq!(
                template.matches(&line).count(),
                1,
                "template.yaml lacks {line}"
            );
        }
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.destination, Destination::Datadog);
        assert_eq!(c.tags.tag_map.len(), 4);
        assert!(c.drop_regex.is_none());
        assert_eq!(c.datadog_buffer_mib, 2);
    }

    #[test]
    fn reads_every_setting() {
        let c = cfg(&[
            ("FIRETAIL_DESTINATION", "OpenSearch"),
            ("FIRETAIL_EXTRA_TAGS", "team:payments, cost-center=42"),
            ("FIRETAIL_DROP_REGEX", "^GET /healthz"),
            ("FIRETAIL_S3_COMPRESSION", "none"),
            ("FIRETAIL_KEEP_KUBERNETES", "true"),
            ("FIRETAIL_RESPONSE_LIMIT_BYTES", "20000"),
            ("FIRETAIL_REINGEST_MAX_ATTEMPTS", "2"),
            ("FIRETAIL_DATADOG_BUFFER_MIB", "1"),
        ])
        .unwrap();
        assert_eq!(c.destination, Destination::OpenSearch);
        assert_eq!(
            c.tags.extra_tags,
            vec![
                ("team".into(), "payments".into()),
                ("cost-center".into(), "42".into())
            ]
        );
        assert!(c.drop_regex.unwrap().is_match("GET /healthz 200"));
        assert_eq!(c.s3_compression, S3Compression::None);
        assert!(c.keep_kubernetes);
        assert_eq!(c.response_limit_bytes, 20_000);
        assert_eq!(c.reingest_max_attempts, 2);
        assert_eq!(c.datadog_buffer_mib, 1);
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for (var, val) in [
            ("FIRETAIL_DESTINATION", "splunk"),
            ("FIRETAIL_DROP_REGEX", "(unclosed"),
            ("FIRETAIL_EXTRA_TAGS", "novalue"),
            ("FIRETAIL_TAG_MAP", "pod_name"),
            ("FIRETAIL_TAG_MAP", "kubernetes.nope=x"),
            ("FIRETAIL_RESPONSE_LIMIT_BYTES", "7000000"),
            ("FIRETAIL_KEEP_KUBERNETES", "maybe"),
            ("FIRETAIL_DATADOG_BUFFER_MIB", "0"),
            ("FIRETAIL_DATADOG_BUFFER_MIB", "65"),
        ] {
            let err = cfg(&[(var, val)]).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
    }
}
