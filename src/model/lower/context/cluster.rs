//! The `[cluster]` and `[bootstrap]` settings: name, version, the API
//! server URL, the service networks and the bootstrap token's groups.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::defaults::duration_or;
use super::empty;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Cluster, values};
use crate::plan::{PlanFile, ServiceCidrs};

pub(super) fn resolve_cluster(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Option<Cluster> {
    let section = &plan.cluster;
    let name = section.name.get_ref().trim().to_string();
    if name.is_empty() {
        diagnostics.push(empty("cluster.name", section.name.span()));
    }
    let version = values::parse_version(section.kubernetes_version.get_ref())
        .map_err(|message| {
            diagnostics.push(
                Diagnostic::error(RuleId::UnknownVersion, message)
                    .at(section.kubernetes_version.span())
                    .label("unsupported version"),
            );
        })
        .ok();
    let endpoint = resolve_url(&section.apiserver_url, diagnostics);
    let service = resolve_service_cidrs(&section.service_cidr, version.map(|(_, minor)| minor), diagnostics);
    // Parsing made sure the primary network has a first address.
    let first_service_ip = service.as_ref().and_then(|nets| nets.first()).and_then(values::first_service_address);
    let cluster_domain = match &section.cluster_domain {
        Some(domain) => {
            if let Err(message) = values::check_dns_name(domain.get_ref(), false) {
                diagnostics.push(
                    Diagnostic::error(RuleId::InvalidDnsName, message).at(domain.span()).label("not a DNS domain"),
                );
            }
            domain.get_ref().to_ascii_lowercase()
        }
        None => "cluster.local".to_string(),
    };
    let (apiserver_host, apiserver_port) = endpoint?;
    Some(Cluster {
        name,
        version: version?,
        apiserver_url: section.apiserver_url.get_ref().trim().to_string(),
        apiserver_host,
        apiserver_port,
        apiserver_url_span: section.apiserver_url.span(),
        service_cidrs: service?,
        service_cidr_span: section.service_cidr.span(),
        first_service_ip: first_service_ip?,
        cluster_domain,
        token_csv: plan.bootstrap.token_csv,
        token_secret: plan.bootstrap.token_secret,
        token_ttl: duration_or(plan.bootstrap.token_ttl.as_ref(), DEFAULT_TOKEN_TTL, diagnostics),
        token_groups: token_groups(plan, diagnostics),
    })
}

const DEFAULT_TOKEN_TTL: Duration = Duration::from_hours(24);

fn token_groups(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(groups) = &plan.bootstrap.extra_groups else {
        return vec!["system:bootstrappers:certplan:default-node-token".to_string()];
    };
    for group in groups {
        if !group.get_ref().starts_with("system:bootstrappers:") {
            diagnostics.push(
                Diagnostic::error(
                    RuleId::BootstrapGroup,
                    format!(
                        "the bootstrap token group `{}` does not start with `system:bootstrappers:`",
                        group.get_ref()
                    ),
                )
                .at(group.span())
                .label("the API server refuses other groups for bootstrap tokens"),
            );
        }
    }
    groups.iter().map(|g| g.get_ref().clone()).collect()
}

/// The service networks, each checked, primary first. Without a known
/// version their sizes are not checked (no model is built anyway).
fn resolve_service_cidrs(
    value: &Spanned<ServiceCidrs>,
    minor: Option<u32>,
    diagnostics: &mut Diagnostics,
) -> Option<Vec<ipnet::IpNet>> {
    let (texts, spans): (Vec<&str>, Vec<Range<usize>>) = match value.get_ref() {
        ServiceCidrs::List(items) => items.iter().map(|item| (item.get_ref().as_str(), item.span())).unzip(),
        ServiceCidrs::Text(text) => split_spans(text, value.span()).into_iter().unzip(),
    };
    values::parse_service_cidrs(&texts, minor)
        .map_err(|error| {
            let at = error.index.and_then(|i| spans.get(i).cloned()).unwrap_or_else(|| value.span());
            let label = match error.rule {
                RuleId::ServiceCidrTooLarge => "wider than the API server allocates from",
                RuleId::ServiceCidrFamilies => "one range per IP family",
                _ => "expected a network such as `10.96.0.0/12`",
            };
            diagnostics.push(
                Diagnostic::error(error.rule, error.message)
                    .at(at)
                    .label(label)
                    .hint("write one range, or an IPv4 and an IPv6 range: `\"10.96.0.0/12,fd00:10:96::/112\"`"),
            );
        })
        .ok()
}

/// The comma-separated parts of a string value, each with its own span when
/// the string is written without escapes (so offsets in the text are offsets
/// in the plan), else with the whole value's span.
fn split_spans(text: &str, span: Range<usize>) -> Vec<(&str, Range<usize>)> {
    // One range points at the whole value, quotes included, as every other value does.
    let verbatim = span.len() == text.len() + 2 && text.contains(',');
    let mut offset = 0;
    text.split(',')
        .map(|part| {
            let start = span.start + 1 + offset;
            offset += part.len() + 1;
            let trimmed = part.trim();
            let lead = part.len() - part.trim_start().len();
            let at = if verbatim { start + lead..start + lead + trimmed.len() } else { span.clone() };
            (trimmed, at)
        })
        .collect()
}

pub(super) fn resolve_url(value: &Spanned<String>, diagnostics: &mut Diagnostics) -> Option<(String, u16)> {
    let text = value.get_ref().trim();
    let error = |message: String| {
        Diagnostic::error(RuleId::InvalidUrl, message).at(value.span()).label("the API server URL kubeconfigs dial")
    };
    let url = match url::Url::parse(text) {
        Ok(url) => url,
        Err(reason) => {
            diagnostics.push(error(format!("`{text}` is not a URL ({reason})")));
            return None;
        }
    };
    if url.scheme() != "https" {
        diagnostics.push(error(format!("the API server URL must use https, not `{}`", url.scheme())));
        return None;
    }
    if url.path() != "/" && !url.path().is_empty() || url.query().is_some() || !url.username().is_empty() {
        diagnostics.push(error("the API server URL must be `https://HOST[:PORT]` with no path".into()));
        return None;
    }
    let host = match url.host() {
        Some(url::Host::Domain(domain)) => domain.to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => {
            diagnostics.push(error("the API server URL has no host".into()));
            return None;
        }
    };
    Some((host, url.port().unwrap_or(443)))
}
