//! In-process throughput of the pure transform (`cargo bench -p firetail-transform --bench
//! transform`): MB/s of uncompressed event bytes per core, for 1 MB and 6 MB invocations of each
//! record style and destination. Prints a Markdown table for docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod workload;

use std::time::{Duration, Instant};

use firetail_testkit::procfs::cpu_secs;
use firetail_transform::config::{Config, Destination};
use firetail_transform::plan::plan;
use workload::{Kind, invocation};

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let min_time = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(3)
    };
    // FIRETAIL_BENCH_FILTER=<substring of the row label> runs only matching rows (profiling).
    let filter = std::env::var("FIRETAIL_BENCH_FILTER").unwrap_or_default();
    println!(
        "| records | destination | invocation | records/inv | input MB (uncompressed) | MB/s per core | events/s per core | output/input (base64) | re-ingested |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for kind in Kind::ALL {
        for (label, size) in [("1 MB", 1_000_000), ("6 MB", 6_000_000)] {
            let event = invocation(kind, size);
            let request_bytes: usize = event.records.iter().map(|r| r.data.len()).sum();
            for destination in [Destination::Datadog, Destination::S3] {
                let row = format!("{} {destination:?} {label}", kind.name());
                if !row.contains(&filter) {
                    continue;
                }
                let config = Config {
                    destination,
                    ..Config::default()
                };
                let warm = plan(&event, &config, 0);
                let output_b64: usize = warm
                    .records
                    .iter()
                    .filter_map(|r| r.data.as_ref())
                    .map(String::len)
                    .sum();
                let (start_wall, start_cpu) = (Instant::now(), cpu_secs(std::process::id()));
                let (mut bytes, mut events, mut iterations) = (0u64, 0u64, 0u32);
                while start_wall.elapsed() < min_time || iterations < 3 {
                    let p = plan(&event, &config, 0);
                    bytes += p.stats().bytes_in;
                    events += p.stats().events_out;
                    iterations += 1;
                }
                // A floor so a run too short to register a clock tick cannot divide by zero.
                let cpu = (cpu_secs(std::process::id()) - start_cpu).max(0.01);
                println!(
                    "| {} | {:?} | {label} | {} | {:.1} | {:.0} | {:.0}k | {:.2} | {} of {} |",
                    kind.name(),
                    destination,
                    event.records.len(),
                    warm.stats().bytes_in as f64 / 1e6,
                    bytes as f64 / 1e6 / cpu,
                    events as f64 / cpu / 1e3,
                    output_b64 as f64 / request_bytes as f64,
                    warm.stats().records_reingested,
                    event.records.len(),
                );
                assert_eq!(warm.stats().records_failed, 0, "{row}");
            }
        }
    }
}
