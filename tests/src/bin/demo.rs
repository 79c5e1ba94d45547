//! The local demo (`bash tests/demo`): the whole firetail route on one machine, no AWS account.
//!
//! 1. moto's server on 127.0.0.1 is Firehose + S3; a delivery stream into a bucket is created.
//!    A recording pass-through in front of it keeps record boundaries (moto stores each call
//!    as one object with the records concatenated; Firehose hands its processor the records).
//! 2. A fake pod writes logs into a temp "emptyDir": plain lines, JSON lines, a Java stack
//!    trace, then a rename rotation and more lines.
//! 3. The real `firetail` sidecar tails them (pod metadata from the environment and Downward
//!    API files), ships them with PutRecordBatch, and drains on SIGTERM.
//! 4. Playing Firehose's processor role, the records that reached the stream go to the real
//!    `firetail-transform` binary through the Lambda Runtime API.
//! 5. The destination-shaped output and a summary are printed; the run fails if any event was
//!    lost or duplicated.
//!
//! Every number printed comes from this run. Every process started is stopped on exit.
#![allow(clippy::print_stdout)] // Printing is what a demo is for.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use firetail_testkit::records::{decode_events as sidecar_events, destination_events};
use firetail_testkit::route::{
    Destination, FakeKubeApi, FakePod, PodDirs, Processor, RecordResult, message_of,
    sidecar_command,
};
use firetail_testkit::wire::limits::billed_bytes as billed;

/// Bytes Firehose bills for a record of `len` bytes.
fn billed_bytes(len: u64) -> u64 {
    billed(usize::try_from(len).unwrap_or(usize::MAX)) as u64
}
use firetail_testkit::{
    ChildGuard, MotoServer, RecordingProxy, RuntimeApi, spawn_function, workspace_bin,
};

const STREAM: &str = "firetail-demo";
const BUCKET: &str = "firetail-demo-logs";
const CONTAINER: &str = "checkout";
/// How long each phase may take before the demo gives up.
const PHASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the firetail route locally: app logs -> firetail -> Firehose (moto) -> firetail-transform.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Destination profile of the transform.
    #[arg(long, value_parser = ["datadog", "opensearch", "s3"], default_value = "datadog")]
    destination: String,
    /// Record format of the sidecar (default: v2-zstd, the sidecar's; json for opensearch, which
    /// takes one event per record).
    #[arg(long, value_parser = ["v2-zstd", "v2-gzip", "ndjson-gzip", "ndjson", "json"])]
    format: Option<String>,
    /// Print every output event as JSON instead of the first one and a table.
    #[arg(long)]
    raw: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match demo(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One app log line and the message the destination should show for it.
struct Line {
    text: String,
    message: String,
    kind: &'static str,
}

fn plain(text: &str) -> Line {
    Line {
        text: text.to_owned(),
        message: text.to_owned(),
        kind: "plain",
    }
}

fn json(msg: &str, extra: &str) -> Line {
    Line {
        text: format!(r#"{{"level":"info","msg":"{msg}",{extra}}}"#),
        message: msg.to_owned(),
        kind: "JSON",
    }
}

fn stack_trace() -> Line {
    let text = "2026-11-30 10:00:04 ERROR c.s.checkout.PaymentService - payment failed: \
java.lang.IllegalStateException: card declined
\tat com.shop.checkout.PaymentService.charge(PaymentService.java:88)
\tat com.shop.checkout.CheckoutController.submit(CheckoutController.java:41)
Caused by: java.net.SocketTimeoutException: Read timed out
\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:168)
\t... 2 more";
    Line {
        text: text.to_owned(),
        message: text.to_owned(),
        kind: "Java stack trace",
    }
}

fn before_rotation() -> Vec<Line> {
    vec![
        plain("2026-11-30 10:00:00 INFO  c.s.checkout.Application - started in 812 ms"),
        plain("2026-11-30 10:00:01 INFO  c.s.checkout.CartController - GET /cart/o-1001 200 12ms"),
        json("order placed", r#""order_id":"o-1001","amount_cents":4599"#),
        json(
            "payment authorized",
            r#""order_id":"o-1001","provider":"stripe""#,
        ),
        plain("2026-11-30 10:00:02 WARN  c.s.checkout.Inventory - sku-9 low stock (3 left)"),
        stack_trace(),
        json(
            "order failed",
            r#""order_id":"o-1002","reason":"card declined""#,
        ),
        plain("2026-11-30 10:00:05 INFO  c.s.checkout.CartController - GET /health 200 1ms"),
    ]
}

/// Access-log lines written after the rotation: enough events to show what packing saves.
const ACCESS_LOG_LINES: usize = 200;

fn after_rotation() -> Vec<Line> {
    let mut lines = vec![
        plain("2026-11-30 10:01:00 INFO  c.s.checkout.LogRotation - writing to a fresh app.log"),
        json("order placed", r#""order_id":"o-1003","amount_cents":1250"#),
        json("order shipped", r#""order_id":"o-1001","carrier":"ups""#),
        plain("2026-11-30 10:01:02 INFO  c.s.checkout.CartController - GET /cart/o-1003 200 9ms"),
    ];
    for n in 0..ACCESS_LOG_LINES {
        lines.push(Line {
            kind: "access log",
            ..plain(&format!(
                "10.0.{}.{} - - [30/Nov/2026:10:01:{:02} +0000] \"GET /products/sku-{n} HTTP/1.1\" 200 {} \"-\" \"shop-web/2.3\"",
                n % 7,
                n % 250,
                n % 60,
                1500 + n * 13 % 900
            ))
        });
    }
    lines
}

fn append(path: &Path, lines: &[Line]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    for line in lines {
        writeln!(f, "{}", line.text)?;
    }
    Ok(())
}

fn say(text: &str) {
    println!("==> {text}");
}

/// Events in the stream so far (decoding every recorded record).
fn stream_events(proxy: &RecordingProxy) -> anyhow::Result<usize> {
    let mut n = 0;
    for record in proxy.stream_records(STREAM) {
        n += sidecar_events(&record).map_err(anyhow::Error::msg)?.len();
    }
    Ok(n)
}

async fn wait_for_events(
    proxy: &RecordingProxy,
    sidecar: &mut ChildGuard,
    count: usize,
) -> anyhow::Result<()> {
    let start = Instant::now();
    loop {
        let now = stream_events(proxy)?;
        if now >= count {
            return Ok(());
        }
        if let Some(status) = sidecar.try_wait()? {
            bail!("firetail exited early ({status}):\n{}", sidecar.stderr());
        }
        if start.elapsed() > PHASE_TIMEOUT {
            bail!(
                "only {now} of {count} events reached the stream after {PHASE_TIMEOUT:?}; firetail's log:\n{}",
                sidecar.stderr()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text without terminal colour sequences (`ESC [ ... m`), as the transform's logs have.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

async fn demo(args: Args) -> anyhow::Result<bool> {
    let destination: Destination = args.destination.parse()?;
    let format = args.format.unwrap_or_else(|| {
        if destination == Destination::OpenSearch {
            "json".to_owned()
        } else {
            "v2-zstd".to_owned()
        }
    });
    let firetail = workspace_bin("firetail");
    let transform = workspace_bin("firetail-transform");

    say("starting moto_server on 127.0.0.1 as Firehose + S3");
    let moto = MotoServer::start();
    let proxy = RecordingProxy::start(moto.url()).await?;
    let arn = moto.create_s3_stream(STREAM, BUCKET).await;
    println!(
        "    {} (delivery stream {STREAM} -> s3://{BUCKET})",
        moto.url()
    );

    let tmp = tempfile::Builder::new()
        .prefix("firetail-demo-")
        .tempdir()?;
    let dirs = PodDirs::new(tmp.path());
    let pod = FakePod::default();
    let app_dir = dirs.container(CONTAINER);
    let log = app_dir.join("app.log");
    let first = before_rotation();
    let second = after_rotation();
    append(&log, &first)?;
    say(&format!(
        "pod {}/{} wrote {} lines ({} events) to {}",
        pod.namespace,
        pod.name,
        first.iter().map(|l| l.text.lines().count()).sum::<usize>(),
        first.len(),
        log.display()
    ));

    say(&format!(
        "starting firetail (record format {format}, multiline java), tailing {}",
        dirs.glob()
    ));
    // The Kubernetes API stand-in: the sidecar reads its pod's container ids from it, as it
    // does in a cluster, so every event carries `container_id`.
    let kube = FakeKubeApi::start(&pod, &[CONTAINER]).await?;
    let mut env: Vec<(String, String)> = kube.sidecar_env(&dirs)?;
    env.push(("FIRETAIL_MULTILINE".into(), "java".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let command = sidecar_command(&firetail, &proxy.url(), STREAM, &pod, &dirs, &format, &env)?;
    let mut sidecar = ChildGuard::spawn("firetail", command)?;
    wait_for_events(&proxy, &mut sidecar, first.len()).await?;
    println!(
        "    {} events in the stream after {} PutRecordBatch call(s)",
        stream_events(&proxy)?,
        proxy.put_calls()
    );

    say("rotating app.log -> app.log.1 (rename) and writing to a new app.log");
    std::fs::rename(&log, app_dir.join("app.log.1"))?;
    append(&log, &second)?;
    wait_for_events(&proxy, &mut sidecar, first.len() + second.len()).await?;

    say("SIGTERM to firetail (drain)");
    sidecar.terminate()?;
    let status = sidecar
        .wait_timeout(PHASE_TIMEOUT)?
        .context("firetail did not exit after SIGTERM")?;
    let drained = sidecar
        .stderr()
        .contains("drained; everything read was delivered");
    println!(
        "    firetail exited ({status}){}",
        if drained {
            "; its log says: drained; everything read was delivered"
        } else {
            ""
        }
    );

    let records = proxy.stream_records(STREAM);
    let objects = moto.objects(BUCKET).await;
    let record_bytes: u64 = records.iter().map(|r| r.len() as u64).sum();
    let object_bytes: u64 = objects.iter().map(|(_, b)| b.len() as u64).sum();
    if record_bytes != object_bytes {
        bail!("moto stored {object_bytes} bytes but acknowledged {record_bytes}");
    }
    let mut stream_event_bytes = Vec::new();
    for record in &records {
        for event in sidecar_events(record).map_err(anyhow::Error::msg)? {
            stream_event_bytes.push(serde_json::to_vec(&event)?.len() as u64 + 1);
        }
    }
    say(&format!(
        "stream {STREAM}: {} records in {} PutRecordBatch calls; moto wrote {} objects ({} bytes) to s3://{BUCKET}",
        records.len(),
        proxy.put_calls(),
        objects.len(),
        thousands(object_bytes)
    ));

    say(&format!(
        "invoking firetail-transform (FIRETAIL_DESTINATION={}) through the Lambda Runtime API, as Firehose's processor",
        destination.as_str()
    ));
    let api = RuntimeApi::start().await?;
    let mut env = firetail_testkit::aws::sdk_env(moto.url());
    env.push(("FIRETAIL_DESTINATION".into(), destination.as_str().into()));
    let function = spawn_function(&transform, &api, env)?;
    let processed = Processor::new(&arn)
        .process(&api, &records)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut out_events = Vec::new();
    for data in processed.ok_outputs() {
        out_events.extend(destination_events(destination, data).map_err(anyhow::Error::msg)?);
    }
    println!(
        "    {} invocation(s); records: {} Ok, {} Dropped, {} ProcessingFailed",
        processed.invocations,
        processed.count(RecordResult::Ok),
        processed.count(RecordResult::Dropped),
        processed.count(RecordResult::ProcessingFailed)
    );

    if args.raw {
        say(&format!("{} output, every event", destination.as_str()));
        for event in &out_events {
            println!("{}", serde_json::to_string(event)?);
        }
    } else if let Some(event) = out_events.first() {
        say(&format!(
            "{} output: the first event in full (--raw prints every one)",
            destination.as_str()
        ));
        println!("{}", serde_json::to_string_pretty(event)?);
        say(&format!(
            "{} output: every event's message and tags",
            destination.as_str()
        ));
        println!(
            "    {:<40} {:<14} {:<26} {:<19} container_id",
            "message", "kube_namespace", "pod_name", "kube_container_name"
        );
        const ROWS: usize = 14;
        for event in out_events.iter().take(ROWS) {
            let message = message_of(event).lines().next().unwrap_or_default();
            let short: String = message.chars().take(40).collect();
            let tag = |k: &str| event[k].as_str().unwrap_or("-").to_owned();
            let id: String = tag("container_id").chars().take(12).collect();
            println!(
                "    {:<40} {:<14} {:<26} {:<19} {id}…",
                short,
                tag("kube_namespace"),
                tag("pod_name"),
                tag("kube_container_name")
            );
        }
        if out_events.len() > ROWS {
            println!("    ... and {} more", out_events.len() - ROWS);
        }
    }
    let failed = processed.count(RecordResult::ProcessingFailed);
    let mut failed_events = 0;
    for ((result, _), record) in processed.results.iter().zip(&records) {
        if *result == RecordResult::ProcessingFailed {
            failed_events += sidecar_events(record).map_err(anyhow::Error::msg)?.len();
        }
    }
    if failed > 0 {
        println!(
            "    {failed} record(s) ProcessingFailed: Firehose would keep the originals in the backup bucket. The transform said:"
        );
        let logs = format!("{}{}", function.stdout(), function.stderr());
        for line in logs
            .lines()
            .filter_map(|l| l.find("record cannot").map(|i| &l[i..]))
            .take(2)
        {
            println!("      {}", strip_ansi(line.trim()));
        }
    }

    // Count by message: each line the app wrote must come out exactly once.
    let mut expected: BTreeMap<&str, i64> = BTreeMap::new();
    for line in first.iter().chain(&second) {
        *expected.entry(&line.message).or_default() += 1;
    }
    let written = expected.values().sum::<i64>();
    let mut balance = expected.clone();
    let mut unexpected = 0;
    for event in &out_events {
        match balance.get_mut(message_of(event)) {
            Some(n) => *n -= 1,
            None => unexpected += 1,
        }
    }
    let lost: i64 = balance.values().filter(|n| **n > 0).sum();
    let duplicated: i64 = -balance.values().filter(|n| **n < 0).sum::<i64>() + unexpected;
    let missing_tags = out_events
        .iter()
        .filter(|e| {
            e["kube_namespace"] != pod.namespace.as_str()
                || e["pod_name"] != pod.name.as_str()
                || e["kube_container_name"] != CONTAINER
                || e["container_id"] != FakePod::docker_id(CONTAINER).as_str()
        })
        .count();

    let kinds = {
        let mut k: BTreeMap<&str, usize> = BTreeMap::new();
        for line in first.iter().chain(&second) {
            *k.entry(line.kind).or_default() += 1;
        }
        k.iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let billed: u64 = records.iter().map(|r| billed_bytes(r.len() as u64)).sum();
    let billed_single: u64 = stream_event_bytes.iter().map(|b| billed_bytes(*b)).sum();
    let row = |label: &str, value: String| println!("    {label:<34} {value}");
    say("summary");
    row(
        "events written by the app",
        format!("{written} ({kinds}; one rename rotation)"),
    );
    row(
        "events in the stream",
        format!(
            "{} in {} records, {} PutRecordBatch calls, {} record bytes",
            stream_event_bytes.len(),
            records.len(),
            proxy.put_calls(),
            thousands(record_bytes)
        ),
    );
    row(
        &format!("events delivered ({})", destination.as_str()),
        format!(
            "{} from {} Ok records{}",
            out_events.len(),
            processed.count(RecordResult::Ok),
            if failed > 0 {
                format!(
                    "; {failed_events} events in {failed} ProcessingFailed records go to the backup bucket"
                )
            } else {
                String::new()
            }
        ),
    );
    row(
        "lost / duplicated",
        format!(
            "{} / {duplicated} (events missing kube_namespace, pod_name, kube_container_name or container_id: {missing_tags})",
            lost - failed_events as i64
        ),
    );
    row(
        "Firehose billed bytes",
        format!(
            "{} ({} records, each rounded up to 5 KB)",
            thousands(billed),
            records.len()
        ),
    );
    row(
        "one event per record instead",
        format!(
            "{} ({} records): {:.1}x more",
            thousands(billed_single),
            stream_event_bytes.len(),
            billed_single as f64 / billed.max(1) as f64
        ),
    );
    println!(
        "    (container_id needs the Kubernetes API's containerStatuses, which a local run does not have)"
    );
    drop(function);
    drop(moto);
    // Only packed records to the opensearch profile fail, by design: their events are not
    // lost, Firehose keeps those records in the backup bucket.
    let ok = lost == failed_events as i64 && duplicated == 0 && missing_tags == 0;
    Ok(ok)
}
