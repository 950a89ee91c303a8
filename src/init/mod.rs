//! The starter plan `certplan init` writes: a commented plan, shaped by a
//! preset and a few addresses, that passes `check` as written. It only
//! builds text; the command decides where the text goes.

use std::fmt::Write;
use std::net::IpAddr;

use crate::model::CertSet;

/// The shape of the starter plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StarterPreset {
    /// One CA, cfssl-style file names, RSA keys, `token.csv`: the classic binary install.
    Classic,
    /// Three CAs (cluster, etcd, front-proxy), kubeadm file names, ECDSA keys.
    Kubeadm,
    /// One CA; every control-plane host also runs etcd and a kubelet.
    Minimal,
}

/// What the starter plan is made from.
#[derive(Debug, Clone)]
pub struct Starter {
    /// The preset.
    pub preset: StarterPreset,
    /// The cluster's name.
    pub name: String,
    /// `MAJOR.MINOR`.
    pub kubernetes_version: String,
    /// Control-plane addresses as given (empty: example addresses).
    pub control_plane: Vec<String>,
    /// Worker addresses as given.
    pub workers: Vec<String>,
    /// The URL kubeconfigs dial (default: the first control-plane host).
    pub apiserver_url: Option<String>,
    /// The service network (default: one that holds no host address).
    pub service_cidr: Option<String>,
}

/// Why no starter plan could be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// An address is not an IP address.
    #[error("`{0}` is not an IP address{hint}", hint = if .0.contains('/') { " (write the host's address, not its network)" } else { "" })]
    Address(String),
    /// An address is given twice in one list.
    #[error("`{0}` is listed twice")]
    Duplicate(String),
}

/// A host of the starter plan.
struct StarterHost {
    name: String,
    address: IpAddr,
    roles: Vec<&'static str>,
}

/// Service networks tried in turn; the first holding no host address wins.
const SERVICE_CIDRS: [&str; 3] = ["10.96.0.0/12", "172.30.0.0/16", "192.168.240.0/20"];

/// Writes the starter plan.
pub fn write_starter(starter: &Starter) -> Result<String, InitError> {
    let hosts = starter_hosts(starter)?;
    let first = hosts.first().map_or(IpAddr::from([10, 0, 0, 11]), |h| h.address);
    let url = starter.apiserver_url.clone().unwrap_or_else(|| match first {
        IpAddr::V4(ip) => format!("https://{ip}:6443"),
        IpAddr::V6(ip) => format!("https://[{ip}]:6443"),
    });
    let service_cidr = starter.service_cidr.clone().unwrap_or_else(|| {
        let free = SERVICE_CIDRS
            .iter()
            .find(|cidr| cidr.parse::<ipnet::IpNet>().is_ok_and(|net| !hosts.iter().any(|h| net.contains(&h.address))));
        free.unwrap_or(&SERVICE_CIDRS[0]).to_string()
    });
    let mut out = String::new();
    header(&mut out, starter);
    let _ = write!(
        out,
        r#"
[cluster]
name = "{name}"
kubernetes_version = "{version}"
# What kubeconfigs dial. With several control-plane hosts, point it at a load
# balancer or VIP; its host joins the API server's SANs.
apiserver_url = "{url}"
# Its first address (the `kubernetes` service) joins the API server's SANs.
service_cidr = "{service_cidr}"
cluster_domain = "cluster.local"
"#,
        name = starter.name,
        version = starter.kubernetes_version,
    );
    defaults_and_layout(&mut out, starter.preset);
    cas_and_sets(&mut out, starter.preset);
    for host in &hosts {
        let roles: Vec<String> = host.roles.iter().map(|r| format!("\"{r}\"")).collect();
        let _ = write!(
            out,
            "\n[[hosts]]\nname = \"{}\"\naddress = \"{}\"\nroles = [{}]\n",
            host.name,
            host.address,
            roles.join(", ")
        );
    }
    users_and_bootstrap(&mut out, starter.preset);
    Ok(out)
}

fn header(out: &mut String, starter: &Starter) {
    let shape = match starter.preset {
        StarterPreset::Classic => "the classic binary install: one CA, cfssl-style file names (ca.pem, ca-key.pem)",
        StarterPreset::Kubeadm => "kubeadm's shape: three CAs and kubeadm file names (pki/ca.crt, pki/etcd/server.crt)",
        StarterPreset::Minimal => "a small cluster: one CA; control-plane hosts also run etcd and a kubelet",
    };
    let _ = write!(
        out,
        "# A certplan plan for {shape}.\n\
         # Written by `certplan init`; it passes `certplan check` as it is. Next:\n\
         #   certplan check plan.toml\n\
         #   certplan plan plan.toml --out out\n\
         #   certplan apply plan.toml --out out\n\
         #   certplan export plan.toml --out out --host <host> --to - | ssh root@<host> bsdtar -x --safe-writes -C /\n\
         # Every key is described in the plan reference (`certplan schema --format markdown`).\n\
         # For completion in editors: `certplan schema > certplan.schema.json`, then make\n\
         # `#:schema ./certplan.schema.json` the first line of this file.\n"
    );
    if starter.control_plane.is_empty() {
        out.push_str("# The addresses below are examples: replace them with your hosts'.\n");
    }
}

fn defaults_and_layout(out: &mut String, preset: StarterPreset) {
    let (key, layout) = match preset {
        StarterPreset::Classic => ("rsa-2048", "preset = \"cfssl\"\npki_dir = \"/etc/kubernetes/ssl\""),
        StarterPreset::Kubeadm => ("ecdsa-p256", "preset = \"kubeadm\"\npki_dir = \"/etc/kubernetes/pki\""),
        StarterPreset::Minimal => ("ecdsa-p256", "preset = \"kubeadm\""),
    };
    let _ = write!(
        out,
        r#"
[defaults]
# rsa-2048 | rsa-3072 | rsa-4096 | ecdsa-p256 | ecdsa-p384 | ed25519
key = "{key}"
# Leaf certificates: a year, as Kubernetes issues them; longer draws a warning.
validity = "8760h"
# CAs: ten years; a leaf never outlives its CA.
ca_validity = "87600h"
# Subject fields of every certificate; never CN or O, which are identities.
# subject = {{ C = "DE", L = "Berlin", OU = "Platform" }}

[layout]
# File names: cfssl (ca.pem, ca-key.pem, ...) or kubeadm (ca.crt, ca.key, etcd/server.crt, ...).
{layout}
# Kubeconfigs, token.csv and flag files on the hosts.
config_dir = "/etc/kubernetes"
"#
    );
}

fn cas_and_sets(out: &mut String, preset: StarterPreset) {
    if preset != StarterPreset::Kubeadm {
        out.push_str(
            r#"
# One CA signs every certificate set. To give etcd its own CA, add
# `[cas.etcd]` and `[sets.etcd-server] ca = "etcd"` (and etcd-peer, etcd-client).
[cas.kubernetes]
cn = "kubernetes"
"#,
        );
        return;
    }
    out.push_str(
        r#"
# kubeadm's three CAs. Every set names the CA that signs it.
[cas.kubernetes]
cn = "kubernetes"

[cas.etcd]
cn = "etcd-ca"

[cas.front-proxy]
cn = "front-proxy-ca"
"#,
    );
    // Every set but the service-account key pair, which no CA signs.
    for set in CertSet::iter() {
        let Some(ca) = set.conventional_ca() else { continue };
        let _ = write!(out, "\n[sets.{set}]\nca = \"{ca}\"\n");
        if set == CertSet::Apiserver {
            out.push_str("# extra_sans = [\"k8s-api.example.com\"]   # names and IPs clients may also dial\n");
        }
    }
}

fn users_and_bootstrap(out: &mut String, preset: StarterPreset) {
    match preset {
        StarterPreset::Classic => out.push_str(
            r#"
# An administrator. `system:masters` bypasses RBAC and cannot be revoked:
# prefer a group bound to cluster-admin once the cluster runs.
[[users]]
name = "admin"
groups = ["system:masters"]

# token.csv with a bootstrap token (for `--token-auth-file`), and a
# bootstrap kubeconfig on the workers, as the classic guides do.
[bootstrap]
token_csv = true
"#,
        ),
        StarterPreset::Kubeadm => out.push_str(
            r#"
# kubeadm's administrator group (bound to cluster-admin by kubeadm), and a
# short-lived break-glass identity.
[[users]]
name = "admin"
groups = ["kubeadm:cluster-admins"]

[[users]]
name = "break-glass"
groups = ["system:masters"]
validity = "720h"

# Kubelets may request and rotate their own certificates instead:
# [kubelet]
# client_cert = "bootstrap"
# serving_cert = "bootstrap"
# [bootstrap]
# token_secret = true
"#,
        ),
        StarterPreset::Minimal => out.push_str(
            r#"
[[users]]
name = "admin"
groups = ["system:masters"]
"#,
        ),
    }
}

fn starter_hosts(starter: &Starter) -> Result<Vec<StarterHost>, InitError> {
    let example = starter.control_plane.is_empty();
    let (control_plane, workers): (Vec<String>, Vec<String>) = match (example, starter.preset) {
        (false, _) => (starter.control_plane.clone(), starter.workers.clone()),
        (true, StarterPreset::Minimal) => (vec!["10.0.0.10".into()], starter.workers.clone()),
        (true, _) if starter.workers.is_empty() => (
            ["10.0.0.11", "10.0.0.12", "10.0.0.13"].map(String::from).to_vec(),
            ["10.0.1.21", "10.0.1.22"].map(String::from).to_vec(),
        ),
        (true, _) => (["10.0.0.11", "10.0.0.12", "10.0.0.13"].map(String::from).to_vec(), starter.workers.clone()),
    };
    let (cp_name, worker_name) = match starter.preset {
        StarterPreset::Classic => ("master", "node"),
        StarterPreset::Kubeadm => ("cp", "worker"),
        StarterPreset::Minimal => ("node", "worker"),
    };
    let cp_roles: &[&'static str] = match starter.preset {
        StarterPreset::Classic => &["control-plane", "etcd"],
        StarterPreset::Kubeadm | StarterPreset::Minimal => &["control-plane", "etcd", "worker"],
    };
    let mut hosts: Vec<StarterHost> = Vec::new();
    for (i, text) in control_plane.iter().enumerate() {
        let address = parse_address(text)?;
        if hosts.iter().any(|h| h.address == address) {
            return Err(InitError::Duplicate(text.clone()));
        }
        hosts.push(StarterHost { name: format!("{cp_name}{}", i + 1), address, roles: cp_roles.to_vec() });
    }
    let mut seen = Vec::new();
    for text in &workers {
        let address = parse_address(text)?;
        if seen.contains(&address) {
            return Err(InitError::Duplicate(text.clone()));
        }
        seen.push(address);
        // A control-plane host that is also listed as a worker runs a kubelet.
        if let Some(host) = hosts.iter_mut().find(|h| h.address == address) {
            if !host.roles.contains(&"worker") {
                host.roles.push("worker");
            }
            continue;
        }
        let n = hosts.iter().filter(|h| h.name.starts_with(worker_name) && h.roles == ["worker"]).count();
        hosts.push(StarterHost { name: format!("{worker_name}{}", n + 1), address, roles: vec!["worker"] });
    }
    Ok(hosts)
}

fn parse_address(text: &str) -> Result<IpAddr, InitError> {
    text.trim().parse().map_err(|_| InitError::Address(text.to_string()))
}
