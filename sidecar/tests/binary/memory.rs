//! Peak memory of the real binary with Firehose down (nothing is ever acknowledged), against
//! the bound sidecar/README.md documents ("Memory model"): 1,500 files each holding an
//! unterminated 250 KiB line (issue 13 measured 620 MiB before the budget covered held
//! lines), and 10,000 small files. The endpoint is a closed port on 127.0.0.1.
//!
//! Figures for docs/BENCHMARKS.md: `cargo test -p firetail-sidecar --test binary memory --
//! --nocapture` prints each case's peak RSS.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use firetail_testkit::ChildGuard;
use firetail_testkit::aws::sdk_env;
use firetail_testkit::procfs::peak_rss_mib;

/// The documented bound, in MiB, for `files` open files and the default 4 MiB budget, over
/// the binary's own RSS tailing one file (`idle`): idle + 2 × budget + 2 KiB per open file
/// (sidecar/README.md, "Memory model").
fn documented_bound_mib(idle: f64, files: usize) -> f64 {
    let budget_mib = 4.0;
    idle + 2.0 * budget_mib + files as f64 * 2.0 / 1024.0
}

/// A port nothing listens on: Firehose is down.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn start_firetail(root: &Path) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
    cmd.envs(sdk_env(&closed_port_url()))
        .env("FIRETAIL_DELIVERY_STREAM", "firetail-logs")
        .env(
            "FIRETAIL_PATHS",
            format!("{}/logs/**/*.log", root.display()),
        )
        .env("FIRETAIL_DATA_DIR", root.join("data"))
        .env("FIRETAIL_PODINFO_DIR", root.join("podinfo"))
        .env("FIRETAIL_METRICS_ADDR", "127.0.0.1:0")
        .env("FIRETAIL_POLL_INTERVAL_MS", "200")
        // Short, so held lines are flushed (and must still respect the budget) many times.
        .env("FIRETAIL_PARTIAL_LINE_TIMEOUT_MS", "300")
        .env("FIRETAIL_RETRY_BASE_MS", "10")
        .env("FIRETAIL_RETRY_MAX_MS", "200")
        .env("FIRETAIL_KUBERNETES_API", "off")
        .env("FIRETAIL_LOG_FORMAT", "text")
        .env("FIRETAIL_LOG", "warn")
        .env("POD_NAME", "web-1")
        .env("POD_NAMESPACE", "shop");
    ChildGuard::spawn("firetail", cmd).unwrap()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Runs the binary over `files` files written by `content`, until every file is open and a
/// few more seconds passed; returns the peak RSS in MiB.
fn peak_with(files: usize, content: impl Fn(usize) -> Vec<u8>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs/app");
    std::fs::create_dir_all(&logs).unwrap();
    for i in 0..files {
        std::fs::write(logs.join(format!("f{i:05}.log")), content(i)).unwrap();
    }
    let mut firetail = start_firetail(dir.path());
    let pid = firetail.pid();
    let start = Instant::now();
    let mut all_open: Option<Instant> = None;
    loop {
        if let Some(status) = firetail.try_wait().unwrap() {
            panic!("firetail exited ({status:?})\n{}", firetail.stderr());
        }
        if all_open.is_none() && open_fds(pid) >= files {
            all_open = Some(Instant::now());
        }
        // Long enough after the last open for the budget to fill, partial lines to time out
        // and sends to be retried.
        if all_open.is_some_and(|at| at.elapsed() > Duration::from_secs(6)) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "only {} descriptors open\n{}",
            open_fds(pid),
            firetail.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = peak_rss_mib(pid);
    firetail.kill().unwrap();
    peak
}

#[test]
fn memory_stays_under_the_documented_bound_with_firehose_down() {
    const LINE: usize = 250 * 1024;
    let idle = peak_with(1, |_| b"one line\n".to_vec());
    let unterminated = peak_with(1_500, |_| vec![b'x'; LINE]);
    let many = peak_with(10_000, |i| {
        format!("file {i} line one\nfile {i} line two\n").into_bytes()
    });
    eprintln!(
        "peak RSS with Firehose down: 1 file {idle:.1} MiB; 1,500 files x 250 KiB unterminated \
         {unterminated:.1} MiB (bound {:.1}); 10,000 files {many:.1} MiB (bound {:.1})",
        documented_bound_mib(idle, 1_500),
        documented_bound_mib(idle, 10_000)
    );
    assert!(
        unterminated < documented_bound_mib(idle, 1_500),
        "1,500 unterminated lines: peak RSS {unterminated:.1} MiB, idle {idle:.1} MiB"
    );
    assert!(
        many < documented_bound_mib(idle, 10_000),
        "10,000 files: peak RSS {many:.1} MiB, idle {idle:.1} MiB"
    );
}
