//! Datadog's half of the tags, as code: a log pipeline that turns every tag attribute the
//! transform writes into a real tag, and sets the log's service, status, date and source from
//! the log's own fields.
//!
//! Why a pipeline: each Datadog log carries its tags twice, in `ddtags` and as attributes of
//! their own names. Whether Datadog's Firehose intake honours `ddtags` inside a record is not
//! documented (its JSON preprocessing list has no `ddtags`:
//! <https://docs.datadoghq.com/logs/log_configuration/pipelines/#preprocessing>); what Datadog
//! does document for EKS on Fargate through Firehose is a pipeline of Remapper processors,
//! attribute → tag (<https://docs.datadoghq.com/logs/guide/aws-eks-fargate-logs-with-kinesis-data-firehose/>).
//! With this pipeline the tags arrive either way.
//!
//! [`pipeline`] builds it from the same [`TagRules`] the transform runs with (so a deployer's
//! `FIRETAIL_TAG_MAP` / `FIRETAIL_EXTRA_TAGS` get their remappers too); [`Pipeline::to_api_json`]
//! renders it for the Logs Pipelines API (`POST /api/v1/logs/config/pipelines`) and
//! [`Pipeline::to_terraform`] as the provider's `datadog_logs_custom_pipeline` resource. Both
//! render the one value, so they cannot disagree. The defaults are committed as
//! `lambda-transform/datadog/pipeline.{json,tf}`; `examples/datadog-pipeline.rs` regenerates
//! them for other rules.

use std::fmt::Write as _;

use firetail_wire::output::{MARKER_KEY, MARKER_VERSION, datadog::TIMESTAMP};
use serde::Serialize;

use super::TagRules;
use crate::render::datadog::STATUS;

/// The Datadog log's service attribute (`render::datadog` writes it).
pub const SERVICE: &str = "service";

/// The Datadog log's source attribute (`render::datadog` writes it).
pub const DDSOURCE: &str = "ddsource";

/// Datadog "recommends using at most 20 processors per pipeline"
/// (<https://docs.datadoghq.com/logs/log_configuration/pipelines/>). The built-in tags alone
/// are more than that, so the tag remappers go into nested pipelines of at most this many each.
pub const MAX_PROCESSORS: usize = 20;

/// Tag names a Remapper must not target. Datadog: "The Remapper processor cannot be used to
/// remap Datadog reserved attributes": `host` cannot be remapped at all, and `message`,
/// `service`, `status`, `date`, `trace_id` and `span_id` need their dedicated processors
/// (<https://docs.datadoghq.com/logs/log_configuration/processors/remapper/>). `source` is not
/// in that list; this pipeline sets it from `ddsource` and keeps it from being overwritten by
/// a tag of the same name.
const DATADOG_RESERVED: [&str; 8] = [
    "host", "message", "service", "status", "date", "trace_id", "span_id", "source",
];

/// Keys the Datadog log owns (the marker, `render`'s reserved keys and the Datadog head): a tag
/// of one of these names is in `ddtags` only, never an attribute, so there is nothing to remap.
const LOG_OWNED: [&str; 11] = [
    MARKER_KEY,
    "message",
    "message_base64",
    "aws",
    "kubernetes",
    TIMESTAMP,
    STATUS,
    "hostname",
    SERVICE,
    DDSOURCE,
    "ddtags",
];

/// A Logs Pipelines API pipeline (`LogsPipeline` in Datadog's OpenAPI v1 schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pipeline {
    pub name: String,
    pub is_enabled: bool,
    pub description: String,
    pub filter: Filter,
    pub processors: Vec<Processor>,
    /// Tags of the rules that get no remapper, and why (not part of the API object).
    #[serde(skip)]
    pub unmapped: Vec<Unmapped>,
}

/// `LogsFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    pub query: String,
}

/// The processors this pipeline uses, tagged with their API `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Processor {
    #[serde(rename = "service-remapper")]
    Service(SourcesProcessor),
    #[serde(rename = "status-remapper")]
    Status(SourcesProcessor),
    #[serde(rename = "date-remapper")]
    Date(SourcesProcessor),
    #[serde(rename = "attribute-remapper")]
    Attribute(AttributeRemapper),
    #[serde(rename = "pipeline")]
    Nested(NestedPipeline),
}

/// The service, status and date remappers: a name and the attributes to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcesProcessor {
    pub name: String,
    pub is_enabled: bool,
    pub sources: Vec<String>,
}

/// `LogsAttributeRemapper`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttributeRemapper {
    pub name: String,
    pub is_enabled: bool,
    pub sources: Vec<String>,
    pub source_type: String,
    pub target: String,
    pub target_type: String,
    pub preserve_source: bool,
    pub override_on_conflict: bool,
}

/// `LogsPipelineProcessor`: a nested pipeline (it holds processors, never pipelines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NestedPipeline {
    pub name: String,
    pub is_enabled: bool,
    pub filter: Filter,
    pub processors: Vec<Processor>,
}

/// A tag of the rules with no attribute remapper; `reason` completes "tag `<name>` …".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmapped {
    pub tag: String,
    pub reason: &'static str,
}

/// The query selecting the transform's own logs: the versioned output marker every Datadog log
/// starts with (`firetail_wire::output`). Not `service:aws source:aws`, the filter of Datadog's
/// EKS guide: those are the intake's defaults for plain JSON records and say nothing about who
/// wrote the log (and our envelopes get their source from the log group instead). The version
/// keeps a future output layout from being remapped by this layout's pipeline.
pub fn filter_query() -> String {
    format!("@{MARKER_KEY}:{MARKER_VERSION}")
}

fn sources(name: &str, source: &str) -> SourcesProcessor {
    SourcesProcessor {
        name: name.to_owned(),
        is_enabled: true,
        sources: vec![source.to_owned()],
    }
}

fn to_tag(source: &str, target: &str, override_on_conflict: bool) -> Processor {
    Processor::Attribute(AttributeRemapper {
        name: format!("{source} attribute to the {target} tag"),
        is_enabled: true,
        sources: vec![source.to_owned()],
        source_type: "attribute".to_owned(),
        target: target.to_owned(),
        target_type: "tag".to_owned(),
        // The attribute stays: facets and saved searches on @kube_namespace keep working.
        preserve_source: true,
        override_on_conflict,
    })
}

/// Why `tag` gets no remapper, if it gets none.
fn unmapped_reason(tag: &str) -> Option<&'static str> {
    if tag == SERVICE {
        return Some("is set by the service remapper (from the log's service attribute)");
    }
    if LOG_OWNED.contains(&tag) {
        return Some(
            "is not remapped: a field of the Datadog log has that name, so the tag travels in ddtags only",
        );
    }
    if DATADOG_RESERVED.contains(&tag) {
        return Some(
            "is not remapped: a Datadog reserved attribute, which the generic Remapper cannot target",
        );
    }
    if tag.contains([':', ',']) {
        return Some(
            "is not remapped: Datadog allows neither ':' nor ',' in a remapper's target name",
        );
    }
    None
}

/// The pipeline for `rules`: the reserved attributes first, then one attribute → tag remapper
/// per tag the rules can produce ([`TagRules::tag_names`]), in as few nested pipelines of at
/// most [`MAX_PROCESSORS`] as hold them, evenly filled.
pub fn pipeline(rules: &TagRules) -> Pipeline {
    let query = filter_query();
    let mut processors = vec![
        // The service, status and date need their dedicated remappers (see DATADOG_RESERVED).
        // JSON preprocessing already reads these same attribute names; the remappers make it
        // explicit for logs whose defaults the Firehose intake set (service:aws), and for
        // orgs whose preprocessing was changed.
        Processor::Service(sources("service attribute as the log's service", SERVICE)),
        Processor::Status(sources("status attribute as the log's status", STATUS)),
        Processor::Date(sources("timestamp attribute as the log's date", TIMESTAMP)),
        // No dedicated processor sets the source; the generic Remapper may target the source
        // tag (it is not among the attributes the Remapper page excludes). It must override:
        // the intake has already set one (source:aws, or the envelope's log group).
        to_tag(DDSOURCE, "source", true),
    ];
    let mut tags = Vec::new();
    let mut unmapped = Vec::new();
    for name in rules.tag_names() {
        match unmapped_reason(name) {
            // Not overriding: a tag the intake did set (from ddtags, or a stream common
            // attribute) is the same value, or one the deployer chose on purpose.
            None => tags.push(to_tag(name, name, false)),
            Some(reason) => unmapped.push(Unmapped {
                tag: name.to_owned(),
                reason,
            }),
        }
    }
    let chunks = tags.len().div_ceil(MAX_PROCESSORS);
    let per_chunk = tags.len().div_ceil(chunks.max(1));
    let mut rest = tags.into_iter();
    for i in 1..=chunks {
        processors.push(Processor::Nested(NestedPipeline {
            name: format!("firetail tags {i}/{chunks}"),
            is_enabled: true,
            filter: Filter {
                query: query.clone(),
            },
            processors: rest.by_ref().take(per_chunk).collect(),
        }));
    }
    Pipeline {
        name: "firetail".to_owned(),
        is_enabled: true,
        description: format!(
            "firetail-transform's logs ({MARKER_KEY}:{MARKER_VERSION}): tag attributes to tags; \
             service, status, date and source from the log's fields. Generated from firetail's \
             tag table (lambda-transform/datadog); regenerate rather than edit."
        ),
        filter: Filter { query },
        processors,
        unmapped,
    }
}

impl Pipeline {
    /// The request body of `POST /api/v1/logs/config/pipelines`, pretty-printed, with a final
    /// newline.
    pub fn to_api_json(&self) -> String {
        // Serialising plain structs of strings, bools and vectors cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The `datadog_logs_custom_pipeline` resource, formatted as `terraform fmt` formats it.
    pub fn to_terraform(&self) -> String {
        let mut body = vec![
            Hcl::attr("name", hcl_str(&self.name)),
            Hcl::attr("is_enabled", self.is_enabled.to_string()),
            Hcl::attr("description", hcl_str(&self.description)),
            Hcl::Blank,
            filter_block(&self.filter),
        ];
        for p in &self.processors {
            body.push(Hcl::Blank);
            body.push(processor_block(p));
        }
        let mut out = String::from(TERRAFORM_HEADER);
        write_hcl(
            &[Hcl::Block(
                "resource \"datadog_logs_custom_pipeline\" \"firetail\"".into(),
                body,
            )],
            0,
            &mut out,
        );
        out
    }
}

const TERRAFORM_HEADER: &str = "\
# firetail's Datadog log pipeline, the Terraform form of pipeline.json beside this file.
# Generated from firetail-transform's tag table by
#   cargo run -p firetail-transform --example datadog-pipeline -- --out-dir DIR
# (with FIRETAIL_TAG_MAP / FIRETAIL_EXTRA_TAGS set as on the Lambda); regenerate, don't edit.
# Needs the DataDog/datadog provider. Put datadog_logs_custom_pipeline.firetail.id first in
# your datadog_logs_pipeline_order (docs/deploy.md, \"The Datadog side\").

";

/// One line or block of HCL.
enum Hcl {
    /// `name = value`, the value already rendered.
    Attr(&'static str, String),
    /// `header {` … `}`.
    Block(String, Vec<Hcl>),
    Blank,
}

impl Hcl {
    fn attr(name: &'static str, value: String) -> Hcl {
        Hcl::Attr(name, value)
    }
}

fn filter_block(filter: &Filter) -> Hcl {
    Hcl::Block(
        "filter".into(),
        vec![Hcl::attr("query", hcl_str(&filter.query))],
    )
}

/// `processor { <kind> { … } }`; the block and attribute names are the provider's
/// (`datadog/resource_datadog_logs_custom_pipeline.go`), which are the API's field names.
fn processor_block(p: &Processor) -> Hcl {
    let (kind, body) = match p {
        Processor::Service(s) => ("service_remapper", sources_body(s)),
        Processor::Status(s) => ("status_remapper", sources_body(s)),
        Processor::Date(s) => ("date_remapper", sources_body(s)),
        Processor::Attribute(a) => (
            "attribute_remapper",
            vec![
                Hcl::attr("name", hcl_str(&a.name)),
                Hcl::attr("is_enabled", a.is_enabled.to_string()),
                Hcl::attr("sources", hcl_list(&a.sources)),
                Hcl::attr("source_type", hcl_str(&a.source_type)),
                Hcl::attr("target", hcl_str(&a.target)),
                Hcl::attr("target_type", hcl_str(&a.target_type)),
                Hcl::attr("preserve_source", a.preserve_source.to_string()),
                Hcl::attr("override_on_conflict", a.override_on_conflict.to_string()),
            ],
        ),
        Processor::Nested(n) => {
            let mut body = vec![
                Hcl::attr("name", hcl_str(&n.name)),
                Hcl::attr("is_enabled", n.is_enabled.to_string()),
                Hcl::Blank,
                filter_block(&n.filter),
            ];
            for p in &n.processors {
                body.push(Hcl::Blank);
                body.push(processor_block(p));
            }
            ("pipeline", body)
        }
    };
    Hcl::Block("processor".into(), vec![Hcl::Block(kind.into(), body)])
}

fn sources_body(s: &SourcesProcessor) -> Vec<Hcl> {
    vec![
        Hcl::attr("name", hcl_str(&s.name)),
        Hcl::attr("is_enabled", s.is_enabled.to_string()),
        Hcl::attr("sources", hcl_list(&s.sources)),
    ]
}

/// Writes `items` at `depth` (two spaces a level). Like `terraform fmt`, the `=` of adjacent
/// attribute lines line up; a blank line or a block ends the run.
fn write_hcl(items: &[Hcl], depth: usize, out: &mut String) {
    let indent = "  ".repeat(depth);
    let mut i = 0;
    while i < items.len() {
        match &items[i] {
            Hcl::Blank => {
                out.push('\n');
                i += 1;
            }
            Hcl::Block(header, body) => {
                let _ = writeln!(out, "{indent}{header} {{");
                write_hcl(body, depth + 1, out);
                let _ = writeln!(out, "{indent}}}");
                i += 1;
            }
            Hcl::Attr(..) => {
                let run_end = items[i..]
                    .iter()
                    .position(|h| !matches!(h, Hcl::Attr(..)))
                    .map_or(items.len(), |n| i + n);
                let width = items[i..run_end]
                    .iter()
                    .map(|h| match h {
                        Hcl::Attr(name, _) => name.len(),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0);
                for h in &items[i..run_end] {
                    if let Hcl::Attr(name, value) = h {
                        let _ = writeln!(out, "{indent}{name:<width$} = {value}");
                    }
                }
                i = run_end;
            }
        }
    }
}

/// A quoted HCL string: JSON-style escapes, and `${` / `%{` doubled so Terraform does not read
/// a tag name as a template.
fn hcl_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn hcl_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| hcl_str(s)).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::tags::{TABLE, TagMapping};

    /// Every attribute → tag remapper, nested or not: (source, target, override).
    fn remappers(p: &Pipeline) -> Vec<(String, String, bool)> {
        fn walk(ps: &[Processor], out: &mut Vec<(String, String, bool)>) {
            for p in ps {
                match p {
                    Processor::Attribute(a) => {
                        assert_eq!(a.sources.len(), 1);
                        assert_eq!(
                            (a.source_type.as_str(), a.target_type.as_str()),
                            ("attribute", "tag")
                        );
                        assert!(a.preserve_source && a.is_enabled);
                        out.push((
                            a.sources[0].clone(),
                            a.target.clone(),
                            a.override_on_conflict,
                        ));
                    }
                    Processor::Nested(n) => {
                        assert!(n.processors.len() <= MAX_PROCESSORS);
                        assert!(
                            n.processors
                                .iter()
                                .all(|p| matches!(p, Processor::Attribute(_)))
                        );
                        walk(&n.processors, out);
                    }
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&p.processors, &mut out);
        out
    }

    #[test]
    fn default_pipeline_remaps_every_table_tag_but_service() {
        let p = pipeline(&TagRules::default());
        assert_eq!(p.filter.query, "@firetail_transform:1");
        assert!(p.processors.len() <= MAX_PROCESSORS);
        let got = remappers(&p);
        assert_eq!(got[0], ("ddsource".into(), "source".into(), true));
        let tags: Vec<&str> = got[1..].iter().map(|(s, _, _)| s.as_str()).collect();
        let expected: Vec<&str> = TABLE
            .iter()
            .map(|d| d.name)
            .filter(|n| *n != "service")
            .collect();
        assert_eq!(tags, expected);
        assert!(got[1..].iter().all(|(s, t, o)| s == t && !o));
        assert_eq!(
            p.unmapped,
            vec![Unmapped {
                tag: "service".into(),
                reason: "is set by the service remapper (from the log's service attribute)"
            }]
        );
        let kinds: Vec<&str> = p.processors[..3]
            .iter()
            .map(|p| match p {
                Processor::Service(s) | Processor::Status(s) | Processor::Date(s) => {
                    s.sources[0].as_str()
                }
                _ => "",
            })
            .collect();
        assert_eq!(kinds, ["service", "status", "timestamp"]);
    }

    #[test]
    fn user_tags_get_remappers_and_removed_defaults_lose_theirs() {
        let rules = TagRules {
            tag_map: TagMapping::parse_overrides(
                "kubernetes.docker_id=,kubernetes.labels.team=team,kubernetes.host=host,\
                 kubernetes.labels.a=hostname,kubernetes.labels.b=a:b",
            )
            .unwrap(),
            extra_tags: vec![("cluster".into(), "prod".into())],
        };
        let p = pipeline(&rules);
        let targets: Vec<String> = remappers(&p).into_iter().map(|(_, t, _)| t).collect();
        assert!(targets.contains(&"team".into()) && targets.contains(&"cluster".into()));
        assert!(!targets.contains(&"container_id".into()));
        let unmapped: Vec<&str> = p.unmapped.iter().map(|u| u.tag.as_str()).collect();
        assert_eq!(unmapped, ["host", "hostname", "a:b", "service"]);
    }

    #[test]
    fn tag_remappers_fill_nested_pipelines_evenly() {
        let sizes = |p: &Pipeline| -> Vec<usize> {
            p.processors
                .iter()
                .filter_map(|p| match p {
                    Processor::Nested(n) => Some(n.processors.len()),
                    _ => None,
                })
                .collect()
        };
        // 21 remappers (22 table tags but service): two pipelines.
        assert_eq!(sizes(&pipeline(&TagRules::default())), [11, 10]);
        let extra_tags = (0..24).map(|i| (format!("t{i}"), "v".to_owned())).collect();
        let p = pipeline(&TagRules {
            extra_tags,
            ..TagRules::default()
        });
        assert_eq!(sizes(&p), [15, 15, 15]);
        assert!(p.processors.len() <= MAX_PROCESSORS);
    }

    #[test]
    fn hcl_strings_are_escaped_and_attributes_aligned() {
        assert_eq!(hcl_str(r#"a"b\c${x}%{y}$z"#), r#""a\"b\\c$${x}%%{y}$z""#);
        let mut out = String::new();
        write_hcl(
            &[Hcl::Block(
                "b".into(),
                vec![
                    Hcl::attr("name", "1".into()),
                    Hcl::attr("is_enabled", "true".into()),
                    Hcl::Blank,
                    Hcl::attr("x", "2".into()),
                ],
            )],
            0,
            &mut out,
        );
        assert_eq!(
            out,
            "b {\n  name       = 1\n  is_enabled = true\n\n  x = 2\n}\n"
        );
    }
}
