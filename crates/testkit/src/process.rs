//! Child processes that cannot outlive their test: [`ChildGuard`] kills and reaps the process
//! when dropped, and keeps its output in files so a failing test can show it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running child process with its stdout and stderr captured to files.
///
/// Dropping it kills the process (SIGKILL) and waits for it. If the thread is panicking at that
/// point (a failed assertion), the captured output is printed to stderr first, so the test
/// report shows why the child misbehaved.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Child,
    logs: tempfile::TempDir,
}

impl ChildGuard {
    /// Spawns `command` with stdin closed and stdout/stderr captured. `name` labels the output.
    pub fn spawn(name: &str, mut command: Command) -> io::Result<Self> {
        let logs = tempfile::Builder::new()
            .prefix(&format!("firetail-{name}-"))
            .tempdir()?;
        let stdout = File::create(logs.path().join("stdout"))?;
        let stderr = File::create(logs.path().join("stderr"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {name} ({:?}): {e}", command.get_program()),
                )
            })?;
        Ok(Self {
            name: name.to_owned(),
            child,
            logs,
        })
    }

    /// The process id (for RSS or CPU readings from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        self.read_log("stdout")
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.read_log("stderr")
    }

    /// Bytes the process wrote to stderr so far, without reading them (a flooding process
    /// may have written gigabytes).
    pub fn stderr_len(&self) -> u64 {
        std::fs::metadata(self.logs.path().join("stderr")).map_or(0, |m| m.len())
    }

    /// Where the captured stdout and stderr files live.
    pub fn log_dir(&self) -> &Path {
        self.logs.path()
    }

    /// The exit status if the process has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits up to `timeout` for the process to exit by itself (polling, so usable from sync
    /// and async code alike). `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if start.elapsed() >= timeout {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGTERM (a graceful stop request) without waiting.
    pub fn terminate(&self) -> io::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "kill -TERM {} failed",
                self.pid()
            )))
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        // Already exited is fine: kill then only fails with InvalidInput.
        let _ = self.child.kill();
        self.child.wait()
    }

    fn read_log(&self, which: &str) -> String {
        let path: PathBuf = self.logs.path().join(which);
        std::fs::read(&path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (pid {}) stdout ----\n{}\n---- {} stderr ----\n{}",
                self.name,
                self.child.id(),
                self.stdout(),
                self.name,
                self.stderr()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(script: &str) -> ChildGuard {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        ChildGuard::spawn("sh", command).unwrap()
    }

    #[test]
    fn captures_stdout_and_stderr_separately() {
        let mut child = sh("echo to-out; echo to-err >&2");
        let status = child
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .unwrap();
        assert!(status.success());
        assert_eq!(child.stdout(), "to-out\n");
        assert_eq!(child.stderr(), "to-err\n");
    }

    #[test]
    fn drop_kills_and_reaps_a_running_child() {
        let child = sh("sleep 600");
        let pid = child.pid();
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        let logs = child.log_dir().to_path_buf();
        drop(child);
        // Reaped, not a zombie: the /proc entry is gone. The captured files go too.
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
        assert!(!logs.exists());
    }

    #[test]
    fn terminate_sends_sigterm() {
        let mut child =
            sh("trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.01; done");
        // Signal only once the trap is installed.
        let start = Instant::now();
        while child.stdout() != "ready\n" {
            assert!(start.elapsed() < Duration::from_secs(20), "never ready");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.terminate().unwrap();
        let status = child
            .wait_timeout(Duration::from_secs(20))
            .unwrap()
            .unwrap();
        assert_eq!(status.code(), Some(7));
        assert_eq!(child.stdout(), "ready\ngot-term\n");
    }

    #[test]
    fn a_missing_program_names_itself() {
        let err = ChildGuard::spawn("ghost", Command::new("/nonexistent/ghost")).unwrap_err();
        assert!(err.to_string().contains("cannot start ghost"), "{err}");
    }
}
