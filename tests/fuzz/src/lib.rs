//! What the fuzz targets exercise: the pure cores of firetail's two crates, compiled from
//! their own source files.
//!
//! The transform's planner (`config`, `decode`, `event`, `kube`, `render`, `tags`, `time`,
//! `transform`) and the sidecar's line framer (`framing`) are pure: no I/O, no AWS. Their
//! crates also hold the AWS shells (SDK clients, the Lambda runtime, ...), which would make
//! every fuzz build compile the AWS SDK with coverage instrumentation for minutes. Including
//! the modules by path keeps the fuzz build small and fuzzes exactly the shipped code; if a
//! pure module ever starts to need a shell module, this build fails and says so.
#![allow(dead_code, unused_imports)]

#[path = "../../../lambda-transform/src/config.rs"]
pub mod config;
#[path = "../../../lambda-transform/src/decode.rs"]
pub mod decode;
#[path = "../../../lambda-transform/src/event.rs"]
pub mod event;
#[path = "../../../lambda-transform/src/kube.rs"]
pub mod kube;
#[path = "../../../lambda-transform/src/render.rs"]
pub mod render;
#[path = "../../../lambda-transform/src/tags.rs"]
pub mod tags;
#[path = "../../../lambda-transform/src/time.rs"]
pub mod time;
#[path = "../../../lambda-transform/src/transform.rs"]
pub mod transform;

#[path = "../../../sidecar/src/tail/framing.rs"]
pub mod framing;
