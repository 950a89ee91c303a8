//! The `[cas.NAME]` tables: each CA's subject, key and validity, with the
//! defaults applied, and where it sits in the hierarchy (`parent`): every
//! parent declared, no cycle, no rotation inside a hierarchy.

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
    let mut cas = plan
        .cas
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
                parent: ca.parent.as_ref().map(|parent| (parent.get_ref().trim().to_string(), parent.span())),
                offline: ca.offline,
                external: ca.external.as_ref().map(|e| (e.cert.get_ref().clone(), e.cert.span())),
            }
        })
        .collect::<Vec<_>>();
    check_hierarchy(&mut cas, diagnostics);
    cas
}

/// Reports a `parent` that names no CA or leads back to its own CA, and a
/// rotation of a CA that has a parent or children (rotation is staged for
/// roots that sign leaves); a `parent` reported is dropped, so what follows
/// sees a hierarchy without cycles.
fn check_hierarchy(cas: &mut [CaConfig], diagnostics: &mut Diagnostics) {
    let names: Vec<String> = cas.iter().map(|ca| ca.name.clone()).collect();
    let parent_of = |cas: &[CaConfig], name: &str| -> Option<String> {
        cas.iter().find(|ca| ca.name == name).and_then(|ca| ca.parent.as_ref().map(|(p, _)| p.clone()))
    };
    let mut dropped = Vec::new();
    // The members of a cycle already reported: one diagnostic per cycle.
    let mut in_reported_cycle: Vec<String> = Vec::new();
    for (i, ca) in cas.iter().enumerate() {
        let Some((parent, span)) = &ca.parent else { continue };
        if !names.contains(parent) {
            let known = names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
            diagnostics.push(
                Diagnostic::error(
                    RuleId::UnknownCa,
                    format!("the CA `{}` names `{parent}` as its parent, which the plan does not declare", ca.name),
                )
                .at(span.clone())
                .label("no `[cas.NAME]` with this name")
                .hint(format!("declared CAs: {known}")),
            );
            dropped.push(i);
            continue;
        }
        // Up the chain at most once per CA: coming back to this one is a cycle.
        let mut seen = vec![ca.name.clone()];
        let mut next = Some(parent.clone());
        while let Some(name) = next {
            if seen.contains(&name) && name != ca.name {
                // A cycle further up, reported for the CAs in it.
                break;
            }
            if name == ca.name {
                dropped.push(i);
                if in_reported_cycle.contains(&ca.name) {
                    break;
                }
                in_reported_cycle.extend(seen.iter().cloned());
                let path = seen.iter().chain([&name]).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" → ");
                diagnostics.push(
                    Diagnostic::error(
                        RuleId::CaParentCycle,
                        format!("the CA `{}` is its own ancestor: {path}", ca.name),
                    )
                    .at(span.clone())
                    .label("leads back to this CA")
                    .hint("a hierarchy ends in a root: a CA without `parent`"),
                );
                break;
            }
            if seen.len() > names.len() {
                break;
            }
            seen.push(name.clone());
            next = parent_of(cas, &name);
        }
    }
    for i in dropped {
        cas[i].parent = None;
    }
    check_externals(cas, diagnostics);
    check_rotations(cas, diagnostics);
}

/// An external CA only has leaves signed for it: no parent, no children,
/// nothing offline, no rotation.
fn check_externals(cas: &[CaConfig], diagnostics: &mut Diagnostics) {
    for ca in cas {
        let Some((_, span)) = &ca.external else { continue };
        let conflict = if ca.parent.is_some() {
            Some("`parent`: certplan cannot sign a CA it does not hold")
        } else if ca.offline {
            Some("`offline`: certplan holds no key of it to keep offline")
        } else if ca.rotation.is_some() {
            Some("`rotation`: a staged rotation issues a new CA, which certplan cannot do for an external one")
        } else if cas.iter().any(|other| other.parent.as_ref().is_some_and(|(p, _)| *p == ca.name)) {
            Some("intermediates under it: certplan would have to sign them with its key")
        } else {
            None
        };
        if let Some(conflict) = conflict {
            diagnostics.push(
                Diagnostic::error(RuleId::ExternalCaConflict, format!("the external CA `{}` has {conflict}", ca.name))
                    .at(span.clone())
                    .label("external here")
                    .hint("an external CA signs leaves only; describe its own parents outside certplan"),
            );
        }
    }
}

/// Staged rotation swaps one self-signed CA for another: not for a CA
/// inside a hierarchy.
fn check_rotations(cas: &[CaConfig], diagnostics: &mut Diagnostics) {
    for ca in cas {
        let Some((_, span)) = &ca.rotation else { continue };
        let has_children = cas.iter().any(|other| other.parent.as_ref().is_some_and(|(p, _)| *p == ca.name));
        if ca.parent.is_some() || has_children {
            let (what, hint) = if ca.parent.is_some() {
                (
                    "is an intermediate",
                    "issue a new intermediate under the same parent instead, and move the sets to it",
                )
            } else {
                (
                    "signs intermediates",
                    "rotate a root with intermediates by adding a new root and re-parenting them, one reviewed edit each",
                )
            };
            diagnostics.push(
                Diagnostic::error(
                    RuleId::RotationInHierarchy,
                    format!("the CA `{}` {what}: staged `rotation` is for CAs outside a hierarchy", ca.name),
                )
                .at(span.clone())
                .label("rotation here")
                .hint(hint),
            );
        }
    }
}
