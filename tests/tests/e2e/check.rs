//! `firetail check` against moto's Firehose: an ACTIVE stream, a missing stream, a missing
//! flag.

use std::process::{Command, Output};

use firetail_testkit::{MotoServer, workspace_bin};

fn firetail(moto_url: &str, root: &std::path::Path) -> Command {
    let mut cmd = Command::new(workspace_bin("firetail"));
    cmd.envs(firetail_testkit::aws::sdk_env(moto_url));
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

    let mut ok = firetail(moto.url(), dir.path());
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

    let mut missing = firetail(moto.url(), dir.path());
    missing.arg("check").env("FIRETAIL_DELIVERY_STREAM", "nope");
    let out = run(missing);
    let text = stderr(&out);
    assert!(!out.status.success());
    assert!(text.contains("check FAILED"), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "{text}");

    let mut no_stream = firetail(moto.url(), dir.path());
    no_stream.arg("check");
    let out = run(no_stream);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("FIRETAIL_DELIVERY_STREAM"),
        "{}",
        stderr(&out)
    );
}
