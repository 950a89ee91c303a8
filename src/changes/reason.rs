//! Reasons a person can read: what changed between the recorded spec of an
//! artifact and its spec now, field by field (`extra_sans + 10.0.0.5`).

use serde_json::Value;

/// Describes the difference between two specs, or `None` if equal.
pub fn spec_difference(old: &Value, new: &Value) -> Option<String> {
    let mut parts = Vec::new();
    compare("", old, new, &mut parts);
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn compare(path: &str, old: &Value, new: &Value, parts: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                compare(&child, a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null), parts);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.iter().chain(b).all(is_scalar) => {
            let added: Vec<String> = b.iter().filter(|v| !a.contains(v)).map(show).collect();
            let removed: Vec<String> = a.iter().filter(|v| !b.contains(v)).map(show).collect();
            let name = label(path);
            if !added.is_empty() {
                parts.push(format!("{name} + {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("{name} - {}", removed.join(", ")));
            }
            if added.is_empty() && removed.is_empty() {
                parts.push(format!("{name} reordered"));
            }
        }
        _ if path == "template_override" => {
            let template = |v: &Value| v.as_str().map_or_else(|| "embedded".to_string(), |s| format!("override {s}"));
            parts.push(format!("template {} → {}", template(old), template(new)));
        }
        _ => parts.push(format!("{} {} → {}", label(path), show_at(path, old), show_at(path, new))),
    }
}

fn label(path: &str) -> String {
    match path {
        "sans.dns" => "DNS SANs".into(),
        "sans.ip" => "IP SANs".into(),
        "subject.o" => "O".into(),
        "subject.cn" => "CN".into(),
        "eku" => "EKUs".into(),
        other => other.to_string(),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// A scalar at `path`; a duration (`validity`, `ttl`, recorded in seconds) as
/// the plan writes it.
fn show_at(path: &str, value: &Value) -> String {
    match value.as_u64() {
        Some(seconds) if is_duration(path) => crate::durations::length(std::time::Duration::from_secs(seconds)),
        _ => show(value),
    }
}

fn is_duration(path: &str) -> bool {
    matches!(path.rsplit('.').next(), Some("validity" | "ttl"))
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_added_and_removed_sans() {
        let old = json!({"sans": {"ip": ["10.0.0.1"], "dns": ["a"]}, "key": "rsa-2048"});
        let new = json!({"sans": {"ip": ["10.0.0.1", "10.0.0.5"], "dns": []}, "key": "ecdsa-p256"});
        assert_eq!(spec_difference(&old, &new).unwrap(), "key rsa-2048 → ecdsa-p256, DNS SANs - a, IP SANs + 10.0.0.5");
        assert_eq!(spec_difference(&old, &old), None);
    }

    #[test]
    fn durations_read_like_the_plan() {
        let old = json!({"validity": 31_536_000});
        let new = json!({"validity": 2_592_000});
        assert_eq!(spec_difference(&old, &new).unwrap(), "validity 8760h → 720h");
        assert_eq!(spec_difference(&json!({"ttl": 86_400}), &json!({"ttl": 5_400})).unwrap(), "ttl 24h → 90m");
    }
}
