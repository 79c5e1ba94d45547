//! The Kubernetes API stand-in ([`firetail_testkit::KubeApiStandIn`]) as a standalone server,
//! for the stdout source's benchmark (`benches/stdout.py`): one pod (the testkit's `FakePod`)
//! whose container has `--lines` numbered lines of about `--line-bytes` bytes, then exits (so
//! a follow stream ends once everything was read).
//!
//! Prints `listening http://127.0.0.1:PORT` on stdout, then serves until SIGTERM or SIGINT.
#![allow(clippy::print_stdout)]

use clap::Parser;
use firetail_testkit::KubeApiStandIn;
use firetail_testkit::route::FakePod;

#[derive(Parser, Debug)]
#[command(about = "Kubernetes API stand-in (pod + pods/log) with a canned container log")]
struct Args {
    /// Lines in the container's log.
    #[arg(long, default_value_t = 500_000)]
    lines: u64,
    /// Bytes per line (without the timestamp prefix and newline), at least the sequence number.
    #[arg(long, default_value_t = 200)]
    line_bytes: usize,
    /// The container's name.
    #[arg(long, default_value = "app")]
    container: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let api = KubeApiStandIn::start(&FakePod::default(), &[args.container.as_str()], &[]).await?;
    let mut batch = Vec::with_capacity(10_000);
    for n in 0..args.lines {
        let head = format!("GET /orders seq={n} 200 ");
        let pad = args.line_bytes.saturating_sub(head.len());
        batch.push(format!("{head}{}", "x".repeat(pad)));
        if batch.len() == 10_000 {
            api.write(&args.container, batch.drain(..));
        }
    }
    api.write(&args.container, batch.drain(..));
    api.terminate(&args.container);
    println!("listening {}", api.url());
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
    );
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
