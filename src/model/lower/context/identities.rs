//! The `[identities]` section: subject overrides of the built-in client
//! identities (controller-manager, scheduler, kube-proxy, kubelets and the
//! API server's clients of kubelets, etcd and aggregated servers).

use std::collections::BTreeMap;

use toml::Spanned;

use super::{IdentityConfig, empty};
use crate::diag::Diagnostics;
use crate::plan::PlanFile;

pub(super) fn resolve_identities(
    plan: &PlanFile,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<&'static str, IdentityConfig> {
    let section = &plan.identities;
    let entries = [
        ("kube-controller-manager", &section.kube_controller_manager),
        ("kube-scheduler", &section.kube_scheduler),
        ("kube-proxy", &section.kube_proxy),
        ("kubelet", &section.kubelet),
        ("apiserver-kubelet-client", &section.apiserver_kubelet_client),
        ("apiserver-etcd-client", &section.apiserver_etcd_client),
        ("front-proxy-client", &section.front_proxy_client),
    ];
    entries
        .into_iter()
        .filter_map(|(name, entry)| {
            let entry = entry.as_ref()?;
            let identity = entry.get_ref();
            let cn = identity.cn.as_ref().map(|cn| {
                if cn.get_ref().trim().is_empty() {
                    diagnostics.push(empty("cn", cn.span()));
                }
                cn.get_ref().trim().to_string()
            });
            let o = identity.o.as_ref().map(|o| o.get_ref().iter().map(|v| v.get_ref().trim().to_string()).collect());
            Some((
                name,
                IdentityConfig {
                    cn,
                    cn_span: identity.cn.as_ref().map(Spanned::span),
                    o,
                    o_span: identity.o.as_ref().map(Spanned::span),
                    span: entry.span(),
                },
            ))
        })
        .collect()
}
