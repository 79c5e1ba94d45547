//! The shipper's run loop in this process, against the test kit's servers on 127.0.0.1.
//!
//! - `faults`: through the real SDK against the FAULT-INJECTING Firehose endpoint — partial
//!   failures, throttling, 5xx, resets, lost acks, a missing stream, a drain deadline.
//! - `kube`: the Kubernetes API path, against a CANNED-RESPONSE stand-in of the pod GET.
#![allow(clippy::unwrap_used)]

mod common;
mod faults;
mod kube;
