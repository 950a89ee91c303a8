//! The `[cas.NAME]` tables: each CA's subject, key and validity, with the
//! defaults applied.

use toml::Spanned;

use super::defaults::duration_or;
use super::{CaConfig, Defaults, empty};
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Subject, values};
use crate::plan::PlanFile;

pub(super) fn resolve_cas(
    plan: &PlanFile,
    defaults: &Defaults,
    base_subject: &Subject,
    diagnostics: &mut Diagnostics,
) -> Vec<CaConfig> {
    if plan.cas.is_empty() {
        diagnostics.push(
            Diagnostic::error(RuleId::MissingCa, "the plan declares no certificate authority")
                .hint("add a `[cas.kubernetes]` table with a `cn`"),
        );
    }
    plan.cas
        .iter()
        .map(|(name, ca)| {
            if let Err(message) = values::check_dns_name(name.get_ref(), false) {
                diagnostics.push(
                    Diagnostic::error(
                        RuleId::InvalidName,
                        format!("the CA name `{}` is not usable: {message}", name.get_ref()),
                    )
                    .at(name.span()),
                );
            }
            let cn = ca.cn.get_ref().trim().to_string();
            if cn.is_empty() {
                diagnostics.push(empty("cn", ca.cn.span()));
            }
            CaConfig {
                name: name.get_ref().clone(),
                subject: Subject {
                    cn,
                    o: ca.o.iter().map(|o| o.get_ref().trim().to_string()).collect(),
                    ..base_subject.clone()
                },
                key: ca.key.as_ref().map_or(defaults.key, |k| *k.get_ref()),
                key_span: ca.key.as_ref().map(Spanned::span).or_else(|| defaults.key_span.clone()),
                validity: duration_or(ca.validity.as_ref(), defaults.ca_validity, diagnostics),
                validity_span: ca.validity.as_ref().map(Spanned::span).or_else(|| defaults.ca_validity_span.clone()),
                span: name.span(),
                rotation: ca.rotation.as_ref().map(|step| (*step.get_ref(), step.span())),
            }
        })
        .collect()
}
