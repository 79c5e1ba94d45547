//! The transform through its library and its real binary, one test binary.
//!
//! - `buffer`: an invocation of the template's processor buffer fits one response.
//! - `datadog_limit`: at the worst density, no Datadog request over the intake's event limit.
//! - `datadog_pipeline`: the generated Datadog log pipeline against the logs the renderer
//!   writes; the committed `lambda-transform/datadog/` files kept in sync.
//! - `fixtures`: the fixture invocations of every input kind, per destination.
//! - `hostile`: the hostile-input corpus, through `handle` and the binary.
//! - `idempotence`: the transform's own output (a redrive) passes through unchanged.
//! - `memory`: the binary's peak memory under the worst invocations we can build.
//! - `properties`: generated invocations — every record once, limits kept, nothing lost.
//! - `runtime`: the binary over the Lambda Runtime API, re-ingesting into the fault-injecting
//!   endpoint.
#![allow(clippy::unwrap_used)]

mod buffer;
mod common;
mod datadog_limit;
mod datadog_pipeline;
mod fixtures;
mod hostile;
mod idempotence;
mod memory;
mod properties;
mod runtime;
