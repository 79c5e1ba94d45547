//! End to end, the whole product: the real binaries of every package, moto's server as
//! Firehose and S3 (the real AWS wire protocol, through the real SDK), the test kit's
//! fault-injecting Firehose endpoint and Kubernetes API stand-in, the real Lambda Runtime API.
//! Every test counts events by their unique sequence numbers.
//!
//! Behind the `e2e` feature: these tests need moto's server (`FIRETAIL_MOTO_SERVER`, installed
//! by `.ci/venvs`) and every package's binaries built. `bash tests/run` does both, then runs
//! `cargo test --workspace --features firetail-e2e/e2e`.
//!
//! - `route`: files → sidecar → moto's Firehose → the transform → every destination.
//! - `process`: the `firetail` binary under rotations, kill -9, SIGTERM and faults.
//! - `shutdown_and_neighbours`: the binary's drain against a hanging endpoint (exit status,
//!   per-file log, metrics, nothing lost after a restart) and a flood of idle metrics
//!   connections under a small descriptor limit.
//! - `stdout`: the stdout source against the Kubernetes API stand-in (follow, faults, kill -9,
//!   container restarts with `previous=true`, RBAC denial, the SIGTERM drain).
//! - `moto_ship`: the shipper through the real SDK into moto's S3.
//! - `check`: `firetail check` against a real stream.
//! - `reingest`: the transform binary re-ingesting into moto's Firehose.
//! - `moto_server`: the test kit's moto launcher itself.
//! - `redrive`: `firetail-redrive` against moto's S3 and Firehose, faults, and the binary.
//! - `dashboards`: the Grafana and CloudWatch dashboards read only metrics the real binaries
//!   export.
#![cfg(feature = "e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod check;
mod common;
mod dashboards;
mod moto_server;
mod moto_ship;
mod process;
mod redrive;
/// Backup objects made by the real sidecar and transform, shared with the fixture bless test.
#[path = "../support/redrive_producer.rs"]
mod redrive_producer;
mod reingest;
mod route;
/// The shipper harness of the sidecar's own tests, shared rather than copied.
#[path = "../../../sidecar/tests/ship/common.rs"]
mod ship;
mod shutdown_and_neighbours;
mod stdout;
