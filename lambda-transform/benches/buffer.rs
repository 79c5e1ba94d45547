//! What one invocation can deliver, by Firehose's processor buffer size
//! (`cargo bench -p firetail-transform --bench buffer`): for each destination and payload
//! kind, invocations of 0.2-3 MiB of record data (Firehose's `BufferSizeInMBs` range; it
//! counts, by the plain reading of its docs, the records' bytes as put, so the request is
//! ~1.4x larger), planned by the transform's own planner. Records that do not fit the 6 MB
//! response are re-ingested and billed again, so the table gives what that costs in steady
//! state, and the largest buffer at which nothing is re-ingested. Counts, not timings: the same on any machine. Prints
//! Markdown for docs/BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod workload;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_transform::config::{Config, Destination};
use firetail_wire::limits::TEMPLATE_PROCESSOR_BUFFER_BYTES;
use workload::{Kind, invocation_of_buffer};

const MIB: f64 = 1024.0 * 1024.0;

struct Outcome {
    request_bytes: usize,
    records: u64,
    /// Payloads put back into the stream: whole records, or the tails of split ones.
    reingested: u64,
    /// Their share of the invocation's record data.
    reingested_share: f64,
    events_out: u64,
}

fn outcome(kind: Kind, destination: Destination, buffer_bytes: usize) -> Outcome {
    let event = invocation_of_buffer(kind, buffer_bytes);
    let config = Config {
        destination,
        ..Config::default()
    };
    let plan = firetail_transform::plan::plan(&event, &config, 0);
    let data_bytes: usize = event
        .records
        .iter()
        .map(|r| STANDARD.decode(&r.data).unwrap().len())
        .sum();
    let reingested_bytes: usize = plan
        .records
        .iter()
        .flat_map(|r| &r.reingest)
        .map(Vec::len)
        .sum();
    let stats = plan.stats();
    Outcome {
        request_bytes: serde_json::to_vec(&event).unwrap().len(),
        records: stats.records_in,
        reingested: stats.records_reingested,
        reingested_share: reingested_bytes as f64 / data_bytes.max(1) as f64,
        events_out: stats.events_out,
    }
}

/// Whether this destination takes this kind at all (OpenSearch takes one event per record;
/// packed records are `ProcessingFailed` there by design).
fn applies(kind: Kind, destination: Destination) -> bool {
    destination != Destination::OpenSearch || kind.events_per_record() == 1
}

/// The largest buffer, in steps of 0.05 MiB up to 3 MiB, at which nothing is re-ingested
/// (`None`: even at 0.2 MiB something is).
fn largest_clean_buffer(kind: Kind, destination: Destination) -> Option<f64> {
    let clean = |steps: usize| {
        let bytes = (steps as f64 * 0.05 * MIB) as usize;
        outcome(kind, destination, bytes).reingested == 0
    };
    let (mut lo, mut hi) = (4usize, 60usize); // 0.2 and 3 MiB
    if !clean(lo) {
        return None;
    }
    if clean(hi) {
        return Some(3.0);
    }
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if clean(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo as f64 * 0.05)
}

fn main() {
    let buffers_mib = [0.2, 0.5, 1.0, 1.5, 2.0, 3.0];
    println!(
        "template.yaml's ProcessorBufferSizeMBs: {} MiB\n",
        TEMPLATE_PROCESSOR_BUFFER_BYTES as f64 / MIB
    );
    println!(
        "| destination | records | buffer MiB | request MB | records in | re-ingested payloads | share of the bytes | events delivered | ingestions per byte (steady state) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut largest = Vec::new();
    for destination in [
        Destination::Datadog,
        Destination::S3,
        Destination::OpenSearch,
    ] {
        for kind in Kind::ALL {
            if !applies(kind, destination) {
                continue;
            }
            for mib in buffers_mib {
                let o = outcome(kind, destination, (mib * MIB) as usize);
                // Each invocation puts this share of its bytes back into the stream, where they
                // fill the next buffers; when invocations are alike, a byte is ingested (and
                // billed) 1 / (1 - share) times on average.
                println!(
                    "| {destination:?} | {} | {mib} | {:.2} | {} | {} | {:.0} % | {} | {:.2} |",
                    kind.name(),
                    o.request_bytes as f64 / 1e6,
                    o.records,
                    o.reingested,
                    o.reingested_share * 100.0,
                    o.events_out,
                    1.0 / (1.0 - o.reingested_share).max(f64::MIN_POSITIVE)
                );
            }
            largest.push((destination, kind, largest_clean_buffer(kind, destination)));
        }
    }
    println!(
        "\n| destination | records | largest buffer with nothing re-ingested (MiB, 0.05 steps) |"
    );
    println!("|---|---|---|");
    for (destination, kind, mib) in largest {
        let cell = mib.map_or("< 0.2".to_owned(), |m| {
            if m >= 3.0 {
                "3 (Firehose's maximum)".to_owned()
            } else {
                format!("{m:.2}")
            }
        });
        println!("| {destination:?} | {} | {cell} |", kind.name());
    }
}
