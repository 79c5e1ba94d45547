//! `firetail`: tails log files on a shared emptyDir and ships them to Amazon Data Firehose.
//!
//! Parse the command line ([`cli`]), set up logging, and dispatch: `run` builds the client,
//! the metrics server and the Kubernetes API client and hands over to
//! [`firetail_sidecar::run::run`]; `check` and `cost` are one call each. Everything else lives
//! in the library.

mod cli;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use cli::{Cli, Command, LogFormat, Settings, SinkKind};
use firetail_firehose::{ClientSettings, SdkClient};
use firetail_sidecar::metrics::{self, Observability};
use firetail_sidecar::pack::Limits;
use firetail_sidecar::pod::api::{ApiSettings, KubeClient};
use firetail_sidecar::pod::downward;
use firetail_sidecar::run::{RunConfig, run};
use firetail_sidecar::stdout_sink::StdoutSink;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_from(cli::with_default_subcommand(std::env::args_os()));
    init_tracing(match &cli.command {
        Command::Run(a) | Command::Check(a) => a.ship.log_format,
        Command::Cost(_) => LogFormat::Text,
    });
    dispatch(cli.command).await.unwrap_or_else(|err| {
        tracing::error!(error = format!("{err:#}"), "firetail failed");
        ExitCode::FAILURE
    })
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run(args) => run_main(args.into_settings()?).await,
        Command::Check(args) => check_main(args.into_settings()?).await,
        Command::Cost(args) => {
            let text = args.report()?;
            std::io::Write::write_all(&mut std::io::stdout(), text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `firetail run`: serve metrics, ship until SIGTERM, drain; exit 0 only if the drain left
/// nothing behind.
async fn run_main(s: Settings) -> anyhow::Result<ExitCode> {
    match firetail_sidecar::fdlimit::raise_nofile() {
        Ok(Some((from, to))) => {
            tracing::info!(from, to, "raised the open-files limit to its hard limit")
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "cannot raise the open-files limit"),
    }
    let obs = Arc::new(Observability::default());
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = match s.metrics_addr {
        Some(addr) => {
            let listener = metrics::bind(addr)
                .await
                .with_context(|| format!("binding metrics address {addr}"))?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /metrics, /healthz, /readyz");
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
        pod: downward::from_process(&s.ship.podinfo_dir),
        kube: kube_client(s.kubernetes_api.as_ref()),
        ship: s.ship,
        tail: s.tail,
        obs,
        limits: Limits::FIREHOSE,
    };
    let report = match s.sink {
        SinkKind::Firehose => run(config, firehose(s.request_timeout).await, terminated()).await?,
        SinkKind::Stdout => run(config, StdoutSink, terminated()).await?,
    };
    let _ = stop_http.send(());
    if let Some(http) = http {
        let _ = http.await;
    }
    let code = report.outcome.exit_code();
    tracing::info!(
        events = report.events_received,
        outcome = %report.outcome.outcome.as_str(),
        unread_bytes = report.outcome.unread_bytes,
        unacked_bytes = report.outcome.unacked_bytes,
        exit_code = code,
        "firetail stopped"
    );
    // Non-zero when the drain left data behind (sidecar/README.md, "Shutdown and drain").
    Ok(ExitCode::from(code))
}

/// `firetail check`: the report on stderr, exit status 1 on any problem.
async fn check_main(s: Settings) -> anyhow::Result<ExitCode> {
    let pod = downward::from_process(&s.ship.podinfo_dir);
    let client = match s.sink {
        SinkKind::Firehose => Some(firehose(s.request_timeout).await),
        SinkKind::Stdout => None,
    };
    let mut report = Vec::new();
    let result =
        firetail_sidecar::cmd::check::check(&s.ship, &s.tail, &pod, client.as_ref(), &mut report)
            .await;
    for line in &report {
        eprintln!("{line}");
    }
    Ok(match result {
        Ok(()) => {
            eprintln!("check passed");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("check FAILED: {err}");
            ExitCode::FAILURE
        }
    })
}

async fn firehose(attempt_timeout: std::time::Duration) -> SdkClient {
    SdkClient::from_env(ClientSettings { attempt_timeout }).await
}

fn kube_client(settings: Option<&ApiSettings>) -> Option<KubeClient> {
    KubeClient::configured(settings?).unwrap_or_else(|error| {
        tracing::warn!(%error, "Kubernetes API client unavailable");
        None
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
