//! `chaos`: the reliability run of issue 6 (not part of every CI run; `bash tests/chaos`).
//!
//! Several fake apps write events with unique sequence numbers into log files and rotate them
//! (rename + create); the real `firetail` sidecar ships them to the testkit's FAULT-INJECTING
//! Firehose endpoint (partial failures, throttling bursts, HTTP 500, slow answers, connection
//! resets, lost acknowledgements) and is killed with SIGKILL and restarted many times. At the
//! end the last sidecar is stopped with SIGTERM, every accepted record is decoded, and each
//! sequence number is counted: `lost` (never arrived) must be 0; `duplicated` (arrived more
//! than once: in flight at a kill, or a lost acknowledgement) is reported.
//!
//! Output: progress lines on stderr, then one `chaos: ...` summary line per measure on stdout.
//! Exit status 1 if anything was lost or the sidecar did not drain cleanly.

use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use firetail_testkit::firehose_endpoint::{EndpointOptions, FaultPlan, FirehoseEndpoint};
use firetail_testkit::{ChildGuard, workspace_bin};

/// Kill, restart and fault-inject the firetail sidecar while it ships >= 1M events; count
/// what was lost and duplicated.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Events to write in total (each with a unique sequence number).
    #[arg(long, env = "FIRETAIL_CHAOS_EVENTS", default_value_t = 1_000_000)]
    events: u64,
    /// Log files written in parallel (one writer thread each).
    #[arg(long, env = "FIRETAIL_CHAOS_FILES", default_value_t = 4)]
    files: u64,
    /// Events per second over all writers.
    #[arg(long, env = "FIRETAIL_CHAOS_EVENTS_PER_SEC", default_value_t = 10_000)]
    events_per_sec: u64,
    /// A writer renames its file and starts a new one after this many events.
    #[arg(long, env = "FIRETAIL_CHAOS_ROTATE_EVENTS", default_value_t = 40_000)]
    rotate_events: u64,
    /// SIGKILL-and-restart cycles of the sidecar (at least this many; spread over the run).
    #[arg(long, env = "FIRETAIL_CHAOS_KILLS", default_value_t = 12)]
    kills: u32,
    /// Padding bytes per event.
    #[arg(long, env = "FIRETAIL_CHAOS_PAD_BYTES", default_value_t = 60)]
    pad_bytes: usize,
    /// Sidecar record format.
    #[arg(
        long,
        env = "FIRETAIL_CHAOS_RECORD_FORMAT",
        default_value = "ndjson-gzip"
    )]
    record_format: String,
    /// Seed of the fault generator and of the kill times.
    #[arg(long, env = "FIRETAIL_CHAOS_SEED", default_value_t = 6)]
    seed: u64,
    /// The firetail binary (default: next to this one).
    #[arg(long, env = "FIRETAIL_CHAOS_FIRETAIL_BIN")]
    firetail_bin: Option<PathBuf>,
    /// Give up waiting for delivery after this long without progress.
    #[arg(long, env = "FIRETAIL_CHAOS_STALL_SECS", default_value_t = 120)]
    stall_secs: u64,
}

/// How often delivered events are counted while waiting for the last ones.
const TALLY_INTERVAL: Duration = Duration::from_secs(10);

/// The faults: about the mix (~30 % of records refused per accepted call, throttling
/// bursts, 5xx, slow answers, resets, and a few lost acknowledgements).
fn fault_plan(seed: u64) -> FaultPlan {
    FaultPlan {
        seed,
        record_failure_ratio: 0.3,
        throttle_ratio: 0.05,
        throttle_burst_calls: 3,
        server_error_ratio: 0.05,
        delay_ratio: 0.1,
        delay: Duration::from_millis(300),
        reset_ratio: 0.03,
        lost_ack_ratio: 0.01,
        ..FaultPlan::default()
    }
}

fn main() -> ExitCode {
    match real_main() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::FAILURE
        }
    }
}

struct Sidecar {
    bin: PathBuf,
    endpoint_url: String,
    root: PathBuf,
    record_format: String,
}

impl Sidecar {
    fn start(&self) -> anyhow::Result<ChildGuard> {
        let mut cmd = Command::new(&self.bin);
        cmd.envs(firetail_testkit::aws::sdk_env(&self.endpoint_url))
            .env("FIRETAIL_DELIVERY_STREAM", "chaos")
            .env(
                "FIRETAIL_PATHS",
                format!("{}/logs/**/app.log*", self.root.display()),
            )
            .env("FIRETAIL_DATA_DIR", self.root.join("data"))
            .env("FIRETAIL_PODINFO_DIR", self.root.join("podinfo"))
            .env("FIRETAIL_METRICS_ADDR", "127.0.0.1:0")
            .env("FIRETAIL_KUBERNETES_API", "off")
            .env("FIRETAIL_RECORD_FORMAT", &self.record_format)
            .env("FIRETAIL_RETRY_BASE_MS", "20")
            .env("FIRETAIL_RETRY_MAX_MS", "1000")
            .env("FIRETAIL_DRAIN_QUIET_MS", "2000")
            .env("FIRETAIL_DRAIN_TIMEOUT_SECS", "120")
            .env("FIRETAIL_LOG_FORMAT", "text")
            .env("POD_NAME", "chaos-1")
            .env("POD_NAMESPACE", "chaos");
        Ok(ChildGuard::spawn("firetail", cmd)?)
    }
}

fn event_line(seq: u64, pad: &str) -> String {
    format!("chaos seq={seq} {pad}")
}

/// One fake app: writes sequence numbers `index, index + files, ...` below `total` into
/// `dir/app.log`, renaming it to `app.log.<n>` and starting a new one every `rotate_events`.
struct Writer {
    dir: PathBuf,
    index: u64,
    files: u64,
    total: u64,
    per_sec: u64,
    rotate_events: u64,
    pad: String,
    written: Arc<AtomicU64>,
    rotations: Arc<AtomicU64>,
}

impl Writer {
    fn run(self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join("app.log");
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        };
        let mut out = BufWriter::new(open()?);
        let start = Instant::now();
        let mut mine = 0u64;
        let mut generation = 0u64;
        let mut seq = self.index;
        while seq < self.total {
            writeln!(out, "{}", event_line(seq, &self.pad))?;
            mine += 1;
            self.written.fetch_add(1, Ordering::Relaxed);
            seq += self.files;
            if mine.is_multiple_of(self.rotate_events) {
                out.flush()?;
                generation += 1;
                std::fs::rename(&path, self.dir.join(format!("app.log.{generation}")))?;
                out = BufWriter::new(open()?);
                self.rotations.fetch_add(1, Ordering::Relaxed);
            }
            if mine.is_multiple_of(100) {
                out.flush()?;
                // Pace: this writer's share of the rate.
                let due =
                    Duration::from_secs_f64(mine as f64 * self.files as f64 / self.per_sec as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
        }
        out.flush()
    }
}

/// Sequence numbers in one accepted record (ndjson, ndjson-gzip or a single JSON event).
fn count_record(record: &[u8], counts: &mut [u32], unknown: &mut u64) {
    let Ok(text) = firetail_testkit::records::inflate(record) else {
        *unknown += 1;
        return;
    };
    for line in firetail_testkit::wire::format::lines(&text) {
        let seq = serde_json::from_slice::<serde_json::Value>(line)
            .ok()
            .and_then(|v| {
                v["log"]
                    .as_str()
                    .and_then(|l| l.strip_prefix("chaos seq="))
                    .and_then(|l| l.split(' ').next())
                    .and_then(|n| n.parse::<usize>().ok())
            });
        match seq {
            Some(n) if n < counts.len() => counts[n] += 1,
            _ => *unknown += 1,
        }
    }
}

/// Counts the records accepted since the last call.
struct Tally {
    counts: Vec<u32>,
    seen_records: usize,
    unknown: u64,
    distinct: u64,
}

impl Tally {
    fn update(&mut self, endpoint: &FirehoseEndpoint) {
        let records = endpoint.accepted();
        for record in &records[self.seen_records.min(records.len())..] {
            count_record(record, &mut self.counts, &mut self.unknown);
        }
        self.seen_records = records.len();
        self.distinct = self.counts.iter().filter(|c| **c > 0).count() as u64;
    }
}

fn real_main() -> anyhow::Result<bool> {
    let args = Args::parse();
    if args.files == 0 || args.events_per_sec == 0 || args.rotate_events == 0 {
        bail!("--files, --events-per-sec and --rotate-events must be > 0");
    }
    let started = Instant::now();
    let rt = tokio::runtime::Runtime::new()?;
    let endpoint = rt.block_on(FirehoseEndpoint::start_with(EndpointOptions {
        plan: fault_plan(args.seed),
        ..EndpointOptions::default()
    }))?;
    let root = tempfile::Builder::new()
        .prefix("firetail-chaos-")
        .tempdir()?;
    let bin = match &args.firetail_bin {
        Some(bin) => bin.clone(),
        None => workspace_bin("firetail"),
    };
    let sidecar = Sidecar {
        bin,
        endpoint_url: endpoint.url(),
        root: root.path().to_path_buf(),
        record_format: args.record_format.clone(),
    };
    eprintln!(
        "chaos: {} events, {} files, {}/s, rotate every {} events per file, >= {} kills; endpoint {}; dir {}",
        args.events,
        args.files,
        args.events_per_sec,
        args.rotate_events,
        args.kills,
        endpoint.url(),
        root.path().display()
    );

    let written = Arc::new(AtomicU64::new(0));
    let rotations = Arc::new(AtomicU64::new(0));
    let pad: String = "p".repeat(args.pad_bytes);
    let mut writers = Vec::new();
    let mut child = sidecar.start()?;
    for index in 0..args.files {
        let writer = Writer {
            dir: root.path().join(format!("logs/app{index}")),
            index,
            files: args.files,
            total: args.events,
            per_sec: args.events_per_sec,
            rotate_events: args.rotate_events,
            pad: pad.clone(),
            written: Arc::clone(&written),
            rotations: Arc::clone(&rotations),
        };
        writers.push(std::thread::spawn(move || writer.run()));
    }

    // Kills spread over the writing time, at seeded random points, each followed by a
    // seeded random downtime while the apps keep writing.
    let write_secs = args.events as f64 / args.events_per_sec as f64;
    let mut rng = fastrand_like(args.seed);
    let mut kills = 0u32;
    let mut killed_after = Vec::new();
    while kills < args.kills {
        let mean = write_secs / f64::from(args.kills + 1);
        let wait = Duration::from_secs_f64(mean * (0.5 + rng()));
        std::thread::sleep(wait);
        if let Some(status) = child.try_wait()? {
            bail!(
                "firetail exited by itself ({status:?}):\n{}",
                child.stderr()
            );
        }
        child.kill()?;
        kills += 1;
        killed_after.push(written.load(Ordering::Relaxed));
        eprintln!(
            "chaos: [{:>5.1}s] kill -9 #{kills} after {} events written, {} records accepted",
            started.elapsed().as_secs_f64(),
            written.load(Ordering::Relaxed),
            endpoint.stats().records_accepted
        );
        std::thread::sleep(Duration::from_secs_f64(0.1 + rng()));
        child = sidecar.start()?;
    }
    for w in writers {
        w.join()
            .map_err(|_| anyhow::anyhow!("a writer panicked"))?
            .context("writer")?;
    }
    let written_total = written.load(Ordering::Relaxed);
    eprintln!(
        "chaos: [{:>5.1}s] writers done: {written_total} events, {} rotations",
        started.elapsed().as_secs_f64(),
        rotations.load(Ordering::Relaxed)
    );

    // Wait until every event arrived, or until nothing new arrives for a while.
    let mut tally = Tally {
        counts: vec![0; usize::try_from(args.events)?],
        seen_records: 0,
        unknown: 0,
        distinct: 0,
    };
    // A full count copies every accepted record out of the endpoint (under its lock), so it
    // runs every few seconds, not continuously.
    let mut last_progress = (Instant::now(), 0u64);
    loop {
        tally.update(&endpoint);
        eprintln!(
            "chaos: [{:>5.1}s] {} of {} events delivered",
            started.elapsed().as_secs_f64(),
            tally.distinct,
            args.events
        );
        if tally.distinct >= args.events {
            break;
        }
        if tally.distinct > last_progress.1 {
            last_progress = (Instant::now(), tally.distinct);
        } else if last_progress.0.elapsed() > Duration::from_secs(args.stall_secs) {
            eprintln!("chaos: no progress for {}s; stopping", args.stall_secs);
            break;
        }
        std::thread::sleep(TALLY_INTERVAL);
    }
    eprintln!(
        "chaos: [{:>5.1}s] {} of {} events delivered; SIGTERM",
        started.elapsed().as_secs_f64(),
        tally.distinct,
        args.events
    );
    child.terminate()?;
    let status = child
        .wait_timeout(Duration::from_secs(180))?
        .context("firetail did not exit within 180 s of SIGTERM")?;
    let drained = status.success()
        && child
            .stderr()
            .contains("drained; everything read was delivered");
    tally.update(&endpoint);

    let lost = tally.counts.iter().filter(|c| **c == 0).count();
    let duplicated: u64 = tally
        .counts
        .iter()
        .map(|c| u64::from(c.saturating_sub(1)))
        .sum();
    let duplicated_events = tally.counts.iter().filter(|c| **c > 1).count();
    let stats = endpoint.stats();
    let elapsed = started.elapsed();
    let mut summary = String::new();
    writeln!(summary, "chaos: events written       {written_total}")?;
    writeln!(
        summary,
        "chaos: events delivered     {} distinct",
        tally.distinct
    )?;
    writeln!(summary, "chaos: lost                 {lost}")?;
    writeln!(
        summary,
        "chaos: duplicated           {duplicated} extra copies of {duplicated_events} events"
    )?;
    writeln!(summary, "chaos: unparseable          {}", tally.unknown)?;
    writeln!(summary, "chaos: kill -9 restarts     {kills}")?;
    writeln!(
        summary,
        "chaos: rotations            {}",
        rotations.load(Ordering::Relaxed)
    )?;
    writeln!(
        summary,
        "chaos: endpoint             {} requests, {} records accepted, {} refused (partial failure), {} throttled calls, {} HTTP 500, {} resets, {} lost acks",
        stats.requests,
        stats.records_accepted,
        stats.records_failed,
        stats.throttled_calls,
        stats.server_errors,
        stats.resets,
        stats.lost_acks
    )?;
    writeln!(
        summary,
        "chaos: final drain          {status:?}, clean: {drained}"
    )?;
    writeln!(
        summary,
        "chaos: duration             {:.1}s",
        elapsed.as_secs_f64()
    )?;
    if lost > 0 {
        let first: Vec<usize> = tally
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == 0)
            .map(|(i, _)| i)
            .take(10)
            .collect();
        writeln!(summary, "chaos: first lost sequence numbers {first:?}")?;
        eprintln!("{}", child.stderr());
    }
    std::io::stdout().lock().write_all(summary.as_bytes())?;
    Ok(lost == 0 && drained && tally.unknown == 0)
}

/// A seeded generator of floats in [0, 1) for kill times (no dependency needed for this).
fn fastrand_like(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}
