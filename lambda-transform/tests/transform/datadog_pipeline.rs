//! The Datadog log pipeline against the transform that feeds it: every attribute it reads is
//! in the logs the real renderer writes, every tag in `ddtags` has a remapper (or a stated
//! reason), and the committed `lambda-transform/datadog/pipeline.{json,tf}` are what the
//! generator writes for the default rules. Regenerate them with
//! `FIRETAIL_BLESS=1 cargo test -p firetail-transform --test transform datadog_pipeline`.

use std::path::Path;

use firetail_transform::Config;
use firetail_transform::render::{EventContext, Renderer};
use firetail_transform::tags::datadog_pipeline::{Pipeline, Processor, pipeline};
use firetail_transform::tags::{TABLE, TagMapping, TagRules};
use serde_json::{Value, json};

/// A sidecar event whose `kubernetes` map gives every built-in tag a value, and the labels the
/// user rules below read.
fn event() -> Vec<u8> {
    let mut labels = serde_json::Map::new();
    labels.insert("pod-template-hash".into(), "7d4b9c8f6d".into());
    labels.insert("team".into(), "payments".into());
    for def in &TABLE {
        if let firetail_transform::tags::Origin::Label(key) = def.origin {
            labels.insert(key.into(), format!("{}-v", def.name).into());
        }
    }
    json!({
        "time": "2026-11-22T10:00:00.123Z",
        "stream": "stdout",
        "log": "{\"level\":\"warn\",\"msg\":\"disk almost full\"}",
        "kubernetes": {
            "namespace_name": "shop",
            "pod_name": "web-7d4b9c8f6d-x2x9k",
            "container_name": "app",
            "docker_id": "d0cker",
            "host": "fargate-ip-10-0-1-2.ec2.internal",
            "container_image": "registry.example/team/web:1.4.2",
            "labels": labels,
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-7d4b9c8f6d"},
                {"kind": "StatefulSet", "name": "db"},
                {"kind": "DaemonSet", "name": "agent"},
                {"kind": "Job", "name": "nightly-29012345"}
            ]
        }
    })
    .to_string()
    .into_bytes()
}

fn render(rules: &TagRules) -> Value {
    let config = Config {
        tags: rules.clone(),
        ..Config::default()
    };
    let mut out = Vec::new();
    Renderer::new(&config).render(
        &event(),
        EventContext {
            default_time_ms: 0,
            cloudwatch: None,
            header: None,
        },
        &mut out,
    );
    serde_json::from_slice(&out).unwrap()
}

/// (attribute, tag) of every attribute remapper, nested pipelines included.
fn remappers(p: &Pipeline) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack: Vec<&Processor> = p.processors.iter().rev().collect();
    while let Some(proc) = stack.pop() {
        match proc {
            Processor::Attribute(a) => out.push((a.sources[0].clone(), a.target.clone())),
            Processor::Nested(n) => stack.extend(n.processors.iter().rev()),
            _ => {}
        }
    }
    out
}

fn user_rules() -> TagRules {
    TagRules {
        tag_map: TagMapping::parse_overrides(
            "kubernetes.docker_id=,kubernetes.pod_name=pod,kubernetes.labels.team=team,\
             kubernetes.host=host",
        )
        .unwrap(),
        extra_tags: vec![("cluster".into(), "prod-eu".into())],
    }
}

#[test]
fn every_attribute_the_pipeline_reads_is_in_the_rendered_log() {
    for rules in [TagRules::default(), user_rules()] {
        let log = render(&rules);
        let p = pipeline(&rules);
        let ddtags: Vec<(String, String)> = log["ddtags"]
            .as_str()
            .unwrap()
            .split(',')
            .map(|t| {
                let (k, v) = t.split_once(':').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        let remapped = remappers(&p);
        for (attribute, tag) in &remapped {
            let value = log[attribute.as_str()].as_str();
            assert!(
                value.is_some(),
                "the pipeline reads @{attribute}, the log has none: {log}"
            );
            if attribute != "ddsource" {
                assert_eq!(attribute, tag);
                let in_ddtags = ddtags
                    .iter()
                    .find(|(k, _)| k == attribute)
                    .map(|(_, v)| v.as_str());
                assert_eq!(value, in_ddtags, "@{attribute} and ddtags disagree");
            }
        }
        // Every tag of the log reaches Datadog: remapped, or accounted for.
        for (key, _) in &ddtags {
            let covered =
                remapped.iter().any(|(a, _)| a == key) || p.unmapped.iter().any(|u| &u.tag == key);
            assert!(
                covered,
                "tag {key} of the log has no remapper and no reason"
            );
        }
        // The dedicated remappers' attributes.
        for key in ["service", "status", "timestamp", "ddsource"] {
            assert!(!log[key].is_null(), "the log has no {key}: {log}");
        }
        assert_eq!(log["status"], "warn");
        assert!(log["timestamp"].is_i64());
        // The pipeline's filter matches what every log carries.
        let marker = format!(
            "@{}:{}",
            firetail_wire::output::MARKER_KEY,
            log[firetail_wire::output::MARKER_KEY]
        );
        assert_eq!(p.filter.query, marker);
    }
}

#[test]
fn user_rules_are_remapped_as_the_transform_applies_them() {
    let got = remappers(&pipeline(&user_rules()));
    let tags: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
    for wanted in [
        "pod",
        "team",
        "cluster",
        "kube_namespace",
        "kube_deployment",
    ] {
        assert!(tags.contains(&wanted), "{wanted} missing from {tags:?}");
    }
    for gone in ["pod_name", "container_id", "host"] {
        assert!(
            !tags.contains(&gone),
            "{gone} should not be remapped: {tags:?}"
        );
    }
}

#[test]
fn committed_pipeline_files_are_generated_from_the_tag_table() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datadog");
    let p = pipeline(&TagRules::default());
    let bless = std::env::var_os("FIRETAIL_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, text) in [
        ("pipeline.json", p.to_api_json()),
        ("pipeline.tf", p.to_terraform()),
    ] {
        let path = dir.join(name);
        if bless {
            std::fs::write(&path, &text).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "lambda-transform/datadog/{stale:?} differ from the generator's output; regenerate with \
         FIRETAIL_BLESS=1 cargo test -p firetail-transform --test transform datadog_pipeline"
    );
}
