//! The serialised `kubernetes` object of every event, cached per container name so the hot
//! path copies bytes instead of serialising maps for every event.

use std::collections::HashMap;
use std::sync::Arc;

use super::PodInfo;

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

    /// Whether the runtime id of `container` is known.
    pub fn knows_container_id(&self, container: &str) -> bool {
        self.info
            .containers
            .get(container)
            .is_some_and(|c| c.docker_id.is_some())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cache_follows_updates() {
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
