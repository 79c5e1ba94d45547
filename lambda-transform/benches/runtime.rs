//! The real `firetail-transform` binary over the Lambda Runtime API on 127.0.0.1
//! (`cargo bench -p firetail-transform --bench runtime`): process start to first request,
//! MB/s of uncompressed event bytes per core of the function's own CPU time, and peak RSS
//! after 1 MB and 6 MB invocations; and the byte floor of the same records (base64 decode +
//! decompress + gzip level 1 + base64 encode, no parsing, in this process on one thread: the
//! work no transform of these records can skip), and two output floors (the same inputs
//! decoded, but the bytes deflated and encoded are the outputs the transform delivered: at
//! level 1, the fastest; and at the lowest level writing each as small as it was delivered,
//! the work no zlib-rs transform delivering outputs this small can skip). Prints Markdown for
//! docs/BENCHMARKS.md.
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
/// records, one event each, have nothing to decompress and are copied), with one decompressor
/// for every record as the transform keeps one.
fn decode_input(
    record: &firetail_transform::invocation::InputRecord,
    decompressor: &mut firetail_wire::codec::Decompressor,
    raw: &mut Vec<u8>,
) {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&record.data)
        .unwrap();
    match firetail_wire::codec::Codec::of(&bytes) {
        Some(codec) => {
            decompressor
                .decompress_into(codec, &bytes, usize::MAX, raw)
                .unwrap();
        }
        None => {
            raw.clear();
            raw.extend_from_slice(&bytes);
        }
    }
}

/// The floors' buffers and coders, kept across passes as the transform keeps its own.
struct Floors {
    raw: Vec<u8>,
    gz: Vec<u8>,
    /// One per zlib-rs level, 0 to 9.
    gzippers: Vec<firetail_wire::gzip::Gzipper>,
    decompressor: firetail_wire::codec::Decompressor,
}

impl Floors {
    fn new() -> Self {
        Floors {
            raw: Vec::new(),
            gz: Vec::new(),
            gzippers: (0..=9)
                .map(|level| firetail_wire::gzip::Gzipper::new(flate2::Compression::new(level)))
                .collect(),
            decompressor: firetail_wire::codec::Decompressor::default(),
        }
    }

    /// CPU-seconds of one pass of the byte floor over `records`: each decoded, decompressed,
    /// gzipped at level 1 and base64 encoded.
    fn byte_pass(&mut self, records: &[firetail_transform::invocation::InputRecord]) -> f64 {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let start = thread_cpu_secs();
        for r in records {
            decode_input(r, &mut self.decompressor, &mut self.raw);
            self.gz.clear();
            self.gzippers[1].gzip_into(&self.raw, &mut self.gz);
            std::hint::black_box(b64.encode(&self.gz));
        }
        thread_cpu_secs() - start
    }

    /// CPU-seconds of one pass of an output floor: every input record decoded and
    /// decompressed as in [`Floors::byte_pass`], every delivered output's text deflated and its
    /// bytes base64 encoded. `as_small` deflates each text at the lowest level that writes it
    /// as small as it was delivered (the work no transform delivering outputs this small with
    /// zlib-rs can skip); otherwise at level 1 (the fastest, whatever the size). Outputs that
    /// are not gzip are only encoded.
    fn output_pass(
        &mut self,
        records: &[firetail_transform::invocation::InputRecord],
        outputs: &[Delivered],
        as_small: bool,
    ) -> f64 {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let start = thread_cpu_secs();
        for r in records {
            decode_input(r, &mut self.decompressor, &mut self.raw);
            std::hint::black_box(&self.raw);
        }
        for out in outputs {
            // An output the transform did not deflate is not deflated here either.
            let level = if as_small {
                out.level_as_small
            } else {
                out.level_as_small.map(|_| 1)
            };
            if let Some(level) = level {
                self.gz.clear();
                self.gzippers[level as usize].gzip_into(&out.text, &mut self.gz);
                std::hint::black_box(&self.gz);
            }
            std::hint::black_box(b64.encode(&out.bytes));
        }
        thread_cpu_secs() - start
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// An output the plan delivered: its uncompressed text, its bytes, and the lowest zlib-rs
/// level whose gzip of the text is no larger than those bytes (1 for the transform's
/// fast-level outputs; the dense level for those it compressed densely to fit the response;
/// `None` for an output that is not gzip, which the as-small floor does not deflate).
struct Delivered {
    text: Vec<u8>,
    bytes: Vec<u8>,
    level_as_small: Option<u32>,
}

fn delivered_outputs(plan: &firetail_transform::plan::Plan) -> Vec<Delivered> {
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
            let level_as_small = firetail_wire::gzip::is_gzip(&bytes).then(|| {
                (1..=9)
                    .find(|&level| {
                        firetail_wire::gzip::gzip(&text, flate2::Compression::new(level)).len()
                            <= bytes.len()
                    })
                    .expect("the transform deflates with zlib-rs: some level writes as small")
            });
            Delivered {
                text,
                bytes,
                level_as_small,
            }
        })
        .collect()
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
        "| records | invocation | records/inv | uncompressed MB | median ms (wall) | MB/s per core | events/s per core | re-ingested | peak RSS MiB | us/event | floor us/event | / floor | output floor us/event | / output floor | as-small output floor us/event | / as-small output floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // Overflow is re-ingested for real, into a local PutRecordBatch endpoint.
    let mut endpoint = FirehoseEndpoint::start(FaultPlan::none()).await.unwrap();
    let min_cpu = if quick { 0.3 } else { 2.0 };
    // FIRETAIL_BENCH_FILTER=<substring of "<records> <invocation>"> runs only matching rows.
    let filter = std::env::var("FIRETAIL_BENCH_FILTER").unwrap_or_default();
    // FIRETAIL_BENCH_LEVELS=1: also every zlib-rs level on each row's delivered texts (the
    // figures behind the transform's dense level), printed after the table.
    let levels = std::env::var("FIRETAIL_BENCH_LEVELS").is_ok_and(|v| v == "1");
    let mut sweeps = Vec::new();
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
            // over enough invocations that 10 ms clock ticks do not matter. One pass of each
            // floor runs after each invocation, in this process while the function waits for
            // the next, so a neighbour slowing this machine for a while slows both alike.
            let delivered = delivered_outputs(&plan);
            let mut floors = Floors::new();
            // One untimed pass of each, beside the untimed invocation above: the floors' buffers
            // grow and the function finishes that invocation before either is counted.
            floors.byte_pass(&event.records);
            floors.output_pass(&event.records, &delivered, false);
            floors.output_pass(&event.records, &delivered, true);
            let (mut floor, mut output_floor, mut as_small_floor) = (0.0, 0.0, 0.0);
            let mut walls = Vec::new();
            let cpu0 = cpu_secs(function.pid());
            while walls.len() < runs || cpu_secs(function.pid()) - cpu0 < min_cpu {
                let t = Instant::now();
                let answer = api.invoke(body.clone()).await.unwrap();
                walls.push(t.elapsed().as_secs_f64());
                assert!(answer.len() <= 6_000_000, "response over Lambda's limit");
                // In turn, so none always runs first after the function (with its inputs out
                // of the cache) or after another floor (with them in it).
                for i in 0..3 {
                    match (walls.len() + i) % 3 {
                        0 => floor += floors.byte_pass(&event.records),
                        1 => output_floor += floors.output_pass(&event.records, &delivered, false),
                        _ => {
                            as_small_floor += floors.output_pass(&event.records, &delivered, true);
                        }
                    }
                }
            }
            let n = walls.len() as f64;
            let cpu = (cpu_secs(function.pid()) - cpu0) / n;
            let (floor, output_floor, as_small_floor) =
                (floor / n, output_floor / n, as_small_floor / n);
            let mb = plan.stats().bytes_in as f64 / 1e6;
            let events = plan.stats().events_out as f64;
            println!(
                "| {} | {label} | {} | {mb:.1} | {:.0} | {:.0} | {:.0}k | {} of {} | {:.1} | {:.2} | {:.2} | {:.2}x | {:.2} | {:.2}x | {:.2} | {:.2}x |",
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
                as_small_floor * 1e6 / events,
                cpu / as_small_floor,
            );
            if levels && !delivered.is_empty() {
                sweeps.push((format!("{} {label}", kind.name()), level_sweep(&delivered)));
            }
        }
    }
    endpoint.shutdown().await;
    for (row, sweep) in sweeps {
        println!(
            "\nzlib-rs levels on the texts of the {} outputs delivered in {row}:\n",
            sweep.outputs
        );
        println!("| level | bytes per output | of level 1's | CPU ms per output | of level 1's |");
        println!("|---|---|---|---|---|");
        let (bytes1, secs1) = sweep.levels[0];
        for (level, (bytes, secs)) in (1..).zip(sweep.levels) {
            println!(
                "| {level} | {bytes:.0} | {:.3} | {:.3} | {:.2}x |",
                bytes / bytes1,
                secs * 1e3,
                secs / secs1
            );
        }
    }
}

/// What each zlib-rs level makes of a row's delivered texts: mean bytes and CPU-seconds per
/// output, levels 1 to 9.
struct LevelSweep {
    outputs: usize,
    levels: Vec<(f64, f64)>,
}

/// Every delivered text gzipped at levels 1 to 9, the levels taking turns pass by pass so a
/// slow spell of this machine falls on all of them, for at least a CPU-second per level.
fn level_sweep(delivered: &[Delivered]) -> LevelSweep {
    let mut gzippers: Vec<_> = (1..=9)
        .map(|level| firetail_wire::gzip::Gzipper::new(flate2::Compression::new(level)))
        .collect();
    let (mut bytes, mut secs) = (vec![0usize; 9], vec![0.0f64; 9]);
    let mut gz = Vec::new();
    let mut passes = 0usize;
    while passes < 3 || secs.iter().any(|&s| s < 1.0) {
        for (i, gzipper) in gzippers.iter_mut().enumerate() {
            let start = thread_cpu_secs();
            for out in delivered {
                gz.clear();
                gzipper.gzip_into(&out.text, &mut gz);
                bytes[i] += gz.len();
            }
            secs[i] += thread_cpu_secs() - start;
        }
        passes += 1;
    }
    let per = (passes * delivered.len().max(1)) as f64;
    LevelSweep {
        outputs: delivered.len(),
        levels: bytes
            .iter()
            .zip(&secs)
            .map(|(&b, &s)| (b as f64 / per, s / per))
            .collect(),
    }
}
