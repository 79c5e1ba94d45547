//! The Downward API: `POD_NAME`, `POD_NAMESPACE`, `POD_UID`, `NODE_NAME` in the environment,
//! and the `labels` / `annotations` files of a Downward API volume.
//! <https://kubernetes.io/docs/concepts/workloads/pods/downward-api/>

use std::collections::BTreeMap;
use std::path::Path;

use super::PodInfo;

/// Reads the Downward API: `env` supplies variables (so tests need not touch the process
/// environment), `podinfo_dir` holds the `labels` and `annotations` files. Files that are
/// missing or unreadable leave the maps empty; the returned strings say what was skipped.
pub fn read(env: impl Fn(&str) -> Option<String>, podinfo_dir: &Path) -> (PodInfo, Vec<String>) {
    let non_empty = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut notes = Vec::new();
    let (labels, annotations) = read_maps(podinfo_dir, &mut notes);
    let info = PodInfo {
        namespace: non_empty("POD_NAMESPACE"),
        pod_name: non_empty("POD_NAME"),
        pod_id: non_empty("POD_UID"),
        host: non_empty("NODE_NAME"),
        labels,
        annotations,
        ..PodInfo::default()
    };
    (info, notes)
}

/// The `labels` and `annotations` files of `podinfo_dir` (empty maps for files that are
/// missing; `notes` says which).
pub fn read_maps(
    podinfo_dir: &Path,
    notes: &mut Vec<String>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let mut read_map = |name: &str| match std::fs::read_to_string(podinfo_dir.join(name)) {
        Ok(text) => parse_file(&text),
        Err(err) => {
            notes.push(format!("{}: {err}", podinfo_dir.join(name).display()));
            BTreeMap::new()
        }
    };
    let labels = read_map("labels");
    let annotations = read_map("annotations");
    (labels, annotations)
}

/// Reads the Downward API from the process environment and `dir`, logging what was missing.
pub fn from_process(dir: &Path) -> PodInfo {
    let (info, notes) = read(|k| std::env::var(k).ok(), dir);
    for note in notes {
        tracing::info!(missing = %note, "Downward API file not available; field omitted");
    }
    info
}

/// Parses a Downward API volume file: one `key="value"` per line, values quoted with Go's `%q`
/// escapes. Lines that do not parse are skipped (the kubelet does not write them).
pub fn parse_file(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in text.lines() {
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        if let Some(value) = unquote_go(raw.trim()) {
            map.insert(key.to_owned(), value);
        }
    }
    map
}

/// Undoes Go's `strconv.Quote` for the escapes it produces.
fn unquote_go(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let hex = |chars: &mut std::str::Chars<'_>, n: usize| -> Option<u32> {
            let digits: String = chars.by_ref().take(n).collect();
            if digits.len() != n {
                return None;
            }
            u32::from_str_radix(&digits, 16).ok()
        };
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' => out.push(char::from_u32(hex(&mut chars, 2)?)?),
            'u' => out.push(char::from_u32(hex(&mut chars, 4)?)?),
            'U' => out.push(char::from_u32(hex(&mut chars, 8)?)?),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_kubelet_downward_files() {
        let text = "app=\"web\"\nteam=\"a \\\"quoted\\\" team\"\n\
                    note=\"line1\\nline2 \\u00e9 \\x41\"\nbroken line\n=\"nokey\"\n";
        let map = parse_file(text);
        assert_eq!(map.len(), 3);
        assert_eq!(map["app"], "web");
        assert_eq!(map["team"], "a \"quoted\" team");
        assert_eq!(map["note"], "line1\nline2 é A");
    }

    #[test]
    fn reads_env_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("labels"), "app=\"web\"\n").unwrap();
        // No annotations file: an empty map and a note, not an error.
        let env = |k: &str| match k {
            "POD_NAME" => Some("web-1".to_owned()),
            "POD_NAMESPACE" => Some("shop".to_owned()),
            "POD_UID" => Some("uid-1".to_owned()),
            "NODE_NAME" => Some(String::new()),
            _ => None,
        };
        let (info, notes) = read(env, dir.path());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("annotations"));
        assert_eq!(info.pod_name.as_deref(), Some("web-1"));
        assert_eq!(info.namespace.as_deref(), Some("shop"));
        assert_eq!(info.host, None, "empty NODE_NAME is treated as absent");
        assert_eq!(info.labels["app"], "web");
        assert!(info.annotations.is_empty());
    }
}
