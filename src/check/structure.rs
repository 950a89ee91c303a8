//! Rules on the shape of the cluster: required roles, one CA per set, CAs
//! that exist, service network versus host addresses.

use std::collections::BTreeMap;

use super::span_of;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{ArtifactId, CertSet, Model, Spec};
use crate::plan::Role;

pub fn check(model: &Model, diagnostics: &mut Diagnostics) {
    required_roles(model, diagnostics);
    issuers(model, diagnostics);
    service_cidr_overlap(model, diagnostics);
    bootstrapping(model, diagnostics);
}

fn bootstrapping(model: &Model, diagnostics: &mut Diagnostics) {
    let has_token = model.cluster.token_csv || model.cluster.token_secret;
    if !has_token {
        // One error per place the plan asks for bootstrapping (`[kubelet]` or a host).
        let mut by_place: BTreeMap<(usize, usize), Vec<&str>> = BTreeMap::new();
        for host in model.hosts.iter().filter(|h| h.bootstraps()) {
            let at = host.kubelet_client_span.clone().unwrap_or_else(|| host.span.clone());
            by_place.entry((at.start, at.end)).or_default().push(&host.name);
        }
        for ((start, end), hosts) in by_place {
            let names = match hosts.as_slice() {
                [one] => format!("the kubelet on `{one}` requests its certificate"),
                [first, rest @ ..] => {
                    format!("the kubelets on `{first}` and {} more host(s) request their certificates", rest.len())
                }
                [] => continue,
            };
            diagnostics.push(
                Diagnostic::error(
                    RuleId::BootstrapWithoutToken,
                    format!("{names}, but the plan has no bootstrap token"),
                )
                .at(start..end)
                .label("bootstrapping needs a token")
                .hint("set `token_secret = true` (or `token_csv = true`) in `[bootstrap]`"),
            );
        }
    }
    let workers: Vec<_> = model.hosts_with(Role::Worker).collect();
    if !workers.is_empty() && model.kubelet_serving_ca().is_none() {
        let host = workers
            .iter()
            .find(|h| h.kubelet_serving == crate::plan::ServingCertMode::SelfSigned)
            .unwrap_or(&workers[0]);
        diagnostics.push(
            Diagnostic::warning(
                RuleId::KubeletServingUnverified,
                "the API server cannot verify every kubelet's serving certificate, so it calls kubelets without `--kubelet-certificate-authority`",
            )
            .at(host.kubelet_serving_span.clone().unwrap_or_else(|| host.span.clone()))
            .label(if host.kubelet_serving == crate::plan::ServingCertMode::SelfSigned {
                "signed by the kubelet itself"
            } else {
                "no CA the API server could trust"
            })
            .hint("use `serving_cert = \"static\"` or `\"bootstrap\"` on every worker"),
        );
    }
}

fn required_roles(model: &Model, diagnostics: &mut Diagnostics) {
    for (role, name) in [(Role::Etcd, "etcd"), (Role::ControlPlane, "control-plane")] {
        if model.hosts_with(role).next().is_none() {
            diagnostics.push(
                Diagnostic::error(RuleId::MissingRole, format!("no host has the role `{name}`"))
                    .hint(format!("add `\"{name}\"` to the `roles` of a `[[hosts]]` entry")),
            );
        }
    }
}

/// Every issuer exists, and all certificates of a set share one CA: the side
/// that verifies them trusts a single root.
fn issuers(model: &Model, diagnostics: &mut Diagnostics) {
    // Sets order by name, so the diagnostics of split sets come in that order.
    let mut by_set: BTreeMap<CertSet, BTreeMap<&ArtifactId, Vec<&crate::model::Artifact>>> = BTreeMap::new();
    for artifact in &model.artifacts {
        let Spec::Cert(cert) = &artifact.spec else { continue };
        if model.artifact(&cert.issuer).is_none() {
            let name = cert.issuer.ca_name().unwrap_or(cert.issuer.as_str());
            diagnostics.push(
                Diagnostic::error(
                    RuleId::UnknownCa,
                    format!("`{}` names the CA `{name}`, which the plan does not declare", artifact.id),
                )
                .at_opt(span_of(artifact, artifact.spans.issuer.as_ref()))
                .label("no `[cas.NAME]` with this name"),
            );
            continue;
        }
        if let Some(set) = cert.set {
            by_set.entry(set).or_default().entry(&cert.issuer).or_default().push(artifact);
        }
    }
    for (set, issuers) in by_set {
        if issuers.len() < 2 {
            continue;
        }
        let set_ca = model.set_cas.get(&set);
        let expected = set_ca.map(|s| &s.ca);
        for (issuer, artifacts) in &issuers {
            if Some(*issuer) == expected {
                continue;
            }
            for artifact in artifacts {
                let mut diagnostic = Diagnostic::error(
                    RuleId::SetSplitCa,
                    format!(
                        "`{}` would be signed by `{issuer}`, but the rest of the set `{set}` by `{}`",
                        artifact.id,
                        expected.map_or("another CA".to_string(), ToString::to_string)
                    ),
                )
                .at_opt(span_of(artifact, artifact.spans.issuer.as_ref()))
                .label("a second CA for one set")
                .hint("the side that verifies a set trusts one CA: sign the whole set with one");
                if let Some(set_ca) = set_ca
                    && let Some(chosen) = set_ca.span.clone()
                {
                    diagnostic = diagnostic.also_at(chosen, format!("the set's CA `{}` is chosen here", set_ca.ca));
                }
                diagnostics.push(diagnostic);
            }
        }
    }
}

fn service_cidr_overlap(model: &Model, diagnostics: &mut Diagnostics) {
    for host in &model.hosts {
        for service_cidr in model.cluster.service_cidrs.iter().filter(|net| net.contains(&host.address)) {
            diagnostics.push(
                Diagnostic::warning(
                    RuleId::ServiceCidrOverlap,
                    format!(
                        "the service CIDR `{}` contains the address of host `{}` ({})",
                        service_cidr, host.name, host.address
                    ),
                )
                .at(model.cluster.service_cidr_span.clone())
                .label("overlaps a host address")
                .hint("pick a service network that no machine uses"),
            );
        }
    }
}
