//! The real `firetail` binary of this package, as a pod runs it (configured through its
//! environment), with the stdout sink or nothing to send to.
//!
//! - `cli`: the command line.
//! - `hostile_files`: the hostile-input corpus, rebuilt byte for byte from what came out.
#![allow(clippy::unwrap_used)]

mod cli;
mod hostile_files;
