//! `firetail`: tails log files on a shared emptyDir and ships them to Amazon Data Firehose.
//!
//! Layout: parse flags, set up logging, build the sink, serve metrics, and hand over to
//! [`firetail_sidecar::run::run`] (or [`firetail_sidecar::check::check`]). Everything else
//! lives in the library.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use firetail_sidecar::config::{KubeApiArg, LogFormat, ShipArgs, SinkKind, TailArgs};
use firetail_sidecar::kube::KubeClient;
use firetail_sidecar::metrics::{self, Observability};
use firetail_sidecar::pack::Limits;
use firetail_sidecar::run::{RunConfig, pod_info_from_env, run};
use firetail_sidecar::sink::firehose::{FirehoseSink, client_config};
use firetail_sidecar::sink::stdout::StdoutSink;

/// Tails log files and ships them to Amazon Data Firehose.
#[derive(Debug, Parser)]
#[command(name = "firetail", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    ship: ShipArgs,
    #[command(flatten)]
    tail: TailArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Tail and ship until SIGTERM (the default).
    Run,
    /// Validate the configuration, list the files that would be tailed, and check that the
    /// delivery stream is ACTIVE; exit non-zero otherwise.
    Check,
    /// Estimate the monthly cost (Firehose, Lambda, network) of a log volume for each record
    /// format; sends nothing.
    Cost(firetail_sidecar::cost::CostArgs),
    /// Put the records Firehose wrote to its backup bucket (processing-failed,
    /// http-endpoint-failed, OpenSearch failed) back into the delivery stream; resumable.
    Redrive(firetail_sidecar::redrive::RedriveArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.ship.log_format);
    match real_main(cli).await {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "firetail failed");
            ExitCode::FAILURE
        }
    }
}

async fn real_main(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Redrive(args)) = &cli.command {
        return redrive_main(&cli.ship, args).await;
    }
    if let Some(Command::Cost(args)) = &cli.command {
        use firetail_sidecar::cost;
        let inputs = args.to_inputs(cli.ship.flush_interval_ms)?;
        let report = cost::render(&inputs, &cost::estimate(&inputs));
        std::io::Write::write_all(&mut std::io::stdout(), report.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let pod = pod_info_from_env(&cli.ship.podinfo_dir);
    let firehose = match cli.ship.sink {
        SinkKind::Firehose => {
            let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let conf = client_config(&sdk, Duration::from_secs(cli.ship.request_timeout_secs));
            let stream = cli.ship.delivery_stream.clone().unwrap_or_default();
            Some(FirehoseSink::new(
                aws_sdk_firehose::Client::from_conf(conf),
                stream,
            ))
        }
        SinkKind::Stdout => None,
    };
    if matches!(cli.command, Some(Command::Check)) {
        let mut report = Vec::new();
        let result = firetail_sidecar::check::check(
            &cli.ship,
            &cli.tail,
            &pod,
            firehose.as_ref(),
            &mut report,
        )
        .await;
        for line in &report {
            eprintln!("{line}");
        }
        return Ok(match result {
            Ok(()) => {
                eprintln!("check passed");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("check FAILED: {err}");
                ExitCode::FAILURE
            }
        });
    }
    cli.ship.validate()?;
    let tail = cli.tail.to_tail_config_for(cli.ship.record_format)?;
    let kube = match cli.ship.kubernetes_api {
        KubeApiArg::Off => None,
        KubeApiArg::Auto => KubeClient::in_cluster().unwrap_or_else(|error| {
            tracing::warn!(%error, "in-cluster Kubernetes API client unavailable");
            None
        }),
    };
    let obs = Arc::new(Observability::default());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = match cli.ship.metrics_socket()? {
        Some(addr) => {
            let listener = metrics::bind(addr)
                .await
                .with_context(|| format!("binding metrics address {addr}"))?;
            let bound = listener.local_addr().unwrap_or(addr);
            tracing::info!(addr = %bound, "serving /metrics, /healthz, /readyz");
            Some(tokio::spawn(metrics::serve(
                listener,
                Arc::clone(&obs),
                async {
                    let _ = http_stopped.await;
                },
            )))
        }
        None => None,
    };
    let config = RunConfig {
        ship: cli.ship,
        tail,
        pod,
        obs,
        limits: Limits::FIREHOSE,
        kube,
    };
    let report = match firehose {
        Some(sink) => run(config, sink, terminated()).await?,
        None => run(config, StdoutSink, terminated()).await?,
    };
    let _ = stop_http.send(());
    if let Some(http) = http {
        let _ = http.await;
    }
    tracing::info!(
        events = report.events_received,
        unacked_bytes = report.drain.unacked_bytes,
        "firetail stopped"
    );
    Ok(ExitCode::SUCCESS)
}

/// `firetail redrive`: clients from the default chain, the library does the rest; exit 0 only
/// when nothing in scope was left in the bucket.
async fn redrive_main(
    ship: &ShipArgs,
    args: &firetail_sidecar::redrive::RedriveArgs,
) -> anyhow::Result<ExitCode> {
    use firetail_sidecar::redrive::{self, ProgressArg, RedriveConfig, verdict};
    use std::io::IsTerminal as _;
    let stream = ship
        .delivery_stream
        .clone()
        .context("--delivery-stream (FIRETAIL_DELIVERY_STREAM) is required")?;
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(redrive::parse_time_ms)
            .transpose()
            .map_err(|e| anyhow::anyhow!("{flag}: {e}"))
    };
    let config = RedriveConfig {
        bucket: args.bucket.clone(),
        prefix: args.prefix.clone(),
        stream: stream.clone(),
        filter: verdict::Filter {
            since_ms: time("--since", &args.since)?,
            until_ms: time("--until", &args.until)?,
            error_codes: args.error_codes.iter().cloned().collect(),
        },
        rules: verdict::Rules {
            destination: args.destination,
            resend_rejected: args.resend_rejected,
            max_record_bytes: Limits::FIREHOSE.record_bytes,
        },
        dry_run: args.dry_run,
        after: args.after(),
        max_objects: args.max_objects,
        state_dir: args.state_dir.clone(),
        limits: Limits::FIREHOSE,
        policy: ship.send_policy(),
        progress: match args.progress {
            ProgressArg::Auto => std::io::stderr().is_terminal(),
            ProgressArg::Never => false,
        },
    };
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(args.s3_force_path_style)
            .build(),
    );
    let conf = client_config(&sdk, Duration::from_secs(ship.request_timeout_secs));
    let sink = FirehoseSink::new(aws_sdk_firehose::Client::from_conf(conf), &stream);
    if !args.dry_run {
        // The sender retries a missing stream forever; a one-shot tool should say so at once.
        let status = sink
            .describe()
            .await
            .with_context(|| format!("delivery stream {stream}"))?;
        anyhow::ensure!(
            status == "ACTIVE",
            "delivery stream {stream} is {status}, not ACTIVE"
        );
    }
    let obs = Observability::default();
    let summary = redrive::redrive(&config, &s3, &sink, &obs, terminated()).await?;
    let mut text = Vec::new();
    summary.render(&mut text)?;
    std::io::Write::write_all(&mut std::io::stdout(), &text)?;
    Ok(if summary.left_behind() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// Completes on SIGTERM (kubelet) or SIGINT (a terminal).
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; only a kill stops firetail");
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
