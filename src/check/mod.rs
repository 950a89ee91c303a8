//! Lint rules over a lowered model: mistakes that parse fine but make a
//! cluster fail or weaken it. Each rule has a stable id (see the rule
//! reference in the book) and points back into the plan where it can.

use std::time::Duration;

use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{Artifact, FlagVar, Model, Spec};
use crate::plan::Role;

/// One year, the longest leaf validity that draws no warning.
const ONE_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Runs every rule.
pub fn check_model(model: &Model) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    required_roles(model, &mut diagnostics);
    validity(model, &mut diagnostics);
    subjects(model, &mut diagnostics);
    dialled_urls(model, &mut diagnostics);
    service_cidr_overlap(model, &mut diagnostics);
    diagnostics
}

fn required_roles(model: &Model, diagnostics: &mut Diagnostics) {
    for (role, name) in [(Role::Etcd, "etcd"), (Role::ControlPlane, "control-plane")] {
        if model.hosts_with(role).next().is_none() {
            diagnostics.push(
                Diagnostic::error("missing-role", format!("no host has the role `{name}`")).hint(
                    format!("add `\"{name}\"` to the `roles` of a `[[hosts]]` entry"),
                ),
            );
        }
    }
}

fn validity(model: &Model, diagnostics: &mut Diagnostics) {
    for artifact in &model.artifacts {
        let Spec::Cert(cert) = &artifact.spec else {
            continue;
        };
        let Some(ca) = model.artifact(&cert.issuer).and_then(|a| a.spec.cert()) else {
            continue;
        };
        if cert.validity > ca.validity {
            diagnostics.push(
                Diagnostic::error(
                    "leaf-outlives-ca",
                    format!(
                        "`{}` would be valid for {}, longer than its CA `{}` ({})",
                        artifact.id,
                        humantime::format_duration(cert.validity),
                        cert.issuer,
                        humantime::format_duration(ca.validity)
                    ),
                )
                .at_opt(artifact.origin.clone())
                .hint("shorten the leaf's `validity` or lengthen the CA's"),
            );
        } else if cert.validity > ONE_YEAR {
            diagnostics.push(
                Diagnostic::warning(
                    "validity-over-a-year",
                    format!(
                        "`{}` is valid for {}, longer than a year",
                        artifact.id,
                        humantime::format_duration(cert.validity)
                    ),
                )
                .at_opt(artifact.origin.clone())
                .hint("Kubernetes and kubeadm issue leaves for one year; rotate instead of lengthening"),
            );
        }
    }
}

fn subjects(model: &Model, diagnostics: &mut Diagnostics) {
    for artifact in &model.artifacts {
        let Some(cert) = artifact.spec.cert() else {
            continue;
        };
        if cert.subject.o.len() > 1 {
            diagnostics.push(
                Diagnostic::error(
                    "subject-unrepresentable",
                    format!(
                        "`{}` has {} O values (groups), but certplan's X.509 writer keeps only one",
                        artifact.id,
                        cert.subject.o.len()
                    ),
                )
                .at_opt(artifact.origin.clone())
                .hint("give the identity a single group and bind further roles to that group with RBAC"),
            );
        }
        if cert.subject.ou.len() > 1 {
            diagnostics.push(
                Diagnostic::error(
                    "subject-unrepresentable",
                    format!("`{}` has more than one OU", artifact.id),
                )
                .at_opt(artifact.origin.clone()),
            );
        }
    }
}

/// Every URL a consumer dials must be covered by the SANs of the certificate
/// that answers there.
fn dialled_urls(model: &Model, diagnostics: &mut Diagnostics) {
    let apiserver = model
        .artifacts
        .iter()
        .find(|a| a.id.as_str() == "cert/apiserver");
    for artifact in &model.artifacts {
        match &artifact.spec {
            Spec::Kubeconfig(kubeconfig) => {
                if let (Some(apiserver), Some(host)) = (apiserver, url_host(&kubeconfig.server)) {
                    covered(
                        apiserver,
                        &host,
                        &artifact.id.to_string(),
                        artifact,
                        diagnostics,
                    );
                }
            }
            Spec::Flags(flags) => {
                for var in &flags.vars {
                    etcd_urls(model, var, artifact, diagnostics);
                }
            }
            _ => {}
        }
    }
}

fn etcd_urls(model: &Model, var: &FlagVar, artifact: &Artifact, diagnostics: &mut Diagnostics) {
    let checks = [
        ("etcd-servers", "etcd-server", 2379),
        ("initial-cluster", "etcd-peer", 2380),
    ];
    for (flag, set, _port) in checks {
        let Some(value) = var.get(flag) else { continue };
        for url in value.split(',') {
            let url = url.split_once('=').map_or(url, |(_, u)| u);
            let Some(host) = url_host(url) else { continue };
            let member = model
                .hosts_with(Role::Etcd)
                .find(|h| h.address.to_string() == host.trim_matches(['[', ']']) || h.name == host);
            let Some(member) = member else { continue };
            let id = format!("cert/{set}/{}", member.name);
            if let Some(cert) = model.artifacts.iter().find(|a| a.id.as_str() == id) {
                covered(
                    cert,
                    &host,
                    &format!("`--{flag}` in {}", artifact.id),
                    artifact,
                    diagnostics,
                );
            }
        }
    }
}

fn covered(
    cert: &Artifact,
    host: &str,
    dialler: &str,
    origin: &Artifact,
    diagnostics: &mut Diagnostics,
) {
    let Some(spec) = cert.spec.cert() else { return };
    if !spec.sans.covers(host) {
        diagnostics.push(
            Diagnostic::error(
                "url-not-covered",
                format!(
                    "{dialler} dials `{host}`, which the SANs of `{}` do not cover",
                    cert.id
                ),
            )
            .at_opt(origin.origin.clone())
            .hint(format!(
                "add `{host}` to the `extra_sans` of the set of `{}`",
                cert.id
            )),
        );
    }
}

fn url_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.host()? {
        url::Host::Domain(d) => Some(d.to_ascii_lowercase()),
        url::Host::Ipv4(ip) => Some(ip.to_string()),
        url::Host::Ipv6(ip) => Some(ip.to_string()),
    }
}

fn service_cidr_overlap(model: &Model, diagnostics: &mut Diagnostics) {
    for host in &model.hosts {
        if model.cluster.service_cidr.contains(&host.address) {
            diagnostics.push(
                Diagnostic::warning(
                    "service-cidr-overlap",
                    format!(
                        "the service CIDR `{}` contains the address of host `{}` ({})",
                        model.cluster.service_cidr, host.name, host.address
                    ),
                )
                .at(model.cluster.service_cidr_span.clone())
                .hint("pick a service network that no machine uses"),
            );
        }
    }
}
