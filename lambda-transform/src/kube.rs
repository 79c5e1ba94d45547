//! The `kubernetes` map written by Fluent Bit's kubernetes filter and by our sidecar.
//!
//! Parsed leniently and without copying: a field of the wrong type is treated as absent, so a
//! malformed map costs tags, never the event.

use std::borrow::Cow;
use std::fmt;

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
    /// The field's key in the `kubernetes` map.
    pub fn from_name(name: &str) -> Option<KubeField> {
        Some(match name {
            "namespace_name" => KubeField::NamespaceName,
            "pod_name" => KubeField::PodName,
            "pod_id" => KubeField::PodId,
            "container_name" => KubeField::ContainerName,
            "docker_id" => KubeField::DockerId,
            "host" => KubeField::Host,
            "container_image" => KubeField::ContainerImage,
            "container_hash" => KubeField::ContainerHash,
            _ => return None,
        })
    }
}

/// Pod metadata of one event. Strings borrow from the record where they contain no escapes.
#[derive(Debug, Default, Deserialize)]
pub struct KubeMeta<'a> {
    #[serde(borrow, default)]
    pub namespace_name: Text<'a>,
    #[serde(borrow, default)]
    pub pod_name: Text<'a>,
    #[serde(borrow, default)]
    pub pod_id: Text<'a>,
    #[serde(borrow, default)]
    pub container_name: Text<'a>,
    #[serde(borrow, default)]
    pub docker_id: Text<'a>,
    #[serde(borrow, default)]
    pub host: Text<'a>,
    #[serde(borrow, default)]
    pub container_image: Text<'a>,
    #[serde(borrow, default)]
    pub container_hash: Text<'a>,
    #[serde(borrow, default)]
    pub labels: Pairs<'a>,
    #[serde(borrow, default)]
    pub annotations: Pairs<'a>,
    /// Fluent Bit's `Owner_References On` and our sidecar's pod lookup.
    #[serde(borrow, default, alias = "ownerReferences")]
    pub owner_references: Owners<'a>,
}

impl<'a> KubeMeta<'a> {
    /// Parses a raw `kubernetes` value; anything that is not an object yields empty metadata.
    pub fn parse(raw: &'a str) -> KubeMeta<'a> {
        serde_json::from_str(raw).unwrap_or_default()
    }

    /// The value of a scalar field.
    pub fn field(&self, field: KubeField) -> Option<&str> {
        match field {
            KubeField::NamespaceName => self.namespace_name.get(),
            KubeField::PodName => self.pod_name.get(),
            KubeField::PodId => self.pod_id.get(),
            KubeField::ContainerName => self.container_name.get(),
            KubeField::DockerId => self.docker_id.get(),
            KubeField::Host => self.host.get(),
            KubeField::ContainerImage => self.container_image.get(),
            KubeField::ContainerHash => self.container_hash.get(),
        }
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key)
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
#[derive(Debug, Default, Deserialize)]
pub struct Owner<'a> {
    #[serde(borrow, default)]
    pub kind: Text<'a>,
    #[serde(borrow, default)]
    pub name: Text<'a>,
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
        assert!(matches!(m.pod_name.0, Some(Cow::Borrowed(_))));
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
        assert!(KubeMeta::parse("not json").pod_name.get().is_none());
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let m = KubeMeta::parse(
            r#"{"pod_name":"a\"b","ownerReferences":[{"kind":"ReplicaSet","name":"rs-1"}]}"#,
        );
        assert_eq!(m.field(KubeField::PodName), Some("a\"b"));
        assert_eq!(m.owner_references.0[0].name.get(), Some("rs-1"));
    }
}
