//! The `[[allow]]` entries: each names a warning rule and says why it does
//! not apply.

use crate::diag::{Diagnostic, Diagnostics};
use crate::plan::PlanFile;

pub(super) fn resolve_allowed(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<String> {
    plan.allow
        .iter()
        .filter_map(|entry| {
            let id = entry.rule.get_ref().trim();
            if entry.reason.get_ref().trim().is_empty() {
                diagnostics.push(
                    Diagnostic::error("allow-no-reason", format!("allowing `{id}` needs a reason"))
                        .at(entry.reason.span())
                        .label("say why this warning does not apply"),
                );
            }
            match crate::diag::rule(id) {
                Some(rule) if rule.severity == crate::diag::Severity::Warning => Some(id.to_string()),
                Some(_) => {
                    diagnostics.push(
                        Diagnostic::error("allow-unknown-rule", format!("`{id}` is an error, which cannot be allowed"))
                            .at(entry.rule.span())
                            .label("only warnings can be allowed"),
                    );
                    None
                }
                None => {
                    let warnings: Vec<String> = crate::diag::RULES
                        .iter()
                        .filter(|r| r.severity == crate::diag::Severity::Warning)
                        .map(|r| r.id.to_string())
                        .collect();
                    let hint = crate::plan::nearest_word(id, &warnings).map_or_else(
                        || format!("warnings: {}", warnings.join(", ")),
                        |w| format!("did you mean `{w}`?"),
                    );
                    diagnostics.push(
                        Diagnostic::error("allow-unknown-rule", format!("`{id}` is not a rule"))
                            .at(entry.rule.span())
                            .label("no such rule")
                            .hint(hint),
                    );
                    None
                }
            }
        })
        .collect()
}
