//! The plan as written: serde types that mirror the TOML file, with the spans
//! of every value kept so later stages can point back into the source.
//!
//! [`parse_plan`] turns text into a [`PlanFile`]. It checks only what serde
//! and TOML check (syntax, unknown keys, types, enum values); meaning is the
//! business of `model::lower_plan` and `check`.

mod schema;
mod service_cidrs;
mod suggest;

pub use schema::*;
pub use service_cidrs::ServiceCidrs;
pub use suggest::nearest as nearest_word;

use crate::diag::{Diagnostic, RuleId};

/// Parses a plan. A TOML or shape error becomes one diagnostic pointing at
/// the offending text, with the nearest valid key suggested for unknown keys.
pub fn parse_plan(source: &str) -> Result<PlanFile, Box<Diagnostic>> {
    toml::from_str::<PlanFile>(source).map_err(|error| {
        let message = error.message().trim().to_string();
        let (rule, hint) = classify(&message);
        let first_line = message.lines().next().unwrap_or_default().to_string();
        Box::new(Diagnostic::error(rule, first_line).at_opt(error.span()).label(label_for(rule)).hint_opt(hint))
    })
}

fn classify(message: &str) -> (RuleId, Option<String>) {
    if let Some((unknown, expected)) = suggest::parse_unknown(message) {
        let rule = if message.starts_with("unknown variant") { RuleId::UnknownValue } else { RuleId::UnknownKey };
        let hint = match suggest::nearest(&unknown, &expected) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!("expected one of {}", expected.join(", ")),
        };
        return (rule, Some(hint));
    }
    if message.starts_with("missing field") {
        return (RuleId::MissingKey, None);
    }
    if message.starts_with("invalid type") {
        return (RuleId::WrongType, None);
    }
    if message.starts_with("duplicate key") {
        return (RuleId::DuplicateKey, None);
    }
    (RuleId::TomlSyntax, None)
}

fn label_for(rule: RuleId) -> &'static str {
    match rule {
        RuleId::UnknownKey => "not a key certplan knows here",
        RuleId::UnknownValue => "not a value certplan knows here",
        RuleId::MissingKey => "a required key is missing in this table",
        RuleId::WrongType => "wrong type",
        RuleId::DuplicateKey => "defined twice",
        _ => "here",
    }
}

impl Diagnostic {
    /// Adds a hint when there is one.
    #[must_use]
    pub fn hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}
