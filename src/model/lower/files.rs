//! Builds the artifacts that embed or name certificates: kubeconfigs, the
//! bootstrap token file, RBAC manifests and one flag file per component per
//! host. Runs after the certificates exist in the artifact list, and takes
//! every path from their placements, so a path is decided in one place.

use super::artifacts::{host_placement, set_trust};
use super::context::Context;
use super::flags::{self, Paths};
use crate::model::{
    Artifact, ArtifactId, BootstrapTokenSpec, CertSet, Credential, FileRole, Host, KubeconfigSpec, ManifestSpec,
    Placement, Spans, Spec, TokenFileSpec,
};
use crate::plan::{ClientCertMode, Role};

/// Appends kubeconfigs, token file, manifests and flag files. A flag that
/// names a file no artifact places is a fault, returned rather than written
/// as an empty value.
pub fn build(context: &Context, artifacts: &mut Vec<Artifact>) -> Result<(), flags::MissingFile> {
    let mut built = Vec::new();
    kubeconfigs(context, &mut built);
    bootstrap(context, &mut built);
    manifests(context, artifacts, &mut built);
    artifacts.extend(built);
    let paths = Paths::new(context, artifacts);
    let flag_files = flags::build(&paths)?;
    artifacts.extend(flag_files);
    Ok(())
}

fn hosts(context: &Context, role: Role) -> Vec<&Host> {
    context.hosts.iter().filter(|h| h.has(role)).collect()
}

struct KubeconfigPlan<'a> {
    id: ArtifactId,
    credential: Credential,
    user: String,
    local: bool,
    file: (&'a str, &'a str),
    on: Vec<&'a Host>,
}

fn kubeconfig(context: &Context, plan: KubeconfigPlan<'_>) -> Artifact {
    let layout = &context.layout;
    let file = layout.kubeconfig_file(plan.file.0, plan.file.1);
    let cluster = &context.cluster;
    let server = if plan.local {
        format!("https://127.0.0.1:{}", cluster.apiserver_port)
    } else {
        cluster.apiserver_url.trim_end_matches('/').to_string()
    };
    Artifact {
        id: plan.id,
        spec: Spec::Kubeconfig(KubeconfigSpec {
            cluster_name: cluster.name.clone(),
            server,
            ca: set_trust(context, CertSet::Apiserver),
            user: plan.user,
            credential: plan.credential,
            template_override: None,
        }),
        files: plan.on.iter().map(|h| host_placement(h, layout.in_config(&file), FileRole::Kubeconfig)).collect(),
        origin: Some(cluster.apiserver_url_span.clone()),
        // A local kubeconfig dials the loopback address, which the plan does not write.
        spans: Spans { server: (!plan.local).then(|| cluster.apiserver_url_span.clone()), ..Spans::default() },
    }
}

fn kubeconfigs(context: &Context, out: &mut Vec<Artifact>) {
    let masters = hosts(context, Role::ControlPlane);
    let workers = hosts(context, Role::Worker);
    if !masters.is_empty() {
        for (name, kubeadm) in [("kube-controller-manager", "controller-manager"), ("kube-scheduler", "scheduler")] {
            out.push(kubeconfig(
                context,
                KubeconfigPlan {
                    id: ArtifactId::identity_kubeconfig(name, None),
                    credential: Credential::ClientCert(ArtifactId::identity_cert(name, None)),
                    user: format!("system:{name}"),
                    local: true,
                    file: (name, kubeadm),
                    on: masters.clone(),
                },
            ));
        }
    }
    if !workers.is_empty() {
        out.push(kubeconfig(
            context,
            KubeconfigPlan {
                id: ArtifactId::identity_kubeconfig("kube-proxy", None),
                credential: Credential::ClientCert(ArtifactId::identity_cert("kube-proxy", None)),
                user: "system:kube-proxy".into(),
                local: false,
                file: ("kube-proxy", "kube-proxy"),
                on: workers.clone(),
            },
        ));
    }
    for host in workers.iter().filter(|h| h.kubelet_client == ClientCertMode::Static) {
        out.push(kubeconfig(
            context,
            KubeconfigPlan {
                id: ArtifactId::identity_kubeconfig("kubelet", Some(&host.name)),
                credential: Credential::ClientCert(ArtifactId::identity_cert("kubelet", Some(&host.name))),
                user: format!("system:node:{}", host.name),
                local: false,
                file: ("kubelet", "kubelet"),
                on: vec![host],
            },
        ));
    }
    for user in &context.users {
        let mut artifact = kubeconfig(
            context,
            KubeconfigPlan {
                id: ArtifactId::user_kubeconfig(&user.name),
                credential: Credential::ClientCert(ArtifactId::user_cert(&user.name)),
                user: user.name.clone(),
                local: false,
                file: (&user.name, &user.name),
                on: Vec::new(),
            },
        );
        let file = context.layout.kubeconfig_file(&user.name, &user.name);
        artifact.files = vec![Placement {
            host: None,
            path: format!("cluster/kubeconfigs/{file}"),
            host_path: None,
            role: FileRole::Kubeconfig,
        }];
        artifact.origin = Some(user.span.clone());
        if let (Spec::Kubeconfig(spec), Some((server, span))) = (&mut artifact.spec, &user.server) {
            spec.server.clone_from(server);
            artifact.spans.server = Some(span.clone());
        }
        out.push(artifact);
    }
}

fn bootstrap(context: &Context, out: &mut Vec<Artifact>) {
    let cluster = &context.cluster;
    let layout = &context.layout;
    let masters = hosts(context, Role::ControlPlane);
    let mut credential = None;
    if cluster.token_csv {
        let id = ArtifactId::bootstrap_token_file();
        out.push(Artifact {
            id: id.clone(),
            spec: Spec::TokenFile(TokenFileSpec {
                user: "kubelet-bootstrap".into(),
                uid: "10001".into(),
                groups: vec!["system:bootstrappers".into()],
                template_override: None,
            }),
            files: masters
                .iter()
                .map(|h| host_placement(h, layout.in_config("token.csv"), FileRole::TokenFile))
                .collect(),
            origin: None,
            spans: Spans::default(),
        });
        credential = Some(id);
    }
    if cluster.token_secret {
        let id = ArtifactId::manifest("bootstrap-token");
        out.push(Artifact {
            id: id.clone(),
            spec: Spec::BootstrapToken(BootstrapTokenSpec {
                ttl: cluster.token_ttl,
                groups: cluster.token_groups.clone(),
                template_override: None,
            }),
            files: vec![Placement {
                host: None,
                path: "cluster/manifests/bootstrap-token.yaml".into(),
                host_path: None,
                role: FileRole::SecretManifest,
            }],
            origin: None,
            spans: Spans::default(),
        });
        credential = Some(id);
    }
    let Some(credential) = credential else { return };
    // Hosts that bootstrap need it; with token.csv, as in the classic guides,
    // every worker gets it so a kubelet can bootstrap again.
    let on: Vec<&Host> =
        hosts(context, Role::Worker).into_iter().filter(|h| h.bootstraps() || cluster.token_csv).collect();
    if !on.is_empty() {
        out.push(kubeconfig(
            context,
            KubeconfigPlan {
                id: ArtifactId::bootstrap_kubeconfig(),
                credential: Credential::Token(credential),
                user: "kubelet-bootstrap".into(),
                local: false,
                file: ("bootstrap", "bootstrap-kubelet"),
                on,
            },
        ));
    }
}

fn manifest(name: &str, template: &'static str, values: Vec<(String, String)>) -> Artifact {
    Artifact {
        id: ArtifactId::manifest(name),
        spec: Spec::Manifest(ManifestSpec { template, values, template_override: None }),
        files: vec![Placement {
            host: None,
            path: format!("cluster/manifests/{name}.yaml"),
            host_path: None,
            role: FileRole::Manifest,
        }],
        origin: None,
        spans: Spans::default(),
    }
}

fn manifests(context: &Context, certificates: &[Artifact], out: &mut Vec<Artifact>) {
    // The binding names the API server's kubelet client by the CN it really
    // has, `[identities] apiserver-kubelet-client` included.
    let id = ArtifactId::identity_cert("apiserver-kubelet-client", None);
    let kubelet_client = certificates.iter().find(|a| a.id == id).and_then(|a| a.spec.cert());
    if let Some(cert) = kubelet_client {
        out.push(manifest(
            "apiserver-kubelet-rbac",
            "rbac-apiserver-kubelet.yaml",
            vec![("user".into(), cert.subject.cn.clone())],
        ));
    }
    if context.cluster.token_csv || context.cluster.token_secret {
        out.push(manifest(
            "kubelet-bootstrap-rbac",
            "rbac-kubelet-bootstrap.yaml",
            vec![("bootstrap_group".into(), "system:bootstrappers".into())],
        ));
    }
}
