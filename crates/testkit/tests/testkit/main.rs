//! The test kit's own tests, one binary: its servers driven by real clients.
//!
//! - `firehose_endpoint`: the fault-injecting Firehose endpoint through the real SDK.
//! - `firehose_endpoint_bin`: the standalone `firehose-endpoint` binary.
//! - `runtime_api`: the Lambda Runtime API server through the real `lambda_runtime` client.

mod firehose_endpoint;
mod firehose_endpoint_bin;
mod runtime_api;
