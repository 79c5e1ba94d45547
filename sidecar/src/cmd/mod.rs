//! The subcommands besides `run`.
//!
//! # Layout
//! - [`check`]: `firetail check`, the configuration and the stream without shipping.
//! - [`cost`]: the cost model behind `firetail cost`.

pub mod check;
pub mod cost;
