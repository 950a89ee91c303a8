//! The resolved settings lowering builds artifacts from: cluster, defaults,
//! layout, hosts, CAs, sets and users, each value checked where it is read.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics};
use crate::model::values::{self, SanError, SanValue};
use crate::model::{Cluster, Host, Layout, SETS, Subject};
use crate::plan::{ClientCertMode, KeyAlgorithm, PlanFile, Preset, Role, ServiceCidrs, ServingCertMode, SetSection};

/// Everything artifacts are built from.
pub struct Context {
    pub cluster: Cluster,
    pub layout: Layout,
    pub hosts: Vec<Host>,
    pub base_subject: Subject,
    pub cas: Vec<CaConfig>,
    pub sets: BTreeMap<&'static str, SetConfig>,
    pub users: Vec<UserConfig>,
    pub identities: BTreeMap<&'static str, IdentityConfig>,
    pub allowed: Vec<String>,
    pub templates: Option<String>,
}

/// A subject override of a built-in identity.
pub struct IdentityConfig {
    pub cn: Option<String>,
    pub cn_span: Option<Range<usize>>,
    pub o: Option<Vec<String>>,
    pub o_span: Option<Range<usize>>,
    pub span: Range<usize>,
}

/// A CA as configured.
pub struct CaConfig {
    pub name: String,
    pub subject: Subject,
    pub key: KeyAlgorithm,
    pub key_span: Option<Range<usize>>,
    pub validity: Duration,
    pub validity_span: Option<Range<usize>>,
    pub span: Range<usize>,
}

/// A set as configured, with its CA resolved.
pub struct SetConfig {
    pub ca: Option<String>,
    pub ca_span: Option<Range<usize>>,
    pub extra_sans: Vec<SanValue>,
    pub sans_override: Option<(Vec<SanValue>, Range<usize>)>,
    pub key: KeyAlgorithm,
    pub key_span: Option<Range<usize>>,
    pub validity: Duration,
    pub validity_span: Option<Range<usize>>,
    pub span: Option<Range<usize>>,
}

/// A user as configured.
pub struct UserConfig {
    pub name: String,
    pub name_span: Range<usize>,
    pub groups: Vec<String>,
    pub groups_span: Option<Range<usize>>,
    pub key: Option<KeyAlgorithm>,
    pub key_span: Option<Range<usize>>,
    pub validity: Option<Duration>,
    pub validity_span: Option<Range<usize>>,
    pub span: Range<usize>,
    pub ca: Option<(String, Range<usize>)>,
    pub server: Option<(String, Range<usize>)>,
}

struct Defaults {
    key: KeyAlgorithm,
    key_span: Option<Range<usize>>,
    validity: Duration,
    validity_span: Option<Range<usize>>,
    ca_validity: Duration,
    ca_validity_span: Option<Range<usize>>,
}

const DEFAULT_VALIDITY: Duration = Duration::from_secs(8760 * 3600);
const DEFAULT_CA_VALIDITY: Duration = Duration::from_secs(87600 * 3600);

/// Resolves the plan's settings, reporting every malformed value.
pub fn resolve(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Option<Context> {
    let defaults = resolve_defaults(plan, diagnostics);
    let cluster = resolve_cluster(plan, diagnostics);
    let layout = resolve_layout(plan, diagnostics);
    let hosts = resolve_hosts(plan, diagnostics);
    let base_subject = resolve_subject(plan, diagnostics);
    let cas = resolve_cas(plan, &defaults, &base_subject, diagnostics);
    let sets = resolve_sets(plan, &cas, &defaults, diagnostics);
    let users = resolve_users(plan, diagnostics);
    let identities = resolve_identities(plan, diagnostics);
    let allowed = resolve_allowed(plan, diagnostics);
    let templates = plan.templates.as_ref().map(|dir| dir.get_ref().clone());
    Some(Context { cluster: cluster?, layout, hosts, base_subject, cas, sets, users, identities, allowed, templates })
}

fn resolve_allowed(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<String> {
    plan.allow
        .iter()
        .filter_map(|entry| {
            let id = entry.rule.get_ref().trim();
            if entry.reason.get_ref().trim().is_empty() {
                diagnostics.push(
                    Diagnostic::error("allow-no-reason", format!("allowing `{id}` needs a reason"))
                        .at(entry.reason.span())
                        .label("say why this warning does not apply"),
                );
            }
            match crate::diag::rule(id) {
                Some(rule) if rule.severity == crate::diag::Severity::Warning => Some(id.to_string()),
                Some(_) => {
                    diagnostics.push(
                        Diagnostic::error("allow-unknown-rule", format!("`{id}` is an error, which cannot be allowed"))
                            .at(entry.rule.span())
                            .label("only warnings can be allowed"),
                    );
                    None
                }
                None => {
                    let warnings: Vec<String> = crate::diag::RULES
                        .iter()
                        .filter(|r| r.severity == crate::diag::Severity::Warning)
                        .map(|r| r.id.to_string())
                        .collect();
                    let hint = crate::plan::nearest_word(id, &warnings).map_or_else(
                        || format!("warnings: {}", warnings.join(", ")),
                        |w| format!("did you mean `{w}`?"),
                    );
                    diagnostics.push(
                        Diagnostic::error("allow-unknown-rule", format!("`{id}` is not a rule"))
                            .at(entry.rule.span())
                            .label("no such rule")
                            .hint(hint),
                    );
                    None
                }
            }
        })
        .collect()
}

fn resolve_identities(plan: &PlanFile, diagnostics: &mut Diagnostics) -> BTreeMap<&'static str, IdentityConfig> {
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

fn resolve_defaults(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Defaults {
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

fn duration_or(value: Option<&Spanned<String>>, default: Duration, diagnostics: &mut Diagnostics) -> Duration {
    let Some(value) = value else { return default };
    match values::parse_duration(value.get_ref()) {
        Ok(duration) => duration,
        Err(message) => {
            diagnostics.push(Diagnostic::error("invalid-duration", message).at(value.span()).label("not a duration"));
            default
        }
    }
}

fn resolve_cluster(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Option<Cluster> {
    let section = &plan.cluster;
    let name = section.name.get_ref().trim().to_string();
    if name.is_empty() {
        diagnostics.push(empty("cluster.name", section.name.span()));
    }
    let version = values::parse_version(section.kubernetes_version.get_ref())
        .map_err(|message| {
            diagnostics.push(
                Diagnostic::error("unknown-version", message)
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
                diagnostics
                    .push(Diagnostic::error("invalid-dns-name", message).at(domain.span()).label("not a DNS domain"));
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

const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

fn token_groups(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<String> {
    let Some(groups) = &plan.bootstrap.extra_groups else {
        return vec!["system:bootstrappers:certplan:default-node-token".to_string()];
    };
    for group in groups {
        if !group.get_ref().starts_with("system:bootstrappers:") {
            diagnostics.push(
                Diagnostic::error(
                    "bootstrap-group",
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
                "service-cidr-too-large" => "wider than the API server allocates from",
                "service-cidr-families" => "one range per IP family",
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

fn resolve_url(value: &Spanned<String>, diagnostics: &mut Diagnostics) -> Option<(String, u16)> {
    let text = value.get_ref().trim();
    let error = |message: String| {
        Diagnostic::error("invalid-url", message).at(value.span()).label("the API server URL kubeconfigs dial")
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

fn resolve_layout(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Layout {
    let section = &plan.layout;
    let preset = section.preset.as_ref().map_or(Preset::Kubeadm, |p| *p.get_ref());
    let default_pki = match preset {
        Preset::Cfssl => "/etc/kubernetes/ssl",
        Preset::Kubeadm => "/etc/kubernetes/pki",
    };
    Layout {
        preset,
        pki_dir: host_dir(section.pki_dir.as_ref(), default_pki, diagnostics),
        config_dir: host_dir(section.config_dir.as_ref(), "/etc/kubernetes", diagnostics),
    }
}

fn host_dir(value: Option<&Spanned<String>>, default: &str, diagnostics: &mut Diagnostics) -> String {
    let Some(value) = value else {
        return default.to_string();
    };
    let text = value.get_ref().trim().trim_end_matches('/');
    let bad_component = text.split('/').skip(1).any(|part| part.is_empty() || part == "." || part == "..");
    if !text.starts_with('/') || text.len() < 2 || bad_component || text.contains('\0') {
        diagnostics.push(
            Diagnostic::error("invalid-path", format!("`{}` is not an absolute directory path", value.get_ref()))
                .at(value.span())
                .label("expected an absolute path such as `/etc/kubernetes/pki`, without `..`"),
        );
        return default.to_string();
    }
    text.to_string()
}

fn resolve_subject(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Subject {
    let text = |v: &Option<Spanned<String>>| v.as_ref().map(|s| s.get_ref().trim().to_string());
    if let Some(country) = plan.defaults.subject.as_ref().and_then(|s| s.c.as_ref())
        && let Err(message) = values::check_country(country.get_ref())
    {
        diagnostics.push(
            Diagnostic::error("invalid-country", message)
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

fn resolve_hosts(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<Host> {
    let mut names: HashMap<String, Range<usize>> = HashMap::new();
    let mut addresses: HashMap<IpAddr, Range<usize>> = HashMap::new();
    let mut hosts = Vec::new();
    for entry in &plan.hosts {
        let host = entry.get_ref();
        let name = host.name.get_ref().trim().to_string();
        if let Err(message) = values::check_dns_name(&name, false) {
            diagnostics.push(
                Diagnostic::error("invalid-host-name", message)
                    .at(host.name.span())
                    .label("host names are node names: lower-case RFC 1123 names"),
            );
        } else if name.bytes().any(|b| b.is_ascii_uppercase()) {
            diagnostics.push(
                Diagnostic::error("invalid-host-name", format!("the host name `{name}` has upper-case letters"))
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
                Diagnostic::error("duplicate-host", format!("the host `{name}` is declared twice"))
                    .at(host.name.span())
                    .label("declared again here")
                    .also_at(first, "first declared here"),
            );
        } else {
            names.insert(key, host.name.span());
        }
        let address = match host.address.get_ref().trim().parse::<IpAddr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let (rule, label) = if host.address.get_ref().contains('/') {
                    ("address-cidr", "a host address is one IP, not a network")
                } else {
                    ("invalid-ip", "not an IP address")
                };
                diagnostics.push(
                    Diagnostic::error(rule, format!("`{}` is not an IP address", host.address.get_ref()))
                        .at(host.address.span())
                        .label(label),
                );
                None
            }
        };
        if let Some(ip) = address {
            if let Some(first) = addresses.get(&ip).cloned() {
                diagnostics.push(
                    Diagnostic::error("duplicate-address", format!("the address `{ip}` belongs to two hosts"))
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
                Diagnostic::error("empty-value", format!("the host `{name}` has no roles"))
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

fn resolve_cas(
    plan: &PlanFile,
    defaults: &Defaults,
    base_subject: &Subject,
    diagnostics: &mut Diagnostics,
) -> Vec<CaConfig> {
    if plan.cas.is_empty() {
        diagnostics.push(
            Diagnostic::error("missing-ca", "the plan declares no certificate authority")
                .hint("add a `[cas.kubernetes]` table with a `cn`"),
        );
    }
    plan.cas
        .iter()
        .map(|(name, ca)| {
            if let Err(message) = values::check_dns_name(name.get_ref(), false) {
                diagnostics.push(
                    Diagnostic::error(
                        "invalid-name",
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
            }
        })
        .collect()
}

fn set_section<'p>(plan: &'p PlanFile, set: &str) -> Option<&'p Spanned<SetSection>> {
    let sets = &plan.sets;
    match set {
        "etcd-server" => sets.etcd_server.as_ref(),
        "etcd-peer" => sets.etcd_peer.as_ref(),
        "etcd-client" => sets.etcd_client.as_ref(),
        "apiserver" => sets.apiserver.as_ref(),
        "apiserver-client" => sets.apiserver_client.as_ref(),
        "service-account" => sets.service_account.as_ref(),
        "kubelet-server" => sets.kubelet_server.as_ref(),
        "kubelet-client" => sets.kubelet_client.as_ref(),
        "front-proxy" => sets.front_proxy.as_ref(),
        _ => None,
    }
}

/// Sets that present serving certificates and so take extra SANs.
const SERVING_SETS: [&str; 4] = ["etcd-server", "etcd-peer", "apiserver", "kubelet-server"];

fn resolve_sets(
    plan: &PlanFile,
    cas: &[CaConfig],
    defaults: &Defaults,
    diagnostics: &mut Diagnostics,
) -> BTreeMap<&'static str, SetConfig> {
    SETS.iter()
        .map(|&set| {
            let section = set_section(plan, set);
            let config = section.map(|s| s.get_ref());
            let ca_choice = config.and_then(|c| c.ca.as_ref());
            let ca = if set == "service-account" {
                if let Some(ca) = ca_choice {
                    diagnostics.push(
                        Diagnostic::error("set-without-ca", "the service-account set is a key pair; no CA signs it")
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
                if set != "apiserver" {
                    diagnostics.push(
                        Diagnostic::error(
                            "sans-override-unsupported",
                            format!("only the `apiserver` set takes a complete `sans` list, not `{set}`"),
                        )
                        .at(sans.span())
                        .hint("use `extra_sans` to add names to the derived ones"),
                    );
                    return None;
                }
                Some((parse_sans(sans.get_ref(), diagnostics), sans.span()))
            });
            let set_config = SetConfig {
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
    set: &str,
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
                "unknown-ca",
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
    let conventional = match set {
        "etcd-server" | "etcd-peer" | "etcd-client" => "etcd",
        "front-proxy" => "front-proxy",
        _ => "kubernetes",
    };
    let preferred =
        cas.iter().find(|ca| ca.name == conventional).or_else(|| cas.iter().find(|ca| ca.name == "kubernetes"));
    if let Some(ca) = preferred {
        return Some(ca.name.clone());
    }
    if !cas.is_empty() {
        diagnostics.push(
            Diagnostic::error(
                "set-ca-ambiguous",
                format!("the set `{set}` has no `ca` and the plan declares several CAs"),
            )
            .hint(format!("add `[sets.{set}]` with `ca = \"NAME\"`")),
        );
    }
    None
}

fn resolve_sans(sans: &[Spanned<String>], set: &str, diagnostics: &mut Diagnostics) -> Vec<SanValue> {
    if !sans.is_empty() && !SERVING_SETS.contains(&set) {
        diagnostics.push(
            Diagnostic::error(
                "sans-on-client-set",
                format!("the set `{set}` holds client certificates, which take no SANs"),
            )
            .at(sans[0].span())
            .hint(format!("extra SANs belong to serving sets: {}", SERVING_SETS.join(", "))),
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
                        "san-cidr",
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
                        "san-invalid",
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

fn resolve_users(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<UserConfig> {
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    plan.users
        .iter()
        .map(|entry| {
            let user = entry.get_ref();
            let name = user.name.get_ref().trim().to_string();
            if name.is_empty() {
                diagnostics.push(empty("users.name", user.name.span()));
            } else if name.contains(['/', '\0']) || name.starts_with('.') {
                diagnostics.push(
                    Diagnostic::error("invalid-name", format!("the user name `{name}` cannot be a file name"))
                        .at(user.name.span())
                        .label("no `/`, and not starting with `.`"),
                );
            }
            if let Some(first) = seen.get(&name).cloned() {
                diagnostics.push(
                    Diagnostic::error("duplicate-user", format!("the user `{name}` is declared twice"))
                        .at(user.name.span())
                        .label("declared again here")
                        .also_at(first, "first declared here"),
                );
            } else {
                seen.insert(name.clone(), user.name.span());
            }
            let groups = user.groups.as_ref().map_or(&[][..], |g| g.get_ref().as_slice());
            for group in groups {
                if group.get_ref().trim().is_empty() {
                    diagnostics.push(empty("groups", group.span()));
                }
            }
            UserConfig {
                name,
                name_span: user.name.span(),
                groups: groups.iter().map(|g| g.get_ref().trim().to_string()).collect(),
                groups_span: user.groups.as_ref().map(Spanned::span),
                key: user.key.as_ref().map(|k| *k.get_ref()),
                key_span: user.key.as_ref().map(Spanned::span),
                ca: user.ca.as_ref().map(|ca| (ca.get_ref().trim().to_string(), ca.span())),
                server: user.server.as_ref().and_then(|server| {
                    let url = server.get_ref().trim().trim_end_matches('/').to_string();
                    resolve_url(server, diagnostics).map(|_| (url, server.span()))
                }),
                validity: user.validity.as_ref().map(|v| duration_or(Some(v), Duration::ZERO, diagnostics)),
                validity_span: user.validity.as_ref().map(Spanned::span),
                span: entry.span(),
            }
        })
        .collect()
}

fn empty(key: &str, span: Range<usize>) -> Diagnostic {
    Diagnostic::error("empty-value", format!("`{key}` cannot be empty")).at(span).label("empty")
}
