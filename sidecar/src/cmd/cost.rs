//! The cost model behind `firetail cost`: what a log volume costs in Firehose ingestion, the
//! transform Lambda and network transfer, for one event per record (`json`, what Fluent Bit's
//! Firehose output sends) and for each packed record format.
//!
//! # Layout
//! - Public prices as named constants (us-east-1, with their sources), gathered in [`Prices`].
//! - [`Inputs`]: the workload and deployment; [`Inputs::new`] fills the defaults measured by
//!   `benches/sidecar` (docs/BENCHMARKS.md).
//! - [`estimate`]: pure arithmetic, one [`FormatEstimate`] per record format.
//! - [`render`]: the text table the subcommand prints, ending with [`stdout_comparison`]
//!   (stdout/stderr through Fargate's log router, one record per line, vs the stdout source).
//!
//! The subcommand's flags are the binary's (`cli.rs`).
//!
//! # Model
//! Units: 1 GB = 2^30 bytes and 1 KB = 1,024 bytes (Firehose rounds records to 5 KB = 5,120
//! bytes); a month is 730 hours, as in AWS's price examples.
//!
//! - Each line of `line_bytes` (newline included) becomes an encoded event of
//!   `line_bytes + event_overhead_bytes` (time, file, `kubernetes{..}`, JSON escaping) in format
//!   version 1, and of `line_bytes + v2_event_overhead_bytes` (time and keys) in version 2,
//!   whose records also carry one header of `v2_header_bytes` (the pod metadata, `stream`,
//!   `file`).
//! - Events per record: `json` 1; `ndjson` up to 500 and the 1,000 KiB record limit; the
//!   compressed formats up to the record limit before compression. A record also closes at
//!   every flush interval, so a quiet pod (events/s per pod x flush interval below those caps)
//!   sends smaller records.
//! - Record bytes: `n x event` (+ the header in version 2), times the format's measured
//!   compression ratio (`gzip_ratio`, `v2_gzip_ratio`, `zstd_ratio`) plus 20 bytes of framing.
//!   Billed bytes: every record rounded up to 5 KB. Firehose cost: billed GB x price per GB.
//! - Lambda: Firehose invokes the transform once per `processor_buffer_mb` of record bytes
//!   (or at least once per buffer interval while data flows). Each invocation costs a request
//!   and `overhead + uncompressed bytes / throughput` seconds at the configured memory; the
//!   throughput per vCPU scales with memory share (1,769 MB = 1 vCPU).
//! - Transfer: `PutRecordBatch` bodies carry records in base64 (4/3 of the record bytes plus
//!   ~12 bytes of JSON per record); data into AWS is free, but a NAT gateway or an interface
//!   VPC endpoint charges per GB processed.
//!
//! Not modelled: free tiers, volume tiers above 500 TB/month, NAT/endpoint hourly charges,
//! HTTP headers, S3 storage and requests, destinations' own charges, and records the transform
//! re-ingests when its 6 MB response overflows.

use std::fmt::Write as _;

use firetail_wire::RecordFormat;
use firetail_wire::limits::{
    FIREHOSE_MAX_RECORD_BYTES, NDJSON_MAX_EVENTS_PER_RECORD, TEMPLATE_PROCESSOR_BUFFER_BYTES,
    billed_bytes_avg,
};

const GIB: f64 = (1u64 << 30) as f64;
const MIB: f64 = (1u64 << 20) as f64;

/// template.yaml's `ProcessorBufferSizeMBs` (Firehose's MB are MiB).
pub const TEMPLATE_PROCESSOR_BUFFER_MB: f64 = TEMPLATE_PROCESSOR_BUFFER_BYTES as f64 / MIB;
const SECS_PER_DAY: f64 = 86_400.0;
/// AWS price examples use 730 hours per month.
pub const DAYS_PER_MONTH: f64 = 730.0 / 24.0;

/// Firehose Direct PUT ingestion, us-east-1, first 500 TB per month, USD per GB (each record
/// rounded up to 5 KB). <https://aws.amazon.com/firehose/pricing/> (read 2026-11-30).
pub const FIREHOSE_USD_PER_GB: f64 = 0.029;
/// Lambda requests, USD per request ($0.20 per million).
/// <https://aws.amazon.com/lambda/pricing/> (read 2026-11-30).
pub const LAMBDA_USD_PER_REQUEST: f64 = 0.20 / 1_000_000.0;
/// Lambda duration on arm64 (the template's architecture), us-east-1, first tier, USD per
/// GB-second. <https://aws.amazon.com/lambda/pricing/> (read 2026-11-30).
pub const LAMBDA_ARM64_USD_PER_GB_SEC: f64 = 0.000_013_333_4;
/// NAT gateway data processing, us-east-1, USD per GB.
/// <https://aws.amazon.com/vpc/pricing/> (read 2026-11-30).
pub const NAT_GATEWAY_USD_PER_GB: f64 = 0.045;
/// Interface VPC endpoint (PrivateLink) data processing, first PB, USD per GB.
/// <https://aws.amazon.com/privatelink/pricing/> (read 2026-11-30).
pub const VPC_ENDPOINT_USD_PER_GB: f64 = 0.01;
/// Memory at which a Lambda function gets one full vCPU.
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>
pub const LAMBDA_MB_PER_VCPU: f64 = 1_769.0;
/// Bytes of gzip header and trailer per record.
const GZIP_FRAME_BYTES: f64 = 20.0;
/// JSON around each record in a `PutRecordBatch` body: `{"Data":""},`.
const JSON_BYTES_PER_RECORD: f64 = 12.0;

/// Unit prices, USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prices {
    /// Firehose ingestion per billed GB.
    pub firehose_per_gb: f64,
    /// Lambda per request.
    pub lambda_per_request: f64,
    /// Lambda per GB-second.
    pub lambda_per_gb_sec: f64,
    /// Network per GB on the way to Firehose (NAT gateway, VPC endpoint, or none).
    pub network_per_gb: f64,
}

/// Measured by `benches/sidecar` (docs/BENCHMARKS.md): bytes the sidecar adds to a 200-byte
/// line (593-byte events: time, stream, a 55-byte file path, a `kubernetes` object with two
/// labels). Longer label sets add more; JSON lines add their escaping.
pub const MEASURED_EVENT_OVERHEAD_BYTES: f64 = 393.0;
/// Measured `ndjson-gzip` record bytes / uncompressed event bytes for the benchmark's
/// access-log lines (0.428 of the raw lines / 2.965). Java traces gave 0.151, JSON lines
/// 0.247; real logs differ, so it is a flag.
pub const MEASURED_GZIP_RATIO: f64 = 0.144;
/// Bytes format version 2 adds to a plain line: `{"time":<13 digits>,"log":""}` and the
/// newline (a line that is one JSON object travels as `"log_json":{…}` instead, unescaped).
pub const V2_EVENT_OVERHEAD_BYTES: f64 = 31.0;
/// Bytes of a version 2 header line for the benchmark's pod (the same metadata as
/// [`MEASURED_EVENT_OVERHEAD_BYTES`], once per record), measured by
/// `crates/wire/benches/compression.rs`.
pub const V2_HEADER_BYTES: f64 = 324.0;
/// Measured `v2-zstd` (the default `auto` profile) record bytes / uncompressed record bytes on
/// the access-log corpus: end to end next to Fluent Bit (docs/BENCHMARKS.md, "Side by side
/// with Fluent Bit, format v2": record/source 0.128) over v2's uncompressed record/source
/// (1.191, `crates/wire/benches/compression.rs`). 200-byte word-salad lines gave 0.214, 1 KiB
/// JSON lines 0.203 (carried as `log_json`, level 5), Java traces 0.185; real logs differ, so
/// it is a flag.
pub const MEASURED_ZSTD_RATIO: f64 = 0.107;
/// Measured `v2-gzip` (level 6) record bytes / uncompressed record bytes, same corpus
/// (516,204 / 4,725,859).
pub const MEASURED_V2_GZIP_RATIO: f64 = 0.109;

/// A workload and the deployment around it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Inputs {
    /// Raw log volume (the lines as written, newlines included), GB per day, all pods.
    pub gb_per_day: f64,
    /// Average line length, newline included.
    pub line_bytes: f64,
    /// Pods (sidecars) the volume is spread over.
    pub pods: f64,
    /// Bytes the sidecar adds to each line.
    pub event_overhead_bytes: f64,
    /// `ndjson-gzip` compressed / uncompressed bytes.
    pub gzip_ratio: f64,
    /// Bytes format version 2 adds to each line.
    pub v2_event_overhead_bytes: f64,
    /// Bytes of a version 2 record's header.
    pub v2_header_bytes: f64,
    /// `v2-zstd` compressed / uncompressed bytes.
    pub zstd_ratio: f64,
    /// `v2-gzip` compressed / uncompressed bytes.
    pub v2_gzip_ratio: f64,
    /// The sidecar's flush interval (`FIRETAIL_FLUSH_INTERVAL_MS`), seconds.
    pub flush_interval_secs: f64,
    /// Firehose's buffer before it invokes the transform, MB.
    pub processor_buffer_mb: f64,
    /// Firehose's buffer interval before it invokes the transform, seconds.
    pub processor_interval_secs: f64,
    /// Transform memory, MB.
    pub lambda_memory_mb: f64,
    /// Transform throughput, MB of uncompressed events per vCPU-second.
    pub lambda_mb_per_vcpu_sec: f64,
    /// Fixed time per invocation (start, Runtime API round trips), milliseconds.
    pub lambda_overhead_ms: f64,
    /// Unit prices.
    pub prices: Prices,
}

impl Inputs {
    /// `gb_per_day` of `line_bytes` lines from one pod, with the measured and template defaults
    /// and us-east-1 prices through a NAT gateway.
    pub fn new(gb_per_day: f64, line_bytes: f64) -> Self {
        Self {
            gb_per_day,
            line_bytes,
            pods: 1.0,
            event_overhead_bytes: MEASURED_EVENT_OVERHEAD_BYTES,
            gzip_ratio: MEASURED_GZIP_RATIO,
            v2_event_overhead_bytes: V2_EVENT_OVERHEAD_BYTES,
            v2_header_bytes: V2_HEADER_BYTES,
            zstd_ratio: MEASURED_ZSTD_RATIO,
            v2_gzip_ratio: MEASURED_V2_GZIP_RATIO,
            flush_interval_secs: 1.0,
            processor_buffer_mb: TEMPLATE_PROCESSOR_BUFFER_MB,
            processor_interval_secs: 60.0,
            lambda_memory_mb: 256.0,
            lambda_mb_per_vcpu_sec: 100.0,
            lambda_overhead_ms: 5.0,
            prices: Prices {
                firehose_per_gb: FIREHOSE_USD_PER_GB,
                lambda_per_request: LAMBDA_USD_PER_REQUEST,
                lambda_per_gb_sec: LAMBDA_ARM64_USD_PER_GB_SEC,
                network_per_gb: NAT_GATEWAY_USD_PER_GB,
            },
        }
    }

    /// Lines (= events) per day, all pods.
    pub fn events_per_day(&self) -> f64 {
        self.gb_per_day * GIB / self.line_bytes
    }

    /// Encoded event bytes of format version 1, newline included.
    pub fn event_bytes(&self) -> f64 {
        self.line_bytes + self.event_overhead_bytes
    }

    /// Encoded event bytes of `format`, newline included.
    pub fn event_bytes_of(&self, format: RecordFormat) -> f64 {
        match format.version() {
            firetail_wire::format::Version::V1 => self.event_bytes(),
            firetail_wire::format::Version::V2 => self.line_bytes + self.v2_event_overhead_bytes,
        }
    }

    /// Uncompressed bytes of a record of `format` beyond its events.
    pub fn record_overhead_bytes(&self, format: RecordFormat) -> f64 {
        match format.version() {
            firetail_wire::format::Version::V1 => 0.0,
            firetail_wire::format::Version::V2 => self.v2_header_bytes + 1.0,
        }
    }

    /// Compressed / uncompressed bytes of `format` (1 for the plain ones).
    pub fn ratio_of(&self, format: RecordFormat) -> f64 {
        match format {
            RecordFormat::Json | RecordFormat::Ndjson => 1.0,
            RecordFormat::NdjsonGzip => self.gzip_ratio,
            RecordFormat::V2Gzip => self.v2_gzip_ratio,
            RecordFormat::V2Zstd => self.zstd_ratio,
        }
    }
}

/// What one record format costs for [`Inputs`]; per-day quantities, monthly dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FormatEstimate {
    /// The record format.
    pub format: RecordFormat,
    /// Average events per record.
    pub events_per_record: f64,
    /// Records per day.
    pub records_per_day: f64,
    /// Bytes of record data per day (what Firehose stores and the transform receives).
    pub record_bytes_per_day: f64,
    /// Bytes Firehose bills per day (records rounded up to 5 KB).
    pub billed_bytes_per_day: f64,
    /// Request body bytes per day (base64 records).
    pub wire_bytes_per_day: f64,
    /// Transform invocations per day.
    pub lambda_invocations_per_day: f64,
    /// Transform GB-seconds per day.
    pub lambda_gb_secs_per_day: f64,
    /// Firehose ingestion, USD per month.
    pub firehose_usd_month: f64,
    /// Transform requests and duration, USD per month.
    pub lambda_usd_month: f64,
    /// NAT gateway / VPC endpoint processing, USD per month.
    pub network_usd_month: f64,
}

impl FormatEstimate {
    /// All three, USD per month.
    pub fn total_usd_month(&self) -> f64 {
        self.firehose_usd_month + self.lambda_usd_month + self.network_usd_month
    }
}

/// Average events per record for `format`, given the events one pod produces per flush and
/// the uncompressed bytes a record holds beyond its events.
pub fn events_per_record(
    format: RecordFormat,
    event_bytes: f64,
    record_overhead_bytes: f64,
    events_per_flush: f64,
) -> f64 {
    let by_size = ((FIREHOSE_MAX_RECORD_BYTES as f64 - record_overhead_bytes) / event_bytes)
        .floor()
        .max(1.0);
    let cap = match format {
        RecordFormat::Json => 1.0,
        RecordFormat::Ndjson => by_size.min(NDJSON_MAX_EVENTS_PER_RECORD as f64),
        RecordFormat::NdjsonGzip | RecordFormat::V2Zstd | RecordFormat::V2Gzip => by_size,
    };
    cap.min(events_per_flush).max(1.0)
}

/// The estimate for every record format, `json` first, the default (`v2-zstd`) last.
pub fn estimate(inputs: &Inputs) -> Vec<FormatEstimate> {
    [
        RecordFormat::Json,
        RecordFormat::Ndjson,
        RecordFormat::NdjsonGzip,
        RecordFormat::V2Gzip,
        RecordFormat::V2Zstd,
    ]
    .into_iter()
    .map(|format| estimate_format(inputs, format))
    .collect()
}

fn estimate_format(inputs: &Inputs, format: RecordFormat) -> FormatEstimate {
    let events = inputs.events_per_day();
    let event_bytes = inputs.event_bytes_of(format);
    let overhead = inputs.record_overhead_bytes(format);
    let events_per_flush =
        events / inputs.pods.max(1.0) / SECS_PER_DAY * inputs.flush_interval_secs;
    let n = events_per_record(format, event_bytes, overhead, events_per_flush);
    let uncompressed_record = n * event_bytes + overhead;
    let record_bytes = match format.codec() {
        Some(_) => uncompressed_record * inputs.ratio_of(format) + GZIP_FRAME_BYTES,
        None => uncompressed_record,
    };
    let records = events / n;
    let record_bytes_per_day = records * record_bytes;
    let billed_bytes_per_day = records * billed_bytes_avg(record_bytes);
    let wire_bytes_per_day = records * ((record_bytes / 3.0).ceil() * 4.0 + JSON_BYTES_PER_RECORD);

    let by_size = record_bytes_per_day / (inputs.processor_buffer_mb * MIB);
    let by_time = (SECS_PER_DAY / inputs.processor_interval_secs.max(1.0)).min(records);
    let invocations = by_size.max(by_time);
    let vcpu = (inputs.lambda_memory_mb / LAMBDA_MB_PER_VCPU).min(1.0);
    // The transform renders every event with its metadata whatever the format, so its work
    // follows the version 1 event bytes, not the (smaller) version 2 records.
    let busy_secs = events * inputs.event_bytes() / (inputs.lambda_mb_per_vcpu_sec * MIB * vcpu);
    let lambda_secs = invocations * inputs.lambda_overhead_ms / 1_000.0 + busy_secs;
    let lambda_gb_secs = lambda_secs * inputs.lambda_memory_mb / 1_024.0;

    let p = &inputs.prices;
    FormatEstimate {
        format,
        events_per_record: n,
        records_per_day: records,
        record_bytes_per_day,
        billed_bytes_per_day,
        wire_bytes_per_day,
        lambda_invocations_per_day: invocations,
        lambda_gb_secs_per_day: lambda_gb_secs,
        firehose_usd_month: billed_bytes_per_day / GIB * p.firehose_per_gb * DAYS_PER_MONTH,
        lambda_usd_month: (invocations * p.lambda_per_request
            + lambda_gb_secs * p.lambda_per_gb_sec)
            * DAYS_PER_MONTH,
        network_usd_month: wire_bytes_per_day / GIB * p.network_per_gb * DAYS_PER_MONTH,
    }
}

/// The subcommand's report: inputs, then one row per format.
pub fn render(inputs: &Inputs, estimates: &[FormatEstimate]) -> String {
    let raw_per_day = inputs.gb_per_day * GIB;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:.1} GB/day of {:.0}-byte lines = {:.0} events/day over {} pod(s); encoded event {:.0} bytes (v2: {:.0}, + {:.0}-byte header per record); ratios ndjson-gzip {:.3}, v2-gzip {:.3}, v2-zstd {:.3}",
        inputs.gb_per_day,
        inputs.line_bytes,
        inputs.events_per_day(),
        inputs.pods,
        inputs.event_bytes(),
        inputs.event_bytes_of(RecordFormat::V2Zstd),
        inputs.v2_header_bytes,
        inputs.gzip_ratio,
        inputs.v2_gzip_ratio,
        inputs.zstd_ratio,
    );
    let _ = writeln!(
        out,
        "prices: Firehose ${}/GB, Lambda ${}/1M requests + ${}/GB-s ({:.0} MB), network ${}/GB; month = 730 h",
        inputs.prices.firehose_per_gb,
        inputs.prices.lambda_per_request * 1e6,
        inputs.prices.lambda_per_gb_sec,
        inputs.lambda_memory_mb,
        inputs.prices.network_per_gb,
    );
    let _ = writeln!(
        out,
        "{:<12} {:>10} {:>12} {:>11} {:>11} {:>13} {:>11} {:>11} {:>11}",
        "format",
        "ev/record",
        "records/day",
        "billed GB/d",
        "billed/raw",
        "Firehose $/mo",
        "Lambda $/mo",
        "network $/mo",
        "total $/mo",
    );
    for e in estimates {
        let label = match e.format {
            RecordFormat::Json => "json (1/rec)",
            other => other.as_str(),
        };
        let _ = writeln!(
            out,
            "{:<12} {:>10.1} {:>12.0} {:>11.2} {:>11.3} {:>13.2} {:>11.2} {:>11.2} {:>11.2}",
            label,
            e.events_per_record,
            e.records_per_day,
            e.billed_bytes_per_day / GIB,
            e.billed_bytes_per_day / raw_per_day,
            e.firehose_usd_month,
            e.lambda_usd_month,
            e.network_usd_month,
            e.total_usd_month(),
        );
    }
    if let Some(line) = stdout_comparison(estimates) {
        out.push_str(&line);
    }
    out
}

/// The same volume written to stdout/stderr: Fargate's log router sends one record per line
/// (the `json` row's billing), the stdout source (`FIRETAIL_STDOUT_CONTAINERS`,
/// docs/stdout.md) packs the lines like files (the default format's row). `None` when the
/// estimates lack either row.
pub fn stdout_comparison(estimates: &[FormatEstimate]) -> Option<String> {
    let router = estimates.iter().find(|e| e.format == RecordFormat::Json)?;
    let packed = estimates
        .iter()
        .find(|e| e.format == RecordFormat::DEFAULT)?;
    let times = router.billed_bytes_per_day / packed.billed_bytes_per_day.max(1.0);
    Some(format!(
        "stdout/stderr: Fargate's log router sends one record per line ({:.2} billed GB/day, Firehose ${:.2}/mo); through firetail's stdout source ({}) {:.2} billed GB/day, ${:.2}/mo: {:.0}x less\n",
        router.billed_bytes_per_day / GIB,
        router.firehose_usd_month,
        packed.format.as_str(),
        packed.billed_bytes_per_day / GIB,
        packed.firehose_usd_month,
        times,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// 1 GB/day of 200-byte lines, overhead 312 -> 512-byte events; numbers worked by hand.
    fn hand_inputs() -> Inputs {
        let mut inputs = Inputs::new(1.0, 200.0);
        inputs.event_overhead_bytes = 312.0;
        inputs.gzip_ratio = 0.1;
        inputs.prices = Prices {
            firehose_per_gb: 0.029,
            lambda_per_request: 0.2e-6,
            lambda_per_gb_sec: 0.000_013_333_4,
            network_per_gb: 0.045,
        };
        inputs
    }

    #[test]
    fn the_stdout_line_compares_the_router_with_the_default_format() {
        let inputs = hand_inputs();
        let estimates = estimate(&inputs);
        let router = estimates[0];
        assert_eq!(router.format, RecordFormat::Json);
        let packed = estimates
            .iter()
            .find(|e| e.format == RecordFormat::DEFAULT)
            .unwrap();
        let line = stdout_comparison(&estimates).unwrap();
        let times = router.billed_bytes_per_day / packed.billed_bytes_per_day;
        assert!(times > 10.0, "{times}");
        assert!(line.contains(&format!("{times:.0}x less")), "{line}");
        assert!(render(&inputs, &estimates).ends_with(&line));
        assert!(stdout_comparison(&estimates[1..]).is_none());
    }

    #[test]
    fn one_event_per_record_bills_5_kb_per_line() {
        let inputs = hand_inputs();
        let json = estimate(&inputs)[0];
        // 2^30 / 200 = 5,368,709.12 events, each its own 512-byte record billed 5,120 bytes.
        let events = 5_368_709.12;
        assert_eq!(json.format, RecordFormat::Json);
        assert!(close(json.events_per_record, 1.0));
        assert!(close(json.records_per_day, events));
        assert!(close(json.record_bytes_per_day, events * 512.0));
        assert!(close(json.billed_bytes_per_day, events * 5_120.0));
        // 25.6x the raw bytes: 5,120 / 200.
        assert!(close(json.billed_bytes_per_day / GIB, 25.6));
        // 25.6 GB/day x $0.029 x 730/24 days = $22.5813...
        assert!(close(json.firehose_usd_month, 25.6 * 0.029 * 730.0 / 24.0));
        // Wire: ceil(512/3)*4 + 12 = 696 bytes per record, through a NAT at $0.045/GB.
        assert!(close(json.wire_bytes_per_day, events * 696.0));
        assert!(close(
            json.network_usd_month,
            events * 696.0 / GIB * 0.045 * 730.0 / 24.0
        ));
    }

    #[test]
    fn ndjson_packs_500_events_and_gzip_fills_the_record_limit() {
        let inputs = hand_inputs();
        let all = estimate(&inputs);
        let (ndjson, gzip) = (all[1], all[2]);
        // One pod: 5,368,709.12 / 86,400 = 62.14 events per 1 s flush -> records hold 62.14.
        let per_flush = 5_368_709.12 / 86_400.0;
        assert!(close(ndjson.events_per_record, per_flush));
        // 62.14 x 512 = 31,814.6 bytes -> billed 7 x 5,120 = 35,840 per record.
        let records = 86_400.0;
        assert!(close(ndjson.records_per_day, records));
        assert!(close(ndjson.billed_bytes_per_day, records * 35_840.0));
        // gzip: 31,814.6 x 0.1 + 20 = 3,201.5 bytes -> billed 5,120.
        assert!(close(gzip.records_per_day, records));
        assert!(close(
            gzip.record_bytes_per_day,
            records * 3_201.457_256_296_297
        ));
        assert!(close(gzip.billed_bytes_per_day, records * 5_120.0));

        // 100x the volume: ndjson hits its 500-event cap, gzip the 1,000 KiB record limit
        // (1,024,000 / 512 = 2,000 events).
        let mut big = inputs;
        big.gb_per_day = 100.0;
        let all = estimate(&big);
        assert!(close(all[1].events_per_record, 500.0));
        assert!(close(all[2].events_per_record, 2_000.0));
        // 500 x 512 = 256,000 bytes = exactly 50 x 5,120: no rounding loss at all.
        assert!(close(
            all[1].billed_bytes_per_day,
            all[1].record_bytes_per_day
        ));
    }

    #[test]
    fn spreading_over_pods_shrinks_records() {
        let mut inputs = hand_inputs();
        inputs.pods = 1_000.0;
        let ndjson = estimate(&inputs)[1];
        // 0.062 events per pod per flush: every record holds one event, like json.
        assert!(close(ndjson.events_per_record, 1.0));
        assert!(close(ndjson.billed_bytes_per_day / GIB, 25.6));
    }

    #[test]
    fn lambda_is_requests_plus_duration() {
        let mut inputs = hand_inputs();
        inputs.gb_per_day = 100.0;
        inputs.lambda_memory_mb = 1_769.0;
        inputs.lambda_mb_per_vcpu_sec = 100.0;
        inputs.lambda_overhead_ms = 5.0;
        let gzip = estimate(&inputs)[2];
        // 536,870,912 events x 512 bytes = 256 GiB uncompressed -> 2,621.44 s at 100 MiB/s.
        let busy = 536_870_912.0 * 512.0 / (100.0 * MIB);
        // Invocations: record bytes / the 0.5 MiB buffer (well above one per minute).
        let invocations = gzip.record_bytes_per_day / (0.5 * MIB);
        assert!(close(gzip.lambda_invocations_per_day, invocations));
        let gb_secs = (invocations * 0.005 + busy) * 1_769.0 / 1_024.0;
        assert!(close(gzip.lambda_gb_secs_per_day, gb_secs));
        let usd = (invocations * 0.2e-6 + gb_secs * 0.000_013_333_4) * 730.0 / 24.0;
        assert!(close(gzip.lambda_usd_month, usd));
        // A quiet stream is still invoked once per buffer interval.
        let mut quiet = hand_inputs();
        quiet.gb_per_day = 0.001;
        let json = estimate(&quiet)[0];
        assert!(close(json.lambda_invocations_per_day, 1_440.0));
    }

    #[test]
    fn the_report_names_every_format() {
        let inputs = hand_inputs();
        let text = render(&inputs, &estimate(&inputs));
        for name in [
            "json (1/rec)",
            "ndjson ",
            "ndjson-gzip",
            "v2-gzip",
            "v2-zstd",
        ] {
            assert!(text.contains(name), "{text}");
        }
    }
}
