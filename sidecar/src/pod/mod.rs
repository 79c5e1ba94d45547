//! What the sidecar knows about its pod, and how that becomes every event's `kubernetes`
//! object.
//!
//! # Layout
//! - [`PodInfo`]: what is known, from the Downward API (environment and volume files) and,
//!   when the service account may read its own pod, the Kubernetes API.
//! - [`downward`]: the Downward API's environment and `key="value"` files.
//! - [`api`]: a minimal in-cluster client for the pod's own object (container ids, images,
//!   owner references, whether the app containers have exited).
//! - [`enrich`]: [`Enricher`], the serialised `kubernetes` object per container, cached.
//! - [`watch`]: one task that re-reads both sources and publishes a fresh [`PodInfo`].
//!
//! Missing metadata is never an error: the field is left out and the event still ships.

pub mod api;
pub mod downward;
pub mod enrich;
pub mod watch;

use std::collections::{BTreeMap, HashMap};

use firetail_wire::kube::{KubeObject, OwnerRef};

pub use enrich::Enricher;

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
    /// The `kubernetes` object for events from `container`, as JSON, or empty when nothing at
    /// all is known (so the field is omitted rather than written as `{}`).
    pub fn kubernetes_json(&self, container: Option<&str>) -> Vec<u8> {
        let c = container.and_then(|name| self.containers.get(name));
        KubeObject {
            namespace_name: self.namespace.as_deref(),
            pod_name: self.pod_name.as_deref(),
            pod_id: self.pod_id.as_deref(),
            container_name: container,
            docker_id: c.and_then(|c| c.docker_id.as_deref()),
            host: self.host.as_deref(),
            container_image: c.and_then(|c| c.image.as_deref()),
            labels: Some(&self.labels),
            annotations: Some(&self.annotations),
            owner_references: &self.owners,
        }
        .to_json()
    }

    /// The pod info with what the Kubernetes API said merged in.
    pub fn with_lookup(mut self, lookup: PodLookup) -> Self {
        self.containers = lookup.containers;
        self.owners = lookup.owners;
        self
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use firetail_wire::kube;

    #[test]
    fn builds_the_kubernetes_object_per_container() {
        let mut info = PodInfo {
            namespace: Some("shop".into()),
            pod_name: Some("web-1".into()),
            pod_id: Some("uid-1".into()),
            labels: BTreeMap::from([("app".into(), "web".into())]),
            ..PodInfo::default()
        };
        info.containers.insert(
            "app".into(),
            ContainerInfo {
                docker_id: Some(api::strip_runtime_scheme("containerd://abc123").into()),
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
                kube::NAMESPACE_NAME: "shop", kube::POD_NAME: "web-1", kube::POD_ID: "uid-1",
                kube::CONTAINER_NAME: "app", kube::DOCKER_ID: "abc123",
                kube::CONTAINER_IMAGE: "nginx:1",
                kube::LABELS: {"app": "web"},
                kube::OWNER_REFERENCES: [{"kind": "ReplicaSet", "name": "web-7d4b9c8f6d", "controller": true}]
            })
        );
        let other: serde_json::Value =
            serde_json::from_slice(&info.kubernetes_json(Some("other"))).unwrap();
        assert!(other.get(kube::DOCKER_ID).is_none());
        assert!(other.get(kube::HOST).is_none());
    }

    #[test]
    fn nothing_known_means_field_omitted() {
        assert!(PodInfo::default().kubernetes_json(None).is_empty());
    }
}
