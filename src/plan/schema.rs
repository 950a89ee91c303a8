//! The serde types of a plan file (schema v1). Every value a diagnostic may
//! point at is a [`Spanned`]; unknown keys are errors everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole plan file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFile {
    /// The cluster's name, version, endpoints and networks.
    pub cluster: ClusterSection,
    /// Defaults for every certificate.
    #[serde(default)]
    pub defaults: DefaultsSection,
    /// Where files go on the hosts and how they are named.
    #[serde(default)]
    pub layout: LayoutSection,
    /// Certificate authorities by name.
    #[serde(default)]
    pub cas: BTreeMap<Spanned<String>, CaSection>,
    /// The machines of the cluster.
    #[serde(default)]
    pub hosts: Vec<Spanned<HostSection>>,
    /// Settings of the certificate sets.
    #[serde(default)]
    pub sets: SetsSection,
    /// Extra client identities, each with a kubeconfig.
    #[serde(default)]
    pub users: Vec<Spanned<UserSection>>,
    /// Bootstrap credentials.
    #[serde(default)]
    pub bootstrap: BootstrapSection,
    /// Kubelet certificate modes for every host.
    #[serde(default)]
    pub kubelet: KubeletSection,
    /// Subjects of built-in client identities, to reproduce an existing PKI.
    #[serde(default)]
    pub identities: IdentitiesSection,
    /// Warnings allowed for a documented reason.
    #[serde(default)]
    pub allow: Vec<AllowEntry>,
}

/// `[identities]`: subject overrides of built-in client identities.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesSection {
    /// The controller-manager's client certificate.
    #[serde(rename = "kube-controller-manager")]
    pub kube_controller_manager: Option<Spanned<IdentitySection>>,
    /// The scheduler's client certificate.
    #[serde(rename = "kube-scheduler")]
    pub kube_scheduler: Option<Spanned<IdentitySection>>,
    /// kube-proxy's client certificate.
    #[serde(rename = "kube-proxy")]
    pub kube_proxy: Option<Spanned<IdentitySection>>,
    /// Each kubelet's client certificate; `{host}` in `cn` is the host name.
    pub kubelet: Option<Spanned<IdentitySection>>,
    /// The API server's client certificate for kubelets.
    #[serde(rename = "apiserver-kubelet-client")]
    pub apiserver_kubelet_client: Option<Spanned<IdentitySection>>,
    /// The API server's client certificate for etcd.
    #[serde(rename = "apiserver-etcd-client")]
    pub apiserver_etcd_client: Option<Spanned<IdentitySection>>,
    /// The front-proxy client certificate.
    #[serde(rename = "front-proxy-client")]
    pub front_proxy_client: Option<Spanned<IdentitySection>>,
}

/// A subject override.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Common name (the user name the API server sees).
    pub cn: Option<Spanned<String>>,
    /// Organisations (the groups the API server sees).
    pub o: Option<Vec<Spanned<String>>>,
}

/// `[[allow]]`: a warning rule allowed for a reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    /// The rule id.
    pub rule: Spanned<String>,
    /// Why it is allowed.
    pub reason: Spanned<String>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The cluster's name, used in kubeconfigs.
    pub name: Spanned<String>,
    /// `MAJOR.MINOR`, selects flag names.
    pub kubernetes_version: Spanned<String>,
    /// The URL kubeconfigs dial: a VIP or load balancer.
    pub apiserver_url: Spanned<String>,
    /// The service network; its first address joins the API server's SANs.
    pub service_cidr: Spanned<String>,
    /// The cluster DNS domain.
    pub cluster_domain: Option<Spanned<String>>,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    /// Key algorithm of every key unless a CA, set or user says otherwise.
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity of leaf certificates.
    pub validity: Option<Spanned<String>>,
    /// Validity of CA certificates.
    pub ca_validity: Option<Spanned<String>>,
    /// Subject fields shared by every certificate.
    pub subject: Option<SubjectDefaults>,
}

/// Subject fields shared by every certificate. `O` and `CN` are identities
/// and are never defaulted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectDefaults {
    /// Country.
    #[serde(rename = "C")]
    pub c: Option<Spanned<String>>,
    /// State or province.
    #[serde(rename = "ST")]
    pub st: Option<Spanned<String>>,
    /// Locality.
    #[serde(rename = "L")]
    pub l: Option<Spanned<String>>,
    /// Organisational unit.
    #[serde(rename = "OU")]
    pub ou: Option<Spanned<String>>,
}

/// `[layout]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayoutSection {
    /// File naming convention.
    pub preset: Option<Spanned<Preset>>,
    /// Directory of certificates and keys on the hosts.
    pub pki_dir: Option<Spanned<String>>,
    /// Directory of kubeconfigs, token.csv and flag files on the hosts.
    pub config_dir: Option<Spanned<String>>,
}

/// A file naming convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `ca.pem`, `ca-key.pem`, `kubernetes.pem`, as the classic binary install.
    Cfssl,
    /// `ca.crt`, `ca.key`, `etcd/server.crt`, as kubeadm.
    Kubeadm,
}

/// `[cas.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Common name.
    pub cn: Spanned<String>,
    /// Organisations.
    #[serde(default)]
    pub o: Vec<Spanned<String>>,
    /// Key algorithm.
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    pub validity: Option<Spanned<String>>,
}

/// `[[hosts]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    /// Host name (also the node name).
    pub name: Spanned<String>,
    /// The address its components listen on and are dialled at.
    pub address: Spanned<String>,
    /// What runs on it.
    pub roles: Spanned<Vec<Spanned<Role>>>,
    /// Extra SANs for this host's serving certificates.
    #[serde(default)]
    pub extra_sans: Vec<Spanned<String>>,
    /// This host's kubelet certificate modes, overriding `[kubelet]`.
    pub kubelet: Option<Spanned<KubeletSection>>,
}

/// What a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// An etcd member.
    Etcd,
    /// kube-apiserver, kube-controller-manager, kube-scheduler.
    ControlPlane,
    /// kubelet and kube-proxy.
    Worker,
}

/// `[sets]`: one optional table per certificate set.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetsSection {
    /// etcd's serving certificates.
    #[serde(rename = "etcd-server")]
    pub etcd_server: Option<Spanned<SetSection>>,
    /// etcd members' peer certificates.
    #[serde(rename = "etcd-peer")]
    pub etcd_peer: Option<Spanned<SetSection>>,
    /// Clients of etcd (the API server).
    #[serde(rename = "etcd-client")]
    pub etcd_client: Option<Spanned<SetSection>>,
    /// The API server's serving certificate.
    pub apiserver: Option<Spanned<SetSection>>,
    /// Clients of the API server.
    #[serde(rename = "apiserver-client")]
    pub apiserver_client: Option<Spanned<SetSection>>,
    /// The service-account signing key pair.
    #[serde(rename = "service-account")]
    pub service_account: Option<Spanned<SetSection>>,
    /// Kubelets' serving certificates.
    #[serde(rename = "kubelet-server")]
    pub kubelet_server: Option<Spanned<SetSection>>,
    /// The API server's client certificate for calling kubelets.
    #[serde(rename = "kubelet-client")]
    pub kubelet_client: Option<Spanned<SetSection>>,
    /// The aggregation layer's client certificate.
    #[serde(rename = "front-proxy")]
    pub front_proxy: Option<Spanned<SetSection>>,
}

/// `[sets.SET]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSection {
    /// The CA that signs the set.
    pub ca: Option<Spanned<String>>,
    /// SANs added to the set's serving certificates.
    #[serde(default)]
    pub extra_sans: Vec<Spanned<String>>,
    /// The API server's complete SAN list, replacing the derived one
    /// (`apiserver` only; `check` then verifies nothing required is missing).
    pub sans: Option<Spanned<Vec<Spanned<String>>>>,
    /// Key algorithm.
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    pub validity: Option<Spanned<String>>,
}

/// `[[users]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// User name: the certificate's CN.
    pub name: Spanned<String>,
    /// Groups: the certificate's O values.
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// The CA that signs it (must be the `apiserver-client` set's CA).
    pub ca: Option<Spanned<String>>,
    /// The URL its kubeconfig dials (default: `cluster.apiserver_url`).
    pub server: Option<Spanned<String>>,
    /// Key algorithm.
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    pub validity: Option<Spanned<String>>,
}

/// `[bootstrap]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSection {
    /// Write `token.csv` (for `--token-auth-file`) with a bootstrap token.
    #[serde(default)]
    pub token_csv: bool,
    /// Write a bootstrap-token Secret manifest (for `--enable-bootstrap-token-auth`).
    #[serde(default)]
    pub token_secret: bool,
    /// How long a bootstrap token in a Secret lives before it is replaced.
    pub token_ttl: Option<Spanned<String>>,
    /// Extra groups of the bootstrap token (`system:bootstrappers:...`).
    pub extra_groups: Option<Vec<Spanned<String>>>,
}

/// `[kubelet]`, or `kubelet = { ... }` on a host: how kubelets get certificates.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeletSection {
    /// The kubelet's client certificate.
    pub client_cert: Option<Spanned<ClientCertMode>>,
    /// The kubelet's serving certificate.
    pub serving_cert: Option<Spanned<ServingCertMode>>,
}

/// Where a kubelet's client certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertMode {
    /// Issued by certplan (`system:node:<host>`, `system:nodes`).
    Static,
    /// Requested by the kubelet with a bootstrap token, then rotated.
    Bootstrap,
}

/// Where a kubelet's serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServingCertMode {
    /// Issued by certplan from the `kubelet-server` set.
    Static,
    /// Made by the kubelet itself; the API server cannot verify it.
    SelfSigned,
    /// Requested by CSR and rotated (`--rotate-server-certificates`).
    Bootstrap,
}

/// A key algorithm and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
pub enum KeyAlgorithm {
    /// RSA, 1024 bits: accepted by the parser only so `check` can reject it
    /// with a reason.
    #[serde(rename = "rsa-1024")]
    Rsa1024,
    /// RSA, 2048 bits.
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    /// RSA, 3072 bits.
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    /// RSA, 4096 bits.
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// ECDSA on P-256.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// ECDSA on P-384.
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
    /// Ed25519.
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl KeyAlgorithm {
    /// The name used in plans and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rsa1024 => "rsa-1024",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Ed25519 => "ed25519",
        }
    }

    /// Whether this is an RSA key (the only kind that may encipher keys).
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
}
