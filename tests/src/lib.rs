//! Test peers shared by firetail's crates: real protocol servers on 127.0.0.1 that the sidecar
//! and the transform talk to through their real clients.
//!
//! # Layout
//! - [`runtime_api`]: a Lambda Runtime API server and [`runtime_api::spawn_function`], to run
//!   the real `firetail-transform` binary in a test.
//! - [`process`]: [`process::ChildGuard`], a child process killed on drop, output captured.
//!
//! Every server binds 127.0.0.1 on a free port and stops when its handle is dropped.

pub mod process;
pub mod runtime_api;
mod server;

pub use process::ChildGuard;
pub use runtime_api::{InvokeError, RuntimeApi, spawn_function};
