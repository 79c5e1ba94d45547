//! Tags: Kubernetes metadata remapped to the names Datadog (and our other destinations) use.
//!
//! Derived once per distinct `kubernetes` map, not per event: a packed record carries the same
//! pod metadata on every line.

use serde::Deserialize;

use crate::kube_meta::{KubeField, KubeMeta};

/// Where a mapped tag's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSource {
    /// A scalar field of the `kubernetes` map.
    Field(KubeField),
    /// `kubernetes.labels.<key>`.
    Label(String),
    /// `kubernetes.annotations.<key>`.
    Annotation(String),
}

impl TagSource {
    /// Parses `kubernetes.pod_name`, `kubernetes.labels.team`, `kubernetes.annotations.x`.
    pub fn parse(path: &str) -> Result<TagSource, String> {
        let rest = path
            .strip_prefix("kubernetes.")
            .ok_or_else(|| format!("{path:?}: sources start with \"kubernetes.\""))?;
        if let Some(key) = rest.strip_prefix("labels.") {
            return Ok(TagSource::Label(key.to_owned()));
        }
        if let Some(key) = rest.strip_prefix("annotations.") {
            return Ok(TagSource::Annotation(key.to_owned()));
        }
        KubeField::from_name(rest)
            .map(TagSource::Field)
            .ok_or_else(|| format!("{path:?}: unknown kubernetes field"))
    }
}

/// What decides an event's tags besides its metadata: the mapping and the static tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRules {
    /// `FIRETAIL_TAG_MAP` over the defaults.
    pub tag_map: Vec<TagMapping>,
    /// `FIRETAIL_EXTRA_TAGS`.
    pub extra_tags: Vec<(String, String)>,
}

impl Default for TagRules {
    fn default() -> Self {
        TagRules {
            tag_map: TagMapping::defaults(),
            extra_tags: Vec::new(),
        }
    }
}

/// One `source → tag` entry of `FIRETAIL_TAG_MAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMapping {
    pub source: TagSource,
    pub tag: String,
}

impl TagMapping {
    /// The four tags every event gets unless overridden.
    pub fn defaults() -> Vec<TagMapping> {
        [
            (KubeField::NamespaceName, "kube_namespace"),
            (KubeField::PodName, "pod_name"),
            (KubeField::ContainerName, "kube_container_name"),
            (KubeField::DockerId, "container_id"),
        ]
        .into_iter()
        .map(|(f, tag)| TagMapping {
            source: TagSource::Field(f),
            tag: tag.to_owned(),
        })
        .collect()
    }

    /// Parses `kubernetes.pod_name=pod,kubernetes.labels.team=team,kubernetes.docker_id=`
    /// and applies it over the defaults: an entry replaces the default for the same source, an
    /// empty tag name removes it, other entries are added in order.
    pub fn parse_overrides(spec: &str) -> Result<Vec<TagMapping>, String> {
        let mut mappings = TagMapping::defaults();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (source, tag) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not source=tag"))?;
            let source = TagSource::parse(source.trim())?;
            let tag = tag.trim();
            mappings.retain(|m| m.source != source);
            if !tag.is_empty() {
                mappings.push(TagMapping {
                    source,
                    tag: tag.to_owned(),
                });
            }
        }
        Ok(mappings)
    }
}

/// The tags of one pod/container, plus the Datadog reserved attributes derived with them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagSet {
    /// `(key, value)` in a stable order, keys unique.
    pub pairs: Vec<(String, String)>,
    pub hostname: Option<String>,
    pub service: Option<String>,
    pub ddsource: Option<String>,
}

impl TagSet {
    fn push(&mut self, key: &str, value: &str) {
        if value.is_empty() || self.pairs.iter().any(|(k, _)| k == key) {
            return;
        }
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Datadog's `ddtags` value: `key:value,...`. Commas inside values would split a tag, so
    /// they become underscores here (the attribute keeps the exact value).
    pub fn ddtags(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.pairs {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(k);
            out.push(':');
            out.extend(v.chars().map(|c| if c == ',' { '_' } else { c }));
        }
        out
    }
}

/// Label keys of the Kubernetes recommended labels and the Datadog tags they become.
const APP_LABELS: [(&str, &str); 6] = [
    ("app.kubernetes.io/name", "kube_app_name"),
    ("app.kubernetes.io/instance", "kube_app_instance"),
    ("app.kubernetes.io/version", "kube_app_version"),
    ("app.kubernetes.io/component", "kube_app_component"),
    ("app.kubernetes.io/part-of", "kube_app_part_of"),
    ("app.kubernetes.io/managed-by", "kube_app_managed_by"),
];

/// Datadog Unified Service Tagging labels.
/// <https://docs.datadoghq.com/getting_started/tagging/unified_service_tagging/>
const UST_LABELS: [(&str, &str); 3] = [
    ("tags.datadoghq.com/env", "env"),
    ("tags.datadoghq.com/service", "service"),
    ("tags.datadoghq.com/version", "version"),
];

/// Derives every tag of an event's pod metadata.
pub fn derive(meta: &KubeMeta<'_>, rules: &TagRules) -> TagSet {
    let mut set = TagSet::default();
    for m in &rules.tag_map {
        let value = match &m.source {
            TagSource::Field(f) => meta.field(*f),
            TagSource::Label(k) => meta.label(k),
            TagSource::Annotation(k) => meta.annotation(k),
        };
        if let Some(v) = value {
            set.push(&m.tag, v);
        }
    }

    for (key, value) in workload_tags(meta) {
        set.push(key, &value);
    }

    let image = meta.field(KubeField::ContainerImage).map(split_image);
    if let Some(img) = &image {
        set.push("image_name", img.name);
        set.push("short_image", img.short);
        if let Some(tag) = img.tag {
            set.push("image_tag", tag);
        }
    }
    for (label, tag) in APP_LABELS {
        if let Some(v) = meta.label(label) {
            set.push(tag, v);
        }
    }
    for (label, tag) in UST_LABELS {
        if let Some(v) = meta.label(label) {
            set.push(tag, v);
        }
    }
    for (k, v) in &rules.extra_tags {
        set.push(k, v);
    }

    let container = meta.field(KubeField::ContainerName);
    let logs_config = container.and_then(|c| autodiscovery_logs(meta, c));
    set.hostname = meta.field(KubeField::Host).map(str::to_owned);
    set.service = logs_config
        .as_ref()
        .and_then(|c| c.service.clone())
        .or_else(|| set.get("service").map(str::to_owned))
        .or_else(|| meta.label("app.kubernetes.io/name").map(str::to_owned))
        .or_else(|| image.as_ref().map(|i| i.short.to_owned()))
        .or_else(|| container.map(str::to_owned));
    set.ddsource = logs_config
        .and_then(|c| c.source)
        .or_else(|| image.as_ref().map(|i| i.short.to_owned()));
    set
}

/// The parts of a container image reference, as Datadog names them.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageParts<'a> {
    /// Repository without tag or digest: `public.ecr.aws/nginx/nginx`.
    pub name: &'a str,
    /// Last path segment of the repository: `nginx`.
    pub short: &'a str,
    /// The tag, if the reference has one: `1.27`.
    pub tag: Option<&'a str>,
}

/// Splits `registry:5000/team/app:1.2@sha256:…` into name, short name and tag.
pub fn split_image(image: &str) -> ImageParts<'_> {
    let without_digest = image.split_once('@').map_or(image, |(n, _)| n);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match without_digest[last_slash..].rfind(':') {
        Some(i) => (
            &without_digest[..last_slash + i],
            Some(&without_digest[last_slash + i + 1..]).filter(|t| !t.is_empty()),
        ),
        None => (without_digest, None),
    };
    let short = name.rsplit('/').next().unwrap_or(name);
    ImageParts { name, short, tag }
}

/// Alphabet of the random suffixes Kubernetes gives ReplicaSets and pods (no vowels, no
/// look-alike digits), which lets us tell `web-7d4b9c8f6d-x2x9k` from `my-cool-app`.
fn is_k8s_suffix(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len())
        && s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
}

/// `kube_deployment`, `kube_replica_set`, `kube_stateful_set`, `kube_daemon_set`, `kube_job`,
/// `kube_cronjob` from owner references when present, else from labels and the pod name.
fn workload_tags(meta: &KubeMeta<'_>) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for owner in &meta.owner_references.0 {
        let (Some(kind), Some(name)) = (owner.kind.get(), owner.name.get()) else {
            continue;
        };
        match kind {
            "ReplicaSet" => {
                out.push(("kube_replica_set", name.to_owned()));
                if let Some((dep, hash)) = name.rsplit_once('-')
                    && (meta.label("pod-template-hash") == Some(hash) || is_k8s_suffix(hash, 5, 10))
                {
                    out.push(("kube_deployment", dep.to_owned()));
                }
            }
            "StatefulSet" => out.push(("kube_stateful_set", name.to_owned())),
            "DaemonSet" => out.push(("kube_daemon_set", name.to_owned())),
            "Job" => {
                out.push(("kube_job", name.to_owned()));
                if let Some(cron) = cronjob_of(name) {
                    out.push(("kube_cronjob", cron.to_owned()));
                }
            }
            _ => {}
        }
    }
    if !out.is_empty() {
        return out;
    }
    let Some(pod) = meta.field(KubeField::PodName) else {
        return out;
    };
    if let Some(job) = meta
        .label("batch.kubernetes.io/job-name")
        .or_else(|| meta.label("job-name"))
    {
        out.push(("kube_job", job.to_owned()));
        if let Some(cron) = cronjob_of(job) {
            out.push(("kube_cronjob", cron.to_owned()));
        }
        return out;
    }
    if meta.label("statefulset.kubernetes.io/pod-name").is_some()
        && let Some((set, ordinal)) = pod.rsplit_once('-')
        && !ordinal.is_empty()
        && ordinal.bytes().all(|b| b.is_ascii_digit())
    {
        out.push(("kube_stateful_set", set.to_owned()));
        return out;
    }
    // Deployment pods are named <deployment>-<pod-template-hash>-<5 random chars>.
    if let Some((rs, suffix)) = pod.rsplit_once('-')
        && is_k8s_suffix(suffix, 5, 5)
        && let Some((dep, hash)) = rs.rsplit_once('-')
        && !dep.is_empty()
        && (meta.label("pod-template-hash") == Some(hash) || is_k8s_suffix(hash, 6, 10))
    {
        out.push(("kube_replica_set", rs.to_owned()));
        out.push(("kube_deployment", dep.to_owned()));
    }
    out
}

/// CronJob-created jobs are named `<cronjob>-<scheduled minutes since epoch>`.
fn cronjob_of(job: &str) -> Option<&str> {
    let (cron, stamp) = job.rsplit_once('-')?;
    (stamp.len() >= 8 && stamp.bytes().all(|b| b.is_ascii_digit()) && !cron.is_empty())
        .then_some(cron)
}

/// The `source`/`service` a user already set for the Datadog Agent with the
/// `ad.datadoghq.com/<container>.logs` annotation; honouring it keeps pipelines working when
/// moving from the Agent to firetail.
#[derive(Debug, Deserialize)]
struct LogsConfig {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

fn autodiscovery_logs(meta: &KubeMeta<'_>, container: &str) -> Option<LogsConfig> {
    let key = format!("ad.datadoghq.com/{container}.logs");
    let raw = meta.annotation(&key)?;
    let mut configs: Vec<LogsConfig> = serde_json::from_str(raw).ok()?;
    if configs.is_empty() {
        None
    } else {
        Some(configs.swap_remove(0))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tags(kube: &str, rules: &TagRules) -> TagSet {
        derive(&KubeMeta::parse(kube), rules)
    }

    #[test]
    fn default_mapping_and_deployment_from_pod_name() {
        let t = tags(
            r#"{"namespace_name":"shop","pod_name":"web-7d4b9c8f6d-x2x9k","container_name":"app",
               "docker_id":"d0cker","host":"fargate-ip-10-0-1-2.ec2.internal",
               "container_image":"123.dkr.ecr.us-east-1.amazonaws.com/team/web:1.4.2",
               "labels":{"pod-template-hash":"7d4b9c8f6d","app.kubernetes.io/name":"web",
                         "app.kubernetes.io/part-of":"shop",
                         "tags.datadoghq.com/env":"prod","tags.datadoghq.com/version":"1.4.2"}}"#,
            &TagRules::default(),
        );
        assert_eq!(
            t.ddtags(),
            "kube_namespace:shop,pod_name:web-7d4b9c8f6d-x2x9k,kube_container_name:app,\
             container_id:d0cker,kube_replica_set:web-7d4b9c8f6d,kube_deployment:web,\
             image_name:123.dkr.ecr.us-east-1.amazonaws.com/team/web,short_image:web,image_tag:1.4.2,\
             kube_app_name:web,kube_app_part_of:shop,env:prod,version:1.4.2"
        );
        assert_eq!(
            t.hostname.as_deref(),
            Some("fargate-ip-10-0-1-2.ec2.internal")
        );
        assert_eq!(t.service.as_deref(), Some("web"));
        assert_eq!(t.ddsource.as_deref(), Some("web"));
    }

    #[test]
    fn no_deployment_guess_for_plain_names() {
        let t = tags(r#"{"pod_name":"my-cool-app"}"#, &TagRules::default());
        assert_eq!(t.get("kube_deployment"), None);
        let t = tags(
            r#"{"pod_name":"billing-0","labels":{"statefulset.kubernetes.io/pod-name":"billing-0"}}"#,
            &TagRules::default(),
        );
        assert_eq!(t.get("kube_stateful_set"), Some("billing"));
    }

    #[test]
    fn owner_references_win() {
        let t = tags(
            r#"{"pod_name":"nightly-29012345-abcde","ownerReferences":[{"kind":"Job","name":"nightly-29012345"}]}"#,
            &TagRules::default(),
        );
        assert_eq!(t.get("kube_job"), Some("nightly-29012345"));
        assert_eq!(t.get("kube_cronjob"), Some("nightly"));
        let t = tags(
            r#"{"owner_references":[{"kind":"ReplicaSet","name":"api-5c9f8d7b6"}]}"#,
            &TagRules::default(),
        );
        assert_eq!(t.get("kube_deployment"), Some("api"));
    }

    #[test]
    fn ust_service_and_autodiscovery_annotation() {
        let t = tags(
            r#"{"container_name":"app","labels":{"tags.datadoghq.com/service":"checkout"}}"#,
            &TagRules::default(),
        );
        assert_eq!(t.service.as_deref(), Some("checkout"));
        assert_eq!(t.get("service"), Some("checkout"));
        let t = tags(
            r#"{"container_name":"app","container_image":"eclipse-temurin:21",
                "annotations":{"ad.datadoghq.com/app.logs":"[{\"source\":\"java\",\"service\":\"pay\"}]"}}"#,
            &TagRules::default(),
        );
        assert_eq!(t.ddsource.as_deref(), Some("java"));
        assert_eq!(t.service.as_deref(), Some("pay"));
    }

    #[test]
    fn tag_map_overrides_and_extra_tags() {
        let rules = TagRules {
            tag_map: TagMapping::parse_overrides(
                "kubernetes.docker_id=,kubernetes.pod_name=pod,kubernetes.labels.team=team",
            )
            .unwrap(),
            extra_tags: vec![("cluster".into(), "prod-eu".into())],
        };
        let t = tags(
            r#"{"pod_name":"p","docker_id":"x","namespace_name":"n","labels":{"team":"a,b"}}"#,
            &rules,
        );
        assert_eq!(
            t.ddtags(),
            "kube_namespace:n,pod:p,team:a_b,cluster:prod-eu"
        );
        assert_eq!(t.get("team"), Some("a,b"));
    }

    #[test]
    fn image_references() {
        let cases = [
            ("nginx", ("nginx", "nginx", None)),
            ("nginx:1.27", ("nginx", "nginx", Some("1.27"))),
            (
                "localhost:5000/a/b:tag",
                ("localhost:5000/a/b", "b", Some("tag")),
            ),
            ("localhost:5000/a/b", ("localhost:5000/a/b", "b", None)),
            ("repo/app@sha256:abc", ("repo/app", "app", None)),
            ("repo/app:2@sha256:abc", ("repo/app", "app", Some("2"))),
        ];
        for (image, (name, short, tag)) in cases {
            assert_eq!(
                split_image(image),
                ImageParts { name, short, tag },
                "{image}"
            );
        }
    }

    #[test]
    fn missing_metadata_gives_no_tags() {
        let t = tags("{}", &TagRules::default());
        assert!(t.pairs.is_empty());
        assert_eq!(t.service, None);
    }
}
