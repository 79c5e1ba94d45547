//! `invoke`: runs a Lambda binary once on an event file, the way Lambda would — through the
//! testkit's Runtime API server on 127.0.0.1 — and prints the answer. For a Firehose
//! transformation response each record is shown with its result and its decoded `data`
//! (base64, then gunzipped when it is gzip), so the transform can be tried without an AWS
//! account:
//!
//! ```text
//! cargo build -p firetail-transform -p firetail-testkit
//! target/debug/invoke lambda-transform/fixtures/sidecar-json.json
//! FIRETAIL_DESTINATION=s3 target/debug/invoke lambda-transform/fixtures/sidecar-packed.json
//! ```
//!
//! `FIRETAIL_*`, `AWS_ENDPOINT_URL*` and credential variables of the caller are passed to the
//! function; the rest of its environment is what Lambda sets.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::Parser;
use firetail_testkit::{RuntimeApi, spawn_function};
use serde_json::Value;

/// Invoke a Lambda binary once through a local Lambda Runtime API and print its answer.
#[derive(Debug, Parser)]
#[command(name = "invoke")]
struct Args {
    /// The invocation event (JSON file).
    event: PathBuf,
    /// The function binary; by default `firetail-transform` next to this program.
    #[arg(long, env = "FIRETAIL_INVOKE_FUNCTION")]
    function: Option<PathBuf>,
    /// How long the function may take.
    #[arg(long, default_value_t = 60, env = "FIRETAIL_INVOKE_TIMEOUT_SECS")]
    timeout_secs: u64,
    /// Print the response exactly as the function returned it.
    #[arg(long, env = "FIRETAIL_INVOKE_RAW")]
    raw: bool,
    /// Show at most this many bytes of each decoded record (0: everything).
    #[arg(long, default_value_t = 2048, env = "FIRETAIL_INVOKE_MAX_SHOWN_BYTES")]
    max_shown_bytes: usize,
}

/// Variables of the caller handed to the function (its configuration and AWS endpoints).
fn passed_through(key: &str) -> bool {
    key.starts_with("FIRETAIL_") && !key.starts_with("FIRETAIL_INVOKE_")
        || key.starts_with("AWS_ENDPOINT_URL")
        || matches!(
            key,
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"
        )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let event =
        std::fs::read(&args.event).with_context(|| format!("reading {}", args.event.display()))?;
    let function = match args.function {
        Some(path) => path,
        None => std::env::current_exe()?
            .with_file_name("firetail-transform")
            .canonicalize()
            .context("firetail-transform not found next to invoke: cargo build -p firetail-transform, or pass --function")?,
    };

    let mut api = RuntimeApi::start().await?;
    let mut child = spawn_function(
        &function,
        &api,
        std::env::vars().filter(|(k, _)| passed_through(k)),
    )
    .with_context(|| format!("starting {}", function.display()))?;
    let answer = api
        .invoke_timeout(event, Duration::from_secs(args.timeout_secs))
        .await;
    // Stop the function before its Runtime API, or it reports the API going away.
    child.terminate()?;
    child.wait_timeout(Duration::from_secs(5))?;
    api.shutdown().await;
    let function_log = child.stdout() + &child.stderr();

    let body = match answer {
        Ok(body) => body,
        Err(err) => {
            println!("{function_log}");
            bail!("invocation failed: {err}");
        }
    };
    if args.raw {
        println!("{}", String::from_utf8_lossy(&body));
        return Ok(ExitCode::SUCCESS);
    }
    for line in function_log.lines() {
        println!("function| {line}");
    }
    let response: Value = serde_json::from_slice(&body).context("response is not JSON")?;
    let Some(records) = response.get("records").and_then(Value::as_array) else {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(ExitCode::SUCCESS);
    };
    for record in records {
        let id = record
            .get("recordId")
            .and_then(Value::as_str)
            .unwrap_or("?");
        let result = record.get("result").and_then(Value::as_str).unwrap_or("?");
        let data = record.get("data").and_then(Value::as_str).unwrap_or("");
        println!("== {id}: {result}");
        let shown = decode(data);
        if args.max_shown_bytes > 0 && shown.len() > args.max_shown_bytes {
            let cut = shown.floor_char_boundary(args.max_shown_bytes);
            println!("{}... ({} more bytes)", &shown[..cut], shown.len() - cut);
        } else if !shown.is_empty() {
            println!("{}", shown.trim_end_matches('\n'));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Base64 text of a record as readable text: gunzipped when it is gzip (all members).
fn decode(data: &str) -> String {
    let Ok(bytes) = STANDARD.decode(data) else {
        return format!("(data is not base64: {data})");
    };
    if firetail_testkit::wire::gzip::is_gzip(&bytes) {
        return match firetail_testkit::records::inflate(&bytes) {
            Ok(text) => format!(
                "(gzip, {} bytes)\n{}",
                bytes.len(),
                String::from_utf8_lossy(&text)
            ),
            Err(err) => format!("(gzip that does not inflate: {err})"),
        };
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
