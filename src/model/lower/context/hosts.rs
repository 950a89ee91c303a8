//! The `[[hosts]]`: names, addresses, roles, kubelet certificate modes and
//! extra SANs, with duplicate names and addresses reported.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use super::sets::parse_sans;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Host, values};
use crate::plan::{ClientCertMode, PlanFile, Role, ServingCertMode};

pub(super) fn resolve_hosts(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<Host> {
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut addresses: HashMap<IpAddr, Range<usize>> = HashMap::new();
    let mut hosts = Vec::new();
    for entry in &plan.hosts {
        let host = entry.get_ref();
        let name = host.name.get_ref().trim().to_string();
        if let Err(message) = values::check_dns_name(&name, false) {
            diagnostics.push(
                Diagnostic::error(RuleId::InvalidHostName, message)
                    .at(host.name.span())
                    .label("host names are node names: lower-case RFC 1123 names"),
            );
        } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
            diagnostics.push(
                Diagnostic::error(RuleId::InvalidHostName, format!("the host name `{name}` has upper-case letters"))
                    .at(host.name.span())
                    .label("a node name is lower case")
                    .hint(format!(
                        "the kubelet registers the node as `{}`, so its identity would not match; write that",
                        name.to_ascii_lowercase()
                    )),
            );
        }
        let key = name.to_ascii_lowercase();
        if let Some(first) = names.get(&key).cloned() {
            diagnostics.push(
                Diagnostic::error(RuleId::DuplicateHost, format!("the host `{name}` is declared twice"))
                    .at(host.name.span())
                    .label("declared again here")
                    .also_at(first, "first declared here"),
            );
        } else {
            names.insert(key, host.name.span());
        }
        let address = if let Ok(ip) = host.address.get_ref().trim().parse::<IpAddr>() {
            Some(ip)
        } else {
            let (rule, label) = if host.address.get_ref().contains('/') {
                (RuleId::AddressCidr, "a host address is one IP, not a network")
            } else {
                (RuleId::InvalidIp, "not an IP address")
            };
            diagnostics.push(
                Diagnostic::error(rule, format!("`{}` is not an IP address", host.address.get_ref()))
                    .at(host.address.span())
                    .label(label),
            );
            None
        };
        if let Some(ip) = address {
            if let Some(first) = addresses.get(&ip).cloned() {
                diagnostics.push(
                    Diagnostic::error(RuleId::DuplicateAddress, format!("the address `{ip}` belongs to two hosts"))
                        .at(host.address.span())
                        .label("used again here")
                        .also_at(first, "first used here"),
                );
            } else {
                addresses.insert(ip, host.address.span());
            }
        }
        let mut roles: Vec<Role> = host.roles.get_ref().iter().map(|r| *r.get_ref()).collect();
        roles.sort();
        roles.dedup();
        if roles.is_empty() {
            diagnostics.push(
                Diagnostic::error(RuleId::EmptyValue, format!("the host `{name}` has no roles"))
                    .at(host.roles.span())
                    .hint("give it one or more of `etcd`, `control-plane`, `worker`"),
            );
        }
        if let Some(address) = address {
            let modes = host.kubelet.as_ref().map(Spanned::get_ref);
            let client = modes.and_then(|m| m.client_cert.as_ref()).or(plan.kubelet.client_cert.as_ref());
            let serving = modes.and_then(|m| m.serving_cert.as_ref()).or(plan.kubelet.serving_cert.as_ref());
            hosts.push(Host {
                name,
                address,
                roles,
                span: entry.span(),
                kubelet_client: client.map_or(ClientCertMode::Static, |m| *m.get_ref()),
                kubelet_serving: serving.map_or(ServingCertMode::Static, |m| *m.get_ref()),
                kubelet_client_span: client.map(Spanned::span),
                kubelet_serving_span: serving.map(Spanned::span),
                extra_sans: parse_sans(&host.extra_sans, diagnostics),
            });
        }
    }
    hosts
}
