//! The processor buffer template.yaml gives Firehose against what one response can carry: an
//! invocation of that much record data, of every payload kind the benchmarks build (the
//! sidecar's v2 records of short, repetitive lines being the densest), is delivered whole to
//! every destination, nothing re-ingested and billed again. What larger buffers cost is
//! `cargo bench -p firetail-transform --bench buffer`.

use firetail_transform::config::{Config, Destination};
use firetail_transform::plan::plan;
use firetail_wire::limits::{PROCESSOR_DEFAULT_BUFFER_BYTES, TEMPLATE_PROCESSOR_BUFFER_BYTES};

#[path = "../../benches/workload.rs"]
#[allow(dead_code)]
mod workload;

use workload::{Kind, invocation_of_buffer};

/// `ProcessorBufferSizeMBs`' `Default:` in template.yaml, in bytes (Firehose's MB are MiB).
fn template_processor_buffer_bytes() -> usize {
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap();
    let mut lines = template
        .lines()
        .skip_while(|l| l.trim() != "ProcessorBufferSizeMBs:");
    assert!(
        lines.next().is_some(),
        "no ProcessorBufferSizeMBs parameter in template.yaml"
    );
    let default = lines
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .expect("ProcessorBufferSizeMBs has a Default");
    let mb: f64 = default.trim().parse().unwrap();
    (mb * 1024.0 * 1024.0).round() as usize
}

#[test]
fn the_template_sets_the_processor_buffer_the_transform_is_sized_for() {
    assert_eq!(
        template_processor_buffer_bytes(),
        TEMPLATE_PROCESSOR_BUFFER_BYTES
    );
}

/// Records `kind` delivered to `destination` from an invocation of `buffer_bytes` of record
/// data: (records, records re-ingested, events delivered).
fn deliver(kind: Kind, destination: Destination, buffer_bytes: usize) -> (u64, u64, u64) {
    let event = invocation_of_buffer(kind, buffer_bytes);
    let config = Config {
        destination,
        ..Config::default()
    };
    let stats = plan(&event, &config, 0).stats();
    (stats.records_in, stats.records_reingested, stats.events_out)
}

fn events_per_record(kind: Kind) -> u64 {
    kind.events_per_record() as u64
}

#[test]
fn an_invocation_of_the_templates_processor_buffer_is_delivered_whole() {
    for destination in [
        Destination::Datadog,
        Destination::S3,
        Destination::OpenSearch,
    ] {
        for kind in Kind::ALL {
            if destination == Destination::OpenSearch && kind.events_per_record() > 1 {
                continue; // one document per record: packed records fail there by design
            }
            let (records, reingested, delivered) =
                deliver(kind, destination, TEMPLATE_PROCESSOR_BUFFER_BYTES);
            let name = kind.name();
            assert!(records > 1, "{destination:?} {name}: {records} records");
            assert_eq!(
                reingested, 0,
                "{destination:?} {name}: re-ingested of {records}"
            );
            assert_eq!(
                delivered,
                records * events_per_record(kind),
                "{destination:?} {name}"
            );
        }
    }
}

/// Why the template does not keep Firehose's default: at 1 MB, a response cannot carry the
/// Datadog events of the densest records, and the rest are billed a second time.
#[test]
fn at_firehoses_default_buffer_the_densest_datadog_invocation_overflows() {
    let (records, reingested, delivered) = deliver(
        Kind::SidecarV2Zstd,
        Destination::Datadog,
        PROCESSOR_DEFAULT_BUFFER_BYTES,
    );
    assert!(reingested > 0, "{reingested} of {records} re-ingested");
    assert!(delivered < records * events_per_record(Kind::SidecarV2Zstd));
}
