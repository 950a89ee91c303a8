//! `service_cidr`: one service network, or two of different IP families for
//! a dual-stack cluster, written as `--service-cluster-ip-range` takes them
//! (`"10.96.0.0/12,fd00:10:96::/112"`) or as an array of strings.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use toml::Spanned;

/// The service networks as written, before they are checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceCidrs {
    /// One string; a comma separates the ranges of a dual-stack cluster.
    Text(String),
    /// An array of ranges, each with its own place in the plan.
    List(Vec<Spanned<String>>),
}

impl<'de> serde::Deserialize<'de> for ServiceCidrs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ServiceCidrsVisitor)
    }
}

struct ServiceCidrsVisitor;

impl<'de> Visitor<'de> for ServiceCidrsVisitor {
    type Value = ServiceCidrs;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CIDR such as \"10.96.0.0/12\", two separated by a comma, or an array of them")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
        Ok(ServiceCidrs::Text(value.to_string()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut ranges = Vec::new();
        while let Some(range) = seq.next_element::<Spanned<String>>()? {
            ranges.push(range);
        }
        Ok(ServiceCidrs::List(ranges))
    }
}

impl schemars::JsonSchema for ServiceCidrs {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "ServiceCidrs".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "array"],
            "items": { "type": "string" },
            "minItems": 1,
            "maxItems": 2
        })
    }
}
