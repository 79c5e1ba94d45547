//! Test peers shared by firetail's crates: real protocol servers on 127.0.0.1 that the sidecar
//! and the transform talk to through their real clients.
//!
//! # Layout
//! - [`runtime_api`]: a Lambda Runtime API server and [`runtime_api::spawn_function`], to run
//!   the real `firetail-transform` binary in a test.
//! - [`firehose_endpoint`]: a FAULT-INJECTING Firehose endpoint (partial failures, throttling,
//!   5xx, delays, resets) that records every accepted record; also a benchmark sink.
//! - [`hostile`]: the hostile-input corpus (`tests/hostile/` plus generated large samples).
//! - [`kube_api`]: a STAND-IN for the Kubernetes API's pod and pod-log endpoints (chunked
//!   follow streams with timestamps, `sinceTime`, `previous`, restarts, injected faults).
//! - [`moto`]: moto's server as Firehose + S3 on 127.0.0.1, with SDK helpers.
//! - [`aws`]: real SDK clients and child-process environment for a local endpoint.
//! - [`process`]: [`process::ChildGuard`], a child process killed on drop, output captured.
//! - [`recorder`]: a RECORDING pass-through in front of moto's Firehose that keeps record
//!   boundaries (moto concatenates a call's records into one S3 object).
//! - [`route`]: the end-to-end route helpers (fake pod, sidecar command, Firehose's processor
//!   role, counting by sequence number), used by the end-to-end tests and the demo.
//! - [`records`]: sidecar records and transform outputs back into JSON events.
//!
//! - [`free_port`], [`workspace_bin`]: small shared helpers.
//!
//! Every server binds 127.0.0.1 on a free port and stops when its handle is dropped. A child
//! process (the `firetail` sidecar, say) reaches one through its AWS SDK's default chain with
//! `command.envs(aws::sdk_env(&url))`: endpoint, dummy credentials, region.

pub mod aws;
pub mod firehose_endpoint;
pub mod hostile;
pub mod kube_api;
pub mod moto;
pub mod process;
pub mod procfs;
pub mod recorder;
pub mod records;
pub mod route;
pub mod runtime_api;
mod server;

pub use firehose_endpoint::{FaultPlan, FirehoseEndpoint};
/// The record contract both halves share, for tests that build or read records.
pub use firetail_wire as wire;
pub use kube_api::{KubeApiStandIn, LogFault};
pub use moto::MotoServer;
pub use process::ChildGuard;
pub use recorder::RecordingProxy;
pub use runtime_api::{InvokeError, RuntimeApi, spawn_function};

/// A port on 127.0.0.1 that was free a moment ago, for servers that must be told a port
/// (moto). Another process can take it before it is used: retry on a bind failure.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|e| panic!("no free port on 127.0.0.1: {e}"))
}

/// The path of a binary built from this workspace (`firetail`, `firetail-transform`, ...),
/// next to the running test. `env!("CARGO_BIN_EXE_...")` only covers the test's own package;
/// this finds the others in the same target dir (CARGO_TARGET_DIR included).
///
/// # Panics
/// If the binary is not there: build it first (`cargo build --workspace --all-targets`, which
/// `bash tests/run` does).
pub fn workspace_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("{} has no parent", exe.display()))
        .to_path_buf();
    // Test binaries live in <target>/<profile>/deps, binaries one level up.
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    if !bin.is_file() {
        panic!(
            "{} not found: build it first with `cargo build --workspace --all-targets` \
             (`bash tests/run` does)",
            bin.display()
        );
    }
    bin
}
