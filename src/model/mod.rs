//! The model: the plan resolved into every artifact certplan will produce,
//! with defaults applied, CAs resolved per set and SANs derived.
//!
//! [`lower_plan`] is the only way in. Later stages (check, graph, issue,
//! render) read the model and never the raw plan.

mod artifact;
mod artifact_id;
mod cert_set;
mod layout;
mod lower;
pub mod values;

pub use artifact::*;
pub use artifact_id::ArtifactId;
pub use cert_set::{CertSet, UnknownCertSet};
pub use layout::{CaRole, Layout};
pub use lower::{MissingFile, loopback, lower_plan};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;

use crate::plan::Role;

/// A compiled plan.
#[derive(Debug, Clone)]
pub struct Model {
    /// Cluster-wide settings.
    pub cluster: Cluster,
    /// File naming and directories.
    pub layout: Layout,
    /// The hosts, in plan order.
    pub hosts: Vec<Host>,
    /// The CA of each set that has one, with the span that chose it.
    pub set_cas: BTreeMap<CertSet, SetCa>,
    /// Every artifact: CAs first, then what they sign, then what embeds those.
    pub artifacts: Vec<Artifact>,
    /// Warning rules the plan allows (`[[allow]]`).
    pub allowed: Vec<crate::diag::RuleId>,
    /// The age recipients the tree's secret files are encrypted to; empty
    /// when they are written in plaintext.
    pub recipients: Vec<String>,
    /// The plan's template directory (`templates = "..."`), as written:
    /// relative to the plan file.
    pub templates: Option<String>,
    /// Index of `artifacts` by id.
    pub index: std::collections::HashMap<ArtifactId, usize>,
    /// The CAs being rotated, by name (`[cas.NAME] rotation`).
    pub rotations: BTreeMap<String, Rotation>,
    /// The rotation of the service-account key pair (`[sets.service-account] rotation`).
    pub key_rotation: Option<Rotation>,
    /// The CAs whose key is kept off the tree (`[cas.NAME] offline`).
    pub offline: Vec<ArtifactId>,
    /// The CAs certplan does not hold (`[cas.NAME] external`).
    pub externals: Vec<ExternalCa>,
    /// The certificate (PEM) of each external CA, once read from its file.
    pub external_pem: std::collections::HashMap<ArtifactId, String>,
    /// Faults of lowering itself (a flag naming a file nothing places). A
    /// plan with check errors may cause them; reported only when it has
    /// none, so they never hide the diagnostic that explains them.
    pub faults: Vec<MissingFile>,
}

/// A CA whose key certplan does not hold: where its certificate is.
#[derive(Debug, Clone)]
pub struct ExternalCa {
    /// The CA.
    pub id: ArtifactId,
    /// Its certificate file, as the plan writes it (relative to the plan).
    pub path: String,
    /// Where the plan writes it.
    pub span: Range<usize>,
}

/// A CA rotation the plan asks for.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Its step.
    pub step: crate::plan::RotationStep,
    /// Where the plan writes it.
    pub span: Range<usize>,
}

/// The CA chosen for a set.
#[derive(Debug, Clone)]
pub struct SetCa {
    /// The CA's artifact id.
    pub ca: ArtifactId,
    /// Where the plan chose it, if it did.
    pub span: Option<Range<usize>>,
}

/// Cluster-wide settings, resolved.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The cluster's name.
    pub name: String,
    /// Kubernetes `(major, minor)`.
    pub version: (u32, u32),
    /// What kubeconfigs dial.
    pub apiserver_url: String,
    /// The host part of `apiserver_url`.
    pub apiserver_host: String,
    /// The port of `apiserver_url` (also the API server's secure port).
    pub apiserver_port: u16,
    /// Where `apiserver_url` is written in the plan.
    pub apiserver_url_span: Range<usize>,
    /// The service networks: one, or two of different IP families
    /// (dual-stack), the primary first.
    pub service_cidrs: Vec<ipnet::IpNet>,
    /// Where `service_cidr` is written in the plan.
    pub service_cidr_span: Range<usize>,
    /// The first address of the primary service network: the `kubernetes`
    /// Service's, which the API server's certificate must carry.
    pub first_service_ip: IpAddr,
    /// The cluster DNS domain.
    pub cluster_domain: String,
    /// Whether `token.csv` holds a bootstrap token (`--token-auth-file`).
    pub token_csv: bool,
    /// Whether a bootstrap-token Secret is written (`--enable-bootstrap-token-auth`).
    pub token_secret: bool,
    /// How long a bootstrap token in a Secret lives.
    pub token_ttl: std::time::Duration,
    /// The bootstrap token's extra groups.
    pub token_groups: Vec<String>,
}

/// A host, resolved.
#[derive(Debug, Clone)]
pub struct Host {
    /// Its name (also its node name).
    pub name: String,
    /// Its address.
    pub address: IpAddr,
    /// What runs on it.
    pub roles: Vec<Role>,
    /// Where it is declared.
    pub span: Range<usize>,
    /// Where its kubelet's client certificate comes from.
    pub kubelet_client: crate::plan::ClientCertMode,
    /// Where its kubelet's serving certificate comes from.
    pub kubelet_serving: crate::plan::ServingCertMode,
    /// Where the plan chooses its kubelet's client certificate mode, if it does.
    pub kubelet_client_span: Option<Range<usize>>,
    /// Where the plan chooses its kubelet's serving certificate mode, if it does.
    pub kubelet_serving_span: Option<Range<usize>>,
    /// SANs added to its serving certificates.
    pub extra_sans: Vec<crate::model::values::SanValue>,
}

impl Host {
    /// Whether the host has a role.
    #[must_use]
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

impl Host {
    /// Whether its kubelet asks the API server for a certificate.
    #[must_use]
    pub fn bootstraps(&self) -> bool {
        self.has(Role::Worker)
            && (self.kubelet_client == crate::plan::ClientCertMode::Bootstrap
                || self.kubelet_serving == crate::plan::ServingCertMode::Bootstrap)
    }
}

/// The CA the API server verifies kubelets' serving certificates with, when
/// one CA covers them all: the `kubelet-server` set's for static
/// certificates, the controller-manager's signing CA for requested ones. A
/// self-signed kubelet cannot be verified at all.
#[must_use]
pub fn kubelet_serving_ca(hosts: &[Host], kubelet_server: &ArtifactId, signing: &ArtifactId) -> Option<ArtifactId> {
    use crate::plan::ServingCertMode;
    let mut cas = hosts.iter().filter(|h| h.has(Role::Worker)).map(|h| match h.kubelet_serving {
        ServingCertMode::Static => Some(kubelet_server),
        ServingCertMode::Bootstrap => Some(signing),
        ServingCertMode::SelfSigned => None,
    });
    let first = cas.next()??;
    cas.all(|ca| ca == Some(first)).then(|| first.clone())
}

impl Cluster {
    /// `--service-cluster-ip-range`: the networks, primary first.
    pub fn service_cidr_flag(&self) -> String {
        self.service_cidrs.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    }
}

impl Model {
    /// Stamps every rendered artifact with the digest of the override
    /// template that renders it (`stamp(name)`, `None` for an embedded one).
    /// Returns whether any artifact is rendered by an override.
    pub fn stamp_templates(&mut self, stamp: impl Fn(&str) -> Option<String>) -> bool {
        let mut any = false;
        for artifact in &mut self.artifacts {
            if let Some(name) = artifact.spec.template_name() {
                let digest = stamp(name);
                any |= digest.is_some();
                artifact.spec.set_template_override(digest);
            }
        }
        any
    }

    /// The index of the artifact with an id.
    #[must_use]
    pub fn position(&self, id: &ArtifactId) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// The artifact with an id given as text (`--rotate ID`); `None` when
    /// the text is no id or no artifact has it.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<&Artifact> {
        self.artifact(&ArtifactId::parse(id)?)
    }

    /// [`kubelet_serving_ca`] of this model.
    #[must_use]
    pub fn kubelet_serving_ca(&self) -> Option<ArtifactId> {
        let server = &self.set_cas.get(&CertSet::KubeletServer)?.ca;
        let signing = &self.set_cas.get(&CertSet::ApiserverClient)?.ca;
        kubelet_serving_ca(&self.hosts, server, signing)
    }

    /// The rotation step of `[cas.NAME]`, if it is rotated.
    #[must_use]
    pub fn rotation(&self, ca: &str) -> Option<crate::plan::RotationStep> {
        self.rotations.get(ca).map(|r| r.step)
    }

    /// The artifact with an id.
    #[must_use]
    pub fn artifact(&self, id: &ArtifactId) -> Option<&Artifact> {
        self.index.get(id).map(|&i| &self.artifacts[i])
    }

    /// The hosts with a role.
    pub fn hosts_with(&self, role: Role) -> impl Iterator<Item = &Host> {
        self.hosts.iter().filter(move |h| h.has(role))
    }
}
