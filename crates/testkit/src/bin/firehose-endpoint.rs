//! `firehose-endpoint`: the testkit's Firehose-compatible endpoint as a standalone server, for
//! benchmarks and manual runs. Any Firehose client can use it through its endpoint setting
//! (`AWS_ENDPOINT_URL_FIREHOSE=http://127.0.0.1:PORT`); it accepts any signature, always
//! succeeds unless told to inject faults, and reports requests, records and bytes.
//!
//! With `--tls-dir DIR` it serves HTTPS instead, with a certificate for `localhost` and
//! `127.0.0.1` from a CA generated at start and written to `DIR/ca.pem` (trust it with
//! `SSL_CERT_FILE=DIR/ca.pem` for the AWS SDK for Rust, `tls.ca_file` for Fluent Bit).
//!
//! Reports: on stdout, first `listening http://127.0.0.1:PORT` (or `https://localhost:PORT`), then a `stats ...` line every
//! `--report-interval-secs` and a final one on SIGINT/SIGTERM; `GET /stats` answers the
//! counters as JSON at any time; `--stats-file` gets the final counters as JSON at exit.
//! Counters: requests, records, decoded bytes, billed bytes (each record rounded up to 5 KiB)
//! and, with `--count-events`, the newline-terminated events inside the records.
//!
//! Speed: a benchmark sink must not be the bottleneck, so with `--discard` nothing is kept, a
//! call costs one JSON parse and one base64 decode, and the answer is written without
//! serde. It runs on `--threads` worker threads (1 by default) so that on a small machine
//! it leaves the other cores to the client being measured.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use firetail_testkit::firehose_endpoint::{
    EndpointOptions, FaultPlan, FirehoseEndpoint, Stats, TestCa,
};
use tokio::signal::unix::{SignalKind, signal};

/// A fast local Firehose endpoint (PutRecordBatch, PutRecord, DescribeDeliveryStream).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the first output line tells which).
    #[arg(long, env = "FIRETAIL_ENDPOINT_PORT", default_value_t = 0)]
    port: u16,
    /// Chance (0..=1) that a single record is refused with ServiceUnavailableException.
    #[arg(long, env = "FIRETAIL_ENDPOINT_FAIL_RATIO", default_value_t = 0.0)]
    fail_ratio: f64,
    /// Chance (0..=1) that a call starts a throttling burst.
    #[arg(long, env = "FIRETAIL_ENDPOINT_THROTTLE_RATIO", default_value_t = 0.0)]
    throttle_ratio: f64,
    /// Calls refused per throttling burst.
    #[arg(
        long,
        env = "FIRETAIL_ENDPOINT_THROTTLE_BURST_CALLS",
        default_value_t = 1
    )]
    throttle_burst_calls: u32,
    /// HTTP status of a throttled call (503 is retried by the AWS SDKs, 400 is not).
    #[arg(long, env = "FIRETAIL_ENDPOINT_THROTTLE_STATUS", default_value_t = 503)]
    throttle_status: u16,
    /// Chance (0..=1) that a call is answered HTTP 500.
    #[arg(
        long,
        env = "FIRETAIL_ENDPOINT_SERVER_ERROR_RATIO",
        default_value_t = 0.0
    )]
    server_error_ratio: f64,
    /// Chance (0..=1) that a call's connection is reset.
    #[arg(long, env = "FIRETAIL_ENDPOINT_RESET_RATIO", default_value_t = 0.0)]
    reset_ratio: f64,
    /// Chance (0..=1) that a call is answered only after --delay-ms.
    #[arg(long, env = "FIRETAIL_ENDPOINT_DELAY_RATIO", default_value_t = 0.0)]
    delay_ratio: f64,
    /// Delay of a slow answer, in milliseconds.
    #[arg(long, env = "FIRETAIL_ENDPOINT_DELAY_MS", default_value_t = 0)]
    delay_ms: u64,
    /// Seed of the fault generator.
    #[arg(long, env = "FIRETAIL_ENDPOINT_SEED", default_value_t = 0)]
    seed: u64,
    /// Print a stats line this often, in seconds (0: only at exit).
    #[arg(
        long,
        env = "FIRETAIL_ENDPOINT_REPORT_INTERVAL_SECS",
        default_value_t = 0
    )]
    report_interval_secs: u64,
    /// At exit, write every accepted record, concatenated as sent, to this file.
    #[arg(long, env = "FIRETAIL_ENDPOINT_OUT")]
    out: Option<PathBuf>,
    /// Only count records, never keep them (overrides --out).
    #[arg(long, env = "FIRETAIL_ENDPOINT_DISCARD")]
    discard: bool,
    /// Count the newline-terminated events inside accepted records (gzip records are
    /// decompressed to count them; costs endpoint CPU).
    #[arg(long, env = "FIRETAIL_ENDPOINT_COUNT_EVENTS")]
    count_events: bool,
    /// At exit, write the final counters to this file as JSON.
    #[arg(long, env = "FIRETAIL_ENDPOINT_STATS_FILE")]
    stats_file: Option<PathBuf>,
    /// Serve HTTPS: generate a CA and a server certificate for localhost and 127.0.0.1,
    /// write the CA to DIR/ca.pem (created if missing) before listening.
    #[arg(long, env = "FIRETAIL_ENDPOINT_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    /// Tokio worker threads.
    #[arg(long, env = "FIRETAIL_ENDPOINT_THREADS", default_value_t = 1)]
    threads: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .context("tokio runtime")?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    for (name, ratio) in [
        ("--fail-ratio", args.fail_ratio),
        ("--throttle-ratio", args.throttle_ratio),
        ("--server-error-ratio", args.server_error_ratio),
        ("--reset-ratio", args.reset_ratio),
        ("--delay-ratio", args.delay_ratio),
    ] {
        anyhow::ensure!(
            (0.0..=1.0).contains(&ratio),
            "{name} must be between 0 and 1"
        );
    }
    let plan = FaultPlan {
        seed: args.seed,
        record_failure_ratio: args.fail_ratio,
        throttle_ratio: args.throttle_ratio,
        throttle_burst_calls: args.throttle_burst_calls.max(1),
        throttle_status: args.throttle_status,
        server_error_ratio: args.server_error_ratio,
        delay_ratio: args.delay_ratio,
        delay: Duration::from_millis(args.delay_ms),
        reset_ratio: args.reset_ratio,
        ..FaultPlan::default()
    };
    let keep_records = args.out.is_some() && !args.discard;
    let tls = match &args.tls_dir {
        Some(dir) => {
            let ca = TestCa::generate().context("generate the TLS certificates")?;
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
            let path = dir.join("ca.pem");
            std::fs::write(&path, ca.ca_pem())
                .with_context(|| format!("write {}", path.display()))?;
            Some(ca)
        }
        None => None,
    };
    let endpoint = FirehoseEndpoint::start_with(EndpointOptions {
        port: args.port,
        plan,
        keep_records,
        count_events: args.count_events,
        tls,
    })
    .await
    .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
    say(&format!("listening {}", endpoint.url()))?;

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let period = Duration::from_secs(args.report_interval_secs.max(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = ticks.tick(), if args.report_interval_secs > 0 => {
                say(&stats_line(&endpoint.stats()))?;
            }
        }
    }
    let stats = endpoint.stats();
    say(&stats_line(&stats))?;
    if let Some(path) = &args.stats_file {
        std::fs::write(path, serde_json::to_vec_pretty(&stats)?)
            .with_context(|| format!("write {}", path.display()))?;
    }
    if let (Some(path), true) = (&args.out, keep_records) {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("create {}", path.display()))?,
        );
        for record in endpoint.accepted() {
            file.write_all(&record)?;
        }
        file.flush()?;
    }
    Ok(())
}

fn stats_line(s: &Stats) -> String {
    format!(
        "stats requests={} records={} bytes={} billed_bytes={} events={} failed_records={} \
         throttled_calls={} server_errors={} resets={} invalid_calls={}",
        s.requests,
        s.records_accepted,
        s.bytes_accepted,
        s.billed_bytes,
        s.events,
        s.records_failed,
        s.throttled_calls,
        s.server_errors,
        s.resets,
        s.invalid_calls
    )
}

/// One line on stdout, flushed at once so a script reading the pipe sees it.
fn say(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}
