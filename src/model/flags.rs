//! The flag table: for each component on each host, the certificate, key,
//! CA, kubeconfig and token flags with their on-host paths, named for the
//! plan's Kubernetes version. Paths come from the artifacts' placements.

use std::collections::HashMap;

use super::lower::Context;
use super::{Artifact, ArtifactId, FileRole, FlagFileSpec, FlagVar, Host, Spec};
use crate::plan::{ClientCertMode, Role, ServingCertMode};

/// Looks up where artifacts are placed on a host.
pub struct Paths<'a> {
    pub context: &'a Context,
    /// On-host path of every host-bound file, by artifact id, host and role.
    index: HashMap<(&'a str, &'a str, FileRole), &'a str>,
}

impl<'a> Paths<'a> {
    /// Indexes the files of the artifacts built so far.
    pub fn new(context: &'a Context, artifacts: &'a [Artifact]) -> Self {
        let index = artifacts
            .iter()
            .flat_map(|a| {
                a.files
                    .iter()
                    .filter_map(move |f| Some(((a.id.as_str(), f.host.as_deref()?, f.role), f.host_path.as_deref()?)))
            })
            .collect();
        Self { context, index }
    }
}

impl Paths<'_> {
    /// The on-host path of an artifact's file of `role` on `host`.
    fn on(&self, id: &str, host: &Host, role: FileRole) -> String {
        self.index.get(&(id, host.name.as_str(), role)).map_or_else(String::new, |p| (*p).to_string())
    }

    fn cert(&self, id: &str, host: &Host) -> String {
        self.on(id, host, FileRole::Cert)
    }

    fn key(&self, id: &str, host: &Host) -> String {
        self.on(id, host, FileRole::Key)
    }

    fn ca(&self, set: &str, host: &Host) -> String {
        let ca = super::lower::set_ca(self.context, set);
        self.cert(ca.as_str(), host)
    }

    fn kubeconfig(&self, id: &str, host: &Host) -> String {
        self.on(id, host, FileRole::Kubeconfig)
    }
}

/// Builds every flag file, placed in its host's config directory.
pub fn build(paths: &Paths<'_>) -> Vec<Artifact> {
    let mut out = Vec::new();
    for host in &paths.context.hosts {
        let mut add = |component: &'static str, vars: Vec<FlagVar>| out.push(flag_file(paths, component, host, vars));
        if host.has(Role::Etcd) {
            add("etcd", vec![etcd_tls(paths, host), etcd_cluster(paths, host)]);
        }
        if host.has(Role::ControlPlane) {
            add("kube-apiserver", vec![apiserver(paths, host)]);
            add("kube-controller-manager", vec![controller_manager(paths, host)]);
            add("kube-scheduler", vec![scheduler(paths, host)]);
        }
        if host.has(Role::Worker) {
            add("kubelet", vec![kubelet(paths, host)]);
            add("kube-proxy", vec![kube_proxy(paths, host)]);
        }
    }
    out
}

fn flag_file(paths: &Paths<'_>, component: &'static str, host: &Host, vars: Vec<FlagVar>) -> Artifact {
    let file = paths.context.layout.in_config(&format!("{component}.env"));
    Artifact {
        id: ArtifactId::new(&["flags", component, &host.name]),
        spec: Spec::Flags(FlagFileSpec { component, host: host.name.clone(), vars, template_override: None }),
        files: vec![super::lower::host_placement(host, file, FileRole::Flags)],
        origin: Some(host.span.clone()),
        spans: super::Spans::default(),
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

    fn done(self) -> FlagVar {
        FlagVar { name: self.name, flags: self.flags }
    }
}

fn etcd_tls(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let server = format!("cert/etcd-server/{}", host.name);
    let peer = format!("cert/etcd-peer/{}", host.name);
    Var::new("ETCD_TLS_ARGS")
        .flag("cert-file", paths.cert(&server, host))
        .flag("key-file", paths.key(&server, host))
        .flag("trusted-ca-file", paths.ca("etcd-client", host))
        .flag("client-cert-auth", "true")
        .flag("peer-cert-file", paths.cert(&peer, host))
        .flag("peer-key-file", paths.key(&peer, host))
        .flag("peer-trusted-ca-file", paths.ca("etcd-peer", host))
        .flag("peer-client-cert-auth", "true")
        .done()
}

fn url(address: std::net::IpAddr, port: u16) -> String {
    match address {
        std::net::IpAddr::V6(ip) => format!("https://[{ip}]:{port}"),
        std::net::IpAddr::V4(ip) => format!("https://{ip}:{port}"),
    }
}

fn etcd_cluster(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let members = paths
        .context
        .hosts
        .iter()
        .filter(|h| h.has(Role::Etcd))
        .map(|h| format!("{}={}", h.name, url(h.address, 2380)))
        .collect::<Vec<_>>()
        .join(",");
    Var::new("ETCD_CLUSTER_ARGS")
        .flag("name", host.name.clone())
        .flag("listen-client-urls", format!("{},https://127.0.0.1:2379", url(host.address, 2379)))
        .flag("advertise-client-urls", url(host.address, 2379))
        .flag("listen-peer-urls", url(host.address, 2380))
        .flag("initial-advertise-peer-urls", url(host.address, 2380))
        .flag("initial-cluster", members)
        .flag("initial-cluster-state", "new")
        .done()
}

/// The URLs the API server dials for etcd.
pub fn etcd_servers(hosts: &[Host]) -> String {
    hosts.iter().filter(|h| h.has(Role::Etcd)).map(|h| url(h.address, 2379)).collect::<Vec<_>>().join(",")
}

fn apiserver(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let cluster = &paths.context.cluster;
    let token_csv = cluster.token_csv;
    let kubelet_ca = kubelet_ca(paths.context);
    Var::new("KUBE_APISERVER_TLS_ARGS")
        .flag("secure-port", cluster.apiserver_port.to_string())
        .flag("advertise-address", host.address.to_string())
        .flag("tls-cert-file", paths.cert("cert/apiserver", host))
        .flag("tls-private-key-file", paths.key("cert/apiserver", host))
        .flag("client-ca-file", paths.ca("apiserver-client", host))
        .flag("etcd-servers", etcd_servers(&paths.context.hosts))
        .flag("etcd-cafile", paths.ca("etcd-server", host))
        .flag("etcd-certfile", paths.cert("cert/apiserver-etcd-client", host))
        .flag("etcd-keyfile", paths.key("cert/apiserver-etcd-client", host))
        .flag("kubelet-client-certificate", paths.cert("cert/apiserver-kubelet-client", host))
        .flag("kubelet-client-key", paths.key("cert/apiserver-kubelet-client", host))
        .flag_if(
            kubelet_ca.is_some(),
            "kubelet-certificate-authority",
            kubelet_ca.as_ref().map(|ca| paths.cert(ca.as_str(), host)).unwrap_or_default(),
        )
        .flag("service-account-key-file", paths.on("keypair/service-account", host, FileRole::PublicKey))
        .flag("service-account-signing-key-file", paths.key("keypair/service-account", host))
        .flag("service-account-issuer", format!("https://kubernetes.default.svc.{}", cluster.cluster_domain))
        .flag("service-cluster-ip-range", cluster.service_cidr.to_string())
        .flag("requestheader-client-ca-file", paths.ca("front-proxy", host))
        .flag("requestheader-allowed-names", "front-proxy-client")
        .flag("requestheader-username-headers", "X-Remote-User")
        .flag("requestheader-group-headers", "X-Remote-Group")
        .flag("requestheader-extra-headers-prefix", "X-Remote-Extra-")
        .flag("proxy-client-cert-file", paths.cert("cert/front-proxy-client", host))
        .flag("proxy-client-key-file", paths.key("cert/front-proxy-client", host))
        .flag_if(token_csv, "token-auth-file", paths.on("token-file/bootstrap", host, FileRole::TokenFile))
        .flag_if(cluster.token_secret, "enable-bootstrap-token-auth", "true")
        .done()
}

fn controller_manager(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let kubeconfig = paths.kubeconfig("kubeconfig/kube-controller-manager", host);
    let signing = super::lower::signing_needed(paths.context);
    let duration_flag = if paths.context.cluster.version < (1, 19) {
        "experimental-cluster-signing-duration"
    } else {
        "cluster-signing-duration"
    };
    let signing_ca = super::lower::set_ca(paths.context, "apiserver-client");
    let validity_hours = paths.context.sets["apiserver-client"].validity.as_secs() / 3600;
    Var::new("KUBE_CONTROLLER_MANAGER_TLS_ARGS")
        .flag("kubeconfig", kubeconfig.clone())
        .flag("authentication-kubeconfig", kubeconfig.clone())
        .flag("authorization-kubeconfig", kubeconfig)
        .flag("client-ca-file", paths.ca("apiserver-client", host))
        .flag("requestheader-client-ca-file", paths.ca("front-proxy", host))
        .flag("root-ca-file", paths.ca("apiserver", host))
        .flag("service-account-private-key-file", paths.key("keypair/service-account", host))
        .flag("use-service-account-credentials", "true")
        .flag_if(signing, "cluster-signing-cert-file", paths.cert(signing_ca.as_str(), host))
        .flag_if(signing, "cluster-signing-key-file", paths.key(signing_ca.as_str(), host))
        .flag_if(signing, duration_flag, format!("{validity_hours}h0m0s"))
        .done()
}

fn scheduler(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let kubeconfig = paths.kubeconfig("kubeconfig/kube-scheduler", host);
    Var::new("KUBE_SCHEDULER_TLS_ARGS")
        .flag("kubeconfig", kubeconfig.clone())
        .flag("authentication-kubeconfig", kubeconfig.clone())
        .flag("authorization-kubeconfig", kubeconfig)
        .done()
}

fn kubelet_ca(context: &Context) -> Option<ArtifactId> {
    let server = super::lower::set_ca(context, "kubelet-server");
    let signing = super::lower::set_ca(context, "apiserver-client");
    super::kubelet_serving_ca(&context.hosts, &server, &signing)
}

fn kubelet(paths: &Paths<'_>, host: &Host) -> FlagVar {
    let serving = format!("cert/kubelet-server/{}", host.name);
    let static_client = host.kubelet_client == ClientCertMode::Static;
    let static_serving = host.kubelet_serving == ServingCertMode::Static;
    let bootstrap = paths.kubeconfig("kubeconfig/bootstrap", host);
    let kubeconfig = if static_client {
        paths.kubeconfig(&format!("kubeconfig/kubelet/{}", host.name), host)
    } else {
        // Written by the kubelet itself once its client certificate is issued.
        let layout = &paths.context.layout;
        layout.in_config(&layout.kubeconfig_file("kubelet", "kubelet"))
    };
    let rotate_server = host.kubelet_serving == ServingCertMode::Bootstrap;
    Var::new("KUBELET_TLS_ARGS")
        .flag("kubeconfig", kubeconfig)
        .flag_if(!bootstrap.is_empty(), "bootstrap-kubeconfig", bootstrap)
        .flag("client-ca-file", paths.ca("kubelet-client", host))
        .flag_if(static_serving, "tls-cert-file", paths.cert(&serving, host))
        .flag_if(static_serving, "tls-private-key-file", paths.key(&serving, host))
        .flag("cert-dir", KUBELET_CERT_DIR)
        .flag_if(!static_client, "rotate-certificates", "true")
        .flag_if(rotate_server, "rotate-server-certificates", "true")
        .flag_if(
            rotate_server && paths.context.cluster.version < (1, 20),
            "feature-gates",
            "RotateKubeletServerCertificate=true",
        )
        .done()
}

/// Where the kubelet keeps the certificates it requests or makes itself.
const KUBELET_CERT_DIR: &str = "/var/lib/kubelet/pki";

fn kube_proxy(paths: &Paths<'_>, host: &Host) -> FlagVar {
    Var::new("KUBE_PROXY_TLS_ARGS").flag("kubeconfig", paths.kubeconfig("kubeconfig/kube-proxy", host)).done()
}
