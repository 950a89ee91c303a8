//! Builds the certificate artifacts (CAs, leaves of every set, users, the
//! service-account key pair) with their subjects, SANs, EKUs and placements,
//! then hands over to [`super::files`] for what embeds or names them.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::context::{CaConfig, Context, SetConfig};
use crate::model::values::SanValue;
use crate::model::{
    Artifact, ArtifactId, BundleSpec, CaRole, CertSet, CertSpec, Eku, FileRole, Host, KeyPairSpec, Model, Placement,
    Rotation, Sans, SetCa, Spans, Spec, Subject,
};
use crate::plan::{ClientCertMode, Role, RotationStep, ServingCertMode};

/// Builds the whole model from resolved settings.
pub fn build(context: Context) -> Model {
    let mut builder = Builder { context: &context, artifacts: Vec::new() };
    builder.cas();
    builder.etcd();
    builder.control_plane();
    builder.workers();
    builder.users();
    let mut artifacts = builder.artifacts;
    let faults = super::files::build(&context, &mut artifacts).err().into_iter().collect();
    if !context.recipients.is_empty() {
        seal_secret_files(&mut artifacts);
    }
    let set_cas = context
        .sets
        .iter()
        .filter_map(|(set, config)| {
            let ca = config.ca.as_ref()?;
            Some((*set, SetCa { ca: ArtifactId::ca(ca), span: config.ca_span.clone() }))
        })
        .collect::<BTreeMap<_, _>>();
    let index = artifacts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
    let rotations = context
        .cas
        .iter()
        .filter_map(|ca| {
            let (step, span) = ca.rotation.clone()?;
            Some((ca.name.clone(), Rotation { step, span }))
        })
        .collect();
    let key_rotation = context.sets.get(&CertSet::ServiceAccount).and_then(|set| {
        let (step, span) = set.rotation.clone()?;
        Some(Rotation { step, span })
    });
    let offline = context.cas.iter().filter(|ca| ca.offline).map(|ca| ArtifactId::ca(&ca.name)).collect();
    let externals = context
        .cas
        .iter()
        .filter_map(|ca| {
            let (path, span) = ca.external.clone()?;
            Some(crate::model::ExternalCa { id: ArtifactId::ca(&ca.name), path, span })
        })
        .collect();
    Model {
        cluster: context.cluster,
        layout: context.layout,
        hosts: context.hosts,
        set_cas,
        artifacts,
        allowed: context.allowed,
        recipients: context.recipients,
        templates: context.templates,
        index,
        rotations,
        key_rotation,
        offline,
        externals,
        external_pem: std::collections::HashMap::new(),
        faults,
    }
}

/// Names every secret file of the tree as encrypted (`.age` appended); the
/// path on the host stays as it is.
fn seal_secret_files(artifacts: &mut [Artifact]) {
    for placement in artifacts.iter_mut().flat_map(|a| a.files.iter_mut()) {
        if placement.role.is_secret() {
            placement.path.push_str(crate::secrets::SUFFIX);
        }
    }
}

/// Whether the controller-manager signs kubelet certificates (TLS
/// bootstrapping is possible), so it needs the client CA's key.
pub fn signing_needed(context: &Context) -> bool {
    let cluster = &context.cluster;
    cluster.token_csv || cluster.token_secret || context.hosts.iter().any(Host::bootstraps)
}

/// The id of the CA that signs with `[cas.NAME]`: the one a rotation brings
/// in from its `issue` step on (`ca/NAME/next` until `retire` makes it
/// `ca/NAME`), else `ca/NAME`.
pub fn signing_ca(context: &Context, name: &str) -> ArtifactId {
    match context.rotation(name) {
        Some(RotationStep::Issue) => ArtifactId::next_ca(name),
        _ => ArtifactId::ca(name),
    }
}

/// The id of what components that trust `[cas.NAME]` read: its trust
/// bundle while a rotation trusts both CAs (`trust` and `issue`), else the CA.
pub fn trusted_ca(context: &Context, name: &str) -> ArtifactId {
    match context.rotation(name) {
        Some(RotationStep::Trust | RotationStep::Issue) => ArtifactId::bundle(name),
        _ => ArtifactId::ca(name),
    }
}

/// The service-account key pair that signs tokens: the one a rotation
/// brings in from its `issue` step on, else the plan's.
pub fn signing_keypair(context: &Context) -> ArtifactId {
    match context.key_rotation() {
        Some(RotationStep::Issue) => ArtifactId::next_keypair(CertSet::ServiceAccount),
        _ => ArtifactId::keypair(CertSet::ServiceAccount),
    }
}

/// What the API server verifies service-account tokens with: the public
/// keys of both key pairs while a rotation trusts both, else the key pair's.
pub fn trusted_keys(context: &Context) -> ArtifactId {
    match context.key_rotation() {
        Some(RotationStep::Trust | RotationStep::Issue) => ArtifactId::key_bundle(CertSet::ServiceAccount),
        _ => ArtifactId::keypair(CertSet::ServiceAccount),
    }
}

/// What components read to trust the CA of a set ([`trusted_ca`] of [`set_ca`]'s CA).
pub fn set_trust(context: &Context, set: CertSet) -> ArtifactId {
    trusted_ca(context, context.sets[&set].ca.as_deref().unwrap_or_default())
}

/// The id of the CA that signs a set ([`signing_ca`]). Artifacts are built only from a plan without
/// errors, where every set but the key pair has its CA (`missing-ca`,
/// `unknown-ca` and `set-ca-ambiguous` report the others). Should one have
/// none, the empty name makes an id no artifact has: a flag naming it fails
/// as a [`super::MissingFile`] and an issuer naming it as `unknown-ca`,
/// instead of pointing at some other CA.
pub fn set_ca(context: &Context, set: CertSet) -> ArtifactId {
    signing_ca(context, context.sets[&set].ca.as_deref().unwrap_or_default())
}

struct Builder<'c> {
    context: &'c Context,
    artifacts: Vec<Artifact>,
}

/// A leaf certificate about to be added.
struct Leaf<'a> {
    id: ArtifactId,
    identity: Option<&'static str>,
    set: CertSet,
    host: Option<&'a Host>,
    subject: Subject,
    sans: Sans,
    eku: Vec<Eku>,
    stem: String,
    placed_on: Vec<&'a Host>,
}

impl<'c> Builder<'c> {
    fn set(&self, set: CertSet) -> &'c SetConfig {
        &self.context.sets[&set]
    }

    fn hosts_with(&self, role: Role) -> Vec<&'c Host> {
        self.context.hosts.iter().filter(|h| h.has(role)).collect()
    }

    fn ca_role(&self, name: &str) -> CaRole {
        let of = |set: CertSet| self.set(set).ca.as_deref() == Some(name);
        if of(CertSet::Apiserver) {
            CaRole::Cluster
        } else if of(CertSet::EtcdServer) {
            CaRole::Etcd
        } else if of(CertSet::FrontProxy) {
            CaRole::FrontProxy
        } else {
            CaRole::Other
        }
    }

    /// The hosts whose components need a CA's certificate to verify a peer.
    fn hosts_needing_ca(&self, name: &str) -> Vec<&'c Host> {
        let of = |set: CertSet| self.set(set).ca.as_deref() == Some(name);
        self.context
            .hosts
            .iter()
            .filter(|h| {
                (h.has(Role::Etcd) && (of(CertSet::EtcdClient) || of(CertSet::EtcdPeer) || of(CertSet::EtcdServer)))
                    || (h.has(Role::ControlPlane)
                        && (of(CertSet::ApiserverClient)
                            || of(CertSet::EtcdServer)
                            || of(CertSet::KubeletServer)
                            || of(CertSet::FrontProxy)
                            || of(CertSet::Apiserver)))
                    || (h.has(Role::Worker) && (of(CertSet::KubeletClient) || of(CertSet::Apiserver)))
            })
            .collect()
    }

    /// Every CA: its certificate where components verify what it signs,
    /// its key where the controller-manager signs with it. While a rotation
    /// trusts two CAs (`trust`, `issue`), a trust bundle of both takes the
    /// CA's usual certificate file, and each CA's own pair moves beside it
    /// (`STEM-old`, `STEM-new`), on control-plane hosts only for the one the
    /// controller-manager signs with.
    fn cas(&mut self) {
        for ca in &self.context.cas {
            let stem = self.context.layout.ca_stem(&ca.name, self.ca_role(&ca.name));
            let trusting = self.hosts_needing_ca(&ca.name);
            let signers =
                if self.signs_for_controller_manager(ca) { self.hosts_with(Role::ControlPlane) } else { Vec::new() };
            let Some((rotating @ (RotationStep::Trust | RotationStep::Issue), _)) = ca.rotation else {
                let mut files = self.pki_files(&stem, &trusting, FileRole::Cert);
                files.extend(self.cluster_pki_files(&stem));
                files.extend(self.pki_files(&stem, &signers, FileRole::Key));
                self.push_ca(ca, ArtifactId::ca(&ca.name), files);
                continue;
            };
            let (old_signers, new_signers) =
                if rotating == RotationStep::Trust { (signers, Vec::new()) } else { (Vec::new(), signers) };
            for (id, stem, signers) in [
                (ArtifactId::ca(&ca.name), format!("{stem}-old"), old_signers),
                (ArtifactId::next_ca(&ca.name), format!("{stem}-new"), new_signers),
            ] {
                let mut files = self.pki_files(&stem, &signers, FileRole::Cert);
                files.extend(self.pki_files(&stem, &signers, FileRole::Key));
                files.extend(self.cluster_pki_files(&stem));
                self.push_ca(ca, id, files);
            }
            let mut files = self.pki_files(&stem, &trusting, FileRole::Cert);
            files.extend(self.cluster_pki_files(&stem).into_iter().filter(|f| f.role == FileRole::Cert));
            self.artifacts.push(Artifact {
                id: ArtifactId::bundle(&ca.name),
                spec: Spec::Bundle(BundleSpec {
                    members: vec![ArtifactId::ca(&ca.name), ArtifactId::next_ca(&ca.name)],
                }),
                files,
                origin: ca.rotation.as_ref().map(|(_, span)| span.clone()),
                spans: Spans::default(),
            });
        }
    }

    fn push_ca(&mut self, ca: &CaConfig, id: ArtifactId, files: Vec<Placement>) {
        let issuer = ca.parent.as_ref().map_or_else(|| id.clone(), |(parent, _)| ArtifactId::ca(parent));
        let path_len = ca.parent.as_ref().map(|_| self.intermediates_below(&ca.name));
        // certplan holds no key of an external CA: only its certificate is placed.
        let external = ca.external.as_ref().map(|_| String::new());
        let files =
            if external.is_some() { files.into_iter().filter(|f| f.role != FileRole::Key).collect() } else { files };
        self.artifacts.push(Artifact {
            spec: Spec::Ca(CertSpec {
                set: None,
                host: None,
                issuer,
                path_len,
                external,
                subject: ca.subject.clone(),
                sans: Sans::default(),
                eku: Vec::new(),
                key: ca.key,
                validity: ca.validity,
            }),
            id,
            files,
            origin: Some(ca.span.clone()),
            spans: Spans { key: ca.key_span.clone(), validity: ca.validity_span.clone(), ..Spans::default() },
        });
    }

    /// How many levels of intermediate CAs the plan puts below `[cas.NAME]`
    /// (its pathLenConstraint: 0 for one that signs only leaves).
    fn intermediates_below(&self, name: &str) -> u8 {
        let cas = &self.context.cas;
        let mut depth = 0u8;
        let mut level: Vec<&str> = vec![name];
        // The hierarchy has no cycles (checked); bound the walk all the same.
        for _ in 0..cas.len() {
            let below: Vec<&str> = cas
                .iter()
                .filter(|ca| ca.parent.as_ref().is_some_and(|(parent, _)| level.contains(&parent.as_str())))
                .map(|ca| ca.name.as_str())
                .collect();
            if below.is_empty() {
                break;
            }
            depth = depth.saturating_add(1);
            level = below;
        }
        depth
    }

    /// Whether the controller-manager signs kubelet certificates with this CA
    /// (TLS bootstrapping), so its key must be on control-plane hosts.
    fn signs_for_controller_manager(&self, ca: &CaConfig) -> bool {
        signing_needed(self.context) && self.set(CertSet::ApiserverClient).ca.as_deref() == Some(ca.name.as_str())
    }

    fn cluster_pki_files(&self, stem: &str) -> Vec<Placement> {
        let layout = &self.context.layout;
        [(layout.cert_file(stem), FileRole::Cert), (layout.key_file(stem), FileRole::Key)]
            .into_iter()
            .map(|(file, role)| Placement { host: None, path: format!("cluster/pki/{file}"), host_path: None, role })
            .collect()
    }

    fn pki_files(&self, stem: &str, hosts: &[&Host], role: FileRole) -> Vec<Placement> {
        let layout = &self.context.layout;
        let file = match role {
            FileRole::Key => layout.key_file(stem),
            FileRole::PublicKey => layout.public_key_file(stem),
            _ => layout.cert_file(stem),
        };
        hosts.iter().map(|host| host_placement(host, layout.in_pki(&file), role)).collect()
    }

    fn subject(&self, cn: &str, o: &[&str]) -> Subject {
        Subject {
            cn: cn.to_string(),
            o: o.iter().map(|s| (*s).to_string()).collect(),
            ..self.context.base_subject.clone()
        }
    }

    fn push_leaf(&mut self, leaf: Leaf<'_>) {
        let set = self.set(leaf.set);
        let mut files = self.pki_files(&leaf.stem, &leaf.placed_on, FileRole::Cert);
        files.extend(self.pki_files(&leaf.stem, &leaf.placed_on, FileRole::Key));
        let (subject, identity_spans) = self.identity(leaf.identity, leaf.subject, leaf.host);
        let sans_span = if leaf.set == CertSet::Apiserver {
            set.sans_override.as_ref().map(|(_, span)| span.clone())
        } else {
            None
        };
        self.artifacts.push(Artifact {
            id: leaf.id,
            spec: Spec::Cert(CertSpec {
                path_len: None,
                external: None,
                set: Some(leaf.set),
                host: leaf.host.map(|h| h.name.clone()),
                issuer: set_ca(self.context, leaf.set),
                subject,
                sans: leaf.sans,
                eku: leaf.eku,
                key: set.key,
                validity: set.validity,
            }),
            files,
            origin: leaf.host.map(|h| h.span.clone()).or_else(|| set.span.clone()),
            spans: Spans {
                key: set.key_span.clone(),
                issuer: set.ca_span.clone(),
                sans: sans_span,
                validity: set.validity_span.clone(),
                ..identity_spans
            },
        });
    }

    /// A built-in identity's subject, with the plan's `[identities]` override
    /// and where the override is written.
    fn identity(&self, name: Option<&str>, mut subject: Subject, host: Option<&Host>) -> (Subject, Spans) {
        let Some(identity) = name.and_then(|n| self.context.identities.get(n)) else {
            return (subject, Spans::default());
        };
        if let Some(cn) = &identity.cn {
            subject.cn = host.map_or_else(|| cn.clone(), |h| cn.replace("{host}", &h.name));
        }
        if let Some(o) = &identity.o {
            subject.o.clone_from(o);
        }
        let spans = Spans {
            subject: Some(identity.span.clone()),
            cn: identity.cn_span.clone(),
            o: identity.o_span.clone(),
            ..Spans::default()
        };
        (subject, spans)
    }

    fn host_sans(&self, host: &Host, set: CertSet, loopback: bool) -> Sans {
        let mut sans = Sans::default();
        sans.add_dns(&host.name);
        if loopback {
            sans.add_dns("localhost");
        }
        sans.add_ip(host.address);
        if loopback {
            sans.add_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
            sans.add_ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        add_extra(&mut sans, &self.set(set).extra_sans);
        add_extra(&mut sans, &host.extra_sans);
        sans
    }

    fn etcd(&mut self) {
        let layout = self.context.layout.clone();
        for host in self.hosts_with(Role::Etcd) {
            for (set, cfssl, kubeadm) in
                [(CertSet::EtcdServer, "etcd", "etcd/server"), (CertSet::EtcdPeer, "etcd-peer", "etcd/peer")]
            {
                self.push_leaf(Leaf {
                    id: ArtifactId::set_cert(set, Some(&host.name)),
                    identity: None,
                    set,
                    host: Some(host),
                    subject: self.subject(&host.name, &[]),
                    sans: self.host_sans(host, set, true),
                    eku: vec![Eku::ServerAuth, Eku::ClientAuth],
                    stem: layout.leaf_stem(cfssl, kubeadm),
                    placed_on: vec![host],
                });
            }
        }
    }

    fn apiserver_sans(&self) -> Sans {
        if let Some((sans, _)) = &self.set(CertSet::Apiserver).sans_override {
            let mut exact = Sans::default();
            add_extra(&mut exact, sans);
            return exact;
        }
        let cluster = &self.context.cluster;
        let mut sans = Sans::default();
        for name in ["kubernetes", "kubernetes.default", "kubernetes.default.svc"] {
            sans.add_dns(name);
        }
        sans.add_dns(&format!("kubernetes.default.svc.{}", cluster.cluster_domain));
        sans.add_dns("localhost");
        sans.add_ip(cluster.first_service_ip);
        sans.add_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let masters = self.hosts_with(Role::ControlPlane);
        // Control planes on IPv6 addresses are dialled over [::1] on the host too.
        if masters.iter().any(|host| host.address.is_ipv6()) {
            sans.add_ip(IpAddr::V6(Ipv6Addr::LOCALHOST));
        }
        for host in masters {
            sans.add_ip(host.address);
            add_extra(&mut sans, &host.extra_sans);
        }
        match cluster.apiserver_host.parse::<IpAddr>() {
            Ok(ip) => sans.add_ip(ip),
            Err(_) => sans.add_dns(&cluster.apiserver_host),
        }
        add_extra(&mut sans, &self.set(CertSet::Apiserver).extra_sans);
        sans
    }

    fn control_plane(&mut self) {
        let layout = self.context.layout.clone();
        let masters = self.hosts_with(Role::ControlPlane);
        if masters.is_empty() {
            return;
        }
        // The built-in identity of each leaf (the API server's serving
        // certificate is named after its set), its set, CN, EKUs and stems.
        let leaves = [
            (None, CertSet::Apiserver, "kube-apiserver", vec![Eku::ServerAuth], ("kubernetes", "apiserver")),
            (
                Some("apiserver-etcd-client"),
                CertSet::EtcdClient,
                "kube-apiserver-etcd-client",
                vec![Eku::ClientAuth],
                ("apiserver-etcd-client", "apiserver-etcd-client"),
            ),
            (
                Some("apiserver-kubelet-client"),
                CertSet::KubeletClient,
                "kube-apiserver-kubelet-client",
                vec![Eku::ClientAuth],
                ("apiserver-kubelet-client", "apiserver-kubelet-client"),
            ),
            (
                Some("front-proxy-client"),
                CertSet::FrontProxy,
                "front-proxy-client",
                vec![Eku::ClientAuth],
                ("front-proxy-client", "front-proxy-client"),
            ),
            (
                Some("kube-controller-manager"),
                CertSet::ApiserverClient,
                "system:kube-controller-manager",
                vec![Eku::ClientAuth],
                ("kube-controller-manager", "kube-controller-manager"),
            ),
            (
                Some("kube-scheduler"),
                CertSet::ApiserverClient,
                "system:kube-scheduler",
                vec![Eku::ClientAuth],
                ("kube-scheduler", "kube-scheduler"),
            ),
        ];
        for (identity, set, cn, eku, (cfssl, kubeadm)) in leaves {
            let id = match identity {
                Some(name) => ArtifactId::identity_cert(name, None),
                None => ArtifactId::set_cert(set, None),
            };
            let sans = if set == CertSet::Apiserver { self.apiserver_sans() } else { Sans::default() };
            self.push_leaf(Leaf {
                id,
                identity,
                set,
                host: None,
                subject: self.subject(cn, &[]),
                sans,
                eku,
                stem: layout.leaf_stem(cfssl, kubeadm),
                placed_on: masters.clone(),
            });
        }
        self.service_account(&masters);
    }

    /// The service-account key pair on control-plane hosts. While a rotation
    /// trusts two key pairs (`trust`, `issue`), a bundle of both public keys
    /// takes the public key's file, and each pair moves beside it
    /// (`STEM-old`, `STEM-new`).
    fn service_account(&mut self, masters: &[&Host]) {
        let layout = self.context.layout.clone();
        let set = CertSet::ServiceAccount;
        let stem = layout.leaf_stem("service-account", "sa");
        let key_file = |stem: &str| {
            if layout.preset == crate::plan::Preset::Cfssl { layout.key_file(stem) } else { format!("{stem}.key") }
        };
        let pair_files = |builder: &Self, stem: &str| {
            let mut files: Vec<Placement> =
                masters.iter().map(|h| host_placement(h, layout.in_pki(&key_file(stem)), FileRole::Key)).collect();
            files.extend(builder.pki_files(stem, masters, FileRole::PublicKey));
            files
        };
        let pair = |id: ArtifactId, files: Vec<Placement>| Artifact {
            id,
            spec: Spec::Keypair(KeyPairSpec { set, key: self.set(set).key }),
            files,
            origin: self.set(set).span.clone(),
            spans: Spans { key: self.set(set).key_span.clone(), ..Spans::default() },
        };
        let Some(RotationStep::Trust | RotationStep::Issue) = self.context.key_rotation() else {
            let artifact = pair(ArtifactId::keypair(set), pair_files(self, &stem));
            self.artifacts.push(artifact);
            return;
        };
        let old = pair(ArtifactId::keypair(set), pair_files(self, &format!("{stem}-old")));
        let new = pair(ArtifactId::next_keypair(set), pair_files(self, &format!("{stem}-new")));
        let bundle = Artifact {
            id: ArtifactId::key_bundle(set),
            spec: Spec::Bundle(BundleSpec { members: vec![old.id.clone(), new.id.clone()] }),
            files: self.pki_files(&stem, masters, FileRole::PublicKey),
            origin: self.set(set).rotation.as_ref().map(|(_, span)| span.clone()),
            spans: Spans::default(),
        };
        self.artifacts.extend([old, new, bundle]);
    }

    fn workers(&mut self) {
        let layout = self.context.layout.clone();
        let workers = self.hosts_with(Role::Worker);
        if workers.is_empty() {
            return;
        }
        self.push_leaf(Leaf {
            id: ArtifactId::identity_cert("kube-proxy", None),
            identity: Some("kube-proxy"),
            set: CertSet::ApiserverClient,
            host: None,
            subject: self.subject("system:kube-proxy", &[]),
            sans: Sans::default(),
            eku: vec![Eku::ClientAuth],
            stem: layout.leaf_stem("kube-proxy", "kube-proxy"),
            placed_on: workers.clone(),
        });
        for host in workers {
            let node = format!("system:node:{}", host.name);
            if host.kubelet_client == ClientCertMode::Static {
                self.push_leaf(Leaf {
                    id: ArtifactId::identity_cert("kubelet", Some(&host.name)),
                    identity: Some("kubelet"),
                    set: CertSet::ApiserverClient,
                    host: Some(host),
                    subject: self.subject(&node, &["system:nodes"]),
                    sans: Sans::default(),
                    eku: vec![Eku::ClientAuth],
                    stem: layout.leaf_stem("kubelet-client", "kubelet-client"),
                    placed_on: vec![host],
                });
            }
            if host.kubelet_serving != ServingCertMode::Static {
                continue;
            }
            self.push_leaf(Leaf {
                id: ArtifactId::set_cert(CertSet::KubeletServer, Some(&host.name)),
                identity: None,
                set: CertSet::KubeletServer,
                host: Some(host),
                subject: self.subject(&node, &["system:nodes"]),
                sans: self.host_sans(host, CertSet::KubeletServer, false),
                eku: vec![Eku::ServerAuth],
                stem: layout.leaf_stem("kubelet", "kubelet"),
                placed_on: vec![host],
            });
        }
    }

    fn users(&mut self) {
        let layout = self.context.layout.clone();
        let client = self.set(CertSet::ApiserverClient);
        for user in &self.context.users {
            let stem = &user.name;
            let files = [(layout.cert_file(stem), FileRole::Cert), (layout.key_file(stem), FileRole::Key)]
                .into_iter()
                .map(|(file, role)| Placement {
                    host: None,
                    path: format!("cluster/users/{file}"),
                    host_path: None,
                    role,
                })
                .collect();
            let groups: Vec<&str> = user.groups.iter().map(String::as_str).collect();
            self.artifacts.push(Artifact {
                id: ArtifactId::user_cert(&user.name),
                spec: Spec::Cert(CertSpec {
                    path_len: None,
                    external: None,
                    set: Some(CertSet::ApiserverClient),
                    host: None,
                    issuer: user.ca.as_ref().map_or_else(
                        || set_ca(self.context, CertSet::ApiserverClient),
                        |(ca, _)| signing_ca(self.context, ca),
                    ),
                    subject: self.subject(&user.name, &groups),
                    sans: Sans::default(),
                    eku: vec![Eku::ClientAuth],
                    key: user.key.unwrap_or(client.key),
                    validity: user.validity.unwrap_or(client.validity),
                }),
                files,
                origin: Some(user.span.clone()),
                spans: Spans {
                    key: user.key_span.clone().or_else(|| client.key_span.clone()),
                    issuer: user.ca.as_ref().map(|(_, span)| span.clone()),
                    subject: Some(user.span.clone()),
                    validity: user.validity_span.clone().or_else(|| client.validity_span.clone()),
                    cn: Some(user.name_span.clone()),
                    o: user.groups_span.clone(),
                    ..Spans::default()
                },
            });
        }
    }
}

fn add_extra(sans: &mut Sans, extra: &[SanValue]) {
    for san in extra {
        match san {
            SanValue::Ip(ip) => sans.add_ip(*ip),
            SanValue::Dns(name) => sans.add_dns(name),
        }
    }
}

/// A file on a host at an absolute on-host path.
pub fn host_placement(host: &Host, host_path: String, role: FileRole) -> Placement {
    Placement {
        host: Some(host.name.clone()),
        path: format!("hosts/{}{}", host.name, host_path),
        host_path: Some(host_path),
        role,
    }
}
