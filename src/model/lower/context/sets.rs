//! The `[sets.NAME]` tables: the CA each set is signed by (chosen or
//! conventional), its key, validity and SANs.

use std::collections::BTreeMap;

use toml::Spanned;

use super::defaults::duration_or;
use super::{CaConfig, Defaults, SetConfig};
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::CertSet;
use crate::model::values::{self, SanError, SanValue};
use crate::plan::{PlanFile, SetSection};

fn set_section(plan: &PlanFile, set: CertSet) -> Option<&Spanned<SetSection>> {
    let sets = &plan.sets;
    match set {
        CertSet::EtcdServer => sets.etcd_server.as_ref(),
        CertSet::EtcdPeer => sets.etcd_peer.as_ref(),
        CertSet::EtcdClient => sets.etcd_client.as_ref(),
        CertSet::Apiserver => sets.apiserver.as_ref(),
        CertSet::ApiserverClient => sets.apiserver_client.as_ref(),
        CertSet::ServiceAccount => sets.service_account.as_ref(),
        CertSet::KubeletServer => sets.kubelet_server.as_ref(),
        CertSet::KubeletClient => sets.kubelet_client.as_ref(),
        CertSet::FrontProxy => sets.front_proxy.as_ref(),
    }
}

pub(super) fn resolve_sets(
    plan: &PlanFile,
    cas: &[CaConfig],
    defaults: &Defaults,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<CertSet, SetConfig> {
    CertSet::iter()
        .map(|set| {
            let section = set_section(plan, set);
            let config = section.map(toml::Spanned::get_ref);
            let ca_choice = config.and_then(|c| c.ca.as_ref());
            let ca = if set.is_key_pair() {
                if let Some(ca) = ca_choice {
                    diagnostics.push(
                        Diagnostic::error(
                            RuleId::SetWithoutCa,
                            "the service-account set is a key pair; no CA signs it",
                        )
                        .at(ca.span())
                        .label("remove this `ca`"),
                    );
                }
                None
            } else {
                resolve_set_ca(set, ca_choice, cas, diagnostics)
            };
            let extra_sans = config.map(|c| resolve_sans(&c.extra_sans, set, diagnostics)).unwrap_or_default();
            let validity = duration_or(config.and_then(|c| c.validity.as_ref()), defaults.validity, diagnostics);
            let key = config.and_then(|c| c.key.as_ref()).map_or(defaults.key, |k| *k.get_ref());
            let key_span = config.and_then(|c| c.key.as_ref()).map(Spanned::span).or_else(|| defaults.key_span.clone());
            let sans_override = config.and_then(|c| c.sans.as_ref()).and_then(|sans| {
                if set != CertSet::Apiserver {
                    diagnostics.push(
                        Diagnostic::error(
                            RuleId::SansOverrideUnsupported,
                            format!("only the `apiserver` set takes a complete `sans` list, not `{set}`"),
                        )
                        .at(sans.span())
                        .hint("use `extra_sans` to add names to the derived ones"),
                    );
                    return None;
                }
                Some((parse_sans(sans.get_ref(), diagnostics), sans.span()))
            });
            let rotation = config.and_then(|c| c.rotation.as_ref()).and_then(|step| {
                if set != CertSet::ServiceAccount {
                    diagnostics.push(
                        Diagnostic::error(
                            RuleId::RotationUnsupported,
                            format!("`{set}` is a set of certificates, which rotate with the CA that signs them"),
                        )
                        .at(step.span())
                        .label("only `[sets.service-account]` takes a rotation")
                        .hint("rotate the set's CA instead: `rotation` in its `[cas.NAME]` table"),
                    );
                    return None;
                }
                Some((*step.get_ref(), step.span()))
            });
            let set_config = SetConfig {
                rotation,
                ca,
                ca_span: ca_choice.map(Spanned::span),
                extra_sans,
                sans_override,
                key_span,
                key,
                validity,
                validity_span: config
                    .and_then(|c| c.validity.as_ref())
                    .map(Spanned::span)
                    .or_else(|| defaults.validity_span.clone()),
                span: section.map(Spanned::span),
            };
            (set, set_config)
        })
        .collect()
}

fn resolve_set_ca(
    set: CertSet,
    choice: Option<&Spanned<String>>,
    cas: &[CaConfig],
    diagnostics: &mut Diagnostics,
) -> Option<String> {
    if let Some(choice) = choice {
        let name = choice.get_ref();
        if cas.iter().any(|ca| &ca.name == name) {
            return Some(name.clone());
        }
        let known = cas.iter().map(|ca| format!("`{}`", ca.name)).collect::<Vec<_>>().join(", ");
        diagnostics.push(
            Diagnostic::error(
                RuleId::UnknownCa,
                format!("the set `{set}` names the CA `{name}`, which the plan does not declare"),
            )
            .at(choice.span())
            .label("no `[cas.NAME]` with this name")
            .hint(format!("declared CAs: {known}")),
        );
        return None;
    }
    if let [only] = cas {
        return Some(only.name.clone());
    }
    let conventional = set.conventional_ca();
    let preferred = cas
        .iter()
        .find(|ca| Some(ca.name.as_str()) == conventional)
        .or_else(|| cas.iter().find(|ca| ca.name == "kubernetes"));
    if let Some(ca) = preferred {
        return Some(ca.name.clone());
    }
    if !cas.is_empty() {
        diagnostics.push(
            Diagnostic::error(
                RuleId::SetCaAmbiguous,
                format!("the set `{set}` has no `ca` and the plan declares several CAs"),
            )
            .hint(format!("add `[sets.{set}]` with `ca = \"NAME\"`")),
        );
    }
    None
}

fn resolve_sans(sans: &[Spanned<String>], set: CertSet, diagnostics: &mut Diagnostics) -> Vec<SanValue> {
    if !sans.is_empty() && !set.is_serving() {
        let serving: Vec<&str> = CertSet::iter().filter(|s| s.is_serving()).map(CertSet::as_str).collect();
        diagnostics.push(
            Diagnostic::error(
                RuleId::SansOnClientSet,
                format!("the set `{set}` holds client certificates, which take no SANs"),
            )
            .at(sans[0].span())
            .hint(format!("extra SANs belong to serving sets: {}", serving.join(", "))),
        );
        return Vec::new();
    }
    parse_sans(sans, diagnostics)
}

/// Parses a SAN list, reporting CIDRs and invalid names.
pub fn parse_sans(sans: &[Spanned<String>], diagnostics: &mut Diagnostics) -> Vec<SanValue> {
    sans.iter()
        .filter_map(|san| match values::parse_san(san.get_ref()) {
            Ok(value) => Some(value),
            Err(SanError::Cidr) => {
                diagnostics.push(
                    Diagnostic::error(
                        RuleId::SanCidr,
                        format!("`{}` is a network (CIDR), which is neither an IP nor a DNS SAN", san.get_ref()),
                    )
                    .at(san.span())
                    .label("a CIDR cannot be a SAN")
                    .hint("write the single address the server answers on, without the prefix length"),
                );
                None
            }
            Err(SanError::Invalid(reason)) => {
                diagnostics.push(
                    Diagnostic::error(
                        RuleId::SanInvalid,
                        format!("`{}` is neither an IP address nor a DNS name: {reason}", san.get_ref()),
                    )
                    .at(san.span())
                    .label("not a valid SAN"),
                );
                None
            }
        })
        .collect()
}
