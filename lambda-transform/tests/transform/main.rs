//! The transform through its library and its real binary, one test binary.
//!
//! - `fixtures`: the fixture invocations of every input kind, per destination.
//! - `hostile`: the hostile-input corpus, through `handle` and the binary.
//! - `memory`: the binary's peak memory under the worst invocations we can build.
//! - `properties`: generated invocations — every record once, limits kept, nothing lost.
//! - `runtime`: the binary over the Lambda Runtime API, re-ingesting into the fault-injecting
//!   endpoint.
#![allow(clippy::unwrap_used)]

mod common;
mod fixtures;
mod hostile;
mod memory;
mod properties;
mod runtime;
