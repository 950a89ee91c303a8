//! The `[[allow]]` entries: each names a warning rule and says why it does
//! not apply.

use crate::diag::{Diagnostic, Diagnostics, RuleId, Severity};
use crate::plan::PlanFile;

pub(super) fn resolve_allowed(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<RuleId> {
    plan.allow
        .iter()
        .filter_map(|entry| {
            let id = entry.rule.get_ref().trim();
            if entry.reason.get_ref().trim().is_empty() {
                diagnostics.push(
                    Diagnostic::error(RuleId::AllowNoReason, format!("allowing `{id}` needs a reason"))
                        .at(entry.reason.span())
                        .label("say why this warning does not apply"),
                );
            }
            match id.parse::<RuleId>() {
                Ok(rule) if rule.severity() == Severity::Warning => Some(rule),
                Ok(_) => {
                    diagnostics.push(
                        Diagnostic::error(
                            RuleId::AllowUnknownRule,
                            format!("`{id}` is an error, which cannot be allowed"),
                        )
                        .at(entry.rule.span())
                        .label("only warnings can be allowed"),
                    );
                    None
                }
                Err(unknown) => {
                    let warnings: Vec<String> = RuleId::ALL
                        .iter()
                        .filter(|r| r.severity() == Severity::Warning)
                        .map(ToString::to_string)
                        .collect();
                    let hint = crate::plan::nearest_word(id, &warnings).map_or_else(
                        || format!("warnings: {}", warnings.join(", ")),
                        |w| format!("did you mean `{w}`?"),
                    );
                    diagnostics.push(
                        Diagnostic::error(RuleId::AllowUnknownRule, unknown.to_string())
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
