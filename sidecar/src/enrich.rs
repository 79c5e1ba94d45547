//! Pod metadata for the `kubernetes` object of every event.
//!
//! # Layout
//! - [`PodInfo`]: what is known about the pod, from the Downward API (env + volume files) and,
//!   when the service account may read its own pod, from the Kubernetes API ([`crate::kube`]).
//! - [`parse_downward_file`]: the `key="value"` format the kubelet writes for labels/annotations.
//! - [`Enricher`]: caches the serialised `kubernetes` object per container name so the hot path
//!   copies bytes instead of serialising maps for every event.
//!
//! Missing metadata is never an error: the field is left out and the event still ships.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One entry of the pod's `metadata.ownerReferences`, written as Fluent Bit's kubernetes filter
/// does with `Owner_References On`, so the transform can name the workload (`kube_deployment`,
/// `kube_job`, ...) exactly instead of guessing from the pod name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerRef {
    /// `ReplicaSet`, `StatefulSet`, `Job`, ...
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// Whether this owner is the managing controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<bool>,
}

/// What the Kubernetes API adds to the Downward API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodLookup {
    /// Per-container details, keyed by container name.
    pub containers: HashMap<String, ContainerInfo>,
    /// The pod's owner references.
    pub owners: Vec<OwnerRef>,
}

/// Image and runtime id of one container, from the pod's `containerStatuses`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Runtime id without the `containerd://` scheme, as Fluent Bit reports `docker_id`.
    pub docker_id: Option<String>,
    /// Image reference from the container spec/status.
    pub image: Option<String>,
}

/// Everything known about the pod this sidecar runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// `POD_NAMESPACE`.
    pub namespace: Option<String>,
    /// `POD_NAME`.
    pub pod_name: Option<String>,
    /// `POD_UID`.
    pub pod_id: Option<String>,
    /// `NODE_NAME` (on Fargate, the per-pod Fargate node).
    pub host: Option<String>,
    /// Pod labels from `<podinfo>/labels`.
    pub labels: BTreeMap<String, String>,
    /// Pod annotations from `<podinfo>/annotations`.
    pub annotations: BTreeMap<String, String>,
    /// Per-container details from the Kubernetes API, keyed by container name.
    pub containers: HashMap<String, ContainerInfo>,
    /// Owner references from the Kubernetes API.
    pub owners: Vec<OwnerRef>,
}

impl PodInfo {
    /// Reads the Downward API: `env` supplies variables (so tests need not touch the process
    /// environment), `podinfo_dir` holds the `labels` and `annotations` files. Files that are
    /// missing or unreadable leave the maps empty; the returned strings say what was skipped.
    pub fn from_downward_api(
        env: impl Fn(&str) -> Option<String>,
        podinfo_dir: &Path,
    ) -> (Self, Vec<String>) {
        let non_empty = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut notes = Vec::new();
        let mut read_map = |name: &str| match std::fs::read_to_string(podinfo_dir.join(name)) {
            Ok(text) => parse_downward_file(&text),
            Err(err) => {
                notes.push(format!("{}: {err}", podinfo_dir.join(name).display()));
                BTreeMap::new()
            }
        };
        let labels = read_map("labels");
        let annotations = read_map("annotations");
        let info = Self {
            namespace: non_empty("POD_NAMESPACE"),
            pod_name: non_empty("POD_NAME"),
            pod_id: non_empty("POD_UID"),
            host: non_empty("NODE_NAME"),
            labels,
            annotations,
            containers: HashMap::new(),
            owners: Vec::new(),
        };
        (info, notes)
    }

    /// The serialised `kubernetes` object for events from `container`, or empty when nothing
    /// at all is known (so the field is omitted rather than written as `{}`).
    pub fn kubernetes_json(&self, container: Option<&str>) -> Vec<u8> {
        #[derive(Serialize)]
        struct Kube<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            namespace_name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pod_name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pod_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            container_name: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            docker_id: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            host: Option<&'a str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            container_image: Option<&'a str>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            labels: &'a BTreeMap<String, String>,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            annotations: &'a BTreeMap<String, String>,
            #[serde(rename = "ownerReferences", skip_serializing_if = "<[_]>::is_empty")]
            owner_references: &'a [OwnerRef],
        }
        let c = container.and_then(|name| self.containers.get(name));
        let kube = Kube {
            namespace_name: self.namespace.as_deref(),
            pod_name: self.pod_name.as_deref(),
            pod_id: self.pod_id.as_deref(),
            container_name: container,
            docker_id: c.and_then(|c| c.docker_id.as_deref()),
            host: self.host.as_deref(),
            container_image: c.and_then(|c| c.image.as_deref()),
            labels: &self.labels,
            annotations: &self.annotations,
            owner_references: &self.owners,
        };
        // Serialising borrowed strings and string maps into a Vec cannot fail.
        let out = serde_json::to_vec(&kube).unwrap_or_default();
        if out == b"{}" { Vec::new() } else { out }
    }
}

/// Parses a Downward API volume file: one `key="value"` per line, values quoted with Go's `%q`
/// escapes. Lines that do not parse are skipped (the kubelet does not write them).
pub fn parse_downward_file(text: &str) -> BTreeMap<String, String> {
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

/// Serialised `kubernetes` objects per container name, rebuilt when the pod info changes.
#[derive(Debug)]
pub struct Enricher {
    info: PodInfo,
    /// Keyed by container name; the empty name stands for "no container".
    cache: HashMap<String, Arc<[u8]>>,
}

impl Enricher {
    /// Wraps `info`.
    pub fn new(info: PodInfo) -> Self {
        Self {
            info,
            cache: HashMap::new(),
        }
    }

    /// The pod info in use.
    pub fn info(&self) -> &PodInfo {
        &self.info
    }

    /// Replaces the pod info; returns true if anything changed.
    pub fn update(&mut self, info: PodInfo) -> bool {
        if info == self.info {
            return false;
        }
        self.info = info;
        self.cache.clear();
        true
    }

    /// Merges what the Kubernetes API said about the pod into the pod info; returns true if
    /// anything changed.
    pub fn set_lookup(&mut self, lookup: PodLookup) -> bool {
        let mut info = self.info.clone();
        info.containers = lookup.containers;
        info.owners = lookup.owners;
        self.update(info)
    }

    /// The `kubernetes` JSON object for events of `container` (empty: omit the field).
    pub fn kubernetes(&mut self, container: Option<&str>) -> Arc<[u8]> {
        let key = container.unwrap_or_default();
        // Looking up by &str keeps the per-event path allocation-free.
        if let Some(hit) = self.cache.get(key) {
            return Arc::clone(hit);
        }
        let bytes: Arc<[u8]> = self.info.kubernetes_json(container).into();
        self.cache.insert(key.to_owned(), Arc::clone(&bytes));
        bytes
    }
}

/// Fluent Bit's `docker_id` is the bare runtime id: `containerd://abc` → `abc`.
pub fn strip_runtime_scheme(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_kubelet_downward_files() {
        let text = "app=\"web\"\nteam=\"a \\\"quoted\\\" team\"\n\
                    note=\"line1\\nline2 \\u00e9 \\x41\"\nbroken line\n=\"nokey\"\n";
        let map = parse_downward_file(text);
        assert_eq!(map.len(), 3);
        assert_eq!(map["app"], "web");
        assert_eq!(map["team"], "a \"quoted\" team");
        assert_eq!(map["note"], "line1\nline2 é A");
    }

    #[test]
    fn reads_env_and_files_and_builds_kubernetes_object() {
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
        let (mut info, notes) = PodInfo::from_downward_api(env, dir.path());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("annotations"));
        info.containers.insert(
            "app".into(),
            ContainerInfo {
                docker_id: Some(strip_runtime_scheme("containerd://abc123").into()),
                image: Some("nginx:1".into()),
            },
        );
        info.owners.push(OwnerRef {
            kind: "ReplicaSet".into(),
            name: "web-7d4b9c8f6d".into(),
            controller: Some(true),
        });
        let v: serde_json::Value =
            serde_json::from_slice(&info.kubernetes_json(Some("app"))).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "namespace_name": "shop", "pod_name": "web-1", "pod_id": "uid-1",
                "container_name": "app", "docker_id": "abc123", "container_image": "nginx:1",
                "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "controller": true}]
            })
        );
        let other: serde_json::Value =
            serde_json::from_slice(&info.kubernetes_json(Some("other"))).unwrap();
        assert!(other.get("docker_id").is_none());
        assert!(
            other.get("host").is_none(),
            "empty NODE_NAME is treated as absent"
        );
    }

    #[test]
    fn nothing_known_means_field_omitted() {
        assert!(PodInfo::default().kubernetes_json(None).is_empty());
    }

    #[test]
    fn enricher_cache_follows_updates() {
        let mut e = Enricher::new(PodInfo {
            pod_name: Some("a".into()),
            ..PodInfo::default()
        });
        let first = e.kubernetes(Some("c"));
        assert!(std::str::from_utf8(&first).unwrap().contains("\"a\""));
        assert!(!e.update(e.info().clone()));
        let mut next = e.info().clone();
        next.pod_name = Some("b".into());
        assert!(e.update(next));
        assert!(
            std::str::from_utf8(&e.kubernetes(Some("c")))
                .unwrap()
                .contains("\"b\"")
        );
    }
}
