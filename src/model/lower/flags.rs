//! The flag table: for each component on each host, the certificate, key,
//! CA, kubeconfig and token flags with their on-host paths, named for the
//! plan's Kubernetes version. Paths come from the artifacts' placements.

use std::collections::HashMap;

use super::artifacts::{host_placement, set_ca, set_trust, signing_keypair, signing_needed, trusted_ca, trusted_keys};
use super::context::Context;
use crate::model::{
    Artifact, ArtifactId, CertSet, FileRole, FlagFileSpec, FlagVar, Host, Spans, Spec, kubelet_serving_ca,
};
use crate::plan::{ClientCertMode, Role, ServingCertMode};

/// Looks up where artifacts are placed on a host.
pub struct Paths<'a> {
    pub context: &'a Context,
    /// On-host path of every host-bound file, by artifact id, host and role.
    index: HashMap<(&'a ArtifactId, &'a str, FileRole), &'a str>,
}

impl<'a> Paths<'a> {
    /// Indexes the files of the artifacts built so far.
    pub fn new(context: &'a Context, artifacts: &'a [Artifact]) -> Self {
        let index = artifacts
            .iter()
            .flat_map(|a| {
                a.files.iter().filter_map(move |f| Some(((&a.id, f.host.as_deref()?, f.role), f.host_path.as_deref()?)))
            })
            .collect();
        Self { context, index }
    }
}

/// A file a flag must name that no artifact places on the host: a fault in
/// lowering, reported instead of writing an empty flag value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{component}` on `{host}` needs the {role:?} file of `{id}`, which no artifact places on that host")]
pub struct MissingFile {
    /// The component whose flag names the file.
    pub component: &'static str,
    /// The host.
    pub host: String,
    /// The artifact whose file is missing.
    pub id: ArtifactId,
    /// The file's role.
    pub role: FileRole,
}

/// Paths on one host, for the flags of one component.
struct On<'p, 'a> {
    paths: &'p Paths<'a>,
    host: &'p Host,
    component: &'static str,
}

impl On<'_, '_> {
    /// The on-host path of an artifact's file of `role`, if one is placed here.
    fn find(&self, id: &ArtifactId, role: FileRole) -> Option<String> {
        self.paths.index.get(&(id, self.host.name.as_str(), role)).map(|p| (*p).to_string())
    }

    /// The on-host path of an artifact's file of `role`.
    fn file(&self, id: &ArtifactId, role: FileRole) -> Result<String, MissingFile> {
        self.find(id, role).ok_or_else(|| MissingFile {
            component: self.component,
            host: self.host.name.clone(),
            id: id.clone(),
            role,
        })
    }

    fn cert(&self, id: &ArtifactId) -> Result<String, MissingFile> {
        self.file(id, FileRole::Cert)
    }

    fn key(&self, id: &ArtifactId) -> Result<String, MissingFile> {
        self.file(id, FileRole::Key)
    }

    /// The file a component reads to trust the CA of a set: the CA's
    /// certificate, or the trust bundle of a rotation.
    fn ca(&self, set: CertSet) -> Result<String, MissingFile> {
        self.cert(&set_trust(self.paths.context, set))
    }

    fn kubeconfig(&self, id: &ArtifactId) -> Result<String, MissingFile> {
        self.file(id, FileRole::Kubeconfig)
    }
}

/// Builds every flag file, placed in its host's config directory.
pub fn build(paths: &Paths<'_>) -> Result<Vec<Artifact>, MissingFile> {
    type Vars = fn(&On<'_, '_>) -> Result<Vec<FlagVar>, MissingFile>;
    let mut out = Vec::new();
    for host in &paths.context.hosts {
        let mut components: Vec<(&'static str, Vars)> = Vec::new();
        if host.has(Role::Etcd) {
            components.push(("etcd", |on| Ok(vec![etcd_tls(on)?, etcd_cluster(on)])));
        }
        if host.has(Role::ControlPlane) {
            components.push(("kube-apiserver", |on| Ok(vec![apiserver(on)?])));
            components.push(("kube-controller-manager", |on| Ok(vec![controller_manager(on)?])));
            components.push(("kube-scheduler", |on| Ok(vec![scheduler(on)?])));
        }
        if host.has(Role::Worker) {
            components.push(("kubelet", |on| Ok(vec![kubelet(on)?])));
            components.push(("kube-proxy", |on| Ok(vec![kube_proxy(on)?])));
        }
        for (component, vars) in components {
            let on = On { paths, host, component };
            out.push(flag_file(paths, component, host, vars(&on)?));
        }
    }
    Ok(out)
}

fn flag_file(paths: &Paths<'_>, component: &'static str, host: &Host, vars: Vec<FlagVar>) -> Artifact {
    let file = paths.context.layout.in_config(&format!("{component}.env"));
    Artifact {
        id: ArtifactId::flags(component, &host.name),
        spec: Spec::Flags(FlagFileSpec { component, host: host.name.clone(), vars, template_override: None }),
        files: vec![host_placement(host, file, FileRole::Flags)],
        origin: Some(host.span.clone()),
        spans: Spans::default(),
    }
}

struct Var {
    name: String,
    flags: Vec<(String, String)>,
}

impl Var {
    fn new(name: &str) -> Self {
        Self { name: name.to_string(), flags: Vec::new() }
    }

    fn flag(mut self, flag: &str, value: impl Into<String>) -> Self {
        self.flags.push((flag.to_string(), value.into()));
        self
    }

    fn flag_if(self, condition: bool, flag: &str, value: impl Into<String>) -> Self {
        if condition { self.flag(flag, value) } else { self }
    }

    fn flag_opt(self, flag: &str, value: Option<String>) -> Self {
        match value {
            Some(value) => self.flag(flag, value),
            None => self,
        }
    }

    fn done(self) -> FlagVar {
        FlagVar { name: self.name, flags: self.flags }
    }
}

fn etcd_tls(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let server = ArtifactId::set_cert(CertSet::EtcdServer, Some(&on.host.name));
    let peer = ArtifactId::set_cert(CertSet::EtcdPeer, Some(&on.host.name));
    Ok(Var::new("ETCD_TLS_ARGS")
        .flag("cert-file", on.cert(&server)?)
        .flag("key-file", on.key(&server)?)
        .flag("trusted-ca-file", on.ca(CertSet::EtcdClient)?)
        .flag("client-cert-auth", "true")
        .flag("peer-cert-file", on.cert(&peer)?)
        .flag("peer-key-file", on.key(&peer)?)
        .flag("peer-trusted-ca-file", on.ca(CertSet::EtcdPeer)?)
        .flag("peer-client-cert-auth", "true")
        .done())
}

fn url(address: std::net::IpAddr, port: u16) -> String {
    match address {
        std::net::IpAddr::V6(ip) => format!("https://[{ip}]:{port}"),
        std::net::IpAddr::V4(ip) => format!("https://{ip}:{port}"),
    }
}

fn etcd_cluster(on: &On<'_, '_>) -> FlagVar {
    let host = on.host;
    let members = on
        .paths
        .context
        .hosts
        .iter()
        .filter(|h| h.has(Role::Etcd))
        .map(|h| format!("{}={}", h.name, url(h.address, 2380)))
        .collect::<Vec<_>>()
        .join(",");
    Var::new("ETCD_CLUSTER_ARGS")
        .flag("name", host.name.clone())
        .flag("listen-client-urls", format!("{},{}", url(host.address, 2379), url(loopback(host.address), 2379)))
        .flag("advertise-client-urls", url(host.address, 2379))
        .flag("listen-peer-urls", url(host.address, 2380))
        .flag("initial-advertise-peer-urls", url(host.address, 2380))
        .flag("initial-cluster", members)
        .flag("initial-cluster-state", "new")
        .done()
}

/// The loopback address of the same family as `address`, where local
/// clients (the API server on the same host, etcdctl) dial etcd.
#[must_use]
pub fn loopback(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
    }
}

/// The URLs the API server dials for etcd.
pub fn etcd_servers(hosts: &[Host]) -> String {
    hosts.iter().filter(|h| h.has(Role::Etcd)).map(|h| url(h.address, 2379)).collect::<Vec<_>>().join(",")
}

fn apiserver(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let context = on.paths.context;
    let cluster = &context.cluster;
    let kubelet_ca = kubelet_ca(context).map(|ca| on.cert(&ca)).transpose()?;
    let token_file =
        cluster.token_csv.then(|| on.file(&ArtifactId::bootstrap_token_file(), FileRole::TokenFile)).transpose()?;
    let serving = ArtifactId::set_cert(CertSet::Apiserver, None);
    let etcd_client = ArtifactId::identity_cert("apiserver-etcd-client", None);
    let kubelet_client = ArtifactId::identity_cert("apiserver-kubelet-client", None);
    let front_proxy_client = ArtifactId::identity_cert("front-proxy-client", None);
    let (signing_key, trusted_keys) = (signing_keypair(context), trusted_keys(context));
    Ok(Var::new("KUBE_APISERVER_TLS_ARGS")
        .flag("secure-port", cluster.apiserver_port.to_string())
        .flag("advertise-address", on.host.address.to_string())
        .flag("tls-cert-file", on.cert(&serving)?)
        .flag("tls-private-key-file", on.key(&serving)?)
        .flag("client-ca-file", on.ca(CertSet::ApiserverClient)?)
        .flag("etcd-servers", etcd_servers(&context.hosts))
        .flag("etcd-cafile", on.ca(CertSet::EtcdServer)?)
        .flag("etcd-certfile", on.cert(&etcd_client)?)
        .flag("etcd-keyfile", on.key(&etcd_client)?)
        .flag("kubelet-client-certificate", on.cert(&kubelet_client)?)
        .flag("kubelet-client-key", on.key(&kubelet_client)?)
        .flag_opt("kubelet-certificate-authority", kubelet_ca)
        .flag("service-account-key-file", on.file(&trusted_keys, FileRole::PublicKey)?)
        .flag("service-account-signing-key-file", on.key(&signing_key)?)
        .flag("service-account-issuer", format!("https://kubernetes.default.svc.{}", cluster.cluster_domain))
        .flag("service-cluster-ip-range", cluster.service_cidr_flag())
        .flag("requestheader-client-ca-file", on.ca(CertSet::FrontProxy)?)
        .flag("requestheader-allowed-names", "front-proxy-client")
        .flag("requestheader-username-headers", "X-Remote-User")
        .flag("requestheader-group-headers", "X-Remote-Group")
        .flag("requestheader-extra-headers-prefix", "X-Remote-Extra-")
        .flag("proxy-client-cert-file", on.cert(&front_proxy_client)?)
        .flag("proxy-client-key-file", on.key(&front_proxy_client)?)
        .flag_opt("token-auth-file", token_file)
        .flag_if(cluster.token_secret, "enable-bootstrap-token-auth", "true")
        .done())
}

fn controller_manager(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let context = on.paths.context;
    let kubeconfig = on.kubeconfig(&ArtifactId::identity_kubeconfig("kube-controller-manager", None))?;
    let duration_flag = if context.cluster.version < (1, 19) {
        "experimental-cluster-signing-duration"
    } else {
        "cluster-signing-duration"
    };
    let signing_ca = set_ca(context, CertSet::ApiserverClient);
    let signing = if signing_needed(context) { Some((on.cert(&signing_ca)?, on.key(&signing_ca)?)) } else { None };
    let validity_hours = context.sets[&CertSet::ApiserverClient].validity.as_secs() / 3600;
    let signs = signing.is_some();
    let (signing_cert, signing_key) = signing.unzip();
    Ok(Var::new("KUBE_CONTROLLER_MANAGER_TLS_ARGS")
        .flag("kubeconfig", kubeconfig.clone())
        .flag("authentication-kubeconfig", kubeconfig.clone())
        .flag("authorization-kubeconfig", kubeconfig)
        .flag("client-ca-file", on.ca(CertSet::ApiserverClient)?)
        .flag("requestheader-client-ca-file", on.ca(CertSet::FrontProxy)?)
        .flag("root-ca-file", on.ca(CertSet::Apiserver)?)
        .flag("service-account-private-key-file", on.key(&signing_keypair(context))?)
        .flag("use-service-account-credentials", "true")
        .flag_opt("cluster-signing-cert-file", signing_cert)
        .flag_opt("cluster-signing-key-file", signing_key)
        .flag_if(signs, duration_flag, format!("{validity_hours}h0m0s"))
        .done())
}

fn scheduler(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let kubeconfig = on.kubeconfig(&ArtifactId::identity_kubeconfig("kube-scheduler", None))?;
    Ok(Var::new("KUBE_SCHEDULER_TLS_ARGS")
        .flag("kubeconfig", kubeconfig.clone())
        .flag("authentication-kubeconfig", kubeconfig.clone())
        .flag("authorization-kubeconfig", kubeconfig)
        .done())
}

/// What the API server trusts kubelets' serving certificates with, when one
/// CA covers them all ([`kubelet_serving_ca`]), as a trust file.
fn kubelet_ca(context: &Context) -> Option<ArtifactId> {
    let name = |set: CertSet| context.sets[&set].ca.as_deref().map_or_else(|| ArtifactId::ca(""), ArtifactId::ca);
    let ca = kubelet_serving_ca(&context.hosts, &name(CertSet::KubeletServer), &name(CertSet::ApiserverClient))?;
    Some(trusted_ca(context, ca.ca_name().unwrap_or_default()))
}

fn kubelet(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let host = on.host;
    let context = on.paths.context;
    let serving = ArtifactId::set_cert(CertSet::KubeletServer, Some(&host.name));
    let static_client = host.kubelet_client == ClientCertMode::Static;
    let static_serving = host.kubelet_serving == ServingCertMode::Static;
    // Only a kubelet that bootstraps has a bootstrap kubeconfig.
    let bootstrap = (!static_client).then(|| on.kubeconfig(&ArtifactId::bootstrap_kubeconfig())).transpose()?;
    let kubeconfig = if static_client {
        on.kubeconfig(&ArtifactId::identity_kubeconfig("kubelet", Some(&host.name)))?
    } else {
        // Written by the kubelet itself once its client certificate is issued.
        let layout = &context.layout;
        layout.in_config(&layout.kubeconfig_file("kubelet", "kubelet"))
    };
    let serving_files = static_serving.then(|| Ok((on.cert(&serving)?, on.key(&serving)?))).transpose()?;
    let (serving_cert, serving_key) = serving_files.unzip();
    let rotate_server = host.kubelet_serving == ServingCertMode::Bootstrap;
    Ok(Var::new("KUBELET_TLS_ARGS")
        .flag("kubeconfig", kubeconfig)
        .flag_opt("bootstrap-kubeconfig", bootstrap)
        .flag("client-ca-file", on.ca(CertSet::KubeletClient)?)
        .flag_opt("tls-cert-file", serving_cert)
        .flag_opt("tls-private-key-file", serving_key)
        .flag("cert-dir", KUBELET_CERT_DIR)
        .flag_if(!static_client, "rotate-certificates", "true")
        .flag_if(rotate_server, "rotate-server-certificates", "true")
        .flag_if(
            rotate_server && context.cluster.version < (1, 20),
            "feature-gates",
            "RotateKubeletServerCertificate=true",
        )
        .done())
}

/// Where the kubelet keeps the certificates it requests or makes itself.
const KUBELET_CERT_DIR: &str = "/var/lib/kubelet/pki";

fn kube_proxy(on: &On<'_, '_>) -> Result<FlagVar, MissingFile> {
    let kubeconfig = on.kubeconfig(&ArtifactId::identity_kubeconfig("kube-proxy", None))?;
    Ok(Var::new("KUBE_PROXY_TLS_ARGS").flag("kubeconfig", kubeconfig).done())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::Diagnostics;

    #[test]
    fn a_file_nothing_places_is_an_error_not_an_empty_flag() {
        let plan = crate::plan::parse_plan(include_str!("../../../plans/minimal.toml")).expect("the plan parses");
        let context = super::super::context::resolve(&plan, &mut Diagnostics::default()).expect("it resolves");
        // No artifact places anything: the first flag that names a file fails.
        let paths = Paths::new(&context, &[]);
        let error = build(&paths).expect_err("an empty flag value");
        assert_eq!(error.component, "etcd");
        assert_eq!(error.host, "solo");
        assert_eq!(error.id, ArtifactId::set_cert(CertSet::EtcdServer, Some("solo")));
        assert_eq!(error.role, FileRole::Cert);
        assert!(error.to_string().contains("`etcd` on `solo` needs"), "{error}");
    }

    #[test]
    fn loopback_follows_the_family() {
        assert_eq!(loopback("10.0.0.1".parse().unwrap()).to_string(), "127.0.0.1");
        assert_eq!(loopback("fd00::1".parse().unwrap()).to_string(), "::1");
        assert_eq!(url("fd00::1".parse().unwrap(), 2379), "https://[fd00::1]:2379");
    }
}
