//! Tags: Kubernetes metadata remapped to the names Datadog (and our other destinations) use.
//!
//! Every tag the transform derives by itself is a row of [`TABLE`] (name, origin, meaning):
//! [`derive()`] names built-in tags only through [`Tag`], whose names live in the table, so a
//! tag cannot be emitted without being listed. Besides those, an event carries only the tags
//! the deployer named (`FIRETAIL_TAG_MAP`, `FIRETAIL_EXTRA_TAGS`); [`TagRules::tag_names`] lists
//! the whole set, which is what Datadog's side is generated from ([`datadog_pipeline`]).
//!
//! Derived once per distinct `kubernetes` map, not per event: a packed record carries the same
//! pod metadata on every line.

pub mod datadog_pipeline;

use serde::Deserialize;

use crate::kube_meta::{KubeField, KubeMeta};

/// A tag the transform derives by itself; its name and origin are its row of [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tag {
    KubeNamespace,
    PodName,
    KubeContainerName,
    ContainerId,
    KubeReplicaSet,
    KubeDeployment,
    KubeStatefulSet,
    KubeDaemonSet,
    KubeJob,
    KubeCronjob,
    ImageName,
    ShortImage,
    ImageTag,
    KubeAppName,
    KubeAppInstance,
    KubeAppVersion,
    KubeAppComponent,
    KubeAppPartOf,
    KubeAppManagedBy,
    Env,
    Service,
    Version,
}

impl Tag {
    /// The tag's row of [`TABLE`].
    pub fn def(self) -> &'static TagDef {
        &TABLE[self as usize]
    }

    /// The tag's name, as it appears in `ddtags` and as an attribute.
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// Which part of `kubernetes.container_image` an image tag is (see [`split_image`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePart {
    Name,
    Short,
    Tag,
}

/// Where a built-in tag's value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A scalar field of the `kubernetes` map. These rows are the defaults of `FIRETAIL_TAG_MAP`,
    /// which can rename or remove them ([`TagMapping::defaults`]).
    Field(KubeField),
    /// The pod's workload: its owner references, or failing those its labels and name.
    Workload,
    /// A part of `kubernetes.container_image`.
    Image(ImagePart),
    /// `kubernetes.labels.<key>`.
    Label(&'static str),
}

/// One built-in tag: its name, where its value comes from, what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagDef {
    pub tag: Tag,
    pub name: &'static str,
    pub origin: Origin,
    pub doc: &'static str,
}

const fn row(tag: Tag, name: &'static str, origin: Origin, doc: &'static str) -> TagDef {
    TagDef {
        tag,
        name,
        origin,
        doc,
    }
}

/// Every tag the transform derives by itself, in the order it emits them, one row per [`Tag`]
/// (in `Tag` order). The names follow the tags the Datadog Agent assigns the same metadata, so
/// dashboards and monitors built on Agent-collected logs keep working:
/// <https://docs.datadoghq.com/containers/kubernetes/tag/> (Kubernetes and image tags),
/// <https://docs.datadoghq.com/getting_started/tagging/unified_service_tagging/> (`env`,
/// `service`, `version` from the `tags.datadoghq.com/*` labels).
#[rustfmt::skip]
pub const TABLE: [TagDef; 22] = [
    row(Tag::KubeNamespace, "kube_namespace", Origin::Field(KubeField::NamespaceName), "the pod's namespace"),
    row(Tag::PodName, "pod_name", Origin::Field(KubeField::PodName), "the pod's name"),
    row(Tag::KubeContainerName, "kube_container_name", Origin::Field(KubeField::ContainerName), "the container that wrote the line"),
    row(Tag::ContainerId, "container_id", Origin::Field(KubeField::DockerId), "the container's runtime id (`docker_id`)"),
    row(Tag::KubeReplicaSet, "kube_replica_set", Origin::Workload, "the ReplicaSet owning the pod"),
    row(Tag::KubeDeployment, "kube_deployment", Origin::Workload, "the Deployment of that ReplicaSet (its name minus the pod-template hash)"),
    row(Tag::KubeStatefulSet, "kube_stateful_set", Origin::Workload, "the StatefulSet owning the pod"),
    row(Tag::KubeDaemonSet, "kube_daemon_set", Origin::Workload, "the DaemonSet owning the pod"),
    row(Tag::KubeJob, "kube_job", Origin::Workload, "the Job owning the pod"),
    row(Tag::KubeCronjob, "kube_cronjob", Origin::Workload, "the CronJob of that Job (its name minus the schedule stamp)"),
    row(Tag::ImageName, "image_name", Origin::Image(ImagePart::Name), "the image repository, without tag or digest"),
    row(Tag::ShortImage, "short_image", Origin::Image(ImagePart::Short), "the last path segment of the repository"),
    row(Tag::ImageTag, "image_tag", Origin::Image(ImagePart::Tag), "the image tag, when the reference has one"),
    row(Tag::KubeAppName, "kube_app_name", Origin::Label("app.kubernetes.io/name"), "recommended label app.kubernetes.io/name"),
    row(Tag::KubeAppInstance, "kube_app_instance", Origin::Label("app.kubernetes.io/instance"), "recommended label app.kubernetes.io/instance"),
    row(Tag::KubeAppVersion, "kube_app_version", Origin::Label("app.kubernetes.io/version"), "recommended label app.kubernetes.io/version"),
    row(Tag::KubeAppComponent, "kube_app_component", Origin::Label("app.kubernetes.io/component"), "recommended label app.kubernetes.io/component"),
    row(Tag::KubeAppPartOf, "kube_app_part_of", Origin::Label("app.kubernetes.io/part-of"), "recommended label app.kubernetes.io/part-of"),
    row(Tag::KubeAppManagedBy, "kube_app_managed_by", Origin::Label("app.kubernetes.io/managed-by"), "recommended label app.kubernetes.io/managed-by"),
    row(Tag::Env, "env", Origin::Label("tags.datadoghq.com/env"), "Unified Service Tagging: the environment"),
    row(Tag::Service, "service", Origin::Label("tags.datadoghq.com/service"), "Unified Service Tagging: the service"),
    row(Tag::Version, "version", Origin::Label("tags.datadoghq.com/version"), "Unified Service Tagging: the version"),
];

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

impl TagRules {
    /// Every tag name an event can carry under these rules, in the order [`derive()`] emits
    /// them: the tag map's, the other rows of [`TABLE`], then the static tags. A name is
    /// listed once (an event carries the first value [`derive()`] finds for it).
    pub fn tag_names(&self) -> Vec<&str> {
        let mapped = self.tag_map.iter().map(|m| m.tag.as_str());
        let builtin = TABLE
            .iter()
            .filter(|d| !matches!(d.origin, Origin::Field(_)))
            .map(|d| d.name);
        let extra = self.extra_tags.iter().map(|(k, _)| k.as_str());
        let mut names: Vec<&str> = Vec::new();
        for name in mapped.chain(builtin).chain(extra) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }
}

/// One `source → tag` entry of `FIRETAIL_TAG_MAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagMapping {
    pub source: TagSource,
    pub tag: String,
}

impl TagMapping {
    /// The rows of [`TABLE`] taken from a `kubernetes` field: the tags every event gets
    /// unless `FIRETAIL_TAG_MAP` overrides them.
    pub fn defaults() -> Vec<TagMapping> {
        TABLE
            .iter()
            .filter_map(|d| match d.origin {
                Origin::Field(f) => Some(TagMapping {
                    source: TagSource::Field(f),
                    tag: d.name.to_owned(),
                }),
                _ => None,
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
    /// Adds a tag the rules named. Built-in tags go through [`TagSet::push_tag`], so their
    /// names can only come from [`TABLE`].
    fn push(&mut self, key: &str, value: &str) {
        if value.is_empty() || self.pairs.iter().any(|(k, _)| k == key) {
            return;
        }
        self.pairs.push((key.to_owned(), value.to_owned()));
    }

    fn push_tag(&mut self, tag: Tag, value: &str) {
        self.push(tag.name(), value);
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

    for (tag, value) in workload_tags(meta) {
        set.push_tag(tag, &value);
    }

    let image = meta.field(KubeField::ContainerImage).map(split_image);
    for def in &TABLE {
        let value = match def.origin {
            Origin::Field(_) | Origin::Workload => continue,
            Origin::Image(part) => image.as_ref().and_then(|img| img.part(part)),
            Origin::Label(key) => meta.label(key),
        };
        if let Some(v) = value {
            set.push_tag(def.tag, v);
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
        .or_else(|| set.get(Tag::Service.name()).map(str::to_owned))
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

impl<'a> ImageParts<'a> {
    /// The value of the tag for `part`, if the reference has it.
    pub fn part(&self, part: ImagePart) -> Option<&'a str> {
        match part {
            ImagePart::Name => Some(self.name),
            ImagePart::Short => Some(self.short),
            ImagePart::Tag => self.tag,
        }
    }
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
fn workload_tags(meta: &KubeMeta<'_>) -> Vec<(Tag, String)> {
    let mut out = Vec::new();
    for owner in &meta.owner_references.0 {
        let (Some(kind), Some(name)) = (owner.kind.get(), owner.name.get()) else {
            continue;
        };
        match kind {
            "ReplicaSet" => {
                out.push((Tag::KubeReplicaSet, name.to_owned()));
                if let Some((dep, hash)) = name.rsplit_once('-')
                    && (meta.label("pod-template-hash") == Some(hash) || is_k8s_suffix(hash, 5, 10))
                {
                    out.push((Tag::KubeDeployment, dep.to_owned()));
                }
            }
            "StatefulSet" => out.push((Tag::KubeStatefulSet, name.to_owned())),
            "DaemonSet" => out.push((Tag::KubeDaemonSet, name.to_owned())),
            "Job" => {
                out.push((Tag::KubeJob, name.to_owned()));
                if let Some(cron) = cronjob_of(name) {
                    out.push((Tag::KubeCronjob, cron.to_owned()));
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
        out.push((Tag::KubeJob, job.to_owned()));
        if let Some(cron) = cronjob_of(job) {
            out.push((Tag::KubeCronjob, cron.to_owned()));
        }
        return out;
    }
    if meta.label("statefulset.kubernetes.io/pod-name").is_some()
        && let Some((set, ordinal)) = pod.rsplit_once('-')
        && !ordinal.is_empty()
        && ordinal.bytes().all(|b| b.is_ascii_digit())
    {
        out.push((Tag::KubeStatefulSet, set.to_owned()));
        return out;
    }
    // Deployment pods are named <deployment>-<pod-template-hash>-<5 random chars>.
    if let Some((rs, suffix)) = pod.rsplit_once('-')
        && is_k8s_suffix(suffix, 5, 5)
        && let Some((dep, hash)) = rs.rsplit_once('-')
        && !dep.is_empty()
        && (meta.label("pod-template-hash") == Some(hash) || is_k8s_suffix(hash, 6, 10))
    {
        out.push((Tag::KubeReplicaSet, rs.to_owned()));
        out.push((Tag::KubeDeployment, dep.to_owned()));
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
    fn table_rows_follow_the_tag_enum_and_names_are_unique() {
        let mut names = std::collections::HashSet::new();
        for (i, def) in TABLE.iter().enumerate() {
            assert_eq!(def.tag as usize, i, "{} is out of place", def.name);
            assert!(names.insert(def.name), "{} is listed twice", def.name);
            assert!(!def.doc.is_empty(), "{} has no doc", def.name);
        }
    }

    /// A `kubernetes` map with every field, every label the table reads and an owner of every
    /// kind the transform knows, so every built-in tag has a value.
    fn fully_populated() -> String {
        let mut map = serde_json::Map::new();
        for field in KubeField::ALL {
            map.insert(
                field.name().into(),
                format!("{}-value", field.name()).into(),
            );
        }
        map.insert(
            KubeField::ContainerImage.name().into(),
            "registry.example:5000/team/web:1.4.2@sha256:abc".into(),
        );
        let mut labels = serde_json::Map::new();
        labels.insert("pod-template-hash".into(), "7d4b9c8f6d".into());
        labels.insert("team".into(), "payments".into());
        for def in &TABLE {
            if let Origin::Label(key) = def.origin {
                labels.insert(key.into(), format!("{}-value", def.name).into());
            }
        }
        map.insert("labels".into(), labels.into());
        map.insert(
            "ownerReferences".into(),
            serde_json::json!([
                {"kind": "ReplicaSet", "name": "web-7d4b9c8f6d"},
                {"kind": "StatefulSet", "name": "db"},
                {"kind": "DaemonSet", "name": "agent"},
                {"kind": "Job", "name": "nightly-29012345"},
            ]),
        );
        serde_json::Value::Object(map).to_string()
    }

    fn derived_names(rules: &TagRules) -> Vec<String> {
        tags(&fully_populated(), rules)
            .pairs
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    #[test]
    fn derive_emits_exactly_the_tags_of_the_table() {
        let rules = TagRules::default();
        let derived = derived_names(&rules);
        let table: Vec<&str> = TABLE.iter().map(|d| d.name).collect();
        let mut sorted_derived: Vec<&str> = derived.iter().map(String::as_str).collect();
        sorted_derived.sort_unstable();
        let mut sorted_table = table.clone();
        sorted_table.sort_unstable();
        assert_eq!(sorted_derived, sorted_table, "derive and TABLE disagree");
        // With owners in table order, derive emits the table's order too.
        assert_eq!(derived, table);
        assert_eq!(rules.tag_names(), table);
    }

    #[test]
    fn derive_emits_exactly_the_tag_names_of_the_rules() {
        let rules = TagRules {
            tag_map: TagMapping::parse_overrides(
                "kubernetes.docker_id=,kubernetes.pod_name=pod,kubernetes.labels.team=team,\
                 kubernetes.host=node",
            )
            .unwrap(),
            extra_tags: vec![
                ("cluster".into(), "prod-eu".into()),
                ("env".into(), "shadowed".into()),
            ],
        };
        let mut derived = derived_names(&rules);
        let mut listed: Vec<String> = rules.tag_names().into_iter().map(str::to_owned).collect();
        assert!(
            listed.contains(&"node".to_owned()) && !listed.contains(&"container_id".to_owned())
        );
        derived.sort_unstable();
        listed.sort_unstable();
        assert_eq!(derived, listed);
    }

    #[test]
    fn missing_metadata_gives_no_tags() {
        let t = tags("{}", &TagRules::default());
        assert!(t.pairs.is_empty());
        assert_eq!(t.service, None);
    }
}
