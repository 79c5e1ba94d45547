//! One task keeps the pod metadata fresh: every period it re-reads the Downward API files
//! (labels and annotations can change) and, when a Kubernetes API client is available, the
//! pod's own object (container ids appear once containers start, images change on restarts),
//! and publishes the merged [`PodInfo`] on a watch channel when anything changed.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;

use super::api::KubeClient;
use super::{PodInfo, downward};

/// Where the Kubernetes API part comes from.
#[derive(Debug, Clone)]
pub struct ApiSource {
    /// The client.
    pub client: KubeClient,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
}

/// Starts the task; the receiver holds `initial` until the first change.
pub fn spawn(
    initial: PodInfo,
    podinfo_dir: PathBuf,
    api: Option<ApiSource>,
    period: Duration,
) -> (watch::Receiver<PodInfo>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(initial.clone());
    let task = tokio::spawn(run(initial, podinfo_dir, api, period, tx));
    (rx, task)
}

async fn run(
    mut current: PodInfo,
    podinfo_dir: PathBuf,
    api: Option<ApiSource>,
    period: Duration,
    tx: watch::Sender<PodInfo>,
) {
    let mut last_error = String::new();
    let mut first = true;
    loop {
        let mut next = current.clone();
        if !first {
            let mut notes = Vec::new();
            let (labels, annotations) = downward::read_maps(&podinfo_dir, &mut notes);
            // Both empty means the volume is gone or was never there: keep what was read.
            if !labels.is_empty() || !annotations.is_empty() {
                next.labels = labels;
                next.annotations = annotations;
            }
        }
        first = false;
        if let Some(api) = &api {
            match api.client.get_pod(&api.namespace, &api.name).await {
                Ok(pod) => {
                    last_error.clear();
                    next = next.with_lookup(pod.lookup());
                }
                Err(error) => {
                    // A failed lookup (no RBAC permission, API unreachable) is logged once per
                    // kind of failure and leaves the fields as they were.
                    let text = error.to_string();
                    if text != last_error {
                        tracing::info!(%error, "pod lookup failed; docker_id, container_image and ownerReferences omitted");
                        last_error = text;
                    }
                }
            }
        }
        if next != current {
            current = next;
            let published = current.clone();
            tx.send_if_modified(|slot| {
                if *slot == published {
                    false
                } else {
                    *slot = published;
                    true
                }
            });
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(period).await;
    }
}
