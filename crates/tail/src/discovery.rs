//! File discovery: which paths match the configured globs, where to walk and watch, and which
//! container a file belongs to.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::error::TailError;

/// Directory depth limit for walks; deeper trees are ignored rather than recursed into forever
/// (e.g. through a bind-mount loop).
const MAX_WALK_DEPTH: usize = 32;

/// The compiled path globs.
#[derive(Debug)]
pub struct Matcher {
    globs: GlobSet,
    /// Literal directory prefix of each glob, deduplicated, outermost first.
    roots: Vec<PathBuf>,
    /// Never reported, never walked (the checkpoint directory).
    exclude: PathBuf,
}

impl Matcher {
    pub fn new(patterns: &[String], exclude: &Path) -> Result<Self, TailError> {
        let mut builder = GlobSetBuilder::new();
        let mut roots: Vec<PathBuf> = Vec::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| TailError::InvalidGlob {
                    pattern: pattern.clone(),
                    source,
                })?;
            builder.add(glob);
            roots.push(static_root(pattern));
        }
        let globs = builder.build().map_err(|source| TailError::InvalidGlob {
            pattern: patterns.join(","),
            source,
        })?;
        roots.sort();
        roots.dedup();
        // A root inside another root would be walked twice.
        let outer: Vec<PathBuf> = roots
            .iter()
            .filter(|r| !roots.iter().any(|o| o != *r && r.starts_with(o)))
            .cloned()
            .collect();
        Ok(Self {
            globs,
            roots: outer,
            exclude: exclude.to_owned(),
        })
    }

    /// Directories to walk and watch.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn is_match(&self, path: &Path) -> bool {
        !path.starts_with(&self.exclude) && self.globs.is_match(path)
    }

    pub fn is_excluded(&self, path: &Path) -> bool {
        path.starts_with(&self.exclude)
    }

    /// Walks every root and collects matching regular files (symlinks to files included,
    /// symlinked directories not followed). Unreadable directories are reported to `on_error`
    /// and skipped; a missing root is not an error (it may appear later).
    pub fn scan(&self, found: &mut Vec<PathBuf>, on_error: &mut dyn FnMut(&Path, io::Error)) {
        for root in &self.roots {
            self.walk(root, 0, found, on_error);
        }
    }

    fn walk(
        &self,
        dir: &Path,
        depth: usize,
        found: &mut Vec<PathBuf>,
        on_error: &mut dyn FnMut(&Path, io::Error),
    ) {
        if depth > MAX_WALK_DEPTH || self.is_excluded(dir) {
            return;
        }
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && depth == 0 => return,
            // A subdirectory vanishing mid-walk is ordinary churn.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => return on_error(dir, e),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    on_error(dir, e);
                    continue;
                }
            };
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                self.walk(&path, depth + 1, found, on_error);
            } else if (kind.is_file() || kind.is_symlink()) && self.is_match(&path) {
                found.push(path);
            }
        }
    }

    /// The first directory below the root the file was found under, if the file is not
    /// directly in the root: `<root>/<container>/x.log`.
    pub fn container_for(&self, path: &Path) -> Option<String> {
        let root = self.roots.iter().find(|r| path.starts_with(r))?;
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.components();
        let first = parts.next()?;
        parts.next()?;
        match first {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            _ => None,
        }
    }
}

/// The longest leading run of path components that contain no glob syntax.
pub fn static_root(pattern: &str) -> PathBuf {
    let mut root = PathBuf::new();
    for component in Path::new(pattern).components() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        root.push(component);
    }
    // A glob without wildcards names a file: watch its directory.
    if root.as_os_str() == pattern {
        root.pop();
    }
    if root.as_os_str().is_empty() {
        root.push(".");
    }
    root
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn matcher(globs: &[&str]) -> Matcher {
        let globs: Vec<String> = globs.iter().map(|s| s.to_string()).collect();
        Matcher::new(&globs, Path::new("/var/log/app/.firetail")).unwrap()
    }

    #[test]
    fn roots_are_literal_prefixes_deduplicated() {
        assert_eq!(
            static_root("/var/log/app/**/*.log"),
            Path::new("/var/log/app")
        );
        assert_eq!(static_root("/a/b/x.log"), Path::new("/a/b"));
        assert_eq!(static_root("/a/{b,c}/x.log"), Path::new("/a"));
        let m = matcher(&[
            "/var/log/app/**/*.log",
            "/var/log/app/c/*.txt",
            "/srv/*.log",
        ]);
        assert_eq!(m.roots(), [Path::new("/srv"), Path::new("/var/log/app")]);
    }

    #[test]
    fn star_stays_in_one_directory_and_double_star_crosses() {
        let m = matcher(&["/var/log/app/*.log"]);
        assert!(m.is_match(Path::new("/var/log/app/a.log")));
        assert!(!m.is_match(Path::new("/var/log/app/c/a.log")));
        let m = matcher(&["/var/log/app/**/*.log"]);
        assert!(m.is_match(Path::new("/var/log/app/a.log")));
        assert!(m.is_match(Path::new("/var/log/app/c/d/a.log")));
        assert!(!m.is_match(Path::new("/var/log/app/c/a.log.1")));
        assert!(!m.is_match(Path::new("/var/log/app/.firetail/x.log")));
    }

    #[test]
    fn container_is_first_directory_under_root() {
        let m = matcher(&["/var/log/app/**/*.log"]);
        assert_eq!(
            m.container_for(Path::new("/var/log/app/web/x/y.log"))
                .as_deref(),
            Some("web")
        );
        assert_eq!(m.container_for(Path::new("/var/log/app/y.log")), None);
    }

    #[test]
    fn invalid_glob_is_reported() {
        let err = Matcher::new(&["/a/[".to_owned()], Path::new("/x")).unwrap_err();
        assert!(err.to_string().contains("/a/["));
    }

    #[test]
    fn scan_finds_nested_files_and_skips_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("c1/deep")).unwrap();
        fs::create_dir_all(root.join(".firetail")).unwrap();
        for p in [
            "a.log",
            "c1/b.log",
            "c1/deep/c.log",
            "c1/skip.txt",
            ".firetail/x.log",
        ] {
            fs::write(root.join(p), "x\n").unwrap();
        }
        let m = Matcher::new(
            &[format!("{}/**/*.log", root.display())],
            &root.join(".firetail"),
        )
        .unwrap();
        let mut found = Vec::new();
        m.scan(&mut found, &mut |p, e| panic!("{}: {e}", p.display()));
        found.sort();
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_owned())
            .collect();
        assert_eq!(
            rel,
            [
                Path::new("a.log"),
                Path::new("c1/b.log"),
                Path::new("c1/deep/c.log")
            ]
        );
    }
}
