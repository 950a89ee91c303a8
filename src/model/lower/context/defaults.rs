//! The `[defaults]` section: key algorithm, validities and the base subject
//! every certificate starts from, and how a written duration is read.

use std::time::Duration;

use toml::Spanned;

use super::Defaults;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Subject, values};
use crate::plan::{KeyAlgorithm, PlanFile};

const DEFAULT_VALIDITY: Duration = Duration::from_hours(8760);
const DEFAULT_CA_VALIDITY: Duration = Duration::from_hours(87600);

pub(super) fn resolve_defaults(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Defaults {
    let section = &plan.defaults;
    Defaults {
        key: section.key.as_ref().map_or(KeyAlgorithm::Rsa2048, |k| *k.get_ref()),
        key_span: section.key.as_ref().map(Spanned::span),
        validity: duration_or(section.validity.as_ref(), DEFAULT_VALIDITY, diagnostics),
        validity_span: section.validity.as_ref().map(Spanned::span),
        ca_validity: duration_or(section.ca_validity.as_ref(), DEFAULT_CA_VALIDITY, diagnostics),
        ca_validity_span: section.ca_validity.as_ref().map(Spanned::span),
    }
}

pub(super) fn duration_or(
    value: Option<&Spanned<String>>,
    default: Duration,
    diagnostics: &mut Diagnostics,
) -> Duration {
    let Some(value) = value else { return default };
    match values::parse_duration(value.get_ref()) {
        Ok(duration) => duration,
        Err(message) => {
            diagnostics
                .push(Diagnostic::error(RuleId::InvalidDuration, message).at(value.span()).label("not a duration"));
            default
        }
    }
}

pub(super) fn resolve_subject(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Subject {
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().trim().to_string());
    if let Some(country) = plan.defaults.subject.as_ref().and_then(|s| s.c.as_ref())
        && let Err(message) = values::check_country(country.get_ref())
    {
        diagnostics.push(
            Diagnostic::error(RuleId::InvalidCountry, message)
                .at(country.span())
                .label("not a two-letter country code")
                .hint("write the ISO 3166 code, such as `CN`, `DE` or `US`"),
        );
    }
    match &plan.defaults.subject {
        Some(s) => Subject {
            ou: text(&s.ou).into_iter().collect(),
            c: text(&s.c),
            st: text(&s.st),
            l: text(&s.l),
            ..Subject::default()
        },
        None => Subject::default(),
    }
}
