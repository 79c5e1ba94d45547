//! The `firetail` binary's command line: `firetail check` against moto (ACTIVE stream, missing
//! stream, missing flag), `--help` listing every `FIRETAIL_*` variable, and the stdout sink.
#![allow(clippy::unwrap_used)]

use std::io::Write as _;
use std::process::{Command, Output};
use std::time::Duration;

use firetail_testkit::{ChildGuard, MotoServer};

fn firetail(moto_url: Option<&str>, root: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
    if let Some(url) = moto_url {
        cmd.envs(firetail_testkit::aws::sdk_env(url));
    }
    cmd.env(
        "FIRETAIL_PATHS",
        format!("{}/logs/**/*.log", root.display()),
    )
    .env("FIRETAIL_DATA_DIR", root.join("data"))
    .env("FIRETAIL_PODINFO_DIR", root.join("podinfo"))
    .env("FIRETAIL_METRICS_ADDR", "off")
    .env("FIRETAIL_LOG_FORMAT", "text")
    .env_remove("FIRETAIL_DELIVERY_STREAM")
    .env_remove("FIRETAIL_SINK");
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_files_and_stream_status() {
    let moto = MotoServer::start();
    moto.create_s3_stream("logs", "bucket").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/web")).unwrap();
    std::fs::write(dir.path().join("logs/web/a.log"), "x\n").unwrap();
    std::fs::create_dir_all(dir.path().join("podinfo")).unwrap();
    std::fs::write(dir.path().join("podinfo/labels"), "app=\"web\"\n").unwrap();

    let mut ok = firetail(Some(moto.url()), dir.path());
    ok.arg("check").env("FIRETAIL_DELIVERY_STREAM", "logs");
    let out = run(ok);
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 file(s) match"), "{text}");
    assert!(text.contains("a.log (container \"web\")"), "{text}");
    assert!(text.contains("\"labels\":{\"app\":\"web\"}"), "{text}");
    assert!(
        text.contains("delivery stream \"logs\" is ACTIVE"),
        "{text}"
    );

    let mut missing = firetail(Some(moto.url()), dir.path());
    missing.arg("check").env("FIRETAIL_DELIVERY_STREAM", "nope");
    let out = run(missing);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(text.contains("check FAILED"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");

    let mut no_stream = firetail(Some(moto.url()), dir.path());
    no_stream.arg("check");
    let out = run(no_stream);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("FIRETAIL_DELIVERY_STREAM"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn help_lists_every_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = firetail(None, dir.path());
    cmd.arg("--help");
    let out = run(cmd);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "FIRETAIL_DELIVERY_STREAM",
        "FIRETAIL_SINK",
        "FIRETAIL_RECORD_FORMAT",
        "FIRETAIL_FLUSH_INTERVAL_MS",
        "FIRETAIL_DRAIN_QUIET_MS",
        "FIRETAIL_DRAIN_TIMEOUT_SECS",
        "FIRETAIL_METRICS_ADDR",
        "FIRETAIL_PODINFO_DIR",
        "FIRETAIL_PATHS",
        "FIRETAIL_DATA_DIR",
        "FIRETAIL_MAX_INFLIGHT_BYTES",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
}

#[test]
fn stdout_sink_prints_enriched_events_and_exits_zero_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/api")).unwrap();
    let mut f = std::fs::File::create(dir.path().join("logs/api/x.log")).unwrap();
    for n in 0..50 {
        writeln!(f, "request {n}").unwrap();
    }
    drop(f);
    let mut cmd = firetail(None, dir.path());
    cmd.env("FIRETAIL_SINK", "stdout")
        .env("FIRETAIL_RECORD_FORMAT", "ndjson-gzip")
        .env("FIRETAIL_DRAIN_QUIET_MS", "300")
        .env("POD_NAME", "api-7")
        .env("POD_NAMESPACE", "prod");
    let mut child = ChildGuard::spawn("firetail", cmd).unwrap();
    // Wait for the output, then stop as the kubelet would.
    let start = std::time::Instant::now();
    while child.stdout().lines().count() < 50 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            child.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.terminate().unwrap();
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .unwrap();
    assert!(status.success(), "{}", child.stderr());
    let events: Vec<serde_json::Value> = child
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events.len(),
        50,
        "gzip records printed decoded, each event once"
    );
    for (n, e) in events.iter().enumerate() {
        assert_eq!(e["log"], format!("request {n}"));
        assert_eq!(e["kubernetes"]["pod_name"], "api-7");
        assert_eq!(e["kubernetes"]["container_name"], "api");
    }
}
