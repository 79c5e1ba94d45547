//! `firetail-transform`: the Lambda entry point. All logic lives in the library.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use firetail_firehose::{ClientSettings, SdkClient};
use firetail_transform::{Config, FirehoseEvent, FirehoseResponse, emf, handle, now_ms};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Arc::new(
        Config::from_env().inspect_err(|e| tracing::error!(error = %e, "invalid configuration"))?,
    );
    // Built at its first re-ingest: a cold start that re-ingests nothing pays nothing for it.
    let client = Arc::new(SdkClient::lazy(ClientSettings {
        attempt_timeout: firetail_transform::reingest::ATTEMPT_TIMEOUT,
    }));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<FirehoseEvent>| {
        let (config, client) = (Arc::clone(&config), Arc::clone(&client));
        async move { invoke(event, &config, &client).await }
    }))
    .await
}

async fn invoke(
    event: LambdaEvent<FirehoseEvent>,
    config: &Config,
    client: &SdkClient,
) -> Result<FirehoseResponse, Error> {
    let (payload, context) = (event.payload, event.context);
    client.set_fallback_region(&payload.region);
    let deadline = deadline_instant(context.deadline);
    let (response, stats) = handle(&payload, config, client, deadline).await;
    let line = emf::emf_line(
        &stats,
        &context.env_config.function_name,
        config.destination,
        now_ms(),
    );
    // EMF must be a line of its own on stdout, whatever the tracing format.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    Ok(response)
}

/// The invocation deadline (epoch ms from the Runtime API) on tokio's clock.
fn deadline_instant(deadline_ms: u64) -> Option<tokio::time::Instant> {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(SystemTime::now()).ok()?;
    Some(tokio::time::Instant::now() + left)
}
