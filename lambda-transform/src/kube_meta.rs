//! The `kubernetes` map of an event, as the sidecar and Fluent Bit's kubernetes filter write
//! it (field names from `firetail_wire::kube`).
//!
//! Parsed leniently and without copying: a field of the wrong type is treated as absent, so a
//! malformed map costs tags, never the event.

use std::borrow::Cow;
use std::fmt;

use firetail_wire::kube as names;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The scalar fields of the map that a tag can be taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeField {
    NamespaceName,
    PodName,
    PodId,
    ContainerName,
    DockerId,
    Host,
    ContainerImage,
    ContainerHash,
}

impl KubeField {
    /// Every scalar field.
    pub const ALL: [KubeField; 8] = [
        KubeField::NamespaceName,
        KubeField::PodName,
        KubeField::PodId,
        KubeField::ContainerName,
        KubeField::DockerId,
        KubeField::Host,
        KubeField::ContainerImage,
        KubeField::ContainerHash,
    ];

    /// The field's key in the `kubernetes` map.
    pub fn name(self) -> &'static str {
        match self {
            KubeField::NamespaceName => names::NAMESPACE_NAME,
            KubeField::PodName => names::POD_NAME,
            KubeField::PodId => names::POD_ID,
            KubeField::ContainerName => names::CONTAINER_NAME,
            KubeField::DockerId => names::DOCKER_ID,
            KubeField::Host => names::HOST,
            KubeField::ContainerImage => names::CONTAINER_IMAGE,
            KubeField::ContainerHash => names::CONTAINER_HASH,
        }
    }

    /// The field named `name`.
    pub fn from_name(name: &str) -> Option<KubeField> {
        KubeField::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// Pod metadata of one event. Strings borrow from the record where they contain no escapes.
#[derive(Debug, Default)]
pub struct KubeMeta<'a> {
    /// The scalar fields, in [`KubeField::ALL`] order.
    fields: [Text<'a>; 8],
    pub labels: Pairs<'a>,
    pub annotations: Pairs<'a>,
    /// Fluent Bit's `Owner_References On` and the sidecar's pod lookup.
    pub owner_references: Owners<'a>,
}

impl<'a> KubeMeta<'a> {
    /// Parses a raw `kubernetes` value; anything that is not an object yields empty metadata.
    pub fn parse(raw: &'a str) -> KubeMeta<'a> {
        serde_json::from_str(raw).unwrap_or_default()
    }

    /// The value of a scalar field.
    pub fn field(&self, field: KubeField) -> Option<&str> {
        self.fields[field as usize].get()
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for KubeMeta<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KubeMeta<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a kubernetes object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut meta = KubeMeta::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let key = key.0.unwrap_or_default();
                    match key.as_ref() {
                        names::LABELS => meta.labels = map.next_value()?,
                        names::ANNOTATIONS => meta.annotations = map.next_value()?,
                        names::OWNER_REFERENCES | names::OWNER_REFERENCES_SNAKE => {
                            meta.owner_references = map.next_value()?;
                        }
                        other => match KubeField::from_name(other) {
                            Some(field) => meta.fields[field as usize] = map.next_value()?,
                            None => {
                                map.next_value::<IgnoredAny>()?;
                            }
                        },
                    }
                }
                Ok(meta)
            }
        }
        d.deserialize_map(V)
    }
}

/// A string-ish JSON value: strings, numbers and booleans are text; anything else is absent.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Text<'a>(pub Option<Cow<'a, str>>);

impl Text<'_> {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref().filter(|s| !s.is_empty())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Borrowed(v))))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_owned()))))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v))))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Some(Cow::Owned(v.to_string()))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Text(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Text(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string map (labels, annotations) kept in input order; non-string values are skipped.
#[derive(Debug, Default)]
pub struct Pairs<'a>(pub Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl Pairs<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Pairs<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<Text<'de>, Text<'de>>()? {
                    if let (Some(k), Some(v)) = (k.0, v.0) {
                        pairs.push((k, v));
                    }
                }
                Ok(Pairs(pairs))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Pairs::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Pairs::default())
            }
        }
        d.deserialize_any(V)
    }
}

/// One owner reference (`kind`, `name`).
#[derive(Debug, Default)]
pub struct Owner<'a> {
    pub kind: Text<'a>,
    pub name: Text<'a>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Owner<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Owner<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an owner reference")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut owner = Owner::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match key.0.as_deref() {
                        Some(names::OWNER_KIND) => owner.kind = map.next_value()?,
                        Some(names::OWNER_NAME) => owner.name = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(owner)
            }
        }
        d.deserialize_any(V)
    }
}

/// Owner references; a value of the wrong shape is treated as none.
#[derive(Debug, Default)]
pub struct Owners<'a>(pub Vec<Owner<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Owners<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape<'a> {
            List(#[serde(borrow)] Vec<Owner<'a>>),
            Other(IgnoredAny),
        }
        Ok(match Shape::deserialize(d)? {
            Shape::List(v) => Owners(v),
            Shape::Other(_) => Owners::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fluent_bit_shape_without_copying() {
        let raw = r#"{"pod_name":"web-7d4b9c8f6d-x2x9k","namespace_name":"shop","pod_id":"1b2c",
            "labels":{"app":"web","pod-template-hash":"7d4b9c8f6d","n":3},"annotations":{},
            "host":"fargate-ip-10-0-1-2","container_name":"app","docker_id":"abc",
            "container_image":"public.ecr.aws/nginx/nginx:1.27"}"#;
        let m = KubeMeta::parse(raw);
        assert_eq!(m.field(KubeField::PodName), Some("web-7d4b9c8f6d-x2x9k"));
        assert!(matches!(
            m.fields[KubeField::PodName as usize].0,
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(m.label("pod-template-hash"), Some("7d4b9c8f6d"));
        assert_eq!(m.label("n"), Some("3"));
        assert_eq!(m.field(KubeField::DockerId), Some("abc"));
    }

    #[test]
    fn wrong_types_become_absent_not_errors() {
        let m = KubeMeta::parse(
            r#"{"pod_name":{"x":1},"labels":[1,2],"owner_references":"no","namespace_name":null,"host":""}"#,
        );
        assert_eq!(m.field(KubeField::PodName), None);
        assert_eq!(m.field(KubeField::NamespaceName), None);
        assert_eq!(m.field(KubeField::Host), None);
        assert!(m.labels.0.is_empty());
        assert!(m.owner_references.0.is_empty());
        assert!(KubeMeta::parse("[1]").labels.0.is_empty());
        assert!(
            KubeMeta::parse("not json")
                .field(KubeField::PodName)
                .is_none()
        );
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let m = KubeMeta::parse(
            r#"{"pod_name":"a\"b","ownerReferences":[{"kind":"ReplicaSet","name":"rs-1"}]}"#,
        );
        assert_eq!(m.field(KubeField::PodName), Some("a\"b"));
        assert_eq!(m.owner_references.0[0].name.get(), Some("rs-1"));
        let snake = KubeMeta::parse(r#"{"owner_references":[{"kind":"Job","name":"j"}]}"#);
        assert_eq!(snake.owner_references.0[0].kind.get(), Some("Job"));
    }

    #[test]
    fn reads_every_field_the_sidecar_writes() {
        use firetail_wire::kube::{KubeObject, OwnerRef};
        let labels = std::collections::BTreeMap::from([("app".to_owned(), "web".to_owned())]);
        let annotations = std::collections::BTreeMap::from([("a".to_owned(), "b".to_owned())]);
        let owners = [OwnerRef {
            kind: "ReplicaSet".into(),
            name: "web-1".into(),
            controller: Some(true),
        }];
        let json = KubeObject {
            namespace_name: Some("ns"),
            pod_name: Some("pod"),
            pod_id: Some("uid"),
            container_name: Some("app"),
            docker_id: Some("d0"),
            host: Some("node"),
            container_image: Some("img:1"),
            labels: Some(&labels),
            annotations: Some(&annotations),
            owner_references: &owners,
        }
        .to_json();
        let text = String::from_utf8(json).unwrap_or_default();
        let m = KubeMeta::parse(&text);
        let got: Vec<Option<&str>> = [
            KubeField::NamespaceName,
            KubeField::PodName,
            KubeField::PodId,
            KubeField::ContainerName,
            KubeField::DockerId,
            KubeField::Host,
            KubeField::ContainerImage,
        ]
        .into_iter()
        .map(|f| m.field(f))
        .collect();
        assert_eq!(
            got,
            vec![
                Some("ns"),
                Some("pod"),
                Some("uid"),
                Some("app"),
                Some("d0"),
                Some("node"),
                Some("img:1")
            ]
        );
        assert_eq!(m.label("app"), Some("web"));
        assert_eq!(m.annotation("a"), Some("b"));
        assert_eq!(m.owner_references.0[0].kind.get(), Some("ReplicaSet"));
    }
}
