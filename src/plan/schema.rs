//! The serde types of a plan file (schema v1). Every value a diagnostic may
//! point at is a [`Spanned`]; unknown keys are errors everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A whole plan file.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
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
    #[schemars(with = "BTreeMap<String, CaSection>")]
    pub cas: BTreeMap<Spanned<String>, CaSection>,
    /// The machines of the cluster.
    #[serde(default)]
    #[schemars(with = "Vec<HostSection>")]
    pub hosts: Vec<Spanned<HostSection>>,
    /// Settings of the certificate sets.
    #[serde(default)]
    pub sets: SetsSection,
    /// Extra client identities, each with a kubeconfig.
    #[serde(default)]
    #[schemars(with = "Vec<UserSection>")]
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
    /// Secrets at rest: encrypt every secret file of the output tree.
    #[serde(default)]
    pub secrets: SecretsSection,
    /// A directory of templates that replace the embedded ones file by file
    /// (`kubeconfig.yaml`, `flags.env`, ...), relative to the plan file;
    /// `apply --templates DIR` takes precedence over it.
    #[schemars(with = "Option<String>", extend("x-default" = "the embedded templates", "examples" = ["templates"]))]
    pub templates: Option<Spanned<String>>,
}

/// `[identities]`: subject overrides of built-in client identities.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitiesSection {
    /// The controller-manager's client certificate.
    #[serde(rename = "kube-controller-manager")]
    #[schemars(with = "Option<IdentitySection>")]
    pub kube_controller_manager: Option<Spanned<IdentitySection>>,
    /// The scheduler's client certificate.
    #[serde(rename = "kube-scheduler")]
    #[schemars(with = "Option<IdentitySection>")]
    pub kube_scheduler: Option<Spanned<IdentitySection>>,
    /// kube-proxy's client certificate.
    #[serde(rename = "kube-proxy")]
    #[schemars(with = "Option<IdentitySection>")]
    pub kube_proxy: Option<Spanned<IdentitySection>>,
    /// Each kubelet's client certificate; `{host}` in `cn` is the host name.
    #[schemars(with = "Option<IdentitySection>")]
    pub kubelet: Option<Spanned<IdentitySection>>,
    /// The API server's client certificate for kubelets.
    #[serde(rename = "apiserver-kubelet-client")]
    #[schemars(with = "Option<IdentitySection>")]
    pub apiserver_kubelet_client: Option<Spanned<IdentitySection>>,
    /// The API server's client certificate for etcd.
    #[serde(rename = "apiserver-etcd-client")]
    #[schemars(with = "Option<IdentitySection>")]
    pub apiserver_etcd_client: Option<Spanned<IdentitySection>>,
    /// The front-proxy client certificate.
    #[serde(rename = "front-proxy-client")]
    #[schemars(with = "Option<IdentitySection>")]
    pub front_proxy_client: Option<Spanned<IdentitySection>>,
}

/// A subject override.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentitySection {
    /// Common name (the user name the API server sees).
    #[schemars(with = "Option<String>", extend("examples" = ["system:kube-controller-manager"]))]
    pub cn: Option<Spanned<String>>,
    /// Organisations (the groups the API server sees).
    #[schemars(with = "Option<Vec<String>>", extend("examples" = [["k8s"]]))]
    pub o: Option<Spanned<Vec<Spanned<String>>>>,
}

/// `[[allow]]`: a warning rule allowed for a reason.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllowEntry {
    /// The rule id.
    #[schemars(with = "String", extend("examples" = ["validity-over-a-year"]))]
    pub rule: Spanned<String>,
    /// Why it is allowed.
    #[schemars(with = "String", extend("examples" = ["certificates are replaced by the yearly rebuild"]))]
    pub reason: Spanned<String>,
}

/// `[cluster]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The cluster's name, used in kubeconfigs.
    #[schemars(with = "String", extend("examples" = ["kubernetes"]))]
    pub name: Spanned<String>,
    /// `MAJOR.MINOR`, selects flag names.
    #[schemars(with = "String", extend("examples" = ["1.31"]))]
    pub kubernetes_version: Spanned<String>,
    /// The URL kubeconfigs dial: a VIP or load balancer.
    #[schemars(with = "String", extend("examples" = ["https://192.168.214.200:6443"]))]
    pub apiserver_url: Spanned<String>,
    /// The service network, or two of different IP families for a
    /// dual-stack cluster (`"10.96.0.0/12,fd00:10:96::/112"` as
    /// `--service-cluster-ip-range` takes them, or an array). The first
    /// address of the first one joins the API server's SANs.
    #[schemars(with = "super::ServiceCidrs", extend("examples" = ["10.96.0.0/12", "10.96.0.0/12,fd00:10:96::/112"]))]
    pub service_cidr: Spanned<super::ServiceCidrs>,
    /// The cluster DNS domain.
    #[schemars(with = "Option<String>", extend("default" = "cluster.local", "examples" = ["cluster.local"]))]
    pub cluster_domain: Option<Spanned<String>>,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultsSection {
    /// Key algorithm of every key unless a CA, set or user says otherwise.
    #[schemars(with = "Option<KeyAlgorithm>", extend("default" = "rsa-2048", "examples" = ["ecdsa-p256"]))]
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity of leaf certificates.
    #[schemars(with = "Option<String>", extend("default" = "8760h", "examples" = ["90d"]))]
    pub validity: Option<Spanned<String>>,
    /// Validity of CA certificates.
    #[schemars(with = "Option<String>", extend("default" = "87600h", "examples" = ["20y"]))]
    pub ca_validity: Option<Spanned<String>>,
    /// Subject fields shared by every certificate.
    #[schemars(extend("examples" = [{"C": "CN", "ST": "BeiJing", "L": "BeiJing", "OU": "System"}]))]
    pub subject: Option<SubjectDefaults>,
}

/// Subject fields shared by every certificate. `O` and `CN` are identities
/// and are never defaulted.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectDefaults {
    /// Country.
    #[serde(rename = "C")]
    #[schemars(with = "Option<String>", extend("examples" = ["CN"]))]
    pub c: Option<Spanned<String>>,
    /// State or province.
    #[serde(rename = "ST")]
    #[schemars(with = "Option<String>", extend("examples" = ["BeiJing"]))]
    pub st: Option<Spanned<String>>,
    /// Locality.
    #[serde(rename = "L")]
    #[schemars(with = "Option<String>", extend("examples" = ["BeiJing"]))]
    pub l: Option<Spanned<String>>,
    /// Organisational unit.
    #[serde(rename = "OU")]
    #[schemars(with = "Option<String>", extend("examples" = ["System"]))]
    pub ou: Option<Spanned<String>>,
}

/// `[layout]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutSection {
    /// File naming convention.
    #[schemars(with = "Option<Preset>", extend("default" = "kubeadm", "examples" = ["cfssl"]))]
    pub preset: Option<Spanned<Preset>>,
    /// Directory of certificates and keys on the hosts.
    #[schemars(with = "Option<String>", extend("x-default" = "`/etc/kubernetes/pki` (kubeadm), `/etc/kubernetes/ssl` (cfssl)", "examples" = ["/etc/kubernetes/ssl"]))]
    pub pki_dir: Option<Spanned<String>>,
    /// Directory of kubeconfigs, token.csv and flag files on the hosts.
    #[schemars(with = "Option<String>", extend("default" = "/etc/kubernetes", "examples" = ["/etc/kubernetes"]))]
    pub config_dir: Option<Spanned<String>>,
}

/// A file naming convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `ca.pem`, `ca-key.pem`, `kubernetes.pem`, as the classic binary install.
    Cfssl,
    /// `ca.crt`, `ca.key`, `etcd/server.crt`, as kubeadm.
    Kubeadm,
}

/// `[cas.NAME]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaSection {
    /// Common name.
    #[schemars(with = "String", extend("examples" = ["kubernetes"]))]
    pub cn: Spanned<String>,
    /// Organisations.
    #[serde(default)]
    #[schemars(with = "Vec<String>", extend("examples" = [["k8s"]]))]
    pub o: Vec<Spanned<String>>,
    /// Key algorithm.
    #[schemars(with = "Option<KeyAlgorithm>", extend("x-default" = "`[defaults] key`", "examples" = ["ecdsa-p384"]))]
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    #[schemars(with = "Option<String>", extend("x-default" = "`[defaults] ca_validity`", "examples" = ["87600h"]))]
    pub validity: Option<Spanned<String>>,
    /// The CA that signs this one, by its `[cas.NAME]` name: this CA is then
    /// an intermediate, and its certificates carry it in their chain.
    /// Without it the CA signs itself (a root).
    #[schemars(with = "Option<String>", extend("x-default" = "none: a self-signed root", "examples" = ["root"]))]
    pub parent: Option<Spanned<String>>,
    /// A CA certplan does not hold: only its certificate is known (a file,
    /// relative to the plan). Certificates it must sign become requests
    /// (`DIR/requests/ID.csr`) that the next `apply` completes once the
    /// signed certificate is dropped beside them (`ID.crt`).
    #[schemars(extend("x-default" = "none: certplan holds the CA's key", "examples" = [{"cert": "external/ca.crt"}]))]
    pub external: Option<ExternalCaSection>,
    /// The CA's key is kept off the output tree (an offline root): after an
    /// apply that issues it, move its key file out of the tree; `plan`,
    /// `apply` and `verify` work without it. An intermediate it must sign
    /// becomes a request (`requests/ca/NAME.csr`) to sign offline; its own
    /// renewal needs the key back for one apply.
    #[serde(default)]
    #[schemars(extend("x-default" = false, "examples" = [true]))]
    pub offline: bool,
    /// The step of a rotation to a new CA under way: `trust` (both CAs
    /// trusted everywhere, leaves still signed by the old one), then `issue`
    /// (every leaf signed by the new one), then `retire` (the old one
    /// trusted nowhere and its key deleted); then delete the line. Each
    /// step is rolled out to every host before the next is applied.
    #[schemars(with = "Option<RotationStep>", extend("x-default" = "no rotation", "examples" = ["trust"]))]
    pub rotation: Option<Spanned<RotationStep>>,
}

/// `[cas.NAME] external`: a CA whose key certplan does not hold.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalCaSection {
    /// The CA's certificate (PEM), relative to the plan file.
    #[schemars(with = "String", extend("examples" = ["external/ca.crt"]))]
    pub cert: Spanned<String>,
}

/// A step of a staged CA rotation, in the order they are taken.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RotationStep {
    /// Issue the new CA and trust both.
    Trust,
    /// Sign every leaf with the new CA; both stay trusted.
    Issue,
    /// Trust only the new CA; delete the old key.
    Retire,
}

impl RotationStep {
    /// The step as the plan writes it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trust => "trust",
            Self::Issue => "issue",
            Self::Retire => "retire",
        }
    }

    /// Whether a tree in step `from` (`None`: no rotation) may be taken to
    /// step `to` in one apply: the same step or the next one.
    #[must_use]
    pub fn follows(from: Option<Self>, to: Option<Self>) -> bool {
        from == to || Self::next(from) == to
    }

    /// The step after `from`, in the cycle none → trust → issue → retire → none.
    #[must_use]
    pub fn next(from: Option<Self>) -> Option<Self> {
        match from {
            None => Some(Self::Trust),
            Some(Self::Trust) => Some(Self::Issue),
            Some(Self::Issue) => Some(Self::Retire),
            Some(Self::Retire) => None,
        }
    }
}

/// `[[hosts]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostSection {
    /// Host name (also the node name).
    #[schemars(with = "String", extend("examples" = ["node1"]))]
    pub name: Spanned<String>,
    /// The address its components listen on and are dialled at.
    #[schemars(with = "String", extend("examples" = ["192.168.214.201"]))]
    pub address: Spanned<String>,
    /// What runs on it.
    #[schemars(with = "Vec<Role>", extend("examples" = [["control-plane", "etcd"]]))]
    pub roles: Spanned<Vec<Spanned<Role>>>,
    /// Extra SANs for this host's serving certificates (etcd server and peer,
    /// kubelet serving) and, on a control-plane host, the API server's.
    #[serde(default)]
    #[schemars(with = "Vec<String>", extend("examples" = [["node1.example.com"]]))]
    pub extra_sans: Vec<Spanned<String>>,
    /// This host's kubelet certificate modes, overriding `[kubelet]`.
    #[schemars(with = "Option<KubeletSection>", extend("x-default" = "`[kubelet]`", "examples" = [{"serving_cert": "bootstrap"}]))]
    pub kubelet: Option<Spanned<KubeletSection>>,
}

/// What a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetsSection {
    /// etcd's serving certificates.
    #[serde(rename = "etcd-server")]
    #[schemars(with = "Option<SetSection>")]
    pub etcd_server: Option<Spanned<SetSection>>,
    /// etcd members' peer certificates.
    #[serde(rename = "etcd-peer")]
    #[schemars(with = "Option<SetSection>")]
    pub etcd_peer: Option<Spanned<SetSection>>,
    /// Clients of etcd (the API server).
    #[serde(rename = "etcd-client")]
    #[schemars(with = "Option<SetSection>")]
    pub etcd_client: Option<Spanned<SetSection>>,
    /// The API server's serving certificate.
    #[schemars(with = "Option<SetSection>")]
    pub apiserver: Option<Spanned<SetSection>>,
    /// Clients of the API server.
    #[serde(rename = "apiserver-client")]
    #[schemars(with = "Option<SetSection>")]
    pub apiserver_client: Option<Spanned<SetSection>>,
    /// The service-account signing key pair.
    #[serde(rename = "service-account")]
    #[schemars(with = "Option<SetSection>")]
    pub service_account: Option<Spanned<SetSection>>,
    /// Kubelets' serving certificates.
    #[serde(rename = "kubelet-server")]
    #[schemars(with = "Option<SetSection>")]
    pub kubelet_server: Option<Spanned<SetSection>>,
    /// The API server's client certificate for calling kubelets.
    #[serde(rename = "kubelet-client")]
    #[schemars(with = "Option<SetSection>")]
    pub kubelet_client: Option<Spanned<SetSection>>,
    /// The aggregation layer's client certificate.
    #[serde(rename = "front-proxy")]
    #[schemars(with = "Option<SetSection>")]
    pub front_proxy: Option<Spanned<SetSection>>,
}

/// `[sets.SET]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSection {
    /// The CA that signs the set.
    #[schemars(with = "Option<String>", extend("x-default" = "the plan's only CA; required when there are several", "examples" = ["etcd"]))]
    pub ca: Option<Spanned<String>>,
    /// SANs added to the set's serving certificates.
    #[serde(default)]
    #[schemars(with = "Vec<String>", extend("examples" = [["kube-api.example.com", "192.168.214.210"]]))]
    pub extra_sans: Vec<Spanned<String>>,
    /// The API server's complete SAN list, replacing the derived one
    /// (`apiserver` only; `check` then verifies nothing required is missing).
    #[schemars(with = "Option<Vec<String>>", extend("x-default" = "derived from the cluster and hosts", "examples" = [["kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "10.96.0.1", "10.0.0.11"]]))]
    pub sans: Option<Spanned<Vec<Spanned<String>>>>,
    /// Key algorithm.
    #[schemars(with = "Option<KeyAlgorithm>", extend("x-default" = "`[defaults] key`", "examples" = ["rsa-2048"]))]
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    #[schemars(with = "Option<String>", extend("x-default" = "`[defaults] validity`", "examples" = ["2160h"]))]
    pub validity: Option<Spanned<String>>,
    /// The step of a rotation to a new key pair under way (`service-account`
    /// only): `trust` (the API server verifies tokens of both keys), `issue`
    /// (tokens are signed with the new key), `retire` (only the new key is
    /// trusted); then delete the line. Each step reaches every control-plane
    /// host before the next is applied.
    #[schemars(with = "Option<RotationStep>", extend("x-default" = "no rotation", "examples" = ["trust"]))]
    pub rotation: Option<Spanned<RotationStep>>,
}

/// `[[users]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// User name: the certificate's CN.
    #[schemars(with = "String", extend("examples" = ["admin"]))]
    pub name: Spanned<String>,
    /// Groups: the certificate's O values.
    #[schemars(with = "Option<Vec<String>>", extend("x-default" = "no groups", "examples" = [["kubeadm:cluster-admins"]]))]
    pub groups: Option<Spanned<Vec<Spanned<String>>>>,
    /// The CA that signs it (must be the `apiserver-client` set's CA).
    #[schemars(with = "Option<String>", extend("x-default" = "the `apiserver-client` set's CA", "examples" = ["kubernetes"]))]
    pub ca: Option<Spanned<String>>,
    /// The URL its kubeconfig dials (default: `cluster.apiserver_url`).
    #[schemars(with = "Option<String>", extend("x-default" = "`cluster.apiserver_url`", "examples" = ["https://10.0.0.11:6443"]))]
    pub server: Option<Spanned<String>>,
    /// Key algorithm.
    #[schemars(with = "Option<KeyAlgorithm>", extend("x-default" = "`[defaults] key`", "examples" = ["ecdsa-p256"]))]
    pub key: Option<Spanned<KeyAlgorithm>>,
    /// Validity.
    #[schemars(with = "Option<String>", extend("x-default" = "`[defaults] validity`", "examples" = ["720h"]))]
    pub validity: Option<Spanned<String>>,
}

/// `[secrets]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsSection {
    /// age recipients (`age1…`, as `age-keygen` prints them): every file of
    /// the output tree that holds a secret — private keys, kubeconfigs that
    /// embed a key, `token.csv`, the bootstrap-token Secret — is written
    /// encrypted to all of them, named with `.age` appended, so that the
    /// tree can be committed. `apply` then needs an identity (`--identity`,
    /// `CERTPLAN_AGE_IDENTITY` or `CERTPLAN_AGE_IDENTITY_FILE`) to sign.
    #[serde(default)]
    #[schemars(with = "Vec<String>", extend("x-default" = "secrets are written in plaintext", "examples" = [["age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"]]))]
    pub age_recipients: Vec<Spanned<String>>,
}

/// `[bootstrap]`.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapSection {
    /// Write `token.csv` (for `--token-auth-file`) with a bootstrap token.
    #[serde(default)]
    #[schemars(extend("examples" = [true]))]
    pub token_csv: bool,
    /// Write a bootstrap-token Secret manifest (for `--enable-bootstrap-token-auth`).
    #[serde(default)]
    #[schemars(extend("examples" = [true]))]
    pub token_secret: bool,
    /// How long a bootstrap token in a Secret lives before it is replaced.
    #[schemars(with = "Option<String>", extend("default" = "24h", "examples" = ["12h"]))]
    pub token_ttl: Option<Spanned<String>>,
    /// Extra groups of the bootstrap token (`system:bootstrappers:...`).
    #[schemars(with = "Option<Vec<String>>", extend("default" = ["system:bootstrappers:certplan:default-node-token"], "examples" = [["system:bootstrappers:worker"]]))]
    pub extra_groups: Option<Vec<Spanned<String>>>,
}

/// `[kubelet]`, or `kubelet = { ... }` on a host: how kubelets get certificates.
#[derive(Debug, Default, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletSection {
    /// The kubelet's client certificate.
    #[schemars(with = "Option<ClientCertMode>", extend("default" = "static", "examples" = ["bootstrap"]))]
    pub client_cert: Option<Spanned<ClientCertMode>>,
    /// The kubelet's serving certificate.
    #[schemars(with = "Option<ServingCertMode>", extend("default" = "static", "examples" = ["bootstrap"]))]
    pub serving_cert: Option<Spanned<ServingCertMode>>,
}

/// Where a kubelet's client certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ClientCertMode {
    /// Issued by certplan (`system:node:<host>`, `system:nodes`).
    Static,
    /// Requested by the kubelet with a bootstrap token, then rotated.
    Bootstrap,
}

/// Where a kubelet's serving certificate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, schemars::JsonSchema)]
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
    #[must_use]
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

    /// The algorithm a plan names `name` (`rsa-2048`, `ecdsa-p256`), if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
    }

    /// Whether this is an RSA key (the only kind that may encipher keys).
    #[must_use]
    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa1024 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
}
