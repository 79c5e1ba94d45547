//! The `kubernetes` object of an event: the names Fluent Bit's kubernetes filter uses (so one
//! reader serves Fargate's router and the sidecar), and the writer the sidecar uses.
//!
//! The sidecar writes [`NAMESPACE_NAME`] … [`HOST`] from the Downward API, [`CONTAINER_NAME`]
//! from the file's directory, [`DOCKER_ID`], [`CONTAINER_IMAGE`] and [`OWNER_REFERENCES`] from
//! the Kubernetes API when it may read its own pod, [`LABELS`] and [`ANNOTATIONS`] from the
//! Downward API volume. [`CONTAINER_HASH`] is Fluent Bit's only: readers take it when present.

use std::collections::BTreeMap;

use crate::json::write_str;

/// The pod's namespace.
pub const NAMESPACE_NAME: &str = "namespace_name";
/// The pod's name.
pub const POD_NAME: &str = "pod_name";
/// The pod's UID.
pub const POD_ID: &str = "pod_id";
/// The container the line came from.
pub const CONTAINER_NAME: &str = "container_name";
/// The container's runtime id without its `containerd://` scheme.
pub const DOCKER_ID: &str = "docker_id";
/// The node (on Fargate, the pod's own Fargate node).
pub const HOST: &str = "host";
/// The container's image reference.
pub const CONTAINER_IMAGE: &str = "container_image";
/// The image digest reference (Fluent Bit only).
pub const CONTAINER_HASH: &str = "container_hash";
/// Pod labels, a string map.
pub const LABELS: &str = "labels";
/// Pod annotations, a string map.
pub const ANNOTATIONS: &str = "annotations";
/// The pod's owner references (`kind`, `name`, `controller`), as Fluent Bit writes them with
/// `Owner_References On`.
pub const OWNER_REFERENCES: &str = "ownerReferences";
/// The snake-case spelling some Fluent Bit versions use for [`OWNER_REFERENCES`]; readers
/// accept both.
pub const OWNER_REFERENCES_SNAKE: &str = "owner_references";
/// Key of an owner reference: `ReplicaSet`, `StatefulSet`, `Job`, ...
pub const OWNER_KIND: &str = "kind";
/// Key of an owner reference: the owner's name.
pub const OWNER_NAME: &str = "name";
/// Key of an owner reference: whether it is the managing controller.
pub const OWNER_CONTROLLER: &str = "controller";

/// One entry of the pod's `metadata.ownerReferences`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnerRef {
    /// `ReplicaSet`, `StatefulSet`, `Job`, ...
    pub kind: String,
    /// The owner's name.
    pub name: String,
    /// Whether this owner is the managing controller.
    pub controller: Option<bool>,
}

/// What the sidecar knows about one container's pod, borrowed for writing.
#[derive(Debug, Clone, Copy, Default)]
pub struct KubeObject<'a> {
    /// [`NAMESPACE_NAME`].
    pub namespace_name: Option<&'a str>,
    /// [`POD_NAME`].
    pub pod_name: Option<&'a str>,
    /// [`POD_ID`].
    pub pod_id: Option<&'a str>,
    /// [`CONTAINER_NAME`].
    pub container_name: Option<&'a str>,
    /// [`DOCKER_ID`].
    pub docker_id: Option<&'a str>,
    /// [`HOST`].
    pub host: Option<&'a str>,
    /// [`CONTAINER_IMAGE`].
    pub container_image: Option<&'a str>,
    /// [`LABELS`].
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// [`ANNOTATIONS`].
    pub annotations: Option<&'a BTreeMap<String, String>>,
    /// [`OWNER_REFERENCES`].
    pub owner_references: &'a [OwnerRef],
}

impl KubeObject<'_> {
    /// The object as JSON, or empty when nothing at all is known (so the event omits the field
    /// rather than carrying `{}`). Absent fields and empty maps are left out.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        let mut first = true;
        let mut member = |out: &mut Vec<u8>, name: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, name);
            out.push(b':');
        };
        for (name, value) in [
            (NAMESPACE_NAME, self.namespace_name),
            (POD_NAME, self.pod_name),
            (POD_ID, self.pod_id),
            (CONTAINER_NAME, self.container_name),
            (DOCKER_ID, self.docker_id),
            (HOST, self.host),
            (CONTAINER_IMAGE, self.container_image),
        ] {
            if let Some(v) = value {
                member(&mut out, name);
                write_str(&mut out, v);
            }
        }
        for (name, map) in [(LABELS, self.labels), (ANNOTATIONS, self.annotations)] {
            let Some(map) = map.filter(|m| !m.is_empty()) else {
                continue;
            };
            member(&mut out, name);
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(&mut out, k);
                out.push(b':');
                write_str(&mut out, v);
            }
            out.push(b'}');
        }
        if !self.owner_references.is_empty() {
            member(&mut out, OWNER_REFERENCES);
            out.push(b'[');
            for (i, owner) in self.owner_references.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.push(b'{');
                write_str(&mut out, OWNER_KIND);
                out.push(b':');
                write_str(&mut out, &owner.kind);
                out.push(b',');
                write_str(&mut out, OWNER_NAME);
                out.push(b':');
                write_str(&mut out, &owner.name);
                if let Some(c) = owner.controller {
                    out.push(b',');
                    write_str(&mut out, OWNER_CONTROLLER);
                    out.push(b':');
                    out.extend_from_slice(if c { b"true" } else { b"false" });
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        if first {
            return Vec::new();
        }
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_every_known_field_with_the_shared_names() {
        let labels = BTreeMap::from([("app".to_owned(), "web \"1\"".to_owned())]);
        let owners = [OwnerRef {
            kind: "ReplicaSet".into(),
            name: "web-7d4b9c8f6d".into(),
            controller: Some(true),
        }];
        let obj = KubeObject {
            namespace_name: Some("shop"),
            pod_name: Some("web-1"),
            pod_id: Some("uid-1"),
            container_name: Some("app"),
            docker_id: Some("abc123"),
            host: None,
            container_image: Some("nginx:1"),
            labels: Some(&labels),
            annotations: Some(&BTreeMap::new()),
            owner_references: &owners,
        };
        let v: serde_json::Value = serde_json::from_slice(&obj.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                NAMESPACE_NAME: "shop", POD_NAME: "web-1", POD_ID: "uid-1",
                CONTAINER_NAME: "app", DOCKER_ID: "abc123", CONTAINER_IMAGE: "nginx:1",
                LABELS: {"app": "web \"1\""},
                OWNER_REFERENCES: [{OWNER_KIND: "ReplicaSet", OWNER_NAME: "web-7d4b9c8f6d", OWNER_CONTROLLER: true}]
            })
        );
    }

    #[test]
    fn nothing_known_is_empty_not_an_empty_object() {
        assert!(KubeObject::default().to_json().is_empty());
    }
}
