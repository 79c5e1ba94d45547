//! The real `firetail-transform` binary over the Lambda Runtime API on 127.0.0.1
//! (`cargo bench -p firetail-transform --bench runtime`): process start to first request,
//! MB/s of uncompressed event bytes per core of the function's own CPU time, and peak RSS
//! after 1 MB and 6 MB invocations; and the byte floor of the same records (base64 decode +
//! decompress + gzip level 1 + base64 encode, no parsing, in this process on one thread: the
//! work no transform of these records can skip), and the output floor (the same inputs
//! decoded, but the bytes deflated and encoded are the outputs the transform delivered: the
//! work no transform writing these outputs can skip). Prints Markdown for docs/BENCHMARKS.md.
//! The function shapes records for Datadog, or for S3 with `FIRETAIL_BENCH_DESTINATION=s3`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

mod workload;

use std::path::Path;
use std::time::{Duration, Instant};

use firetail_testkit::aws::sdk_env;
use firetail_testkit::procfs::{cpu_secs, peak_rss_mib};
use firetail_testkit::runtime_api::{RuntimeApi, spawn_function};
use firetail_testkit::{FaultPlan, FirehoseEndpoint};
use firetail_transform::config::{Config, Destination, MALLOC_ENV};
use workload::{Kind, invocation};

const BIN: &str = env!("CARGO_BIN_EXE_firetail-transform");

/// CPU-seconds this thread has run (`/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: u64 = s.split_whitespace().next().unwrap().parse().unwrap();
    ns as f64 / 1e9
}

/// The floors' share of reading a record: base64 decode, then decompress into `raw` (plain
/// records, one event each, have nothing to decompress and are copied).
fn decode_input(record: &firetail_transform::invocation::InputRecord, raw: &mut Vec<u8>) {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.data)
        .unwrap();
    match firetail_wire::codec::Codec::of(&bytes) {
        Some(codec) => {
            firetail_wire::codec::decompress_into(codec, &bytes, usize::MAX, raw).unwrap();
        }
        None => {
            raw.clear();
            raw.extend_from_slice(&bytes);
        }
    }
}

/// CPU-seconds per call of `pass`, called at least three times and for at least `min_cpu`.
fn cpu_per_pass(min_cpu: f64, mut pass: impl FnMut()) -> f64 {
    let (start, mut passes) = (thread_cpu_secs(), 0u32);
    while passes < 3 || thread_cpu_secs() - start < min_cpu {
        pass();
        passes += 1;
    }
    (thread_cpu_secs() - start) / f64::from(passes)
}

/// CPU-seconds per pass of the byte floor over `records`, repeated for at least `min_cpu`.
fn floor_secs(records: &[firetail_transform::invocation::InputRecord], min_cpu: f64) -> f64 {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = Vec::new();
    let mut gz = Vec::new();
    let mut gzipper = firetail_wire::gzip::Gzipper::new(flate2::Compression::fast());
    cpu_per_pass(min_cpu, || {
        for r in records {
            decode_input(r, &mut raw);
            gz.clear();
            gzipper.gzip_into(&raw, &mut gz);
            std::hint::black_box(b64.encode(&gz));
        }
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The uncompressed text and the bytes of every output the plan delivered.
fn delivered_outputs(plan: &firetail_transform::plan::Plan) -> Vec<(Vec<u8>, Vec<u8>)> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    plan.records
        .iter()
        .filter_map(|r| r.data.as_deref())
        .map(|data| {
            let bytes = b64.decode(data).unwrap();
            let text = firetail_wire::gzip::maybe_gunzip(&bytes, usize::MAX)
                .unwrap()
                .into_owned();
            (text, bytes)
        })
        .collect()
}

/// CPU-seconds per pass of the output floor: every input record decoded and decompressed as
/// in [`floor_secs`], every delivered output's text deflated at level 1 and its bytes base64
/// encoded; repeated for at least `min_cpu`.
fn output_floor_secs(
    records: &[firetail_transform::invocation::InputRecord],
    outputs: &[(Vec<u8>, Vec<u8>)],
    min_cpu: f64,
) -> f64 {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut raw = Vec::new();
    let mut gz = Vec::new();
    let mut gzipper = firetail_wire::gzip::Gzipper::new(flate2::Compression::fast());
    cpu_per_pass(min_cpu, || {
        for r in records {
            decode_input(r, &mut raw);
            std::hint::black_box(&raw);
        }
        for (text, bytes) in outputs {
            gz.clear();
            gzipper.gzip_into(text, &mut gz);
            std::hint::black_box(&gz);
            std::hint::black_box(b64.encode(bytes));
        }
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 3 } else { 7 };

    // Cold start: spawn to the first `next` poll, median of several fresh processes.
    let mut starts = Vec::new();
    for _ in 0..if quick { 5 } else { 15 } {
        let api = RuntimeApi::start().await.unwrap();
        let spawned = Instant::now();
        let _function =
            spawn_function(Path::new(BIN), &api, [("FIRETAIL_DESTINATION", "datadog")]).unwrap();
        let first = api.wait_first_poll(Duration::from_secs(10)).await.unwrap();
        starts.push(first.duration_since(spawned).as_secs_f64() * 1e3);
    }
    println!(
        "Process start to first Runtime API request: median {:.1} ms (min {:.1}, max {:.1}, n={})\n",
        median(starts.clone()),
        starts.iter().copied().fold(f64::MAX, f64::min),
        starts.iter().copied().fold(0.0, f64::max),
        starts.len()
    );

    // FIRETAIL_BENCH_DESTINATION=datadog (default) or s3: where the function shapes records for.
    let destination = std::env::var("FIRETAIL_BENCH_DESTINATION").unwrap_or("datadog".into());
    let config = Config {
        destination: match destination.as_str() {
            "datadog" => Destination::Datadog,
            "s3" => Destination::S3,
            other => panic!("FIRETAIL_BENCH_DESTINATION={other}: datadog or s3"),
        },
        ..Config::default()
    };
    println!("Destination: {destination}\n");
    println!(
        "| records | invocation | records/inv | uncompressed MB | median ms (wall) | MB/s per core | events/s per core | re-ingested | peak RSS MiB | us/event | floor us/event | / floor | output floor us/event | / output floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // Overflow is re-ingested for real, into a local PutRecordBatch endpoint.
    let mut endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let min_cpu = if quick { 0.3 } else { 2.0 };
    // FIRETAIL_BENCH_FILTER=<substring of "<records> <invocation>"> runs only matching rows.
    let filter = std::env::var("FIRETAIL_BENCH_FILTER").unwrap_or_default();
    for kind in Kind::ALL {
        for (label, size) in [("1 MB", 1_000_000), ("6 MB", 6_000_000)] {
            if !format!("{} {label}", kind.name()).contains(&filter) {
                continue;
            }
            let event = invocation(kind, size);
            let body = serde_json::to_vec(&event).unwrap();
            let plan = firetail_transform::plan::plan(&event, &config, 0);
            // A fresh process per workload so its peak RSS is this workload's.
            let api = RuntimeApi::start().await.unwrap();
            let mut env = sdk_env(&endpoint.url());
            env.push(("FIRETAIL_DESTINATION".into(), destination.clone()));
            // As template.yaml runs it.
            env.extend(MALLOC_ENV.map(|(k, v)| (k.to_owned(), v.to_owned())));
            let function = spawn_function(Path::new(BIN), &api, env).unwrap();
            api.invoke(body.clone()).await.unwrap();
            // CPU time of the function only (the Runtime API server is this process), summed
            // over enough invocations that 10 ms clock ticks do not matter.
            let mut walls = Vec::new();
            let cpu0 = cpu_secs(function.pid());
            while walls.len() < runs || cpu_secs(function.pid()) - cpu0 < min_cpu {
                let t = Instant::now();
                let answer = api.invoke(body.clone()).await.unwrap();
                walls.push(t.elapsed().as_secs_f64());
                assert!(answer.len() <= 6_000_000, "response over Lambda's limit");
            }
            let cpu = (cpu_secs(function.pid()) - cpu0) / walls.len() as f64;
            let mb = plan.stats().bytes_in as f64 / 1e6;
            let events = plan.stats().events_out as f64;
            let floor = floor_secs(&event.records, min_cpu / 2.0);
            let output_floor =
                output_floor_secs(&event.records, &delivered_outputs(&plan), min_cpu / 2.0);
            println!(
                "| {} | {label} | {} | {mb:.1} | {:.0} | {:.0} | {:.0}k | {} of {} | {:.1} | {:.2} | {:.2} | {:.2}x | {:.2} | {:.2}x |",
                kind.name(),
                event.records.len(),
                median(walls) * 1e3,
                mb / cpu,
                events / cpu / 1e3,
                plan.stats().records_reingested,
                event.records.len(),
                peak_rss_mib(function.pid()),
                cpu * 1e6 / events,
                floor * 1e6 / events,
                cpu / floor,
                output_floor * 1e6 / events,
                cpu / output_floor,
            );
        }
    }
    endpoint.shutdown().await;
}
