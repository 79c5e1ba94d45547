//! The pod's own object from the Kubernetes API, when the service account may `get` it.
//!
//! # Layout
//! - [`PodView`] / [`parse_pod`]: the few fields we use from a Pod (container ids and images,
//!   container states), parsed leniently: anything missing is simply absent.
//! - [`PodView::lookup`]: container name → [`ContainerInfo`] and the owner references.
//! - [`PodView::app_containers_done`]: whether every regular container has terminated, which
//!   decides the drain mode (read to EOF vs wait for quiet files).
//! - [`PodView::container_run`]: a container's current instance (id, `restartCount`, running,
//!   the previous instance's id), for the stdout source.
//! - [`KubeClient`]: a minimal in-cluster HTTPS client (service-account token + CA, rustls):
//!   [`KubeClient::get_pod`], and [`KubeClient::log_stream`], the streaming `pods/log` GET
//!   ([`LogQuery`]; an error answer's `Status` object becomes [`KubeError::Api`]).
//!
//! All of this is optional: without a cluster, a token, or RBAC permission, the `docker_id` and
//! `container_image` fields are omitted and the drain waits for quiet files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use firetail_wire::kube::OwnerRef;

use super::{ContainerInfo, PodLookup};

/// Where a pod's service-account credentials are mounted.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// How to reach the Kubernetes API; the defaults are the in-cluster ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// The API's address; `None`: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    /// `http://` is accepted only for a loopback address (a local stand-in).
    pub url: Option<String>,
    /// The bearer token, re-read on every request (projected tokens are rotated).
    pub token_file: PathBuf,
    /// The CA bundle the API's certificate must chain to.
    pub ca_file: PathBuf,
}

impl Default for ApiSettings {
    fn default() -> Self {
        let dir = Path::new(SERVICE_ACCOUNT_DIR);
        Self {
            url: None,
            token_file: dir.join("token"),
            ca_file: dir.join("ca.crt"),
        }
    }
}

/// `https://` anywhere; `http://` only to a loopback address, so a token never crosses a
/// network in the clear.
fn check_scheme(base: &str) -> Result<(), KubeError> {
    if base.starts_with("https://") {
        return Ok(());
    }
    let Some(rest) = base.strip_prefix("http://") else {
        return Err(KubeError::Url(format!(
            "{base:?}: expected https:// (or http:// to a loopback address)"
        )));
    };
    let host = rest.split('/').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(KubeError::Url(format!(
            "{base:?}: plain http:// is accepted only for a loopback address"
        )))
    }
}

/// Largest pod object we read (pods are a few KiB; this bounds a misbehaving server).
const MAX_POD_BYTES: usize = 1024 * 1024;

/// Per-request timeout: the lookup is optional and must never hold up shipping or a drain.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a log request may take to answer its head (the body then streams).
const LOG_HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a lookup failed (always non-fatal for the caller).
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Reading the token or CA failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA bundle is not usable.
    #[error("CA bundle: {0}")]
    Tls(String),
    /// The API address is not usable.
    #[error("Kubernetes API address {0}")]
    Url(String),
    /// The request failed or timed out.
    #[error("request: {0}")]
    Request(String),
    /// The API answered with an error status (403: RBAC does not allow `get pods`).
    #[error("HTTP {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body.
        body: String,
    },
    /// The body is not a Pod.
    #[error("decoding pod: {0}")]
    Decode(#[from] serde_json::Error),
    /// The API answered a log request with an error `Status` object.
    #[error("HTTP {code} {reason}: {message}")]
    Api {
        /// HTTP status (the Status object's `code`).
        code: u16,
        /// The Status object's `reason` (`Forbidden`, `BadRequest`, ...), may be empty.
        reason: String,
        /// The Status object's `message` (or the start of a body that is not one).
        message: String,
        /// The `Retry-After` header, in seconds.
        retry_after: Option<Duration>,
    },
}

/// The query of `GET /api/v1/namespaces/{ns}/pods/{name}/log` (always `timestamps=true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// `container`.
    pub container: String,
    /// `follow`: keep the stream open until the container exits.
    pub follow: bool,
    /// `previous`: the previous (terminated) instance of the container.
    pub previous: bool,
    /// `sinceTime`: RFC 3339, second precision.
    pub since_time: Option<String>,
}

impl LogQuery {
    /// The path and query, for `namespace`/`name`.
    pub fn path(&self, namespace: &str, name: &str) -> String {
        let mut q = format!(
            "/api/v1/namespaces/{namespace}/pods/{name}/log?container={}&timestamps=true",
            self.container
        );
        if self.follow {
            q.push_str("&follow=true");
        }
        if self.previous {
            q.push_str("&previous=true");
        }
        if let Some(since) = &self.since_time {
            q.push_str("&sinceTime=");
            q.push_str(since);
        }
        q
    }
}

/// The error `Status` object of the Kubernetes API.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiStatus {
    message: String,
    reason: String,
}

/// Largest error body read from a log request.
const MAX_STATUS_BYTES: usize = 64 * 1024;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Pod {
    metadata: Metadata,
    spec: Spec,
    status: Status,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Metadata {
    owner_references: Vec<ApiOwnerRef>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ApiOwnerRef {
    kind: String,
    name: String,
    controller: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Spec {
    containers: Vec<SpecContainer>,
    init_containers: Vec<SpecContainer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct SpecContainer {
    name: String,
    image: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    image: Option<String>,
    #[serde(rename = "containerID")]
    container_id: Option<String>,
    restart_count: u32,
    state: State,
    last_state: State,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct State {
    running: Option<serde_json::Value>,
    terminated: Option<Terminated>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Terminated {
    #[serde(rename = "containerID")]
    container_id: Option<String>,
}

/// One regular container's current instance, from its status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRun {
    /// `containerID` of the current instance (`None` before it first started).
    pub container_id: Option<String>,
    /// `restartCount`: the instance's number, 0 for the first.
    pub restart_count: u32,
    /// Whether the instance is running (not waiting, not terminated).
    pub running: bool,
    /// `lastState.terminated.containerID`: the previous instance's id.
    pub previous_id: Option<String>,
}

/// What we use of the pod object.
#[derive(Debug, Default)]
pub struct PodView {
    pod: Pod,
}

/// Parses a Pod object.
pub fn parse_pod(json: &[u8]) -> Result<PodView, KubeError> {
    Ok(PodView {
        pod: serde_json::from_slice(json)?,
    })
}

impl PodView {
    /// What the enricher takes from the pod: [`Self::containers`] and the owner references.
    pub fn lookup(&self) -> PodLookup {
        PodLookup {
            containers: self.containers(),
            owners: self
                .pod
                .metadata
                .owner_references
                .iter()
                .map(|o| OwnerRef {
                    kind: o.kind.clone(),
                    name: o.name.clone(),
                    controller: o.controller,
                })
                .collect(),
        }
    }

    /// Runtime id and image per container (regular and init containers). The image comes from
    /// the status (what runs) and falls back to the spec.
    pub fn containers(&self) -> HashMap<String, ContainerInfo> {
        let mut out: HashMap<String, ContainerInfo> = HashMap::new();
        for c in self
            .pod
            .spec
            .containers
            .iter()
            .chain(&self.pod.spec.init_containers)
        {
            out.entry(c.name.clone()).or_default().image = c.image.clone();
        }
        let statuses = self
            .pod
            .status
            .container_statuses
            .iter()
            .chain(&self.pod.status.init_container_statuses);
        for s in statuses {
            let info = out.entry(s.name.clone()).or_default();
            if let Some(id) = s.container_id.as_deref().filter(|id| !id.is_empty()) {
                info.docker_id = Some(strip_runtime_scheme(id).to_owned());
            }
            if let Some(image) = s.image.as_deref().filter(|i| !i.is_empty()) {
                info.image = Some(image.to_owned());
            }
        }
        out.retain(|name, _| !name.is_empty());
        out
    }

    /// The names of the regular containers (`spec.containers`), except `own_name`.
    pub fn app_container_names(&self, own_name: &str) -> Vec<String> {
        self.pod
            .spec
            .containers
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| !n.is_empty() && n != own_name)
            .collect()
    }

    /// The status of regular or init container `name`, if the pod reports one.
    pub fn container_run(&self, name: &str) -> Option<ContainerRun> {
        let status = self
            .pod
            .status
            .container_statuses
            .iter()
            .chain(&self.pod.status.init_container_statuses)
            .find(|s| s.name == name)?;
        Some(ContainerRun {
            container_id: status.container_id.clone().filter(|id| !id.is_empty()),
            restart_count: status.restart_count,
            running: status.state.running.is_some(),
            previous_id: status
                .last_state
                .terminated
                .as_ref()
                .and_then(|t| t.container_id.clone()),
        })
    }

    /// True when every regular container other than `own_name` has terminated: the app wrote
    /// its last line, so a drain can read to EOF and stop. A native sidecar (an init container
    /// with `restartPolicy: Always`) is not among the regular containers at all. False when
    /// there are no statuses (we cannot tell).
    pub fn app_containers_done(&self, own_name: &str) -> bool {
        let mut apps = self
            .pod
            .status
            .container_statuses
            .iter()
            .filter(|s| s.name != own_name)
            .peekable();
        apps.peek().is_some() && apps.all(|s| s.state.terminated.is_some())
    }
}

/// Fluent Bit's `docker_id` is the bare runtime id: `containerd://abc` → `abc`.
pub fn strip_runtime_scheme(container_id: &str) -> &str {
    container_id
        .split_once("://")
        .map_or(container_id, |(_, id)| id)
}

/// A minimal client for `GET /api/v1/namespaces/{ns}/pods/{name}`.
#[derive(Debug, Clone)]
pub struct KubeClient {
    base: String,
    token_path: PathBuf,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl KubeClient {
    /// The client `settings` describe, or `None` when no API address is known (no
    /// `--kubernetes-api-url` and no `KUBERNETES_SERVICE_HOST`: not in a cluster) or no token
    /// file exists.
    pub fn configured(settings: &ApiSettings) -> Result<Option<Self>, KubeError> {
        let base = match &settings.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let (Ok(host), Ok(port)) = (
                    std::env::var("KUBERNETES_SERVICE_HOST"),
                    std::env::var("KUBERNETES_SERVICE_PORT"),
                ) else {
                    return Ok(None);
                };
                // IPv6 service addresses need brackets in a URL.
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host
                };
                format!("https://{host}:{port}")
            }
        };
        check_scheme(&base)?;
        if !settings.token_file.exists() {
            return Ok(None);
        }
        let ca = if base.starts_with("https://") {
            Some(
                std::fs::read(&settings.ca_file).map_err(|source| KubeError::Read {
                    path: settings.ca_file.clone(),
                    source,
                })?,
            )
        } else {
            None
        };
        Self::new(&base, ca.as_deref(), settings.token_file.clone()).map(Some)
    }

    /// A client for `base` (`https://host:port`; `http://` is accepted for local tests),
    /// trusting only `ca_pem` when given, and reading the bearer token from `token_path` on
    /// every request (projected tokens are rotated by the kubelet).
    pub fn new(base: &str, ca_pem: Option<&[u8]>, token_path: PathBuf) -> Result<Self, KubeError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(pem) = ca_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| KubeError::Tls(e.to_string()))?;
                roots.add(cert).map_err(|e| KubeError::Tls(e.to_string()))?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KubeError::Tls(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token_path,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Whether the API reports every app container (all but `own`) of the pod terminated; any
    /// failure means "don't know" (false), so a drain then waits for quiet files.
    pub async fn app_containers_done(&self, namespace: &str, name: &str, own: &str) -> bool {
        match self.get_pod(namespace, name).await {
            Ok(pod) => pod.app_containers_done(own),
            Err(error) => {
                tracing::info!(%error, "cannot read the pod at shutdown; waiting for quiet files");
                false
            }
        }
    }

    /// Opens `GET .../pods/{name}/log` with `query`; the body of a 200 answer streams the
    /// lines (chunked, `text/plain`). Only the answer's head is bounded by a timeout: a
    /// follow stream stays open as long as the container runs.
    pub async fn log_stream(
        &self,
        namespace: &str,
        name: &str,
        query: &LogQuery,
    ) -> Result<hyper::body::Incoming, KubeError> {
        let token =
            std::fs::read_to_string(&self.token_path).map_err(|source| KubeError::Read {
                path: self.token_path.clone(),
                source,
            })?;
        let uri = format!("{}{}", self.base, query.path(namespace, name));
        let req = hyper::Request::get(uri)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.trim()),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| KubeError::Request(e.to_string()))?;
        let resp = tokio::time::timeout(LOG_HEAD_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| KubeError::Request("timed out".into()))?
            .map_err(|e| KubeError::Request(e.to_string()))?;
        let code = resp.status().as_u16();
        if code == 200 {
            return Ok(resp.into_body());
        }
        let retry_after = resp
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = tokio::time::timeout(
            REQUEST_TIMEOUT,
            Limited::new(resp.into_body(), MAX_STATUS_BYTES).collect(),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|b| b.to_bytes())
        .unwrap_or_default();
        let status: ApiStatus = serde_json::from_slice(&body).unwrap_or_else(|_| ApiStatus {
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            reason: String::new(),
        });
        Err(KubeError::Api {
            code,
            reason: status.reason,
            message: status.message,
            retry_after,
        })
    }

    /// Fetches and parses pod `name` in `namespace`.
    pub async fn get_pod(&self, namespace: &str, name: &str) -> Result<PodView, KubeError> {
        let token =
            std::fs::read_to_string(&self.token_path).map_err(|source| KubeError::Read {
                path: self.token_path.clone(),
                source,
            })?;
        let uri = format!("{}/api/v1/namespaces/{namespace}/pods/{name}", self.base);
        let req = hyper::Request::get(uri)
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", token.trim()),
            )
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| KubeError::Request(e.to_string()))?;
        let fetch = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| KubeError::Request(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_POD_BYTES)
                .collect()
                .await
                .map_err(|e| KubeError::Request(e.to_string()))?
                .to_bytes();
            Ok::<_, KubeError>((status, body))
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, fetch)
            .await
            .map_err(|_| KubeError::Request("timed out".into()))??;
        if status != 200 {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            return Err(KubeError::Status { status, body: text });
        }
        parse_pod(&body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    const POD: &str = r#"{
      "kind": "Pod",
      "metadata": {"name": "web-1", "namespace": "shop", "ownerReferences": [{"kind": "ReplicaSet", "name": "web-abc"}]},
      "spec": {
        "containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "worker", "image": "busybox"}],
        "initContainers": [{"name": "firetail", "image": "firetail:1", "restartPolicy": "Always"}]
      },
      "status": {
        "containerStatuses": [
          {"name": "app", "image": "docker.io/library/nginx:1.27", "containerID": "containerd://abc123",
           "state": {"terminated": {"exitCode": 0}}},
          {"name": "worker", "containerID": "containerd://def456", "state": {"running": {}}}
        ],
        "initContainerStatuses": [
          {"name": "firetail", "containerID": "containerd://fff", "state": {"running": {}}}
        ]
      }
    }"#;

    #[test]
    fn extracts_ids_images_and_app_state() {
        let pod = parse_pod(POD.as_bytes()).unwrap();
        let c = pod.containers();
        assert_eq!(c["app"].docker_id.as_deref(), Some("abc123"));
        assert_eq!(
            c["app"].image.as_deref(),
            Some("docker.io/library/nginx:1.27")
        );
        assert_eq!(
            c["worker"].image.as_deref(),
            Some("busybox"),
            "spec image as fallback"
        );
        assert_eq!(c["firetail"].docker_id.as_deref(), Some("fff"));
        let owners = pod.lookup().owners;
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (&*owners[0].kind, &*owners[0].name),
            ("ReplicaSet", "web-abc")
        );
        assert!(!pod.app_containers_done("firetail"), "worker still runs");
        let done = POD.replace(
            r#""state": {"running": {}}}"#,
            r#""state": {"terminated": {}}}"#,
        );
        assert!(
            parse_pod(done.as_bytes())
                .unwrap()
                .app_containers_done("firetail")
        );
        assert!(
            !parse_pod(b"{}").unwrap().app_containers_done("firetail"),
            "unknown is not done"
        );
        assert!(parse_pod(b"[1]").is_err());
    }

    /// Serves one canned HTTP response per connection on 127.0.0.1 and records requests.
    async fn serve(
        status: &'static str,
        body: String,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 4096];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                req.extend_from_slice(&buf[..n]);
            }
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8(req).unwrap()
        });
        (format!("http://{addr}"), task)
    }

    #[tokio::test]
    async fn client_sends_token_and_parses_pod() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "tok-1\n").unwrap();
        let (url, server) = serve("200 OK", POD.to_owned()).await;
        let client = KubeClient::new(&url, None, token.clone()).unwrap();
        let pod = client.get_pod("shop", "web-1").await.unwrap();
        assert_eq!(
            pod.containers()["worker"].docker_id.as_deref(),
            Some("def456")
        );
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /api/v1/namespaces/shop/pods/web-1 HTTP/1.1"),
            "{req}"
        );
        assert!(
            req.to_ascii_lowercase()
                .contains("authorization: bearer tok-1\r\n"),
            "{req}"
        );

        let (url, server) = serve("403 Forbidden", r#"{"reason":"Forbidden"}"#.to_owned()).await;
        let client = KubeClient::new(&url, None, token).unwrap();
        let err = client.get_pod("shop", "web-1").await.unwrap_err();
        assert!(
            matches!(err, KubeError::Status { status: 403, .. }),
            "{err}"
        );
        server.await.unwrap();
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://10.0.0.1:443",
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:6443",
        ] {
            assert!(check_scheme(ok).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1:80", "http://kubernetes.default", "ftp://x"] {
            assert!(matches!(check_scheme(bad), Err(KubeError::Url(_))), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let settings = ApiSettings {
            url: Some("http://127.0.0.1:9".into()),
            token_file: dir.path().join("missing"),
            ca_file: dir.path().join("missing-ca"),
        };
        assert!(
            KubeClient::configured(&settings).unwrap().is_none(),
            "no token, no client"
        );
        std::fs::write(dir.path().join("token"), "t").unwrap();
        let settings = ApiSettings {
            token_file: dir.path().join("token"),
            ..settings
        };
        assert!(
            KubeClient::configured(&settings).unwrap().is_some(),
            "no CA needed over loopback http"
        );
        let remote = ApiSettings {
            url: Some("http://10.1.2.3".into()),
            ..settings
        };
        assert!(KubeClient::configured(&remote).is_err());
    }

    #[test]
    fn rejects_a_broken_ca_bundle() {
        let pem = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
        assert!(KubeClient::new("https://x", Some(pem), PathBuf::from("/nonexistent")).is_err());
    }
}
