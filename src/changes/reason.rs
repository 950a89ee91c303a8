//! Reasons a person can read: what changed between the recorded spec of an
//! artifact and its spec now, field by field (`DNS SANs + api.example.com`),
//! in the words `diff` uses ([`super::fields`]), fields in a fixed order.

use serde_json::Value;

use super::fields::{describe, field_changes};

/// Describes the difference between two specs, or `None` if equal.
#[must_use]
pub fn spec_difference(old: &Value, new: &Value) -> Option<String> {
    let mut changes = field_changes(old, new);
    // The order of a spec's fields in JSON may follow serde_json's map order
    // (sorted, or as declared with `preserve_order`): sort, so a reason reads
    // the same from every build.
    changes.sort_by(|a, b| a.field.cmp(&b.field));
    (!changes.is_empty()).then(|| changes.iter().map(describe).collect::<Vec<_>>().join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_added_and_removed_sans() {
        let old = json!({"sans": {"ip": ["10.0.0.1"], "dns": ["a"]}, "key": "rsa-2048"});
        let new = json!({"sans": {"ip": ["10.0.0.1", "10.0.0.5"], "dns": []}, "key": "ecdsa-p256"});
        assert_eq!(
            spec_difference(&old, &new).unwrap(),
            "key algorithm rsa-2048 → ecdsa-p256, DNS SANs - a, IP SANs + 10.0.0.5"
        );
        assert_eq!(spec_difference(&old, &old), None);
    }

    #[test]
    fn durations_read_like_the_plan() {
        let old = json!({"validity": 31_536_000});
        let new = json!({"validity": 2_592_000});
        assert_eq!(spec_difference(&old, &new).unwrap(), "validity 8760h → 720h");
        assert_eq!(spec_difference(&json!({"ttl": 86_400}), &json!({"ttl": 5_400})).unwrap(), "ttl 24h → 90m");
    }

    #[test]
    fn flags_are_named_and_templates_said_plainly() {
        let old = json!({"vars": [{"name": "A", "flags": [["service-cluster-ip-range", "10.96.0.0/12"]]}], "template_override": null});
        let new = json!({"vars": [{"name": "A", "flags": [["service-cluster-ip-range", "10.112.0.0/12"]]}], "template_override": "flags.env sha256:10ea"});
        assert_eq!(
            spec_difference(&old, &new).unwrap(),
            "template embedded → override flags.env sha256:10ea, --service-cluster-ip-range 10.96.0.0/12 → 10.112.0.0/12"
        );
    }
}
