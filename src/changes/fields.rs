//! Field-level differences between two artifact specs, read from their JSON
//! form so that a field added to the model is compared without code here.
//! The one differ of specs: `plan`'s reasons and `diff`'s field changes both
//! say what changed with it, in the same words.
//!
//! Specs are flattened into leaves named by dotted paths (`sans.ip`,
//! `subject.cn`, `vars.KUBE_APISERVER_TLS_ARGS.flags.tls-cert-file`): lists
//! of `[name, value]` pairs and lists of objects with a `name` become maps,
//! lists of scalars are compared as sets (what was added and removed).

use serde::Serialize;
use serde_json::Value;

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FieldChange {
    /// Its dotted path in the spec (`sans.dns`, `validity`, `files`).
    pub field: String,
    /// The old value (`null` when the field is new).
    pub old: Value,
    /// The new value (`null` when the field is gone).
    pub new: Value,
    /// For lists: the elements only the new value has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<Vec<Value>>,
    /// For lists: the elements only the old value has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<Vec<Value>>,
}

impl FieldChange {
    /// A change of a list of scalars, with what was added and removed.
    #[must_use]
    pub fn list(field: &str, old: &[Value], new: &[Value]) -> Self {
        Self {
            field: field.to_string(),
            old: Value::Array(old.to_vec()),
            new: Value::Array(new.to_vec()),
            added: Some(new.iter().filter(|v| !old.contains(v)).cloned().collect()),
            removed: Some(old.iter().filter(|v| !new.contains(v)).cloned().collect()),
        }
    }
}

/// The fields that differ between two specs, in the order the new spec
/// lists them (fields only the old one has come last).
#[must_use]
pub fn field_changes(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut old_leaves = Vec::new();
    let mut new_leaves = Vec::new();
    flatten("", old, &mut old_leaves);
    flatten("", new, &mut new_leaves);
    let mut changes = Vec::new();
    for (path, new_value) in &new_leaves {
        let old_value = old_leaves.iter().find(|(p, _)| p == path).map(|(_, v)| v);
        if old_value != Some(new_value) {
            changes.push(change(path, old_value, Some(new_value)));
        }
    }
    for (path, old_value) in &old_leaves {
        if !new_leaves.iter().any(|(p, _)| p == path) {
            changes.push(change(path, Some(old_value), None));
        }
    }
    changes
}

fn change(path: &str, old: Option<&Value>, new: Option<&Value>) -> FieldChange {
    let as_list = |v: Option<&Value>| match v {
        Some(Value::Array(items)) => Some(items.clone()),
        None => Some(Vec::new()),
        Some(_) => None,
    };
    match (as_list(old), as_list(new)) {
        (Some(a), Some(b)) => FieldChange::list(path, &a, &b),
        _ => FieldChange {
            field: path.to_string(),
            old: old.cloned().unwrap_or(Value::Null),
            new: new.cloned().unwrap_or(Value::Null),
            added: None,
            removed: None,
        },
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}.{key}") }
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                flatten(&join(prefix, key), child, out);
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_pair) => {
            for item in items {
                if let Some([Value::String(key), child]) = item.as_array().map(Vec::as_slice) {
                    flatten(&join(prefix, key), child, out);
                }
            }
        }
        Value::Array(items) if !items.is_empty() && items.iter().all(is_named) => {
            for item in items {
                let Some(map) = item.as_object() else { continue };
                let name = map.get("name").and_then(Value::as_str).unwrap_or_default();
                let mut rest = map.clone();
                rest.remove("name");
                flatten(&join(prefix, name), &Value::Object(rest), out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn is_pair(value: &Value) -> bool {
    matches!(value.as_array().map(Vec::as_slice), Some([Value::String(_), _]))
}

fn is_named(value: &Value) -> bool {
    value.get("name").is_some_and(Value::is_string)
}

/// A short name of a field for people: `IP SANs`, `CN`, `--tls-cert-file`.
#[must_use]
pub fn label(field: &str) -> String {
    if let Some(flag) = field.split_once(".flags.").map(|(_, flag)| flag) {
        return format!("--{flag}");
    }
    match field {
        "sans.dns" => "DNS SANs".into(),
        "sans.ip" => "IP SANs".into(),
        "subject.cn" => "CN".into(),
        "subject.o" => "O (groups)".into(),
        "subject.ou" => "OU".into(),
        "subject.c" => "C".into(),
        "subject.st" => "ST".into(),
        "subject.l" => "L".into(),
        "eku" => "EKUs".into(),
        "key" => "key algorithm".into(),
        "template_override" => "template".into(),
        other => other.to_string(),
    }
}

/// A value for people: strings bare, durations (`validity`, `ttl`) as the
/// plan writes them.
#[must_use]
pub fn show(field: &str, value: &Value) -> String {
    if field == "template_override" {
        return value.as_str().map_or_else(|| "embedded".to_string(), |stamp| format!("override {stamp}"));
    }
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        Value::Number(n) if is_duration(field) => {
            n.as_u64().map_or_else(|| n.to_string(), |s| crate::durations::length(std::time::Duration::from_secs(s)))
        }
        Value::Array(items) => {
            let shown: Vec<String> = items.iter().map(|v| show("", v)).collect();
            format!("[{}]", shown.join(", "))
        }
        other => other.to_string(),
    }
}

fn is_duration(field: &str) -> bool {
    matches!(field.rsplit('.').next(), Some("validity" | "ttl"))
}

/// The change of one field as a line for people:
/// `IP SANs + 10.0.0.5, - 10.0.0.4` or `validity 8760h → 720h`.
#[must_use]
pub fn describe(change: &FieldChange) -> String {
    let name = label(&change.field);
    match (&change.added, &change.removed) {
        (Some(added), Some(removed)) => {
            let mut parts = Vec::new();
            if !added.is_empty() {
                let shown: Vec<String> = added.iter().map(|v| show(&change.field, v)).collect();
                parts.push(format!("+ {}", shown.join(", ")));
            }
            if !removed.is_empty() {
                let shown: Vec<String> = removed.iter().map(|v| show(&change.field, v)).collect();
                parts.push(format!("- {}", shown.join(", ")));
            }
            if parts.is_empty() {
                parts.push("reordered".into());
            }
            format!("{name} {}", parts.join(", "))
        }
        _ => format!("{name} {} → {}", show(&change.field, &change.old), show(&change.field, &change.new)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_become_added_and_removed() {
        let old = json!({"sans": {"ip": ["10.0.0.1"], "dns": ["a"]}, "key": "rsa-2048"});
        let new = json!({"sans": {"ip": ["10.0.0.1", "10.0.0.5"], "dns": []}, "key": "ecdsa-p256"});
        let changes = field_changes(&old, &new);
        // Field order follows serde_json's map order, which a dependency's
        // `preserve_order` feature can change; compare as a set.
        let mut text: Vec<String> = changes.iter().map(describe).collect();
        text.sort();
        assert_eq!(text, ["DNS SANs - a", "IP SANs + 10.0.0.5", "key algorithm rsa-2048 → ecdsa-p256"]);
        assert!(field_changes(&old, &old).is_empty());
    }

    #[test]
    fn flags_are_compared_by_name() {
        let old = json!({"vars": [{"name": "A", "flags": [["cert-file", "/x.pem"], ["port", "1"]]}]});
        let new = json!({"vars": [{"name": "A", "flags": [["cert-file", "/y.pem"], ["port", "1"]]}]});
        let changes = field_changes(&old, &new);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "vars.A.flags.cert-file");
        assert_eq!(describe(&changes[0]), "--cert-file /x.pem → /y.pem");
    }

    #[test]
    fn durations_read_in_hours() {
        let changes = field_changes(&json!({"validity": 31_536_000}), &json!({"validity": 2_592_000}));
        assert_eq!(describe(&changes[0]), "validity 8760h → 720h");
    }
}
