//! The hostile-input corpus (`tests/hostile/files`, plus a generated 50 MiB line without a
//! newline, a 2 MiB binary file and a gzip bomb) through the real `firetail` binary with its
//! stdout sink. Every file is rebuilt from the events that came out and compared byte for byte
//! with what was written: nothing lost, nothing invented, invalid UTF-8 kept exactly
//! (`log_base64`), CRLF stripped only as a line terminator, the huge line split into marked
//! pieces, and an ordinary file written alongside still fully delivered (binary files do not
//! wedge the engine).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use firetail_testkit::ChildGuard;
use firetail_testkit::hostile::{self, HUGE_LINE_BYTES};
use firetail_wire::event::{FILE, LOG, LOG_BASE64, PART, PART_CUT, PART_INDEX, PART_LAST};
use serde_json::Value;

const MAX_LINE_BYTES: usize = 256 * 1024;
const SEQUENCE_LINES: usize = 2_000;

fn start_firetail(root: &Path) -> ChildGuard {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_firetail"));
    cmd.env("FIRETAIL_SINK", "stdout")
        .env("FIRETAIL_RECORD_FORMAT", "ndjson")
        // One request at a time: stdout then shows every file's events in file order.
        .env("FIRETAIL_MAX_CONCURRENT_REQUESTS", "1")
        .env(
            "FIRETAIL_PATHS",
            format!("{}/logs/**/*.log", root.display()),
        )
        .env("FIRETAIL_DATA_DIR", root.join("data"))
        .env("FIRETAIL_PODINFO_DIR", root.join("podinfo"))
        .env("FIRETAIL_METRICS_ADDR", "127.0.0.1:0")
        .env("FIRETAIL_MAX_LINE_BYTES", MAX_LINE_BYTES.to_string())
        .env("FIRETAIL_FLUSH_INTERVAL_MS", "50")
        .env("FIRETAIL_POLL_INTERVAL_MS", "100")
        .env("FIRETAIL_PARTIAL_LINE_TIMEOUT_MS", "300")
        .env("FIRETAIL_DRAIN_QUIET_MS", "1000")
        .env("FIRETAIL_DRAIN_TIMEOUT_SECS", "120")
        .env("FIRETAIL_KUBERNETES_API", "off")
        .env("FIRETAIL_LOG_FORMAT", "text")
        .env("POD_NAME", "web-1")
        .env("POD_NAMESPACE", "shop");
    ChildGuard::spawn("firetail", cmd).unwrap()
}

fn sequence_line(n: usize) -> String {
    format!("seq {n:06} ordinary line next to hostile files")
}

/// One event's exact bytes: `log_base64` when the line was not UTF-8, else `log`.
fn event_bytes(event: &Value) -> Vec<u8> {
    match event.get(LOG_BASE64) {
        Some(b64) => STANDARD.decode(b64.as_str().unwrap()).unwrap(),
        None => event[LOG].as_str().unwrap().as_bytes().to_vec(),
    }
}

/// The lines a file must come out as: split on `\n`, a `\r` before it removed, no empty
/// line after a final newline.
fn expected_lines(bytes: &[u8]) -> Vec<Vec<u8>> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect()
}

/// Per file: the lines rebuilt from its events (pieces joined), and the piece count of its
/// longest line.
#[derive(Default)]
struct Rebuilt {
    lines: Vec<Vec<u8>>,
    open: Option<Vec<u8>>,
    /// The open line's last piece was cut where the writer stopped (`part.cut`): a file that
    /// ends without a newline ends so.
    open_cut: bool,
    next_part: u32,
    max_parts: u32,
}

impl Rebuilt {
    fn push(&mut self, file: &str, event: &Value) {
        let bytes = event_bytes(event);
        assert!(
            bytes.len() <= MAX_LINE_BYTES,
            "{file}: event of {} bytes",
            bytes.len()
        );
        let Some(part) = event.get(PART) else {
            assert!(self.open.is_none(), "{file}: a split line was not finished");
            self.lines.push(bytes);
            return;
        };
        let index = u32::try_from(part[PART_INDEX].as_u64().unwrap()).unwrap();
        assert_eq!(index, self.next_part, "{file}: pieces in order");
        self.open.get_or_insert_with(Vec::new).extend(bytes);
        self.open_cut = part.get(PART_CUT).is_some();
        if part[PART_LAST].as_bool().unwrap() {
            self.lines.push(self.open.take().unwrap());
            self.max_parts = self.max_parts.max(index + 1);
            self.next_part = 0;
        } else {
            self.next_part += 1;
        }
    }
}

#[test]
fn hostile_files_come_out_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("logs/app");
    std::fs::create_dir_all(&app).unwrap();
    let files = hostile::files();
    for f in &files {
        std::fs::write(app.join(&f.name), &f.bytes).unwrap();
    }

    let mut firetail = start_firetail(dir.path());
    // An app keeps writing an ordinary log while the engine chews on the hostile ones.
    let sequence = app.join("sequence.log");
    let mut out = std::fs::File::create(&sequence).unwrap();
    for n in 0..SEQUENCE_LINES {
        // One write per line: a line whose newline came in a later write could be flushed
        // as a partial line by the quiet period on a slow machine (documented behaviour).
        out.write_all(format!("{}\n", sequence_line(n)).as_bytes())
            .unwrap();
        if n % 100 == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    drop(out);

    // Let the engine read everything, then stop it: the drain flushes unterminated lines.
    let last = sequence_line(SEQUENCE_LINES - 1);
    let start = Instant::now();
    while !firetail.stdout().contains(&last) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the ordinary file was not delivered: the engine is wedged\n{}",
            firetail.stderr()
        );
        if let Some(status) = firetail.try_wait().unwrap() {
            panic!("firetail exited early ({status:?})\n{}", firetail.stderr());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    firetail.terminate().unwrap();
    let status = firetail
        .wait_timeout(Duration::from_secs(180))
        .unwrap()
        .expect("firetail exits after draining");
    assert!(status.success(), "{status:?}\n{}", firetail.stderr());
    assert!(
        !firetail.stderr().contains("panicked"),
        "{}",
        firetail.stderr()
    );

    let mut rebuilt: BTreeMap<String, Rebuilt> = BTreeMap::new();
    let stdout = firetail.stdout();
    for line in stdout.lines() {
        let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let file = event[FILE].as_str().unwrap();
        let name = Path::new(file)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        rebuilt.entry(name.clone()).or_default().push(&name, &event);
    }

    let mut expected: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.name.clone(), f.bytes.clone()))
        .collect();
    let mut seq_bytes = Vec::new();
    for n in 0..SEQUENCE_LINES {
        seq_bytes.extend_from_slice(sequence_line(n).as_bytes());
        seq_bytes.push(b'\n');
    }
    expected.push(("sequence.log".into(), seq_bytes));
    let mut events = 0;
    for (name, bytes) in &expected {
        let want = expected_lines(bytes);
        let mut got = rebuilt.remove(name).unwrap_or_default();
        if got.open_cut {
            // The file's last line has no newline: sent after the partial-line timeout as a
            // piece that says so, and nothing followed it.
            let last = got.open.take().unwrap();
            got.lines.push(last);
        }
        assert!(got.open.is_none(), "{name}: last line left in pieces");
        assert_eq!(got.lines.len(), want.len(), "{name}: line count");
        for (i, (g, w)) in got.lines.iter().zip(&want).enumerate() {
            assert!(
                g == w,
                "{name}: line {i} differs ({} bytes out, {} written)",
                g.len(),
                w.len()
            );
        }
        events += got.lines.len();
        eprintln!(
            "{name}: {} lines, {} bytes: identical",
            want.len(),
            bytes.len()
        );
    }
    assert!(
        rebuilt.is_empty(),
        "events from unknown files: {:?}",
        rebuilt.keys()
    );

    // The 50 MiB line arrived as marked pieces of at most MAX_LINE_BYTES.
    let huge = expected_lines(
        &files
            .iter()
            .find(|f| f.name.starts_with("huge"))
            .unwrap()
            .bytes,
    );
    assert_eq!(huge.len(), 1);
    assert_eq!(huge[0].len(), HUGE_LINE_BYTES);
    let pieces = stdout.matches("huge-line-no-newline.log").count();
    assert_eq!(pieces, HUGE_LINE_BYTES.div_ceil(MAX_LINE_BYTES), "pieces");
    eprintln!("{events} lines in {} events", stdout.lines().count());
}
