//! `firetail-redrive`: parse the flags, set up logging, build the S3 and Firehose clients from
//! the SDK's default chain, and hand over to [`firetail_redrive::redrive`]. The summary goes
//! to stdout, logs to stderr; the exit status is 0 when everything in scope was redriven, 2
//! when something was left in the bucket, 1 when the run could not start or continue.

mod cli;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use firetail_firehose::SdkClient;
use firetail_redrive::{SdkStore, Summary, ensure_active, redrive};

use crate::cli::{LogFormat, RedriveArgs};

/// Exit status when something in scope is still in the bucket.
const LEFT_BEHIND: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match RedriveArgs::try_parse() {
        Ok(args) => args,
        Err(usage) => return cli::usage_exit(&usage),
    };
    init_tracing(args.log_format);
    match run(args).await {
        Ok(summary) if summary.left_behind() => ExitCode::from(LEFT_BEHIND),
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "firetail-redrive failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RedriveArgs) -> anyhow::Result<Summary> {
    let settings = args.into_config()?;
    let config = &settings.redrive;
    let store = SdkStore::from_env(settings.s3).await;
    let firehose = SdkClient::from_env(settings.firehose).await;
    if !config.dry_run {
        ensure_active(&firehose, &config.stream).await?;
    }
    let summary = redrive(config, &store, &firehose, terminated()).await?;
    let mut text = Vec::new();
    summary.render(&mut text)?;
    std::io::stdout().write_all(&text)?;
    Ok(summary)
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; only a kill stops firetail-redrive");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FIRETAIL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
