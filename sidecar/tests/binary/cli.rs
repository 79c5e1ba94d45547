//! The `firetail` binary's command line: `--help` of each subcommand listing its `FIRETAIL_*`
//! variables, `check` without Firehose, and the stdout sink. (`firetail check` against a real
//! stream is an end-to-end test: it needs moto.)

use std::io::Write as _;
use std::process::{Command, Output};
use std::time::Duration;

use firetail_testkit::ChildGuard;
use firetail_wire::event::{KUBERNETES, LOG};
use firetail_wire::kube;

fn firetail(root: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
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

#[test]
fn help_lists_the_subcommands_and_every_env_var() {
    let dir = tempfile::tempdir().unwrap();
    let mut top = firetail(dir.path());
    top.arg("--help");
    let out = run(top);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["run", "check", "cost"] {
        assert!(help.contains(sub), "--help lacks {sub}: {help}");
    }
    let mut cmd = firetail(dir.path());
    cmd.args(["run", "--help"]);
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
        assert!(help.contains(var), "run --help lacks {var}");
    }
    assert!(
        !help.contains("FIRETAIL_COST_"),
        "cost flags are not run flags"
    );
}

#[test]
fn check_without_firehose_lists_files_and_validates_flags() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs/web")).unwrap();
    std::fs::write(dir.path().join("logs/web/a.log"), "x\n").unwrap();
    let mut ok = firetail(dir.path());
    ok.args(["check", "--sink", "stdout"]);
    let out = run(ok);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("a.log (container \"web\")"),
        "{}",
        stderr(&out)
    );
    // The flags `run` would reject, `check` rejects too: it validates the same config.
    let mut bad = firetail(dir.path());
    bad.args(["check", "--sink", "stdout", "--retry-base-ms", "0"]);
    let out = run(bad);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--retry-base-ms"), "{}", stderr(&out));
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
    let mut cmd = firetail(dir.path());
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
        assert_eq!(e[LOG], format!("request {n}"));
        assert_eq!(e[KUBERNETES][kube::POD_NAME], "api-7");
        assert_eq!(e[KUBERNETES][kube::CONTAINER_NAME], "api");
    }
}
