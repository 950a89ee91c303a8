//! Rules on names: the API server's built-in SANs, and every URL a consumer
//! dials (kubeconfig servers, `--etcd-servers`, etcd peer URLs) covered by
//! the SANs of the certificate that answers there.

use super::span_of;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Artifact, ArtifactId, CertSet, FlagVar, Model, Spec};
use crate::plan::Role;

pub fn check(model: &Model, diagnostics: &mut Diagnostics) {
    let apiserver = model.artifact(&ArtifactId::set_cert(CertSet::Apiserver, None));
    if let Some(apiserver) = apiserver {
        built_in_sans(model, apiserver, diagnostics);
    }
    for artifact in &model.artifacts {
        match &artifact.spec {
            Spec::Kubeconfig(kubeconfig) => {
                if let (Some(apiserver), Some(host)) = (apiserver, url_host(&kubeconfig.server)) {
                    let dialler = format!("`{}`", artifact.id);
                    // A URL the plan does not write (the loopback address of local
                    // kubeconfigs) is fixed in the SAN list, so point there.
                    let at =
                        artifact.spans.server.clone().or_else(|| span_of(apiserver, apiserver.spans.sans.as_ref()));
                    covered(apiserver, &host, &dialler, at, diagnostics);
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

fn built_in_sans(model: &Model, apiserver: &Artifact, diagnostics: &mut Diagnostics) {
    let Some(cert) = apiserver.spec.cert() else { return };
    let cluster = &model.cluster;
    let mut required = vec![cluster.first_service_ip.to_string()];
    required.extend(["kubernetes", "kubernetes.default", "kubernetes.default.svc"].map(String::from));
    required.push(format!("kubernetes.default.svc.{}", cluster.cluster_domain));
    for name in required {
        if !cert.sans.covers(&name) {
            diagnostics.push(
                Diagnostic::error(
                    RuleId::ApiserverMissingSan,
                    format!("the API server certificate lacks `{name}`, which in-cluster clients dial"),
                )
                .at_opt(span_of(apiserver, apiserver.spans.sans.as_ref()))
                .label("this list misses a required SAN")
                .hint(format!("add `{name}`, or use `extra_sans` so certplan derives the required names")),
            );
        }
    }
}

fn etcd_urls(model: &Model, var: &FlagVar, artifact: &Artifact, diagnostics: &mut Diagnostics) {
    for (flag, set) in [("etcd-servers", CertSet::EtcdServer), ("initial-cluster", CertSet::EtcdPeer)] {
        let Some(value) = var.get(flag) else { continue };
        for url in value.split(',') {
            let url = url.split_once('=').map_or(url, |(_, u)| u);
            let Some(host) = url_host(url) else { continue };
            let member = model.hosts_with(Role::Etcd).find(|h| h.address.to_string() == host || h.name == host);
            let Some(member) = member else { continue };
            if let Some(cert) = model.artifact(&ArtifactId::set_cert(set, Some(&member.name))) {
                let dialler = format!("`--{flag}` in `{}`", artifact.id);
                covered(cert, &host, &dialler, artifact.origin.clone(), diagnostics);
            }
        }
    }
}

fn covered(
    cert: &Artifact,
    host: &str,
    dialler: &str,
    at: Option<std::ops::Range<usize>>,
    diagnostics: &mut Diagnostics,
) {
    let Some(spec) = cert.spec.cert() else { return };
    if !spec.sans.covers(host) {
        diagnostics.push(
            Diagnostic::error(
                RuleId::UrlNotCovered,
                format!("{dialler} dials `{host}`, which the SANs of `{}` do not cover", cert.id),
            )
            .at_opt(at)
            .label("clients will refuse this server")
            .hint(format!("add `{host}` to the SANs of `{}`", cert.id)),
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
