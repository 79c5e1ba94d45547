//! The real `firetail` binary of this package, as a pod runs it (configured through its
//! environment), with the stdout sink or nothing to send to.
//!
//! - `cli`: the command line.
//! - `hostile_files`: the hostile-input corpus, rebuilt byte for byte from what came out.
//! - `memory`: peak RSS with Firehose down against the documented memory bound.
#![allow(clippy::unwrap_used)]

mod cli;
mod hostile_files;
mod memory;
